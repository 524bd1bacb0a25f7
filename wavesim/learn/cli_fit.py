"""``wavesim fit FIT.toml -o STORE``: the fit configuration file and the command.

A fit file is TOML with one ``[fit]`` table (paths relative to the fit file)::

    [fit]
    scenario = "truth.toml"        # the lattice to fit (starting values, map, drive, seed)
    target = "truth.zarr"          # recorded data: a wavesim store (or any zarr/NetCDF Dataset)
    observe = "field"              # "field" (variable `field`) or "electrodes"
    learn = ["w", "kappa", "omega2", "gamma"]
    optimizer = "lbfgsb"           # or "adam" (lr, clip_norm)
    steps = 200
    w_zero_sum = true
    warmup_ms = 0.0
    scenario_out = "fitted.toml"   # default: <STORE>.fitted.toml next to the store

    [fit.start]                    # optional starting values (override the scenario's)
    omega2 = 0.8
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import numpy as np

__all__ = ["FIT_KEYS", "add_fit_parser", "load_fit_file"]

#: Keys of the [fit] table and their types.
FIT_KEYS = {
    "scenario": str,
    "target": str,
    "observe": str,
    "learn": list,
    "optimizer": str,
    "steps": int,
    "lr": float,
    "clip_norm": float,
    "w_symmetry": str,
    "w_zero_sum": bool,
    "positive": str,
    "per_site": list,
    "warmup_ms": float,
    "scenario_out": str,
    "checkpoint": int,
    "flush_every": int,
    "start": dict,
}


def load_fit_file(path) -> dict:
    """Read and check a fit file; return the keyword arguments of :func:`wavesim.learn.fitting`.

    Raises
    ------
    ValueError
        Naming the file and the key that is missing, unknown or of the wrong type.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"fit file {str(path)!r} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    if "fit" not in raw or not isinstance(raw["fit"], dict):
        raise ValueError(f"{path}: expected a [fit] table")
    extra = sorted(set(raw) - {"fit"})
    if extra:
        raise ValueError(f"{path}: unknown table(s) {extra}; only [fit] is read")
    cfg = dict(raw["fit"])
    for key in ("scenario", "target"):
        if key not in cfg:
            raise ValueError(f"{path}: [fit] {key} is required (a path relative to the fit file)")
    for key, value in cfg.items():
        if key not in FIT_KEYS:
            raise ValueError(f"{path}: [fit] unknown key {key!r}; known: {sorted(FIT_KEYS)}")
        want = FIT_KEYS[key]
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ValueError(
                f"{path}: [fit] {key} expected a {want.__name__}, got {type(value).__name__} "
                f"({value!r})"
            )
    base = path.parent
    out = {k: v for k, v in cfg.items() if k not in ("scenario", "target", "scenario_out")}
    out["scenario"] = base / cfg["scenario"]
    out["target"] = str(base / cfg["target"])
    if "scenario_out" in cfg:
        out["scenario_out"] = base / cfg["scenario_out"]
    if "learn" in out:
        out["learn"] = tuple(out["learn"])
    return out


def _fit(fit, kwargs, store, args):
    return fit(
        kwargs.pop("scenario"),
        kwargs.pop("target"),
        store=store,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.quiet,
        threads=args.threads,
        **kwargs,
    )


def _cmd_fit(args) -> int:
    from wavesim.learn.fitting import fit

    kwargs = load_fit_file(args.fitfile)
    store = Path(args.output)
    kwargs.setdefault(
        "scenario_out", store.with_name(store.name.removesuffix(".zarr") + ".fitted.toml")
    )
    try:
        res = _fit(fit, kwargs, store, args)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: the fit store {store} keeps every checkpointed iteration; "
            "continue with --resume",
            file=sys.stderr,
        )
        return 130
    if not args.quiet:
        print(
            f"fit: {len(res.history)} iterations, loss {res.start_loss:.4g} -> {res.loss:.4g} "
            f"in {res.seconds:.1f} s"
        )
        for name, value in res.values.items():
            if name in res.space.names_learnable:
                if isinstance(value, float):
                    print(f"  {name:8s} {value:.6g}")
                elif value.ndim == 2 and value.shape[0] <= 5 and name in ("w", "wv"):
                    rows = np.array2string(value, precision=4, suppress_small=True)
                    print(f"  {name:8s} " + rows.replace("\n", "\n" + " " * 11))
                else:
                    print(f"  {name:8s} map {list(value.shape)}, mean {float(value.mean()):.6g}")
        print(f"history and trajectory: {store}")
        if res.scenario_path is not None:
            print(f"fitted scenario: {res.scenario_path}  (wavesim run {res.scenario_path} -o ...)")
    return 0


def add_fit_parser(sub) -> None:
    """Register ``wavesim fit`` on an argparse sub-parser collection."""
    p = sub.add_parser("fit", help="fit a lattice's parameters to recorded data")
    p.add_argument("fitfile", type=Path, help="fit TOML file ([fit] table)")
    p.add_argument("-o", "--output", type=Path, required=True, help="fit store (zarr)")
    p.add_argument("--resume", action="store_true", help="continue the fit in the store")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--threads", type=int, default=None, help="kernel threads")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_cmd_fit)
