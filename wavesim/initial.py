"""Initial states of the lattice: rest, random, Gaussian bump, plane wave, spiral.

Waves follow the phase convention phi = omega*t - k.x (docs/conventions.md): a wave state is
``y = A cos(phi)``, ``ydot = -A omega sin(phi)`` with ``omega`` from the lattice's own linear
dispersion ``omega^2 = omega2 - S(k)`` (``S`` the coupling stencil's Fourier symbol), so a plane
wave starts as a single travelling wave rather than a standing pair.
"""

from __future__ import annotations

import numpy as np

from wavesim.coupling import stencil_symbol
from wavesim.lattice import Lattice
from wavesim.models.oscillator import OscillatorParams

KINDS = ("rest", "random", "gaussian", "plane_wave", "spiral")


def _omega(params: OscillatorParams, lattice: Lattice, kx: float, ky: float) -> float:
    """Linear angular frequency (rad/ms) of wavevector (kx, ky) on this lattice."""
    s = stencil_symbol(params.w, np.asarray(kx), np.asarray(ky), lattice.dx).real
    w2 = float(np.mean(params.omega2)) - float(s)
    return float(np.sqrt(max(w2, 0.0)))


def initial_state(kind: str, lattice: Lattice, params: OscillatorParams, *, members: int = 1,
                  rngs=None, amplitude: float = 1.0, position=None, width=None, wavelength=None,
                  direction: float = 0.0, charge: int = 1):  # fmt: skip
    """Positions and velocities ``(members, ny, nx)`` (float64) for an initial-state kind.

    Parameters
    ----------
    kind : {"rest", "random", "gaussian", "plane_wave", "spiral"}
    lattice, params : the lattice and model (the wave kinds use the model's dispersion).
    members : batch size.
    rngs : list of ``numpy.random.Generator``, one per member (``random`` only).
    amplitude : A.
    position : (x, y) in mm, centre of the bump or spiral (default: lattice centre).
    width : Gaussian standard deviation in mm (``gaussian``).
    wavelength : mm (``plane_wave``, ``spiral``).
    direction : propagation direction in degrees, counter-clockwise from +x (``plane_wave``).
    charge : +1 or -1 (``spiral``): the winding of the phase counter-clockwise.
    """
    shape = (members, *lattice.shape)
    y = np.zeros(shape)
    v = np.zeros(shape)
    yy, xx = np.meshgrid(lattice.y, lattice.x, indexing="ij")
    if position is None:
        position = (lattice.x[-1] / 2, lattice.y[-1] / 2)
    x0, y0 = position
    if kind == "rest":
        pass
    elif kind == "random":
        if rngs is None or len(rngs) != members:
            raise ValueError("initial kind 'random' needs one random Generator per member")
        for b, rng in enumerate(rngs):
            y[b] = amplitude * rng.standard_normal(lattice.shape)
    elif kind == "gaussian":
        if not width or width <= 0:
            raise ValueError(f"initial width: expected > 0 mm for a gaussian, got {width!r}")
        y[:] = amplitude * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * width**2))
    elif kind in ("plane_wave", "spiral"):
        if not wavelength or wavelength <= 0:
            raise ValueError(f"initial wavelength: expected > 0 mm, got {wavelength!r}")
        k = 2 * np.pi / wavelength
        if kind == "plane_wave":
            d = np.deg2rad(direction)
            kx, ky = k * np.cos(d), k * np.sin(d)
            phase = -(kx * xx + ky * yy)
            envelope = 1.0
        else:
            kx, ky = k, 0.0
            r = np.hypot(xx - x0, yy - y0)
            alpha = np.arctan2(yy - y0, xx - x0)
            phase = charge * alpha - k * r
            core = wavelength / 4
            envelope = r / np.sqrt(r**2 + core**2)
        omega = _omega(params, lattice, kx, ky)
        y[:] = amplitude * envelope * np.cos(phase)
        v[:] = -amplitude * envelope * omega * np.sin(phase)
    else:
        raise ValueError(f"initial kind: expected one of {KINDS}, got {kind!r}")
    if lattice.mask is not None:
        y *= lattice.mask
        v *= lattice.mask
    return y, v
