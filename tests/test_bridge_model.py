"""The bridge model: the whole gradient (decoder, lattice adjoint, encoder through the input
frames) against central finite differences (step 1e-5) -- float64, exact tanh, tiny sizes,
relative error <= 1e-6 along random directions of every parameter block -- for both losses, with
and without reconstruction and for both encoders; the forward-only paths (loss, run, forecast)
against the gradient pass; the parameter vector and the configuration round trips."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from wavesim.bridge.decoders import LinearDecoder
from wavesim.bridge.encoders import LinearEncoder, ReceptiveFieldEncoder
from wavesim.bridge.model import BridgeModel, nwm_params
from wavesim.learn.check import gradient_check

FRAME = (5, 6)
LATTICE = (4, 5)
K, H = 3, 2


def tiny_model(encoder="linear", output="sigmoid", learn=("w", "wv", "omega2", "gamma", "bias")):
    rng = np.random.default_rng(4)
    if encoder == "linear":
        enc = LinearEncoder(FRAME, LATTICE, scale=1.5, seed=1)
        enc.parameters["bias"] = 0.3 * rng.standard_normal(LATTICE)
    else:
        enc = ReceptiveFieldEncoder(rng.uniform(0, np.pi, LATTICE), FRAME, wavelength=3.0,
                                    response="energy", gain=rng.uniform(1, 3, LATTICE))  # fmt: skip
    dec = LinearDecoder(LATTICE, FRAME, output=output, scale=2.0, seed=2)
    p = replace(nwm_params(coupling=0.4, velocity=True), exact_tanh=True, bias=0.1)
    p = replace(p, wv=0.05 * rng.standard_normal((3, 3)))
    return BridgeModel(enc, dec, p, dtype=np.float64, steps_per_frame=3, learn=learn)


def frames(n=3, seed=0):
    return np.random.default_rng(seed).random((n, K + H + 1, *FRAME))


@pytest.mark.parametrize(
    "encoder,loss,reconstruction",
    [("linear", "mse", 0.0), ("linear", "bce", 0.7), ("receptive_field", "mse", 0.5)],
)
def test_model_gradient_matches_finite_differences(encoder, loss, reconstruction):
    model = tiny_model(encoder)
    x = frames()
    kw = {"loss": loss, "reconstruction": reconstruction}
    fun = model.objective(x, K, H, **kw)

    def value(z):
        model.set_vector(z)
        return model.loss(x, K, H, **kw)

    x0 = model.vector()
    res = gradient_check(fun, x0, eps=1e-5, n_directions=3, names=model.slices, value=value)
    res.assert_ok(1e-6)
    assert {lab.split(":")[0] for lab in res.labels} == set(model.slices)


def test_identity_output_gradient_and_loss_parts():
    model = tiny_model(output="identity", learn=("w", "gamma"))
    x = frames()
    r = model.value_and_grad(x, K, H, reconstruction=0.25)
    assert r.value == pytest.approx(r.forecast_loss + 0.25 * r.reconstruction_loss, rel=1e-12)
    # the forecast part equals the MSE of run()'s decoded frames against the targets
    out = model.run(x[:, :K], H)["frames"]
    mse_f = np.mean((out[:, K:] - x[:, K : K + H]) ** 2)
    mse_r = np.mean((out[:, :K] - x[:, :K]) ** 2)
    assert r.forecast_loss == pytest.approx(mse_f, rel=1e-10)
    assert r.reconstruction_loss == pytest.approx(mse_r, rel=1e-10)
    fun = model.objective(x, K, H, reconstruction=0.25)
    res = gradient_check(fun, model.vector(), eps=1e-6, n_directions=2, names=model.slices)
    res.assert_ok(1e-6)


def test_forecast_is_the_free_run_and_bce_is_zero_at_the_target():
    model = tiny_model()
    x = frames(2)
    fc = model.forecast(x[:, :K], H)
    assert fc.shape == (2, H, *FRAME)
    np.testing.assert_allclose(fc, model.run(x[:, :K], H)["frames"][:, K:], rtol=0, atol=0)
    # one sequence alone gives the same forecast (members are independent)
    np.testing.assert_allclose(model.forecast(x[1, :K], H), fc[1], rtol=1e-12, atol=1e-14)
    # the KL form of the Bernoulli loss vanishes when the targets are the model's own forecast
    targets = np.concatenate([x[:, :K], fc, x[:, K + H :]], axis=1)
    assert model.loss(targets, K, H, loss="bce") == pytest.approx(0.0, abs=1e-12)
    assert model.loss(x, K, H, loss="bce") > 1e-3


def test_run_records_the_lattice_state():
    model = tiny_model()
    x = frames(2)
    out = model.run(x[:, :K], H, every=1)
    n = (K + H) * model.steps_per_frame
    assert out["y"].shape == (2, n + 1, *LATTICE)
    np.testing.assert_array_equal(out["steps"], np.arange(n + 1))
    assert np.all(out["y"][:, 0] == 0)
    # decoding the recorded state at frame f's step reproduces the decoded frame f
    s = model.steps_per_frame
    for f in range(K + H):
        dec = model.decoder.decode(out["y"][:, (f + 1) * s], out["v"][:, (f + 1) * s])
        np.testing.assert_allclose(dec, out["frames"][:, f], rtol=1e-12)
    with pytest.raises(ValueError, match="every: expected a divisor of steps_per_frame = 3"):
        model.run(x[:, :K], H, every=2)


def test_vector_round_trip_and_config():
    model = tiny_model()
    v = model.vector()
    assert v.shape == (model.size,)
    sl = model.slices
    assert sl["encoder.weight"].stop - sl["encoder.weight"].start == 20 * 30
    v2 = v + 0.01 * np.random.default_rng(0).standard_normal(v.shape)
    v2[sl["lattice.gamma"]] = 0.3
    model.set_vector(v2)
    np.testing.assert_array_equal(model.vector(), v2)
    assert model.params.gamma == pytest.approx(0.3)
    back = BridgeModel.from_config(model.config(), model.parameters())
    np.testing.assert_array_equal(back.vector(), model.vector())
    x = frames(2)
    np.testing.assert_array_equal(back.forecast(x[:, :K], H), model.forecast(x[:, :K], H))
    # bounds: gamma and omega2 are kept >= 0
    b = model.bounds
    assert b[sl["lattice.gamma"].start] == (0.0, None)
    assert b[sl["encoder.weight"].start] == (None, None)


def test_uncoupled_lattice_has_no_coupling_gradient():
    enc = LinearEncoder(FRAME, LATTICE)
    dec = LinearDecoder(LATTICE, FRAME)
    model = BridgeModel(enc, dec, nwm_params(coupling=0.0), learn=("omega2", "gamma"))
    assert "lattice.w" not in model.slices
    assert np.all(model.params.w == 0)
    r = model.value_and_grad(frames(), K, H)
    assert set(r.grads) == {
        "lattice.omega2",
        "lattice.gamma",
        *(f"encoder.{k}" for k in enc.parameters),
        *(f"decoder.{k}" for k in dec.parameters),
    }


def test_model_errors():
    enc = LinearEncoder(FRAME, LATTICE)
    dec = LinearDecoder(LATTICE, FRAME, output="identity")
    with pytest.raises(ValueError, match="learn: unknown lattice parameter"):
        BridgeModel(enc, dec, learn=("kappa",))
    with pytest.raises(ValueError, match="differs from the encoder"):
        BridgeModel(enc, LinearDecoder((3, 3), FRAME))
    model = BridgeModel(enc, dec)
    with pytest.raises(ValueError, match="loss='bce' needs a decoder with output='sigmoid'"):
        model.loss(frames(), K, H, loss="bce")
    with pytest.raises(ValueError, match="observe \\+ horizon = 9 exceeds the 6 frames"):
        model.loss(frames(), 5, 4)
    with pytest.raises(ValueError, match=r"frames: expected shape \(sequences, frames, 5, 6\)"):
        model.loss(np.zeros((2, 6, 4, 4)), K, H)
    with pytest.raises(ValueError, match="steps_per_frame"):
        BridgeModel(enc, dec, steps_per_frame=0)
