"""Preprocessing of recordings: masks, baseline / dF/F, detrending, zero-phase band-pass, masked
spatial smoothing, downsampling, interpolation of bad sites, electrode arrays onto a grid.

Every function takes a recording Dataset (:func:`wavesim.recordings.load`) and returns a new one
(the input is not modified), with the step appended to ``attrs["preprocessing"]``. Sites outside
the mask are NaN after :func:`apply_mask` and stay NaN through every step; the analyzers skip
them.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from wavesim.recordings.layout import ARRAY_DIMS, IMAGING_DIMS, RecordingError, validate_recording

__all__ = [
    "apply_mask",
    "bandpass",
    "baseline_normalize",
    "detrend",
    "downsample",
    "interpolate_bad",
    "smooth",
    "to_grid",
    "utah_layout",
]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _check(ds: xr.Dataset, func: str) -> xr.Dataset:
    return validate_recording(ds, name=f"{func}: the recording")


def _is_grid(ds) -> bool:
    return ds["field"].dims == IMAGING_DIMS


def _float_dtype(ds) -> np.dtype:
    dt = np.dtype(ds["field"].dtype)
    return dt if dt.kind == "f" else np.dtype(np.float64)


def _with_field(ds: xr.Dataset, values, step: str, *, units: str | None = None, **coords):
    """A copy of ``ds`` whose ``field`` holds ``values`` (same dims), with ``step`` recorded."""
    out = ds.copy()
    attrs = dict(ds["field"].attrs)
    if units is not None:
        attrs["units"] = units
    out["field"] = (
        ds["field"].dims,
        np.asarray(values).astype(_float_dtype(ds), copy=False),
        attrs,
    )
    out.attrs = dict(ds.attrs)
    out.attrs["preprocessing"] = [*list(ds.attrs.get("preprocessing", [])), step]
    return out


def _valid(ds) -> np.ndarray:
    site_shape = ds["field"].shape[1:]
    if "mask" in ds.data_vars:
        return np.asarray(ds["mask"].values, dtype=bool).reshape(site_shape)
    return np.ones(site_shape, dtype=bool)


def _values(ds) -> np.ndarray:
    return np.asarray(ds["field"].values, dtype=np.float64)


def _time_step(ds) -> float:
    t = np.asarray(ds["time"].values, dtype=np.float64)
    if t.size < 2:
        raise RecordingError("the recording needs at least 2 frames")
    d = np.diff(t)
    step = float(np.median(d))
    if not np.allclose(d, step, rtol=1e-3, atol=0):
        raise RecordingError(
            f"the time coordinate is not uniformly sampled (steps {d.min():g} to {d.max():g} ms); "
            "resample it first"
        )
    return step


def _space_step(ds) -> tuple[float, str]:
    units = ds["x"].attrs.get("units", "mm")
    x = np.asarray(ds["x"].values, dtype=np.float64)
    step = float(np.median(np.diff(x))) if x.size > 1 else 1.0
    return step, units


# ----------------------------------------------------------------------------------------------
# masks
# ----------------------------------------------------------------------------------------------
def apply_mask(ds: xr.Dataset, mask=None, *, zero: bool = True, nan: bool = True) -> xr.Dataset:
    """Combine masks and set the field to NaN outside them.

    Parameters
    ----------
    ds : xarray.Dataset
        A recording.
    mask : array-like of bool, optional
        A user mask (True = valid) on ``(y, x)`` or ``(channel,)``, combined (AND) with
        ``ds["mask"]``.
    zero, nan : bool, default True
        Also mask sites that are exactly zero, or NaN, at every time.

    Returns
    -------
    xarray.Dataset
        ``mask`` updated; ``field`` NaN at every masked site (the analyzers skip NaN sites).
    """
    ds = _check(ds, "apply_mask")
    v = _values(ds)
    valid = _valid(ds).copy()
    if zero:
        valid &= ~np.all(v == 0, axis=0)
    if nan:
        valid &= ~np.all(np.isnan(v), axis=0)
    if mask is not None:
        from wavesim.recordings.layout import _user_mask

        valid &= _user_mask(mask, valid.shape, ds["field"].dims[1:], None)
    v[:, ~valid] = np.nan
    out = _with_field(ds, v, f"apply_mask: {int((~valid).sum())} of {valid.size} sites masked")
    out["mask"] = (ds["field"].dims[1:], valid, dict(ds["mask"].attrs) if "mask" in ds else {})
    return out


# ----------------------------------------------------------------------------------------------
# baseline, detrending, band-pass
# ----------------------------------------------------------------------------------------------
def baseline_normalize(ds: xr.Dataset, window, *, mode: str = "dff") -> xr.Dataset:
    """Normalise each site by its baseline F0, the mean over a time window.

    ``mode="dff"``: ΔF/F = (F − F0)/F0 (units ``"1"``); ``"subtract"``: F − F0 (units of the
    field); ``"zscore"``: (F − F0)/σ0, σ0 the standard deviation over the window (units ``"1"``).

    Parameters
    ----------
    ds : xarray.Dataset
        A recording.
    window : (float, float)
        Baseline interval ``[start, stop]`` in ms (inclusive), e.g. the pre-stimulus period.
    mode : {"dff", "subtract", "zscore"}

    Raises
    ------
    RecordingError
        The window holds no frame; ``dff`` with F0 = 0 at a valid site.
    """
    ds = _check(ds, "baseline_normalize")
    if mode not in ("dff", "subtract", "zscore"):
        raise RecordingError(f"mode must be 'dff', 'subtract' or 'zscore', got {mode!r}")
    try:
        t0, t1 = (float(w) for w in window)
    except (TypeError, ValueError):
        raise RecordingError(f"window must be (start, stop) in ms, got {window!r}") from None
    t = np.asarray(ds["time"].values, dtype=np.float64)
    sel = (t >= t0) & (t <= t1)
    if not sel.any():
        raise RecordingError(
            f"the baseline window {t0:g}-{t1:g} ms holds no frame (the recording spans "
            f"{t[0]:g} to {t[-1]:g} ms)"
        )
    v = _values(ds)
    valid = _valid(ds)
    f0 = v[sel].mean(axis=0)
    if mode == "subtract":
        out, units = v - f0, None
    elif mode == "zscore":
        s0 = v[sel].std(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (v - f0) / np.where(s0 > 0, s0, np.nan)
        units = "1"
    else:
        zero = valid & (f0 == 0)
        if zero.any():
            raise RecordingError(
                f"dF/F needs a non-zero baseline: F0 = 0 at {int(zero.sum())} valid site(s) "
                "(e.g. already baseline-subtracted data); use mode='subtract' or 'zscore'"
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (v - f0) / f0
        units = "1"
    out[:, ~valid] = np.nan
    return _with_field(
        ds, out, f"baseline_normalize {mode}, window {t0:g}-{t1:g} ms ({int(sel.sum())} frames)",
        units=units,
    )  # fmt: skip


def detrend(ds: xr.Dataset, order: int = 1) -> xr.Dataset:
    """Remove a least-squares polynomial trend of degree ``order`` in time from every site.

    ``order=0`` removes the mean, ``1`` a linear trend. Sites with any NaN sample are left NaN.
    """
    ds = _check(ds, "detrend")
    if isinstance(order, bool) or int(order) != order or order < 0:
        raise RecordingError(f"order must be an integer >= 0, got {order!r}")
    v = _values(ds)
    nt = v.shape[0]
    flat = v.reshape(nt, -1)
    ok = np.isfinite(flat).all(axis=0)
    t = np.asarray(ds["time"].values, dtype=np.float64)
    tau = (t - t.mean()) / (np.ptp(t) / 2 if np.ptp(t) > 0 else 1.0)  # [-1, 1]: well conditioned
    basis = np.polynomial.legendre.legvander(tau, int(order))  # (nt, order + 1)
    out = np.full_like(flat, np.nan)
    if ok.any():
        coef, *_ = np.linalg.lstsq(basis, flat[:, ok], rcond=None)
        out[:, ok] = flat[:, ok] - basis @ coef
    return _with_field(ds, out.reshape(v.shape), f"detrend order {int(order)}")


def bandpass(ds: xr.Dataset, band, *, order: int = 4) -> xr.Dataset:
    """Zero-phase Butterworth band-pass along time (the filter of
    :func:`wavesim.analysis.analytic_phase`: ``sosfiltfilt``, mirror-padded).

    Parameters
    ----------
    ds : xarray.Dataset
        A uniformly sampled recording.
    band : (float, float)
        Pass band in Hz, 0 < low < high < Nyquist (= 500/dt Hz with dt in ms).
    order : int, default 4
        Butterworth order (forward-backward filtering squares the magnitude response).

    Returns
    -------
    xarray.Dataset
        The filtered recording, with a boolean ``reliable(time)`` coordinate that is False within
        the filter's edge transients (``attrs["edge"]`` ms at each end). Sites with any NaN
        sample stay NaN.
    """
    from wavesim.analysis.phase import zero_phase_bandpass

    ds = _check(ds, "bandpass")
    step = _time_step(ds)
    v = _values(ds)
    nt = v.shape[0]
    flat = v.reshape(nt, -1)
    ok = np.isfinite(flat).all(axis=0)
    y, n_edge = zero_phase_bandpass(flat[:, ok].T, 1000.0 / step, band, order, "bandpass")
    out = np.full_like(flat, np.nan)
    out[:, ok] = y.T
    lo, hi = (float(b) for b in band)
    res = _with_field(ds, out.reshape(v.shape), f"bandpass {lo:g}-{hi:g} Hz, order {order}")
    idx = np.arange(nt)
    reliable = (idx >= n_edge) & (idx < nt - n_edge)
    res = res.assign_coords(
        reliable=(
            "time",
            reliable,
            {
                "units": "1",
                "long_name": "outside the filter's edge transients",
                "edge": n_edge * step,
                "edge_units": "ms",
            },
        )  # fmt: skip
    )
    res.attrs["band"] = [lo, hi]
    res.attrs["band_units"] = "Hz"
    return res


# ----------------------------------------------------------------------------------------------
# spatial smoothing, downsampling
# ----------------------------------------------------------------------------------------------
def smooth(ds: xr.Dataset, sigma: float, *, truncate: float = 4.0) -> xr.Dataset:
    """Gaussian spatial smoothing that honours the mask (normalised convolution).

    ``out = G⋆(f·m) / G⋆m`` at valid sites (m = 1 where valid and finite, else 0), NaN
    elsewhere: masked or NaN sites contribute nothing and receive nothing, so a constant field is
    preserved exactly and nothing leaks across the aperture edge.

    Parameters
    ----------
    sigma : float
        Standard deviation of the Gaussian, in the units of the ``x``/``y`` coordinates (mm, or px
        when the spacing is unknown).
    truncate : float, default 4
        Kernel radius in standard deviations.
    """
    from scipy.ndimage import gaussian_filter

    ds = _check(ds, "smooth")
    if not _is_grid(ds):
        raise RecordingError("smooth needs a movie (time, y, x); map electrodes with to_grid()")
    step, units = _space_step(ds)
    s = float(sigma)
    if not (math.isfinite(s) and s > 0):
        raise RecordingError(f"sigma must be a positive length in {units}, got {sigma!r}")
    s_px = s / step
    v = _values(ds)
    m = np.isfinite(v) & _valid(ds)[None]
    f = np.where(m, v, 0.0)
    w = m.astype(np.float64)
    kw = dict(sigma=(0, s_px, s_px), mode="constant", cval=0.0, truncate=truncate)
    num = gaussian_filter(f, **kw)
    den = gaussian_filter(w, **kw)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(m & (den > 0), num / den, np.nan)
    return _with_field(ds, out, f"smooth gaussian sigma {s:g} {units} ({s_px:.3g} px)")


def _block_mean(a: np.ndarray, axis: int, k: int) -> np.ndarray:
    n = (a.shape[axis] // k) * k
    a = np.take(a, np.arange(n), axis=axis)
    shape = a.shape[:axis] + (n // k, k) + a.shape[axis + 1 :]
    return a.reshape(shape).mean(axis=axis + 1)


def downsample(ds: xr.Dataset, *, time: int = 1, space: int = 1) -> xr.Dataset:
    """Block-mean downsampling by integer factors in time and in space.

    Each output frame is the mean of ``time`` consecutive frames, each output pixel the mean of
    the valid pixels of a ``space`` × ``space`` block (a block with no valid pixel is masked).
    Coordinates become the block means (so ``x``, ``y`` stay pixel centres) and ``dt``/``dx``
    grow by the factors. Trailing frames or pixels that do not fill a block are dropped. The mean
    over any whole number of blocks is preserved.
    """
    ds = _check(ds, "downsample")
    for name, k in (("time", time), ("space", space)):
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise RecordingError(f"{name} must be an integer factor >= 1, got {k!r}")
    time, space = int(time), int(space)
    grid = _is_grid(ds)
    if space > 1 and not grid:
        raise RecordingError("spatial downsampling needs a movie (time, y, x)")
    if time > ds.sizes["time"] or (grid and space > min(ds.sizes["y"], ds.sizes["x"])):
        raise RecordingError(
            f"factors time={time}, space={space} exceed the recording's size {dict(ds.sizes)}"
        )
    v = _values(ds)
    valid = _valid(ds)
    v = np.where(valid[None], v, np.nan)
    if time > 1:
        v = _block_mean(v, 0, time)
    t = _block_mean(np.asarray(ds["time"].values, dtype=np.float64), 0, time)
    coords = {"time": ("time", t, dict(ds["time"].attrs))}
    if "reliable" in ds.coords and ds["reliable"].dims == ("time",):  # from bandpass()
        rel = _block_mean(np.asarray(ds["reliable"].values, dtype=np.float64), 0, time) == 1
        coords["reliable"] = ("time", rel, dict(ds["reliable"].attrs))
    if grid and space > 1:
        ok = np.isfinite(v)
        num = _block_mean(_block_mean(np.where(ok, v, 0.0), 1, space), 2, space)
        cnt = _block_mean(_block_mean(ok.astype(np.float64), 1, space), 2, space)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(cnt > 0, num / cnt, np.nan)
        vb = _block_mean(_block_mean(valid[None].astype(np.float64), 1, space), 2, space)[0]
        valid = vb > 0
        for c in ("y", "x"):
            coords[c] = (c, _block_mean(np.asarray(ds[c].values, float), 0, space), ds[c].attrs)
    else:
        for c in ("y", "x") if grid else ():
            coords[c] = (c, ds[c].values, ds[c].attrs)
    dims = ds["field"].dims
    attrs = dict(ds.attrs)
    attrs["dt"] = float(ds.attrs.get("dt", math.nan)) * time
    attrs["rate_hz"] = float(ds.attrs.get("rate_hz", math.nan)) / time
    if "dx" in attrs:
        attrs["dx"] = float(attrs["dx"]) * space
    attrs["preprocessing"] = [
        *list(ds.attrs.get("preprocessing", [])),
        f"downsample time x{time}, space x{space} (block means)",
    ]
    data_vars = {
        "field": (dims, v.astype(_float_dtype(ds), copy=False), dict(ds["field"].attrs)),
        "mask": (dims[1:], valid, dict(ds["mask"].attrs) if "mask" in ds else {}),
    }
    if not grid:
        for c in ("channel", "x", "y"):
            coords[c] = ("channel", ds[c].values, ds[c].attrs)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


# ----------------------------------------------------------------------------------------------
# bad sites
# ----------------------------------------------------------------------------------------------
def _site_positions(ds) -> np.ndarray:
    if _is_grid(ds):
        yy, xx = np.meshgrid(ds["y"].values, ds["x"].values, indexing="ij")
        return np.column_stack([xx.ravel(), yy.ravel()]).astype(np.float64)
    return np.column_stack([ds["x"].values, ds["y"].values]).astype(np.float64)


def interpolate_bad(ds: xr.Dataset, bad=None, *, extrapolate: bool = False) -> xr.Dataset:
    """Fill bad sites (pixels or channels) from their valid neighbours.

    Each bad site gets the piecewise-linear (barycentric, Delaunay) interpolant of the valid sites
    around it, the same weights for every frame, so a field linear in x and y is reproduced
    exactly. Bad sites outside the convex hull of the valid ones stay masked unless
    ``extrapolate`` (then they take their nearest valid site).

    Parameters
    ----------
    bad : array-like of bool, optional
        Sites to fill (True = bad) on ``(y, x)`` or ``(channel,)``. Default: the invalid sites of
        ``ds["mask"]``.
    extrapolate : bool, default False
        Fill bad sites outside the hull of the valid ones from their nearest valid site.

    Returns
    -------
    xarray.Dataset
        The filled recording; the mask is True at every filled site; the variable
        ``interpolated`` (bool, same dims as the mask) says which sites were filled.
    """
    from scipy.spatial import Delaunay, cKDTree

    ds = _check(ds, "interpolate_bad")
    valid = _valid(ds)
    v = _values(ds)
    finite = np.isfinite(v).all(axis=0)
    if bad is None:
        badm = ~valid
    else:
        from wavesim.recordings.layout import _user_mask

        badm = _user_mask(bad, valid.shape, ds["field"].dims[1:], None)
    good = (valid & finite & ~badm).ravel()
    badf = badm.ravel()
    pts = _site_positions(ds)
    if good.sum() < 3:
        raise RecordingError(f"interpolate_bad needs at least 3 valid sites, got {good.sum()}")
    gi = np.flatnonzero(good)
    targets = np.flatnonzero(badf)
    tri = Delaunay(pts[gi])
    simplex = tri.find_simplex(pts[targets])
    inside = simplex >= 0
    flat = v.reshape(v.shape[0], -1).copy()
    filled = np.zeros(badf.shape, dtype=bool)
    if inside.any():
        ti = targets[inside]
        s = simplex[inside]
        trans = tri.transform[s]  # (n, 3, 2)
        delta = pts[ti] - trans[:, 2]
        bary = np.einsum("nij,nj->ni", trans[:, :2], delta)
        w = np.column_stack([bary, 1 - bary.sum(axis=1)])
        verts = gi[tri.simplices[s]]  # (n, 3) flat site indices
        flat[:, ti] = np.einsum("tnk,nk->tn", flat[:, verts], w)
        filled[ti] = True
    if extrapolate and (~inside).any():
        to = targets[~inside]
        _, near = cKDTree(pts[gi]).query(pts[to])
        flat[:, to] = flat[:, gi[near]]
        filled[to] = True
    still_bad = badf & ~filled
    flat[:, still_bad] = np.nan
    new_valid = (valid.ravel() & ~badf) | filled
    out = _with_field(
        ds, flat.reshape(v.shape),
        f"interpolate_bad: {int(filled.sum())} site(s) filled (Delaunay-linear"
        + (", nearest outside the hull" if extrapolate else "") + ")",
    )  # fmt: skip
    sdims = ds["field"].dims[1:]
    out["mask"] = (sdims, new_valid.reshape(valid.shape), dict(ds["mask"].attrs))
    out["interpolated"] = (sdims, filled.reshape(valid.shape), {"units": "1"})
    return out


# ----------------------------------------------------------------------------------------------
# electrode arrays onto a grid
# ----------------------------------------------------------------------------------------------
def utah_layout(
    n: int = 10, pitch: float = 0.4, *, corners: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Electrode positions of an ``n`` × ``n`` Utah array with spacing ``pitch`` (mm).

    With ``corners=False`` (the usual 96-channel 10 × 10 array) the four corner sites carry no
    electrode. Channels are numbered row by row from the lower-left corner.

    Returns
    -------
    (x, y, channel) : numpy arrays
        Positions in mm (x = column · pitch, y = row · pitch) and channel ids ``0..N-1``.
    """
    rows, cols = np.mgrid[0:n, 0:n]
    keep = np.ones((n, n), dtype=bool)
    if not corners:
        keep[0, 0] = keep[0, -1] = keep[-1, 0] = keep[-1, -1] = False
    x = cols[keep] * float(pitch)
    y = rows[keep] * float(pitch)
    return x.astype(np.float64), y.astype(np.float64), np.arange(int(keep.sum()))


def to_grid(ds: xr.Dataset, *, pitch: float | None = None, tol: float = 0.1) -> xr.Dataset:
    """Map an electrode array ``(time, channel)`` onto a regular grid ``(time, y, x)``.

    Electrode ``c`` at ``(x_c, y_c)`` goes to column ``j = round((x_c − x_min)/pitch)`` and row
    ``i = round((y_c − y_min)/pitch)``. Grid sites without an electrode (e.g. the missing corners
    of a Utah array) and invalid channels are masked (NaN, ``mask`` False).

    Parameters
    ----------
    pitch : float, optional
        Grid spacing in the units of the positions (mm or px). Default: the smallest distance
        between two electrodes.
    tol : float, default 0.1
        Largest allowed distance of an electrode from its grid site, in pitches.

    Returns
    -------
    xarray.Dataset
        A movie recording with ``dx = pitch`` (when in mm) and the variable ``channel_index``
        (y, x): the channel at each site, −1 where there is none.
    """
    ds = _check(ds, "to_grid")
    if ds["field"].dims != ARRAY_DIMS:
        raise RecordingError(
            f"to_grid maps an electrode array (time, channel); got dims {ds['field'].dims}"
        )
    x = np.asarray(ds["x"].values, dtype=np.float64)
    y = np.asarray(ds["y"].values, dtype=np.float64)
    units = ds["x"].attrs.get("units", "mm")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise RecordingError("to_grid: some electrode positions are NaN")
    if pitch is None:
        from scipy.spatial import cKDTree

        if x.size < 2:
            raise RecordingError("to_grid needs pitch= for a single electrode")
        d, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=2)
        pitch = float(d[:, 1].min())
    pitch = float(pitch)
    if not (math.isfinite(pitch) and pitch > 0):
        raise RecordingError(f"pitch must be a positive length in {units}, got {pitch!r}")
    fj = (x - x.min()) / pitch
    fi = (y - y.min()) / pitch
    j, i = np.rint(fj).astype(np.int64), np.rint(fi).astype(np.int64)
    off = np.hypot(fj - j, fi - i)
    if off.max() > tol:
        worst = int(np.argmax(off))
        raise RecordingError(
            f"to_grid: electrode {ds['channel'].values[worst]!r} at ({x[worst]:g}, {y[worst]:g}) "
            f"{units} is {off[worst]:.2f} pitches from the nearest site of a grid of pitch "
            f"{pitch:g} {units}; pass the array's pitch= (or a larger tol=)"
        )
    ny, nx = int(i.max()) + 1, int(j.max()) + 1
    index = np.full((ny, nx), -1, dtype=np.int64)
    flat = i * nx + j
    if np.unique(flat).size != flat.size:
        raise RecordingError(
            f"to_grid: two electrodes fall on the same site of a grid of pitch {pitch:g} "
            f"{units}; pass a smaller pitch="
        )
    index[i, j] = np.arange(x.size)
    v = _values(ds)
    valid_ch = _valid(ds)
    nt = v.shape[0]
    grid = np.full((nt, ny, nx), np.nan)
    grid[:, i, j] = np.where(valid_ch[None], v, np.nan)
    mask = np.zeros((ny, nx), dtype=bool)
    mask[i, j] = valid_ch
    attrs = dict(ds.attrs)
    attrs["spacing_units"] = units
    if units == "mm":
        attrs["dx"] = pitch
    attrs["preprocessing"] = [
        *list(ds.attrs.get("preprocessing", [])),
        f"to_grid: {x.size} electrodes onto {ny} x {nx} sites of pitch {pitch:g} {units}",
    ]
    out = xr.Dataset(
        {
            "field": (IMAGING_DIMS, grid.astype(_float_dtype(ds)), dict(ds["field"].attrs)),
            "mask": (("y", "x"), mask, dict(ds["mask"].attrs) if "mask" in ds else {}),
            "channel_index": (
                ("y", "x"),
                index,
                {"units": "1", "long_name": "channel index at the site (-1: no electrode)"},
            ),
        },
        coords={
            "time": ("time", ds["time"].values, dict(ds["time"].attrs)),
            "y": ("y", y.min() + pitch * np.arange(ny), {"units": units, "long_name": "row"}),
            "x": ("x", x.min() + pitch * np.arange(nx), {"units": units, "long_name": "column"}),
        },
        attrs=attrs,
    )
    return out
