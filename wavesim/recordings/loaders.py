"""``load``: one entry point for every recording format (dispatch by suffix and content)."""

from __future__ import annotations

from pathlib import Path

from wavesim.recordings.layout import RecordingError

__all__ = ["FORMATS", "describe_file", "load"]

#: Suffix -> format name, for the dispatch and the error message.
FORMATS = {
    ".nwb": "nwb",
    ".zarr": "zarr",
    ".nc": "netcdf",
    ".nc4": "netcdf",
    ".cdf": "netcdf",
    ".netcdf": "netcdf",
    ".npy": "npy",
    ".npz": "npz",
    ".mat": "mat",
    ".tif": "tiff",
    ".tiff": "tiff",
}


def _sniff(path: Path) -> str | None:
    """Format from the content when the suffix says nothing."""
    if path.is_dir():
        if (path / "zarr.json").is_file() or (path / ".zgroup").is_file():
            return "zarr"
        return None
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                if "nwb_version" in f.attrs or "acquisition" in f:
                    return "nwb"
        except OSError:
            return None
        return "mat"  # a MATLAB v7.3 file is HDF5 with a 512-byte header; plain HDF5 too
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK"):
        return "npz"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"CDF"):
        return "netcdf"
    if head.startswith(b"MATLAB"):
        return "mat"
    return None


def detect_format(path) -> str:
    """The format name of ``path`` (``"nwb"``, ``"zarr"``, ``"netcdf"``, ``"npy"``, ``"npz"``,
    ``"mat"``, ``"tiff"``); raises :class:`RecordingError` when it is none of them."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no recording at {path}: the path does not exist")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None or (fmt == "mat" and path.is_file()):
        sniffed = _sniff(path)
        fmt = fmt if sniffed is None else sniffed
    if fmt is None:
        raise RecordingError(
            f"{path.name}: unknown recording format (suffix {path.suffix or 'none'!r}); "
            f"wavesim reads {', '.join(sorted(set(FORMATS)))} files and zarr directories"
        )
    return fmt


def load(
    path,
    *,
    series: str | None = None,
    dx: float | None = None,
    rate: float | None = None,
    dt: float | None = None,
    mask=None,
    dims=None,
    **kwargs,
):
    """Load a recording into the wavesim layout.

    Parameters
    ----------
    path : str or Path
        An NWB 2 file (``.nwb``), a zarr store (directory or ``.zarr``; wavesim simulation
        stores and saved recordings included), a NetCDF file (``.nc``), a NumPy ``.npy`` /
        ``.npz``, a MATLAB ``.mat`` (v5 or v7.3) or a multi-page TIFF (``.tif``, ``.tiff``).
        Files without a known suffix are recognised by their content.
    series : str, optional
        Which series / variable / array to load when the file holds several (NWB series name or
        path, zarr/NetCDF variable, ``.npz``/``.mat`` array name). An unknown or ambiguous name
        is an error that lists what the file holds.
    dx : float, optional
        Pixel spacing in mm. Taken from the file when it has one (the user's value wins);
        without any, coordinates are pixel indices (units ``"px"``) and speeds come out in px/ms.
    rate, dt : float, optional
        Sampling rate in Hz, or frame interval in ms. Taken from the file when present; required
        otherwise (the error says which is missing and how to pass it).
    mask : array-like of bool, optional
        User mask (True = valid site) on ``(y, x)`` or ``(channel,)``, combined with the automatic
        mask of sites that are zero or NaN at every time.
    dims : sequence of str, optional
        Axis order of the stored array, a permutation of ``("time", "y", "x")`` or
        ``("time", "channel")`` (default: frame-major ``(time, y, x)``).
    **kwargs
        Passed to the format's loader: ``lazy=True`` (NWB), ``member=`` (batched simulation
        stores), ``auto_mask=False``, ...

    Returns
    -------
    xarray.Dataset
        ``field`` on ``(time, y, x)`` or ``(time, channel)``, coordinates ``time`` (ms), ``y``,
        ``x`` (mm or px), ``mask`` (True = valid) and provenance attributes (``source``,
        ``format``, ``series``, ``rate_hz``, ``dt``, ``dx``, ``spacing_units``,
        ``wavesim_recording``); see ``docs/recordings.md``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    RecordingError (a ValueError)
        Unknown or corrupt file, wrong dimensionality, missing rate, unknown or ambiguous series.

    Examples
    --------
    >>> ds = load("ferret_vsd_roland2006.nwb")  # doctest: +SKIP
    >>> ds["field"].sizes, ds.attrs["dt"], int((~ds["mask"]).sum())  # doctest: +SKIP
    ({'time': 977, 'y': 25, 'x': 25}, 0.6136..., 162)
    """
    path = Path(path)
    fmt = detect_format(path)
    if kwargs.get("member") is not None and fmt not in ("zarr", "netcdf"):
        raise RecordingError(
            f"{path.name}: member= picks a member of a batched simulation store; this is a "
            f"{fmt} file"
        )
    if fmt not in ("zarr", "netcdf"):
        kwargs.pop("member", None)
    common = dict(series=series, dx=dx, rate=rate, dt=dt, mask=mask, dims=dims, **kwargs)
    if fmt == "nwb":
        from wavesim.recordings.nwb import load_nwb

        return load_nwb(path, **common)
    from wavesim.recordings import formats

    if fmt in ("zarr", "netcdf"):
        return formats.load_xarray(path, **common)
    if fmt in ("npy", "npz"):
        return formats.load_array_file(path, **common)
    if fmt == "mat":
        return formats.load_mat(path, **common)
    return formats.load_tiff(path, **common)


def describe_file(path) -> str:
    """A human-readable listing of what a recording file holds (``wavesim info FILE``):
    NWB series with types, shapes, rates, spacing and electrodes; the variables of a zarr or
    NetCDF Dataset; the arrays of ``.npz`` / ``.mat`` files; the pages of a TIFF stack."""
    path = Path(path)
    fmt = detect_format(path)
    lines = [f"{path.name}: {fmt}"]
    if fmt == "nwb":
        from wavesim.recordings.nwb import _file_attrs, _open, list_series

        io, nwbfile = _open(path)
        try:
            meta = _file_attrs(nwbfile)
        finally:
            io.close()
        for key in ("nwb_identifier", "nwb_session_description"):
            if key in meta:
                lines.append(f"  {key[4:].replace('_', ' ')}: {meta[key]}")
        if "trial_start_ms" in meta:
            spans = ", ".join(
                f"{a:g}-{b:g} ms"
                for a, b in zip(meta["trial_start_ms"], meta["trial_stop_ms"], strict=True)
            )
            lines.append(f"  trials: {spans}")
        series = list_series(path)
        lines.append(f"  {len(series)} time series:")
        lines.extend(f"    {s.describe()}" for s in series)
        return "\n".join(lines)
    if fmt in ("zarr", "netcdf"):
        from wavesim.recordings.formats import _open_xarray

        ds = _open_xarray(path, path.name)
        try:
            kind = (
                "wavesim simulation store"
                if "wavesim_store" in ds.attrs
                else "wavesim recording"
                if "wavesim_recording" in ds.attrs
                else "xarray Dataset"
            )
            lines[0] += f" ({kind})"
            lines.append("  dims: " + ", ".join(f"{k} {v}" for k, v in ds.sizes.items()))
            for name, var in ds.data_vars.items():
                units = var.attrs.get("units")
                lines.append(
                    f"    {name} {var.dims} {var.dtype}" + (f" [{units}]" if units else "")
                )
            for key in ("dt", "dx", "rate_hz", "complete", "source", "series"):
                if key in ds.attrs:
                    lines.append(f"  {key}: {ds.attrs[key]}")
        finally:
            ds.close()
        return "\n".join(lines)
    import numpy as np

    if fmt in ("npy", "npz"):
        if fmt == "npy":
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            lines.append(f"    {path.stem} {arr.shape} {arr.dtype}")
        else:
            with np.load(path, allow_pickle=False) as npz:
                for k in npz.files:
                    lines.append(f"    {k} {npz[k].shape} {npz[k].dtype}")
        return "\n".join(lines)
    if fmt == "mat":
        import h5py

        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                for k, obj in f.items():
                    if isinstance(obj, h5py.Dataset) and not k.startswith("#"):
                        lines.append(f"    {k} {obj.shape[::-1]} {obj.dtype} (v7.3)")
        else:
            from scipy.io import whosmat

            for name, shape, cls in whosmat(path):
                lines.append(f"    {name} {shape} {cls}")
        return "\n".join(lines)
    import tifffile

    with tifffile.TiffFile(path) as tif:
        s = tif.series[0]
        lines.append(f"    {len(tif.pages)} pages, series shape {s.shape} {s.dtype}")
        ij = tif.imagej_metadata or {}
        for key in ("finterval", "fps", "unit", "spacing"):
            if key in ij:
                lines.append(f"    imagej {key}: {ij[key]}")
    return "\n".join(lines)
