"""Recorders: what a simulation writes, and when.

A recorder is the wavesim counterpart of a The Virtual Brain *monitor*: it declares a sampling
period in integer steps and, handed the state at a step that is a multiple of that period, returns
one sample. It never decides *where* the sample goes; :class:`wavesim.store.StoreWriter` does.

Protocol (every recorder implements it; :class:`Recorder` is the abstract base)
------------------------------------------------------------------------------
``recorder.period`` : int >= 1
    Sampling period in steps. The recorder is *due* at step ``n`` iff ``n % period == 0``; the
    first sample is at step 0 (the initial state). Its time coordinate is ``step * dt`` (ms).
``recorder.due(step) -> bool``
    ``step % period == 0``.
``recorder.layout(grid) -> RecorderLayout``
    Everything the store must create before the first sample: the recorder's own time dimension,
    its integer step coordinate, its data variables (dims *without* ``member``, time first,
    per-sample shape, dtype, attrs) and its static coordinates (values + attrs). Raises
    ``ValueError`` when the recorder does not fit the grid (e.g. an electrode outside it).
``recorder.sample(y, v) -> dict[str, numpy.ndarray]``
    ``y`` and ``v`` (= ẏ) have shape ``(members, ny, nx)`` (a 2-D ``(ny, nx)`` array is taken as
    one member). Returns one sample per variable named in the layout, each with the member axis
    leading, shape ``(members, *VariableSpec.shape)``, in ``grid.dtype``. Returned arrays are fresh
    copies: they stay valid after the simulator advances the state in place.
``recorder.describe() -> dict``
    A JSON-able description, stored in the store's ``recorders`` attribute.

Naming
------
A data variable cannot share its name with one of its own dimensions in xarray, so the field ``y``
is written as the variable ``field`` (and ``ydot`` as ``field_dot``) on dims ``(time, y, x)``.
A second field recorder (e.g. a coarse one at a faster rate) takes a ``tag``; all its names get the
suffix ``_<tag>``: variables ``field_<tag>``, dims ``(time_<tag>, y_<tag>, x_<tag>)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CoordSpec",
    "ElectrodeRecorder",
    "FieldRecorder",
    "Grid",
    "Recorder",
    "RecorderLayout",
    "VariableSpec",
]


# ----------------------------------------------------------------------------------------------
# Grid and layout descriptions
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """What a recorder and a store need to know about a run.

    ``ny``, ``nx``: lattice shape (rows, columns); ``dx``: spacing in mm (pixel centres at
    ``x_j = j*dx``, ``y_i = i*dx``); ``dt``: step in ms; ``members``: batch size (a ``member``
    dimension is written only when ``members > 1``); ``dtype``: storage dtype (float32/float64).
    """

    ny: int
    nx: int
    dx: float
    dt: float
    members: int = 1
    dtype: np.dtype = field(default=np.dtype(np.float64))

    def __post_init__(self):
        for name in ("ny", "nx", "members"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"Grid.{name} must be an integer >= 1, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("dx", "dt"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"Grid.{name} must be a finite number > 0, got {value!r}")
            object.__setattr__(self, name, value)
        dtype = np.dtype(self.dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"Grid.dtype must be float32 or float64, got {dtype}")
        object.__setattr__(self, "dtype", dtype)

    @property
    def batched(self) -> bool:
        """True when the store carries a leading ``member`` dimension (``members > 1``)."""
        return self.members > 1

    @property
    def y(self) -> np.ndarray:
        """Row-centre coordinates in mm."""
        return np.arange(self.ny) * self.dx

    @property
    def x(self) -> np.ndarray:
        """Column-centre coordinates in mm."""
        return np.arange(self.nx) * self.dx


@dataclass(frozen=True)
class VariableSpec:
    """One time-dependent data variable. ``dims`` exclude ``member`` and start with the time dim;
    ``shape`` is the per-sample shape (``len(shape) == len(dims) - 1``)."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    attrs: dict


@dataclass(frozen=True)
class CoordSpec:
    """A static coordinate (not along time): name, dims, values, attrs (with ``units``)."""

    name: str
    dims: tuple[str, ...]
    values: np.ndarray
    attrs: dict


@dataclass(frozen=True)
class RecorderLayout:
    """What one recorder writes. All its variables share ``time_dim``; the store adds the float
    coordinate ``time_dim`` (ms, ``step * dt``) and the integer coordinate ``step_coord``."""

    time_dim: str
    step_coord: str
    variables: tuple[VariableSpec, ...]
    coords: tuple[CoordSpec, ...] = ()


def _as_members(a: np.ndarray | None, what: str) -> np.ndarray:
    if a is None:
        raise ValueError(f"recorder needs the state {what!r}, got None")
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"state {what!r} must have shape (members, ny, nx), got {a.shape}")
    return a


def _check_period(period) -> int:
    if isinstance(period, bool) or int(period) != period or period < 1:
        raise ValueError(f"recorder period must be an integer number of steps >= 1, got {period!r}")
    return int(period)


# ----------------------------------------------------------------------------------------------
# Base class
# ----------------------------------------------------------------------------------------------
class Recorder(ABC):
    """Abstract recorder; see the module docstring for the protocol."""

    period: int

    def due(self, step: int) -> bool:
        """Whether this recorder samples at ``step`` (``step % period == 0``)."""
        return step % self.period == 0

    @abstractmethod
    def layout(self, grid: Grid) -> RecorderLayout:
        """Variables, dims, coords and dtypes this recorder writes on ``grid``."""

    @abstractmethod
    def sample(self, y: np.ndarray, v: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """One sample per variable, member axis leading."""

    @abstractmethod
    def describe(self) -> dict:
        """JSON-able description (stored in the store's ``recorders`` attribute)."""


# ----------------------------------------------------------------------------------------------
# Field recorder
# ----------------------------------------------------------------------------------------------
_FIELD_INFO = {
    # state name -> (variable base name, long_name, units)
    "y": ("field", "oscillator displacement y", "1"),
    "ydot": ("field_dot", "oscillator velocity dy/dt", "1/ms"),
}


class FieldRecorder(Recorder):
    """Full (or strided) lattice snapshots of ``y`` and/or ``ydot``.

    Parameters
    ----------
    fields : subset of ``("y", "ydot")``, written as variables ``field`` and ``field_dot``.
    period : sampling period in steps (>= 1).
    subsample : integer spatial stride ``s``; the sample is ``state[:, ::s, ::s]`` and the ``y``,
        ``x`` coordinates are those of the kept pixels (``i*s*dx``).
    tag : optional suffix for every name (variables, time and space dims), so that several field
        recorders can share a store. Empty by default: dims ``(time, y, x)``.
    units : units of ``y`` (``"1"``, dimensionless, by default); ``ydot`` gets ``<units>/ms``.
    """

    def __init__(
        self,
        fields: Iterable[str] = ("y",),
        period: int = 1,
        subsample: int = 1,
        *,
        tag: str = "",
        units: str = "1",
    ):
        if isinstance(fields, str):
            fields = (fields,)
        fields = tuple(fields)
        unknown = [f for f in fields if f not in _FIELD_INFO]
        if unknown or not fields or len(set(fields)) != len(fields):
            raise ValueError(
                f"FieldRecorder fields must be a non-empty subset of {tuple(_FIELD_INFO)}, "
                f"got {fields!r}"
            )
        self.fields = fields
        self.period = _check_period(period)
        if isinstance(subsample, bool) or int(subsample) != subsample or subsample < 1:
            raise ValueError(f"FieldRecorder subsample must be an integer >= 1, got {subsample!r}")
        self.subsample = int(subsample)
        if tag and not tag.isidentifier():
            raise ValueError(f"FieldRecorder tag must be a Python identifier, got {tag!r}")
        self.tag = tag
        self.units = units

    def _name(self, base: str) -> str:
        return f"{base}_{self.tag}" if self.tag else base

    @property
    def time_dim(self) -> str:
        return self._name("time")

    def variable_name(self, state: str) -> str:
        """Name of the variable that holds ``state`` (``"y"`` or ``"ydot"``)."""
        return self._name(_FIELD_INFO[state][0])

    def layout(self, grid: Grid) -> RecorderLayout:
        s = self.subsample
        ydim, xdim = self._name("y"), self._name("x")
        ny, nx = len(range(0, grid.ny, s)), len(range(0, grid.nx, s))
        variables = []
        for state in self.fields:
            _, long_name, _ = _FIELD_INFO[state]
            units = self.units if state == "y" else f"{self.units}/ms"
            attrs = {"units": units, "long_name": long_name}
            if s > 1:
                attrs["subsample"] = s
            variables.append(
                VariableSpec(
                    name=self.variable_name(state),
                    dims=(self.time_dim, ydim, xdim),
                    shape=(ny, nx),
                    dtype=grid.dtype,
                    attrs=attrs,
                )
            )
        coords = (
            CoordSpec(ydim, (ydim,), np.arange(0, grid.ny, s) * grid.dx, _space_attrs("y")),
            CoordSpec(xdim, (xdim,), np.arange(0, grid.nx, s) * grid.dx, _space_attrs("x")),
        )
        return RecorderLayout(
            time_dim=self.time_dim,
            step_coord=self._name("step"),
            variables=tuple(variables),
            coords=coords,
        )

    def sample(self, y: np.ndarray, v: np.ndarray | None = None) -> dict[str, np.ndarray]:
        s = self.subsample
        out = {}
        for state in self.fields:
            a = _as_members(y if state == "y" else v, "y" if state == "y" else "v")
            out[self.variable_name(state)] = np.array(a[:, ::s, ::s], copy=True)
        return out

    def describe(self) -> dict:
        return {
            "type": "FieldRecorder",
            "fields": list(self.fields),
            "period": self.period,
            "subsample": self.subsample,
            "tag": self.tag,
            "time_dim": self.time_dim,
        }

    def __repr__(self) -> str:
        tag = f", tag={self.tag!r}" if self.tag else ""
        return (
            f"FieldRecorder(fields={self.fields!r}, period={self.period}, "
            f"subsample={self.subsample}{tag})"
        )


def _space_attrs(axis: str) -> dict:
    what = "row" if axis == "y" else "column"
    return {"units": "mm", "long_name": f"{axis} position ({what} centre)"}


# ----------------------------------------------------------------------------------------------
# Electrode recorder
# ----------------------------------------------------------------------------------------------
class ElectrodeRecorder(Recorder):
    """The field ``y`` at electrode positions, by bilinear interpolation between pixel centres.

    Parameters
    ----------
    positions_mm : array-like ``(n_electrodes, 2)`` of ``(x, y)`` positions in mm. Each must lie
        inside the lattice, ``0 <= x <= (nx-1)*dx`` and ``0 <= y <= (ny-1)*dx`` (checked by
        :meth:`layout`); no wrap-around, even on a torus.
    period : sampling period in steps.
    dx : lattice spacing in mm (must equal ``grid.dx``).
    name : variable name (default ``"electrodes"``); the time dim is ``time_<name>``, the step
        coordinate ``step_<name>``. With the default name the electrode dim is ``electrode`` with
        coordinates ``electrode_x``, ``electrode_y`` (mm); with another name they are
        ``<name>_electrode``, ``<name>_electrode_x``, ``<name>_electrode_y``.
    units : units of ``y`` (``"1"`` by default).

    Bilinear interpolation reproduces any field linear in (x, y) exactly (up to rounding).
    """

    def __init__(
        self,
        positions_mm,
        period: int,
        dx: float,
        *,
        name: str = "electrodes",
        units: str = "1",
    ):
        pos = np.asarray(positions_mm, dtype=np.float64)
        if pos.ndim == 1 and pos.shape == (2,):
            pos = pos[None]
        if pos.ndim != 2 or pos.shape[1] != 2 or pos.shape[0] < 1:
            raise ValueError(
                f"ElectrodeRecorder positions_mm must have shape (n_electrodes, 2) as (x, y) in mm,"
                f" got shape {pos.shape}"
            )
        if not np.all(np.isfinite(pos)):
            raise ValueError("ElectrodeRecorder positions_mm must be finite")
        self.positions_mm = pos
        self.period = _check_period(period)
        dx = float(dx)
        if not math.isfinite(dx) or dx <= 0:
            raise ValueError(f"ElectrodeRecorder dx must be > 0 (mm), got {dx!r}")
        self.dx = dx
        if not name.isidentifier():
            raise ValueError(f"ElectrodeRecorder name must be a Python identifier, got {name!r}")
        self.name = name
        self.units = units
        # Fractional pixel indices and the four-neighbour weights (computed once).
        self._fx = pos[:, 0] / dx
        self._fy = pos[:, 1] / dx
        self._stencils: dict[tuple[int, int], tuple] = {}  # (ny, nx) -> interpolation stencil

    @property
    def time_dim(self) -> str:
        return f"time_{self.name}"

    @property
    def electrode_dim(self) -> str:
        return "electrode" if self.name == "electrodes" else f"{self.name}_electrode"

    def _interp_stencil(self, ny: int, nx: int):
        def axis(f, n):
            # positions on a pixel centre (up to rounding of pos/dx) read that pixel exactly
            near = np.round(f)
            f = np.where(np.abs(f - near) < 1e-9, near, f)
            i0 = np.clip(np.floor(f).astype(np.int64), 0, max(n - 2, 0))
            i1 = np.minimum(i0 + 1, n - 1)
            w = f - i0  # weight of i1; exactly 1 at the last pixel, 0 at i0
            return i0, i1, w

        j0, j1, wx = axis(self._fx, nx)
        i0, i1, wy = axis(self._fy, ny)
        return i0, i1, j0, j1, wy, wx

    def layout(self, grid: Grid) -> RecorderLayout:
        if not math.isclose(grid.dx, self.dx, rel_tol=1e-12):
            raise ValueError(
                f"ElectrodeRecorder {self.name!r} was built for dx={self.dx} mm but the grid has "
                f"dx={grid.dx} mm"
            )
        tol = 1e-9
        xmax, ymax = (grid.nx - 1) * grid.dx, (grid.ny - 1) * grid.dx
        x, y = self.positions_mm[:, 0], self.positions_mm[:, 1]
        bad = (x < -tol * grid.dx) | (x > xmax + tol * grid.dx)
        bad |= (y < -tol * grid.dx) | (y > ymax + tol * grid.dx)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"ElectrodeRecorder {self.name!r}: electrode {k} at (x, y) = ({x[k]}, {y[k]}) mm "
                f"lies outside the lattice [0, {xmax}] x [0, {ymax}] mm"
            )
        edim = self.electrode_dim
        prefix = "" if self.name == "electrodes" else f"{self.name}_"
        n = len(self.positions_mm)
        var = VariableSpec(
            name=self.name,
            dims=(self.time_dim, edim),
            shape=(n,),
            dtype=grid.dtype,
            attrs={"units": self.units, "long_name": "field y at electrodes (bilinear)"},
        )
        coords = (
            CoordSpec(edim, (edim,), np.arange(n, dtype=np.int64), {"long_name": "electrode"}),
            CoordSpec(
                f"{prefix}electrode_x",
                (edim,),
                x.copy(),
                {"units": "mm", "long_name": "electrode x position"},
            ),
            CoordSpec(
                f"{prefix}electrode_y",
                (edim,),
                y.copy(),
                {"units": "mm", "long_name": "electrode y position"},
            ),
        )
        return RecorderLayout(
            time_dim=self.time_dim,
            step_coord=f"step_{self.name}",
            variables=(var,),
            coords=coords,
        )

    def sample(self, y: np.ndarray, v: np.ndarray | None = None) -> dict[str, np.ndarray]:
        a = _as_members(y, "y")
        key = (a.shape[1], a.shape[2])
        if key not in self._stencils:
            ymax, xmax = (key[0] - 1) * self.dx, (key[1] - 1) * self.dx
            pos = self.positions_mm
            if pos[:, 0].max() > xmax * (1 + 1e-9) or pos[:, 1].max() > ymax * (1 + 1e-9):
                raise ValueError(
                    f"ElectrodeRecorder {self.name!r}: state of shape {a.shape} is too small for "
                    f"the electrode positions (max x {pos[:, 0].max()} mm, y {pos[:, 1].max()} mm)"
                )
            self._stencils[key] = self._interp_stencil(*key)
        i0, i1, j0, j1, wy, wx = self._stencils[key]
        out = (
            a[:, i0, j0] * ((1 - wy) * (1 - wx))
            + a[:, i0, j1] * ((1 - wy) * wx)
            + a[:, i1, j0] * (wy * (1 - wx))
            + a[:, i1, j1] * (wy * wx)
        )
        return {self.name: out.astype(a.dtype, copy=False)}

    def describe(self) -> dict:
        return {
            "type": "ElectrodeRecorder",
            "name": self.name,
            "period": self.period,
            "n_electrodes": len(self.positions_mm),
            "time_dim": self.time_dim,
        }

    def __repr__(self) -> str:
        return (
            f"ElectrodeRecorder(n_electrodes={len(self.positions_mm)}, period={self.period}, "
            f"dx={self.dx}, name={self.name!r})"
        )


def recorder_layouts(recorders: Iterable[Recorder], grid: Grid) -> list[RecorderLayout]:
    """Layouts of several recorders, checked for name clashes (distinct time dims, variables)."""
    recorders = list(recorders)
    layouts = [r.layout(grid) for r in recorders]
    seen: dict[str, str] = {}
    for r, lay in zip(recorders, layouts, strict=True):
        for name in (lay.time_dim, lay.step_coord, *(v.name for v in lay.variables)):
            if name in seen:
                raise ValueError(
                    f"recorders {seen[name]} and {r!r} both write {name!r}; give one a distinct "
                    f"tag/name"
                )
            seen[name] = repr(r)
    return layouts
