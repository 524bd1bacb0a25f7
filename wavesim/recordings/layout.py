"""The recording layout: one :class:`xarray.Dataset` shape for every loader.

Imaging movies
    ``field`` on ``(time, y, x)``; coordinates ``time`` (ms), ``y``, ``x`` (pixel centres times
    the spacing, in mm; pixel indices in ``px`` when the spacing is unknown); ``mask`` on
    ``(y, x)``, True where the site is valid.
Electrode arrays
    ``field`` on ``(time, channel)``; coordinates ``channel`` (ids or labels), ``x``, ``y`` on
    ``channel`` (mm, or px); ``mask`` on ``(channel,)``.

Root attributes: ``wavesim_recording`` (format version), ``source`` (file name only), ``format``,
``series``, ``rate_hz``, ``dt`` (ms per frame), ``dx`` (mm per pixel; absent when unknown),
``spacing_units`` (``"mm"`` or ``"px"``), plus what the file says about itself (NWB session
description, identifier, ...). The names are those of simulation stores, so the analyzers and
the fitting take recordings unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

__all__ = ["RECORDING_FORMAT", "RecordingError", "as_recording", "validate_recording"]

#: Version of the recording layout, stored in the ``wavesim_recording`` attribute.
RECORDING_FORMAT = 1

IMAGING_DIMS = ("time", "y", "x")
ARRAY_DIMS = ("time", "channel")


class RecordingError(ValueError):
    """A recording (file or array) cannot be read into the wavesim layout; the message names
    the file, the series or the field and what was expected."""


def _where(source) -> str:
    return f"{source}: " if source else ""


def _positive(name: str, value, source) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise RecordingError(
            f"{_where(source)}{name} must be a number > 0, got {value!r}"
        ) from None
    if not math.isfinite(v) or v <= 0:
        raise RecordingError(f"{_where(source)}{name} must be a finite number > 0, got {value!r}")
    return v


def _check_dims(dims, ndim: int, source) -> tuple[str, ...]:
    dims = tuple(str(d) for d in dims)
    allowed = (set(IMAGING_DIMS), set(ARRAY_DIMS))
    if len(set(dims)) != len(dims) or set(dims) not in allowed:
        raise RecordingError(
            f"{_where(source)}dims={dims!r} is not an axis order of (time, y, x) or "
            "(time, channel); e.g. dims=('time', 'y', 'x') for a movie stored frame by frame, "
            "dims=('y', 'x', 'time') for one stored pixel by pixel, dims=('time', 'channel') "
            "for an electrode array"
        )
    if len(dims) != ndim:
        raise RecordingError(
            f"{_where(source)}the data has {ndim} dimension(s) but dims={dims!r} names "
            f"{len(dims)}: expected a 3-D movie (time, y, x) or a 2-D electrode array "
            "(time, channel); pass dims= with the axis order of the data"
        )
    return dims


def _time_coordinate(n: int, *, time, dt, rate, t0, source) -> tuple[np.ndarray, float]:
    """``(time in ms, dt in ms)``."""
    if time is not None:
        t = np.asarray(time, dtype=np.float64).reshape(-1)
        if t.size != n:
            raise RecordingError(
                f"{_where(source)}the time coordinate has {t.size} values for {n} frames"
            )
        if not np.all(np.isfinite(t)) or (n > 1 and np.any(np.diff(t) <= 0)):
            raise RecordingError(
                f"{_where(source)}the time coordinate (ms) must be finite and strictly increasing"
            )
        step = float(np.median(np.diff(t))) if n > 1 else (dt or 0.0)
        if dt is not None and n > 1 and not math.isclose(step, dt, rel_tol=1e-6):
            raise RecordingError(
                f"{_where(source)}dt={dt:g} ms disagrees with the time coordinate "
                f"(median step {step:g} ms)"
            )
        if dt is not None:
            return t, dt  # the file's or the user's exact value
        return t, (step if step > 0 else math.nan)
    if dt is None:
        raise RecordingError(
            f"{_where(source)}the sampling rate is missing: the file does not give it; pass "
            "rate=<frames per second, Hz> or dt=<ms per frame> "
            "(e.g. wavesim.recordings.load(path, rate=1000.0), or --rate HZ on the command line)"
        )
    return float(t0) + np.arange(n, dtype=np.float64) * dt, dt


def _resolve_dt(dt, rate, source) -> float | None:
    dt = _positive("dt", dt, source)
    rate = _positive("rate", rate, source)
    if dt is not None and rate is not None and not math.isclose(dt, 1000.0 / rate, rel_tol=1e-9):
        raise RecordingError(
            f"{_where(source)}dt={dt:g} ms and rate={rate:g} Hz disagree (1000/rate = "
            f"{1000.0 / rate:g} ms); pass one of them"
        )
    if dt is None and rate is not None:
        dt = 1000.0 / rate
    return dt


def _auto_mask(values, axes: tuple[int, ...]) -> np.ndarray:
    """True where a site is not zero-or-NaN at every time (``axes``: the time axis)."""
    if hasattr(values, "compute") or not isinstance(values, np.ndarray):
        import dask.array as da

        arr = values if hasattr(values, "compute") else da.asarray(values)
        bad = ((arr == 0) | da.isnan(arr)).all(axis=axes)
        return ~np.asarray(bad.compute())
    return ~np.all((values == 0) | np.isnan(values), axis=axes)


def _user_mask(mask, shape: tuple[int, ...], dims: tuple[str, ...], source) -> np.ndarray:
    if isinstance(mask, xr.DataArray):
        if set(mask.dims) != set(dims):
            raise RecordingError(
                f"{_where(source)}mask has dims {mask.dims}, expected {dims} (True = valid site)"
            )
        mask = mask.transpose(*dims).values
    m = np.asarray(mask)
    if m.shape != shape:
        raise RecordingError(
            f"{_where(source)}mask has shape {m.shape}, expected {shape} {dims} (True = valid)"
        )
    if m.dtype.kind == "f" and np.isnan(m).any():
        m = np.isfinite(m) & (np.nan_to_num(m) != 0)
    if m.dtype.kind not in "biuf":
        raise RecordingError(f"{_where(source)}mask must be boolean (True = valid site)")
    return m.astype(bool)


def as_recording(
    data,
    *,
    dt: float | None = None,
    rate: float | None = None,
    dx: float | None = None,
    dims: Sequence[str] = IMAGING_DIMS,
    mask=None,
    auto_mask: bool = True,
    time=None,
    t0: float = 0.0,
    x=None,
    y=None,
    channel=None,
    position_units: str = "mm",
    units: str = "1",
    long_name: str | None = None,
    source: str | None = None,
    format: str = "array",
    series: str | None = None,
    attrs: Mapping | None = None,
) -> xr.Dataset:
    """Build a recording Dataset (the wavesim layout) from an array.

    Every loader ends here; call it directly for data you already hold in memory.

    Parameters
    ----------
    data : array-like (numpy, dask, or lazily indexed)
        A movie (3-D) or an electrode array (2-D), in the axis order ``dims``.
    dt, rate : float, optional
        Frame interval in ms, or sampling rate in Hz (one of them, unless ``time`` is given).
        Missing both is an error that says how to pass them.
    dx : float, optional
        Pixel spacing in mm (movies). Without it the ``x``/``y`` coordinates are pixel indices
        with units ``"px"``, and the analyzers report speeds in px/ms.
    dims : sequence of str
        Axis order of ``data``: a permutation of ``("time", "y", "x")`` (default) or of
        ``("time", "channel")``. ``y`` is the row index, ``x`` the column index.
    mask : array-like of bool, optional
        User mask, True = valid site, shaped ``(y, x)`` or ``(channel,)``. It is combined (AND)
        with the automatic mask.
    auto_mask : bool, default True
        Mark sites that are zero or NaN at every time as invalid.
    time : array-like, optional
        Explicit time coordinate in ms (e.g. from timestamps); overrides ``t0``/``dt``.
    t0 : float, default 0
        Time of the first frame in ms.
    x, y : array-like, optional
        Electrode positions (one per channel), in ``position_units``. Required for electrode
        arrays. For movies they may override the pixel-centre coordinates (in mm).
    channel : array-like, optional
        Channel ids or labels (default ``0..n-1``).
    position_units : {"mm", "px"}
        Units of electrode positions.
    units, long_name : str
        Units and description of the recorded values (``field.attrs``).
    source, format, series : str
        Provenance: file name (no directory), loader, series name.
    attrs : mapping, optional
        Further root attributes (descriptions, identifiers, ...).

    Returns
    -------
    xarray.Dataset
        ``field``, ``mask`` and the coordinates described in :mod:`wavesim.recordings.layout`.

    Raises
    ------
    RecordingError
        Wrong dimensionality, missing rate, inconsistent ``dt``/``rate``, a mask of the wrong
        shape, electrode arrays without positions.
    """
    if isinstance(data, xr.DataArray):
        data = data.data
    if not hasattr(data, "shape") or not hasattr(data, "ndim"):
        data = np.asarray(data)
    dims = _check_dims(dims, data.ndim, source)
    dtype = np.dtype(data.dtype)
    if dtype.kind not in "biuf":
        raise RecordingError(
            f"{_where(source)}the data has dtype {dtype}; expected real numbers (int or float)"
        )
    imaging = "channel" not in dims
    canonical = IMAGING_DIMS if imaging else ARRAY_DIMS
    order = [dims.index(d) for d in canonical]
    if order != list(range(len(order))):
        data = data.transpose(order)
    if dtype.kind in "biu":  # analyzers need floats (NaN outside the mask)
        data = data.astype(np.float64 if dtype.itemsize > 2 else np.float32)
    n = int(data.shape[0])
    if n < 1:
        raise RecordingError(f"{_where(source)}the recording has no frames (time axis empty)")

    dt_ms = _resolve_dt(dt, rate, source)
    t, dt_ms = _time_coordinate(n, time=time, dt=dt_ms, rate=rate, t0=t0, source=source)
    dxv = _positive("dx", dx, source)

    coords: dict[str, tuple] = {"time": ("time", t, {"units": "ms", "long_name": "time"})}
    if imaging:
        ny, nx = int(data.shape[1]), int(data.shape[2])
        space_units = "mm" if dxv is not None else "px"
        step = dxv if dxv is not None else 1.0
        for name, size, given in (("y", ny, y), ("x", nx, x)):
            if given is not None:
                values = np.asarray(given, dtype=np.float64).reshape(-1)
                if values.size != size:
                    raise RecordingError(
                        f"{_where(source)}{name} has {values.size} values for {size} pixels"
                    )
            else:
                values = np.arange(size) * step
            long = "y position (row centre)" if name == "y" else "x position (column centre)"
            coords[name] = (name, values, {"units": space_units, "long_name": long})
        site_dims, site_shape, time_axes = ("y", "x"), (ny, nx), (0,)
    else:
        nch = int(data.shape[1])
        if x is None or y is None:
            raise RecordingError(
                f"{_where(source)}electrode positions are missing for {nch} channels: pass "
                "x=..., y=... (one per channel, in mm; position_units='px' for grid indices)"
            )
        if position_units not in ("mm", "px"):
            raise RecordingError(f"position_units must be 'mm' or 'px', got {position_units!r}")
        space_units = position_units
        ch = np.arange(nch) if channel is None else np.asarray(channel).reshape(-1)
        if ch.size != nch:
            raise RecordingError(f"{_where(source)}{ch.size} channel labels for {nch} channels")
        coords["channel"] = ("channel", ch, {"long_name": "channel id"})
        for name, values in (("x", x), ("y", y)):
            v = np.asarray(values, dtype=np.float64).reshape(-1)
            if v.size != nch:
                raise RecordingError(
                    f"{_where(source)}{name} has {v.size} electrode positions for {nch} channels"
                )
            coords[name] = (
                "channel",
                v,
                {"units": space_units, "long_name": f"electrode {name} position"},
            )
        site_dims, site_shape, time_axes = ("channel",), (nch,), (0,)

    valid = np.ones(site_shape, dtype=bool)
    if auto_mask:
        valid &= _auto_mask(data, time_axes)
    if mask is not None:
        valid &= _user_mask(mask, site_shape, site_dims, source)

    root = {
        "wavesim_recording": RECORDING_FORMAT,
        "source": str(source) if source else "",
        "format": format,
        "series": series or "",
        "rate_hz": 1000.0 / dt_ms if dt_ms and math.isfinite(dt_ms) else math.nan,
        "dt": dt_ms,
        "spacing_units": space_units,
    }
    if dxv is not None:
        root["dx"] = dxv
    for k, v in (attrs or {}).items():
        if k not in root and v is not None:
            root[k] = v
    field_attrs = {"units": str(units) if units else "1"}
    if long_name:
        field_attrs["long_name"] = long_name
    ds = xr.Dataset(
        {
            "field": (canonical, data, field_attrs),
            "mask": (
                site_dims,
                valid,
                {"long_name": "valid site (True) or masked out (False)", "units": "1"},
            ),
        },
        coords=coords,
        attrs=root,
    )
    return ds


def validate_recording(ds: xr.Dataset, *, name: str = "recording") -> xr.Dataset:
    """Check that ``ds`` follows the recording layout; return it unchanged.

    Raises :class:`RecordingError` naming what is missing or malformed.
    """
    if not isinstance(ds, xr.Dataset):
        raise RecordingError(f"{name} must be an xarray.Dataset, got {type(ds).__name__}")
    if "field" not in ds.data_vars:
        raise RecordingError(f"{name} has no variable 'field' (variables: {list(ds.data_vars)})")
    dims = ds["field"].dims
    if dims not in (IMAGING_DIMS, ARRAY_DIMS):
        raise RecordingError(
            f"{name}['field'] has dims {dims}; expected {IMAGING_DIMS} or {ARRAY_DIMS}"
        )
    if "time" not in ds.coords or ds["time"].attrs.get("units") != "ms":
        raise RecordingError(f"{name} needs a time coordinate in ms (attrs units='ms')")
    for c in ("x", "y"):
        if c not in ds.coords:
            raise RecordingError(f"{name} has no coordinate {c!r}")
        if ds[c].attrs.get("units") not in ("mm", "px"):
            raise RecordingError(f"{name}[{c!r}] must have units 'mm' or 'px'")
    if "mask" in ds.data_vars and ds["mask"].dims != dims[1:]:
        raise RecordingError(f"{name}['mask'] has dims {ds['mask'].dims}, expected {dims[1:]}")
    return ds
