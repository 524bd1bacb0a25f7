"""Phase singularities: compiled winding kernel, detection, positions, charge bookkeeping.

Conventions (docs/conventions.md): arrays (..., time, y, x); x = column, y = row; coordinates are
pixel centres; phase increases with time; ``arg((x - x0) + i(y - y0))`` has charge +1.

Tolerances
----------
- kernel vs numpy reference: exact (integers), also for quantised phases (edge differences of
  exactly pi), unwrapped phases, NaN sites and float32.
- vortex ``exp(i(omega t +- theta))``: position error <= 1e-6 px (the phase-only locator fits a
  linear complex field, exact for a vortex; observed ~1e-13 px). The acceptance bound is 0.5 px.
- spiral with arms ``omega t + theta - k r`` (lambda = 8 px): <= 0.5 px (the phase has a cone
  ``r`` at the core that no smooth model fits; observed max 0.46 px over 200 random positions).
- charge-m defects (m = 2, 3, -2): unit charges within 1.5 px of the core (observed <= 1.01 px)
  summing exactly to m.
- charge sums, boundary windings and torus totals: exact integers.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from wavesim.analysis.singularities import (
    charge_balance,
    phase_singularities,
    track_singularities,
)
from wavesim.analysis.winding import _plaquette_winding_numpy, plaquette_winding, wrap_phase
from wavesim.kernels.winding import plaquette_winding_frames


def smooth_field(shape, sigma, seed):
    """Smooth complex Gaussian random field, periodic (low-pass filtered white noise)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    ky = np.fft.fftfreq(shape[-2])[:, None]
    kx = np.fft.fftfreq(shape[-1])[None, :]
    lowpass = np.exp(-2 * (np.pi * sigma) ** 2 * (kx**2 + ky**2))
    return np.fft.ifft2(np.fft.fft2(noise) * lowpass)


def loop_winding(phase, i0, i1, j0, j1):
    """Winding (units of 2 pi) of a 2-D phase around the node rectangle [i0..i1] x [j0..j1],
    counter-clockwise in (x, y): along row i0 towards +x, up column j1, back along row i1, down
    column j0."""
    path = (
        [(i0, j) for j in range(j0, j1)]
        + [(i, j1) for i in range(i0, i1)]
        + [(i1, j) for j in range(j1, j0, -1)]
        + [(i, j0) for i in range(i1, i0, -1)]
        + [(i0, j0)]
    )
    values = np.array([phase[i, j] for i, j in path])
    return int(np.rint(wrap_phase(np.diff(values)).sum() / (2 * np.pi)))


def grid_da(values, dx=0.05, dt=0.5, x0=1.0, y0=2.0):
    """A (time, y, x) DataArray with coordinates in mm / ms (origin offset on purpose)."""
    nt, ny, nx = values.shape
    return xr.DataArray(
        values,
        dims=("time", "y", "x"),
        coords={
            "time": ("time", np.arange(nt) * dt, {"units": "ms"}),
            "y": ("y", y0 + np.arange(ny) * dx, {"units": "mm"}),
            "x": ("x", x0 + np.arange(nx) * dx, {"units": "mm"}),
        },
        attrs={"units": "rad"},
    )


# --------------------------------------------------------------------------------------------
# kernel vs reference
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("periodic", [False, True])
def test_kernel_matches_numpy_reference(periodic):
    rng = np.random.default_rng(0)
    cases = {
        "uniform": rng.uniform(-np.pi, np.pi, (4, 13, 17)),
        "smooth": np.angle(smooth_field((4, 13, 17), 1.5, 1)),
        "unwrapped": 7.3 * rng.uniform(-np.pi, np.pi, (4, 13, 17)),
        # multiples of pi/2: many edge differences of exactly +-pi (the wrap-boundary case)
        "quantised": np.pi / 2 * rng.integers(-2, 3, (4, 13, 17)).astype(float),
    }
    nan = rng.uniform(-np.pi, np.pi, (4, 13, 17))
    nan[0, 3, 4] = nan[2, 0, 0] = nan[3, 12, 16] = np.nan
    nan[1, 5, :] = np.inf
    cases["nan"] = nan
    for name, phase in cases.items():
        with np.errstate(invalid="ignore"):  # inf - inf in the reference
            ref = _plaquette_winding_numpy(phase, periodic=periodic)
        got = plaquette_winding_frames(phase, periodic=periodic)
        assert got.dtype == np.int32 and got.shape == ref.shape, name
        np.testing.assert_array_equal(got, ref, err_msg=name)
        assert np.abs(ref).sum() > 0, name  # the comparison is not vacuous
        np.testing.assert_array_equal(plaquette_winding(phase, periodic=periodic), ref)
    f32 = cases["uniform"].astype(np.float32)
    np.testing.assert_array_equal(
        plaquette_winding_frames(f32, periodic=periodic),
        _plaquette_winding_numpy(f32, periodic=periodic),
    )


def test_plaquette_winding_keeps_batch_shape():
    phase = np.angle(smooth_field((2, 3, 9, 11), 1.5, 2))
    out = plaquette_winding(phase)
    assert out.shape == (2, 3, 8, 10)
    np.testing.assert_array_equal(out, _plaquette_winding_numpy(phase))


# --------------------------------------------------------------------------------------------
# spirals and defects of known charge and position
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sign", [1, -1])
def test_spiral_at_subpixel_positions_gives_one_unit_charge_in_place(sign):
    dx, dt, omega = 0.05, 0.5, 1.3  # mm, ms, rad/ms
    yy, xx = np.mgrid[0:24, 0:24].astype(float)
    rng = np.random.default_rng(7)
    for x0, y0 in rng.uniform(6.0, 17.0, (6, 2)):  # sub-pixel centres, in px
        t = np.arange(5) * dt
        theta = np.arctan2(yy - y0, xx - x0)
        vortex = omega * t[:, None, None] + sign * theta  # exp(i(omega t +- theta))
        arms = vortex - 2 * np.pi * np.hypot(xx - x0, yy - y0) / 8.0
        for phase, tol in ((vortex, 1e-6), (arms, 0.5)):
            s = phase_singularities(grid_da(phase, dx=dx, dt=dt))
            assert s.sizes["singularity"] == 5  # one per frame
            np.testing.assert_array_equal(s["frame"], np.arange(5))
            np.testing.assert_allclose(s["time"], t)
            np.testing.assert_array_equal(s["charge"], sign)
            err = np.hypot(s["x"] - (1.0 + x0 * dx), s["y"] - (2.0 + y0 * dx)) / dx  # px
            assert float(err.max()) <= tol
        # complex input: the field itself is placed by bilinear interpolation (exact here)
        z = np.exp(1j * omega * t)[:, None, None] * ((xx - x0) + 1j * sign * (yy - y0))
        s = phase_singularities(z, dx=dx, dt=dt)
        assert s.attrs["source"] == "complex" and s.sizes["singularity"] == 5
        np.testing.assert_array_equal(s["charge"], sign)
        np.testing.assert_allclose(s["x"], x0 * dx, atol=1e-9)
        np.testing.assert_allclose(s["y"], y0 * dx, atol=1e-9)


@pytest.mark.parametrize("m", [2, 3, -2])
def test_higher_winding_defect_splits_into_unit_charges_summing_to_m(m):
    yy, xx = np.mgrid[0:20, 0:20].astype(float)
    rng = np.random.default_rng(abs(m) + (m < 0))
    x0, y0 = rng.uniform(8.0, 11.0, 2)
    phase = m * np.arctan2(yy - y0, xx - x0)
    s = phase_singularities(phase)
    # A 2 x 2 plaquette has |winding| <= 1 (four wrapped differences in [-pi, pi) sum to a
    # multiple of 2 pi in (-4 pi, 4 pi)), so the defect is resolved into unit charges around the
    # core: |m| of them, plus, for |m| = 3, sometimes an extra +- pair where the phase turns by
    # more than pi per pixel. Their sum is exact.
    assert set(s["charge"].values) <= {-1, 1} and s.sizes["singularity"] >= abs(m)
    assert int(s["charge"].sum()) == m
    assert float(np.hypot(s["x"] - x0, s["y"] - y0).max()) <= 1.5  # px (observed <= 1.01)
    bal = charge_balance(phase, s)
    assert int(bal["boundary_winding"].item()) == m and int(bal["residual"].item()) == 0


def test_random_fields_charge_inside_any_rectangle_equals_boundary_winding():
    z = smooth_field((3, 40, 40), 2.0, 11)
    phase = np.angle(z)
    s = phase_singularities(phase)
    row, col, frame = s["row"].values, s["column"].values, s["frame"].values
    charge = s["charge"].values
    assert s.sizes["singularity"] > 30 and set(charge) == {-1, 1}
    rng = np.random.default_rng(5)
    nonzero = 0
    for f in range(3):
        for _ in range(60):
            i0, i1 = np.sort(rng.choice(40, 2, replace=False))
            j0, j1 = np.sort(rng.choice(40, 2, replace=False))
            inside = (frame == f) & (row >= i0) & (row < i1) & (col >= j0) & (col < j1)
            w = loop_winding(phase[f], i0, i1, j0, j1)
            assert charge[inside].sum() == w
            nonzero += w != 0
    assert nonzero > 20  # many rectangles enclose a net charge
    # whole window, per frame, through charge_balance
    bal = charge_balance(phase, s)
    assert bal.attrs["balanced"] == 1
    for f in range(3):
        assert int(bal["boundary_winding"][f]) == loop_winding(phase[f], 0, 39, 0, 39)


def test_torus_total_charge_is_zero_every_frame():
    phase = np.angle(smooth_field((4, 32, 36), 2.0, 3))  # periodic by construction
    s = phase_singularities(phase, periodic=True)
    assert s.attrs["periodic"] == 1
    totals = np.bincount(s["frame"], weights=s["charge"], minlength=4)
    counts = np.bincount(s["frame"], minlength=4)
    np.testing.assert_array_equal(totals, 0)
    assert counts.min() >= 4
    # the wrap-around plaquettes are included: more singularities than in the open window
    assert s.sizes["singularity"] > phase_singularities(phase).sizes["singularity"]
    bal = charge_balance(phase, s)
    assert bal.attrs["balanced"] == 1 and not bal["net_charge"].any()
    # positions lie in [0, n) on the torus
    assert float(s["x"].max()) < 36 and float(s["y"].max()) < 32


def test_nan_sites_give_no_singularity_and_balance_uses_the_valid_region():
    yy, xx = np.mgrid[0:20, 0:20].astype(float)
    phase = np.arctan2(yy - 9.4, xx - 10.3)
    assert phase_singularities(phase).sizes["singularity"] == 1
    masked = phase.copy()
    masked[8:12, 9:13] = np.nan  # a hole over the core
    s = phase_singularities(masked)
    assert s.sizes["singularity"] == 0
    bal = charge_balance(masked, s)
    # the valid region is an annulus: outer rim +1, inner rim (clockwise) -1
    assert int(bal["boundary_winding"].item()) == 0 and bal.attrs["balanced"] == 1
    masked_rim = phase.copy()
    masked_rim[0, :] = np.nan  # NaN on the outer edge: the border moves inwards
    s = phase_singularities(masked_rim)
    assert s.sizes["singularity"] == 1
    assert int(charge_balance(masked_rim, s)["boundary_winding"].item()) == 1


def test_output_layout_units_and_leading_dims():
    yy, xx = np.mgrid[0:16, 0:16].astype(float)
    plus = np.arctan2(yy - 7.3, xx - 5.6)
    minus = -np.arctan2(yy - 8.8, xx - 10.2)
    data = np.stack([np.stack([plus] * 3), np.stack([minus] * 3)])  # (member, time, y, x)
    da = xr.DataArray(
        data,
        dims=("member", "time", "y", "x"),
        coords={
            "member": ["a", "b"],
            "time": ("time", [0.0, 1.0, 2.0], {"units": "ms"}),
            "y": ("y", np.arange(16) * 0.1, {"units": "mm"}),
            "x": ("x", np.arange(16) * 0.1, {"units": "mm"}),
        },
    )
    s = phase_singularities(da.transpose("y", "member", "x", "time"))  # any dim order
    assert s.sizes["singularity"] == 6 and s.attrs["lead_dims"] == ["member"]
    np.testing.assert_array_equal(s["member"], ["a"] * 3 + ["b"] * 3)
    np.testing.assert_array_equal(s["charge"], [1, 1, 1, -1, -1, -1])
    np.testing.assert_allclose(s["x"], [0.56] * 3 + [1.02] * 3, atol=1e-9)
    for name, var in s.variables.items():
        assert "units" in var.attrs, name
    assert s["x"].attrs["units"] == "mm" and s["time"].attrs["units"] == "ms"
    tr = track_singularities(s, phase=da)
    assert tr.sizes["track"] == 2 and tr.sizes["event"] == 0
    np.testing.assert_array_equal(tr["track_member"], ["a", "b"])
    np.testing.assert_array_equal(tr["track_charge"], [1, -1])
    assert tr["net_charge"].dims == ("member", "time") and tr.attrs["charge_conserved"] == 1
    for name, var in tr.variables.items():
        assert "units" in var.attrs, name
    # plain arrays: units say so
    s2 = phase_singularities(plus)
    assert s2["x"].attrs["units"] == "px" and s2["time"].attrs["units"] == "frame"


@pytest.mark.parametrize(
    ("phase", "kwargs", "error", "match"),
    [
        (np.zeros(5), {}, ValueError, "phase must have dims"),
        (np.array(["a", "b"] * 4).reshape(2, 4), {}, ValueError, "real .* or complex"),
        (xr.Dataset(), {}, TypeError, "oscillator_phase"),
        (xr.DataArray(np.zeros((3, 4)), dims=("time", "x")), {}, ValueError, "no 'y'"),
        (np.zeros((3, 4, 4)), {"dx": -1.0}, ValueError, "dx must be"),
        (np.zeros((3, 1, 4)), {}, ValueError, "at least 2 x 2"),
    ],
)
def test_bad_input_is_rejected(phase, kwargs, error, match):
    with pytest.raises(error, match=match):
        phase_singularities(phase, **kwargs)


def test_dx_contradicting_coordinates_is_rejected():
    da = grid_da(np.zeros((2, 4, 4)), dx=0.05)
    with pytest.raises(ValueError, match="contradicts the x coordinate"):
        phase_singularities(da, dx=0.1)


def test_amplitude_gate_keeps_active_cores_and_drops_quiet_ones():
    """Two vortices: one in an active region, one where the activity is 1e-3 of it. A gate at
    5 % of the frame's largest amplitude (window radius 3) keeps the first, whose own core has
    zero amplitude, and drops the second; the charge bookkeeping stays exact."""
    import xarray as xr

    from wavesim.analysis import charge_balance, gate_phase, phase_singularities

    ny, nx = 40, 60
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    envelope = np.exp(-((x - 15) ** 2 + (y - 20) ** 2) / (2 * 8.0**2)) + 1e-3
    z = ((x - 15.3) + 1j * (y - 20.6)) * ((x - 45.2) - 1j * (y - 19.4)) / 100 * envelope
    coords = {"time": [0.0], "y": np.arange(ny) * 0.1, "x": np.arange(nx) * 0.1}
    phase = xr.DataArray(np.angle(z)[None], dims=("time", "y", "x"), coords=coords)
    amp = xr.DataArray(np.abs(z)[None], dims=("time", "y", "x"), coords=coords)
    every = phase_singularities(phase)
    assert sorted(every["charge"].values.tolist()) == [-1, 1]
    gated = gate_phase(phase, amp, 0.05)
    kept = phase_singularities(gated)
    assert kept["charge"].values.tolist() == [1]
    assert (
        abs(float(kept["x"][0]) / 0.1 - 15.3) < 0.5 and abs(float(kept["y"][0]) / 0.1 - 20.6) < 0.5
    )
    assert np.isnan(gated.sel(x=4.5, y=1.9, method="nearest")).item()  # the quiet vortex's site
    balance = charge_balance(gated, kept)
    assert int(np.abs(balance["residual"]).max()) == 0
    with pytest.raises(ValueError, match="min_amplitude"):
        gate_phase(phase, amp, -1)
