"""The damped coupled-oscillator lattice (Neural-Wave-Machine / coRNN family).

    y'' = sigma(W * y + What * y' + g*u + b) - omega2 * y - gamma * y' + eta * dW/dt

on a :class:`~wavesim.lattice.Lattice`. This module holds the parameters (with units) and the
plain-numpy reference of one integrator step, against which the compiled kernels are tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wavesim.coupling import check_stencil, orientation_modulation
from wavesim.kernels.tanh import fast_tanh_numpy
from wavesim.lattice import Lattice

ACTIVATIONS = ("tanh", "linear")
INTEGRATORS = ("symplectic_euler", "imex")


def _scalar_or_map(value, name: str, shape, *, nonnegative: bool = False):
    if np.ndim(value) == 0:
        value = float(value)
        if not np.isfinite(value) or (nonnegative and value < 0):
            raise ValueError(f"{name}: expected a finite {'non-negative ' * nonnegative}number")
        return value
    arr = np.asarray(value, dtype=float)
    if arr.shape != tuple(shape):
        raise ValueError(
            f"{name}: a per-site map must have the lattice shape {shape}, got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)) or (nonnegative and np.any(arr < 0)):
        raise ValueError(f"{name}: per-site map must be finite{' and >= 0' * nonnegative}")
    return arr


@dataclass(frozen=True, eq=False)
class OscillatorParams:
    """Parameters of the oscillator lattice.

    Parameters
    ----------
    w : (k, k) array
        Position coupling stencil ``W`` (ms^-2). Entry ``[oy, ox]`` weighs the neighbour at row
        offset ``oy - k//2`` and column offset ``ox - k//2``.
    wv : (k, k) array, optional
        Velocity coupling stencil ``What`` (ms^-1); same size as ``w``.
    kappa : float
        Orientation-similarity coupling strength; needs ``theta``. 0 = plain stencil.
    theta : (ny, nx) array, optional
        Preferred orientation (rad, in [0, pi)) of every site.
    omega2, gamma, bias : float or (ny, nx) array
        Squared natural frequency (ms^-2), damping (1/ms) and bias, scalar or per site.
    gain : float
        Input gain ``g`` of the drive ``u``.
    noise : float
        Additive noise amplitude ``eta`` (velocity increments ``eta * sqrt(dt) * N(0, 1)``).
    activation : {"tanh", "linear"}
    exact_tanh : bool
        Use ``np.tanh`` instead of the fast rational approximation (error <= 5e-7 in
        float32 arithmetic, <= 5e-8 in float64).
    integrator : {"symplectic_euler", "imex"}
        Symplectic Euler (velocity first, then position) or IMEX (damping implicit).
    """

    w: np.ndarray
    wv: np.ndarray | None = None
    kappa: float = 0.0
    theta: np.ndarray | None = field(default=None, repr=False)
    omega2: float | np.ndarray = 1.0
    gamma: float | np.ndarray = 0.5
    bias: float | np.ndarray = 0.0
    gain: float = 1.0
    noise: float = 0.0
    activation: str = "tanh"
    exact_tanh: bool = False
    integrator: str = "symplectic_euler"

    def __post_init__(self):
        object.__setattr__(self, "w", check_stencil(self.w, "coupling stencil W"))
        if self.wv is not None:
            wv = check_stencil(self.wv, "velocity stencil What")
            if wv.shape != self.w.shape:
                raise ValueError(
                    f"velocity stencil What: expected the shape of W {self.w.shape}, got {wv.shape}"
                )
            object.__setattr__(self, "wv", wv)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {self.activation!r}")
        if self.integrator not in INTEGRATORS:
            raise ValueError(f"integrator: expected one of {INTEGRATORS}, got {self.integrator!r}")
        if not self.kappa >= 0:
            raise ValueError(f"kappa: expected >= 0, got {self.kappa!r}")
        if self.kappa > 0 and self.theta is None:
            raise ValueError("kappa > 0 needs an orientation map (theta)")
        if self.noise < 0:
            raise ValueError(f"noise: expected >= 0, got {self.noise!r}")

    @property
    def k(self) -> int:
        return self.w.shape[0]

    def resolved(self, lattice: Lattice) -> ResolvedParams:
        """Per-lattice arrays: effective per-site damping (with sponge), modulated weights."""
        shape = lattice.shape
        omega2 = _scalar_or_map(self.omega2, "omega2", shape, nonnegative=True)
        gamma = _scalar_or_map(self.gamma, "gamma", shape, nonnegative=True)
        bias = _scalar_or_map(self.bias, "bias", shape)
        sponge = lattice.sponge()
        if np.any(sponge > 0):
            gamma = gamma + sponge
        modulation = None
        if self.kappa > 0:
            modulation = orientation_modulation(self.theta, self.k, self.kappa, lattice)
        return ResolvedParams(self, lattice, omega2, gamma, bias, modulation)


@dataclass(frozen=True, eq=False)
class ResolvedParams:
    """Parameters bound to a lattice (what the kernels and the reference consume)."""

    params: OscillatorParams
    lattice: Lattice
    omega2: float | np.ndarray
    gamma: float | np.ndarray
    bias: float | np.ndarray
    modulation: np.ndarray | None  # (k*k, ny, nx) or None


def _coupling_sum(field, w, modulation, lattice):
    """sum_o W[o] * m_o * field[i + o] for a batch ``(m, ny, nx)``, via numpy padding."""
    k = w.shape[0]
    h = k // 2
    ny, nx = lattice.shape
    pad = np.pad(field, ((0, 0), (h, h), (h, h)), mode=lattice.pad_mode)
    out = np.zeros_like(field)
    for oy in range(k):
        for ox in range(k):
            term = w[oy, ox] * pad[:, oy : oy + ny, ox : ox + nx]
            if modulation is not None:
                term = term * modulation[oy * k + ox]
            out = out + term
    return out


def reference_step(y, v, rp: ResolvedParams, dt: float, u=None, xi=None, e=None):
    """One integrator step in plain numpy (the reference for the compiled kernels).

    Parameters
    ----------
    y, v : (members, ny, nx) arrays
        Position and velocity.
    rp : ResolvedParams
    dt : float
        Time step (ms).
    u : (ny, nx) array, optional
        Drive at the start of the step (before the gain).
    xi : (members, ny, nx) array, optional
        Standard normal draws for this step (noise increments ``eta * sqrt(dt) * xi``).
    e : (members, ny, nx) array, optional
        Input frame of this step (:class:`wavesim.drives.InputSequence`), added to ``s``
        without the gain.

    Returns
    -------
    (y_new, v_new)
    """
    p = rp.params
    s = _coupling_sum(y, p.w, rp.modulation, rp.lattice) + rp.bias
    if p.wv is not None:
        s = s + _coupling_sum(v, p.wv, rp.modulation, rp.lattice)
    if u is not None:
        s = s + p.gain * u
    if e is not None:
        s = s + e
    if p.activation == "tanh":
        a = np.tanh(s) if p.exact_tanh else fast_tanh_numpy(s)
    else:
        a = s
    force = a - rp.omega2 * y
    kick = 0.0 if xi is None or p.noise == 0 else p.noise * np.sqrt(dt) * xi
    if p.integrator == "symplectic_euler":
        v_new = v + dt * (force - rp.gamma * v) + kick
    else:
        v_new = (v + dt * force + kick) / (1 + dt * rp.gamma)
    y_new = y + dt * v_new
    mask = rp.lattice.mask
    if mask is not None:
        v_new = v_new * mask
        y_new = y_new * mask
    return y_new, v_new
