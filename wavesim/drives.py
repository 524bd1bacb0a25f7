"""External drives ``u(x, t)`` of the lattice.

Every drive is evaluated inside the compiled kernel from a small spatial basis and per-step
coefficients (computed here, per block of steps, with the gain folded in):

- *separable* drives: ``u = sum_m c_m(t) * B_m(x)`` (pulses, drifting plane waves);
- *exponential* drives: ``u = c_0(t) * exp(sum_{m>=1} c_m(t) * B_m(x))`` (the orientation-tuned
  grating, whose ``exp(kappa_s cos 2(theta_s(t) - theta(x)))`` splits into ``cos 2theta`` and
  ``sin 2theta`` terms).

So no ``(time, y, x)`` drive array is ever stored. :meth:`Drive.evaluate` computes ``u`` directly
from its formula; the tests check the kernel against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wavesim.kernels.oscillator import DRIVE_EXP, DRIVE_LINEAR, DRIVE_NONE
from wavesim.lattice import Lattice


class Drive:
    """Base class: no drive."""

    kind = DRIVE_NONE

    def basis(self, lattice: Lattice, theta=None) -> np.ndarray:
        """Spatial basis ``(m, ny, nx)``."""
        return np.zeros((1, 1, 1))

    def coefficients(self, t: np.ndarray) -> np.ndarray:
        """Coefficients ``(len(t), m)`` at times ``t`` (ms), before the gain."""
        return np.zeros((len(t), 1))

    def evaluate(self, t: float, lattice: Lattice, theta=None) -> np.ndarray:
        """The drive field ``u(x, t)`` (ny, nx), straight from its formula."""
        return np.zeros(lattice.shape)

    def kernel_coefficients(self, t, gain: float, dtype) -> np.ndarray:
        """Per-step coefficients ``(len(t), m)`` for the kernel, gain folded in, in ``dtype``.

        The spatial basis does not change during a run: the kernel builds it once with
        :meth:`basis`; only these coefficients are computed per block of steps.
        """
        coef = np.array(self.coefficients(np.asarray(t, dtype=float)), dtype=float)
        if self.kind == DRIVE_LINEAR:
            coef *= gain
        elif self.kind == DRIVE_EXP:
            coef[:, 0] *= gain
        return np.ascontiguousarray(coef, dtype=dtype)


def _active(t, onset, duration=None, period=None):
    t = np.asarray(t, dtype=float) - onset
    if period is not None:
        on = t >= 0
        t = np.where(on, np.mod(t, period), t)
    if duration is None:
        return t >= 0
    return (t >= 0) & (t < duration)


@dataclass(frozen=True)
class PulseDrive(Drive):
    """A point or Gaussian source switched on for ``duration`` ms from ``onset``.

    ``width = 0`` drives the single site nearest ``position`` with amplitude ``amplitude``;
    ``width > 0`` a Gaussian bump ``exp(-r^2 / (2 width^2))``. With ``period`` the pulse repeats.
    """

    position: tuple[float, float]
    amplitude: float = 1.0
    width: float = 0.0
    onset: float = 0.0
    duration: float = 1.0
    period: float | None = None

    kind = DRIVE_LINEAR

    def _profile(self, lattice):
        x0, y0 = self.position
        if self.width == 0:
            out = np.zeros(lattice.shape)
            j = int(np.clip(round(x0 / lattice.dx), 0, lattice.nx - 1))
            i = int(np.clip(round(y0 / lattice.dx), 0, lattice.ny - 1))
            out[i, j] = 1.0
            return out
        yy, xx = np.meshgrid(lattice.y, lattice.x, indexing="ij")
        return np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * self.width**2))

    def basis(self, lattice, theta=None):
        return self._profile(lattice)[None]

    def coefficients(self, t):
        on = _active(t, self.onset, self.duration, self.period)
        return (self.amplitude * on)[:, None].astype(float)

    def evaluate(self, t, lattice, theta=None):
        return float(self.coefficients(np.array([t]))[0, 0]) * self._profile(lattice)


@dataclass(frozen=True)
class PlaneWaveDrive(Drive):
    """A drifting plane wave ``A cos(omega t - k.x)`` from ``onset`` on.

    ``direction`` (degrees, counter-clockwise from +x) is the propagation direction, ``speed`` the
    phase speed (mm/ms), so ``|k| = 2 pi / wavelength`` and ``omega = |k| * speed``.
    """

    wavelength: float
    speed: float
    direction: float = 0.0
    amplitude: float = 1.0
    onset: float = 0.0

    kind = DRIVE_LINEAR

    def _kx(self, lattice):
        k = 2 * np.pi / self.wavelength
        d = np.deg2rad(self.direction)
        yy, xx = np.meshgrid(lattice.y, lattice.x, indexing="ij")
        return k * (np.cos(d) * xx + np.sin(d) * yy)

    def basis(self, lattice, theta=None):
        kx = self._kx(lattice)
        return np.stack([np.cos(kx), np.sin(kx)])

    def coefficients(self, t):
        t = np.asarray(t, dtype=float)
        omega = 2 * np.pi / self.wavelength * self.speed
        on = self.amplitude * _active(t, self.onset)
        return np.stack([on * np.cos(omega * t), on * np.sin(omega * t)], axis=1)

    def evaluate(self, t, lattice, theta=None):
        if t < self.onset:
            return np.zeros(lattice.shape)
        omega = 2 * np.pi / self.wavelength * self.speed
        return self.amplitude * np.cos(omega * t - self._kx(lattice))


@dataclass(frozen=True)
class GratingDrive(Drive):
    """Orientation-tuned drive of a rotating grating.

    ``u(x, t) = A exp(kappa_s (cos 2(theta_s(t) - theta(x)) - 1))`` with stimulus orientation
    ``theta_s(t) = orientation + angular_speed * (t - onset)`` (degrees, degrees/ms): each site is
    driven most when the grating matches its preferred orientation, so a rotating grating makes
    activity circulate around pinwheels.
    """

    angular_speed: float
    amplitude: float = 1.0
    tuning: float = 2.0
    orientation: float = 0.0
    onset: float = 0.0

    kind = DRIVE_EXP

    def _theta_s(self, t):
        return np.deg2rad(self.orientation + self.angular_speed * (np.asarray(t) - self.onset))

    def basis(self, lattice, theta=None):
        if theta is None:
            raise ValueError("grating drive needs an orientation map ([map] kind != 'none')")
        theta = np.nan_to_num(np.asarray(theta, dtype=float))
        return np.stack([np.zeros(lattice.shape), np.cos(2 * theta), np.sin(2 * theta)])

    def coefficients(self, t):
        t = np.asarray(t, dtype=float)
        ts = self._theta_s(t)
        a0 = self.amplitude * np.exp(-self.tuning) * _active(t, self.onset)
        return np.stack([a0, self.tuning * np.cos(2 * ts), self.tuning * np.sin(2 * ts)], axis=1)

    def evaluate(self, t, lattice, theta=None):
        if theta is None:
            raise ValueError("grating drive needs an orientation map ([map] kind != 'none')")
        if t < self.onset:
            return np.zeros(lattice.shape)
        theta = np.nan_to_num(np.asarray(theta, dtype=float))
        ts = self._theta_s(t)
        return self.amplitude * np.exp(self.tuning * (np.cos(2 * (ts - theta)) - 1))


class InputSequence:
    """Per-member input frames added to sigma's argument, one frame per block of steps.

    The lattice's drive term for an encoder: member ``b`` at step ``n`` gets
    ``e[b, f(n)]`` added to ``s`` (not scaled by the gain), with
    ``f(n) = (n - start) // steps_per_frame`` while ``0 <= f(n) < frames``; outside that window
    the lattice runs free. Unlike the analytic drives the frames are stored, so gradients with
    respect to every input value are available (``wrt=("inputs",)`` in
    :meth:`wavesim.learn.GradientEngine.value_and_grad`).

    Parameters
    ----------
    values : array_like, (members, frames, ny, nx) or (frames, ny, nx)
        Input frames (a 3-D array is shared by every member).
    steps_per_frame : int
        Integrator steps each frame is held for.
    start : int
        Step at which frame 0 starts.
    """

    def __init__(self, values, steps_per_frame: int = 1, start: int = 0):
        values = np.asarray(values)
        if values.ndim == 3:
            values = values[None]
        if values.ndim != 4:
            raise ValueError(
                "inputs.values: expected an array (members, frames, ny, nx) or (frames, ny, nx), "
                f"got shape {values.shape}"
            )
        if not np.all(np.isfinite(values)):
            raise ValueError("inputs.values: contains NaN or inf")
        if int(steps_per_frame) < 1:
            raise ValueError(f"inputs.steps_per_frame: expected >= 1, got {steps_per_frame!r}")
        if int(start) < 0:
            raise ValueError(f"inputs.start: expected a step >= 0, got {start!r}")
        self.values = values
        self.steps_per_frame = int(steps_per_frame)
        self.start = int(start)

    @property
    def frames(self) -> int:
        return self.values.shape[1]

    @property
    def stop(self) -> int:
        """The first step after the last frame."""
        return self.start + self.frames * self.steps_per_frame

    def frame_index(self, steps) -> np.ndarray:
        """Frame driving each of ``steps`` (int64; -1 where no frame is active)."""
        steps = np.asarray(steps, dtype=np.int64)
        f = (steps - self.start) // self.steps_per_frame
        return np.where((steps >= self.start) & (f < self.frames), f, -1).astype(np.int64)

    def frame_at(self, step: int):
        """The ``(members, ny, nx)`` frame active at ``step``, or None."""
        f = int(self.frame_index([step])[0])
        return None if f < 0 else self.values[:, f]

    def __repr__(self) -> str:
        return (f"InputSequence(values={self.values.shape}, steps_per_frame="
                f"{self.steps_per_frame}, start={self.start})")  # fmt: skip
