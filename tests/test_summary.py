"""wave_summary on fields of known answer: a plane wave and rotating spirals.

Tolerances
----------
- Plane wave φ = ωt − k·x (noise-free): median local speed within a relative 1e-9 of ω/|k|,
  IQR < 1e-9 mm/ms, circular-mean direction within 1e-9 rad, resultant length and PGD within
  1e-9 of 1 (wrapped neighbour differences are exact for a linear phase; observed ~1e-15). The
  plane-wave fit: speed within a relative 1e-6, direction within 1e-6 rad, fit quality within
  1e-9 of 1 (the optimizer's stopping point; observed ~1e-9 rad). No singularity in any frame;
  the optical flow is a plane wave in every frame pair (occupancy exactly 1, every other kind 0).
- Rotating spiral φ = ωt + m·θ, θ = atan2(y − y0, x − x0), core off the grid nodes: exactly one
  singularity of charge m in every frame, within 0.1 px of the core (observed 0.05 px), one track
  spanning every frame, no event. **exp(i(ωt − θ)) has charge −1** (θ turns by +2π along the
  counter-clockwise loop, so ωt − θ turns by −2π); its crests θ = ωt − c turn counter-clockwise,
  and so does the optical flow: the pattern is ``spiral_ccw`` in every frame pair; for m = +1 it
  is ``spiral_cw``. PGD ≤ 0.1 (observed 0.037 for this off-centre core in a 32² window).
- Block-wise processing (frames in chunks with one frame of overlap for ∂φ/∂t, optical flow with
  the frames its 4-frame stencils need) equals one pass to 1e-12 on a chirped phase, whose
  one-sided time differences at a chunk edge would differ by ~1e-2.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from wavesim.analysis import oscillator_phase, wave_summary
from wavesim.analysis import summary as summary_module
from wavesim.analysis.flow import optical_flow
from wavesim.analysis.patterns import KINDS, classify_patterns
from wavesim.analysis.summary import analyze_waves

ROOT = Path(__file__).resolve().parents[1]
N = 32
DX = 0.1  # mm
DT = 0.5  # ms
OMEGA = 0.8  # rad/ms


def grid(nt):
    t = np.arange(nt) * DT
    y = np.arange(N) * DX
    x = np.arange(N) * DX
    return t, y, x


def as_phase(phi, t, y, x):
    return xr.DataArray(
        np.angle(np.exp(1j * phi)),
        dims=("time", "y", "x"),
        coords={
            "time": ("time", t, {"units": "ms"}),
            "y": ("y", y, {"units": "mm"}),
            "x": ("x", x, {"units": "mm"}),
        },
        attrs={"units": "rad", "long_name": "test phase"},
    )


def plane_wave(direction_deg, *, nt=12, k=2.0, chirp=0.0):
    t, y, x = grid(nt)
    a = np.deg2rad(direction_deg)
    phi = (OMEGA * t + chirp * t**2)[:, None, None] - k * (
        np.cos(a) * x[None, None, :] + np.sin(a) * y[None, :, None]
    )
    return as_phase(phi, t, y, x)


X0, Y0 = 1.53, 1.48  # mm: the core sits inside plaquette [14, 15], off the nodes


def spiral(m, *, nt=16):
    t, y, x = grid(nt)
    theta = np.arctan2(y[None, :, None] - Y0, x[None, None, :] - X0)
    return as_phase(OMEGA * t[:, None, None] + m * theta, t, y, x)


def check_units(ds):
    for name, var in ds.variables.items():
        assert "units" in var.attrs, f"{name} has no units attribute"


# --------------------------------------------------------------------------------------------
# plane wave
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("direction", [35.0, -125.0])  # not on a 10-degree bin edge
def test_plane_wave_speed_direction_and_no_singularities(direction):
    k = 2.0
    speed = OMEGA / k  # 0.4 mm/ms
    s = wave_summary(plane_wave(direction, k=k))
    check_units(s)
    assert s["speed_median"].attrs["units"] == "mm/ms"
    assert float(s["speed_median"]) == pytest.approx(speed, rel=1e-9)
    assert float(s["speed_iqr"]) < 1e-9
    a = np.deg2rad(direction)
    assert abs(np.angle(np.exp(1j * (float(s["direction_circular_mean"]) - a)))) < 1e-9
    assert float(s["direction_resultant_length"]) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(s["pgd"], 1.0, atol=1e-9)
    # the fit stops at its optimizer tolerance (observed ~1e-9): 1e-6 as in test_analysis_velocity
    np.testing.assert_allclose(s["plane_wave_speed"], speed, rtol=1e-6)
    np.testing.assert_allclose(np.angle(np.exp(1j * (s["plane_wave_direction"] - a))), 0, atol=1e-6)
    np.testing.assert_allclose(s["plane_wave_fit_quality"], 1.0, atol=1e-9)
    np.testing.assert_allclose(s["local_speed_median"], speed, rtol=1e-9)

    # every local speed is in one histogram bin, the one holding 0.4 mm/ms
    counts = s["speed_count"].values
    assert counts.sum() + int(s["speed_below"]) + int(s["speed_above"]) == 12 * N * N
    assert int(s["speed_above"]) == int(s["speed_below"]) == 0
    (full,) = np.flatnonzero(counts)
    assert s["speed_bin_lower"][full] <= speed <= s["speed_bin_upper"][full]
    assert s["direction_count"].sum() == 12 * N * N
    (dbin,) = np.flatnonzero(s["direction_count"].values)
    assert s["direction_bin_lower"][dbin] <= a <= s["direction_bin_upper"][dbin]

    assert int(s["singularities_positive"].sum()) == int(s["singularities_negative"].sum()) == 0
    assert int(s["n_tracks"]) == 0 and int(s["event_count"].sum()) == 0
    occupancy = dict(zip(s["category"].values, s["pattern_occupancy"].values, strict=True))
    assert occupancy["plane_wave"] == 1.0
    assert all(v == 0.0 for kind, v in occupancy.items() if kind != "plane_wave")
    assert s.attrs["frames"] == 12 and s.attrs["pattern_frame_pairs"] == 11


# --------------------------------------------------------------------------------------------
# rotating spirals
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("m, rotation", [(-1, "spiral_ccw"), (1, "spiral_cw")])
def test_rotating_spiral_one_singularity_one_track(m, rotation):
    nt = 16
    parts = analyze_waves(spiral(m, nt=nt))
    s = parts["summary"]
    check_units(s)
    same = s["singularities_positive"] if m > 0 else s["singularities_negative"]
    other = s["singularities_negative"] if m > 0 else s["singularities_positive"]
    np.testing.assert_array_equal(same, np.ones(nt))
    np.testing.assert_array_equal(other, np.zeros(nt))
    np.testing.assert_array_equal(s["net_charge"], np.full(nt, m))
    assert float(s["singularities_per_frame"]) == 1.0
    sings = parts["singularities"]
    assert np.hypot(sings["x"] - X0, sings["y"] - Y0).max() <= 0.1 * DX

    assert int(s["n_tracks"]) == 1 and int(s["n_tracks_censored"]) == 1
    assert float(s["lifetime_mean"]) == pytest.approx((nt - 1) * DT)
    assert int(s["lifetime_count"].sum()) == 1
    assert int(s["event_count"].sum()) == 0
    assert s.attrs["charge_conserved"] == 1
    assert parts["tracks"]["track_charge"].values.tolist() == [m]

    occupancy = dict(zip(s["category"].values, s["pattern_occupancy"].values, strict=True))
    assert occupancy[rotation] == 1.0
    assert all(v == 0.0 for kind, v in occupancy.items() if kind != rotation), occupancy
    assert (s["pgd"] <= 0.1).all()


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------
def test_store_dataset_gives_oscillator_phase_mask_and_periodic():
    phase = spiral(-1, nt=8)
    amp = 1.0 + 0.0 * phase
    mask = xr.ones_like(phase.isel(time=0), dtype=np.int8).drop_vars("time")
    mask[:3, :] = 0
    ds = xr.Dataset(
        {
            "field": amp * np.cos(phase),
            "field_dot": -OMEGA * amp * np.sin(phase),
            "mask": mask,
        },
        attrs={"scenario": f"[model]\nomega2 = {OMEGA**2!r}\n[lattice]\nboundary = 'periodic'\n"},
    )
    s = wave_summary(ds, patterns=False)
    assert s.attrs["periodic"] == 1 and s.attrs["phase_source"] == "oscillator phase"
    expected = wave_summary(oscillator_phase(ds).where(mask > 0), periodic=True, patterns=False)
    for name in ("speed_median", "speed_count", "pgd", "plane_wave_speed", "net_charge"):
        np.testing.assert_allclose(s[name], expected[name], rtol=1e-12, err_msg=name)
    # the mask removed rows 0-2: fewer local speeds than sites x frames
    assert s.attrs["distribution_values"] == 8 * (N - 3) * N
    assert "pattern_occupancy" not in s and s.attrs["patterns"] == 0


def test_block_processing_equals_one_pass(monkeypatch):
    phase = plane_wave(40.0, nt=14, chirp=0.05)
    whole = analyze_waves(phase)
    monkeypatch.setattr(summary_module, "_CHUNK_VALUES", 5 * N * N)  # 5-frame blocks
    blocks = analyze_waves(phase)
    for name in ("pgd", "local_speed_median", "plane_wave_speed", "speed_count", "speed_median"):
        np.testing.assert_allclose(
            blocks["summary"][name], whole["summary"][name], rtol=1e-12, err_msg=name
        )
    # ... and the block-wise optical flow equals one optical_flow call on the whole movie
    direct = classify_patterns(optical_flow(phase, kind="phase"))
    for name in ("order_parameter", "mean_speed", "count"):
        np.testing.assert_allclose(blocks["patterns"][name], direct[name], rtol=1e-12)
    # the chirp makes one-sided time differences differ: the check above can fail
    assert whole["summary"]["local_speed_median"].diff("time").std() > 1e-3


def test_distribution_sampling_and_pattern_stride(monkeypatch):
    monkeypatch.setattr(summary_module, "_SAMPLE_VALUES", 4 * N * N)  # 12 frames -> every 3rd
    s = wave_summary(plane_wave(0.0, nt=12), pattern_stride=4)
    assert s.attrs["distribution_frame_stride"] == 3
    assert s.attrs["distribution_values"] == 4 * N * N  # frames 0, 3, 6, 9
    assert s.attrs["pattern_stride"] == 4 and s.attrs["pattern_frame_pairs"] == 3  # 0, 4, 8
    assert float(s["pattern_occupancy"].sel(category="plane_wave")) == 1.0
    assert list(s["category"].values) == list(KINDS)


def test_reliable_frames_only():
    phase = plane_wave(0.0, nt=12)
    reliable = np.zeros(12, dtype=bool)
    reliable[3:9] = True
    s = wave_summary(phase.assign_coords(reliable=("time", reliable)), patterns=False)
    assert s.sizes["time"] == 6 and float(s["time"][0]) == 3 * DT
    with pytest.raises(ValueError, match="no frame of the phase is reliable"):
        wave_summary(phase.assign_coords(reliable=("time", np.zeros(12, bool))))


@pytest.mark.parametrize(
    "make, kwargs, error, match",
    [
        (lambda: plane_wave(0.0).expand_dims(member=2), {}, ValueError, r"isel\(member=0\)"),
        (lambda: plane_wave(0.0).assign_attrs(units="deg"), {}, ValueError, "degrees"),
        (lambda: plane_wave(0.0).values, {}, TypeError, "DataArray"),
        (lambda: plane_wave(0.0, nt=1), {}, ValueError, "at least 2 frames"),
        (lambda: plane_wave(0.0), {"speed_bins": [1.0, 0.5]}, ValueError, "speed_bins"),
        (lambda: plane_wave(0.0), {"pattern_stride": 0}, ValueError, "pattern_stride"),
        (lambda: plane_wave(0.0), {"omega": 1.0}, ValueError, "omega"),
        (lambda: plane_wave(0.0), {"speed_range": (1.0, 0.0)}, ValueError, "speed_range"),
    ],
)
def test_errors_name_the_argument(make, kwargs, error, match):
    with pytest.raises(error, match=match):
        wave_summary(make(), **kwargs)


def test_explicit_bins_and_units():
    edges = np.linspace(0.05, 1.05, 11)
    s = wave_summary(plane_wave(0.0), speed_bins=edges, lifetime_bins=[0.0, 1.0, 2.0],
                     patterns=False)  # fmt: skip
    np.testing.assert_array_equal(s["speed_bin_lower"], edges[:-1])
    np.testing.assert_array_equal(s["speed_bin_upper"], edges[1:])
    assert (
        int(s["speed_count"].sel(speed_bin=0.4, method="nearest")) == 12 * N * N
    )  # in [0.35, 0.45)
    assert s["speed_bin"].attrs["units"] == "mm/ms" and s["lifetime_bin"].attrs["units"] == "ms"
    assert s.sizes["lifetime_bin"] == 2


# --------------------------------------------------------------------------------------------
# docs/analysis.md: its Python blocks run (tests/test_docs.py executes only its own pages)
# --------------------------------------------------------------------------------------------
def test_analysis_page_examples_run(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "docs" / "analysis.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```\s*$", text, flags=re.M | re.S)
    assert blocks, "docs/analysis.md has no python blocks"
    namespace: dict = {"__name__": "docs_analysis"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for i, block in enumerate(blocks):
            exec(compile(block, f"<analysis.md python block {i + 1}>", "exec"), namespace)  # noqa: S102
    assert math.isfinite(float(namespace["summary"]["speed_median"]))
