"""Phase singularities of simulated scenarios: a spiral core, and pinwheels driven by a rotating
grating.

Small, fast versions of the bundled scenarios (64 x 64 sites, tens of ms).

Spiral (``scenarios/spiral.toml``, core at the lattice centre, absorbing rim)
    The initial spiral is not an eigenstate of the lattice: during the first few ms its core sheds
    pairs of defects and switches sign (the counter-rotating branch excited by the initial velocity
    briefly dominates). After 5 ms the core holds the initial charge, apart from one-frame
    "flips" in which a +-1 pair appears next to it (<= 1.2 px) and vanishes at the next frame; the
    tracker (gate 2 px, default) follows the core through them. Checked: the longest track has
    the initial charge, spans every frame from 5 to 20 ms, its mean position is within 0.5 px of
    the core and no point of it is farther than 2 px; every other track lives < 5 ms.

Rotating grating (``scenarios/pinwheel_rotation.toml``, angular speed +-9 deg/ms)
    The drive ``A exp(kappa (cos 2(theta_s(t) - theta(x)) - 1))`` with ``theta_s = Omega t`` is
    periodic in time with angular frequency ``nu = 2|Omega|`` (period 20 ms here). The tanh
    lattice (omega = 1 rad/ms, gamma = 0.3/ms) responds quasi-statically at nu = 0.31 rad/ms:
    ``y`` stays positive and ``ydot`` tiny, so the oscillator phase atan2(-ydot/omega, y) does not
    wind with the drive (no singularities at all in the settled frames). The response phase at
    the drive frequency is obtained by demodulation: ``Z(x, t) = mean over one period [t - T, t]
    of y exp(-i nu t')`` (a whole period of frames, so DC and harmonics cancel exactly), and
    ``phi = nu t + arg Z`` (phase increasing with time). For ``y ~ a cos(2 Omega t - 2 theta(x) -
    lag)`` this is ``phi = 2|Omega| t - 2 sign(Omega) theta(x) - sign(Omega) lag``, whose charge
    at a pinwheel of charge q is ``-2 q sign(Omega)`` (docs/analysis.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import map_coordinates

import wavesim
from wavesim.analysis import demodulated_phase as analysis_demodulated_phase
from wavesim.analysis import oscillator_phase, pinwheels
from wavesim.analysis.singularities import (
    charge_balance,
    phase_singularities,
    track_singularities,
)

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
N = 64
DX = 0.05
CENTRE = (N - 1) * DX / 2  # mm: the core sits at the centre of plaquette [31, 31]


# --------------------------------------------------------------------------------------------
# spiral
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=[1, -1], ids=["charge+1", "charge-1"])
def spiral_store(request, tmp_path_factory):
    charge = request.param
    scenario = wavesim.load_scenario(SCENARIOS / "spiral.toml").replace(
        {
            "lattice.shape": [N, N],
            "lattice.sponge_width": 0.4,
            "initial.position": [CENTRE, CENTRE],
            "initial.charge": charge,
            "run.duration": 20.0,
        }
    )
    path = tmp_path_factory.mktemp("spiral") / "s.zarr"
    wavesim.run(scenario, path, progress=False)
    return charge, wavesim.open_store(path)


def test_spiral_core_is_one_long_lived_singularity(spiral_store):
    charge, ds = spiral_store
    phase = oscillator_phase(ds).sel(time=slice(5.0, None))  # skip the 5 ms start-up transient
    n_frames = phase.sizes["time"]
    sings = phase_singularities(phase)
    assert sings.attrs["dx"] == pytest.approx(DX)
    tracks = track_singularities(sings, phase=phase)
    assert tracks.attrs["charge_conserved"] == 1  # net charge == boundary winding, every frame

    longest = int(np.argmax(tracks["n_points"].values))
    core = tracks.isel(track=longest)
    assert int(core["track_charge"]) == charge
    assert int(core["n_points"]) == n_frames  # present in every frame
    assert float(core["birth"]) == pytest.approx(5.0) and float(core["death"]) == pytest.approx(
        20.0
    )
    assert np.hypot(float(core["x_mean"]) - CENTRE, float(core["y_mean"]) - CENTRE) <= 0.5 * DX
    points = sings.isel(singularity=tracks["track_id"].values == longest)
    assert np.hypot(points["x"] - CENTRE, points["y"] - CENTRE).max() <= 2.0 * DX
    others = np.delete(tracks["lifetime"].values, longest)
    assert others.max(initial=0.0) < 5.0  # ms: everything else is short-lived


# --------------------------------------------------------------------------------------------
# pinwheels under a rotating grating
# --------------------------------------------------------------------------------------------
OMEGA_DEG = 9.0  # deg/ms; response period pi / Omega = 20 ms = 20 frames
DURATION = 50.0  # ms
SETTLED = 40.0  # ms: analyse frames from here (transients decay as exp(-gamma t / 2), 6.7 ms)


@pytest.fixture(scope="module", params=[1, -1], ids=["ccw", "cw"])
def grating_store(request, tmp_path_factory):
    sign = request.param
    scenario = wavesim.load_scenario(SCENARIOS / "pinwheel_rotation.toml").replace(
        {
            "lattice.shape": [N, N],
            "drive.angular_speed": sign * OMEGA_DEG,
            "run.duration": DURATION,
            "record.electrodes": None,
            "record.electrode_period": None,
        }
    )
    path = tmp_path_factory.mktemp("grating") / "g.zarr"
    wavesim.run(scenario, path, progress=False)
    ds = wavesim.open_store(path)
    theta = ds["orientation"].assign_coords(amplitude=ds["orientation_selectivity"])
    return sign, ds, pinwheels(theta, periodic=True)


def demodulated_phase(ds, nu, t_from):
    """Response phase at angular frequency ``nu`` (rad/ms) from a sliding one-period average
    (:func:`wavesim.analysis.demodulated_phase`, whose frequency is in Hz)."""
    out = analysis_demodulated_phase(ds["field"], nu / (2 * np.pi) * 1000.0)
    return out["phase"].sel(time=slice(t_from, None)).transpose("time", "y", "x")


def _torus_distance(ax, ay, bx, by, length):
    ddx = (ax - bx + length / 2) % length - length / 2
    ddy = (ay - by + length / 2) % length - length / 2
    return np.hypot(ddx, ddy)


def test_driven_phase_singularities_sit_on_pinwheels_with_charge_minus_2q_sign_omega(
    grating_store,
):
    sign, ds, pw = grating_store
    nu = 2 * np.deg2rad(OMEGA_DEG)
    # The oscillator phase (y's own oscillation) does not wind with the slow drive.
    osc = oscillator_phase(ds).sel(time=slice(SETTLED, None))
    assert phase_singularities(osc, periodic=True).sizes["singularity"] == 0

    phase = demodulated_phase(ds, nu, SETTLED)
    sings = phase_singularities(phase, periodic=True)
    length = N * DX
    n_pw = pw.sizes["pinwheel"]
    for f in range(phase.sizes["time"]):
        s = sings.isel(singularity=sings["frame"].values == f)
        d = _torus_distance(
            s["x"].values[:, None], s["y"].values[:, None], pw["x"].values, pw["y"].values, length
        )
        nearest = d.argmin(axis=1)
        assert d.min(axis=1).max() <= 1.0 * DX  # every singularity on a pinwheel (<= 1 px)
        q = pw["charge"].values[nearest]
        np.testing.assert_array_equal(s["charge"].values, -2 * q * sign)
        assert len(np.unique(nearest)) == s.sizes["singularity"]  # one per pinwheel
        assert s.sizes["singularity"] >= 0.9 * n_pw  # observed 52 of 54 (a close pair merges)
        assert int(s["charge"].sum()) == 0  # torus
    # The map is static, so the singularities are too: every track spans every frame.
    tracks = track_singularities(sings)
    assert tracks.sizes["event"] == 0
    assert (tracks["n_points"] == phase.sizes["time"]).all()


def test_activity_circulates_in_opposite_senses_around_opposite_pinwheels(grating_store):
    # Around a pinwheel of charge q, the drive peaks where theta(x) = Omega t: on a small ring
    # (polar angle a about the pinwheel, theta = q a + c) at a = (Omega t - c) / q, so the activity
    # turns by 2 pi sign(q Omega) per period pi / |Omega|. Measured by the angle of the ring's
    # first circular moment sum_a y(a) exp(i a), unwrapped over one period of settled frames.
    sign, ds, pw = grating_store
    y = ds["field"].sel(time=slice(SETTLED - 20.0, SETTLED)).values.astype(float)  # 21 frames
    px, py, q = pw["x"].values / DX, pw["y"].values / DX, pw["charge"].values
    radius = 2.0  # px
    d = _torus_distance(px[:, None], py[:, None], px[None, :], py[None, :], N)
    np.fill_diagonal(d, np.inf)
    isolated = d.min(axis=1) > 2 * radius  # the ring encloses this pinwheel only
    assert isolated.sum() >= 30
    angles = 2 * np.pi * np.arange(16) / 16
    turns = []
    for k in np.flatnonzero(isolated):
        rows = py[k] + radius * np.sin(angles)
        cols = px[k] + radius * np.cos(angles)
        ring = np.stack([map_coordinates(fr, [rows, cols], order=1, mode="grid-wrap") for fr in y])
        moment = np.unwrap(np.angle(ring @ np.exp(1j * angles)))
        turns.append((moment[-1] - moment[0]) / (2 * np.pi))
    turns = np.array(turns)
    expected = np.sign(q[isolated]) * sign
    assert set(expected) == {-1.0, 1.0}  # both kinds of pinwheel are tested
    # one full turn per period, in the predicted sense (observed within 0.003 of +-1)
    np.testing.assert_allclose(turns, expected, atol=0.05)
    # ... which is the sense opposite to the charge of the phase singularity (-2 q sign Omega).
    phase = demodulated_phase(ds, 2 * np.deg2rad(OMEGA_DEG), SETTLED)
    balance = charge_balance(phase.isel(time=[0]), periodic=True)
    assert int(balance["residual"].sum()) == 0 and int(balance["net_charge"].sum()) == 0
