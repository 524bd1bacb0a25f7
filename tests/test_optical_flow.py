"""Optical flow (robust Horn-Schunck): stencils, solver vs sparse reference, sign and scale.

Tolerances (observed values in brackets):
* finite-difference stencils: exact for polynomials of their order, 1e-9 [1e-13];
* compiled solver vs direct sparse solves of the same equations: 1e-7 px/frame [~1e-11];
* plane wave of 0.8 px/frame (the acceptance test of the wave-analyzer issue): mean speed within
  0.5 % of 0.8 and direction within 1 deg, phase and intensity movies, alpha 0.1 and 2, headings
  0, 180 and 30 deg [phase: ~1e-6 relative; intensity at 16 px per wavelength: <= 0.07 %,
  <= 0.01 deg];
* translating 2-D pattern (no aperture problem): mean flow within 0.2 % [0.04 %].
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import wavesim.analysis.flow as ofmod
from wavesim.analysis.flow import (
    _gradient_from_differences,
    flow_derivatives,
    optical_flow,
)
from wavesim.kernels.optical_flow import (
    reference_solve,
    reference_system,
    reference_weights,
    residual,
    solve_flow,
)


def _plane_wave(speed, heading_deg, wavelength, *, n=32, nt=5, kind="phase"):
    """``phi = w t - k.x`` travelling at ``speed`` px/frame towards ``heading_deg``."""
    th = np.deg2rad(heading_deg)
    k = 2 * np.pi / wavelength
    y, x = np.mgrid[0:n, 0:n].astype(float)
    t = np.arange(nt, dtype=float)[:, None, None]
    phi = k * speed * t - k * (np.cos(th) * x + np.sin(th) * y)
    return np.angle(np.exp(1j * phi)) if kind == "phase" else np.cos(phi)


def _mean_flow(flow):
    vx = float(flow["vx"].mean())
    vy = float(flow["vy"].mean())
    return float(flow["speed"].mean()), np.rad2deg(np.arctan2(vy, vx)), vx, vy


# --------------------------------------------------------------------------------------------
# finite differences
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("order", "degree"), [(2, 2), (4, 4)])
def test_spatial_stencils_exact_for_polynomials(order, degree):
    # Every node (edges included) must differentiate a polynomial of degree `order` exactly.
    x = np.arange(9.0)
    coef = np.arange(1, degree + 2) * 0.1
    f = np.polyval(coef, x)
    g = _gradient_from_differences(np.diff(f)[None], order)[0]
    np.testing.assert_allclose(g, np.polyval(np.polyder(coef), x), rtol=0, atol=1e-9)


def test_temporal_stencils_exact_for_cubics():
    # f(t, x) = c(t) + s(t) x with cubic c, s: at the pair midpoints t + 1/2 the time derivative
    # and the x derivative are exact with order 4 (first, interior and last pairs alike).
    t = np.arange(6.0)
    c = 0.3 * t**3 - t**2 + 0.5 * t
    s = 0.02 * t**3 + 0.1 * t
    x = np.arange(7.0)
    f = (c[:, None] + s[:, None] * x[None, :])[:, None, :] * np.ones((1, 5, 1))
    gx, gy, gt = flow_derivatives(f, kind="amplitude", order=4)
    tm = t[:-1] + 0.5
    np.testing.assert_allclose(gx[:, 2, 3], 0.02 * tm**3 + 0.1 * tm, atol=1e-9)
    np.testing.assert_allclose(gt[:, 2, 3], 0.9 * tm**2 - 2 * tm + 0.5 + 3 * (0.06 * tm**2 + 0.1))
    np.testing.assert_allclose(gy, 0.0, atol=1e-12)


def test_phase_derivatives_ignore_wraps():
    # A wrapped phase must give the derivatives of the unwrapped one: no 2*pi jumps.
    t = np.arange(5.0)[:, None, None]
    y, x = np.mgrid[0:10, 0:12].astype(float)
    phi = 0.9 * t - 0.7 * x + 0.4 * y
    wrapped = np.angle(np.exp(1j * phi))
    assert np.abs(np.diff(wrapped, axis=-1)).max() > 5  # the wraps are there
    for a, b in zip(
        flow_derivatives(wrapped, kind="phase"),
        flow_derivatives(phi, kind="amplitude"),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, atol=1e-12)
    gx, gy, gt = flow_derivatives(wrapped, kind="phase")
    np.testing.assert_allclose([gx.mean(), gy.mean(), gt.mean()], [-0.7, 0.4, 0.9], atol=1e-12)


# --------------------------------------------------------------------------------------------
# solver kernel vs plain numpy / scipy reference
# --------------------------------------------------------------------------------------------
def _smooth_derivatives(ny=12, nx=10):
    """Derivatives of a translating 2-D pattern plus noise: the data constrain both directions."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    t = np.arange(4.0)[:, None, None]
    movie = np.cos(0.5 * (x - 0.4 * t) + 0.3 * y) + np.sin(0.2 * x - 0.6 * (y + 0.3 * t))
    movie = movie + 0.05 * rng.standard_normal(movie.shape)
    gx, gy, gt = flow_derivatives(movie, kind="amplitude")
    return gx[1], gy[1], gt[1]


def test_residual_kernel_matches_sparse_operator():
    gx, gy, gt = _smooth_derivatives()
    rng = np.random.default_rng(1)
    u, v = rng.standard_normal((2,) + gx.shape)
    wd, ws = reference_weights(gx, gy, gt, u, v, 0.7)
    alpha = 0.5
    a, b = reference_system(gx, gy, gt, wd, ws, alpha)
    expect = b - a @ np.concatenate([u.ravel(), v.ravel()])
    wh = alpha * 0.5 * (ws[:, :-1] + ws[:, 1:])  # edge (i, j) - (i, j+1)
    wv = alpha * 0.5 * (ws[:-1, :] + ws[1:, :])  # edge (i, j) - (i+1, j)
    r1, r2 = np.empty_like(u), np.empty_like(u)
    residual(
        wd * gx * gx, wd * gx * gy, wd * gy * gy, -wd * gx * gt, -wd * gy * gt, wh, wv, u, v, r1, r2
    )
    np.testing.assert_allclose(np.concatenate([r1.ravel(), r2.ravel()]), expect, atol=1e-12)


@pytest.mark.parametrize("beta", [np.inf, 1.0, 0.05])
@pytest.mark.parametrize("alpha", [0.1, 2.0])
def test_solver_matches_direct_sparse_solution(alpha, beta):
    # The multigrid kernel and the lagged-diffusivity iteration with exact sparse solves must
    # reach the same fixed point of the Euler-Lagrange equations.
    gx, gy, gt = _smooth_derivatives()
    u_ref, v_ref = reference_solve(gx, gy, gt, alpha, beta, tol=1e-13)
    ou = np.empty((1,) + gx.shape)
    ov = np.empty_like(ou)
    it = np.zeros(1, dtype=np.int64)
    args = (gx[None], gy[None], gt[None], alpha, beta, 500, 1e-11, 2, ou, ov, it)
    solve_flow(*args)
    assert it[0] < 500
    np.testing.assert_allclose(ou[0], u_ref, atol=1e-7)
    np.testing.assert_allclose(ov[0], v_ref, atol=1e-7)
    assert np.abs(u_ref).max() > 0.1  # a nontrivial flow


# --------------------------------------------------------------------------------------------
# sign and scale: plane waves (acceptance test of the issue)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("heading", [0.0, 180.0, 30.0])
@pytest.mark.parametrize("alpha", [0.1, 2.0])
@pytest.mark.parametrize("kind", ["phase", "amplitude"])
def test_plane_wave_speed_and_direction(kind, alpha, heading):
    # 0.8 px/frame, 16 px per wavelength: mean flow magnitude 0.800 within 0.5 %, direction
    # within 1 deg; the sign of vx follows the direction of travel.
    movie = _plane_wave(0.8, heading, 16.0, kind=kind)
    flow = optical_flow(movie, kind=kind, alpha=alpha, dx=1.0, dt=1.0)
    speed, direction, vx, vy = _mean_flow(flow)
    assert speed == pytest.approx(0.8, rel=5e-3)
    assert abs((direction - heading + 180) % 360 - 180) < 1.0
    assert np.sign(vx) == np.sign(np.cos(np.deg2rad(heading)))
    assert flow.attrs["not_converged"] == 0


def test_plane_wave_units_and_time_axis():
    # dx = 0.25 mm, dt = 2 ms: 0.8 px/frame = 0.1 mm/ms; time = pair midpoints.
    movie = _plane_wave(0.8, 90.0, 16.0, n=24)
    nt, ny, nx = movie.shape
    da = xr.DataArray(
        movie,
        dims=("time", "y", "x"),
        coords={
            "time": 10 + 2.0 * np.arange(nt),
            "y": 0.25 * np.arange(ny),
            "x": 0.25 * np.arange(nx),
        },
        attrs={"units": "rad"},
    )
    flow = optical_flow(da)  # kind from attrs["units"] == "rad"
    assert flow.attrs["kind"] == "phase"
    np.testing.assert_allclose(flow["time"], 11 + 2.0 * np.arange(nt - 1))
    assert flow["vy"].attrs["units"] == "mm/ms" and flow["direction"].attrs["units"] == "rad"
    assert float(flow["vy"].mean()) == pytest.approx(0.1, rel=1e-4)  # towards +y (up)
    assert float(abs(flow["vx"]).max()) < 1e-4
    np.testing.assert_allclose(flow["direction"], np.pi / 2, atol=1e-3)
    px = optical_flow(da, units="px/frame")
    assert float(px["vy"].mean()) == pytest.approx(0.8, rel=1e-4)
    assert px.attrs["mm_per_ms_per_px_per_frame"] == pytest.approx(0.125)


def test_translating_pattern_gives_full_velocity():
    # A 2-D pattern I(x - v t) has no aperture problem: both components are recovered.
    v = np.array([0.5, -0.3])  # px/frame
    y, x = np.mgrid[0:40, 0:40].astype(float)
    t = np.arange(6.0)[:, None, None]
    xs, ys = x - v[0] * t, y - v[1] * t
    movie = np.cos(0.35 * xs + 0.1 * ys) + np.cos(0.3 * ys - 0.15 * xs) + np.cos(0.2 * (xs + ys))
    flow = optical_flow(movie, kind="amplitude", dx=1.0, dt=1.0, alpha=0.5)
    inner = flow.isel(y=slice(4, -4), x=slice(4, -4))
    np.testing.assert_allclose([inner["vx"].mean(), inner["vy"].mean()], v, rtol=2e-3)


def test_uniform_phase_has_no_flow():
    # Synchrony: no spatial gradient, no flow (the solver starts every pair from zero).
    movie = np.broadcast_to(0.3 * np.arange(5.0)[:, None, None], (5, 12, 12))
    flow = optical_flow(movie, kind="phase", dx=1.0, dt=1.0)
    assert float(flow["speed"].max()) == 0.0


# --------------------------------------------------------------------------------------------
# inputs: stores, masks, batches, blocks
# --------------------------------------------------------------------------------------------
def test_store_dataset_uses_oscillator_phase_and_mask():
    # A store holds y = cos(phi) and ydot = -omega sin(phi); optical_flow(ds) uses the oscillator
    # phase. The masked-out corner is NaN in the output and does not disturb the rest.
    omega = 0.5
    k = 2 * np.pi / 12
    ny = nx = 24
    t = np.arange(6.0)
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    phi = omega * t[:, None, None] + k * x  # travels towards -x at omega/k px/ms
    mask = np.ones((ny, nx))
    mask[:5, :5] = 0
    ds = xr.Dataset(
        {
            "field": (("time", "y", "x"), np.cos(phi)),
            "field_dot": (("time", "y", "x"), -omega * np.sin(phi)),
            "mask": (("y", "x"), mask),
        },
        coords={"time": t, "y": np.arange(ny) * 1.0, "x": np.arange(nx) * 1.0},
        attrs={"omega2": omega**2},
    )
    flow = optical_flow(ds)
    assert flow.attrs["kind"] == "phase"
    assert bool(flow["vx"][:, :5, :5].isnull().all())
    good = flow["vx"].where(xr.DataArray(mask, dims=("y", "x")) > 0)
    assert float(good.mean()) == pytest.approx(-omega / k, rel=1e-3)
    assert float(abs(flow["vy"]).max()) < 1e-3 * omega / k


def test_batch_members_and_blocks(monkeypatch):
    # Two members travelling in opposite directions; tiny blocks (several per member) must give
    # the same result as one block.
    a = _plane_wave(0.6, 0.0, 12.0, n=16, nt=7)
    b = _plane_wave(0.6, 180.0, 12.0, n=16, nt=7)
    da = xr.DataArray(np.stack([a, b]), dims=("member", "time", "y", "x"), attrs={"units": "rad"})
    whole = optical_flow(da, dx=1.0, dt=1.0)
    monkeypatch.setattr(ofmod, "_BLOCK_VALUES", 16 * 16 * 5)  # 2 pairs per block
    blocked = optical_flow(da, dx=1.0, dt=1.0)
    assert whole["vx"].dims == ("member", "time", "y", "x")
    np.testing.assert_allclose(blocked["vx"], whole["vx"], atol=1e-12)
    np.testing.assert_allclose(whole["vx"].mean(("time", "y", "x")), [0.6, -0.6], rtol=1e-4)


def test_complex_input_and_amplitude_kind():
    # Complex data: phase by default; kind="amplitude" uses |z| (here 1 up to rounding: no flow,
    # and the rounding noise must not be blown up by the scaling to unit standard deviation).
    z = np.exp(1j * _plane_wave(0.5, 45.0, 12.0, n=16))
    flow = optical_flow(z, dx=1.0, dt=1.0)
    assert flow.attrs["kind"] == "phase"
    assert float(flow["speed"].mean()) == pytest.approx(0.5, rel=1e-4)
    assert float(optical_flow(z, kind="amplitude", dx=1.0, dt=1.0)["speed"].max()) < 1e-12


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "phasor"}, "kind"),
        ({"kind": "phase", "alpha": -1.0}, "alpha"),
        ({"kind": "phase", "beta": 0.0}, "beta"),
        ({"kind": "phase", "order": 3}, "order"),
        ({"kind": "phase", "units": "m/s"}, "units"),
        ({"kind": "phase", "border": 8}, "border"),
        ({"kind": "phase", "n_iter": 0}, "n_iter"),
    ],
)
def test_bad_parameters_are_named(kwargs, match):
    movie = _plane_wave(0.5, 0.0, 8.0, n=12, nt=3)
    with pytest.raises(ValueError, match=match):
        optical_flow(movie, dx=1.0, dt=1.0, **kwargs)


def test_bad_inputs_are_named():
    movie = _plane_wave(0.5, 0.0, 8.0, n=12, nt=3)
    with pytest.raises(ValueError, match="kind"):
        optical_flow(movie, dx=1.0, dt=1.0)  # real numpy array: phase or intensity?
    with pytest.raises(ValueError, match="dx"):
        optical_flow(movie, kind="phase", dt=1.0)
    with pytest.raises(ValueError, match="2 frames"):
        optical_flow(movie[:1], kind="phase", dx=1.0, dt=1.0)
    da = xr.DataArray(
        movie, dims=("time", "y", "x"), coords={"x": np.arange(12.0), "y": 2 * np.arange(12.0)}
    )
    with pytest.raises(ValueError, match="square pixels"):
        optical_flow(da, kind="phase", dt=1.0)
    with pytest.raises(ValueError, match="dx"):
        optical_flow(da.assign_coords(y=np.arange(12.0)), kind="phase", dx=0.5, dt=1.0)
