"""Coupling stencils and their orientation-similarity modulation.

The weight from site j = i + o to site i is ``W[o] * exp(kappa * (cos 2(theta_i - theta_j) - 1))``
(Bosking et al. 1997: horizontal connections prefer similar orientations). ``kappa = 0`` gives the
plain stencil exactly. Neighbours across a boundary are the boundary's ghost sites (wrapped on a
torus, mirrored at reflecting edges), so the modulation is symmetric: m(i, j) = m(j, i).
"""

from __future__ import annotations

import numpy as np

from wavesim.lattice import Lattice

_LAPLACIAN = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def laplacian_stencil(speed: float, dx: float) -> np.ndarray:
    """The 5-point Laplacian scaled to wave speed ``speed`` (mm/ms): ``(speed/dx)**2 * L``.

    With a linear activation this makes the lattice the discretised Klein-Gordon equation
    ``y'' = speed**2 * laplacian(y) - omega2 * y``.
    """
    if not speed > 0:
        raise ValueError(f"laplacian_stencil speed: expected > 0 mm/ms, got {speed!r}")
    return (speed / dx) ** 2 * _LAPLACIAN


def check_stencil(w, name: str = "stencil") -> np.ndarray:
    """Validate a square odd-sized stencil and return it as float64."""
    w = np.asarray(w, dtype=float)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] % 2 == 0:
        raise ValueError(f"{name}: expected a square k x k array with k odd, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name}: all weights must be finite")
    return w


def orientation_similarity(theta: np.ndarray, k: int, lattice: Lattice) -> np.ndarray:
    """Per-site, per-offset ``cos 2(theta_i - theta_j) - 1`` (in [-2, 0]; NaN without orientation).

    The exponent of :func:`orientation_modulation` divided by ``kappa`` (also its derivative with
    respect to ``kappa`` divided by the modulation). Returns an array ``(k*k, ny, nx)`` laid out
    like :func:`orientation_modulation`; entries that involve a NaN orientation are NaN.
    """
    theta = np.asarray(theta, dtype=float)
    if theta.shape != lattice.shape:
        raise ValueError(f"orientation map: expected shape {lattice.shape}, got {theta.shape}")
    h = k // 2
    ny, nx = lattice.shape
    pad = np.pad(theta, h, mode=lattice.pad_mode)
    out = np.empty((k * k, ny, nx))
    for oy in range(k):
        for ox in range(k):
            neighbour = pad[oy : oy + ny, ox : ox + nx]
            out[oy * k + ox] = np.cos(2 * (theta - neighbour)) - 1
    return out


def orientation_modulation(theta: np.ndarray, k: int, kappa: float, lattice: Lattice) -> np.ndarray:
    """Per-site, per-offset factors ``exp(kappa * (cos 2(theta_i - theta_j) - 1))``.

    Returns an array ``(k*k, ny, nx)``; entry ``[oy*k + ox, i, x]`` belongs to the neighbour at
    offset ``(oy - k//2, ox - k//2)`` of site ``(i, x)``. NaN orientations (outside a measured map)
    give factor 0 (no coupling through sites without an orientation).
    """
    m = np.exp(kappa * orientation_similarity(theta, k, lattice))
    return np.where(np.isfinite(m), m, 0.0)


def stencil_symbol(w: np.ndarray, kx: np.ndarray, ky: np.ndarray, dx: float) -> np.ndarray:
    """Fourier symbol ``sum_o W[o] exp(i k.o dx)`` of a stencil at wavevectors (rad/mm)."""
    k = w.shape[0]
    h = k // 2
    out = np.zeros(np.broadcast(kx, ky).shape, dtype=complex)
    for oy in range(k):
        for ox in range(k):
            if w[oy, ox] != 0:
                out += w[oy, ox] * np.exp(1j * ((ox - h) * kx + (oy - h) * ky) * dx)
    return out
