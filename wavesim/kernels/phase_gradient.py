"""Compiled phase gradient of phase movies, and its plain-numpy reference.

For every site of every frame of a phase array ``phase[b, t, i, j]`` (member ``b``, frame ``t``,
row ``i`` = y, column ``j`` = x), in radians::

    dphi/dx = mean(wrap(phi[j+1] - phi[j]), wrap(phi[j] - phi[j-1])) / dx
    dphi/dy = the same along rows, / dy
    dphi/dt = the same along frames, / dt

``wrap`` maps a difference into ``[-pi, pi)``; for unit phasors ``z = exp(i phi)`` it is
``arg(z[j+1] conj(z[j]))``, the complex-multiplication difference. The mean of the two one-sided
differences equals the central difference ``arg(z[j+1] conj(z[j-1])) / (2 dx)`` whenever the phase
turns by less than pi/2 per site, and stays right up to pi per site. A one-sided difference is
used where the other neighbour is missing (array edge, or NaN: a masked site), and the result is
NaN where both are missing. Outputs, per site::

    kx, ky    = -dphi/dx, -dphi/dy            (wave vector k = -grad phi, rad per length unit)
    omega     = dphi/dt                      (rad per time unit)
    speed     = omega / |k|                  (signed; +-inf where |k| = 0)
    direction = atan2(ky, kx)                (rad, counter-clockwise from +x)

:func:`phase_gradient_frames` is the numba kernel (one call for all frames; ``direction`` is
then one ``numpy.arctan2``); it loops over ``x`` innermost with the missing-neighbour logic written
branch-free (NaN ghost rows/frames and select-based NaN means), so LLVM vectorizes the interior.
:func:`phase_gradient_reference` is the plain-numpy version of the same formulas, written with
complex multiplication; the tests compare the two.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: fastmath flags as in :mod:`wavesim.kernels.oscillator`: no nnan/ninf, NaN marks masked sites.
FASTMATH = {"contract", "arcp", "nsz"}

_PI = math.pi
_TWO_PI = 2.0 * math.pi
_INV_TWO_PI = 1.0 / (2.0 * math.pi)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def _wrap(d):
    """``d`` wrapped into ``[-pi, pi)``; NaN stays NaN."""
    return d - _TWO_PI * math.floor((d + _PI) * _INV_TWO_PI)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def _two_sided(prev, here, nxt):
    """Mean of the available wrapped differences ``nxt - here``, ``here - prev``; NaN if none."""
    f = _wrap(nxt - here)
    b = _wrap(here - prev)
    fv = f == f
    bv = b == b
    s = (f if fv else 0.0) + (b if bv else 0.0)
    n = (1.0 if fv else 0.0) + (1.0 if bv else 0.0)
    return s / n


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def _site(j, left, here, right, rdn, rup, rpv, rnx, inv_dx, inv_dy, inv_dt,
          okx, oky, oom, osp):  # fmt: skip
    """Outputs of column ``j`` from its x neighbours and the rows/frames around it."""
    gx = -_two_sided(left, here, right) * inv_dx
    gy = -_two_sided(rdn[j], here, rup[j]) * inv_dy
    w = _two_sided(rpv[j], here, rnx[j]) * inv_dt
    okx[j] = gx
    oky[j] = gy
    oom[j] = w
    osp[j] = w / math.sqrt(gx * gx + gy * gy)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def phase_gradient_frames(phase, inv_dx, inv_dy, inv_dt, kx, ky, omega, speed):
    """Phase gradient of every frame: ``phase`` is ``(members, frames, ny, nx)`` float64.

    Writes ``kx``, ``ky``, ``omega``, ``speed`` (C-contiguous float64 arrays of the same shape).
    ``inv_dx``, ``inv_dy``, ``inv_dt`` are the reciprocal spacings; with a single frame, or
    ``inv_dt = nan``, ``omega`` and ``speed`` are NaN. Needs ``nx >= 2``. The direction is left to
    ``numpy.arctan2(ky, kx)``: numba has no vector atan2 without SVML, and a scalar atan2 loop costs
    more than the whole gradient (numpy's SIMD arctan2 is ~10x faster).
    """
    nb, nt, ny, nx = phase.shape
    nanrow = np.full(nx, np.nan)
    for b in range(nb):
        for t in range(nt):
            for i in range(ny):
                row = phase[b, t, i]
                # Missing neighbours (array edges) are NaN ghost rows and frames, so the inner loop
                # has no branches; columns 0 and nx - 1 are done outside it.
                rup = phase[b, t, i + 1] if i + 1 < ny else nanrow
                rdn = phase[b, t, i - 1] if i > 0 else nanrow
                rnx = phase[b, t + 1, i] if t + 1 < nt else nanrow
                rpv = phase[b, t - 1, i] if t > 0 else nanrow
                okx = kx[b, t, i]
                oky = ky[b, t, i]
                oom = omega[b, t, i]
                osp = speed[b, t, i]
                _site(0, np.nan, row[0], row[1], rdn, rup, rpv, rnx, inv_dx, inv_dy, inv_dt,
                      okx, oky, oom, osp)  # fmt: skip
                for j in range(1, nx - 1):
                    _site(j, row[j - 1], row[j], row[j + 1], rdn, rup, rpv, rnx, inv_dx, inv_dy,
                          inv_dt, okx, oky, oom, osp)  # fmt: skip
                _site(nx - 1, row[nx - 2], row[nx - 1], np.nan, rdn, rup, rpv, rnx, inv_dx,
                      inv_dy, inv_dt, okx, oky, oom, osp)  # fmt: skip


def phase_gradient_reference(phase, dx, dy, dt):
    """Plain-numpy reference of :func:`phase_gradient_frames` (complex multiplication).

    Parameters
    ----------
    phase : numpy.ndarray, shape (members, frames, ny, nx)
        Phase in radians; NaN marks missing sites.
    dx, dy, dt : float
        Site spacing along x and y and the frame interval (``dt`` may be NaN: no time derivative).

    Returns
    -------
    kx, ky, omega, speed, direction : numpy.ndarray
        Same shape as ``phase``.
    """
    phase = np.asarray(phase, dtype=float)
    z = np.exp(1j * phase)

    def derivative(axis, step):
        d = np.angle(
            np.take(z, np.arange(1, z.shape[axis]), axis=axis)
            * np.conj(np.take(z, np.arange(z.shape[axis] - 1), axis=axis))
        )
        pad = [(0, 0)] * z.ndim
        pad[axis] = (0, 1)
        fwd = np.pad(d, pad, constant_values=np.nan)
        pad[axis] = (1, 0)
        bwd = np.pad(d, pad, constant_values=np.nan)
        both = np.stack([fwd, bwd])
        n = np.isfinite(both).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, np.nansum(both, axis=0) / n, np.nan) / step

    kx = -derivative(-1, dx)
    ky = -derivative(-2, dy)
    omega = derivative(-3, dt) if np.isfinite(dt) else np.full(phase.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        speed = omega / np.hypot(kx, ky)
    direction = np.arctan2(ky, kx)
    return kx, ky, omega, speed, direction
