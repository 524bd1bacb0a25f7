"""Forecasting baselines and skill metrics for movies of frames (recordings or simulations).

Arrays hold frames along a time axis: ``(time, *frame)`` for one sequence or ``(n, time, *frame)``
for ``n`` sequences (any number of leading axes), where a frame is ``(y, x)`` by default
(``frame_ndim=2``; use ``frame_ndim=1`` for vectors such as electrode channels). An optional
boolean ``mask`` of the frame's shape marks the valid sites (True); every baseline and metric
ignores the others.

Baselines (each ``f(context, horizon) -> forecast``; the forecast holds ``horizon`` frames after
the last context frame, with the leading axes of ``context``):

* :func:`copy_last` — persistence: every future frame equals the last context frame;
* :func:`mean_frame` — the mean of the last ``window`` context frames (all by default);
* :class:`RidgeAR` — a linear autoregressive model of order ``p`` on the frames (or on their
  leading principal components), fitted by closed-form ridge regression with the ridge strength
  and the number of components chosen by validation on held-out training time, and iterated to
  forecast several steps.

Metrics (``forecast`` and ``target`` of the same shape ``(..., horizon, *frame)``):

* :func:`forecast_mse` — mean squared error per horizon step;
* :func:`relative_error` — ‖x̂ − x‖² / ‖x‖² per horizon step;
* :func:`valid_prediction_time` — how many steps a forecast stays below a relative error (0.025).

Example
-------
>>> import numpy as np
>>> from wavesim.forecasting import RidgeAR, copy_last, forecast_mse
>>> rng = np.random.default_rng(0)
>>> movie = np.cumsum(rng.standard_normal((200, 8, 8)), axis=0)  # (time, y, x)
>>> ar = RidgeAR(order=2).fit(movie[:150])
>>> pred = ar.forecast(movie[130:150], 10)  # the 10 frames after frame 149
>>> forecast_mse(pred, movie[150:160]).shape
(10,)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "RELATIVE_ERROR_THRESHOLD",
    "RidgeAR",
    "copy_last",
    "forecast_mse",
    "mean_frame",
    "relative_error",
    "valid_prediction_time",
]

#: Relative error above which a forecast is no longer valid (:func:`valid_prediction_time`).
RELATIVE_ERROR_THRESHOLD = 0.025


# --------------------------------------------------------------------------------------------
# input checks


def _frames(a, name: str, frame_ndim: int, *, min_time: int = 1) -> np.ndarray:
    """``a`` as a float array ``(..., time, *frame)``; checks the number of dims and frames."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{name}: expected a real array of frames, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim < frame_ndim + 1:
        raise ValueError(
            f"{name}: expected frames of shape (..., time, {_frame_dims(frame_ndim)}) with "
            f"frame_ndim={frame_ndim}, got shape {arr.shape}"
        )
    nt = arr.shape[-frame_ndim - 1]
    if nt < min_time:
        raise ValueError(
            f"{name}: expected at least {min_time} frame(s) along the time axis "
            f"(axis {-frame_ndim - 1}), got {nt}"
        )
    return arr


def _frame_dims(frame_ndim: int) -> str:
    return {1: "site", 2: "y, x"}.get(frame_ndim, ", ".join(f"d{i}" for i in range(frame_ndim)))


def _check_frame_ndim(frame_ndim) -> int:
    if isinstance(frame_ndim, bool) or not isinstance(frame_ndim, int | np.integer):
        raise ValueError(f"frame_ndim: expected a positive integer, got {frame_ndim!r}")
    if frame_ndim < 1:
        raise ValueError(f"frame_ndim: expected a positive integer, got {frame_ndim!r}")
    return int(frame_ndim)


def _check_horizon(horizon) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"horizon: expected a positive integer number of frames, got {horizon!r}")
    return int(horizon)


def _mask(mask, frame_shape: tuple[int, ...], name: str = "mask") -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != tuple(frame_shape):
        raise ValueError(
            f"{name}: expected a boolean array of the frame's shape {tuple(frame_shape)}, "
            f"got shape {m.shape}"
        )
    if m.dtype != bool:
        if m.dtype.kind not in "iuf" or not np.all(np.isin(m, (0, 1))):
            raise ValueError(f"{name}: expected a boolean (or 0/1) array, got dtype {m.dtype}")
        m = m.astype(bool)
    if not m.any():
        raise ValueError(f"{name}: no valid site (the mask is all False)")
    return m


# --------------------------------------------------------------------------------------------
# simple baselines


def copy_last(context, horizon: int, *, frame_ndim: int = 2) -> np.ndarray:
    """Persistence forecast: every one of the ``horizon`` future frames is the last context frame.

    Parameters
    ----------
    context : array_like, shape ``(..., time, *frame)``
        The frames before the forecast (only the last one is used).
    horizon : int
        Number of frames to forecast.
    frame_ndim : int
        Number of trailing axes of one frame (2 for images ``(y, x)``).

    Returns
    -------
    numpy.ndarray, shape ``(..., horizon, *frame)``, float64
    """
    frame_ndim = _check_frame_ndim(frame_ndim)
    horizon = _check_horizon(horizon)
    c = _frames(context, "context", frame_ndim)
    last = np.take(c, [-1], axis=-frame_ndim - 1)
    return np.repeat(last, horizon, axis=-frame_ndim - 1)


def mean_frame(context, horizon: int, *, window: int | None = None, frame_ndim: int = 2):
    """Forecast every future frame as the mean of the last ``window`` context frames.

    Parameters
    ----------
    context : array_like, shape ``(..., time, *frame)``
    horizon : int
        Number of frames to forecast.
    window : int, optional
        How many of the last context frames to average (default: all of them). ``window=1`` is
        :func:`copy_last`.
    frame_ndim : int
        Number of trailing axes of one frame.

    Returns
    -------
    numpy.ndarray, shape ``(..., horizon, *frame)``, float64
    """
    frame_ndim = _check_frame_ndim(frame_ndim)
    horizon = _check_horizon(horizon)
    c = _frames(context, "context", frame_ndim)
    ax = -frame_ndim - 1
    nt = c.shape[ax]
    if window is not None:
        if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
            raise ValueError(f"window: expected a positive integer, got {window!r}")
        if window > nt:
            raise ValueError(f"window: {window} frames requested, the context holds {nt}")
        c = np.take(c, np.arange(nt - window, nt), axis=ax)
    m = c.mean(axis=ax, keepdims=True)
    return np.repeat(m, horizon, axis=ax)


# --------------------------------------------------------------------------------------------
# metrics


def _pair(forecast, target, mask, frame_ndim):
    frame_ndim = _check_frame_ndim(frame_ndim)
    f = _frames(forecast, "forecast", frame_ndim)
    t = _frames(target, "target", frame_ndim)
    if f.shape != t.shape:
        raise ValueError(
            f"forecast and target: expected the same shape (..., horizon, *frame), got "
            f"{f.shape} and {t.shape}"
        )
    frame_shape = f.shape[f.ndim - frame_ndim :]
    m = _mask(mask, frame_shape)
    # (..., horizon, sites)
    f = f.reshape(*f.shape[: f.ndim - frame_ndim], -1)
    t = t.reshape(*t.shape[: t.ndim - frame_ndim], -1)
    if m is not None:
        f = f[..., m.ravel()]
        t = t[..., m.ravel()]
    bad = ~np.isfinite(t)
    if bad.any():
        raise ValueError(
            "target: has non-finite values at valid sites; pass a mask that excludes them"
        )
    if (~np.isfinite(f)).any():
        raise ValueError("forecast: has non-finite values at valid sites")
    return f, t


def _reduce(sq: np.ndarray, pooled: bool) -> np.ndarray:
    """Sum of ``sq`` (..., horizon, sites) over sites, and over leading axes when pooled."""
    s = sq.sum(axis=-1)
    if pooled and s.ndim > 1:
        s = s.reshape(-1, s.shape[-1]).sum(axis=0)
    return s


def forecast_mse(forecast, target, *, mask=None, frame_ndim: int = 2, pooled: bool = True):
    """Mean squared error of a forecast, per horizon step.

    Parameters
    ----------
    forecast, target : array_like, shape ``(..., horizon, *frame)``
        The forecast and the true frames.
    mask : array_like of bool, shape ``frame``, optional
        Valid sites (True); the others are ignored (they may be NaN in both arrays).
    frame_ndim : int
        Number of trailing axes of one frame.
    pooled : bool
        True: one curve, averaged over all leading axes (sequences) and valid sites. False: one
        curve per sequence, shape ``(..., horizon)``.

    Returns
    -------
    numpy.ndarray, shape ``(horizon,)`` or ``(..., horizon)``
        ``mean((x̂ − x)²)`` over valid sites (and sequences) at every step.
    """
    f, t = _pair(forecast, target, mask, frame_ndim)
    sq = (f - t) ** 2
    count = sq.shape[-1]
    if pooled and sq.ndim > 2:
        count *= math.prod(sq.shape[:-2])
    return _reduce(sq, pooled) / count


def relative_error(forecast, target, *, mask=None, frame_ndim: int = 2, pooled: bool = True):
    """Relative squared error ‖x̂ − x‖² / ‖x‖² of a forecast, per horizon step.

    Norms are taken over the valid sites of each frame (and, when ``pooled``, summed over the
    sequences before the ratio). A target frame that is exactly 0 everywhere gives ``inf`` (or
    ``nan`` when the forecast is exact too).

    Parameters
    ----------
    forecast, target : array_like, shape ``(..., horizon, *frame)``
    mask : array_like of bool, shape ``frame``, optional
        Valid sites (True).
    frame_ndim : int
        Number of trailing axes of one frame.
    pooled : bool
        True: one curve for all sequences; False: one per sequence, ``(..., horizon)``.

    Returns
    -------
    numpy.ndarray, shape ``(horizon,)`` or ``(..., horizon)``
    """
    f, t = _pair(forecast, target, mask, frame_ndim)
    num = _reduce((f - t) ** 2, pooled)
    den = _reduce(t**2, pooled)
    with np.errstate(divide="ignore", invalid="ignore"):
        return num / den


def valid_prediction_time(
    error, *, threshold: float = RELATIVE_ERROR_THRESHOLD, dt: float | None = None
):
    """How long a forecast stays valid: the steps before its error first exceeds ``threshold``.

    Parameters
    ----------
    error : array_like, shape ``(..., horizon)``
        An error curve per horizon step, usually :func:`relative_error` (step 1 first).
    threshold : float
        The largest valid error (default 0.025, :data:`RELATIVE_ERROR_THRESHOLD`).
    dt : float, optional
        Time between frames; when given, the result is in that unit instead of steps.

    Returns
    -------
    int or float or numpy.ndarray
        The 0-based index of the first step whose error is above ``threshold`` (equivalently,
        the number of leading valid steps), or ``horizon`` when no step exceeds it; times ``dt``
        when given. A NaN error counts as exceeding. One value per leading index of ``error``.

    Examples
    --------
    >>> valid_prediction_time([0.01, 0.02, 0.03, 0.01])  # step 3 (index 2) is the first above
    2
    >>> valid_prediction_time([0.01, 0.02], dt=0.5)  # never exceeded: the horizon, in time
    1.0
    """
    e = np.asarray(error, dtype=np.float64)
    if e.ndim < 1 or e.shape[-1] < 1:
        raise ValueError(f"error: expected an error curve of shape (..., horizon), got {e.shape}")
    thr = float(threshold)
    if not (math.isfinite(thr) and thr >= 0):
        raise ValueError(f"threshold: expected a finite number >= 0, got {threshold!r}")
    over = ~(e <= thr)  # NaN counts as over
    horizon = e.shape[-1]
    steps = np.where(over.any(axis=-1), over.argmax(axis=-1), horizon)
    if dt is not None:
        dt = float(dt)
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt: expected a positive time step, got {dt!r}")
        out = steps * dt
        return float(out) if np.ndim(out) == 0 else out.astype(float)
    return int(steps) if np.ndim(steps) == 0 else steps.astype(np.int64)


# --------------------------------------------------------------------------------------------
# ridge-regression linear autoregression


#: Ridge strengths tried when ``alpha`` is not given, relative to the mean feature variance.
DEFAULT_ALPHAS = tuple(10.0 ** np.arange(-6.0, 2.5, 0.5))


def _sequences(data, frame_ndim: int, name: str) -> list[np.ndarray]:
    """A list of float arrays ``(time, *frame)`` from an array or a sequence of arrays."""
    if isinstance(data, np.ndarray) or not isinstance(data, Sequence):
        arr = _frames(data, name, frame_ndim)
        lead = arr.shape[: arr.ndim - frame_ndim - 1]
        return list(arr.reshape(-1, *arr.shape[len(lead) :])) if lead else [arr]
    out = []
    for i, s in enumerate(data):
        a = _frames(s, f"{name}[{i}]", frame_ndim)
        if a.ndim != frame_ndim + 1:
            raise ValueError(
                f"{name}[{i}]: expected one sequence of shape (time, {_frame_dims(frame_ndim)}), "
                f"got {a.shape}"
            )
        out.append(a)
    if not out:
        raise ValueError(f"{name}: expected at least one sequence")
    shapes = {a.shape[1:] for a in out}
    if len(shapes) > 1:
        raise ValueError(f"{name}: the sequences have different frame shapes {sorted(shapes)}")
    return out


def _lagged(seqs: list[np.ndarray], order: int):
    """Features ``[z_{t-1}, ..., z_{t-p}]`` and targets ``z_t`` of every sequence."""
    xs, ys = [], []
    for z in seqs:
        n = z.shape[0] - order
        if n <= 0:
            continue
        xs.append(np.concatenate([z[order - j : order - j + n] for j in range(1, order + 1)], 1))
        ys.append(z[order:])
    if not xs:
        return None, None
    return np.concatenate(xs), np.concatenate(ys)


class _RidgeSolution:
    """Ridge regressions ``Y ≈ c + X B`` for many strengths from one SVD of centred ``X``."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.mx = x.mean(0)
        self.my = y.mean(0)
        xc = x - self.mx
        self.n = x.shape[0]
        self.u, self.s, self.vt = np.linalg.svd(xc, full_matrices=False)
        self.uty = self.u.T @ (y - self.my)
        self.scale = float(np.sum(xc**2)) / (self.n * x.shape[1])  # mean feature variance

    def coef(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """``B`` (features, outputs) and intercept for min (1/N)‖Y − c − XB‖² + α‖B‖²."""
        s2 = self.s**2
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(self.s > 0, self.s / (s2 + self.n * alpha), 0.0)
        if alpha == 0:  # minimum-norm least squares: drop numerically zero singular values
            tol = self.s.max(initial=0.0) * max(self.u.shape) * np.finfo(float).eps
            d = np.where(self.s > tol, 1.0 / np.where(self.s > tol, self.s, 1.0), 0.0)
        b = self.vt.T @ (d[:, None] * self.uty)
        return b, self.my - self.mx @ b


class RidgeAR:
    """Linear autoregressive forecaster of frames, fitted by ridge regression.

    The model predicts the next frame from the last ``order`` frames,

        z_t = c + A_1 z_{t-1} + ... + A_p z_{t-p},

    where ``z`` is the frame restricted to its valid sites or, with ``n_components = k``, the
    coordinates of the (mean-removed) frame on the ``k`` leading principal components of the
    training frames (the rest of a forecast frame is the training mean). The coefficients
    minimize ``(1/N) Σ‖z_t − ẑ_t‖² + α Σ‖A_j‖²`` in closed form (one SVD serves every α); the
    intercept is not penalized. Forecasts iterate the one-step model on its own predictions.

    When ``alpha`` (or ``n_components = "auto"``) is not given, the last ``val_fraction`` of
    every training sequence is held out: models fitted on the earlier part are scored by the
    mean squared error of ``val_horizon``-step forecasts from every origin in the held-out part,
    the best ``(alpha, n_components)`` is kept, and the model is refitted on all the training
    frames with it.

    Parameters
    ----------
    order : int
        Number of past frames ``p`` (>= 1).
    alpha : float, optional
        Ridge strength (>= 0; 0 is least squares, minimum norm when under-determined). Default:
        chosen by validation among ``alphas``.
    alphas : sequence of float, optional
        Candidate strengths *relative to the mean variance of the features* (so the grid does
        not depend on the data's units); default ``10**arange(-6, 2.5, 0.5)``.
    n_components : int, "auto" or None
        Principal components kept (None: all valid sites, no reduction; an int: that many;
        "auto": chosen by validation among ``components``).
    components : sequence of int, optional
        Candidates for ``n_components="auto"`` (default: 4, 8, 16, 32, 64 and all, capped by the
        number of sites and of training frames).
    mask : array_like of bool, optional
        Valid sites of a frame (True); the others are ignored in fitting and come out as ``fill``
        in forecasts.
    val_fraction : float
        Fraction of each training sequence (its end) held out for validation.
    val_horizon : int
        Forecast length scored in validation (1 = one-step prediction error).
    frame_ndim : int
        Number of trailing axes of one frame (2 for images).
    fill : float
        Value of invalid sites in forecasts (NaN by default).

    Attributes
    ----------
    alpha_ : float
        The absolute ridge strength used (model units²).
    n_components_ : int or None
        The number of principal components used (None: none, the sites themselves).
    coef_ : numpy.ndarray, shape ``(order, k, k)``
        ``A_1 ... A_p`` in the model's coordinates (sites or components).
    intercept_ : numpy.ndarray, shape ``(k,)``
    mean_ : numpy.ndarray, shape ``(sites,)``
        Mean training frame (valid sites), removed before the principal components.
    components_ : numpy.ndarray, shape ``(k, sites)`` or None
    validation_ : dict or None
        ``{(n_components, alpha_relative): validation MSE}`` of every candidate tried.

    Examples
    --------
    >>> ar = RidgeAR(order=3, n_components="auto").fit(train, mask=mask)  # doctest: +SKIP
    >>> pred = ar.forecast(context, horizon=20)  # doctest: +SKIP
    """

    def __init__(
        self,
        order: int = 2,
        *,
        alpha: float | None = None,
        alphas: Sequence[float] | None = None,
        n_components: int | str | None = None,
        components: Sequence[int] | None = None,
        mask=None,
        val_fraction: float = 0.25,
        val_horizon: int = 1,
        frame_ndim: int = 2,
        fill: float = np.nan,
    ):
        if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 1:
            raise ValueError(f"order: expected a positive integer, got {order!r}")
        self.order = int(order)
        if alpha is not None:
            alpha = float(alpha)
            if not (math.isfinite(alpha) and alpha >= 0):
                raise ValueError(f"alpha: expected a finite number >= 0, got {alpha!r}")
        self.alpha = alpha
        self.alphas = tuple(float(a) for a in (DEFAULT_ALPHAS if alphas is None else alphas))
        if not self.alphas or any(not (math.isfinite(a) and a >= 0) for a in self.alphas):
            raise ValueError(f"alphas: expected finite numbers >= 0, got {alphas!r}")
        if n_components is not None and n_components != "auto":
            if isinstance(n_components, bool) or not isinstance(n_components, int | np.integer):
                raise ValueError(
                    f"n_components: expected a positive integer, 'auto' or None, got "
                    f"{n_components!r}"
                )
            if n_components < 1:
                raise ValueError(f"n_components: expected >= 1, got {n_components!r}")
            n_components = int(n_components)
        self.n_components = n_components
        self.components = None if components is None else tuple(int(c) for c in components)
        if not (0 < float(val_fraction) < 1):
            raise ValueError(f"val_fraction: expected a number in (0, 1), got {val_fraction!r}")
        self.val_fraction = float(val_fraction)
        if isinstance(val_horizon, bool) or not isinstance(val_horizon, int | np.integer):
            raise ValueError(f"val_horizon: expected a positive integer, got {val_horizon!r}")
        if val_horizon < 1:
            raise ValueError(f"val_horizon: expected a positive integer, got {val_horizon!r}")
        self.val_horizon = int(val_horizon)
        self.frame_ndim = _check_frame_ndim(frame_ndim)
        self.mask = mask
        self.fill = float(fill)
        self.validation_: dict | None = None

    # -- fitting -------------------------------------------------------------------------------
    def _fit_coords(self, seqs, n_components):
        """(mean, components or None, coordinate sequences) of valid-site sequences."""
        stacked = np.concatenate(seqs)
        mean = stacked.mean(0)
        if n_components is None:
            return mean, None, [s - mean for s in seqs]
        _, _, vt = np.linalg.svd(stacked - mean, full_matrices=False)
        comps = vt[: min(n_components, vt.shape[0])]
        return mean, comps, [(s - mean) @ comps.T for s in seqs]

    def _solve(self, coords):
        x, y = _lagged(coords, self.order)
        if x is None:
            raise ValueError(
                f"sequences: every training sequence is shorter than order + 1 = "
                f"{self.order + 1} frames; nothing to fit"
            )
        return _RidgeSolution(x, y)

    def _candidates(self, n_sites: int, n_frames: int):
        if self.n_components == "auto":
            grid = self.components or (4, 8, 16, 32, 64, None)
            out: list[int | None] = []
            for k in grid:
                k = None if k is None or k >= n_sites else min(int(k), n_frames)
                if k not in out:
                    out.append(k)
            return out
        return [self.n_components]

    def fit(self, sequences, *, mask=None) -> RidgeAR:
        """Fit the model to training frames.

        Parameters
        ----------
        sequences : array_like or sequence of array_like
            ``(time, *frame)``, ``(n, time, *frame)`` or a list of ``(time_i, *frame)``
            sequences (lengths may differ). Frames are consecutive in time within a sequence;
            no pair of frames across sequences is used.
        mask : array_like of bool, optional
            Valid sites (overrides the constructor's ``mask``).

        Returns
        -------
        RidgeAR
            ``self``, fitted.
        """
        seqs = _sequences(sequences, self.frame_ndim, "sequences")
        self.frame_shape_ = seqs[0].shape[1:]
        m = _mask(self.mask if mask is None else mask, self.frame_shape_)
        self.mask_ = np.ones(self.frame_shape_, bool) if m is None else m
        flat = [s.reshape(s.shape[0], -1)[:, self.mask_.ravel()] for s in seqs]
        for i, s in enumerate(flat):
            if not np.all(np.isfinite(s)):
                raise ValueError(
                    f"sequences[{i}]: non-finite values at valid sites; pass a mask that "
                    "excludes them"
                )
        n_sites = flat[0].shape[1]
        n_frames = sum(s.shape[0] for s in flat)
        candidates = self._candidates(n_sites, n_frames)
        need_validation = self.alpha is None or len(candidates) > 1
        if need_validation:
            rel_alphas = self.alphas if self.alpha is None else (None,)
            best = self._validate(flat, candidates, rel_alphas)
            k, rel = best
        else:
            k, rel = candidates[0], None
        mean, comps, coords = self._fit_coords(flat, k)
        sol = self._solve(coords)
        alpha = self.alpha if rel is None else rel * sol.scale
        self._set(sol, alpha, mean, comps)
        self.n_components_ = None if comps is None else comps.shape[0]
        return self

    def _set(self, sol, alpha, mean, comps):
        b, c = sol.coef(alpha)
        k = b.shape[1]
        # b: (order*k, k) with rows [z_{t-1}; ...; z_{t-p}] -> A_j = b[j*k:(j+1)*k].T
        self.coef_ = np.stack([b[j * k : (j + 1) * k].T for j in range(self.order)])
        self.intercept_ = c
        self.alpha_ = float(alpha)
        self.mean_ = mean
        self.components_ = comps

    def _validate(self, flat, candidates, rel_alphas):
        train, val = [], []
        for s in flat:
            n_val = max(int(round(self.val_fraction * s.shape[0])), 1)
            if s.shape[0] - n_val >= self.order + 1:
                train.append(s[:-n_val])
                # the validation part keeps `order` frames of context before it
                val.append(s[-n_val - self.order :])
            else:
                train.append(s)
        if not val or all(v.shape[0] < self.order + 1 for v in val):
            raise ValueError(
                "sequences: too short to hold out validation frames for choosing alpha "
                f"(order={self.order}, val_fraction={self.val_fraction}); give alpha "
                "and an integer n_components, or longer sequences"
            )
        scores = {}
        for k in candidates:
            mean, comps, coords = self._fit_coords(train, k)
            sol = self._solve(coords)
            for rel in rel_alphas:
                alpha = self.alpha if rel is None else rel * sol.scale
                self._set(sol, alpha, mean, comps)
                err, cnt = 0.0, 0
                for v in val:
                    h = min(self.val_horizon, v.shape[0] - self.order)
                    origins = range(self.order, v.shape[0] - h + 1)
                    ctx = np.stack([v[o - self.order : o] for o in origins])
                    tgt = np.stack([v[o : o + h] for o in origins])
                    pred = self._rollout(ctx, h)
                    err += float(np.sum((pred - tgt) ** 2))
                    cnt += tgt.size
                scores[(k, rel)] = err / cnt if np.isfinite(err) else np.inf
        self.validation_ = scores
        return min(scores, key=scores.get)

    # -- forecasting ---------------------------------------------------------------------------
    def _rollout(self, ctx: np.ndarray, horizon: int) -> np.ndarray:
        """Forecast from valid-site contexts ``(n, >= order, sites)``: ``(n, horizon, sites)``."""
        z = ctx[:, -self.order :] - self.mean_
        if self.components_ is not None:
            z = z @ self.components_.T
        hist = [z[:, -j] for j in range(1, self.order + 1)]  # z_{t-1}, ..., z_{t-p}
        out = []
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(horizon):
                nxt = self.intercept_ + sum(h @ a.T for h, a in zip(hist, self.coef_, strict=True))
                out.append(nxt)
                hist = [nxt, *hist[:-1]]
        z = np.stack(out, axis=1)
        if self.components_ is not None:
            z = z @ self.components_
        return z + self.mean_

    def forecast(self, context, horizon: int) -> np.ndarray:
        """Forecast ``horizon`` frames after the last frame of ``context``.

        Parameters
        ----------
        context : array_like, shape ``(..., time, *frame)``
            At least ``order`` frames (only the last ``order`` are used).
        horizon : int

        Returns
        -------
        numpy.ndarray, shape ``(..., horizon, *frame)``
            Invalid sites hold ``fill``.
        """
        if not hasattr(self, "coef_"):
            raise RuntimeError("RidgeAR.forecast: call fit(...) first")
        horizon = _check_horizon(horizon)
        c = _frames(context, "context", self.frame_ndim, min_time=self.order)
        fshape = c.shape[c.ndim - self.frame_ndim :]
        if fshape != self.frame_shape_:
            raise ValueError(
                f"context: frames of shape {fshape}, the model was fitted on {self.frame_shape_}"
            )
        lead = c.shape[: c.ndim - self.frame_ndim - 1]
        flat = c.reshape(-1, c.shape[-self.frame_ndim - 1], int(np.prod(fshape)))
        valid = flat[..., self.mask_.ravel()]
        if not np.all(np.isfinite(valid[:, -self.order :])):
            raise ValueError("context: non-finite values at valid sites")
        pred = self._rollout(valid, horizon)
        out = np.full((flat.shape[0], horizon, flat.shape[-1]), self.fill)
        out[..., self.mask_.ravel()] = pred
        return out.reshape(*lead, horizon, *fshape)

    def __repr__(self) -> str:
        fitted = (
            f", alpha_={self.alpha_:.3g}, n_components_={self.n_components_}"
            if hasattr(self, "coef_")
            else ""
        )
        return f"RidgeAR(order={self.order}{fitted})"
