"""Loaders for plain formats: zarr / NetCDF (xarray), ``.npy`` / ``.npz``, MATLAB ``.mat``
(v5 through scipy, v7.3 through h5py) and multi-page TIFF (tifffile).

Each returns the recording layout of :func:`wavesim.recordings.as_recording`. Metadata the files
can carry is used when present:

* ``.npz`` and ``.mat``: arrays or scalars named ``rate`` / ``fs`` / ``rate_hz`` (Hz), ``dt``
  (ms), ``dx`` (mm), ``mask`` (True = valid), ``time`` (ms), ``x`` / ``y`` (electrode positions,
  mm), ``channel``; every other numeric array is a candidate for the data (``series=`` picks
  one);
* TIFF: ImageJ ``finterval`` (s) or ``fps``, and the resolution tags with the ImageJ ``unit``;
* zarr / NetCDF: the ``time``, ``y``, ``x`` coordinates with their ``units`` attributes, root
  attributes ``dt`` (ms) and ``dx`` (mm); wavesim simulation stores and saved recordings are
  recognised.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from wavesim.recordings.layout import (
    ARRAY_DIMS,
    IMAGING_DIMS,
    RecordingError,
    as_recording,
)

__all__ = ["load_array_file", "load_mat", "load_tiff", "load_xarray"]

_META_KEYS = {
    "rate": "rate",
    "fs": "rate",
    "rate_hz": "rate",
    "dt": "dt",
    "dx": "dx",
    "mask": "mask",
    "time": "time",
    "x": "x",
    "y": "y",
    "channel": "channel",
}

#: Root attributes of a zarr/NetCDF file that the recording layout sets itself.
_NOT_KEPT = frozenset(
    {"dt", "dx", "rate_hz", "source", "format", "series", "spacing_units", "wavesim_recording",
     "wavesim_store", "wavesim_version", "complete", "steps_done", "block", "members",
     "recorders"}
)  # fmt: skip
_TIME_TO_MS = {"ms": 1.0, "millisecond": 1.0, "milliseconds": 1.0, "s": 1e3, "sec": 1e3}
_TIME_TO_MS.update({"second": 1e3, "seconds": 1e3, "us": 1e-3, "microseconds": 1e-3})
_SPACE_TO_MM = {"mm": 1.0, "millimeter": 1.0, "millimeters": 1.0, "um": 1e-3, "µm": 1e-3}
_SPACE_TO_MM.update({"micron": 1e-3, "microns": 1e-3, "micrometer": 1e-3, "micrometers": 1e-3})
_SPACE_TO_MM.update({"m": 1e3, "meter": 1e3, "meters": 1e3, "cm": 10.0})


def _merge(user, file_value, what: str):
    """The user's value wins over the file's."""
    return user if user is not None else file_value


def _scalar(value, key: str, source: str) -> float:
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "biuf":
        raise RecordingError(f"{source}: {key!r} must be a single number, got shape {arr.shape}")
    return float(arr.reshape(-1)[0])


def _split_arrays(arrays: dict, source: str):
    """``(data candidates, metadata)`` of a mapping name -> array."""
    data, meta = {}, {}
    for key, value in arrays.items():
        canon = _META_KEYS.get(key.lower())
        if canon is not None:
            if canon in ("rate", "dt", "dx"):
                meta[canon] = _scalar(value, key, source)
            else:
                meta[canon] = np.asarray(value)
            continue
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf" and arr.ndim >= 2:
            data[key] = arr
    return data, meta


def _pick(data: dict, series: str | None, source: str, what: str = "array"):
    if series is not None:
        if series not in data:
            raise RecordingError(
                f"{source} has no {what} named {series!r}; it holds: "
                + (", ".join(f"{k} {tuple(v.shape)}" for k, v in data.items()) or "none")
            )
        return series, data[series]
    if len(data) == 1:
        return next(iter(data.items()))
    if not data:
        raise RecordingError(
            f"{source} holds no numeric array with 2 or 3 dimensions (a movie (time, y, x) or an "
            "electrode array (time, channel))"
        )
    raise RecordingError(
        f"{source} holds {len(data)} arrays; choose one with series=NAME (--series NAME): "
        + ", ".join(f"{k} {tuple(v.shape)}" for k, v in data.items())
    )


def _default_dims(ndim: int, dims, source: str):
    if dims is not None:
        return tuple(dims)
    if ndim == 3:
        return IMAGING_DIMS
    if ndim == 2:
        return ARRAY_DIMS
    raise RecordingError(
        f"{source}: the data has {ndim} dimension(s); expected a 3-D movie (time, y, x) or a "
        "2-D electrode array (time, channel)"
    )


def _from_arrays(arrays: dict, *, source, fmt, series, dims, rate, dt, dx, mask, **kw):
    data, meta = _split_arrays(arrays, source)
    name, values = _pick(data, series, source)
    file_dt = meta.get("dt")
    if file_dt is None and meta.get("rate") is not None:
        file_dt = 1000.0 / meta["rate"]
    user_dt = dt if dt is not None else (1000.0 / rate if rate is not None else None)
    use_mask = mask if mask is not None else meta.get("mask")
    return as_recording(
        values,
        dt=_merge(user_dt, file_dt, "dt"),
        dx=_merge(dx, meta.get("dx"), "dx"),
        dims=_default_dims(values.ndim, dims, source),
        mask=use_mask,
        time=meta.get("time") if user_dt is None else None,
        x=meta.get("x"),
        y=meta.get("y"),
        channel=meta.get("channel"),
        source=source,
        format=fmt,
        series=name,
        **kw,
    )


def load_array_file(path, *, series=None, dims=None, rate=None, dt=None, dx=None, mask=None, **kw):
    """Load a ``.npy`` array or one array of a ``.npz`` archive (see the module docstring).

    A ``.npy`` file holds no rate: pass ``rate=`` (Hz) or ``dt=`` (ms). ``dims`` gives the axis
    order (default ``("time", "y", "x")`` for 3-D, ``("time", "channel")`` for 2-D).
    """
    path = Path(path)
    source = path.name
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            fmt = "npz"
        else:
            arrays = {path.stem: np.load(path, allow_pickle=False, mmap_mode="r")}
            fmt = "npy"
    except (ValueError, OSError, EOFError) as exc:
        raise RecordingError(f"{source}: cannot read it as {path.suffix} ({exc})") from exc
    if fmt == "npy":
        values = arrays[path.stem]
        if values.dtype.kind not in "biuf":
            raise RecordingError(f"{source}: dtype {values.dtype} is not numeric")
        return as_recording(
            np.asarray(values),
            dt=dt if dt is not None else None,
            rate=rate,
            dx=dx,
            dims=_default_dims(values.ndim, dims, source),
            mask=mask,
            source=source,
            format=fmt,
            series=path.stem,
            **kw,
        )
    return _from_arrays(
        arrays, source=source, fmt=fmt, series=series, dims=dims, rate=rate, dt=dt, dx=dx,
        mask=mask, **kw,
    )  # fmt: skip


def load_mat(path, *, series=None, dims=None, rate=None, dt=None, dx=None, mask=None, **kw):
    """Load one variable of a MATLAB file: v4-v7 through :func:`scipy.io.loadmat`, v7.3 (HDF5)
    through h5py, whose arrays are transposed back to MATLAB's axis order."""
    path = Path(path)
    source = path.name
    import h5py

    if h5py.is_hdf5(path):
        arrays = {}
        with h5py.File(path, "r") as f:
            for key, obj in f.items():
                if key.startswith("#") or not isinstance(obj, h5py.Dataset):
                    continue
                if obj.dtype.kind not in "biuf":
                    continue
                # MATLAB writes column-major: h5py sees the axes reversed.
                arrays[key] = np.asarray(obj[()]).T
        fmt = "mat v7.3"
    else:
        from scipy.io import loadmat

        try:
            raw = loadmat(path, squeeze_me=False)
        except Exception as exc:
            raise RecordingError(f"{source}: cannot read it as a MATLAB file ({exc})") from exc
        arrays = {k: v for k, v in raw.items() if not k.startswith("__")}
        arrays = {k: v for k, v in arrays.items() if np.asarray(v).dtype.kind in "biuf"}
        fmt = "mat v5"
    return _from_arrays(
        arrays, source=source, fmt=fmt, series=series, dims=dims, rate=rate, dt=dt, dx=dx,
        mask=mask, **kw,
    )  # fmt: skip


def load_tiff(path, *, dims=None, rate=None, dt=None, dx=None, mask=None, series=None, **kw):
    """Load a multi-page TIFF stack (one page per frame) with tifffile.

    The frame interval comes from ImageJ metadata (``finterval`` in s, or ``fps``) and the pixel
    spacing from the resolution tags with the ImageJ ``unit`` (um, mm, ...) when present.
    """
    import tifffile

    path = Path(path)
    source = path.name
    try:
        with tifffile.TiffFile(path) as tif:
            values = tif.asarray()
            ij = tif.imagej_metadata or {}
            page = tif.pages[0]
            xres = page.tags.get("XResolution")
            xres = xres.value if xres is not None else None
    except Exception as exc:
        raise RecordingError(f"{source}: cannot read it as a TIFF stack ({exc})") from exc
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3:
        raise RecordingError(
            f"{source}: the stack has shape {values.shape}; wavesim reads one grey-level page per "
            "frame (time, y, x); split channels or z-planes first"
        )
    file_dt = None
    if ij.get("finterval"):
        file_dt = float(ij["finterval"]) * 1000.0
    elif ij.get("fps"):
        file_dt = 1000.0 / float(ij["fps"])
    file_dx = None
    unit = str(ij.get("unit", "")).strip().lower().replace("\\u00b5", "µ")
    if xres is not None and unit in _SPACE_TO_MM:
        num, den = xres if isinstance(xres, tuple) else (xres, 1)
        if num > 0 and den > 0:
            file_dx = (den / num) * _SPACE_TO_MM[unit]  # resolution is pixels per unit
    user_dt = dt if dt is not None else (1000.0 / rate if rate is not None else None)
    return as_recording(
        values,
        dt=_merge(user_dt, file_dt, "dt"),
        dx=_merge(dx, file_dx, "dx"),
        dims=tuple(dims) if dims is not None else IMAGING_DIMS,
        mask=mask,
        source=source,
        format="tiff",
        series=path.stem,
        **kw,
    )


def _time_ms(coord: xr.DataArray, source: str) -> np.ndarray | None:
    values = coord.values
    if np.issubdtype(values.dtype, np.datetime64):
        return (values - values[0]).astype("timedelta64[ns]").astype(np.float64) * 1e-6
    if np.issubdtype(values.dtype, np.timedelta64):
        return values.astype("timedelta64[ns]").astype(np.float64) * 1e-6
    unit = str(coord.attrs.get("units", "")).strip().lower()
    if unit in _TIME_TO_MS:
        return values.astype(np.float64) * _TIME_TO_MS[unit]
    return None


def _space_mm(coord: xr.DataArray) -> tuple[np.ndarray, str] | None:
    unit = str(coord.attrs.get("units", "")).strip().lower()
    if unit in _SPACE_TO_MM:
        return coord.values.astype(np.float64) * _SPACE_TO_MM[unit], "mm"
    if unit in ("px", "pixel", "pixels"):
        return coord.values.astype(np.float64), "px"
    return None


def _open_xarray(path: Path, source: str) -> xr.Dataset:
    is_zarr = path.is_dir() or path.suffix.lower() == ".zarr"
    try:
        if is_zarr:
            with warnings.catch_warnings():  # stores without consolidated metadata open too
                warnings.simplefilter("ignore", RuntimeWarning)
                return xr.open_zarr(str(path), chunks=None)
        return xr.open_dataset(path)
    except Exception as exc:
        hint = ""
        if not is_zarr:
            hint = " (NetCDF-4 files need h5netcdf or netCDF4: pip install h5netcdf)"
        raise RecordingError(
            f"{source}: cannot open it as {'zarr' if is_zarr else 'NetCDF'} with xarray "
            f"({type(exc).__name__}: {exc}){hint}"
        ) from exc


def load_xarray(
    path, *, series=None, dims=None, rate=None, dt=None, dx=None, mask=None, member=None, **kw
):
    """Load a zarr store or a NetCDF file through xarray.

    A wavesim simulation store gives its ``field`` (``member=`` picks one member of a batched
    store) with its mask; a recording saved by :func:`wavesim.recordings.save_recording` comes
    back as saved. Any other Dataset: ``series=`` names the variable (needed when there are
    several), ``dims=`` names its axes in order when they are not called ``time``, ``y``, ``x``
    (or ``time``, ``channel``). The time coordinate is used when its ``units`` say ms or s
    (or it is a datetime); the spacing comes from ``x``/``y`` coordinates in a length unit or a
    root attribute ``dx`` (mm).
    """
    path = Path(path)
    source = path.name
    if not path.exists():
        raise FileNotFoundError(f"no zarr store or NetCDF file at {path}")
    ds = _open_xarray(path, source)
    attrs = dict(ds.attrs)
    if "wavesim_store" in attrs and "member" in ds.dims:
        if member is None:
            raise RecordingError(
                f"{source} is a batched simulation store with {ds.sizes['member']} members; "
                "choose one with member=M (--member M)"
            )
        ds = ds.isel(member=int(member))
    candidates = {
        k: v
        for k, v in ds.data_vars.items()
        if v.ndim >= 2 and v.dtype.kind in "biuf" and k not in ("mask", "orientation")
    }
    if series is None and "field" in candidates:
        series = "field"
    name, var = _pick(candidates, series, source, what="variable")
    if dims is None and var.ndim == 2 and var.dims[1] == "electrode":
        # a simulation store's electrode recorder: (time_electrodes, electrode) with positions
        # electrode_x, electrode_y -> (time, channel) with x, y
        var = var.rename({var.dims[0]: "time", "electrode": "channel"})
        for c in ("x", "y"):
            if f"electrode_{c}" in var.coords:
                var = var.assign_coords({c: var.coords[f"electrode_{c}"]})
    if dims is not None:
        dims = tuple(dims)
        if len(dims) != var.ndim:
            raise RecordingError(
                f"{source}: variable {name!r} has {var.ndim} dims {var.dims}; dims={dims} names "
                f"{len(dims)}"
            )
        var = var.rename(dict(zip(var.dims, dims, strict=True)))
    if set(var.dims) not in (set(IMAGING_DIMS), set(ARRAY_DIMS)):
        raise RecordingError(
            f"{source}: variable {name!r} has dims {var.dims}; expected (time, y, x) or "
            "(time, channel): pass dims= with the meaning of its axes in order, e.g. "
            "dims=('time', 'y', 'x')"
        )
    imaging = "channel" not in var.dims
    canonical = IMAGING_DIMS if imaging else ARRAY_DIMS
    var = var.transpose(*canonical)

    user_dt = dt if dt is not None else (1000.0 / rate if rate is not None else None)
    time = None
    if user_dt is None and "time" in var.coords:
        time = _time_ms(var["time"], source)
        if time is None:
            if attrs.get("dt") is None:
                raise RecordingError(
                    f"{source}: the time coordinate has no units attribute ('ms' or 's'); set "
                    "it, or pass rate=<Hz> or dt=<ms>"
                )
    # A root ``dt`` is the frame interval of a saved recording or of a plain file without a time
    # coordinate; a simulation store's ``dt`` is its integration step (frames are further apart).
    file_dt = None
    if _finite(attrs.get("dt")) and (time is None or "wavesim_recording" in attrs):
        file_dt = float(attrs["dt"])

    use_dx = dx
    coords_xy = {}
    if imaging:
        if use_dx is None:
            for c in ("x", "y"):
                if c in var.coords:
                    got = _space_mm(var[c])
                    if got is not None and got[1] == "mm":
                        coords_xy[c] = got[0]
            if "x" in coords_xy and var.sizes["x"] > 1:
                use_dx = float(np.median(np.diff(coords_xy["x"])))
            elif attrs.get("dx") is not None and _finite(attrs["dx"]):
                use_dx = float(attrs["dx"])
            if use_dx is None or use_dx <= 0:
                use_dx, coords_xy = None, {}
            if use_dx is not None and "y" in coords_xy and var.sizes["y"] > 1:
                dy = float(np.median(np.diff(coords_xy["y"])))
                if not math.isclose(dy, use_dx, rel_tol=1e-6):
                    raise RecordingError(
                        f"{source}: the spacing along x ({use_dx:g} mm) and y ({dy:g} mm) "
                        "differ; wavesim's analyzers need square pixels (pass dx= to override)"
                    )
        pos = {}
    else:
        pos = {}
        units = "mm"
        for c in ("x", "y"):
            if c not in var.coords:
                continue
            got = _space_mm(var[c])
            if got is None:
                raise RecordingError(
                    f"{source}: electrode coordinate {c!r} has no length units (attrs units "
                    "'mm', 'um' or 'px')"
                )
            pos[c], units = got
        kw.setdefault("position_units", units)

    file_mask = None
    if "mask" in ds.data_vars:
        m = ds["mask"]
        if set(m.dims) == set(var.dims[1:]):
            file_mask = m.transpose(*var.dims[1:]).values.astype(bool)
    if mask is not None and file_mask is not None:
        from wavesim.recordings.layout import _user_mask

        mask = _user_mask(mask, file_mask.shape, var.dims[1:], source) & file_mask
    elif file_mask is not None:
        mask = file_mask

    keep = {k: v for k, v in attrs.items() if k not in _NOT_KEPT and v != ""}
    field_attrs = var.attrs
    fmt = "zarr" if (path.is_dir() or path.suffix.lower() == ".zarr") else "netcdf"
    if "wavesim_recording" in attrs:  # saved by save_recording: give it back as it was
        fmt = attrs.get("format", fmt)
        source = attrs.get("source") or source
    elif "wavesim_store" in attrs:
        fmt += " (wavesim store)"
    out = as_recording(
        var.data,
        dt=user_dt if user_dt is not None else file_dt,
        time=time if user_dt is None else None,
        dx=use_dx,
        dims=canonical,
        mask=mask,
        x=coords_xy.get("x", pos.get("x")),
        y=coords_xy.get("y", pos.get("y")),
        channel=var["channel"].values if "channel" in var.coords else None,
        units=str(field_attrs.get("units", "1")),
        long_name=field_attrs.get("long_name"),
        source=source,
        format=fmt,
        series=attrs.get("series", name) if "wavesim_recording" in attrs else name,
        attrs=keep,
        **kw,
    )
    ds.close()
    return out


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
