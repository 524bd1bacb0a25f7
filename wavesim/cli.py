"""Command-line interface: ``wavesim run | validate | info | plot``."""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path


def _cmd_run(args) -> int:
    from wavesim.scenario import load_scenario
    from wavesim.simulate import run

    scenario = load_scenario(args.scenario, overrides=args.set or ())
    try:
        summary = run(scenario, args.output, overwrite=args.overwrite, progress=not args.quiet,
                      threads=args.threads)  # fmt: skip
    except KeyboardInterrupt:
        import zarr

        try:
            attrs = zarr.open_group(str(args.output), mode="r").attrs
            done = f" (the store holds samples up to step {attrs.get('steps_done')})"
        except Exception:  # the store may not exist if the interrupt came first
            done = ""
        print(f"wavesim: interrupted; the store {args.output} is partial "
              f"(attribute complete = false){done}", file=sys.stderr)  # fmt: skip
        return 130
    if not args.quiet:
        print(summary)
    return 0


def _cmd_validate(args) -> int:
    from wavesim.scenario import load_scenario
    from wavesim.simulate import build

    scenario = load_scenario(args.scenario, overrides=args.set or ())
    built = build(scenario)  # also checks the stability limit and builds map, drive, recorders
    sim = built.simulator
    print(f"{args.scenario}: valid. {scenario.n_steps} steps of dt = {sim.dt:g} ms "
          f"(largest stable dt {sim.dt_max:.4g} ms), lattice {built.lattice.shape} at "
          f"dx = {built.lattice.dx:g} mm, {sim.members} member(s), "
          f"kernel path: {'fused' if sim.kernel.fused else 'general'}")  # fmt: skip
    return 0


def _cmd_info(args) -> int:
    import numba
    import numpy
    import xarray
    import zarr

    import wavesim

    try:
        import llvmlite.binding as llvm

        svml = bool(getattr(llvm, "has_svml", lambda: False)())
    except Exception:  # pragma: no cover - depends on llvmlite build
        svml = False
    print(f"wavesim {wavesim.__version__}")
    print(f"python {platform.python_version()} on {platform.machine()} ({platform.system()})")
    print(f"numpy {numpy.__version__}, numba {numba.__version__}, xarray {xarray.__version__}, "
          f"zarr {zarr.__version__}")  # fmt: skip
    print(f"numba threads: {numba.get_num_threads()} (NUMBA_NUM_THREADS="
          f"{numba.config.NUMBA_NUM_THREADS}), threading layer setting: "
          f"{numba.config.THREADING_LAYER}")  # fmt: skip
    print(
        f"SVML: {'available' if svml else 'not available'} (wavesim does not need it: its "
        "kernels use a vectorizable rational tanh, error <= 5e-7 in float32)"
    )
    try:
        cpu = numba.config.CPU_NAME or llvm.get_host_cpu_name()
        print(f"CPU target: {cpu}")
    except Exception:  # pragma: no cover
        pass
    return 0


def _cmd_plot(args) -> int:
    from wavesim.plot import plot_store

    out = plot_store(args.store, args.what, args.output, time=args.time)
    print(f"wrote {out}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wavesim",
        description="Simulate and analyse cortical traveling waves on oscillator lattices.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a scenario and write a zarr store")
    p.add_argument("scenario", type=Path, help="scenario TOML file")
    p.add_argument("-o", "--output", type=Path, required=True, help="output zarr store")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY.PATH=VALUE",
        help="override a scenario value, e.g. --set run.dt=0.05 (repeatable)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--threads", type=int, default=None, help="kernel threads")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("validate", help="check a scenario (schema, files, stability)")
    p.add_argument("scenario", type=Path)
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("info", help="versions, threads, SVML status")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("plot", help="plot a store: field, phase, orientation or animation")
    p.add_argument("store", type=Path)
    p.add_argument("--what", default="field",
                   choices=["field", "phase", "orientation", "animation"])  # fmt: skip
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="png/pdf/svg (animation: gif/mp4)")  # fmt: skip
    p.add_argument("--time", type=float, default=None, help="time in ms (default: last)")
    p.set_defaults(func=_cmd_plot)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``wavesim`` console script."""
    from wavesim.scenario import ScenarioError
    from wavesim.stability import StabilityError

    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ScenarioError, StabilityError, FileExistsError, FileNotFoundError, KeyError,
            ValueError) as exc:  # fmt: skip
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"wavesim {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
