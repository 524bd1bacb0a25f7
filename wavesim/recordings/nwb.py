"""NWB 2 files through pynwb: imaging movies and electrode arrays in the recording layout.

Read: ``ImageSeries`` and its subtypes (``OnePhotonSeries``, ``TwoPhotonSeries``, ...) as movies
``(time, y, x)``; ``ElectricalSeries`` (raw, or LFP / filtered in processing modules) as
``(time, channel)`` with electrode positions from the electrodes table. The series is chosen by
name (or by path, ``"processing/ecephys/LFP/lfp"``); :func:`list_series` lists what a file holds.

Where the numbers come from
---------------------------
* time: ``starting_time`` + ``rate`` (Hz), or ``timestamps`` (s); converted to ms;
* values: ``data * conversion + offset`` (and ``channel_conversion`` for electrical series), in
  the series ``unit``;
* spacing: ``imaging_plane.grid_spacing`` (with its unit) for one- and two-photon series, else the
  wavesim metadata written by :func:`wavesim.recordings.to_nwb`, else ``dx=`` from the user, else
  pixel units;
* electrode positions: ``rel_x``/``rel_y`` of the electrodes table when present (positions in the
  array), else ``x``/``y`` (brain coordinates); both are in micrometres by the NWB schema and are
  converted to mm.

Movies are read frame-major as ``(time, row, column)`` = ``(time, y, x)``, which is how imaging
software and most NWB writers store them (the NWB schema names the axes ``frame, x, y`` but does
not say which is the row); pass ``dims=("time", "x", "y")`` for a file that stores columns first.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wavesim.recordings.layout import IMAGING_DIMS, RecordingError, as_recording

__all__ = ["SeriesInfo", "list_series", "load_nwb", "read_wavesim_meta"]

#: Key of the JSON document that :func:`wavesim.recordings.to_nwb` writes into ``comments``.
META_KEY = "wavesim"
#: Prefix of the scratch entries written by ``to_nwb`` (``wavesim__<series>__time`` etc.).
SCRATCH_PREFIX = "wavesim__"
#: Root attributes of a store that are not carried over into a recording's attributes.
_STORE_ONLY = frozenset(
    {"wavesim_store", "wavesim_version", "wavesim_recording", "recorders", "members", "block",
     "complete", "steps_done", "dt", "dx", "rate_hz", "source", "format", "series",
     "spacing_units", "preprocessing_note"}
)  # fmt: skip

_LENGTH_TO_MM = {
    "m": 1e3,
    "meter": 1e3,
    "meters": 1e3,
    "metre": 1e3,
    "metres": 1e3,
    "mm": 1.0,
    "millimeter": 1.0,
    "millimeters": 1.0,
    "millimetre": 1.0,
    "millimetres": 1.0,
    "um": 1e-3,
    "µm": 1e-3,
    "micrometer": 1e-3,
    "micrometers": 1e-3,
    "micrometre": 1e-3,
    "micrometres": 1e-3,
    "micron": 1e-3,
    "microns": 1e-3,
    "cm": 10.0,
    "centimeters": 10.0,
}


def _require_pynwb():
    try:
        import pynwb
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError(
            "reading NWB files needs pynwb: pip install 'wavesim[nwb]' (or pip install pynwb)"
        ) from exc
    return pynwb


@dataclass
class SeriesInfo:
    """What :func:`list_series` reports about one time series of an NWB file."""

    name: str
    path: str
    neurodata_type: str
    kind: str | None  # "imaging", "electrodes" or None (not loadable as a recording)
    shape: tuple[int, ...]
    dtype: str
    rate_hz: float | None
    unit: str
    dx_mm: float | None = None
    n_electrodes: int | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)

    def describe(self) -> str:
        """One line: path, type, shape, rate, spacing."""
        rate = f"{self.rate_hz:.6g} Hz" if self.rate_hz else "rate not given"
        parts = [
            f"{self.path}",
            f"{self.neurodata_type}",
            "x".join(str(s) for s in self.shape) + f" {self.dtype}",
            rate,
        ]
        if self.kind == "imaging":
            parts.append(f"dx {self.dx_mm:g} mm" if self.dx_mm else "spacing not given")
        if self.n_electrodes is not None:
            parts.append(f"{self.n_electrodes} electrodes")
        if self.unit:
            parts.append(f"unit {self.unit!r}")
        if self.kind is None:
            parts.append("(not a movie or electrode array)")
        return ", ".join(parts)


class _NoRateError(RecordingError):
    """An NWB series without rate and timestamps (pynwb refuses to read such files)."""

    def __init__(self, message: str, series_path: str):
        super().__init__(message)
        self.series_path = series_path


_NO_RATE = re.compile(r"root/([^\s]+) GroupBuilder.*either 'timestamps' or 'rate'", re.S)


def _open(path: Path):
    pynwb = _require_pynwb()
    if not path.exists():
        raise FileNotFoundError(f"no NWB file at {path}")
    io = None
    try:
        io = pynwb.NWBHDF5IO(str(path), mode="r", load_namespaces=True)
        nwbfile = io.read()
    except Exception as exc:
        if io is not None:
            io.close()
        text = str(exc)
        hit = _NO_RATE.search(text)
        if hit:
            raise _NoRateError(
                f"{path.name}: series {hit.group(1)!r} has neither a sampling rate nor "
                "timestamps (the sampling rate is missing): pass rate=<Hz> or dt=<ms> "
                "(--rate HZ on the command line)",
                hit.group(1),
            ) from None
        first = text.splitlines()[0] if text else ""
        raise RecordingError(
            f"{path.name}: cannot read it as an NWB 2 file ({type(exc).__name__}: {first[:300]})"
        ) from exc
    return io, nwbfile


def _load_without_rate(path: Path, series_path: str, series, *, dx, rate, dt, mask, dims,
                       auto_mask):  # fmt: skip
    """Read a series that has no rate with h5py (pynwb cannot); the user gives the rate."""
    import h5py

    name = series_path.rsplit("/", 1)[-1]
    if series is not None and series not in (name, series_path):
        raise RecordingError(
            f"{path.name}: pynwb cannot read the file because series {series_path!r} has no "
            "rate; repair it or load that series with rate="
        )
    with h5py.File(path, "r") as f:
        group = f[series_path]
        kind = group.attrs.get("neurodata_type", "")
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind == "ElectricalSeries" or "data" not in group:
            raise RecordingError(
                f"{path.name}: series {series_path!r} ({kind}) has no rate or timestamps; "
                "wavesim can read such a series only for movies; repair the file"
            )
        data = np.asarray(group["data"][()])
        unit = group["data"].attrs.get("unit", "1")
        unit = unit.decode() if isinstance(unit, bytes) else str(unit)
    return as_recording(
        data,
        dt=dt,
        rate=rate,
        dx=dx,
        dims=tuple(dims) if dims is not None else IMAGING_DIMS,
        mask=mask,
        auto_mask=auto_mask,
        units=unit,
        source=path.name,
        format="nwb",
        series=name,
        attrs={"nwb_neurodata_type": kind, "nwb_series_path": series_path},
    )


def _series_path(obj, nwbfile) -> str:
    names = []
    node = obj
    while node is not None and node is not nwbfile:
        names.append(node.name)
        node = node.parent
    names.reverse()
    if len(names) == 1:  # directly under the file: acquisition or stimulus
        name = names[0]
        for section, table in (
            ("acquisition", nwbfile.acquisition),
            ("stimulus", nwbfile.stimulus),
            ("stimulus_templates", nwbfile.stimulus_template),
        ):
            if table.get(name) is obj:
                return f"{section}/{name}"
        return name
    if names and names[0] in nwbfile.processing:
        return "processing/" + "/".join(names)
    return "/".join(names)


def _kind(obj) -> str | None:
    from pynwb.ecephys import ElectricalSeries
    from pynwb.image import ImageSeries

    if isinstance(obj, ElectricalSeries):
        return "electrodes"
    if isinstance(obj, ImageSeries):
        return "imaging"
    return None


def _rate_of(obj) -> float | None:
    if obj.rate is not None:
        return float(obj.rate)
    ts = obj.timestamps
    if ts is not None and len(ts) > 1:
        step = float(np.median(np.diff(np.asarray(ts[: min(len(ts), 10001)], dtype=float))))
        return 1.0 / step if step > 0 else None
    return None


def _to_mm(value, unit: str | None, what: str, source: str) -> float:
    key = (unit or "meters").strip().lower()
    if key not in _LENGTH_TO_MM:
        raise RecordingError(
            f"{source}: {what} has the unit {unit!r}, which wavesim cannot convert to mm "
            f"(known: {', '.join(sorted(_LENGTH_TO_MM))}); pass dx= in mm"
        )
    return float(value) * _LENGTH_TO_MM[key]


def read_wavesim_meta(series) -> dict:
    """The wavesim metadata that :func:`wavesim.recordings.to_nwb` stored with a series, or {}."""
    text = getattr(series, "comments", None) or ""
    if not text.lstrip().startswith("{"):
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    meta = doc.get(META_KEY) if isinstance(doc, dict) else None
    return meta if isinstance(meta, dict) else {}


def _grid_spacing(series, source: str) -> float | None:
    """Pixel spacing in mm from the imaging plane, the wavesim metadata, or None."""
    meta = read_wavesim_meta(series)
    if meta.get("dx") is not None:
        return float(meta["dx"])
    plane = getattr(series, "imaging_plane", None)
    spacing = getattr(plane, "grid_spacing", None) if plane is not None else None
    if spacing is None:
        return None
    spacing = np.asarray(spacing, dtype=float).reshape(-1)
    unit = getattr(plane, "grid_spacing_unit", None)
    sx = _to_mm(spacing[0], unit, f"imaging plane {plane.name!r} grid_spacing", source)
    sy = _to_mm(spacing[1], unit, f"imaging plane {plane.name!r} grid_spacing", source)
    if not math.isclose(sx, sy, rel_tol=1e-6):
        raise RecordingError(
            f"{source}: imaging plane {plane.name!r} has different spacings along x "
            f"({sx:g} mm) and y ({sy:g} mm); wavesim's analyzers need square pixels: resample "
            "the movie, or pass dx= (mm) to override"
        )
    return sx


def _catalog(nwbfile, source: str) -> list[SeriesInfo]:
    from pynwb.base import TimeSeries

    out = []
    for obj in nwbfile.objects.values():
        if not isinstance(obj, TimeSeries):
            continue
        kind = _kind(obj)
        data = obj.data
        shape = tuple(int(s) for s in getattr(data, "shape", ()) or ())
        dtype = str(getattr(data, "dtype", ""))
        info = SeriesInfo(
            name=obj.name,
            path=_series_path(obj, nwbfile),
            neurodata_type=type(obj).__name__,
            kind=kind,
            shape=shape,
            dtype=dtype,
            rate_hz=_rate_of(obj),
            unit=str(read_wavesim_meta(obj).get("units") or obj.unit or ""),
            description=str(obj.description or ""),
        )
        if kind == "imaging":
            try:
                info.dx_mm = _grid_spacing(obj, source)
            except RecordingError:
                info.dx_mm = None
        elif kind == "electrodes":
            info.n_electrodes = len(obj.electrodes.data)
        out.append(info)
    out.sort(key=lambda s: s.path)
    return out


def list_series(path) -> list[SeriesInfo]:
    """The time series an NWB file holds (movies, electrode arrays and others), sorted by path.

    Parameters
    ----------
    path : str or Path
        An NWB 2 (HDF5) file.

    Returns
    -------
    list of SeriesInfo
        ``name``, ``path``, ``neurodata_type``, ``kind`` (``"imaging"``, ``"electrodes"`` or
        None when :func:`wavesim.recordings.load` cannot read it), ``shape``, ``dtype``,
        ``rate_hz``, ``unit``, ``dx_mm``, ``n_electrodes``.
    """
    path = Path(path)
    io, nwbfile = _open(path)
    try:
        return _catalog(nwbfile, path.name)
    finally:
        io.close()


def _choose(catalog: list[SeriesInfo], series: str | None, source: str) -> SeriesInfo:
    usable = [s for s in catalog if s.kind is not None]
    listing = "; ".join(s.describe() for s in catalog) or "no time series at all"
    if series is None:
        if len(usable) == 1:
            return usable[0]
        if not usable:
            raise RecordingError(
                f"{source} holds no movie (ImageSeries, OnePhotonSeries, TwoPhotonSeries) and "
                f"no ElectricalSeries; it holds: {listing}"
            )
        raise RecordingError(
            f"{source} holds {len(usable)} series that wavesim can load; choose one with "
            f"series=NAME (--series NAME): {', '.join(s.path for s in usable)}"
        )
    hits = [s for s in catalog if series in (s.path, s.name) or s.path.endswith("/" + series)]
    if not hits:
        raise RecordingError(
            f"{source} has no series named {series!r}; it holds: "
            + (", ".join(f"{s.path} ({s.neurodata_type})" for s in catalog) or "no series")
        )
    if len(hits) > 1:
        raise RecordingError(
            f"{source}: the series name {series!r} is ambiguous; use its path, one of "
            + ", ".join(s.path for s in hits)
        )
    hit = hits[0]
    if hit.kind is None:
        raise RecordingError(
            f"{source}: series {hit.path!r} is a {hit.neurodata_type}, not a movie "
            "(ImageSeries, OnePhotonSeries, TwoPhotonSeries) or an ElectricalSeries"
        )
    return hit


def _find_object(nwbfile, info: SeriesInfo):
    from pynwb.base import TimeSeries

    for obj in nwbfile.objects.values():
        if isinstance(obj, TimeSeries) and _series_path(obj, nwbfile) == info.path:
            return obj
    raise KeyError(info.path)  # pragma: no cover - the catalog came from the same file


def _file_attrs(nwbfile) -> dict:
    out = {}
    for key in (
        "session_description",
        "identifier",
        "experiment_description",
        "institution",
        "lab",
        "experimenter",
        "related_publications",
        "keywords",
        "session_id",
    ):
        value = getattr(nwbfile, key, None)
        if value is None:
            continue
        if isinstance(value, list | tuple | np.ndarray):
            value = "; ".join(str(v) for v in value)
        value = str(value)
        if value:
            out[f"nwb_{key}"] = value
    if nwbfile.session_start_time is not None:
        out["nwb_session_start_time"] = nwbfile.session_start_time.isoformat()
    trials = nwbfile.trials
    if trials is not None and len(trials) > 0:
        out["trial_start_ms"] = [float(v) * 1000.0 for v in trials["start_time"].data[:]]
        out["trial_stop_ms"] = [float(v) * 1000.0 for v in trials["stop_time"].data[:]]
    return out


def _read_data(series, lazy: bool):
    data = series.data
    if series.fields.get("external_file") is not None and (
        data is None or len(getattr(data, "shape", ())) == 0 or data.shape[0] == 0
    ):
        raise RecordingError(
            f"series {series.name!r} keeps its frames in external files "
            f"({list(series.external_file[:])}); wavesim reads frames stored inside the NWB file "
            "only: load the external files (e.g. TIFF) with wavesim.recordings.load"
        )
    if lazy:
        import dask.array as da

        return da.from_array(data, chunks=("auto",) + tuple(data.shape[1:]))
    return np.asarray(data[()])


def _scale(values, series, lazy: bool):
    conversion = float(getattr(series, "conversion", 1.0) or 1.0)
    offset = float(getattr(series, "offset", 0.0) or 0.0)
    cc = getattr(series, "channel_conversion", None)
    if conversion == 1.0 and offset == 0.0 and cc is None:
        return values
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    ftype = values.dtype.type
    if cc is not None:
        values = values * np.asarray(cc, dtype=values.dtype)[None, :]
    if conversion != 1.0:
        values = values * ftype(conversion)
    if offset != 0.0:
        values = values + ftype(offset)
    return values


def _scratch(nwbfile, series: str, key: str):
    """A wavesim scratch array written by ``to_nwb`` for ``series``, or None."""
    name = f"{SCRATCH_PREFIX}{series}__{key}"
    try:
        entry = nwbfile.scratch.get(name) if nwbfile.scratch else None
    except Exception:  # pragma: no cover - unusual scratch content
        return None
    return None if entry is None else np.asarray(entry.data[()])


def _scratch_attrs(nwbfile) -> dict:
    """The root attributes of the store or recording exported by ``to_nwb``, or {}."""
    entry = nwbfile.scratch.get(f"{SCRATCH_PREFIX}attrs") if nwbfile.scratch else None
    if entry is None:
        return {}
    raw = entry.data[()] if hasattr(entry.data, "shape") else entry.data
    if isinstance(raw, bytes):
        raw = raw.decode()
    try:
        doc = json.loads(str(raw))
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    return {k: v for k, v in doc.items() if k not in _STORE_ONLY}


def load_nwb(
    path,
    *,
    series: str | None = None,
    dx: float | None = None,
    rate: float | None = None,
    dt: float | None = None,
    mask=None,
    dims=None,
    lazy: bool = False,
    auto_mask: bool = True,
):
    """Load one series of an NWB 2 file as a recording Dataset.

    Parameters
    ----------
    path : str or Path
        The NWB file.
    series : str, optional
        Name or path of the series (see :func:`list_series`). Needed when the file holds more
        than one movie or electrode array; an unknown or ambiguous name is an error listing the
        choices.
    dx : float, optional
        Pixel spacing in mm; overrides the file's.
    rate, dt : float, optional
        Sampling rate in Hz or frame interval in ms; override the file's (needed only when the
        file gives neither a rate nor timestamps).
    mask : array-like of bool, optional
        User mask, True = valid site, combined with the automatic one.
    dims : tuple of str, optional
        Axis order of a movie (default ``("time", "y", "x")``).
    lazy : bool, default False
        Return a dask-backed ``field`` that reads frames on demand (the file stays open as long
        as the Dataset lives).
    auto_mask : bool, default True
        Mask sites that are zero or NaN at every time.

    Returns
    -------
    xarray.Dataset
        The recording layout (:mod:`wavesim.recordings.layout`), ``format = "nwb"``.
    """
    path = Path(path)
    source = path.name
    try:
        io, nwbfile = _open(path)
    except _NoRateError as exc:
        if rate is None and dt is None:
            raise
        return _load_without_rate(
            path, exc.series_path, series, dx=dx, rate=rate, dt=dt, mask=mask, dims=dims,
            auto_mask=auto_mask,
        )  # fmt: skip
    try:
        info = _choose(_catalog(nwbfile, source), series, source)
        obj = _find_object(nwbfile, info)
        meta = read_wavesim_meta(obj)
        values = _scale(_read_data(obj, lazy), obj, lazy)
        time = _scratch(nwbfile, obj.name, "time")
        t0, file_dt = 0.0, None
        if time is None and obj.rate is not None:
            t0 = float(obj.starting_time or 0.0) * 1000.0
            file_dt = 1000.0 / float(obj.rate)
        elif time is None and obj.timestamps is not None:
            time = np.asarray(obj.timestamps[()], dtype=np.float64) * 1000.0
        if rate is not None or dt is not None:
            t0 = float(time[0]) if time is not None else t0
            time = None
            file_dt = float(dt) if dt is not None else 1000.0 / float(rate)
        attrs = _file_attrs(nwbfile)
        attrs.update({k: v for k, v in _scratch_attrs(nwbfile).items() if k not in attrs})
        attrs["nwb_neurodata_type"] = info.neurodata_type
        attrs["nwb_series_path"] = info.path
        if obj.description and obj.description != "no description":
            attrs["description"] = str(obj.description)
        units = str(meta.get("units") or obj.unit or "1")
        long_name = meta.get("long_name")
        file_mask = _scratch(nwbfile, obj.name, "mask")
        if file_mask is not None:
            file_mask = file_mask.astype(bool)
            mask = file_mask if mask is None else np.asarray(mask, dtype=bool) & file_mask
        if info.kind == "imaging":
            file_dx = _grid_spacing(obj, source)
            use_dx = float(dx) if dx is not None else file_dx
            if use_dx is not None:
                attrs["dx_source"] = "user" if dx is not None else "file"
            if values.ndim != 3:
                raise RecordingError(
                    f"{source}: series {info.path!r} has shape {tuple(values.shape)}; wavesim "
                    "reads 2-D movies (time, y, x); a volume (time, x, y, z) must be reduced "
                    "to one plane first"
                )
            exact = dx is None and meta.get("spacing_units") == ("mm" if use_dx else "px")
            ds = as_recording(
                values,
                dt=file_dt,
                time=time,
                t0=t0,
                dx=use_dx,
                dims=tuple(dims) if dims is not None else IMAGING_DIMS,
                mask=mask,
                auto_mask=auto_mask,
                x=_scratch(nwbfile, obj.name, "x") if exact else None,
                y=_scratch(nwbfile, obj.name, "y") if exact else None,
                units=units,
                long_name=long_name,
                source=source,
                format="nwb",
                series=info.name,
                attrs=attrs,
            )
        else:
            x, y, channel, pos_attrs = _electrode_positions(nwbfile, obj, meta, source)
            attrs.update(pos_attrs)
            ds = as_recording(
                values,
                dt=file_dt,
                time=time,
                t0=t0,
                dims=tuple(dims) if dims is not None else ("time", "channel"),
                mask=mask,
                auto_mask=auto_mask,
                x=x,
                y=y,
                channel=channel,
                position_units=pos_attrs.get("position_units", "mm"),
                units=units,
                long_name=long_name,
                source=source,
                format="nwb",
                series=info.name,
                attrs=attrs,
            )
    except BaseException:
        io.close()
        raise
    if lazy:
        ds.attrs["lazy"] = 1
        ds.set_close(io.close)
    else:
        io.close()
    return ds


def _electrode_positions(nwbfile, series, meta: dict, source: str):
    """``(x, y, channel ids, attrs)`` of the electrodes of ``series`` (mm unless the wavesim
    metadata says px)."""
    region = series.electrodes
    rows = np.asarray(region.data[()], dtype=np.int64).reshape(-1)
    table = region.table
    cols = set(table.colnames)
    sx = _scratch(nwbfile, series.name, "x")
    sy = _scratch(nwbfile, series.name, "y")
    units = "mm"
    if sx is not None and sy is not None:
        x, y = sx.astype(np.float64), sy.astype(np.float64)
        src = "wavesim metadata"
        units = str(meta.get("spacing_units") or "mm")
    elif {"rel_x", "rel_y"} <= cols:
        x = np.asarray(table["rel_x"].data[()], dtype=np.float64)[rows] * 1e-3
        y = np.asarray(table["rel_y"].data[()], dtype=np.float64)[rows] * 1e-3
        src = "electrodes table rel_x, rel_y (um)"
    elif {"x", "y"} <= cols:
        x = np.asarray(table["x"].data[()], dtype=np.float64)[rows] * 1e-3
        y = np.asarray(table["y"].data[()], dtype=np.float64)[rows] * 1e-3
        src = "electrodes table x, y (um)"
    else:
        raise RecordingError(
            f"{source}: series {series.name!r}: the electrodes table has no positions (columns "
            f"{sorted(cols)}; expected rel_x/rel_y or x/y in micrometres); add them to the file "
            "or build the recording with wavesim.recordings.as_recording(data, x=..., y=...)"
        )
    channel = _scratch(nwbfile, series.name, "channel")
    if channel is None:
        channel = np.asarray(table.id.data[()])[rows]
    return x, y, channel, {"position_source": src, "position_units": units}
