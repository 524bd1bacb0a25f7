"""The simulator: compiled blocks of steps between recorder and tracker interrupts.

``Simulator`` advances a batch of lattices with the numba kernels; ``run`` builds everything a
scenario describes, integrates it, and writes a zarr store as it goes. Python only runs between
blocks (recording, noise draws, blow-up checks, progress), never per site.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wavesim.drives import Drive, GratingDrive, PlaneWaveDrive, PulseDrive
from wavesim.initial import initial_state
from wavesim.kernels.driver import LatticeKernel
from wavesim.lattice import Lattice
from wavesim.models.oscillator import OscillatorParams
from wavesim.stability import check_stability

#: Upper bound on the noise drawn per kernel call (bytes): noise is drawn per block, never for a
#: whole run.
NOISE_BLOCK_BYTES = 32 * 2**20
#: Steps between the state snapshots that a blow-up is replayed from (a snapshot copies the state;
#: a replay, on failure only, re-runs at most this many steps one at a time).
SNAPSHOT_STEPS = 1000


class BlowUpError(FloatingPointError):
    """The state became non-finite (NaN or overflow)."""

    def __init__(self, message, *, step, member, row, col):
        super().__init__(message)
        self.step, self.member, self.row, self.col = step, member, row, col


def member_seeds(seed, members: int) -> list[np.random.SeedSequence]:
    """One independent ``SeedSequence`` per member, derived from ``seed``.

    Member ``b`` of a batch gets the same stream as running it alone with
    ``seeds=[member_seeds(seed, B)[b]]``, so a batch equals its members run one by one.
    """
    return _substreams(np.random.SeedSequence(seed), members)


def _substreams(seq: np.random.SeedSequence, n: int) -> list[np.random.SeedSequence]:
    """Children of ``seq`` derived from its spawn key, without mutating ``seq`` (``spawn`` counts
    the children it has handed out, so calling it twice on one object gives different streams)."""
    return [
        np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, i), pool_size=seq.pool_size)
        for i in range(n)
    ]


class Simulator:
    """A batch of lattices bound to compiled kernels.

    Parameters
    ----------
    params : OscillatorParams
    lattice : Lattice
    dt : float
        Time step (ms). Checked against the linear stability limit unless ``check=False``.
    drive : Drive, optional
    members : int
        Batch size (leading ``member`` axis).
    dtype : float32 or float64
    seed : int or sequence of numpy.random.SeedSequence
        An int is split into one stream per member (:func:`member_seeds`); a sequence gives each
        member's stream explicitly. Each member's stream is split into an initial-state stream and
        a noise stream.
    threads : int, optional
        Kernel threads (default: numba's setting).
    check : bool
        Refuse a time step beyond the stability limit.
    inputs : wavesim.drives.InputSequence, optional
        Per-member input frames added to sigma's argument (an encoder's output), indexed by the
        global step; replace them with :meth:`set_inputs`.

    Attributes
    ----------
    step : int
        Steps taken. ``time`` = ``step * dt`` (ms).
    y, v : arrays ``(members, ny, nx)``
        Views of the current state.
    """

    def __init__(self, params: OscillatorParams, lattice: Lattice, dt: float, *,
                 drive: Drive | None = None, members: int = 1, dtype=np.float32, seed=0,
                 threads: int | None = None, check: bool = True, source: str = "",
                 inputs=None):  # fmt: skip
        self.params = params
        self.lattice = lattice
        self.dt = float(dt)
        if not self.dt > 0:
            raise ValueError(f"dt: expected a positive time step in ms, got {dt!r}")
        self.rp = params.resolved(lattice)
        self.dt_max = check_stability(self.rp, self.dt, source=source) if check else None
        self.members = int(members)
        self.kernel = LatticeKernel(self.rp, self.dt, dtype, drive, self.members, threads)
        if inputs is not None:
            self.kernel.set_inputs(inputs)
        self.state = self.kernel.new_state()
        if isinstance(seed, (int, np.integer)):
            seeds = member_seeds(int(seed), self.members)
        else:
            seeds = list(seed)
            if len(seeds) != self.members:
                raise ValueError(f"seed: expected {self.members} SeedSequences, got {len(seeds)}")
        streams = [_substreams(s, 2) for s in seeds]
        self.init_rngs = [np.random.default_rng(s[0]) for s in streams]
        self.noise_rngs = [np.random.default_rng(s[1]) for s in streams]
        self.step = 0
        self.timings = {"compile": 0.0, "solve": 0.0, "record": 0.0}

    @property
    def dtype(self):
        return self.kernel.dtype

    @property
    def time(self) -> float:
        return self.step * self.dt

    @property
    def y(self) -> np.ndarray:
        return self.state.y

    @property
    def v(self) -> np.ndarray:
        return self.state.v

    def set_state(self, y, v=None):
        """Set positions (and velocities; default 0), broadcast to ``(members, ny, nx)``."""
        shape = (self.members, *self.lattice.shape)
        y = np.broadcast_to(np.asarray(y, dtype=float), shape)
        v = np.zeros(shape) if v is None else np.broadcast_to(np.asarray(v, dtype=float), shape)
        self.state.set(y, v, self.kernel.colmode)

    def set_inputs(self, inputs):
        """Attach (or with None detach) an :class:`~wavesim.drives.InputSequence`."""
        self.kernel.set_inputs(inputs)

    def initialize(self, kind: str = "rest", **kwargs):
        """Set an initial state by kind (see :func:`wavesim.initial.initial_state`)."""
        y, v = initial_state(kind, self.lattice, self.params, members=self.members,
                             rngs=self.init_rngs, **kwargs)  # fmt: skip
        self.set_state(y, v)

    def compile(self) -> float:
        """Compile (or load from numba's cache) this configuration's kernel; return seconds.

        Runs one step on a scratch state, so that :attr:`timings` ``["solve"]`` measures the
        integration alone.
        """
        t0 = time.perf_counter()
        scratch = self.kernel.new_state()
        xi = None
        if self.kernel.has_noise:
            xi = np.zeros((self.members, 1, *self.lattice.shape), dtype=self.dtype)
        self.kernel.advance(scratch, 1, 0.0, xi)
        elapsed = time.perf_counter() - t0
        self.timings["compile"] += elapsed
        return elapsed

    def _noise_block(self, nsteps: int) -> int:
        if not self.kernel.has_noise:
            return nsteps
        per_step = self.members * self.lattice.ny * self.lattice.nx * self.dtype.itemsize
        return max(1, min(nsteps, NOISE_BLOCK_BYTES // per_step))

    def advance(self, nsteps: int):
        """Advance ``nsteps`` steps (compiled; noise drawn per block)."""
        nsteps = int(nsteps)
        t0 = time.perf_counter()
        while nsteps > 0:
            n = self._noise_block(nsteps)
            xi = None
            if self.kernel.has_noise:
                xi = np.empty((self.members, n, *self.lattice.shape), dtype=self.dtype)
                for b, rng in enumerate(self.noise_rngs):
                    rng.standard_normal(dtype=self.dtype, out=xi[b])
            self.kernel.advance(self.state, n, self.time, xi, step0=self.step)
            self.step += n
            nsteps -= n
        self.timings["solve"] += time.perf_counter() - t0

    def check_finite(self, since: tuple | None = None):
        """Raise :class:`BlowUpError` if the state is not finite.

        With ``since = snapshot()`` taken at an earlier finite state, the steps after it are
        replayed one by one to report the exact first non-finite step and site.
        """
        if self.state.finite():
            return
        if since is not None:
            end = self.step
            self.restore(since)
            while self.step < end:
                self.advance(1)
                if not self.state.finite():
                    break
        bad = ~(np.isfinite(self.y) & np.isfinite(self.v))
        b, i, j = (int(a[0]) for a in np.nonzero(bad))
        raise BlowUpError(
            f"the state became non-finite (NaN or overflow) at step {self.step} "
            f"(t = {self.time:g} ms), member {b}, site row {i}, column {j} "
            f"(x = {j * self.lattice.dx:g} mm, y = {i * self.lattice.dx:g} mm); "
            "reduce [run] dt, the coupling or the drive",
            step=self.step, member=b, row=i, col=j,
        )  # fmt: skip

    def snapshot(self) -> tuple:
        """Everything needed to replay from here: step, state, noise generator states."""
        return (self.step, self.y.copy(), self.v.copy(),
                [r.bit_generator.state for r in self.noise_rngs])  # fmt: skip

    def restore(self, snap: tuple):
        step, y, v, rng_states = snap
        self.step = step
        self.set_state(y, v)
        for r, s in zip(self.noise_rngs, rng_states, strict=True):
            r.bit_generator.state = s

    def run(self, nsteps: int, writer=None, *, trackers: Sequence[Callable] = (),
            progress=None, check_finite: bool = True):  # fmt: skip
        """Advance ``nsteps`` steps, recording into ``writer`` when its recorders are due.

        Parameters
        ----------
        nsteps : int
        writer : wavesim.store.StoreWriter, optional
            Receives samples at the recorders' steps (counted from this simulator's ``step``
            at the start of the run, which must be 0 for a fresh store).
        trackers : callables ``f(sim)`` called after every block (progress, custom checks). An
            exception raised there (including KeyboardInterrupt) stops the run.
        progress : tqdm-like object with ``update(n)``, optional.
        check_finite : check for blow-up after every block (and replay to locate it).
        """
        end = self.step + int(nsteps)
        snap = self.snapshot() if check_finite else None
        if writer is not None:
            self._record(writer)
        while self.step < end:
            target = end
            if writer is not None:
                target = min(target, writer.next_due(self.step + 1))
            before = self.step
            self.advance(target - self.step)
            if check_finite:
                self.check_finite(since=snap)
            if writer is not None:
                self._record(writer)
            if check_finite and self.step - snap[0] >= SNAPSHOT_STEPS:
                snap = self.snapshot()
            if progress is not None:
                progress.update(self.step - before)
            for tracker in trackers:
                tracker(self)

    def _record(self, writer):
        t0 = time.perf_counter()
        writer.record(self.step, self.y, self.v)
        self.timings["record"] += time.perf_counter() - t0


# --------------------------------------------------------------------------------------------
# Building a simulation from a scenario
# --------------------------------------------------------------------------------------------


@dataclass
class Built:
    """Everything a scenario describes, built (see :func:`build`)."""

    scenario: object
    lattice: Lattice
    theta: object  # xarray.DataArray or None
    params: OscillatorParams
    drive: Drive
    simulator: Simulator
    recorders: list = field(default_factory=list)


def _value(x):
    return x.load() if hasattr(x, "load") else x


def build_map(scenario):
    """The scenario's orientation map as an ``xarray.DataArray`` (or None)."""
    from wavesim import maps

    m, lat = scenario.map, scenario.lattice
    if m.kind == "none":
        return None
    if m.kind == "random":
        return maps.random_orientation_map(lat.shape, m.wavelength, dx=lat.dx,
                                           spectrum_width=m.spectrum_width,
                                           seed=scenario.map_seed)  # fmt: skip
    if m.kind == "crystal":
        return maps.pinwheel_crystal(lat.shape, m.wavelength, dx=lat.dx)
    return maps.orientation_map_from_array(m.path.load(), lat.dx,
                                           periodic=lat.boundary == "periodic")  # fmt: skip


def build_drive(d) -> Drive:
    """A :class:`~wavesim.drives.Drive` from a scenario's ``[drive]`` section."""
    if d.kind == "none":
        return Drive()
    if d.kind == "pulse":
        return PulseDrive(position=d.position, amplitude=d.amplitude, width=d.width,
                          onset=d.onset, duration=d.duration, period=d.period)  # fmt: skip
    if d.kind == "plane_wave":
        return PlaneWaveDrive(wavelength=d.wavelength, speed=d.speed, direction=d.direction,
                              amplitude=d.amplitude, onset=d.onset)  # fmt: skip
    return GratingDrive(angular_speed=d.angular_speed, amplitude=d.amplitude, tuning=d.tuning,
                        orientation=d.orientation, onset=d.onset)  # fmt: skip


def build(scenario, *, threads: int | None = None) -> Built:
    """Build lattice, map, model, drive, simulator (initialised) and recorders of a scenario."""
    from wavesim.recorders import ElectrodeRecorder, FieldRecorder

    lat_s, run_s = scenario.lattice, scenario.run
    lattice = Lattice(lat_s.shape, dx=lat_s.dx, boundary=lat_s.boundary,
                      sponge_width=lat_s.sponge_width,
                      sponge_damping=lat_s.sponge_damping if lat_s.sponge_damping is not None
                      else 1.0, mask=lat_s.active_mask())  # fmt: skip
    theta = build_map(scenario)
    c, m = scenario.coupling, scenario.model
    w = c.position_stencil(lat_s.dx)
    if w is None:
        k = len(c.velocity_stencil) if c.velocity_stencil else 3
        w = np.zeros((k, k))
    params = OscillatorParams(
        w=w,
        wv=None if c.velocity_stencil is None else np.array(c.velocity_stencil, float),
        kappa=c.kappa,
        theta=None if theta is None else np.asarray(theta.values),
        omega2=_value(m.omega2), gamma=_value(m.gamma), bias=_value(m.bias), gain=m.gain,
        noise=m.noise, activation=m.activation, exact_tanh=bool(m.exact_tanh),
        integrator=run_s.integrator,
    )  # fmt: skip
    drive = build_drive(scenario.drive)
    sim = Simulator(
        params, lattice, run_s.dt, drive=drive, members=run_s.members,
        dtype=np.dtype(run_s.dtype), seed=run_s.seed,
        threads=threads or run_s.threads or None, source=str(scenario.source),
    )  # fmt: skip
    ini = scenario.initial
    keys = ("amplitude", "position", "width", "wavelength", "direction", "charge")
    kwargs = {k: getattr(ini, k) for k in keys if getattr(ini, k) is not None}
    sim.initialize(ini.kind, **kwargs)
    rec = scenario.record
    recorders = [FieldRecorder(rec.fields, period=scenario.record_stride, subsample=rec.subsample)]
    if rec.electrodes:
        recorders.append(ElectrodeRecorder(rec.electrodes, period=scenario.electrode_stride,
                                           dx=lat_s.dx))  # fmt: skip
    return Built(scenario, lattice, theta, params, drive, sim, recorders)


@dataclass
class RunSummary:
    """What a run did (printed by the CLI)."""

    store: Path
    steps: int
    members: int
    sites: int
    wall_time: float
    compile_time: float
    solve_time: float
    record_time: float
    complete: bool

    @property
    def cell_steps_per_s(self) -> float:
        return self.steps * self.members * self.sites / max(self.solve_time, 1e-12)

    def __str__(self) -> str:
        return (
            f"{'complete' if self.complete else 'PARTIAL'}: {self.steps} steps x "
            f"{self.members} member(s) x {self.sites} sites in {self.wall_time:.2f} s "
            f"(compile {self.compile_time:.2f} s, solve {self.solve_time:.2f} s, "
            f"record {self.record_time:.2f} s; "
            f"{self.cell_steps_per_s / 1e6:.0f} M cell-steps/s) -> {self.store}"
        )


def run(scenario, store, *, overwrite: bool = False, progress: bool = True,
        threads: int | None = None, trackers: Sequence[Callable] = ()) -> RunSummary:  # fmt: skip
    """Run a scenario and write its zarr store.

    Parameters
    ----------
    scenario : Scenario or path
        A validated :class:`wavesim.scenario.Scenario` or the path of a TOML scenario file.
    store : path
        Output zarr (v3) store. Written in blocks as the run goes; its ``complete`` attribute
        stays false until the run finishes, so an error, a blow-up or Ctrl-C leaves a readable,
        partial store holding every step recorded so far.
    overwrite : bool
        Replace an existing store.
    progress : bool
        Show a progress bar (tqdm) on stderr.
    threads : int, optional
        Kernel threads (default: the scenario's ``[run] threads``, else numba's setting).
    trackers : callables ``f(simulator)`` called after every block.

    Returns
    -------
    RunSummary
    """
    from tqdm import tqdm

    from wavesim.recorders import Grid
    from wavesim.scenario import Scenario, load_scenario
    from wavesim.store import StoreWriter

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    t_start = time.perf_counter()
    built = build(scenario, threads=threads)
    sim, lat = built.simulator, built.lattice
    grid = Grid(lat.ny, lat.nx, lat.dx, sim.dt, members=sim.members, dtype=sim.dtype)
    static = {}
    if lat.mask is not None:
        static["mask"] = (lat.mask.astype(np.int8), {"long_name": "active site", "units": "1"})
    theta = built.theta
    if theta is not None and "amplitude" in theta.coords:
        static["orientation_selectivity"] = (
            np.asarray(theta.coords["amplitude"].values),
            {"long_name": "orientation selectivity |z| of the map", "units": "1"},
        )
    attrs = {
        "name": scenario.meta.name,
        "integrator": scenario.run.integrator,
        "dt_max_stable": sim.dt_max,
        "kernel_path": "fused" if sim.kernel.fused else "general",
    }
    if theta is not None:
        attrs["map_wavelength"] = float(theta.attrs.get("wavelength", np.nan))
        attrs["map_seed"] = theta.attrs.get("seed")
        attrs["map_periodic"] = bool(theta.attrs.get("periodic", False))
    nsteps = scenario.n_steps
    writer = StoreWriter.create(
        store, built.recorders, grid, scenario=scenario.to_toml(), seed=scenario.run.seed,
        attrs=attrs, orientation=None if theta is None else np.asarray(theta.values),
        static=static or None, block=scenario.record.block, overwrite=overwrite,
    )  # fmt: skip
    sim.compile()
    bar = tqdm(total=nsteps, unit="step", disable=not progress, desc=scenario.meta.name)
    try:
        with writer:
            sim.run(nsteps, writer, trackers=trackers, progress=bar)
            writer.update_attrs(steps_done=sim.step)
    finally:
        bar.close()
    return RunSummary(
        Path(store), sim.step, sim.members, lat.ny * lat.nx, time.perf_counter() - t_start,
        sim.timings["compile"], sim.timings["solve"], sim.timings["record"], True,
    )  # fmt: skip
