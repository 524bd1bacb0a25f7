"""Fit a lattice to an imaging recording and measure its forecast skill on held-out time.

The model is the wavesim lattice, one oscillator per pixel,

    ÿ = σ(W⋆y + b) − ω²·y − γ·ẏ                (σ = tanh or the identity)

with the coupling stencil ``W``, the frequency ``ω²``, the damping ``γ`` and the bias ``b``
(optionally per-site maps) learned with the adjoint machinery of :mod:`wavesim.learn`
(:func:`wavesim.learn.fit`, :class:`~wavesim.learn.FieldMSE`). The recording becomes a
scenario: lattice shape = frame shape, ``dx`` = the pixel spacing (1 when it is unknown: the
lattice's "mm" are then pixels), ``dt`` = frame interval / ``substeps``, the recording's mask as
the lattice mask (sites outside are held at rest), reflecting edges.

**Training.** Inside the training interval, every ``stride`` frames starts a window: the
lattice is initialised from the ``context`` frames up to the window's origin (``y0`` = the value
of a least-squares line through them at the origin, ``v0`` = its slope; ``context=1`` gives the
last frame and ``v0 = 0``) and must reproduce the next ``horizon`` frames. All windows are fitted
together as members of one batch, so the loss is the mean squared forecast error over the
training windows — the quantity reported on held-out time.

**Held-out forecasts.** Test windows start at the last training frame (the ``horizon`` frames
right after the training interval) and every ``horizon`` frames after it; each is initialised
only from frames up to its origin. The same windows are forecast by :func:`copy_last`, by the
mean of the ``context`` frames (:func:`mean_frame`) and by :class:`RidgeAR`, fitted on the same
training frames with its order, ridge and number of principal components chosen by validation on
held-out training time.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from wavesim.forecasting import (
    RidgeAR,
    copy_last,
    forecast_mse,
    mean_frame,
    relative_error,
    valid_prediction_time,
)

__all__ = [
    "METHODS",
    "RecordingFit",
    "fit_recording",
    "initial_from_frames",
    "lattice_forecast",
    "recording_scenario",
    "select_ridge_ar",
    "skill_table",
]

#: Forecasting methods compared by :func:`fit_recording`, in table order.
METHODS = ("lattice", "copy_last", "mean_frame", "ridge_ar")

_LAPLACIAN = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def _error(msg: str) -> ValueError:
    from wavesim.recordings.layout import RecordingError

    return RecordingError(msg)


# --------------------------------------------------------------------------------------------
# the recording as arrays


@dataclass
class _Movie:
    values: np.ndarray  # (time, ny, nx) float64, 0 at invalid sites
    mask: np.ndarray  # (ny, nx) bool
    time: np.ndarray  # ms
    dt: float  # ms per frame
    dx: float  # spacing of the x/y coordinates
    units: str  # "mm" or "px"


def _as_movie(ds: xr.Dataset) -> _Movie:
    if not isinstance(ds, xr.Dataset) or "field" not in ds.data_vars:
        raise _error(
            "fit_recording: expected a recording Dataset with a 'field' variable on (time, y, x) "
            "(wavesim.recordings.load)"
        )
    da = ds["field"]
    if set(da.dims) != {"time", "y", "x"}:
        raise _error(
            f"fit_recording: 'field' must have dims (time, y, x), got {da.dims}; map electrode "
            "arrays onto a grid first (wavesim.recordings.to_grid)"
        )
    da = da.transpose("time", "y", "x")
    v = np.asarray(da.values, dtype=np.float64)
    mask = np.isfinite(v).all(axis=0)
    if "mask" in ds.data_vars:
        mask &= np.asarray(ds["mask"].transpose("y", "x").values).astype(bool)
    if not mask.any():
        raise _error("fit_recording: no valid site (mask all False or every site NaN)")
    t = np.asarray(ds["time"].values, dtype=np.float64)
    steps = np.diff(t)
    if t.size < 3 or np.any(steps <= 0) or np.ptp(steps) > 1e-6 * np.mean(steps):
        raise _error("fit_recording: 'time' must be uniformly sampled (at least 3 frames)")
    x = np.asarray(ds["x"].values, dtype=np.float64)
    dx = float(np.median(np.diff(x))) if x.size > 1 else 1.0
    units = str(ds["x"].attrs.get("units", "px"))
    return _Movie(np.where(mask, v, 0.0), mask, t, float(np.mean(steps)), dx, units)


def _frame_index(t: np.ndarray, time_ms: float, what: str) -> int:
    """Index of the last frame at or before ``time_ms`` (within 1e-6 of a frame interval)."""
    dt = float(np.mean(np.diff(t)))
    i = int(np.searchsorted(t, time_ms + 1e-6 * dt, side="right")) - 1
    if i < 0:
        raise _error(
            f"fit_recording: {what} = {time_ms:g} ms is before the first frame ({t[0]:g} ms)"
        )
    return i


# --------------------------------------------------------------------------------------------
# building blocks


def initial_from_frames(frames, dt: float, *, at: str = "last"):
    """Initial state ``(y0, v0)`` of a lattice from the frames just before a forecast.

    A least-squares line through the frames (per site) in time: ``v0`` is its slope and ``y0``
    its value at the last frame (``at="last"``) or at the centre of the frames
    (``at="centre"``, where the line is most precise: the mean of the frames; the lattice then
    starts ``(context − 1)/2`` frames before the origin). With one frame, ``y0`` is that frame
    and ``v0 = 0``.

    Parameters
    ----------
    frames : array_like, shape ``(..., context, ny, nx)``
        The ``context`` frames up to (and including) the forecast origin.
    dt : float
        Frame interval (ms).
    at : {"last", "centre"}

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``y0`` and ``v0`` (per ms), shape ``(..., ny, nx)``.
    """
    if at not in ("last", "centre"):
        raise ValueError(f"at: expected 'last' or 'centre', got {at!r}")
    f = np.asarray(frames, dtype=np.float64)
    if f.ndim < 3:
        raise ValueError(f"frames: expected shape (..., context, ny, nx), got {f.shape}")
    q = f.shape[-3]
    if q == 1:
        return f[..., 0, :, :].copy(), np.zeros_like(f[..., 0, :, :])
    tt = (np.arange(q) - (q - 1) / 2.0) * float(dt)
    mean = f.mean(axis=-3)
    slope = np.tensordot(f - mean[..., None, :, :], tt, axes=([-3], [0])) / np.sum(tt**2)
    if at == "centre":
        return mean, slope
    return mean + slope * tt[-1], slope


def recording_scenario(
    recording,
    *,
    substeps: int = 2,
    horizon: int = 20,
    activation: str = "linear",
    integrator: str = "imex",
    boundary: str = "reflecting",
    stencil=None,
    omega2: float = 0.1,
    gamma: float = 1.0,
    bias: float = 0.0,
    members: int = 1,
    mask_path=None,
    name: str = "recording_fit",
):
    """A scenario whose lattice matches a recording's frames (one oscillator per pixel).

    Parameters
    ----------
    recording : xarray.Dataset
        The recording layout (``field`` on ``(time, y, x)``, ``mask``, ``time`` in ms).
    substeps : int
        Integrator steps per frame: ``dt = frame interval / substeps``.
    horizon : int
        ``run.duration`` in frames (a forecast's length); ``record.period`` is one frame.
    activation : {"linear", "tanh"}
    integrator : {"imex", "symplectic_euler"}
        The integrator (see ``docs/models.md``). IMEX (damping implicit) is stable for any
        damping, so a fitted lattice, however overdamped, stays a scenario that ``wavesim run``
        accepts; symplectic Euler fits to noisy recordings tend to end with γ·dt > 1, beyond
        its stability limit.
    boundary : {"reflecting", "periodic", "absorbing"}
    stencil : (k, k) array, optional
        Starting coupling W (1/ms²); default ``0.05·`` the 5-point Laplacian (per px²).
    omega2, gamma, bias : float
        Starting values.
    members : int
        Batch size (one member per forecast window).
    mask_path : path, optional
        Where to write the recording's mask (``.npy``) as ``lattice.mask``; default a temporary
        file. Nothing is written when every site is valid.
    name : str
        ``meta.name``.

    Returns
    -------
    Scenario
        ``dx`` is the recording's spacing, or 1 when it is in px (then the lattice's mm are
        pixels and its speeds px/ms).
    """
    from wavesim.scenario import Scenario

    mv = _as_movie(recording)
    substeps = int(substeps)
    if substeps < 1:
        raise ValueError(f"substeps: expected a positive integer, got {substeps!r}")
    ny, nx = mv.mask.shape
    w = (0.05 / mv.dx**2) * _LAPLACIAN if stencil is None else np.asarray(stencil, float)
    lattice = {"shape": [ny, nx], "dx": mv.dx, "boundary": boundary}
    base_dir = Path(".")
    if not mv.mask.all():
        if mask_path is None:
            mask_path = Path(tempfile.mkdtemp(prefix="wavesim_fit_")) / f"{name}_mask.npy"
        mask_path = Path(mask_path)
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(mask_path, mv.mask)
        base_dir = mask_path.parent
        lattice["mask"] = {"kind": "file", "path": mask_path.name}
    source = recording.attrs.get("source", "a recording")
    raw = {
        "meta": {
            "name": name,
            "description": f"Lattice matched to the frames of {source} "
            f"({'px' if mv.units == 'px' else mv.units} grid, {mv.dt:g} ms per frame).",
        },
        "run": {
            "duration": horizon * mv.dt,
            "dt": mv.dt / substeps,
            "seed": 0,
            "members": int(members),
            "integrator": integrator,
            "dtype": "float64",
        },
        "lattice": lattice,
        "map": {"kind": "none"},
        "model": {
            "activation": activation,
            "omega2": float(omega2),
            "gamma": float(gamma),
            "bias": float(bias),
            "noise": 0.0,
        },
        "coupling": {"kind": "stencil", "stencil": w.tolist()},
        "drive": {"kind": "none"},
        "initial": {"kind": "rest"},
        "record": {"period": mv.dt, "fields": ["y"]},
    }
    return Scenario.from_dict(raw, source=f"<{name}>", base_dir=base_dir)


def lattice_forecast(
    scenario, y0, v0, horizon: int, *, values: Mapping | None = None, offset: int = 0
):
    """Run a scenario's lattice from given states and return one frame per ``record.period``.

    Parameters
    ----------
    scenario : Scenario
        Lattice and parameters (e.g. a fitted scenario); ``run.members`` is replaced by the
        number of initial states.
    y0, v0 : array_like, shape ``(n, ny, nx)``
        Initial states.
    horizon : int
        Frames to return (every ``record.period``).
    values : mapping, optional
        Parameter values overriding the scenario's (``w``, ``omega2``, ``gamma``, ``bias``, ...,
        as :attr:`wavesim.learn.FitResult.values`).
    offset : int
        Integrator steps taken before the first returned frame's period starts (the state is
        given ``offset`` steps before the forecast origin).

    Returns
    -------
    numpy.ndarray, shape ``(n, horizon, ny, nx)``
    """
    from dataclasses import replace

    from wavesim.learn.fitting import _model_values
    from wavesim.simulate import Simulator, build

    y0 = np.asarray(y0, float)
    v0 = np.asarray(v0, float)
    n = y0.shape[0]
    built = build(scenario.replace(**{"run.members": n}))
    params = built.params
    if values:
        params = replace(params, **_model_values(values))
    dt = float(values.get("dt", scenario.run.dt)) if values else scenario.run.dt
    sim = Simulator(params, built.lattice, dt, drive=built.drive, members=n,
                    dtype=built.simulator.dtype, seed=scenario.run.seed, check=False)  # fmt: skip
    sim.set_state(y0, v0)
    if offset:
        sim.advance(int(offset))
    stride = scenario.record_stride
    out = np.empty((n, int(horizon), *y0.shape[1:]))
    for k in range(int(horizon)):
        sim.advance(stride)
        out[:, k] = sim.y
    return out


def select_ridge_ar(train, *, orders=(1, 2, 4, 8), horizon: int = 20, mask=None) -> RidgeAR:
    """The :class:`RidgeAR` (order, ridge, components) with the best validation error.

    Every order in ``orders`` is fitted with ``n_components="auto"`` and ``alpha`` chosen on the
    last quarter of the training frames (scored by ``horizon``-step forecasts); the order whose
    best validation error is lowest wins. All candidates forecast the same validation frames.
    """
    best = None
    for p in orders:
        try:
            ar = RidgeAR(order=int(p), n_components="auto", mask=mask, val_horizon=int(horizon))
            ar.fit(train)
        except ValueError:
            continue  # too short for this order
        score = min(ar.validation_.values())
        if best is None or score < best[0]:
            best = (score, ar)
    if best is None:
        raise _error(
            f"fit_recording: the training frames are too short for a ridge AR of any order in "
            f"{tuple(orders)} with a {horizon}-frame validation"
        )
    return best[1]


# --------------------------------------------------------------------------------------------
# the fit


@dataclass
class RecordingFit:
    """Outcome of :func:`fit_recording`.

    Attributes
    ----------
    scenario : Scenario or None
        The fitted lattice (one member, started at rest): ``wavesim run`` simulates it; written
        to ``scenario_path`` when given.
    scenario_path : Path or None
    values : dict
        Fitted parameter values by name.
    fit : wavesim.learn.FitResult
        The optimizer's record (loss history, seconds, store).
    skill : xarray.Dataset
        ``mse`` and ``relative_error`` on ``(model, window, step)`` and the valid prediction
        time ``vpt`` (frames, relative error 0.025) on ``(model, window)``; coordinates
        ``model`` (the forecasters of :data:`METHODS`), ``origin`` (ms, the last frame a
        forecast may use), ``lead`` (ms).
    forecasts : dict
        ``model -> (n_windows, horizon, ny, nx)`` forecasts of the test windows.
    targets : numpy.ndarray
        The true (preprocessed) frames of the test windows.
    movie : xarray.Dataset
        The preprocessed recording the fit and the forecasts used.
    ridge_ar : RidgeAR
        The fitted baseline.
    train : (float, float)
        The training interval (ms).
    seconds : float
        Wall time of the whole call (fit, baselines, forecasts).
    """

    scenario: object
    scenario_path: Path | None
    values: dict
    fit: object
    skill: xr.Dataset
    forecasts: dict
    targets: np.ndarray
    movie: xr.Dataset
    ridge_ar: RidgeAR
    train: tuple
    seconds: float
    info: dict = field(default_factory=dict)

    def table(self) -> str:
        """The forecast-skill table (plain text)."""
        return skill_table(self.skill)


def skill_table(skill: xr.Dataset) -> str:
    """Plain-text table of a skill Dataset: MSE of the first held-out window and of all windows,
    relative error at the last step, valid prediction time."""
    methods = [str(m) for m in skill["model"].values]
    nwin = skill.sizes["window"]
    h = skill.sizes["step"]
    head = (
        f"{'model':<11} {'MSE next ' + str(h):>12} {'MSE all ' + str(nwin) + ' win':>14} "
        f"{'rel.err @' + str(h):>11} {'VPT frames':>10}"
    )
    lines = [head, "-" * len(head)]
    for m in methods:
        s = skill.sel(model=m)
        first = float(s["mse"].isel(window=0).mean())
        allw = float(s["mse"].mean())
        rel = float(s["relative_error"].isel(step=-1).mean())
        vpt = float(s["vpt"].mean())
        lines.append(f"{m:<11} {first:>12.4g} {allw:>14.4g} {rel:>11.3g} {vpt:>10.1f}")
    return "\n".join(lines)


def _preprocess(ds, baseline, sigma):
    from wavesim.recordings import baseline_normalize, smooth

    if baseline is not None:
        ds = baseline_normalize(ds, tuple(baseline), mode="subtract")
    if sigma:
        ds = smooth(ds, float(sigma))
    return ds


def fit_recording(
    recording,
    *,
    train,
    horizon: int = 20,
    test: Sequence[float] | None = None,
    n_test: int = 4,
    context: int = 8,
    init: str = "last",
    stride: int = 2,
    substeps: int = 2,
    activation: str = "linear",
    integrator: str = "imex",
    learn: Sequence[str] = ("w", "omega2", "gamma", "bias"),
    per_site: Sequence[str] = ("bias",),
    w_symmetry: str = "none",
    w_zero_sum: bool = True,
    baseline=None,
    sigma: float | None = 1.0,
    start: Mapping | None = None,
    optimizer: str = "lbfgsb",
    steps: int = 200,
    ar_orders: Sequence[int] = (1, 2, 4, 8),
    store=None,
    scenario_out=None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = False,
    threads: int | None = None,
    flush_every: int = 10,
    checkpoint="auto",
    series: str | None = None,
    dx: float | None = None,
    rate: float | None = None,
) -> RecordingFit:
    """Fit a lattice to the first part of a recording and forecast held-out frames.

    Parameters
    ----------
    recording : xarray.Dataset or path
        A recording in the wavesim layout, or a file for :func:`wavesim.recordings.load`
        (with ``series``, ``dx``, ``rate``).
    train : (float, float)
        Training interval ``[start, stop]`` in ms (frames inside it are the training data).
    horizon : int
        Frames per forecast (20).
    test : sequence of float, optional
        Forecast origins in ms (each forecast uses frames up to the origin only). Default: the
        last training frame and every ``horizon`` frames after it, ``n_test`` windows (fewer
        when the recording ends).
    n_test : int
        Number of default test windows.
    context : int
        Frames that initialise a forecast (a least-squares line: ``y0``, ``v0``; see
        :func:`initial_from_frames`) and that :func:`mean_frame` averages.
    init : {"last", "centre"}
        Where the lattice starts: at the origin (the value of the line through the context
        frames there, and its slope) or at the centre of the context frames (their mean and the
        slope; ``(context − 1)/2`` frames before the origin, which must be a whole number of
        integrator steps). On the ferret recording "centre" forecasts worse: the longer run
        amplifies the fitted growth.
    stride : int
        Frames between the origins of training windows.
    substeps : int
        Integrator steps per frame.
    activation : {"linear", "tanh"}
    integrator : {"imex", "symplectic_euler"}
        See :func:`recording_scenario`.
    learn : sequence of str
        Learned parameters among ``w``, ``wv`` (needs a velocity stencil), ``omega2``,
        ``gamma``, ``bias``.
    per_site : sequence of str
        Among ``omega2``, ``gamma``, ``bias``: learned as maps.
    w_symmetry, w_zero_sum :
        Constraints of W (see :func:`wavesim.learn.fit`). A zero-sum W (the default) cannot
        add net growth: with ω² ≥ 0 and γ > 0 the linear lattice relaxes towards the steady
        state set by the bias map instead of extrapolating an exponential rise.
    baseline : (float, float), optional
        Subtract each pixel's mean over this interval (ms) first
        (:func:`wavesim.recordings.baseline_normalize`, ``mode="subtract"``).
    sigma : float or None
        Gaussian spatial smoothing (in the units of ``x``/``y``) before fitting
        (:func:`wavesim.recordings.smooth`); None or 0 for none. Forecasts are scored on the
        preprocessed frames, for every method alike.
    start : mapping, optional
        Starting values (``w``, ``omega2``, ``gamma``, ``bias``); defaults: W = 0.05·Laplacian,
        ω² = 0.1, γ = 1, b = 0.
    optimizer, steps :
        As in :func:`wavesim.learn.fit` (L-BFGS-B, at most ``steps`` iterations).
    ar_orders : sequence of int
        Orders tried for the ridge AR baseline (:func:`select_ridge_ar`).
    store, scenario_out, overwrite, resume, progress, threads, flush_every, checkpoint :
        As in :func:`wavesim.learn.fit`. The fitted scenario (one member, at rest) goes to
        ``scenario_out``, its per-site maps and the mask beside it.
    series, dx, rate :
        Passed to :func:`wavesim.recordings.load` when ``recording`` is a path.

    Returns
    -------
    RecordingFit
        ``.table()`` prints the forecast skill of the lattice and the baselines.

    Raises
    ------
    RecordingError (a ValueError)
        A training interval or test window outside the recording, too few frames.
    """
    from wavesim.learn.fitting import fit as _fit
    from wavesim.learn.fitting import fitted_scenario
    from wavesim.learn.losses import FieldMSE

    t_start = time.perf_counter()
    if not isinstance(recording, xr.Dataset):
        from wavesim.recordings import load

        recording = load(recording, series=series, dx=dx, rate=rate)
    horizon, context, stride = int(horizon), int(context), int(stride)
    for name, val in (("horizon", horizon), ("context", context), ("stride", stride)):
        if val < 1:
            raise ValueError(f"{name}: expected a positive integer, got {val!r}")
    unknown = sorted(set(learn) - {"w", "wv", "omega2", "gamma", "bias"})
    if unknown:
        raise ValueError(
            f"learn: {unknown} cannot be learned from a recording (choose among w, wv, omega2, "
            "gamma, bias; the initial state comes from the frames)"
        )
    if init not in ("centre", "last"):
        raise ValueError(f"init: expected 'centre' or 'last', got {init!r}")
    offset = 0
    if init == "centre":
        half = (context - 1) * int(substeps)
        if half % 2:
            raise ValueError(
                f"init='centre': the centre of {context} context frames lies {(context - 1) / 2:g}"
                f" frames before the origin, not a whole number of the {substeps} steps per "
                "frame; use an odd context or an even substeps"
            )
        offset = half // 2
    _as_movie(recording)  # the layout, checked before preprocessing
    movie_ds = _preprocess(recording, baseline, sigma)
    mv = _as_movie(movie_ds)
    t = mv.time
    try:
        ta, tb = (float(v) for v in train)
    except (TypeError, ValueError):
        raise _error(f"fit_recording: train must be (start, stop) in ms, got {train!r}") from None
    if not tb > ta:
        raise _error(f"fit_recording: train = ({ta:g}, {tb:g}) ms must have stop > start")
    ia = int(np.searchsorted(t, ta - 1e-6 * mv.dt))
    ib = _frame_index(t, tb, "train stop")  # last training frame
    train_origins = list(range(ia + context - 1, ib - horizon + 1, stride))
    if not train_origins:
        raise _error(
            f"fit_recording: the training interval {ta:g}-{tb:g} ms holds {ib - ia + 1} frames; "
            f"a training window needs context + horizon = {context + horizon}"
        )
    if test is None:
        test_origins = [ib + k * horizon for k in range(int(n_test))]
        test_origins = [o for o in test_origins if o + horizon < t.size]
    else:
        test_origins = [_frame_index(t, float(o), "test origin") for o in test]
    for o in test_origins:
        if o + horizon >= t.size:
            raise _error(
                f"fit_recording: the test window at {t[o]:g} ms needs {horizon} frames after it; "
                f"the recording ends at {t[-1]:g} ms"
            )
        if o + 1 <= ib:
            raise _error(
                f"fit_recording: the test window at {t[o]:g} ms overlaps the training interval "
                f"(ends at {t[ib]:g} ms): held-out frames must come after it"
            )
        if o - context + 1 < 0:
            raise _error(
                f"fit_recording: the test window at {t[o]:g} ms has fewer than {context} frames "
                "of context before it"
            )
    if not test_origins:
        raise _error(
            f"fit_recording: no room for a {horizon}-frame test window after the training "
            f"interval (the recording ends at {t[-1]:g} ms)"
        )

    F = mv.values

    def windows(origins):
        ctx = np.stack([F[o - context + 1 : o + 1] for o in origins])
        tgt = np.stack([F[o + 1 : o + 1 + horizon] for o in origins])
        return ctx, tgt

    # the scenario and the training windows
    if scenario_out is None:  # the fitted scenario (and its maps) still need a home
        out_path = Path(tempfile.mkdtemp(prefix="wavesim_fit_")) / "recording_fit.toml"
    else:
        out_path = Path(scenario_out)
    stem = out_path.stem
    mask_path = out_path.parent / f"{stem}_mask.npy"
    st = dict(start or {})
    base = recording_scenario(
        movie_ds,
        substeps=substeps,
        horizon=horizon,
        activation=activation,
        integrator=integrator,
        stencil=st.pop("w", None),
        omega2=st.pop("omega2", 0.1),
        gamma=st.pop("gamma", 1.0),
        bias=st.pop("bias", 0.0),
        members=len(train_origins),
        mask_path=mask_path,
        name=stem,
    )
    if st:
        raise ValueError(f"start: unknown parameter(s) {sorted(st)}; known: w, omega2, gamma, bias")
    ctx, tgt = windows(train_origins)
    y0, v0 = initial_from_frames(ctx, mv.dt, at=init)
    loss = FieldMSE(tgt, offset + np.arange(1, horizon + 1) * int(substeps), mask=mv.mask)
    res = _fit(
        base,
        loss,
        tuple(learn),
        y0=y0 * mv.mask,
        v0=v0 * mv.mask,
        per_site=tuple(per_site),
        w_symmetry=w_symmetry,
        w_zero_sum=w_zero_sum,
        optimizer=optimizer,
        steps=steps,
        store=store,
        resume=resume,
        overwrite=overwrite,
        scenario_out=out_path,
        progress=progress,
        threads=threads,
        flush_every=flush_every,
        checkpoint=checkpoint,
    )
    # the fitted lattice as a one-member scenario started at rest (fit wrote the batch's)
    single = base.replace(**{"run.members": 1})
    fitted = fitted_scenario(single, {k: v for k, v in res.values.items() if k in learn}, out_path)

    # held-out forecasts
    ctx, tgt = windows(test_origins)
    y0, v0 = initial_from_frames(ctx, mv.dt, at=init)
    forecasts = {
        "lattice": lattice_forecast(
            base, y0 * mv.mask, v0 * mv.mask, horizon, values=res.values, offset=offset
        ),
        "copy_last": copy_last(ctx, horizon),
        "mean_frame": mean_frame(ctx, horizon),
    }
    ar = select_ridge_ar(F[ia : ib + 1], orders=ar_orders, horizon=horizon, mask=mv.mask)
    ar_ctx = np.stack([F[o - ar.order + 1 : o + 1] for o in test_origins])
    forecasts["ridge_ar"] = np.nan_to_num(ar.forecast(ar_ctx, horizon), nan=0.0)

    mse = np.stack([forecast_mse(forecasts[m], tgt, mask=mv.mask, pooled=False) for m in METHODS])
    rel = np.stack([relative_error(forecasts[m], tgt, mask=mv.mask, pooled=False) for m in METHODS])
    vpt = valid_prediction_time(rel)
    skill = xr.Dataset(
        {
            "mse": (("model", "window", "step"), mse, {"units": "field units^2"}),
            "relative_error": (("model", "window", "step"), rel, {"units": "1"}),
            "vpt": (
                ("model", "window"),
                vpt,
                {"units": "frames", "long_name": "valid prediction time (relative error <= 0.025)"},
            ),  # fmt: skip
        },
        coords={
            "model": ("model", list(METHODS)),
            "origin": ("window", t[test_origins], {"units": "ms"}),
            "step": ("step", np.arange(1, horizon + 1)),
            "lead": ("step", np.arange(1, horizon + 1) * mv.dt, {"units": "ms"}),
        },
        attrs={
            "train": [ta, tb],
            "horizon": horizon,
            "context": context,
            "ridge_ar": repr(ar),
            "frame_dt": mv.dt,
        },
    )
    info = {
        "train_windows": len(train_origins),
        "train_frames": ib - ia + 1,
        "fit_seconds": res.seconds,
        "iterations": len(res.history),
    }
    if store is not None:
        _annotate_store(store, skill)
    return RecordingFit(
        scenario=fitted,
        scenario_path=out_path,
        values=res.values,
        fit=res,
        skill=skill,
        forecasts=forecasts,
        targets=tgt,
        movie=movie_ds,
        ridge_ar=ar,
        train=(ta, tb),
        seconds=time.perf_counter() - t_start,
        info=info,
    )


def _annotate_store(store, skill: xr.Dataset) -> None:
    """Add the forecast skill (JSON) to the fit store's attributes."""

    import zarr

    from wavesim.store import consolidate

    g = zarr.open_group(str(store), mode="r+", zarr_format=3, use_consolidated=False)
    table = {
        str(m): {
            "mse_first_window": float(skill["mse"].sel(model=m).isel(window=0).mean()),
            "mse_all_windows": float(skill["mse"].sel(model=m).mean()),
            "vpt_frames": float(skill["vpt"].sel(model=m).mean()),
        }
        for m in skill["model"].values
    }
    g.attrs["forecast_skill"] = json.dumps(
        {"table": table, "origins_ms": [float(o) for o in skill["origin"].values]}
    )
    consolidate(store)
