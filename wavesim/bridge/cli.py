"""Bridge configuration files and the commands ``wavesim fit BRIDGE.toml`` and
``wavesim forecast MODEL_STORE``.

A bridge configuration is TOML with a ``[bridge]`` table and four sub-tables (every key
optional unless marked; paths are relative to the file)::

    [bridge.dataset]                 # make_splits(generator, n_train, n_validation, n_test, ...)
    generator = "rotating_bars"      # required: a name in wavesim.bridge.DATASETS
    n_train = 256
    n_validation = 32
    n_test = 64
    seed = 0
    size = 32                        # any other key is a generator argument:
    frames = 36                      #   a number (fixed), a list (one value drawn per sequence)
    angular_velocity = [-20.0, 20.0] #   or {uniform = [low, high]}
    [bridge.dataset.test]            # optional per-split overrides (held-out speeds, ...)
    frames = 72

    [bridge.encoder]
    kind = "linear"                  # or "receptive_field"
    scale = 1.0                      # linear: initial weight scale
    bias = true
    # receptive_field: map = "random" | "crystal", map_wavelength (sites), map_seed,
    # wavelength (px), sigma (px), response = "simple" | "energy", gain

    [bridge.decoder]
    velocity = true                  # read y and dy/dt
    output = "sigmoid"               # or "identity"
    bias_init = "mean"               # initial pixel bias: "mean" (the mean training pixel,
                                     #   through the logit for sigmoid) or a number

    [bridge.lattice]
    shape = [32, 32]
    coupling = 1.0                   # initial stencil: coupling x the 5-point Laplacian
    omega2 = 1.0
    gamma = 0.1
    dt = 0.125
    steps_per_frame = 8
    learn = ["w", "omega2", "gamma"]
    w_symmetry = "none"
    velocity_coupling = false        # also learn a velocity stencil
    dtype = "float32"

    [bridge.training]
    observe = 18                     # required
    horizon = 18                     # required
    loss = "mse"                     # or "bce"
    reconstruction = 0.0
    batch_size = 16
    lr = 0.003
    iterations = 400
    validate_every = 25
    patience = 8
    seed = 0

``wavesim fit BRIDGE.toml -o MODEL.zarr`` generates the dataset, builds the model, trains it
(resumable with ``--resume``) and evaluates it on the test split against the baselines.
``wavesim forecast MODEL.zarr [--dataset PATH]`` evaluates a trained model on a dataset (by
default the test split of the configuration stored with the model) and writes the forecasts and
metrics.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import numpy as np

__all__ = [
    "BRIDGE_TABLES",
    "add_forecast_parser",
    "build_model",
    "cmd_fit_bridge",
    "cmd_forecast",
    "is_bridge_file",
    "load_bridge_file",
    "make_dataset",
]

#: Sub-tables of [bridge] and their known keys with types (None: any generator argument).
BRIDGE_TABLES = {
    "dataset": None,
    "encoder": {
        "kind": str,
        "scale": float,
        "bias": bool,
        "seed": int,
        "map": str,
        "map_wavelength": float,
        "map_seed": int,
        "wavelength": float,
        "sigma": float,
        "response": str,
        "gain": float,
    },
    "decoder": {
        "velocity": bool,
        "output": str,
        "bias": bool,
        "bias_init": (float, str),
        "scale": float,
        "seed": int,
    },
    "lattice": {
        "shape": list,
        "dx": float,
        "coupling": float,
        "omega2": float,
        "gamma": float,
        "dt": float,
        "steps_per_frame": int,
        "learn": list,
        "w_symmetry": str,
        "per_site": list,
        "velocity_coupling": bool,
        "dtype": str,
        "threads": int,
    },
    "training": {
        "observe": int,
        "horizon": int,
        "loss": str,
        "reconstruction": float,
        "batch_size": int,
        "lr": float,
        "clip_norm": float,
        "iterations": int,
        "validate_every": int,
        "patience": int,
        "seed": int,
        "schedule": str,
    },
}

_SPLIT_COUNTS = {"n_train": 256, "n_validation": 32, "n_test": 64}


def is_bridge_file(path) -> bool:
    """Whether a TOML file holds a ``[bridge]`` table (a bridge configuration)."""
    try:
        return "bridge" in tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False


def _typed(path, table, key, value, want):
    wants = want if isinstance(want, tuple) else (want,)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if float in wants and number:
        return float(value)
    if not any(isinstance(value, w) and not (w is int and isinstance(value, bool)) for w in wants):
        names = " or ".join(w.__name__ for w in wants)
        raise ValueError(
            f"{path}: [bridge.{table}] {key} expected a {names}, got "
            f"{type(value).__name__} ({value!r})"
        )
    return value


def load_bridge_file(path) -> dict:
    """Read and check a bridge configuration; return its tables as a dict.

    Raises
    ------
    ValueError
        Naming the file, the table and the key that is missing, unknown or of the wrong type.
    """
    from wavesim.scenario import read_table_file

    path = Path(path)
    cfg = read_table_file(path, "bridge", "bridge configuration")
    unknown = sorted(set(cfg) - set(BRIDGE_TABLES))
    if unknown:
        raise ValueError(
            f"{path}: unknown table(s) [bridge.{unknown[0]}]; known: "
            f"{', '.join('[bridge.' + t + ']' for t in BRIDGE_TABLES)}"
        )
    out = {}
    for table, keys in BRIDGE_TABLES.items():
        sub = dict(cfg.get(table, {}))
        if keys is not None:
            for key, value in sub.items():
                if key not in keys:
                    raise ValueError(
                        f"{path}: [bridge.{table}] unknown key {key!r}; known: {sorted(keys)}"
                    )
                sub[key] = _typed(path, table, key, value, keys[key])
        out[table] = sub
    if "generator" not in out["dataset"]:
        raise ValueError(f"{path}: [bridge.dataset] generator is required (e.g. 'rotating_bars')")
    bias_init = out["decoder"].get("bias_init", "mean")
    if isinstance(bias_init, str) and bias_init != "mean":
        raise ValueError(
            f"{path}: [bridge.decoder] bias_init expected a number or 'mean', got {bias_init!r}"
        )
    for key in ("observe", "horizon"):
        if key not in out["training"]:
            raise ValueError(f"{path}: [bridge.training] {key} is required (frames)")
    return out


def _generator_args(params: dict) -> dict:
    """TOML values to generator arguments: ``{uniform = [a, b]}`` -> (a, b), lists stay lists."""
    out = {}
    for k, v in params.items():
        if isinstance(v, dict) and set(v) == {"uniform"}:
            out[k] = tuple(v["uniform"])
        elif isinstance(v, dict) and set(v) == {"choice"}:
            out[k] = list(v["choice"])
        else:
            out[k] = v
    return out


def make_dataset(config: dict):
    """The :class:`~wavesim.bridge.Splits` of a configuration's ``[bridge.dataset]`` table."""
    from wavesim.bridge.datasets import SPLIT_NAMES, make_splits

    ds = dict(config["dataset"])
    generator = ds.pop("generator")
    counts = {k: int(ds.pop(k, v)) for k, v in _SPLIT_COUNTS.items()}
    seed = ds.pop("seed", 0)
    split_params = {name: _generator_args(ds.pop(name)) for name in SPLIT_NAMES if name in ds}
    return make_splits(
        generator,
        counts["n_train"],
        counts["n_validation"],
        counts["n_test"],
        seed=seed,
        split_params=split_params,
        **_generator_args(ds),
    )


def _decoder_bias(value, output: str, mean_pixel) -> float:
    """The decoder's initial bias: a number, or ``"mean"`` (the mean training pixel, through the
    logit for a sigmoid output; 0 when no mean is given)."""
    if not isinstance(value, str):
        return float(value)
    if value != "mean":
        raise ValueError(f"[bridge.decoder] bias_init: expected a number or 'mean', got {value!r}")
    if mean_pixel is None:
        return 0.0
    from wavesim.bridge.decoders import mean_bias

    return mean_bias(mean_pixel, output)


def build_model(config: dict, frame_shape, mean_pixel: float | None = None):
    """The untrained :class:`~wavesim.bridge.model.BridgeModel` of a configuration.

    ``mean_pixel`` (the mean of the training frames) sets the decoder's initial bias when
    ``[bridge.decoder] bias_init`` is ``"mean"`` (the default): the untrained model then forecasts
    the mean frame rather than grey.
    """
    from wavesim.bridge.decoders import LinearDecoder
    from wavesim.bridge.encoders import LinearEncoder, ReceptiveFieldEncoder
    from wavesim.bridge.model import BridgeModel, nwm_params
    from wavesim.lattice import Lattice

    lat = dict(config["lattice"])
    shape = tuple(int(s) for s in lat.get("shape", frame_shape))
    enc_cfg = dict(config["encoder"])
    kind = enc_cfg.pop("kind", "linear")
    if kind == "linear":
        for key in ("map", "map_wavelength", "map_seed", "wavelength", "sigma", "response", "gain"):
            if key in enc_cfg:
                raise ValueError(f"[bridge.encoder] {key} is for kind = 'receptive_field'")
        enc = LinearEncoder(frame_shape, shape, **enc_cfg)
    elif kind == "receptive_field":
        from wavesim.maps import pinwheel_crystal, random_orientation_map

        kind_map = enc_cfg.pop("map", "random")
        lam = float(enc_cfg.pop("map_wavelength", max(shape) / 3))
        mseed = int(enc_cfg.pop("map_seed", 0))
        if kind_map == "random":
            theta = random_orientation_map(shape, lam, seed=mseed)
        elif kind_map == "crystal":
            theta = pinwheel_crystal(shape, lam)
        else:
            raise ValueError(
                f"[bridge.encoder] map: expected 'random' or 'crystal', got {kind_map!r}"
            )
        for key in ("scale", "seed"):
            enc_cfg.pop(key, None)
        enc = ReceptiveFieldEncoder(np.asarray(theta), frame_shape, **enc_cfg)
    else:
        raise ValueError(
            f"[bridge.encoder] kind: expected 'linear' or 'receptive_field', got {kind!r}"
        )
    dec_cfg = dict(config["decoder"])
    dec_cfg["bias_init"] = _decoder_bias(
        dec_cfg.pop("bias_init", "mean"), dec_cfg.get("output", "sigmoid"), mean_pixel
    )
    dec = LinearDecoder(shape, frame_shape, **dec_cfg)
    params = nwm_params(
        coupling=lat.get("coupling", 0.5),
        omega2=lat.get("omega2", 1.0),
        gamma=lat.get("gamma", 0.5),
        velocity=lat.get("velocity_coupling", False),
    )
    lattice = Lattice(shape, dx=lat.get("dx", 0.1), boundary="periodic")
    return BridgeModel(
        enc,
        dec,
        params,
        lattice=lattice,
        dt=lat.get("dt", 0.125),
        steps_per_frame=lat.get("steps_per_frame", 4),
        learn=tuple(lat.get("learn", ("w", "omega2", "gamma"))),
        w_symmetry=lat.get("w_symmetry", "none"),
        per_site=tuple(lat.get("per_site", ())),
        dtype=np.dtype(lat.get("dtype", "float32")),
        threads=lat.get("threads", 1),
    )


def cmd_fit_bridge(args) -> int:
    """``wavesim fit BRIDGE.toml -o MODEL.zarr``: train, then evaluate on the test split."""
    from wavesim.bridge.evaluation import baselines, evaluate, results_table
    from wavesim.bridge.training import train

    config = load_bridge_file(args.fitfile)
    splits = make_dataset(config)
    frame_shape = tuple(splits.train.sizes[d] for d in ("y", "x"))
    model = build_model(config, frame_shape, float(splits.train["frames"].mean()))
    if getattr(args, "threads", None):
        model.threads = args.threads
    store = Path(args.output)
    kw = dict(config["training"])
    try:
        res = train(
            model,
            splits,
            store=store,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=not args.quiet,
            attrs={"bridge_config": json.dumps(config)},
            **kw,
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: the model store {store} keeps the last checkpoint; continue with "
            "--resume",
            file=sys.stderr,
        )
        return 130
    if not args.quiet:
        print(
            f"trained {res.iterations} iterations in {res.seconds:.1f} s "
            f"({res.sequences_per_second:.1f} sequences/s); best validation loss "
            f"{res.best_validation:.4g} at iteration {res.best_iteration}"
        )
        p = model.params
        print(f"  lattice: omega2 {np.mean(p.omega2):.4g}, gamma {np.mean(p.gamma):.4g}")
        print(
            "  W = "
            + np.array2string(p.w, precision=3, suppress_small=True).replace("\n", "\n      ")
        )
        if splits.test.sizes["sequence"]:
            fc = {"lattice": model, **baselines(splits)}
            result = evaluate(fc, splits.test, kw["observe"], kw["horizon"])
            print(f"test split ({splits.test.sizes['sequence']} sequences):")
            print(results_table(result, steps=[1, kw["horizon"]]))
        print(f"model store: {store}  (wavesim forecast {store})")
    return 0


def _load_dataset(path: Path, split: str):
    """A Dataset of sequences from a splits store, a zarr/NetCDF dataset or a bridge TOML."""
    import xarray as xr

    from wavesim.bridge.datasets import open_splits

    if path.suffix == ".toml":
        return make_dataset(load_bridge_file(path))[split]
    if path.is_dir():
        import zarr

        root = zarr.open_group(str(path), mode="r")
        if "wavesim_splits" in root.attrs:
            return open_splits(path)[split].load()
        return xr.open_zarr(str(path)).load()
    return xr.open_dataset(path).load()


def cmd_forecast(args) -> int:
    """``wavesim forecast MODEL.zarr``: forecasts and metrics of a trained model."""
    import zarr

    from wavesim.bridge.evaluation import baselines, evaluate, results_table
    from wavesim.bridge.training import open_model

    model = open_model(args.model, threads=args.threads or 1)
    attrs = zarr.open_group(str(args.model), mode="r").attrs
    training = json.loads(attrs["training"])
    stored = json.loads(attrs["bridge_config"]) if "bridge_config" in attrs else None
    if args.dataset is not None:
        data = _load_dataset(Path(args.dataset), args.split)
        train_data = None
    elif stored is not None:
        splits = make_dataset(stored)
        data = splits[args.split]
        train_data = splits.train
    else:
        raise ValueError(
            f"{args.model}: the model store has no bridge configuration; pass --dataset PATH"
        )
    observe = args.observe or training["observe"]
    horizon = args.horizon or training["horizon"]
    fc = {"lattice": model}
    if not args.no_baselines:
        fc.update(baselines(train_data))
    result = evaluate(fc, data, observe, horizon, keep_predictions=True)
    out = (
        Path(args.output)
        if args.output
        else Path(str(args.model).removesuffix(".zarr") + ".forecast.nc")
    )
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    result.attrs["model_store"] = str(args.model)
    result.to_netcdf(out) if out.suffix == ".nc" else result.to_zarr(out, mode="w")
    if not args.quiet:
        print(f"{data.sizes['sequence']} sequences, observe {observe}, forecast {horizon}:")
        print(results_table(result, steps=[1, horizon]))
        print(f"forecasts and metrics: {out}")
    return 0


def add_forecast_parser(sub) -> None:
    """Register ``wavesim forecast`` on an argparse sub-parser collection."""
    p = sub.add_parser("forecast", help="forecast sequences with a trained bridge model")
    p.add_argument("model", type=Path, help="model store written by 'wavesim fit BRIDGE.toml'")
    p.add_argument(
        "--dataset",
        type=Path,
        default=None,
        help="splits store, zarr/NetCDF dataset or bridge TOML (default: the test "
        "split of the model's configuration)",
    )
    p.add_argument("--split", default="test", choices=("train", "validation", "test"))
    p.add_argument("--observe", type=int, default=None, help="context frames (default: trained)")
    p.add_argument("--horizon", type=int, default=None, help="frames to forecast")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="output .nc or .zarr (default: MODEL.forecast.nc)",
    )
    p.add_argument("--no-baselines", action="store_true", help="only the model")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_forecast)
