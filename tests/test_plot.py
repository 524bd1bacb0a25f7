"""Tests of wavesim.plot and wavesim.analysis.phase.oscillator_phase on synthetic xarray data."""

from __future__ import annotations

import sys
import types

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from wavesim import plot as wplot  # noqa: E402
from wavesim.analysis.phase import oscillator_phase  # noqa: E402

OMEGA = 1.3  # rad/ms
K = 0.9  # rad/mm


def _coords(nt=12, ny=9, nx=11, dt=0.5, dx=0.25):
    time = xr.DataArray(np.arange(nt) * dt, dims="time", attrs={"units": "ms"})
    y = xr.DataArray(1.0 + np.arange(ny) * dx, dims="y", attrs={"units": "mm"})
    x = xr.DataArray(-1.0 + np.arange(nx) * dx, dims="x", attrs={"units": "mm"})
    return {"time": time, "y": y, "x": x}


def plane_wave_store(
    nt=12, ny=9, nx=11, omega=OMEGA, k=K, state="field", velocity="field_dot", **attrs
):
    """y = cos(ωt − kx), ẏ = −ω sin(ωt − kx): a plane wave travelling towards +x."""
    c = _coords(nt, ny, nx)
    t = c["time"].values[:, None, None]
    x = c["x"].values[None, None, :]
    phi = omega * t - k * x + 0.0 * c["y"].values[None, :, None]
    ds = xr.Dataset(
        {
            state: (("time", "y", "x"), np.cos(phi), {"units": "1"}),
            velocity: (("time", "y", "x"), -omega * np.sin(phi), {"units": "1/ms"}),
        },
        coords=c,
        attrs=attrs,
    )
    return ds, phi


def ramp_field(nt=6, ny=7, nx=10):
    """A field whose value encodes (t, y, x): f = 100 t + 10 y_index + x_index."""
    c = _coords(nt, ny, nx)
    ti, yi, xi = np.meshgrid(np.arange(nt), np.arange(ny), np.arange(nx), indexing="ij")
    values = 100.0 * ti + 10.0 * yi + xi - 250.0
    return xr.DataArray(
        values, dims=("time", "y", "x"), coords=c, name="state", attrs={"units": "mV"}
    )


def wrapped_difference(a, b):
    return np.angle(np.exp(1j * (np.asarray(a) - np.asarray(b))))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------------------------- phase


def test_oscillator_phase_of_plane_wave_is_omega_t_minus_kx():
    ds, phi = plane_wave_store()
    phase = oscillator_phase(ds, omega=OMEGA)
    assert phase.dims == ("time", "y", "x")
    assert phase.attrs["units"] == "rad"
    np.testing.assert_allclose(wrapped_difference(phase.values, phi), 0.0, atol=1e-6)
    # wrapped, and phase increases with time at a fixed site (sign pinned)
    assert np.all(phase.values > -np.pi) and np.all(phase.values <= np.pi)
    steps = wrapped_difference(phase.values[1:, 0, 0], phase.values[:-1, 0, 0])
    np.testing.assert_allclose(steps, OMEGA * 0.5, atol=1e-9)
    # coordinates carried through with their units
    np.testing.assert_array_equal(phase["x"].values, ds["x"].values)
    assert phase["x"].attrs["units"] == "mm"


def test_oscillator_phase_range_includes_pi_not_minus_pi():
    c = _coords(nt=1, ny=1, nx=2)
    ds = xr.Dataset(
        {
            "y_obs": (("time", "y", "x"), [[[-1.0, 1.0]]]),
            "ydot": (("time", "y", "x"), [[[0.0, 0.0]]]),
        },
        coords=c,
    )
    phase = oscillator_phase(ds, omega=2.0).values.ravel()
    assert phase[0] == np.pi
    assert phase[1] == 0.0


def test_oscillator_phase_omega_from_attrs_and_scenario():
    scenario = '[model]\nname = "damped_oscillator"\nomega2 = %r\ngamma = 0.1\n' % (OMEGA**2)
    ds, phi = plane_wave_store(scenario=scenario)
    np.testing.assert_allclose(wrapped_difference(oscillator_phase(ds), phi), 0.0, atol=1e-6)
    # attrs['omega2'] takes precedence over the scenario text
    ds2, phi2 = plane_wave_store(omega=2.0, omega2=4.0, scenario=scenario)
    np.testing.assert_allclose(wrapped_difference(oscillator_phase(ds2), phi2), 0.0, atol=1e-6)
    # a wrong omega gives a wrong phase: the scale of ydot matters
    wrong = oscillator_phase(ds, omega=3 * OMEGA)
    assert np.max(np.abs(wrapped_difference(wrong, phi))) > 0.3


def test_oscillator_phase_with_member_dim_and_unknown_state_name():
    ds, phi = plane_wave_store(state="v", velocity="ydot")
    batched = xr.concat([ds, ds], dim="member").assign_coords(member=[0, 1])
    phase = oscillator_phase(batched, omega=OMEGA)
    assert phase.dims == ("member", "time", "y", "x")
    np.testing.assert_allclose(wrapped_difference(phase.isel(member=1), phi), 0.0, atol=1e-6)


def test_oscillator_phase_errors_name_what_is_missing():
    ds, _ = plane_wave_store()
    with pytest.raises(KeyError, match="ydot"):
        oscillator_phase(ds.drop_vars("field_dot"), omega=1.0)
    with pytest.raises(ValueError, match="omega2"):
        oscillator_phase(ds)
    with pytest.raises(ValueError, match="omega2"):
        oscillator_phase(plane_wave_store(scenario="[model]\ngamma = 0.5\n")[0])
    with pytest.raises(ValueError, match="positive"):
        oscillator_phase(plane_wave_store(omega2=-1.0)[0])


# ---------------------------------------------------------------------------------- field


def test_plot_field_shows_the_nearest_frame_with_mm_extent_and_origin_lower():
    da = ramp_field()
    ax = wplot.plot_field(da, time=1.4)  # times 0, 0.5, 1.0, 1.5, ... -> nearest 1.5 (index 3)
    (im,) = ax.images
    np.testing.assert_array_equal(np.asarray(im.get_array()), da.isel(time=3).values)
    assert im.origin == "lower"
    x, y = da["x"].values, da["y"].values
    np.testing.assert_allclose(
        im.get_extent(), [x[0] - 0.125, x[-1] + 0.125, y[0] - 0.125, y[-1] + 0.125]
    )
    assert ax.get_xlabel() == "x (mm)" and ax.get_ylabel() == "y (mm)"
    assert "t = 1.5 ms" in ax.get_title()
    vmin, vmax = im.get_clim()
    assert vmin == -vmax == -np.max(np.abs(da.isel(time=3).values))
    cbar = im.colorbar
    assert "mV" in cbar.ax.get_ylabel()


def test_plot_field_default_is_last_frame_and_sorts_descending_coords():
    da = ramp_field()
    flipped = da.isel(y=slice(None, None, -1))
    ax = wplot.plot_field(flipped, symmetric=False)
    (im,) = ax.images
    np.testing.assert_array_equal(np.asarray(im.get_array()), da.isel(time=-1).values)
    assert im.get_clim() == (da.isel(time=-1).min(), da.isel(time=-1).max())
    assert "t = 2.5 ms" in ax.get_title()


def test_plot_field_upper_right_of_data_is_upper_right_on_screen():
    # f = y - mean(y) + x - mean(x): highest (red in RdBu_r) at the top right, blue bottom left
    c = _coords(nt=1, ny=20, nx=20)
    f = (c["y"].values[:, None] - c["y"].values.mean()) + (
        c["x"].values[None, :] - c["x"].values.mean()
    )
    da = xr.DataArray(f[None], dims=("time", "y", "x"), coords=c)
    fig = Figure(figsize=(4, 4), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    wplot.plot_field(da, ax=ax)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    height = rgba.shape[0]

    def pixel(xd, yd):
        px, py = ax.transData.transform((xd, yd))
        return rgba[int(round(height - py)), int(round(px)), :3].astype(int)

    x, y = c["x"].values, c["y"].values
    top_right = pixel(x[-1], y[-1])
    bottom_left = pixel(x[0], y[0])
    assert top_right[0] > top_right[2] + 50 and top_right[0] > top_right[1] + 50  # dark red
    assert bottom_left[2] > bottom_left[0] + 50  # dark blue


def test_plot_field_member_selection():
    da = xr.concat([ramp_field(), -ramp_field()], dim="member").assign_coords(member=[3, 7])
    ax = wplot.plot_field(da, time=0.0, member=7)
    np.testing.assert_array_equal(ax.images[0].get_array(), -ramp_field().isel(time=0).values)
    assert "member 7" in ax.get_title()
    with pytest.raises(KeyError, match="member 5"):
        wplot.plot_field(da, member=5)


# ---------------------------------------------------------------------------------- phase plot


def test_plot_phase_uses_cyclic_map_over_minus_pi_pi():
    ds, phi = plane_wave_store()
    phase = oscillator_phase(ds, omega=OMEGA)
    ax = wplot.plot_phase(phase, time=2.0)
    (im,) = ax.images
    assert im.get_cmap().name == "twilight"
    np.testing.assert_allclose(im.get_clim(), (-np.pi, np.pi))
    np.testing.assert_allclose(
        wrapped_difference(np.asarray(im.get_array()), phi[4]), 0.0, atol=1e-6
    )
    assert "t = 2 ms" in ax.get_title()
    assert "rad" in im.colorbar.ax.get_ylabel()


# ---------------------------------------------------------------------------------- orientation


def orientation_and_pinwheels():
    n = 40
    coords = {
        "y": xr.DataArray(np.arange(n) * 0.05, dims="y", attrs={"units": "mm"}),
        "x": xr.DataArray(np.arange(n) * 0.05, dims="x", attrs={"units": "mm"}),
    }
    X, Y = np.meshgrid(coords["x"].values, coords["y"].values)
    z = ((X - 0.6) + 1j * (Y - 1.0)) * ((X - 1.4) - 1j * (Y - 1.0))
    theta = xr.DataArray(
        np.mod(0.5 * np.angle(z), np.pi), dims=("y", "x"), coords=coords, name="orientation"
    )
    pw = xr.Dataset(
        {
            "x": ("pinwheel", [0.6, 1.4, 0.3, 1.9, 0.5]),
            "y": ("pinwheel", [1.0, 1.0, 0.2, 1.5, 1.8]),
            "charge": ("pinwheel", [0.5, -0.5, 0.5, -0.5, 0.5]),
        },
        attrs={"wavelength": 0.84, "density": 3.14},
    )
    return theta, pw


def test_plot_orientation_map_marks_pinwheels_by_charge():
    theta, pw = orientation_and_pinwheels()
    ax = wplot.plot_orientation_map(theta, pinwheels=pw)
    (im,) = ax.images
    np.testing.assert_allclose(np.asarray(im.get_array()), np.degrees(theta.values))
    assert im.get_clim() == (0.0, 180.0)
    assert im.origin == "lower"
    assert "deg" in im.colorbar.ax.get_ylabel()

    lines = {line.get_gid(): line for line in ax.lines}
    plus, minus = lines["pinwheels+"], lines["pinwheels-"]
    np.testing.assert_allclose(plus.get_xdata(), [0.6, 0.3, 0.5])
    np.testing.assert_allclose(plus.get_ydata(), [1.0, 0.2, 1.8])
    np.testing.assert_allclose(minus.get_xdata(), [1.4, 1.9])
    np.testing.assert_allclose(minus.get_ydata(), [1.0, 1.5])
    assert plus.get_marker() == "o" and minus.get_marker() == "x"
    assert plus.get_markeredgecolor() == "white" and minus.get_color() == "black"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["+½ (3)", "−½ (2)"]
    title = ax.get_title()
    assert "Λ = 0.84 mm" in title and "3.14 pinwheels per Λ²" in title
    # markers do not change the view: it stays the image extent
    np.testing.assert_allclose(ax.get_xlim(), im.get_extent()[:2])


def test_plot_orientation_map_without_pinwheels():
    theta, _ = orientation_and_pinwheels()
    ax = wplot.plot_orientation_map(theta)
    assert not ax.lines and ax.get_legend() is None
    assert ax.get_title() == "orientation map"


# ---------------------------------------------------------------------------------- animation


def _gif_frames(path):
    with Image.open(path) as img:
        frames = []
        for i in range(img.n_frames):
            img.seek(i)
            frames.append(np.asarray(img.convert("RGB"), dtype=int))
    return frames


@pytest.mark.parametrize(("nt", "max_frames", "expected"), [(5, 200, 5), (13, 4, 4)])
def test_animate_gif_frame_count_and_content(tmp_path, nt, max_frames, expected):
    da = ramp_field(nt=nt, ny=6, nx=8)
    out = wplot.animate(da, tmp_path / "run.gif", fps=5, max_frames=max_frames, dpi=40)
    frames = _gif_frames(out)
    assert len(frames) == expected
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:], strict=False))


def test_animate_fixed_colour_limits_across_frames(tmp_path, monkeypatch):
    # record the image clim each time a frame is drawn
    seen = []
    original = wplot.FuncAnimation

    def spy(fig, func, **kwargs):
        def wrapped(i):
            out = func(i)
            seen.append(fig.axes[0].images[0].get_clim())
            return out

        return original(fig, wrapped, **kwargs)

    monkeypatch.setattr(wplot, "FuncAnimation", spy)
    da = ramp_field(nt=4, ny=5, nx=5)
    wplot.animate(da, tmp_path / "a.gif", dpi=30)
    vmax = float(np.max(np.abs(da.values)))
    assert len(seen) >= 4
    assert all(clim == (-vmax, vmax) for clim in seen)


def test_animate_mp4_without_ffmpeg_suggests_gif(tmp_path, monkeypatch):
    monkeypatch.setattr(wplot.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"ffmpeg.*\.gif"):
        wplot.animate(ramp_field(), tmp_path / "run.mp4")
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):
        wplot.animate(ramp_field(), tmp_path / "run.avi")


# ---------------------------------------------------------------------------------- plot_store


@pytest.mark.filterwarnings("ignore:Consolidated metadata")
def test_plot_store_field_png_from_zarr_path(tmp_path):
    ds, _ = plane_wave_store()
    store = tmp_path / "run.zarr"
    ds.assign_attrs(wavesim_store=1, complete=True).to_zarr(store)  # marker open_store checks
    out = wplot.plot_store(store, "field", tmp_path / "field.png", time=1.0)
    with Image.open(out) as img:
        assert img.format == "PNG" and img.width > 100
        rgb = np.asarray(img.convert("RGB"), dtype=int)
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 20  # a real image, not a blank canvas


def test_plot_store_phase_and_animation(tmp_path):
    ds, _ = plane_wave_store(omega2=OMEGA**2)
    out = wplot.plot_store(ds, "phase", tmp_path / "phase.svg", time=2.0)
    assert out.read_text().lstrip().startswith("<?xml")
    gif = wplot.plot_store(ds, "animation", tmp_path / "run.gif", max_frames=3, dpi=30)
    assert len(_gif_frames(gif)) == 3


def test_plot_store_orientation_uses_pinwheel_analysis(tmp_path, monkeypatch):
    theta, pw = orientation_and_pinwheels()
    ds = xr.Dataset({"orientation": theta})
    calls = []

    def fake_pinwheels(t):
        calls.append(t)
        return pw

    fake = types.ModuleType("wavesim.analysis.orientation_maps")
    fake.pinwheels = fake_pinwheels
    monkeypatch.setitem(sys.modules, "wavesim.analysis.orientation_maps", fake)
    out = wplot.plot_store(ds, "orientation", tmp_path / "map.png")
    assert out.exists() and len(calls) == 1
    xr.testing.assert_equal(calls[0], theta)
    assert calls[0].attrs["periodic"] is False  # no map_periodic attr in the store
    # a stored selectivity |z| and the map's periodicity reach the analysis (unbiased wavelength)
    amp = xr.full_like(theta, 0.5)
    ds2 = ds.assign(orientation_selectivity=amp).assign_attrs(map_periodic=True)
    wplot.plot_store(ds2, "orientation", tmp_path / "map2.png")
    np.testing.assert_array_equal(calls[1].coords["amplitude"].values, amp.values)
    assert calls[1].attrs["periodic"] is True


def test_plot_store_errors_name_store_and_variable(tmp_path):
    ds, _ = plane_wave_store()
    ds.encoding["source"] = "/runs/demo.zarr"
    with pytest.raises(KeyError, match=r"/runs/demo\.zarr.*'orientation'"):
        wplot.plot_store(ds, "orientation", tmp_path / "o.png")
    with pytest.raises(KeyError, match=r"/runs/demo\.zarr.*'ydot'"):
        wplot.plot_store(ds.drop_vars("field_dot"), "phase", tmp_path / "p.png")
    with pytest.raises(ValueError, match=r"/runs/demo\.zarr.*omega2"):
        wplot.plot_store(ds, "phase", tmp_path / "p.png")
    with pytest.raises(ValueError, match=r"'velocity'.*'field'.*'animation'"):
        wplot.plot_store(ds, "velocity", tmp_path / "v.png")
    with pytest.raises(ValueError, match=r"\.gif, \.mp4"):
        wplot.plot_store(ds, "animation", tmp_path / "v.png")
    with pytest.raises(FileNotFoundError, match="nowhere.zarr"):
        wplot.plot_store(tmp_path / "nowhere.zarr", "field", tmp_path / "f.png")
    assert not list(tmp_path.iterdir())
