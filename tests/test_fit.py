"""Fitting lattices to data: system identification, fitted scenarios, resume, CLI, gradient check.

The ground truth is ``scenarios/sysid_truth.toml``: a tanh lattice (24 x 24 torus, float64) with
a known zero-sum 3 x 3 W, kappa = 1.5 on a random orientation map, omega2 = 1.2, gamma = 0.3,
started at rest and driven by seeded noise. Fits start with every parameter 30-60 % off.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import wavesim
from wavesim.cli import main
from wavesim.learn import ElectrodeMSE, fit, gradient_check, open_fit
from wavesim.learn.fitting import Objective, fitted_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
TRUTH = SCENARIOS / "sysid_truth.toml"
W_TRUE = np.array([[0.1, 0.35, 0.05], [0.25, -1.3, 0.3], [0.05, 0.15, 0.05]])
SCALARS = {"omega2": 1.2, "gamma": 0.3, "kappa": 1.5}
LEARN = ("w", "kappa", "omega2", "gamma")


def perturbed_start():
    """Every parameter off by 30-60 % (W stays zero-sum: its centre is the negative sum)."""
    w = W_TRUE * np.array([[1.4, 0.65, 1.5], [1.35, 1.0, 0.6], [0.6, 1.4, 1.35]])
    w[1, 1] = -(w.sum() - w[1, 1])
    assert abs(w[1, 1] / W_TRUE[1, 1] - 1) < 0.3  # the centre moves less: it is not free
    return {"w": w, "omega2": 1.2 * 0.65, "gamma": 0.3 * 1.4, "kappa": 1.5 * 0.6}


def relative_errors(values):
    err = {k: abs(values[k] / v - 1) for k, v in SCALARS.items()}
    err["w"] = float(np.max(np.abs(values["w"] / W_TRUE - 1)))
    return err


@pytest.fixture(scope="module")
def truth_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("sysid") / "truth.zarr"
    wavesim.run(wavesim.load_scenario(TRUTH), path, progress=False)
    return path


@pytest.fixture(scope="module")
def noise_free_fit(truth_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("fitted") / "fitted.toml"
    return fit(TRUTH, truth_store, LEARN, w_zero_sum=True, start=perturbed_start(), steps=200,
               progress=False, scenario_out=out)  # fmt: skip


def test_system_identification_noise_free(noise_free_fit):
    """Every parameter within 2 % (in fact ~1e-4) from noise-free observations of y."""
    errors = relative_errors(noise_free_fit.values)
    assert max(errors.values()) < 0.02, errors
    assert noise_free_fit.history[0] > 1e6 * noise_free_fit.loss


def test_system_identification_electrodes_snr10(tmp_path):
    """10 x 10 electrodes, Gaussian observation noise at SNR 10: every parameter within 10 %."""
    pos = [[1.15 + 2.3 * i, 1.15 + 2.3 * j] for j in range(10) for i in range(10)]
    sc = wavesim.load_scenario(TRUTH).replace(
        {"record.electrodes": pos, "record.electrode_period": 0.2, "run.duration": 40.0}
    )
    wavesim.run(sc, tmp_path / "e.zarr", progress=False)
    e = wavesim.open_store(tmp_path / "e.zarr")["electrodes"]
    assert e.shape == (201, 100)
    sigma = float(e.std()) / 10  # SNR 10 (amplitude)
    noisy = e + np.random.default_rng(0).normal(0.0, sigma, e.shape)
    loss = ElectrodeMSE.from_dataarray(noisy, 0.1, dx=1.0, shape=(24, 24))
    res = fit(sc, loss, LEARN, w_zero_sum=True, start=perturbed_start(), steps=200,
              progress=False)  # fmt: skip
    errors = relative_errors(res.values)
    assert max(errors.values()) < 0.10, errors
    # the fit reaches the noise floor: the loss is the observation-noise variance
    assert res.loss == pytest.approx(sigma**2, rel=0.1)


def test_fitted_scenario_reproduces_trajectory_exactly(noise_free_fit, truth_store, tmp_path):
    """``wavesim run`` on the fitted TOML gives the fitted trajectory bit for bit."""
    path = noise_free_fit.scenario_path
    text = tomllib.loads(path.read_text())
    np.testing.assert_array_equal(np.array(text["coupling"]["stencil"]), noise_free_fit.values["w"])
    for k in ("omega2", "gamma"):
        assert text["model"][k] == noise_free_fit.values[k]
    assert text["coupling"]["kappa"] == noise_free_fit.values["kappa"]
    assert main(["run", str(path), "-o", str(tmp_path / "refit.zarr"), "-q"]) == 0
    # the loss of the fitted parameters against that recording is exactly zero
    obj = Objective(path, str(tmp_path / "refit.zarr"), LEARN)
    assert obj.value(obj.space.x0) == 0.0
    # and the original recording is matched exactly as closely as the fit said
    obj0 = Objective(path, str(truth_store), LEARN)
    assert obj0.value(obj0.space.x0) == pytest.approx(noise_free_fit.loss, rel=1e-9, abs=1e-15)


def test_adam_resume_is_bitwise(truth_store, tmp_path):
    """An Adam fit interrupted at iteration 12 (checkpoint every 5) and resumed ends identical
    to an uninterrupted one; the interrupted store is readable and says it is partial."""
    kw = dict(optimizer="adam", lr=0.02, steps=20, flush_every=5, w_zero_sum=True,
              start=perturbed_start(), progress=False)  # fmt: skip
    full = fit(TRUTH, truth_store, LEARN, store=tmp_path / "full.zarr", **kw)

    def interrupt(it, values, loss):
        if it == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(TRUTH, truth_store, LEARN, store=tmp_path / "cut.zarr", callback=interrupt, **kw)
    with pytest.warns(UserWarning, match="partial"):
        cut = open_fit(tmp_path / "cut.zarr")
    assert cut.attrs["state_iteration"] == 10 and "KeyboardInterrupt" in cut.attrs["error"]
    # every evaluated iteration is kept (12); the optimizer state is that of the checkpoint (10),
    # and a resume recomputes from there
    assert cut.sizes["iteration"] == 12
    np.testing.assert_array_equal(cut["loss"].values, full.history[:12])
    res = fit(TRUTH, truth_store, LEARN, store=tmp_path / "cut.zarr", resume=True, **kw)
    np.testing.assert_array_equal(res.history, full.history)
    for name in LEARN:
        np.testing.assert_array_equal(res.values[name], full.values[name])
    ds = open_fit(tmp_path / "cut.zarr")
    assert ds.attrs["complete"] is True
    assert ds["param_w"].shape == (20, 3, 3) and ds["param_w"].attrs["units"] == "1/ms^2"
    # resuming with another configuration is refused, naming the key
    with pytest.raises(ValueError, match="w_zero_sum"):
        fit(TRUTH, truth_store, LEARN, store=tmp_path / "cut.zarr", resume=True,
            **{**kw, "w_zero_sum": False})  # fmt: skip
    # overwrite=True replaces a fit store, never a folder that is not a zarr store
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a zarr store; refusing to delete it"):
        fit(TRUTH, truth_store, LEARN, store=folder, overwrite=True, **kw)
    assert (folder / "notes.txt").read_text() == "keep me"


def test_cli_fit_writes_store_and_scenario(truth_store, tmp_path, capsys):
    scen = tmp_path / "sysid_truth.toml"
    scen.write_text(TRUTH.read_text())
    (tmp_path / "fit.toml").write_text(
        (SCENARIOS / "sysid_fit.toml")
        .read_text()
        .replace('"../runs/sysid_truth.zarr"', repr(str(truth_store)).replace("'", '"'))
    )
    assert main(["fit", str(tmp_path / "fit.toml"), "-o", str(tmp_path / "f.zarr")]) == 0
    out = capsys.readouterr().out
    assert "omega2" in out and "fitted scenario" in out
    ds = xr.open_zarr(tmp_path / "f.zarr")
    assert ds.attrs["complete"] is True and ds["loss"].values[-1] < 1e-8
    fitted = wavesim.load_scenario(tmp_path / "f.fitted.toml")
    assert fitted.model.omega2 == pytest.approx(1.2, rel=1e-3)
    assert main(["fit", str(tmp_path / "fit.toml"), "-o", str(tmp_path / "f.zarr")]) == 2
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[fit]\nscenario = "a.toml"\n', "target is required"),
        ('[fit]\nscenario = "a.toml"\ntarget = "b"\nsteps = "ten"\n', "steps expected a int"),
        ('[fit]\nscenario = "a.toml"\ntarget = "b"\nlern = ["w"]\n', "unknown key 'lern'"),
        ('[fitting]\nscenario = "a.toml"\n', r"expected a \[fit\] table"),
    ],
)
def test_malformed_fit_files_name_the_key(tmp_path, capsys, text, message):
    (tmp_path / "fit.toml").write_text(text)
    assert main(["fit", str(tmp_path / "fit.toml"), "-o", str(tmp_path / "f.zarr")]) == 2
    err = capsys.readouterr().err
    assert "fit.toml" in err
    assert pytest.importorskip("re").search(message, err), err


def test_gradient_check_on_a_user_configuration(truth_store):
    """The user-facing check passes on the sysid configuration with per-site omega2 and bias,
    away from the minimum (at the truth the gradient is 0 and FD is all rounding)."""
    res = gradient_check(TRUTH, truth_store, ("w", "kappa", "omega2", "gamma", "bias"),
                         per_site=("omega2", "bias"), n_directions=3, eps=1e-5,
                         start=perturbed_start())  # fmt: skip
    res.assert_ok(1e-6)
    assert "omega2" in str(res)


def test_per_site_maps_are_written_beside_the_scenario(tmp_path):
    sc = wavesim.load_scenario(TRUTH)
    gamma = np.linspace(0.2, 0.4, 24 * 24).reshape(24, 24)
    out = fitted_scenario(sc, {"gamma": gamma, "omega2": 1.1}, tmp_path / "sub" / "f.toml")
    assert (tmp_path / "sub" / "f_gamma.npy").is_file()
    again = wavesim.load_scenario(tmp_path / "sub" / "f.toml")
    np.testing.assert_array_equal(again.model.gamma.load(), gamma)
    assert again.model.omega2 == 1.1 and out.model.omega2 == 1.1


def test_resuming_a_finished_fit_changes_nothing(truth_store, tmp_path):
    kw = dict(w_zero_sum=True, start=perturbed_start(), steps=5, progress=False)
    first = fit(TRUTH, truth_store, LEARN, store=tmp_path / "f.zarr", **kw)
    again = fit(TRUTH, truth_store, LEARN, store=tmp_path / "f.zarr", resume=True, **kw)
    assert open_fit(tmp_path / "f.zarr").attrs["complete"] is True
    for name in LEARN:
        np.testing.assert_array_equal(again.values[name], first.values[name])
    assert first.start_loss > first.loss and again.start_loss == first.start_loss


def test_fitted_dt_keeps_the_step_counts(tmp_path):
    """A fitted dt rescales duration and record periods, so the scenario stays valid and runs
    the same number of steps."""
    sc = wavesim.load_scenario(TRUTH)
    out = fitted_scenario(sc, {"dt": 0.0997}, tmp_path / "f.toml")
    again = wavesim.load_scenario(tmp_path / "f.toml")
    assert again.run.dt == 0.0997 == out.run.dt
    assert again.n_steps == sc.n_steps and again.record_stride == sc.record_stride
