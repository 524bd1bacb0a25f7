"""Readouts of the bridge lattice, measured with the analyzers and checked against exact answers:

* equivariance: a drifting grating fed through an identity encoder at the lattice's resonance
  leaves a plane wave in the free run whose measured velocity is the drift direction (to 0.5
  degree) and the phase speed of the symplectic-Euler dispersion relation (to 1%);
* circulation: with the receptive-field encoder on a pinwheel map and a rotating grating, every
  pinwheel carries a phase singularity of the lattice's response (within a quarter of the
  pinwheel spacing) with charge -2 q sign(omega), for both senses of rotation and for both a
  pinwheel crystal and a random map;
* orientation tuning: probing that model with gratings recovers the map's orientations (median
  error < 3 degrees) and its pinwheels (same number); after training on rotating gratings the
  lattice's response map still has the built-in map's pinwheels (within 2) and orientations
  (median error < 10 degrees).
"""

from __future__ import annotations

import numpy as np
import pytest

from wavesim.bridge import drifting_gratings, rotating_gratings
from wavesim.bridge.decoders import LinearDecoder
from wavesim.bridge.encoders import LinearEncoder, ReceptiveFieldEncoder
from wavesim.bridge.model import BridgeModel, nwm_params
from wavesim.bridge.readout import circulation, equivariance, lattice_recording, orientation_tuning
from wavesim.maps import pinwheel_crystal, random_orientation_map

N, S, DT, C = 24, 8, 0.125, 1.0


@pytest.mark.parametrize("direction", [0.0, 90.0, 225.0])
def test_equivariance_measures_the_plane_wave_of_a_resonant_drift(direction):
    ds = drifting_gratings(1, size=N, frames=26, direction=direction, spatial_period=8.0,
                           temporal_frequency=0.2, periodic=True, phase=0.0)  # fmt: skip
    # put the drive at the lattice's resonance: the discrete dispersion of symplectic Euler
    d = np.deg2rad(float(ds["direction"][0]))
    k = 2 * np.pi / float(ds["spatial_period"][0])  # rad/px
    kx, ky = k * np.cos(d), k * np.sin(d)
    om2 = 1.0 + C * (4 * np.sin(kx / 2) ** 2 + 4 * np.sin(ky / 2) ** 2)
    omega = np.arccos(1 - DT**2 * om2 / 2) / DT  # rad/ms
    f = omega * S * DT / (2 * np.pi)  # cycles/frame
    ds = drifting_gratings(1, size=N, frames=26, direction=direction, spatial_period=8.0,
                           temporal_frequency=f, periodic=True, phase=0.0)  # fmt: skip
    enc = LinearEncoder((N, N), (N, N), weight=0.1 * np.eye(N * N))
    enc.parameters["bias"][:] = -0.05  # the grating's mean does not drive
    model = BridgeModel(enc, LinearDecoder((N, N), (N, N)), nwm_params(coupling=C, gamma=0.05),
                        steps_per_frame=S, dtype=np.float64)  # fmt: skip
    res = equivariance(model, ds, 20, 6)
    expected = omega / (k / model.lattice.dx)  # mm/ms
    assert float(res["wave_speed"][0]) == pytest.approx(expected, rel=0.01)
    err = (float(res["wave_direction"][0]) - float(ds["direction"][0]) + 180) % 360 - 180
    assert abs(err) < 0.5
    assert float(res["fit_quality"][0]) > 0.99
    np.testing.assert_array_equal(res["direction"], ds["direction"])


def rf_model(theta, size=48):
    enc = ReceptiveFieldEncoder(np.asarray(theta), (size, size), wavelength=6.0, sigma=3.0,
                                response="energy", gain=2.0)  # fmt: skip
    dec = LinearDecoder(np.shape(theta), (size, size))
    return BridgeModel(enc, dec, nwm_params(coupling=0.2, gamma=0.5), steps_per_frame=4)


@pytest.mark.parametrize("kind", ["crystal", "random"])
def test_activity_circulates_around_pinwheels(kind):
    theta = (
        pinwheel_crystal((N, N), 12.0) if kind == "crystal"
        else random_orientation_map((N, N), 12.0, seed=3)
    )  # fmt: skip
    model = rf_model(theta)
    ds = rotating_gratings(4, size=48, frames=36, angular_velocity=[10.0, -10.0],
                           spatial_period=6.0, radius=23.0, seed=1)  # fmt: skip
    assert set(ds["angular_velocity"].values) == {10.0, -10.0}
    res = circulation(model, ds)
    assert res.attrs["n_pinwheels"] >= 10
    assert res.attrs["matched_fraction"] == 1.0
    assert res.attrs["charge_rule_fraction"] == [1.0] * 4
    # opposite senses around +1/2 and -1/2 pinwheels, swapped with the rotation
    for b, w in enumerate(res["angular_velocity"].values):
        ch = res["singularity_charge"][b].values
        q = res["pinwheel_charge"].values
        assert np.all(ch[q > 0] == -np.sign(w)) and np.all(ch[q < 0] == np.sign(w))


def test_orientation_tuning_recovers_the_map():
    theta = np.asarray(pinwheel_crystal((N, N), 12.0))
    model = rf_model(theta)
    for source in ("encoder", "lattice"):
        tun = orientation_tuning(model, orientations=18, spatial_period=6.0, source=source)
        err = np.rad2deg(np.abs((tun["preferred_orientation"].values - theta + np.pi / 2)
                                % np.pi - np.pi / 2))  # fmt: skip
        assert np.median(err) < 3.0
        assert tun.attrs["n_pinwheels"] == 16
        assert 0 < tun.attrs["mean_selectivity"] < 1


def test_lattice_recording_layout():
    model = rf_model(pinwheel_crystal((N, N), 12.0))
    ds = rotating_gratings(1, size=48, frames=3, angular_velocity=10.0, seed=0)
    rec = lattice_recording(model, ds["frames"].values, 1, every=2)
    assert rec["field"].dims == ("sequence", "time", "y", "x")
    assert rec.sizes["time"] == 4 * 4 // 2 + 1
    np.testing.assert_allclose(rec["time"].values, np.arange(9) * 2 * model.dt)
    assert rec["x"].attrs["units"] == "mm"
    with pytest.raises(ValueError, match="no orientation map"):
        enc = LinearEncoder((48, 48), (N, N))
        circulation(BridgeModel(enc, LinearDecoder((N, N), (48, 48))), ds)


def test_emergent_map_of_a_trained_receptive_field_model():
    """Train a receptive-field model on rotating gratings, then probe it: the lattice's response
    map keeps the built-in map's pinwheels (measured: all 34, median error 7.5 degrees; 6.0
    untrained) while the coupling lowers the selectivity below the encoder's (0.34 < 0.73)."""
    from wavesim.analysis import pinwheels
    from wavesim.bridge import make_splits
    from wavesim.bridge.decoders import mean_bias
    from wavesim.bridge.evaluation import evaluate
    from wavesim.bridge.training import train
    from wavesim.forecasting import copy_last
    from wavesim.maps import orientation_map_from_array

    theta = np.asarray(random_orientation_map((N, N), 8.0, seed=0))
    n_builtin = int(
        pinwheels(orientation_map_from_array(theta, 0.1, periodic=True)).sizes["pinwheel"]
    )
    splits = make_splits("rotating_gratings", 64, 8, 16, seed=0, size=N, frames=12,
                         angular_velocity=[-10.0, 10.0])  # fmt: skip
    enc = ReceptiveFieldEncoder(theta, (N, N), wavelength=4.0)
    dec = LinearDecoder((N, N), (N, N), bias_init=mean_bias(float(splits.train["frames"].mean())))
    model = BridgeModel(enc, dec, nwm_params(coupling=1.0, gamma=0.1), steps_per_frame=4)
    train(model, splits, observe=6, horizon=6, iterations=60, lr=1e-2, progress=False)
    fc = {"lattice": model, "copy_last": copy_last}
    ratio = float(evaluate(fc, splits.test, 6, 6)["ratio_to_copy_last"].sel(forecaster="lattice"))
    assert ratio < 0.25  # it learned to forecast (0.63 untrained, 0.11 trained)
    maps = {}
    for source in ("encoder", "lattice"):
        maps[source] = t = orientation_tuning(model, orientations=12, spatial_period=4.0,
                                              source=source)  # fmt: skip
        d = (t["preferred_orientation"].values - theta + np.pi / 2) % np.pi - np.pi / 2
        assert np.median(np.rad2deg(np.abs(d))) < 10.0
        assert abs(t.attrs["n_pinwheels"] - n_builtin) <= 2
    assert maps["lattice"].attrs["mean_selectivity"] < maps["encoder"].attrs["mean_selectivity"]
