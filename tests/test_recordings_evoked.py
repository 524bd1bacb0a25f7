"""Evoked-response analysis: synthetic spreading responses of known onset, origin and speed, and
the real ferret VSD recording (skipped when ../shared/data is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from wavesim.recordings.evoked import evoked_response, format_evoked

ROOT = Path(__file__).resolve().parents[1]
FERRET = ROOT / ".." / "shared" / "data" / "ferret_vsd" / "ferret_vsd_roland2006.nwb"

DT = 0.5  # ms per frame


def spreading_response(
    *,
    arrival,
    n=31,
    radius=14.0,
    t_end=150.0,
    tau=5.0,
    amplitude=1.0,
    noise=0.05,
    seed=0,
):
    """A movie (time, y, x) in px: each pixel rises as A(1 - exp(-(t - t_a)/tau)) from its
    arrival time ``t_a = arrival(x, y)``, plus white noise; a disk aperture is the mask."""
    t = np.arange(0.0, t_end, DT)
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    ta = arrival(xx, yy)
    s = np.clip(t[:, None, None] - ta[None], 0.0, None)
    clean = amplitude * (1.0 - np.exp(-s / tau))
    rng = np.random.default_rng(seed)
    c = (n - 1) / 2
    mask = np.hypot(xx - c, yy - c) <= radius
    field = np.where(mask, clean + noise * rng.standard_normal(clean.shape), 0.0)
    ds = xr.Dataset(
        {"field": (("time", "y", "x"), field), "mask": (("y", "x"), mask)},
        coords={
            "time": ("time", t, {"units": "ms"}),
            "y": ("y", np.arange(n, dtype=float), {"units": "px"}),
            "x": ("x", np.arange(n, dtype=float), {"units": "px"}),
        },
    )
    return ds, ta, mask


T0, X0, Y0, SPEED = 60.0, 12.0, 17.0, 0.5  # onset (ms), origin (px), speed (px/ms)


def ring_arrival(xx, yy):
    return T0 + np.hypot(xx - X0, yy - Y0) / SPEED


@pytest.fixture(scope="module")
def ring():
    ds, ta, mask = spreading_response(arrival=ring_arrival)
    ev = evoked_response(ds, window=(50, 150), baseline=(0, 50), n_boot=200)
    return ds, ta, mask, ev


def test_expanding_ring_onset_origin_speed(ring):
    """Known answer: speed 0.5 px/ms, origin (12, 17), onset at 60 ms at the origin.

    The half-maximum latency of every pixel is t_a + tau ln 2: a cone of slope 1/speed with its
    apex at the origin, which the cone fit recovers."""
    ds, ta, mask, ev = ring
    assert ev.attrs["sign"] == "positive"
    # smoothing (1 px) blurs the apex of the latency cone and the aperture edge: 6 %
    assert abs(float(ev.speed) / SPEED - 1) < 0.06, float(ev.speed)
    assert hypot(float(ev.onset_x) - X0, float(ev.onset_y) - Y0) < 1.0
    assert hypot(float(ev.spread_x) - X0, float(ev.spread_y) - Y0) < 0.5
    # without spatial smoothing the cone fit is exact up to the noise: 1 %, apex 0.2 px
    raw = evoked_response(ds, window=(50, 150), baseline=(0, 50), sigma_space=0, n_boot=200,
                          flow=False)  # fmt: skip
    assert abs(float(raw.speed) / SPEED - 1) < 0.01, float(raw.speed)
    assert hypot(float(raw.spread_x) - X0, float(raw.spread_y) - Y0) < 0.2
    lo, hi = raw["speed_ci"].values
    assert lo < float(raw.speed) < hi and hi - lo < 0.05 * SPEED
    # onset: zero-phase smoothing (2 ms, 1 px) lets a sharp rise cross the threshold early,
    # and the earliest 10 % of pixels lie up to ~4 px from the apex (8 ms later): together the
    # onset time lands within 3 ms of the true onset at the origin, 60 ms
    assert abs(float(ev.onset_time) - T0) < 3.0, float(ev.onset_time)
    lo, hi = ev["onset_time_ci"].values
    assert lo <= float(ev.onset_time) <= hi
    # outward, isotropic: latency grows with distance, every sector within 10 % of the speed
    assert float(ev.radial_r) > 0.95
    sec = ev["sector_speed"].values
    assert np.all(np.abs(sec / SPEED - 1) < 0.1), sec
    # without any smoothing the per-pixel onset is the arrival time within 1.5 ms (90 %)
    bare = evoked_response(ds, window=(50, 150), baseline=(0, 50), sigma_space=0, sigma_time=0,
                           n_boot=0, flow=False)  # fmt: skip
    on = bare["onset"].values
    ok = np.isfinite(on)
    assert ok.sum() > 0.95 * mask.sum()
    assert np.quantile(np.abs(on[ok] - ta[ok]), 0.9) < 1.5
    text = format_evoked(ev)
    assert "px/ms" in text and "outward" in text


def test_optical_flow_during_the_rise_points_outward(ring):
    """The flow of an intensity front is outward; its speed is of the order of the spread (the
    flow of a growing, saturating front is not the front speed, so only the sign and the order
    of magnitude are checked)."""
    ev = ring[3]
    assert float(ev.flow_radial) > 0
    assert 0.1 * SPEED < float(ev.flow_speed) < 3 * SPEED


def test_negative_response_and_mm_units():
    """The same ring going negative, on a grid with 0.1 mm pixels: sign found, speed in mm/ms."""
    ds, _, _ = spreading_response(arrival=ring_arrival, amplitude=-1.0, seed=3)
    ds = ds.assign_coords(
        x=("x", ds.x.values * 0.1, {"units": "mm"}), y=("y", ds.y.values * 0.1, {"units": "mm"})
    )
    ev = evoked_response(ds, window=(50, 150), baseline=(0, 50), n_boot=50, flow=False)
    assert ev.attrs["sign"] == "negative" and ev["speed"].attrs["units"] == "mm/ms"
    assert abs(float(ev.speed) / (0.1 * SPEED) - 1) < 0.06  # as above, with 1 px smoothing
    assert abs(float(ev.spread_x) - 0.1 * X0) < 0.05


def test_planar_wave_direction_and_speed():
    """A front entering from the lower left, heading 30 deg at 0.8 px/ms: the plane fit gives
    the direction within 3 deg and the speed within 5 %."""
    d = np.deg2rad(30.0)

    def arrival(xx, yy):
        return 60.0 + (xx * np.cos(d) + yy * np.sin(d)) / 0.8

    ds, _, _ = spreading_response(arrival=arrival, t_end=200.0, seed=1)
    ev = evoked_response(ds, window=(50, 200), baseline=(0, 50), n_boot=0, flow=False)
    assert abs(float(ev.plane_direction) - 30.0) < 3.0
    assert abs(float(ev.plane_speed) / 0.8 - 1) < 0.05
    assert np.isnan(ev["speed_ci"].values).all()  # no bootstrap asked for


def test_errors_name_the_problem():
    ds, _, _ = spreading_response(arrival=ring_arrival, t_end=100.0)
    with pytest.raises(ValueError, match="no 'field' variable"):
        evoked_response(ds.rename({"field": "other"}))
    with pytest.raises(ValueError, match=r"must have dims \(time, y, x\)"):
        evoked_response(ds["field"].isel(x=0))
    with pytest.raises(ValueError, match=r"baseline = \(500, 600\) ms holds 0 frame"):
        evoked_response(ds, window=(50, 100), baseline=(500, 600))
    with pytest.raises(ValueError, match="sign must be"):
        evoked_response(ds, window=(50, 100), baseline=(0, 50), sign="up")
    quiet = ds.copy()
    quiet["field"] = quiet["field"] * 0 + np.random.default_rng(0).standard_normal(ds.field.shape)
    with pytest.raises(ValueError, match="no pixel rises 20 baseline SDs"):
        evoked_response(quiet, window=(50, 100), baseline=(0, 50), k=20.0)


def hypot(a, b):
    return float(np.hypot(a, b))


# ------------------------------------------------------------------------------------------
# the real recording


@pytest.fixture(scope="module")
def ferret():
    if not FERRET.is_file():
        pytest.skip(f"reference data not found: {FERRET} (../shared/data is absent)")
    pytest.importorskip("pynwb")
    from wavesim.recordings import load

    return load(FERRET)


def test_ferret_evoked_depolarization(ferret):
    """Roland et al. 2006 (one trial): the depolarization (negative in this file's values)
    starts near the aperture centre at about 240-250 ms and spreads outward."""
    ev = evoked_response(ferret, window=(200, 400), baseline=(150, 200), n_boot=200)
    assert ev.attrs["sign"] == "negative"
    assert 238.0 < float(ev.onset_time) < 252.0
    valid = ferret["mask"].values
    ys, xs = np.nonzero(valid)
    centre = xs.mean(), ys.mean()
    assert hypot(float(ev.onset_x) - centre[0], float(ev.onset_y) - centre[1]) < 5.0
    assert float(ev.radial_r) > 0.5  # outward
    assert 0.1 < float(ev.speed) < 1.0  # px/ms
    lo, hi = ev["speed_ci"].values
    assert lo < float(ev.speed) < hi
    assert ev["speed"].attrs["units"] == "px/ms"
