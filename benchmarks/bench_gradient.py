"""Throughput and memory of wavesim's exact gradient (forward + adjoint) of a batched lattice.

The problem (the issue's benchmark): a batch of ``--members`` (16) periodic ``--size``² (64²)
tanh lattices, float32, ``--steps`` (T = 100) symplectic-Euler steps from a random state, loss =
mean squared error of ``y_T`` against a fixed target (:class:`wavesim.learn.FieldMSE` with the
single state index T), gradient with respect to the 3×3 coupling ``W``, the orientation coupling
``kappa`` (κ = 1 on a Gaussian random orientation map), ``omega2`` and ``gamma``, through
:meth:`wavesim.learn.GradientEngine.value_and_grad`; with 1 and 2 threads.

Reported per thread count:

* **time**: best of ``--repeat`` wall-clock timings of one ``value_and_grad`` call, after an
  untimed warm-up call (JIT compile or cache load, first-touch page faults of the buffers the
  engine keeps between calls, as in an optimizer loop);
* **M cell-steps/s** = members × sites × T / time (forward and backward counted once);
* **memory**, measured in a fresh subprocess per configuration: *peak extra RSS* = the process's
  resident high-water mark after one gradient minus the same figure before it. Before it means
  after imports, inputs and a tiny warm-up gradient that loads the compiled kernels, and after
  resetting the high-water mark to the current RSS (``/proc/self/clear_refs``; where that is
  unavailable the delta can under-count, and the output says so). The high-water mark is
  ``VmHWM`` of ``/proc/self/status`` on Linux, the same quantity as ``ru_maxrss`` of
  ``resource.getrusage``, which cannot be used in the worker: after fork + exec it keeps the
  parent's peak (see :func:`peak_rss_bytes`); elsewhere ``ru_maxrss``. Also the *peak RSS* of
  that process during the gradient (python, numpy, numba and wavesim included, like JAX's
  whole-process figure), and the peak of numpy's allocations traced by ``tracemalloc`` during a
  second gradient on a fresh engine (numba's own small scratch arrays are not traced);
* the checkpoint plan: segment length C and the bytes of stored states it predicts.

Ratios are taken against JAX (``jax.grad`` of a ``lax.scan`` with ``lax.conv``, float32), as
measured for the issue on this machine (~30 M cell-steps/s on one thread, ~40 M on two,
390–420 MB peak RSS); PyTorch autograd reached 5–20 M cell-steps/s with 520–730 MB. When ``jax``
is importable, JAX is run in the same invocation on the same problem, in a subprocess pinned to the
requested cores, and its measured figures replace the constants (that path is untested here: JAX is
not installed on the machine the numbers in ``benchmarks/README.md`` come from).

``--memory-check``: one 256² lattice (1 member, scalar parameters, gradient with respect to W,
ω², γ) over 10,000 float32 steps; prints the checkpoint plan, its predicted bytes of stored states
and the measured peak extra RSS, which must stay below 1 GB.

Usage::

    python benchmarks/bench_gradient.py                     # 16 x 64², T = 100, 1 and 2 threads
    python benchmarks/bench_gradient.py --members 4 --size 32 --steps 50 --repeat 3
    python benchmarks/bench_gradient.py --memory-check      # 256² x 10,000 steps (~1 min)
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc

import numba
import numpy as np
from _machine import CpuShare, cpu_name, fmt, render

from wavesim.coupling import laplacian_stencil, orientation_similarity
from wavesim.lattice import Lattice
from wavesim.learn import FieldMSE, GradientEngine, checkpoint_plan
from wavesim.maps import random_orientation_map
from wavesim.models.oscillator import OscillatorParams

DT = 0.125
OMEGA2 = 1.0
GAMMA = 0.5
KAPPA = 1.0
#: Column spacing of the random orientation map (sites).
MAP_WAVELENGTH = 8.0
#: Parameters differentiated in the throughput benchmark and in the memory check.
WRT = ("w", "kappa", "omega2", "gamma")
WRT_MEMORY = ("w", "omega2", "gamma")
#: Damping of the memory check: 10,000 steps of 0.125 ms decay by exp(-GAMMA_MEMORY * 1250 / 2).
GAMMA_MEMORY = 0.01
MEMORY_LIMIT = 2**30
#: Reference figures of the issue (float32, this machine): M cell-steps/s by thread count, and
#: the peak RSS range in MB.
JAX_RATE = {1: 30.0, 2: 40.0}
JAX_RSS_MB = (390.0, 420.0)
TORCH_RATE = (5.0, 20.0)
TORCH_RSS_MB = (520.0, 730.0)
MB = 1e6


# ------------------------------------------------------------------------------------------------
# the problem


def problem(members: int, n: int, kappa: bool = True, gamma: float = GAMMA, seed: int = 0):
    """The benchmark's lattice and its inputs.

    Parameters
    ----------
    members, n : int
        Batch size and lattice side.
    kappa : bool
        Orientation-modulated coupling (κ = ``KAPPA`` on a random map) or none.
    gamma : float
        Damping (1/ms).
    seed : int
        Seed of the initial state, the target and (``seed + 1``) the orientation map.

    Returns
    -------
    (Lattice, OscillatorParams, y0, v0, target)
        ``y0, v0``: float32 ``(members, n, n)``; ``target``: float64 ``(n, n)``.
    """
    rng = np.random.default_rng(seed)
    lat = Lattice((n, n), dx=1.0, boundary="periodic")
    theta = None
    if kappa:
        theta = np.asarray(random_orientation_map((n, n), MAP_WAVELENGTH, seed=seed + 1))
    params = OscillatorParams(
        w=laplacian_stencil(1.0, 1.0),
        kappa=KAPPA if kappa else 0.0,
        theta=theta,
        omega2=OMEGA2,
        gamma=gamma,
        activation="tanh",
        integrator="symplectic_euler",
    )
    y0 = rng.standard_normal((members, n, n)).astype(np.float32)
    v0 = rng.standard_normal((members, n, n)).astype(np.float32)
    target = 0.1 * rng.standard_normal((n, n))
    return lat, params, y0, v0, target


def mse_last_state(target, nsteps: int) -> FieldMSE:
    """Mean squared error of ``y_T`` against ``target`` (shared by every member)."""
    return FieldMSE(np.asarray(target)[None], [int(nsteps)])


def gradient_call(threads: int, members: int, n: int, nsteps: int, memory_check: bool = False):
    """A zero-argument function computing one gradient, and its engine (fresh buffers).

    Parameters
    ----------
    threads, members, n, nsteps : int
        Kernel threads, batch size, lattice side, steps T.
    memory_check : bool
        The memory check's problem (no orientation map, small damping, gradient w.r.t.
        ``WRT_MEMORY``) instead of the throughput benchmark's.

    Returns
    -------
    (callable, GradientEngine)
        ``call() -> GradientResult``.
    """
    lat, params, y0, v0, target = problem(
        members, n, kappa=not memory_check, gamma=GAMMA_MEMORY if memory_check else GAMMA
    )
    loss = mse_last_state(target, nsteps)
    wrt = WRT_MEMORY if memory_check else WRT
    eng = GradientEngine(lat, members=members, dtype=np.float32, seed=0, threads=threads)

    def call():
        return eng.value_and_grad(params, DT, y0, v0, nsteps, loss, wrt=wrt)

    return call, eng


def state_bytes(members: int, n: int, itemsize: int = 4, k: int = 3) -> int:
    """Bytes of one padded state ``(y, v)`` of all members (as the engine counts it)."""
    return 2 * members * (n + 2 * (k // 2)) ** 2 * itemsize


# ------------------------------------------------------------------------------------------------
# timing (this process)


def time_gradient(threads: int, args) -> dict:
    """Best-of-``args.repeat`` wall time of one gradient after a warm-up call.

    Returns
    -------
    dict
        ``seconds`` (best), ``rate`` (M cell-steps/s), ``first_call_s``, the checkpoint
        ``segment`` and ``predicted_bytes``, ``others`` (CPU share of other processes) and
        ``mode``.
    """
    call, eng = gradient_call(threads, args.members, args.size, args.steps)
    t0 = time.perf_counter()
    res = call()  # warm-up: compile or cache load, buffers allocated and touched
    first = time.perf_counter() - t0
    share = CpuShare()
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    best = min(times)
    cells = args.members * args.size**2 * args.steps
    return {
        "threads": threads,
        "seconds": best,
        "median_seconds": float(np.median(times)),
        "rate": cells / best / 1e6,
        "first_call_s": first,
        "segment": res.segment,
        "predicted_bytes": res.peak_bytes,
        "value": res.value,
        "others": share.others(),
        # the engine runs members in parallel when there are at least as many as threads
        "mode": "members" if 1 < threads <= args.members else "serial",
    }


# ------------------------------------------------------------------------------------------------
# memory (one subprocess per configuration)


def peak_rss_bytes() -> int:
    """The process's resident high-water mark in bytes.

    ``VmHWM`` of ``/proc/self/status`` where available: ``ru_maxrss`` of a process started by
    fork + exec also holds the peak of the *parent's* memory image at the fork (Linux keeps the
    larger of the two across ``exec``), which would hide the worker's own peak behind the main
    benchmark process's. Elsewhere ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux,
    bytes on macOS).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r) if sys.platform == "darwin" else int(r) * 1024


def reset_peak_rss() -> bool:
    """Reset the resident high-water mark to the current RSS (Linux >= 4.0: ``clear_refs`` 5).

    Without it the high-water mark keeps the peak of the imports and of loading the compiled
    kernels, which can hide a smaller gradient entirely. Returns False where the reset is
    unavailable.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def memory_worker(threads: int, members: int, n: int, nsteps: int, memory_check: bool) -> dict:
    """Peak extra RSS of one gradient in this (fresh) process, then numpy's traced peak.

    Returns
    -------
    dict
        ``rss_before``, ``rss_peak``, ``rss_extra`` (bytes; high-water marks), ``peak_reset``
        (whether the high-water mark could be reset), ``traced_peak`` (tracemalloc, bytes),
        ``segment``, ``state_bytes``, ``predicted_bytes``, ``seconds``, ``value``.
    """
    # load the compiled kernels of the same path (serial or members-parallel) on a tiny problem
    warm, _ = gradient_call(threads, max(threads, 1), 8, 3, memory_check)
    warm()
    call, eng = gradient_call(threads, members, n, nsteps, memory_check)
    del warm
    gc.collect()
    reset = reset_peak_rss()
    before = peak_rss_bytes()
    t0 = time.perf_counter()
    res = call()
    seconds = time.perf_counter() - t0
    after = peak_rss_bytes()
    eng.release()
    del call, eng
    gc.collect()
    # numpy's allocations during a second gradient on a fresh engine (tracemalloc sees numpy
    # arrays; it is started only now so that its own bookkeeping stays out of the RSS figure)
    call, eng = gradient_call(threads, members, n, nsteps, memory_check)
    tracemalloc.start()
    call()
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "rss_before": before,
        "rss_peak": after,
        "rss_extra": after - before,
        "peak_reset": reset,
        "traced_peak": traced_peak,
        "segment": res.segment,
        "state_bytes": res.state_bytes,
        "predicted_bytes": res.peak_bytes,
        "seconds": seconds,
        "value": res.value,
    }


def run_worker(kind: str, threads: int, args) -> dict:
    """Run ``kind`` ("memory" or "jax") in a subprocess; its last stdout line is JSON."""
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        kind,
        "--threads",
        str(threads),
        "--members",
        str(args.members),
        "--size",
        str(args.size),
        "--steps",
        str(args.steps),
        "--repeat",
        str(args.repeat),
    ]
    if args.memory_check:
        cmd.append("--memory-check")
    env = dict(os.environ)
    env.setdefault("NUMBA_NUM_THREADS", str(max(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=True, env=env)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or "").strip().splitlines()[-3:]
        return {"error": f"{kind} worker failed: " + " | ".join(tail)}
    except Exception as exc:  # noqa: BLE001 - report any failure in the table instead of dying
        return {"error": f"{kind} worker failed ({type(exc).__name__}: {exc})"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
# JAX peer (optional; untested on the reference machine, where JAX is not installed)


def jax_available() -> bool:
    return importlib.util.find_spec("jax") is not None


def jax_worker(threads: int, members: int, n: int, nsteps: int, repeat: int) -> dict:
    """The same problem as :func:`gradient_call` in JAX: ``jax.grad`` of a ``lax.scan``.

    One step gathers the 3×3 neighbourhood of every site with ``lax.conv_general_dilated``
    (nine one-hot kernels on the wrap-padded field), weighs it with ``W_o · exp(κ c_o(i))`` (the
    same orientation similarity ``c`` as wavesim), applies ``tanh`` and the symplectic-Euler
    update. Timed like wavesim (best of ``repeat`` after a warm-up); memory is the process's peak
    RSS (it includes the JAX runtime and XLA compilation, as in the issue's reference figure).
    """
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cpus)  # before importing jax: XLA sizes its thread pool to it
    import jax
    import jax.numpy as jnp
    from jax import lax

    lat, params, y0_np, v0_np, target_np = problem(members, n)
    c = orientation_similarity(params.theta, 3, lat).astype(np.float32)  # (9, n, n)
    onehot = np.zeros((9, 1, 3, 3), np.float32)  # OIHW: output channel o picks offset o
    for o in range(9):
        onehot[o, 0, o // 3, o % 3] = 1.0
    c, onehot = jnp.asarray(c), jnp.asarray(onehot)
    target = jnp.asarray(target_np, jnp.float32)
    y0, v0 = jnp.asarray(y0_np), jnp.asarray(v0_np)

    def loss(w, kappa, omega2, gamma):
        wm = w.reshape(9, 1, 1) * jnp.exp(kappa * c)  # (9, n, n) modulated weights
        alpha, beta, delta = 1.0 - DT * gamma, DT, DT * omega2

        def step(carry, _):
            y, v = carry
            yp = jnp.pad(y, ((0, 0), (1, 1), (1, 1)), mode="wrap")[:, None]  # (B, 1, n+2, n+2)
            nb = lax.conv_general_dilated(  # (B, 9, n, n): the 9 neighbours of every site
                yp, onehot, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW")
            )
            s = jnp.sum(wm[None] * nb, axis=1)
            v = alpha * v + beta * jnp.tanh(s) - delta * y
            return (y + DT * v, v), None

        (y_t, _), _ = lax.scan(step, (y0, v0), None, length=nsteps)
        return jnp.mean((y_t - target) ** 2)

    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))
    args = (
        jnp.asarray(params.w, jnp.float32),
        jnp.float32(KAPPA),
        jnp.float32(OMEGA2),
        jnp.float32(GAMMA),
    )
    jax.block_until_ready(grad(*args))  # compile
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(grad(*args))
        times.append(time.perf_counter() - t0)
    best = min(times)
    return {
        "rate": members * n * n * nsteps / best / 1e6,
        "seconds": best,
        "rss_peak": peak_rss_bytes(),
        "jax": jax.__version__,
    }


# ------------------------------------------------------------------------------------------------
# report


def _jax_rate(r):
    return fmt(r["jax_rate"]) + ("" if r["jax_measured"] else "*")


def _jax_rss(r):
    if r["jax_measured"]:
        return fmt(r["jax_rss"] / MB)
    return f"{JAX_RSS_MB[0]:.0f}-{JAX_RSS_MB[1]:.0f}*"


COLUMNS = [
    ("case", "", lambda r: r["case"]),
    ("thr", "", lambda r: str(r["threads"])),
    ("mode", "", lambda r: r["mode"]),
    ("grad", "ms", lambda r: fmt(1e3 * r["seconds"], ".1f")),
    ("wavesim", "Mc/s", lambda r: fmt(r["rate"], ".1f")),
    ("JAX", "Mc/s", _jax_rate),
    ("x JAX", "", lambda r: fmt(r["rate"] / r["jax_rate"], ".1f")),
    ("extra RSS", "MB", lambda r: fmt(r.get("rss_extra", math.nan) / MB, ".1f")),
    ("peak RSS", "MB", lambda r: fmt(r.get("rss_peak", math.nan) / MB)),
    ("JAX RSS", "MB", _jax_rss),
    ("RSS/JAX", "", lambda r: fmt(r.get("rss_ratio"), ".2f")),
    ("numpy peak", "MB", lambda r: fmt(r.get("traced_peak", math.nan) / MB, ".1f")),
    ("states", "MB", lambda r: fmt(r["predicted_bytes"] / MB, ".1f")),
    ("C", "", lambda r: str(r["segment"])),
    ("other", "CPU", lambda r: fmt(r["others"], ".0%")),
]


def header(args, title: str):
    print(
        f"# wavesim gradient benchmark ({title}), "
        f"{datetime.datetime.now().isoformat(timespec='seconds')}"
    )
    print(
        f"# {cpu_name()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
        f"numpy {np.__version__}, numba {numba.__version__} "
        f"(NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS})"
    )
    load = os.getloadavg()
    print(f"# load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def throughput(args) -> int:
    header(args, "forward + backward throughput")
    cells = args.members * args.size**2 * args.steps
    print(
        f"# {args.members} x {args.size}^2 periodic tanh lattices, float32, T = {args.steps} steps "
        f"of dt = {DT} ms (symplectic Euler), 3x3 Laplacian W, kappa = {KAPPA} on a random "
        f"orientation map, omega2 = {OMEGA2}, gamma = {GAMMA}; loss = MSE of y_T; "
        f"d/d{{{', '.join(WRT)}}}; {cells / 1e6:.2f} M cell-steps per gradient"
    )
    print(f"# time: best of {args.repeat} after a warm-up call; memory: fresh subprocess per row")
    use_jax = jax_available() and not args.no_jax
    rows = []
    for t in args.threads:
        if t > numba.config.NUMBA_NUM_THREADS:
            print(f"# skipping {t} threads: NUMBA_NUM_THREADS = {numba.config.NUMBA_NUM_THREADS}")
            continue
        row = {"case": f"{args.members}x{args.size}^2 T={args.steps}", **time_gradient(t, args)}
        print(f"#   {t} thread(s): {row['rate']:.1f} M cell-steps/s", file=sys.stderr, flush=True)
        mem = run_worker("memory", t, args)
        if "error" in mem:
            print(f"# {mem['error']}")
        else:
            row.update({k: mem[k] for k in ("rss_extra", "rss_peak", "traced_peak")})
            if not mem["peak_reset"]:
                print("# could not reset the RSS high-water mark: extra RSS may under-count")
        row["jax_rate"], row["jax_measured"] = JAX_RATE.get(t, JAX_RATE[2]), False
        if use_jax:
            jx = run_worker("jax", t, args)
            if "error" in jx:
                print(f"# {jx['error']}; using the issue's constants")
            else:
                row.update(jax_rate=jx["rate"], jax_rss=jx["rss_peak"], jax_measured=True)
        if "rss_peak" in row:
            ref = row["jax_rss"] if row["jax_measured"] else 0.5 * sum(JAX_RSS_MB) * MB
            row["rss_ratio"] = row["rss_peak"] / ref
        rows.append(row)
    load = os.getloadavg()
    print()
    print(render(rows, COLUMNS))
    print()
    if any(not r["jax_measured"] for r in rows):
        why = "not installed" if not jax_available() else "not measured"
        print(
            f"* JAX {why}: constants from the issue (jax.grad of a lax.scan with lax.conv, "
            f"float32, this machine): {JAX_RATE[1]:.0f} M cell-steps/s on 1 thread, "
            f"{JAX_RATE[2]:.0f} on 2; peak RSS {JAX_RSS_MB[0]:.0f}-{JAX_RSS_MB[1]:.0f} MB "
            "(RSS/JAX uses the midpoint). NOT measured in this run."
        )
    print(
        f"PyTorch autograd (issue, constants): {TORCH_RATE[0]:.0f}-{TORCH_RATE[1]:.0f} M "
        f"cell-steps/s, peak RSS {TORCH_RSS_MB[0]:.0f}-{TORCH_RSS_MB[1]:.0f} MB."
    )
    print(
        "extra RSS = resident high-water mark (VmHWM = ru_maxrss of the process itself) after "
        "one gradient - the same before it, in a fresh process (after imports, inputs, a tiny "
        "warm-up gradient and a reset of the high-water mark); peak RSS = that process's "
        "high-water mark during the gradient (python + numpy + numba + "
        "wavesim included, like JAX's whole-process figure); numpy peak = "
        "tracemalloc peak of numpy allocations during one gradient; states = stored states "
        "predicted by checkpoint_plan, (C + 1 + ceil(T/C)) x state bytes."
    )
    print(
        "first calls (compile or numba cache load, untimed): "
        + ", ".join(f"{r['threads']} thread(s) {r['first_call_s']:.1f} s" for r in rows)
    )
    print(
        "other = share of the machine's CPU time used by other processes during the timings; "
        f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    if any(r["others"] > 0.05 for r in rows):
        print(
            "WARNING: other processes used the CPU: figures may be low; rerun on a quiet machine."
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "load_average": [load[0]]}, f, indent=1, default=float)
    return 0


def memory_check(args) -> int:
    header(args, "memory check")
    sb = state_bytes(args.members, args.size)
    c, predicted = checkpoint_plan(args.steps, sb, "auto")
    whole = (args.steps + 1) * sb
    print(
        f"# {args.members} x {args.size}^2 lattice, float32, T = {args.steps} steps, scalar "
        f"parameters, d/d{{{', '.join(WRT_MEMORY)}}}; loss = MSE of y_T"
    )
    if c < args.steps:
        why = (
            f"the whole trajectory would need {whole / MB:.0f} MB > the default budget of "
            f"512 MiB, so C = {c} (ceil(sqrt(T)))"
        )
    else:
        why = (
            f"the whole trajectory ({whole / MB:.0f} MB) fits the default budget of 512 MiB: C = T"
        )
    print(
        f"checkpoint plan: state (y, v, padded) = {sb / MB:.3f} MB; {why}: "
        f"{math.ceil(args.steps / c)} checkpoint(s) + {c + 1} segment states"
    )
    print(f"predicted bytes of stored states: {predicted / MB:.1f} MB")
    t = args.threads[0]
    mem = run_worker("memory", t, args)
    if "error" in mem:
        print(mem["error"])
        return 1
    ok = mem["rss_extra"] < MEMORY_LIMIT
    if not mem["peak_reset"]:
        print("could not reset the RSS high-water mark: the extra RSS may under-count")
    print(
        f"measured ({t} thread(s), fresh process): peak extra RSS {mem['rss_extra'] / MB:.1f} MB "
        f"(high-water mark {mem['rss_before'] / MB:.0f} -> {mem['rss_peak'] / MB:.0f} MB), numpy "
        f"tracemalloc peak {mem['traced_peak'] / MB:.1f} MB, gradient {mem['seconds']:.1f} s "
        f"({args.members * args.size**2 * args.steps / mem['seconds'] / 1e6:.0f} M cell-steps/s); "
        f"segment C = {mem['segment']}"
    )
    print(f"peak extra RSS < 1 GB: {'PASS' if ok else 'FAIL'}")
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0 if ok else 1


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--members", type=int, default=None, help="batch size (16; 1 with --memory-check)"
    )
    ap.add_argument(
        "--size", type=int, default=None, help="lattice side (64; 256 with --memory-check)"
    )
    ap.add_argument(
        "--steps", type=int, default=None, help="steps T (100; 10,000 with --memory-check)"
    )
    ap.add_argument("--repeat", type=int, default=5, help="timed gradients (best is kept)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts")
    ap.add_argument("--no-jax", action="store_true", help="do not run JAX even if installed")
    ap.add_argument("--memory-check", action="store_true", help="256^2 x 10,000-step memory check")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    ap.add_argument("--worker", choices=["memory", "jax"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    defaults = (1, 256, 10_000) if args.memory_check else (16, 64, 100)
    for name, value in zip(("members", "size", "steps"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1")
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker == "memory":
        out = memory_worker(args.threads[0], args.members, args.size, args.steps, args.memory_check)
        print(json.dumps(out))
        return 0
    if args.worker == "jax":
        out = jax_worker(args.threads[0], args.members, args.size, args.steps, args.repeat)
        print(json.dumps(out))
        return 0
    return memory_check(args) if args.memory_check else throughput(args)


if __name__ == "__main__":
    sys.exit(main())
