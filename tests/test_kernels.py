"""Compiled lattice kernels against the plain-numpy reference step.

Every configuration runs the numba kernel (``LatticeKernel.advance``) and
``wavesim.models.oscillator.reference_step`` from the same random state and compares them.

Tolerances
----------
- float64 kernel vs float64 reference: ``max|kernel - ref| / max|ref| <= 1e-12`` for y and v.
  The two differ only in rounding (summation order of the stencil, FMA contraction under
  ``fastmath={"contract"}``, the noise pre-scaling ``eta/sqrt(dt) * dt`` vs ``eta*sqrt(dt)``,
  ``exp(a cos + b sin)`` vs ``exp(cos(...))`` in the grating drive): a few ulp per step, amplified
  by at most the per-step gain of a 7x9 lattice over 15 steps. Observed <= 1.0e-15; a wrong sign,
  a transposed stencil or an off-by-one drive time gives errors of order 1e-3 .. 1.
- float32 kernel vs float64 reference (from the same float32-rounded state): ``<= 5e-6``
  relative (~40 float32 eps): ~15 steps of float32 rounding (eps = 1.2e-7) plus the float32 fast
  tanh (<= 5e-7 absolute). Observed <= 5.0e-7.
- thread modes and batching: bitwise (the same arithmetic on the same data in the same order).
"""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest

from wavesim.drives import GratingDrive, PlaneWaveDrive, PulseDrive
from wavesim.kernels.driver import LatticeKernel
from wavesim.lattice import Lattice
from wavesim.models.oscillator import OscillatorParams, reference_step

SHAPE = (7, 9)  # odd, non-square: catches transposed axes and off-by-one row chunks
DX = 0.1
DT = 0.05
NSTEPS = 15
MEMBERS = 3
RTOL64 = 1e-12
RTOL32 = 5e-6

BOUNDARIES = ("periodic", "reflecting", "absorbing")
INTEGRATORS = ("symplectic_euler", "imex")
ACTIVATIONS = ("fast_tanh", "exact_tanh", "linear")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def make_lattice(boundary, mask=None, shape=SHAPE):
    # A 0.25 mm sponge is 2-3 sites deep on this 0.1 mm grid, so the absorbing lattice has a
    # genuinely per-site damping map (never the fused path).
    return Lattice(shape, dx=DX, boundary=boundary, sponge_width=0.25, sponge_damping=2.0,
                   mask=mask)  # fmt: skip


def activation_kwargs(act):
    if act == "linear":
        return dict(activation="linear")
    return dict(activation="tanh", exact_tanh=(act == "exact_tanh"))


def site_maps(rng, shape=SHAPE):
    return dict(
        omega2=rng.uniform(0.5, 3.0, shape),
        gamma=rng.uniform(0.0, 0.8, shape),
        bias=rng.normal(0.0, 0.2, shape),
    )


SCALARS = dict(omega2=1.5, gamma=0.4, bias=0.1)


def initial_state(rng, members=MEMBERS, shape=SHAPE):
    return rng.normal(size=(members, *shape)), rng.normal(size=(members, *shape))


def run_kernel(rp, y0, v0, nsteps=NSTEPS, dtype=np.float64, drive=None, xi=None, t0=0.0,
               mode=None, threads=1, splits=None):  # fmt: skip
    """Run the kernel; ``splits`` = list of step counts for consecutive ``advance`` calls."""
    ker = LatticeKernel(rp, DT, dtype, drive=drive, members=y0.shape[0], threads=threads)
    st = ker.new_state()
    st.set(y0, v0, ker.colmode)
    splits = splits or [nsteps]
    assert sum(splits) == nsteps
    n0 = 0
    for n in splits:
        xs = None if xi is None else np.ascontiguousarray(xi[:, n0 : n0 + n])
        ker.advance(st, n, t0 + n0 * DT, xi=xs, mode=mode)
        n0 += n
    return st.y.copy(), st.v.copy(), ker


def run_reference(rp, y0, v0, nsteps=NSTEPS, drive=None, xi=None, t0=0.0):
    y, v = np.array(y0, dtype=float), np.array(v0, dtype=float)
    for n in range(nsteps):
        u = None
        if drive is not None:
            # the same time grid the kernel uses: t0 + dt * n
            t = t0 + DT * np.arange(nsteps)[n]
            u = drive.evaluate(float(t), rp.lattice, rp.params.theta)
        y, v = reference_step(y, v, rp, DT, u=u, xi=None if xi is None else xi[:, n])
    return y, v


def rel_err(a, ref):
    return float(np.max(np.abs(a - ref)) / np.max(np.abs(ref)))


def assert_matches_reference(rp, y0, v0, rtol=RTOL64, **kw):
    yk, vk, ker = run_kernel(rp, y0, v0, **kw)
    ref_kw = {k: kw[k] for k in ("drive", "xi", "t0", "nsteps") if k in kw}
    y0r, v0r = y0, v0
    if kw.get("dtype", np.float64) == np.float32:
        # the float32 kernel starts from the float32-rounded state: compare only propagation
        y0r = y0.astype(np.float32).astype(float)
        v0r = v0.astype(np.float32).astype(float)
    yr, vr = run_reference(rp, y0r, v0r, **ref_kw)
    assert np.all(np.isfinite(yr)) and np.max(np.abs(yr)) > 1e-3  # a non-trivial comparison
    ey, ev = rel_err(yk, yr), rel_err(vk, vr)
    assert ey <= rtol and ev <= rtol, (ey, ev)
    return ker, max(ey, ev)


# --------------------------------------------------------------------------------------------
# 1. kernel == reference, the full matrix of the basic options
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["uniform", "site_maps"])
@pytest.mark.parametrize("kappa", [0.0, 1.5])
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("integrator", INTEGRATORS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_kernel_matches_reference(boundary, integrator, act, kappa, path):
    rng = np.random.default_rng(zlib.crc32(f"{boundary}{integrator}{act}{kappa}{path}".encode()))
    lat = make_lattice(boundary)
    # Non-symmetric random stencil: a flipped or transposed stencil would not match.
    w = rng.normal(0.0, 0.5, (3, 3))
    theta = rng.uniform(0, np.pi, SHAPE)
    params = SCALARS if path == "uniform" else site_maps(rng)
    p = OscillatorParams(w=w, kappa=kappa, theta=theta, integrator=integrator,
                         **params, **activation_kwargs(act))  # fmt: skip
    rp = p.resolved(lat)
    y0, v0 = initial_state(rng)
    ker, _ = assert_matches_reference(rp, y0, v0)
    # path coverage: the fused fast path only for uniform 3x3, scalar params, no sponge
    expect_fused = kappa == 0 and path == "uniform" and boundary != "absorbing"
    assert ker.fused == expect_fused


@pytest.mark.parametrize("kappa", [0.0, 1.5])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_velocity_stencil(boundary, kappa):
    rng = np.random.default_rng(11)
    lat = make_lattice(boundary)
    p = OscillatorParams(w=rng.normal(0, 0.5, (3, 3)), wv=rng.normal(0, 0.3, (3, 3)),
                         kappa=kappa, theta=rng.uniform(0, np.pi, SHAPE), **SCALARS)  # fmt: skip
    y0, v0 = initial_state(rng)
    ker, _ = assert_matches_reference(p.resolved(lat), y0, v0)
    assert not ker.fused


@pytest.mark.parametrize("integrator", INTEGRATORS)
@pytest.mark.parametrize("kappa", [0.0, 1.5])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_5x5_stencil(boundary, kappa, integrator):
    rng = np.random.default_rng(12)
    lat = make_lattice(boundary)
    p = OscillatorParams(w=rng.normal(0, 0.3, (5, 5)), wv=rng.normal(0, 0.1, (5, 5)),
                         kappa=kappa, theta=rng.uniform(0, np.pi, SHAPE),
                         integrator=integrator, **SCALARS)  # fmt: skip
    y0, v0 = initial_state(rng)
    ker, _ = assert_matches_reference(p.resolved(lat), y0, v0)
    assert ker.h == 2 and not ker.fused


def drives():
    # Pulses switch on and off inside the 15 steps (t in [0.37, 1.07) ms); two advance calls.
    return {
        "pulse_point": PulseDrive(position=(0.4, 0.3), amplitude=2.0, width=0.0, onset=0.5,
                                  duration=0.3),
        "pulse_gauss": PulseDrive(position=(0.35, 0.25), amplitude=1.5, width=0.2, onset=0.45,
                                  duration=0.4, period=0.5),
        "plane_wave": PlaneWaveDrive(wavelength=0.6, speed=0.3, direction=30.0, amplitude=1.2,
                                     onset=0.5),
        "grating": GratingDrive(angular_speed=90.0, amplitude=1.3, tuning=2.0, orientation=20.0,
                                onset=0.4),
    }  # fmt: skip


@pytest.mark.parametrize("name", list(drives()))
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_drives(boundary, name):
    rng = np.random.default_rng(13)
    drive = drives()[name]
    lat = make_lattice(boundary)
    p = OscillatorParams(w=rng.normal(0, 0.5, (3, 3)), theta=rng.uniform(0, np.pi, SHAPE),
                         gain=0.7, **SCALARS)  # fmt: skip
    rp = p.resolved(lat)
    y0, v0 = initial_state(rng)
    t0 = 0.37
    # The drive must actually act in this window (else the test could not fail).
    us = [drive.evaluate(t0 + DT * n, lat, p.theta) for n in range(NSTEPS)]
    assert max(np.abs(u).max() for u in us) > 0.5 and np.abs(us[0]).max() == 0
    ker, _ = assert_matches_reference(rp, y0, v0, drive=drive, t0=t0, splits=[8, 7])
    assert not ker.fused
    # and it changes the result
    y_nodrive, _, _ = run_kernel(rp, y0, v0, t0=t0)
    y_drive, _, _ = run_kernel(rp, y0, v0, drive=drive, t0=t0)
    assert np.max(np.abs(y_drive - y_nodrive)) > 1e-3


@pytest.mark.parametrize("integrator", INTEGRATORS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_mask(boundary, integrator):
    rng = np.random.default_rng(14)
    mask = rng.random(SHAPE) > 0.3
    mask[0, :] = False  # an inactive edge row (next to the ghosts)
    lat = make_lattice(boundary, mask=mask)
    p = OscillatorParams(w=rng.normal(0, 0.5, (3, 3)), integrator=integrator, **SCALARS)
    y0, v0 = initial_state(rng)  # masked sites start non-zero: both must zero them
    ker, _ = assert_matches_reference(p.resolved(lat), y0, v0)
    assert not ker.fused
    yk, vk, _ = run_kernel(p.resolved(lat), y0, v0)
    assert np.all(yk[:, ~mask] == 0) and np.all(vk[:, ~mask] == 0)


@pytest.mark.parametrize("integrator", INTEGRATORS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_noise(boundary, integrator):
    rng = np.random.default_rng(15)
    lat = make_lattice(boundary)
    p = OscillatorParams(w=rng.normal(0, 0.5, (3, 3)), noise=0.3, integrator=integrator,
                         **SCALARS)  # fmt: skip
    rp = p.resolved(lat)
    y0, v0 = initial_state(rng)
    xi = rng.standard_normal((MEMBERS, NSTEPS, *SHAPE))
    ker, _ = assert_matches_reference(rp, y0, v0, xi=xi, splits=[6, 9])
    assert not ker.fused and ker.has_noise
    # the noise matters at this level (so a dropped or mis-scaled noise term would fail)
    yr_quiet, _ = run_reference(rp, y0, v0)
    yr_noisy, _ = run_reference(rp, y0, v0, xi=xi)
    assert rel_err(yr_quiet, yr_noisy) > 1e-3
    with pytest.raises(ValueError, match="noise"):
        run_kernel(rp, y0, v0)  # noise without draws


def kitchen_sink(rng, boundary="absorbing", integrator="imex"):
    mask = rng.random(SHAPE) > 0.2
    lat = make_lattice(boundary, mask=mask)
    p = OscillatorParams(w=rng.normal(0, 0.3, (5, 5)), wv=rng.normal(0, 0.1, (5, 5)),
                         kappa=0.8, theta=rng.uniform(0, np.pi, SHAPE), noise=0.2, gain=0.9,
                         integrator=integrator, **site_maps(rng))  # fmt: skip
    drive = GratingDrive(angular_speed=45.0, amplitude=1.0, tuning=1.5)
    return p.resolved(lat), drive


@pytest.mark.parametrize("integrator", INTEGRATORS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_everything_at_once(boundary, integrator):
    rng = np.random.default_rng(16)
    rp, drive = kitchen_sink(rng, boundary, integrator)
    y0, v0 = initial_state(rng)
    xi = rng.standard_normal((MEMBERS, NSTEPS, *SHAPE))
    assert_matches_reference(rp, y0, v0, drive=drive, xi=xi, t0=0.1, splits=[5, 10])


# --------------------------------------------------------------------------------------------
# float32 kernels
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["uniform", "site_maps"])
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_float32_kernel_vs_float64_reference(boundary, act, path):
    rng = np.random.default_rng(17)
    lat = make_lattice(boundary)
    params = SCALARS if path == "uniform" else site_maps(rng)
    p = OscillatorParams(w=rng.normal(0, 0.5, (3, 3)), **params, **activation_kwargs(act))
    rp = p.resolved(lat)
    y0, v0 = initial_state(rng)
    assert_matches_reference(rp, y0, v0, dtype=np.float32, rtol=RTOL32)


def test_float32_kernel_vs_float64_reference_everything():
    rng = np.random.default_rng(18)
    rp, drive = kitchen_sink(rng)
    y0, v0 = initial_state(rng)
    xi = rng.standard_normal((MEMBERS, NSTEPS, *SHAPE))
    assert_matches_reference(rp, y0, v0, dtype=np.float32, rtol=RTOL32, drive=drive, xi=xi)


@pytest.mark.parametrize("fused", [True, False])
def test_float32_runs_in_float32(fused):
    # Output is float32, and differs from the float64 kernel by more than 0 (it really computed
    # in float32, not float64 and cast) but less than RTOL32 relative (see module docstring).
    rng = np.random.default_rng(19)
    lat = make_lattice("periodic")
    params = SCALARS if fused else site_maps(rng)
    p = OscillatorParams(w=rng.normal(0, 0.5, (3, 3)), **params)
    rp = p.resolved(lat)
    y0, v0 = initial_state(rng)
    y0 = y0.astype(np.float32).astype(float)  # same (exactly representable) start for both
    v0 = v0.astype(np.float32).astype(float)
    y32, v32, k32 = run_kernel(rp, y0, v0, dtype=np.float32)
    y64, v64, k64 = run_kernel(rp, y0, v0, dtype=np.float64)
    assert k32.fused == k64.fused == fused
    assert y32.dtype == np.float32 and v32.dtype == np.float32
    assert k32.new_state().bufs[0].dtype == np.float32
    cfg = k32.config(0.0, 1)
    assert all(
        a.dtype == np.float32
        for a in (cfg.w, cfg.scal, cfg.site, cfg.dcoef, cfg.dbasis, cfg.noise, cfg.mask)
    )
    e = max(rel_err(y32, y64), rel_err(v32, v64))
    assert 0 < e < RTOL32, e
    # Double rounding of the float64 result is not what the kernel does: at least some
    # sites differ from float32(y64).
    assert np.any(y32 != y64.astype(np.float32))


# --------------------------------------------------------------------------------------------
# 2. threads and batches: bitwise
# --------------------------------------------------------------------------------------------
def thread_configs():
    rng = np.random.default_rng(20)
    lat = make_lattice("periodic")
    fused = OscillatorParams(w=rng.normal(0, 0.5, (3, 3)), **SCALARS).resolved(lat)
    general, drive = kitchen_sink(rng, "reflecting", "symplectic_euler")
    return {"fused": (fused, None, False), "general": (general, drive, True)}


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("name", ["fused", "general"])
def test_thread_modes_bitwise(name, members):
    rp, drive, noisy = thread_configs()[name]
    rng = np.random.default_rng(21)
    y0, v0 = initial_state(rng, members)
    xi = rng.standard_normal((members, NSTEPS, *SHAPE)) if noisy else None
    out = {}
    for mode in ("serial", "members", "rows"):
        yk, vk, ker = run_kernel(rp, y0, v0, drive=drive, xi=xi, mode=mode, threads=2,
                                 splits=[7, 8])  # fmt: skip
        assert ker.threads == 2 and ker.fused == (name == "fused")
        out[mode] = (yk, vk)
    for mode in ("members", "rows"):
        np.testing.assert_array_equal(out[mode][0], out["serial"][0])
        np.testing.assert_array_equal(out[mode][1], out["serial"][1])


@pytest.mark.parametrize("name", ["fused", "general"])
def test_batch_equals_members_one_by_one(name):
    rp, drive, noisy = thread_configs()[name]
    rng = np.random.default_rng(22)
    y0, v0 = initial_state(rng, MEMBERS)
    xi = rng.standard_normal((MEMBERS, NSTEPS, *SHAPE)) if noisy else None
    yb, vb, _ = run_kernel(rp, y0, v0, drive=drive, xi=xi, t0=0.2)
    for b in range(MEMBERS):
        xb = None if xi is None else xi[b : b + 1]
        y1, v1, _ = run_kernel(rp, y0[b : b + 1], v0[b : b + 1], drive=drive, xi=xb, t0=0.2)
        np.testing.assert_array_equal(yb[b : b + 1], y1)
        np.testing.assert_array_equal(vb[b : b + 1], v1)
    # the members really are different runs
    assert not np.array_equal(yb[0], yb[1])


@pytest.mark.parametrize("name", ["fused", "general"])
def test_split_advance_equals_one_advance(name):
    # Ping-pong parity bookkeeping across calls with odd and even step counts (no drive: its
    # time grid t0 + dt*n is rounded differently when split, so only the state path is bitwise).
    rp, _, noisy = thread_configs()[name]
    rng = np.random.default_rng(23)
    y0, v0 = initial_state(rng)
    xi = rng.standard_normal((MEMBERS, NSTEPS, *SHAPE)) if noisy else None
    ya, va, _ = run_kernel(rp, y0, v0, xi=xi)
    yb, vb, _ = run_kernel(rp, y0, v0, xi=xi, splits=[1, 4, 3, 7])
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(va, vb)


# --------------------------------------------------------------------------------------------
# 10a. kappa = 0 is the plain stencil exactly
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "boundary, k, wv", list(itertools.product(BOUNDARIES, (3, 5), (False, True)))
)
def test_kappa_zero_is_plain_stencil_bitwise(boundary, k, wv):
    rng = np.random.default_rng(24)
    lat = make_lattice(boundary)
    w = rng.normal(0, 0.4, (k, k))
    wvel = rng.normal(0, 0.1, (k, k)) if wv else None
    theta = rng.uniform(0, np.pi, SHAPE)
    with_theta = OscillatorParams(w=w, wv=wvel, kappa=0.0, theta=theta, **SCALARS).resolved(lat)
    plain = OscillatorParams(w=w, wv=wvel, **SCALARS).resolved(lat)
    modulated = OscillatorParams(w=w, wv=wvel, kappa=1.0, theta=theta, **SCALARS).resolved(lat)
    assert with_theta.modulation is None
    y0, v0 = initial_state(rng)
    ya, va, ka = run_kernel(with_theta, y0, v0)
    yb, vb, kb = run_kernel(plain, y0, v0)
    assert ka.fused == kb.fused
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(va, vb)
    # kappa > 0 does change the dynamics (the comparison is not vacuous)
    yc, _, _ = run_kernel(modulated, y0, v0)
    assert rel_err(yc, ya) > 1e-4


def test_kappa_small_approaches_plain_stencil():
    # The modulation exp(kappa (cos 2dtheta - 1)) -> 1 as kappa -> 0: the deviation from the plain
    # stencil is O(kappa) (ratio between kappa = 1e-3 and 1e-6 ~ 1e3).
    rng = np.random.default_rng(25)
    lat = make_lattice("reflecting")
    w = rng.normal(0, 0.4, (3, 3))
    theta = rng.uniform(0, np.pi, SHAPE)
    y0, v0 = initial_state(rng)
    yp, _, _ = run_kernel(OscillatorParams(w=w, **SCALARS).resolved(lat), y0, v0)
    devs = []
    for kappa in (1e-3, 1e-6):
        p = OscillatorParams(w=w, kappa=kappa, theta=theta, **SCALARS).resolved(lat)
        yk, _, _ = run_kernel(p, y0, v0)
        devs.append(rel_err(yk, yp))
    assert 300 < devs[0] / devs[1] < 3000, devs


# --------------------------------------------------------------------------------------------
# 8b. NaN propagation at the kernel level
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("integrator", INTEGRATORS)
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("fused", [True, False])
def test_nan_state_stays_nan(fused, act, integrator):
    # Blow-ups must stay visible: a NaN in y makes the state non-finite after one step, and
    # (through the coupling, tanh included: fast_tanh(NaN) is NaN) reaches exactly the sites the
    # reference marks as NaN.
    rng = np.random.default_rng(26)
    lat = make_lattice("periodic")
    params = SCALARS if fused else site_maps(rng)
    w = rng.normal(0, 0.5, (3, 3))
    p = OscillatorParams(w=w, integrator=integrator, **params, **activation_kwargs(act))
    rp = p.resolved(lat)
    for dtype in (np.float64, np.float32):
        y0, v0 = initial_state(rng)
        y0[1, 3, 4] = np.nan
        y0[2, 0, 0] = np.inf
        yk, vk, ker = run_kernel(rp, y0, v0, nsteps=1, dtype=dtype)
        assert ker.fused == fused
        with np.errstate(invalid="ignore"):
            yr, vr = run_reference(rp, y0, v0, nsteps=1)
        assert np.all(np.isfinite(yk[0])) and np.all(np.isfinite(vk[0]))
        for b in (1, 2):
            assert not np.all(np.isfinite(yk[b])) and not np.all(np.isfinite(vk[b]))
        np.testing.assert_array_equal(np.isnan(yk[1]), np.isnan(yr[1]))
        np.testing.assert_array_equal(np.isnan(vk[1]), np.isnan(vr[1]))
        assert np.isnan(yk[1]).sum() == 9  # the 3x3 neighbourhood of a dense random stencil
