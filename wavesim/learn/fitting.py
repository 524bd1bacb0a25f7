"""Fit a scenario's lattice to data: parameters, losses, optimizer, store, resume, fitted TOML.

:func:`fit` ties the pieces of :mod:`wavesim.learn` together:

1. the scenario gives the lattice, the orientation map, the drive, the noise seed, the initial
   state and the starting parameter values;
2. the target (a store, a Dataset/DataArray, or any :class:`~wavesim.learn.losses.Loss`) gives
   the loss and the number of steps to simulate;
3. a :class:`~wavesim.learn.params.ParameterSpace` maps the optimizer's vector to the learnable
   parameters with their constraints (positivity, stencil symmetry, zero-sum);
4. :class:`~wavesim.learn.gradient.GradientEngine` gives loss and exact gradient;
5. :func:`~wavesim.learn.optim.adam` or :func:`~wavesim.learn.optim.lbfgsb` optimizes, with a
   progress bar, while a :class:`FitStore` records the loss history and the parameter trajectory
   in a zarr store and keeps the optimizer's state, so an interrupted fit resumes;
6. the fitted parameters are written back as a scenario that ``wavesim run`` reproduces.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import zarr

from wavesim.learn.gradient import GradientEngine
from wavesim.learn.losses import ElectrodeMSE, FieldMSE, Loss
from wavesim.learn.optim import AdamState, OptimResult, adam, lbfgsb
from wavesim.learn.params import Param, ParameterSpace, StencilParam
from wavesim.store import consolidate, prepare_path

__all__ = [
    "DEFAULT_LEARN",
    "FitResult",
    "FitStore",
    "Objective",
    "fit",
    "fitted_scenario",
    "gradient_check",
    "open_fit",
]

#: What :func:`fit` learns when not told: coupling, orientation coupling, frequency, damping.
DEFAULT_LEARN = ("w", "kappa", "omega2", "gamma")

FIT_KIND = "wavesim-fit"


# --------------------------------------------------------------------------------------------
# the store


class FitStore:
    """Zarr v3 store of a fit: loss history, parameter trajectory, optimizer state.

    Layout: arrays ``loss``, ``grad_norm`` (``iteration``), ``x_free`` (``iteration, free``: the
    optimizer's vector), ``param_<name>`` (``iteration, ...``: every learnable parameter in
    model units), and the optimizer state ``state_x``, ``state_m``, ``state_v``, ``best_x``
    (overwritten at every checkpoint). Root attributes: ``kind = "wavesim-fit"``, ``complete``,
    the base ``scenario`` TOML, the fit ``config`` (JSON), ``labels`` of ``x_free``, and, when
    done, the fitted scenario TOML ``fitted_scenario``. Metadata is consolidated at every flush,
    so a fit interrupted at any point leaves a readable store (``complete = false``).
    """

    def __init__(self, path: Path, group: zarr.Group):
        self.path = Path(path)
        self.group = group
        self._rows: list[tuple] = []

    @classmethod
    def create(cls, path, space: ParameterSpace, *, attrs: Mapping, overwrite: bool = False):
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(
                f"fit store {str(path)!r} exists; pass overwrite=True (--overwrite) or "
                "resume=True (--resume)"
            )
        prepare_path(path, overwrite)
        group = zarr.open_group(str(path), mode="w", zarr_format=3)
        n = space.size
        group.attrs.update({"kind": FIT_KIND, "complete": False, "labels": space.labels(), **attrs})

        def arr(name, shape, dims, units=None):
            a = group.create_array(
                name,
                shape=(0, *shape),
                chunks=(256, *shape),
                dtype="f8",
                fill_value=np.nan,
                dimension_names=("iteration", *dims),
            )
            if units:
                a.attrs["units"] = units

        arr("loss", (), ())
        arr("grad_norm", (), ())
        arr("x_free", (n,), ("free",))
        values = space.unpack(space.x0)
        for name in space.names_learnable:
            shape = np.shape(values[name])
            dims = {
                0: (),
                2: ("y", "x") if name not in ("w", "wv") else ("ky", "kx"),
                3: ("member", "y", "x"),
            }[len(shape)]
            arr(f"param_{name}", shape, dims, _UNITS.get(name))
        store = cls(path, group)
        store.flush()
        return store

    @classmethod
    def open(cls, path):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"fit store {str(path)!r} does not exist")
        group = zarr.open_group(str(path), mode="r+", zarr_format=3, use_consolidated=False)
        if group.attrs.get("kind") != FIT_KIND:
            raise ValueError(f"{str(path)!r} is not a wavesim fit store (attrs['kind'])")
        return cls(path, group)

    @property
    def iterations(self) -> int:
        return self.group["loss"].shape[0] + len(self._rows)

    def append(self, loss: float, grad_norm: float, x: np.ndarray, values: Mapping):
        self._rows.append(
            (
                float(loss),
                float(grad_norm),
                np.array(x, float),
                {k: np.array(v, float) for k, v in values.items()},
            )
        )

    def flush(self, state: Mapping[str, np.ndarray] | None = None, **attrs):
        """Write buffered rows (and the optimizer state), then consolidate the metadata."""
        g = self.group
        if self._rows:
            n0 = g["loss"].shape[0]
            n1 = n0 + len(self._rows)
            for name, col in (("loss", 0), ("grad_norm", 1), ("x_free", 2)):
                a = g[name]
                a.resize((n1, *a.shape[1:]))
                a[n0:n1] = np.stack([r[col] for r in self._rows])
            for name in self._rows[0][3]:
                a = g[f"param_{name}"]
                a.resize((n1, *a.shape[1:]))
                a[n0:n1] = np.stack([r[3][name] for r in self._rows])
            self._rows = []
        if state:
            for name, value in state.items():
                value = np.asarray(value, float)
                if name in g and g[name].shape == value.shape:
                    g[name][...] = value
                else:
                    if name in g:
                        del g[name]
                    g.create_array(name, data=value, dimension_names=("free",) * value.ndim)
        if attrs:
            g.attrs.update(attrs)
        self.group = consolidate(self.path)

    def history(self) -> np.ndarray:
        return np.asarray(self.group["loss"][:])

    def close(self, complete: bool, **attrs):
        self.flush(complete=bool(complete), **attrs)


def open_fit(path):
    """Open a fit store as an :class:`xarray.Dataset` (loss history and parameter trajectory).

    Warns when the fit did not complete (interrupted or failed): what was written is kept.
    """
    import xarray as xr

    ds = xr.open_zarr(str(path), consolidated=True)
    if not ds.attrs.get("complete", False):
        warnings.warn(
            f"fit store {str(path)!r} is partial (the fit did not complete)", stacklevel=2
        )
    return ds


_UNITS = {
    "w": "1/ms^2",
    "wv": "1/ms",
    "kappa": "1",
    "omega2": "1/ms^2",
    "gamma": "1/ms",
    "bias": "1/ms^2",
    "gain": "1",
    "dt": "ms",
    "y0": "1",
    "v0": "1/ms",
}


# --------------------------------------------------------------------------------------------
# parameters


def _space(
    params, dt, y0, v0, learn, *, w_symmetry, w_zero_sum, positive, per_site, shape, start
) -> ParameterSpace:
    start = dict(start or {})
    unknown = sorted(set(start) - {"w", "wv", "kappa", "omega2", "gamma", "bias", "gain", "dt"})
    if unknown:
        raise ValueError(f"start: unknown parameter(s) {unknown}")
    per_site = set(per_site or ())

    def val(name, default):
        return start.get(name, default)

    def pos(name, value, learnable):
        kw = (
            {"transform": "bounds", "lower": 0.0}
            if positive == "bounds"
            else {"transform": "softplus"}
        )
        if positive == "softplus" and learnable and np.any(np.asarray(value) <= 0):
            raise ValueError(f"start: {name} must be > 0 for the softplus parameterisation")
        return Param(
            value,
            learnable=learnable,
            per_site=name in per_site,
            shape=shape if name in per_site else None,
            **kw,
        )

    spec = {
        "w": StencilParam(
            np.asarray(val("w", params.w), float),
            symmetry=w_symmetry,
            zero_sum=w_zero_sum,
            learnable="w" in learn,
        ),
        "omega2": pos("omega2", val("omega2", params.omega2), "omega2" in learn),
        "gamma": pos("gamma", val("gamma", params.gamma), "gamma" in learn),
        "bias": Param(
            val("bias", params.bias),
            learnable="bias" in learn,
            per_site="bias" in per_site,
            shape=shape if "bias" in per_site else None,
        ),
        "gain": Param(val("gain", params.gain), learnable="gain" in learn),
        "dt": Param(val("dt", dt), learnable="dt" in learn, transform="bounds", lower=1e-9),
        "y0": Param(y0, learnable="y0" in learn),
        "v0": Param(v0, learnable="v0" in learn),
    }
    if params.wv is not None:
        spec["wv"] = StencilParam(
            np.asarray(val("wv", params.wv), float), symmetry=w_symmetry, learnable="wv" in learn
        )
    if params.theta is not None:
        spec["kappa"] = Param(
            val("kappa", params.kappa), learnable="kappa" in learn, transform="bounds", lower=0.0
        )
    return ParameterSpace(spec)


def _model_values(values: Mapping) -> dict:
    out = {
        k: values[k] for k in ("w", "wv", "kappa", "omega2", "gamma", "bias", "gain") if k in values
    }
    for k in ("omega2", "gamma", "bias", "kappa", "gain"):
        if k in out and np.ndim(out[k]) == 0:
            out[k] = float(out[k])
    return out


# --------------------------------------------------------------------------------------------
# the fitted scenario


def fitted_scenario(scenario, values: Mapping, path=None):
    """The scenario with fitted parameter values; written as TOML when ``path`` is given.

    Per-site maps (``omega2``, ``gamma``, ``bias``) are saved as ``.npy`` files next to the TOML
    and referenced by relative path. A learned initial state cannot be expressed in a scenario
    (``[initial]`` holds kinds, not arrays): it is refused here.

    Parameters
    ----------
    scenario : Scenario
        The base scenario of the fit.
    values : mapping
        Parameter values by name (as :meth:`ParameterSpace.unpack` returns them).
    path : str or Path, optional
        Where to write the TOML.

    Returns
    -------
    Scenario
    """
    from wavesim.scenario import Scenario

    raw = scenario.to_dict()
    base_dir = Path(path).parent if path is not None else Path(scenario.base_dir)
    coupling = raw.setdefault("coupling", {})
    if "w" in values:
        coupling["kind"] = "stencil"
        coupling.pop("speed", None)
        coupling["stencil"] = np.asarray(values["w"], float).tolist()
    if "wv" in values and values["wv"] is not None:
        coupling["velocity_stencil"] = np.asarray(values["wv"], float).tolist()
    if "kappa" in values:
        coupling["kappa"] = float(values["kappa"])
    model = raw.setdefault("model", {})
    stem = Path(path).stem if path is not None else "fitted"
    for k in ("omega2", "gamma", "bias"):
        if k not in values:
            continue
        v = np.asarray(values[k], float)
        if v.ndim == 0:
            model[k] = float(v)
        else:
            if path is None:
                raise ValueError(f"{k} is a per-site map: give a path to write it next to")
            name = f"{stem}_{k}.npy"
            base_dir.mkdir(parents=True, exist_ok=True)
            np.save(base_dir / name, v)
            model[k] = name
    if "gain" in values:
        model["gain"] = float(values["gain"])
    if "dt" in values:
        # keep every count of steps: duration, record and electrode periods follow dt
        dt = float(values["dt"])
        run = raw.setdefault("run", {})
        run["dt"] = dt
        run["duration"] = scenario.n_steps * dt
        rec = raw.setdefault("record", {})
        rec["period"] = scenario.record_stride * dt
        if rec.get("electrodes"):
            rec["electrode_period"] = scenario.electrode_stride * dt
    meta = raw.setdefault("meta", {})
    meta["description"] = f"Fitted by wavesim.learn.fitting from {scenario.meta.name!r}."
    source = str(path) if path is not None else "<fitted>"
    out = Scenario.from_dict(raw, source=source, base_dir=base_dir)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(out.to_toml())
    return out


# --------------------------------------------------------------------------------------------
# fit


@dataclass
class FitResult:
    """Outcome of :func:`fit`.

    Attributes
    ----------
    values : dict
        Fitted parameter values by name (model units).
    loss : float
        Best loss.
    history : numpy.ndarray
        Loss of every iteration (with a store: including those before a resume). For Adam the
        first entry is the loss at the start; L-BFGS-B's first entry is after one iteration.
    start_loss : float
        Loss at the starting point.
    scenario : Scenario
        The fitted scenario (written to ``scenario_path`` when given).
    scenario_path : Path or None
    store : Path or None
    optim : OptimResult
        The optimizer's result of this call.
    space : ParameterSpace
    seconds : float
    """

    values: dict
    loss: float
    history: np.ndarray
    scenario: object
    scenario_path: Path | None
    store: Path | None
    optim: object
    space: ParameterSpace
    seconds: float
    start_loss: float = math.nan


def _target_loss(target, built, observe, mask, warmup_ms):
    if isinstance(target, Loss):
        return target
    dt = built.scenario.run.dt
    if observe == "field":
        return FieldMSE.from_dataarray(target, dt, mask=mask, warmup_ms=warmup_ms)
    if observe == "electrodes":
        return ElectrodeMSE.from_dataarray(
            target, dt, dx=built.lattice.dx, shape=built.lattice.shape, warmup_ms=warmup_ms
        )
    raise ValueError(f"observe: expected 'field' or 'electrodes', got {observe!r}")


def _initial(value, state, name):
    """The initial ``y0``/``v0``: ``value`` (checked against the state's shape) or the state."""
    state = np.array(state, float)
    if value is None:
        return state
    a = np.array(value, float)
    if a.shape == state.shape[1:]:
        a = np.broadcast_to(a, state.shape).copy()
    if a.shape != state.shape:
        raise ValueError(
            f"{name}: expected an initial state of shape (members, ny, nx) = {state.shape} "
            f"(or (ny, nx)), got {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: the initial state has non-finite values")
    return a


class Objective:
    """The loss of a scenario's lattice against a target, as a function of the free vector ``x``.

    ``objective(x) -> (value, grad)`` is what the optimizers drive; :func:`fit` and
    :func:`gradient_check` build one. Arguments as in :func:`fit`.

    Attributes
    ----------
    scenario, built, loss, nsteps, space, engine
    """

    def __init__(
        self,
        scenario,
        target,
        learn=DEFAULT_LEARN,
        *,
        observe="field",
        mask=None,
        warmup_ms=None,
        w_symmetry="none",
        w_zero_sum=False,
        positive="bounds",
        per_site=(),
        start=None,
        checkpoint="auto",
        memory_budget=None,
        threads=None,
        y0=None,
        v0=None,
    ):
        from wavesim.scenario import Scenario, load_scenario
        from wavesim.simulate import build

        if not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        self.scenario = scenario
        self.learn = tuple(learn)
        unknown = sorted(set(self.learn) - set(_UNITS))
        if unknown:
            raise ValueError(f"learn: unknown parameter(s) {unknown}; known: {sorted(_UNITS)}")
        self.built = built = build(scenario, threads=threads)
        sim = built.simulator
        self.params = params = built.params
        self.loss = _target_loss(target, built, observe, mask, warmup_ms)
        self.nsteps = int(np.max(self.loss.steps))
        if "kappa" in self.learn and params.theta is None:
            raise ValueError("learn: 'kappa' needs an orientation map ([map] kind != 'none')")
        if "wv" in self.learn and params.wv is None:
            raise ValueError("learn: 'wv' needs a velocity stencil ([coupling] velocity_stencil)")
        self.space = _space(
            params,
            scenario.run.dt,
            _initial(y0, sim.y, "y0"),
            _initial(v0, sim.v, "v0"),
            self.learn,
            w_symmetry=w_symmetry,
            w_zero_sum=w_zero_sum,
            positive=positive,
            per_site=per_site,
            shape=built.lattice.shape,
            start=start,
        )
        self.engine = GradientEngine(
            built.lattice,
            drive=built.drive,
            members=sim.members,
            dtype=sim.dtype,
            seed=scenario.run.seed,
            threads=threads,
            checkpoint=checkpoint,
            memory_budget=memory_budget,
        )

    def values(self, x) -> dict:
        """Model values (by name) at ``x``."""
        return self.space.unpack(x)

    def __call__(self, x):
        values = self.space.unpack(x)
        p = replace(self.params, **_model_values(values))
        res = self.engine.value_and_grad(
            p,
            float(values["dt"]),
            values["y0"],
            values["v0"],
            self.nsteps,
            self.loss,
            wrt=self.space.names_learnable,
        )
        return res.value, self.space.pullback(x, res.grads)

    def value(self, x) -> float:
        """The loss alone (forward only)."""
        values = self.space.unpack(x)
        p = replace(self.params, **_model_values(values))
        return self.engine.loss(
            p, float(values["dt"]), values["y0"], values["v0"], self.nsteps, self.loss
        )


def gradient_check(
    scenario,
    target,
    learn=DEFAULT_LEARN,
    *,
    eps: float = 1e-6,
    n_directions: int = 8,
    seed: int = 0,
    x=None,
    **kwargs,
):
    """Check the adjoint gradient of your own configuration against finite differences.

    Builds the same objective as :func:`fit` (same arguments) and compares its gradient with
    central differences, per parameter block along random directions (or entry by entry for few
    parameters). Run it in float64 (``[run] dtype = "float64"``) for a meaningful comparison.

    Returns
    -------
    wavesim.learn.check.GradientCheckResult
        ``print(result)`` shows the worst entries by parameter name; ``result.assert_ok(1e-6)``
        raises naming the worst one.
    """
    from wavesim.learn.check import gradient_check as _check

    obj = Objective(scenario, target, learn, **kwargs)
    x = obj.space.x0 if x is None else np.asarray(x, float)
    return _check(
        obj,
        x,
        eps=eps,
        n_directions=n_directions,
        seed=seed,
        names=obj.space.slices,
        value=obj.value,
    )


def fit(
    scenario,
    target,
    learn: Sequence[str] = DEFAULT_LEARN,
    *,
    observe: str = "field",
    mask=None,
    warmup_ms: float | None = None,
    optimizer: str = "lbfgsb",
    steps: int = 200,
    lr: float = 0.01,
    clip_norm: float | None = None,
    schedule=None,
    w_symmetry: str = "none",
    w_zero_sum: bool = False,
    positive: str = "bounds",
    per_site: Sequence[str] = (),
    start: Mapping | None = None,
    store=None,
    resume: bool = False,
    overwrite: bool = False,
    scenario_out=None,
    progress: bool = True,
    checkpoint="auto",
    memory_budget: int | None = None,
    threads: int | None = None,
    flush_every: int = 10,
    callback: Callable | None = None,
    y0=None,
    v0=None,
) -> FitResult:
    """Fit the learnable parameters of a scenario's lattice to a target.

    Parameters
    ----------
    scenario : Scenario or path
        Lattice, map, drive, noise seed, initial state, integrator, dtype and starting values.
    target : Loss, xarray object or store path
        What to match: a :class:`~wavesim.learn.losses.Loss`, or recorded data (a wavesim store
        or Dataset/DataArray with ``time`` in ms) matched with :class:`FieldMSE` (``observe =
        "field"``) or :class:`ElectrodeMSE` (``"electrodes"``). The simulation runs up to the
        last observed time.
    learn : sequence of str
        Learnable parameters (others are frozen at the scenario's values): any of ``w``, ``wv``,
        ``kappa``, ``omega2``, ``gamma``, ``bias``, ``gain``, ``y0``, ``v0``, ``dt``.
    observe, mask, warmup_ms :
        How the target is compared (see above); ``mask`` (ny, nx) of observed sites;
        ``warmup_ms`` ignores earlier samples.
    optimizer : {"lbfgsb", "adam"}
    steps : int
        Iterations (Adam) or maximum iterations (L-BFGS-B).
    lr, clip_norm, schedule :
        Adam's learning rate, gradient clipping and schedule (see :func:`~wavesim.learn.adam`).
    w_symmetry, w_zero_sum :
        Constraints of the coupling stencil(s): ``"none" | "mirror" | "isotropic"``, and a
        zero-sum W (centre = −Σ others).
    positive : {"bounds", "softplus"}
        How ``omega2`` and ``gamma`` stay non-negative.
    per_site : sequence of str
        Parameters among ``omega2``, ``gamma``, ``bias`` learned as per-site maps.
    start : mapping, optional
        Starting values overriding the scenario's (e.g. a perturbed start).
    store : path, optional
        Zarr store of the fit (history, trajectory, optimizer state). Needed to resume.
    resume : bool
        Continue the fit in ``store`` from its last checkpoint.
    overwrite : bool
        Replace an existing ``store``.
    scenario_out : path, optional
        Write the fitted scenario there (TOML; per-site maps as ``.npy`` beside it).
    progress : bool
        Progress bar with the loss.
    checkpoint, memory_budget :
        Checkpointing of the gradient (:class:`~wavesim.learn.gradient.GradientEngine`).
    threads : int, optional
    flush_every : int
        Iterations between writes (and optimizer-state checkpoints) to the store.
    callback : callable, optional
        ``callback(iteration, values, loss)``; return True to stop.
    y0, v0 : array_like, optional
        Initial state ``(members, ny, nx)`` (or ``(ny, nx)`` for every member) replacing the
        scenario's ``[initial]`` state, e.g. frames of a recording; learned when ``"y0"`` /
        ``"v0"`` are in ``learn``, fixed otherwise. The fitted scenario keeps its ``[initial]``
        section (it cannot hold arrays).

    Returns
    -------
    FitResult
    """

    t_start = time.perf_counter()
    if optimizer not in ("lbfgsb", "adam"):
        raise ValueError(f"optimizer: expected 'lbfgsb' or 'adam', got {optimizer!r}")
    obj = Objective(
        scenario,
        target,
        learn,
        observe=observe,
        mask=mask,
        warmup_ms=warmup_ms,
        w_symmetry=w_symmetry,
        w_zero_sum=w_zero_sum,
        positive=positive,
        per_site=per_site,
        start=start,
        checkpoint=checkpoint,
        memory_budget=memory_budget,
        threads=threads,
        y0=y0,
        v0=v0,
    )
    scenario, learn, space, nsteps = obj.scenario, obj.learn, obj.space, obj.nsteps
    config = {
        "learn": list(learn),
        "observe": observe,
        "optimizer": optimizer,
        "steps": steps,
        "lr": lr,
        "clip_norm": clip_norm,
        "w_symmetry": w_symmetry,
        "w_zero_sum": w_zero_sum,
        "positive": positive,
        "per_site": list(per_site),
        "nsteps": nsteps,
        "schedule": "callable" if callable(schedule) else repr(schedule),
    }
    if schedule == "cosine":  # over the whole fit, not over each chunk of flush_every iterations
        schedule = ("cosine", steps)

    # store and resume
    fs = None
    state = None
    x0 = space.x0
    done = 0
    resumed_best = None
    if store is not None:
        if resume and Path(store).exists():
            fs = FitStore.open(store)
            saved = json.loads(fs.group.attrs["config"])
            keys = ["learn", "optimizer", "w_symmetry", "w_zero_sum", "positive", "per_site"]
            if optimizer == "adam":
                keys += ["lr", "clip_norm", "schedule"]
            for key in keys:
                if saved.get(key) != config[key]:
                    raise ValueError(
                        f"resume: the fit in {str(store)!r} used {key}={saved.get(key)!r}, "
                        f"this call {key}={config[key]!r}"
                    )
            done = int(fs.group.attrs.get("state_iteration", 0))
            # drop rows written after the last checkpoint: they are recomputed
            for name in fs.group.array_keys():
                a = fs.group[name]
                if a.ndim and "iteration" in (a.metadata.dimension_names or ()):
                    a.resize((done, *a.shape[1:]))
            if "best_x" in fs.group and "best_loss" in fs.group.attrs:
                resumed_best = {
                    "loss": float(fs.group.attrs["best_loss"]),
                    "x": np.asarray(fs.group["best_x"][:]),
                }
            if "state_x" in fs.group:
                x0 = np.asarray(fs.group["state_x"][:])
                if optimizer == "adam":
                    hist = list(np.asarray(fs.group["loss"][:]))
                    gn = list(np.asarray(fs.group["grad_norm"][:]))
                    state = AdamState(
                        done,
                        x0.copy(),
                        np.asarray(fs.group["state_m"][:]),
                        np.asarray(fs.group["state_v"][:]),
                        np.asarray(fs.group["best_x"][:]),
                        float(fs.group.attrs["best_loss"]),
                        hist,
                        gn,
                    )
            fs.flush(complete=False)
        else:
            fs = FitStore.create(
                store,
                space,
                overwrite=overwrite,
                attrs={
                    "scenario": scenario.to_toml(),
                    "config": json.dumps(config),
                    "state_iteration": 0,
                },
            )

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=done, desc="fit", unit="it", leave=False)
    best = {"loss": math.inf, "x": x0.copy()}
    if resumed_best is not None:
        best = resumed_best
    if state is not None:
        best = {"loss": state.best_fun, "x": state.best_x.copy()}
    counter = {"it": done}
    rows: list[float] = []  # losses of this call's iterations
    start = {
        "loss": float(fs.group.attrs.get("start_loss", math.nan)) if fs is not None else math.nan
    }
    fun = obj

    def on_iter(i, x, value, grad):
        it = counter["it"] = counter["it"] + 1
        rows.append(float(value))
        if it == 1:
            start["loss"] = float(value) if optimizer == "adam" else start["loss"]
            if fs is not None:
                fs.group.attrs["start_loss"] = start["loss"]
        values = space.unpack(x)
        if value < best["loss"]:
            best["loss"], best["x"] = float(value), np.array(x, float)
        if fs is not None:
            fs.append(
                value, float(np.linalg.norm(grad)), x, {n: values[n] for n in space.names_learnable}
            )
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4g}")
        return bool(callback(it, values, value)) if callback is not None else False

    result = None
    try:
        if optimizer == "adam":
            # in chunks of flush_every iterations: Adam's full state (moments) is checkpointed
            # with the history after each chunk, so a resumed fit continues bit for bit
            while counter["it"] < steps:
                n = min(flush_every, steps - counter["it"])
                result = adam(
                    fun,
                    None if state is not None else x0,
                    lr=lr,
                    steps=n,
                    clip_norm=clip_norm,
                    schedule=schedule,
                    bounds=space.bounds,
                    callback=on_iter,
                    state=state,
                )
                state = result.state
                if fs is not None:
                    fs.flush(
                        state={
                            "state_x": state.x,
                            "state_m": state.m,
                            "state_v": state.v,
                            "best_x": state.best_x,
                        },
                        state_iteration=int(state.iteration),
                        best_loss=float(state.best_fun),
                    )
                if result.stopped_by_callback or not result.success:
                    break
        else:

            def lb_cb(i, x, value, grad):
                if i == 0:  # lbfgsb also reports x0 (iteration 0): not an iteration
                    if done == 0:
                        start["loss"] = float(value)
                    return False
                stop = on_iter(i, x, value, grad)
                if fs is not None and (counter["it"] % flush_every == 0 or stop):
                    fs.flush(
                        state={"state_x": x, "best_x": best["x"]},
                        state_iteration=counter["it"],
                        best_loss=best["loss"],
                    )
                return stop

            if steps > done:
                result = lbfgsb(fun, x0, bounds=space.bounds, maxiter=steps - done, callback=lb_cb)
    except KeyboardInterrupt:
        if fs is not None:
            fs.close(False, error="interrupted (KeyboardInterrupt)")
        raise
    except Exception as exc:
        if fs is not None:
            fs.close(False, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if bar is not None:
            bar.close()
    if result is None:  # nothing left to do (resumed a finished fit)
        result = OptimResult(
            x=best["x"],
            fun=best["loss"],
            jac=None,
            nit=0,
            nfev=0,
            history=np.empty(0),
            grad_norms=np.empty(0),
            success=True,
            message="nothing left to do: resumed a finished fit",
        )
    x_best = best["x"] if best["loss"] <= float(result.fun) else np.asarray(result.x)
    values = space.unpack(x_best)
    fitted_values = {n: values[n] for n in space.names if n not in ("y0", "v0")}
    learned_state = [n for n in ("y0", "v0") if n in learn]
    fitted = None
    note = ""
    if learned_state:
        note = f"no fitted scenario: a learned {' and '.join(learned_state)} has no TOML form"
    else:
        try:
            fitted = fitted_scenario(
                scenario, {k: v for k, v in fitted_values.items() if k in learn}, scenario_out
            )
        except ValueError as exc:  # ScenarioError is a ValueError
            note = f"no fitted scenario: {exc}"
            warnings.warn(note, stacklevel=2)
    history = np.asarray(rows, float)
    if fs is not None:
        fs.close(
            True,
            best_loss=float(min(best["loss"], float(result.fun))),
            fitted_scenario=fitted.to_toml() if fitted is not None else "",
            start_loss=start["loss"],
            note=note,
            seconds=time.perf_counter() - t_start,
        )
        history = fs.history()
    return FitResult(
        values=fitted_values,
        loss=float(min(best["loss"], float(result.fun))),
        history=history,
        scenario=fitted,
        scenario_path=Path(scenario_out) if scenario_out and fitted else None,
        store=Path(store) if store is not None else None,
        optim=result,
        space=space,
        seconds=time.perf_counter() - t_start,
        start_loss=start["loss"],
    )
