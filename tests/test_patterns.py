"""Wave-pattern classification of velocity fields, and pattern events.

Tolerances (observed in brackets):
* analytic linear fields: kind exact; position within 1e-9 mm [1e-14] (the bilinear zero of a
  linear field is exact); divergence and curl within 1e-9 of the analytic values;
* optical flow of wave movies (expanding, contracting, rotating): kind exact, position within
  0.5 px of the centre [phase movies <= 0.18 px, intensity movies <= 0.32 px]; curl of a rigidly
  rotating pattern within 20 % of 2 x its angular velocity [-10 %: smoothing near the core].
* events: kinds, frame counts and durations exact; mean positions within 0.05 px [0.026]
  (quadratic fields in some frames).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from wavesim.analysis.flow import optical_flow
from wavesim.analysis.patterns import KINDS, classify_patterns, pattern_events

X0, Y0 = 7.3, 8.6  # px, a sub-pixel centre
DX = 0.5  # mm


def _grid(n=16):
    y, x = np.mgrid[0:n, 0:n].astype(float)
    return (x - X0) * DX, (y - Y0) * DX  # mm relative to the centre


def _flow_dataset(vx, vy, dx=DX, dt=1.0):
    """Optical-flow-like Dataset from (time, y, x) arrays (velocity in mm/ms)."""
    nt, ny, nx = vx.shape
    coords = {
        "time": ("time", dt * (np.arange(nt) + 0.5), {"units": "ms"}),
        "y": ("y", dx * np.arange(ny), {"units": "mm"}),
        "x": ("x", dx * np.arange(nx), {"units": "mm"}),
    }
    return xr.Dataset(
        {
            "vx": (("time", "y", "x"), vx, {"units": "mm/ms"}),
            "vy": (("time", "y", "x"), vy, {"units": "mm/ms"}),
        },
        coords=coords,
        attrs={"dx": dx, "dt": dt},
    )


# Analytic fields (mm/ms) around (X0, Y0): J, the Jacobian in 1/ms, and the expected kind.
_FIELDS = {
    "source": (np.array([[1.0, 0.0], [0.0, 1.0]]), "source"),
    "sink": (np.array([[-1.0, 0.0], [0.0, -1.0]]), "sink"),
    "anisotropic source": (np.array([[2.0, 0.3], [0.0, 0.7]]), "source"),
    "ccw spiral": (np.array([[0.2, -1.0], [1.0, 0.2]]), "spiral_ccw"),
    "ccw centre": (np.array([[0.0, -1.0], [1.0, 0.0]]), "spiral_ccw"),
    "cw spiral (inward)": (np.array([[-0.2, 1.0], [-1.0, -0.2]]), "spiral_cw"),
    "saddle": (np.array([[1.0, 0.0], [0.0, -1.0]]), "saddle"),
    "rotated saddle": (np.array([[0.0, 1.0], [1.0, 0.0]]), "saddle"),
}


@pytest.mark.parametrize("name", list(_FIELDS))
def test_analytic_critical_points(name):
    jac, kind = _FIELDS[name]
    x, y = _grid()
    vx = jac[0, 0] * x + jac[0, 1] * y
    vy = jac[1, 0] * x + jac[1, 1] * y
    p = classify_patterns(_flow_dataset(vx[None], vy[None]))
    assert p.sizes["pattern"] == 1
    assert str(p["kind"].values[0]) == kind
    assert float(p["x"][0]) == pytest.approx(X0 * DX, abs=1e-9)
    assert float(p["y"][0]) == pytest.approx(Y0 * DX, abs=1e-9)
    # sign and scale of the Jacobian summaries: v in mm/ms over mm -> 1/ms
    assert float(p["divergence"][0]) == pytest.approx(np.trace(jac), abs=1e-9)
    assert float(p["curl"][0]) == pytest.approx(jac[1, 0] - jac[0, 1], abs=1e-9)
    assert float(p["determinant"][0]) == pytest.approx(np.linalg.det(jac), abs=1e-9)
    assert int(p["poincare_index"][0]) == (-1 if kind == "saddle" else 1)
    assert p["divergence"].attrs["units"] == "1/ms"
    assert int(p["count"].sel(category=kind).sum()) == 1


def test_missing_pixel_next_to_a_critical_point():
    # A NaN two columns right of the source's plaquette spoils the central differences at one
    # corner; the Jacobian falls back to the plaquette's own bilinear interpolant (exact here).
    x, y = _grid()
    vx, vy = x.copy(), y.copy()
    vx[8, 9] = vy[8, 9] = np.nan  # plaquette (i=8, j=7) holds the source at (7.3, 8.6) px
    p = classify_patterns(_flow_dataset(vx[None], vy[None]))
    assert p["kind"].values.tolist() == ["source"]
    assert float(p["divergence"][0]) == pytest.approx(2.0, abs=1e-9)
    assert float(p["curl"][0]) == pytest.approx(0.0, abs=1e-9)


def test_plane_wave_frame():
    # Constant flow towards 120 deg: a plane wave (order parameter 1), no critical point.
    vx = np.full((2, 12, 12), np.cos(np.deg2rad(120.0)))
    vy = np.full((2, 12, 12), np.sin(np.deg2rad(120.0)))
    vx[1] += 0.5 * np.random.default_rng(0).standard_normal((12, 12))  # frame 1: disordered
    vy[1] = np.random.default_rng(1).standard_normal((12, 12))
    p = classify_patterns(_flow_dataset(vx, vy))
    assert p["kind"].values.tolist().count("plane_wave") == 1
    pw = p.where(p["kind"] == "plane_wave", drop=True)
    assert int(pw["frame_index"][0]) == 0 and np.isnan(float(pw["x"][0]))
    assert float(pw["direction"][0]) == pytest.approx(np.deg2rad(120.0), abs=1e-12)
    assert float(p["order_parameter"][0]) == pytest.approx(1.0, abs=1e-12)
    assert float(p["order_parameter"][1]) < 0.85
    assert float(p["occupancy"].sel(category="plane_wave")) == pytest.approx(0.5)


def test_synchrony_frame_suppresses_critical_points():
    # Tiny random flow has many zeros; with a synchrony threshold above its mean speed the frame
    # is synchrony and nothing else. Below the threshold nothing is synchrony.
    rng = np.random.default_rng(2)
    vx = 1e-4 * rng.standard_normal((1, 16, 16))
    vy = 1e-4 * rng.standard_normal((1, 16, 16))
    flow = _flow_dataset(vx, vy)
    noisy = classify_patterns(flow)
    assert "synchrony" not in noisy["kind"].values and noisy.sizes["pattern"] > 1
    p = classify_patterns(flow, synchrony_threshold=1e-3)
    assert p["kind"].values.tolist() == ["synchrony"]
    assert int(p["count"].sel(category="synchrony").sum()) == 1


def test_edge_points_are_dropped():
    x, y = _grid()
    shift = (X0 - 1.4) * DX  # move the source to x = 1.4 px, inside the 2 px edge band
    p = classify_patterns(_flow_dataset((x + shift)[None], y[None]))
    assert p.sizes["pattern"] == 0
    p = classify_patterns(_flow_dataset((x + shift)[None], y[None]), edge_distance=1.0)
    assert p["kind"].values.tolist() == ["source"]
    assert float(p["x"][0]) == pytest.approx(1.4 * DX, abs=1e-9)


# --------------------------------------------------------------------------------------------
# movies -> optical flow -> patterns
# --------------------------------------------------------------------------------------------
_MOVIES = {
    # phi = omega t - k r: phase lines move outward -> flow away from the centre
    "expanding": (lambda t, r, th: 0.4 * t - 2 * np.pi / 10 * r, "source"),
    "contracting": (lambda t, r, th: 0.4 * t + 2 * np.pi / 10 * r, "sink"),
    # phi = omega t - theta: the line phi = c sits at theta = omega t - c, turning
    # counter-clockwise; the flow is a counter-clockwise rotation
    "rotating ccw": (lambda t, r, th: 0.4 * t - th, "spiral_ccw"),
    "rotating cw": (lambda t, r, th: 0.4 * t + th, "spiral_cw"),
    # a one-armed spiral wave turning counter-clockwise
    "spiral wave": (lambda t, r, th: 0.4 * t - th - 2 * np.pi / 10 * r, "spiral_ccw"),
}


@pytest.mark.parametrize("kind", ["phase", "amplitude"])
@pytest.mark.parametrize("name", list(_MOVIES))
def test_movie_patterns_from_optical_flow(name, kind):
    make, expected = _MOVIES[name]
    n, x0, y0 = 28, 13.3, 14.6
    y, x = np.mgrid[0:n, 0:n].astype(float)
    r, th = np.hypot(x - x0, y - y0), np.arctan2(y - y0, x - x0)
    t = np.arange(5.0)[:, None, None]
    phi = make(t, r, th)
    movie = np.angle(np.exp(1j * phi)) if kind == "phase" else np.cos(phi)
    flow = optical_flow(movie, kind=kind, dx=DX, dt=2.0)
    p = classify_patterns(flow)
    assert p["kind"].values.tolist() == [expected] * 4  # one per frame pair, nothing else
    assert np.abs(p["x"].values / DX - x0).max() <= 0.5
    assert np.abs(p["y"].values / DX - y0).max() <= 0.5
    ev = pattern_events(p, max_distance=0.5 * DX)
    assert ev["kind"].values.tolist() == [expected]
    assert float(ev["duration"][0]) == pytest.approx(4 * 2.0)
    if name.startswith("rotating"):
        # rigid rotation at 0.4 rad / 2 ms: curl = 2 * 0.2 / ms, a bit less after smoothing
        sense = 1.0 if expected == "spiral_ccw" else -1.0
        np.testing.assert_allclose(p["curl"], sense * 0.4, rtol=0.2)


# --------------------------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------------------------
def test_events_link_moving_points_and_frame_patterns():
    # Frames 0-5: a source drifting +0.2 px/frame; frames 2-4: a saddle 4 px away; frames 6-8:
    # a plane wave. Frame interval 2 ms.
    nt, n = 9, 20
    y, x = np.mgrid[0:n, 0:n].astype(float)
    vx = np.zeros((nt, n, n))
    vy = np.zeros((nt, n, n))
    for f in range(6):
        z = (x - (6.3 + 0.2 * f)) + 1j * (y - 9.5)  # source
        if 2 <= f <= 4:
            # times -conj(w): keeps the source (positive factor there) and adds a saddle at w = 0
            z = -z * np.conj((x - 14.2) + 1j * (y - 9.5)) / 8.0
        vx[f], vy[f] = z.real, z.imag
    vx[6:] = 1.0
    vy[6:] = 0.5
    p = classify_patterns(_flow_dataset(vx, vy, dx=1.0, dt=2.0))
    kinds = p["kind"].values.tolist()
    assert kinds.count("source") == 6 and kinds.count("saddle") == 3
    assert kinds.count("plane_wave") == 3
    ev = pattern_events(p, max_distance=0.5)
    table = {str(k): i for i, k in enumerate(ev["kind"].values)}
    assert sorted(table) == ["plane_wave", "saddle", "source"]
    src = ev.isel(event=table["source"])
    assert int(src["n_frames"]) == 6
    assert float(src["start_time"]) == pytest.approx(1.0)
    assert float(src["duration"]) == pytest.approx(12.0)  # 6 frames x 2 ms
    # frames 2-4 are quadratic fields, whose bilinear zero is off by up to 0.06 px
    assert float(src["x"]) == pytest.approx(6.3 + 0.2 * 2.5, abs=0.05)
    assert float(src["y"]) == pytest.approx(9.5, abs=1e-9)
    pw = ev.isel(event=table["plane_wave"])
    assert float(pw["duration"]) == pytest.approx(6.0) and np.isnan(float(pw["x"]))
    assert float(pw["direction"]) == pytest.approx(np.arctan2(0.5, 1.0))
    assert float(ev.isel(event=table["saddle"])["duration"]) == pytest.approx(6.0)
    # a gate smaller than the drift splits the source into one event per frame
    assert pattern_events(p, max_distance=0.1)["kind"].values.tolist().count("source") == 6
    # minimum duration
    long = pattern_events(p, max_distance=0.5, min_duration=8.0)
    assert long["kind"].values.tolist() == ["source"]


def test_batch_members_are_linked_separately():
    x, y = _grid()
    v = np.stack([x + 1j * y, -(x + 1j * y)])[:, None].repeat(3, axis=1)  # (member, time, y, x)
    da = xr.DataArray(v, dims=("member", "time", "y", "x"), coords={"member": ["a", "b"]})
    p = classify_patterns(da, dx=DX, dt=1.0)
    assert p["member_index"].values.tolist() == [0, 0, 0, 1, 1, 1]
    assert p["kind"].values.tolist() == ["source"] * 3 + ["sink"] * 3
    assert p["count"].dims == ("member", "frame", "category")
    assert p["count"].sel(member="b", category="sink").values.tolist() == [1, 1, 1]
    ev = pattern_events(p, max_distance=0.1)
    assert ev["kind"].values.tolist() == ["source", "sink"]
    assert ev["member_index"].values.tolist() == [0, 1]
    # same kind in two members at the same place: still two events
    same = xr.DataArray(np.stack([v[0], v[0]]), dims=("member", "time", "y", "x"))
    assert pattern_events(classify_patterns(same, dx=DX), max_distance=0.1).sizes["event"] == 2


def test_kinds_table_and_numpy_input():
    assert KINDS == (
        "plane_wave", "synchrony", "source", "sink", "spiral_ccw", "spiral_cw", "saddle",
    )  # fmt: skip
    x, y = _grid()
    p = classify_patterns(((x - 1j * y) / DX)[None], dx=DX)  # a saddle, numpy complex input
    assert p["kind"].values.tolist() == ["saddle"]
    assert float(p["x"][0]) == pytest.approx(X0 * DX, abs=1e-9)


def test_bad_inputs_are_named():
    x, y = _grid()
    flow = _flow_dataset(x[None], y[None])
    with pytest.raises(ValueError, match="plane_wave_threshold"):
        classify_patterns(flow, plane_wave_threshold=1.5)
    with pytest.raises(ValueError, match="synchrony_threshold"):
        classify_patterns(flow, synchrony_threshold=-1)
    with pytest.raises(ValueError, match="vy"):
        classify_patterns(flow.drop_vars("vy"))
    with pytest.raises(ValueError, match="complex"):
        classify_patterns(x[None])
    with pytest.raises(ValueError, match="max_distance"):
        pattern_events(classify_patterns(flow), max_distance=0)
    with pytest.raises(ValueError, match="classify_patterns"):
        pattern_events(flow, max_distance=1.0)
