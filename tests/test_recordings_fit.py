"""Fitting a lattice to a recording: a recording made by a known lattice (parameters recovered,
forecasts exact), the fitted scenario under ``wavesim run``, ``wavesim fit`` with a recording
target, and the ferret VSD recording (skipped when ../shared/data is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import wavesim
from wavesim.cli import main
from wavesim.recordings.fit import (
    METHODS,
    fit_recording,
    initial_from_frames,
    lattice_forecast,
    recording_scenario,
)

ROOT = Path(__file__).resolve().parents[1]
FERRET = ROOT / ".." / "shared" / "data" / "ferret_vsd" / "ferret_vsd_roland2006.nwb"

FRAME_DT = 0.5  # ms
W_TRUE = np.array([[0.05, 0.3, 0.02], [0.2, -1.0, 0.25], [0.03, 0.1, 0.05]])  # zero-sum
TRUE = {"omega2": 0.5, "gamma": 0.3, "bias": 0.02}


def template(n=12, frames=120):
    """An empty recording (time, y, x) in px with a disk aperture."""
    yy, xx = np.mgrid[0:n, 0:n]
    mask = np.hypot(xx - (n - 1) / 2, yy - (n - 1) / 2) <= 5.0
    return xr.Dataset(
        {"field": (("time", "y", "x"), np.zeros((frames, n, n))), "mask": (("y", "x"), mask)},
        coords={
            "time": ("time", np.arange(frames) * FRAME_DT, {"units": "ms"}),
            "y": ("y", np.arange(n, dtype=float), {"units": "px"}),
            "x": ("x", np.arange(n, dtype=float), {"units": "px"}),
        },
        attrs={"source": "synthetic"},
    )


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A recording made by a known linear lattice (IMEX, one step per frame) from a smooth
    random field."""
    ds = template()
    truth = recording_scenario(ds, substeps=1, stencil=W_TRUE,
                               mask_path=tmp_path_factory.mktemp("truth") / "mask.npy",
                               **TRUE)  # fmt: skip
    from scipy import ndimage

    ny, nx = ds.mask.shape
    rng = np.random.default_rng(1)
    y0 = 3.0 * ndimage.gaussian_filter(rng.standard_normal((ny, nx)), 1.0) * ds.mask.values
    frames = lattice_forecast(truth, y0[None], np.zeros((1, ny, nx)), ds.sizes["time"] - 1)[0]
    ds["field"] = (("time", "y", "x"), np.concatenate([y0[None], frames]))
    return ds


def test_initial_state_from_two_frames_is_exact():
    """For y' = y + dt·v' (both integrators), v_n = (y_n − y_{n−1})/dt: a two-frame context
    gives the state exactly; a longer one fits a line."""
    rng = np.random.default_rng(0)
    f = rng.standard_normal((2, 4, 4))
    y0, v0 = initial_from_frames(f, 0.5)
    np.testing.assert_allclose(y0, f[1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(v0, (f[1] - f[0]) / 0.5, rtol=1e-13)
    line = 3.0 + 2.0 * np.arange(6)[:, None, None] * 0.25 * np.ones((6, 2, 2))
    y0, v0 = initial_from_frames(line, 0.25)
    np.testing.assert_allclose(y0, 3.0 + 2.0 * 5 * 0.25)
    np.testing.assert_allclose(v0, 2.0)


def test_fit_recovers_a_known_lattice_and_forecasts_it_exactly(synthetic, tmp_path):
    """Noise-free data of the model class (no preprocessing, a two-frame context gives the exact
    state): W within 2e-3 (0.2 % of its largest entry), ω², γ, b within 0.2 % (L-BFGS-B stops
    when the loss has fallen by ~1e6; measured: 9e-4, 7e-4, 7e-5, 5e-4), held-out forecasts
    1000 times better than copy-last and the context mean. A linear lattice is an exact AR(2)
    process of its frames, so the ridge AR is good here too, but not as good."""
    res = fit_recording(synthetic, train=(0.0, 30.0), horizon=10, context=2, stride=1,
                        substeps=1, per_site=(), sigma=None, n_test=4, steps=300,
                        scenario_out=tmp_path / "fitted.toml")  # fmt: skip
    v = res.values
    assert np.max(np.abs(v["w"] - W_TRUE)) < 2e-3, v["w"] - W_TRUE
    for k, val in TRUE.items():
        assert abs(v[k] / val - 1) < 2e-3, (k, v[k])
    assert res.fit.loss < 1e-5 * res.fit.start_loss
    mse = res.skill["mse"].mean(("window", "step"))
    lattice = float(mse.sel(model="lattice"))
    for m in ("copy_last", "mean_frame"):
        assert float(mse.sel(model=m)) > 1e3 * lattice, m
    assert float(mse.sel(model="ridge_ar")) > lattice
    # the held-out windows start at the last training frame and follow each other
    np.testing.assert_allclose(res.skill["origin"].values, [30.0, 35.0, 40.0, 45.0])
    assert res.info["train_windows"] == 61 - 2 - 10 + 1
    # the fitted scenario: one member at rest, runnable by wavesim run, bit for bit the model
    sc = wavesim.load_scenario(tmp_path / "fitted.toml")
    assert sc.run.members == 1 and sc.initial.kind == "rest"
    wavesim.run(sc, tmp_path / "run.zarr", progress=False)
    ds = wavesim.open_store(tmp_path / "run.zarr")
    n = ds.sizes["time"] - 1
    ny, nx = synthetic.mask.shape
    ref = lattice_forecast(sc, np.zeros((1, ny, nx)), np.zeros((1, ny, nx)), n)[0]
    np.testing.assert_array_equal(ds["field"].values[1:], ref)
    assert np.abs(ref).max() > 0  # the bias drives it


def test_fit_errors_name_the_problem(synthetic):
    with pytest.raises(ValueError, match=r"train = \(30, 10\) ms must have stop > start"):
        fit_recording(synthetic, train=(30.0, 10.0))
    with pytest.raises(ValueError, match="a training window needs context \\+ horizon = 28"):
        fit_recording(synthetic, train=(0.0, 5.0), horizon=20)
    with pytest.raises(ValueError, match="overlaps the training interval"):
        fit_recording(synthetic, train=(0.0, 30.0), horizon=10, test=[20.0], steps=1)
    with pytest.raises(ValueError, match="needs 10 frames after it"):
        fit_recording(synthetic, train=(0.0, 30.0), horizon=10, test=[58.0], steps=1)
    with pytest.raises(ValueError, match=r"learn: \['y0'\] cannot be learned from a recording"):
        fit_recording(synthetic, train=(0.0, 30.0), learn=("w", "y0"))
    with pytest.raises(ValueError, match="'field' must have dims"):
        fit_recording(synthetic.isel(x=0), train=(0.0, 30.0))


def test_wavesim_fit_with_a_recording_target(synthetic, tmp_path, capsys):
    """``wavesim fit`` reads a recording, prints the skill table and writes the fit store and
    the fitted scenario, which ``wavesim run`` simulates."""
    from wavesim.recordings import save_recording

    save_recording(synthetic, tmp_path / "rec.zarr")
    fitfile = tmp_path / "fit.toml"
    fitfile.write_text(
        "[fit]\n"
        'recording = "rec.zarr"\n'
        "train = [0.0, 30.0]\n"
        "forecast_frames = 10\n"
        "context = 2\n"
        "stride = 2\n"
        "substeps = 1\n"
        "sigma = 0.0\n"
        "per_site = []\n"
        "steps = 100\n"
    )
    store = tmp_path / "fit.zarr"
    assert main(["fit", str(fitfile), "-o", str(store)]) == 0
    out = capsys.readouterr().out
    assert "held-out forecasts from 30.0, 35.0, 40.0, 45.0 ms" in out
    for m in METHODS:
        assert f"\n{m} " in out
    fitted = tmp_path / "fit.fitted.toml"
    assert fitted.is_file() and str(fitted) in out
    import json

    import zarr

    skill = json.loads(zarr.open_group(str(store), mode="r").attrs["forecast_skill"])
    lattice = skill["table"]["lattice"]["mse_first_window"]
    assert lattice < 1e-3 * skill["table"]["copy_last"]["mse_first_window"]
    assert main(["run", str(fitted), "-o", str(tmp_path / "run.zarr"), "-q"]) == 0


def test_fit_initial_state_arguments_are_checked(synthetic):
    """fit(y0=, v0=) replaces the scenario's initial state; a wrong shape names the argument."""
    from wavesim.learn import FieldMSE, fit

    sc = recording_scenario(synthetic, substeps=1, members=2)
    target = FieldMSE(np.zeros((2, 3, 12, 12)), [1, 2, 3], mask=synthetic.mask.values)
    with pytest.raises(
        ValueError, match=r"y0: expected an initial state of shape \(members, ny, nx\)"
    ):
        fit(sc, target, ("gamma",), y0=np.zeros((3, 12, 12)), steps=1, progress=False)
    with pytest.raises(ValueError, match="v0: the initial state has non-finite values"):
        fit(sc, target, ("gamma",), v0=np.full((12, 12), np.nan), steps=1, progress=False)


def test_fit_file_errors(tmp_path):
    from wavesim.learn.cli_fit import load_fit_file

    f = tmp_path / "fit.toml"
    f.write_text('[fit]\nrecording = "r.nwb"\nscenario = "s.toml"\ntrain = [0, 1]\n')
    with pytest.raises(ValueError, match="scenario cannot be combined with recording"):
        load_fit_file(f)
    f.write_text('[fit]\nrecording = "r.nwb"\n')
    with pytest.raises(ValueError, match=r"train = \[start, stop\] \(ms\) is required"):
        load_fit_file(f)
    f.write_text('[fit]\nrecording = "r.nwb"\ntrain = [0, 1]\nhorizon = 3\n')
    with pytest.raises(ValueError, match="unknown key 'horizon' with a recording"):
        load_fit_file(f)
    f.write_text('[fit]\nrecording = "r.nwb"\ntrain = [0]\n')
    with pytest.raises(ValueError, match=r"train expected \[start, stop\] in ms"):
        load_fit_file(f)
    f.write_text('[fit]\nrecording = "r.nwb"\ntrain = [240, 280]\nforecast_frames = 20\n')
    kw = load_fit_file(f)
    assert kw["train"] == (240.0, 280.0) and kw["horizon"] == 20
    assert kw["recording"] == tmp_path / "r.nwb"


def test_bundled_ferret_fit_file_reads():
    from wavesim.learn.cli_fit import load_fit_file

    kw = load_fit_file(ROOT / "scenarios" / "ferret_vsd_fit.toml")
    assert kw["recording"].resolve() == FERRET.resolve()
    assert kw["horizon"] == 20


# ------------------------------------------------------------------------------------------
# the real recording


def test_ferret_lattice_beats_the_baselines_on_the_next_20_frames():
    """Fitted on 240-280 ms of the evoked response (60 L-BFGS-B iterations: a reduced fit), the
    lattice forecasts the 20 frames after 280 ms with a lower MSE than copy-last-frame, the mean
    of the context frames and the ridge AR baseline."""
    if not FERRET.is_file():
        pytest.skip(f"reference data not found: {FERRET} (../shared/data is absent)")
    pytest.importorskip("pynwb")
    res = fit_recording(FERRET, train=(240.0, 280.0), baseline=(150.0, 200.0), sigma=1.0,
                        steps=60, n_test=1)  # fmt: skip
    first = res.skill["mse"].isel(window=0).mean("step")
    lattice = float(first.sel(model="lattice"))
    for m in METHODS[1:]:
        assert lattice < float(first.sel(model=m)), (m, first.values)
    assert lattice < 0.9 * float(first.sel(model="ridge_ar"))
    assert lattice < 0.6 * float(first.sel(model="copy_last"))
