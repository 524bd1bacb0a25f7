"""Optimisers driving ``fun(x) -> (value, grad)``: Adam (resumable) and L-BFGS-B (scipy).

Both take the same objective — a function of a flat float64 vector returning the loss and its
gradient, e.g. the adjoint gradient driver composed with
:meth:`wavesim.learn.params.ParameterSpace.pullback` — the same ``bounds`` (a list of
``(lower, upper)`` per entry, None = unbounded, as :attr:`ParameterSpace.bounds` gives) and the
same callback convention::

    callback(iteration, x, value, grad) -> bool | None     # True stops the optimisation

``x``, ``value`` and ``grad`` are an evaluated point, its loss and its (unclipped) gradient. Both
return an :class:`OptimResult` whose ``x`` is the best point evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, minimize

__all__ = ["AdamState", "OptimResult", "adam", "lbfgsb", "make_schedule"]


@dataclass
class AdamState:
    """Everything Adam needs to continue exactly where it stopped.

    Attributes
    ----------
    iteration : int
        Number of updates done (the next iteration's number).
    x : array
        The next point to evaluate (after the last update).
    m, v : arrays
        First and second moment estimates (before bias correction).
    best_x, best_fun, best_grad : array, float, array
        Best point evaluated so far, its value and gradient.
    history, grad_norms : lists of float
        Loss and gradient norm (before clipping) of every evaluated iteration.
    """

    iteration: int
    x: np.ndarray
    m: np.ndarray
    v: np.ndarray
    best_x: np.ndarray
    best_fun: float
    history: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    best_grad: np.ndarray | None = None

    def copy(self) -> AdamState:
        return AdamState(
            self.iteration,
            self.x.copy(),
            self.m.copy(),
            self.v.copy(),
            self.best_x.copy(),
            self.best_fun,
            list(self.history),
            list(self.grad_norms),
            None if self.best_grad is None else self.best_grad.copy(),
        )


@dataclass
class OptimResult:
    """Result of :func:`adam` or :func:`lbfgsb`.

    Attributes
    ----------
    x : array
        The best point evaluated (lowest value).
    fun : float
        Its value.
    jac : array or None
        The gradient at ``x``.
    nit : int
        Iterations done (Adam: updates, over all resumed calls; L-BFGS-B: scipy's iterations).
    nfev : int
        Objective evaluations in this call.
    history : array
        Loss per iteration (Adam: at every evaluated iterate; L-BFGS-B: at ``x0`` and after every
        iteration).
    grad_norms : array
        Euclidean norm of the gradient at the same points (Adam: before clipping).
    success : bool
        False when the objective returned a non-finite value/gradient or scipy reported failure.
    message : str
    stopped_by_callback : bool
    state : AdamState or None
        Pass it back to :func:`adam` (``state=result.state``) to resume exactly.
    """

    x: np.ndarray
    fun: float
    jac: np.ndarray | None
    nit: int
    nfev: int
    history: np.ndarray
    grad_norms: np.ndarray
    success: bool
    message: str
    stopped_by_callback: bool = False
    state: AdamState | None = None

    def __repr__(self) -> str:
        return (
            f"OptimResult(fun={self.fun:.6g}, nit={self.nit}, nfev={self.nfev}, "
            f"success={self.success}, message={self.message!r})"
        )


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _parse_bounds(bounds, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    if bounds is None:
        return None
    if isinstance(bounds, Bounds):
        lo = np.broadcast_to(np.asarray(bounds.lb, dtype=float), (n,)).copy()
        hi = np.broadcast_to(np.asarray(bounds.ub, dtype=float), (n,)).copy()
    else:
        pairs = list(bounds)
        if len(pairs) != n:
            raise ValueError(
                f"bounds: expected {n} (lower, upper) pairs (one per entry of x), got {len(pairs)}"
            )
        lo, hi = np.empty(n), np.empty(n)
        for i, pair in enumerate(pairs):
            try:
                a, b = pair
            except (TypeError, ValueError):
                raise ValueError(
                    f"bounds[{i}]: expected a (lower, upper) pair, got {pair!r}"
                ) from None
            lo[i] = -np.inf if a is None else float(a)
            hi[i] = np.inf if b is None else float(b)
    bad = np.isnan(lo) | np.isnan(hi) | (lo > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"bounds[{i}]: expected lower <= upper, got ({lo[i]}, {hi[i]})")
    return lo, hi


def _check_inside(x: np.ndarray, box, what: str = "x0") -> None:
    if box is None:
        return
    lo, hi = box
    bad = (x < lo) | (x > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what}[{i}] = {float(x[i])!r} is outside its bounds ({lo[i]}, {hi[i]})")


def _as_x(x0, what: str = "x0") -> np.ndarray:
    x = np.array(x0, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{what}: expected a non-empty 1-D array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: expected finite values")
    return x


def _evaluate(fun, x: np.ndarray) -> tuple[float, np.ndarray]:
    out = fun(x.copy())
    try:
        f, g = out
    except (TypeError, ValueError):
        raise TypeError(f"fun(x) must return (value, grad), got {type(out).__name__}") from None
    g = np.asarray(g, dtype=np.float64)
    if g.shape != x.shape:
        raise ValueError(f"fun(x): the gradient has shape {g.shape}, expected {x.shape}")
    return float(f), g


def make_schedule(schedule, total: int | None = None) -> Callable[[int], float]:
    """A learning-rate schedule as a function ``iteration -> factor`` (the rate is ``lr·factor``).

    Parameters
    ----------
    schedule : None, str, tuple or callable
        * ``None`` or ``"constant"``: 1.
        * ``"cosine"`` or ``("cosine", total)`` or ``("cosine", total, final)``: cosine decay
          ``final + (1 − final)·(1 + cos(π·min(i, total)/total))/2`` from 1 at ``i = 0`` to
          ``final`` (default 0) at ``i = total``. Plain ``"cosine"`` uses the ``total`` argument.
        * ``("exponential", rate)``: ``rate**i``.
        * ``("step", every, factor)``: ``factor**(i // every)``.
        * a callable ``f(i) -> factor``.
    total : int, optional
        Length of a plain ``"cosine"`` schedule (``adam`` passes the iteration at which this call
        ends; give ``("cosine", total)`` explicitly for a schedule that survives a resume).

    Iterations ``i`` count from 0 (the first update).
    """
    if schedule is None or schedule == "constant":
        return lambda i: 1.0
    if callable(schedule):
        return schedule
    name, *args = (schedule,) if isinstance(schedule, str) else tuple(schedule)
    if name == "cosine":
        if len(args) > 2:
            raise ValueError(f"schedule: expected ('cosine', total[, final]), got {schedule!r}")
        t = args[0] if args else total
        final = float(args[1]) if len(args) > 1 else 0.0
        if t is None or int(t) != t or t < 1:
            raise ValueError(f"schedule: cosine needs a total number of iterations >= 1, got {t!r}")
        t = int(t)
        return lambda i: final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * min(i, t) / t))
    if name == "exponential":
        if len(args) != 1 or not 0 < float(args[0]) <= 1:
            raise ValueError(
                f"schedule: expected ('exponential', rate) with 0 < rate <= 1, got {schedule!r}"
            )
        rate = float(args[0])
        return lambda i: rate**i
    if name == "step":
        if len(args) != 2 or int(args[0]) != args[0] or args[0] < 1 or not float(args[1]) > 0:
            raise ValueError(
                f"schedule: expected ('step', every >= 1, factor > 0), got {schedule!r}"
            )
        every, factor = int(args[0]), float(args[1])
        return lambda i: factor ** (i // every)
    raise ValueError(
        "schedule: expected None, 'constant', 'cosine', ('cosine', total[, final]), "
        f"('exponential', rate), ('step', every, factor) or a callable, got {schedule!r}"
    )


# ----------------------------------------------------------------------------------------------
# Adam
# ----------------------------------------------------------------------------------------------
def adam(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0,
    *,
    lr: float = 1e-2,
    steps: int = 1000,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    clip_norm: float | None = None,
    schedule=None,
    bounds: Sequence[tuple[float | None, float | None]] | Bounds | None = None,
    callback: Callable | None = None,
    state: AdamState | None = None,
) -> OptimResult:
    """Minimise ``fun`` with Adam (Kingma & Ba 2015).

    Iteration ``i`` evaluates ``(f, g) = fun(x_i)``, clips ``g`` to the global norm
    ``clip_norm`` (``g·min(1, clip_norm/|g|)``), updates ``m = β₁m + (1−β₁)g``,
    ``v = β₂v + (1−β₂)g²`` and steps
    ``x_{i+1} = x_i − lr·factor(i)·m̂/(√v̂ + eps)`` with ``m̂ = m/(1−β₁^{i+1})``,
    ``v̂ = v/(1−β₂^{i+1})``; with ``bounds``, ``x_{i+1}`` is then clipped into the box (a
    projection: Adam has no native bounds). Then ``callback(i, x_i, f, g)`` is called (with the
    unclipped gradient); returning True stops after this iteration's update.

    Parameters
    ----------
    fun : callable ``x -> (value, grad)``
    x0 : (n,) array
        Start. With ``state`` it may be None (the state's ``x`` is used); otherwise it must
        equal ``state.x``.
    lr : float
        Base learning rate.
    steps : int
        Number of iterations (evaluations + updates) in this call.
    betas, eps : Adam's constants.
    clip_norm : float, optional
        Clip the gradient to this Euclidean norm before it enters the moments.
    schedule : see :func:`make_schedule`
        Multiplies ``lr`` at iteration ``i`` (counted over resumed calls).
    bounds : list of (lower, upper) pairs or scipy.optimize.Bounds, optional
    callback : callable ``(iteration, x, value, grad) -> bool``, optional
    state : AdamState, optional
        ``result.state`` of an earlier call: continue exactly (bit for bit) as if uninterrupted.

    Returns
    -------
    OptimResult
        ``x``/``fun``: the best point evaluated (over resumed calls); ``state``: to resume.
        A non-finite value or gradient stops the run (``success=False``) without updating.
    """
    lr = float(lr)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr: expected a positive number, got {lr!r}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ValueError(f"steps: expected an integer >= 0, got {steps!r}")
    b1, b2 = (float(b) for b in betas)
    if not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise ValueError(f"betas: expected two numbers in [0, 1), got {betas!r}")
    if clip_norm is not None and not float(clip_norm) > 0:
        raise ValueError(f"clip_norm: expected a positive number or None, got {clip_norm!r}")
    if state is not None:
        if not isinstance(state, AdamState):
            raise TypeError(f"state: expected an AdamState, got {type(state).__name__}")
        st = state.copy()
        if x0 is not None and not np.array_equal(np.asarray(x0, dtype=float), st.x):
            raise ValueError(
                "x0 differs from state.x: to resume pass x0=None (or state.x); result.x is the "
                "best point, not where Adam continues"
            )
    else:
        x = _as_x(x0)
        n = x.size
        st = AdamState(0, x, np.zeros(n), np.zeros(n), x.copy(), math.inf)
    n = st.x.size
    box = _parse_bounds(bounds, n)
    _check_inside(st.x, box, "x0" if state is None else "state.x")
    factor = make_schedule(schedule, st.iteration + int(steps))

    x, m, v = st.x, st.m, st.v
    nfev = 0
    success, message, stopped = True, f"{int(steps)} iterations done", False
    for _ in range(int(steps)):
        i = st.iteration
        f, g = _evaluate(fun, x)
        nfev += 1
        if not (math.isfinite(f) and np.all(np.isfinite(g))):
            success = False
            message = f"non-finite value or gradient at iteration {i} (value {f!r})"
            break
        gnorm = float(np.linalg.norm(g))
        st.history.append(f)
        st.grad_norms.append(gnorm)
        if f < st.best_fun:
            st.best_fun, st.best_x, st.best_grad = f, x.copy(), g.copy()
        gc = g * (float(clip_norm) / gnorm) if clip_norm is not None and gnorm > clip_norm else g
        m = b1 * m + (1.0 - b1) * gc
        v = b2 * v + (1.0 - b2) * (gc * gc)
        t = i + 1
        m_hat = m / (1.0 - b1**t)
        v_hat = v / (1.0 - b2**t)
        x_new = x - (lr * factor(i)) * m_hat / (np.sqrt(v_hat) + eps)
        if box is not None:
            x_new = np.clip(x_new, box[0], box[1])
        stop = bool(callback(i, x.copy(), f, g.copy())) if callback is not None else False
        x = x_new
        st.iteration = t
        if stop:
            stopped, message = True, f"stopped by the callback at iteration {i}"
            break
    st.x, st.m, st.v = x, m, v
    return OptimResult(
        x=st.best_x.copy(),
        fun=st.best_fun,
        jac=None if st.best_grad is None else st.best_grad.copy(),
        nit=st.iteration,
        nfev=nfev,
        history=np.array(st.history),
        grad_norms=np.array(st.grad_norms),
        success=success,
        message=message,
        stopped_by_callback=stopped,
        state=st,
    )


# ----------------------------------------------------------------------------------------------
# L-BFGS-B
# ----------------------------------------------------------------------------------------------
class _Stop(Exception):
    """Raised inside scipy's callback to stop L-BFGS-B; caught by :func:`lbfgsb`."""


def lbfgsb(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0,
    *,
    bounds: Sequence[tuple[float | None, float | None]] | Bounds | None = None,
    maxiter: int = 1000,
    ftol: float = 2.220446049250313e-09,
    gtol: float = 1e-5,
    maxcor: int = 10,
    maxls: int = 20,
    callback: Callable | None = None,
) -> OptimResult:
    """Minimise ``fun`` with L-BFGS-B (``scipy.optimize.minimize(method="L-BFGS-B", jac=True)``).

    Parameters
    ----------
    fun : callable ``x -> (value, grad)``
    x0 : (n,) array, inside ``bounds``.
    bounds : list of (lower, upper) pairs (None = unbounded) or scipy.optimize.Bounds, optional
        Enforced natively by the algorithm.
    maxiter : int
        Maximum number of iterations.
    ftol, gtol : float
        scipy's stopping tolerances: relative reduction of the value
        ``(f_k − f_{k+1})/max(|f_k|, |f_{k+1}|, 1) <= ftol``, or largest projected gradient
        entry ``<= gtol``.
    maxcor, maxls : int
        Number of stored correction pairs; maximum line-search steps per iteration.
    callback : callable ``(iteration, x, value, grad) -> bool``, optional
        Called at ``x0`` (iteration 0) and after every iteration with the accepted point;
        returning True stops the run (an internal exception, caught here) and the best point so
        far is returned.

    Returns
    -------
    OptimResult
        ``history``: value at ``x0`` and after every iteration. ``state`` is None.
    """
    x0 = _as_x(x0)
    n = x0.size
    box = _parse_bounds(bounds, n)
    _check_inside(x0, box)
    if isinstance(maxiter, bool) or int(maxiter) != maxiter or maxiter < 1:
        raise ValueError(f"maxiter: expected an integer >= 1, got {maxiter!r}")

    rec = {"nfev": 0, "nit": 0, "best": (math.inf, x0.copy(), None), "last": []}
    history: list[float] = []
    grad_norms: list[float] = []

    def record(it, x, f, g):
        history.append(f)
        grad_norms.append(float(np.linalg.norm(g)))
        if callback is not None and callback(it, x.copy(), f, g.copy()):
            raise _Stop(it)

    def wrapped(x):
        x = np.array(x, dtype=np.float64)
        f, g = _evaluate(fun, x)
        rec["nfev"] += 1
        if math.isfinite(f) and f < rec["best"][0] and np.all(np.isfinite(g)):
            rec["best"] = (f, x.copy(), g.copy())
        rec["last"] = [(x.copy(), f, g), *rec["last"][:3]]
        if rec["nfev"] == 1:
            record(0, x, f, g)
        return f, g

    def scipy_callback(intermediate_result):
        xk = np.asarray(intermediate_result.x, dtype=np.float64)
        hit = next(((f, g) for xe, f, g in rec["last"] if np.array_equal(xe, xk)), None)
        if hit is None:  # not among the recent evaluations (should not happen): evaluate it
            hit = _evaluate(fun, xk)
            rec["nfev"] += 1
        f, g = hit
        rec["nit"] += 1
        record(rec["nit"], xk, f, g)

    stopped = False
    res = None
    try:
        res = minimize(
            wrapped,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=None if box is None else Bounds(box[0], box[1]),
            callback=scipy_callback,
            options={
                "maxiter": int(maxiter),
                "ftol": float(ftol),
                "gtol": float(gtol),
                "maxcor": int(maxcor),
                "maxls": int(maxls),
            },
        )
    except _Stop as stop:
        stopped = True
        message = f"stopped by the callback at iteration {stop.args[0]}"
    best_f, best_x, best_g = rec["best"]
    if res is not None:
        message = str(res.message)
        x, f, g = np.asarray(res.x, dtype=np.float64), float(res.fun), np.asarray(res.jac)
        if best_f < f:  # a trial point of a line search did better than the accepted one
            x, f, g = best_x, best_f, best_g
        success = bool(res.success)
    else:
        x, f, g = best_x, best_f, best_g
        success = True
    return OptimResult(
        x=x,
        fun=f,
        jac=g,
        nit=rec["nit"],
        nfev=rec["nfev"],
        history=np.array(history),
        grad_norms=np.array(grad_norms),
        success=success,
        message=message,
        stopped_by_callback=stopped,
    )
