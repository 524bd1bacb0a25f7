"""Sweep files: schema, loader and validation (TOML -> :class:`SweepSpec`).

A sweep file names a base scenario and the parameters to vary, by their dotted scenario keys::

    [sweep]
    scenario = "sweep_base.toml"        # base scenario, relative to this file
    record = "metrics"                  # "metrics", "fields", "electrodes" or an array of them
    metrics = ["speed_median", "singularity_density"]
    analysis_start = 10.0               # ms: metrics skip the frames before (the transient)

    [set]                               # fixed overrides of the base scenario
    run.duration = 40.0

    [grid]                              # grid product: one dimension per key, in file order
    coupling.speed = [0.1, 0.2, 0.3]
    model.gamma = [0.1, 0.3]

    [zip]                               # lists of equal length, varied together: one dimension
    name = "stimulus"
    drive.amplitude = [0.2, 0.5]
    drive.angular_speed = [0.5, 0.9]

    [sample]                            # random or Latin-hypercube samples: one dimension
    method = "latin_hypercube"          # or "random"
    n = 8
    seed = 0
    log = ["model.omega2"]              # sampled uniformly in log
    ranges = { "coupling.kappa" = [0.0, 2.0], "model.omega2" = [0.5, 2.0] }

    [seeds]                             # replicates: one dimension, "seed"
    values = [0, 1, 2]                  # or n = 3 (seeds 0, 1, 2); key = "run.seed" by default

The members are the product of the dimensions, in the order grid keys (file order), zip, sample,
seeds; member ``i`` is ``numpy.unravel_index(i, spec.shape)`` (C order). Every member's scenario is
built and validated when the file is loaded, so an invalid combination is reported before anything
runs. Every problem raises :class:`SweepError` naming the file, the table and key, the value and
what was expected.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wavesim.scenario import (
    _KEYS,
    _UNITS,
    Scenario,
    ScenarioError,
    _fmt,
    _parse_toml,
    _suggest,
    _toml_type,
    load_scenario,
    parse_override,
)

__all__ = [
    "RECORD_CHOICES",
    "SAMPLE_METHODS",
    "TABLES",
    "Axis",
    "SweepError",
    "SweepSpec",
    "load_sweep",
]

#: Top-level tables of a sweep file, in canonical order.
TABLES = ("sweep", "set", "grid", "zip", "sample", "seeds")
#: What a sweep can record per member.
RECORD_CHOICES = ("metrics", "fields", "electrodes")
#: Sampling methods of ``[sample]``.
SAMPLE_METHODS = ("latin_hypercube", "random")

_SWEEP_KEYS = ("name", "description", "scenario", "record", "metrics", "analysis_start")
_SAMPLE_KEYS = ("method", "n", "seed", "log", "ranges", "name")
_SEEDS_KEYS = ("key", "values", "n", "name")
_ZIP_KEYS = ("name",)

#: Every dotted key of a scenario (``coupling.speed``, ``lattice.mask.radius``, ...).
SCENARIO_KEYS = tuple(".".join((*table, key)) for table, keys in _KEYS.items() for key in keys)


class SweepError(ScenarioError):
    """A sweep file is invalid.

    The message names the file, the table and key (``[grid] coupling.speed``), the offending
    value and what was expected; the attributes ``source``, ``key`` (e.g.
    ``"grid.coupling.speed"``), ``value`` and ``expected`` hold the same pieces.
    """


# --------------------------------------------------------------------------------------------
# Axes and the spec
# --------------------------------------------------------------------------------------------


def coord_name(key: str) -> str:
    """The coordinate name of a scenario key: dots become underscores (``coupling_speed``)."""
    return key.replace(".", "_")


@dataclass(frozen=True)
class Axis:
    """One dimension of a sweep.

    Attributes
    ----------
    name : str
        Dimension name: the coordinate name of the key for ``grid`` axes (``coupling_speed``),
        the table's ``name`` for ``zip`` and ``sample`` (default ``"zip"``, ``"sample"``) and for
        ``seeds`` (default ``"seed"``).
    kind : {"grid", "zip", "sample", "seeds"}
    keys : tuple of str
        Dotted scenario keys set along this dimension (one for ``grid`` and ``seeds``).
    values : tuple of tuple
        ``values[k][j]`` is the value of ``keys[k]`` at position ``j``.
    """

    name: str
    kind: str
    keys: tuple[str, ...]
    values: tuple[tuple, ...]

    @property
    def size(self) -> int:
        return len(self.values[0])

    def coord_names(self) -> tuple[str, ...]:
        """Names of the member coordinates holding this axis's values (one per key)."""
        if self.kind in ("grid", "seeds"):
            return (self.name,)
        return tuple(coord_name(k) for k in self.keys)

    def describe(self) -> dict:
        """JSON-able description (stored in the sweep store's ``sweep_dims`` attribute)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "size": self.size,
            "keys": list(self.keys),
            "coords": list(self.coord_names()),
        }


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the base scenario, its axes, what to record. See :func:`load_sweep`.

    Attributes
    ----------
    name, description : str
    source : str
        The sweep file as given (``"<dict>"`` for :meth:`from_dict`).
    base_dir : pathlib.Path
        Directory that relative paths are resolved against (the sweep file's).
    base : wavesim.scenario.Scenario
        The base scenario with ``[set]`` applied.
    fixed : dict
        The ``[set]`` overrides, dotted key -> value.
    axes : tuple of Axis
        The dimensions, in member order.
    record : tuple of str
        Subset of ``("metrics", "fields", "electrodes")``.
    metrics : tuple of str
        Metric names (see :data:`wavesim.sweep.metrics.METRICS`); empty without ``"metrics"``.
    analysis_start : float
        Metrics use the frames at ``time >= analysis_start`` (ms).
    text : str
        The sweep file's TOML text (stored in the sweep store).
    scenarios : tuple of Scenario
        Every member's validated scenario, in member order (:meth:`member_scenario`).
    """

    name: str
    description: str
    source: str
    base_dir: Path
    base: Scenario
    fixed: dict
    axes: tuple[Axis, ...]
    record: tuple[str, ...]
    metrics: tuple[str, ...]
    analysis_start: float
    text: str = ""
    scenarios: tuple[Scenario, ...] = field(default=(), repr=False, compare=False)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls,
        d: Mapping[str, Any],
        source: str = "<dict>",
        base_dir: str | Path = ".",
        *,
        text: str = "",
        overrides: Iterable[str] = (),
    ) -> SweepSpec:
        """Validate a nested mapping (as :mod:`tomllib` returns it).

        ``overrides`` are ``"section.key=value"`` strings applied to the base scenario after
        ``[set]`` (like ``wavesim run --set``).
        """
        return _validate(dict(d), str(source), Path(base_dir).expanduser().resolve(), text,
                         list(overrides))  # fmt: skip

    @classmethod
    def from_toml(
        cls,
        text: str,
        source: str = "<string>",
        base_dir: str | Path = ".",
        overrides: Iterable[str] = (),
    ) -> SweepSpec:
        """Parse and validate TOML text."""
        try:
            raw = _parse_toml(text, source)
        except ScenarioError as exc:
            raise SweepError(str(exc), source=source, expected="valid TOML") from None
        return cls.from_dict(raw, source, base_dir, text=text, overrides=overrides)

    # -- members -----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Sizes of the dimensions (``()`` for a sweep without axes: one member)."""
        return tuple(a.size for a in self.axes)

    @property
    def dims(self) -> tuple[str, ...]:
        """Names of the dimensions, in member order."""
        return tuple(a.name for a in self.axes)

    @property
    def members(self) -> int:
        return math.prod(self.shape)

    def member_index(self, i: int) -> tuple[int, ...]:
        """Position of member ``i`` along every dimension."""
        if not 0 <= i < self.members:
            raise IndexError(f"member {i} out of range: the sweep has {self.members} members")
        return tuple(int(k) for k in np.unravel_index(i, self.shape)) if self.axes else ()

    def member_params(self, i: int) -> dict[str, Any]:
        """The scenario values of member ``i``: dotted key -> value."""
        out = {}
        for axis, j in zip(self.axes, self.member_index(i), strict=True):
            for key, values in zip(axis.keys, axis.values, strict=True):
                out[key] = values[j]
        return out

    def member_label(self, i: int) -> str:
        """``"coupling.speed=0.2, run.seed=1"``: member ``i`` in words."""
        return ", ".join(f"{k}={_fmt(v)}" for k, v in self.member_params(i).items())

    def member_scenario(self, i: int) -> Scenario:
        """The validated scenario of member ``i``."""
        if self.scenarios:
            return self.scenarios[i]
        return self.base.replace(self.member_params(i))

    def fingerprint(self) -> str:
        """A hash of everything that defines the members and what they record."""
        doc = {
            "base": self.base.to_toml(),
            "axes": [
                [a.name, a.kind, list(a.keys), [list(v) for v in a.values]] for a in self.axes
            ],  # fmt: skip
            "record": list(self.record),
            "metrics": list(self.metrics),
            "analysis_start": self.analysis_start,
        }
        text = json.dumps(doc, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def load_sweep(path: str | Path, overrides: Iterable[str] = ()) -> SweepSpec:
    """Read and validate a sweep file.

    Parameters
    ----------
    path : str or pathlib.Path
        The TOML sweep file; ``[sweep] scenario`` is resolved relative to its directory.
    overrides : iterable of str
        ``"section.key=value"`` overrides of the base scenario, applied after ``[set]``.

    Returns
    -------
    SweepSpec
        With every member's scenario built and validated.

    Raises
    ------
    SweepError
        Naming the file, the key, the value and what was expected (an unknown key comes with a
        "did you mean"); a member whose scenario is invalid is named with its parameter values.
    """
    p = Path(path).expanduser()
    source = str(path)
    if not p.is_file():
        what = "does not exist" if not p.exists() else "is not a file"
        raise SweepError(
            f"{source}: sweep file {what} (resolved to {p.resolve()}): expected a TOML sweep file",
            source=source,
        )
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise SweepError(
            f"{source}: is not UTF-8 text (byte {e.start}): expected a TOML sweep file",
            source=source,
        ) from None
    return SweepSpec.from_toml(text, source, p.resolve().parent, overrides)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


class _Ctx:
    def __init__(self, source: str):
        self.source = source

    def fail(self, table: str, key: str | None, value: Any, expected: str, note: str = ""):
        label = f"[{table}]" + (f" {key}" if key else "")
        shown = "" if value is _NOVALUE else f" = {_fmt(value)}"
        got = f" ({note})" if note else ""
        return SweepError(
            f"{self.source}: {label}{shown}: expected {expected}{got}",
            source=self.source,
            key=".".join(p for p in (table, key) if p),
            value=None if value is _NOVALUE else value,
            expected=expected,
        )

    def missing(self, table: str, key: str, expected: str):
        return SweepError(
            f"{self.source}: [{table}] {key} is missing: expected {expected}",
            source=self.source,
            key=f"{table}.{key}",
            expected=expected,
        )

    def unknown(self, table: str, key: str, value: Any, known: Iterable[str], extra: str = ""):
        known = list(known)
        hint = _suggest(key, known)
        hint = f"; did you mean {hint!r}?" if hint else ""
        expected = "one of " + ", ".join(known) + extra
        return SweepError(
            f"{self.source}: [{table}] {key} = {_fmt(value)}: unknown key; expected "
            f"{expected}{hint}",
            source=self.source,
            key=f"{table}.{key}",
            value=value,
            expected=expected,
        )


_NOVALUE: Any = object()


def _table(ctx: _Ctx, raw: Mapping, name: str) -> dict | None:
    v = raw.get(name)
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise ctx.fail(name, None, v, f"a table [{name}]", f"got {_toml_type(v)}")
    return dict(v)


def _flatten(ctx: _Ctx, table: str, d: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{coupling: {speed: [...]}}`` (TOML's dotted keys) -> ``{"coupling.speed": [...]}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and key not in SCENARIO_KEYS:
            out.update(_flatten(ctx, table, v, key))
        else:
            out[key] = v
    return out


def _check_scenario_key(ctx: _Ctx, table: str, key: str, value: Any, label: str = "") -> None:
    if key in SCENARIO_KEYS:
        return
    label = label or key
    hint = _suggest(key, SCENARIO_KEYS)
    if hint is None:  # a key of the right name in another section?
        tail = key.rsplit(".", 1)[-1]
        hint = next((k for k in SCENARIO_KEYS if k.rsplit(".", 1)[-1] == tail), None)
    hint = f"; did you mean {hint!r}?" if hint else ""
    expected = "a dotted key of the base scenario, such as coupling.speed or model.gamma"
    raise SweepError(
        f"{ctx.source}: [{table}] {label} = {_fmt(value)}: unknown scenario key {key!r}; "
        f"expected {expected}{hint}",
        source=ctx.source,
        key=f"{table}.{label}",
        value=value,
        expected=expected,
    )


def _check_name(ctx: _Ctx, table: str, value: Any) -> str:
    expected = "a name made of letters, digits and underscores (a dimension name)"
    if not isinstance(value, str):
        raise ctx.fail(table, "name", value, expected, f"got {_toml_type(value)}")
    if not value.isidentifier():
        raise ctx.fail(table, "name", value, expected)
    return value


def _values(ctx: _Ctx, table: str, key: str, v: Any, *, distinct: bool) -> tuple:
    expected = "a non-empty array of values" + (" (distinct)" if distinct else "")
    if not isinstance(v, list | tuple):
        raise ctx.fail(table, key, v, expected, f"got {_toml_type(v)}")
    if not v:
        raise ctx.fail(table, key, v, expected, "empty")
    if distinct:
        seen = set()
        for x in v:
            token = json.dumps(x, sort_keys=True, default=str)
            if token in seen:
                raise ctx.fail(table, key, v, expected, f"{_fmt(x)} appears twice")
            seen.add(token)
    return tuple(v)


def _sweep_table(ctx: _Ctx, raw: Mapping, stem: str) -> dict:
    t = _table(ctx, raw, "sweep")
    if t is None:
        raise SweepError(
            f"{ctx.source}: [sweep] is missing: expected a [sweep] table with at least "
            'scenario = "base.toml" (the base scenario, relative to the sweep file)',
            source=ctx.source,
            key="sweep",
            expected="a [sweep] table",
        )
    for key, value in t.items():
        if key not in _SWEEP_KEYS:
            raise ctx.unknown("sweep", key, value, _SWEEP_KEYS)
    out: dict[str, Any] = {}
    name = t.get("name", stem)
    expected = "a non-empty string"
    if not isinstance(name, str) or not name.strip():
        raise ctx.fail("sweep", "name", name, expected)
    out["name"] = name
    desc = t.get("description", "")
    if not isinstance(desc, str):
        raise ctx.fail("sweep", "description", desc, "a string", f"got {_toml_type(desc)}")
    out["description"] = desc
    if "scenario" not in t:
        raise ctx.missing("sweep", "scenario", "a path to the base scenario (relative to the file)")
    scen = t["scenario"]
    if not isinstance(scen, str) or not scen.strip():
        raise ctx.fail("sweep", "scenario", scen, "a path to a scenario TOML file (a string)")
    out["scenario"] = scen

    rec = t.get("record", "metrics")
    expected = "one of " + ", ".join(repr(c) for c in RECORD_CHOICES) + " or an array of them"
    items = [rec] if isinstance(rec, str) else rec
    if not isinstance(items, list) or not items:
        raise ctx.fail("sweep", "record", rec, expected)
    for item in items:
        if item not in RECORD_CHOICES:
            hint = _suggest(str(item), RECORD_CHOICES) if isinstance(item, str) else None
            note = f"did you mean {hint!r}?" if hint else f"{_fmt(item)} is not one"
            raise ctx.fail("sweep", "record", rec, expected, note)
    if len(set(items)) != len(items):
        raise ctx.fail("sweep", "record", rec, expected, "duplicates")
    out["record"] = tuple(c for c in RECORD_CHOICES if c in items)

    from wavesim.sweep.metrics import DEFAULT_METRICS, METRICS

    metrics = t.get("metrics", _NOVALUE)
    expected = "an array of metric names: " + ", ".join(METRICS)
    if metrics is _NOVALUE:
        metrics = list(DEFAULT_METRICS) if "metrics" in out["record"] else []
    elif "metrics" not in out["record"]:
        raise ctx.fail(
            "sweep", "metrics", metrics,
            "no metrics key unless record includes \"metrics\" (add it to record)",
        )  # fmt: skip
    if not isinstance(metrics, list):
        raise ctx.fail("sweep", "metrics", metrics, expected, f"got {_toml_type(metrics)}")
    if "metrics" in out["record"] and not metrics:
        raise ctx.fail("sweep", "metrics", metrics, expected, "empty")
    for m in metrics:
        if m not in METRICS:
            hint = _suggest(str(m), METRICS) if isinstance(m, str) else None
            raise ctx.fail("sweep", "metrics", metrics, expected,
                           f"{_fmt(m)} is not a metric" + (f"; did you mean {hint!r}?" if hint
                                                            else ""))  # fmt: skip
    if len(set(metrics)) != len(metrics):
        raise ctx.fail("sweep", "metrics", metrics, expected, "duplicates")
    out["metrics"] = tuple(metrics)

    start = t.get("analysis_start", 0.0)
    expected = "a number >= 0 (ms)"
    if isinstance(start, bool) or not isinstance(start, int | float):
        raise ctx.fail("sweep", "analysis_start", start, expected, f"got {_toml_type(start)}")
    if not (math.isfinite(start) and start >= 0):
        raise ctx.fail("sweep", "analysis_start", start, expected)
    out["analysis_start"] = float(start)
    return out


def _grid_axes(ctx: _Ctx, raw: Mapping) -> list[Axis]:
    t = _table(ctx, raw, "grid")
    if t is None:
        return []
    axes = []
    for key, v in _flatten(ctx, "grid", t).items():
        _check_scenario_key(ctx, "grid", key, v)
        axes.append(Axis(coord_name(key), "grid", (key,), (_values(ctx, "grid", key, v,
                                                                   distinct=True),)))  # fmt: skip
    if not axes:
        raise ctx.fail("grid", None, t, "at least one key = [values] (or no [grid] table)")
    return axes


def _zip_axis(ctx: _Ctx, raw: Mapping) -> list[Axis]:
    t = _table(ctx, raw, "zip")
    if t is None:
        return []
    name = _check_name(ctx, "zip", t.pop("name", "zip"))
    keys, values = [], []
    for key, v in _flatten(ctx, "zip", t).items():
        if "." not in key:
            raise ctx.unknown("zip", key, v, _ZIP_KEYS, " or dotted scenario keys = [values]")
        _check_scenario_key(ctx, "zip", key, v)
        keys.append(key)
        values.append(_values(ctx, "zip", key, v, distinct=False))
    if not keys:
        raise ctx.fail("zip", None, _NOVALUE, "at least one scenario key = [values]")
    n = len(values[0])
    for key, vals in zip(keys, values, strict=True):
        if len(vals) != n:
            raise ctx.fail(
                "zip", key, list(vals),
                f"{n} values, as many as [zip] {keys[0]} (zipped lists have equal lengths)",
                f"got {len(vals)}",
            )  # fmt: skip
    return [Axis(name, "zip", tuple(keys), tuple(values))]


def _sample_axis(ctx: _Ctx, raw: Mapping) -> list[Axis]:
    t = _table(ctx, raw, "sample")
    if t is None:
        return []
    for key, value in t.items():
        if key not in _SAMPLE_KEYS:
            raise ctx.unknown("sample", key, value, _SAMPLE_KEYS)
    name = _check_name(ctx, "sample", t.get("name", "sample"))
    method = t.get("method", "latin_hypercube")
    if method not in SAMPLE_METHODS:
        hint = _suggest(str(method), SAMPLE_METHODS)
        raise ctx.fail("sample", "method", method,
                       "one of " + ", ".join(repr(m) for m in SAMPLE_METHODS),
                       f"did you mean {hint!r}?" if hint else "")  # fmt: skip
    if "n" not in t:
        raise ctx.missing("sample", "n", "an integer >= 1 (the number of samples)")
    n = t["n"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ctx.fail("sample", "n", n, "an integer >= 1 (the number of samples)")
    seed = t.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ctx.fail("sample", "seed", seed, "an integer >= 0")
    if "ranges" not in t:
        raise ctx.missing(
            "sample", "ranges", 'a table of scenario key = [low, high], e.g. {"model.gamma" = '
            "[0.1, 0.5]}",
        )  # fmt: skip
    ranges_raw = t["ranges"]
    if not isinstance(ranges_raw, Mapping) or not ranges_raw:
        raise ctx.fail("sample", "ranges", ranges_raw, "a non-empty table of key = [low, high]")
    ranges = _flatten(ctx, "sample", ranges_raw)
    log = t.get("log", [])
    if not isinstance(log, list) or not all(isinstance(k, str) for k in log):
        raise ctx.fail("sample", "log", log, "an array of keys of [sample] ranges")
    for k in log:
        if k not in ranges:
            hint = _suggest(k, ranges)
            raise ctx.fail("sample", "log", log, "an array of keys of [sample] ranges",
                           f"{k!r} is not in ranges" + (f"; did you mean {hint!r}?" if hint
                                                        else ""))  # fmt: skip
    keys, bounds = [], []
    for key, v in ranges.items():
        label = f"ranges.{key}"
        _check_scenario_key(ctx, "sample", key, v, label=label)
        expected = "[low, high]: two numbers with low < high" + (
            " and low > 0 (log scale)" if key in log else ""
        )
        ok = (
            isinstance(v, list)
            and len(v) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
            and all(math.isfinite(x) for x in v)
            and v[0] < v[1]
            and (key not in log or v[0] > 0)
        )
        if not ok:
            raise ctx.fail("sample", label, v, expected)
        keys.append(key)
        bounds.append((float(v[0]), float(v[1])))
    d = len(keys)
    if method == "latin_hypercube":
        from scipy.stats import qmc

        u = qmc.LatinHypercube(d=d, rng=np.random.default_rng(seed)).random(n)
    else:
        u = np.random.default_rng(seed).random((n, d))
    values = []
    for k, (key, (lo, hi)) in enumerate(zip(keys, bounds, strict=True)):
        if key in log:
            col = np.exp(np.log(lo) + u[:, k] * (np.log(hi) - np.log(lo)))
        else:
            col = lo + u[:, k] * (hi - lo)
        values.append(tuple(float(x) for x in col))
    return [Axis(name, "sample", tuple(keys), tuple(values))]


def _seeds_axis(ctx: _Ctx, raw: Mapping) -> list[Axis]:
    t = _table(ctx, raw, "seeds")
    if t is None:
        return []
    for key, value in t.items():
        if key not in _SEEDS_KEYS:
            raise ctx.unknown("seeds", key, value, _SEEDS_KEYS)
    name = _check_name(ctx, "seeds", t.get("name", "seed"))
    key = t.get("key", "run.seed")
    if not isinstance(key, str):
        raise ctx.fail("seeds", "key", key, "a dotted scenario key such as 'run.seed'")
    _check_scenario_key(ctx, "seeds", key, key, label="key")
    if ("values" in t) == ("n" in t):
        raise SweepError(
            f"{ctx.source}: [seeds] needs exactly one of values = [...] (the seeds) or n = N "
            "(seeds 0 to N - 1)",
            source=ctx.source,
            key="seeds.values",
            expected="values or n",
        )
    if "n" in t:
        n = t["n"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ctx.fail("seeds", "n", n, "an integer >= 1 (seeds 0 to n - 1)")
        values = tuple(range(n))
    else:
        values = _values(ctx, "seeds", "values", t["values"], distinct=True)
        for s in values:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ctx.fail("seeds", "values", list(values), "distinct integers >= 0",
                               f"{_fmt(s)} is not one")  # fmt: skip
    return [Axis(name, "seeds", (key,), (values,))]


def _apply(base: Scenario, mapping: dict) -> Scenario:
    return base.replace(mapping) if mapping else base


def _validate(raw: dict, source: str, base_dir: Path, text: str, overrides: list) -> SweepSpec:
    ctx = _Ctx(source)
    if not isinstance(raw, Mapping):
        raise SweepError(f"{source}: expected a table of [sweep], [grid], ... tables",
                         source=source)  # fmt: skip
    for name, value in raw.items():
        if name not in TABLES:
            hint = _suggest(str(name), TABLES)
            hint = f"; did you mean [{hint}]?" if hint else ""
            expected = "one of " + ", ".join(f"[{t}]" for t in TABLES)
            raise SweepError(
                f"{source}: [{name}]: unknown table; expected {expected}{hint}",
                source=source,
                key=str(name),
                value=value,
                expected=expected,
            )
    stem = "sweep" if source.startswith("<") else (Path(source).stem or "sweep")
    sw = _sweep_table(ctx, raw, stem)

    # -- the base scenario, [set] and overrides -------------------------------------------------
    scen_path = Path(sw["scenario"]).expanduser()
    resolved = scen_path if scen_path.is_absolute() else (base_dir / scen_path).resolve()
    if not resolved.is_file():
        raise ctx.fail("sweep", "scenario", sw["scenario"],
                       f"a path to an existing scenario file (relative to {base_dir})",
                       f"no such file: {resolved}")  # fmt: skip
    base = load_scenario(resolved)
    fixed_raw = _table(ctx, raw, "set") or {}
    fixed = _flatten(ctx, "set", fixed_raw)
    for key, value in fixed.items():
        _check_scenario_key(ctx, "set", key, value)
    try:
        base = _apply(base, fixed)
    except ScenarioError as exc:
        key = exc.key if exc.key in fixed else next(iter(fixed))
        raise SweepError(
            f"{source}: [set] {key} = {_fmt(fixed.get(key))} gives an invalid scenario: {exc}",
            source=source,
            key=f"set.{key}",
            value=fixed.get(key),
            expected=exc.expected,
        ) from None
    if overrides:
        base = base.with_overrides(overrides)
        for o in overrides:
            path, value, _ = parse_override(o, source)
            fixed[".".join(path)] = value

    # -- axes ----------------------------------------------------------------------------------
    axes = [*_grid_axes(ctx, raw), *_zip_axis(ctx, raw), *_sample_axis(ctx, raw),
            *_seeds_axis(ctx, raw)]  # fmt: skip
    owner: dict[str, str] = {k: "set" for k in fixed}
    used: dict[str, str] = {}
    for axis in axes:
        table = axis.kind
        for key in axis.keys:
            if key in owner:
                raise ctx.fail(table, key, _NOVALUE,
                               f"each scenario key in one place only, but {key} is also set in "
                               f"[{owner[key]}]")  # fmt: skip
            owner[key] = table
        if axis.kind in ("zip", "sample") and axis.name in axis.coord_names():
            raise ctx.fail(
                table,
                "name",
                axis.name,
                "a dimension name other than the coordinate names of its keys",
            )
        for cname in dict.fromkeys((axis.name, *axis.coord_names())):
            clash = used.get(cname) or ("the sweep store" if cname in _reserved() else None)
            if clash:
                where = "name" if cname == axis.name and axis.kind != "grid" else axis.keys[0]
                raise ctx.fail(table, where, _NOVALUE,
                               f"distinct dimension and coordinate names, but {cname!r} is also "
                               f"used by {clash} (set another [{table}] name)")  # fmt: skip
            used[cname] = f"[{table}]"

    spec = SweepSpec(
        name=sw["name"],
        description=sw["description"],
        source=source,
        base_dir=base_dir,
        base=base,
        fixed=fixed,
        axes=tuple(axes),
        record=sw["record"],
        metrics=sw["metrics"],
        analysis_start=sw["analysis_start"],
        text=text,
    )
    scenarios = _member_scenarios(ctx, spec)
    object.__setattr__(spec, "scenarios", scenarios)
    _check_members(ctx, spec)
    return spec


def _axis_table(spec: SweepSpec, key: str) -> str:
    return next((axis.kind for axis in spec.axes if key in axis.keys), "set")


def _reserved() -> frozenset[str]:
    """Names the sweep store uses itself (a dimension or coordinate may not take them)."""
    from wavesim.sweep.metrics import METRICS
    from wavesim.sweep.template import RESERVED

    return frozenset(RESERVED) | frozenset(METRICS)


def _member_scenarios(ctx: _Ctx, spec: SweepSpec) -> tuple[Scenario, ...]:
    out = []
    for i in range(spec.members):
        params = spec.member_params(i)
        try:
            out.append(_apply(spec.base, params))
        except ScenarioError as exc:
            raise _member_error(ctx, spec, i, params, exc) from None
    return tuple(out)


def _member_error(ctx: _Ctx, spec: SweepSpec, i: int, params: dict, exc: ScenarioError):
    """Name the axis key whose value makes member ``i`` invalid (alone, if it does alone)."""
    culprit = exc.key if exc.key in params else None
    if culprit is None:
        for key, value in params.items():
            try:
                spec.base.replace({key: value})
            except ScenarioError:
                culprit = key
                break
    if culprit is not None:
        table = _axis_table(spec, culprit)
        value = params[culprit]
        return SweepError(
            f"{ctx.source}: [{table}] {culprit} = {_fmt(value)} (member {i}: "
            f"{spec.member_label(i)}) gives an invalid scenario: {exc}",
            source=ctx.source,
            key=f"{table}.{culprit}",
            value=value,
            expected=exc.expected,
        )
    return SweepError(
        f"{ctx.source}: member {i} ({spec.member_label(i)}) gives an invalid scenario: {exc}",
        source=ctx.source,
        key=exc.key,
        value=params,
        expected=exc.expected,
    )


def _record_signature(s: Scenario, what: str):
    """What fixes the shape and coordinates of a recorded variable."""
    n = s.n_steps
    if what == "fields":
        stride = s.record_stride
        return (s.lattice.shape, s.lattice.dx, s.record.subsample, s.record.fields, stride,
                n // stride, s.run.dt, s.run.dtype)  # fmt: skip
    stride = s.electrode_stride
    return (s.record.electrodes, stride, n // stride, s.run.dt, s.run.dtype)


def _check_members(ctx: _Ctx, spec: SweepSpec) -> None:
    s0 = spec.scenarios[0]
    for i, s in enumerate(spec.scenarios):
        if s.run.members != 1:
            raise SweepError(
                f"{ctx.source}: member {i} has [run] members = {s.run.members}: expected 1 (a "
                "sweep member is one lattice; replicate with [seeds] instead)",
                source=ctx.source,
                key="run.members",
                value=s.run.members,
                expected="1",
            )
    if "electrodes" in spec.record and s0.record.electrodes is None:
        raise ctx.fail("sweep", "record", list(spec.record),
                       "electrodes in the base scenario ([record] electrodes) to record them",
                       "the base scenario has none")  # fmt: skip
    for what in ("fields", "electrodes"):
        if what not in spec.record:
            continue
        sig0 = _record_signature(s0, what)
        for i, s in enumerate(spec.scenarios):
            if _record_signature(s, what) != sig0:
                changed = [k for k in spec.member_params(i)
                           if spec.member_params(i)[k] != spec.member_params(0)[k]]  # fmt: skip
                raise ctx.fail(
                    "sweep", "record", list(spec.record),
                    f"the same recorded {what} shape, times and dtype for every member, but "
                    f"member {i} ({spec.member_label(i)}) records differently from member 0 "
                    f"(varied: {', '.join(changed)}); record only metrics for such sweeps",
                )  # fmt: skip
    if "metrics" in spec.record:
        for i, s in enumerate(spec.scenarios):
            frames = s.n_steps // s.record_stride + 1
            start = math.ceil(spec.analysis_start / s.record.period - 1e-9)
            if frames - start < 2:
                raise ctx.fail(
                    "sweep", "analysis_start", spec.analysis_start,
                    f"at least 2 recorded frames at or after analysis_start for the metrics; "
                    f"member {i} records {frames} frames every {_fmt(s.record.period)} ms up to "
                    f"{_fmt(s.n_steps * s.run.dt)} ms",
                )  # fmt: skip


def param_units(key: str) -> str | None:
    """Units of a scenario key (``"mm/ms"`` for ``coupling.speed``), ``None`` if it has none."""
    unit = _UNITS.get(tuple(key.split(".")))
    if unit is None or " " in unit or "=" in unit:
        return None
    return unit
