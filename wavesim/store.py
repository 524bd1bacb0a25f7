"""Zarr v3 stores in the wavesim xarray layout: created up front, grown in blocks, reopened lazily.

Writing
-------
::

    grid = Grid(ny, nx, dx=dx_mm, dt=dt_ms, members=M, dtype=np.float32)
    recs = [FieldRecorder(("y",), period=10), ElectrodeRecorder(pos_mm, period=1, dx=dx_mm)]
    with StoreWriter.create(path, recs, grid, scenario=toml_text, seed=seed,
                            orientation=theta, static={"mask": mask}) as writer:
        writer.record(0, y, v)                     # samples every recorder due at step 0
        while step < n_steps:
            nxt = min(writer.next_due(step + 1), n_steps)
            ...advance the state to step nxt...
            step = nxt
            writer.record(step, y, v)
    # leaving the block normally -> close(complete=True, steps_done=<last recorded step>)
    # leaving it on any exception (KeyboardInterrupt included) -> close(complete=False, error=...)

``writer.record(step, y, v)`` is ``writer.append(rec, rec.sample(y, v), step)`` for every recorder
due at ``step``. Samples are copied into a preallocated buffer of ``block`` samples per variable
(so memory is bounded by one block, whatever the run length); when a buffer is full it is written
as one chunk along time. ``close()`` flushes what is buffered (so after an error the store holds
*every* sample that was appended), sets the final attributes and leaves a readable store.

Layout (zarr v3 group, one array per variable, ``dimension_names`` on every array)
----------------------------------------------------------------------------------
* time-dependent variables, dims ``([member,] <time_dim>, ...)``: chunk 1 along ``member``,
  ``block`` along time, the full sample in space unless one chunk would exceed 64 MiB;
* per recorder: a float64 time coordinate named after its time dim (ms, ``step * dt``) and an
  int64 ``step`` coordinate (``step`` for ``time``, ``step_electrodes`` for ``time_electrodes``);
* static coordinates: ``y``, ``x`` (mm), ``electrode``/``electrode_x``/``electrode_y``,
  ``member`` (0..M-1, batched runs only);
* static per-site fields (``orientation`` in rad, ``mask``, ...) on dims ``(y, x)`` (or
  ``(member, y, x)``) when ``y``, ``x`` are the full lattice, else on ``(y_lattice, x_lattice)``;
* root attributes: ``wavesim_store`` (format version), ``wavesim_version``, ``scenario`` (TOML
  text), ``seed``, ``complete``, ``steps_done``, ``dt``, ``dx``, ``members``, ``block``,
  ``recorders`` (descriptions), plus any ``attrs`` and final attributes (e.g. ``error``).

Float arrays use fill value NaN, integer arrays -1: exact zeros in the data read back as 0 whatever
xarray's fill-value masking policy. Metadata is consolidated after every flush and attribute
update, so ``xarray.open_zarr(path)`` opens the store without warnings at any time and sees exactly
the flushed samples; a reader that opens it mid-flush sees the previous flush (the consolidated
metadata is written last).
"""

from __future__ import annotations

import json
import math
import shutil
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from zarr.errors import ZarrUserWarning

from wavesim.recorders import Grid, Recorder, RecorderLayout, VariableSpec, recorder_layouts

__all__ = ["STORE_FORMAT", "StoreWriter", "open_store"]

#: Version of the on-disk layout, stored in the ``wavesim_store`` root attribute.
STORE_FORMAT = 1

_MAX_CHUNK_BYTES = 64 * 2**20  # split a chunk in space beyond this
_AUTO_BLOCK_BYTES = 8 * 2**20  # block=None: buffer about this much per recorder (all members)
_MAX_AUTO_BLOCK = 1024

_MANAGED_ATTRS = frozenset(
    {
        "wavesim_store",
        "wavesim_version",
        "scenario",
        "seed",
        "complete",
        "steps_done",
        "dt",
        "dx",
        "members",
        "block",
        "recorders",
    }
)

_STATIC_ATTRS = {
    "orientation": {"units": "rad", "long_name": "preferred orientation theta in [0, pi)"},
    "mask": {"units": "1", "long_name": "active-site mask"},
}


def _version() -> str:
    try:
        from wavesim import __version__

        return str(__version__)
    except Exception:  # pragma: no cover - partial installs
        return "unknown"


def _json_safe(value, key: str):
    """Attributes as plain JSON types (numpy scalars/arrays, tuples, paths converted)."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist(), key)
    if isinstance(value, list | tuple):
        return [_json_safe(v, key) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep it readable
    if value is None or isinstance(value, bool | int | float | str):
        return value
    try:
        json.dumps(value)
    except TypeError as exc:
        raise TypeError(
            f"store attribute {key!r} has a value of type {type(value).__name__} that cannot be "
            f"stored as JSON: {value!r}"
        ) from exc
    return value


def _fill_value(dtype: np.dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.nan
    if dtype.kind in "iu":
        return -1 if dtype.kind == "i" else np.iinfo(dtype).max
    if dtype.kind == "b":
        return False
    raise TypeError(f"unsupported dtype for a wavesim store: {dtype}")


def _spatial_chunks(shape: tuple[int, ...], lead: int, itemsize: int) -> tuple[int, ...]:
    """Chunk of a per-sample ``shape``: whole unless ``lead * size * itemsize`` is too big, then
    halve the leading spatial axes until it fits."""
    chunks = list(shape)
    k = 0
    while k < len(chunks):
        nbytes = lead * itemsize * math.prod(chunks)
        if nbytes <= _MAX_CHUNK_BYTES:
            break
        if chunks[k] > 1:
            chunks[k] = math.ceil(chunks[k] / 2)
        else:
            k += 1
    return tuple(chunks)


def _is_zarr_store(path: Path) -> bool:
    return (path / "zarr.json").is_file() or (path / ".zgroup").is_file()


def prepare_path(path, overwrite: bool) -> None:
    """Make room for a new zarr store at ``path``: create its parent, or with ``overwrite``
    delete an existing zarr store (or empty folder) there.

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``overwrite`` is false, or when it is not a zarr store (never
        deleted, even with ``overwrite``).
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    if not overwrite:
        raise FileExistsError(
            f"{path} already exists; pass overwrite=True to replace it (its contents will be "
            f"deleted)"
        )
    if path.is_dir() and (_is_zarr_store(path) or not any(path.iterdir())):
        shutil.rmtree(path)
        return
    raise FileExistsError(
        f"{path} exists and is not a zarr store; refusing to delete it even with overwrite=True"
    )


def consolidate(path) -> zarr.Group:
    """Consolidate the metadata of the zarr v3 store at ``path`` and return its root group.

    Consolidated metadata is not (yet) part of the zarr v3 specification: zarr's warning saying
    so is silenced here, the one place wavesim consolidates.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZarrUserWarning)
        return zarr.consolidate_metadata(str(path), zarr_format=3)


@dataclass
class _Stream:
    """One recorder's buffers and arrays."""

    recorder: Recorder
    layout: RecorderLayout
    buffers: dict[str, np.ndarray]  # name -> (members, block, *shape)
    steps: np.ndarray  # (block,) int64
    arrays: dict[str, zarr.Array] = field(default_factory=dict)  # incl. time and step coords
    fill: int = 0  # samples buffered
    committed: int = 0  # samples on disk
    last_step: int | None = None


class StoreWriter:
    """Writes one run to a zarr v3 store in blocks. Build it with :meth:`create`.

    Methods the simulator calls: :meth:`record` (or :meth:`append`), :meth:`next_due`,
    :meth:`flush`, :meth:`update_attrs`, :meth:`close`; or use it as a context manager.
    """

    def __init__(self, path: Path, group: zarr.Group, grid: Grid, streams: list[_Stream], block):
        self.path = path
        self.grid = grid
        self.block = block
        self._group = group
        self._streams = streams
        self._closed = False
        self._steps_flushed = 0

    # ------------------------------------------------------------------------------------------
    # creation
    # ------------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path,
        recorders: Iterable[Recorder],
        grid: Grid,
        *,
        scenario: str = "",
        seed: int | None = None,
        attrs: Mapping | None = None,
        orientation: np.ndarray | None = None,
        static: Mapping | None = None,
        block: int | None = None,
        overwrite: bool = False,
    ) -> StoreWriter:
        """Create the store at ``path`` with every variable (empty along time) and coordinate.

        Parameters
        ----------
        path : directory of the new zarr v3 store (local filesystem).
        recorders : the recorders whose samples will be appended (distinct names).
        grid : :class:`wavesim.recorders.Grid` (shape, dx in mm, dt in ms, members, dtype).
        scenario, seed : stored as root attributes (TOML text, integer seed).
        attrs : further JSON-able root attributes (may not use the managed names).
        orientation : optional ``(ny, nx)`` (or ``(members, ny, nx)``) map in rad.
        static : further static per-site fields, ``name -> array`` or ``name -> (array, attrs)``,
            shaped like ``orientation`` (e.g. ``{"mask": mask}``).
        block : samples per flush and chunk length along time (default: as many samples of the
            largest recorder, all members, as fit in 8 MiB; between 1 and 1024).
        overwrite : replace an existing store at ``path``; without it an existing path is an error.
        """
        path = Path(path)
        recorders = list(recorders)
        if not recorders:
            raise ValueError("StoreWriter needs at least one recorder")
        if not isinstance(grid, Grid):
            raise TypeError(f"grid must be a wavesim.recorders.Grid, got {type(grid).__name__}")
        layouts = recorder_layouts(recorders, grid)
        block = cls._resolve_block(block, layouts, grid)

        attrs = dict(attrs or {})
        clash = sorted(_MANAGED_ATTRS & set(attrs))
        if clash:
            raise ValueError(f"attrs may not set the managed store attributes {clash}")
        statics = cls._collect_statics(orientation, static, grid)

        prepare_path(path, overwrite)
        root_attrs = {
            "wavesim_store": STORE_FORMAT,
            "wavesim_version": _version(),
            "scenario": str(scenario),
            "seed": seed,
            "complete": False,
            "steps_done": 0,
            "dt": grid.dt,
            "dx": grid.dx,
            "members": grid.members,
            "block": block,
            "recorders": [r.describe() for r in recorders],
        }
        root_attrs.update(attrs)
        root_attrs = {k: _json_safe(v, k) for k, v in root_attrs.items()}

        group = zarr.open_group(str(path), mode="w-", zarr_format=3, attributes=root_attrs)
        try:
            streams = cls._create_arrays(group, recorders, layouts, grid, block, statics)
            writer = cls(path, group, grid, streams, block)
            writer._consolidate()
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)  # never leave a half-created store behind
            raise
        return writer

    @staticmethod
    def _resolve_block(block, layouts: list[RecorderLayout], grid: Grid) -> int:
        if block is None:
            per_sample = max(
                grid.members * sum(math.prod(v.shape) * v.dtype.itemsize for v in lay.variables)
                for lay in layouts
            )
            return int(min(_MAX_AUTO_BLOCK, max(1, _AUTO_BLOCK_BYTES // max(per_sample, 1))))
        if isinstance(block, bool) or int(block) != block or block < 1:
            raise ValueError(f"block must be an integer >= 1, got {block!r}")
        return int(block)

    @staticmethod
    def _collect_statics(orientation, static, grid: Grid) -> dict[str, tuple[np.ndarray, dict]]:
        items = dict(static or {})
        if orientation is not None:
            if "orientation" in items:
                raise ValueError("orientation given both as argument and in static")
            items["orientation"] = orientation
        out = {}
        for name, value in items.items():
            if isinstance(value, tuple):
                value, extra = value
            else:
                extra = {}
            arr = np.asarray(value)
            ok = arr.shape == (grid.ny, grid.nx) or (
                grid.batched and arr.shape == (grid.members, grid.ny, grid.nx)
            )
            if not ok:
                raise ValueError(
                    f"static field {name!r} must have shape (ny, nx) = {(grid.ny, grid.nx)}"
                    + (
                        f" or (members, ny, nx) = {(grid.members, grid.ny, grid.nx)}"
                        if grid.batched
                        else ""
                    )
                    + f", got {arr.shape}"
                )
            if arr.dtype.kind not in "fiub":
                raise ValueError(f"static field {name!r} has unsupported dtype {arr.dtype}")
            field_attrs = {**_STATIC_ATTRS.get(name, {"units": "1", "long_name": name}), **extra}
            out[str(name)] = (arr, field_attrs)
        return out

    @staticmethod
    def _create_arrays(group, recorders, layouts, grid: Grid, block: int, statics) -> list[_Stream]:
        M = grid.members
        lead = (M,) if grid.batched else ()
        lead_chunk = (1,) if grid.batched else ()
        lead_dims = ("member",) if grid.batched else ()
        coords: dict[str, tuple] = {}  # name -> (dims, values, attrs), static coordinates

        def add_coord(name, dims, values, attrs):
            values = np.asarray(values)
            if name in coords:
                d0, v0, _ = coords[name]
                if d0 != tuple(dims) or v0.shape != values.shape or not np.array_equal(v0, values):
                    raise ValueError(f"two recorders define the coordinate {name!r} differently")
                return
            coords[name] = (tuple(dims), values, dict(attrs))

        if grid.batched:
            add_coord("member", ("member",), np.arange(M, dtype=np.int64), {"long_name": "member"})
        for lay in layouts:
            for c in lay.coords:
                add_coord(c.name, c.dims, c.values, c.attrs)

        # Static per-site fields: on (y, x) when those coords are the full lattice.
        static_dims = ("y", "x")
        if statics:
            full = {"y": grid.y, "x": grid.x}
            if any(n in coords and not np.array_equal(coords[n][1], full[n]) for n in full):
                static_dims = ("y_lattice", "x_lattice")
            for d, axis in zip(static_dims, ("y", "x"), strict=True):
                add_coord(d, (d,), full[axis], {"units": "mm", "long_name": f"lattice {axis}"})

        def new_array(name, shape, chunks, dtype, dims, attrs):
            return group.create_array(
                name,
                shape=shape,
                chunks=chunks,
                dtype=dtype,
                fill_value=_fill_value(dtype),
                dimension_names=dims,
                attributes=_json_safe(attrs, name),
            )

        taken = set(coords)
        streams = []
        for rec, lay in zip(recorders, layouts, strict=True):
            buffers = {}
            arrays = {}
            aux = [c.name for c in lay.coords if c.dims != (c.name,)]  # non-index coords
            for var in lay.variables:
                if var.name in taken:
                    raise ValueError(f"variable {var.name!r} clashes with a coordinate")
                taken.add(var.name)
                attrs = dict(var.attrs)
                attrs["coordinates"] = " ".join([lay.step_coord, *aux])
                chunks = (
                    *lead_chunk,
                    block,
                    *_spatial_chunks(var.shape, block, var.dtype.itemsize),
                )
                arrays[var.name] = new_array(
                    var.name,
                    (*lead, 0, *var.shape),
                    chunks,
                    var.dtype,
                    (*lead_dims, *var.dims),
                    attrs,
                )
                buffers[var.name] = np.zeros((M, block, *var.shape), dtype=var.dtype)
            for name, dtype, attrs in (
                (lay.time_dim, np.float64, {"units": "ms", "long_name": "time"}),
                (lay.step_coord, np.int64, {"units": "1", "long_name": "step index"}),
            ):
                if name in taken:
                    raise ValueError(f"time coordinate {name!r} clashes with another name")
                taken.add(name)
                arrays[name] = new_array(
                    name, (0,), (block,), np.dtype(dtype), (lay.time_dim,), attrs
                )
            streams.append(
                _Stream(
                    recorder=rec,
                    layout=lay,
                    buffers=buffers,
                    steps=np.zeros(block, dtype=np.int64),
                    arrays=arrays,
                )
            )

        for name, (dims, values, attrs) in coords.items():
            arr = new_array(name, values.shape, values.shape, values.dtype, dims, attrs)
            arr[...] = values
        for name, (values, attrs) in statics.items():
            if name in taken:
                raise ValueError(f"static field {name!r} clashes with a variable or coordinate")
            dims = (*lead_dims, *static_dims) if values.ndim == 3 else static_dims
            chunks = ((1,) if values.ndim == 3 else ()) + values.shape[-2:]
            arr = new_array(name, values.shape, chunks, values.dtype, dims, attrs)
            arr[...] = values
        return streams

    # ------------------------------------------------------------------------------------------
    # writing
    # ------------------------------------------------------------------------------------------
    @property
    def recorders(self) -> list[Recorder]:
        return [s.recorder for s in self._streams]

    @property
    def closed(self) -> bool:
        return self._closed

    def _stream(self, recorder) -> _Stream:
        for s in self._streams:
            if s.recorder is recorder or s.layout.time_dim == recorder:
                return s
        raise KeyError(
            f"{recorder!r} is not a recorder of this store (recorders: {self.recorders}; "
            f"time dims: {[s.layout.time_dim for s in self._streams]})"
        )

    def next_due(self, step: int) -> int:
        """The first step ``>= step`` at which some recorder is due."""
        return min(-(-int(step) // s.recorder.period) * s.recorder.period for s in self._streams)

    def record(self, step: int, y: np.ndarray, v: np.ndarray | None = None) -> list[str]:
        """Sample every recorder due at ``step`` from the state ``y``, ``v`` (shape
        ``(members, ny, nx)``) and append the samples. Returns the time dims recorded."""
        due = [s for s in self._streams if s.recorder.due(step)]
        for s in due:
            self._buffer(s, s.recorder.sample(y, v), step)
        full = [s for s in due if s.fill == self.block]
        for s in full:  # recorders due together flush together: one metadata commit
            self._flush_stream(s)
        if full:
            self._commit()
        return [s.layout.time_dim for s in due]

    def append(self, recorder, samples: Mapping[str, np.ndarray], step: int) -> None:
        """Append one sample of ``recorder`` (the object or its time-dim name) taken at ``step``.

        ``samples`` maps each of the recorder's variables to an array of shape
        ``(members, *sample_shape)`` (the member axis may be omitted when ``members == 1``).
        ``step`` must be a multiple of the recorder's period and larger than its previous step.
        The sample is copied into the buffer; a full buffer is flushed to disk at once.
        """
        s = self._stream(recorder)
        self._buffer(s, samples, step)
        if s.fill == self.block:
            self._flush_stream(s)
            self._commit()

    def _buffer(self, s: _Stream, samples: Mapping[str, np.ndarray], step: int) -> None:
        """Validate one sample and copy it into the stream's buffer."""
        if self._closed:
            raise RuntimeError(f"store writer for {self.path} is closed")
        step_int = int(step)
        if step_int != step or step_int < 0:
            raise ValueError(f"step must be a non-negative integer, got {step!r}")
        period = s.recorder.period
        if step_int % period:
            raise ValueError(
                f"{s.recorder!r} samples every {period} steps; step {step_int} is not a multiple"
            )
        if s.last_step is not None and step_int <= s.last_step:
            raise ValueError(
                f"{s.recorder!r}: step {step_int} is not after the last recorded step {s.last_step}"
            )
        expected = {v.name: v for v in s.layout.variables}
        if set(samples) != set(expected):
            raise ValueError(
                f"{s.recorder!r}: samples have variables {sorted(samples)}, "
                f"expected {sorted(expected)}"
            )
        staged = {}
        for name, var in expected.items():
            staged[name] = self._check_sample(name, var, samples[name])
        i = s.fill
        for name, a in staged.items():
            s.buffers[name][:, i] = a
        s.steps[i] = step_int
        s.fill = i + 1
        s.last_step = step_int

    def _check_sample(self, name: str, var: VariableSpec, a) -> np.ndarray:
        a = np.asarray(a)
        M = self.grid.members
        if a.shape == tuple(var.shape) and M == 1:
            a = a[None]
        if a.shape != (M, *var.shape):
            raise ValueError(
                f"sample {name!r} has shape {a.shape}, expected (members, ...) = {(M, *var.shape)}"
            )
        return a

    def buffered(self, recorder) -> int:
        """Number of samples of ``recorder`` (object or time-dim name) held in memory."""
        return self._stream(recorder).fill

    def written(self, recorder) -> int:
        """Number of samples of ``recorder`` on disk."""
        return self._stream(recorder).committed

    def buffer_nbytes(self) -> int:
        """Bytes held by all sample buffers (fixed at creation: one block per variable)."""
        return sum(
            s.steps.nbytes + sum(b.nbytes for b in s.buffers.values()) for s in self._streams
        )

    def _flush_stream(self, s: _Stream) -> None:
        k = s.fill
        if k == 0:
            return
        n0, n1 = s.committed, s.committed + k
        batched = self.grid.batched
        steps = s.steps[:k].copy()
        try:
            for var in s.layout.variables:
                arr, buf = s.arrays[var.name], s.buffers[var.name]
                if batched:
                    arr.resize((self.grid.members, n1, *var.shape))
                    arr[:, n0:n1] = buf[:, :k]
                else:
                    arr.resize((n1, *var.shape))
                    arr[n0:n1] = buf[0, :k]
            step_arr = s.arrays[s.layout.step_coord]
            step_arr.resize((n1,))
            step_arr[n0:n1] = steps
            time_arr = s.arrays[s.layout.time_dim]
            time_arr.resize((n1,))
            time_arr[n0:n1] = steps.astype(np.float64) * self.grid.dt
        except BaseException:
            self._rollback(s)
            raise
        s.committed = n1
        s.fill = 0
        self._steps_flushed = max(self._steps_flushed, int(steps[-1]))

    def _rollback(self, s: _Stream) -> None:
        """Best effort: shrink every array of ``s`` back to the committed length."""
        for name, arr in s.arrays.items():
            axis = 1 if (self.grid.batched and name not in self._time_names(s)) else 0
            try:
                if arr.shape[axis] != s.committed:
                    shape = list(arr.shape)
                    shape[axis] = s.committed
                    arr.resize(tuple(shape))
            except Exception:  # pragma: no cover - the disk is already failing
                pass

    @staticmethod
    def _time_names(s: _Stream) -> tuple[str, str]:
        return (s.layout.time_dim, s.layout.step_coord)

    def _consolidate(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ZarrUserWarning)
            self._group = consolidate(self.path)

    def _set_attrs(self, attrs: Mapping) -> None:
        # Through the consolidated group handle, so the root document keeps its (fresh)
        # consolidated metadata; no window in which a reader finds none.
        self._group.attrs.update({k: _json_safe(v, k) for k, v in attrs.items()})

    def _commit(self, **attrs) -> None:
        self._consolidate()
        self._set_attrs({"steps_done": self._steps_done(), **attrs})

    def _steps_done(self) -> int:
        return max(self._steps_flushed, int(self._group.attrs.get("steps_done", 0)))

    def flush(self) -> None:
        """Write every buffered sample (partial blocks included) and update ``steps_done``."""
        if self._closed:
            return
        for s in self._streams:
            self._flush_stream(s)
        self._commit()

    def update_attrs(self, **attrs) -> None:
        """Set root attributes now (not the managed ones, except ``steps_done``)."""
        clash = sorted((_MANAGED_ATTRS - {"steps_done"}) & set(attrs))
        if clash:
            raise ValueError(f"update_attrs may not set the managed store attributes {clash}")
        if self._closed:
            raise RuntimeError(f"store writer for {self.path} is closed")
        self._set_attrs(attrs)

    def close(self, complete: bool, **final_attrs) -> None:
        """Flush what is buffered, set ``complete`` and ``final_attrs``, leave a readable store.

        Safe to call from an ``except``/``finally`` after any error: a failing flush is rolled
        back to the last good block and reported in the ``flush_error`` attribute (and the store
        is then marked incomplete). With ``complete=True`` a flush failure is re-raised after the
        attributes are written. ``steps_done`` defaults to the last flushed step; pass
        ``steps_done=n`` to record the number of steps actually simulated. Idempotent.
        """
        if self._closed:
            return
        ignored = sorted((_MANAGED_ATTRS - {"steps_done"}) & set(final_attrs))
        if ignored:  # never raise here: close() runs on error paths
            warnings.warn(
                f"close() ignores managed attributes {ignored}", UserWarning, stacklevel=2
            )
            final_attrs = {k: v for k, v in final_attrs.items() if k not in ignored}
        failure = None
        for s in self._streams:
            try:
                self._flush_stream(s)
            except Exception as exc:  # keep going: write the attributes regardless
                failure = failure or exc
        attrs = {"steps_done": self._steps_done(), **final_attrs}
        attrs["complete"] = bool(complete) and failure is None
        if failure is not None:
            attrs["flush_error"] = f"{type(failure).__name__}: {failure}"
        self._consolidate()
        self._set_attrs(attrs)
        self._closed = True
        if failure is not None:
            if complete:
                raise failure
            warnings.warn(
                f"store {self.path}: could not flush the last samples ({failure}); the store "
                f"holds the blocks written before",
                RuntimeWarning,
                stacklevel=2,
            )

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            self.close(True)
        else:
            self.close(False, error=f"{exc_type.__name__}: {exc}")
        return False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<StoreWriter {self.path} ({state}, block={self.block}, {self.recorders})>"


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------
def open_store(path, *, warn_partial: bool = True) -> xr.Dataset:
    """Open a wavesim store lazily as an :class:`xarray.Dataset` (no dask needed).

    Raises ``FileNotFoundError`` when ``path`` does not exist and ``ValueError`` when it is not a
    wavesim store. Warns (``UserWarning``) when the store is partial (``complete`` is False): a run
    still going, or one stopped by an error (see the ``error`` attribute); for a sweep store
    (:mod:`wavesim.sweep`), a sweep with members still pending.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no wavesim store at {path}: the path does not exist")
    if not path.is_dir() or not (path / "zarr.json").is_file():
        raise ValueError(f"{path} is not a wavesim store (not a zarr v3 group)")
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:
        raise ValueError(f"{path} is not a wavesim store (cannot open it as zarr: {exc})") from exc
    attrs = group.attrs.asdict()
    if "wavesim_store" not in attrs:
        raise ValueError(
            f"{path} is a zarr store but not a wavesim store (no 'wavesim_store' attr)"
        )
    consolidated = group.metadata.consolidated_metadata is not None
    ds = xr.open_zarr(str(path), chunks=None, consolidated=consolidated, zarr_format=3)
    if warn_partial and not ds.attrs.get("complete", False) and "wavesim_sweep" in ds.attrs:
        a = ds.attrs
        warnings.warn(
            f"wavesim sweep store {path} is partial (complete=False): {a.get('n_done')} of "
            f"{a.get('members')} members done, {a.get('n_failed')} failed, {a.get('n_pending')} "
            "pending (see the status variable); continue it with wavesim sweep SWEEP.toml -o "
            "STORE --resume",
            UserWarning,
            stacklevel=2,
        )
    elif warn_partial and not ds.attrs.get("complete", False):
        held = ", ".join(
            f"{d}: {ds.sizes[d]} samples" for d in ds.dims if d == "time" or d.startswith("time_")
        )
        error = ds.attrs.get("error")
        warnings.warn(
            f"wavesim store {path} is partial (complete=False): it holds "
            f"{ds.attrs.get('steps_done', 0)} steps ({held or 'no samples'})"
            + (f"; the run stopped with {error}" if error else ""),
            UserWarning,
            stacklevel=2,
        )
    return ds
