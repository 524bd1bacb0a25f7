"""``wavesim analyze``: phase of a store, analyzers, groups written into the store, table, errors.

Small runs of the bundled scenarios (48 x 48 sites):

Spiral (``scenarios/spiral.toml``, core at the lattice centre, 0.3 mm sponge, 10 ms)
    The initial spiral sheds pairs of defects during its first ~5 ms (see
    ``tests/test_scenario_singularities.py``) and on this small sheet the core survives ~6 ms
    more, so ``--start 5`` analyses 5-10 ms. Checked: what the store's ``analysis/*`` groups hold
    equals :func:`wave_summary` of the oscillator phase computed directly (to 1e-12), the
    per-frame counts agree between the ``summary`` and ``singularities`` groups, and the longest
    track is the core: charge +1, present in every analysed frame, mean position within 0.5 px
    of the centre (observed 1e-5 px).

Plane wave (``scenarios/plane_wave.toml``, wavelength 1.2 mm = 24 sites, heading 90°, torus)
    48 sites hold exactly two wavelengths, so the torus is seamless. Phase speed ω/|k| from the
    discrete (symplectic Euler) dispersion relation, 0.2992 mm/ms. Oscillator phase with ω from
    the semi-discrete relation (``--omega``, the scenario has omega2 = 0): median local speed
    within 0.5 % (observed 0.03 %), direction within 0.1° of 90°, PGD > 0.999, no singularity,
    plane-wave pattern in every frame pair. Analytic phase (band 150-350 Hz around the wave's
    249 Hz, 60 ms record; the filter's edges take 22 ms at each end): reliable middle frames
    only, median speed within 1 %.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import wavesim
from wavesim.analysis import oscillator_phase, wave_summary
from wavesim.cli import main

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
N = 48
DX = 0.05
CENTRE = (N - 1) * DX / 2


@pytest.fixture(scope="module")
def spiral_run(tmp_path_factory):
    scenario = wavesim.load_scenario(SCENARIOS / "spiral.toml").replace(
        {
            "lattice.shape": [N, N],
            "lattice.sponge_width": 0.3,
            "initial.position": [CENTRE, CENTRE],
            "run.duration": 10.0,
        }
    )
    path = tmp_path_factory.mktemp("spiral") / "s.zarr"
    wavesim.run(scenario, path, progress=False)
    return path


@pytest.fixture
def spiral_store(spiral_run, tmp_path):
    """A fresh copy per test: analyze writes into the store."""
    path = tmp_path / "s.zarr"
    shutil.copytree(spiral_run, path)
    return path


def open_quietly(path, group=None):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        if group is None:
            return wavesim.open_store(path)
        return xr.open_zarr(path, group=group)


def root_metadata(path):
    return json.loads((Path(path) / "zarr.json").read_text())


def test_analyze_writes_groups_into_the_store(spiral_store, capsys):
    before = root_metadata(spiral_store)
    assert main(["analyze", str(spiral_store), "--start", "5", "-q"]) == 0
    assert capsys.readouterr().out == ""  # -q: no table

    # the store is intact: same root attributes, same variables, opens without warnings
    after = root_metadata(spiral_store)
    assert after["attributes"] == before["attributes"]
    ds = open_quietly(spiral_store)
    assert set(ds.data_vars) == {"field", "field_dot"}
    assert ds.attrs["complete"] is True

    # the written summary equals a direct computation
    summary = open_quietly(spiral_store, "analysis/summary").load()
    expected = wave_summary(oscillator_phase(ds).sel(time=slice(5.0, None)), periodic=False)
    assert summary.sizes["time"] == expected.sizes["time"] == 11  # 5, 5.5, ..., 10 ms
    for name in expected.data_vars:
        np.testing.assert_allclose(summary[name], expected[name], rtol=1e-12, err_msg=name)
    for name, var in summary.variables.items():
        assert "units" in var.attrs, name
    assert summary.attrs["analysis"]["phase_method"] == "oscillator"
    assert summary.attrs["analysis"]["start"] == 5.0

    # singularities, tracks and summary agree; the core is the longest track
    sings = open_quietly(spiral_store, "analysis/singularities").load()
    tracks = open_quietly(spiral_store, "analysis/tracks").load()
    per_frame = np.bincount(sings["frame"].values, minlength=11)
    np.testing.assert_array_equal(
        per_frame, summary["singularities_positive"] + summary["singularities_negative"]
    )
    core = int(np.argmax(tracks["n_points"].values))
    assert int(tracks["track_charge"][core]) == 1
    assert int(tracks["n_points"][core]) == 11
    assert float(tracks["birth"][core]) == 5.0 and float(tracks["death"][core]) == 10.0
    dist = np.hypot(float(tracks["x_mean"][core]) - CENTRE, float(tracks["y_mean"][core]) - CENTRE)
    assert dist <= 0.5 * DX
    assert tracks["event_kind"].dtype.kind in "OUT"  # strings read back as strings
    assert int(summary["n_tracks"]) == tracks.sizes["track"]

    # plane-wave fits and patterns (48^2 <= 128^2: on by default) are there too
    pw = open_quietly(spiral_store, "analysis/plane_wave")
    np.testing.assert_allclose(pw["speed"], summary["plane_wave_speed"], rtol=1e-12)
    patterns = open_quietly(spiral_store, "analysis/patterns")
    assert patterns.sizes["frame"] == 10  # frame pairs
    np.testing.assert_allclose(patterns["occupancy"], summary["pattern_occupancy"], rtol=1e-12)


def test_rerun_replaces_the_groups(spiral_store):
    assert main(["analyze", str(spiral_store), "-q", "--patterns", "off"]) == 0
    assert open_quietly(spiral_store, "analysis/summary").sizes["time"] == 21
    assert main(["analyze", str(spiral_store), "-q", "--start", "6", "--what", "summary"]) == 0
    # the consolidated metadata at the root is rewritten, so readers see the new group
    assert open_quietly(spiral_store, "analysis/summary").sizes["time"] == 9
    assert open_quietly(spiral_store).attrs["complete"] is True


def test_output_store_and_table(spiral_store, tmp_path, capsys):
    out = tmp_path / "analysis.zarr"
    argv = ["analyze", str(spiral_store), "-o", str(out), "--start", "5", "--what", "summary",
            "tracks"]  # fmt: skip
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert not (spiral_store / "analysis").exists()  # the source store is untouched
    summary = open_quietly(out, "analysis/summary").load()
    assert sorted(p.name for p in (out / "analysis").iterdir() if p.is_dir()) == [
        "summary",
        "tracks",
    ]
    # the table shows the summary's numbers
    m = re.search(r"median local speed\s+([0-9.]+) mm/ms", table)
    assert m and float(m.group(1)) == pytest.approx(float(summary["speed_median"]), rel=2e-3)
    m = re.search(r"singularities per frame\s+([0-9.]+)", table)
    assert m and float(m.group(1)) == pytest.approx(
        float(summary["singularities_per_frame"]), abs=0.006
    )
    m = re.search(r"tracks\s+(\d+), mean lifetime ([0-9.]+) ms", table)
    assert m and int(m.group(1)) == int(summary["n_tracks"])
    assert float(m.group(2)) == pytest.approx(float(summary["lifetime_mean"]), rel=2e-3)
    assert "pattern occupancy" in table and "spiral" in table
    assert f"wrote analysis/summary, analysis/tracks to {out}" in table

    # an existing -o store is not replaced without --overwrite
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "-q"]) == 0


# --------------------------------------------------------------------------------------------
# plane wave: physical values
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def plane_wave_run(tmp_path_factory):
    scenario = wavesim.load_scenario(SCENARIOS / "plane_wave.toml").replace(
        {
            "lattice.shape": [N, N],
            "initial.wavelength": 1.2,
            "initial.direction": 90.0,
            "run.duration": 60.0,
        }
    )
    path = tmp_path_factory.mktemp("plane") / "p.zarr"
    wavesim.run(scenario, path, progress=False)
    dt, c = scenario.run.dt, scenario.coupling.speed
    k = 2 * np.pi / 1.2
    big_omega2 = c**2 * 4 * np.sin(k * DX / 2) ** 2 / DX**2  # kx = 0, omega2 = 0
    omega = np.arccos(1 - dt**2 * big_omega2 / 2) / dt  # symplectic Euler
    return path, math.sqrt(big_omega2), omega / k


def test_plane_wave_speed_and_direction(plane_wave_run, tmp_path):
    store, omega, speed = plane_wave_run
    out = tmp_path / "a.zarr"
    args = ["analyze", str(store), "-o", str(out), "-q", "--stop", "8", "--omega", repr(omega)]
    assert main(args) == 0
    s = open_quietly(out, "analysis/summary")
    assert abs(float(s["speed_median"]) / speed - 1) < 0.005
    assert abs(np.rad2deg(float(s["direction_circular_mean"])) - 90.0) < 0.1
    assert float(s["pgd"].min()) > 0.999
    assert int(s["singularities_positive"].sum() + s["singularities_negative"].sum()) == 0
    assert float(s["pattern_occupancy"].sel(category="plane_wave")) == 1.0
    assert np.abs(np.rad2deg(s["plane_wave_direction"]) - 90.0).max() < 0.1


def test_plane_wave_analytic_phase(plane_wave_run, tmp_path):
    store, _, speed = plane_wave_run
    out = tmp_path / "a.zarr"
    args = ["analyze", str(store), "-o", str(out), "-q", "--band", "150", "350", "--what",
            "summary", "--patterns", "off"]  # fmt: skip
    assert main(args) == 0
    s = open_quietly(out, "analysis/summary")
    assert s.attrs["analysis"]["phase_method"] == "analytic"
    assert s.attrs["analysis"]["band"] == [150.0, 350.0]
    assert 0 < s.sizes["time"] < 151  # the filter's edge frames are left out
    assert abs(float(s["speed_median"]) / speed - 1) < 0.01


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
def test_errors(plane_wave_run, spiral_store, tmp_path, capsys):
    store, _, _ = plane_wave_run

    def error(argv):
        assert main(argv) == 2
        return capsys.readouterr().err

    missing = tmp_path / "nope.zarr"
    assert str(missing) in error(["analyze", str(missing)])
    # omega2 = 0: the oscillator phase needs the wave's frequency
    assert "--omega" in error(["analyze", str(store), "-q"])
    # a band that cannot be in Hz (periods of minutes)
    err = error(["analyze", str(store), "--band", "0.005", "0.015"])
    assert "Hz" in err and "longer than the record" in err
    assert "Nyquist" in error(["analyze", str(store), "--band", "100", "5000"])
    assert "--band applies" in error(["analyze", str(store), "--phase", "oscillator", "--band",
                                      "150", "350"])  # fmt: skip
    assert "needs --band" in error(["analyze", str(store), "--phase", "analytic"])
    err = error(["analyze", str(store), "--band", "150", "350", "--stop", "20"])
    assert "no frame" in err and "reliable" in err
    assert "batched" in error(["analyze", str(spiral_store), "--member", "1"])
    assert "need at least 2" in error(["analyze", str(spiral_store), "--start", "20"])


def test_store_without_ydot_needs_a_band(tmp_path, capsys):
    scenario = wavesim.load_scenario(SCENARIOS / "spiral.toml").replace(
        {
            "lattice.shape": [16, 16],
            "lattice.sponge_width": 0.2,
            "initial.position": [0.375, 0.375],
            "run.duration": 2.0,
            "record.fields": ["y"],
        }
    )
    path = tmp_path / "y.zarr"
    wavesim.run(scenario, path, progress=False)
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert "field_dot" in err and "--band" in err and "Hz" in err


def test_amplitude_gate(spiral_store, tmp_path, capsys):
    """--min-amplitude: the summary equals one computed on the gated phase, the core survives
    the gate (its neighbourhood is active), and a fraction outside [0, 1) is refused."""
    from wavesim.analysis import gate_phase, oscillator_amplitude

    out = tmp_path / "gated.zarr"
    argv = ["analyze", str(spiral_store), "--start", "5", "--min-amplitude", "0.2", "-o", str(out)]
    assert main([*argv, "-q"]) == 0
    ds = open_quietly(spiral_store)
    gated = gate_phase(oscillator_phase(ds), oscillator_amplitude(ds), 0.2)
    expected = wave_summary(gated.sel(time=slice(5.0, None)), periodic=False)
    summary = open_quietly(out, "analysis/summary").load()
    for name in ("singularities_positive", "singularities_negative", "speed_median"):
        np.testing.assert_allclose(summary[name], expected[name], rtol=1e-12, err_msg=name)
    tracks = open_quietly(out, "analysis/tracks").load()
    core = int(np.argmax(tracks["n_points"].values))
    assert int(tracks["track_charge"][core]) == 1 and int(tracks["n_points"][core]) == 11
    assert main(["analyze", str(spiral_store), "--min-amplitude", "1.5", "-o", str(out)]) == 2
    assert "--min-amplitude" in capsys.readouterr().err


def test_demodulated_phase_finds_the_pinwheels(tmp_path, capsys):
    """A grating rotating at 9 deg/ms drives the lattice at 2 * 9 deg/ms = 50 Hz:
    ``--phase demodulated --frequency 50`` finds one singularity per pinwheel (within 1 px for
    at least 90 % of them) with charge -2q sign(Omega)."""
    from wavesim.analysis import pinwheels

    sc = wavesim.load_scenario(SCENARIOS / "pinwheel_rotation.toml").replace(
        {
            "lattice.shape": [48, 48],
            "drive.angular_speed": 9.0,
            "run.duration": 45.0,
            "record.electrodes": None,
            "record.electrode_period": None,
        }
    )
    store = tmp_path / "g.zarr"
    wavesim.run(sc, store, progress=False)
    argv = ["analyze", str(store), "--phase", "demodulated", "--frequency", "50", "--start", "25"]
    assert main([*argv, "--patterns", "off"]) == 0
    assert "demodulated phase" in capsys.readouterr().out
    ds = open_quietly(store)
    pw = pinwheels(ds["orientation"].assign_coords(amplitude=ds["orientation_selectivity"]))
    sings = open_quietly(store, "analysis/singularities").load()
    last = sings.where(sings["frame"] == sings["frame"].max(), drop=True)
    dx, length = float(ds.attrs["dx"]), 48 * float(ds.attrs["dx"])
    near = 0
    for x, y, q in zip(last["x"].values, last["y"].values, last["charge"].values, strict=True):
        ddx = (pw["x"].values - x + length / 2) % length - length / 2
        ddy = (pw["y"].values - y + length / 2) % length - length / 2
        j = int(np.argmin(np.hypot(ddx, ddy)))
        if np.hypot(ddx[j], ddy[j]) <= dx:
            near += 1
            assert q == -2 * float(pw["charge"][j])  # Omega > 0
    assert near >= 0.9 * pw.sizes["pinwheel"]
    # --frequency belongs to the demodulated phase, and it needs one
    assert main(["analyze", str(store), "--frequency", "50", "--band", "40", "60"]) == 2
    assert main(["analyze", str(store), "--phase", "demodulated"]) == 2
    assert "--frequency" in capsys.readouterr().err
