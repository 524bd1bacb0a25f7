"""Linear stability of the integrators on a lattice.

Around rest the lattice is linear (tanh'(0) = 1 is also the largest slope of tanh), and each Fourier
mode ``k`` of a translation-invariant lattice evolves by a 2x2 amplification matrix. With the
stencil symbols ``S(k) = sum_o W_o exp(i k.o)`` and ``Sv(k)`` (velocity stencil), one step is

    v' = (alpha + beta*Sv) v + (beta*S - delta) y,      y' = y + dt*v'

(``alpha, beta, delta`` as in :mod:`wavesim.kernels.oscillator`). The scheme is stable when every
mode's spectral radius is <= 1. For symplectic Euler with ``W`` the scaled Laplacian and no damping
this is the classical ``dt * Omega_max < 2`` with
``Omega_max^2 = omega2 + 8 c^2 / dx^2``; damping tightens it to ``dt^2 Omega^2 + 2 gamma dt < 4``
(explicit) and relaxes it to ``dt^2 Omega^2 < 4 + 2 gamma dt`` (IMEX).

Per-site ``omega2`` and ``gamma`` (including sponge layers) are covered by checking the extreme
combinations; orientation-modulated coupling (``kappa > 0``) scales every off-centre weight by a
factor in (0, 1], and is checked at both ends (factor 1 and factor 0), which bounds the usual
Laplacian-like stencils. Wave vectors: the lattice's own Fourier grid when periodic, a fine grid
over the Brillouin zone otherwise.
"""

from __future__ import annotations

import numpy as np

from wavesim.coupling import stencil_symbol
from wavesim.models.oscillator import ResolvedParams


class StabilityError(ValueError):
    """The time step is beyond the integrator's linear stability limit."""


def _wavevectors(rp: ResolvedParams):
    lat = rp.lattice
    if lat.periodic:
        ky = 2 * np.pi * np.fft.fftfreq(lat.ny, d=lat.dx)
        kx = 2 * np.pi * np.fft.fftfreq(lat.nx, d=lat.dx)
    else:
        kx = ky = np.linspace(-np.pi / lat.dx, np.pi / lat.dx, 129)
    return np.meshgrid(kx, ky, indexing="xy")


def _symbol_sets(rp: ResolvedParams):
    """Stencil symbols to check: the stencil itself, and (kappa > 0) its centre alone."""
    p = rp.params
    kx, ky = _wavevectors(rp)
    dx = rp.lattice.dx
    variants = [(p.w, p.wv)]
    if p.kappa > 0:
        k = p.k
        centre_only = np.zeros_like(p.w)
        centre_only[k // 2, k // 2] = p.w[k // 2, k // 2]
        wv_c = None
        if p.wv is not None:
            wv_c = np.zeros_like(p.wv)
            wv_c[k // 2, k // 2] = p.wv[k // 2, k // 2]
        variants.append((centre_only, wv_c))
    out = []
    for w, wv in variants:
        s = stencil_symbol(w, kx, ky, dx).ravel()
        sv = np.zeros_like(s) if wv is None else stencil_symbol(wv, kx, ky, dx).ravel()
        out.append((s, sv))
    return out


def _extremes(value):
    a = np.asarray(value, dtype=float)
    return sorted({float(a.min()), float(a.max())})


def spectral_radius(rp: ResolvedParams, dt: float) -> float:
    """Largest modulus of the linearised one-step amplification over all modes."""
    imex = rp.params.integrator == "imex"
    worst = 0.0
    for s, sv in _symbol_sets(rp):
        for omega2 in _extremes(rp.omega2):
            for gamma in _extremes(rp.gamma):
                if imex:
                    alpha = 1 / (1 + dt * gamma)
                    beta, delta = dt * alpha, dt * omega2 * alpha
                else:
                    alpha, beta, delta = 1 - dt * gamma, dt, dt * omega2
                m21 = beta * s - delta
                m22 = alpha + beta * sv
                # M = [[1 + dt*m21, dt*m22], [m21, m22]] acting on (y, v)
                tr = 1 + dt * m21 + m22
                det = (1 + dt * m21) * m22 - dt * m22 * m21
                disc = np.sqrt(tr * tr - 4 * det + 0j)
                lam = np.maximum(np.abs((tr + disc) / 2), np.abs((tr - disc) / 2))
                worst = max(worst, float(lam.max()))
    return worst


def omega_max(rp: ResolvedParams) -> float:
    """Largest linear angular frequency ``Omega`` (rad/ms) of the undamped lattice."""
    best = 0.0
    for s, _ in _symbol_sets(rp):
        best = max(best, float(np.max(np.asarray(rp.omega2, float)) - np.min(s.real)))
    return float(np.sqrt(max(best, 0.0)))


def max_stable_dt(rp: ResolvedParams, *, tol: float = 1e-9) -> float:
    """Largest time step (ms) for which every linear mode stays bounded.

    Returns ``inf`` when no step size up to 1e6 ms is unstable.
    """

    def stable(dt):
        return spectral_radius(rp, dt) <= 1 + 1e-9

    hi = 1e-3
    while stable(hi):
        hi *= 2
        if hi > 1e6:
            return float("inf")
    lo = 0.0
    while hi - lo > tol * hi:
        mid = 0.5 * (lo + hi)
        if stable(mid):
            lo = mid
        else:
            hi = mid
    return lo


def check_stability(rp: ResolvedParams, dt: float, *, source: str = "") -> float:
    """Raise :class:`StabilityError` if ``dt`` is unstable; return the largest stable dt.

    The message states the largest stable ``dt`` and ``dt * Omega_max``.
    """
    dt_max = max_stable_dt(rp)
    if dt > dt_max:
        where = f"{source}: " if source else ""
        raise StabilityError(
            f"{where}[run] dt = {dt:g} ms is beyond the linear stability limit of the "
            f"{rp.params.integrator} integrator on this lattice (dt * Omega_max = "
            f"{dt * omega_max(rp):.4g}; the undamped limit is 2). "
            f"The largest stable dt is {dt_max:.6g} ms: use dt <= {0.95 * dt_max:.4g} ms."
        )
    return dt_max
