"""Running sweeps: serial reference, a real LocalCluster (2 worker processes), resuming after an
interrupt, failing members, an externally started scheduler, the command line.

Every sweep here is the bundled ``scenarios/sweep_base.toml`` shrunk to 16 x 16 sites and 6 ms
(2 x 2 coupling speeds x dampings, 2 seeds = 8 members; fields on a 2x-subsampled grid and
metrics). Same seeds must give bit-identical arrays wherever a member runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import wavesim
from wavesim.sweep import load_sweep, run_sweep, to_grid

pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
BASE = (ROOT / "scenarios" / "sweep_base.toml").as_posix()

SWEEP = f"""
[sweep]
scenario = "{BASE}"
record = ["metrics", "fields"]
metrics = ["speed_median", "singularity_count", "pattern_occupancy", "amplitude_rms",
           "pinwheel_density"]
analysis_start = 1.0

[set]
lattice.shape = [16, 16]
drive.position = [0.375, 0.375]
map.wavelength = 0.3
run.duration = 6.0
record.subsample = 2

[grid]
coupling.speed = [0.1, 0.2]
model.gamma = [0.1, 0.5]

[seeds]
n = 2
"""

#: Variables that hold results (the others, elapsed/worker/attempts, describe how they were run).
RESULTS = ("field", "field_dot", "speed_median", "singularity_count", "pattern_occupancy",
           "amplitude_rms", "pinwheel_density", "status", "error")  # fmt: skip


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "tiny.toml"
    path.write_text(SWEEP)
    return path


@pytest.fixture(scope="module")
def reference(sweep_file, tmp_path_factory):
    """The sweep run serially in this process: (store path, report)."""
    store = tmp_path_factory.mktemp("ref") / "serial.zarr"
    report = run_sweep(sweep_file, store, workers=0, progress=False)
    return store, report


def load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # partial stores
        return wavesim.open_store(path).load()


def assert_same_results(a_path, b_path):
    a, b = load(a_path), load(b_path)
    for name in RESULTS:
        va, vb = np.asarray(a[name].values), np.asarray(b[name].values)
        if va.dtype.kind in "fc":
            np.testing.assert_array_equal(va, vb, err_msg=name)  # bit-identical, NaN == NaN
        else:
            assert list(va.ravel()) == list(vb.ravel()), name


def test_serial_sweep_store(reference, sweep_file):
    """The serial store holds every member, equal to the member computed on its own."""
    from wavesim.sweep.member import compute_member

    store, report = reference
    assert report.complete and report.done == 8 and report.failed == 0
    assert report.computed == list(range(8)) and report.executor == "serial"
    ds = wavesim.open_store(store)
    assert ds.attrs["complete"] and ds.attrs["n_done"] == 8
    assert list(ds["status"].values) == ["done"] * 8 and list(ds["attempts"].values) == [1] * 8
    assert ds["field"].shape == (8, 25, 8, 8) and ds["field"].dtype == np.float32
    assert ds["pattern_occupancy"].dims == ("member", "category")
    assert ds["field"].encoding["chunks"][0] == 1 and ds["speed_median"].encoding["chunks"] == (1,)

    spec = load_sweep(sweep_file)
    for i in (0, 5):
        own = compute_member(spec.member_scenario(i), record=spec.record, metrics=spec.metrics,
                             analysis_start=spec.analysis_start)  # fmt: skip
        for name, value in own.items():
            np.testing.assert_array_equal(ds[name].values[i], value, err_msg=f"{i} {name}")
    # the members differ: coupling speed and damping change the waves, the seed changes the map
    speeds = ds["speed_median"].values
    assert np.all(np.isfinite(speeds)) and len(set(speeds)) == 8
    pw = ds["pinwheel_density"].values  # depends on the seed (the map) only
    assert pw[0] == pw[2] == pw[4] == pw[6] and pw[1] == pw[3] != pw[0]


def test_metrics_are_the_analyzers_of_the_recorded_fields(reference):
    """speed_median and singularity_count equal wave_summary of the stored fields (t >= 1 ms);
    amplitude_rms is the RMS of the stored field there."""
    from wavesim.analysis import wave_summary

    ds = load(reference[0])
    for i in (2, 7):
        m = ds.isel(member=i)[["field", "field_dot"]].sel(time=slice(1.0, None))
        m.attrs["scenario"] = ds.attrs["scenario"]
        s = wave_summary(m, omega=1.0, plane_wave=False, patterns=True)
        assert float(ds["speed_median"][i]) == pytest.approx(float(s["speed_median"]), rel=1e-12)
        assert float(ds["singularity_count"][i]) == float(s["singularities_per_frame"])
        np.testing.assert_allclose(ds["pattern_occupancy"].values[i], s["pattern_occupancy"])
        y = m["field"].values.astype(np.float64)
        assert float(ds["amplitude_rms"][i]) == pytest.approx(np.sqrt(np.mean(y * y)), rel=1e-12)


def test_local_cluster_equals_serial(reference, sweep_file, tmp_path):
    """A real LocalCluster with 2 worker processes writes exactly the serial values."""
    report = run_sweep(sweep_file, tmp_path / "lc.zarr", workers=2, progress=False)
    assert report.complete and report.done == 8 and report.failed == 0
    assert report.executor == "LocalCluster(2 workers x 1 threads)"
    assert sorted(report.computed) == list(range(8))
    ds = load(tmp_path / "lc.zarr")
    assert all(str(w).startswith("tcp://") for w in ds["worker"].values)  # ran on the workers
    assert_same_results(reference[0], tmp_path / "lc.zarr")


def test_interrupted_sweep_resumes_to_the_same_store(reference, sweep_file, tmp_path):
    """Ctrl-C (here: KeyboardInterrupt from the result callback) after 3 members on a
    LocalCluster: the running members are cancelled, the store is consistent (3 done, 5 pending,
    complete false); resuming computes exactly the 5 missing members and ends identical to the
    uninterrupted sweep."""
    store = tmp_path / "s.zarr"
    seen = []

    def stop_after_three(result):
        seen.append(result.index)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep_file, store, workers=2, progress=False, callback=stop_after_three)
    with pytest.warns(UserWarning, match="3 of 8 members done"):
        ds = wavesim.open_store(store)
    status = np.array(list(ds["status"].values))
    assert not ds.attrs["complete"] and ds.attrs["n_pending"] == 5
    assert sorted(np.flatnonzero(status == "done")) == sorted(seen)
    pending = [i for i in range(8) if i not in seen]

    with pytest.raises(FileExistsError, match="resume"):
        run_sweep(sweep_file, store, workers=0, progress=False)
    report = run_sweep(sweep_file, store, workers=0, progress=False, resume=True)
    assert report.computed == pending  # only the missing members, in order
    assert report.complete and report.done == 8
    assert list(load(store)["attempts"].values) == [1] * 8  # nobody ran twice
    assert_same_results(reference[0], store)
    again = run_sweep(sweep_file, store, workers=0, progress=False, resume=True)
    assert again.computed == [] and again.complete


def test_interrupt_inside_a_member_leaves_it_pending(reference, sweep_file, tmp_path, monkeypatch):
    """A KeyboardInterrupt while member 5 computes (serial run): 0-4 done, 5-7 pending."""
    import wavesim.sweep.member as member

    real = member.compute_member
    calls = []

    def interrupted(scenario, **kw):
        calls.append(scenario.run.seed)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(scenario, **kw)

    monkeypatch.setattr(member, "compute_member", interrupted)
    store = tmp_path / "s.zarr"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep_file, store, workers=0, progress=False)
    monkeypatch.setattr(member, "compute_member", real)
    ds = load(store)
    assert list(ds["status"].values) == ["done"] * 5 + ["pending"] * 3
    assert ds.attrs["n_done"] == 5 and not ds.attrs["complete"]
    report = run_sweep(sweep_file, store, workers=0, progress=False, resume=True)
    assert report.computed == [5, 6, 7]
    assert_same_results(reference[0], store)


def test_failing_members_are_recorded_and_the_others_complete(tmp_path):
    """An unstable time step (the stability check) and an overflowing drive (a blow-up) fail
    their members with the error's text; the other members complete."""
    path = tmp_path / "fail.toml"
    path.write_text(f"""
[sweep]
scenario = "{BASE}"
metrics = ["amplitude_rms", "speed_median"]
[set]
lattice.shape = [16, 16]
drive.position = [0.375, 0.375]
map.wavelength = 0.3
run.duration = 6.0
model.activation = "linear"
[grid]
run.dt = [0.05, 0.25]
drive.amplitude = [1.0, 1e38]
""")  # fmt: skip
    report = run_sweep(path, tmp_path / "f.zarr", workers=0, progress=False)
    assert report.complete and report.done == 1 and report.failed == 3
    ds = wavesim.open_store(tmp_path / "f.zarr")  # complete: no warning
    status = list(ds["status"].values)
    errors = list(ds["error"].values)
    assert status == ["done", "failed", "failed", "failed"]
    assert errors[0] == "" and np.isfinite(float(ds["amplitude_rms"][0]))
    assert errors[1].startswith("BlowUpError: the state became non-finite")  # dt 0.05, 1e38
    for i in (2, 3):  # dt = 0.25 ms
        assert errors[i].startswith("StabilityError:") and "[run] dt = 0.25 ms" in errors[i]
        assert "stability limit" in errors[i]
    assert np.isnan(ds["amplitude_rms"].values[1:]).all()
    assert report.failures == {i: errors[i] for i in (1, 2, 3)}
    assert "member 1 failed: BlowUpError" in str(report)


# --------------------------------------------------------------------------------------------
# an external scheduler: `dask scheduler` and `dask worker` processes on loopback


@pytest.fixture
def external_scheduler(tmp_path):
    """``dask scheduler`` and ``dask worker`` (2 worker processes, 1 thread each) started as
    separate programs on loopback, found through the scheduler file; torn down afterwards."""
    from distributed import Client

    sched_file = tmp_path / "scheduler.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["NUMBA_NUM_THREADS"] = "1"
    common = {"cwd": tmp_path, "env": env, "stdout": subprocess.DEVNULL,
              "stderr": subprocess.DEVNULL}  # fmt: skip
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dask",
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(sched_file),
            ],
            **common,
        )  # fmt: skip
    ]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.is_file():
            if time.monotonic() > deadline or procs[0].poll() is not None:
                pytest.fail("the dask scheduler did not start")
            time.sleep(0.1)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dask",
                    "worker",
                    "--scheduler-file",
                    str(sched_file),
                    "--nworkers",
                    "2",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--local-directory",
                    str(tmp_path / "dask"),
                ],
                **common,
            )  # fmt: skip
        )
        with Client(scheduler_file=str(sched_file), timeout="30s", set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
            address = client.scheduler.address
        assert address.startswith("tcp://127.0.0.1:")
        yield address, sched_file
    finally:
        try:  # the quick way: the scheduler closes its workers, then itself
            with Client(
                scheduler_file=str(sched_file), timeout="5s", set_as_default=False
            ) as client:
                client.shutdown()
        except Exception:  # noqa: BLE001 - not started, or already gone
            pass
        for p in reversed(procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def test_external_scheduler(reference, sweep_file, tmp_path, external_scheduler):
    """By address (workers write their members) and by scheduler file (the client writes what
    the workers return): both complete with the serial values."""
    address, sched_file = external_scheduler
    report = run_sweep(sweep_file, tmp_path / "a.zarr", scheduler=address, progress=False)
    assert report.complete and report.done == 8 and report.executor == f"scheduler {address}"
    assert_same_results(reference[0], tmp_path / "a.zarr")
    report = run_sweep(sweep_file, tmp_path / "b.zarr", scheduler=str(sched_file),
                       write_from="client", progress=False)  # fmt: skip
    assert report.complete and report.done == 8
    assert_same_results(reference[0], tmp_path / "b.zarr")
    workers = set(load(tmp_path / "b.zarr")["worker"].values)
    assert all(w.startswith("tcp://127.0.0.1:") for w in workers)


# --------------------------------------------------------------------------------------------
# the command line (wired into wavesim.cli by `add_sweep_parser`)


def test_cli_sweep(reference, sweep_file, tmp_path, capsys, monkeypatch):
    from wavesim.cli import main

    store = tmp_path / "cli.zarr"
    assert main(["sweep", str(sweep_file), "-o", str(store), "--workers", "0", "-q"]) == 0
    assert_same_results(reference[0], store)
    grid = to_grid(wavesim.open_store(store))
    assert grid["speed_median"].dims == ("coupling_speed", "model_gamma", "seed")

    capsys.readouterr()
    assert main(["sweep", str(sweep_file), "-o", str(store), "--workers", "0", "-q"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["sweep", str(sweep_file), "-o", str(store), "--workers", "0", "--resume"]) == 0
    assert "0 computed" in capsys.readouterr().out

    bad = tmp_path / "bad.toml"
    bad.write_text(SWEEP.replace("coupling.speed", "coupling.sped"))
    assert main(["sweep", str(bad), "-o", str(tmp_path / "x.zarr"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "wavesim sweep: error:" in err and "did you mean 'coupling.speed'" in err

    import wavesim.sweep.execute as execute

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(execute, "run_sweep", interrupted)
    code = main(["sweep", str(sweep_file), "-o", str(store), "--workers", "2", "-q"])
    assert code == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "8 done" in err
    assert f"-o {store} --resume --workers 2" in err
