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

With ``recording`` instead of ``scenario`` and ``target``, the lattice is built from a recording
(one oscillator per pixel; :func:`wavesim.recordings.fit.fit_recording`), fitted on ``train`` and
scored on held-out forecasts against copy-last-frame, the mean of the context frames and a ridge
autoregressive baseline::

    [fit]
    recording = "ferret_vsd.nwb"   # any file wavesim.recordings.load reads
    series = "vsd"                 # optional: which series (NWB), variable or array
    dx = 0.05                      # optional: mm per pixel (else the lattice works in pixels)
    rate = 1629.73                 # optional: Hz, when the file has none
    baseline = [150.0, 200.0]      # optional: subtract each pixel's mean over this window (ms)
    sigma = 1.0                    # optional: spatial smoothing (units of x/y); 0 for none
    train = [240.0, 280.0]         # the fit window (ms)
    forecast_frames = 20           # frames per forecast; test windows follow the fit window
    learn = ["w", "omega2", "gamma", "bias"]
    per_site = ["bias"]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

__all__ = ["FIT_KEYS", "RECORDING_KEYS", "add_fit_parser", "load_fit_file"]

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

#: Keys of a [fit] table with a ``recording`` (replacing ``scenario`` and ``target``).
RECORDING_KEYS = {
    "recording": str,
    "series": str,
    "dx": float,
    "rate": float,
    "baseline": list,
    "sigma": float,
    "train": list,
    "forecast_frames": int,
    "test": list,
    "n_test": int,
    "context": int,
    "stride": int,
    "substeps": int,
    "activation": str,
    "ar_orders": list,
    "learn": list,
    "per_site": list,
    "optimizer": str,
    "steps": int,
    "w_symmetry": str,
    "w_zero_sum": bool,
    "scenario_out": str,
    "checkpoint": int,
    "flush_every": int,
    "start": dict,
}


def _check_types(path, cfg: dict, keys: dict, what: str) -> None:
    for key, value in cfg.items():
        if key not in keys:
            raise ValueError(f"{path}: [fit] unknown key {key!r}{what}; known: {sorted(keys)}")
        want = keys[key]
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ValueError(
                f"{path}: [fit] {key} expected a {want.__name__}, got {type(value).__name__} "
                f"({value!r})"
            )


def _interval(path, cfg, key) -> tuple[float, float]:
    value = cfg[key]
    if len(value) != 2 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise ValueError(f"{path}: [fit] {key} expected [start, stop] in ms, got {value!r}")
    return float(value[0]), float(value[1])


def _recording_kwargs(path: Path, cfg: dict) -> dict:
    """Keyword arguments of :func:`wavesim.recordings.fit.fit_recording` from a [fit] table."""
    for key in ("scenario", "target", "observe", "warmup_ms"):
        if key in cfg:
            raise ValueError(
                f"{path}: [fit] {key} cannot be combined with recording (the lattice and the "
                "target come from the recording)"
            )
    _check_types(path, cfg, RECORDING_KEYS, " with a recording")
    if "train" not in cfg:
        raise ValueError(
            f"{path}: [fit] train = [start, stop] (ms) is required with a recording: the "
            "interval the lattice is fitted on"
        )
    base = path.parent
    out = {k: v for k, v in cfg.items() if k not in ("recording", "scenario_out")}
    out["recording"] = base / cfg["recording"]
    out["train"] = _interval(path, cfg, "train")
    if "baseline" in cfg:
        out["baseline"] = _interval(path, cfg, "baseline")
    if "forecast_frames" in out:
        out["horizon"] = out.pop("forecast_frames")
    if "test" in out:
        out["test"] = [float(v) for v in out["test"]]
    for key in ("learn", "per_site", "ar_orders"):
        if key in out:
            out[key] = tuple(out[key])
    if "scenario_out" in cfg:
        out["scenario_out"] = base / cfg["scenario_out"]
    return out


def load_fit_file(path) -> dict:
    """Read and check a fit file; return the keyword arguments of :func:`wavesim.learn.fit`
    (or, with a ``recording`` key, of :func:`wavesim.recordings.fit.fit_recording`, including
    ``recording``).

    Raises
    ------
    ValueError
        Naming the file and the key that is missing, unknown or of the wrong type.
    """
    from wavesim.scenario import read_table_file

    path = Path(path)
    cfg = read_table_file(path, "fit", "fit file")
    if "recording" in cfg:
        return _recording_kwargs(path, cfg)
    for key in ("scenario", "target"):
        if key not in cfg:
            raise ValueError(
                f"{path}: [fit] {key} is required (a path relative to the fit file), or give a "
                "recording"
            )
    _check_types(path, cfg, FIT_KEYS, "")
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
    from wavesim.bridge.cli import cmd_fit_bridge, is_bridge_file
    from wavesim.learn.fitting import fit

    if is_bridge_file(args.fitfile):  # a [bridge] configuration: train an encoder/decoder model
        return cmd_fit_bridge(args)
    kwargs = load_fit_file(args.fitfile)
    store = Path(args.output)
    kwargs.setdefault(
        "scenario_out", store.with_name(store.name.removesuffix(".zarr") + ".fitted.toml")
    )
    if "recording" in kwargs:
        return _cmd_fit_recording(kwargs, store, args)
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


def _cmd_fit_recording(kwargs, store: Path, args) -> int:
    from wavesim.recordings.fit import fit_recording

    try:
        res = fit_recording(
            kwargs.pop("recording"),
            store=store,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=not args.quiet,
            threads=args.threads,
            **kwargs,
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: the fit store {store} keeps every checkpointed iteration; "
            "continue with --resume",
            file=sys.stderr,
        )
        return 130
    if not args.quiet:
        fr = res.fit
        ta, tb = res.train
        print(
            f"fit: {res.info['train_windows']} windows of {res.skill.attrs['horizon']} frames in "
            f"{ta:g}-{tb:g} ms, {len(fr.history)} iterations, loss {fr.start_loss:.4g} -> "
            f"{fr.loss:.4g} in {fr.seconds:.1f} s"
        )
        for name, value in res.values.items():
            if name in fr.space.names_learnable:
                if np.ndim(value) == 0:
                    print(f"  {name:8s} {float(value):.6g}")
                elif name in ("w", "wv"):
                    rows = np.array2string(np.asarray(value), precision=4, suppress_small=True)
                    print(f"  {name:8s} " + rows.replace("\n", "\n" + " " * 11))
                else:
                    print(
                        f"  {name:8s} map {list(np.shape(value))}, mean {float(np.mean(value)):.6g}"
                    )
        origins = ", ".join(f"{float(o):.1f}" for o in res.skill["origin"].values)
        print(f"held-out forecasts from {origins} ms ({res.ridge_ar!r}):")
        print(res.table())
        print(f"history and trajectory: {store}")
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
