"""The analyzers on recordings, and the CLI (``wavesim info FILE``, ``wavesim analyze REC``).

A synthetic recording of a plane wave y = cos(ωt − kx) on a 24 x 24 grid with a disk aperture
(sites outside are 0, so the loader masks them), 40 Hz, wavelength 12 px, so the phase speed is
ω/k = 2π·0.04/(2π/12) = 0.48 px/ms, along +x. Its analytic phase (band 25-60 Hz, reliable
frames only) goes through the analyzers unchanged:

* without a spacing: speeds in px/ms (units "px/ms"), median local speed within 1 % of 0.48,
  direction within 1° of 0, wave vector in rad/px, plane-wave fit in px/ms;
* with dx = 0.05 mm: the same numbers times 0.05 in mm/ms;
* masked sites are NaN in every per-site output, and singularity positions are in px.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import wavesim
from wavesim.analysis import analytic_phase, optical_flow, phase_gradient, plane_wave_fit
from wavesim.analysis.summary import wave_summary
from wavesim.cli import main
from wavesim.recordings import as_recording, load, save_recording, to_nwb

FERRET = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ferret_vsd"
    / "ferret_vsd_roland2006.nwb"
)  # fmt: skip

N, NT, DT = 24, 400, 1.0  # sites, frames, ms
F_HZ, WAVELENGTH = 40.0, 12.0  # Hz, px
OMEGA = 2 * math.pi * F_HZ / 1000  # rad/ms
K = 2 * math.pi / WAVELENGTH  # rad/px
BAND = (25.0, 60.0)  # Hz
SPEED = OMEGA / K  # 0.48 px/ms


def plane_wave_movie():
    t = np.arange(NT)[:, None, None] * DT
    y, x = np.mgrid[0:N, 0:N]
    a = np.cos(OMEGA * t - K * x[None]) * np.ones((NT, N, N))
    c = (N - 1) / 2
    aperture = (x - c) ** 2 + (y - c) ** 2 <= 10.5**2
    a[:, ~aperture] = 0.0
    return a.astype(np.float32), aperture


@pytest.fixture(scope="module")
def recording():
    a, aperture = plane_wave_movie()
    rec = as_recording(a, dt=DT, source="wave.npy", units="dF/F")
    np.testing.assert_array_equal(rec["mask"].values, aperture)
    return rec


def masked_phase(rec):
    phase = analytic_phase(rec["field"], BAND)["phase"]
    phase = phase.where(rec["mask"])
    return phase.isel(time=phase["reliable"].values)


@pytest.mark.parametrize("dx", [None, 0.05])
def test_analyzers_report_units_of_the_coordinates(recording, dx):
    rec = recording if dx is None else recording.assign_coords(
        x=("x", recording["x"].values * dx, {"units": "mm"}),
        y=("y", recording["y"].values * dx, {"units": "mm"}),
    )  # fmt: skip
    su = "px" if dx is None else "mm"
    scale = 1.0 if dx is None else dx
    phase = masked_phase(rec)
    grad = phase_gradient(phase)
    assert grad["speed"].attrs["units"] == f"{su}/ms"
    assert grad["kx"].attrs["units"] == f"rad/{su}"
    inside = rec["mask"].values
    assert np.isnan(grad["speed"].values[:, ~inside]).all()
    speed = np.nanmedian(grad["speed"].values)
    assert speed == pytest.approx(SPEED * scale, rel=0.01)
    assert np.degrees(np.nanmedian(grad["direction"].values)) == pytest.approx(0.0, abs=1.0)
    fit = plane_wave_fit(phase.isel(time=slice(0, 40, 10)))
    assert fit["speed"].attrs["units"] == f"{su}/ms" and fit["wavelength"].attrs["units"] == su
    np.testing.assert_allclose(fit["speed"].values, SPEED * scale, rtol=0.01)
    np.testing.assert_allclose(fit["wavelength"].values, WAVELENGTH * scale, rtol=0.01)
    summary = wave_summary(phase.isel(time=slice(0, 60)), patterns=False)
    assert summary["speed_median"].attrs["units"] == f"{su}/ms"
    assert summary.attrs["dx_units"] == su
    assert float(summary["speed_median"]) == pytest.approx(SPEED * scale, rel=0.01)
    flow = optical_flow(rec["field"].isel(time=slice(100, 104)).where(rec["mask"]))
    assert flow["speed"].attrs["units"] == f"{su}/ms" and flow["x"].attrs["units"] == su


def test_cli_info_lists_a_recording(recording, tmp_path, capsys):
    path = to_nwb(recording, tmp_path / "wave.nwb")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "acquisition/field, ImageSeries, 400x24x24 float32, 1000 Hz, spacing not given" in out
    assert main(["info"]) == 0  # without a file: versions, as before
    assert "numba threads" in capsys.readouterr().out


def test_cli_analyze_a_recording(recording, tmp_path, capsys):
    path = to_nwb(recording, tmp_path / "wave.nwb")
    assert main(["analyze", str(path), "--band", "25", "60", "-q"]) == 2
    assert "pass -o OUT.zarr" in capsys.readouterr().err
    out = tmp_path / "wave.zarr"
    args = ["analyze", str(path), "--band", "25", "60", "--patterns", "off", "-o", str(out)]
    assert main([*args, "--start", "150", "--stop", "250"]) == 0
    text = capsys.readouterr().out
    assert "px/ms" in text and "wrote analysis/summary" in text
    store = wavesim.open_store(out)  # a complete wavesim store holding the recording
    np.testing.assert_array_equal(store["field"].values, recording["field"].values)
    summary = xr.open_zarr(out, group="analysis/summary")
    assert summary["speed_median"].attrs["units"] == "px/ms"
    assert float(summary["speed_median"]) == pytest.approx(SPEED, rel=0.01)
    assert xr.open_zarr(out, group="analysis/summary").attrs["analysis"]["band"] == [25.0, 60.0]
    # with a spacing the speeds are in mm/ms
    assert (
        main([*args, "--start", "150", "--stop", "250", "--dx", "0.05", "--overwrite", "-q"]) == 0
    )
    summary = xr.open_zarr(out, group="analysis/summary")
    assert summary["speed_median"].attrs["units"] == "mm/ms"
    assert float(summary["speed_median"]) == pytest.approx(SPEED * 0.05, rel=0.01)
    # a saved recording is a store: analyze writes into it without -o
    saved = save_recording(load(path), tmp_path / "saved.zarr")
    assert main(["analyze", str(saved), "--band", "25", "60", "--patterns", "off", "-q"]) == 0
    assert "speed_median" in xr.open_zarr(saved, group="analysis/summary")
    assert main(["analyze", str(saved), "--dx", "0.1", "-q"]) == 2
    assert "--dx applies to recordings" in capsys.readouterr().err


@pytest.mark.skipif(not FERRET.is_file(), reason="../shared/data/ferret_vsd is not available")
def test_cli_info_on_the_ferret_file(capsys):
    assert main(["info", str(FERRET)]) == 0
    out = capsys.readouterr().out
    assert "acquisition/vsd, ImageSeries, 977x25x25 float32, 1629.73 Hz, spacing not given" in out
    assert "trials: 200-450 ms" in out
