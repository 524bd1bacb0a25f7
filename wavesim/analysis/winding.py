"""Topological charge of phase fields on a pixel grid: plaquette windings and sub-pixel positions.

This module is deliberately generic: a phase (or a complex field) goes in, integer windings and
sub-pixel positions come out. It serves the pinwheels of orientation maps (phase ``2*theta``) and
the phase singularities of waves alike.

Conventions (see ``docs/conventions.md``)
-----------------------------------------
* Arrays are indexed ``[..., y, x]``; leading axes are a batch (frames, members).
* The winding of plaquette ``(i, j)`` is taken around the loop of grid nodes
  ``(x, y) -> (x+1, y) -> (x+1, y+1) -> (x, y+1) -> (x, y)``, i.e. counter-clockwise in the
  right-handed ``(x, y)`` frame: the four phase differences along the loop, each wrapped into
  ``[-pi, pi)``, are summed, divided by ``2*pi`` and rounded. ``arg((x - x0) + 1j*(y - y0))`` has
  winding ``+1``.
* Every edge carries one wrapped difference, taken in the ``+x`` (horizontal edges) or ``+y``
  (vertical edges) direction; an edge walked backwards contributes its negative. This agrees with
  the per-loop rule except when a difference is exactly ``pi`` (which happens on quantised data),
  and it makes the charge additive *exactly*: the summed winding of the plaquettes inside any
  rectangle equals the winding around the rectangle's boundary, and the net charge on a torus is
  exactly 0.
* A plaquette with a NaN at any of its four corners has winding 0.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from wavesim.kernels.winding import plaquette_winding_frames

__all__ = [
    "Singularities",
    "edge_differences",
    "find_singularities",
    "plaquette_winding",
    "wrap_phase",
]

_TWO_PI = 2.0 * np.pi


def wrap_phase(phase):
    """Wrap angles into ``[-pi, pi)``.

    Parameters
    ----------
    phase : array_like
        Angles in radians.

    Returns
    -------
    numpy.ndarray
        ``(phase + pi) mod 2*pi - pi``; NaN stays NaN.
    """
    return np.mod(np.asarray(phase, dtype=float) + np.pi, _TWO_PI) - np.pi


def _as_phase(phase, name="phase"):
    """Return ``(phase, field)`` as float / complex arrays; ``field`` is None for a real phase."""
    arr = np.asarray(phase)
    if arr.ndim < 2:
        raise ValueError(
            f"{name} must have at least 2 dimensions (..., y, x); got an array of shape {arr.shape}"
        )
    if arr.shape[-1] < 2 or arr.shape[-2] < 2:
        raise ValueError(
            f"{name} must be at least 2 x 2 along its last two axes (y, x); got shape {arr.shape}"
        )
    if np.iscomplexobj(arr):
        field = arr.astype(complex)
        return np.angle(field), field
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(
            f"{name} must be a real (phase in radians) or complex array; got {arr.dtype}"
        )
    return arr.astype(float), None


def edge_differences(phase, *, periodic=False):
    """Wrapped phase differences along the horizontal and vertical grid edges.

    Parameters
    ----------
    phase : array_like, shape (..., ny, nx)
        Phase in radians (or a complex field, whose ``angle`` is used).
    periodic : bool, default False
        If True the grid is a torus: the last column connects to the first, the last row to the
        first row.

    Returns
    -------
    dphi_x : numpy.ndarray
        ``wrap(phase[..., i, j+1] - phase[..., i, j])``, shape ``(..., ny, nx)`` if periodic else
        ``(..., ny, nx-1)``.
    dphi_y : numpy.ndarray
        ``wrap(phase[..., i+1, j] - phase[..., i, j])``, shape ``(..., ny, nx)`` if periodic else
        ``(..., ny-1, nx)``.
    """
    phi, _ = _as_phase(phase)
    if periodic:
        ddx = wrap_phase(np.roll(phi, -1, axis=-1) - phi)
        ddy = wrap_phase(np.roll(phi, -1, axis=-2) - phi)
    else:
        ddx = wrap_phase(np.diff(phi, axis=-1))
        ddy = wrap_phase(np.diff(phi, axis=-2))
    return ddx, ddy


def plaquette_winding(phase, *, periodic=False):
    """Integer winding (topological charge) of the phase around every 2 x 2 plaquette.

    Parameters
    ----------
    phase : array_like, shape (..., ny, nx)
        Phase in radians; any leading axes are a batch (e.g. time frames). A complex array is
        accepted and its ``angle`` is used. NaN marks missing data.
    periodic : bool, default False
        If True the grid is a torus and plaquette ``(i, j)`` uses the wrap-around neighbours
        ``(i+1) % ny`` and ``(j+1) % nx``.

    Returns
    -------
    numpy.ndarray of int32
        Shape ``(..., ny, nx)`` if periodic, else ``(..., ny-1, nx-1)``. Element ``[..., i, j]`` is
        the winding around the loop ``(j, i) -> (j+1, i) -> (j+1, i+1) -> (j, i+1)`` in ``(x, y)``
        node coordinates, i.e. counter-clockwise in the right-handed ``(x, y)`` frame, in units of
        ``2*pi``. ``arg((x - x0) + 1j*(y - y0))`` gives ``+1``. Plaquettes with a NaN corner
        give 0.

    Notes
    -----
    Each edge contributes one wrapped difference (in ``[-pi, pi)``, taken in the ``+x`` or ``+y``
    direction) and its negative when walked backwards, so the sum of the windings inside any
    rectangle equals the winding around its boundary, and the windings on a torus sum to exactly 0.
    For an orientation map ``theta`` use ``phase = 2*theta``; the pinwheel charge is winding / 2.

    The windings are computed by the compiled kernel
    :func:`wavesim.kernels.winding.plaquette_winding_frames` (integer wrap counts per edge);
    ``_plaquette_winding_numpy`` is the plain-numpy reference.

    Examples
    --------
    >>> y, x = np.mgrid[0:8, 0:8]
    >>> w = plaquette_winding(np.angle((x - 3.4) + 1j * (y - 4.6)))
    >>> int(w[4, 3]), int(np.abs(w).sum())
    (1, 1)
    """
    phi, _ = _as_phase(phase)
    lead = phi.shape[:-2]
    ny, nx = phi.shape[-2:]
    frames = phi.reshape((-1, ny, nx))
    return plaquette_winding_frames(frames, periodic=bool(periodic)).reshape(
        lead + ((ny, nx) if periodic else (ny - 1, nx - 1))
    )


def _plaquette_winding_numpy(phase, *, periodic=False):
    """Plain-numpy reference of :func:`plaquette_winding` (wrapped edge differences summed)."""
    ddx, ddy = edge_differences(phase, periodic=periodic)
    if periodic:
        total = ddx + np.roll(ddy, -1, axis=-1) - np.roll(ddx, -1, axis=-2) - ddy
    else:
        total = ddx[..., :-1, :] + ddy[..., :, 1:] - ddx[..., 1:, :] - ddy[..., :, :-1]
    winding = np.rint(total / _TWO_PI)
    winding[~np.isfinite(winding)] = 0
    return winding.astype(np.int32)


class Singularities(NamedTuple):
    """Nonzero-winding plaquettes with sub-pixel positions (see :func:`find_singularities`)."""

    charge: np.ndarray
    """Winding of each singular plaquette (int32, units of 2*pi)."""
    x: np.ndarray
    """x position (``origin[0] + (j + s) * dx``) of each singularity."""
    y: np.ndarray
    """y position (``origin[1] + (i + t) * dx``) of each singularity."""
    index: np.ndarray
    """Integer index ``(..., i, j)`` of each plaquette, shape ``(n, ndim)`` (batch axes first)."""


def _bilinear_zero(c00, c10, c01, c11):
    """Zero of the bilinear interpolant of four complex corner values on the unit square.

    ``f(s, t) = c00 (1-s)(1-t) + c10 s (1-t) + c01 (1-s) t + c11 s t``, with ``s`` along x and ``t``
    along y. Returns ``(s, t)``; where no zero lies in (or numerically next to) the square the
    centre ``(0.5, 0.5)`` is returned.
    """
    a = c00
    b = c10 - c00
    c = c01 - c00
    d = c11 - c10 - c01 + c00
    # f = a + b s + c t + d s t = 0  <=>  s = -(a + c t) / (b + d t) with s real, i.e.
    # Im[(a + c t) conj(b + d t)] = 0: a quadratic qa t^2 + qb t + qc = 0.
    qa = np.imag(c * np.conj(d))
    qb = np.imag(a * np.conj(d)) + np.imag(c * np.conj(b))
    qc = np.imag(a * np.conj(b))
    disc = qb * qb - 4.0 * qa * qc
    sq = np.sqrt(np.maximum(disc, 0.0))
    q = -0.5 * (qb + np.where(qb >= 0, sq, -sq))
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where(qa != 0, q / qa, np.nan)
        t2 = np.where(q != 0, qc / q, np.nan)
        # purely linear case (qa == 0): single root -qc / qb
        t2 = np.where((qa == 0) & (qb != 0), -qc / qb, t2)
    best_s = np.full(np.shape(a), 0.5)
    best_t = np.full(np.shape(a), 0.5)
    best_err = np.full(np.shape(a), np.inf)
    for t in (t1, t2):
        with np.errstate(divide="ignore", invalid="ignore"):
            den = b + d * t
            s = -np.real((a + c * t) * np.conj(den)) / np.abs(den) ** 2
        # distance of (s, t) outside the unit square; 0 inside
        err = np.maximum(np.abs(s - 0.5), np.abs(t - 0.5)) - 0.5
        err = np.where(np.isfinite(err) & (disc >= 0), np.maximum(err, 0.0), np.inf)
        take = err < best_err
        best_s = np.where(take, s, best_s)
        best_t = np.where(take, t, best_t)
        best_err = np.where(take, err, best_err)
    ok = best_err <= 1e-6
    s = np.where(ok, np.clip(best_s, 0.0, 1.0), 0.5)
    t = np.where(ok, np.clip(best_t, 0.0, 1.0), 0.5)
    return s, t


def _linear_fit_zero(phi, batch, i, j, periodic):
    """Zero of the linear complex field that best matches the phase on the 4 x 4 nodes around each
    plaquette (phase only; exact for ``phase = arg(A (x - x0) + B (y - y0))``).

    Model ``z = a + b X + c Y`` (complex ``a, b, c``; ``X, Y`` relative to the plaquette centre).
    Matching the phase means ``Im(conj(u_k) z_k) = 0`` at every node ``k`` (``u_k`` the unit
    phasor), which is linear and homogeneous in the six real unknowns: the solution is the right
    singular vector of the smallest singular value (computed as the lowest eigenvector of the
    Gram matrix). Returns ``(s, t, ok)``.
    """
    ny, nx = phi.shape[-2:]
    off = np.arange(-1, 3)
    rows = i[:, None, None] + off[None, :, None]  # (n, 4, 1)
    cols = j[:, None, None] + off[None, None, :]  # (n, 1, 4)
    if periodic:
        inside = np.ones((len(i), 4, 4), dtype=bool)
        rows, cols = rows % ny, cols % nx
    else:
        inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
        rows, cols = np.clip(rows, 0, ny - 1), np.clip(cols, 0, nx - 1)
    rows, cols = np.broadcast_arrays(rows, cols)
    bidx = tuple(b[:, None, None] for b in batch)
    vals = phi[(*bidx, rows, cols)]
    valid = inside & np.isfinite(vals)
    u = np.exp(-1j * np.where(valid, vals, 0.0)).reshape(len(i), 16)  # conj of unit phasor
    w = valid.reshape(len(i), 16).astype(float)
    gx, gy = np.meshgrid(off - 0.5, off - 0.5)  # X (columns), Y (rows) relative to the centre
    gx, gy = gx.ravel(), gy.ravel()
    # Im(u* (a + b X + c Y)) with a = ar + i ai, ...: coefficients of (ar, ai, br, bi, cr, ci)
    ur, ui = u.real, u.imag
    m = np.stack([ui, ur, ui * gx, ur * gx, ui * gy, ur * gy], axis=-1) * w[..., None]
    if len(i) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)
    # Smallest right singular vector of m = eigenvector of the 6 x 6 Gram matrix m^T m with the
    # smallest eigenvalue (batched eigh is ~3x faster than batched svd of the 16 x 6 matrices).
    _, vecs = np.linalg.eigh(np.einsum("nki,nkj->nij", m, m))
    ar, ai, br, bi, cr, ci = np.moveaxis(vecs[:, :, 0], -1, 0)
    det = br * ci - cr * bi
    with np.errstate(divide="ignore", invalid="ignore"):
        xz = (-ar * ci + cr * ai) / det
        yz = (-br * ai + ar * bi) / det
    s, t = xz + 0.5, yz + 0.5
    tol = 1e-9
    ok = (
        (w.sum(axis=-1) >= 6)
        & np.isfinite(s)
        & np.isfinite(t)
        & (s >= -tol)
        & (s <= 1 + tol)
        & (t >= -tol)
        & (t <= 1 + tol)
    )
    return np.clip(np.nan_to_num(s), 0, 1), np.clip(np.nan_to_num(t), 0, 1), ok


def find_singularities(
    phase, *, periodic=False, amplitude=None, dx=1.0, origin=(0.0, 0.0), method="auto"
):
    """Plaquettes of nonzero winding and a sub-pixel position for each.

    Parameters
    ----------
    phase : array_like, shape (..., ny, nx)
        Phase in radians (leading axes are a batch), or a complex field ``z``: then its angle is the
        phase and ``|z|`` the amplitude. NaN marks missing data.
    periodic : bool, default False
        Torus topology (see :func:`plaquette_winding`).
    amplitude : array_like, optional
        ``|z|`` on the same grid (broadcastable to ``phase``), so that ``z = amplitude *
        exp(1j*phase)``.
    dx : float, default 1.0
        Grid spacing; positions are returned in the same unit.
    origin : (float, float), default (0.0, 0.0)
        ``(x, y)`` coordinate of node ``[..., 0, 0]``.
    method : {"auto", "bilinear"}, default "auto"
        How the position inside a singular plaquette is found:

        * with an amplitude (or a complex ``phase``), always the zero of the bilinear
          interpolation of ``z`` over the plaquette (exact for a field linear near its zero);
        * ``"auto"``, phase only: the zero of the linear complex field ``a + b x + c y`` whose phase
          best matches the data on the 4 x 4 nodes around the plaquette (least squares on
          ``Im(exp(-1j*phase) z) = 0``; exact for ``phase = arg(A (x - x0) + B (y - y0))``, any
          complex ``A, B``). If fewer than 6 of those nodes are valid or that zero falls outside the
          plaquette, the bilinear rule below is used instead;
        * ``"bilinear"``, phase only: the zero of the bilinear interpolation of the unit phasor
          ``exp(1j*phase)`` (exact only at the plaquette centre; errors up to ~0.5 px elsewhere).

        If no zero of the interpolant is found in the plaquette, its centre
        ``(j + 1/2, i + 1/2)`` is used.

    Returns
    -------
    Singularities
        Named tuple ``(charge, x, y, index)`` over the ``n`` nonzero plaquettes, in C order of
        ``index`` (batch axes first, then ``i`` (y), then ``j`` (x)). Positions lie inside their
        plaquette, ``x = origin[0] + (j + s) * dx`` with ``0 <= s <= 1`` (likewise ``y``); on a
        torus they lie in ``[origin, origin + n*dx)``.
    """
    phi, field = _as_phase(phase)
    if not (np.isfinite(dx) and dx > 0):
        raise ValueError(f"dx must be a positive finite number; got {dx!r}")
    if method not in ("auto", "bilinear"):
        raise ValueError(f"method must be 'auto' or 'bilinear'; got {method!r}")
    if amplitude is not None:
        if field is not None:
            raise ValueError("amplitude must be None when phase is a complex field")
        amp = np.broadcast_to(np.asarray(amplitude, dtype=float), phi.shape)
        field = amp * np.exp(1j * phi)

    winding = plaquette_winding(phi, periodic=periodic)
    index = np.argwhere(winding != 0)
    charge = winding[tuple(index.T)]
    batch = tuple(index[:, :-2].T)
    i = index[:, -2]
    j = index[:, -1]
    ny, nx = phi.shape[-2:]
    i1 = (i + 1) % ny
    j1 = (j + 1) % nx
    corners = []
    for ii, jj in ((i, j), (i, j1), (i1, j), (i1, j1)):
        # only the corners of singular plaquettes are needed (no exp over the whole batch)
        corners.append(
            field[(*batch, ii, jj)] if field is not None else np.exp(1j * phi[(*batch, ii, jj)])
        )
    s, t = _bilinear_zero(*corners)
    if field is None and method == "auto":
        sf, tf, ok = _linear_fit_zero(phi, batch, i, j, periodic)
        s = np.where(ok, sf, s)
        t = np.where(ok, tf, t)
    x = origin[0] + (j + s) * dx
    y = origin[1] + (i + t) * dx
    return Singularities(charge=charge, x=x, y=y, index=index)
