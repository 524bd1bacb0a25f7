"""One sweep member: build its scenario, simulate it in memory, compute its metrics, write it.

:func:`compute_member` is the science (no store, no dask); :func:`run_member` is the task a
worker runs: it calls :func:`compute_member`, writes the member's region of the sweep store (or
returns the arrays to the caller) and turns any exception into a ``"failed"``
:class:`MemberResult` carrying the error text, so that one failing member never stops a sweep.
"""

from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

__all__ = ["MemberResult", "MemberTask", "MemoryRecording", "compute_member", "run_member"]


class MemoryRecording:
    """An in-memory stand-in for :class:`wavesim.store.StoreWriter`: the recorders' samples,
    kept in lists and turned into an :class:`xarray.Dataset` in the store's layout (same
    variable names, dims, coordinates and units)."""

    def __init__(self, recorders, grid):
        from wavesim.recorders import recorder_layouts

        self.recorders = list(recorders)
        self.grid = grid
        self.layouts = recorder_layouts(self.recorders, grid)
        self.samples = [{v.name: [] for v in lay.variables} for lay in self.layouts]
        self.steps = [[] for _ in self.recorders]

    def next_due(self, step: int) -> int:
        """The first step ``>= step`` at which some recorder is due."""
        return min(-(-int(step) // r.period) * r.period for r in self.recorders)

    def record(self, step: int, y: np.ndarray, v: np.ndarray | None = None) -> None:
        for k, rec in enumerate(self.recorders):
            if rec.due(step):
                for name, a in rec.sample(y, v).items():
                    self.samples[k][name].append(a[0])
                self.steps[k].append(int(step))

    def dataset(self, attrs=None) -> xr.Dataset:
        data_vars, coords = {}, {}
        for lay, samples, steps in zip(self.layouts, self.samples, self.steps, strict=True):
            steps = np.asarray(steps, dtype=np.int64)
            coords[lay.time_dim] = (lay.time_dim, steps * self.grid.dt,
                                    {"units": "ms", "long_name": "time"})  # fmt: skip
            coords[lay.step_coord] = (lay.time_dim, steps, {"units": "1", "long_name": "step"})
            for c in lay.coords:
                coords[c.name] = (c.dims, c.values, c.attrs)
            for var in lay.variables:
                data_vars[var.name] = (var.dims, np.stack(samples[var.name]), dict(var.attrs))
        return xr.Dataset(data_vars, coords=coords, attrs=dict(attrs or {}))


def compute_member(scenario, *, record=("metrics",), metrics=(), analysis_start: float = 0.0,
                   threads: int | None = 1) -> dict[str, np.ndarray]:  # fmt: skip
    """Simulate one scenario and return what a sweep records of it.

    Parameters
    ----------
    scenario : wavesim.scenario.Scenario
        The member's scenario (``run.members == 1``).
    record : tuple of str
        Subset of ``("metrics", "fields", "electrodes")``.
    metrics : sequence of str
        Names from :data:`wavesim.sweep.metrics.METRICS`.
    analysis_start : float
        Metrics use the frames at ``time >= analysis_start`` (ms).
    threads : int, optional
        Kernel threads (default 1: sweeps parallelise over members).

    Returns
    -------
    dict of str to numpy.ndarray
        The recorded fields (``field``, ``field_dot``: ``(time, y, x)``), electrodes
        (``electrodes``: ``(time_electrodes, electrode)``) and metrics, without a member axis.

    Raises
    ------
    wavesim.stability.StabilityError, wavesim.simulate.BlowUpError, ValueError
        As the simulation or the analyzers raise them.
    """
    from wavesim.recorders import ElectrodeRecorder, FieldRecorder, Grid
    from wavesim.simulate import build
    from wavesim.sweep.metrics import compute_metrics

    built = build(scenario, threads=threads)
    sim, lat, rec = built.simulator, built.lattice, scenario.record
    grid = Grid(lat.ny, lat.nx, lat.dx, sim.dt, members=1, dtype=sim.dtype)
    fields = list(rec.fields) if "fields" in record else []
    if "metrics" in record and metrics:
        fields = ["y", "ydot"]  # the oscillator phase needs both; only rec.fields are returned
    recorders = []
    if fields:
        recorders.append(FieldRecorder(fields, period=scenario.record_stride,
                                       subsample=rec.subsample))  # fmt: skip
    if "electrodes" in record:
        recorders.append(ElectrodeRecorder(rec.electrodes, scenario.electrode_stride, lat.dx))
    memory = MemoryRecording(recorders, grid)
    sim.run(scenario.n_steps, memory)
    attrs = {"scenario": scenario.to_toml()}
    ds = memory.dataset(attrs)
    if lat.mask is not None:
        s = rec.subsample
        ds["mask"] = (("y", "x"), lat.mask[::s, ::s].astype(np.int8), {"units": "1"})
    out = {}
    if "fields" in record:
        for f in rec.fields:
            name = "field" if f == "y" else "field_dot"
            out[name] = np.asarray(ds[name].values)
    if "electrodes" in record:
        out["electrodes"] = np.asarray(ds["electrodes"].values)
    if "metrics" in record and metrics:
        out.update(compute_metrics(metrics, ds, scenario, built.theta, analysis_start))
    return out


@dataclass
class MemberTask:
    """What a worker needs to run one member (picklable)."""

    index: int
    scenario: object
    record: tuple[str, ...]
    metrics: tuple[str, ...]
    analysis_start: float = 0.0
    store: str | None = None  #: write the data here; None: return it in the result
    threads: int | None = 1


@dataclass
class MemberResult:
    """The outcome of one member: ``status`` is ``"done"`` or ``"failed"`` (with ``error``)."""

    index: int
    status: str
    error: str = ""
    elapsed: float = math.nan
    worker: str = ""
    data: dict | None = field(default=None, repr=False)


def _where() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def run_member(task: MemberTask) -> MemberResult:
    """Run one member; never raises for an ``Exception`` (the result says ``"failed"``).

    The data go to ``task.store`` (this member's chunks only) before the result is returned, or
    ride along in ``MemberResult.data`` when ``task.store`` is None.
    """
    from wavesim.sweep.template import write_member

    t0 = time.perf_counter()
    where = _where()
    try:
        data = compute_member(task.scenario, record=task.record, metrics=task.metrics,
                              analysis_start=task.analysis_start, threads=task.threads)  # fmt: skip
        if task.store is not None:
            write_member(task.store, task.index, data)
            data = None
    except Exception as exc:  # noqa: BLE001 - a failing member is recorded, the sweep goes on
        return MemberResult(task.index, "failed", f"{type(exc).__name__}: {exc}",
                            time.perf_counter() - t0, where)  # fmt: skip
    return MemberResult(task.index, "done", "", time.perf_counter() - t0, where, data)
