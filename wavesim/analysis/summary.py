"""One-call summary of the waves in a phase movie: speeds, directions, singularities, patterns.

:func:`wave_summary` runs the analyzers of :mod:`wavesim.analysis` on a phase movie (or on a
simulation store, from which it computes the oscillator phase) and condenses their outputs into one
:class:`xarray.Dataset`:

* **local speed and direction** (:func:`~wavesim.analysis.phase_gradient`): histograms with their
  bin edges as coordinates, median and interquartile range of the speed, circular mean and
  resultant length of the direction;
* **per frame**: the phase gradient directionality (:func:`~wavesim.analysis.
  phase_gradient_directionality`), the plane-wave fit (:func:`~wavesim.analysis.plane_wave_fit`:
  speed, direction, fit quality), the number of +1 and −1 phase singularities
  (:func:`~wavesim.analysis.phase_singularities`);
* **singularity tracks** (:func:`~wavesim.analysis.track_singularities`): the distribution of track
  lifetimes and the number of birth/death events of each kind;
* **pattern occupancy** (:func:`~wavesim.analysis.flow` +
  :func:`~wavesim.analysis.classify_patterns`): the fraction of frame pairs in which each pattern
  kind occurs. Optical flow is the slow part (~5 ms per pair at 64², 30–50 ms at 128², ~0.4 s at
  256²), so it runs by default only on lattices of at most 128² sites; ``pattern_stride`` thins
  the frame pairs.

:func:`analyze_waves` returns the summary together with the full analyzer outputs (what
``wavesim analyze`` writes into the store's ``analysis/`` groups).

Units and signs follow ``docs/conventions.md`` (mm, ms, rad; k = −∇φ; speed = (∂φ/∂t)/|∇φ|);
every variable and coordinate carries ``attrs["units"]``. The methods are described in
``docs/analysis.md``.
"""

from __future__ import annotations

import inspect
import math
import numbers
import tomllib

import numpy as np
import xarray as xr

from wavesim.analysis.phase import space_units
from wavesim.analysis.singularities import EVENT_KINDS

__all__ = ["analyze_waves", "wave_summary", "write_analysis"]

#: Lattices up to this many sites get pattern classification by default (optical flow is slow).
PATTERN_MAX_SITES = 128 * 128
#: Largest number of site-frames per block of frames processed at once (float64: 16 MiB per
#: array; the phase gradient holds ~6 of them).
_CHUNK_VALUES = 1 << 21
#: Largest number of local speeds (and directions) kept for the quantiles and histograms; longer
#: movies are sampled every k-th frame (``attrs["distribution_frame_stride"]``).
_SAMPLE_VALUES = 1 << 22


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------
def _store_periodic(ds: xr.Dataset) -> bool | None:
    """``True``/``False`` from the boundary of the store's scenario, ``None`` if unknown."""
    text = ds.attrs.get("scenario")
    if not text:
        return None
    try:
        lattice = tomllib.loads(str(text)).get("lattice", {})
    except tomllib.TOMLDecodeError:
        return None
    boundary = lattice.get("boundary") if isinstance(lattice, dict) else None
    return None if boundary is None else boundary == "periodic"


def _phase_input(data, omega, periodic):
    """``(phase DataArray (time, y, x) float, periodic bool, source description)``."""
    from wavesim.analysis.phase import oscillator_phase

    source = None
    if isinstance(data, xr.Dataset):
        if periodic is None:
            periodic = _store_periodic(data)
        if "phase" in data.data_vars:
            phase = data["phase"]
            source = phase.attrs.get("long_name", "phase variable")
        else:
            phase = oscillator_phase(data, omega)
            source = "oscillator phase"
        if "mask" in data.data_vars and set(data["mask"].dims) <= set(phase.dims):
            phase = phase.where(data["mask"] > 0)
    elif isinstance(data, xr.DataArray):
        phase = data
        if periodic is None and "periodic" in phase.attrs:
            periodic = bool(phase.attrs["periodic"])
    else:
        raise TypeError(
            "data must be a phase xarray.DataArray (dims (time, y, x), rad) or a simulation "
            f"store Dataset (wavesim.open_store); got {type(data).__name__}"
        )
    if omega is not None and not isinstance(data, xr.Dataset):
        raise ValueError("omega is only used to compute the oscillator phase of a store Dataset")
    missing = [d for d in ("time", "y", "x") if d not in phase.dims]
    if missing:
        raise ValueError(
            f"the phase must have dims (time, y, x); missing {missing} in {phase.dims}"
        )
    extra = [d for d in phase.dims if d not in ("time", "y", "x")]
    if extra:
        sizes = ", ".join(f"{d}: {phase.sizes[d]}" for d in extra)
        raise ValueError(
            f"wave_summary analyses one movie (time, y, x); the phase has extra dims ({sizes}): "
            f"select one, e.g. phase.isel({extra[0]}=0)"
        )
    if np.iscomplexobj(phase):
        phase = xr.apply_ufunc(np.angle, phase, keep_attrs=True)
    units = str(phase.attrs.get("units", "rad")).strip().lower()
    if units in {"deg", "degree", "degrees", "°"}:
        raise ValueError(f"the phase is in degrees ({units!r}); convert it to rad")
    phase = phase.transpose("time", "y", "x")
    if source is None:
        source = phase.attrs.get("long_name", str(phase.name or "phase"))
    return phase, bool(periodic), str(source)


def _reliable_frames(phase: xr.DataArray, reliable_only: bool) -> xr.DataArray:
    """Drop the frames flagged by a ``reliable(time)`` coordinate (band-pass phases)."""
    if not reliable_only or "reliable" not in phase.coords:
        return phase
    rel = np.asarray(phase["reliable"].values, dtype=bool)
    if rel.ndim != 1 or rel.size != phase.sizes["time"]:
        return phase
    if not rel.any():
        raise ValueError(
            "no frame of the phase is reliable (the band-pass filter's edges cover the whole "
            "record): analyse a longer record, a higher band, or pass reliable_only=False"
        )
    return phase.isel(time=np.flatnonzero(rel))


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _bin_edges(name, bins, default_range, units):
    """Histogram edges from an int (count) or an increasing array of edges."""
    if isinstance(bins, numbers.Integral) and not isinstance(bins, bool):
        n = _check_int(name, bins, 1)
        lo, hi = default_range
        if not (np.isfinite(lo) and np.isfinite(hi)):
            lo, hi = 0.0, 1.0
        if hi <= lo:
            hi = lo + max(abs(lo), 1.0) * 1e-6 if hi == lo else lo + 1.0
        return np.linspace(lo, hi, n + 1)
    edges = np.asarray(bins, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)):
        raise ValueError(f"{name} must be a bin count or at least 2 finite edges ({units})")
    if not np.all(np.diff(edges) > 0):
        raise ValueError(f"{name}: bin edges must increase; got {edges[:4]}...")
    return edges


def _histogram(prefix, values, edges, units, long_name, outside=True):
    """``(data_vars, coords)`` of a histogram along dim ``<prefix>_bin``."""
    counts, _ = np.histogram(values, bins=edges)
    dim = f"{prefix}_bin"
    coords = {
        dim: (dim, 0.5 * (edges[:-1] + edges[1:]), {"units": units, "long_name": "bin centre"}),
        f"{dim}_lower": (dim, edges[:-1], {"units": units, "long_name": "lower bin edge"}),
        f"{dim}_upper": (dim, edges[1:], {"units": units, "long_name": "upper bin edge"}),
    }
    data = {
        f"{prefix}_count": (
            dim,
            counts.astype(np.int64),
            {
                "units": "1",
                "long_name": f"histogram of {long_name}",
                "note": "bins are [lower, upper), the last one [lower, upper]",
            },
        ),
    }
    if outside:
        data[f"{prefix}_below"] = ((), int(np.count_nonzero(values < edges[0])), {"units": "1"})
        data[f"{prefix}_above"] = ((), int(np.count_nonzero(values > edges[-1])), {"units": "1"})
    return data, coords


def _quantiles(values):
    if values.size == 0:
        return (math.nan,) * 3
    return tuple(float(q) for q in np.quantile(values, [0.25, 0.5, 0.75]))


def _progress(total, desc, enabled):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=not enabled, leave=False)


# --------------------------------------------------------------------------------------------
# stages
# --------------------------------------------------------------------------------------------
def _gradient_stage(phase, plane_wave, stride, progress):
    """Phase gradients (sampled values, per-frame PGD and median speed) and plane-wave fits."""
    from wavesim.analysis.velocity import (
        phase_gradient,
        phase_gradient_directionality,
        plane_wave_fit,
    )

    nt, ny, nx = (phase.sizes[d] for d in ("time", "y", "x"))
    chunk = max(4, _CHUNK_VALUES // (ny * nx))
    pgd = np.full(nt, np.nan)
    frame_speed = np.full(nt, np.nan)
    speeds, directions, fits = [], [], []
    with _progress(nt, "phase gradients" + (" + plane-wave fits" if plane_wave else ""),
                   progress) as bar:  # fmt: skip
        for t0 in range(0, nt, chunk):
            t1 = min(nt, t0 + chunk)
            a, b = max(0, t0 - 1), min(nt, t1 + 1)  # one frame of overlap for d/dt
            block = phase.isel(time=slice(a, b)).astype(np.float64)
            block = block.copy(data=np.asarray(block.values))
            keep = {"time": slice(t0 - a, t1 - a)}
            grad = phase_gradient(block).isel(keep)
            pgd[t0:t1] = phase_gradient_directionality(grad).values
            sp = grad["speed"].values
            di = grad["direction"].values
            for k in range(t1 - t0):
                ok = np.isfinite(sp[k])
                if ok.any():
                    frame_speed[t0 + k] = float(np.median(sp[k][ok]))
            sampled = np.flatnonzero((np.arange(t0, t1) % stride) == 0)
            if sampled.size:
                s = sp[sampled]
                speeds.append(s[np.isfinite(s)])
                d = di[sampled]
                directions.append(d[np.isfinite(d)])
            if plane_wave:
                fits.append(plane_wave_fit(block).isel(keep))
            bar.update(t1 - t0)
    speeds = np.concatenate(speeds) if speeds else np.zeros(0)
    directions = np.concatenate(directions) if directions else np.zeros(0)
    fit = xr.concat(fits, dim="time", combine_attrs="override") if fits else None
    return pgd, frame_speed, speeds, directions, fit


def _pattern_stage(phase, stride, flow_options, pattern_options, progress):
    """Optical flow of the phase and its patterns, block by block; the patterns concatenated."""
    from wavesim.analysis.flow import optical_flow
    from wavesim.analysis.patterns import KINDS, classify_patterns

    nt, ny, nx = (phase.sizes[d] for d in ("time", "y", "x"))
    npairs = nt - 1
    if stride == 1:
        # Blocks of consecutive pairs with the frames their 4-frame time stencils need: the
        # result equals one optical_flow call on the whole movie, with bounded memory.
        per = max(1, _CHUNK_VALUES // (ny * nx) - 3)
        blocks = []
        for p0 in range(0, npairs, per):
            p1 = min(npairs, p0 + per)
            a = max(0, min(p0 - 1, nt - 4))
            b = min(nt, max(p1 + 2, a + 4))
            blocks.append((a, b, p0, p1))
    else:
        # Separate pairs: the time derivative from the two frames of each pair.
        blocks = [(p, p + 2, p, p + 1) for p in range(0, npairs, stride)]
    opts = {"kind": "phase", **(flow_options or {})}
    n_iter = opts.get("n_iter", inspect.signature(optical_flow).parameters["n_iter"].default)
    per_pattern, per_frame = [], []
    not_converged = 0
    flow_attrs = {}
    with _progress(sum(p1 - p0 for *_, p0, p1 in blocks), "optical flow + patterns",
                   progress) as bar:  # fmt: skip
        offset = 0
        for a, b, p0, p1 in blocks:
            flow = optical_flow(phase.isel(time=slice(a, b)), **opts)
            flow = flow.isel(time=slice(p0 - a, p1 - a))
            flow_attrs = dict(flow.attrs)
            not_converged += int(np.count_nonzero(flow["iterations"].values >= n_iter))
            pat = classify_patterns(flow, **(pattern_options or {}))
            n = pat.sizes["frame"]
            pat = pat.assign_coords(frame=pat["frame"].values + offset)
            pat["frame_index"] = pat["frame_index"] + offset
            per_pattern.append(pat.drop_dims(["frame", "category"], errors="ignore"))
            per_frame.append(pat[["count", "order_parameter", "mean_speed", "mean_direction"]])
            offset += n
            bar.update(p1 - p0)
    patterns = xr.merge(
        [
            xr.concat(per_pattern, dim="pattern", combine_attrs="override"),
            xr.concat(per_frame, dim="frame", combine_attrs="override"),
        ],
        combine_attrs="override",
    )
    patterns = patterns.assign_coords(pattern=np.arange(patterns.sizes["pattern"]))
    patterns["pattern"].attrs["units"] = "1"
    patterns["frame"].attrs["units"] = "1"
    count = patterns["count"].values
    patterns["occupancy"] = (
        ("category",),
        (count > 0).mean(axis=0) if count.shape[0] else np.full(len(KINDS), np.nan),
        {"units": "1", "long_name": "fraction of frame pairs in which each kind occurs"},
    )
    patterns.attrs.update(
        {
            "frame_pairs": int(count.shape[0]),
            "pair_stride": int(stride),
            "optical_flow": {k: v for k, v in flow_attrs.items() if k != "not_converged"},
            "not_converged": int(not_converged),
        }
    )
    return patterns


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
def analyze_waves(
    data,
    *,
    omega: float | None = None,
    periodic: bool | None = None,
    speed_bins=50,
    speed_range: tuple[float, float] | None = None,
    direction_bins: int = 36,
    lifetime_bins=20,
    plane_wave: bool = True,
    patterns: bool | None = None,
    pattern_stride: int = 1,
    flow_options: dict | None = None,
    pattern_options: dict | None = None,
    track_options: dict | None = None,
    reliable_only: bool = True,
    progress: bool = False,
) -> dict[str, xr.Dataset]:
    """Run the wave analyzers on a phase movie and summarise them (see :func:`wave_summary`).

    Takes the same arguments as :func:`wave_summary`.

    Returns
    -------
    dict of str to xarray.Dataset
        ``"summary"`` (the :func:`wave_summary` Dataset), ``"singularities"``
        (:func:`~wavesim.analysis.phase_singularities`, with the ``track_id`` of every point),
        ``"tracks"`` (:func:`~wavesim.analysis.track_singularities`, with the per-frame charge
        balance), ``"plane_wave"`` (:func:`~wavesim.analysis.plane_wave_fit`, when
        ``plane_wave``) and ``"patterns"`` (:func:`~wavesim.analysis.classify_patterns` of the
        optical flow, frame pairs ``frame`` at the pair midpoints ``frame_time``, when patterns
        are computed).
    """
    from wavesim.analysis.patterns import KINDS
    from wavesim.analysis.singularities import phase_singularities, track_singularities

    phase, periodic, source = _phase_input(data, omega, periodic)
    phase = _reliable_frames(phase, reliable_only)
    nt, ny, nx = (phase.sizes[d] for d in ("time", "y", "x"))
    if nt < 2:
        raise ValueError(f"the phase needs at least 2 frames along 'time'; got {nt}")
    if "time" not in phase.coords or "x" not in phase.coords or "y" not in phase.coords:
        raise ValueError(
            "the phase needs coordinates time (ms), y and x (mm); e.g. from oscillator_phase or "
            "analytic_phase of a store"
        )
    pattern_stride = _check_int("pattern_stride", pattern_stride, 1)
    direction_bins = _check_int("direction_bins", direction_bins, 1)
    if patterns is None:
        patterns = ny * nx <= PATTERN_MAX_SITES
    patterns = bool(patterns)
    # Materialise once (a lazy store would otherwise be read by every stage).
    phase = phase.copy(data=np.asarray(phase.values))
    times = np.asarray(phase["time"].values, dtype=float)
    dt = float(np.median(np.diff(times)))
    dx = float(abs(phase["x"].values[1] - phase["x"].values[0])) if nx > 1 else math.nan
    su = space_units(phase)  # "mm", or "px" for a recording of unknown spacing
    vu = f"{su}/ms"

    # -- local gradients, plane-wave fits -------------------------------------------------------
    stride = max(1, math.ceil(nt * ny * nx / _SAMPLE_VALUES))
    pgd, frame_speed, speeds, directions, fit = _gradient_stage(phase, plane_wave, stride, progress)

    # -- singularities and tracks ---------------------------------------------------------------
    sings = phase_singularities(phase, periodic=periodic)
    tracks = track_singularities(sings, phase=phase, **(track_options or {}))
    sings = sings.assign(track_id=tracks["track_id"])
    frame = np.asarray(sings["frame"].values, dtype=np.int64)
    charge = np.asarray(sings["charge"].values)
    n_pos = np.bincount(frame[charge > 0], minlength=nt)
    n_neg = np.bincount(frame[charge < 0], minlength=nt)

    # -- patterns -------------------------------------------------------------------------------
    pats = (
        _pattern_stage(phase, pattern_stride, flow_options, pattern_options, progress)
        if patterns
        else None
    )

    # -- distributions --------------------------------------------------------------------------
    if speed_range is None:
        if speeds.size:
            p_lo, p_hi = np.quantile(speeds, [0.005, 0.995])
            lo = min(0.0, float(p_lo))
            rng = (lo, float(p_hi) + 0.05 * (float(p_hi) - lo))  # 5 % headroom
        else:
            rng = (0.0, 1.0)
    else:
        try:
            rng = tuple(float(v) for v in speed_range)
        except (TypeError, ValueError):
            rng = ()
        if len(rng) != 2 or not all(np.isfinite(rng)) or not rng[0] < rng[1]:
            raise ValueError(f"speed_range must be (low, high) in {vu}; got {speed_range!r}")
    s_edges = _bin_edges("speed_bins", speed_bins, rng, vu)
    d_edges = np.linspace(-np.pi, np.pi, direction_bins + 1)
    lifetimes = np.asarray(tracks["lifetime"].values, dtype=float)
    l_hi = float(lifetimes.max()) if lifetimes.size else 0.0
    l_edges = _bin_edges("lifetime_bins", lifetime_bins, (0.0, max(l_hi, dt)), "ms")

    data_vars: dict = {}
    coords: dict = {
        "time": ("time", times, {"units": "ms", "long_name": "frame time"}),
        "event_kind": ("event_kind", np.array(EVENT_KINDS, dtype=object), {"units": "1"}),
    }
    for prefix, values, edges, units, name in (
        ("speed", speeds, s_edges, vu, "the local phase speed (dphi/dt)/|grad phi|"),
        ("direction", directions, d_edges, "rad", "the local propagation direction"),
        ("lifetime", lifetimes, l_edges, "ms", "singularity track lifetimes"),
    ):
        dv, cv = _histogram(prefix, values, edges, units, name, outside=prefix != "direction")
        data_vars.update(dv)
        coords.update(cv)

    q25, q50, q75 = _quantiles(speeds)
    scalar = {
        "speed_median": (q50, vu, "median local phase speed"),
        "speed_q25": (q25, vu, "25th percentile of the local phase speed"),
        "speed_q75": (q75, vu, "75th percentile of the local phase speed"),
        "speed_iqr": (q75 - q25, vu, "interquartile range of the local phase speed"),
        "speed_negative_fraction": (
            float(np.mean(speeds < 0)) if speeds.size else math.nan,
            "1",
            "fraction of local speeds < 0 (phase running backwards in time)",
        ),
    }
    if directions.size:
        resultant = np.mean(np.exp(1j * directions))
        circ_mean, r_len = float(np.angle(resultant)), float(abs(resultant))
    else:
        circ_mean = r_len = math.nan
    scalar["direction_circular_mean"] = (circ_mean, "rad", "circular mean local direction")
    scalar["direction_resultant_length"] = (r_len, "1", "resultant length of the directions")
    censored = (tracks["birth_kind"].values == "start") | (tracks["death_kind"].values == "end")
    scalar.update(
        {
            "n_tracks": (int(lifetimes.size), "1", "singularity tracks"),
            "n_tracks_censored": (
                int(np.count_nonzero(censored)),
                "1",
                "tracks present in the first or last frame (lifetime is a lower bound)",
            ),
            "lifetime_mean": (
                float(lifetimes.mean()) if lifetimes.size else math.nan,
                "ms",
                "mean track lifetime (death - birth)",
            ),
            "lifetime_median": (
                float(np.median(lifetimes)) if lifetimes.size else math.nan,
                "ms",
                "median track lifetime",
            ),
            "singularities_per_frame": (
                float((n_pos + n_neg).mean()),
                "1",
                "mean number of phase singularities per frame",
            ),
            "pgd_mean": (
                float(np.nanmean(pgd)) if np.isfinite(pgd).any() else math.nan,
                "1",
                "mean phase gradient directionality",
            ),  # fmt: skip
        }
    )
    for name, (value, units, long_name) in scalar.items():
        data_vars[name] = ((), value, {"units": units, "long_name": long_name})

    data_vars["event_count"] = (
        "event_kind",
        np.array([int(tracks.attrs.get(f"n_{k}", 0)) for k in EVENT_KINDS], dtype=np.int64),
        {"units": "1", "long_name": "birth/death events of singularity tracks, by kind"},
    )
    per_frame = {
        "pgd": (pgd, "1", "phase gradient directionality"),
        "local_speed_median": (frame_speed, vu, "median local phase speed of the frame"),
        "singularities_positive": (n_pos, "1", "phase singularities of charge +1"),
        "singularities_negative": (n_neg, "1", "phase singularities of charge -1"),
        "net_charge": (n_pos - n_neg, "1", "sum of the singularity charges"),
    }
    if fit is not None:
        per_frame["plane_wave_speed"] = (fit["speed"].values, vu, "plane-wave fit: speed")
        per_frame["plane_wave_direction"] = (
            fit["direction"].values,
            "rad",
            "plane-wave fit: direction, counter-clockwise from +x",
        )
        per_frame["plane_wave_fit_quality"] = (
            fit["fit_quality"].values,
            "1",
            "plane-wave fit: resultant length R in [0, 1]",
        )
    for name, (values, units, long_name) in per_frame.items():
        data_vars[name] = ("time", np.asarray(values), {"units": units, "long_name": long_name})

    if pats is not None:
        coords["category"] = ("category", np.array(KINDS, dtype=object), {"units": "1"})
        data_vars["pattern_occupancy"] = (
            "category",
            pats["occupancy"].values,
            {"units": "1", "long_name": "fraction of frame pairs in which each pattern occurs"},
        )
        counts = pats["count"].values
        data_vars["pattern_mean_count"] = (
            "category",
            counts.mean(axis=0) if counts.shape[0] else np.full(len(KINDS), np.nan),
            {"units": "1", "long_name": "mean number of patterns of each kind per frame pair"},
        )

    summary = xr.Dataset(data_vars, coords=coords)
    summary.attrs = {
        "phase_source": source,
        "frames": int(nt),
        "shape": [int(ny), int(nx)],
        "dx": dx,
        "dt": dt,
        "dx_units": su,
        "dt_units": "ms",
        "periodic": int(periodic),
        "distribution_frame_stride": int(stride),
        "distribution_values": int(speeds.size),
        "plane_wave": int(bool(plane_wave)),
        "patterns": int(patterns),
        "pattern_stride": int(pattern_stride) if patterns else 0,
        "pattern_frame_pairs": int(pats.attrs["frame_pairs"]) if pats is not None else 0,
        "charge_conserved": int(tracks.attrs.get("charge_conserved", -1)),
        "conventions": "docs/conventions.md: phase = omega t - k.x, k = -grad phase, speed = "
        "(dphi/dt)/|grad phi|, directions counter-clockwise from +x",
    }
    out = {"summary": summary, "singularities": sings, "tracks": tracks}
    if fit is not None:
        out["plane_wave"] = fit
    if pats is not None:
        out["patterns"] = pats
    return out


def wave_summary(
    data,
    *,
    omega: float | None = None,
    periodic: bool | None = None,
    speed_bins=50,
    speed_range: tuple[float, float] | None = None,
    direction_bins: int = 36,
    lifetime_bins=20,
    plane_wave: bool = True,
    patterns: bool | None = None,
    pattern_stride: int = 1,
    flow_options: dict | None = None,
    pattern_options: dict | None = None,
    track_options: dict | None = None,
    reliable_only: bool = True,
    progress: bool = False,
) -> xr.Dataset:
    """Summarise the waves of a phase movie in one Dataset: speeds, directions, singularities.

    Parameters
    ----------
    data : xarray.DataArray or xarray.Dataset
        A phase movie in rad with dims ``(time, y, x)`` and coordinates in ms and mm (from
        :func:`~wavesim.analysis.oscillator_phase`, :func:`~wavesim.analysis.analytic_phase`, ...;
        complex fields give their angle), or a Dataset: a simulation store
        (:func:`wavesim.open_store`), whose oscillator phase is computed (sites with ``mask == 0``
        are left out), or a Dataset with a ``phase`` variable (the output of ``analytic_phase``).
        Select one member of a batched store first (``ds.isel(member=0)``).
    omega : float, optional
        Angular frequency (rad/ms) for the oscillator phase of a store; default √omega2 of its
        scenario (see :func:`~wavesim.analysis.oscillator_phase`).
    periodic : bool, optional
        Torus topology for the singularities. Default: from the store's scenario
        (``lattice.boundary == "periodic"``), else ``phase.attrs["periodic"]``, else False.
    speed_bins : int or array_like, default 50
        Number of speed bins, or their edges in mm/ms.
    speed_range : (float, float), optional
        Range of the speed bins (mm/ms) when ``speed_bins`` is a count. Default: from
        min(0, 0.5th percentile) to the 99.5th percentile of the local speeds plus 5 % of the range
        (the counts outside are ``speed_below`` and ``speed_above``).
    direction_bins : int, default 36
        Number of direction bins over [−π, π].
    lifetime_bins : int or array_like, default 20
        Number of lifetime bins over [0, longest lifetime], or their edges in ms.
    plane_wave : bool, default True
        Fit a plane wave to every frame (~52 frames/s at 256², ~1 ms per frame at 10²).
    patterns : bool, optional
        Classify the patterns of the optical flow. Default: only for lattices of at most 128²
        sites (optical flow costs ~5 ms per frame pair at 64², 30–50 ms at 128², ~0.4 s at 256²).
    pattern_stride : int, default 1
        Analyse every frame pair (1, with 4-frame time stencils) or the pairs
        ``(t, t+1)`` for t = 0, s, 2s, ... (s > 1; time derivative from the two frames).
    flow_options, pattern_options, track_options : dict, optional
        Keyword arguments for :func:`~wavesim.analysis.flow` (default ``kind="phase"``),
        :func:`~wavesim.analysis.classify_patterns` and
        :func:`~wavesim.analysis.track_singularities` (``max_distance``, ``max_gap``, ...).
    reliable_only : bool, default True
        Drop the frames whose ``reliable`` coordinate is False (the filter edges of a band-pass
        phase).
    progress : bool, default False
        Show tqdm progress bars for the slow stages.

    Returns
    -------
    xarray.Dataset
        Per frame, on ``time`` (ms): ``pgd``, ``local_speed_median`` (mm/ms),
        ``plane_wave_speed`` (mm/ms), ``plane_wave_direction`` (rad),
        ``plane_wave_fit_quality``, ``singularities_positive``, ``singularities_negative``,
        ``net_charge``.

        Distributions: ``speed_count`` on ``speed_bin`` (coordinates: the bin centre
        ``speed_bin`` and the edges ``speed_bin_lower``, ``speed_bin_upper``, mm/ms), with
        ``speed_below``/``speed_above`` (counts outside the bins), ``speed_median``,
        ``speed_q25``, ``speed_q75``, ``speed_iqr`` (mm/ms) and ``speed_negative_fraction``;
        ``direction_count`` on ``direction_bin`` (rad) with ``direction_circular_mean`` (rad) and
        ``direction_resultant_length``; ``lifetime_count`` on ``lifetime_bin`` (ms) with
        ``lifetime_mean``, ``lifetime_median`` (ms), ``n_tracks`` and ``n_tracks_censored``
        (tracks present in the first or last frame: their lifetimes are lower bounds);
        ``event_count`` on ``event_kind`` (``pair_creation``, ``pair_annihilation``,
        ``boundary_entry``, ``boundary_exit``, ``birth``, ``death``);
        ``singularities_per_frame``, ``pgd_mean``.

        With patterns: ``pattern_occupancy`` (fraction of frame pairs in which each kind occurs)
        and ``pattern_mean_count`` on ``category`` (``plane_wave``, ``synchrony``, ``source``,
        ``sink``, ``spiral_ccw``, ``spiral_cw``, ``saddle``).

        Every variable has ``attrs["units"]``. attrs: ``phase_source``, ``frames``, ``shape``,
        ``dx`` (mm), ``dt`` (ms), ``periodic``, ``distribution_frame_stride`` (the speed and
        direction distributions use every k-th frame when the movie holds more than 2²²
        site-frames),
        ``distribution_values``, ``plane_wave``, ``patterns``, ``pattern_stride``,
        ``pattern_frame_pairs``, ``charge_conserved`` (1 when the detected charges match the
        boundary winding in every frame).

    Raises
    ------
    ValueError
        For a phase without dims/coordinates ``(time, y, x)``, extra (batch) dims, fewer than 2
        frames, bad bins, or no reliable frame.
    TypeError
        When ``data`` is not an xarray object.

    Notes
    -----
    Local speeds are signed ((∂φ/∂t)/|∇φ| is negative where the phase runs backwards) and
    heavy-tailed (|∇φ| → 0 at phase plateaus gives huge speeds; non-finite values are dropped):
    prefer the median and IQR to means. Directions are those of k = −∇φ, whatever the sign of
    ∂φ/∂t. At a singularity core |∇φ| is large and the speed small. See ``docs/analysis.md``.

    Examples
    --------
    >>> t = np.arange(8.0)[:, None, None]  # ms
    >>> y, x = np.mgrid[0:16, 0:16] * 0.1  # mm
    >>> phase = xr.DataArray(0.5 * t - 2.0 * x, dims=("time", "y", "x"),
    ...                      coords={"time": t[:, 0, 0], "y": y[:, 0], "x": x[0]})
    >>> s = wave_summary(phase, patterns=False)
    >>> round(float(s["speed_median"]), 6), int(s["singularities_positive"].sum())
    (0.25, 0)
    """
    return analyze_waves(
        data,
        omega=omega,
        periodic=periodic,
        speed_bins=speed_bins,
        speed_range=speed_range,
        direction_bins=direction_bins,
        lifetime_bins=lifetime_bins,
        plane_wave=plane_wave,
        patterns=patterns,
        pattern_stride=pattern_stride,
        flow_options=flow_options,
        pattern_options=pattern_options,
        track_options=track_options,
        reliable_only=reliable_only,
        progress=progress,
    )["summary"]


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------
#: Prefix of the groups written by :func:`write_analysis` (and ``wavesim analyze``).
ANALYSIS_GROUP = "analysis"


def _zarr_ready(ds: xr.Dataset) -> xr.Dataset:
    """Strings as variable-length (object) arrays: zarr v3 has no spec for fixed-width ones."""
    out = ds.copy()
    for name, var in list(out.variables.items()):
        if var.dtype.kind == "U":
            new = var.copy(data=np.asarray(var.values, dtype=object))
            if name in out.coords:
                out = out.assign_coords({name: new})
            else:
                out[name] = new
    for var in out.variables.values():
        var.encoding = {}
    return out


def write_analysis(results, path, *, attrs=None, new_store=False, overwrite=False):
    """Write analysis Datasets as groups ``analysis/<name>`` of a zarr v3 store.

    Parameters
    ----------
    results : mapping of str to xarray.Dataset
        E.g. the output of :func:`analyze_waves` (or a selection of it).
    path : str or pathlib.Path
        A wavesim store (the groups are added next to its data; the store's own variables and
        root attributes are not touched), or with ``new_store=True`` a new store.
    attrs : mapping, optional
        Attributes added to every written group (e.g. how the phase was computed).
    new_store : bool, default False
        Create ``path`` as a new zarr v3 store holding only the analysis groups.
    overwrite : bool, default False
        With ``new_store``: replace an existing zarr store at ``path``.

    Returns
    -------
    list of str
        The group paths written, e.g. ``["analysis/summary", ...]``.

    Notes
    -----
    A group that exists already is replaced (``to_zarr(mode="w")`` on that group only). The
    consolidated metadata of the root is rewritten afterwards: zarr and xarray read a group's
    metadata from the root's consolidated copy when there is one, so without this step a
    replaced group would still show its old contents. Read a group back with
    ``xarray.open_zarr(path, group="analysis/summary")``.
    """
    from pathlib import Path

    import zarr

    from wavesim.store import _json_safe, consolidate, prepare_path

    path = Path(path)
    if new_store:
        prepare_path(path, overwrite)
        root_attrs = {"wavesim_analysis": 1, **(attrs or {})}
        root_attrs = {k: _json_safe(v, k) for k, v in root_attrs.items()}
        zarr.open_group(str(path), mode="w-", zarr_format=3, attributes=root_attrs)
    elif not path.exists():
        raise FileNotFoundError(f"no zarr store at {path}: the path does not exist")
    elif not (path / "zarr.json").is_file():
        raise ValueError(f"{path} is not a zarr v3 store (no zarr.json)")
    written = []
    extra = {k: _json_safe(v, k) for k, v in (attrs or {}).items()}
    for name, ds in results.items():
        group = f"{ANALYSIS_GROUP}/{name}"
        out = _zarr_ready(ds)
        out.attrs = {k: _json_safe(v, k) for k, v in {**ds.attrs, **extra}.items()}
        out.to_zarr(str(path), group=group, mode="w", zarr_format=3, consolidated=False)
        written.append(group)
    consolidate(path)
    return written
