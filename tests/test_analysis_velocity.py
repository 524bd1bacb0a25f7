"""Phase-gradient velocity, PGD and plane-wave fits against waves of known speed and direction.

Every estimator is pinned in sign and scale on φ = ωt − k·x (k = −∇φ, direction counter-clockwise
from +x, speed ω/|k| in mm/ms): a reversed direction would be 180° off, a π/2 speed scaling 57 %
off, far outside the tolerances below.

Tolerances
----------
- Noise-free plane wave: relative 1e-6 on speed and 1e-6 rad on direction (observed ~1e-15:
  wrapped neighbour differences are exact for a linear phase; the fit converges to R = 1).
- Noisy plane wave (σ = 0.3 rad per site, |k| = 0.63 rad/mm, 10 x 10 sites at 0.4 mm): mean
  speed within 1 % and median direction error ≤ 2.5° over 100 trials (observed with seed 7:
  +0.21 % and 1.73°; over 30 other seeds the mean speed bias was 0.07 % ± 0.25 % (max |bias|
  0.6 %) and the median direction error ≤ 1.9°).
- PGD: |PGD − 1| < 1e-12 for a plane wave, ≤ 1e-3 for a centred rotating wave (observed ~1e-17).
- Kernel vs numpy reference: 1e-10 absolute/relative (observed ~1e-14; the two differ in rounding
  only: direct wrapped subtraction vs complex multiplication).
- Simulated plane wave: speed within 2 % of the discrete dispersion relation's phase speed
  (observed 0.03 %), direction within 0.05° of 30° (observed 0.002°).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from wavesim.analysis.velocity import (
    phase_gradient,
    phase_gradient_directionality,
    plane_wave_fit,
)
from wavesim.kernels.phase_gradient import phase_gradient_frames, phase_gradient_reference

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"

N = 10
DX = 0.4  # mm
FREQ = 10.0  # Hz
OMEGA = 2 * np.pi * FREQ / 1000  # rad/ms (10 Hz = 0.01 cycles/ms)
SPEED = 0.3  # mm/ms = m/s
HEADING = np.deg2rad(30.0)


def plane_wave(*, nt=5, dt=1.0, speed=SPEED, heading=HEADING, omega=OMEGA, n=N, dx=DX,
               offset=0.7, x0=0.0, y0=0.0):  # fmt: skip
    """Wrapped φ = ωt − k·x + offset on an n x n grid with coordinates in mm/ms."""
    k = omega / speed
    t = np.arange(nt) * dt
    y = y0 + np.arange(n) * dx
    x = x0 + np.arange(n) * dx
    tt, yy, xx = np.meshgrid(t, y, x, indexing="ij")
    phi = omega * tt - k * (np.cos(heading) * xx + np.sin(heading) * yy) + offset
    coords = {
        "time": ("time", t, {"units": "ms"}),
        "y": ("y", y, {"units": "mm"}),
        "x": ("x", x, {"units": "mm"}),
    }
    return xr.DataArray(
        np.angle(np.exp(1j * phi)), dims=("time", "y", "x"), coords=coords, attrs={"units": "rad"}
    )


def angle_error(a, b):
    return np.abs(np.angle(np.exp(1j * (np.asarray(a) - np.asarray(b)))))


def assert_units(ds):
    for name in [*ds.data_vars, *ds.coords]:
        assert "units" in ds[name].attrs, f"{name} has no units"


# --------------------------------------------------------------------------------------------
# noise-free plane wave: sign and scale
# --------------------------------------------------------------------------------------------
def test_phase_gradient_plane_wave_sign_and_scale():
    g = phase_gradient(plane_wave())
    assert_units(g)
    assert g["speed"].attrs["units"] == "mm/ms" and g["kx"].attrs["units"] == "rad/mm"
    k = OMEGA / SPEED
    np.testing.assert_allclose(g["speed"], SPEED, rtol=1e-6)
    assert float(angle_error(g["direction"], HEADING).max()) < 1e-6
    np.testing.assert_allclose(g["kx"], k * np.cos(HEADING), rtol=1e-6)
    np.testing.assert_allclose(g["ky"], k * np.sin(HEADING), rtol=1e-6)
    np.testing.assert_allclose(g["omega"], OMEGA, rtol=1e-6)


def test_plane_wave_fit_plane_wave_sign_and_scale():
    # x0/y0 shift the coordinates: the fitted phase offset refers to x = y = 0 mm.
    da = plane_wave(x0=-1.3, y0=2.1)
    fit = plane_wave_fit(da)
    assert_units(fit)
    assert fit.sizes == {"time": 5}
    np.testing.assert_allclose(fit["speed"], SPEED, rtol=1e-6)
    assert float(angle_error(fit["direction"], HEADING).max()) < 1e-6
    np.testing.assert_allclose(fit["wavelength"], 2 * np.pi * SPEED / OMEGA, rtol=1e-6)
    np.testing.assert_allclose(fit["fit_quality"], 1.0, atol=1e-12)
    np.testing.assert_allclose(fit["omega"], OMEGA, rtol=1e-9)
    expected = 0.7 + OMEGA * da["time"].values  # φ at x = y = 0
    assert float(angle_error(fit["phase_offset"], expected).max()) < 1e-9


@pytest.mark.parametrize("heading_deg", [0.0, 90.0, 150.0, -120.0])
def test_headings_all_quadrants_and_grid_independence(heading_deg):
    """Every quadrant; short and long wavelengths (the fit is refined beyond the FFT grid)."""
    for speed in (0.05, 0.3, 1.5):  # wavelength 5 mm .. 150 mm on a 3.6 mm array
        da = plane_wave(nt=3, speed=speed, heading=np.deg2rad(heading_deg))
        fit = plane_wave_fit(da)
        np.testing.assert_allclose(fit["speed"], speed, rtol=1e-6)
        assert float(angle_error(fit["direction"], np.deg2rad(heading_deg)).max()) < 1e-6
        g = phase_gradient(da)
        np.testing.assert_allclose(g["speed"], speed, rtol=1e-6)


def test_numpy_input_and_known_omega():
    da = plane_wave()
    g = phase_gradient(da.values, dx=DX, dt=1.0)
    np.testing.assert_allclose(g["speed"], SPEED, rtol=1e-6)
    assert g["x"].attrs["units"] == "mm" and g["time"].attrs["units"] == "ms"
    # a single frame: no time derivative, so the speed needs omega
    fit = plane_wave_fit(da.isel(time=0).values, dx=DX, omega=OMEGA)
    assert fit["speed"].ndim == 0
    assert math.isclose(float(fit["speed"]), SPEED, rel_tol=1e-6)
    assert "speed" not in phase_gradient(da.isel(time=0))
    # complex analytic signals are accepted (their angle is the phase)
    gz = phase_gradient(np.exp(1j * da))
    np.testing.assert_allclose(gz["speed"], SPEED, rtol=1e-6)


def test_masked_sites_stay_nan_and_do_not_bias():
    da = plane_wave(n=12)
    yy, xx = np.meshgrid(da["y"], da["x"], indexing="ij")
    hole = (xx - 2.0) ** 2 + (yy - 2.4) ** 2 < 0.8**2
    masked = da.where(~hole)
    g = phase_gradient(masked)
    assert bool(g["speed"].isnull().values[:, hole].all())
    assert bool(g["speed"].notnull().values[:, ~hole].all())
    np.testing.assert_allclose(g["speed"].values[:, ~hole], SPEED, rtol=1e-6)
    fit = plane_wave_fit(masked)
    np.testing.assert_allclose(fit["speed"], SPEED, rtol=1e-6)
    assert int(fit["n_sites"][0]) == int((~hole).sum())


# --------------------------------------------------------------------------------------------
# noisy plane wave
# --------------------------------------------------------------------------------------------
def test_plane_wave_fit_noisy_bias():
    """σ = 0.3 rad per site, |k| = 0.63 rad/mm, 100 seeded trials of 5 frames (dt = 20 ms).

    The speed uses the frame-mean ∂φ/∂t from the neighbouring frames, so it is evaluated on the
    3 inner frames of every trial (300 estimates).
    """
    k = 0.63
    speed = OMEGA / k
    rng = np.random.default_rng(7)
    base = plane_wave(nt=5, dt=20.0, speed=speed, offset=0.0)
    trials = 100
    offsets = rng.uniform(0, 2 * np.pi, (trials, 1, 1, 1))
    noise = rng.normal(0.0, 0.3, (trials, *base.shape))
    da = xr.DataArray(
        base.values[None] + offsets + noise, dims=("trial", *base.dims), coords=base.coords
    )
    fit = plane_wave_fit(da).isel(time=slice(1, -1))
    assert fit.sizes == {"trial": trials, "time": 3}
    bias = float(fit["speed"].mean()) / speed - 1
    dir_err = np.rad2deg(np.median(angle_error(fit["direction"], HEADING)))
    assert abs(bias) < 0.01, f"speed bias {bias:.4f}"
    assert dir_err <= 2.5, f"median direction error {dir_err:.2f} deg"


def test_significance_permutation_p_values():
    da = plane_wave(nt=3, speed=0.05, offset=0.0)
    rng = np.random.default_rng(3)
    noisy = da + rng.normal(0, 0.3, da.shape)
    fit = plane_wave_fit(noisy, significance=True, n_shuffles=99, seed=1)
    np.testing.assert_allclose(fit["p_value"], 0.01)  # nothing beats the data: 1/(1 + 99)
    noise = xr.DataArray(rng.uniform(-np.pi, np.pi, (60, N, N)), dims=("time", "y", "x"),
                         coords={"time": np.arange(60.0), "y": da["y"], "x": da["x"]})  # fmt: skip
    p = plane_wave_fit(noise, significance=True, n_shuffles=99, seed=2)["p_value"].values
    # under the null the p-values are uniform on {0.01, ..., 1}: mean 0.505, sd of the mean 0.037
    assert 0.35 < p.mean() < 0.65
    assert (p <= 0.05).mean() <= 0.15
    again = plane_wave_fit(noise.isel(time=slice(0, 5)), significance=True, n_shuffles=99, seed=2)
    np.testing.assert_array_equal(again["p_value"], p[:5])  # seeded: reproducible


# --------------------------------------------------------------------------------------------
# phase gradient directionality
# --------------------------------------------------------------------------------------------
def test_pgd_plane_and_rotating_wave():
    pgd = phase_gradient_directionality(plane_wave())
    assert pgd.dims == ("time",) and pgd.attrs["units"] == "1"
    np.testing.assert_allclose(pgd, 1.0, atol=1e-12)
    # rotating wave about the centre of a 10 x 10 grid: φ = ωt + arg((x − xc) + i(y − yc))
    t = np.arange(4.0)
    yy, xx = np.mgrid[0:N, 0:N] * DX
    c = (N - 1) * DX / 2
    rot = OMEGA * t[:, None, None] + np.angle((xx - c) + 1j * (yy - c))[None]
    pgd_rot = phase_gradient_directionality(rot, dx=DX)
    assert pgd_rot.shape == (4,)
    assert float(pgd_rot.max()) <= 1e-3
    # from a phase_gradient Dataset
    g = phase_gradient(plane_wave())
    np.testing.assert_allclose(phase_gradient_directionality(g), 1.0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# numba kernel vs numpy reference
# --------------------------------------------------------------------------------------------
def test_kernel_matches_reference():
    rng = np.random.default_rng(0)
    shape = (2, 5, 7, 9)  # odd, non-square, two members
    smooth = np.cumsum(np.cumsum(rng.normal(0, 0.6, shape), axis=-1), axis=-2)
    phase = np.angle(np.exp(1j * (smooth + 0.8 * np.arange(5)[None, :, None, None])))
    phase[0, :, 2:4, 3] = np.nan  # a masked patch
    phase[1, 2, 0, :] = np.nan  # a dropped row in one frame
    phase[1, :, 6, 8] = np.nan  # a corner site
    dx, dy, dt = 0.3, 0.45, 0.7
    outs = [np.empty_like(phase) for _ in range(4)]
    phase_gradient_frames(phase, 1 / dx, 1 / dy, 1 / dt, *outs)
    ref = phase_gradient_reference(phase, dx, dy, dt)[:4]
    for name, a, b in zip(("kx", "ky", "omega", "speed"), outs, ref, strict=True):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10, err_msg=name)
    assert np.isnan(outs[0][0, :, 2:4, 3]).all() and np.isfinite(outs[0][0, :, 2:4, 2]).all()


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
def test_bad_input_errors():
    da = plane_wave()
    with pytest.raises(ValueError, match="dx"):
        phase_gradient(da.values)
    with pytest.raises(ValueError, match="dt"):
        phase_gradient(da.values, dx=DX)
    with pytest.raises(ValueError, match="uniformly spaced"):
        phase_gradient(da.assign_coords(x=da["x"].values ** 2))
    with pytest.raises(ValueError, match="dims"):
        phase_gradient(da.rename(x="col"))
    with pytest.raises(ValueError, match="degrees"):
        phase_gradient(da.assign_attrs(units="deg"))
    with pytest.raises(ValueError, match="disagrees"):
        plane_wave_fit(da, dx=0.5)
    with pytest.raises(ValueError, match="n_shuffles"):
        plane_wave_fit(da, significance=True, n_shuffles=0)


# --------------------------------------------------------------------------------------------
# simulated plane wave against the lattice's discrete dispersion relation
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_simulated_plane_wave_matches_discrete_dispersion(tmp_path):
    import wavesim
    from wavesim.analysis.phase import oscillator_phase

    # 6 ms on the 128 x 128 torus. At 30° the sheet holds 4 wavelengths along y but 3.46 along
    # x, so the initial wave has a phase jump at the x seam; its disturbance travels at most at
    # ~c = 0.3 mm/ms, i.e. < 2 mm in 6 ms. The central strip x in [2.4, 3.95] mm stays clean.
    sc = wavesim.load_scenario(SCENARIOS / "plane_wave.toml", ["run.duration=6.0"])
    wavesim.run(sc, tmp_path / "s.zarr", progress=False)
    ds = wavesim.open_store(tmp_path / "s.zarr")
    dt, dx, c = sc.run.dt, sc.lattice.dx, sc.coupling.speed
    k = 2 * np.pi / sc.initial.wavelength
    heading = np.deg2rad(sc.initial.direction)
    kx, ky = k * np.cos(heading), k * np.sin(heading)
    big_omega2 = (
        sc.model.omega2
        + c**2 * (4 * np.sin(kx * dx / 2) ** 2 + 4 * np.sin(ky * dx / 2) ** 2) / dx**2
    )
    omega = np.arccos(1 - dt**2 * big_omega2 / 2) / dt  # discrete (symplectic Euler) dispersion
    speed = omega / k

    # omega2 = 0 in this scenario, so the phase needs the wave's own frequency
    phase = oscillator_phase(ds, omega=math.sqrt(big_omega2)).isel(x=slice(48, 80))
    g = phase_gradient(phase)
    fit = plane_wave_fit(phase)
    assert abs(float(g["speed"].median()) / speed - 1) < 0.02
    assert float(np.abs(fit["speed"] / speed - 1).max()) < 0.02
    assert math.isclose(np.rad2deg(float(g["direction"].median())), 30.0, abs_tol=0.05)
    assert float(np.rad2deg(angle_error(fit["direction"], heading)).max()) < 0.05
    assert float(fit["fit_quality"].min()) > 0.99
