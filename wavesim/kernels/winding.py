"""Compiled plaquette winding (topological charge) of phase fields, many frames per call.

For frame ``f`` and plaquette ``(i, j)`` the winding is taken around the loop of grid nodes
``(x, y) -> (x+1, y) -> (x+1, y+1) -> (x, y+1)`` (counter-clockwise in the right-handed ``(x, y)``
frame, see ``docs/conventions.md``). Each edge difference ``d = phi[b] - phi[a]`` is wrapped into
``[-pi, pi)`` as ``d - 2*pi*n`` with the integer **wrap count** ``n = floor((d + pi) / (2*pi))``
(the same ``n`` as ``numpy.mod(d + pi, 2*pi) - pi``); the loop sum of the raw differences is 0,
so the winding is exactly the integer

    w = -(n_bottom + n_right - n_top - n_left).

Working with integer wrap counts makes the charge additive by construction: an edge shared by two
plaquettes enters both with opposite signs and the same count, so the windings inside any
rectangle sum to the winding around its boundary, and to 0 on a torus. A plaquette with a
non-finite corner has winding 0.

The kernels are compiled without ``fastmath``: the comparisons that decide a wrap count must
round exactly as numpy does (and NaN must stay NaN), so that kernel and reference agree bit for
bit, also for quantised phases whose edge differences are exactly ``pi``. Frames run in parallel
(``prange``); the integer output does not depend on the number of threads.

The plain-numpy reference is :func:`wavesim.analysis.winding._plaquette_winding_numpy`
(``tests/test_singularities.py`` compares the two).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["plaquette_winding_frames"]

_PI = math.pi
_TWO_PI = 2.0 * math.pi
#: Wrap count returned for an edge with a non-finite end; any plaquette touching it gets 0.
_BAD = 1 << 24


@njit(cache=True, error_model="numpy", inline="always")
def _wrap_count(a, b):
    """Integer ``n`` with ``(b - a) - 2*pi*n`` in ``[-pi, pi)``; ``_BAD`` if not finite."""
    s = (np.float64(b) - np.float64(a)) + _PI
    if s >= 0.0:
        if s < _TWO_PI:
            return 0
        if s < 2.0 * _TWO_PI:
            return 1
    elif s >= -_TWO_PI:
        return -1
    if not math.isfinite(s):
        return _BAD
    # Unwrapped input: the general (slow) path, matching numpy.mod's floor semantics.
    r = np.fmod(s, _TWO_PI)
    q = np.int64(round((s - r) / _TWO_PI))
    if r < 0.0:
        q -= 1
    return q


@njit(cache=True, error_model="numpy", inline="always")
def _fast_count(a, b):
    """``(n, ok)``: branch-free wrap count, valid (``ok``) for differences in ``[-3 pi, 3 pi)``
    (always the case for wrapped input) and for NaN (whose plaquettes are masked anyway)."""
    s = (np.float64(b) - np.float64(a)) + _PI
    n = np.int64(s >= _TWO_PI) - np.int64(s < 0.0)
    return n, not ((s < -_TWO_PI) | (s >= 2.0 * _TWO_PI))


@njit(cache=True, error_model="numpy")
def _h_counts(p, i, h):
    """Wrap counts of the horizontal edges ``(i, j) -> (i, j+1)`` (wrapping when len(h) == nx)."""
    nx = p.shape[1]
    fine = True
    for j in range(h.shape[0]):
        jj = j + 1 if j + 1 < nx else 0
        n, ok = _fast_count(p[i, j], p[i, jj])
        h[j] = n
        fine &= ok
    if not fine:  # unwrapped input or overflow: exact per-edge counts
        for j in range(h.shape[0]):
            jj = j + 1 if j + 1 < nx else 0
            h[j] = _wrap_count(p[i, j], p[i, jj])


@njit(cache=True, error_model="numpy")
def _v_counts(p, i, i1, v):
    """Wrap counts of the vertical edges ``(i, j) -> (i1, j)``."""
    fine = True
    for j in range(v.shape[0]):
        n, ok = _fast_count(p[i, j], p[i1, j])
        v[j] = n
        fine &= ok
    if not fine:
        for j in range(v.shape[0]):
            v[j] = _wrap_count(p[i, j], p[i1, j])


@njit(cache=True, error_model="numpy", parallel=True)
def _winding_kernel(phase, periodic, out):
    """Row by row: the wrap counts of each edge are computed once and shared by the two
    plaquettes on either side of it (the top edges of one plaquette row are the bottom edges of
    the next)."""
    nf, ny, nx = phase.shape
    nh = nx if periodic else nx - 1  # horizontal edges per row (= plaquettes per row)
    nrow = ny if periodic else ny - 1  # plaquette rows
    for f in prange(nf):
        p = phase[f]
        hb = np.empty(nh, np.int64)  # bottom edges of the current plaquette row
        ht = np.empty(nh, np.int64)  # top edges
        v = np.empty(nx, np.int64)
        okb = np.empty(nx, np.bool_)
        okt = np.empty(nx, np.bool_)
        _h_counts(p, 0, hb)
        for j in range(nx):
            okb[j] = math.isfinite(p[0, j])
        for i in range(nrow):
            i1 = i + 1 if i + 1 < ny else 0
            _h_counts(p, i1, ht)
            _v_counts(p, i, i1, v)
            for j in range(nx):
                okt[j] = math.isfinite(p[i1, j])
            for j in range(nh):
                jj = j + 1 if j + 1 < nx else 0
                w = -(hb[j] + v[jj] - ht[j] - v[j])
                good = okb[j] & okb[jj] & okt[j] & okt[jj] & (abs(w) <= 2)
                out[f, i, j] = w if good else 0
            hb, ht = ht, hb
            okb, okt = okt, okb


def plaquette_winding_frames(phase, periodic=False):
    """Winding of every plaquette of every frame (compiled; frames in parallel).

    Parameters
    ----------
    phase : numpy.ndarray, shape (nframes, ny, nx), float32 or float64
        Phase in radians (need not be wrapped); NaN/inf mark missing sites.
    periodic : bool
        Torus topology: plaquette ``(i, j)`` uses nodes ``(i+1) % ny`` and ``(j+1) % nx``.

    Returns
    -------
    numpy.ndarray of int32
        ``(nframes, ny, nx)`` if periodic else ``(nframes, ny-1, nx-1)``.
    """
    phase = np.asarray(phase)
    if phase.ndim != 3:
        raise ValueError(f"phase must have shape (nframes, ny, nx); got shape {phase.shape}")
    if phase.dtype not in (np.float32, np.float64):
        phase = phase.astype(np.float64)
    phase = np.ascontiguousarray(phase)
    nf, ny, nx = phase.shape
    if periodic:
        out = np.empty((nf, ny, nx), dtype=np.int32)
    else:
        out = np.empty((nf, max(ny - 1, 0), max(nx - 1, 0)), dtype=np.int32)
    if out.size:
        _winding_kernel(phase, bool(periodic), out)
    return out
