"""Frame-to-frame linking of point detections into tracks (Hungarian assignment with a gate).

Points (phase singularities, pinwheels, wave centres, ...) detected frame by frame are joined into
tracks: between a frame and the tracks still open, a linear assignment problem is solved with
:func:`scipy.optimize.linear_sum_assignment`. Only pairs closer than ``max_distance`` and with
the same ``label`` (e.g. the same topological charge) may link. Among the admissible assignments
the one with the **most links** is taken and, among those, the one with the **smallest sum of
squared distances**. A track that found no partner stays open for ``max_gap`` further frames.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

__all__ = ["link_points"]

#: Squared distances that differ by less than this fraction of the squared gate count as ties,
#: which are resolved in favour of the older track.
_TIE_BIAS = 1e-4


def _as_1d(values, name, n=None, kind="float"):
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array (one value per point); got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(
            f"{name} must have the same length as frame ({n} points); got {arr.shape[0]}"
        )
    if kind == "int":
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
                raise ValueError(f"{name} must hold integers; got dtype {arr.dtype}")
            if not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
                raise ValueError(f"{name} must hold integers; got non-integer values")
        return arr.astype(np.int64)
    if arr.size and (not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr)):
        raise ValueError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    arr = arr.astype(float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf positions)")
    return arr


def _check_periodic(periodic):
    if periodic is None:
        return None
    try:
        lx, ly = (float(v) for v in periodic)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"periodic must be None or a pair (Lx, Ly) of periods; got {periodic!r}"
        ) from exc
    if not (np.isfinite(lx) and np.isfinite(ly) and lx > 0 and ly > 0):
        raise ValueError(f"periodic must be a pair of positive finite periods; got {periodic!r}")
    return lx, ly


def _wrap_into(v, length):
    """Map ``v`` into ``[0, length)`` (cKDTree's periodic box needs it strictly below)."""
    w = np.mod(v, length)
    return np.where(w >= length, 0.0, w)


def _candidate_edges(tx, ty, px, py, max_distance, periodic):
    """All (track, point) pairs within ``max_distance``; returns (rows, cols, squared distance)."""
    if periodic is None:
        tree_p = cKDTree(np.column_stack([px, py]))
        tree_t = cKDTree(np.column_stack([tx, ty]))
    else:
        lx, ly = periodic
        box = [lx, ly]
        tree_p = cKDTree(np.column_stack([_wrap_into(px, lx), _wrap_into(py, ly)]), boxsize=box)
        tree_t = cKDTree(np.column_stack([_wrap_into(tx, lx), _wrap_into(ty, ly)]), boxsize=box)
    pairs = tree_t.query_ball_tree(tree_p, r=max_distance)
    rows = np.fromiter((r for r, ps in enumerate(pairs) for _ in ps), dtype=np.int64)
    cols = np.fromiter((c for ps in pairs for c in ps), dtype=np.int64)
    ddx = px[cols] - tx[rows]
    ddy = py[cols] - ty[rows]
    if periodic is not None:
        ddx -= periodic[0] * np.round(ddx / periodic[0])
        ddy -= periodic[1] * np.round(ddy / periodic[1])
    d2 = ddx * ddx + ddy * ddy
    keep = d2 <= max_distance * max_distance
    return rows[keep], cols[keep], d2[keep]


def _assign(n_rows, n_cols, rows, cols, d2, max_distance):
    """Maximum-cardinality, then minimum-cost assignment on a sparse set of admissible edges."""
    if rows.size == 0:
        return rows, cols
    # Split into connected components of the bipartite graph: independent small problems.
    graph = coo_matrix(
        (np.ones(rows.size), (rows, n_rows + cols)), shape=(n_rows + n_cols, n_rows + n_cols)
    )
    _, comp = connected_components(graph, directed=False)
    edge_comp = comp[rows]
    order = np.argsort(edge_comp, kind="stable")
    rows, cols, d2, edge_comp = rows[order], cols[order], d2[order], edge_comp[order]
    bounds = np.flatnonzero(np.diff(edge_comp)) + 1
    out_r, out_c = [], []
    for sl_r, sl_c, sl_d in zip(
        np.split(rows, bounds), np.split(cols, bounds), np.split(d2, bounds), strict=True
    ):
        if sl_r.size == 1:
            out_r.append(sl_r)
            out_c.append(sl_c)
            continue
        ur, ri = np.unique(sl_r, return_inverse=True)
        uc, ci = np.unique(sl_c, return_inverse=True)
        # Forbidden pairs cost more than any admissible assignment: the solver first maximises the
        # number of admissible links, then minimises their summed squared distance.
        big = (min(ur.size, uc.size) + 1) * max(max_distance * max_distance, 1e-300) * 4.0 + 1.0
        cost = np.full((ur.size, uc.size), big)
        cost[ri, ci] = sl_d
        ar, ac = linear_sum_assignment(cost)
        ok = cost[ar, ac] < big
        out_r.append(ur[ar[ok]])
        out_c.append(uc[ac[ok]])
    return np.concatenate(out_r), np.concatenate(out_c)


def link_points(frame, x, y, label, *, max_distance, max_gap=0, periodic=None):
    """Link point detections across frames into tracks.

    Parameters
    ----------
    frame : array_like of int, shape (n,)
        Frame index of each point (need not be sorted or contiguous; a missing frame number counts
        as a skipped frame).
    x, y : array_like of float, shape (n,)
        Positions, in the same unit as ``max_distance`` (e.g. mm or pixels).
    label : array_like of int, shape (n,)
        Points link only to tracks of the same label (e.g. the topological charge).
    max_distance : float
        Gate: a point links to a track only if it lies within this distance (inclusive) of the
        track's last position.
    max_gap : int, default 0
        Number of frames a track may skip: a track last seen in frame ``f`` can be continued by a
        point in any frame up to ``f + 1 + max_gap``. With 0 only consecutive frames link.
    periodic : (float, float), optional
        Periods ``(Lx, Ly)`` for minimum-image distances on a torus (e.g. ``(nx*dx, ny*dx)``).
        Default: plain Euclidean distances.

    Returns
    -------
    numpy.ndarray of int64, shape (n,)
        Track id of every point, ``0 .. T-1``, numbered in order of first appearance (by frame,
        then by input order). Each track holds at most one point per frame and a single label.

    Notes
    -----
    Frames are processed in increasing order. For frame ``f`` the open tracks (last seen in
    ``f - 1 - max_gap .. f - 1``) and the points of ``f`` form a bipartite graph whose edges are
    the same-label pairs within ``max_distance``; each connected component is solved with
    :func:`scipy.optimize.linear_sum_assignment`, maximising first the number of links and then
    minimising the sum of squared distances; near-ties (squared distances within ``1e-4 *
    max_distance**2``, e.g. symmetric configurations) are resolved in favour of the older track.
    Unlinked points start new tracks. Positions are not extrapolated: a track is represented by
    its last point.

    Examples
    --------
    >>> link_points([0, 0, 1, 1], [0.0, 5.0, 5.2, 0.1], [0.0, 0.0, 0.0, 0.1], [1, 1, 1, 1],
    ...             max_distance=1.0).tolist()
    [0, 1, 1, 0]
    """
    frame = _as_1d(frame, "frame", kind="int")
    n = frame.shape[0]
    x = _as_1d(x, "x", n)
    y = _as_1d(y, "y", n)
    label = _as_1d(label, "label", n, kind="int")
    try:
        max_distance = float(max_distance)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"max_distance must be a positive number; got {max_distance!r}") from exc
    if not (np.isfinite(max_distance) and max_distance > 0):
        raise ValueError(f"max_distance must be a positive finite number; got {max_distance!r}")
    if isinstance(max_gap, bool) or int(max_gap) != max_gap or max_gap < 0:
        raise ValueError(f"max_gap must be a non-negative integer; got {max_gap!r}")
    max_gap = int(max_gap)
    periodic = _check_periodic(periodic)

    track = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return track
    order = np.argsort(frame, kind="stable")
    frames, starts = np.unique(frame[order], return_index=True)
    ends = np.append(starts[1:], n)

    # Open tracks: id, last frame, last position, label.
    t_id = np.zeros(0, dtype=np.int64)
    t_frame = np.zeros(0, dtype=np.int64)
    t_x = np.zeros(0)
    t_y = np.zeros(0)
    t_label = np.zeros(0, dtype=np.int64)
    t_born = np.zeros(0, dtype=np.int64)
    n_tracks = 0
    for f, a, b in zip(frames, starts, ends, strict=True):
        pts = order[a:b]
        alive = t_frame >= f - 1 - max_gap
        t_id, t_frame, t_x, t_y, t_label = (
            t_id[alive],
            t_frame[alive],
            t_x[alive],
            t_y[alive],
            t_label[alive],
        )
        t_born = t_born[alive]
        link_t = np.zeros(0, dtype=np.int64)
        link_p = np.zeros(0, dtype=np.int64)
        if t_id.size:
            rows, cols, d2 = _candidate_edges(t_x, t_y, x[pts], y[pts], max_distance, periodic)
            same = t_label[rows] == label[pts][cols]
            # Near-ties (symmetric configurations, up to rounding noise of sub-pixel positions) go
            # to the older track: a bias of at most 1e-4 of the squared gate.
            age = (f - t_born[rows]) / (f - t_born.min() + 1.0)
            d2 = d2 - _TIE_BIAS * max_distance * max_distance * age
            link_t, link_p = _assign(
                t_id.size, pts.size, rows[same], cols[same], d2[same], max_distance
            )
        ids = np.full(pts.size, -1, dtype=np.int64)
        ids[link_p] = t_id[link_t]
        new = ids < 0
        ids[new] = n_tracks + np.arange(np.count_nonzero(new))
        n_tracks += int(np.count_nonzero(new))
        track[pts] = ids
        # Update linked tracks, append new ones.
        t_frame[link_t] = f
        t_x[link_t] = x[pts][link_p]
        t_y[link_t] = y[pts][link_p]
        t_id = np.concatenate([t_id, ids[new]])
        t_frame = np.concatenate([t_frame, np.full(np.count_nonzero(new), f)])
        t_x = np.concatenate([t_x, x[pts][new]])
        t_y = np.concatenate([t_y, y[pts][new]])
        t_label = np.concatenate([t_label, label[pts][new]])
        t_born = np.concatenate([t_born, np.full(np.count_nonzero(new), f)])

    # Renumber in order of first appearance (by frame, then input order).
    first = np.full(n_tracks, n, dtype=np.int64)
    np.minimum.at(first, track[order], np.arange(n))
    rank = np.empty(n_tracks, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(n_tracks)
    return rank[track]
