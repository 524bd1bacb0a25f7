"""Training throughput of the encoder/decoder bridge (sequences per second).

The configuration (the rotating-bars result of ``docs/bridge.md``): 32×32 frames, a linear
encoder onto a 32×32 periodic lattice (3×3 stencil, tanh, dt = 0.125 ms, float32, one kernel
thread), a linear sigmoid decoder reading y and ẏ, 8 integrator steps per frame, observe 18
frames and forecast 18 (36 frames: 288 steps per sequence), minibatches of 16 sequences.

Rows (best of ``--repeat`` timings after a warm-up call):

* **forward** -- the loss alone (:meth:`BridgeModel.loss`): encode, run the lattice, decode (the
  reference of the ratio column);
* **gradient** -- loss and exact gradient of every parameter (:meth:`BridgeModel.value_and_grad`:
  encoder, lattice adjoint, decoder);
* **train step** -- one iteration of :func:`wavesim.bridge.training.train` (gradient, flat
  vector bookkeeping and the Adam update, no validation): the difference between runs of
  ``2 n`` and ``n`` iterations (``--iterations``), divided by ``n``;
* **lattice gradient only** -- :meth:`GradientEngine.value_and_grad` on the same inputs with a
  cheap loss, i.e. the share of the compiled adjoint.

Columns: seconds per minibatch, sequences/s, ratio to the forward pass, and the CPU share taken by
other processes during the row (other load slows every row).

``--results`` instead trains the full-size models of ``docs/bridge.md`` and prints their
evaluation tables (wall time on 2 cores: ~5 min per trained model when the machine is idle):

* ``bars``: rotating bars, 32×32 frames, ±20°/frame, 256 training sequences; the coupled lattice
  and the uncoupled one (W = 0) trained 400 iterations (lr 3e-3, batch 16) to observe 18 and
  forecast 18 frames; evaluated on 64 test sequences at 18 and 54 forecast frames against
  copy-last, mean frame, ridge AR(2) and AR(1);
* ``blobs``: translating blobs, 32×32, velocities in [−2, 2]² px/frame, 2048 training sequences,
  observe 10, forecast 10 (and 30); coupled and uncoupled (ω² = 0.05 and a 1.2 × Laplacian
  stencil at the start, 1500 iterations with a cosine learning-rate decay);
* ``speeds``: rotating bars trained on ±{10, 12, 14, 16, 24, 26, 28, 30}°/frame, tested at
  ±20°/frame;
* ``maps``: the emergent orientation map of a receptive-field encoder on a random map (36×36
  lattice, Λ = 12 sites) before and after training on rotating gratings (±10°/frame): pinwheels,
  density per Λ², selectivity and orientation error of the encoder's and the lattice's maps.

With ``--results``, ``--lattice`` sets the lattice side of bars/blobs/speeds and ``--per-site``
learns ω² and γ per site; ``--seed`` sets the initial weights and the batch order.

Usage::

    python benchmarks/bench_bridge.py                 # the configuration above (~1 min)
    python benchmarks/bench_bridge.py --lattice 16 --batch 32 --steps-per-frame 4
    python benchmarks/bench_bridge.py --results bars  # full-size results (bars, blobs, speeds,
                                                      # maps); OMP_NUM_THREADS=1 when two run
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _machine import CpuShare, cpu_name, fmt, render  # noqa: E402


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up: JIT compile or cache load, first-touch buffers
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


class _FinalState:
    """A cheap loss on the last state: isolates the lattice's forward + adjoint."""

    uses_y = True
    uses_v = False

    def __init__(self, nsteps):
        self.steps = np.array([nsteps], dtype=np.int64)

    def evaluate(self, k, y, v):
        return float(np.mean(y)), np.full(y.shape, 1.0 / y.size), None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=int, default=32, help="frame side (px)")
    p.add_argument("--lattice", type=int, default=32, help="lattice side (sites)")
    p.add_argument("--batch", type=int, default=16, help="sequences per minibatch")
    p.add_argument("--steps-per-frame", type=int, default=8)
    p.add_argument("--observe", type=int, default=18)
    p.add_argument("--horizon", type=int, default=18)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--iterations", type=int, default=10, help="train-step row iterations")
    p.add_argument(
        "--results",
        choices=("bars", "blobs", "speeds", "maps"),
        default=None,
        help="train and evaluate a full-size configuration instead",
    )
    p.add_argument(
        "--train-iterations",
        type=int,
        default=None,
        help="with --results (default 400; 1500 for blobs)",
    )
    p.add_argument("--store", default=None, help="with --results: folder for the model stores")
    p.add_argument("--per-site", action="store_true", help="with --results: per-site ω², γ")
    p.add_argument("--seed", type=int, default=0, help="with --results: weights and batch order")
    args = p.parse_args(argv)
    if args.results:
        return results(args)

    from wavesim.bridge import make_splits
    from wavesim.bridge.decoders import LinearDecoder
    from wavesim.bridge.encoders import LinearEncoder
    from wavesim.bridge.model import BridgeModel, nwm_params
    from wavesim.bridge.training import train

    n, lat, b = args.size, args.lattice, args.batch
    K, H = args.observe, args.horizon
    splits = make_splits(
        "rotating_bars", 2 * b, b, 0, seed=0, size=n, frames=K + H, angular_velocity=[-20.0, 20.0]
    )
    x = splits.train["frames"].values[:b].astype(np.float64)

    def model():
        enc = LinearEncoder((n, n), (lat, lat))
        dec = LinearDecoder((lat, lat), (n, n), bias_init=-2.4)
        return BridgeModel(
            enc, dec, nwm_params(coupling=1.0, gamma=0.1), steps_per_frame=args.steps_per_frame
        )

    m = model()
    nsteps = (K + H) * m.steps_per_frame
    rows = []

    def row(name, seconds, share):
        rows.append({"name": name, "s": seconds, "seq": b / seconds, "share": share})

    share = CpuShare()
    row("forward", best_time(lambda: m.loss(x, K, H), args.repeat), share.others())
    share = CpuShare()
    row("gradient", best_time(lambda: m.value_and_grad(x, K, H), args.repeat), share.others())
    share = CpuShare()
    inp = m.inputs(x[:, :K])
    eng = m._engine(b)
    zeros = np.zeros((b, lat, lat))
    loss = _FinalState(nsteps)
    wrt = ("w", "omega2", "gamma", "inputs")
    t = best_time(
        lambda: eng.value_and_grad(m.params, m.dt, zeros, zeros, nsteps, loss, wrt=wrt, inputs=inp),
        args.repeat,
    )
    row("lattice gradient only", t, share.others())
    share = CpuShare()

    def train_seconds(iterations):
        t0 = time.perf_counter()
        train(
            model(),
            splits.train,
            observe=K,
            horizon=H,
            iterations=iterations,
            batch_size=b,
            progress=False,
            validate_every=10**6,
        )
        return time.perf_counter() - t0

    train_seconds(1)  # warm-up
    n_it = args.iterations
    # the difference of two runs cancels the set-up (engines, first-touch buffers)
    row("train step", (train_seconds(2 * n_it) - train_seconds(n_it)) / n_it, share.others())

    ref = rows[0]["s"]
    print(
        f"bridge training throughput: {n}x{n} frames, {lat}x{lat} lattice, "
        f"{m.steps_per_frame} steps/frame, observe {K} + forecast {H} frames "
        f"({nsteps} steps/sequence), batch {b}, float32, 1 thread; {m.size:,} parameters"
    )
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical CPUs")
    print(
        render(
            rows,
            [
                ("row", "", lambda r: r["name"]),
                ("time", "s/batch", lambda r: fmt(r["s"], ".3f")),
                ("throughput", "seq/s", lambda r: fmt(r["seq"], ".1f")),
                ("ratio", "x forward", lambda r: fmt(r["s"] / ref, ".2f")),
                ("other load", "CPU share", lambda r: fmt(r["share"], ".2f")),
            ],
        )
    )
    return 0


def results(args) -> int:
    """Train the full-size models of docs/bridge.md and print their evaluation tables."""
    import tempfile
    from pathlib import Path

    from wavesim.bridge import make_splits
    from wavesim.bridge.decoders import LinearDecoder, mean_bias
    from wavesim.bridge.encoders import LinearEncoder
    from wavesim.bridge.evaluation import baselines, evaluate, results_table
    from wavesim.bridge.model import BridgeModel, nwm_params
    from wavesim.bridge.training import train
    from wavesim.lattice import Lattice

    kind = args.results
    if kind == "maps":
        return maps_results(args)
    # blobs: the slow components of a blob's motion need low lattice frequencies, so the lattice
    # starts with omega2 = 0.05 and a band reaching pi rad/frame (coupling 1.2)
    omega2, coupling0, iterations, schedule = 1.0, 1.0, args.train_iterations or 400, None
    if kind == "blobs":
        gen, K, H, n_train, kw, long = "translating_blobs", 10, 10, 2048, {}, 3
        test_kw = {}
        omega2, coupling0, iterations = 0.05, 1.2, args.train_iterations or 1500
        schedule = "cosine"
    else:
        gen, K, H, n_train, long = "rotating_bars", 18, 18, 256, 3
        kw = {"angular_velocity": [-20.0, 20.0]}
        test_kw = dict(kw)
        if kind == "speeds":
            kw = {
                "angular_velocity": [
                    s * v for s in (-1, 1) for v in (10, 12, 14, 16, 24, 26, 28, 30)
                ]
            }
            long = 1
    splits = make_splits(gen, n_train, 32, 0, seed=0, size=32, frames=K + H, **kw)
    test = make_splits(gen, 0, 0, 64, seed=1, size=32, frames=K + long * H, **test_kw).test
    mean = float(splits.train["frames"].mean())
    folder = Path(args.store or tempfile.mkdtemp(prefix="wavesim-bridge-"))
    forecasters = {}
    n_lat, seed = args.lattice, args.seed
    per_site = ("omega2", "gamma") if args.per_site else ()
    for name, coupling in (("lattice", coupling0), ("uncoupled", 0.0)):
        if kind == "speeds" and coupling == 0.0:
            continue
        enc = LinearEncoder((32, 32), (n_lat, n_lat), seed=seed)
        dec = LinearDecoder((n_lat, n_lat), (32, 32), bias_init=mean_bias(mean), seed=seed)
        learn = ("w", "omega2", "gamma") if coupling else ("omega2", "gamma")
        params = nwm_params(coupling=coupling, gamma=0.1, omega2=omega2)
        model = BridgeModel(
            enc,
            dec,
            params,
            lattice=Lattice((n_lat, n_lat), dx=0.1, boundary="periodic"),
            steps_per_frame=8,
            learn=learn,
            per_site=per_site,
        )
        res = train(
            model,
            splits,
            observe=K,
            horizon=H,
            iterations=iterations,
            lr=3e-3,
            schedule=schedule,
            batch_size=16,
            seed=seed,
            store=folder / f"{kind}_{name}.zarr",
            overwrite=True,
        )
        print(
            f"{name}: {res.iterations} iterations in {res.seconds:.0f} s "
            f"({res.sequences_per_second:.1f} sequences/s), best validation MSE "
            f"{res.best_validation:.4g}"
        )
        forecasters[name] = model
    forecasters.update(baselines(splits))
    if kind != "blobs":
        forecasters["ridge_ar1"] = baselines(splits, ridge_order=1)["ridge_ar"]
    for h in sorted({H, long * H}):
        result = evaluate(forecasters, test, K, h)
        print(f"\n{gen}, observe {K}, forecast {h} ({test.sizes['sequence']} test sequences):")
        print(results_table(result, steps=[1, h // 2, h]))
    print(f"model stores: {folder}")
    return 0


def maps_results(args) -> int:
    """Emergent orientation maps of a receptive-field model, before and after training."""
    from wavesim.bridge.cli import build_model, make_dataset
    from wavesim.bridge.evaluation import baselines, evaluate
    from wavesim.bridge.readout import orientation_tuning
    from wavesim.bridge.training import train
    from wavesim.maps import random_orientation_map

    n, lam = 36, 12.0
    cfg = {
        "dataset": {
            "generator": "rotating_gratings",
            "n_train": 256,
            "n_validation": 32,
            "n_test": 64,
            "seed": 0,
            "size": 32,
            "frames": 20,
            "angular_velocity": [-10.0, 10.0],
        },
        "encoder": {
            "kind": "receptive_field",
            "map": "random",
            "map_wavelength": lam,
            "map_seed": 0,
            "wavelength": 6.0,
        },  # fmt: skip
        "decoder": {"output": "sigmoid"},
        "lattice": {"shape": [n, n], "coupling": 1.0, "gamma": 0.1, "steps_per_frame": 8},
        "training": {"observe": 10, "horizon": 10, "iterations": 300, "seed": args.seed},
    }
    splits = make_dataset(cfg)
    model = build_model(cfg, (32, 32), float(splits.train["frames"].mean()))
    theta = np.asarray(random_orientation_map((n, n), lam, seed=0))
    rows = []

    def probe(state):
        for source in ("encoder", "lattice"):
            t = orientation_tuning(model, orientations=16, spatial_period=6.0, source=source)
            d = (t["preferred_orientation"].values - theta + np.pi / 2) % np.pi - np.pi / 2
            rows.append({"state": state, "source": source, **t.attrs,
                         "error": float(np.median(np.rad2deg(np.abs(d))))})  # fmt: skip

    probe("untrained")
    t0 = time.perf_counter()
    train(model, splits, progress=False, **cfg["training"])
    seconds = time.perf_counter() - t0
    probe("trained")
    r = evaluate({"lattice": model, **baselines(splits)}, splits.test, 10, 10)
    ratio = float(r["ratio_to_copy_last"].sel(forecaster="lattice"))
    print(
        f"receptive-field encoder on a random map (Λ = {lam:g} sites requested), {n}x{n} lattice; "
        f"trained 300 iterations on rotating gratings in {seconds:.0f} s: forecast "
        f"{ratio:.3f} x copy-last (observe 10, forecast 10)"
    )
    print(
        render(
            rows,
            [
                ("model", "", lambda r: r["state"]),
                ("map of", "", lambda r: r["source"]),
                ("pinwheels", "", lambda r: str(r["n_pinwheels"])),
                ("density", "per Λ²", lambda r: fmt(r["pinwheel_density"], ".2f")),
                ("Λ", "sites", lambda r: fmt(r["wavelength"] / 0.1, ".1f")),
                ("selectivity", "mean", lambda r: fmt(r["mean_selectivity"], ".2f")),
                ("error", "median deg", lambda r: fmt(r["error"], ".1f")),
            ],
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
