"""ParameterSpace, Param, StencilParam: round trips, constraints, pullback vs finite differences.

Finite differences: central, step H = 1e-6 on every entry of x; the pullback must agree to a
relative error (norm of the difference over the norm of the finite-difference gradient) < 1e-7.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from wavesim.coupling import laplacian_stencil
from wavesim.learn.check import gradient_check
from wavesim.learn.params import (
    PARAMETER_NAMES,
    Param,
    ParameterSpace,
    StencilParam,
    stencil_basis,
)

H = 1e-6
RTOL = 1e-7
SHAPE = (3, 4)


def make_space() -> ParameterSpace:
    r = np.random.default_rng(0)
    return ParameterSpace(
        {
            "w": StencilParam(laplacian_stencil(0.2, 0.05), symmetry="isotropic", zero_sum=True),
            "wv": StencilParam(0.1 * r.standard_normal((3, 3))),
            "kappa": Param(0.4, learnable=False),
            "omega2": Param(1.3, transform="log"),
            "gamma": Param(0.5, transform="softplus", lower=0.1, per_site=True, shape=SHAPE),
            "bias": Param(0.2 * r.standard_normal(SHAPE), transform="bounds", lower=-1, upper=1),
            "gain": Param(0.7),
            "y0": Param(r.standard_normal((2, *SHAPE))),
            "dt": Param(0.05, transform="softplus", lower=0.01),
        }
    )


def test_round_trip_x0_unpack_gives_initial_values():
    space = make_space()
    vals = space.unpack(space.x0)
    np.testing.assert_allclose(vals["w"], laplacian_stencil(0.2, 0.05), rtol=1e-15, atol=1e-12)
    assert vals["kappa"] == 0.4 and isinstance(vals["kappa"], float)
    assert vals["omega2"] == pytest.approx(1.3, rel=1e-15)
    np.testing.assert_allclose(vals["gamma"], np.full(SHAPE, 0.5), rtol=1e-14)
    np.testing.assert_array_equal(vals["bias"], space["bias"].value)
    assert vals["gain"] == 0.7
    assert vals["dt"] == pytest.approx(0.05, rel=1e-14)
    assert set(vals) == {"w", "wv", "kappa", "omega2", "gamma", "bias", "gain", "y0", "dt"}
    # layout: 2 stencil coefficients + 9 + 1 + 12 + 12 + 1 + 24 + 1, kappa frozen
    assert space.size == 2 + 9 + 1 + 12 + 12 + 1 + 24 + 1 == len(space.labels())
    assert space.names_learnable == ["w", "wv", "omega2", "gamma", "bias", "gain", "y0", "dt"]
    assert space.slices["omega2"] == slice(11, 12)
    assert space.labels()[:3] == ["w.c[0]", "w.c[1]", "wv[0, 0]"]
    assert "gamma[2, 3]" in space.labels()
    # update() makes x the current values
    x = space.x0 + 0.01
    space.update(x)
    np.testing.assert_allclose(space.x0, x, rtol=1e-13, atol=1e-15)


def _objective(space, weights):
    """A smooth scalar function of the values (sum of r * sin(value)) and its value-gradients."""

    def f(x):
        vals = space.unpack(x)
        return sum(float(np.sum(weights[n] * np.sin(vals[n]))) for n in weights)

    def grads(x):
        vals = space.unpack(x)
        return {n: weights[n] * np.cos(vals[n]) for n in weights}

    return f, grads


def test_pullback_matches_finite_differences():
    space = make_space()
    r = np.random.default_rng(1)
    weights = {n: r.standard_normal(np.shape(v)) for n, v in space.values.items()}
    f, grads = _objective(space, weights)
    x = space.x0 + 0.3 * r.standard_normal(space.size)
    x[space.slices["bias"]] = np.clip(x[space.slices["bias"]], -1, 1)
    g = space.pullback(x, grads(x))
    ref = np.zeros_like(x)
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp[i] += H
        xm[i] -= H
        ref[i] = (f(xp) - f(xm)) / (2 * H)
    assert np.linalg.norm(g - ref) / np.linalg.norm(ref) < RTOL
    # the same through gradient_check, entry by entry with the space's labels
    res = gradient_check(lambda x: (f(x), space.pullback(x, grads(x))), x, names=space.labels())
    res.assert_ok(1e-6)
    # frozen parameters contribute nothing and need no gradient
    space.freeze("y0", "wv")
    x = space.x0
    g = space.pullback(x, {n: v for n, v in grads(x).items() if n not in ("y0", "wv")})
    assert g.shape == (space.size,) and "y0" not in space.slices
    np.testing.assert_array_equal(space.unpack(x)["y0"], space["y0"].value)


def test_scalar_parameter_with_per_site_gradient_is_summed():
    space = ParameterSpace({"bias": Param(0.3, transform="softplus")})
    x = space.x0
    gmap = np.arange(12.0).reshape(SHAPE)
    g = space.pullback(x, {"bias": gmap})
    sig = 1 / (1 + np.exp(-x[0]))  # d softplus / dx
    assert g[0] == pytest.approx(gmap.sum() * sig, rel=1e-14)


@pytest.mark.parametrize(
    "k, symmetry, zero_sum, n_free",
    [
        (3, "none", False, 9),
        (3, "none", True, 8),
        (3, "mirror", False, 4),
        (3, "isotropic", False, 3),
        (3, "isotropic", True, 2),
        (5, "mirror", False, 9),
        (5, "isotropic", False, 6),
        (5, "isotropic", True, 5),
    ],
)
def test_stencil_constraints_hold_for_any_x(k, symmetry, zero_sum, n_free):
    a = stencil_basis(k, symmetry, zero_sum)
    assert a.shape == (k * k, n_free)
    space = ParameterSpace(
        {"w": StencilParam(np.zeros((k, k)), symmetry=symmetry, zero_sum=zero_sum)}
    )
    r = np.random.default_rng(k + n_free)
    h = k // 2
    oy, ox = np.mgrid[-h : h + 1, -h : h + 1]
    d2 = oy**2 + ox**2
    for _ in range(5):
        w = space.unpack(1e3 * r.standard_normal(space.size))["w"]
        if symmetry in ("mirror", "isotropic"):
            np.testing.assert_array_equal(w, w[::-1, :])  # y -> -y
            np.testing.assert_array_equal(w, w[:, ::-1])  # x -> -x
        if symmetry == "isotropic":
            for d in np.unique(d2):
                assert np.all(w[d2 == d] == w[d2 == d][0])
        if zero_sum:
            assert abs(w.sum()) <= 1e-13 * np.abs(w).max()  # exact up to rounding of the sum
        assert np.linalg.matrix_rank(a) == n_free  # every free coefficient changes W


def test_stencil_projection_warns_and_projects():
    w0 = np.array([[0.0, 1.0, 0.0], [1.2, -4.0, 1.0], [0.0, 1.0, 0.0]])  # not isotropic
    with pytest.warns(UserWarning, match=r"violates the constraints .* by up to 0\.15"):
        p = StencilParam(w0, symmetry="isotropic")
    np.testing.assert_allclose(p.value[1], [1.05, -4.0, 1.05], rtol=1e-14)  # class mean
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        StencilParam(laplacian_stencil(1.0, 1.0), symmetry="isotropic", zero_sum=True)
    with pytest.raises(ValueError, match="w0: expected a \\(k, k\\) array with k odd"):
        StencilParam(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="symmetry: expected one of"):
        StencilParam(np.zeros((3, 3)), symmetry="radial")


def test_softplus_and_log_positivity_and_bounds():
    p = Param(0.2, transform="softplus", lower=0.05)
    x = np.linspace(-30, 30, 601)
    vals = np.array([p.from_x(xi) for xi in x])
    assert np.all(vals > 0.05) and np.all(np.diff(vals) > 0)
    assert p.from_x(np.array(-800.0)) >= 0.05  # underflow: equals lower, never below
    assert float(p.from_x(p.to_x())) == pytest.approx(0.2, rel=1e-15)
    q = Param(2.0, transform="log")
    assert np.all(np.array([q.from_x(xi) for xi in x]) > 0)
    space = ParameterSpace(
        {
            "omega2": Param(1.0, transform="bounds", lower=0.5),
            "gamma": Param(
                0.3, transform="bounds", lower=0.0, upper=2.0, per_site=True, shape=SHAPE
            ),
            "gain": Param(1.0),
        }
    )
    b = space.bounds
    assert b[0] == (0.5, None) and b[1:13] == [(0.0, 2.0)] * 12 and b[13] == (None, None)


def test_describe_freeze_and_errors():
    space = make_space()
    table = space.describe()
    for word in (
        "gamma",
        "softplus(lower=0.1)",
        "stencil(isotropic, zero_sum)",
        "frozen",
        "(3, 4)",
    ):
        assert word in table
    n = space.size
    space.freeze("gamma")
    assert space.size == n - 12 and "gamma" not in space.names_learnable
    space.unfreeze("gamma", "kappa")
    assert space.size == n + 1 and space.names_learnable[-1] == "dt"
    with pytest.raises(ValueError, match="unknown parameter name 'sigma'; known names: w, wv"):
        space.freeze("sigma")
    with pytest.raises(ValueError, match="unknown parameter name 'speed'"):
        ParameterSpace({"speed": Param(1.0)})
    assert "speed" not in PARAMETER_NAMES
    with pytest.raises(TypeError, match=r"ParameterSpace\['gain'\]: expected a Param"):
        ParameterSpace({"gain": 1.0})
    with pytest.raises(ValueError, match=r"\['kappa'\]: expected a scalar"):
        ParameterSpace({"kappa": Param(np.ones(3))})
    with pytest.raises(ValueError, match=r"\['gamma'\]: a StencilParam is only for 'w' or 'wv'"):
        ParameterSpace({"gamma": StencilParam(np.ones((3, 3)))})
    with pytest.raises(ValueError, match=r"\['y0'\]: expected \(members, ny, nx\)"):
        ParameterSpace({"y0": Param(np.zeros(SHAPE))})
    with pytest.raises(ValueError, match=r"\['bias'\]: lattice shape \(4, 4\) differs"):
        ParameterSpace({"gamma": Param(np.ones(SHAPE)), "bias": Param(np.ones((4, 4)))})
    with pytest.raises(ValueError, match=r"\['gamma'\]: expected values >= 0"):
        ParameterSpace({"gamma": Param(-0.1)})
    with pytest.raises(ValueError, match="value must be > lower = 0"):
        Param(0.0, transform="softplus")
    with pytest.raises(ValueError, match="expected inside the bounds"):
        Param(3.0, transform="bounds", upper=2.0)
    with pytest.raises(ValueError, match="transform: expected one of"):
        Param(1.0, transform="sigmoid")
    with pytest.raises(ValueError, match="per_site=True with a scalar value needs shape"):
        Param(1.0, per_site=True)
    x = space.x0
    with pytest.raises(ValueError, match=r"x: expected shape \(\d+,\)"):
        space.unpack(x[:-1])
    grads = {k: np.zeros(np.shape(v)) for k, v in space.values.items()}
    del grads["gamma"]
    with pytest.raises(ValueError, match="grads: no gradient for the learnable parameter 'gamma'"):
        space.pullback(x, grads)
    grads["gamma"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"grads\['gamma'\]: expected shape \(3, 4\)"):
        space.pullback(x, grads)
