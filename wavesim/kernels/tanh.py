"""A fast, vectorizable tanh for the compiled kernels.

``np.tanh`` inside a numba loop calls libm once per element and blocks SIMD vectorization (numba's
SVML path needs an SVML-patched llvmlite, which the pip wheels are not). ``fast_tanh`` is an odd
rational approximation

    tanh(x) ~ x * P(x^2) / Q(x^2),   deg P = deg Q = 4,  |x| clamped to 9,

fitted by ``tools/fit_tanh.py`` (Lawson-reweighted linearised least squares towards minimax). Only
multiplications, additions, one division and two comparisons: LLVM vectorizes it.

Error bound (asserted in ``tests/test_tanh.py`` on a dense grid and random inputs):

- evaluated in float64: ``|fast_tanh(x) - tanh(x)| <= 5e-8`` for all finite x;
- evaluated in float32: ``|fast_tanh(x) - tanh(x)| <= 5e-7`` (a few float32 ulp near +-1).

The exact path (``np.tanh``) stays available for float64 validation (``exact_tanh = true`` in a
scenario).
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

#: Clamp for the argument; 1 - tanh(9) = 3.0e-8.
TANH_CLAMP = 9.0
#: Numerator coefficients P[0..4] (ascending powers of x^2).
TANH_P = (
    9.9999990353790935e-01,
    1.3373472206700016e-01,
    3.4869233963197108e-03,
    2.0478094291450939e-05,
    1.3194147746586893e-08,
)
#: Denominator coefficients Q[0..4] (ascending powers of x^2), Q[0] = 1.
TANH_Q = (
    1.0,
    4.6706768555624056e-01,
    2.5843238051015661e-02,
    3.2719714310645062e-04,
    7.7064598369425141e-07,
)

#: Documented error bounds (absolute), asserted by the tests.
TANH_ERROR_FLOAT64 = 5e-8
TANH_ERROR_FLOAT32 = 5e-7


def tanh_coefficients(dtype) -> tuple:
    """Coefficients ``(clamp, P0..P4, Q0..Q4)`` as scalars of ``dtype`` (Q0 = 1)."""
    t = np.dtype(dtype).type
    return tuple(t(c) for c in (TANH_CLAMP, *TANH_P, *TANH_Q))


def fast_tanh_numpy(x: np.ndarray) -> np.ndarray:
    """Plain-numpy evaluation of the approximation, in ``x``'s floating dtype."""
    x = np.asarray(x)
    lim, p0, p1, p2, p3, p4, q0, q1, q2, q3, q4 = tanh_coefficients(
        x.dtype if x.dtype.kind == "f" else np.float64
    )
    x = np.clip(x, -lim, lim)
    s = x * x
    p = (((p4 * s + p3) * s + p2) * s + p1) * s + p0
    q = (((q4 * s + q3) * s + q2) * s + q1) * s + q0
    return x * p / q


def fast_tanh(x):
    """Rational tanh approximation of a scalar (callable from numba code and from Python).

    Inside numba code the coefficients are compile-time scalars of ``x``'s own type, so a float32
    kernel stays in float32 arithmetic and no store in a loop can alias them.
    """
    return fast_tanh_numpy(x)[()]


def _tanh_impl(dtype):
    lim, p0, p1, p2, p3, p4, q0, q1, q2, q3, q4 = tanh_coefficients(dtype)

    def impl(x):
        x = min(max(x, -lim), lim)
        s = x * x
        p = (((p4 * s + p3) * s + p2) * s + p1) * s + p0
        q = (((q4 * s + q3) * s + q2) * s + q1) * s + q0
        return x * p / q

    return impl


@overload(fast_tanh, inline="always", jit_options={"error_model": "numpy"})
def _fast_tanh_overload(x):
    if x == types.float32:
        return _tanh_impl(np.float32)
    if isinstance(x, types.Float):
        return _tanh_impl(np.float64)
    return None


def fast_tanh_grad_numpy(x: np.ndarray) -> np.ndarray:
    """Derivative of :func:`fast_tanh_numpy` (0 beyond the clamp), in ``x``'s floating dtype.

    The adjoint kernels differentiate the approximation actually used by the forward kernels, so
    gradients agree with finite differences of the forward to rounding, not to the approximation
    error. ``d/dx [x P(s)/Q(s)] = (P + 2s P')/Q - 2s P Q'/Q^2`` with ``s = x^2``.
    """
    x = np.asarray(x)
    lim, p0, p1, p2, p3, p4, q0, q1, q2, q3, q4 = tanh_coefficients(
        x.dtype if x.dtype.kind == "f" else np.float64
    )
    inside = np.abs(x) < lim
    x = np.clip(x, -lim, lim)
    s = x * x
    p = (((p4 * s + p3) * s + p2) * s + p1) * s + p0
    q = (((q4 * s + q3) * s + q2) * s + q1) * s + q0
    dp = ((4 * p4 * s + 3 * p3) * s + 2 * p2) * s + p1
    dq = ((4 * q4 * s + 3 * q3) * s + 2 * q2) * s + q1
    return np.where(inside, (p + 2 * s * dp) / q - 2 * s * p * dq / (q * q), 0 * x)


def fast_tanh_and_grad(x):
    """``(fast_tanh(x), d fast_tanh/dx)`` at a scalar, sharing one evaluation of the polynomials
    (callable from numba code, which the adjoint kernels do, and from Python)."""
    return fast_tanh(x), fast_tanh_grad_numpy(x)[()]


def _tanh_both_impl(dtype):
    lim, p0, p1, p2, p3, p4, q0, q1, q2, q3, q4 = tanh_coefficients(dtype)
    t = np.dtype(dtype).type
    two, three, four, zero = t(2), t(3), t(4), t(0)

    def impl(x):
        xc = min(max(x, -lim), lim)
        s = xc * xc
        p = (((p4 * s + p3) * s + p2) * s + p1) * s + p0
        q = (((q4 * s + q3) * s + q2) * s + q1) * s + q0
        dp = ((four * p4 * s + three * p3) * s + two * p2) * s + p1
        dq = ((four * q4 * s + three * q3) * s + two * q2) * s + q1
        d = (p + two * s * (dp - p * dq / q)) / q
        return xc * p / q, (d if abs(x) < lim else zero)

    return impl


@overload(fast_tanh_and_grad, inline="always", jit_options={"error_model": "numpy"})
def _fast_tanh_and_grad_overload(x):
    if x == types.float32:
        return _tanh_both_impl(np.float32)
    if isinstance(x, types.Float):
        return _tanh_both_impl(np.float64)
    return None
