"""``wavesim sweep SWEEP.toml -o STORE``: run a parameter sweep (see ``docs/sweeps.md``)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

__all__ = ["add_sweep_parser", "cmd_sweep"]


def _resume_hint(args) -> str:
    cmd = ["wavesim", "sweep", str(args.sweepfile), "-o", str(args.output), "--resume"]
    for o in args.set or ():
        cmd += ["--set", o]
    if args.scheduler:
        cmd += ["--scheduler", args.scheduler]
    elif args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    return shlex.join(cmd)


def cmd_sweep(args) -> int:
    """Run ``wavesim sweep`` from parsed arguments; returns the exit code."""
    from wavesim.sweep.execute import run_sweep
    from wavesim.sweep.spec import load_sweep

    if args.workers is not None and args.workers < 0:
        raise ValueError(f"--workers must be >= 0 (0: run in this process), got {args.workers}")
    if args.threads_per_worker < 1:
        raise ValueError(f"--threads-per-worker must be >= 1, got {args.threads_per_worker}")
    if args.scheduler and args.workers is not None:
        raise ValueError("--workers starts a LocalCluster; it does not apply with --scheduler")
    spec = load_sweep(args.sweepfile, overrides=args.set or ())
    if not args.quiet:
        dims = " x ".join(f"{a.name} {a.size}" for a in spec.axes) or "one member"
        print(f"sweep {spec.name!r}: {spec.members} members ({dims}); record "
              f"{', '.join(spec.record)} -> {args.output}", flush=True)  # fmt: skip
    try:
        report = run_sweep(
            spec,
            args.output,
            workers=args.workers,
            threads_per_worker=args.threads_per_worker,
            scheduler=args.scheduler,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=not args.quiet,
            write_from=args.write_from,
            dashboard=args.dashboard,
        )
    except KeyboardInterrupt:
        try:
            from wavesim.sweep.template import SweepStore

            c = SweepStore.open(args.output).counts()
            held = f": {c['done']} done, {c['failed']} failed, {c['pending']} pending"
        except Exception:  # the template may not exist if the interrupt came first
            held = ""
        print(f"\nwavesim sweep: interrupted; the store {args.output} is consistent{held}. "
              f"Continue with:\n  {_resume_hint(args)}", file=sys.stderr)  # fmt: skip
        return 130
    if not args.quiet:
        print(report)
    return 0


def add_sweep_parser(sub) -> None:
    """Register ``wavesim sweep`` on an argparse sub-parser collection."""
    p = sub.add_parser(
        "sweep",
        help="run a parameter sweep (dask.distributed) into one zarr store",
        description="Run every member of a sweep file (a base scenario and the scenario keys to "
        "vary) on a dask.distributed LocalCluster, an existing scheduler, or in this process, "
        "and write one zarr store with a member dimension, a status per member and the "
        "recorded metrics or fields.",
    )
    p.add_argument("sweepfile", type=Path, help="sweep TOML file ([sweep], [grid], ...)")
    p.add_argument("-o", "--output", type=Path, required=True, help="sweep store (zarr)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of the LocalCluster (default: the CPUs available); "
                   "0 runs the members in this process")  # fmt: skip
    p.add_argument("--threads-per-worker", type=int, default=1,
                   help="threads per worker process (default 1)")  # fmt: skip
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="use a running dask scheduler: tcp://host:port or its scheduler file "
                   "(workers must see the store's path, or pass --write-from client)")  # fmt: skip
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE",
                   help="override a value of the base scenario, e.g. --set run.duration=20 "
                   "(repeatable)")  # fmt: skip
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in STORE: skip the members already done")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument(
        "--write-from",
        choices=["workers", "client"],
        default="workers",
        help="who writes a member's data: the worker (default) or this process",
    )
    p.add_argument("--dashboard", action="store_true",
                   help="serve the LocalCluster's dask dashboard (needs bokeh)")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_sweep)
