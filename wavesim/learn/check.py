"""Check an analytic gradient against central finite differences.

:func:`gradient_check` takes the objective of the optimisers, ``fun(x) -> (value, grad)``, and
compares ``grad`` with central differences ``(f(x + h·u) − f(x − h·u)) / 2h``:

* **coordinate-wise** (``u`` = unit vectors) when ``x`` is small: one error per entry, named;
* **along random directions** (``u`` Gaussian, unit norm, seeded) when ``x`` is large: the
  directional derivative ``grad·u`` against the difference quotient. With ``names`` given as a
  mapping name → slice (e.g. :attr:`wavesim.learn.params.ParameterSpace.slices`) the directions
  are drawn inside each block separately, so a wrong gradient is traced to its parameter.

Relative error of a pair (analytic ``a``, numeric ``b``):
``|a − b| / max(|a|, |b|, floor)`` with ``floor = 1e-8 · max_j max(|a_j|, |b_j|)`` over all the
pairs of the check (and at least the smallest normal float), so entries that are zero up to
rounding do not read as 100 % errors. The central difference has truncation error ``O(h²)`` and
rounding error about ``1e-16·|f|/h``; with ``h = 1e-6`` expect relative errors near 1e-8–1e-10 for
a smooth float64 objective.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["GradientCheckResult", "gradient_check"]


@dataclass
class GradientCheckResult:
    """Outcome of :func:`gradient_check`.

    Attributes
    ----------
    mode : {"coordinates", "directions"}
    labels : list of str
        One per compared pair: entry labels, or ``"direction 3"`` / ``"gamma: direction 1"``.
    analytic, numeric : arrays
        Analytic derivatives (entries of ``grad`` or ``grad·u``) and central differences.
    abs_error, rel_error : arrays
        ``|analytic − numeric|`` and the relative error (module docstring).
    value : float
        ``f(x)``.
    eps : float
        The finite-difference step.
    """

    mode: str
    labels: list[str]
    analytic: np.ndarray
    numeric: np.ndarray
    abs_error: np.ndarray
    rel_error: np.ndarray
    value: float
    eps: float

    @property
    def max_rel_error(self) -> float:
        """Largest relative error (NaN counts as infinite)."""
        if self.rel_error.size == 0:
            return 0.0
        return float(np.max(np.where(np.isnan(self.rel_error), np.inf, self.rel_error)))

    def worst(self) -> tuple[str, float]:
        """Label and relative error of the worst pair."""
        r = np.where(np.isnan(self.rel_error), np.inf, self.rel_error)
        i = int(np.argmax(r))
        return self.labels[i], float(self.rel_error[i])

    def ok(self, rtol: float = 1e-6) -> bool:
        """Whether every relative error is at most ``rtol``."""
        return self.max_rel_error <= rtol

    def assert_ok(self, rtol: float = 1e-6) -> None:
        """Raise ``AssertionError`` naming the worst pair when a relative error exceeds ``rtol``."""
        if not self.ok(rtol):
            label, rel = self.worst()
            i = self.labels.index(label)
            raise AssertionError(
                f"gradient check failed: {label}: analytic {self.analytic[i]:.10g}, "
                f"central difference {self.numeric[i]:.10g}, relative error {rel:.3g} > {rtol:g} "
                f"(eps = {self.eps:g}; {int(np.sum(self.rel_error > rtol))} of {len(self.labels)} "
                f"{'entries' if self.mode == 'coordinates' else 'directions'} fail)\n{self}"
            )

    def __str__(self) -> str:
        n = len(self.labels)
        head = (
            f"gradient check ({self.mode}, eps = {self.eps:g}, f(x) = {self.value:.10g}): "
            f"max relative error {self.max_rel_error:.3g}"
        )
        order = np.argsort(-np.where(np.isnan(self.rel_error), np.inf, self.rel_error))
        shown = order[:20] if n > 20 else np.arange(n)
        width = max([len(self.labels[i]) for i in shown] + [5])
        lines = [
            head,
            f"  {'entry'.ljust(width)}  {'analytic':>17}  {'numeric':>17}  {'rel. error':>10}",
        ]
        for i in shown:
            lines.append(
                f"  {self.labels[i].ljust(width)}  {self.analytic[i]:>17.10g}  "
                f"{self.numeric[i]:>17.10g}  {self.rel_error[i]:>10.3g}"
            )
        if n > len(shown):
            lines.append(f"  ... {n - len(shown)} more (the 20 worst are shown)")
        return "\n".join(lines)


def _value(fun, x) -> float:
    out = fun(x)
    try:
        f, _ = out
    except (TypeError, ValueError):
        raise TypeError(f"fun(x) must return (value, grad), got {type(out).__name__}") from None
    return float(f)


def _relative(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    err = np.abs(a - b)
    mag = np.maximum(np.abs(a), np.abs(b))
    finite = mag[np.isfinite(mag)]
    floor = max(1e-8 * (float(finite.max()) if finite.size else 0.0), np.finfo(float).tiny)
    with np.errstate(invalid="ignore"):
        rel = err / np.maximum(mag, floor)
    rel = np.where(np.isfinite(a) & np.isfinite(b), rel, np.inf)
    return err, rel


def gradient_check(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x,
    *,
    eps: float = 1e-6,
    n_directions: int = 8,
    seed: int = 0,
    names: Sequence[str] | Mapping[str, slice | np.ndarray] | None = None,
    mode: str = "auto",
    max_coordinates: int = 64,
    value: Callable[[np.ndarray], float] | None = None,
) -> GradientCheckResult:
    """Compare ``fun``'s gradient with central finite differences.

    Parameters
    ----------
    fun : callable ``x -> (value, grad)``
    x : (n,) array
        Where to check (float64).
    eps : float
        Finite-difference step (absolute, in units of ``x``; along a unit direction).
    n_directions : int
        Random directions (in ``"directions"`` mode; per block when ``names`` is a mapping).
    seed : int
        Seed of the directions.
    names : sequence of n str, or mapping name -> slice/index array, optional
        Labels of the entries of ``x`` (e.g. :meth:`ParameterSpace.labels`), or blocks of ``x``
        (e.g. :attr:`ParameterSpace.slices`): coordinate labels ``"name[i]"``; directions drawn
        per block.
    mode : {"auto", "coordinates", "directions"}
        ``"auto"``: coordinates when ``n <= max_coordinates``, else directions.
    max_coordinates : int
        Threshold of ``"auto"``.
    value : callable ``x -> float``, optional
        The loss alone, for the finite differences (default: the value of ``fun``). Saves the
        gradient's cost (a reverse sweep) at every one of the extra evaluations.

    Returns
    -------
    GradientCheckResult
        Never raises on a mismatch; call ``result.assert_ok(rtol)`` or read ``str(result)``.
        Costs ``2n`` (coordinates) or ``2·n_directions`` (per block) extra evaluations.
    """

    def f_only(z):
        return float(value(z)) if value is not None else _value(fun, z)

    x = np.array(x, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x: expected a non-empty 1-D array, got shape {x.shape}")
    n = x.size
    eps = float(eps)
    if not eps > 0:
        raise ValueError(f"eps: expected a positive step, got {eps!r}")
    if mode not in ("auto", "coordinates", "directions"):
        raise ValueError(f"mode: expected 'auto', 'coordinates' or 'directions', got {mode!r}")
    if isinstance(n_directions, bool) or int(n_directions) != n_directions or n_directions < 1:
        raise ValueError(f"n_directions: expected an integer >= 1, got {n_directions!r}")

    blocks: dict[str, np.ndarray] | None = None
    labels = [f"x[{i}]" for i in range(n)]
    if isinstance(names, Mapping):
        blocks = {}
        covered = np.zeros(n, dtype=bool)
        for name, where in names.items():
            idx = np.arange(n)[where]
            if idx.size == 0:
                continue
            blocks[str(name)] = idx
            covered[idx] = True
            for j, i in enumerate(idx):
                labels[i] = str(name) if idx.size == 1 else f"{name}[{j}]"
        if not covered.all():
            blocks["(other)"] = np.flatnonzero(~covered)
    elif names is not None:
        labels = [str(s) for s in names]
        if len(labels) != n:
            raise ValueError(f"names: expected {n} labels (one per entry of x), got {len(labels)}")

    out = fun(x.copy())
    try:
        f0, g = out
    except (TypeError, ValueError):
        raise TypeError(f"fun(x) must return (value, grad), got {type(out).__name__}") from None
    f0 = float(f0)
    g = np.asarray(g, dtype=np.float64)
    if g.shape != x.shape:
        raise ValueError(f"fun(x): the gradient has shape {g.shape}, expected {x.shape}")

    use_coords = mode == "coordinates" or (mode == "auto" and n <= max_coordinates)
    analytic, numeric, out_labels = [], [], []
    if use_coords:
        for i in range(n):
            xp, xm = x.copy(), x.copy()
            xp[i] += eps
            xm[i] -= eps
            numeric.append((f_only(xp) - f_only(xm)) / (2 * eps))
            analytic.append(g[i])
        out_labels = labels
    else:
        rng = np.random.default_rng(seed)
        groups = blocks if blocks is not None else {"": np.arange(n)}
        for name, idx in groups.items():
            for d in range(int(n_directions)):
                u = np.zeros(n)
                u[idx] = rng.standard_normal(idx.size)
                u /= np.linalg.norm(u)
                numeric.append((f_only(x + eps * u) - f_only(x - eps * u)) / (2 * eps))
                analytic.append(float(g @ u))
                out_labels.append(f"{name}: direction {d}" if name else f"direction {d}")
    analytic_a = np.array(analytic, dtype=np.float64)
    numeric_a = np.array(numeric, dtype=np.float64)
    err, rel = _relative(analytic_a, numeric_a)
    return GradientCheckResult(
        mode="coordinates" if use_coords else "directions",
        labels=list(out_labels),
        analytic=analytic_a,
        numeric=numeric_a,
        abs_error=err,
        rel_error=rel,
        value=f0,
        eps=eps,
    )
