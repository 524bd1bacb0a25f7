"""Optimisers (Adam, L-BFGS-B) and the finite-difference gradient check of wavesim.learn."""

from __future__ import annotations

import numpy as np
import pytest

from wavesim.learn.check import gradient_check
from wavesim.learn.optim import AdamState, adam, lbfgsb, make_schedule


def quadratic(n=5, seed=0):
    r = np.random.default_rng(seed)
    q = r.standard_normal((n, n))
    a = q @ q.T + np.eye(n)  # SPD, condition number ~ 10-100
    xs = r.standard_normal(n)

    def f(x):
        d = x - xs
        return 0.5 * d @ a @ d, a @ d

    return f, xs


def rosenbrock(x):
    f = np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    g = np.zeros_like(x)
    g[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return f, g


def bumpy(x):
    """Non-quadratic, to make resume/bit-equality tests meaningful."""
    return float(np.sum(np.cos(3 * x) + x**2)), -3 * np.sin(3 * x) + 2 * x


# ----------------------------------------------------------------------------------------------
# Adam
# ----------------------------------------------------------------------------------------------
def test_adam_reaches_quadratic_minimum():
    f, xs = quadratic()
    res = adam(f, np.zeros(5), lr=0.05, steps=3000)
    assert np.max(np.abs(res.x - xs)) < 1e-6
    assert res.success and res.nit == 3000 and res.nfev == 3000 and len(res.history) == 3000
    assert res.fun == res.history.min() and res.fun < 1e-12
    np.testing.assert_array_equal(res.jac, f(res.x)[1])


def test_adam_schedule_factors_and_their_use():
    cos = make_schedule("cosine", 100)
    assert cos(0) == 1.0 and cos(50) == pytest.approx(0.5, abs=1e-15) and cos(100) == 0.0
    assert cos(150) == 0.0
    assert make_schedule(("cosine", 10, 0.1))(10) == pytest.approx(0.1, rel=1e-15)
    assert make_schedule(("exponential", 0.9))(3) == pytest.approx(0.729, rel=1e-15)
    step = make_schedule(("step", 10, 0.5))
    assert (step(9), step(10), step(25)) == (1.0, 0.5, 0.25)
    assert make_schedule(None)(7) == 1.0 and make_schedule(lambda i: 2.0**-i)(3) == 0.125
    for bad in ("exponential", ("step", 0, 0.5), "linear", ("cosine",)):
        with pytest.raises(ValueError, match="schedule"):
            make_schedule(bad)
    # a linear function has a constant gradient g, so Adam's m_hat/sqrt(v_hat) is g/(|g| + eps)
    # exactly and step i moves x by lr * factor(i) * g/(|g| + eps)
    g = np.array([2.0, -0.5])
    xs = []
    adam(
        lambda x: (float(g @ x), g.copy()),
        np.zeros(2),
        lr=0.1,
        steps=6,
        schedule=("exponential", 0.5),
        callback=lambda i, x, f, gr: xs.append(x),
    )
    steps = -np.diff(np.array(xs), axis=0)
    want = 0.1 * 0.5 ** np.arange(5)[:, None] * g / (np.abs(g) + 1e-8)
    np.testing.assert_allclose(steps, want, rtol=1e-12)


def test_adam_clip_norm_bounds_the_gradient_entering_the_moments():
    f, _ = quadratic(seed=3)
    clip, b1 = 0.5, 0.9
    x0 = np.full(5, 10.0)  # far away: |g| >> clip for many iterations
    res = adam(f, x0, lr=0.1, steps=1, clip_norm=clip, betas=(b1, 0.999))
    g0 = f(x0)[1]
    # after one step m = (1 - b1) * g * clip/|g|: its norm is exactly (1 - b1) * clip
    np.testing.assert_allclose(res.state.m, (1 - b1) * g0 * clip / np.linalg.norm(g0), rtol=1e-15)
    assert res.grad_norms[0] == pytest.approx(np.linalg.norm(g0), rel=1e-15)  # reported raw
    # every later step: the clipped gradient (m_new - b1 m_old)/(1 - b1) has norm <= clip,
    # = clip whenever the raw gradient is larger
    state, clipped = res.state, 0
    for _ in range(40):
        m_old, x = state.m.copy(), state.x.copy()
        res = adam(f, None, lr=0.1, steps=1, clip_norm=clip, betas=(b1, 0.999), state=state)
        state = res.state
        gc = (state.m - b1 * m_old) / (1 - b1)
        graw = f(x)[1]
        if np.linalg.norm(graw) > clip:
            assert np.linalg.norm(gc) == pytest.approx(clip, rel=1e-12)
            clipped += 1
        else:
            np.testing.assert_allclose(gc, graw, rtol=1e-10)
    assert clipped > 10
    # without clipping the moments see the raw gradient
    res = adam(f, x0, lr=0.1, steps=1, betas=(b1, 0.999))
    np.testing.assert_allclose(res.state.m, (1 - b1) * g0, rtol=1e-15)


def test_adam_resume_is_bit_for_bit():
    kw = dict(lr=0.05, schedule=("cosine", 100, 0.1), clip_norm=3.0, bounds=[(-1.0, 2.0)] * 6)
    x0 = np.linspace(-1, 2, 6)
    full = adam(bumpy, x0, steps=100, **kw)
    half = adam(bumpy, x0, steps=50, **kw)
    assert half.state.iteration == 50
    rest = adam(bumpy, None, steps=50, state=half.state, **kw)
    for a, b in (
        (full.state.x, rest.state.x),
        (full.state.m, rest.state.m),
        (full.state.v, rest.state.v),
        (full.x, rest.x),
        (full.history, rest.history),
        (full.grad_norms, rest.grad_norms),
    ):
        np.testing.assert_array_equal(a, b)
    assert full.fun == rest.fun and rest.nit == 100 and rest.nfev == 50
    # the state handed back is not modified by resuming from it
    again = adam(bumpy, half.state.x, steps=50, state=half.state, **kw)
    np.testing.assert_array_equal(again.state.x, full.state.x)
    with pytest.raises(ValueError, match="x0 differs from state.x"):
        adam(bumpy, half.x + 1, steps=1, state=half.state, **kw)
    with pytest.raises(TypeError, match="state: expected an AdamState"):
        adam(bumpy, None, steps=1, state={"x": x0})
    assert isinstance(half.state, AdamState)


def test_adam_callback_stop_bounds_and_non_finite():
    seen = []

    def cb(i, x, f, g):
        seen.append((i, f))
        return i == 9

    res = adam(bumpy, np.ones(3), lr=0.05, steps=100, callback=cb)
    assert res.stopped_by_callback and res.nit == 10 and len(res.history) == 10
    assert [i for i, _ in seen] == list(range(10))
    assert [f for _, f in seen] == list(res.history)
    # stopping and resuming gives the uninterrupted run
    rest = adam(bumpy, None, lr=0.05, steps=20, state=res.state)
    full = adam(bumpy, np.ones(3), lr=0.05, steps=30)
    np.testing.assert_array_equal(rest.state.x, full.state.x)
    # bounds: the minimum (x = 3) lies outside the box, Adam stays inside and ends on the bound
    f = lambda x: (float(np.sum((x - 3) ** 2)), 2 * (x - 3))  # noqa: E731
    inside = []
    res = adam(
        f,
        np.zeros(2),
        lr=0.1,
        steps=200,
        bounds=[(-1, 1), (None, 2.5)],
        callback=lambda i, x, fv, g: inside.append(bool(x[0] <= 1 and x[1] <= 2.5)),
    )
    assert all(inside) and np.array_equal(res.x, [1.0, 2.5])
    with pytest.raises(ValueError, match=r"x0\[1\] = 3.0 is outside its bounds"):
        adam(f, np.array([0.0, 3.0]), steps=1, bounds=[(-1, 1), (None, 2.5)])
    with pytest.raises(ValueError, match="bounds: expected 2"):
        adam(f, np.zeros(2), steps=1, bounds=[(-1, 1)])
    # a non-finite value stops the run and keeps the best point
    calls = []

    def blows_up(x):
        calls.append(1)
        return (np.nan, x) if len(calls) == 4 else bumpy(x)

    res = adam(blows_up, np.ones(2), lr=0.01, steps=10)
    assert not res.success and "non-finite" in res.message and res.nit == 3
    assert res.fun == res.history.min() and len(res.history) == 3


# ----------------------------------------------------------------------------------------------
# L-BFGS-B
# ----------------------------------------------------------------------------------------------
def test_lbfgsb_rosenbrock_bounds_and_callback():
    x0 = np.array([-1.2, 1.0, -0.5, 0.8])
    seen = []
    res = lbfgsb(rosenbrock, x0, ftol=1e-15, gtol=1e-10, callback=lambda i, x, f, g: seen.append(i))
    assert res.success and np.max(np.abs(res.x - 1)) < 1e-6
    assert len(res.history) == res.nit + 1 and res.history[0] == rosenbrock(x0)[0]
    assert seen == list(range(res.nit + 1))
    assert np.all(np.diff(res.history) <= 0)  # accepted iterates decrease
    # a box that excludes the minimum: the result sits on the bound x[0] <= 0.5
    res = lbfgsb(rosenbrock, np.zeros(2), bounds=[(None, 0.5), (None, None)], gtol=1e-10)
    assert res.x[0] == 0.5 and res.x[1] == pytest.approx(0.25, abs=1e-6)
    # the callback stops the run; the best point so far comes back
    res = lbfgsb(rosenbrock, x0, callback=lambda i, x, f, g: i == 3)
    assert res.stopped_by_callback and res.nit == 3 and len(res.history) == 4
    assert res.fun <= res.history.min() and res.fun == rosenbrock(res.x)[0]
    with pytest.raises(ValueError, match=r"x0\[0\] = -1.2 is outside its bounds"):
        lbfgsb(rosenbrock, x0, bounds=[(0, 1)] * 4)


# ----------------------------------------------------------------------------------------------
# gradient_check
# ----------------------------------------------------------------------------------------------
def smooth(x):
    return float(np.sum(np.sin(x)) + x[0] * x[1] ** 2), np.cos(x) + np.r_[
        x[1] ** 2, 2 * x[0] * x[1], np.zeros(x.size - 2)
    ]


def test_gradient_check_coordinates_passes_and_names_a_wrong_entry():
    x = np.linspace(-1, 1, 7)
    res = gradient_check(smooth, x, names=[f"p{i}" for i in range(7)])
    assert res.mode == "coordinates" and res.max_rel_error < 1e-8
    res.assert_ok(1e-7)
    assert "max relative error" in str(res) and "p6" in str(res)

    def wrong(x):
        f, g = smooth(x)
        g[4] *= 1.001
        return f, g

    bad = gradient_check(wrong, x, names=[f"p{i}" for i in range(7)])
    assert bad.worst()[0] == "p4" and bad.worst()[1] == pytest.approx(1e-3, rel=1e-2)
    with pytest.raises(AssertionError, match="p4: analytic .* relative error"):
        bad.assert_ok(1e-6)


def test_gradient_check_directions_per_block():
    n = 300
    x = np.random.default_rng(0).standard_normal(n)
    blocks = {"gamma": slice(0, 100), "bias": slice(100, 250), "y0": slice(250, 300)}
    res = gradient_check(smooth, x, names=blocks, n_directions=3, seed=1)
    assert res.mode == "directions" and len(res.labels) == 9 and res.max_rel_error < 1e-7

    def wrong(x):
        f, g = smooth(x)
        g[260:270] = 0.0  # a broken part of y0's gradient
        return f, g

    bad = gradient_check(wrong, x, names=blocks, n_directions=3, seed=1)
    assert bad.worst()[0].startswith("y0: direction")
    assert bad.rel_error[:6].max() < 1e-7  # gamma and bias still pass
    with pytest.raises(AssertionError, match="y0: direction"):
        bad.assert_ok(1e-5)
    with pytest.raises(ValueError, match="names: expected 300 labels"):
        gradient_check(smooth, x, names=["a", "b"])


def test_gradient_check_uses_value_for_the_differences():
    """With ``value=``, the gradient is evaluated once and the finite differences use values."""

    calls = {"fun": 0, "value": 0}

    def fun(x):
        calls["fun"] += 1
        return float(np.sum(np.sin(x))), np.cos(x)

    def value(x):
        calls["value"] += 1
        return float(np.sum(np.sin(x)))

    res = gradient_check(fun, np.linspace(0, 1, 5), value=value)
    res.assert_ok(1e-8)
    assert calls == {"fun": 1, "value": 10}
