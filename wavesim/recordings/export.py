"""Export: simulation stores and recordings to NWB 2, recordings to wavesim zarr stores.

:func:`to_nwb` writes every movie of a store or recording (variables on ``(time, y, x)``, e.g.
``field`` and ``field_dot``) as an ``ImageSeries`` (or ``OnePhotonSeries`` with an imaging plane
that carries the grid spacing) and every electrode recording (``(time, electrode)`` or
``(time, channel)``) as an ``ElectricalSeries`` whose electrodes table holds the positions
(``x``, ``y`` and ``rel_x``, ``rel_y`` in micrometres, as the NWB schema asks). The rate (Hz),
starting time (s) and units are standard NWB fields, so any NWB reader sees them. For an exact
round trip the series also carry wavesim metadata: a small JSON document in ``comments`` (spacing
in mm, long name) and float64 arrays in the file's scratch space (``wavesim__<series>__time`` in
ms, ``__x``, ``__y`` in mm, ``__mask``) -- :func:`wavesim.recordings.load` uses them, so a
simulation exported and loaded back is identical in values, coordinates and units.

:func:`save_recording` writes a recording as a wavesim zarr v3 store that
:func:`wavesim.open_store` (and :func:`wavesim.recordings.load`) open.
"""

from __future__ import annotations

import json
import math
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr

from wavesim.recordings.layout import RecordingError
from wavesim.recordings.nwb import META_KEY, SCRATCH_PREFIX

__all__ = ["save_recording", "to_nwb"]


def _open_input(data) -> tuple[xr.Dataset, str]:
    if isinstance(data, xr.Dataset):
        return data, str(data.attrs.get("source") or "dataset")
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"no store or recording at {path}")
    from wavesim.store import open_store

    try:
        return open_store(path, warn_partial=False), path.name
    except ValueError:
        from wavesim.recordings.loaders import load

        return load(path), path.name


def _movies(ds: xr.Dataset) -> list[str]:
    out = []
    for name, var in ds.data_vars.items():
        dims = tuple(var.dims)
        core = dims[1:] if dims and dims[0] == "member" else dims
        if (
            len(core) == 3
            and core[0].startswith("time")
            and core[1].startswith("y")
            and core[2].startswith("x")
        ):
            out.append(name)
    return out


def _arrays(ds: xr.Dataset) -> list[str]:
    out = []
    for name, var in ds.data_vars.items():
        dims = tuple(var.dims)
        core = dims[1:] if dims and dims[0] == "member" else dims
        if len(core) == 2 and core[0].startswith("time") and core[1] in ("electrode", "channel"):
            out.append(name)
    return out


def _positions(ds: xr.Dataset, var: xr.DataArray):
    ch = var.dims[-1]
    if ch == "channel":
        x, y = ds["x"], ds["y"]
    else:
        x = ds.get("electrode_x", ds.get(f"{ch}_x"))
        y = ds.get("electrode_y", ds.get(f"{ch}_y"))
        if x is None or y is None:
            raise RecordingError(
                f"variable {var.name!r} has no electrode positions (coordinates electrode_x, "
                "electrode_y)"
            )
    units = str(x.attrs.get("units", "mm"))
    return (
        np.asarray(x.values, dtype=np.float64),
        np.asarray(y.values, dtype=np.float64),
        np.asarray(ds[ch].values) if ch in ds.coords else np.arange(var.sizes[ch]),
        units,
    )


def _rate_and_start(t_ms: np.ndarray, name: str) -> tuple[float, float]:
    if t_ms.size >= 2:
        d = np.diff(t_ms)
        step = float(np.median(d))
        if not np.allclose(d, step, rtol=1e-6, atol=0):
            raise RecordingError(
                f"variable {name!r} is not uniformly sampled in time (steps {d.min():g} to "
                f"{d.max():g} ms); NWB series are written with a rate"
            )
    else:
        step = 1.0
    return 1000.0 / step, float(t_ms[0]) / 1000.0


def _meta(dx, long_name, units_xy, **extra) -> str:
    doc = {META_KEY: {"dx": dx, "long_name": long_name, "spacing_units": units_xy, **extra}}
    return json.dumps(doc)


def to_nwb(
    data,
    path,
    *,
    member: int | None = None,
    variables=None,
    imaging: str = "ImageSeries",
    session_description: str | None = None,
    identifier: str | None = None,
    session_start_time: datetime | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a simulation store or a recording to an NWB 2 file.

    Parameters
    ----------
    data : str, Path or xarray.Dataset
        A wavesim store (path or :func:`wavesim.open_store` Dataset) or a recording
        (:func:`wavesim.recordings.load`).
    path : str or Path
        The ``.nwb`` file to write.
    member : int, optional
        For a batched store: write only this member (default: every member, as series
        ``<variable>_member<b>``).
    variables : list of str, optional
        Variables to write (default: every movie ``(time, y, x)`` and electrode recording).
    imaging : {"ImageSeries", "OnePhotonSeries"}
        Neurodata type of movies. ``OnePhotonSeries`` adds a device, an optical channel and an
        imaging plane whose ``grid_spacing`` holds the pixel spacing.
    session_description, identifier, session_start_time
        NWB file fields (defaults: a description naming the source, a random UUID, now in UTC).
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ecephys import ElectricalSeries
    from pynwb.image import ImageSeries
    from pynwb.ophys import OnePhotonSeries, OpticalChannel

    if imaging not in ("ImageSeries", "OnePhotonSeries"):
        raise ValueError(f"imaging must be 'ImageSeries' or 'OnePhotonSeries', got {imaging!r}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    ds, source = _open_input(data)
    movies, arrays = _movies(ds), _arrays(ds)
    if variables is not None:
        unknown = [v for v in variables if v not in movies + arrays]
        if unknown:
            raise RecordingError(
                f"{source}: cannot export {unknown}; exportable variables: {movies + arrays}"
            )
        movies = [v for v in movies if v in variables]
        arrays = [v for v in arrays if v in variables]
    if not movies and not arrays:
        raise RecordingError(
            f"{source} holds no movie (time, y, x) or electrode recording (time, electrode) to "
            f"export; variables: {list(ds.data_vars)}"
        )
    batched = "member" in ds.dims
    if member is not None:
        if not batched:
            if member != 0:
                raise RecordingError(f"member={member}: {source} is not a batched store")
        elif not 0 <= member < ds.sizes["member"]:
            raise RecordingError(f"member={member} is out of range 0..{ds.sizes['member'] - 1}")
    members = (
        [member]
        if (batched and member is not None)
        else (list(range(ds.sizes["member"])) if batched else [None])
    )

    attrs = dict(ds.attrs)
    desc = session_description or (
        f"wavesim export of {source}"
        + (" (simulation store)" if "wavesim_store" in attrs else " (recording)")
    )
    nwbfile = NWBFile(
        session_description=desc,
        identifier=identifier or str(uuid.uuid4()),
        session_start_time=session_start_time or datetime.now(UTC),
        source_script="wavesim.recordings.to_nwb",
        source_script_file_name="wavesim/recordings/export.py",
    )
    root = {k: v for k, v in attrs.items() if k not in ("complete", "steps_done", "block")}
    from wavesim.store import _json_safe

    nwbfile.add_scratch(
        json.dumps({k: _json_safe(v, k) for k, v in root.items()}),
        name=f"{SCRATCH_PREFIX}attrs",
        description="root attributes of the wavesim store or recording (JSON)",
    )

    def scratch(series: str, key: str, values, what: str):
        nwbfile.add_scratch(
            np.asarray(values),
            name=f"{SCRATCH_PREFIX}{series}__{key}",
            description=f"wavesim: exact {what} of series {series}",
        )

    device = None
    plane = None
    for name in movies:
        var = ds[name]
        tdim, ydim, xdim = var.dims[-3:]
        t = np.asarray(ds[tdim].values, dtype=np.float64)
        xs = np.asarray(ds[xdim].values, dtype=np.float64)
        ys = np.asarray(ds[ydim].values, dtype=np.float64)
        xy_units = str(ds[xdim].attrs.get("units", "mm"))
        if xy_units == "mm":
            dx = float(np.median(np.diff(xs))) if xs.size > 1 else float(attrs.get("dx", 1.0))
        else:
            dx = None
        rate, start = _rate_and_start(t, name)
        units = str(var.attrs.get("units", "1")) or "1"
        mask = None
        if "mask" in ds.data_vars and tuple(ds["mask"].dims[-2:]) == (ydim, xdim):
            mask = ds["mask"]
        for b in members:
            v = var.isel(member=b) if b is not None else var
            sname = name if b is None else f"{name}_member{b}"
            kw = dict(
                name=sname,
                data=np.asarray(v.transpose(tdim, ydim, xdim).values),
                unit=units,
                rate=rate,
                starting_time=start,
                description=(
                    f"wavesim variable {name!r}"
                    + (f", member {b}" if b is not None else "")
                    + "; frames indexed (time, y, x) = (time, row, column); pixel spacing "
                    + (f"{dx:g} mm" if dx is not None else "unknown (pixel units)")
                ),
                comments=_meta(dx, var.attrs.get("long_name"), xy_units),
            )
            if imaging == "OnePhotonSeries":
                if device is None:
                    device = nwbfile.create_device(name="wavesim", description="simulated lattice")
                    channel = OpticalChannel(
                        name="lattice", description="simulated field", emission_lambda=float("nan")
                    )
                    plane = nwbfile.create_imaging_plane(
                        name="lattice",
                        optical_channel=channel,
                        description="the simulated lattice",
                        device=device,
                        excitation_lambda=float("nan"),
                        indicator="none (simulation)",
                        location="simulated cortex",
                        grid_spacing=[dx / 1000.0, dx / 1000.0] if dx else None,
                        grid_spacing_unit="meters",
                    )
                series = OnePhotonSeries(imaging_plane=plane, **kw)
            else:
                series = ImageSeries(**kw)
            nwbfile.add_acquisition(series)
            scratch(sname, "time", t, "time (ms)")
            scratch(sname, "x", xs, f"x coordinate ({xy_units})")
            scratch(sname, "y", ys, f"y coordinate ({xy_units})")
            if mask is not None:
                m = mask.isel(member=b) if (b is not None and "member" in mask.dims) else mask
                scratch(sname, "mask", np.asarray(m.values) != 0, "mask (True = valid)")

    for name in arrays:
        var = ds[name]
        tdim, cdim = var.dims[-2:]
        t = np.asarray(ds[tdim].values, dtype=np.float64)
        x, y, channel, xy_units = _positions(ds, var)
        to_um = 1000.0 if xy_units == "mm" else 1.0
        rate, start = _rate_and_start(t, name)
        group_device = nwbfile.create_device(
            name=f"{name}_array", description=f"electrodes of wavesim variable {name!r}"
        )
        group = nwbfile.create_electrode_group(
            name=f"{name}_group",
            description=f"electrode positions in {'um' if to_um == 1000 else 'px'}",
            location="simulated cortex" if "wavesim_store" in attrs else "recording",
            device=group_device,
        )
        first = len(nwbfile.electrodes) if nwbfile.electrodes is not None else 0
        for k in range(x.size):
            nwbfile.add_electrode(
                x=float(x[k] * to_um),
                y=float(y[k] * to_um),
                z=0.0,
                rel_x=float(x[k] * to_um),
                rel_y=float(y[k] * to_um),
                location="simulated cortex" if "wavesim_store" in attrs else "recording",
                group=group,
            )
        region = nwbfile.create_electrode_table_region(
            list(range(first, first + x.size)), f"electrodes of {name}"
        )
        units = str(var.attrs.get("units", "1")) or "1"
        for b in members:
            v = var.isel(member=b) if b is not None else var
            sname = name if b is None else f"{name}_member{b}"
            series = ElectricalSeries(
                name=sname,
                data=np.asarray(v.transpose(tdim, cdim).values),
                electrodes=region,
                rate=rate,
                starting_time=start,
                description=f"wavesim variable {name!r}; data (time, channel); unit {units}",
                # ElectricalSeries fixes its unit to volts: the real one goes in the metadata
                comments=_meta(None, var.attrs.get("long_name"), xy_units, units=units),
            )
            nwbfile.add_acquisition(series)
            scratch(sname, "time", t, "time (ms)")
            scratch(sname, "x", x, f"electrode x ({xy_units})")
            scratch(sname, "y", y, f"electrode y ({xy_units})")
            scratch(sname, "channel", channel, "channel ids")
            if "mask" in ds.data_vars and ds["mask"].dims == (cdim,):
                scratch(sname, "mask", np.asarray(ds["mask"].values) != 0, "mask (True = valid)")

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.nwb")
    try:
        with NWBHDF5IO(str(tmp), mode="w") as io:
            io.write(nwbfile)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_recording(ds: xr.Dataset, path, *, overwrite: bool = False) -> Path:
    """Write a recording as a wavesim zarr v3 store.

    The store opens with :func:`wavesim.open_store` (it carries ``wavesim_store`` and
    ``complete = true`` like a finished simulation) and with :func:`wavesim.recordings.load`,
    which gives the recording back unchanged. ``wavesim analyze`` can add ``analysis/<name>``
    groups to it.

    Parameters
    ----------
    ds : xarray.Dataset
        A recording (:func:`wavesim.recordings.load`).
    path : str or Path
        The new store (a directory).
    overwrite : bool, default False
        Replace an existing zarr store at ``path``.
    """

    from wavesim.recordings.layout import validate_recording
    from wavesim.store import STORE_FORMAT, _json_safe, _version, consolidate, prepare_path

    validate_recording(ds)
    path = Path(path)
    prepare_path(path, overwrite)
    out = ds.copy()
    for var in out.variables.values():
        var.encoding = {}
    attrs = {k: v for k, v in ds.attrs.items() if not (isinstance(v, float) and math.isnan(v))}
    attrs.update(
        {
            "wavesim_store": STORE_FORMAT,
            "wavesim_version": _version(),
            "complete": True,
            "steps_done": int(ds.sizes["time"]),
            "scenario": str(ds.attrs.get("scenario", "")),
        }
    )
    out.attrs = {k: _json_safe(v, k) for k, v in attrs.items()}
    tmp = path.with_name(path.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        out.to_zarr(str(tmp), mode="w-", zarr_format=3, consolidated=False)
        consolidate(tmp)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
