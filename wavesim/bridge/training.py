"""Training a bridge model: Adam on minibatches, early stopping, a resumable zarr model store.

:func:`train` fits every parameter of a :class:`~wavesim.bridge.model.BridgeModel` (encoder,
lattice, decoder) to sequences of frames: each iteration draws a minibatch of sequences (a fresh
permutation of the training set every epoch, seeded), computes the loss of observing ``K``
frames and forecasting ``H`` with its exact gradient (one adjoint pass), and takes an Adam step
(:func:`wavesim.learn.optim.adam`, whose state is checkpointed so a resumed run continues bit for
bit). Every ``validate_every`` iterations the forecast loss on the validation sequences is
computed; the best parameters so far are kept, and training stops early after ``patience``
validations without improvement.

Everything goes into the **model store** (zarr v3, ``attrs["kind"] = "wavesim-bridge-model"``):

* attrs: ``complete``, ``config`` (the model, JSON), ``training`` (the arguments of
  :func:`train`, JSON), ``dataset`` (descriptions of the training and validation data: kind,
  seed, generator parameters, sizes), ``iteration`` (Adam's checkpointed iteration),
  ``best_iteration``, ``best_validation``, ``bad_validations``, ``stopped_early``, ``seconds``,
  ``error`` (when interrupted);
* ``loss``, ``grad_norm`` on ``(iteration,)``: the minibatch loss and gradient norm of every
  iteration;
* ``validation_loss``, ``validation_iteration`` on ``(check,)``; ``track_<name>`` on
  ``(check, ...)``: the lattice parameters at every check;
* ``parameters/<name>``: the best parameters (model units) -- what :func:`open_model` loads;
* ``state/x``, ``state/m``, ``state/v``, ``state/best_x``: Adam's state and the best vector.

Metadata is consolidated at every checkpoint, so an interrupted run leaves a readable store that
says ``complete = false``; ``train(..., store=path, resume=True)`` continues it.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from wavesim.bridge.model import BridgeModel
from wavesim.learn.optim import AdamState, adam
from wavesim.store import consolidate, prepare_path

__all__ = ["MODEL_KIND", "TrainResult", "open_model", "open_training", "sequences", "train"]

MODEL_KIND = "wavesim-bridge-model"

#: Training arguments that must match when a run is resumed.
_RESUME_KEYS = (
    "observe",
    "horizon",
    "loss",
    "reconstruction",
    "batch_size",
    "lr",
    "clip_norm",
    "schedule",
    "weight_decay",
    "validate_every",
    "seed",
)


def sequences(data, name: str = "data") -> np.ndarray:
    """Frames ``(sequences, frames, h, w)`` from a Dataset (its ``frames``), a DataArray or an
    array, as a float32 or float64 array (float32 data are not copied: minibatches are converted
    when they are used)."""
    import xarray as xr

    if isinstance(data, xr.Dataset):
        if "frames" not in data:
            raise ValueError(f"{name}: the Dataset has no 'frames' variable")
        data = data["frames"]
    if isinstance(data, xr.DataArray):
        want = ("sequence", "frame", "y", "x")
        if set(data.dims) == set(want):
            data = data.transpose(*want)
        data = data.values
    x = np.asarray(data)
    if x.dtype.kind not in "fiub" or x.ndim != 4:
        raise ValueError(
            f"{name}: expected real frames of shape (sequences, frames, h, w), got "
            f"{x.dtype} array of shape {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: contains NaN or inf")
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def describe_data(data) -> dict:
    """JSON-safe description of a dataset (its generator attributes and size)."""
    import xarray as xr

    out = {}
    if isinstance(data, xr.Dataset | xr.DataArray):
        for key in ("kind", "seed", "spawn_key", "parameters", "split", "description"):
            if key in data.attrs:
                v = data.attrs[key]
                out[key] = v.tolist() if isinstance(v, np.ndarray) else v
    shape = np.shape(data["frames"] if isinstance(data, xr.Dataset) else data)
    out["shape"] = [int(s) for s in shape]
    return json.loads(json.dumps(out, default=str))


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    model : BridgeModel
        The model, set to its best parameters (lowest validation loss; the last ones without
        validation data).
    history : numpy.ndarray
        Minibatch loss of every iteration (including those before a resume).
    validation_iteration, validation_loss : numpy.ndarray
        When the validation loss was computed and its value.
    best_iteration : int
        Iteration of the best parameters.
    best_validation : float
        Their validation loss (NaN without validation data).
    iterations : int
        Iterations done.
    stopped_early : bool
    seconds : float
        Wall time of this call.
    store : Path or None
    sequences_per_second : float
        Training throughput of this call: minibatch sequences per second of wall time
        (validation and checkpoints included).
    """

    model: BridgeModel
    history: np.ndarray
    validation_iteration: np.ndarray
    validation_loss: np.ndarray
    best_iteration: int
    best_validation: float
    iterations: int
    stopped_early: bool
    seconds: float
    store: Path | None = None
    sequences_per_second: float = math.nan


# ----------------------------------------------------------------------------------------------
# the store
class _ModelStore:
    def __init__(self, path: Path, group):
        self.path = Path(path)
        self.group = group
        self.rows: list[tuple[float, float]] = []

    @classmethod
    def create(cls, path, attrs, overwrite):
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(
                f"model store {str(path)!r} exists; pass overwrite=True to replace it or "
                "resume=True to continue its training"
            )
        prepare_path(path, overwrite)
        g = zarr.open_group(str(path), mode="w", zarr_format=3)
        g.attrs.update({"kind": MODEL_KIND, "complete": False, **attrs})
        for name, dims in (
            ("loss", ("iteration",)),
            ("grad_norm", ("iteration",)),
            ("validation_loss", ("check",)),
            ("validation_iteration", ("check",)),
        ):
            g.create_array(
                name,
                shape=(0,),
                chunks=(1024,),
                dtype="f8",
                fill_value=np.nan,
                dimension_names=dims,
            )
        g.create_group("parameters")
        g.create_group("state")
        store = cls(path, g)
        store.consolidate()
        return store

    @classmethod
    def open(cls, path):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"model store {str(path)!r} does not exist")
        g = zarr.open_group(str(path), mode="r+", zarr_format=3, use_consolidated=False)
        if g.attrs.get("kind") != MODEL_KIND:
            raise ValueError(
                f"{str(path)!r} is not a wavesim bridge model store (attrs['kind'] = "
                f"{g.attrs.get('kind')!r}, expected {MODEL_KIND!r})"
            )
        return cls(path, g)

    def consolidate(self):
        consolidate(self.path)
        # keep writing through a handle that reads the metadata itself, not the consolidated copy
        self.group = zarr.open_group(
            str(self.path), mode="r+", zarr_format=3, use_consolidated=False
        )

    def _append(self, name, values):
        a = self.group[name]
        n0 = a.shape[0]
        values = np.asarray(values, dtype=np.float64)
        a.resize((n0 + values.shape[0], *a.shape[1:]))
        a[n0:] = values

    def _put(self, name, value, dims=None):
        value = np.asarray(value, dtype=np.float64)
        g = self.group
        if name in g and g[name].shape == value.shape:
            g[name][...] = value
            return
        if name in g:
            del g[name]
        dims = dims or tuple(f"dim_{i}" for i in range(value.ndim))
        chunks = value.shape if value.ndim else ()
        g.create_array(
            name,
            shape=value.shape,
            chunks=chunks,
            dtype="f8",
            compressors=None,
            dimension_names=dims,
            fill_value=np.nan,
        )
        g[name][...] = value

    def track(self, values: Mapping[str, np.ndarray]):
        for name, v in values.items():
            v = np.asarray(v, dtype=np.float64)
            key = f"track_{name}"
            if key not in self.group:
                dims = ("check", *_dims(name, v.ndim))
                self.group.create_array(
                    key,
                    shape=(0, *v.shape),
                    chunks=(256, *v.shape),
                    dtype="f8",
                    fill_value=np.nan,
                    dimension_names=dims,
                )
            self._append(key, v[None])

    def checkpoint(self, *, state: AdamState, best_x, model: BridgeModel, validation=None, **attrs):
        if self.rows:
            rows = np.array(self.rows)
            self._append("loss", rows[:, 0])
            self._append("grad_norm", rows[:, 1])
            self.rows = []
        if validation is not None:
            it, val, tracked = validation
            self._append("validation_iteration", [it])
            self._append("validation_loss", [val])
            self.track(tracked)
        self._put("state/x", state.x, ("free",))
        self._put("state/m", state.m, ("free",))
        self._put("state/v", state.v, ("free",))
        self._put("state/best_x", best_x, ("free",))
        keep = model.vector()
        model.set_vector(best_x)
        for name, v in model.parameters().items():
            self._put(f"parameters/{name}", v)
        model.set_vector(keep)
        self.group.attrs.update(attrs)
        self.consolidate()

    def truncate(self, iteration: int, checks: int):
        """Drop rows written after the last checkpoint (they are recomputed on resume)."""
        for name in ("loss", "grad_norm"):
            a = self.group[name]
            a.resize((min(iteration, a.shape[0]),))
        for name in list(self.group.array_keys()):
            if name.startswith("track_") or name in ("validation_loss", "validation_iteration"):
                a = self.group[name]
                a.resize((min(checks, a.shape[0]), *a.shape[1:]))


def _dims(name: str, ndim: int) -> tuple[str, ...]:
    """Dimension names of a tracked lattice parameter: scalar, stencil or per-site map."""
    if ndim == 0:
        return ()
    return ("ky", "kx") if name in ("lattice.w", "lattice.wv") else ("y", "x")


def open_model(path, *, threads: int | None = 1) -> BridgeModel:
    """The trained model in a model store, at its best parameters.

    Warns when the training did not complete (the store holds the best parameters of the last
    checkpoint).
    """
    st = _ModelStore.open(path)
    g = st.group
    if not g.attrs.get("complete", False):
        warnings.warn(
            f"model store {str(path)!r} is partial (training did not complete); using the best "
            "parameters of its last checkpoint",
            UserWarning,
            stacklevel=2,
        )
    params = {}
    pg = g["parameters"]
    for name in pg.array_keys():
        params[name] = np.asarray(pg[name][...])
    if not params:
        raise ValueError(f"model store {str(path)!r} has no parameters yet (no checkpoint)")
    config = json.loads(g.attrs["config"])
    return BridgeModel.from_config(config, params, threads=threads)


def open_training(path):
    """The training record of a model store as an :class:`xarray.Dataset` (loss per iteration,
    validation loss and tracked lattice parameters per check, and the store's attributes)."""
    import xarray as xr

    st = _ModelStore.open(path)
    g = st.group
    data = {}
    for name in ("loss", "grad_norm"):
        data[name] = (("iteration",), np.asarray(g[name][...]))
    data["validation_loss"] = (("check",), np.asarray(g["validation_loss"][...]))
    coords = {
        "iteration": np.arange(g["loss"].shape[0]),
        "validation_iteration": (
            ("check",),
            np.asarray(g["validation_iteration"][...]).astype(np.int64),
        ),
    }
    for name in g.array_keys():
        if name.startswith("track_"):
            a = g[name]
            data[name] = (tuple(a.metadata.dimension_names), np.asarray(a[...]))
    attrs = {k: v for k, v in g.attrs.asdict().items() if isinstance(v, str | int | float | bool)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


# ----------------------------------------------------------------------------------------------
# training
def _batch_indices(n: int, batch_size: int, seed: int, iteration: int) -> np.ndarray:
    """Sequences of minibatch ``iteration``: epochs are seeded permutations, batches are
    consecutive slices of them (the last, short slice of an epoch is dropped when the epoch
    holds at least one full batch)."""
    per_epoch = max(n // batch_size, 1)
    epoch, j = divmod(iteration, per_epoch)
    perm = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(epoch,))).permutation(n)
    return np.sort(perm[j * batch_size : (j + 1) * batch_size])


def _validation_loss(model, x, observe, horizon, loss, batch=64) -> float:
    total = 0.0
    for b0 in range(0, x.shape[0], batch):
        part = x[b0 : b0 + batch]
        total += model.loss(part, observe, horizon, loss=loss) * part.shape[0]
    return total / x.shape[0]


def _decay_mask(model: BridgeModel) -> np.ndarray:
    """Entries of the model's vector under weight decay: encoder and decoder weights."""
    mask = np.zeros(model.size, dtype=bool)
    for name, sl in model.slices.items():
        if name in ("encoder.weight", "decoder.weight_y", "decoder.weight_v"):
            mask[sl] = True
    return mask


def _tracked(model: BridgeModel) -> dict:
    return {k: v for k, v in model.parameters().items() if k.startswith("lattice.")}


def train(
    model: BridgeModel,
    data,
    validation=None,
    *,
    observe: int,
    horizon: int,
    loss: str = "mse",
    reconstruction: float = 0.0,
    batch_size: int = 16,
    lr: float = 3e-3,
    iterations: int = 500,
    clip_norm: float | None = None,
    schedule=None,
    weight_decay: float = 0.0,
    validate_every: int = 25,
    patience: int | None = None,
    seed: int = 0,
    store=None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    callback: Callable | None = None,
    attrs: Mapping | None = None,
) -> TrainResult:
    """Train a bridge model to forecast sequences.

    Parameters
    ----------
    model : BridgeModel
        Trained in place (left at its best parameters).
    data : Splits, Dataset, DataArray or array ``(sequences, frames, h, w)``
        Training sequences (with a :class:`~wavesim.bridge.Splits`, its ``train`` split, and
        its ``validation`` split unless ``validation`` is given).
    validation : same types, optional
        Validation sequences for early stopping and the choice of the best parameters.
    observe, horizon : int
        Frames that drive the lattice (K) and frames forecast (H) per sequence.
    loss : {"mse", "bce"}
        Forecast loss (``"bce"``: Bernoulli KL, needs a sigmoid decoder). The validation loss is
        the same forecast loss, without reconstruction.
    reconstruction : float
        Weight of the reconstruction of the observed frames in the training loss.
    batch_size : int
        Sequences per minibatch (the lattice's members).
    lr, clip_norm, schedule :
        Adam's learning rate, gradient-norm clipping and schedule
        (:func:`wavesim.learn.optim.make_schedule`; ``"cosine"`` decays over ``iterations``).
    weight_decay : float
        L2 penalty ``weight_decay/2 · ||θ||²`` on the encoder's and decoder's weights (not on
        biases, gains or lattice parameters), added to the training loss (not to the
        validation loss).
    iterations : int
        Total Adam iterations (a resumed run continues up to this number).
    validate_every : int
        Iterations between validations (and store checkpoints).
    patience : int, optional
        Stop after this many validations without improvement.
    seed : int
        Seed of the minibatch order.
    store : path, optional
        Model store (see the module docstring); needed to resume.
    resume : bool
        Continue the training in ``store`` (its arguments must match).
    overwrite : bool
        Replace an existing ``store``.
    progress : bool
        A tqdm progress bar with the loss.
    callback : callable, optional
        ``callback(iteration, model, validation_loss)`` after every validation; True stops.
    attrs : mapping, optional
        Extra JSON-safe attributes of a new store (e.g. the configuration file it came from).

    Returns
    -------
    TrainResult
    """
    from wavesim.bridge.datasets import Splits

    t_start = time.perf_counter()
    if isinstance(data, Splits):
        if validation is None:
            validation = data.validation
        data = data.train
    x = sequences(data, "data")
    xv = None if validation is None else sequences(validation, "validation")
    if xv is not None and xv.shape[0] == 0:
        xv = None
    for name, n in (
        ("observe", observe),
        ("horizon", horizon),
        ("batch_size", batch_size),
        ("iterations", iterations),
        ("validate_every", validate_every),
    ):
        if isinstance(n, bool) or int(n) != n or n < (0 if name == "iterations" else 1):
            raise ValueError(f"{name}: expected a positive integer, got {n!r}")
    if patience is not None and (int(patience) != patience or patience < 1):
        raise ValueError(f"patience: expected an integer >= 1 or None, got {patience!r}")
    if x.shape[0] == 0:
        raise ValueError("data: no training sequences")
    if observe + horizon > x.shape[1]:
        raise ValueError(
            f"observe + horizon = {observe + horizon} exceeds the {x.shape[1]} frames of the "
            "training sequences"
        )
    if xv is not None and observe + horizon > xv.shape[1]:
        raise ValueError(
            f"observe + horizon = {observe + horizon} exceeds the {xv.shape[1]} frames of the "
            "validation sequences"
        )
    batch_size = min(int(batch_size), x.shape[0])
    training = {
        "observe": int(observe),
        "horizon": int(horizon),
        "loss": loss,
        "reconstruction": float(reconstruction),
        "batch_size": batch_size,
        "lr": float(lr),
        "clip_norm": clip_norm,
        "schedule": repr(schedule),
        "weight_decay": float(weight_decay),
        "iterations": int(iterations),
        "validate_every": int(validate_every),
        "patience": patience,
        "seed": int(seed),
    }
    sched = ("cosine", int(iterations)) if schedule == "cosine" else schedule

    state = None
    best = {"x": model.vector(), "val": math.inf, "it": 0, "bad": 0}
    history: list[float] = []
    val_its: list[float] = []
    val_losses: list[float] = []
    ms = None
    if store is not None and resume and Path(store).exists():
        ms = _ModelStore.open(store)
        g = ms.group
        saved = json.loads(g.attrs["training"])
        for key in _RESUME_KEYS:
            if saved.get(key) != training[key]:
                raise ValueError(
                    f"resume: the training in {str(store)!r} used {key}={saved.get(key)!r}, "
                    f"this call {key}={training[key]!r}"
                )
        if json.loads(g.attrs["config"]) != json.loads(json.dumps(model.config())):
            raise ValueError(
                f"resume: the model in {str(store)!r} has a different configuration than "
                "this model (compare model.config() with the store's attrs['config'])"
            )
        done = int(g.attrs.get("iteration", 0))
        checks = int(g.attrs.get("checks", 0))
        ms.truncate(done, checks)
        if done > 0:
            hist = list(np.asarray(g["loss"][...]))
            gn = list(np.asarray(g["grad_norm"][...]))
            sx = np.asarray(g["state/x"][...])
            state = AdamState(
                done,
                sx,
                np.asarray(g["state/m"][...]),
                np.asarray(g["state/v"][...]),
                sx.copy(),
                math.inf,
                hist,
                gn,
            )
            best = {
                "x": np.asarray(g["state/best_x"][...]),
                "val": float(g.attrs.get("best_validation", math.inf)),
                "it": int(g.attrs.get("best_iteration", 0)),
                "bad": int(g.attrs.get("bad_validations", 0)),
            }
            history = hist
            val_its = list(np.asarray(g["validation_iteration"][...]))
            val_losses = list(np.asarray(g["validation_loss"][...]))
            model.set_vector(sx)
        g.attrs.update({"complete": False, "training": json.dumps(training)})
        g.attrs.pop("error", None)
        ms.consolidate()
    elif store is not None:
        ms = _ModelStore.create(
            store,
            {
                "config": json.dumps(model.config()),
                "training": json.dumps(training),
                "dataset": json.dumps(
                    {
                        "train": describe_data(data),
                        "validation": None if validation is None else describe_data(validation),
                    }
                ),
                "iteration": 0,
                "checks": 0,
                "wavesim_version": _version(),
                **dict(attrs or {}),
            },
            overwrite,
        )

    it0 = 0 if state is None else state.iteration
    stopped = bool(ms.group.attrs.get("stopped_early", False)) if ms is not None else False
    counter = {"it": it0}

    decay = _decay_mask(model) if weight_decay else None

    def fun(z):
        i = counter["it"]
        idx = _batch_indices(x.shape[0], batch_size, seed, i)
        model.set_vector(z)
        r = model.value_and_grad(x[idx], observe, horizon, loss=loss, reconstruction=reconstruction)
        g = model.gradient_vector(r.grads)
        if decay is None:
            return r.value, g
        zd = z[decay]
        g[decay] += weight_decay * zd
        return r.value + 0.5 * weight_decay * float(zd @ zd), g

    def on_iter(i, z, value, grad):
        counter["it"] = i + 1
        history.append(float(value))
        if ms is not None:
            ms.rows.append((float(value), float(np.linalg.norm(grad))))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4g}", val=f"{best['val']:.4g}")
        return False

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(iterations), initial=it0, desc="train", unit="it", leave=False)
    try:
        while counter["it"] < iterations and not stopped:
            n = min(validate_every - counter["it"] % validate_every, iterations - counter["it"])
            z0 = model.vector() if state is None else None
            res = adam(
                fun,
                z0,
                lr=lr,
                steps=n,
                clip_norm=clip_norm,
                schedule=sched,
                bounds=model.bounds,
                callback=on_iter,
                state=state,
            )
            state = res.state
            if not res.success:
                raise FloatingPointError(f"training diverged: {res.message}")
            model.set_vector(state.x)
            it = state.iteration
            validation_row = None
            stop_cb = False
            if xv is not None and (it % validate_every == 0 or it >= iterations):
                val = _validation_loss(model, xv, observe, horizon, loss)
                val_its.append(it)
                val_losses.append(val)
                validation_row = (it, val, _tracked(model))
                if val < best["val"]:
                    best.update(x=state.x.copy(), val=val, it=it, bad=0)
                else:
                    best["bad"] += 1
                if patience is not None and best["bad"] >= patience:
                    stopped = True
                if callback is not None:
                    stop_cb = bool(callback(it, model, val))
            elif xv is None:
                best.update(x=state.x.copy(), it=it)
            if ms is not None:
                ms.checkpoint(
                    state=state,
                    best_x=best["x"],
                    model=model,
                    validation=validation_row,
                    iteration=it,
                    checks=len(val_losses),
                    best_iteration=best["it"],
                    best_validation=best["val"] if math.isfinite(best["val"]) else None,
                    bad_validations=best["bad"],
                    stopped_early=stopped,
                )
            if stop_cb:
                break
    except BaseException as exc:
        if ms is not None:
            ms.group.attrs.update(complete=False, error=f"{type(exc).__name__}: {exc}")
            ms.consolidate()
        raise
    finally:
        if bar is not None:
            bar.close()
    model.set_vector(best["x"])
    seconds = time.perf_counter() - t_start
    if ms is not None:
        ms.group.attrs.update(
            complete=True,
            stopped_early=stopped,
            seconds=float(ms.group.attrs.get("seconds", 0.0)) + seconds,
        )
        ms.consolidate()
    return TrainResult(
        model=model,
        history=np.asarray(history, dtype=np.float64),
        validation_iteration=np.asarray(val_its, dtype=np.int64),
        validation_loss=np.asarray(val_losses, dtype=np.float64),
        best_iteration=int(best["it"]),
        best_validation=float(best["val"]) if math.isfinite(best["val"]) else math.nan,
        iterations=int(counter["it"]),
        stopped_early=stopped,
        seconds=seconds,
        store=None if store is None else Path(store),
        sequences_per_second=(counter["it"] - it0) * batch_size / seconds if seconds else math.nan,
    )


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("wavesim")
    except Exception:  # pragma: no cover - not installed
        return "unknown"
