"""An evoked response in an imaging recording: onset, origin, spread direction and speed.

:func:`evoked_response` takes a movie in the recording layout (``field`` on ``(time, y, x)``,
``time`` in ms, ``x``/``y`` in mm or px, a boolean ``mask``) and measures how a stimulus-evoked
deflection starts and spreads:

1. **Preprocessing** (inside the function, on a copy): the sign of the response (``sign="auto"``:
   the sign of the largest deviation of the mask-averaged signal from its baseline), Gaussian
   smoothing in space (normalised inside the mask) and in time (zero-phase), and subtraction of
   each pixel's mean over the baseline window.
2. **Per-pixel onset**: the first time after the start of the search window at which the signal
   rises above ``k`` standard deviations of its own baseline and stays there for ``min_duration``
   ms (interpolated between frames). **Per-pixel latency**: the time at which the rise reaches
   ``fraction`` of the pixel's own peak (half-maximum by default). The latency does not depend on
   the amplitude of the pixel, which the onset does (a weak pixel crosses a fixed threshold
   later), so speeds come from latencies.
3. **Onset time and origin**: the median onset and the centroid of the earliest ``earliest``
   fraction of responsive pixels, with 95 % intervals from a bootstrap over pixels. The
   threshold crossing of the mask-averaged signal (``mean_onset_time``) is reported too; it
   depends on how much of the aperture responds (late pixels delay it) and on the noise of the
   average (less noise: an earlier crossing). Zero-phase temporal smoothing lets a sharp rise
   cross a threshold up to about 2 ``sigma_time`` early; onsets are uncertain by that much.
4. **Spread**: over the strongly responding pixels (peak ≥ ``min_amplitude`` × the largest
   peak), a cone ``latency = t0 + |p − p_c|/speed`` is fitted (robust soft-L1 least squares,
   apex ``p_c`` = ``spread_x``, ``spread_y`` free, started at the origin): ``speed`` with a
   bootstrap interval, and the correlation ``radial_r`` of latency with the distance from the
   apex (> 0: the response spreads outward). Straight lines of latency against distance in
   angular sectors around the apex give ``sector_speed`` (their spread is the anisotropy), and a
   plane fit of latency against (x, y) gives the direction of the dominant planar component
   (``plane_direction``, counter-clockwise from +x, and ``plane_speed``).
5. **Optical flow** (``flow=True``): :func:`wavesim.analysis.optical_flow` of the smoothed movie
   during the rise (from the onset time to the peak of the mean response), summarised as the
   median speed and the mean outward (radial) velocity over the strongly responding pixels.

Speeds are in (space unit)/ms: mm/ms when the recording has a spacing, px/ms otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

__all__ = ["evoked_response", "format_evoked"]


def _error(msg: str) -> ValueError:
    try:
        from wavesim.recordings.layout import RecordingError
    except ImportError:  # pragma: no cover - the layout module ships with the package
        return ValueError(msg)
    return RecordingError(msg)


def _movie(recording) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """(values (t, y, x) float64, valid mask, time, x, y, space units) of a recording."""
    if isinstance(recording, xr.Dataset):
        if "field" not in recording.data_vars:
            raise _error(
                "evoked_response: the recording has no 'field' variable (variables: "
                f"{sorted(recording.data_vars)})"
            )
        da = recording["field"]
        mask = recording["mask"] if "mask" in recording.data_vars else None
    elif isinstance(recording, xr.DataArray):
        da, mask = recording, None
    else:
        raise _error(
            "evoked_response: expected a recording (xarray Dataset with 'field' on (time, y, x), "
            f"or a DataArray), got {type(recording).__name__}"
        )
    if set(da.dims) != {"time", "y", "x"} or da.ndim != 3:
        raise _error(
            f"evoked_response: 'field' must have dims (time, y, x), got {da.dims}; map "
            "electrode arrays onto a grid first (wavesim.recordings.to_grid)"
        )
    da = da.transpose("time", "y", "x")
    for c in ("time", "y", "x"):
        if c not in da.coords:
            raise _error(f"evoked_response: 'field' has no {c!r} coordinate")
    v = np.asarray(da.values, dtype=np.float64)
    valid = np.isfinite(v).all(axis=0)
    if mask is not None:
        m = np.asarray(mask.transpose("y", "x").values)
        valid &= m.astype(bool)
    if not valid.any():
        raise _error("evoked_response: no valid pixel (mask all False or every pixel NaN)")
    t = np.asarray(da["time"].values, dtype=np.float64)
    if t.size < 3 or np.any(np.diff(t) <= 0):
        raise _error("evoked_response: 'time' must increase, with at least 3 frames")
    x = np.asarray(da["x"].values, dtype=np.float64)
    y = np.asarray(da["y"].values, dtype=np.float64)
    units = str(da["x"].attrs.get("units", "px"))
    return v, valid, t, x, y, units


def _window(value, t: np.ndarray, name: str) -> tuple[float, float]:
    try:
        t0, t1 = (float(w) for w in value)
    except (TypeError, ValueError):
        raise _error(
            f"evoked_response: {name} must be (start, stop) in ms, got {value!r}"
        ) from None
    if not t1 > t0:
        raise _error(f"evoked_response: {name} = ({t0:g}, {t1:g}) ms must have stop > start")
    n = int(((t >= t0) & (t < t1)).sum())
    if n < 3:
        raise _error(
            f"evoked_response: {name} = ({t0:g}, {t1:g}) ms holds {n} frame(s), need at least 3 "
            f"(the recording spans {t[0]:g} to {t[-1]:g} ms)"
        )
    return t0, t1


def _smooth(v, valid, sigma_px: float, sigma_frames: float) -> np.ndarray:
    from scipy import ndimage

    out = np.where(valid, v, 0.0)
    if sigma_px > 0:
        w = ndimage.gaussian_filter(valid.astype(float), sigma_px, mode="constant")
        out = ndimage.gaussian_filter(out, (0, sigma_px, sigma_px), mode="constant")
        out = np.where(valid, out / np.where(w > 0, w, 1.0), 0.0)
    if sigma_frames > 0:
        out = ndimage.gaussian_filter1d(out, sigma_frames, axis=0, mode="nearest")
    return out


def _sustained_crossing(z: np.ndarray, t: np.ndarray, need: int) -> np.ndarray:
    """Per column of ``z`` (time, n): the interpolated time at which ``z`` first rises above 0 and
    stays above for ``need`` frames (NaN when never)."""
    above = z > 0
    nt, n = z.shape
    out = np.full(n, np.nan)
    if nt < need:
        return out
    c = np.cumsum(np.vstack([np.zeros((1, n), int), above.astype(int)]), axis=0)
    runs = (c[need:] - c[:-need]) == need  # (nt - need + 1, n): frames j .. j+need-1 all above
    has = runs.any(axis=0)
    j = runs.argmax(axis=0)
    for i in np.flatnonzero(has):
        k = j[i]
        if k == 0:
            out[i] = t[0]
        else:
            a, b = z[k - 1, i], z[k, i]
            out[i] = t[k - 1] + (t[k] - t[k - 1]) * (-a) / (b - a)
    return out


def _level_latency(s: np.ndarray, t: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Per column: the time of the last upward crossing of ``level`` before the column's peak."""
    nt, n = s.shape
    pk = s.argmax(axis=0)
    out = np.full(n, np.nan)
    for i in range(n):
        seg = s[: pk[i] + 1, i]
        below = np.flatnonzero(seg < level[i])
        if below.size == 0:
            continue  # already above at the start of the window
        k = below[-1] + 1
        a, b = seg[k - 1], seg[k]
        out[i] = t[k - 1] + (t[k] - t[k - 1]) * (level[i] - a) / (b - a)
    return out


def _line(r, lat):
    """Least-squares slope and intercept of lat = a + b r, and the correlation."""
    r = np.asarray(r, float)
    lat = np.asarray(lat, float)
    if r.size < 3 or np.ptp(r) == 0:
        return math.nan, math.nan, math.nan
    rc = r - r.mean()
    b = float(np.sum(rc * (lat - lat.mean())) / np.sum(rc**2))
    a = float(lat.mean() - b * r.mean())
    sd = float(np.std(lat))
    corr = float(b * np.std(r) / sd) if sd > 0 else math.nan
    return b, a, corr


def _cone(x, y, lat, start, scale=None):
    """Least-squares cone ``lat = t0 + s·|(x, y) − (xc, yc)|`` (s = 1/speed).

    ``start`` is an apex ``(x0, y0)`` (then t0 and s start from a straight line of latency
    against the distance from it) or a full ``(t0, xc, yc, s)``. The soft-L1 loss keeps pixels
    of a later, separate response from pulling the fit; its ``scale`` defaults to the median
    absolute deviation of the starting residuals. Returns ``((t0, xc, yc, s), scale)``."""
    from scipy.optimize import least_squares

    nan = (math.nan,) * 4
    x, y, lat = (np.asarray(a, float) for a in (x, y, lat))
    if x.size < 5:
        return nan, scale

    def resid(p):
        return p[0] + p[3] * np.hypot(x - p[1], y - p[2]) - lat

    if len(start) == 2:
        b, a, _ = _line(np.hypot(x - start[0], y - start[1]), lat)
        if not np.isfinite(b):
            return nan, scale
        p0 = np.array([a, start[0], start[1], b])
    else:
        p0 = np.asarray(start, float)
    if scale is None:
        r0 = resid(p0)
        scale = float(np.median(np.abs(r0 - np.median(r0)))) or 1.0
    sol = least_squares(resid, p0, loss="soft_l1", f_scale=scale)
    return tuple(float(v) for v in sol.x), scale


def _inv(b: float) -> float:
    return 1.0 / b if b > 0 else math.inf if b == 0 else math.nan


def evoked_response(
    recording,
    *,
    window=None,
    baseline=None,
    sign: str = "auto",
    sigma_space: float = 1.0,
    sigma_time: float = 2.0,
    k: float = 3.0,
    min_duration: float = 5.0,
    fraction: float = 0.5,
    min_amplitude: float = 0.5,
    earliest: float = 0.1,
    sectors: int = 8,
    flow: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
) -> xr.Dataset:
    """Onset, origin, spread direction and speed of an evoked response in an imaging movie.

    Parameters
    ----------
    recording : xarray.Dataset or xarray.DataArray
        ``field`` on ``(time, y, x)`` with ``time`` in ms and ``x``/``y`` coordinates (mm, or px
        when the spacing is unknown), and optionally a boolean ``mask`` (True = valid); NaN pixels
        are ignored too. The layout of :func:`wavesim.recordings.load`.
    window : (float, float), optional
        Where to look for the response, ``[start, stop)`` in ms. Default: from the recording's
        stimulus onset (``attrs["trial_start_ms"]``) to its stop (``trial_stop_ms``), or the
        whole recording after the baseline.
    baseline : (float, float), optional
        Baseline interval ``[start, stop)`` in ms. Default: the 50 ms before ``window``.
    sign : {"auto", "positive", "negative"}
        Direction of the response. ``"auto"`` takes the sign of the largest deviation of the
        mask-averaged (smoothed) signal from its baseline inside ``window``. A negative response
        is flipped, so amplitudes are always positive.
    sigma_space : float
        Standard deviation (px) of the Gaussian spatial smoothing; 0 for none.
    sigma_time : float
        Standard deviation (ms) of the zero-phase Gaussian temporal smoothing; 0 for none.
    k : float
        Onset threshold, in standard deviations of each pixel's (smoothed) baseline.
    min_duration : float
        How long (ms) the signal must stay above the threshold for an onset.
    fraction : float
        Latency level, as a fraction of each pixel's own peak (0.5: half maximum).
    min_amplitude : float
        Pixels whose peak is at least this fraction of the largest peak enter the spread fits.
    earliest : float
        Fraction of responsive pixels (the earliest by onset) that define the onset time and the
        origin.
    sectors : int
        Number of angular sectors around the origin for ``sector_speed``.
    flow : bool
        Also summarise the optical flow during the rise.
    n_boot : int
        Bootstrap resamples (over pixels) for the 95 % intervals; 0 for none (NaN intervals).
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    xarray.Dataset
        Maps on ``(y, x)``: ``onset`` (ms), ``latency`` (ms), ``amplitude`` (peak, units of the
        field), ``responsive`` (an onset and a peak above threshold), ``in_fit`` (used in the
        spread fits). Scalars: ``onset_time`` (ms), ``onset_x``, ``onset_y`` (space units: the
        centroid of the earliest pixels), ``mean_onset_time`` (ms), ``spread_x``, ``spread_y``
        (the apex of the latency cone) and ``spread_time`` (its latency, ms), ``speed``
        ((space units)/ms), ``latency_slope`` (ms per space unit, 1/speed), ``radial_r``,
        ``plane_direction`` (deg), ``plane_speed``, and with ``flow``, ``flow_speed`` (median)
        and ``flow_radial`` (mean outward velocity), both in (space units)/ms. Each of
        ``onset_time``, ``onset_x``, ``onset_y`` and ``speed`` has a
        ``<name>_ci`` on dim ``bound`` = ``["low", "high"]`` (95 %, bootstrap over pixels).
        ``sector_speed`` on dim ``sector`` (centre angle in deg, counter-clockwise from +x).
        Attributes hold the parameters, the ``sign`` used and ``space_units``.

    Raises
    ------
    RecordingError (a ValueError)
        Wrong layout, a window or baseline without frames, bad parameters, or no responsive
        pixel.

    Examples
    --------
    >>> ds = wavesim.recordings.load("ferret_vsd_roland2006.nwb")  # doctest: +SKIP
    >>> ev = evoked_response(ds, window=(200, 400), baseline=(150, 200))  # doctest: +SKIP
    >>> print(format_evoked(ev))  # doctest: +SKIP
    """
    v, valid, t, xc, yc, units = _movie(recording)
    attrs = recording.attrs if isinstance(recording, xr.Dataset | xr.DataArray) else {}
    if sign not in ("auto", "positive", "negative"):
        raise _error(
            f"evoked_response: sign must be 'auto', 'positive' or 'negative', got {sign!r}"
        )
    for name, val, lo in (("sigma_space", sigma_space, 0), ("sigma_time", sigma_time, 0),
                          ("k", k, 0), ("min_duration", min_duration, 0)):  # fmt: skip
        if not (math.isfinite(float(val)) and float(val) >= lo):
            raise _error(f"evoked_response: {name} must be a finite number >= {lo}, got {val!r}")
    for name, val in (("fraction", fraction), ("min_amplitude", min_amplitude),
                      ("earliest", earliest)):  # fmt: skip
        if not 0 < float(val) <= 1:
            raise _error(f"evoked_response: {name} must be in (0, 1], got {val!r}")
    if int(sectors) < 1:
        raise _error(f"evoked_response: sectors must be >= 1, got {sectors!r}")

    dt = float(np.median(np.diff(t)))
    if window is None:
        start = attrs.get("trial_start_ms")
        stop = attrs.get("trial_stop_ms")
        t0 = float(np.atleast_1d(start)[0]) if start is not None else None
        t1 = float(np.atleast_1d(stop)[0]) if stop is not None else float(t[-1]) + dt
        if t0 is None:
            t0 = float(baseline[1]) if baseline is not None else float(t[0] + 50.0)
        window = (t0, t1)
    w0, w1 = _window(window, t, "window")
    if baseline is None:
        baseline = (w0 - 50.0, w0)
    b0, b1 = _window(baseline, t, "baseline")

    dx = float(np.median(np.diff(xc))) if xc.size > 1 else 1.0
    s = _smooth(v, valid, float(sigma_space), sigma_time / dt)  # sigma_space in px
    base = (t >= b0) & (t < b1)
    s = s - s[base].mean(axis=0)
    win = (t >= w0) & (t < w1)
    mean = s[:, valid].mean(axis=1)
    if sign == "auto":
        dev = mean[win]
        sgn = 1.0 if dev.max() >= -dev.min() else -1.0
    else:
        sgn = 1.0 if sign == "positive" else -1.0
    s = sgn * s
    mean = sgn * mean

    sv = s[:, valid]  # (t, n) valid pixels
    sd = sv[base].std(axis=0)
    tw = t[win]
    need = max(int(round(min_duration / dt)), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = sv[win] / np.where(sd > 0, sd, np.nan) - k
    onset = _sustained_crossing(np.nan_to_num(z, nan=-1.0), tw, need)
    amp = sv[win].max(axis=0)
    responsive = np.isfinite(onset) & (amp > k * sd)
    if not responsive.any():
        raise _error(
            f"evoked_response: no pixel rises {k:g} baseline SDs above its baseline for "
            f"{min_duration:g} ms inside the window {w0:g}-{w1:g} ms"
        )
    latency = _level_latency(sv[win], tw, fraction * amp)
    latency[~responsive] = np.nan
    onset[~responsive] = np.nan

    ys, xs = np.nonzero(valid)
    px, py = xc[xs], yc[ys]
    idx = np.flatnonzero(responsive)

    def origin(sel):
        on = onset[sel]
        q = np.quantile(on, earliest)
        e = sel[on <= q]
        return float(np.median(onset[e])), float(px[e].mean()), float(py[e].mean())

    t_on, ox, oy = origin(idx)
    in_fit = responsive & (amp >= min_amplitude * amp[responsive].max()) & np.isfinite(latency)
    fit_idx = np.flatnonzero(in_fit)
    cone, scale = _cone(px[fit_idx], py[fit_idx], latency[fit_idx], (ox, oy))
    if np.isfinite(cone[0]):  # once more from the solution: the bootstrap starts there too
        cone, scale = _cone(px[fit_idx], py[fit_idx], latency[fit_idx], cone, scale)
    t_apex, cx, cy, slope = cone
    r = np.hypot(px - cx, py - cy)
    corr = _line(r[fit_idx], latency[fit_idx])[2]

    rng = np.random.default_rng(seed)
    boots = {"onset_time": [], "onset_x": [], "onset_y": [], "slope": []}
    for _ in range(int(n_boot)):
        bi = rng.choice(idx, idx.size, replace=True)
        bt, bx, by = origin(bi)
        boots["onset_time"].append(bt)
        boots["onset_x"].append(bx)
        boots["onset_y"].append(by)
        if fit_idx.size >= 5:
            bf = rng.choice(fit_idx, fit_idx.size, replace=True)
            boots["slope"].append(_cone(px[bf], py[bf], latency[bf], cone, scale)[0][3])

    def ci(vals):
        vals = np.asarray(vals, float)
        vals = vals[np.isfinite(vals)]
        if vals.size < 10:
            return [math.nan, math.nan]
        return [float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))]

    slope_ci = ci(boots["slope"])
    speed_ci = [_inv(slope_ci[1]), _inv(slope_ci[0])] if all(np.isfinite(slope_ci)) else [
        math.nan, math.nan
    ]  # fmt: skip

    # sectors: angle of each pixel around the origin, counter-clockwise from +x
    n_sec = int(sectors)
    centres = np.arange(n_sec) * 360.0 / n_sec
    ang = np.degrees(np.arctan2(py - cy, px - cx)) % 360.0
    sec = np.floor(((ang + 180.0 / n_sec) % 360.0) / (360.0 / n_sec)).astype(int) % n_sec
    sector_speed = np.full(n_sec, np.nan)
    sector_count = np.zeros(n_sec, int)
    for j in range(n_sec):
        sel = fit_idx[sec[fit_idx] == j]
        sector_count[j] = sel.size
        if sel.size >= 5:
            sector_speed[j] = _inv(_line(r[sel], latency[sel])[0])

    # plane: latency = a + gx x + gy y; the latency grows along the propagation direction
    if fit_idx.size >= 3:
        a_mat = np.c_[np.ones(fit_idx.size), px[fit_idx], py[fit_idx]]
        coef = np.linalg.lstsq(a_mat, latency[fit_idx], rcond=None)[0]
        gx, gy = float(coef[1]), float(coef[2])
        plane_dir = float(np.degrees(np.arctan2(gy, gx)) % 360.0)
        plane_speed = _inv(math.hypot(gx, gy))
    else:
        plane_dir = plane_speed = math.nan

    # overall: the mask-averaged signal crossing k of its own baseline SDs
    msd = float(mean[base].std())
    mz = (mean[win] / msd - k) if msd > 0 else np.full(tw.size, -1.0)
    mean_onset = float(_sustained_crossing(mz[:, None], tw, need)[0])

    ny, nx = valid.shape

    def to_map(values, fill=np.nan, dtype=float):
        out = np.full((ny, nx), fill, dtype=dtype)
        out[valid] = values
        return out

    space = f"{units}/ms"
    coords = {"y": ("y", yc, {"units": units}), "x": ("x", xc, {"units": units})}
    ds = xr.Dataset(
        {
            "onset": (("y", "x"), to_map(onset), {"units": "ms", "long_name": "onset time"}),
            "latency": (
                ("y", "x"),
                to_map(latency),
                {"units": "ms", "long_name": f"time to {fraction:g} of the pixel's peak"},
            ),  # fmt: skip
            "amplitude": (("y", "x"), to_map(amp), {"long_name": "peak of the response"}),
            "responsive": (("y", "x"), to_map(responsive, False, bool)),
            "in_fit": (("y", "x"), to_map(in_fit, False, bool)),
            "onset_time": ((), t_on, {"units": "ms"}),
            "spread_time": ((), t_apex, {"units": "ms", "long_name": "latency at the apex"}),
            "spread_x": ((), cx, {"units": units, "long_name": "apex of the latency cone"}),
            "spread_y": ((), cy, {"units": units, "long_name": "apex of the latency cone"}),
            "onset_x": ((), ox, {"units": units}),
            "onset_y": ((), oy, {"units": units}),
            "mean_onset_time": ((), mean_onset, {"units": "ms"}),
            "latency_slope": ((), slope, {"units": f"ms/{units}"}),
            "speed": ((), _inv(slope), {"units": space}),
            "radial_r": ((), corr, {"units": "1"}),
            "plane_direction": ((), plane_dir, {"units": "deg"}),
            "plane_speed": ((), plane_speed, {"units": space}),
            "sector_speed": (("sector",), sector_speed, {"units": space}),
            "sector_pixels": (("sector",), sector_count),
            "onset_time_ci": (("bound",), ci(boots["onset_time"]), {"units": "ms"}),
            "onset_x_ci": (("bound",), ci(boots["onset_x"]), {"units": units}),
            "onset_y_ci": (("bound",), ci(boots["onset_y"]), {"units": units}),
            "speed_ci": (("bound",), speed_ci, {"units": space}),
        },
        coords={
            **coords,
            "sector": ("sector", centres, {"units": "deg"}),
            "bound": ("bound", ["low", "high"]),
        },  # fmt: skip
    )
    if flow:
        fs, fr = _flow_summary(s, valid, t, xc, yc, t_on, mean, in_fit, cx, cy, dt, dx)
        ds["flow_speed"] = ((), fs, {"units": space})
        ds["flow_radial"] = ((), fr, {"units": space})
    ds.attrs.update(
        {
            "sign": "positive" if sgn > 0 else "negative",
            "space_units": units,
            "window": [w0, w1],
            "baseline": [b0, b1],
            "sigma_space_px": float(sigma_space),
            "sigma_time_ms": float(sigma_time),
            "k": float(k),
            "min_duration_ms": float(min_duration),
            "fraction": float(fraction),
            "min_amplitude": float(min_amplitude),
            "earliest": float(earliest),
            "n_boot": int(n_boot),
            "seed": int(seed),
            "n_responsive": int(responsive.sum()),
            "n_in_fit": int(in_fit.sum()),
        }
    )
    return ds


def _flow_summary(s, valid, t, xc, yc, t_on, mean, in_fit, ox, oy, dt, dx):
    """Median speed and mean outward velocity of the optical flow during the rise."""
    from wavesim.analysis import optical_flow

    after = t >= t_on
    if after.sum() < 3:
        return math.nan, math.nan
    t_peak = float(t[after][np.argmax(mean[after])])
    sel = (t >= t_on) & (t <= t_peak)
    if sel.sum() < 3:
        return math.nan, math.nan
    movie = np.where(valid[None], s[sel], np.nan)
    da = xr.DataArray(movie, dims=("time", "y", "x"),
                      coords={"time": t[sel], "y": yc, "x": xc})  # fmt: skip
    fl = optical_flow(da, kind="amplitude", dx=dx, dt=dt)
    vx = np.asarray(fl["vx"].values)
    vy = np.asarray(fl["vy"].values)
    fitmap = np.zeros(valid.shape, bool)
    fitmap[valid] = in_fit
    xx, yy = np.meshgrid(xc, yc)
    rx, ry = xx - ox, yy - oy
    rr = np.hypot(rx, ry)
    ok = fitmap & (rr > 0)
    if not ok.any():
        return math.nan, math.nan
    speed = np.hypot(vx, vy)[:, ok]
    radial = ((vx * rx + vy * ry) / np.where(rr > 0, rr, 1.0))[:, ok]
    return float(np.nanmedian(speed)), float(np.nanmean(radial))


def format_evoked(ev: xr.Dataset) -> str:
    """A few lines of text summarising :func:`evoked_response`'s result."""

    def rng(name):
        lo, hi = (float(v) for v in ev[f"{name}_ci"].values)
        return f"[{lo:.3g}, {hi:.3g}]"

    u = ev.attrs.get("space_units", "px")
    lines = [
        f"response sign: {ev.attrs['sign']}; {ev.attrs['n_responsive']} responsive pixels, "
        f"{ev.attrs['n_in_fit']} in the spread fit",
        f"onset: {float(ev.onset_time):.1f} ms (95 % {rng('onset_time')}) at x = "
        f"{float(ev.onset_x):.2f} {rng('onset_x')}, y = {float(ev.onset_y):.2f} "
        f"{rng('onset_y')} {u}; mask-averaged signal: {float(ev.mean_onset_time):.1f} ms",
        f"spread: speed {float(ev.speed):.3g} {u}/ms (95 % {rng('speed')}), latency vs distance "
        f"r = {float(ev.radial_r):.2f} ({'outward' if float(ev.radial_r) > 0 else 'inward'})",
        f"sector speeds ({u}/ms): "
        + ", ".join(
            f"{float(a):.0f}°: {float(s):.2g}"
            for a, s in zip(ev.sector.values, ev.sector_speed.values, strict=True)
        ),
        f"planar component: towards {float(ev.plane_direction):.0f}° at "
        f"{float(ev.plane_speed):.3g} {u}/ms",
    ]
    if "flow_speed" in ev:
        lines.append(
            f"optical flow during the rise: median speed {float(ev.flow_speed):.3g} {u}/ms, "
            f"mean outward velocity {float(ev.flow_radial):.3g} {u}/ms"
        )
    return "\n".join(lines)
