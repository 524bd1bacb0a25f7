"""The sweep store: a zarr v3 template written before any member runs, filled member by member.

Layout (one zarr v3 group; every array has ``dimension_names``; metadata consolidated once, when
the template is written, so ``xarray.open_zarr`` and :func:`wavesim.open_store` open it at any
time):

* ``member`` (int64, 0..N-1) and, along ``member``, the parameter coordinates: one per grid axis
  and per seeds axis (named like the dimension, e.g. ``coupling_speed``, ``seed``), and for a zip
  or sample axis its position (``zip``, ``sample``) and one coordinate per key
  (``drive_amplitude``). Attributes: ``scenario_key``, ``units``.
* per-member data, **chunk 1 along member**, so parallel writers never touch the same chunk:
  the metrics (``(member,)`` or ``(member, category)``), and when recorded the fields
  (``field``/``field_dot`` on ``(member, time, y, x)``, chunked like a run's store along time)
  and electrodes (``electrodes`` on ``(member, time_electrodes, electrode)``) with their
  coordinates (``time``, ``step``, ``y``, ``x``, ...);
* bookkeeping on ``(member,)``: ``status`` (``"pending"``, ``"done"``, ``"failed"``), ``error``
  (the exception of a failed member, ``""`` otherwise), ``elapsed`` (s), ``attempts`` (results
  received), ``worker`` (where it ran).
* root attributes: ``wavesim_store``, ``wavesim_sweep`` (format), ``name``, ``sweep`` (the sweep
  file's text), ``scenario`` (the base scenario, canonical TOML), ``members``, ``sweep_dims``
  (the axes: name, kind, size, keys, coordinates), ``record``, ``metrics``, ``analysis_start``,
  ``fingerprint``, and the progress: ``complete`` (no member pending), ``n_done``, ``n_failed``,
  ``n_pending``.

Members write only their own chunks of the data variables; the process that runs the sweep
writes the bookkeeping after a member's data is on disk, so ``status == "done"`` implies the data
is complete. zarr writes every chunk file atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from wavesim.store import (
    STORE_FORMAT,
    _json_safe,
    _spatial_chunks,
    _version,
    consolidate,
    prepare_path,
)

__all__ = ["RESERVED", "STATUS", "SWEEP_FORMAT", "SweepStore", "member_variables"]

#: Version of the sweep layout, stored in the ``wavesim_sweep`` root attribute.
SWEEP_FORMAT = 1
#: The values of ``status``.
STATUS = ("pending", "done", "failed")
BOOKKEEPING = ("status", "error", "elapsed", "attempts", "worker")
#: Names the store uses itself (beside the metric names).
RESERVED = (
    "member",
    *BOOKKEEPING,
    "time",
    "step",
    "y",
    "x",
    "field",
    "field_dot",
    "electrodes",
    "electrode",
    "electrode_x",
    "electrode_y",
    "time_electrodes",
    "step_electrodes",
    "category",
)


@dataclass(frozen=True)
class VarInfo:
    """A per-member variable: dims, shape, chunks (all without ``member``), dtype, attrs."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype
    attrs: dict
    fill: object


def _fill(dtype: np.dtype):
    return np.nan if np.dtype(dtype).kind == "f" else -1


def _recorded(spec) -> tuple[list[VarInfo], dict]:
    """Variables and static coordinates of the recorded fields and electrodes."""
    from wavesim.recorders import ElectrodeRecorder, FieldRecorder, Grid

    s = spec.base if not spec.scenarios else spec.scenarios[0]
    variables, coords = [], {}
    grid = Grid(*s.lattice.shape, s.lattice.dx, s.run.dt, members=1, dtype=np.dtype(s.run.dtype))
    recorders = []
    if "fields" in spec.record:
        recorders.append(
            FieldRecorder(s.record.fields, period=s.record_stride, subsample=s.record.subsample)
        )
    if "electrodes" in spec.record:
        recorders.append(ElectrodeRecorder(s.record.electrodes, s.electrode_stride, s.lattice.dx))
    for rec in recorders:
        lay = rec.layout(grid)
        steps = np.arange(0, s.n_steps + 1, rec.period, dtype=np.int64)
        nt = steps.size
        block = max(1, min(s.record.block, nt))
        for v in lay.variables:
            attrs = dict(v.attrs)
            chunks = (block, *_spatial_chunks(v.shape, block, v.dtype.itemsize))
            variables.append(VarInfo(v.name, v.dims, (nt, *v.shape), chunks, v.dtype, attrs,
                                     _fill(v.dtype)))  # fmt: skip
        for c in lay.coords:
            coords[c.name] = (c.dims, np.asarray(c.values), dict(c.attrs))
        coords[lay.time_dim] = ((lay.time_dim,), steps * s.run.dt,
                                {"units": "ms", "long_name": "time"})  # fmt: skip
        coords[lay.step_coord] = ((lay.time_dim,), steps,
                                  {"units": "1", "long_name": "step index"})  # fmt: skip
    return variables, coords


def member_variables(spec) -> tuple[list[VarInfo], dict]:
    """Everything a member writes (recorded variables, metrics), and their static coordinates."""
    from wavesim.sweep.metrics import METRICS

    variables, coords = _recorded(spec)
    for name in spec.metrics:
        m = METRICS[name]
        variables.append(VarInfo(name, m.dims, m.shape, m.shape, np.dtype(np.float64),
                                 {"units": m.units, "long_name": m.long_name}, np.nan))  # fmt: skip
        for cname, (values, attrs) in m.coords().items():
            coords[cname] = ((cname,), np.asarray(values, dtype=object), {"units": "1", **attrs})
    return variables, coords


def _param_array(values: list) -> tuple[np.ndarray, bool]:
    """Member coordinate values: int64, float64, bool or str, or JSON text for arrays, tables
    and mixed types; and whether they are JSON."""
    if all(isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=bool), False
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64), False
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.float64), False
    if all(isinstance(v, str) for v in values):
        return np.asarray(values, dtype=object), False
    return np.asarray([json.dumps(v) for v in values], dtype=object), True


def member_coords(spec) -> dict[str, tuple[np.ndarray, dict]]:
    """The parameter coordinates along ``member``: name -> (values, attrs)."""
    from wavesim.sweep.spec import param_units

    out = {}
    n = spec.members
    grids = np.indices(spec.shape).reshape(len(spec.axes), n) if spec.axes else None
    for a, axis in enumerate(spec.axes):
        pos = grids[a]
        if axis.kind in ("zip", "sample"):
            attrs = {"units": "1", "long_name": f"position along {axis.name}"}
            out[axis.name] = (pos.astype(np.int64), attrs)
        for key, cname, values in zip(axis.keys, axis.coord_names(), axis.values, strict=True):
            arr, is_json = _param_array([values[j] for j in pos])
            section, _, rest = key.partition(".")
            attrs = {"scenario_key": key, "long_name": f"[{section}] {rest}"}
            if is_json:
                attrs["encoding"] = "json"  # arrays, tables and mixed types, as JSON text
            units = param_units(key)
            if units is not None:
                attrs["units"] = units
            elif arr.dtype.kind in "if":
                attrs["units"] = "1"
            out[cname] = (arr, attrs)
    return out


class SweepStore:
    """The zarr store of one sweep. Create it with :meth:`create`, reopen it with :meth:`open`."""

    def __init__(self, path: Path, group: zarr.Group):
        self.path = Path(path)
        self._group = group
        self._status: np.ndarray | None = None  # in memory: this process writes the status

    # -- creation -----------------------------------------------------------------------------
    @classmethod
    def create(cls, spec, path, *, overwrite: bool = False) -> SweepStore:
        """Write the template of ``spec`` at ``path`` (every member pending)."""
        path = Path(path)
        prepare_path(path, overwrite)
        variables, coords = member_variables(spec)
        params = member_coords(spec)
        n = spec.members
        attrs = {
            "wavesim_store": STORE_FORMAT,
            "wavesim_sweep": SWEEP_FORMAT,
            "wavesim_version": _version(),
            "name": spec.name,
            "description": spec.description,
            "sweep": spec.text,
            "sweep_source": spec.source,
            "scenario": spec.base.to_toml(),
            "members": n,
            "sweep_dims": [a.describe() for a in spec.axes],
            "record": list(spec.record),
            "metrics": list(spec.metrics),
            "analysis_start": spec.analysis_start,
            "fingerprint": spec.fingerprint(),
            "complete": False,
            "n_done": 0,
            "n_failed": 0,
            "n_pending": n,
        }
        attrs = {k: _json_safe(v, k) for k, v in attrs.items()}
        group = zarr.open_group(str(path), mode="w-", zarr_format=3, attributes=attrs)
        try:
            cls._write_template(group, n, variables, coords, params)
            group = consolidate(path)
        except BaseException:
            import shutil

            shutil.rmtree(path, ignore_errors=True)  # never leave a half-written template
            raise
        return cls(path, group)

    @staticmethod
    def _write_template(group, n, variables, coords, params) -> None:
        def new(name, dims, shape, chunks, dtype, attrs, fill):
            dtype = str if np.dtype(dtype).kind in "OUT" else np.dtype(dtype)
            arr = group.create_array(name, shape=shape, chunks=chunks, dtype=dtype,
                                     fill_value=fill, dimension_names=dims)  # fmt: skip
            arr.attrs.update({k: _json_safe(v, k) for k, v in attrs.items()})
            return arr

        new("member", ("member",), (n,), (n,), np.int64,
            {"long_name": "sweep member"}, -1)[...] = np.arange(n)  # fmt: skip
        for name, (values, attrs) in params.items():
            fill = "" if values.dtype.kind == "O" else (False if values.dtype.kind == "b" else -1)
            new(name, ("member",), (n,), (max(n, 1),), values.dtype, attrs, fill)[...] = values
        for name, (dims, values, attrs) in coords.items():
            fill = "" if values.dtype.kind == "O" else _fill(values.dtype)
            new(name, dims, values.shape, values.shape, values.dtype, attrs, fill)[...] = values
        aux = [c for c in params] + [
            name for name, (dims, _, _) in coords.items() if dims != (name,)
        ]
        book = {
            "status": (str, "pending",
                       {"long_name": "member status: pending, done or failed"}),
            "error": (str, "", {"long_name": "the error of a failed member"}),
            "elapsed": (np.float64, np.nan, {"units": "s", "long_name": "wall time of the member"}),
            "attempts": (np.int64, 0, {"units": "1", "long_name": "results received"}),
            "worker": (str, "", {"long_name": "where the member ran"}),
        }  # fmt: skip
        for name, (dtype, fill, attrs) in book.items():
            attrs = {**attrs, "coordinates": " ".join(params)}
            arr = group.create_array(name, shape=(n,), chunks=(1,), dtype=dtype, fill_value=fill,
                                     dimension_names=("member",))  # fmt: skip
            arr.attrs.update(attrs)
        for v in variables:
            own = [c for c in aux if c not in params and set(coords[c][0]) <= set(v.dims)]
            attrs = {**v.attrs, "coordinates": " ".join([*params, *own])}
            new(v.name, ("member", *v.dims), (n, *v.shape), (1, *v.chunks), v.dtype, attrs,
                v.fill)  # fmt: skip

    # -- reopening ------------------------------------------------------------------------------
    @classmethod
    def open(cls, path, spec=None) -> SweepStore:
        """Open an existing sweep store for writing; with ``spec``, check it is the same sweep."""
        path = Path(path)
        if not (path / "zarr.json").is_file():
            raise FileNotFoundError(f"no sweep store at {path} (no zarr.json)")
        group = zarr.open_group(str(path), mode="r+")
        attrs = group.attrs.asdict()
        if "wavesim_sweep" not in attrs:
            raise ValueError(f"{path} is a zarr store but not a wavesim sweep store")
        if spec is not None and attrs.get("fingerprint") != spec.fingerprint():
            raise ValueError(
                f"{path} holds another sweep ({attrs.get('name')!r}, {attrs.get('members')} "
                f"members, made from {attrs.get('sweep_source')}): the base scenario, axes, "
                f"record or metrics of {spec.source} differ; resume it with the sweep file that "
                "made it, or pass overwrite to start again"
            )
        if group.metadata.consolidated_metadata is None:  # pragma: no cover - foreign edits
            group = consolidate(path)
        return cls(path, group)

    # -- reading --------------------------------------------------------------------------------
    @property
    def attrs(self) -> dict:
        return self._group.attrs.asdict()

    @property
    def members(self) -> int:
        return int(self.attrs["members"])

    def status(self) -> np.ndarray:
        """The status of every member (an object array of str; read once, then kept up to date
        by :meth:`set_result`)."""
        if self._status is None:
            self._status = np.array([str(v) for v in self._group["status"][...]], dtype=object)
        return self._status.copy()

    def counts(self) -> dict[str, int]:
        """Members per status: ``{"pending": ..., "done": ..., "failed": ...}``."""
        st = self.status()
        return {s: int(np.count_nonzero(st == s)) for s in STATUS}

    # -- writing --------------------------------------------------------------------------------
    def set_result(self, index: int, status: str, *, error: str = "", elapsed: float = math.nan,
                   worker: str = "", data: Mapping | None = None) -> None:  # fmt: skip
        """Record a member's outcome (and write its data first, when given)."""
        if status not in STATUS:
            raise ValueError(f"status must be one of {STATUS}, got {status!r}")
        if data:
            write_member(self._group, index, data)
        g = self._group
        g["attempts"][index] = int(g["attempts"][index]) + 1
        g["elapsed"][index] = elapsed
        g["worker"][index] = worker
        g["error"][index] = error
        g["status"][index] = status  # last: "done" means everything above is on disk
        if self._status is not None:
            self._status[index] = status

    def update_progress(self) -> dict[str, int]:
        """Write ``n_done``, ``n_failed``, ``n_pending`` and ``complete`` (no member pending)."""
        c = self.counts()
        self._group.attrs.update(
            {
                "n_done": c["done"],
                "n_failed": c["failed"],
                "n_pending": c["pending"],
                "complete": c["pending"] == 0,
            }
        )
        return c


def write_member(store, index: int, data: Mapping) -> None:
    """Write member ``index``'s variables (``name -> array`` without the member axis).

    ``store`` is a path or an open zarr group. Only member ``index``'s chunks are touched.
    """
    group = store if isinstance(store, zarr.Group) else zarr.open_group(str(store), mode="r+")
    for name, value in data.items():
        arr = group[name]
        value = np.asarray(value)
        if value.shape != arr.shape[1:]:
            raise ValueError(
                f"member {index}: {name!r} has shape {value.shape}, the store expects "
                f"{arr.shape[1:]}"
            )
        arr[index] = value
