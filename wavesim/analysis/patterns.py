"""Wave patterns of velocity fields: critical points, plane waves, synchrony, and their events.

Per frame of an optical-flow field ``v = (vx, vy)`` (:func:`wavesim.analysis.flow`):

* **critical points**, where ``vx = vy = 0``: plaquettes around which the angle of
  ``vx + i vy`` winds (the Poincare index, counted like the topological charge of a phase field by
  :func:`wavesim.analysis.winding.find_singularities`), placed at the zero of the bilinear
  interpolant of ``vx + i vy``, and classified by the Jacobian ``J = d(vx, vy)/d(x, y)`` there
  (NeuroPattToolbox rules): saddle, source (unstable node), sink (stable node), spiral (focus)
  counter-clockwise or clockwise;
* **plane waves**: frames whose order parameter ``|<v>| / <|v|>`` reaches a threshold;
* **synchrony**: frames whose mean speed ``<|v|>`` is at most a threshold.

Conventions (``docs/conventions.md``): ``vx`` along ``+x`` (columns), ``vy`` along ``+y`` (rows);
counter-clockwise refers to the right-handed ``(x, y)`` frame (as seen in ``origin="lower"``
plots); ``curl = dvy/dx - dvx/dy > 0`` is counter-clockwise rotation.
"""

from __future__ import annotations

import numbers

import numpy as np
import xarray as xr

from wavesim.analysis.phase import space_units
from wavesim.analysis.winding import find_singularities

__all__ = ["KINDS", "classify_patterns", "pattern_events"]

#: Pattern kinds, in the order of the ``category`` coordinate.
KINDS = ("plane_wave", "synchrony", "source", "sink", "spiral_ccw", "spiral_cw", "saddle")
_FRAME_KINDS = ("plane_wave", "synchrony")
#: Relative tolerance on the discriminant tr^2 - 4 det below which the eigenvalues count as a
#: complex pair (a focus): guards a star node (J = c I, discriminant exactly 0) against rounding.
_DISC_RTOL = 1e-9


def _check_fraction(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}")
    return float(value)


def _check_nonneg(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a non-negative number; got {value!r}")
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a non-negative finite number; got {value!r}")
    return value


def _kind_codes(kinds):
    """Position of each kind in :data:`KINDS`."""
    code = {name: c for c, name in enumerate(KINDS)}
    return np.array([code[str(k)] for k in kinds], dtype=np.int64)


def _velocity_parts(velocity, dx, dt):
    """``(v complex DataArray (..., time, y, x), dx, dt, velocity units)``."""
    if isinstance(velocity, xr.Dataset):
        missing = [n for n in ("vx", "vy") if n not in velocity.data_vars]
        if missing:
            raise ValueError(
                f"velocity must be an optical-flow Dataset with variables 'vx' and 'vy'; missing "
                f"{missing} (data variables: {', '.join(map(str, velocity.data_vars)) or 'none'})"
            )
        vel = velocity["vx"] + 1j * velocity["vy"]
        units = velocity["vx"].attrs.get("units", velocity.attrs.get("velocity_units", "mm/ms"))
        dx = velocity.attrs.get("dx", dx) if dx is None else dx
        dt = velocity.attrs.get("dt", dt) if dt is None else dt
    elif isinstance(velocity, xr.DataArray):
        if not np.issubdtype(velocity.dtype, np.complexfloating):
            raise ValueError(
                "velocity must be a Dataset with 'vx' and 'vy' or a complex array vx + 1j*vy; got "
                f"a real DataArray of dtype {velocity.dtype}"
            )
        vel = velocity
        units = velocity.attrs.get("units", "mm/ms")
    else:
        arr = np.asarray(velocity)
        if not np.iscomplexobj(arr):
            raise ValueError(
                "velocity must be a Dataset with 'vx' and 'vy' or a complex array vx + 1j*vy; got "
                f"a real array of dtype {arr.dtype}"
            )
        if arr.ndim < 3:
            raise ValueError(f"velocity must have dims (..., time, y, x); got shape {arr.shape}")
        lead = [f"dim_{i}" for i in range(arr.ndim - 3)]
        vel = xr.DataArray(arr, dims=(*lead, "time", "y", "x"))
        units = "mm/ms"
    missing = [d for d in ("time", "y", "x") if d not in vel.dims]
    if missing:
        raise ValueError(f"velocity must have dims (..., time, y, x); missing {missing}")
    lead = [d for d in vel.dims if d not in ("time", "y", "x")]
    vel = vel.transpose(*lead, "time", "y", "x")
    if "x" in vel.coords and vel.sizes["x"] >= 2:
        dx_c = float(np.diff(vel["x"].values[:2])[0])
        if dx is not None and not np.isclose(float(dx), dx_c, rtol=1e-6):
            raise ValueError(f"dx={dx} disagrees with the x coordinate spacing {dx_c:g}")
        dx = dx_c
    if dx is None:
        raise ValueError("dx (pixel spacing, mm) is required when velocity has no 'x' coordinate")
    dx = float(dx)
    if not (np.isfinite(dx) and dx > 0):
        raise ValueError(f"dx must be a positive finite number; got {dx!r}")
    if "time" in vel.coords and vel.sizes["time"] >= 2:
        dt_c = float(np.median(np.diff(vel["time"].values.astype(float))))
        if dt is not None and not np.isclose(float(dt), dt_c, rtol=1e-6):
            raise ValueError(f"dt={dt} disagrees with the time coordinate spacing {dt_c:g}")
        dt = dt_c
    if dt is None:
        dt = 1.0 if "time" not in vel.coords else float("nan")
    return vel, dx, float(dt), units


def _node_derivative(f, batch, i, j, axis, spacing):
    """``np.gradient``-style derivative of ``f[batch, i, j]`` along the last (1) or row (0) axis."""
    ny, nx = f.shape[-2:]
    n = nx if axis == 1 else ny
    k = j if axis == 1 else i
    lo = np.maximum(k - 1, 0)
    hi = np.minimum(k + 1, n - 1)
    if axis == 1:
        a, b = f[(*batch, i, hi)], f[(*batch, i, lo)]
    else:
        a, b = f[(*batch, hi, j)], f[(*batch, lo, j)]
    return (a - b) / ((hi - lo) * spacing)


def _jacobian(v, batch, i, j, s, t, dx):
    """Jacobian ``[[dvx/dx, dvx/dy], [dvy/dx, dvy/dy]]`` at ``(j + s, i + t)``.

    Central differences at the four corners of the plaquette, interpolated bilinearly (as
    NeuroPattToolbox); where they touch a missing (NaN) pixel, the derivative of the bilinear
    interpolant of the plaquette itself.
    """
    ny, nx = v.shape[-2:]
    out = np.zeros((len(i), 2, 2))
    vx, vy = v.real, v.imag
    corners = {}
    for di, dj, wgt in (
        (0, 0, (1 - s) * (1 - t)),
        (0, 1, s * (1 - t)),
        (1, 0, (1 - s) * t),
        (1, 1, s * t),
    ):
        ii = np.minimum(i + di, ny - 1)
        jj = np.minimum(j + dj, nx - 1)
        corners[di, dj] = v[(*batch, ii, jj)]
        for r, comp in enumerate((vx, vy)):
            out[:, r, 0] += wgt * _node_derivative(comp, batch, ii, jj, 1, dx)
            out[:, r, 1] += wgt * _node_derivative(comp, batch, ii, jj, 0, dx)
    c00, c01, c10, c11 = corners[0, 0], corners[0, 1], corners[1, 0], corners[1, 1]
    ddx = ((c01 - c00) * (1 - t) + (c11 - c10) * t) / dx  # complex: (dvx + i dvy)/dx
    ddy = ((c10 - c00) * (1 - s) + (c11 - c01) * s) / dx
    local = np.stack(
        [np.stack([ddx.real, ddy.real], axis=-1), np.stack([ddx.imag, ddy.imag], axis=-1)], axis=1
    )
    bad = ~np.isfinite(out).all(axis=(1, 2))
    out[bad] = local[bad]
    return out


def _classify(index, jac):
    """Kind of each critical point from its Poincare index and Jacobian (see classify_patterns)."""
    tr = jac[:, 0, 0] + jac[:, 1, 1]
    det = jac[:, 0, 0] * jac[:, 1, 1] - jac[:, 0, 1] * jac[:, 1, 0]
    curl = jac[:, 1, 0] - jac[:, 0, 1]
    disc = tr * tr - 4.0 * det
    focus = (det > 0) & (disc < -_DISC_RTOL * (tr * tr + 4.0 * np.abs(det)))
    kind = np.where(tr >= 0, "source", "sink").astype(object)
    kind[focus] = np.where(curl[focus] > 0, "spiral_ccw", "spiral_cw")
    kind[index < 0] = "saddle"
    return kind, tr, det, curl


def classify_patterns(
    velocity,
    *,
    plane_wave_threshold=0.85,
    synchrony_threshold=0.0,
    edge_distance=2.0,
    dx=None,
    dt=None,
):
    """Find and classify the wave patterns of a velocity field, frame by frame.

    Parameters
    ----------
    velocity : xarray.Dataset, xarray.DataArray or array_like
        The output of :func:`wavesim.analysis.flow` (variables ``vx``, ``vy`` on
        ``(..., time, y, x)``, coordinates in mm/ms), or the complex field ``vx + 1j*vy`` as a
        DataArray or numpy array (then pass ``dx`` (mm) unless it has an ``x`` coordinate).
        ``vx`` points along ``+x`` (columns), ``vy`` along ``+y`` (rows). NaN marks missing
        pixels.
    plane_wave_threshold : float in [0, 1], default 0.85
        A frame is a **plane wave** when its order parameter
        ``|sum v| / sum |v|`` (over the finite pixels) is at least this (NeuroPattToolbox default).
    synchrony_threshold : float, default 0
        A frame is **synchrony** when its mean speed ``mean |v|`` is at most this, in the units of
        the velocity (mm/ms for optical-flow output). Optical flow goes to zero where the movie
        has no spatial gradient, so synchrony shows up as slow flow; the right threshold depends
        on the data (choose it from the distribution of ``mean_speed``). The default 0 flags only
        frames without any flow (e.g. a spatially uniform phase). Synchrony frames are not
        searched for critical points nor reported as plane waves.
    edge_distance : float, default 2.0
        Critical points closer than this (px) to the edge of the grid are dropped (the flow there
        is mostly filled in by the smoothness term; NeuroPattToolbox's default is 2).
    dx, dt : float, optional
        Pixel spacing (mm) and frame interval (ms) for array input without coordinates.

    Returns
    -------
    xarray.Dataset
        Along dim ``pattern`` (sorted by frame; within a frame the frame-level patterns first, then
        the critical points by plaquette row and column):

        * ``time`` (ms) and ``frame_index`` (position along ``time`` of the input);
        * ``kind`` -- one of :data:`KINDS`: ``"plane_wave"``, ``"synchrony"``, ``"source"``,
          ``"sink"``, ``"spiral_ccw"``, ``"spiral_cw"``, ``"saddle"``;
        * ``x``, ``y`` (mm) -- sub-pixel position of a critical point; NaN for frame-level
          patterns;
        * ``poincare_index`` -- winding of the velocity direction around the plaquette
          (``+1`` source/sink/spiral, ``-1`` saddle; 0 for frame-level patterns);
        * ``divergence`` (trace of J), ``curl`` (``dvy/dx - dvx/dy``), ``determinant`` of J at
          the point (NaN for frame-level patterns); units velocity/mm, e.g. 1/ms;
        * ``direction`` (rad) -- direction of the mean flow for plane waves, NaN otherwise;
        * ``<dim>_index`` -- position along each leading dim of the input (batch members).

        Per frame, on ``(..., frame, category)`` and ``(..., frame)`` with coordinates
        ``frame_time`` (ms) and ``category`` (= :data:`KINDS`):

        * ``count`` -- number of patterns of each kind in the frame;
        * ``order_parameter``, ``mean_speed``, ``mean_direction`` of the flow;

        and ``occupancy`` (``(..., category)``): fraction of frames in which each kind occurs.
        attrs: the thresholds, ``dx`` (mm), ``dt`` (ms; frame interval), ``velocity_units``,
        ``batch_dims`` (names of the leading dims).

    Notes
    -----
    Classification of a critical point, with ``tr = dvx/dx + dvy/dy``, ``det = det J`` and
    ``curl = dvy/dx - dvx/dy`` (NeuroPattToolbox's trace-determinant rules):

    * Poincare index ``-1`` (``det < 0``): **saddle**;
    * ``det > 0`` and ``tr^2 < 4 det`` (complex eigenvalues): **spiral** (focus; a centre when
      ``tr = 0``), ``spiral_ccw`` if ``curl > 0`` (counter-clockwise rotation in the
      right-handed ``(x, y)`` frame), else ``spiral_cw``;
    * otherwise a node: **source** (unstable node, ``tr > 0``: flow away from the point, as from
      the centre of an expanding circular wave) or **sink** (stable node, ``tr < 0``).

    ``J`` is the bilinear interpolation, at the sub-pixel position, of the central-difference
    derivatives at the corners of the plaquette (as NeuroPattToolbox). The rotation sense of a
    spiral *wave* appears in the flow: a pattern rotating counter-clockwise has
    counter-clockwise flow (``spiral_ccw``).

    Examples
    --------
    >>> y, x = np.mgrid[0:12, 0:12].astype(float)
    >>> v = (x - 5.3) + 1j * (y - 6.6)  # a source
    >>> p = classify_patterns(v[None], dx=1.0)
    >>> str(p["kind"].values[0]), round(float(p["x"][0]), 6), round(float(p["y"][0]), 6)
    ('source', 5.3, 6.6)
    """
    plane_wave_threshold = _check_fraction("plane_wave_threshold", plane_wave_threshold)
    synchrony_threshold = _check_nonneg("synchrony_threshold", synchrony_threshold)
    edge_distance = _check_nonneg("edge_distance", edge_distance)
    vel, dx, dt, units = _velocity_parts(velocity, dx, dt)
    lead = list(vel.dims[:-3])
    nt, ny, nx = (vel.sizes[d] for d in ("time", "y", "x"))
    if ny < 2 or nx < 2:
        raise ValueError(f"velocity must be at least 2 x 2 pixels (y, x); got {ny} x {nx}")
    v = np.asarray(vel.values).astype(complex)
    x0 = float(vel["x"].values[0]) if "x" in vel.coords else 0.0
    y0 = float(vel["y"].values[0]) if "y" in vel.coords else 0.0
    times = vel["time"].values.astype(float) if "time" in vel.coords else np.arange(nt) * dt

    # frame-level statistics
    finite = np.isfinite(v)
    vz = np.where(finite, v, 0)
    n_ok = finite.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_v = vz.sum(axis=(-2, -1)) / n_ok
        mean_speed = np.abs(vz).sum(axis=(-2, -1)) / n_ok
        order = np.abs(mean_v) / mean_speed
    mean_dir = np.angle(mean_v)
    synchrony = mean_speed <= synchrony_threshold
    plane = (order >= plane_wave_threshold) & ~synchrony

    # critical points
    sing = find_singularities(v, dx=1.0)
    idx = sing.index
    batch = tuple(idx[:, :-2].T)
    i, j = idx[:, -2], idx[:, -1]
    xs, ys = sing.x, sing.y  # px
    s, t = xs - j, ys - i
    keep = (
        (xs >= edge_distance)
        & (xs <= nx - 1 - edge_distance)
        & (ys >= edge_distance)
        & (ys <= ny - 1 - edge_distance)
        & ~synchrony[batch]
    )
    idx, i, j, s, t, xs, ys = idx[keep], i[keep], j[keep], s[keep], t[keep], xs[keep], ys[keep]
    charge = sing.charge[keep]
    batch = tuple(idx[:, :-2].T)
    jac = _jacobian(v, batch, i, j, s, t, dx)
    kind_cp, tr, det, curl = _classify(charge, jac)

    # assemble: frame-level patterns, then critical points; sort by (batch..., frame)
    lead_shape = v.shape[:-3]
    fl_rows = []
    for name, flag in (("plane_wave", plane), ("synchrony", synchrony)):
        where = np.argwhere(flag)  # (n, nlead + 1)
        fl_rows.append((name, where))
    n_fl = sum(len(w) for _, w in fl_rows)
    n_cp = len(i)
    n = n_fl + n_cp
    pos = np.zeros((n, len(lead_shape) + 1), dtype=np.int64)
    kind = np.empty(n, dtype=object)
    px = np.full(n, np.nan)
    py = np.full(n, np.nan)
    pidx = np.zeros(n, dtype=np.int32)
    p_tr = np.full(n, np.nan)
    p_det = np.full(n, np.nan)
    p_curl = np.full(n, np.nan)
    p_dir = np.full(n, np.nan)
    rank = np.zeros(n, dtype=np.int64)  # frame-level first within a frame
    k = 0
    for name, where in fl_rows:
        m = len(where)
        pos[k : k + m] = where
        kind[k : k + m] = name
        if name == "plane_wave":
            p_dir[k : k + m] = mean_dir[tuple(where.T)]
        k += m
    pos[k:] = idx[:, :-2]
    kind[k:] = kind_cp
    px[k:] = x0 + xs * dx
    py[k:] = y0 + ys * dx
    pidx[k:] = charge
    p_tr[k:] = tr
    p_det[k:] = det
    p_curl[k:] = curl
    rank[k:] = 1 + np.arange(n_cp)
    order_rows = np.lexsort((rank, *pos[:, ::-1].T)) if n else np.zeros(0, dtype=np.int64)

    frame_index = pos[order_rows, -1]
    su = space_units(vel)  # "px" for a recording of unknown spacing
    jac_units = "1/ms" if units == f"{su}/ms" else f"{units} per {su}"
    data = {
        "time": ("pattern", times[frame_index], {"units": "ms"}),
        "frame_index": ("pattern", frame_index, {"units": "1"}),
        "kind": ("pattern", kind[order_rows].astype(str), {"units": "1"}),
        "x": ("pattern", px[order_rows], {"units": su}),
        "y": ("pattern", py[order_rows], {"units": su}),
        "poincare_index": ("pattern", pidx[order_rows], {"units": "1"}),
        "divergence": ("pattern", p_tr[order_rows], {"units": jac_units}),
        "curl": ("pattern", p_curl[order_rows], {"units": jac_units}),
        "determinant": ("pattern", p_det[order_rows], {"units": f"({jac_units})^2"}),
        "direction": ("pattern", p_dir[order_rows], {"units": "rad"}),
    }
    for a, d in enumerate(lead):
        data[f"{d}_index"] = ("pattern", pos[order_rows, a], {"units": "1"})

    # per-frame counts and occupancy
    count = np.zeros((*lead_shape, nt, len(KINDS)), dtype=np.int64)
    kcode = _kind_codes(kind)
    np.add.at(count, (*pos.T, kcode), 1)
    fdims = (*lead, "frame")
    data["count"] = ((*fdims, "category"), count, {"units": "1"})
    data["order_parameter"] = (fdims, order, {"units": "1"})
    data["mean_speed"] = (fdims, mean_speed, {"units": units})
    data["mean_direction"] = (fdims, mean_dir, {"units": "rad"})
    data["occupancy"] = ((*lead, "category"), (count > 0).mean(axis=-2), {"units": "1"})
    coords = {
        "pattern": ("pattern", np.arange(n), {"units": "1"}),
        "frame": ("frame", np.arange(nt), {"units": "1"}),
        "frame_time": ("frame", times, {"units": "ms"}),
        "category": ("category", np.array(KINDS), {"units": "1"}),
    }
    for d in lead:
        c = vel.coords[d] if d in vel.coords else None
        if c is not None:
            coords[d] = (d, c.values, {"units": "1", **c.attrs})
    return xr.Dataset(
        data,
        coords=coords,
        attrs={
            "plane_wave_threshold": plane_wave_threshold,
            "synchrony_threshold": synchrony_threshold,
            "edge_distance": edge_distance,
            "dx": dx,
            "dt": dt,
            "velocity_units": units,
            "batch_dims": [str(d) for d in lead],
        },
    )


def pattern_events(patterns, *, max_distance, max_gap=0, min_duration=0.0):
    """Link the patterns of consecutive frames into events with durations.

    Parameters
    ----------
    patterns : xarray.Dataset
        The output of :func:`classify_patterns`.
    max_distance : float
        Largest displacement (mm) of a critical point between linked frames. Critical points are
        linked only to points of the same kind (and batch member), by
        :func:`wavesim.analysis.linking.link_points` (Hungarian assignment with a distance gate).
        Frame-level patterns (plane wave, synchrony) link whenever they occur in linkable frames.
    max_gap : int, default 0
        Number of frames an event may skip and still continue.
    min_duration : float, default 0
        Events shorter than this (ms) are dropped.

    Returns
    -------
    xarray.Dataset
        Along dim ``event``, sorted by start time (then kind):

        * ``kind`` -- as in :func:`classify_patterns`;
        * ``start_time``, ``end_time`` (ms) -- times of the first and last frame;
        * ``duration`` (ms) -- ``end_time - start_time + dt`` (``dt`` the frame interval): an
          event seen in one frame lasts one frame interval;
        * ``n_frames`` -- frames in which the event was detected;
        * ``x``, ``y`` (mm) -- mean position (NaN for frame-level patterns);
        * ``direction`` (rad) -- circular mean of the plane-wave directions (NaN otherwise);
        * ``<dim>_index`` -- batch member, as in the patterns.

        attrs: ``max_distance`` (mm), ``max_gap`` (frames), ``min_duration`` (ms), ``dt`` (ms).
    """
    from wavesim.analysis.linking import link_points

    if (
        not isinstance(patterns, xr.Dataset)
        or "kind" not in patterns
        or "pattern" not in (patterns.dims)
    ):
        raise ValueError(
            "patterns must be the Dataset returned by classify_patterns (dim 'pattern', 'kind')"
        )
    if isinstance(max_distance, bool) or not isinstance(max_distance, numbers.Real):
        raise ValueError(f"max_distance must be a positive number (mm); got {max_distance!r}")
    if not (np.isfinite(max_distance) and max_distance > 0):
        raise ValueError(f"max_distance must be a positive finite number (mm); got {max_distance}")
    if isinstance(max_gap, bool) or not isinstance(max_gap, numbers.Integral) or max_gap < 0:
        raise ValueError(f"max_gap must be a non-negative integer (frames); got {max_gap!r}")
    min_duration = _check_nonneg("min_duration", min_duration)
    dt = float(patterns.attrs.get("dt", np.nan))

    lead_vars = [f"{d}_index" for d in patterns.attrs.get("batch_dims", [])]
    kind = patterns["kind"].values.astype(str)
    n = kind.size
    label = _kind_codes(kind)
    if lead_vars:
        members = np.stack([patterns[n_].values for n_ in lead_vars], axis=1)
        _, member_id = np.unique(members, axis=0, return_inverse=True)
        label = label + len(KINDS) * member_id.reshape(-1)
    x = patterns["x"].values.astype(float)
    ev_su = patterns["x"].attrs.get("units", "mm")
    y = patterns["y"].values.astype(float)
    frame = patterns["frame_index"].values.astype(np.int64)
    track = link_points(
        frame,
        np.nan_to_num(x),
        np.nan_to_num(y),
        label,
        max_distance=float(max_distance),
        max_gap=int(max_gap),
    )
    n_ev = int(track.max()) + 1 if n else 0
    times = patterns["time"].values.astype(float)
    start = np.full(n_ev, np.inf)
    end = np.full(n_ev, -np.inf)
    np.minimum.at(start, track, times)
    np.maximum.at(end, track, times)
    nfr = np.bincount(track, minlength=n_ev)
    with np.errstate(invalid="ignore"):
        mx = np.bincount(track, weights=np.nan_to_num(x), minlength=n_ev) / nfr
        my = np.bincount(track, weights=np.nan_to_num(y), minlength=n_ev) / nfr
    ev_kind = np.empty(n_ev, dtype=object)
    ev_kind[track] = kind
    frame_level = np.isin(ev_kind.astype(str), _FRAME_KINDS)
    mx[frame_level] = np.nan
    my[frame_level] = np.nan
    direc = patterns["direction"].values.astype(float) if "direction" in patterns else np.nan
    z = np.where(np.isfinite(direc), np.exp(1j * np.nan_to_num(direc)), 0)
    zsum = np.zeros(n_ev, dtype=complex)
    np.add.at(zsum, track, z)
    ev_dir = np.where(np.abs(zsum) > 0, np.angle(zsum), np.nan)
    duration = end - start + (dt if np.isfinite(dt) else 0.0)

    keep = duration >= min_duration
    order = np.lexsort((_kind_codes(ev_kind), start))
    order = order[keep[order]]
    data = {
        "kind": ("event", ev_kind[order].astype(str), {"units": "1"}),
        "start_time": ("event", start[order], {"units": "ms"}),
        "end_time": ("event", end[order], {"units": "ms"}),
        "duration": ("event", duration[order], {"units": "ms"}),
        "n_frames": ("event", nfr[order], {"units": "1"}),
        "x": ("event", mx[order], {"units": ev_su}),
        "y": ("event", my[order], {"units": ev_su}),
        "direction": ("event", ev_dir[order], {"units": "rad"}),
    }
    for name in lead_vars:
        vals = np.zeros(n_ev, dtype=np.int64)
        vals[track] = patterns[name].values
        data[name] = ("event", vals[order], {"units": "1"})
    return xr.Dataset(
        data,
        coords={"event": ("event", np.arange(order.size), {"units": "1"})},
        attrs={
            "max_distance": float(max_distance),
            "max_gap": int(max_gap),
            "min_duration": min_duration,
            "dt": dt,
        },
    )
