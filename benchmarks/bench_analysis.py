"""Frames per second of the analyzers' compiled paths against their plain-numpy references.

One run prints a table: for a 256 x 256 phase movie of 1000 frames (by default), the frames per
second of

* **singularity detection**: the compiled plaquette winding
  (:func:`wavesim.analysis.plaquette_winding`, kernel :mod:`wavesim.kernels.winding`) and the full
  detector :func:`wavesim.analysis.phase_singularities` (winding + sub-pixel positions + Dataset),
  against the numpy winding reference ``wavesim.analysis.winding._plaquette_winding_numpy``, on
  a rotating spiral (one singularity per frame) and on a random field (hundreds per frame);
* **phase gradients**: the numba kernel alone
  (:func:`wavesim.kernels.phase_gradient.phase_gradient_frames`) and the xarray function
  :func:`wavesim.analysis.phase_gradient`, against the numpy reference
  :func:`wavesim.kernels.phase_gradient.phase_gradient_reference`.

Every ratio is against the numpy reference measured in the same run, on the same frames. See
``benchmarks/README.md`` for results.

Usage::

    python benchmarks/bench_analysis.py                     # 256^2 x 1000 frames (~1 min)
    python benchmarks/bench_analysis.py --frames 200        # fewer frames on a loaded machine
    python benchmarks/bench_analysis.py --size 128 --ref-frames 100 --threads 2

Timing: the movie is ``--block`` distinct frames (default 50) processed ``frames / block`` times,
so memory stays small (the numpy phase-gradient reference holds ~10 float64 copies of a block).
Each implementation is called once on one block before it is timed (JIT compilation or cache
loading is never timed); a figure is the best of ``--repeats`` timings of all the frames.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from _machine import CpuShare

from wavesim.analysis import phase_gradient, phase_singularities, plaquette_winding  # noqa: E402
from wavesim.analysis.winding import _plaquette_winding_numpy  # noqa: E402
from wavesim.kernels.phase_gradient import (  # noqa: E402
    phase_gradient_frames,
    phase_gradient_reference,
)

DX = 0.05  # mm
DT = 0.5  # ms
OMEGA = 1.0  # rad/ms


# --------------------------------------------------------------------------------------------
# movies
# --------------------------------------------------------------------------------------------
def spiral_movie(n: int, frames: int) -> np.ndarray:
    """Rotating one-armed spiral, 16 px between arms, core off the nodes: one -1 per frame."""
    y, x = np.mgrid[0:n, 0:n].astype(float)
    r = np.hypot(x - n / 2 + 0.3, y - n / 2 + 0.2)
    theta = np.arctan2(y - n / 2 + 0.2, x - n / 2 + 0.3)
    t = np.arange(frames)[:, None, None] * DT
    phi = OMEGA * t - theta - 2 * np.pi * r / 16.0
    return np.angle(np.exp(1j * phi))


def random_movie(n: int, frames: int, seed: int = 0) -> np.ndarray:
    """Phase of a smooth complex Gaussian field (ring spectrum at 24 px), drifting in time:
    about pi singularities per (24 px)^2, ~360 per frame at 256^2."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(n)
    kk = np.hypot(*np.meshgrid(k, k))
    ring = np.exp(-0.5 * ((kk - 1 / 24) / 0.01) ** 2)
    out = np.empty((frames, n, n))
    a = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    b = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    for f in range(frames):
        c = math.cos(2 * np.pi * f / frames)
        s = math.sin(2 * np.pi * f / frames)
        out[f] = np.angle(np.fft.ifft2(ring * (c * a + s * b)))
    return out


def as_dataarray(frames: np.ndarray) -> xr.DataArray:
    nt, ny, nx = frames.shape
    return xr.DataArray(
        frames,
        dims=("time", "y", "x"),
        coords={
            "time": ("time", np.arange(nt) * DT, {"units": "ms"}),
            "y": ("y", np.arange(ny) * DX, {"units": "mm"}),
            "x": ("x", np.arange(nx) * DX, {"units": "mm"}),
        },
        attrs={"units": "rad"},
    )


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------
def frames_per_second(run, block, nb: int, frames: int, repeats: int) -> tuple[float, float]:
    """Best frames/s of ``run(block)`` (``nb`` frames per call) over ``frames`` frames, and the
    share of the machine's CPU time other processes used meanwhile."""
    run(block)  # warm-up: compile or load from cache, never timed
    calls = max(1, round(frames / nb))
    share = CpuShare()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            run(block)
        best = min(best, time.perf_counter() - t0)
    return calls * nb / best, share.others()


# --------------------------------------------------------------------------------------------
# rows
# --------------------------------------------------------------------------------------------
def singularity_rows(name, movie, args):
    da = as_dataarray(movie)
    nb = len(movie)
    ref_fps, ref_other = frames_per_second(
        _plaquette_winding_numpy, movie, nb, args.ref_frames, args.repeats
    )
    ker_fps, ker_other = frames_per_second(plaquette_winding, movie, nb, args.frames, args.repeats)
    det_fps, det_other = frames_per_second(phase_singularities, da, nb, args.frames, args.repeats)
    w_ref = _plaquette_winding_numpy(movie)
    w_ker = plaquette_winding(movie)
    mismatches = int(np.count_nonzero(w_ref != w_ker))
    per_frame = float(np.abs(w_ker).sum() / len(movie))
    check = f"{mismatches} of {w_ref.size} plaquettes differ"
    return [
        ("winding (numpy reference)", name, ref_fps, ref_fps, per_frame, "-", ref_other),
        ("winding (numba kernel)", name, ker_fps, ref_fps, per_frame, check, ker_other),
        ("phase_singularities", name, det_fps, ref_fps, per_frame, "-", det_other),
    ]


def gradient_rows(name, movie, args):
    da = as_dataarray(movie)
    v = np.ascontiguousarray(movie[None])
    outs = [np.empty_like(v) for _ in range(4)]

    def kernel(block):
        phase_gradient_frames(block, 1 / DX, 1 / DX, 1 / DT, *outs)
        return np.arctan2(outs[1], outs[0])  # the direction, as phase_gradient computes it

    def reference(block):
        return phase_gradient_reference(block, DX, DX, DT)

    nb = len(movie)
    ref_fps, ref_other = frames_per_second(reference, v, nb, args.ref_frames, args.repeats)
    ker_fps, ker_other = frames_per_second(kernel, v, nb, args.frames, args.repeats)
    api_fps, api_other = frames_per_second(phase_gradient, da, nb, args.frames, args.repeats)
    kernel(v)
    kx, ky, om, *_ = phase_gradient_reference(v, DX, DX, DT)
    err = max(float(np.nanmax(np.abs(a - b))) for a, b in zip(outs[:3], (kx, ky, om), strict=True))
    check = f"max |diff| {err:.0e} rad/mm"
    return [
        ("phase gradient (numpy reference)", name, ref_fps, ref_fps, math.nan, "-", ref_other),
        ("phase gradient (numba kernel)", name, ker_fps, ref_fps, math.nan, check, ker_other),
        ("phase_gradient (xarray)", name, api_fps, ref_fps, math.nan, "-", api_other),
    ]


def render(rows) -> str:
    head = ("task", "movie", "frames/s", "x numpy", "sing/frame", "check", "other CPU")
    body = [
        (
            task,
            movie,
            f"{fps:,.0f}",
            f"{fps / ref:.1f}",
            "-" if math.isnan(spf) else f"{spf:.0f}",
            check,
            "-" if math.isnan(other) else f"{100 * other:.0f}%",
        )
        for task, movie, fps, ref, spf, check, other in rows
    ]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    align = ["<", "<", ">", ">", ">", "<", ">"]

    def line(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths, strict=True))

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256, help="lattice side (default 256)")
    ap.add_argument("--frames", type=int, default=1000, help="frames per timing (default 1000)")
    ap.add_argument("--ref-frames", type=int, default=None,
                    help="frames per numpy-reference timing (default: --frames)")  # fmt: skip
    ap.add_argument("--block", type=int, default=50, help="distinct frames (default 50)")
    ap.add_argument("--repeats", type=int, default=1, help="timings per figure, best kept")
    ap.add_argument("--threads", type=int, default=1,
                    help="numba threads (winding is frame-parallel; default 1)")  # fmt: skip
    args = ap.parse_args(argv)
    for name in ("size", "frames", "block", "repeats", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1")
    args.ref_frames = args.frames if args.ref_frames is None else args.ref_frames
    args.block = min(args.block, args.frames)
    if not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
        ap.error(f"--threads must be in 1..{numba.config.NUMBA_NUM_THREADS} (NUMBA_NUM_THREADS)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    numba.set_num_threads(args.threads)
    load0 = os.getloadavg()
    whole = CpuShare()
    t0 = time.perf_counter()
    print(f"# wavesim analysis benchmark, {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python "
        f"{platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
        f"{args.threads} numba thread(s)"
    )
    print(
        f"# {args.size}^2 sites, {args.frames} frames per timing ({args.ref_frames} for the numpy "
        f"references), {args.block} distinct frames, best of {args.repeats}; float64 phase"
    )
    rows = []
    for name, make in (("spiral", spiral_movie), ("random", random_movie)):
        movie = make(args.size, args.block)
        rows += singularity_rows(name, movie, args)
    rows += gradient_rows("spiral", spiral_movie(args.size, args.block), args)
    print()
    print(render(rows))
    print()
    load1 = os.getloadavg()
    print(
        f"# load average {load0[0]:.2f} -> {load1[0]:.2f} (1 min); other processes used "
        f"{100 * whole.others():.0f}% of the machine's CPU time during the run; "
        f"total {time.perf_counter() - t0:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
