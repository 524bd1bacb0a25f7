"""Bridge configuration files and the fit/forecast commands (tiny sizes): a configuration trains
a model into a store, the forecast command reproduces the model's forecasts from the store and
scores them with the baselines, and bad files get errors naming the table and key."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import xarray as xr

from wavesim.bridge.cli import (
    add_forecast_parser,
    build_model,
    cmd_fit_bridge,
    is_bridge_file,
    load_bridge_file,
    make_dataset,
)
from wavesim.bridge.training import open_model, open_training

CONFIG = """
[bridge.dataset]
generator = "rotating_bars"
n_train = 16
n_validation = 4
n_test = 4
seed = 2
size = 12
frames = 10
width = 2.0
length = 7.0
angular_velocity = [-30.0, 30.0]
initial_angle = {uniform = [0.0, 90.0]}
[bridge.dataset.test]
frames = 15

[bridge.encoder]
kind = "linear"

[bridge.decoder]
output = "sigmoid"

[bridge.lattice]
shape = [8, 8]
coupling = 1.0
gamma = 0.1
steps_per_frame = 4

[bridge.training]
observe = 5
horizon = 5
batch_size = 8
iterations = 10
validate_every = 5
"""


def parser():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit")
    fit.add_argument("fitfile")
    fit.add_argument("-o", "--output", required=True)
    fit.add_argument("--resume", action="store_true")
    fit.add_argument("--overwrite", action="store_true")
    fit.add_argument("--threads", type=int, default=None)
    fit.add_argument("-q", "--quiet", action="store_true")
    fit.set_defaults(func=cmd_fit_bridge)
    add_forecast_parser(sub)
    return p


def run(argv):
    args = parser().parse_args([str(a) for a in argv])
    return args.func(args)


def test_fit_and_forecast_commands(tmp_path, capsys):
    cfg = tmp_path / "bars.toml"
    cfg.write_text(CONFIG)
    assert is_bridge_file(cfg)
    conf = load_bridge_file(cfg)
    splits = make_dataset(conf)
    assert splits.test.sizes["frame"] == 15 and splits.train.sizes["frame"] == 10
    assert float(splits.train["initial_angle"].max()) < 90.0
    store = tmp_path / "model.zarr"
    assert run(["fit", cfg, "-o", store]) == 0
    out = capsys.readouterr().out
    assert "trained 10 iterations" in out and "| lattice |" in out and "| ridge_ar |" in out
    rec = open_training(store)
    assert rec.sizes["iteration"] == 10 and "bridge_config" in rec.attrs
    # forecast: 10 frames (beyond the 5 trained) on the stored configuration's test split
    nc = tmp_path / "fc.nc"
    assert run(["forecast", store, "--horizon", "10", "-o", nc, "-q"]) == 0
    res = xr.open_dataset(nc)
    assert list(res["forecaster"].values) == ["lattice", "copy_last", "mean_frame", "ridge_ar"]
    model = open_model(store)
    x = splits.test["frames"].values
    np.testing.assert_allclose(
        res["prediction"].sel(forecaster="lattice"), model.forecast(x[:, :5], 10), rtol=1e-6
    )
    # a saved splits store as --dataset, without baselines
    splits.to_zarr(tmp_path / "splits.zarr")
    nc2 = tmp_path / "fc2.nc"
    assert run(["forecast", store, "--dataset", tmp_path / "splits.zarr", "--no-baselines",
                "-o", nc2, "-q"]) == 0  # fmt: skip
    res2 = xr.open_dataset(nc2)
    np.testing.assert_allclose(res2["mse"].sel(forecaster="lattice"), res["mse"].isel(
        forecaster=0, step=slice(0, 5)), rtol=1e-12)  # fmt: skip
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        run(["forecast", store, "-o", nc2, "-q"])


def test_bad_configuration_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.replace("batch_size = 8", "batch = 8"))
    with pytest.raises(ValueError, match=r"\[bridge.training\] unknown key 'batch'"):
        load_bridge_file(bad)
    bad.write_text(CONFIG.replace("steps_per_frame = 4", "steps_per_frame = 'four'"))
    with pytest.raises(ValueError, match=r"\[bridge.lattice\] steps_per_frame expected a int"):
        load_bridge_file(bad)
    bad.write_text(CONFIG.replace('generator = "rotating_bars"', ""))
    with pytest.raises(ValueError, match=r"\[bridge.dataset\] generator is required"):
        load_bridge_file(bad)
    bad.write_text(CONFIG.replace("observe = 5", ""))
    with pytest.raises(ValueError, match=r"\[bridge.training\] observe is required"):
        load_bridge_file(bad)
    bad.write_text(CONFIG + "\n[bridge.optimizer]\nlr = 1\n")
    with pytest.raises(ValueError, match=r"unknown table\(s\) \[bridge.optimizer\]"):
        load_bridge_file(bad)
    bad.write_text(CONFIG.replace('kind = "linear"', 'kind = "linear"\nresponse = "energy"'))
    with pytest.raises(ValueError, match=r"\[bridge.encoder\] response is for kind"):
        build_model(load_bridge_file(bad), (12, 12))
    bad.write_text(CONFIG.replace("[bridge.decoder]", '[bridge.decoder]\nbias_init = "median"'))
    with pytest.raises(ValueError, match=r"decoder\] bias_init expected a number or 'mean'"):
        load_bridge_file(bad)
    bad.write_text(CONFIG.replace("[bridge.decoder]", "[bridge.decoder]\nbias_init = true"))
    with pytest.raises(ValueError, match=r"bias_init expected a float or str, got bool"):
        load_bridge_file(bad)
    bad.write_text(CONFIG.replace("observe = 5", "observe = = 5"))
    with pytest.raises(ValueError, match=r"bad.toml: invalid TOML at line \d+, column \d+"):
        load_bridge_file(bad)
    bad.write_text(CONFIG + "\n[fit]\nlr = 1\n")
    with pytest.raises(ValueError, match=r"unknown table\(s\) \['fit'\]; only \[bridge\] is read"):
        load_bridge_file(bad)
    with pytest.raises(FileNotFoundError, match="bridge configuration .*missing.toml"):
        load_bridge_file(tmp_path / "missing.toml")
    assert not is_bridge_file(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("extra", "mean", "expected"),
    [
        ('output = "sigmoid"', 0.2, np.log(0.2 / 0.8)),  # default: the mean pixel
        ('output = "identity"\nbias_init = "mean"', 0.2, 0.2),
        ('output = "sigmoid"\nbias_init = -1', 0.2, -1.0),
        ('output = "sigmoid"', None, 0.0),
    ],
)
def test_decoder_bias_starts_at_the_mean_pixel(tmp_path, extra, mean, expected):
    cfg = tmp_path / "dec.toml"
    cfg.write_text(CONFIG.replace('output = "sigmoid"', extra))
    model = build_model(load_bridge_file(cfg), (12, 12), mean)
    np.testing.assert_allclose(model.decoder.parameters["bias"], expected, rtol=1e-12)
    if extra == 'output = "sigmoid"':
        sig = 1 / (1 + np.exp(-model.decoder.parameters["bias"]))
        np.testing.assert_allclose(sig, 0.2 if mean else 0.5, rtol=1e-12)


def test_receptive_field_configuration(tmp_path):
    cfg = tmp_path / "rf.toml"
    cfg.write_text(
        CONFIG.replace(
            'kind = "linear"',
            'kind = "receptive_field"\nmap = "crystal"\nmap_wavelength = 8.0\nwavelength = 4.0\n'
            'response = "energy"',
        )
    )
    model = build_model(load_bridge_file(cfg), (12, 12))
    assert model.encoder.kind == "receptive_field"
    assert set(model.encoder.parameters) == {"gain", "bias"}
    assert model.lattice.shape == (8, 8)


def test_mean_bias_rejects_bad_input():
    from wavesim.bridge import mean_bias

    with pytest.raises(ValueError, match="output: expected one of"):
        mean_bias(0.2, "relu")
    with pytest.raises(ValueError, match="mean_pixel: expected a finite number"):
        mean_bias(float("nan"))
    assert mean_bias(0.0) == pytest.approx(np.log(1e-3 / (1 - 1e-3)), rel=1e-12)  # clipped


def test_bundled_bridge_configurations_load_and_build():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "scenarios"
    files = sorted(p for p in folder.glob("*.toml") if is_bridge_file(p))
    assert len(files) >= 2
    for path in files:
        cfg = load_bridge_file(path)
        size = int(cfg["dataset"]["size"])
        model = build_model(cfg, (size, size), 0.1)
        assert model.encoder.frame_shape == (size, size)
        np.testing.assert_allclose(model.decoder.parameters["bias"], np.log(0.1 / 0.9))
        assert cfg["training"]["observe"] + cfg["training"]["horizon"] <= cfg["dataset"]["frames"]
