"""Loss and exact gradient of a lattice trajectory: checkpointed forward, compiled reverse sweep.

:class:`GradientEngine` runs ``nsteps`` integrator steps from a given initial state, evaluates a
:class:`~wavesim.learn.losses.Loss` on the states it looks at, and returns the loss and its
gradient with respect to every learnable parameter (``w``, ``wv``, ``kappa``, ``omega2``,
``gamma``, ``bias``, ``gain``, ``y0``, ``v0``, ``dt``).

Memory is bounded by checkpointing: the forward pass keeps the state (and the noise generators'
states) only every ``C`` steps; the reverse sweep recomputes one segment of ``C`` steps at a time,
keeping its ``C + 1`` states, and runs the compiled adjoint over it. Memory grows like
``(T / C + C)`` states, minimal at ``C = sqrt(T)``; the arithmetic is the same for every ``C``,
so checkpointed and un-checkpointed gradients are bit-identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np

from wavesim.coupling import orientation_similarity
from wavesim.drives import Drive
from wavesim.kernels import adjoint as ka
from wavesim.kernels import oscillator as ko
from wavesim.lattice import Lattice
from wavesim.models.oscillator import OscillatorParams
from wavesim.simulate import Simulator

__all__ = ["GRADIENT_NAMES", "GradientEngine", "GradientResult", "checkpoint_plan"]

#: Every parameter the engine differentiates, by name.
GRADIENT_NAMES = ("w", "wv", "kappa", "omega2", "gamma", "bias", "gain", "y0", "v0", "dt")
#: Also accepted in ``wrt``: the values of an :class:`~wavesim.drives.InputSequence`.
INPUT_NAME = "inputs"

#: Default memory budget for the stored trajectory (bytes): below it the whole trajectory is kept.
DEFAULT_BUDGET = 512 * 2**20


def checkpoint_plan(nsteps: int, state_bytes: int, checkpoint="auto", budget: int | None = None):
    """Segment length ``C`` and the bytes the reverse sweep holds.

    Parameters
    ----------
    nsteps : int
        Number of integrator steps ``T``.
    state_bytes : int
        Bytes of one padded state ``(y, v)`` of all members.
    checkpoint : "auto", int or None
        ``None``: keep every state (``C = T``). An int: that segment length. ``"auto"``: keep every
        state if that fits ``budget``, else ``C = ceil(sqrt(T))``.
    budget : int, optional
        Bytes allowed for stored states (default 512 MiB). ``"auto"`` raises when even the
        ``sqrt(T)`` plan does not fit.

    Returns
    -------
    (int, int)
        ``C`` and the peak bytes of stored states, ``(C + 1 + ceil(T / C)) * state_bytes``.
    """
    nsteps = int(nsteps)
    budget = DEFAULT_BUDGET if budget is None else int(budget)

    def cost(c):
        return (c + 1 + math.ceil(nsteps / c)) * state_bytes

    if nsteps < 1:
        return 1, cost(1)
    if checkpoint is None:
        c = nsteps
    elif checkpoint == "auto":
        c = nsteps
        if cost(c) > budget:
            c = max(1, math.ceil(math.sqrt(nsteps)))
            if cost(c) > budget:
                raise MemoryError(
                    f"checkpointing {nsteps} steps needs {cost(c) / 2**20:.0f} MiB of states "
                    f"(segments of {c} steps), more than the budget of {budget / 2**20:.0f} MiB; "
                    "raise memory_budget or shorten the run"
                )
    else:
        c = int(checkpoint)
        if c < 1:
            raise ValueError(f"checkpoint: expected a positive segment length, got {checkpoint!r}")
        c = min(c, nsteps)
    return c, cost(c)


@dataclass
class GradientResult:
    """Loss value and gradients (float64) by parameter name, with bookkeeping."""

    value: float
    grads: dict = field(default_factory=dict)
    segment: int = 0
    state_bytes: int = 0
    peak_bytes: int = 0

    def __getitem__(self, name):
        return self.grads[name]


def _sum_to(shape_like, a):
    """Reduce a per-site gradient to the shape of the parameter (scalar or map)."""
    if np.ndim(shape_like) == 0:
        return float(np.sum(a))
    return np.asarray(a, dtype=float)


class GradientEngine:
    """Loss and gradient of a lattice trajectory with respect to its parameters.

    Parameters
    ----------
    lattice : Lattice
    drive : Drive, optional
        A known input (pulses, plane wave, grating); its gain is differentiable.
    members : int
        Batch size (independent lattices sharing the parameters).
    dtype : float32 or float64
    seed : int or sequence of SeedSequence
        Noise streams, exactly as :class:`wavesim.simulate.Simulator` draws them: the noise is
        fixed by the seed and the gradient is that of this realization.
    threads : int, optional
        Kernel threads (members run in parallel when there are at least as many as threads).
    checkpoint : "auto", int or None
        Segment length of the reverse sweep (see :func:`checkpoint_plan`).
    memory_budget : int, optional
        Bytes allowed for stored states.

    Examples
    --------
    >>> eng = GradientEngine(lattice, dtype=np.float64)  # doctest: +SKIP
    >>> res = eng.value_and_grad(params, dt, y0, v0, nsteps, loss)  # doctest: +SKIP
    >>> res["w"], res["gamma"]  # doctest: +SKIP
    """

    def __init__(self, lattice: Lattice, *, drive: Drive | None = None, members: int = 1,
                 dtype=np.float64, seed=0, threads: int | None = None, checkpoint="auto",
                 memory_budget: int | None = None):  # fmt: skip
        self.lattice = lattice
        self.drive = drive
        self.members = int(members)
        self.dtype = np.dtype(dtype)
        self.seed = seed
        self.threads = threads
        self.checkpoint = checkpoint
        self.memory_budget = memory_budget

    # ------------------------------------------------------------------ helpers
    def _buffer(self, name, shape, zero=False):
        buffers = self.__dict__.setdefault("_buffers", {})
        a = buffers.get(name)
        if a is None or a.shape != shape or a.dtype != self.dtype:
            a = buffers[name] = np.zeros(shape, self.dtype)
        elif zero:
            a.fill(0)
        return a

    def release(self):
        """Free the buffers kept between calls."""
        self.__dict__.pop("_buffers", None)

    def _simulator(self, params: OscillatorParams, dt: float, inputs=None) -> Simulator:
        return Simulator(params, self.lattice, dt, drive=self.drive, members=self.members,
                         dtype=self.dtype, seed=self.seed, threads=self.threads,
                         check=False, inputs=inputs)  # fmt: skip

    def _state_bytes(self, k: int) -> int:
        h = k // 2
        ny, nx = self.lattice.shape
        return 2 * self.members * (ny + 2 * h) * (nx + 2 * h) * self.dtype.itemsize

    def _noise(self, sim: Simulator, n: int):
        if not sim.kernel.has_noise:
            return None
        xi = np.empty((self.members, n, *self.lattice.shape), dtype=self.dtype)
        for b, rng in enumerate(sim.noise_rngs):
            rng.standard_normal(dtype=self.dtype, out=xi[b])
        return xi

    def _parallel(self, sim: Simulator) -> bool:
        return sim.kernel.threads > 1 and self.members >= sim.kernel.threads

    def _adjoint_config(self, params: OscillatorParams, sim: Simulator, want_kappa: bool):
        """Orientation modulation M and dM/dkappa for the reverse sweep (unused without a map)."""
        dt = self.dtype
        site_acc = not sim.kernel._static["uniform"]
        if params.theta is None or not (want_kappa or params.kappa > 0):
            one = np.zeros((1, 1, 1), dt)
            return ka.AdjointConfig(False, one, one, False, site_acc)
        # cos 2(theta_i - theta_j) - 1 depends on the map only: computed once per map object
        # (the cache holds the map itself, so an identity match is the same array)
        cached = self.__dict__.get("_similarity")
        if cached is None or cached[0] is not params.theta or cached[1] != params.k:
            c = orientation_similarity(params.theta, params.k, self.lattice)
            cached = self._similarity = (params.theta, params.k, c)
        c = cached[2]
        m = np.exp(params.kappa * c)
        ok = np.isfinite(m)
        m = np.where(ok, m, 0.0)
        p = np.where(ok, c * m, 0.0)
        return ka.AdjointConfig(True, m.astype(dt), p.astype(dt), bool(want_kappa), site_acc)

    # ------------------------------------------------------------------ API
    def loss(self, params: OscillatorParams, dt: float, y0, v0, nsteps: int, loss,
             inputs=None) -> float:  # fmt: skip
        """The loss alone (forward only, nothing stored): for finite differences and line search."""
        sim = self._simulator(params, dt, inputs)
        sim.set_state(y0, v0)
        total = 0.0
        steps = np.asarray(loss.steps, dtype=np.int64)
        _check_steps(steps, nsteps)
        for k, n in enumerate(steps):
            if n > sim.step:
                self._advance(sim, int(n) - sim.step)
            total += loss.evaluate(k, sim.y, sim.v)[0]
        return float(total)

    def _advance(self, sim: Simulator, n: int):
        xi = self._noise(sim, n)
        sim.kernel.advance(sim.state, n, sim.time, xi, step0=sim.step)
        sim.step += n

    def value_and_grad(self, params: OscillatorParams, dt: float, y0, v0, nsteps: int, loss,
                       wrt=GRADIENT_NAMES, inputs=None) -> GradientResult:  # fmt: skip
        """Loss and gradients of ``nsteps`` steps from ``(y0, v0)``.

        Parameters
        ----------
        params : OscillatorParams
            The parameters at which to differentiate (``kappa`` may be 0 with a ``theta`` map:
            its gradient is still exact).
        dt : float
            Time step (ms).
        y0, v0 : array_like
            Initial state, broadcast to ``(members, ny, nx)``.
        nsteps : int
            Steps to integrate (``T``).
        loss : wavesim.learn.losses.Loss
            Looks at states ``loss.steps`` (0 = initial state, ``T`` = final state).
        wrt : sequence of str
            Parameters to return gradients for (all of :data:`GRADIENT_NAMES` by default; the
            cost hardly depends on it, except ``kappa`` which needs per-site weights), and
            ``"inputs"``.
        inputs : wavesim.drives.InputSequence, optional
            Per-member input frames (an encoder's output); ``grads["inputs"]`` is the gradient
            with respect to its ``values``, in their shape (None without inputs).

        Returns
        -------
        GradientResult
            ``value`` and ``grads[name]`` in the shape of each parameter (scalar, ``(k, k)``,
            ``(ny, nx)`` maps, ``(members, ny, nx)`` for ``y0`` and ``v0``).
        """
        wrt = tuple(wrt)
        known = (*GRADIENT_NAMES, INPUT_NAME)
        unknown = sorted(set(wrt) - set(known))
        if unknown:
            raise ValueError(f"wrt: unknown parameter(s) {unknown}; known: {known}")
        if "kappa" in wrt and params.theta is None:
            raise ValueError("wrt: 'kappa' needs an orientation map (params.theta)")
        nsteps = int(nsteps)
        steps = np.asarray(loss.steps, dtype=np.int64)
        _check_steps(steps, nsteps)
        sim = self._simulator(params, dt, inputs)
        sim.set_state(y0, v0)
        kern = sim.kernel
        cfg_static = kern._static
        k = params.k
        h = k // 2
        ny, nx = self.lattice.shape
        npy, npx = ny + 2 * h, nx + 2 * h
        B = self.members
        sb = self._state_bytes(k)
        seg, peak = checkpoint_plan(nsteps, sb, self.checkpoint, self.memory_budget)
        acfg = self._adjoint_config(params, sim, "kappa" in wrt)
        starts = list(range(0, max(nsteps, 1), seg)) if nsteps > 0 else [0]
        # forward: checkpoints at segment starts
        snaps = []
        for s in starts:
            if s > sim.step:
                self._advance(sim, s - sim.step)
            snaps.append(sim.snapshot())
        # buffers
        dt_ = self.dtype
        # buffers are kept between calls (an optimizer calls this hundreds of times): fresh
        # allocations would pay a page fault per 4 KiB on first touch
        Y = self._buffer("Y", (seg + 1, B, npy, npx))
        V = self._buffer("V", (seg + 1, B, npy, npx))
        ly = self._buffer("ly", (B, ny, nx), zero=True)
        lv = self._buffer("lv", (B, ny, nx), zero=True)
        LY = self._buffer("LY", (B, npy, npx), zero=True)
        LV = self._buffer("LV", (B, npy, npx), zero=True)
        nd = kern.drive_basis.shape[0] if kern.drive_basis is not None else 1
        gw = np.zeros((B, k * k))
        gk = np.zeros((B, k * k))
        gwv = np.zeros((B, k * k))
        gkv = np.zeros((B, k * k))
        sums = np.zeros((B, ka.N_SUMS))
        site_sums = np.zeros((B, 4, ny, nx) if acfg.site_acc else (1, 4, 1, 1))
        dc_all = np.zeros((nsteps, nd))
        ginp = np.zeros((B, inputs.frames, ny, nx) if inputs is not None else (1, 1, 1, 1))
        value = 0.0
        parallel = self._parallel(sim)
        previous_threads = numba.get_num_threads()
        if parallel:
            numba.set_num_threads(kern.threads)
        try:
            for si in range(len(starts) - 1, -1, -1):
                s0 = starts[si]
                n = min(seg, nsteps - s0)
                sim.restore(snaps[si])
                xi = self._noise(sim, n) if n > 0 else None
                cfg = kern.config(s0 * kern.dt, max(n, 1), xi if n > 0 else _zero_noise(kern, B),
                                  step0=s0)  # fmt: skip
                cur = sim.state.current
                Y[0] = cur[0]
                V[0] = cur[1]
                if n > 0:
                    (ka.trajectory_members if parallel else ka.trajectory_serial)(Y, V, n, cfg)
                # loss on the states of this segment: (s0, s0 + n], plus state 0 in the first
                lo = s0 if si == 0 else s0 + 1
                sel = np.nonzero((steps >= lo) & (steps <= s0 + n))[0]
                inj_state = (steps[sel] - s0).astype(np.int64)
                inj_y = np.zeros((max(len(sel), 1), B, ny, nx), dt_)
                inj_v = np.zeros_like(inj_y)
                for j, kk in enumerate(sel):
                    ls = int(steps[kk] - s0)
                    yi = Y[ls][:, h : h + ny, h : h + nx]
                    vi = V[ls][:, h : h + ny, h : h + nx]
                    val, gy, gv = loss.evaluate(int(kk), yi, vi)
                    value += val
                    if gy is not None:
                        inj_y[j] = gy
                    if gv is not None:
                        inj_v[j] = gv
                dc = np.zeros((B, max(n, 1), nd))
                out = (gw, gk, gwv, gkv, dc, sums, site_sums, ginp)
                args = (Y, V, ly, lv, LY, LV, n, inj_state, inj_y, inj_v, cfg, acfg, out)
                if parallel:
                    ka.reverse_members(*args, kern.threads)
                else:
                    ka.reverse_serial(*args)
                if n > 0:
                    dc_all[s0 : s0 + n] = dc.sum(axis=0)[:n]
        finally:
            numba.set_num_threads(previous_threads)
        grads = self._assemble(params, sim, float(dt), nsteps, wrt, ly, lv, gw, gk, gwv, gkv,
                               sums, site_sums, dc_all, cfg_static)  # fmt: skip
        if INPUT_NAME in wrt:
            grads[INPUT_NAME] = None if inputs is None else _sum_to_shape(inputs.values, ginp)
        return GradientResult(float(value), grads, seg, sb, peak)

    def _assemble(self, params, sim, dt, nsteps, wrt, ly, lv, gw, gk, gwv, gkv, sums, site_sums,
                  dc_all, st):  # fmt: skip
        rp = sim.rp
        k = params.k
        tot = sums.sum(axis=0)
        if st["uniform"]:
            A, Bt, D, G = tot[ka.S_ALPHA], tot[ka.S_BETA], tot[ka.S_DELTA], tot[ka.S_BIAS]
        else:
            A, Bt, D, G = site_sums.sum(axis=0)
        gamma = np.asarray(rp.gamma, float)
        omega2 = np.asarray(rp.omega2, float)
        if params.integrator == "symplectic_euler":
            d_gamma = -dt * A
            d_omega2 = dt * D
            d_dt = np.sum(-gamma * A + Bt + omega2 * D)
        else:
            al = 1 / (1 + dt * gamma)
            a2 = al * al
            d_gamma = -dt * a2 * A - dt * dt * a2 * Bt - dt * dt * omega2 * a2 * D
            d_omega2 = dt * al * D
            d_dt = np.sum(-gamma * a2 * A + a2 * Bt + omega2 * a2 * D)
        d_dt += tot[ka.S_DT] - tot[ka.S_NOISE] / (2 * dt)
        out = {}
        out["w"] = gw.sum(axis=0).reshape(k, k)
        out["wv"] = gwv.sum(axis=0).reshape(k, k) if params.wv is not None else None
        if "kappa" in wrt:
            kw = gk.sum(axis=0)
            kv = gkv.sum(axis=0)
            val = float(np.dot(params.w.reshape(-1), kw))
            if params.wv is not None:
                val += float(np.dot(params.wv.reshape(-1), kv))
            out["kappa"] = val
        out["omega2"] = _sum_to(params.omega2, d_omega2)
        out["gamma"] = _sum_to(params.gamma, d_gamma)
        out["bias"] = _sum_to(params.bias, G)
        # drive: gain and the drive's explicit time dependence (t_n = n dt)
        drive = sim.kernel.drive
        d_gain = 0.0
        if drive.kind != ko.DRIVE_NONE and nsteps > 0:
            t = np.arange(nsteps) * dt
            raw = np.asarray(drive.coefficients(t), float)
            if drive.kind == ko.DRIVE_LINEAR:
                d_gain = float(np.sum(dc_all * raw))
            else:
                d_gain = float(np.sum(dc_all[:, 0] * raw[:, 0]))
            d_dt += float(np.sum(dc_all * _drive_dt_derivative(drive, t, dt, params.gain)))
        out["gain"] = d_gain
        out["y0"] = ly.astype(float)
        out["v0"] = lv.astype(float)
        out["dt"] = float(d_dt)
        return {name: out.get(name) for name in wrt}


def _sum_to_shape(like, a):
    """Sum ``a`` (members, ...) over members when ``like`` has a broadcast leading 1."""
    return a.sum(axis=0, keepdims=True) if like.shape[0] == 1 and a.shape[0] > 1 else a


def _drive_dt_derivative(drive, t, dt, gain):
    """d(kernel coefficients at t_n = n dt)/d(dt), by finite differences in dt.

    Drives switched on and off (pulses) are piecewise constant in time: at a switching time the
    derivative does not exist, and a central difference that straddles the jump would be huge.
    Where the two one-sided differences disagree the smaller one (in magnitude) is taken, i.e.
    the drive's switching times are held fixed in steps, not in ms.
    """
    eps = 1e-6 * dt
    k0 = drive.kernel_coefficients(t, gain, np.float64)
    kp = drive.kernel_coefficients(t * (1 + eps / dt), gain, np.float64)
    km = drive.kernel_coefficients(t * (1 - eps / dt), gain, np.float64)
    right = (kp - k0) / eps
    left = (k0 - km) / eps
    smooth = np.abs(right - left) <= 1e-3 * np.maximum(np.abs(right), np.abs(left)) + 1e-9
    one_sided = np.where(np.abs(right) < np.abs(left), right, left)
    return np.where(smooth, (kp - km) / (2 * eps), one_sided)


def _zero_noise(kern, members):
    if not kern.has_noise:
        return None
    return np.zeros((members, 1, *kern.rp.lattice.shape), kern.dtype)


def _check_steps(steps, nsteps):
    if steps.ndim != 1 or steps.size == 0:
        raise ValueError("loss.steps: expected a non-empty 1-D array of state indices")
    if np.any(np.diff(steps) <= 0):
        raise ValueError("loss.steps: expected strictly increasing state indices")
    if steps[0] < 0 or steps[-1] > nsteps:
        raise ValueError(
            f"loss.steps: state indices must lie in [0, nsteps={nsteps}], got "
            f"{int(steps[0])}..{int(steps[-1])}"
        )
