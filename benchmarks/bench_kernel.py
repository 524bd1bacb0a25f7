"""Throughput of wavesim's compiled lattice kernel against a STREAM-triad roofline.

One run prints a table: for each lattice size and thread count, the kernel's cell-steps per second,
a STREAM triad measured in the same run at the kernel's working-set size, the resulting roofline
(triad bandwidth / bytes per cell-step), the plain-numpy reference step, an optional JAX figure and
the spec targets with PASS/FAIL. See ``benchmarks/README.md`` for the byte accounting.

Usage::

    python benchmarks/bench_kernel.py                    # 64^2, 256^2, 1024^2; 1 and 2 threads
    python benchmarks/bench_kernel.py --quick            # CI smoke run (< 30 s)
    python benchmarks/bench_kernel.py --sizes 64 256 --threads 1 --dtype float64

Timing: every figure is the best of ``--repeats`` timings, each of ~``--target`` seconds, after a
warm-up call (JIT compilation is never timed). The damped lattice decays by ``exp(-gamma*t/2)``:
from a random normal float32 state, after ~1,200 steps the square of the tanh argument underflows
into subnormal numbers and the kernel slows down ~1.8x (~2.7x once the state itself is subnormal),
until the state reaches zero. The timed steps are therefore split into chunks of at most ``CHUNK``
steps, each started from the same random normal state (the reset is not timed).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time

import numba
import numpy as np
from _machine import CpuShare, cpu_name, fmt, render
from numba import njit, prange

from wavesim.coupling import laplacian_stencil
from wavesim.kernels.driver import LatticeKernel
from wavesim.lattice import Lattice
from wavesim.models.oscillator import OscillatorParams, reference_step

DT = 0.125
OMEGA2 = 1.0
GAMMA = 0.5
#: Memory streams per cell-step of the fused kernel (read y, v; write y, v; one more, see README).
KERNEL_STREAMS = 5
#: Streams counted per triad element: read b, c; write a (write-allocate not counted).
TRIAD_STREAMS = 3
#: Longest run of steps from one initial state. Amplitude after CHUNK steps:
#: exp(-GAMMA * DT / 2 * 800) = exp(-25) ~ 1e-11 of the initial one, so the squares in the fast
#: tanh (~1e-22) stay above float32's smallest normal (1.2e-38); the slowdown starts near 1e-19.
CHUNK = 800
#: Members of the batched row.
BATCH_MEMBERS = 16
BATCH_SIZE = 64
#: Spec targets.
ROOFLINE_TARGET = 0.5  # fraction of roofline at ROOFLINE_TARGET_AT
ROOFLINE_TARGET_AT = (1024, 2)  # (lattice side, threads)
JAX_FACTOR = 2.0  # kernel >= JAX_FACTOR x JAX at every size
#: JAX CPU (lax.scan of a 5-point stencil, float32) measured previously on this machine (2-core
#: AMD EPYC), M cell-steps/s by (lattice side, threads); not used for float64 runs. For
#: 64^2-256^2 only a one-core figure exists; it is used for both thread counts.
JAX_PREVIOUS = {
    (64, 1): 400.0, (64, 2): 400.0, (256, 1): 400.0, (256, 2): 400.0,
    (1024, 1): 250.0, (1024, 2): 410.0,
}  # fmt: skip


# --------------------------------------------------------------------------------------------------
# timing


@dataclasses.dataclass
class Timing:
    rate: float  # work items (cell-steps, triad elements) per second
    steps: int  # steps (or triad passes) per timing
    seconds: float  # best timing


def measure(step, reset, items: int, target: float, repeats: int, max_chunk: int) -> Timing:
    """Best rate of ``step(k)`` (``k`` steps over ``items`` items), timing ~``target`` s per repeat.

    The chunk length ``k`` doubles until one warm call takes ~``target / 8`` (each length is called
    once untimed first, so a JIT compile is never timed), capped at ``max_chunk``. A timing is a sum
    of chunk timings, each after an untimed ``reset()``.
    """
    cal = min(0.05, target / 8)
    k = 1
    while True:
        reset()
        step(k)
        reset()
        t0 = time.perf_counter()
        step(k)
        elapsed = time.perf_counter() - t0
        if elapsed >= cal or k >= max_chunk:
            break
        k = min(max_chunk, 2 * k)
    nchunks = max(1, round(target / max(elapsed, 1e-9)))
    best = math.inf
    for _ in range(repeats):
        total = 0.0
        for _ in range(nchunks):
            reset()
            t0 = time.perf_counter()
            step(k)
            total += time.perf_counter() - t0
        best = min(best, total)
    steps = k * nchunks
    return Timing(items * steps / best, steps, best)


# --------------------------------------------------------------------------------------------------
# STREAM triad


@njit(error_model="numpy")
def triad_serial(a, b, c, s, reps):
    """``reps`` passes of a[i] = b[i] + s*c[i] on the calling thread."""
    for r in range(reps):
        sr = s * (1 + r % 2)  # vary the scalar so no pass is provably redundant
        for i in range(a.shape[0]):
            a[i] = b[i] + sr * c[i]


@njit(error_model="numpy", parallel=True)
def triad_parallel(a, b, c, s, reps, nchunks):
    """``reps`` passes of the triad, one contiguous chunk per thread, one parallel region in all.

    No barrier between passes: each thread streams its own chunk (as the kernel's row-parallel mode
    keeps each thread on its own rows), so this is the hardware bound without fork/join costs.
    """
    n = a.shape[0]
    for t in prange(nchunks):
        lo = (t * n) // nchunks
        hi = ((t + 1) * n) // nchunks
        aa = a[lo:hi]
        bb = b[lo:hi]
        cc = c[lo:hi]
        for r in range(reps):
            sr = s * (1 + r % 2)
            for i in range(hi - lo):
                aa[i] = bb[i] + sr * cc[i]


def triad_bandwidth(nbytes: int, dtype, threads: int, target: float, repeats: int) -> float:
    """Triad bandwidth (GB/s, 3 streams counted, no write-allocate) over three arrays totalling
    ``nbytes``."""
    dtype = np.dtype(dtype)
    m = max(1, nbytes // (3 * dtype.itemsize))
    a = np.zeros(m, dtype)
    b = np.ones(m, dtype)
    c = np.full(m, 2.0, dtype)
    s = dtype.type(0.5)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        if threads == 1:
            t = measure(
                lambda k: triad_serial(a, b, c, s, k), lambda: None, m, target, repeats, 1 << 30
            )
        else:
            t = measure(
                lambda k: triad_parallel(a, b, c, s, k, threads),
                lambda: None,
                m,
                target,
                repeats,
                1 << 30,
            )
    finally:
        numba.set_num_threads(previous)
    return t.rate * TRIAD_STREAMS * dtype.itemsize / 1e9


# --------------------------------------------------------------------------------------------------
# cases


@dataclasses.dataclass
class Case:
    label: str
    n: int  # lattice side
    members: int
    params: OscillatorParams
    standard: bool  # the fused reference configuration (roofline and JAX targets apply)
    jax_key: int | None = None  # lattice side of the JAX reference figure, or None


def standard_params() -> OscillatorParams:
    return OscillatorParams(w=laplacian_stencil(1.0, 1.0), omega2=OMEGA2, gamma=GAMMA)


def make_cases(args, rng) -> list[Case]:
    cases = [Case(f"{n}^2", n, 1, standard_params(), True, n) for n in args.sizes]
    if not args.no_extras:
        cases.append(
            Case(
                f"{BATCH_MEMBERS}x{BATCH_SIZE}^2 batch",
                BATCH_SIZE,
                BATCH_MEMBERS,
                standard_params(),
                True,
                BATCH_SIZE,
            )
        )
        n = args.extra_size
        theta = rng.uniform(0.0, np.pi, (n, n))
        p_kappa = OscillatorParams(
            w=laplacian_stencil(1.0, 1.0), kappa=1.0, theta=theta, omega2=OMEGA2, gamma=GAMMA
        )
        omega2_map = OMEGA2 * (1.0 + 0.2 * rng.uniform(-1.0, 1.0, (n, n)))
        p_omega = OscillatorParams(w=laplacian_stencil(1.0, 1.0), omega2=omega2_map, gamma=GAMMA)
        cases.append(Case(f"{n}^2 kappa=1 theta-map", n, 1, p_kappa, False))
        cases.append(Case(f"{n}^2 omega2-map", n, 1, p_omega, False))
    return cases


def numpy_params(rp, dtype):
    """``rp`` with its per-site maps cast to ``dtype`` (so the numpy step stays in ``dtype``)."""

    def cast(a):
        return a if a is None or np.ndim(a) == 0 else np.asarray(a, dtype)

    return dataclasses.replace(
        rp,
        omega2=cast(rp.omega2),
        gamma=cast(rp.gamma),
        bias=cast(rp.bias),
        modulation=cast(rp.modulation),
    )


def initial_state(members: int, n: int, dtype, seed: int = 1):
    rng = np.random.default_rng(seed)
    y0 = rng.standard_normal((members, n, n)).astype(dtype)
    v0 = rng.standard_normal((members, n, n)).astype(dtype)
    return y0, v0


def time_kernel(ker: LatticeKernel, y0, v0, target, repeats) -> tuple[Timing, float]:
    st = ker.new_state()

    def reset():
        st.set(y0, v0, ker.colmode)

    def step(k):
        ker.advance(st, k, 0.0)

    reset()
    t0 = time.perf_counter()
    step(1)  # first call: JIT compile, or load from numba's cache
    first_call = time.perf_counter() - t0
    return measure(step, reset, y0.size, target, repeats, CHUNK), first_call


def time_numpy(rp, y0, v0, target, repeats) -> Timing:
    state = {}

    def reset():
        state["y"], state["v"] = y0.copy(), v0.copy()

    def step(k):
        y, v = state["y"], state["v"]
        for _ in range(k):
            y, v = reference_step(y, v, rp, DT)
        state["y"], state["v"] = y, v

    return measure(step, reset, y0.size, target, repeats, CHUNK)


def check_error(ker: LatticeKernel, rp_np, y0, v0, nsteps: int = 10) -> float:
    """max |y_kernel - y_numpy| after ``nsteps`` steps from the benchmark's initial state."""
    st = ker.new_state()
    st.set(y0, v0, ker.colmode)
    ker.advance(st, nsteps, 0.0)
    y, v = y0.copy(), v0.copy()
    for _ in range(nsteps):
        y, v = reference_step(y, v, rp_np, DT)
    return float(np.max(np.abs(st.y - y)))


def measure_row(case: Case, t: int, rp, rp_np, y0, v0, np_rate: float, dtype, args, use_jax):
    """One table row: ``case`` on ``t`` threads."""
    bytes_per_cell = KERNEL_STREAMS * dtype.itemsize
    share = CpuShare()
    ker = LatticeKernel(rp, DT, dtype, members=case.members, threads=t)
    kt, first_call = time_kernel(ker, y0, v0, args.target, args.repeats)
    ws = sum(b.nbytes for b in ker.new_state().bufs)
    row = dict(
        case=case.label,
        n=case.n,
        members=case.members,
        threads=t,
        mode=ker.mode(),
        fused=ker.fused,
        ws_mb=ws / 1e6,
        kernel=kt.rate / 1e6,
        kernel_steps=kt.steps,
        kernel_s=kt.seconds,
        first_call_s=first_call,
        numpy=np_rate / 1e6,
        err=check_error(ker, rp_np, y0, v0),
    )
    row["ratio_numpy"] = row["kernel"] / row["numpy"]
    if case.standard:
        bw = triad_bandwidth(ws, dtype, t, args.target, args.repeats)
        row["triad_gbs"] = bw
        row["roofline"] = bw * 1e9 / bytes_per_cell / 1e6
        row["frac_roof"] = row["kernel"] / row["roofline"]
        if (case.n, t) == ROOFLINE_TARGET_AT and case.members == 1:
            row["roof_target"] = row["frac_roof"] >= ROOFLINE_TARGET
        jax_rate, src = None, None
        if use_jax:
            jax_rate, src = run_jax(case.n, case.members, t, args.dtype, args.target, args.repeats)
        if jax_rate is None and dtype == np.float32 and (case.jax_key, t) in JAX_PREVIOUS:
            jax_rate = JAX_PREVIOUS[(case.jax_key, t)]
            src = "previous" if src is None else f"previous; {src}"
        if jax_rate is not None:
            row["jax"], row["jax_source"] = jax_rate, src
            row["ratio_jax"] = row["kernel"] / jax_rate
            row["jax_target"] = row["ratio_jax"] >= JAX_FACTOR
    row["others"] = share.others()
    return row


def measure_case(case: Case, threads, dtype, args, use_jax: bool) -> list[dict]:
    """One table row per thread count for ``case``.

    A row measured while other processes used more than ``args.busy`` of the CPU time is measured
    again (up to ``args.retries`` times, after a pause); the least disturbed attempt is kept.
    """
    lat = Lattice((case.n, case.n), dx=1.0)
    rp = case.params.resolved(lat)
    rp_np = numpy_params(rp, dtype)
    y0, v0 = initial_state(case.members, case.n, dtype)
    np_rate = time_numpy(rp_np, y0, v0, args.target, args.repeats).rate  # numpy: 1 thread
    rows = []
    for t in threads:
        best = None
        for attempt in range(1 + args.retries):
            if attempt:
                time.sleep(args.retry_pause)
            row = measure_row(case, t, rp, rp_np, y0, v0, np_rate, dtype, args, use_jax)
            row["attempts"] = attempt + 1
            if best is None or row["others"] < best["others"]:
                best = row
            print(
                f"#   {case.label}, {t} thread(s): {row['kernel']:.0f} Mc/s, "
                f"other processes {row['others']:.0%} of the CPU",
                file=sys.stderr,
                flush=True,
            )
            if row["others"] <= args.busy:
                break
        best["attempts"] = row["attempts"]
        rows.append(best)
    return rows


# --------------------------------------------------------------------------------------------------
# JAX (optional; measured in a subprocess pinned to the requested cores)


def jax_available() -> bool:
    return importlib.util.find_spec("jax") is not None


def jax_worker(n: int, members: int, threads: int, dtype: str, target: float, repeats: int):
    """Measure a JAX 5-point-stencil step in lax.scan; prints one JSON line."""
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cpus)  # before importing jax, so XLA sizes its thread pool to it
    import jax
    import jax.numpy as jnp
    from jax import lax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    alpha, beta, delta = 1.0 - DT * GAMMA, DT, DT * OMEGA2

    def one(carry, _):
        y, v = carry
        s = (
            jnp.roll(y, 1, -2)
            + jnp.roll(y, -1, -2)
            + jnp.roll(y, 1, -1)
            + jnp.roll(y, -1, -1)
            - 4.0 * y
        )
        v = alpha * v + beta * jnp.tanh(s) - delta * y
        return (y + DT * v, v), None

    runs = {}

    def step(k):
        if k not in runs:
            runs[k] = jax.jit(lambda y, v, k=k: lax.scan(one, (y, v), None, length=k)[0])
        jax.block_until_ready(runs[k](y0, v0))

    y0_np, v0_np = initial_state(members, n, dtype)
    y0, v0 = jnp.asarray(y0_np), jnp.asarray(v0_np)
    t = measure(step, lambda: None, y0_np.size, target, repeats, CHUNK)
    print(
        json.dumps({"rate": t.rate, "steps": t.steps, "seconds": t.seconds, "jax": jax.__version__})
    )


def run_jax(n, members, threads, dtype, target, repeats) -> tuple[float | None, str]:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--jax-worker",
        str(n),
        str(members),
        str(threads),
        "--dtype",
        dtype,
        "--target",
        str(target),
        "--repeats",
        str(repeats),
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])["rate"] / 1e6, "this run"
    except Exception as exc:  # noqa: BLE001 - any failure: fall back to the previous figures
        return None, f"JAX failed ({type(exc).__name__})"


# --------------------------------------------------------------------------------------------------
# report


def _pass_fail(v):
    return "-" if v is None else ("PASS" if v else "FAIL")


def _jax_cell(r):
    if "jax" not in r:
        return "-"
    return fmt(r["jax"]) + ("" if r["jax_source"] == "this run" else "*")


#: Table columns: (header, unit, cell of a row).
COLUMNS = [
    ("case", "", lambda r: r["case"]),
    ("thr", "", lambda r: str(r["threads"])),
    ("mode", "", lambda r: r["mode"]),
    ("path", "", lambda r: "fused" if r["fused"] else "general"),
    ("WS", "MB", lambda r: fmt(r["ws_mb"], ".2f")),
    ("kernel", "Mc/s", lambda r: fmt(r["kernel"])),
    ("triad", "GB/s", lambda r: fmt(r.get("triad_gbs"))),
    ("roofline", "Mc/s", lambda r: fmt(r.get("roofline"))),
    ("%roof", "", lambda r: fmt(r.get("frac_roof"), ".0%")),
    ("numpy", "Mc/s", lambda r: fmt(r["numpy"], ".1f")),
    ("ker/np", "", lambda r: fmt(r["ratio_numpy"], ".1f")),
    ("JAX", "Mc/s", _jax_cell),
    ("ker/JAX", "", lambda r: fmt(r.get("ratio_jax"), ".1f")),
    (f">={ROOFLINE_TARGET:.0%}roof", "", lambda r: _pass_fail(r.get("roof_target"))),
    (f">={JAX_FACTOR:g}xJAX", "", lambda r: _pass_fail(r.get("jax_target"))),
    ("err10", "", lambda r: fmt(r["err"], ".0e")),
    ("other", "CPU", lambda r: fmt(r["others"], ".0%")),
    ("tries", "", lambda r: str(r["attempts"])),
]


def render_table(rows) -> str:
    return render(rows, COLUMNS)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short timings for a CI smoke run")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024], help="lattice sides")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument(
        "--target", type=float, default=None, help="seconds per timing (default 0.6, --quick 0.05)"
    )
    ap.add_argument("--repeats", type=int, default=None, help="timings per figure (best is kept)")
    ap.add_argument(
        "--extra-size", type=int, default=256, help="lattice side of the general-path rows"
    )
    ap.add_argument(
        "--no-extras", action="store_true", help="skip the batched and general-path rows"
    )
    ap.add_argument("--no-dram", action="store_true", help="skip the DRAM-sized triad line")
    ap.add_argument("--no-jax", action="store_true", help="do not measure JAX even if installed")
    ap.add_argument(
        "--retries",
        type=int,
        default=None,
        help="re-measure a row disturbed by other processes up to this many times "
        "(default 3, --quick 0)",
    )
    ap.add_argument(
        "--busy",
        type=float,
        default=0.05,
        help="share of the CPU time used by other processes above which a row is disturbed",
    )
    ap.add_argument("--retry-pause", type=float, default=5.0, help="seconds to wait before a retry")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    ap.add_argument(
        "--jax-worker",
        type=int,
        nargs=3,
        metavar=("N", "MEMBERS", "THREADS"),
        help=argparse.SUPPRESS,
    )
    args = ap.parse_args(argv)
    if args.target is None:
        args.target = 0.05 if args.quick else 0.6
    if args.retries is None:
        args.retries = 0 if args.quick else 3
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3
    if args.quick:
        args.no_dram = True
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.jax_worker:
        jax_worker(*args.jax_worker, args.dtype, args.target, args.repeats)
        return 0
    t_start = time.perf_counter()
    dtype = np.dtype(args.dtype)
    itemsize = dtype.itemsize
    bytes_per_cell = KERNEL_STREAMS * itemsize
    max_threads = numba.config.NUMBA_NUM_THREADS
    use_jax = jax_available() and not args.no_jax
    load0 = os.getloadavg()
    whole_run = CpuShare()

    print(f"# wavesim kernel benchmark, {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(
        f"# {cpu_name()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
        f"numpy {np.__version__}, numba {numba.__version__} "
        f"(NUMBA_NUM_THREADS={max_threads})"
    )
    print(
        f"# {args.dtype}, 3x3 Laplacian W, fast tanh, omega2={OMEGA2}, gamma={GAMMA}, "
        f"dt={DT}, periodic; best of {args.repeats} timings of ~{args.target:g} s "
        "after a warm-up"
    )
    print(
        f"# roofline = triad GB/s / {bytes_per_cell} B per cell-step; triad counts "
        f"{TRIAD_STREAMS} x {itemsize} B per element, write-allocate NOT counted"
    )

    threads = []
    for t in args.threads:
        if 1 <= t <= max_threads:
            threads.append(t)
        else:
            print(f"# skipping {t} threads: NUMBA_NUM_THREADS = {max_threads}")
    rng = np.random.default_rng(0)
    cases = make_cases(args, rng)
    rows = []
    for case in cases:
        rows += measure_case(case, threads, dtype, args, use_jax)
    dram = {}
    if not args.no_dram:
        for t in threads:
            dram[t] = triad_bandwidth(256 * 2**20, dtype, t, args.target, args.repeats)
    load1 = os.getloadavg()
    others = whole_run.others()

    print()
    print(render_table(rows))
    print()
    if any("jax" in r and r["jax_source"] != "this run" for r in rows):
        why = "not installed" if not jax_available() else "not measured"
        print(
            f"* JAX {why}: JAX figures are constants MEASURED PREVIOUSLY on this machine "
            "(2-core AMD EPYC), NOT IN THIS RUN: ~400 Mc/s on one core at 64^2-256^2 "
            "(also used for 2 threads), 250 (1 thread) / 410 (2 threads) at 1024^2."
        )
    print(
        f"Targets (spec): >= {ROOFLINE_TARGET:.0%} of roofline at {ROOFLINE_TARGET_AT[0]}^2 "
        f"with {ROOFLINE_TARGET_AT[1]} threads; >= {JAX_FACTOR:g}x the JAX CPU figure at every "
        "size (the batch row uses the 64^2 figure). General-path rows: no target, no roofline "
        "(per-site maps add streams the 20-byte model does not count)."
    )
    print(
        "numpy = wavesim.models.oscillator.reference_step (single-threaded; the same figure is "
        "shown for every thread count). err10 = max|y_kernel - y_numpy| after 10 steps. "
        "other = share of the machine's CPU time used by other processes while the row ran "
        "(tries = measurements of the row; the least disturbed one is shown)."
    )
    for t, bw in dram.items():
        print(
            f"DRAM-sized triad (3 arrays, 256 MiB total), {t} thread(s): {bw:.1f} GB/s "
            f"-> {bw * 1e9 / bytes_per_cell / 1e6:.0f} Mc/s memory roofline"
        )
    print(
        f"kernel first calls (JIT compile or numba cache load, not timed): "
        f"{sum(r['first_call_s'] for r in rows):.1f} s"
    )
    print(
        f"load average {load0[0]:.2f} at start, {load1[0]:.2f} at end; other processes used "
        f"{others:.0%} of the CPU time; total {time.perf_counter() - t_start:.0f} s"
    )
    if others > 0.05:
        print(
            "WARNING: other processes were using the CPU: figures (2-thread ones above all) may "
            "be low; rerun on a quiet machine."
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "dtype": args.dtype,
                    "rows": rows,
                    "dram_triad_gbs": dram,
                    "load_average": [load0[0], load1[0]],
                    "others_cpu_share": others,
                },
                f,
                indent=1,
                default=float,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
