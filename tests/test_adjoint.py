"""Adjoint kernels and the gradient engine against finite differences and the numpy reference.

Finite differences: fourth-order central differences ``(-f(2e) + 8 f(e) - 8 f(-e) + f(-2e)) / 12e``
with ``e = 1e-4`` (``e = 1e-4`` and a second-order one-sided formula for ``kappa = 0``, which
cannot go negative), along a random direction for arrays, in float64. Truncation is O(e^4) and
rounding about 1e-16 |f| / e, both far below the 1e-6 relative tolerance.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from wavesim.coupling import laplacian_stencil, orientation_similarity
from wavesim.drives import GratingDrive, PlaneWaveDrive, PulseDrive
from wavesim.kernels import adjoint as ka
from wavesim.kernels.driver import LatticeKernel
from wavesim.lattice import Lattice
from wavesim.learn.gradient import GradientEngine, checkpoint_plan
from wavesim.maps import random_orientation_map
from wavesim.models.oscillator import OscillatorParams

EPS = 1e-4
RTOL = 1e-6
SHAPE = (9, 11)
MEMBERS = 2
T = 23
DT = 0.05


class QuadLoss:
    """sum_k <cy_k, y> + |y|^2 / 2 + <cv_k, v>: every state entry matters, gradients known."""

    def __init__(self, steps, members=MEMBERS, shape=SHAPE, seed=1):
        self.steps = np.asarray(steps)
        r = np.random.default_rng(seed)
        self.cy = r.standard_normal((len(steps), members, *shape))
        self.cv = r.standard_normal((len(steps), members, *shape))

    def evaluate(self, k, y, v):
        y = np.asarray(y, float)
        v = np.asarray(v, float)
        value = np.sum(self.cy[k] * y) + 0.5 * np.sum(y**2) + np.sum(self.cv[k] * v)
        return float(value), self.cy[k] + y, self.cv[k]


def make_case(boundary="periodic", integrator="symplectic_euler", activation="tanh", kappa=0.5,
              per_site=True, noise=0.1, wv=True, mask=False, exact_tanh=False):  # fmt: skip
    rng = np.random.default_rng(0)
    m = rng.random(SHAPE) > 0.2 if mask else None
    lat = Lattice(SHAPE, dx=0.1, boundary=boundary, mask=m)
    theta = np.asarray(random_orientation_map(SHAPE, 6.0, seed=2)) if kappa is not None else None
    w = laplacian_stencil(0.05, 0.1) + 0.3 * rng.standard_normal((3, 3))
    params = OscillatorParams(
        w=w,
        wv=0.1 * rng.standard_normal((3, 3)) if wv else None,
        kappa=kappa or 0.0,
        theta=theta,
        omega2=1.0 + 0.2 * rng.random(SHAPE) if per_site else 1.3,
        gamma=0.3 + 0.1 * rng.random(SHAPE) if per_site else 0.4,
        bias=0.1 * rng.standard_normal(SHAPE) if per_site else 0.05,
        gain=0.7,
        noise=noise,
        activation=activation,
        exact_tanh=exact_tanh,
        integrator=integrator,
    )
    y0 = rng.standard_normal((MEMBERS, *SHAPE))
    v0 = rng.standard_normal((MEMBERS, *SHAPE))
    return lat, params, y0, v0


def fd_errors(lat, params, y0, v0, drive=None, checkpoint="auto", names=None):
    eng = GradientEngine(lat, drive=drive, members=MEMBERS, dtype=np.float64, seed=5,
                         checkpoint=checkpoint, threads=1)  # fmt: skip
    loss = QuadLoss([0, 5, 11, T])
    names = names or [
        n for n in ("w", "wv", "kappa", "omega2", "gamma", "bias", "gain", "y0", "v0", "dt")
        if not (n == "wv" and params.wv is None) and not (n == "kappa" and params.theta is None)
        and not (n == "gain" and drive is None)
    ]  # fmt: skip
    res = eng.value_and_grad(params, DT, y0, v0, T, loss, wrt=names)
    assert res.value == pytest.approx(eng.loss(params, DT, y0, v0, T, loss), rel=1e-13)
    errors = {}
    for name in names:
        g = np.asarray(res[name])
        d = np.random.default_rng(7).standard_normal(g.shape) if g.ndim else np.float64(1.0)

        def f(e, name=name, d=d):
            dt, y, v, kw = DT, y0, v0, {}
            if name == "dt":
                dt = DT + e
            elif name == "y0":
                y = y0 + e * d
            elif name == "v0":
                v = v0 + e * d
            else:
                kw[name] = getattr(params, name) + e * d
            return eng.loss(replace(params, **kw), dt, y, v, T, loss)

        if name == "kappa" and params.kappa == 0:
            fd = (-3 * f(0.0) + 4 * f(EPS * 1e-2) - f(2 * EPS * 1e-2)) / (2 * EPS * 1e-2)
        else:
            fd = (-f(2 * EPS) + 8 * f(EPS) - 8 * f(-EPS) + f(-2 * EPS)) / (12 * EPS)
        an = float(np.sum(g * d))
        errors[name] = abs(fd - an) / abs(fd)
    return errors


@pytest.mark.parametrize("boundary", ["periodic", "reflecting", "absorbing"])
@pytest.mark.parametrize("integrator", ["symplectic_euler", "imex"])
@pytest.mark.parametrize("activation", ["tanh", "linear"])
def test_gradients_match_finite_differences(boundary, integrator, activation):
    """Every parameter, kappa != 0, per-site maps, noise, velocity coupling: rel. error < 1e-6."""
    errors = fd_errors(*make_case(boundary, integrator, activation))
    assert max(errors.values()) < RTOL, errors


@pytest.mark.parametrize(
    "case",
    [
        dict(per_site=False),  # scalar omega2, gamma, bias
        dict(per_site=False, kappa=None, noise=0.0, wv=False),  # the plain fused path
        dict(mask=True, boundary="reflecting"),
        dict(kappa=0.0),  # kappa learnable from 0
        dict(exact_tanh=True, integrator="imex"),
    ],
    ids=["scalars", "fused", "mask", "kappa0", "exact-tanh"],
)
def test_gradients_other_configurations(case):
    errors = fd_errors(*make_case(**case))
    assert max(errors.values()) < RTOL, errors


@pytest.mark.parametrize(
    "drive",
    [
        PulseDrive(position=(0.5, 0.4), width=0.2, onset=0.22, duration=0.5),
        PlaneWaveDrive(wavelength=0.6, speed=0.3, direction=30),
        GratingDrive(angular_speed=20.0, amplitude=0.8),
    ],
    ids=["pulse", "plane-wave", "grating"],
)
def test_gradients_with_drives(drive):
    """Gain, and dt through the drive's time dependence (switching times off the step grid)."""
    errors = fd_errors(*make_case(), drive=drive)
    assert max(errors.values()) < RTOL, errors


def test_checkpointed_equals_full_trajectory():
    """Bit-identical arithmetic for every segment length (float64, <= 1e-12 relative)."""
    lat, params, y0, v0 = make_case(boundary="absorbing", integrator="imex")
    drive = GratingDrive(angular_speed=20.0, amplitude=0.8)
    loss = QuadLoss([0, 5, 11, T])
    results = []
    for checkpoint in (None, 1, 4, 7):
        eng = GradientEngine(lat, drive=drive, members=MEMBERS, dtype=np.float64, seed=5,
                             checkpoint=checkpoint, threads=1)  # fmt: skip
        results.append(eng.value_and_grad(params, DT, y0, v0, T, loss))
    assert [r.segment for r in results] == [T, 1, 4, 7]
    ref = results[0]
    for r in results[1:]:
        assert r.value == ref.value
        for name, g in ref.grads.items():
            np.testing.assert_allclose(r[name], g, rtol=1e-12, atol=0, err_msg=name)


def test_parallel_members_equal_serial():
    lat, params, y0, v0 = make_case()
    loss = QuadLoss([0, 5, 11, T])
    out = []
    for threads in (1, 2):
        eng = GradientEngine(lat, members=MEMBERS, dtype=np.float64, seed=5, threads=threads)
        out.append(eng.value_and_grad(params, DT, y0, v0, T, loss))
    for name, g in out[0].grads.items():
        np.testing.assert_array_equal(out[1][name], g, err_msg=name)


@pytest.mark.parametrize("boundary", ["periodic", "reflecting"])
def test_reverse_step_matches_numpy_reference(boundary):
    """One compiled reverse step against :func:`reference_adjoint_step` (float64, 1e-12)."""
    lat, params, y0, v0 = make_case(boundary=boundary, exact_tanh=True, noise=0.0)
    rp = params.resolved(lat)
    kern = LatticeKernel(rp, DT, np.float64, members=MEMBERS)
    cfg = kern.config(0.0, 1)
    c = orientation_similarity(params.theta, 3, lat)
    mod = np.exp(params.kappa * c)
    dmod = c * mod
    acfg = ka.AdjointConfig(True, mod, dmod, True, True)
    state = kern.new_state()
    state.set(y0, v0, kern.colmode)
    Y = state.current[0][None].copy()
    V = state.current[1][None].copy()
    r = np.random.default_rng(3)
    ly1 = r.standard_normal(y0.shape)
    lv1 = r.standard_normal(y0.shape)
    ly, lv = ly1.copy(), lv1.copy()
    LY = np.zeros_like(Y[0])
    LV = np.zeros_like(V[0])
    out = (np.zeros((MEMBERS, 9)), np.zeros((MEMBERS, 9)), np.zeros((MEMBERS, 9)),
           np.zeros((MEMBERS, 9)), np.zeros((MEMBERS, 1, 1)), np.zeros((MEMBERS, ka.N_SUMS)),
           np.zeros((MEMBERS, 4, *SHAPE)), np.zeros((1, 1, 1, 1)))  # fmt: skip
    none = np.zeros((1, MEMBERS, *SHAPE))
    ka.reverse_serial(Y, V, ly, lv, LY, LV, 1, np.zeros(0, np.int64), none, none, cfg, acfg, out)
    ref = ka.reference_adjoint_step(y0, v0, ly1, lv1, rp, DT, modulation=mod, dmod=dmod)
    np.testing.assert_allclose(ly, ref["ly"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lv, ref["lv"], rtol=1e-12, atol=1e-12)
    gw, gk, gwv, gkv, _, sums, site, _ = out
    np.testing.assert_allclose(gw.sum(0).reshape(3, 3), ref["w"], rtol=1e-11)
    np.testing.assert_allclose(gk.sum(0).reshape(3, 3), ref["kw"], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(gwv.sum(0).reshape(3, 3), ref["wv"], rtol=1e-11)
    np.testing.assert_allclose(gkv.sum(0).reshape(3, 3), ref["kwv"], rtol=1e-11, atol=1e-13)
    for j, name in enumerate(("alpha", "beta", "delta", "bias")):
        np.testing.assert_allclose(site[:, j].sum(0), ref[name], rtol=1e-11, atol=1e-13)
    assert sums[:, ka.S_DT].sum() == pytest.approx(ref["dt_direct"], rel=1e-11)
    # the numpy reference itself against finite differences of reference_step (linearity in ly)
    from wavesim.models.oscillator import reference_step

    d = r.standard_normal(y0.shape)

    def f(e):
        yn, vn = reference_step(y0 + e * d, v0, rp, DT)
        return np.sum(ly1 * yn) + np.sum(lv1 * vn)

    fd = (-f(2 * EPS) + 8 * f(EPS) - 8 * f(-EPS) + f(-2 * EPS)) / (12 * EPS)
    assert np.sum(ref["ly"] * d) == pytest.approx(fd, rel=1e-8)


def test_checkpoint_plan_memory_bound():
    """256^2 x 10,000 steps: the sqrt(T) plan needs well under 1 GB (float32 and float64)."""
    for itemsize in (4, 8):
        state = 2 * 258 * 258 * itemsize
        c, peak = checkpoint_plan(10_000, state, "auto", budget=2**30)
        assert c == 100
        assert peak == (101 + 100) * state
        assert peak < 2**30
    # the whole trajectory when it fits; an error naming the budget when nothing fits
    assert checkpoint_plan(100, 1000, "auto")[0] == 100
    with pytest.raises(MemoryError, match="budget"):
        checkpoint_plan(10_000, 10**8, "auto", budget=2**30)


def test_bad_wrt_names_are_rejected():
    lat, params, y0, v0 = make_case()
    eng = GradientEngine(lat, members=MEMBERS, dtype=np.float64)
    with pytest.raises(ValueError, match="unknown parameter"):
        eng.value_and_grad(params, DT, y0, v0, T, QuadLoss([T]), wrt=["omega"])
    with pytest.raises(ValueError, match="loss.steps"):
        eng.value_and_grad(params, DT, y0, v0, T, QuadLoss([T + 1]))


def test_dt_gradient_with_a_pulse_switching_on_a_step():
    """A pulse switched on exactly at a step time (t_5 = 0.25 ms): the derivative does not exist
    from the left; the engine holds switching times fixed in steps and matches the right-sided
    difference (second order, e = 1e-6) to 1e-6 instead of blowing up."""
    lat, params, y0, v0 = make_case(noise=0.0)
    drive = PulseDrive(position=(0.5, 0.4), width=0.2, onset=0.25, duration=0.5)
    eng = GradientEngine(lat, drive=drive, members=MEMBERS, dtype=np.float64, threads=1)
    loss = QuadLoss([0, 5, 11, T])
    g = eng.value_and_grad(params, DT, y0, v0, T, loss, wrt=["dt"])["dt"]

    def f(e):
        return eng.loss(params, DT + e, y0, v0, T, loss)

    e = 1e-6
    right = (-3 * f(0.0) + 4 * f(e) - f(2 * e)) / (2 * e)
    assert g == pytest.approx(right, rel=1e-6)
