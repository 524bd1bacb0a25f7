"""Bridge encoders and decoders: values against explicit formulas, gradients against central
finite differences (float64, step 1e-4, relative error <= 1e-6 along random directions), the
receptive fields' orientation tuning against the orientation map, and configuration round trips.
"""

from __future__ import annotations

import numpy as np
import pytest

from wavesim.bridge.decoders import LinearDecoder, decoder_from_config
from wavesim.bridge.encoders import (
    LinearEncoder,
    ReceptiveFieldEncoder,
    encoder_from_config,
    gabor_bank,
    retinotopic_centres,
)
from wavesim.maps import pinwheel_crystal

FRAME = (6, 7)
LATTICE = (4, 5)
EPS = 1e-4
RTOL = 1e-6


def _directional_check(f, params, grads, rng, n=3):
    """Central differences of the scalar f along random directions of every parameter."""
    for name, p in params.items():
        for _ in range(n):
            u = rng.standard_normal(p.shape)
            p0 = p.copy()
            params[name] = p0 + EPS * u
            fp = f()
            params[name] = p0 - EPS * u
            fm = f()
            params[name] = p0
            num = (fp - fm) / (2 * EPS)
            ana = float(np.sum(grads[name] * u))
            assert abs(num - ana) <= RTOL * max(abs(num), abs(ana), 1e-12), (name, num, ana)


def test_linear_encoder_values_and_gradient():
    rng = np.random.default_rng(0)
    enc = LinearEncoder(FRAME, LATTICE, seed=3)
    enc.parameters["bias"] = rng.standard_normal(LATTICE)
    x = rng.random((2, 3, *FRAME))
    e = enc.encode(x)
    assert e.shape == (2, 3, *LATTICE)
    w = enc.parameters["weight"].reshape(*LATTICE, *FRAME)
    expected = np.einsum("ijpq,mfpq->mfij", w, x) + enc.parameters["bias"]
    np.testing.assert_allclose(e, expected, rtol=1e-12, atol=1e-12)
    # loss L = sum(c * e) for fixed random c: dL/de = c
    c = rng.standard_normal(e.shape)
    grads = enc.backward(x, c)
    _directional_check(lambda: float(np.sum(c * enc.encode(x))), enc.parameters, grads, rng)


def test_linear_encoder_init_scale_and_errors():
    enc = LinearEncoder((32, 32), (16, 16), scale=2.0, bias=False)
    assert "bias" not in enc.parameters
    # N(0, scale^2/npix): drive std of a unit frame is about `scale`
    assert abs(enc.parameters["weight"].std() * 32 - 2.0) < 0.02
    with pytest.raises(ValueError, match=r"frames: expected shape \(members, frames, 32, 32\)"):
        enc.encode(np.zeros((1, 2, 8, 8)))
    with pytest.raises(ValueError, match="grad_inputs: expected shape"):
        enc.backward(np.zeros((1, 2, 32, 32)), np.zeros((1, 2, 8, 8)))
    with pytest.raises(ValueError, match="weight: expected shape"):
        LinearEncoder(FRAME, LATTICE, weight=np.zeros((3, 3)))
    with pytest.raises(KeyError, match="no parameter 'gain'"):
        enc.set_parameters({"gain": 1.0})


def _grating(shape, theta, period, phase=0.0):
    """Stripes of orientation theta (rad): wave vector perpendicular to them."""
    yy, xx = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    k = 2 * np.pi / period
    return 0.5 + 0.5 * np.cos(k * (-np.sin(theta) * xx + np.cos(theta) * yy) + phase)


@pytest.mark.parametrize("response", ["simple", "energy"])
def test_receptive_field_gradient(response):
    rng = np.random.default_rng(1)
    theta = rng.uniform(0, np.pi, LATTICE)
    enc = ReceptiveFieldEncoder(theta, FRAME, wavelength=4.0, response=response)
    enc.parameters["gain"] = rng.standard_normal(LATTICE)
    enc.parameters["bias"] = rng.standard_normal(LATTICE)
    x = rng.random((2, 3, *FRAME))
    e = enc.encode(x)
    r = enc.responses(x)
    np.testing.assert_allclose(e, r * enc.parameters["gain"] + enc.parameters["bias"], rtol=1e-13)
    c = rng.standard_normal(e.shape)
    grads = enc.backward(x, c)
    _directional_check(lambda: float(np.sum(c * enc.encode(x))), enc.parameters, grads, rng)


def test_receptive_fields_follow_the_orientation_map():
    """Each site's energy response peaks at the grating of its map orientation (1-degree probes:
    mean error <= 1 degree, max <= 3 degrees -- a Gaussian aperture of 4 px sampled on pixels
    shifts the peak a little), a uniform frame does not drive it (zero mean), and the energy
    peak response hardly depends on the grating's phase."""
    theta = np.asarray(pinwheel_crystal((12, 12), 8.0))
    size = (36, 36)
    enc = ReceptiveFieldEncoder(theta, size, wavelength=6.0, sigma=4.0, response="energy")
    probes = np.deg2rad(np.arange(0, 180, 1.0))
    frames = np.stack([_grating(size, t, 6.0) for t in probes])
    r = enc.responses(frames[None])[0]  # (probe, ny, nx)
    best = probes[np.argmax(r, axis=0)]
    err = np.abs((best - theta + np.pi / 2) % np.pi - np.pi / 2)
    assert np.rad2deg(err).mean() <= 1.0
    assert np.rad2deg(err).max() <= 3.0
    uniform = enc.responses(np.full((1, 1, *size), 0.7))
    assert np.abs(uniform).max() < 1e-9
    # phase invariance of the complex cell: the tuning peak of every site moves by < 8%
    # (median < 0.5%) over 8 grating phases
    peaks = []
    for phase in np.linspace(0, 2 * np.pi, 8, endpoint=False):
        shifted = np.stack([_grating(size, t, 6.0, phase=phase) for t in probes])
        peaks.append(enc.responses(shifted[None])[0].max(axis=0))
    peaks = np.array(peaks)
    spread = (peaks.max(0) - peaks.min(0)) / peaks.mean(0)
    assert spread.max() < 0.08 and np.median(spread) < 0.005
    # the simple (linear) field is the even Gabor itself: unit norm, zero mean
    g = gabor_bank(theta, size, wavelength=6.0, sigma=4.0)
    np.testing.assert_allclose(np.linalg.norm(g, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-10)


def test_retinotopy_covers_the_frame():
    cx, cy = retinotopic_centres((4, 8), (32, 32))
    np.testing.assert_allclose(cx[0], (np.arange(8) + 0.5) * 4 - 0.5)
    np.testing.assert_allclose(cy[:, 0], (np.arange(4) + 0.5) * 8 - 0.5)
    # one site per pixel when the shapes agree: centres on the pixels
    cx, cy = retinotopic_centres((5, 5), (5, 5))
    np.testing.assert_array_equal(cx[0], np.arange(5))


def test_encoder_config_round_trip():
    rng = np.random.default_rng(2)
    lin = LinearEncoder(FRAME, LATTICE, seed=5)
    lin.parameters["bias"] = rng.standard_normal(LATTICE)
    back = encoder_from_config(lin.config(), lin.parameters)
    x = rng.random((1, 2, *FRAME))
    np.testing.assert_array_equal(back.encode(x), lin.encode(x))
    rf = ReceptiveFieldEncoder(rng.uniform(0, np.pi, LATTICE), FRAME, response="energy")
    rf.parameters["gain"] = rng.standard_normal(LATTICE)
    back = encoder_from_config(rf.config(), rf.parameters)
    np.testing.assert_array_equal(back.encode(x), rf.encode(x))
    with pytest.raises(ValueError, match="encoder kind"):
        encoder_from_config({"kind": "conv"})


@pytest.mark.parametrize("output", ["identity", "sigmoid"])
@pytest.mark.parametrize("velocity", [True, False])
def test_linear_decoder_values_and_gradients(output, velocity):
    rng = np.random.default_rng(3)
    dec = LinearDecoder(LATTICE, FRAME, output=output, velocity=velocity, seed=1, scale=3.0)
    y = rng.standard_normal((3, *LATTICE))
    v = rng.standard_normal((3, *LATTICE))
    a = np.einsum("pi,mi->mp", dec.parameters["weight_y"], y.reshape(3, -1))
    if velocity:
        a += np.einsum("pi,mi->mp", dec.parameters["weight_v"], v.reshape(3, -1))
    a = a.reshape(3, *FRAME) + dec.parameters["bias"]
    expected = 1 / (1 + np.exp(-a)) if output == "sigmoid" else a
    out = dec.decode(y, v)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert out.shape == (3, *FRAME)
    c = rng.standard_normal(out.shape)
    grads, gy, gv = dec.vjp(y, v, c)
    _directional_check(lambda: float(np.sum(c * dec.decode(y, v))), dec.parameters, grads, rng)
    state = {"y": y, "v": v} if velocity else {"y": y}
    wrt_state = {"y": gy, "v": gv} if velocity else {"y": gy}
    if not velocity:
        assert gv is None
    _directional_check(
        lambda: float(np.sum(c * dec.decode(state["y"], state.get("v")))), state, wrt_state, rng
    )


def test_decoder_errors_and_config():
    dec = LinearDecoder(LATTICE, FRAME, velocity=True)
    with pytest.raises(ValueError, match="this decoder reads the velocity too"):
        dec.decode(np.zeros((1, *LATTICE)))
    with pytest.raises(ValueError, match=r"y: expected shape \(\.\.\., 4, 5\)"):
        dec.decode(np.zeros((1, 3, 3)), np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match="output: expected one of"):
        LinearDecoder(LATTICE, FRAME, output="relu")
    back = decoder_from_config(dec.config(), dec.parameters)
    y = np.random.default_rng(0).standard_normal((2, *LATTICE))
    np.testing.assert_array_equal(back.decode(y, y), dec.decode(y, y))
