"""Evaluation of forecasters on sequences: one code path for the model and the baselines.

A *forecaster* is anything with ``forecast(context, horizon) -> frames`` (context
``(sequences, K, h, w)``, result ``(sequences, H, h, w)``) or a plain function
``f(context, horizon)``: a trained :class:`~wavesim.bridge.model.BridgeModel`, the uncoupled
lattice (a BridgeModel with ``W = Ŵ = 0`` trained the same way), and the baselines of
:mod:`wavesim.forecasting` (:func:`~wavesim.forecasting.copy_last`,
:func:`~wavesim.forecasting.mean_frame`, :class:`~wavesim.forecasting.RidgeAR`).

:func:`evaluate` runs every forecaster on the same context frames and scores them against the
same targets with the metrics of :mod:`wavesim.forecasting`: mean squared error per horizon
step, relative error ‖x̂−x‖²/‖x‖² per step, and the valid prediction time (the number of steps
before the relative error first exceeds 0.025). Generalization is the same call on other data:
held-out transformation speeds (a test split drawn with other parameters) or horizons longer
than trained (sequences with more frames).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import xarray as xr

from wavesim.forecasting import (
    RELATIVE_ERROR_THRESHOLD,
    RidgeAR,
    copy_last,
    forecast_mse,
    mean_frame,
    relative_error,
    valid_prediction_time,
)

__all__ = ["baselines", "evaluate", "results_table"]


def baselines(
    train=None, *, observe: int | None = None, ridge_order: int = 2, ridge: Mapping | None = None
) -> dict:
    """The standard baselines: copy-last-frame, mean frame and (with ``train``) ridge AR.

    Parameters
    ----------
    train : Splits, Dataset, DataArray or array, optional
        Training sequences ``(sequences, frames, h, w)`` (a Splits' ``train``): the ridge
        regression autoregressive model is fitted on all their frames (the same frames the
        lattice model is trained on). Without it, no ridge baseline.
    observe : int, optional
        Unused by the baselines themselves; accepted for symmetry with :func:`evaluate`.
    ridge_order : int
        Order ``p`` of the autoregressive model.
    ridge : mapping, optional
        More arguments of :class:`wavesim.forecasting.RidgeAR` (``alpha``, ``n_components``,
        ...); by default the ridge strength is chosen by validation on held-out training time.

    Returns
    -------
    dict name -> forecaster
        ``"copy_last"``, ``"mean_frame"`` and ``"ridge_ar"``.
    """
    from wavesim.bridge.datasets import Splits
    from wavesim.bridge.training import sequences

    out: dict = {"copy_last": copy_last, "mean_frame": mean_frame}
    if train is not None:
        if isinstance(train, Splits):
            train = train.train
        x = sequences(train, "train")
        out["ridge_ar"] = RidgeAR(order=ridge_order, **dict(ridge or {})).fit(x)
    return out


def _call(forecaster, context, horizon):
    f = getattr(forecaster, "forecast", None)
    if callable(f):
        return f(context, horizon)
    if callable(forecaster):
        return forecaster(context, horizon)
    raise TypeError(
        f"forecaster: expected an object with forecast(context, horizon) or a function, got "
        f"{type(forecaster).__name__}"
    )


def evaluate(
    forecasters: Mapping[str, Callable | object],
    data,
    observe: int,
    horizon: int | None = None,
    *,
    threshold: float = RELATIVE_ERROR_THRESHOLD,
    keep_predictions: bool = False,
) -> xr.Dataset:
    """Score forecasters on the same sequences with the same metrics.

    Parameters
    ----------
    forecasters : mapping name -> forecaster
        E.g. ``{"lattice": model, "uncoupled": flat_model, **baselines(splits)}``.
    data : Splits, Dataset, DataArray or array ``(sequences, frames, h, w)``
        Test sequences (a Splits' ``test``). The first ``observe`` frames are the context, the
        next ``horizon`` the targets.
    observe : int
        Context frames K.
    horizon : int, optional
        Frames to forecast (default: all the frames after the context).
    threshold : float
        Relative error bounding the valid prediction time (0.025).
    keep_predictions : bool
        Also return every forecast (``prediction`` on ``(forecaster, sequence, step, y, x)``).

    Returns
    -------
    xarray.Dataset
        On dims ``forecaster``, ``step`` (1 .. H: frames after the context), ``sequence``:

        * ``mse`` ``(forecaster, step)``: mean squared error per step, over sequences and pixels;
        * ``relative_error`` ``(forecaster, step)``: ‖x̂−x‖²/‖x‖² per step (norms summed over
          sequences);
        * ``mse_sequence`` ``(forecaster, sequence, step)``;
        * ``valid_prediction_time`` ``(forecaster)``: steps before ``relative_error`` first exceeds
          ``threshold`` (H when it never does); ``valid_prediction_time_sequence``
          ``(forecaster, sequence)`` from each sequence's own relative error;
        * ``mean_mse`` ``(forecaster)``: ``mse`` averaged over the horizon;
        * ``ratio_to_copy_last`` ``(forecaster)``: ``mean_mse`` over that of ``copy_last`` (when it
          is among the forecasters);
        * coordinate ``frame`` on ``step`` (the absolute frame index K + step - 1) and the
          dataset's labels on ``sequence`` (angular velocity, ...).

        attrs: ``observe``, ``horizon``, ``threshold``, and the data's ``kind``/``split``.
    """
    from wavesim.bridge.datasets import Splits
    from wavesim.bridge.training import sequences

    if isinstance(data, Splits):
        data = data.test
    x = sequences(data, "data")
    n, nf = x.shape[:2]
    if isinstance(observe, bool) or int(observe) != observe or not 1 <= observe < nf:
        raise ValueError(f"observe: expected an integer in [1, {nf - 1}], got {observe!r}")
    observe = int(observe)
    horizon = nf - observe if horizon is None else horizon
    if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon: expected an integer >= 1, got {horizon!r}")
    horizon = int(horizon)
    if observe + horizon > nf:
        raise ValueError(
            f"observe + horizon = {observe + horizon} exceeds the {nf} frames of each sequence; "
            "generate longer sequences (frames=...) to test longer horizons"
        )
    if not forecasters:
        raise ValueError("forecasters: expected at least one")
    context = x[:, :observe]
    target = x[:, observe : observe + horizon]
    names = list(forecasters)
    mse = np.empty((len(names), horizon))
    rel = np.empty((len(names), horizon))
    mse_seq = np.empty((len(names), n, horizon))
    vpt_seq = np.empty((len(names), n), dtype=np.int64)
    preds = []
    for i, name in enumerate(names):
        pred = np.asarray(_call(forecasters[name], context, horizon), dtype=np.float64)
        if pred.shape != target.shape:
            raise ValueError(
                f"forecaster {name!r}: returned shape {pred.shape}, expected {target.shape}"
            )
        mse[i] = forecast_mse(pred, target)
        rel[i] = relative_error(pred, target)
        mse_seq[i] = forecast_mse(pred, target, pooled=False)
        vpt_seq[i] = valid_prediction_time(
            relative_error(pred, target, pooled=False), threshold=threshold
        )
        if keep_predictions:
            preds.append(pred.astype(np.float32))
    vpt = np.asarray(valid_prediction_time(rel, threshold=threshold))
    coords = {
        "forecaster": names,
        "step": np.arange(1, horizon + 1),
        "frame": ("step", np.arange(observe, observe + horizon)),
        "sequence": np.arange(n),
    }
    if isinstance(data, xr.Dataset | xr.DataArray):
        for cname, c in data.coords.items():
            if c.dims == ("sequence",) and cname != "sequence":
                coords[cname] = ("sequence", c.values, dict(c.attrs))
    mean = mse.mean(axis=1)
    out = xr.Dataset(
        {
            "mse": (("forecaster", "step"), mse),
            "relative_error": (("forecaster", "step"), rel),
            "mse_sequence": (("forecaster", "sequence", "step"), mse_seq),
            "valid_prediction_time": (("forecaster",), vpt.astype(np.int64)),
            "valid_prediction_time_sequence": (("forecaster", "sequence"), vpt_seq),
            "mean_mse": (("forecaster",), mean),
        },
        coords=coords,
    )
    if "copy_last" in names:
        out["ratio_to_copy_last"] = ("forecaster", mean / mean[names.index("copy_last")])
    if keep_predictions:
        out["prediction"] = (("forecaster", "sequence", "step", "y", "x"), np.stack(preds))
    out["step"].attrs["units"] = "frame"
    out["valid_prediction_time"].attrs["units"] = "frame"
    out["valid_prediction_time_sequence"].attrs["units"] = "frame"
    out.attrs.update(observe=observe, horizon=horizon, threshold=float(threshold))
    if isinstance(data, xr.Dataset | xr.DataArray):
        for key in ("kind", "split"):
            if key in data.attrs:
                out.attrs[key] = data.attrs[key]
    return out


def results_table(result: xr.Dataset, *, steps=None) -> str:
    """A Markdown table of an :func:`evaluate` result: mean MSE, ratio to copy-last, MSE at
    chosen steps and valid prediction time per forecaster."""
    steps = [] if steps is None else [int(s) for s in steps]
    head = ["forecaster", "mean MSE"]
    if "ratio_to_copy_last" in result:
        head.append("÷ copy-last")
    head += [f"MSE step {s}" for s in steps] + ["valid pred. time"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in result["forecaster"].values:
        r = result.sel(forecaster=name)
        cells = [str(name), f"{float(r['mean_mse']):.4g}"]
        if "ratio_to_copy_last" in result:
            cells.append(f"{float(r['ratio_to_copy_last']):.3f}")
        cells += [f"{float(r['mse'].sel(step=s)):.4g}" for s in steps]
        cells.append(f"{int(r['valid_prediction_time'])}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
