"""Command-line interface: ``wavesim run | validate | info | plot | analyze | fit | sweep |
forecast``."""

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
    if getattr(args, "file", None) is not None:
        from wavesim.recordings.loaders import describe_file

        print(describe_file(args.file))
        return 0
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


#: What ``wavesim analyze`` can write, as groups ``analysis/<name>``.
ANALYZE_GROUPS = ("summary", "singularities", "tracks", "plane_wave", "patterns", "phase")
ANALYZE_DEFAULT = ("summary", "singularities", "tracks", "plane_wave", "patterns")


def _analysis_phase(ds, args):
    """``(phase DataArray, method, band)`` of a store, as chosen by ``--phase``/``--band``."""
    from wavesim.analysis.phase import (
        analytic_phase,
        demodulated_phase,
        gate_phase,
        generalized_phase,
        oscillator_amplitude,
        oscillator_phase,
        velocity_variable,
    )

    if not (args.min_amplitude >= 0 and args.min_amplitude < 1):
        raise ValueError(
            f"--min-amplitude must be a fraction in [0, 1) of each frame's largest amplitude, "
            f"got {args.min_amplitude:g}"
        )

    try:
        velocity_variable(ds)
        has_velocity = True
    except KeyError:
        has_velocity = False
    method = args.phase
    band = tuple(args.band) if args.band else None
    if method is None and args.frequency is not None:
        method = "demodulated"
    if (method == "demodulated") != (args.frequency is not None):
        raise ValueError(
            "--phase demodulated needs --frequency HZ (the drive frequency), and --frequency "
            "applies to --phase demodulated only"
        )
    if method == "demodulated":
        if band or args.omega is not None:
            raise ValueError("--band and --omega do not apply to --phase demodulated")
        if args.start is not None or args.stop is not None:
            ds = ds.sel(time=slice(args.start, args.stop))
        out = demodulated_phase(ds, args.frequency, periods=args.periods)
        phase = out["phase"]
        if args.min_amplitude:
            phase = gate_phase(phase, out["amplitude"], args.min_amplitude)
        return phase, method, None
    if method is None:
        method = "analytic" if band else ("oscillator" if has_velocity else None)
    if method is None:
        raise ValueError(
            f"{args.store} has no field_dot (ydot was not recorded), so the oscillator phase is "
            "not available: pass --phase analytic --band LO HI (in Hz), or --phase generalized"
        )
    if method == "oscillator":
        if band:
            raise ValueError(
                "--band applies to --phase analytic or generalized (band-pass in Hz); the "
                "oscillator phase needs no band"
            )
        if args.omega is not None and args.omega <= 0:
            raise ValueError(
                f"--omega must be a positive angular frequency in rad/ms, got {args.omega}"
            )
        if args.start is not None or args.stop is not None:  # read only the frames analysed
            ds = ds.sel(time=slice(args.start, args.stop))
        try:
            phase = oscillator_phase(ds, args.omega)
        except ValueError as exc:
            raise ValueError(f"{exc}; pass --omega W (rad/ms)") from exc
        if args.min_amplitude:
            phase = gate_phase(phase, oscillator_amplitude(ds, args.omega), args.min_amplitude)
        return phase, method, None
    if args.omega is not None:
        raise ValueError("--omega applies to --phase oscillator only")
    if method == "analytic" and band is None:
        raise ValueError("--phase analytic needs --band LO HI: the pass band in Hz")
    if method == "generalized" and band is None:
        band = (5.0, 40.0)
    times = ds["time"].values
    if band is not None and times.size >= 2:
        duration = float(times[-1] - times[0])  # ms
        lo, hi = band
        if not 0 < lo < hi:
            raise ValueError(f"--band must be LO HI in Hz with 0 < LO < HI; got {lo:g} {hi:g}")
        if 1000.0 / lo > duration:
            raise ValueError(
                f"--band {lo:g} {hi:g}: bands are in Hz, and {lo:g} Hz has a period of "
                f"{1000.0 / lo:g} ms, longer than the record ({duration:g} ms of frames every "
                f"{float(times[1] - times[0]):g} ms, Nyquist {500.0 / float(times[1] - times[0]):g}"
                " Hz)"
            )
    func = analytic_phase if method == "analytic" else generalized_phase
    out = func(ds, band)
    phase = out["phase"]
    if args.min_amplitude:
        phase = gate_phase(phase, out["amplitude"], args.min_amplitude)
    return phase, method, [float(b) for b in band]


def _format_summary(summary, title: str) -> str:
    import numpy as np

    s = summary

    def f(name, fmt=".3g"):
        v = float(s[name])
        return "nan" if not np.isfinite(v) else format(v, fmt)

    rows = [title]
    vu = s["speed_median"].attrs.get("units", "mm/ms")
    rows.append(
        f"  median local speed       {f('speed_median')} {vu} "
        f"(IQR {f('speed_q25')} to {f('speed_q75')})"
    )
    rows.append(
        f"  mean direction           {np.rad2deg(float(s['direction_circular_mean'])):.1f} deg "
        f"(resultant length {f('direction_resultant_length', '.2f')})"
    )
    if "plane_wave_speed" in s:
        sp = (
            np.nanmedian(s["plane_wave_speed"].values)
            if np.isfinite(s["plane_wave_speed"]).any()
            else np.nan
        )
        dr = s["plane_wave_direction"].values
        dr = dr[np.isfinite(dr)]
        mean_dir = np.rad2deg(np.angle(np.exp(1j * dr).mean())) if dr.size else np.nan
        quality = np.nanmedian(s["plane_wave_fit_quality"].values)
        rows.append(
            f"  plane-wave fit           median {sp:.3g} {vu}, mean direction {mean_dir:.1f} deg, "
            f"median fit quality {quality:.2f}"
        )
    rows.append(f"  PGD                      {f('pgd_mean', '.2f')} mean")
    rows.append(
        f"  singularities per frame  {f('singularities_per_frame', '.2f')} "
        f"(+1: {float(s['singularities_positive'].mean()):.2f}, "
        f"-1: {float(s['singularities_negative'].mean()):.2f})"
    )
    if int(s["n_tracks"]):
        rows.append(
            f"  tracks                   {int(s['n_tracks'])}, mean lifetime {f('lifetime_mean')} "
            f"ms ({int(s['n_tracks_censored'])} censored: present in the first or last frame)"
        )
    else:
        rows.append("  tracks                   0")
    events = [
        f"{k} {int(n)}"
        for k, n in zip(s["event_kind"].values, s["event_count"].values, strict=True)
        if n
    ]
    rows.append(f"  events                   {', '.join(events) or 'none'}")
    if "pattern_occupancy" in s:
        occ = [
            f"{k} {v:.2f}"
            for k, v in zip(s["category"].values, s["pattern_occupancy"].values, strict=True)
            if v > 0
        ]
        rows.append(
            f"  pattern occupancy        {', '.join(occ) or 'none'} "
            f"(fraction of {s.attrs['pattern_frame_pairs']} frame pairs)"
        )
    else:
        rows.append("  pattern occupancy        not computed (--patterns on to compute it)")
    return "\n".join(rows)


def _is_wavesim_store(path: Path) -> bool:
    if not (path.is_dir() and (path / "zarr.json").is_file()):
        return False
    import json

    try:
        attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    except (OSError, ValueError):
        return False
    return "wavesim_store" in attrs


def _open_recording(args):
    """The recording ``args.store`` when it is not a wavesim store (else None)."""
    path = Path(args.store)
    recording_flags = [f for f in ("series", "dx", "rate") if getattr(args, f) is not None]
    if _is_wavesim_store(path):
        if recording_flags:
            raise ValueError(
                f"--{recording_flags[0]} applies to recordings; {path} is a wavesim store"
            )
        return None
    if not path.exists():
        raise FileNotFoundError(f"no store or recording at {path}: the path does not exist")
    from wavesim.recordings.loaders import load

    if args.output is None:
        raise ValueError(
            f"{path} is a recording, and wavesim does not write into recordings: pass "
            "-o OUT.zarr, a new wavesim store that will hold the recording and the analysis"
        )
    kwargs = {"member": args.member} if args.member is not None else {}
    ds = load(path, series=args.series, dx=args.dx, rate=args.rate, **kwargs)
    if ds["field"].dims != ("time", "y", "x"):
        raise ValueError(
            f"{path}: series {ds.attrs.get('series')!r} is an electrode array (time, channel); "
            "the wave analyzers need a grid: map it with wavesim.recordings.to_grid and save it "
            "with wavesim.recordings.save_recording first"
        )
    return ds


def _cmd_analyze(args) -> int:
    from wavesim.analysis.summary import _store_periodic, analyze_waves, write_analysis
    from wavesim.store import open_store

    what = tuple(dict.fromkeys(args.what or ANALYZE_DEFAULT))
    recording = _open_recording(args)
    ds = recording if recording is not None else open_store(args.store)
    if "time" not in ds.dims or "y" not in ds.dims or "x" not in ds.dims:
        raise ValueError(
            f"{args.store} has no full-field recording (dims time, y, x); record.fields must "
            "hold y (and ydot for the oscillator phase)"
        )
    if "member" in ds.dims and recording is None:
        if args.member is None:
            raise ValueError(
                f"{args.store} is a batched store ({ds.sizes['member']} members); choose one "
                "with --member M"
            )
        if not 0 <= args.member < ds.sizes["member"]:
            raise ValueError(
                f"--member {args.member} is out of range: the store has members 0.."
                f"{ds.sizes['member'] - 1}"
            )
        ds = ds.isel(member=args.member)
    elif args.member not in (None, 0) and recording is None:
        raise ValueError(f"--member {args.member}: {args.store} is not a batched store")
    if args.pattern_stride < 1:
        raise ValueError(f"--pattern-stride must be >= 1, got {args.pattern_stride}")

    phase, method, band = _analysis_phase(ds, args)
    if args.start is not None or args.stop is not None:
        phase = phase.sel(time=slice(args.start, args.stop))
        if phase.sizes["time"] < 2:
            raise ValueError(
                f"--start/--stop keep {phase.sizes['time']} frame(s) of {args.store} (times "
                f"{float(ds['time'][0]):g} to {float(ds['time'][-1]):g} ms); need at least 2"
            )
    if "reliable" in phase.coords and not bool(phase["reliable"].any()):
        edge = phase["reliable"].attrs.get("edge", float("nan"))
        raise ValueError(
            f"no frame of {args.store} is reliable with --band {band[0]:g} {band[1]:g} Hz: the "
            f"filter's edges ({edge:g} ms at each end) cover the analysed record; analyse a "
            "longer record or a higher/wider band"
        )
    if "mask" in ds.data_vars:
        phase = phase.where(ds["mask"] > 0)
    ny, nx = phase.sizes["y"], phase.sizes["x"]
    patterns = {"auto": None, "on": True, "off": False}[args.patterns]
    if "patterns" in what and args.what and patterns is False:
        raise ValueError("--what patterns conflicts with --patterns off")
    if "patterns" in what and args.what and patterns is None:
        patterns = True  # asked for explicitly
    results = analyze_waves(
        phase,
        periodic=_store_periodic(ds),
        patterns=patterns,
        pattern_stride=args.pattern_stride,
        progress=not args.quiet,
    )
    summary = results["summary"]
    if "phase" in what:
        results["phase"] = phase.to_dataset(name="phase")
    chosen = {k: results[k] for k in what if k in results}
    provenance = {
        "phase_method": method,
        "band": band,
        "band_units": "Hz",
        "omega": args.omega,
        "start": args.start,
        "stop": args.stop,
        "member": args.member,
    }
    out = args.output if args.output is not None else args.store
    if recording is not None:
        from wavesim.recordings.export import save_recording

        provenance.update(series=args.series, dx=args.dx, rate=args.rate)
        # A new wavesim store holding the recording; the analysis groups go next to it.
        save_recording(recording, out, overwrite=args.overwrite)
        written = write_analysis(chosen, out, attrs={"analysis": provenance})
    else:
        ds.close()
        written = write_analysis(
            chosen,
            out,
            attrs={"analysis": provenance},
            new_store=args.output is not None,
            overwrite=args.overwrite,
        )
    times = summary["time"].values
    title = (
        f"{args.store}: {method} phase"
        + (f" (band {band[0]:g}-{band[1]:g} Hz)" if band else "")
        + f", {times.size} frames from {times[0]:g} to {times[-1]:g} ms, {ny} x {nx} sites"
    )
    if not args.quiet:
        print(_format_summary(summary, title))
        skipped = [k for k in what if k not in results]
        if skipped:
            print(f"not computed: {', '.join(skipped)} (patterns are off for lattices over "
                  f"128 x 128 sites unless --patterns on)")  # fmt: skip
        print(f"wrote {', '.join(written)} to {out}")
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

    p = sub.add_parser(
        "info",
        help="versions, threads, SVML status; or what a recording or store FILE holds",
    )
    p.add_argument("file", type=Path, nargs="?", default=None,
                   help="a recording (NWB, zarr, NetCDF, npy/npz, mat, TIFF) or store: list its "
                   "series, shapes, rates, spacing, electrodes or variables")  # fmt: skip
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("plot", help="plot a store: field, phase, orientation or animation")
    p.add_argument("store", type=Path)
    p.add_argument("--what", default="field",
                   choices=["field", "phase", "orientation", "animation"])  # fmt: skip
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="png/pdf/svg (animation: gif/mp4)")  # fmt: skip
    p.add_argument("--time", type=float, default=None, help="time in ms (default: last)")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser(
        "analyze",
        help="analyse the waves of a store: speeds, directions, singularities, patterns",
        description="Compute the phase of a store, run the wave analyzers and write their "
        "results as groups analysis/<name> inside the store (or into a new store with -o); "
        "print a summary table.",
    )
    p.add_argument("store", type=Path,
                   help="wavesim zarr store (from wavesim run) or a recording (NWB, zarr, "
                   "NetCDF, npy/npz, mat, TIFF; see docs/recordings.md)")  # fmt: skip
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="write the analysis into this new zarr store instead of STORE "
                   "(required for recordings: the new store holds the recording and the "
                   "analysis)")  # fmt: skip
    p.add_argument(
        "--series",
        default=None,
        help="recording: the series or variable to analyse (see wavesim info FILE)",
    )
    p.add_argument("--dx", type=float, default=None, metavar="MM",
                   help="recording: pixel spacing in mm (default: from the file; without it "
                   "speeds are in px/ms)")  # fmt: skip
    p.add_argument("--rate", type=float, default=None, metavar="HZ",
                   help="recording: sampling rate in Hz (default: from the file)")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an existing -o store")
    p.add_argument("--phase", choices=["oscillator", "analytic", "generalized", "demodulated"],
                   default=None,
                   help="phase estimator (default: oscillator when ydot is recorded; analytic "
                   "with --band; demodulated with --frequency)")  # fmt: skip
    p.add_argument("--frequency", type=float, default=None, metavar="HZ",
                   help="drive frequency in Hz for --phase demodulated (lock-in over a sliding "
                   "window of --periods whole periods)")  # fmt: skip
    p.add_argument("--periods", type=int, default=1,
                   help="window of --phase demodulated, in periods (default 1)")  # fmt: skip
    p.add_argument("--band", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                   help="band-pass in Hz for --phase analytic/generalized")  # fmt: skip
    p.add_argument("--omega", type=float, default=None,
                   help="angular frequency (rad/ms) for the oscillator phase (default: "
                   "sqrt(omega2) of the scenario)")  # fmt: skip
    p.add_argument("--what", nargs="+", choices=list(ANALYZE_GROUPS), default=None,
                   help="groups to write (default: " + " ".join(ANALYZE_DEFAULT) + ")")  # fmt: skip
    p.add_argument("--patterns", choices=["auto", "on", "off"], default="auto",
                   help="optical-flow pattern classification (auto: up to 128 x 128)")  # fmt: skip
    p.add_argument("--pattern-stride", type=int, default=1,
                   help="classify every N-th frame pair only (optical flow is slow)")  # fmt: skip
    p.add_argument("--min-amplitude", type=float, default=0.0, metavar="FRACTION",
                   help="ignore sites whose amplitude is below this fraction of the frame's "
                   "largest (their phase is noise); default 0: keep every site")  # fmt: skip
    p.add_argument("--start", type=float, default=None, help="first time analysed (ms)")
    p.add_argument("--stop", type=float, default=None, help="last time analysed (ms)")
    p.add_argument("--member", type=int, default=None, help="member of a batched store")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or table")
    p.set_defaults(func=_cmd_analyze)

    from wavesim.learn.cli_fit import add_fit_parser

    add_fit_parser(sub)
    from wavesim.sweep.cli import add_sweep_parser

    add_sweep_parser(sub)
    from wavesim.bridge.cli import add_forecast_parser

    add_forecast_parser(sub)
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
