"""Per-member input frames (:class:`wavesim.drives.InputSequence`): forward kernel against the
numpy reference step, adjoint against finite differences and the numpy reverse step.

Tolerances as in ``test_adjoint.py``: float64 throughout; kernel vs reference 1e-12; gradients
vs fourth-order central differences (e = 1e-4) 1e-6 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_adjoint import DT, EPS, MEMBERS, SHAPE, QuadLoss, make_case

from wavesim.drives import InputSequence
from wavesim.kernels import adjoint as ka
from wavesim.kernels.driver import LatticeKernel
from wavesim.learn.gradient import GradientEngine
from wavesim.models.oscillator import reference_step
from wavesim.simulate import Simulator

FRAMES = 4
SPF = 3  # steps per frame
START = 2
T = START + FRAMES * SPF + 5  # a free run after the last frame


def inputs_for(seed=11, shared=False):
    r = np.random.default_rng(seed)
    shape = (FRAMES, *SHAPE) if shared else (MEMBERS, FRAMES, *SHAPE)
    return InputSequence(r.standard_normal(shape), steps_per_frame=SPF, start=START)


def reference_run(lat, params, y0, v0, inp, nsteps):
    rp = params.resolved(lat)
    y, v = y0.copy(), v0.copy()
    vals = np.broadcast_to(inp.values, (MEMBERS, *inp.values.shape[1:]))
    for n in range(nsteps):
        f = int(inp.frame_index([n])[0])
        e = vals[:, f] if f >= 0 else None
        y, v = reference_step(y, v, rp, DT, e=e)
    return y, v


def test_frame_index():
    inp = inputs_for()
    f = inp.frame_index(np.arange(T))
    expected = [-1, -1, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3] + [-1] * 5
    assert f.tolist() == expected
    assert inp.stop == START + FRAMES * SPF


@pytest.mark.parametrize("case", ["fused", "per_site", "reflecting"])
@pytest.mark.parametrize("shared", [False, True])
def test_forward_matches_reference(case, shared):
    kw = {"per_site": False, "kappa": None, "wv": False} if case == "fused" else {}
    if case == "reflecting":
        kw["boundary"] = "reflecting"
    lat, params, y0, v0 = make_case(noise=0.0, exact_tanh=True, **kw)
    inp = inputs_for(shared=shared)
    sim = Simulator(params, lat, DT, members=MEMBERS, dtype=np.float64, check=False, inputs=inp)
    if case == "fused":
        assert not sim.kernel.fused  # inputs switch the fused path off ...
        sim.set_inputs(None)
        assert sim.kernel.fused  # ... and detaching them switches it back on
        sim.set_inputs(inp)
    sim.set_state(y0, v0)
    for n in (1, 4, 2, 7, T - 14):  # calls that split frames
        sim.advance(n)
    ry, rv = reference_run(lat, params, y0, v0, inp, T)
    np.testing.assert_allclose(sim.y, ry, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sim.v, rv, rtol=1e-12, atol=1e-12)
    # and the inputs matter: without them the result differs
    plain = Simulator(params, lat, DT, members=MEMBERS, dtype=np.float64, check=False)
    plain.set_state(y0, v0)
    plain.advance(T)
    assert np.max(np.abs(plain.y - ry)) > 1e-3


@pytest.mark.parametrize("checkpoint", ["auto", 4])
@pytest.mark.parametrize("shared", [False, True])
def test_input_gradient_matches_finite_differences(checkpoint, shared):
    lat, params, y0, v0 = make_case(noise=0.1)
    inp = inputs_for(shared=shared)
    eng = GradientEngine(lat, members=MEMBERS, dtype=np.float64, seed=5, threads=1,
                         checkpoint=checkpoint)  # fmt: skip
    loss = QuadLoss([0, 5, 11, T])
    res = eng.value_and_grad(params, DT, y0, v0, T, loss, wrt=("inputs", "w"), inputs=inp)
    g = res["inputs"]
    assert g.shape == inp.values.shape
    assert res.value == pytest.approx(eng.loss(params, DT, y0, v0, T, loss, inputs=inp), rel=1e-13)
    d = np.random.default_rng(7).standard_normal(g.shape)

    def f(e):
        moved = InputSequence(inp.values + e * d, SPF, START)
        return eng.loss(params, DT, y0, v0, T, loss, inputs=moved)

    fd = (-f(2 * EPS) + 8 * f(EPS) - 8 * f(-EPS) + f(-2 * EPS)) / (12 * EPS)
    assert np.sum(g * d) == pytest.approx(fd, rel=1e-6)
    # frames whose steps all come after the last loss state have no effect
    late = InputSequence(inp.values, SPF, start=T)
    res2 = eng.value_and_grad(params, DT, y0, v0, T, loss, wrt=("inputs",), inputs=late)
    assert np.all(res2["inputs"] == 0)


def test_input_gradient_parallel_members_equal_serial():
    lat, params, y0, v0 = make_case(noise=0.0)
    inp = inputs_for()
    loss = QuadLoss([3, T])
    grads = []
    for threads in (1, 2):
        eng = GradientEngine(lat, members=MEMBERS, dtype=np.float64, threads=threads)
        grads.append(eng.value_and_grad(params, DT, y0, v0, T, loss, wrt=("inputs",),
                                        inputs=inp)["inputs"])  # fmt: skip
    np.testing.assert_array_equal(grads[0], grads[1])


def test_reverse_step_input_adjoint_matches_reference():
    lat, params, y0, v0 = make_case(exact_tanh=True, noise=0.0, kappa=None)
    rp = params.resolved(lat)
    kern = LatticeKernel(rp, DT, np.float64, members=MEMBERS)
    e = np.random.default_rng(4).standard_normal((MEMBERS, 1, *SHAPE))
    kern.set_inputs(InputSequence(e))
    cfg = kern.config(0.0, 1, step0=0)
    acfg = ka.AdjointConfig(False, np.zeros((1, 1, 1)), np.zeros((1, 1, 1)), False, True)
    state = kern.new_state()
    state.set(y0, v0, kern.colmode)
    Y = state.current[0][None].copy()
    V = state.current[1][None].copy()
    r = np.random.default_rng(3)
    ly1, lv1 = r.standard_normal(y0.shape), r.standard_normal(y0.shape)
    ly, lv = ly1.copy(), lv1.copy()
    ginp = np.zeros((MEMBERS, 1, *SHAPE))
    out = (np.zeros((MEMBERS, 9)), np.zeros((MEMBERS, 9)), np.zeros((MEMBERS, 9)),
           np.zeros((MEMBERS, 9)), np.zeros((MEMBERS, 1, 1)), np.zeros((MEMBERS, ka.N_SUMS)),
           np.zeros((MEMBERS, 4, *SHAPE)), ginp)  # fmt: skip
    none = np.zeros((1, MEMBERS, *SHAPE))
    LY, LV = np.zeros_like(Y[0]), np.zeros_like(V[0])
    ka.reverse_serial(Y, V, ly, lv, LY, LV, 1, np.zeros(0, np.int64), none, none, cfg, acfg, out)
    ref = ka.reference_adjoint_step(y0, v0, ly1, lv1, rp, DT, e=e[:, 0])
    np.testing.assert_allclose(ginp[:, 0], ref["u"], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ly, ref["ly"], rtol=1e-12, atol=1e-12)


def test_bad_inputs_are_rejected():
    lat, params, *_ = make_case(noise=0.0)
    with pytest.raises(ValueError, match="inputs.values"):
        InputSequence(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="steps_per_frame"):
        InputSequence(np.zeros((2, *SHAPE)), steps_per_frame=0)
    with pytest.raises(ValueError, match="NaN"):
        InputSequence(np.full((2, *SHAPE), np.nan))
    sim = Simulator(params, lat, DT, members=MEMBERS, dtype=np.float64, check=False)
    with pytest.raises(ValueError, match=r"inputs.values: expected shape \(2, frames, 9, 11\)"):
        sim.set_inputs(InputSequence(np.zeros((3, 2, *SHAPE))))
