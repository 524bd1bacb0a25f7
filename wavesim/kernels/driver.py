"""Python side of the forward kernels: configuration, padded state buffers, thread policy."""

from __future__ import annotations

import numba
import numpy as np

from wavesim.drives import Drive
from wavesim.kernels import oscillator as ko
from wavesim.models.oscillator import ResolvedParams

#: Lattices with at least this many sites per member run row-parallel when there are fewer members
#: than threads; smaller ones stay on one thread (a parallel region per step costs more than it
#: saves, and collapses when another process holds a core).
ROW_PARALLEL_MIN_SITES = 256 * 256


class PaddedState:
    """Ping-pong state buffers ``(members, ny + 2h, nx + 2h)`` framed by ghost sites.

    ``y`` and ``v`` are views of the current buffers' interiors (``(members, ny, nx)``).
    """

    def __init__(self, members: int, shape, h: int, dtype):
        ny, nx = shape
        self.h = h
        self.shape = (ny, nx)
        self.bufs = [np.zeros((members, ny + 2 * h, nx + 2 * h), dtype=dtype) for _ in range(4)]
        self.parity = 0

    @property
    def current(self):
        a, b, c, d = self.bufs
        return (a, b, c, d) if self.parity == 0 else (c, d, a, b)

    def _interior(self, a):
        h, (ny, nx) = self.h, self.shape
        return a[:, h : h + ny, h : h + nx]

    @property
    def y(self) -> np.ndarray:
        return self._interior(self.current[0])

    @property
    def v(self) -> np.ndarray:
        return self._interior(self.current[1])

    def finite(self) -> bool:
        """True when the whole state (ghosts included, which copy the interior) is finite."""
        y, v = self.current[:2]
        if y.dtype == np.float32:
            bits, exponent = np.uint32, np.uint32(0x7F800000)
        else:
            bits, exponent = np.uint64, np.uint64(0x7FF0000000000000)
        return ko.count_nonfinite(y.view(bits), v.view(bits), exponent) == 0

    def set(self, y, v, colmode: int):
        """Load ``(members, ny, nx)`` positions and velocities and fill the ghost frame."""
        for dst, src in zip(self.current[:2], (y, v), strict=True):
            self._interior(dst)[...] = src
            for b in range(dst.shape[0]):
                ko.fill_ghosts(dst, b, self.h, colmode)


def _coupling_arrays(w, modulation, dtype):
    """``(mode, w, w_site)`` of a stencil: uniform weights, or per-site weights ``w[o] * m_o``
    when an orientation modulation is given. (``W_UNIFORM == WV_UNIFORM``, ``W_SITE == WV_SITE``.)
    """
    if modulation is None:
        return ko.W_UNIFORM, w.astype(dtype), np.zeros((1, 1, 1), dtype)
    return ko.W_SITE, w.astype(dtype), (w.reshape(-1)[:, None, None] * modulation).astype(dtype)


class LatticeKernel:
    """A lattice bound to its compiled step.

    Parameters
    ----------
    rp : ResolvedParams
        Parameters bound to a lattice.
    dt : float
        Time step (ms).
    dtype : numpy dtype
        ``float32`` or ``float64``.
    drive : Drive, optional
    members : int
        Batch size.
    threads : int, optional
        Threads for this lattice (default: numba's current setting).
    """

    def __init__(self, rp: ResolvedParams, dt: float, dtype=np.float32, drive: Drive | None = None,
                 members: int = 1, threads: int | None = None):  # fmt: skip
        self.rp = rp
        self.dt = float(dt)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype: expected float32 or float64, got {self.dtype}")
        self.drive = drive or Drive()
        self.members = int(members)
        self.threads = int(threads) if threads else numba.get_num_threads()
        self.threads = max(1, min(self.threads, numba.config.NUMBA_NUM_THREADS))
        lat = rp.lattice
        p = rp.params
        k = p.k
        self.h = k // 2
        self.colmode = ko.COL_PERIODIC if lat.periodic else ko.COL_REFLECT
        w_mode, w, w_site = _coupling_arrays(p.w, rp.modulation, self.dtype)
        if p.wv is None:
            wv_mode, wv, wv_site = ko.WV_NONE, np.zeros((k, k), self.dtype), w_site[:1, :1, :1]
        else:
            wv_mode, wv, wv_site = _coupling_arrays(p.wv, rp.modulation, self.dtype)
        # per-site or scalar update coefficients
        gamma, omega2, bias = rp.gamma, rp.omega2, rp.bias
        g = np.asarray(gamma, float)
        if p.integrator == "symplectic_euler":
            alpha, beta, delta = 1 - self.dt * g, self.dt, self.dt * np.asarray(omega2, float)
        else:
            alpha = 1 / (1 + self.dt * g)
            beta, delta = self.dt * alpha, self.dt * np.asarray(omega2, float) * alpha
        uniform = all(np.ndim(a) == 0 for a in (alpha, beta, delta, bias))
        scal = np.zeros(5, self.dtype)
        scal[4] = self.dt
        if uniform:
            scal[:4] = [alpha, beta, delta, bias]
            site = np.zeros((4, 1, 1), self.dtype)
        else:
            site = np.stack([np.broadcast_to(a, lat.shape) for a in (alpha, beta, delta, bias)])
            site = np.ascontiguousarray(site, dtype=self.dtype)
        has_mask = lat.mask is not None
        mask = lat.mask.astype(self.dtype) if has_mask else np.zeros((1, 1), self.dtype)
        if p.activation == "linear":
            act = ko.ACT_LINEAR
        else:
            act = ko.ACT_EXACT_TANH if p.exact_tanh else ko.ACT_FAST_TANH
        self.drive_basis = None
        if self.drive.kind != ko.DRIVE_NONE:
            self.drive_basis = np.ascontiguousarray(
                self.drive.basis(lat, p.theta), dtype=self.dtype
            )
        fused = (
            k == 3 and w_mode == ko.W_UNIFORM and wv_mode == ko.WV_NONE and uniform
            and self.drive.kind == ko.DRIVE_NONE and p.noise == 0 and not has_mask
        )  # fmt: skip
        if fused:
            corners = p.w[0, 0] == p.w[0, 2] == p.w[2, 0] == p.w[2, 2] == 0
            w_mode = ko.W_FUSED5 if corners else ko.W_FUSED3
        self._static = dict(
            colmode=self.colmode, w_mode=w_mode, w=w,
            w_site=w_site, wv_mode=wv_mode, wv=wv, wv_site=wv_site, act=act,
            uniform=uniform, scal=scal, site=site,
            has_mask=has_mask, mask=mask,
        )  # fmt: skip
        self._noise_scale = self.dtype.type(p.noise / np.sqrt(self.dt)) if p.noise > 0 else None
        self._no_drive = (np.zeros((1, 1), self.dtype), np.zeros((1, 1, 1), self.dtype))
        self._no_noise = np.zeros((1, 1, 1, 1), self.dtype)
        self._no_frame = np.full(1, -1, np.int64)
        self._w_mode_general = ko.W_UNIFORM if fused else w_mode
        self._w_mode_fused = w_mode
        self.inputs = None
        self._inp = None

    def set_inputs(self, inputs):
        """Attach an :class:`~wavesim.drives.InputSequence` (or None to detach).

        Its frames are copied once into the state dtype, broadcast to every member. Inputs turn
        the fused fast path off (the staged path adds them per block of rows).
        """
        if inputs is None:
            self.inputs, self._inp = None, None
            self._static["w_mode"] = self._w_mode_fused
            return
        vals = inputs.values
        ny, nx = self.rp.lattice.shape
        if vals.shape[2:] != (ny, nx) or vals.shape[0] not in (1, self.members):
            raise ValueError(
                f"inputs.values: expected shape ({self.members}, frames, {ny}, {nx}) (or a "
                f"leading 1), got {vals.shape}"
            )
        shape = (self.members, *vals.shape[1:])
        self._inp = np.ascontiguousarray(np.broadcast_to(vals, shape), dtype=self.dtype)
        self.inputs = inputs
        self._static["w_mode"] = self._w_mode_general

    @property
    def fused(self) -> bool:
        """True when the single-pass fast path runs (uniform 3x3, scalars, no drive, noise, mask
        or inputs)."""
        return self._static["w_mode"] in (ko.W_FUSED3, ko.W_FUSED5)

    @property
    def has_noise(self) -> bool:
        return self._noise_scale is not None

    def config(self, t0: float, nsteps: int, xi: np.ndarray | None = None, step0: int | None = None
               ) -> ko.KernelConfig:  # fmt: skip
        """Kernel configuration for ``nsteps`` steps starting at time ``t0`` (ms).

        ``xi``: standard normal draws ``(members, nsteps, ny, nx)`` when the model has noise.
        """
        if self.drive.kind != ko.DRIVE_NONE:
            # from the integer step when known, so drive times do not depend on block splits
            t = (step0 + np.arange(nsteps)) * self.dt if step0 is not None else (
                t0 + self.dt * np.arange(nsteps))  # fmt: skip
            kind, dbasis = self.drive.kind, self.drive_basis
            dcoef = self.drive.kernel_coefficients(t, self.rp.params.gain, self.dtype)
        else:
            kind, (dcoef, dbasis) = ko.DRIVE_NONE, self._no_drive
        if self.has_noise:
            if xi is None:
                raise ValueError("this model has noise: pass the standard normal draws xi")
            noise = np.multiply(xi, self._noise_scale, dtype=self.dtype)
            has_noise = True
        else:
            noise, has_noise = self._no_noise, False
        if self.inputs is not None:
            s0 = step0 if step0 is not None else int(round(t0 / self.dt))
            inp, frame = self._inp, self.inputs.frame_index(s0 + np.arange(nsteps))
        else:
            inp, frame = self._no_noise, self._no_frame
        return ko.KernelConfig(
            drive_kind=kind, dcoef=dcoef, dbasis=dbasis, has_noise=has_noise, noise=noise,
            has_input=self.inputs is not None, inp=inp, inp_frame=frame, **self._static,
        )  # fmt: skip

    def new_state(self) -> PaddedState:
        return PaddedState(self.members, self.rp.lattice.shape, self.h, self.dtype)

    def mode(self) -> str:
        """Thread policy: ``serial``, ``members`` or ``rows``."""
        if self.threads <= 1:
            return "serial"
        if self.members >= self.threads:
            return "members"
        if self.rp.lattice.ny * self.rp.lattice.nx >= ROW_PARALLEL_MIN_SITES:
            return "rows"
        return "serial"

    def advance(self, state: PaddedState, nsteps: int, t0: float, xi=None, mode: str | None = None,
                step0: int | None = None):  # fmt: skip
        """Advance ``state`` in place by ``nsteps`` steps starting at time ``t0``."""
        if nsteps <= 0:
            return
        cfg = self.config(t0, nsteps, xi, step0)
        a, b, c, d = state.current
        mode = mode or self.mode()
        if mode == "serial":
            ko.advance_serial(a, b, c, d, nsteps, cfg)
        else:
            previous = numba.get_num_threads()
            numba.set_num_threads(self.threads)
            try:
                if mode == "members":
                    ko.advance_members(a, b, c, d, nsteps, cfg)
                else:
                    ko.advance_rows(a, b, c, d, nsteps, self.threads, cfg)
            finally:
                numba.set_num_threads(previous)
        state.parity ^= nsteps % 2
