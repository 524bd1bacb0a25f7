"""End-to-end: scenario -> simulator -> zarr store, interrupts, blow-ups, determinism, CLI."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import wavesim
from wavesim.cli import main
from wavesim.coupling import laplacian_stencil
from wavesim.lattice import Lattice
from wavesim.models.oscillator import OscillatorParams
from wavesim.recorders import FieldRecorder, Grid
from wavesim.scenario import Scenario, load_scenario
from wavesim.simulate import BlowUpError, Simulator, member_seeds, run
from wavesim.store import StoreWriter, open_store

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"

# A small, fast scenario exercising map, kappa, drive, noise and electrodes.
SMALL = {
    "meta": {"name": "small"},
    "run": {"duration": 6.0, "dt": 0.05, "seed": 7, "dtype": "float64"},
    "lattice": {"shape": [24, 32], "dx": 0.05, "boundary": "periodic"},
    "map": {"kind": "random", "wavelength": 0.4},
    "model": {"activation": "tanh", "omega2": 1.0, "gamma": 0.2, "noise": 0.05},
    "coupling": {"kind": "laplacian", "speed": 0.2, "kappa": 1.0},
    "drive": {"kind": "grating", "amplitude": 0.5, "angular_speed": 3.0},
    "initial": {"kind": "random", "amplitude": 0.1},
    "record": {"period": 0.5, "fields": ["y", "ydot"], "electrodes": [[0.5, 0.5], [1.0, 0.8]]},
}


def small(**changes) -> Scenario:
    return Scenario.from_dict(SMALL).replace(**changes) if changes else Scenario.from_dict(SMALL)


def test_store_round_trip(tmp_path):
    sc = small()
    summary = run(sc, tmp_path / "s.zarr", progress=False)
    assert summary.complete and summary.steps == 120
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # plain xarray opens it without any warning
        ds = xr.open_zarr(tmp_path / "s.zarr")
    assert ds["field"].dims == ("time", "y", "x")
    assert ds["field_dot"].dims == ("time", "y", "x")
    assert ds["orientation"].dims == ("y", "x")
    assert ds["electrodes"].dims == ("time_electrodes", "electrode")
    assert ds["time"].attrs["units"] == "ms" and ds["x"].attrs["units"] == "mm"
    np.testing.assert_allclose(ds["time"].values, np.arange(13) * 0.5)  # 0, 0.5, ..., 6 ms
    np.testing.assert_allclose(ds["x"].values, np.arange(32) * 0.05)
    assert ds.attrs["complete"] is True and ds.attrs["steps_done"] == 120
    assert ds.attrs["seed"] == 7 and ds.attrs["wavesim_version"] == wavesim.__version__
    # the stored scenario text is the validated scenario: it loads back equal
    assert Scenario.from_dict(tomllib.loads(ds.attrs["scenario"])) == sc
    assert ds["field"].dtype == np.float64 and np.all(np.isfinite(ds["field"].values))
    # the first sample is the initial state, later ones evolve
    assert not np.allclose(ds["field"].isel(time=0), ds["field"].isel(time=-1))


def test_same_seed_bit_identical_and_rerun_from_stored_scenario(tmp_path):
    run(small(), tmp_path / "a.zarr", progress=False)
    a = open_store(tmp_path / "a.zarr")
    # re-run from the scenario text stored in the first store
    text = a.attrs["scenario"]
    (tmp_path / "again.toml").write_text(text)
    run(load_scenario(tmp_path / "again.toml"), tmp_path / "b.zarr", progress=False)
    b = open_store(tmp_path / "b.zarr")
    np.testing.assert_array_equal(a["field"].values, b["field"].values)
    np.testing.assert_array_equal(a["electrodes"].values, b["electrodes"].values)
    run(small(**{"run.seed": 8}), tmp_path / "c.zarr", progress=False)
    c = open_store(tmp_path / "c.zarr")
    assert not np.array_equal(a["field"].values, c["field"].values)


def test_interrupted_run_leaves_partial_readable_store(tmp_path):
    sc = small(**{"record.block": 2})

    def interrupt(sim):
        if sim.step >= 50:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(sc, tmp_path / "p.zarr", progress=False, trackers=[interrupt])
    with pytest.warns(UserWarning, match="complete"):
        ds = open_store(tmp_path / "p.zarr")
    assert ds.attrs["complete"] is False
    assert "KeyboardInterrupt" in ds.attrs.get("error", "")
    # every sample up to the interrupt is there: steps 0, 10, ..., 50 -> 6 samples
    assert ds.sizes["time"] == 6
    np.testing.assert_allclose(ds["time"].values, np.arange(6) * 0.5)
    full = run(sc, tmp_path / "full.zarr", progress=False)
    assert full.complete
    ref = open_store(tmp_path / "full.zarr")
    np.testing.assert_array_equal(ds["field"].values, ref["field"].isel(time=slice(0, 6)).values)


def _unstable_sim():
    lat = Lattice((16, 16), dx=0.1)
    p = OscillatorParams(w=laplacian_stencil(0.3, 0.1), omega2=1.0, gamma=0.0, activation="linear")
    rp = p.resolved(lat)
    from wavesim.stability import max_stable_dt

    dt = 1.05 * max_stable_dt(rp)
    sim = Simulator(p, lat, dt, dtype=np.float64, check=False)
    sim.initialize("random", amplitude=1e-3)
    return sim


def test_stability_check_refuses_and_blow_up_is_located(tmp_path):
    sim = _unstable_sim()
    with pytest.raises(ValueError, match="largest stable dt"):
        Simulator(sim.params, sim.lattice, sim.dt, dtype=np.float64)
    # the exact first non-finite step, found independently by stepping one at a time
    probe = _unstable_sim()
    first_bad = None
    for n in range(1, 20000):
        probe.advance(1)
        if not (np.isfinite(probe.y).all() and np.isfinite(probe.v).all()):
            first_bad = n
            break
    assert first_bad is not None
    grid = Grid(16, 16, 0.1, sim.dt, dtype=np.float64)
    rec = FieldRecorder(("y",), period=100)
    with pytest.raises(BlowUpError) as err:
        with StoreWriter.create(tmp_path / "b.zarr", [rec], grid) as writer:
            sim.run(20000, writer)
    assert err.value.step == first_bad
    assert f"step {first_bad}" in str(err.value)
    with pytest.warns(UserWarning):
        ds = open_store(tmp_path / "b.zarr")
    assert ds.attrs["complete"] is False and "BlowUpError" in ds.attrs["error"]
    assert ds.sizes["time"] == (first_bad - 1) // 100 + 1  # every sample before the blow-up
    assert np.isfinite(ds["field"].values).all()


def test_batch_equals_members_one_by_one():
    lat = Lattice((12, 14), dx=0.1, boundary="reflecting")
    p = OscillatorParams(w=laplacian_stencil(0.2, 0.1), omega2=1.0, gamma=0.1, noise=0.2)
    seeds = member_seeds(11, 3)
    batch = Simulator(p, lat, 0.05, members=3, dtype=np.float64, seed=seeds)
    batch.initialize("random", amplitude=0.5)
    batch.advance(37)
    for b in range(3):
        one = Simulator(p, lat, 0.05, members=1, dtype=np.float64, seed=[seeds[b]])
        one.initialize("random", amplitude=0.5)
        one.advance(20)
        one.advance(17)  # block boundaries do not matter: noise streams are sequential
        np.testing.assert_array_equal(one.y[0], batch.y[b])
        np.testing.assert_array_equal(one.v[0], batch.v[b])
    # an int seed splits the same way
    again = Simulator(p, lat, 0.05, members=3, dtype=np.float64, seed=11)
    again.initialize("random", amplitude=0.5)
    again.advance(37)
    np.testing.assert_array_equal(again.y, batch.y)


def test_batched_store_has_member_dim(tmp_path):
    sc = small(**{"run.members": 2, "record.electrodes": None})
    run(sc, tmp_path / "m.zarr", progress=False)
    ds = open_store(tmp_path / "m.zarr")
    assert ds["field"].dims == ("member", "time", "y", "x")
    assert ds.sizes["member"] == 2
    assert not np.array_equal(ds["field"].isel(member=0), ds["field"].isel(member=1))


def test_bundled_scenarios_build_and_are_stable():
    import tomllib

    from wavesim.simulate import build

    for path in sorted(SCENARIOS.glob("*.toml")):
        if {"fit", "sweep", "bridge"} & set(tomllib.loads(path.read_text())):
            continue  # a fit, sweep or bridge file (wavesim fit / sweep), not a scenario
        built = build(load_scenario(path))
        sim = built.simulator
        assert sim.dt < sim.dt_max, path.name
        assert np.isfinite(sim.y).all()


def test_cli_run_validate_and_errors(tmp_path, capsys):
    out = tmp_path / "nwm.zarr"
    code = main(["run", str(SCENARIOS / "nwm_default.toml"), "-o", str(out), "--quiet",
                 "--set", "run.duration=5.0"])  # fmt: skip
    assert code == 0
    ds = open_store(out)
    assert ds.attrs["complete"] is True and ds.attrs["steps_done"] == 40
    # refusing to overwrite names the path
    code = main(["run", str(SCENARIOS / "nwm_default.toml"), "-o", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and str(out) in err
    assert main(["validate", str(SCENARIOS / "spiral.toml")]) == 0
    assert "valid" in capsys.readouterr().out
    # an unstable dt: the error states the largest stable dt
    code = main(["validate", str(SCENARIOS / "nwm_default.toml"), "--set", "run.dt=1.0",
                 "--set", "record.period=1.0"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "largest stable dt" in err and "[run] dt = 1 ms" in err
    # a malformed override names the key
    code = main(["validate", str(SCENARIOS / "spiral.toml"), "--set", "run.dtt=0.1"])
    err = capsys.readouterr().err
    assert code == 2 and "dtt" in err and "did you mean" in err
    assert main(["info"]) == 0
    assert "numba" in capsys.readouterr().out


def test_cli_plot(tmp_path, capsys):
    out = tmp_path / "r.zarr"
    run(small(), out, progress=False)
    png = tmp_path / "o.png"
    assert main(["plot", str(out), "--what", "orientation", "-o", str(png)]) == 0
    assert png.stat().st_size > 1000
    assert main(["plot", str(out), "--what", "phase", "-o", str(tmp_path / "p.png")]) == 0


def test_driven_run_does_not_depend_on_block_splits():
    # drive times come from the integer step, so where Python interrupts the kernel (record
    # periods, trackers) cannot change a single bit of a driven run
    from wavesim.drives import GratingDrive

    lat = Lattice((10, 12), dx=0.1)
    theta = np.random.default_rng(0).uniform(0, np.pi, lat.shape)
    p = OscillatorParams(w=laplacian_stencil(0.2, 0.1), kappa=0.5, theta=theta, gamma=0.1)
    drive = GratingDrive(angular_speed=7.3, amplitude=0.8)
    a = Simulator(p, lat, 0.0517, drive=drive, dtype=np.float64)
    b = Simulator(p, lat, 0.0517, drive=drive, dtype=np.float64)
    a.advance(37)
    for n in (1, 13, 23):
        b.advance(n)
    np.testing.assert_array_equal(a.y, b.y)
    assert np.abs(a.y).max() > 1e-3  # the drive did act


def test_cli_ctrl_c_leaves_partial_store(tmp_path):
    # a real SIGINT to a running `wavesim run`: exit code 130, a readable store, complete=false
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "int.zarr"
    cmd = [sys.executable, "-m", "wavesim.cli", "run", str(SCENARIOS / "pinwheel_rotation.toml"),
           "-o", str(out), "--quiet", "--set", "run.duration=100000.0",
           "--set", "record.block=1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until at least two samples are on disk
            if (out / "time" / "c" / "1").exists():
                break
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "partial" in err
    with pytest.warns(UserWarning):
        ds = open_store(out)
    assert ds.attrs["complete"] is False and "KeyboardInterrupt" in ds.attrs["error"]
    assert ds.sizes["time"] >= 2
    assert np.isfinite(ds["field"].values).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_finiteness_check(dtype):
    # the compiled blow-up check sees NaN and inf anywhere in y or v, and nothing else
    from wavesim.kernels.driver import PaddedState

    st = PaddedState(2, (20, 30), 1, dtype)
    rng = np.random.default_rng(1)
    st.set(rng.normal(size=(2, 20, 30)), rng.normal(size=(2, 20, 30)), 0)
    assert st.finite()
    st.y[1, 19, 29] = np.nan
    assert not st.finite()
    st.y[1, 19, 29] = 0.0
    st.v[0, 0, 0] = -np.inf
    assert not st.finite()
    st.v[0, 0, 0] = np.finfo(dtype).max  # the largest finite value is finite
    st.y[0, 5, 5] = np.finfo(dtype).smallest_subnormal
    assert st.finite()
