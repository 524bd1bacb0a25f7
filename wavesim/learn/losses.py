"""Losses on the lattice state, in the form the adjoint gradient driver consumes.

A loss looks at the state ``(y, v)`` (``v`` = ẏ) at a few *state indices* ``n`` (0 = the initial
state, ``n`` = the state after ``n`` integrator steps, at time ``n·dt``). It declares them in
``loss.steps`` (sorted, unique, int64) and, handed the state number ``steps[k]``, returns its
contribution to the loss and the gradient of that contribution with respect to ``y`` and ``v``:

.. code-block:: python

    value_k, grad_y, grad_v = loss.evaluate(k, y, v)   # y, v: (members, ny, nx)

The total loss is ``sum_k value_k``. ``grad_y`` / ``grad_v`` have the shape of ``y`` and dtype
float64 (everything is computed in float64, whatever the dtype of the state), or are ``None`` when
the loss does not depend on that variable (``loss.uses_y`` / ``loss.uses_v`` say so up front).

Every loss here is a weighted *mean* over members, observed sites (or electrodes) and times, so its
size does not depend on the lattice, the batch or the number of samples. Times with weight 0 (a
warm-up, see :func:`warmup_weights`) are dropped from ``steps`` at construction: the driver never
visits them. Losses combine linearly: ``0.5 * field_loss + phase_loss`` is a :class:`SumLoss`
whose ``steps`` is the union of the terms' steps.

Targets are matched to state indices with :func:`steps_from_times` (time in ms / dt, which must be
a whole number of steps); ``from_dataarray`` constructors read the ``time`` coordinate of a wavesim
store (``docs/conventions.md``).
"""

from __future__ import annotations

import math
import numbers
import os
import tomllib
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import xarray as xr

__all__ = [
    "ElectrodeMSE",
    "FieldMSE",
    "Loss",
    "PhaseLoss",
    "SumLoss",
    "electrode_sampling_matrix",
    "steps_from_times",
    "warmup_weights",
]

#: Relative tolerance of :func:`steps_from_times` (of the number of steps ``t/dt``).
STEP_RTOL = 1e-9


# ----------------------------------------------------------------------------------------------
# Time helpers
# ----------------------------------------------------------------------------------------------
def steps_from_times(times_ms, dt: float) -> np.ndarray:
    """State indices ``n = t/dt`` of sample times.

    Parameters
    ----------
    times_ms : array-like, 1-D
        Sample times in ms (``t = n·dt``; 0 is the initial state).
    dt : float
        Integrator step in ms (> 0).

    Returns
    -------
    numpy.ndarray of int64
        ``round(t/dt)`` for every time.

    Raises
    ------
    ValueError
        When ``dt`` is not a positive number, a time is negative or not finite, or a time is not
        a whole number of steps: ``|t/dt - round(t/dt)| > 1e-9 · max(1, t/dt)``. The message names
        the first offending time and its index.
    """
    dt = _positive_float(dt, "dt")
    t = np.asarray(times_ms, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"times_ms: expected a 1-D array of times in ms, got shape {t.shape}")
    bad = ~np.isfinite(t) | (t < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"times_ms[{i}] = {float(t[i])!r} ms: expected a finite time >= 0")
    n = t / dt
    r = np.rint(n)
    off = np.abs(n - r) > STEP_RTOL * np.maximum(1.0, np.abs(n))
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"times_ms[{i}] = {float(t[i])!r} ms is not a whole number of steps of dt = {dt!r} ms "
            f"(t/dt = {n[i]:.9g})"
        )
    return r.astype(np.int64)


def warmup_weights(times_ms, warmup_ms: float) -> np.ndarray:
    """Per-time weights that discard a warm-up: 0 for ``t < warmup_ms``, 1 from then on.

    Parameters
    ----------
    times_ms : array-like, 1-D
        Sample times in ms.
    warmup_ms : float
        Length of the warm-up in ms (>= 0). A time equal to ``warmup_ms`` (up to a relative
        1e-12) gets weight 1.

    Returns
    -------
    numpy.ndarray of float64, shape ``(nt,)``

    Raises
    ------
    ValueError
        When every time falls inside the warm-up (all weights would be 0).
    """
    t = np.asarray(times_ms, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"times_ms: expected a 1-D array of times in ms, got shape {t.shape}")
    warmup = float(warmup_ms)
    if not (math.isfinite(warmup) and warmup >= 0):
        raise ValueError(f"warmup_ms: expected a finite number >= 0, got {warmup_ms!r}")
    w = (t >= warmup * (1 - 1e-12)).astype(np.float64)
    if not w.any():
        last = f"{float(t.max())!r} ms" if t.size else "no times"
        raise ValueError(f"warmup_ms = {warmup!r} discards every time (the last is {last})")
    return w


# ----------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------
def _positive_float(value, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a positive number, got {value!r}") from None
    if not (math.isfinite(out) and out > 0):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return out


def _as_steps(steps, nt: int, owner: str) -> np.ndarray:
    s = np.asarray(steps)
    if s.ndim != 1 or s.shape[0] != nt:
        raise ValueError(
            f"{owner} steps: expected a 1-D array of {nt} state indices (one per target time), "
            f"got shape {s.shape}"
        )
    if s.dtype.kind not in "iu":
        if s.dtype.kind != "f" or not np.all(np.isfinite(s)) or np.any(s != np.rint(s)):
            raise ValueError(
                f"{owner} steps: expected integer state indices, got {s.dtype} values; use "
                "steps_from_times(times_ms, dt) to convert times"
            )
    s = s.astype(np.int64)
    if nt and s.min() < 0:
        raise ValueError(f"{owner} steps: expected indices >= 0, got {s.min()}")
    if np.any(np.diff(s) <= 0):
        i = int(np.flatnonzero(np.diff(s) <= 0)[0])
        raise ValueError(
            f"{owner} steps: expected strictly increasing indices, got steps[{i}] = {s[i]} then "
            f"steps[{i + 1}] = {s[i + 1]}"
        )
    return s


def _as_weights(weights, nt: int, owner: str) -> np.ndarray:
    if weights is None:
        return np.ones(nt)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (nt,):
        raise ValueError(f"{owner} weights: expected shape ({nt},) (one per time), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{owner} weights: expected finite values >= 0")
    if not w.sum() > 0:
        raise ValueError(f"{owner} weights: all weights are 0, nothing to fit")
    return w


def _as_mask(mask, shape: tuple[int, int], owner: str) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise ValueError(f"{owner} mask: expected shape (ny, nx) = {tuple(shape)}, got {m.shape}")
    if m.dtype != bool:
        if not np.all(np.isin(m, (0, 1))):
            raise ValueError(f"{owner} mask: expected a boolean (or 0/1) array")
        m = m.astype(bool)
    if not m.any():
        raise ValueError(f"{owner} mask: no site is observed (mask is all False)")
    return m


def _as_target(target, owner: str, what: str, sample_ndim: int) -> np.ndarray:
    """float32/float64 array ``([members,] nt, *sample)``; returns it with a leading member axis
    of length 1 when the target is shared by all members."""
    a = np.asarray(target)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{owner} {what}: expected a real array, got dtype {a.dtype}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if a.ndim == sample_ndim + 1:
        return a[None]
    if a.ndim == sample_ndim + 2:
        return a
    dims = (
        "(nt, ny, nx) or (members, nt, ny, nx)"
        if sample_ndim == 2
        else ("(nt, ne) or (members, nt, ne)")
    )
    raise ValueError(f"{owner} {what}: expected shape {dims}, got {a.shape}")


def _state64(a, name: str, owner: str, members: int | None, shape) -> np.ndarray:
    if a is None:
        raise ValueError(f"{owner}.evaluate: needs the state {name!r}, got None")
    a = np.asarray(a)
    if a.ndim != 3 or a.shape[1:] != tuple(shape):
        raise ValueError(
            f"{owner}.evaluate: {name} must have shape (members, ny, nx) with (ny, nx) = "
            f"{tuple(shape)}, got {a.shape}"
        )
    if members is not None and a.shape[0] != members:
        raise ValueError(
            f"{owner}.evaluate: {name} has {a.shape[0]} members but the target has {members}"
        )
    return np.asarray(a, dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# Base class and combinations
# ----------------------------------------------------------------------------------------------
class Loss(ABC):
    """A loss on the lattice state at a few state indices (see the module docstring).

    Attributes
    ----------
    steps : numpy.ndarray of int64
        Sorted unique state indices ``n`` at which the loss looks.
    uses_y, uses_v : bool
        Whether :meth:`evaluate` depends on ``y`` / ``v`` (when False it returns ``None`` for that
        gradient and accepts ``None`` for that state).
    """

    steps: np.ndarray
    uses_y: bool = True
    uses_v: bool = False

    @abstractmethod
    def evaluate(
        self, k: int, y: np.ndarray | None, v: np.ndarray | None
    ) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        """Loss contribution of state number ``self.steps[k]`` and its gradients.

        Parameters
        ----------
        k : int
            Index into :attr:`steps` (``0 <= k < len(steps)``).
        y, v : (members, ny, nx) arrays
            Position and velocity of state ``steps[k]``, any float dtype.

        Returns
        -------
        (value, grad_y, grad_v)
            ``value`` a float; ``grad_y``, ``grad_v`` float64 arrays of the shape of ``y`` (or
            ``None`` when the loss does not depend on that variable).
        """

    def _check_k(self, k) -> int:
        n = len(self.steps)
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k < n:
            raise IndexError(f"{type(self).__name__}.evaluate: k must be in [0, {n}), got {k!r}")
        return int(k)

    def total(self, y, v=None, *, return_grad: bool = False):
        """The whole loss of a stored trajectory (for tests and finite differences).

        Parameters
        ----------
        y, v : (members, n_states, ny, nx) arrays
            States indexed by state number along axis 1 (``y[:, n]`` is state ``n``); must hold
            every index in :attr:`steps`. ``v`` may be None when ``uses_v`` is False.
        return_grad : bool
            Also return the gradients with respect to ``y`` and ``v`` (float64, shapes of the
            inputs; zeros where the loss does not look).

        Returns
        -------
        float, or (float, grad_y, grad_v)
        """
        arrays = {}
        for name, a, used in (("y", y, self.uses_y), ("v", v, self.uses_v)):
            if a is None:
                if used:
                    raise ValueError(f"{type(self).__name__}.total: needs the trajectory {name!r}")
                arrays[name] = None
                continue
            a = np.asarray(a)
            if a.ndim != 4:
                raise ValueError(
                    f"{type(self).__name__}.total: {name} must have shape "
                    f"(members, n_states, ny, nx), got {a.shape}"
                )
            if len(self.steps) and a.shape[1] <= self.steps[-1]:
                raise ValueError(
                    f"{type(self).__name__}.total: {name} holds {a.shape[1]} states but the loss "
                    f"looks at state {self.steps[-1]}"
                )
            arrays[name] = a
        value = 0.0
        gy = None if arrays["y"] is None else np.zeros(arrays["y"].shape)
        gv = None if arrays["v"] is None else np.zeros(arrays["v"].shape)
        for k, n in enumerate(self.steps):
            yk = None if arrays["y"] is None else arrays["y"][:, n]
            vk = None if arrays["v"] is None else arrays["v"][:, n]
            val, dy, dv = self.evaluate(k, yk, vk)
            value += val
            if dy is not None and gy is not None:
                gy[:, n] += dy
            if dv is not None and gv is not None:
                gv[:, n] += dv
        return (value, gy, gv) if return_grad else value

    # -- algebra -------------------------------------------------------------------------------
    def __add__(self, other):
        if isinstance(other, Loss):
            return SumLoss([(1.0, self), (1.0, other)])
        return NotImplemented

    def __radd__(self, other):
        if isinstance(other, numbers.Number) and other == 0:  # sum([loss_a, loss_b])
            return self
        return NotImplemented

    def __sub__(self, other):
        if isinstance(other, Loss):
            return SumLoss([(1.0, self), (-1.0, other)])
        return NotImplemented

    def __mul__(self, c):
        if isinstance(c, numbers.Real) and not isinstance(c, bool):
            return SumLoss([(float(c), self)])
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, c):
        if isinstance(c, numbers.Real) and not isinstance(c, bool):
            return SumLoss([(1.0 / float(c), self)])
        return NotImplemented

    def __neg__(self):
        return SumLoss([(-1.0, self)])


def _add_grad(acc, g, c):
    if g is None:
        return acc
    return c * g if acc is None else acc + c * g


class SumLoss(Loss):
    """A linear combination ``sum_j c_j · loss_j``.

    Built by ``loss_a + loss_b``, ``c * loss``, ``loss / c``, ``-loss``, ``sum([...])``. Its
    :attr:`steps` is the union of the terms' steps; :meth:`evaluate` dispatches state
    ``steps[k]`` to every term that looks at it and adds their weighted contributions.

    Parameters
    ----------
    terms : sequence of (coefficient, Loss)
        Nested sums are flattened (coefficients multiplied).
    """

    def __init__(self, terms: Sequence[tuple[float, Loss]]):
        flat: list[tuple[float, Loss]] = []
        for item in terms:
            try:
                c, loss = item
            except (TypeError, ValueError):
                raise TypeError(
                    f"SumLoss terms: expected (coefficient, Loss) pairs, got {item!r}"
                ) from None
            if not isinstance(loss, Loss):
                raise TypeError(f"SumLoss terms: expected a Loss, got {type(loss).__name__}")
            c = float(c)
            if not math.isfinite(c):
                raise ValueError(f"SumLoss terms: coefficient must be finite, got {c!r}")
            if isinstance(loss, SumLoss):
                flat.extend((c * c2, l2) for c2, l2 in loss.terms)
            else:
                flat.append((c, loss))
        if not flat:
            raise ValueError("SumLoss terms: expected at least one term")
        self.terms = tuple(flat)
        self.steps = np.unique(np.concatenate([loss.steps for _, loss in flat])).astype(np.int64)
        # for every term, the term's k of each union index (-1 where it does not look)
        self._index = []
        for _, loss in flat:
            idx = np.full(len(self.steps), -1, dtype=np.int64)
            idx[np.searchsorted(self.steps, loss.steps)] = np.arange(len(loss.steps))
            self._index.append(idx)
        self.uses_y = any(loss.uses_y for _, loss in flat)
        self.uses_v = any(loss.uses_v for _, loss in flat)

    def evaluate(self, k, y, v):
        k = self._check_k(k)
        value = 0.0
        gy = gv = None
        for (c, loss), idx in zip(self.terms, self._index, strict=True):
            kk = int(idx[k])
            if kk < 0:
                continue
            val, dy, dv = loss.evaluate(kk, y, v)
            value += c * val
            gy = _add_grad(gy, dy, c)
            gv = _add_grad(gv, dv, c)
        return value, gy, gv  # None for a variable no term looking at this state depends on

    def __repr__(self) -> str:
        inner = " + ".join(f"{c:g}*{loss!r}" for c, loss in self.terms)
        return f"SumLoss({inner})"


# ----------------------------------------------------------------------------------------------
# Shared machinery of the time-series losses
# ----------------------------------------------------------------------------------------------
class _SeriesLoss(Loss):
    """Target ``(members_or_1, nt, ...)`` at ``steps`` with per-time weights; zero-weight times
    are dropped. ``self._scale[k] = w_k / sum(w)``; the per-member/per-site mean is taken in
    :meth:`evaluate` (the number of members is known only there for a shared target)."""

    def _init_series(self, target: np.ndarray, steps, weights) -> None:
        owner = type(self).__name__
        nt = target.shape[1]
        if nt == 0:
            raise ValueError(f"{owner} target: expected at least one time, got 0")
        steps = _as_steps(steps, nt, owner)
        w = _as_weights(weights, nt, owner)
        keep = w > 0
        self.steps = steps[keep]
        self.weights = w[keep]
        self._scale = self.weights / w.sum()
        self._target = target[:, keep]
        self.members = target.shape[0] if self._per_member else None

    def _target_k(self, k: int) -> np.ndarray:
        t = self._target[:, k]
        return np.asarray(t, dtype=np.float64)


def _open_if_path(data):
    if isinstance(data, (str, os.PathLike)):
        from wavesim.store import open_store

        return open_store(data)
    return data


def _time_dim(da: xr.DataArray, owner: str) -> str:
    dims = [str(d) for d in da.dims if d == "time" or str(d).startswith("time_")]
    if len(dims) != 1:
        raise ValueError(
            f"{owner}.from_dataarray: expected exactly one time dimension ('time' or 'time_*'), "
            f"got dims {da.dims}"
        )
    return dims[0]


def _series_from_da(data, var: str, dt, owner: str, sample_ndim: int):
    """(da, values ([member,] time, ...), times_ms, steps, dataset or None)."""
    data = _open_if_path(data)
    ds = None
    if isinstance(data, xr.Dataset):
        ds = data
        if var not in ds.data_vars:
            raise KeyError(
                f"{owner}.from_dataarray: the dataset has no variable {var!r} (data variables: "
                f"{', '.join(map(str, ds.data_vars)) or 'none'})"
            )
        da = ds[var]
        if dt is None:
            if "dt" not in ds.attrs:
                raise ValueError(f"{owner}.from_dataarray: dt not given and no 'dt' attribute")
            dt = ds.attrs["dt"]
    elif isinstance(data, xr.DataArray):
        da = data
        if dt is None:
            raise ValueError(
                f"{owner}.from_dataarray: dt (the integrator step in ms) is required with a "
                "DataArray"
            )
    else:
        raise TypeError(
            f"{owner}.from_dataarray: expected an xarray Dataset/DataArray or a store path, got "
            f"{type(data).__name__}"
        )
    tdim = _time_dim(da, owner)
    if tdim not in da.coords:
        raise ValueError(f"{owner}.from_dataarray: {tdim!r} has no coordinate (times in ms)")
    lead = ("member",) if "member" in da.dims else ()
    other = [d for d in da.dims if d not in (*lead, tdim)]
    if len(other) != sample_ndim:
        raise ValueError(
            f"{owner}.from_dataarray: expected dims ([member,] {tdim}, "
            f"{'y, x' if sample_ndim == 2 else 'electrode'}), got {da.dims}"
        )
    da = da.transpose(*lead, tdim, *other)
    times = np.asarray(da[tdim].values, dtype=np.float64)
    steps = steps_from_times(times, dt)
    return da, np.asarray(da.values), times, steps, ds


def _weights_with_warmup(weights, times, warmup_ms):
    if warmup_ms is None:
        return weights
    w = warmup_weights(times, warmup_ms)
    if weights is not None:
        w = w * np.asarray(weights, dtype=np.float64)
    return w


# ----------------------------------------------------------------------------------------------
# Field MSE
# ----------------------------------------------------------------------------------------------
class FieldMSE(_SeriesLoss):
    """Weighted mean squared error of the field ``y`` against a target movie.

        L = Σ_k w_k Σ_b Σ_{i∈S} (y_{b,i}(n_k) − y*_{b,i,k})²  /  (M · |S| · Σ_k w_k)

    with ``M`` members, ``S`` the observed sites (``mask``, all sites by default) and per-time
    weights ``w_k`` (all 1 by default): a weighted mean over members, observed sites and times.
    A target equal to ``y`` gives 0; a constant offset ``c`` gives ``c²`` whatever the weights.

    Parameters
    ----------
    target : array ``(nt, ny, nx)`` or ``(members, nt, ny, nx)``
        Target field, shared by every member or one per member. Values outside ``mask`` are
        ignored (they may be NaN); values inside must be finite.
    steps : array of ``nt`` ints
        Strictly increasing state indices of the target times (:func:`steps_from_times`).
    mask : ``(ny, nx)`` bool array, optional
        Observed sites. Unobserved sites get zero gradient.
    weights : ``(nt,)`` array, optional
        Non-negative per-time weights (e.g. :func:`warmup_weights`); times of weight 0 are dropped
        from :attr:`steps`.
    """

    uses_y = True
    uses_v = False

    def __init__(self, target, steps, *, mask=None, weights=None):
        owner = type(self).__name__
        t = _as_target(target, owner, "target", 2)
        self._per_member = np.ndim(target) == 4
        self.shape = t.shape[2:]
        self.mask = _as_mask(mask, self.shape, owner)
        self.n_observed = (
            int(self.mask.sum()) if self.mask is not None else int(np.prod(self.shape))
        )
        t = _clean_target(t, self.mask, owner, "target")
        self._init_series(t, steps, weights)

    def evaluate(self, k, y, v=None):
        k = self._check_k(k)
        y = _state64(y, "y", type(self).__name__, self.members, self.shape)
        r = y - self._target_k(k)
        if self.mask is not None:
            r *= self.mask
        scale = self._scale[k] / (y.shape[0] * self.n_observed)
        value = float(scale * np.sum(r * r))
        return value, (2.0 * scale) * r, None

    @classmethod
    def from_dataarray(
        cls,
        data,
        dt: float | None = None,
        *,
        var: str = "field",
        mask=None,
        weights=None,
        warmup_ms: float | None = None,
    ) -> FieldMSE:
        """A :class:`FieldMSE` whose target is a recorded field.

        Parameters
        ----------
        data : xarray.DataArray, xarray.Dataset or path of a wavesim store
            The field, dims ``(time, y, x)`` or ``(member, time, y, x)`` (a tagged recorder's
            ``time_<tag>`` works too) with the time coordinate in ms. From a dataset, the
            variable ``var`` is used and ``dt`` defaults to the ``dt`` attribute.
        dt : float, optional
            The integrator step (ms) of the model being fitted; each time must be a whole number
            of steps. Required with a DataArray.
        var : str
            Variable name in a dataset (``"field"``).
        mask, weights : see :class:`FieldMSE`.
        warmup_ms : float, optional
            Discard times before it (multiplies ``weights``).

        Raises
        ------
        ValueError
            For a subsampled field (``subsample`` attribute > 1): the loss compares full lattices.
        """
        owner = cls.__name__
        da, values, times, steps, _ = _series_from_da(data, var, dt, owner, 2)
        if int(da.attrs.get("subsample", 1)) > 1:
            raise ValueError(
                f"{owner}.from_dataarray: the field is subsampled (subsample = "
                f"{da.attrs['subsample']}); FieldMSE needs the full lattice"
            )
        weights = _weights_with_warmup(weights, times, warmup_ms)
        return cls(values, steps, mask=mask, weights=weights)

    def __repr__(self) -> str:
        m = "" if self.mask is None else f", {self.n_observed} observed sites"
        return f"FieldMSE({len(self.steps)} times, shape {tuple(self.shape)}{m})"


def _clean_target(t: np.ndarray, mask, owner: str, what: str) -> np.ndarray:
    """Check finiteness at observed sites; replace NaN outside the mask by 0."""
    observed = t if mask is None else t[..., mask]
    if not np.all(np.isfinite(observed)):
        raise ValueError(
            f"{owner} {what}: non-finite values at observed sites; pass a mask that excludes them"
        )
    if mask is not None and not np.all(np.isfinite(t)):
        t = np.where(mask, t, 0).astype(t.dtype)
    return t


# ----------------------------------------------------------------------------------------------
# Electrode MSE
# ----------------------------------------------------------------------------------------------
def electrode_sampling_matrix(positions, *, dx: float, shape) -> sp.csr_array:
    """Sparse bilinear sampling matrix ``S`` of shape ``(ne, ny·nx)``: ``S @ y.ravel()`` is the
    field at the electrodes, exactly as :class:`wavesim.recorders.ElectrodeRecorder` samples it.

    Parameters
    ----------
    positions : ``(ne, 2)`` array of ``[x, y]`` positions in mm (inside the lattice).
    dx : lattice spacing in mm.
    shape : ``(ny, nx)``.
    """
    from wavesim.recorders import ElectrodeRecorder, Grid

    ny, nx = _shape2(shape, "ElectrodeMSE shape")
    rec = ElectrodeRecorder(positions, period=1, dx=dx)
    rec.layout(Grid(ny, nx, dx=dx, dt=1.0))  # checks every electrode lies inside the lattice
    # NB: reuses the recorder's (private) interpolation stencil so both sample identically.
    i0, i1, j0, j1, wy, wx = rec._interp_stencil(ny, nx)
    ne = len(i0)
    cols = np.stack([i0 * nx + j0, i0 * nx + j1, i1 * nx + j0, i1 * nx + j1], axis=1)
    vals = np.stack([(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx], axis=1)
    rows = np.repeat(np.arange(ne), 4)
    s = sp.coo_array((vals.ravel(), (rows, cols.ravel())), shape=(ne, ny * nx))
    return s.tocsr()  # duplicates (electrode on a pixel row/column) are summed


def _shape2(shape, what: str) -> tuple[int, int]:
    try:
        ny, nx = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected (ny, nx), got {shape!r}") from None
    if ny < 1 or nx < 1 or (ny, nx) != tuple(shape):
        raise ValueError(f"{what}: expected two positive integers (ny, nx), got {shape!r}")
    return ny, nx


class ElectrodeMSE(_SeriesLoss):
    """Weighted mean squared error of the field at electrodes (bilinear sampling).

        L = Σ_k w_k Σ_b Σ_e ((S·y_b(n_k))_e − s*_{b,e,k})²  /  (M · n_e · Σ_k w_k)

    where ``S`` is the bilinear sampling matrix of :class:`wavesim.recorders.ElectrodeRecorder`
    (the same interpolation, so a target recorded by a simulation is matched exactly). The
    gradient is ``Sᵀ`` applied to the residuals.

    Parameters
    ----------
    target : array ``(nt, ne)`` or ``(members, nt, ne)``
        Electrode signals, shared by every member or one per member; finite.
    steps : array of ``nt`` ints
        Strictly increasing state indices.
    positions : ``(ne, 2)`` array
        Electrode positions ``[x, y]`` in mm, inside the lattice.
    dx : float
        Lattice spacing in mm.
    shape : (ny, nx)
        Lattice shape.
    weights : ``(nt,)`` array, optional
        Per-time weights (see :class:`FieldMSE`).
    """

    uses_y = True
    uses_v = False

    def __init__(self, target, steps, positions, *, dx: float, shape, weights=None):
        owner = type(self).__name__
        t = _as_target(target, owner, "target", 1)
        self._per_member = np.ndim(target) == 3
        pos = np.asarray(positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 2:
            raise ValueError(
                f"{owner} positions: expected shape (ne, 2) of [x, y] in mm, got {pos.shape}"
            )
        if pos.shape[0] != t.shape[2]:
            raise ValueError(
                f"{owner} positions: {pos.shape[0]} electrodes but the target has {t.shape[2]}"
            )
        if not np.all(np.isfinite(t)):
            raise ValueError(f"{owner} target: expected finite values")
        self.shape = _shape2(shape, f"{owner} shape")
        self.dx = _positive_float(dx, f"{owner} dx")
        self.positions = pos
        self.sampling = electrode_sampling_matrix(pos, dx=self.dx, shape=self.shape)
        self._sampling_t = self.sampling.T.tocsr()
        self._init_series(t, steps, weights)

    @property
    def n_electrodes(self) -> int:
        return self.positions.shape[0]

    def sample(self, y) -> np.ndarray:
        """Field at the electrodes, ``(members, ne)`` float64, of ``y`` ``(members, ny, nx)``."""
        y = _state64(y, "y", type(self).__name__, None, self.shape)
        return np.asarray(self.sampling @ y.reshape(y.shape[0], -1).T).T

    def evaluate(self, k, y, v=None):
        k = self._check_k(k)
        y = _state64(y, "y", type(self).__name__, self.members, self.shape)
        m = y.shape[0]
        s = np.asarray(self.sampling @ y.reshape(m, -1).T).T  # (members, ne)
        r = s - self._target_k(k)
        scale = self._scale[k] / (m * self.n_electrodes)
        value = float(scale * np.sum(r * r))
        grad = np.asarray(self._sampling_t @ ((2.0 * scale) * r).T).T  # S^T r
        return value, grad.reshape(y.shape), None

    @classmethod
    def from_dataarray(
        cls,
        data,
        dt: float | None = None,
        *,
        name: str = "electrodes",
        dx: float | None = None,
        shape=None,
        weights=None,
        warmup_ms: float | None = None,
    ) -> ElectrodeMSE:
        """An :class:`ElectrodeMSE` whose target is a recorded electrode signal.

        Parameters
        ----------
        data : xarray.DataArray, xarray.Dataset or path of a wavesim store
            The signals, dims ``(time_<name>, <electrode dim>)`` (optionally ``member`` first),
            with the time coordinate in ms and the electrode position coordinates
            ``electrode_x``, ``electrode_y`` (``<name>_electrode_x``, ... for another recorder
            name), as :class:`wavesim.recorders.ElectrodeRecorder` writes them.
        dt : float, optional
            Integrator step in ms; from a dataset, defaults to its ``dt`` attribute.
        name : str
            The recorder's variable name in a dataset (``"electrodes"``).
        dx : float, optional
            Lattice spacing (mm); from a dataset, defaults to its ``dx`` attribute.
        shape : (ny, nx), optional
            Lattice shape; from a dataset, defaults to ``[lattice] shape`` of its scenario, else
            the ``y_lattice``/``x_lattice`` or full ``y``/``x`` dimensions.
        weights, warmup_ms : see :meth:`FieldMSE.from_dataarray`.
        """
        owner = cls.__name__
        da, values, times, steps, ds = _series_from_da(data, name, dt, owner, 1)
        edim = [d for d in da.dims if d not in ("member",) and not str(d).startswith("time")][0]
        prefix = "" if edim == "electrode" else str(edim)[: -len("electrode")]
        cx, cy = f"{prefix}electrode_x", f"{prefix}electrode_y"
        if cx not in da.coords or cy not in da.coords:
            raise ValueError(
                f"{owner}.from_dataarray: no electrode position coordinates {cx!r}, {cy!r} "
                f"on dims {da.dims}"
            )
        pos = np.stack([np.asarray(da[cx].values), np.asarray(da[cy].values)], axis=1)
        if dx is None:
            if ds is None or "dx" not in ds.attrs:
                raise ValueError(f"{owner}.from_dataarray: dx (lattice spacing in mm) is required")
            dx = ds.attrs["dx"]
        if shape is None:
            shape = _lattice_shape(ds)
            if shape is None:
                raise ValueError(
                    f"{owner}.from_dataarray: shape (ny, nx) of the lattice is required"
                )
        weights = _weights_with_warmup(weights, times, warmup_ms)
        return cls(values, steps, pos, dx=dx, shape=shape, weights=weights)

    def __repr__(self) -> str:
        return f"ElectrodeMSE({len(self.steps)} times, {self.n_electrodes} electrodes)"


def _lattice_shape(ds: xr.Dataset | None):
    if ds is None:
        return None
    text = ds.attrs.get("scenario")
    if text:
        try:
            shape = tomllib.loads(str(text)).get("lattice", {}).get("shape")
        except tomllib.TOMLDecodeError:
            shape = None
        if shape is not None and len(shape) == 2:
            return tuple(int(s) for s in shape)
    if "y_lattice" in ds.sizes and "x_lattice" in ds.sizes:
        return ds.sizes["y_lattice"], ds.sizes["x_lattice"]
    field = ds.get("field")
    if field is not None and int(field.attrs.get("subsample", 1)) == 1 and "y" in ds.sizes:
        return ds.sizes["y"], ds.sizes["x"]
    return None


# ----------------------------------------------------------------------------------------------
# Phase loss
# ----------------------------------------------------------------------------------------------
class PhaseLoss(_SeriesLoss):
    """Weighted mean of ``1 − cos(φ − φ*)`` with the oscillator phase ``φ = atan2(−v/ω, y)``.

        L = Σ_k w_k Σ_b Σ_{i∈S} (1 − (a·cos φ* + b·sin φ*) / √(a² + b² + ε²)) / (M·|S|·Σ_k w_k)

    with ``a = y``, ``b = −v/ω`` (so that ``φ = atan2(b, a)``).

    For ``√(a² + b²) ≫ ε`` the fraction is ``cos(φ − φ*)`` (relative error ``ε²/(2r²)``). ``ε``
    keeps value and gradient finite at rest (r → 0), where the phase is undefined: there the
    fraction tends to 0, so a site at rest costs 1 (the mean cost of a random phase) and its
    gradient is bounded by about ``1/ε``. Choose ``ε`` well below the amplitude of ``y``.

    ``ω`` (rad/ms) is a fixed constant of the loss, as in :func:`wavesim.analysis.oscillator_phase`:
    it only scales ``v`` into the phase plane and is **not** differentiated through, even when
    ``omega2`` is a learned parameter of the model.

    Parameters
    ----------
    target_phase : array ``(nt, ny, nx)`` or ``(members, nt, ny, nx)``
        Target phase in rad (any branch). Values outside ``mask`` may be NaN.
    steps : array of ``nt`` ints
        Strictly increasing state indices.
    omega : float or ``(ny, nx)`` array
        Angular frequency in rad/ms (> 0 at observed sites).
    mask : ``(ny, nx)`` bool array, optional
        Observed sites.
    weights : ``(nt,)`` array, optional
        Per-time weights.
    eps : float
        Regularisation of the amplitude, in units of ``y`` (default 1e-3).
    """

    uses_y = True
    uses_v = True

    def __init__(self, target_phase, steps, *, omega, mask=None, weights=None, eps: float = 1e-3):
        owner = type(self).__name__
        t = _as_target(target_phase, owner, "target_phase", 2)
        self._per_member = np.ndim(target_phase) == 4
        self.shape = t.shape[2:]
        self.mask = _as_mask(mask, self.shape, owner)
        self.n_observed = (
            int(self.mask.sum()) if self.mask is not None else int(np.prod(self.shape))
        )
        t = _clean_target(t, self.mask, owner, "target_phase")
        if np.ndim(omega) == 0:
            self.omega = _positive_float(omega, f"{owner} omega")
        else:
            om = np.asarray(omega, dtype=np.float64)
            if om.shape != tuple(self.shape):
                raise ValueError(
                    f"{owner} omega: expected a number or an (ny, nx) = {tuple(self.shape)} map, "
                    f"got shape {om.shape}"
                )
            observed = om if self.mask is None else om[self.mask]
            if not np.all(np.isfinite(observed) & (observed > 0)):
                raise ValueError(f"{owner} omega: expected values > 0 at observed sites")
            self.omega = np.where(np.isfinite(om) & (om > 0), om, 1.0)
        eps = float(eps)
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"{owner} eps: expected a positive number, got {eps!r}")
        self.eps = eps
        self._init_series(t, steps, weights)

    def evaluate(self, k, y, v):
        k = self._check_k(k)
        owner = type(self).__name__
        y = _state64(y, "y", owner, self.members, self.shape)
        v = _state64(v, "v", owner, self.members, self.shape)
        if v.shape != y.shape:
            raise ValueError(f"{owner}.evaluate: y {y.shape} and v {v.shape} differ in shape")
        phi_t = self._target_k(k)
        c, s = np.cos(phi_t), np.sin(phi_t)
        a = y
        b = -v / self.omega
        r2 = a * a + b * b + self.eps**2
        r = np.sqrt(r2)
        p = (a * c + b * s) / r  # cos(phi - phi*) for r >> eps
        dp_da = c / r - p * a / r2
        dp_db = s / r - p * b / r2
        scale = self._scale[k] / (y.shape[0] * self.n_observed)
        if self.mask is not None:
            p = np.where(self.mask, p, 1.0)
            dp_da *= self.mask
            dp_db *= self.mask
        value = float(scale * np.sum(1.0 - p))
        grad_y = -scale * dp_da
        grad_v = (scale / self.omega) * dp_db  # d b / d v = -1/omega
        return value, grad_y, grad_v

    @classmethod
    def from_dataarray(
        cls,
        data,
        dt: float | None = None,
        *,
        omega,
        var: str = "phase",
        mask=None,
        weights=None,
        warmup_ms: float | None = None,
        eps: float = 1e-3,
    ) -> PhaseLoss:
        """A :class:`PhaseLoss` whose target is a phase DataArray (e.g. the output of
        :func:`wavesim.analysis.oscillator_phase`), dims ``([member,] time, y, x)`` with the time
        coordinate in ms. Arguments as in :meth:`FieldMSE.from_dataarray`."""
        _, values, times, steps, _ = _series_from_da(data, var, dt, cls.__name__, 2)
        weights = _weights_with_warmup(weights, times, warmup_ms)
        return cls(values, steps, omega=omega, mask=mask, weights=weights, eps=eps)

    def __repr__(self) -> str:
        return f"PhaseLoss({len(self.steps)} times, shape {tuple(self.shape)}, eps={self.eps:g})"
