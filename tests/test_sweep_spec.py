"""Sweep files: schema, member order, samples, errors naming file and key; the store template,
to_grid and the metrics on fields of known answer (no simulation runs here, except in
``test_metrics_*``, which run none either: they analyse synthetic fields)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import wavesim
from wavesim.scenario import Scenario
from wavesim.sweep import SweepError, load_sweep, member_scenario, to_grid
from wavesim.sweep.metrics import METRICS, compute_metrics
from wavesim.sweep.spec import SweepSpec
from wavesim.sweep.template import SweepStore, write_member

ROOT = Path(__file__).resolve().parents[1]
BASE = (ROOT / "scenarios" / "sweep_base.toml").as_posix()

#: Shrinks the bundled base scenario to a 16 x 16 lattice.
TINY = """
[set]
lattice.shape = [16, 16]
drive.position = [0.375, 0.375]
map.wavelength = 0.3
run.duration = 6.0
"""


def write(tmp_path: Path, body: str, name: str = "sweep.toml", tiny: bool = True) -> Path:
    path = tmp_path / name
    text = f'[sweep]\nscenario = "{BASE}"\n' + body
    if tiny and "[set]" not in body:
        text += TINY
    path.write_text(text)
    return path


def error(tmp_path, body, **kw) -> SweepError:
    path = write(tmp_path, body, **kw)
    with pytest.raises(SweepError) as info:
        load_sweep(path)
    assert str(path) in str(info.value), "the error must name the sweep file"
    return info.value


# --------------------------------------------------------------------------------------------
# members


def test_grid_and_seeds_product_in_c_order(tmp_path):
    spec = load_sweep(write(tmp_path, """
[grid]
coupling.speed = [0.1, 0.2, 0.3]
"model.gamma" = [0.1, 0.5]
[seeds]
n = 2
"""))  # fmt: skip
    assert spec.shape == (3, 2, 2) and spec.members == 12
    assert spec.dims == ("coupling_speed", "model_gamma", "seed")
    # C order: the last dimension (seed) varies fastest
    assert spec.member_params(0) == {"coupling.speed": 0.1, "model.gamma": 0.1, "run.seed": 0}
    assert spec.member_params(1) == {"coupling.speed": 0.1, "model.gamma": 0.1, "run.seed": 1}
    assert spec.member_params(7) == {"coupling.speed": 0.2, "model.gamma": 0.5, "run.seed": 1}
    s7 = spec.member_scenario(7)
    assert (s7.coupling.speed, s7.model.gamma, s7.run.seed) == (0.2, 0.5, 1)
    assert s7.lattice.shape == (16, 16)  # [set] applies to every member
    assert spec.member_label(7) == "coupling.speed=0.2, model.gamma=0.5, run.seed=1"


def test_zip_keys_vary_together(tmp_path):
    spec = load_sweep(write(tmp_path, """
[grid]
model.gamma = [0.1, 0.5]
[zip]
name = "stimulus"
drive.amplitude = [1.0, 2.0, 3.0]
drive.period = [6.0, 8.0, 10.0]
"""))  # fmt: skip
    assert spec.dims == ("model_gamma", "stimulus") and spec.members == 6
    for i in range(6):
        s = spec.member_scenario(i)
        assert s.drive.period == 2 * s.drive.amplitude + 4  # the pairs stay together
    assert spec.axes[1].coord_names() == ("drive_amplitude", "drive_period")


def test_latin_hypercube_hits_every_stratum_once(tmp_path):
    n = 10
    spec = load_sweep(write(tmp_path, f"""
[sample]
n = {n}
seed = 3
log = ["model.gamma"]
[sample.ranges]
coupling.speed = [0.1, 0.3]
model.gamma = [0.01, 1.0]
"""))  # fmt: skip
    axis = spec.axes[0]
    assert axis.kind == "sample" and axis.size == n and spec.members == n
    speed, gamma = (np.array(v) for v in axis.values)
    assert np.all((0.1 <= speed) & (speed <= 0.3)) and np.all((0.01 <= gamma) & (gamma <= 1))
    # Latin hypercube: each of the n equal strata (in log for gamma) holds exactly one sample
    u_speed = (speed - 0.1) / 0.2
    u_gamma = np.log(gamma / 0.01) / np.log(100.0)
    for u in (u_speed, u_gamma):
        assert sorted(np.floor(u * n).astype(int)) == list(range(n))
    # reproducible with the seed, different with another one
    again = load_sweep(write(tmp_path, (tmp_path / "sweep.toml").read_text().split(
        "\n", 2)[2], name="again.toml", tiny=False))  # fmt: skip
    assert again.axes[0].values == axis.values
    other = load_sweep(write(tmp_path, f"""
[sample]
n = {n}
seed = 4
[sample.ranges]
coupling.speed = [0.1, 0.3]
""", name="other.toml"))  # fmt: skip
    assert other.axes[0].values[0] != axis.values[0]


def test_random_samples_in_range_and_seeded(tmp_path):
    body = """
[sample]
method = "random"
n = 50
seed = 1
ranges = { "model.gamma" = [0.2, 0.4] }
"""
    a = load_sweep(write(tmp_path, body)).axes[0].values[0]
    b = load_sweep(write(tmp_path, body, name="b.toml")).axes[0].values[0]
    assert a == b and len(set(a)) == 50 and min(a) >= 0.2 and max(a) <= 0.4


def test_overrides_and_fingerprint(tmp_path):
    path = write(tmp_path, "[grid]\nmodel.gamma = [0.1, 0.5]\n")
    spec = load_sweep(path)
    assert spec.fingerprint() == load_sweep(path).fingerprint()
    longer = load_sweep(path, overrides=["run.duration=8"])
    assert longer.member_scenario(1).run.duration == 8.0
    assert longer.member_scenario(1).model.gamma == 0.5
    assert longer.fingerprint() != spec.fingerprint()


# --------------------------------------------------------------------------------------------
# malformed sweep files: every error names the file and the key


def test_missing_scenario_key(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[sweep]\nrecord = "metrics"\n[grid]\nmodel.gamma = [0.1]\n')
    with pytest.raises(SweepError, match=r"\[sweep\] scenario is missing") as info:
        load_sweep(path)
    assert str(path) in str(info.value) and info.value.key == "sweep.scenario"


def test_missing_sweep_table(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[grid]\nmodel.gamma = [0.1]\n")
    with pytest.raises(SweepError, match=r"\[sweep\] is missing"):
        load_sweep(path)


def test_unknown_keys_get_suggestions(tmp_path):
    e = error(tmp_path, 'metric = ["speed_median"]\n')
    assert "[sweep] metric" in str(e) and "did you mean 'metrics'" in str(e)
    assert e.key == "sweep.metric"
    e = error(tmp_path, "[grids]\nmodel.gamma = [0.1]\n")
    assert "[grids]: unknown table" in str(e) and "did you mean [grid]" in str(e)
    e = error(tmp_path, "[seeds]\nnn = 3\n")
    assert "[seeds] nn" in str(e) and "did you mean 'n'" in str(e)


def test_unknown_scenario_key(tmp_path):
    e = error(tmp_path, "[grid]\ncoupling.sped = [0.1, 0.2]\n")
    assert "[grid] coupling.sped" in str(e) and "unknown scenario key" in str(e)
    assert "did you mean 'coupling.speed'" in str(e) and e.key == "grid.coupling.sped"
    e = error(tmp_path, "[grid]\nspeed = [0.1, 0.2]\n")  # no section: a suggestion that has one
    assert "did you mean 'coupling.speed'" in str(e) or "did you mean 'drive.speed'" in str(e)
    e = error(tmp_path, "[sample]\nn = 4\n[sample.ranges]\nmodel.gama = [0.1, 0.2]\n")
    assert "[sample] ranges.model.gama" in str(e) and "did you mean 'model.gamma'" in str(e)


def test_wrong_types(tmp_path):
    e = error(tmp_path, "[grid]\ncoupling.speed = 0.2\n")
    assert "[grid] coupling.speed = 0.2" in str(e) and "array" in str(e) and "got a float" in str(e)
    e = error(tmp_path, "[grid]\ncoupling.speed = []\n")
    assert "[grid] coupling.speed" in str(e) and "empty" in str(e)
    e = error(tmp_path, "[grid]\ncoupling.speed = [0.1, 0.1]\n")
    assert "appears twice" in str(e)
    e = error(tmp_path, 'analysis_start = "late"\n')
    assert "[sweep] analysis_start" in str(e) and "got a string" in str(e)
    e = error(tmp_path, "[sample]\nn = 2.5\n[sample.ranges]\nmodel.gamma = [0.1, 0.2]\n")
    assert "[sample] n = 2.5" in str(e)
    e = error(tmp_path, "[sample]\nn = 4\n[sample.ranges]\nmodel.gamma = [0.3, 0.2]\n")
    assert "[sample] ranges.model.gamma = [0.3, 0.2]" in str(e) and "low < high" in str(e)
    e = error(tmp_path, "[seeds]\nn = 2\nvalues = [1, 2]\n")
    assert "[seeds] needs exactly one of values" in str(e)


def test_bad_record_and_metrics(tmp_path):
    e = error(tmp_path, 'record = "feilds"\n')
    assert "[sweep] record" in str(e) and "did you mean 'fields'" in str(e)
    e = error(tmp_path, 'metrics = ["speed_medain"]\n')
    assert "[sweep] metrics" in str(e) and "did you mean 'speed_median'" in str(e)
    e = error(tmp_path, 'record = "fields"\nmetrics = ["speed_median"]\n')
    assert "[sweep] metrics" in str(e) and 'unless record includes "metrics"' in str(e)
    e = error(tmp_path, 'record = "electrodes"\n')  # the base scenario has no electrodes
    assert "[sweep] record" in str(e) and "electrodes" in str(e)
    e = error(tmp_path, "analysis_start = 5.9\n")  # 6 ms runs: one frame left
    assert "[sweep] analysis_start = 5.9" in str(e) and "at least 2 recorded frames" in str(e)


def test_zip_lists_of_unequal_length(tmp_path):
    e = error(tmp_path, "[zip]\ndrive.amplitude = [1.0, 2.0]\ndrive.period = [6.0, 8.0, 10.0]\n")
    assert "[zip] drive.period = [6.0, 8.0, 10.0]" in str(e)
    assert "2 values, as many as [zip] drive.amplitude" in str(e) and "got 3" in str(e)
    assert e.key == "zip.drive.period"


def test_key_in_two_places(tmp_path):
    e = error(tmp_path, "[grid]\nrun.duration = [4.0, 6.0]\n")  # also in [set] (TINY)
    assert "[grid] run.duration" in str(e) and "also set in [set]" in str(e)


def test_invalid_values_name_the_axis_key_and_member(tmp_path):
    e = error(tmp_path, "[grid]\ncoupling.speed = [0.1, -0.2]\n")
    msg = str(e)
    assert "[grid] coupling.speed = -0.2" in msg and "member 1" in msg
    assert "expected a number > 0" in msg and e.key == "grid.coupling.speed"
    e = error(tmp_path, '[seeds]\nkey = "map.seed"\nvalues = [1, -2]\n')
    assert "[seeds] values" in str(e) and "integers >= 0" in str(e)


def test_fields_need_one_shape(tmp_path):
    e = error(tmp_path, 'record = "fields"\n[grid]\nrecord.subsample = [1, 2]\n')
    assert "[sweep] record" in str(e) and "record.subsample=2" in str(e)
    assert "record only metrics" in str(e)
    # metrics only: any shape
    spec = load_sweep(write(tmp_path, "[grid]\nrecord.subsample = [1, 2]\n", name="ok.toml"))
    assert spec.members == 2


def test_members_must_be_single_lattices(tmp_path):
    e = error(tmp_path, "[grid]\nrun.members = [1, 2]\n")
    assert "[run] members = 2" in str(e) and "[seeds]" in str(e)


def test_invalid_toml_and_missing_files(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[sweep\nscenario = 1\n")
    with pytest.raises(SweepError, match=r"bad.toml: invalid TOML at line 1"):
        load_sweep(path)
    with pytest.raises(SweepError, match=r"sweep file does not exist"):
        load_sweep(tmp_path / "none.toml")
    path.write_text('[sweep]\nscenario = "nowhere.toml"\n')
    with pytest.raises(SweepError, match=r"\[sweep\] scenario = \"nowhere.toml\".*no such file"):
        load_sweep(path)


# --------------------------------------------------------------------------------------------
# the template and to_grid (synthetic data, no simulation)


def test_template_layout_and_to_grid(tmp_path):
    spec = load_sweep(write(tmp_path, """
record = ["metrics", "fields"]
metrics = ["speed_median", "pattern_occupancy"]
[grid]
coupling.speed = [0.3, 0.1, 0.2]
[zip]
drive.amplitude = [1.0, 2.0]
drive.period = [6.0, 8.0]
[seeds]
values = [5, 7]
"""))  # fmt: skip
    store = SweepStore.create(spec, tmp_path / "s.zarr")
    n = spec.members
    assert n == 12 and store.counts() == {"pending": 12, "done": 0, "failed": 0}
    nt = spec.base.n_steps // spec.base.record_stride + 1
    for i in range(n):  # synthetic data: every value tells its member
        data = {
            "speed_median": np.float64(i),
            "pattern_occupancy": np.full(7, i / 100),
            "field": np.full((nt, 16, 16), i, np.float32),
            "field_dot": np.full((nt, 16, 16), -i, np.float32),
        }
        if i != 5:
            store.set_result(i, "done", elapsed=0.1, worker="here", data=data)
    store.set_result(5, "failed", error="BlowUpError: boom")
    store.update_progress()

    ds = wavesim.open_store(tmp_path / "s.zarr")  # complete: nothing pending, so no warning
    assert ds.attrs["complete"] and ds.attrs["n_failed"] == 1 and ds.attrs["n_done"] == 11
    assert ds["field"].dims == ("member", "time", "y", "x")
    assert ds["field"].encoding["chunks"][0] == 1  # chunk 1 along member
    assert ds["speed_median"].attrs["units"] == "mm/ms"
    assert ds["coupling_speed"].attrs == {
        "scenario_key": "coupling.speed", "long_name": "[coupling] speed", "units": "mm/ms"
    }  # fmt: skip
    assert list(ds["category"].values) == list(METRICS["pattern_occupancy"].coords()["category"][0])
    assert str(ds["status"].values[5]) == "failed" and str(ds["error"].values[5]).startswith("Blow")
    assert np.isnan(float(ds["speed_median"][5]))  # a failed member keeps the fill value
    assert ds["time"].attrs["units"] == "ms" and ds.sizes["time"] == nt

    grid = to_grid(ds)
    assert grid["speed_median"].dims == ("coupling_speed", "zip", "seed")
    assert list(grid["coupling_speed"].values) == [0.3, 0.1, 0.2]  # file order kept
    assert list(grid["seed"].values) == [5, 7] and list(grid["zip"].values) == [0, 1]
    assert list(grid["drive_period"].values) == [6.0, 8.0]
    assert grid["drive_period"].dims == ("zip",)
    assert grid["field"].dims == ("coupling_speed", "zip", "seed", "time", "y", "x")
    for i in range(n):
        c, z, s = spec.member_index(i)
        p = spec.member_params(i)
        assert int(grid["member"][c, z, s]) == i
        assert float(grid["coupling_speed"][c]) == p["coupling.speed"]
        assert float(grid["drive_amplitude"][z]) == p["drive.amplitude"]
        assert int(grid["seed"][s]) == p["run.seed"]
        if i != 5:
            assert float(grid["speed_median"][c, z, s]) == i
            assert float(grid["field_dot"][c, z, s, 3, 2, 1]) == -i
    sel = grid["speed_median"].sel(coupling_speed=0.1, seed=7).isel(zip=1)
    assert float(sel) == _member_of(spec, 0.1, 1, 7)

    # each member's scenario, rebuilt from the store alone
    for i in range(n):
        assert member_scenario(ds, i) == spec.member_scenario(i)
    with pytest.raises(IndexError, match="member 12"):
        member_scenario(ds, 12)

    with pytest.raises(ValueError, match="every member"):
        to_grid(ds.isel(member=slice(0, 4)))
    with pytest.raises(TypeError, match="whole|Dataset"):
        to_grid(ds["speed_median"])


def _member_of(spec: SweepSpec, speed, zip_pos, seed) -> int:
    """The member with these parameters, found by search (not by to_grid's arithmetic)."""
    for i in range(spec.members):
        p = spec.member_params(i)
        if (p["coupling.speed"], spec.member_index(i)[1], p["run.seed"]) == (speed, zip_pos, seed):
            return i
    raise AssertionError("no such member")


def test_resume_refuses_another_sweep(tmp_path):
    a = load_sweep(write(tmp_path, "[grid]\nmodel.gamma = [0.1, 0.5]\n"))
    b = load_sweep(write(tmp_path, "[grid]\nmodel.gamma = [0.1, 0.6]\n", name="b.toml"))
    SweepStore.create(a, tmp_path / "s.zarr")
    SweepStore.open(tmp_path / "s.zarr", a)  # the same sweep: fine
    with pytest.raises(ValueError, match="holds another sweep"):
        SweepStore.open(tmp_path / "s.zarr", b)
    with pytest.raises(FileExistsError):
        SweepStore.create(a, tmp_path / "s.zarr")
    with pytest.raises(ValueError, match="shape"):
        write_member(tmp_path / "s.zarr", 0, {"speed_median": np.zeros(3)})


def test_partial_store_warns_with_member_counts(tmp_path):
    spec = load_sweep(write(tmp_path, "[grid]\nmodel.gamma = [0.1, 0.5, 0.9]\n"))
    store = SweepStore.create(spec, tmp_path / "s.zarr")
    store.set_result(1, "done")
    store.update_progress()
    with pytest.warns(UserWarning, match=r"1 of 3 members done.*2 pending.*--resume"):
        ds = wavesim.open_store(tmp_path / "s.zarr")
    assert not ds.attrs["complete"] and list(ds["status"].values) == [
        "pending", "done", "pending"
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------
# metrics of fields with a known answer


def _scenario(shape, dx, omega2, boundary="reflecting") -> Scenario:
    return Scenario.from_dict(
        {
            "run": {"duration": 10.0, "dt": 0.05},
            "lattice": {"shape": list(shape), "dx": dx, "boundary": boundary},
            "model": {"omega2": omega2},
            "coupling": {"speed": 0.1},
            "record": {"period": 0.25, "fields": ["y", "ydot"]},
        }
    )


def _dataset(y, ydot, t, dx, scenario) -> xr.Dataset:
    ny, nx = y.shape[1:]
    coords = {"time": ("time", t, {"units": "ms"}), "y": ("y", np.arange(ny) * dx),
              "x": ("x", np.arange(nx) * dx)}  # fmt: skip
    return xr.Dataset(
        {"field": (("time", "y", "x"), y), "field_dot": (("time", "y", "x"), ydot)},
        coords=coords,
        attrs={"scenario": scenario.to_toml()},
    )


def test_metrics_of_a_plane_wave():
    """y = cos(wt - kx): local speed w/k everywhere, direction +x, no singularity, RMS 1/sqrt(2)."""
    w, k, dx = 2.0, 2 * np.pi / 0.8, 0.05  # rad/ms, rad/mm, mm
    scen = _scenario((12, 16), dx, w * w)
    t = np.arange(0, 10.0 + 1e-9, 0.25)  # ms
    x = np.arange(16) * dx
    phase = w * t[:, None, None] - k * x[None, None, :] + np.zeros((1, 12, 1))
    ds = _dataset(np.cos(phase), -w * np.sin(phase), t, dx, scen)
    names = ["speed_median", "speed_iqr", "direction_mean", "direction_coherence",
             "singularity_count", "singularity_density", "amplitude_rms", "pgd"]  # fmt: skip
    out = compute_metrics(names, ds, scen, analysis_start=2.0)
    assert abs(out["speed_median"] - w / k) < 1e-9 * (w / k)
    assert out["speed_iqr"] < 1e-9
    assert abs(out["direction_mean"]) < 1e-9 and abs(out["direction_coherence"] - 1) < 1e-9
    assert out["singularity_count"] == 0 and out["singularity_density"] == 0
    assert abs(out["pgd"] - 1) < 1e-9
    # the RMS over the analysed frames (t >= 2 ms) only
    y = np.cos(phase[t >= 2.0])
    assert out["amplitude_rms"] == pytest.approx(np.sqrt(np.mean(y**2)), rel=1e-12)
    assert abs(out["amplitude_rms"] - 1 / math.sqrt(2)) < 0.02


def test_metrics_of_a_rotating_spiral():
    """phi = wt - arg(r - r0): one singularity per frame, density 1 / (plaquette area)."""
    w, dx, ny, nx = 1.5, 0.1, 10, 14
    scen = _scenario((ny, nx), dx, w * w)
    t = np.arange(0, 4.0 + 1e-9, 0.25)
    yy, xx = np.mgrid[0:ny, 0:nx] * dx
    theta = np.angle((xx - 0.63) + 1j * (yy - 0.47))
    phase = w * t[:, None, None] - theta[None]
    ds = _dataset(np.cos(phase), -w * np.sin(phase), t, dx, scen)
    out = compute_metrics(["singularity_count", "singularity_density", "singularity_lifetime"],
                          ds, scen)  # fmt: skip
    area = (ny - 1) * (nx - 1) * dx * dx  # reflecting: (ny - 1) x (nx - 1) plaquettes
    assert out["singularity_count"] == 1.0
    assert out["singularity_density"] == pytest.approx(1 / area, rel=1e-12)
    assert out["singularity_lifetime"] == pytest.approx(t[-1] - t[0], rel=1e-12)


def test_every_metric_has_units_and_a_description():
    for name, m in METRICS.items():
        assert m.name == name and m.units and m.long_name
        assert isinstance(m.shape, tuple)


def test_array_and_string_parameters_round_trip(tmp_path):
    """Array values (stored as JSON text) and strings come back from the store as they were."""
    spec = load_sweep(write(tmp_path, """
[zip]
record.electrodes = [[[0.1, 0.1]], [[0.2, 0.5], [0.4, 0.4]]]
model.activation = ["tanh", "linear"]
"""))  # fmt: skip
    SweepStore.create(spec, tmp_path / "s.zarr")
    with pytest.warns(UserWarning, match="partial"):
        ds = wavesim.open_store(tmp_path / "s.zarr")
    assert ds["record_electrodes"].attrs["encoding"] == "json"
    assert list(ds["model_activation"].values) == ["tanh", "linear"]
    for i in range(2):
        assert member_scenario(ds, i) == spec.member_scenario(i)
    assert member_scenario(ds, 1).record.electrodes == ((0.2, 0.5), (0.4, 0.4))
    assert member_scenario(ds, 1).model.activation == "linear"
