"""Scenario files: schema, loader and validation.

A scenario is a TOML file with up to nine sections (``[meta] [run] [lattice] [map] [model]
[coupling] [drive] [initial] [record]``). :func:`load_scenario` reads it with :mod:`tomllib`,
applies ``section.key=value`` overrides, and validates it into a frozen :class:`Scenario` with
one frozen dataclass per section and every default filled in::

    s = load_scenario("scenarios/plane_wave.toml", overrides=["run.dt=0.02"])
    s.run.dt, s.lattice.shape, s.model.omega2

Units are the file's units: space in mm, time in ms, angles in degrees (drive/initial directions,
grating orientation and angular speed); rates in 1/ms, ``omega2`` in 1/ms^2. Nothing is converted.

Representation rules (for code that builds simulations from a scenario):

* Keys that do not apply to the section's ``kind`` (or to ``lattice.boundary``) are ``None``.
* Arrays are tuples: ``lattice.shape == (ny, nx)``; points are ``(x, y)`` in mm with
  ``x = column * dx`` and ``y = row * dx`` (the lattice spans ``[0, (n - 1) * dx]``); stencils are
  tuples of row tuples, row ``r`` / column ``c`` weighting the neighbour at
  ``(y + r - h, x + c - h)``, ``h = k // 2`` (a correlation: ``W ⋆ y``).
* Files are :class:`FileRef` objects: ``.path`` as written in the file (what
  :meth:`Scenario.to_toml` writes back) and ``.resolved``, the absolute path (relative paths
  are resolved against ``Scenario.base_dir``, the scenario file's directory).
  ``model.omega2``, ``model.gamma`` and ``model.bias`` are a ``float`` or a :class:`FileRef` to a
  ``.npy`` array of shape ``lattice.shape``; ``map.path`` and ``lattice.mask.path`` are
  :class:`FileRef` too.
* ``map.seed is None`` means "derived from ``run.seed``"; :attr:`Scenario.map_seed` gives the
  effective value.

Every problem raises :class:`ScenarioError` (a :class:`ValueError`) naming the file, the key, the
offending value and what was expected.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CouplingSection",
    "DriveSection",
    "FileRef",
    "InitialSection",
    "LatticeSection",
    "MapSection",
    "MaskSpec",
    "MetaSection",
    "ModelSection",
    "RecordSection",
    "RunSection",
    "Scenario",
    "ScenarioError",
    "SECTIONS",
    "load_scenario",
    "parse_override",
]

#: Section names, in canonical order.
SECTIONS = ("meta", "run", "lattice", "map", "model", "coupling", "drive", "initial", "record")

_ALL = None  # "applies to every kind"

#: For every table: key -> the kinds (values of the table's selector key) it applies to.
_KEYS: dict[tuple[str, ...], dict[str, tuple[str, ...] | None]] = {
    ("meta",): {"name": _ALL, "description": _ALL},
    ("run",): {
        "duration": _ALL,
        "dt": _ALL,
        "seed": _ALL,
        "members": _ALL,
        "integrator": _ALL,
        "dtype": _ALL,
        "threads": _ALL,
    },
    ("lattice",): {
        "shape": _ALL,
        "dx": _ALL,
        "boundary": _ALL,
        "sponge_width": ("absorbing",),
        "sponge_damping": ("absorbing",),
        "mask": _ALL,
    },
    ("lattice", "mask"): {
        "kind": _ALL,
        "radius": ("disk",),
        "center": ("disk",),
        "path": ("file",),
    },
    ("map",): {
        "kind": _ALL,
        "wavelength": ("random", "crystal"),
        "spectrum_width": ("random",),
        "seed": ("random",),
        "path": ("file",),
    },
    ("model",): {
        "activation": _ALL,
        "exact_tanh": _ALL,
        "omega2": _ALL,
        "gamma": _ALL,
        "bias": _ALL,
        "gain": _ALL,
        "noise": _ALL,
    },
    ("coupling",): {
        "kind": _ALL,
        "speed": ("laplacian",),
        "stencil": ("stencil",),
        "velocity_stencil": _ALL,
        "kappa": _ALL,
    },
    ("drive",): {
        "kind": _ALL,
        "amplitude": ("pulse", "plane_wave", "grating"),
        "position": ("pulse",),
        "width": ("pulse",),
        "onset": ("pulse", "plane_wave", "grating"),
        "duration": ("pulse",),
        "period": ("pulse",),
        "wavelength": ("plane_wave",),
        "direction": ("plane_wave",),
        "speed": ("plane_wave",),
        "angular_speed": ("grating",),
        "tuning": ("grating",),
        "orientation": ("grating",),
    },
    ("initial",): {
        "kind": _ALL,
        "amplitude": ("random", "gaussian", "plane_wave", "spiral"),
        "position": ("gaussian", "spiral"),
        "width": ("gaussian",),
        "wavelength": ("plane_wave", "spiral"),
        "direction": ("plane_wave",),
        "charge": ("spiral",),
    },
    ("record",): {
        "period": _ALL,
        "fields": _ALL,
        "subsample": _ALL,
        "electrodes": _ALL,
        "electrode_period": _ALL,
        "block": _ALL,
    },
}

#: The key of each table that selects which other keys apply.
_SELECTOR = {
    ("lattice",): "boundary",
    ("lattice", "mask"): "kind",
    ("map",): "kind",
    ("coupling",): "kind",
    ("drive",): "kind",
    ("initial",): "kind",
}

#: Allowed values of the enumerated keys.
_CHOICES = {
    ("run", "integrator"): ("symplectic_euler", "imex"),
    ("run", "dtype"): ("float32", "float64"),
    ("lattice", "boundary"): ("periodic", "reflecting", "absorbing"),
    ("lattice", "mask", "kind"): ("disk", "file"),
    ("map", "kind"): ("none", "random", "crystal", "file"),
    ("model", "activation"): ("tanh", "linear"),
    ("coupling", "kind"): ("laplacian", "stencil", "none"),
    ("drive", "kind"): ("none", "pulse", "plane_wave", "grating"),
    ("initial", "kind"): ("rest", "random", "gaussian", "plane_wave", "spiral"),
}

#: Keys whose value is always a string: an override such as ``meta.name=true`` keeps the text.
_STRING_KEYS = {
    ("meta", "name"),
    ("meta", "description"),
    ("map", "path"),
    ("lattice", "mask", "path"),
    *_CHOICES,
}

#: Units written as comments by :meth:`Scenario.to_toml`.
_UNITS = {
    ("run", "duration"): "ms",
    ("run", "dt"): "ms",
    ("run", "threads"): "0 = auto",
    ("lattice", "shape"): "[ny, nx] sites",
    ("lattice", "dx"): "mm",
    ("lattice", "sponge_width"): "mm",
    ("lattice", "sponge_damping"): "1/ms",
    ("map", "wavelength"): "mm",
    ("map", "path"): ".npy of angles in radians",
    ("model", "omega2"): "1/ms^2",
    ("model", "gamma"): "1/ms",
    ("coupling", "speed"): "mm/ms",
    ("coupling", "stencil"): "1/ms^2",
    ("coupling", "velocity_stencil"): "1/ms",
    ("drive", "position"): "[x, y] mm",
    ("drive", "width"): "mm",
    ("drive", "onset"): "ms",
    ("drive", "duration"): "ms",
    ("drive", "period"): "ms",
    ("drive", "wavelength"): "mm",
    ("drive", "direction"): "deg",
    ("drive", "speed"): "mm/ms",
    ("drive", "angular_speed"): "deg/ms",
    ("drive", "orientation"): "deg",
    ("initial", "position"): "[x, y] mm",
    ("initial", "width"): "mm",
    ("initial", "wavelength"): "mm",
    ("initial", "direction"): "deg",
    ("record", "period"): "ms",
    ("record", "electrodes"): "[x, y] mm",
    ("record", "electrode_period"): "ms",
    ("record", "block"): "samples per stored chunk",
}

_PERIOD_RTOL = 1e-9
#: Minimum sites per map wavelength (as wavesim.maps.MIN_PX_PER_WAVELENGTH).
_MAP_MIN_PX = 4.0
_MAX_INT = 2**63 - 1
_MISSING: Any = object()


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ScenarioError(ValueError):
    """A scenario file or dictionary is invalid.

    The message names the file, the key (as ``[section] key``), the offending value and what was
    expected. The same pieces are available as attributes ``source``, ``key`` (dotted, e.g.
    ``"run.dt"``), ``value`` and ``expected`` (``None`` where they do not apply).
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        key: str | None = None,
        value: Any = None,
        expected: str | None = None,
    ):
        super().__init__(message)
        self.source = source
        self.key = key
        self.value = value
        self.expected = expected


def _fmt(value: Any, limit: int = 120) -> str:
    """A value as it would appear in TOML (``"text"``, ``true``, ``[1, 2]``), shortened."""
    text = _toml_value(value, strict=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def _suggest(word: str, candidates: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


# --------------------------------------------------------------------------------------------
# Section dataclasses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRef:
    """A file named in a scenario: ``path`` as written, ``resolved`` absolute.

    Equality compares ``path`` only, so a scenario written by :meth:`Scenario.to_toml` and read
    back compares equal to the original.
    """

    path: str
    resolved: Path = field(compare=False)

    def load(self) -> np.ndarray:
        """The array stored in the file (``numpy.load``, no pickles)."""
        return np.load(self.resolved, allow_pickle=False)

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True)
class MetaSection:
    name: str  #: default: the scenario file's stem
    description: str


@dataclass(frozen=True)
class RunSection:
    duration: float  #: ms
    dt: float  #: ms
    seed: int
    members: int
    integrator: str  #: "symplectic_euler" | "imex"
    dtype: str  #: "float32" | "float64"
    threads: int  #: 0 = automatic


@dataclass(frozen=True)
class MaskSpec:
    """``lattice.mask``: which sites are active (True)."""

    kind: str  #: "disk" | "file"
    radius: float | None  #: mm (disk)
    center: tuple[float, float] | None  #: (x, y) mm (disk; default lattice centre)
    path: FileRef | None  #: .npy boolean / 0-1 array of shape lattice.shape (file)


@dataclass(frozen=True)
class LatticeSection:
    shape: tuple[int, int]  #: (ny, nx)
    dx: float  #: mm
    boundary: str  #: "periodic" | "reflecting" | "absorbing"
    sponge_width: float | None  #: mm (absorbing only)
    sponge_damping: float | None  #: 1/ms (absorbing only)
    mask: MaskSpec | None

    @property
    def ny(self) -> int:
        return self.shape[0]

    @property
    def nx(self) -> int:
        return self.shape[1]

    @property
    def extent(self) -> tuple[float, float]:
        """(x_max, y_max) in mm: sites lie in ``[0, x_max] x [0, y_max]``."""
        return ((self.nx - 1) * self.dx, (self.ny - 1) * self.dx)

    @property
    def center(self) -> tuple[float, float]:
        """(x, y) of the lattice centre in mm."""
        return ((self.nx - 1) * self.dx / 2, (self.ny - 1) * self.dx / 2)

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """1-D site coordinates ``(x, y)`` in mm (``x`` has ``nx`` entries, ``y`` has ``ny``)."""
        return np.arange(self.nx) * self.dx, np.arange(self.ny) * self.dx

    def active_mask(self) -> np.ndarray | None:
        """Boolean ``(ny, nx)`` array of active sites, or ``None`` when there is no mask."""
        if self.mask is None:
            return None
        if self.mask.kind == "file":
            return np.asarray(self.mask.path.load()).astype(bool)
        x, y = self.coords()
        cx, cy = self.mask.center
        return (x[None, :] - cx) ** 2 + (y[:, None] - cy) ** 2 <= self.mask.radius**2


@dataclass(frozen=True)
class MapSection:
    kind: str  #: "none" | "random" | "crystal" | "file"
    wavelength: float | None  #: column spacing Λ in mm (random, crystal)
    spectrum_width: float | None  #: relative ring width (random)
    seed: int | None  #: random only; None = derived from run.seed (see Scenario.map_seed)
    path: FileRef | None  #: .npy of angles in radians, shape lattice.shape (file)


@dataclass(frozen=True)
class ModelSection:
    activation: str  #: "tanh" | "linear"
    exact_tanh: bool  #: False = fast rational tanh (ignored for linear)
    omega2: float | FileRef  #: 1/ms^2, scalar or per-site map
    gamma: float | FileRef  #: 1/ms, scalar or per-site map
    bias: float | FileRef  #: scalar or per-site map
    gain: float
    noise: float  #: η >= 0


@dataclass(frozen=True)
class CouplingSection:
    kind: str  #: "laplacian" | "stencil" | "none"
    speed: float | None  #: mm/ms (laplacian)
    stencil: tuple[tuple[float, ...], ...] | None  #: k x k, 1/ms^2 (stencil)
    velocity_stencil: tuple[tuple[float, ...], ...] | None  #: k x k, 1/ms (any kind)
    kappa: float  #: orientation-similarity modulation (> 0 needs a map)

    def position_stencil(self, dx: float) -> np.ndarray | None:
        """The position stencil W in 1/ms^2 (the Laplacian one built from speed and ``dx``)."""
        if self.kind == "laplacian":
            lap = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
            return (self.speed**2 / dx**2) * lap
        if self.kind == "stencil":
            return np.array(self.stencil, dtype=float)
        return None


@dataclass(frozen=True)
class DriveSection:
    kind: str  #: "none" | "pulse" | "plane_wave" | "grating"
    amplitude: float | None
    position: tuple[float, float] | None  #: (x, y) mm (pulse)
    width: float | None  #: mm, 0 = single site (pulse)
    onset: float | None  #: ms (pulse, plane_wave, grating)
    duration: float | None  #: ms (pulse)
    period: float | None  #: ms, None = single pulse (pulse)
    wavelength: float | None  #: mm (plane_wave)
    direction: float | None  #: deg (plane_wave)
    speed: float | None  #: mm/ms (plane_wave)
    angular_speed: float | None  #: deg/ms (grating)
    tuning: float | None  #: κ_s >= 0 (grating)
    orientation: float | None  #: deg at onset (grating)


@dataclass(frozen=True)
class InitialSection:
    kind: str  #: "rest" | "random" | "gaussian" | "plane_wave" | "spiral"
    amplitude: float | None
    position: tuple[float, float] | None  #: (x, y) mm (gaussian, spiral)
    width: float | None  #: mm (gaussian)
    wavelength: float | None  #: mm (plane_wave, spiral)
    direction: float | None  #: deg (plane_wave)
    charge: int | None  #: +1 | -1 (spiral)


@dataclass(frozen=True)
class RecordSection:
    period: float  #: ms, integer multiple of run.dt
    fields: tuple[str, ...]  #: subset of ("y", "ydot")
    subsample: int
    electrodes: tuple[tuple[float, float], ...] | None  #: (x, y) mm
    electrode_period: float | None  #: ms (set iff electrodes are)
    block: int  #: samples per stored chunk


# --------------------------------------------------------------------------------------------
# Scenario
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. Build it with :func:`load_scenario` or :meth:`from_dict`.

    Equality ignores ``source`` and ``base_dir``: two scenarios are equal when they describe the
    same simulation.
    """

    meta: MetaSection
    run: RunSection
    lattice: LatticeSection
    map: MapSection
    model: ModelSection
    coupling: CouplingSection
    drive: DriveSection
    initial: InitialSection
    record: RecordSection
    source: str = field(default="<dict>", compare=False)
    base_dir: Path = field(default=Path("."), compare=False)
    _raw: dict = field(default_factory=dict, compare=False, repr=False)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_dict(
        cls,
        d: Mapping[str, Any],
        source: str = "<dict>",
        base_dir: str | Path = ".",
        *,
        _overridden: Mapping[str, str] | None = None,
    ) -> Scenario:
        """Validate a nested mapping (as ``tomllib`` returns it); ``None`` values are absent."""
        base = Path(base_dir).expanduser().resolve()
        raw = copy.deepcopy(dict(d)) if isinstance(d, Mapping) else d
        ctx = _Context(str(source), base, dict(_overridden or {}))
        return _validate(cls, ctx, raw)

    @classmethod
    def from_toml(
        cls,
        text: str,
        source: str = "<string>",
        base_dir: str | Path = ".",
        overrides: Iterable[str] = (),
    ) -> Scenario:
        """Parse and validate TOML text."""
        raw = _parse_toml(text, source)
        parsed = [parse_override(o, source) for o in overrides]
        raw, overridden = _apply_overrides(raw, parsed, source)
        return cls.from_dict(raw, source=source, base_dir=base_dir, _overridden=overridden)

    # -- derived quantities ------------------------------------------------------------------

    @property
    def n_steps(self) -> int:
        """Number of integration steps: ``duration / dt`` (rounded down unless within 1e-9)."""
        n = self.run.duration / self.run.dt
        return int(round(n)) if abs(n - round(n)) <= _PERIOD_RTOL * n else int(math.floor(n))

    @property
    def record_stride(self) -> int:
        """Steps between recorded field samples (``record.period / run.dt``)."""
        return int(round(self.record.period / self.run.dt))

    @property
    def electrode_stride(self) -> int | None:
        """Steps between electrode samples, or ``None`` without electrodes."""
        if self.record.electrode_period is None:
            return None
        return int(round(self.record.electrode_period / self.run.dt))

    @property
    def map_seed(self) -> int | None:
        """Seed of the random orientation map: ``map.seed``, or derived from ``run.seed``.

        The derivation is ``SeedSequence([run.seed, 0x6D6170]).generate_state(1)[0]`` so that the
        map does not share a stream with noise or initial conditions seeded from ``run.seed``.
        ``None`` when the map is not random.
        """
        if self.map.kind != "random":
            return None
        if self.map.seed is not None:
            return self.map.seed
        ss = np.random.SeedSequence([self.run.seed, 0x6D6170])
        return int(ss.generate_state(1, dtype=np.uint32)[0])

    def stability_number(self) -> float | None:
        """``dt * Ω_max`` of the linearized, undamped, unmodulated lattice (``None``: no coupling).

        ``Ω_max² = max ω² − min_k Re Ŵ(k)`` over the lattice's wave vectors, which for the
        Laplacian is ``ω² + 8 c²/dx²``. Symplectic Euler needs ``dt * Ω_max < 2``. This ignores
        damping, ``kappa`` modulation, the velocity stencil and the activation slope (<= 1 for
        tanh), so it is a guide, not a guarantee.
        """
        w = self.coupling.position_stencil(self.lattice.dx)
        if w is None:
            return None
        om2 = self.model.omega2
        om2_max = float(np.max(om2.load())) if isinstance(om2, FileRef) else float(om2)
        from wavesim.coupling import stencil_symbol

        ny, nx, dx = *self.lattice.shape, self.lattice.dx
        kx, ky = np.meshgrid(2 * np.pi * np.fft.fftfreq(nx, dx), 2 * np.pi * np.fft.fftfreq(ny, dx))
        omega_max2 = om2_max - float(np.min(stencil_symbol(w, kx, ky, dx).real))
        return self.run.dt * math.sqrt(max(omega_max2, 0.0))

    def resolve_path(self, path: str | FileRef) -> Path:
        """Absolute path of ``path`` (a :class:`FileRef` or a string relative to ``base_dir``)."""
        if isinstance(path, FileRef):
            return path.resolved
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    # -- modification ------------------------------------------------------------------------

    def with_overrides(self, overrides: Iterable[str]) -> Scenario:
        """A new validated scenario with ``"section.key=value"`` overrides applied.

        Overrides apply to the scenario as originally given (so defaults that depend on other
        keys, such as the lattice centre, are recomputed). Setting a ``kind`` (or
        ``lattice.boundary``) drops the original keys that do not apply to the new kind.
        """
        parsed = [parse_override(o, self.source) for o in overrides]
        return self._rebuild(parsed)

    def replace(self, mapping: Mapping[str, Any] | None = None, **changes: Any) -> Scenario:
        """A new validated scenario: ``s.replace(**{"run.dt": 0.1})`` or ``s.replace({...})``.

        Values are Python values (not TOML text); ``None`` removes a key (back to its default).
        """
        items = {**(mapping or {}), **changes}
        parsed = []
        for key, value in items.items():
            path = _split_key(key, self.source)
            parsed.append((path, value, f"{key}={_fmt(value)}"))
        return self._rebuild(parsed)

    def _rebuild(self, parsed: list) -> Scenario:
        base = self._raw or self.to_dict()  # a directly constructed Scenario has no raw input
        raw, overridden = _apply_overrides(base, parsed, self.source)
        return Scenario.from_dict(
            raw, source=self.source, base_dir=self.base_dir, _overridden=overridden
        )

    # -- output ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict of the validated scenario (``None`` values omitted, tuples as lists,
        files as the path strings written in the scenario)."""
        return {name: _plain(getattr(self, name)) for name in SECTIONS}

    def to_toml(self) -> str:
        """Canonical TOML of the validated scenario, every default filled in.

        ``Scenario.from_dict(tomllib.loads(s.to_toml()), base_dir=s.base_dir) == s``.
        """
        lines = [
            f"# wavesim scenario {_toml_str(self.meta.name)}: canonical form, defaults filled in.",
            f"# Generated from {self.source}.",
        ]
        for name in SECTIONS:
            lines.append("")
            lines.append(f"[{name}]")
            section = getattr(self, name)
            for f in fields(section):
                value = getattr(section, f.name)
                if value is None:
                    continue
                text = _toml_value(value, strict=True, key=f.name)
                unit = _UNITS.get((name, f.name))
                line = f"{f.name} = {text}"
                if unit and "\n" not in text:
                    line += f"  # {unit}"
                elif unit:
                    line = f"# {unit}\n{line}"
                lines.append(line)
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Loading and overrides
# --------------------------------------------------------------------------------------------


def load_scenario(path: str | Path, overrides: Iterable[str] = ()) -> Scenario:
    """Read, override and validate a scenario file.

    ``overrides`` are strings ``"section.key=value"``; the value is parsed as a TOML value
    (``run.dt=0.1``, ``lattice.shape=[64, 64]``, ``drive.kind="none"``) and taken as a bare
    string when it is not valid TOML (``drive.kind=none``).
    """
    p = Path(path).expanduser()
    source = str(path)
    if not p.exists():
        raise ScenarioError(
            f"{source}: scenario file does not exist (resolved to {p.resolve()})",
            source=source,
        )
    if not p.is_file():
        raise ScenarioError(
            f"{source}: is not a file: expected a TOML scenario file", source=source
        )
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioError(
            f"{source}: is not UTF-8 text (byte {e.start}): expected a TOML file", source=source
        ) from None
    return Scenario.from_toml(text, source=source, base_dir=p.resolve().parent, overrides=overrides)


def _parse_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", msg)
        if m:
            where = f"line {m.group(1)}, column {m.group(2)}"
            msg = msg[: m.start()]
        else:
            m = re.search(r"\s*\(at end of document\)\s*$", msg)
            where = "end of document"
            if m:
                msg = msg[: m.start()]
        raise ScenarioError(
            f"{source}: invalid TOML at {where}: {msg}", source=source, expected="valid TOML"
        ) from None


def read_table_file(path, table: str, what: str) -> dict:
    """Read a TOML configuration file that holds one top-level ``[table]``; return that table.

    Raises ``FileNotFoundError`` naming ``what`` (e.g. "fit file") and the path, and ``ValueError``
    (a :class:`ScenarioError` for bad TOML, with line and column) naming the file for invalid TOML,
    a missing ``[table]`` or any other top-level table.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    raw = _parse_toml(path.read_text(), str(path))
    if table not in raw or not isinstance(raw[table], dict):
        raise ValueError(f"{path}: expected a [{table}] table")
    extra = sorted(set(raw) - {table})
    if extra:
        raise ValueError(f"{path}: unknown table(s) {extra}; only [{table}] is read")
    return dict(raw[table])


_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")


def _split_key(key: str, source: str) -> tuple[str, ...]:
    key = key.strip()
    if not _KEY_RE.match(key):
        raise ScenarioError(
            f"{source}: override key {key!r}: expected a dotted key such as 'run.dt' "
            "(section.key, or lattice.mask.radius)",
            source=source,
            key=key,
            expected="section.key",
        )
    return tuple(key.split("."))


def parse_override(text: str, source: str = "<override>") -> tuple[tuple[str, ...], Any, str]:
    """Parse ``"section.key=value"`` into ``(("section", "key"), value, text)``."""
    if "=" not in text:
        raise ScenarioError(
            f"{source}: override {text!r}: expected 'section.key=value', e.g. 'run.dt=0.05'",
            source=source,
            value=text,
            expected="section.key=value",
        )
    key, _, val = text.partition("=")
    path = _split_key(key, source)
    val = val.strip()
    try:
        parsed = tomllib.loads(f"v = {val}")
        value = parsed["v"] if set(parsed) == {"v"} else val
    except tomllib.TOMLDecodeError:
        value = val
    if path in _STRING_KEYS and not isinstance(value, str):
        value = val
    return path, value, text.strip()


def _apply_overrides(raw: Any, parsed: list, source: str) -> tuple[Any, dict[str, str]]:
    """Apply parsed overrides to a deep copy of ``raw``; return it and {dotted key: text}."""
    if not parsed:
        return raw, {}
    raw = copy.deepcopy(raw) if isinstance(raw, Mapping) else {}
    raw = _to_dicts(raw)
    overridden: dict[str, str] = {}
    for path, value, text in parsed:
        d = raw
        for i, part in enumerate(path[:-1]):
            nxt = d.get(part)
            if nxt is None:
                nxt = d[part] = {}
            if not isinstance(nxt, dict):
                where = ".".join(path[: i + 1])
                raise ScenarioError(
                    f"{source} (override {text!r}): {where} = {_fmt(nxt)} is not a table: "
                    f"expected {where} to be a section or inline table",
                    source=source,
                    key=".".join(path),
                    value=value,
                    expected="a table",
                )
            d = nxt
        if value is None:
            d.pop(path[-1], None)
        else:
            d[path[-1]] = _to_dicts(copy.deepcopy(value))
        overridden[".".join(path)] = text
    # A changed kind (or boundary) drops the original keys that only applied to the old one.
    for table, selector in _SELECTOR.items():
        dotted_sel = ".".join((*table, selector))
        if dotted_sel not in overridden:
            continue
        d = raw
        for part in table:
            d = d.get(part) if isinstance(d, dict) else None
        if not isinstance(d, dict):
            continue
        kind = d.get(selector)
        if kind not in _CHOICES[(*table, selector)]:
            continue
        for key in list(d):
            applies = _KEYS[table].get(key, _ALL)
            if applies is not _ALL and kind not in applies:
                if ".".join((*table, key)) not in overridden:
                    del d[key]
    return raw, overridden


def _to_dicts(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _to_dicts(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------------
# Validation machinery
# --------------------------------------------------------------------------------------------


class _Context:
    def __init__(self, source: str, base_dir: Path, overridden: dict[str, str]):
        self.source = source
        self.base_dir = base_dir
        self.overridden = overridden

    def where(self, dotted: str) -> str:
        """The source, plus the override that set ``dotted`` (or one of its parents/children)."""
        for key, text in self.overridden.items():
            if key == dotted or key.startswith(dotted + ".") or dotted.startswith(key + "."):
                return f"{self.source} (override {text!r})"
        return self.source


class _Table:
    """One table of the input (a section or ``lattice.mask``) being validated."""

    def __init__(self, ctx: _Context, path: tuple[str, ...], data: Mapping):
        self.ctx = ctx
        self.path = path
        self.data = {k: v for k, v in data.items() if v is not None}

    # naming ---------------------------------------------------------------------------------
    def dotted(self, key: str) -> str:
        return ".".join((*self.path, key))

    def label(self, key: str) -> str:
        return f"[{self.path[0]}] {'.'.join((*self.path[1:], key))}"

    # errors ---------------------------------------------------------------------------------
    def fail(
        self, key: str, value: Any, expected: str, note: str = "", *, reason: str = ""
    ) -> ScenarioError:
        """``file: [section] key = value: [reason; ]expected ...[ (note)]``."""
        got = f" ({note})" if note else ""
        why = f"{reason}; " if reason else ""
        where = self.ctx.where(self.dotted(key))
        msg = f"{where}: {self.label(key)} = {_fmt(value)}: {why}expected {expected}{got}"
        return ScenarioError(
            msg, source=self.ctx.source, key=self.dotted(key), value=value, expected=expected
        )

    def fail_type(self, key: str, value: Any, expected: str) -> ScenarioError:
        return self.fail(key, value, expected, f"got {_toml_type(value)}")

    def missing(self, key: str, expected: str, why: str = "") -> ScenarioError:
        why = why or "it is required"
        msg = f"{self.ctx.source}: {self.label(key)} is missing: expected {expected}; {why}"
        return ScenarioError(msg, source=self.ctx.source, key=self.dotted(key), expected=expected)

    # key checks -----------------------------------------------------------------------------
    def check_unknown(self) -> None:
        known = _KEYS[self.path]
        for key, value in self.data.items():
            if key in known:
                continue
            hint = _suggest(key, known)
            if hint:
                hint = f"; did you mean {hint!r}?"
            else:
                others = [s for s in SECTIONS if (s,) != self.path and key in _KEYS[(s,)]]
                hint = f"; did you mean [{others[0]}] {key}?" if others else ""
            expected = "one of " + ", ".join(known)
            where = self.ctx.where(self.dotted(key))
            raise ScenarioError(
                f"{where}: {self.label(key)} = {_fmt(value)}: unknown key; "
                f"expected {expected}{hint}",
                source=self.ctx.source,
                key=self.dotted(key),
                value=value,
                expected=expected,
            )

    def check_applicable(self, kind: str) -> None:
        selector = _SELECTOR[self.path]
        for key, value in self.data.items():
            applies = _KEYS[self.path][key]
            if applies is _ALL or kind in applies:
                continue
            kinds = " or ".join(repr(k) for k in applies)
            sel = self.dotted(selector)
            raise self.fail(
                key,
                value,
                f"no {key} key here (remove it, or set {sel} = {kinds})",
                reason=f"{key} only applies to {selector} = {kinds}, but {sel} = {kind!r}",
            )

    # value readers --------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        return self.data.get(key, _MISSING)

    def number(
        self,
        key: str,
        default: Any = _MISSING,
        *,
        gt: float | None = None,
        ge: float | None = None,
        unit: str = "",
        why: str = "",
    ) -> float:
        expected = _num_expected("a number", gt, ge, unit)
        v = self.get(key)
        if v is _MISSING:
            if default is _MISSING:
                raise self.missing(key, expected, why)
            return default
        return self.check_number(key, v, expected, gt=gt, ge=ge)

    def check_number(self, key, v, expected, *, gt=None, ge=None, shown=_MISSING) -> float:
        shown = v if shown is _MISSING else shown
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(key, shown, expected, f"got {_toml_type(v)}")
        try:
            x = float(v)
        except OverflowError:
            raise self.fail(key, shown, expected, "too large") from None
        if not math.isfinite(x):
            raise self.fail(key, shown, expected, "not finite")
        if (gt is not None and not x > gt) or (ge is not None and not x >= ge):
            raise self.fail(key, shown, expected)
        return x

    def integer(self, key: str, default: Any = _MISSING, *, ge: int | None = None) -> int:
        expected = _num_expected("an integer", None, ge, "")
        v = self.get(key)
        if v is _MISSING:
            if default is _MISSING:
                raise self.missing(key, expected)
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail_type(key, v, expected)
        if (ge is not None and v < ge) or abs(v) > _MAX_INT:
            raise self.fail(key, v, expected)
        return int(v)

    def boolean(self, key: str, default: bool) -> bool:
        v = self.get(key)
        if v is _MISSING:
            return default
        if not isinstance(v, bool):
            raise self.fail_type(key, v, "true or false")
        return v

    def string(self, key: str, default: Any = _MISSING, *, nonempty: bool = False) -> str:
        expected = "a non-empty string" if nonempty else "a string"
        v = self.get(key)
        if v is _MISSING:
            if default is _MISSING:
                raise self.missing(key, expected)
            return default
        if not isinstance(v, str):
            raise self.fail_type(key, v, expected)
        if nonempty and not v.strip():
            raise self.fail(key, v, expected)
        return v

    def choice(self, key: str, default: Any = _MISSING) -> str:
        choices = _CHOICES[(*self.path, key)]
        expected = "one of " + ", ".join(repr(c) for c in choices)
        v = self.get(key)
        if v is _MISSING:
            if default is _MISSING:
                raise self.missing(key, expected)
            return default
        if not isinstance(v, str):
            raise self.fail_type(key, v, expected)
        if v not in choices:
            hint = _suggest(v, choices) or next((c for c in choices if c == v.lower()), None)
            raise self.fail(key, v, expected, f"did you mean {hint!r}?" if hint else "")
        return v

    def point(self, key: str, default: Any = _MISSING) -> tuple[float, float]:
        expected = "[x, y]: two numbers in mm"
        v = self.get(key)
        if v is _MISSING:
            if default is _MISSING:
                raise self.missing(key, expected)
            return default
        return self.check_point(key, v, v, expected)

    def check_point(self, key, v, shown, expected) -> tuple[float, float]:
        if not isinstance(v, list | tuple):
            raise self.fail_type(key, shown, expected)
        if len(v) != 2:
            raise self.fail(key, shown, expected, f"got {len(v)} values")
        x, y = (self.check_number(key, c, expected, shown=shown) for c in v)
        return (x, y)

    def inside(self, key: str, pt: tuple[float, float], lat: LatticeSection, shown=None):
        xmax, ymax = lat.extent
        tol = 1e-9 * max(xmax, ymax, lat.dx)
        if not (-tol <= pt[0] <= xmax + tol and -tol <= pt[1] <= ymax + tol):
            raise self.fail(
                key,
                pt if shown is None else shown,
                f"a point inside the lattice, x in [0, {_fmt(xmax)}] and y in [0, {_fmt(ymax)}] mm "
                f"((n - 1) * dx with shape = {_fmt(list(lat.shape))}, dx = {_fmt(lat.dx)})",
            )

    def stencil(self, key: str, lat: LatticeSection, unit: str):
        v = self.get(key)
        side = min(lat.shape)
        expected = f"a k x k array of numbers ({unit}), k odd, 1 <= k <= {side} (the lattice side)"
        if v is _MISSING:
            return _MISSING
        if not isinstance(v, list | tuple) or not v:
            raise self.fail_type(key, v, expected)
        k = len(v)
        rows = []
        for row in v:
            if not isinstance(row, list | tuple):
                raise self.fail(key, v, expected, "rows must be arrays")
            if len(row) != k:
                raise self.fail(key, v, expected, f"{k} rows but a row of length {len(row)}")
            rows.append(tuple(self.check_number(key, x, expected, shown=v) for x in row))
        if k % 2 == 0:
            raise self.fail(key, v, expected, f"k = {k} is even")
        if k > side:
            raise self.fail(key, v, expected, f"k = {k} exceeds the lattice side {side}")
        return tuple(rows)

    def file(self, key: str, value: Any = _MISSING, *, what: str = "a path") -> FileRef:
        v = self.get(key) if value is _MISSING else value
        expected = f"{what} to an existing file (relative to {self.ctx.base_dir})"
        if v is _MISSING:
            raise self.missing(key, expected)
        if not isinstance(v, str):
            raise self.fail_type(key, v, expected)
        if not v.strip():
            raise self.fail(key, v, expected)
        p = Path(v).expanduser()
        resolved = p if p.is_absolute() else (self.ctx.base_dir / p)
        resolved = resolved.resolve()
        if not resolved.is_file():
            raise self.fail(key, v, expected, f"no such file: {resolved}")
        return FileRef(v, resolved)

    def site_array(self, key: str, ref: FileRef, lat: LatticeSection) -> np.ndarray:
        expected = f"a .npy array of shape {_fmt(list(lat.shape))} (lattice.shape)"
        try:
            arr = np.load(ref.resolved, allow_pickle=False)
        except Exception as e:  # noqa: BLE001 - any unreadable file is a scenario error
            raise self.fail(key, ref.path, expected, f"cannot read {ref.resolved}: {e}") from None
        if not isinstance(arr, np.ndarray):
            if hasattr(arr, "close"):
                arr.close()
            raise self.fail(key, ref.path, expected, f"{ref.resolved} is not a single .npy array")
        if arr.shape != tuple(lat.shape):
            raise self.fail(
                key, ref.path, expected, f"{ref.resolved} has shape {_fmt(list(arr.shape))}"
            )
        if arr.dtype.kind not in "biuf":
            raise self.fail(key, ref.path, expected, f"{ref.resolved} has dtype {arr.dtype}")
        return arr

    def number_or_file(self, key: str, default: float, lat: LatticeSection, *, ge=None, unit=""):
        v = self.get(key)
        if isinstance(v, str):
            ref = self.file(key, what=f"a number{_range(None, ge)} or a path")
            arr = self.site_array(key, ref, lat)
            if not np.all(np.isfinite(arr)) or (ge is not None and np.min(arr) < ge):
                raise self.fail(
                    key,
                    ref.path,
                    f"a per-site map of finite values{_range(None, ge)}",
                    f"{ref.resolved} has min {float(np.min(arr))!r}",
                )
            return ref
        expected = _num_expected("a number", None, ge, unit) + " or a path to a .npy map"
        if v is _MISSING:
            return default
        return self.check_number(key, v, expected, ge=ge)


def _range(gt, ge) -> str:
    if gt is not None:
        return f" > {_fmt(gt)}"
    if ge is not None:
        return f" >= {_fmt(ge)}"
    return ""


def _num_expected(what: str, gt, ge, unit: str) -> str:
    return what + _range(gt, ge) + (f" ({unit})" if unit else "")


def _section(ctx: _Context, raw: Mapping, name: str) -> _Table:
    data = raw.get(name)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ScenarioError(
            f"{ctx.where(name)}: [{name}] = {_fmt(data)}: expected a table (section [{name}]) "
            f"(got {_toml_type(data)})",
            source=ctx.source,
            key=name,
            value=data,
            expected="a table",
        )
    t = _Table(ctx, (name,), data)
    t.check_unknown()
    return t


def _check_sections(ctx: _Context, raw: Any) -> None:
    if not isinstance(raw, Mapping):
        raise ScenarioError(
            f"{ctx.source}: scenario is {_toml_type(raw)}: expected a table of sections",
            source=ctx.source,
            value=raw,
            expected="a table",
        )
    expected = "one of " + ", ".join(f"[{s}]" for s in SECTIONS)
    for name, value in raw.items():
        if name in SECTIONS:
            continue
        hint = _suggest(str(name), SECTIONS)
        if hint:
            hint = f"; did you mean [{hint}]?"
        else:
            owners = [s for s in SECTIONS if name in _KEYS[(s,)]]
            hint = f"; did you mean [{owners[0]}] {name}?" if owners else ""
        if isinstance(value, Mapping):
            what = f"[{name}]: unknown section"
        else:
            what = f"{name} = {_fmt(value)}: unknown top-level key (keys belong in a section)"
        raise ScenarioError(
            f"{ctx.where(str(name))}: {what}; expected {expected}{hint}",
            source=ctx.source,
            key=str(name),
            value=value,
            expected=expected,
        )


# --------------------------------------------------------------------------------------------
# The schema
# --------------------------------------------------------------------------------------------


def _validate(cls, ctx: _Context, raw: Any) -> Scenario:
    _check_sections(ctx, raw)
    meta = _meta(ctx, raw)
    run = _run(ctx, raw)
    lattice = _lattice(ctx, raw)
    map_ = _map(ctx, raw, lattice)
    model = _model(ctx, raw, lattice)
    coupling = _coupling(ctx, raw, lattice, map_)
    drive = _drive(ctx, raw, lattice, map_)
    initial = _initial(ctx, raw, lattice)
    record = _record(ctx, raw, run, lattice)
    return cls(
        meta=meta,
        run=run,
        lattice=lattice,
        map=map_,
        model=model,
        coupling=coupling,
        drive=drive,
        initial=initial,
        record=record,
        source=ctx.source,
        base_dir=ctx.base_dir,
        _raw=raw,
    )


def _meta(ctx: _Context, raw: Mapping) -> MetaSection:
    t = _section(ctx, raw, "meta")
    src = ctx.source
    stem = "scenario" if src.startswith("<") else (Path(src).stem or "scenario")
    return MetaSection(
        name=t.string("name", stem, nonempty=True),
        description=t.string("description", ""),
    )


def _run(ctx: _Context, raw: Mapping) -> RunSection:
    t = _section(ctx, raw, "run")
    duration = t.number("duration", gt=0, unit="ms")
    dt = t.number("dt", 0.125, gt=0, unit="ms")
    if duration < dt:
        raise t.fail(
            "duration",
            duration,
            f"a duration >= [run] dt = {_fmt(dt)} ms (at least one step)",
        )
    return RunSection(
        duration=duration,
        dt=dt,
        seed=t.integer("seed", 0, ge=0),
        members=t.integer("members", 1, ge=1),
        integrator=t.choice("integrator", "symplectic_euler"),
        dtype=t.choice("dtype", "float32"),
        threads=t.integer("threads", 0, ge=0),
    )


def _lattice(ctx: _Context, raw: Mapping) -> LatticeSection:
    t = _section(ctx, raw, "lattice")
    expected = "[ny, nx]: two integers >= 3"
    v = t.get("shape")
    if v is _MISSING:
        raise t.missing("shape", expected)
    if not isinstance(v, list | tuple):
        raise t.fail_type("shape", v, expected)
    if len(v) != 2:
        raise t.fail("shape", v, expected, f"got {len(v)} values")
    for n in v:
        if isinstance(n, bool) or not isinstance(n, int):
            raise t.fail("shape", v, expected, f"{_fmt(n)} is not an integer")
        if n < 3:
            raise t.fail("shape", v, expected, f"side {n} < 3")
        if n > 2**31:
            raise t.fail("shape", v, expected, f"side {n} is too large")
    shape = (int(v[0]), int(v[1]))
    dx = t.number("dx", 0.1, gt=0, unit="mm")
    boundary = t.choice("boundary", "periodic")
    t.check_applicable(boundary)
    sponge_width = sponge_damping = None
    if boundary == "absorbing":
        side = (min(shape) - 1) * dx  # length of the shorter side, as in wavesim.lattice
        half = side / 2
        default_w = 0.1 * side
        sponge_width = t.number("sponge_width", default_w, gt=0, unit="mm")
        if sponge_width >= half:
            raise t.fail(
                "sponge_width",
                sponge_width,
                f"a width < half the shorter side, {_fmt(half)} mm "
                f"((min(shape) - 1) * dx / 2 with shape = {_fmt(list(shape))}, dx = {_fmt(dx)})",
            )
        sponge_damping = t.number("sponge_damping", 1.0, ge=0, unit="1/ms")
    partial = LatticeSection(shape, dx, boundary, sponge_width, sponge_damping, None)
    mask = _mask(t, partial)
    return LatticeSection(shape, dx, boundary, sponge_width, sponge_damping, mask)


def _mask(parent: _Table, lat: LatticeSection) -> MaskSpec | None:
    v = parent.get("mask")
    if v is _MISSING:
        return None
    expected = '{kind = "disk", radius = ..., center = [x, y]} or {kind = "file", path = "..."}'
    if not isinstance(v, Mapping):
        raise parent.fail_type("mask", v, "an inline table " + expected)
    t = _Table(parent.ctx, ("lattice", "mask"), v)
    t.check_unknown()
    kind = t.choice("kind")
    t.check_applicable(kind)
    if kind == "disk":
        radius = t.number("radius", gt=0, unit="mm")
        center = t.point("center", lat.center)
        t.inside("center", center, lat)
        spec = MaskSpec("disk", radius, center, None)
    else:
        ref = t.file("path", what="a path to a .npy boolean / 0-1 array")
        arr = t.site_array("path", ref, lat)
        if arr.dtype.kind != "b" and not np.all((arr == 0) | (arr == 1)):
            raise t.fail("path", ref.path, "a boolean or 0/1 array", "other values present")
        spec = MaskSpec("file", None, None, ref)
    active = LatticeSection(lat.shape, lat.dx, lat.boundary, None, None, spec).active_mask()
    if not active.any():
        raise parent.fail(
            "mask", v, "a mask with at least one active site (True = active)", "no active sites"
        )
    return spec


def _nyquist(t: _Table, key: str, lat: LatticeSection) -> float:
    wl = t.number(key, gt=0, unit="mm")
    if wl < 2 * lat.dx:
        raise t.fail(key, wl, f"a wavelength >= 2 * lattice.dx = {_fmt(2 * lat.dx)} mm (Nyquist)")
    return wl


def _map(ctx: _Context, raw: Mapping, lat: LatticeSection) -> MapSection:
    t = _section(ctx, raw, "map")
    kind = t.choice("kind", "none")
    t.check_applicable(kind)
    wavelength = spectrum_width = seed = path = None
    if kind in ("random", "crystal"):
        wavelength = t.number("wavelength", gt=0, unit="mm")
        side = min(lat.shape) * lat.dx
        if wavelength < _MAP_MIN_PX * lat.dx or wavelength > side:
            raise t.fail(
                "wavelength",
                wavelength,
                f"a wavelength in [{_fmt(_MAP_MIN_PX * lat.dx)}, {_fmt(side)}] mm: at least "
                f"{_MAP_MIN_PX:g} sites (>= 12 for unbiased pinwheel counts) and at most the "
                "smaller side, min(shape) * dx",
            )
    if kind == "random":
        spectrum_width = t.number("spectrum_width", 0.0, ge=0)
        seed = t.integer("seed", None, ge=0)
    if kind == "file":
        path = t.file("path", what="a path to a .npy array of angles in radians")
        arr = t.site_array("path", path, lat)
        if not np.all(np.isfinite(arr)):
            raise t.fail("path", path.path, "finite angles in radians", "non-finite values")
    return MapSection(kind, wavelength, spectrum_width, seed, path)


def _model(ctx: _Context, raw: Mapping, lat: LatticeSection) -> ModelSection:
    t = _section(ctx, raw, "model")
    return ModelSection(
        activation=t.choice("activation", "tanh"),
        exact_tanh=t.boolean("exact_tanh", False),
        omega2=t.number_or_file("omega2", 1.0, lat, ge=0, unit="1/ms^2"),
        gamma=t.number_or_file("gamma", 0.5, lat, ge=0, unit="1/ms"),
        bias=t.number_or_file("bias", 0.0, lat),
        gain=t.number("gain", 1.0),
        noise=t.number("noise", 0.0, ge=0),
    )


def _coupling(
    ctx: _Context, raw: Mapping, lat: LatticeSection, map_: MapSection
) -> CouplingSection:
    t = _section(ctx, raw, "coupling")
    kind = t.choice("kind", "laplacian")
    t.check_applicable(kind)
    speed = stencil = None
    if kind == "laplacian":
        speed = t.number("speed", 1.0, gt=0, unit="mm/ms")
    if kind == "stencil":
        stencil = t.stencil("stencil", lat, "1/ms^2")
        if stencil is _MISSING:
            raise t.missing(
                "stencil",
                "a k x k array of numbers (1/ms^2), k odd",
                "it is required when coupling.kind = 'stencil'",
            )
    vstencil = t.stencil("velocity_stencil", lat, "1/ms")
    kappa = t.number("kappa", 0.0, ge=0)
    if kappa > 0 and map_.kind == "none":
        raise t.fail(
            "kappa",
            kappa,
            "kappa = 0, or an orientation map ([map] kind = 'random', 'crystal' or 'file')",
            reason="kappa > 0 modulates coupling by orientation similarity and requires "
            "[map] kind != 'none', but [map] kind = 'none'",
        )
    return CouplingSection(kind, speed, stencil, None if vstencil is _MISSING else vstencil, kappa)


def _drive(ctx: _Context, raw: Mapping, lat: LatticeSection, map_: MapSection) -> DriveSection:
    t = _section(ctx, raw, "drive")
    kind = t.choice("kind", "none")
    t.check_applicable(kind)
    vals: dict[str, Any] = dict.fromkeys(_KEYS[("drive",)])
    vals["kind"] = kind
    if kind != "none":
        vals["amplitude"] = t.number("amplitude", 1.0)
        vals["onset"] = t.number("onset", 0.0, ge=0, unit="ms")
    if kind == "pulse":
        pos = t.point("position")
        t.inside("position", pos, lat)
        vals["position"] = pos
        vals["width"] = t.number("width", 0.0, ge=0, unit="mm")
        vals["duration"] = t.number("duration", 1.0, gt=0, unit="ms")
        period = t.number("period", None, gt=0, unit="ms")
        if period is not None and period < vals["duration"]:
            raise t.fail(
                "period",
                period,
                f"a period >= [drive] duration = {_fmt(vals['duration'])} ms (pulses may not "
                "overlap); omit period for a single pulse",
            )
        vals["period"] = period
    elif kind == "plane_wave":
        vals["wavelength"] = _nyquist(t, "wavelength", lat)
        vals["direction"] = t.number("direction", 0.0, unit="deg")
        vals["speed"] = t.number("speed", gt=0, unit="mm/ms")
    elif kind == "grating":
        if map_.kind == "none":
            raise t.fail(
                "kind",
                kind,
                "an orientation map ([map] kind = 'random', 'crystal' or 'file') for an "
                "orientation-tuned grating drive",
                reason="drive.kind = 'grating' requires [map] kind != 'none', "
                "but [map] kind = 'none'",
            )
        vals["angular_speed"] = t.number("angular_speed", unit="deg/ms")
        vals["tuning"] = t.number("tuning", 2.0, ge=0)
        vals["orientation"] = t.number("orientation", 0.0, unit="deg")
    return DriveSection(**vals)


def _initial(ctx: _Context, raw: Mapping, lat: LatticeSection) -> InitialSection:
    t = _section(ctx, raw, "initial")
    kind = t.choice("kind", "rest")
    t.check_applicable(kind)
    vals: dict[str, Any] = dict.fromkeys(_KEYS[("initial",)])
    vals["kind"] = kind
    if kind != "rest":
        vals["amplitude"] = t.number("amplitude", 1.0)
    if kind in ("gaussian", "spiral"):
        pos = t.point("position", lat.center)
        t.inside("position", pos, lat)
        vals["position"] = pos
    if kind == "gaussian":
        vals["width"] = t.number("width", gt=0, unit="mm")
    if kind in ("plane_wave", "spiral"):
        vals["wavelength"] = _nyquist(t, "wavelength", lat)
    if kind == "plane_wave":
        vals["direction"] = t.number("direction", 0.0, unit="deg")
    if kind == "spiral":
        charge = t.get("charge")
        if charge is _MISSING:
            charge = 1
        elif isinstance(charge, bool) or charge not in (1, -1):
            raise t.fail("charge", charge, "+1 or -1 (the spiral's topological charge)")
        vals["charge"] = int(charge)
    return InitialSection(**vals)


def _period(t: _Table, key: str, period: float, dt: float, default: bool) -> float:
    n = period / dt
    k = round(n)
    if k >= 1 and abs(period - k * dt) <= _PERIOD_RTOL * period:
        return period
    # Round away float noise (3 * 0.3 = 0.8999999999999999 is shown as 0.9, itself valid).
    lo = float(f"{max(1, math.floor(n)) * dt:.12g}")
    hi = float(f"{max(1, math.ceil(n)) * dt:.12g}")
    near = _fmt(lo) if lo == hi else f"{_fmt(lo)} or {_fmt(hi)}"
    raise t.fail(
        key,
        period,
        f"an integer multiple of [run] dt = {_fmt(dt)} ms (within {_PERIOD_RTOL:g} relative); "
        f"nearest valid periods: {near}",
        "the default" if default else "",
    )


def _record(ctx: _Context, raw: Mapping, run: RunSection, lat: LatticeSection) -> RecordSection:
    t = _section(ctx, raw, "record")
    period = t.number("period", 1.0, gt=0, unit="ms")
    period = _period(t, "period", period, run.dt, t.get("period") is _MISSING)
    if period > run.duration * (1 + _PERIOD_RTOL):
        raise t.fail(
            "period",
            period,
            f"a period <= [run] duration = {_fmt(run.duration)} ms",
            "the default" if t.get("period") is _MISSING else "",
        )

    expected = 'a non-empty array of distinct names from "y", "ydot"'
    v = t.get("fields")
    if v is _MISSING:
        rec_fields: tuple[str, ...] = ("y",)
    else:
        if not isinstance(v, list | tuple):
            raise t.fail_type("fields", v, expected)
        if not v:
            raise t.fail("fields", v, expected, "empty")
        for f in v:
            if f not in ("y", "ydot"):
                raise t.fail("fields", v, expected, f"{_fmt(f)} is not a field")
        if len(set(v)) != len(v):
            raise t.fail("fields", v, expected, "duplicates")
        rec_fields = tuple(v)

    subsample = t.integer("subsample", 1, ge=1)
    if subsample > min(lat.shape):
        raise t.fail(
            "subsample", subsample, f"an integer in [1, {min(lat.shape)}] (the lattice side)"
        )

    electrodes = None
    v = t.get("electrodes")
    if v is not _MISSING:
        expected = "a non-empty array of [x, y] points in mm"
        if not isinstance(v, list | tuple):
            raise t.fail_type("electrodes", v, expected)
        if not v:
            raise t.fail("electrodes", v, expected, "empty; omit the key for no electrodes")
        pts = []
        for p in v:
            pt = t.check_point("electrodes", p, p, expected)
            t.inside("electrodes", pt, lat, shown=p)
            pts.append(pt)
        electrodes = tuple(pts)

    electrode_period = None
    if electrodes is not None:
        electrode_period = t.number("electrode_period", period, gt=0, unit="ms")
        electrode_period = _period(t, "electrode_period", electrode_period, run.dt, False)
        if electrode_period > run.duration * (1 + _PERIOD_RTOL):
            raise t.fail(
                "electrode_period",
                electrode_period,
                f"a period <= [run] duration = {_fmt(run.duration)} ms",
            )
    elif t.get("electrode_period") is not _MISSING:
        raise t.fail(
            "electrode_period",
            t.get("electrode_period"),
            "no electrode_period without [record] electrodes (add electrodes or remove it)",
        )

    return RecordSection(
        period=period,
        fields=rec_fields,
        subsample=subsample,
        electrodes=electrodes,
        electrode_period=electrode_period,
        block=t.integer("block", 32, ge=1),
    )


# --------------------------------------------------------------------------------------------
# TOML emitter (for this schema's value types only)
# --------------------------------------------------------------------------------------------


def _toml_str(s: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(s, ensure_ascii=False)


def _toml_value(value: Any, *, strict: bool, key: str = "") -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            if strict:
                raise ValueError(f"cannot write non-finite float {value!r} to TOML")
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, FileRef):
        return _toml_str(value.path)
    if isinstance(value, Path):
        return _toml_str(str(value))
    if isinstance(value, MaskSpec):
        return _toml_value(_plain(value), strict=strict)
    if isinstance(value, Mapping):
        items = ", ".join(f"{k} = {_toml_value(v, strict=strict)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, list | tuple):
        parts = [_toml_value(v, strict=strict) for v in value]
        if strict and key in ("stencil", "velocity_stencil") and len(value) > 1:
            return "[\n" + "".join(f"  {p},\n" for p in parts) + "]"
        return "[" + ", ".join(parts) + "]"
    if not strict:
        return repr(value)
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _plain(obj: Any) -> Any:
    """Dataclasses -> dicts without None, tuples -> lists, FileRef -> path string."""
    if isinstance(obj, FileRef):
        return obj.path
    if hasattr(obj, "__dataclass_fields__"):
        out = {}
        for f in fields(obj):
            v = getattr(obj, f.name)
            if v is not None:
                out[f.name] = _plain(v)
        return out
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj
