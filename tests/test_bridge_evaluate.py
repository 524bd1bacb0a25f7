"""Evaluation of forecasters: metrics against wavesim.forecasting computed directly, an oracle
and the baselines on sequences with known answers, and the finding that a rotation at one
speed (either sense) is an exact order-2 linear recurrence of the frames."""

from __future__ import annotations

import numpy as np
import pytest

from wavesim.bridge import make_splits
from wavesim.bridge.decoders import LinearDecoder
from wavesim.bridge.encoders import LinearEncoder
from wavesim.bridge.evaluation import baselines, evaluate, results_table
from wavesim.bridge.model import BridgeModel
from wavesim.forecasting import copy_last, forecast_mse, relative_error


@pytest.fixture(scope="module")
def bars():
    return make_splits("rotating_bars", 24, 4, 6, seed=3, size=12, frames=16,
                       angular_velocity=[-30.0, 30.0], width=2.0, length=7.0)  # fmt: skip


class Oracle:
    """Knows the future: returns the test targets."""

    def __init__(self, frames, observe):
        self.frames = frames
        self.observe = observe

    def forecast(self, context, horizon):
        assert np.array_equal(context, self.frames[:, : self.observe])
        return self.frames[:, self.observe : self.observe + horizon]


def test_metrics_match_the_forecasting_functions(bars):
    test = bars.test
    x = test["frames"].values.astype(float)
    res = evaluate({"copy_last": copy_last, "oracle": Oracle(x, 6)}, test, 6, 8)
    pred = copy_last(x[:, :6], 8)
    np.testing.assert_allclose(
        res["mse"].sel(forecaster="copy_last"), forecast_mse(pred, x[:, 6:14])
    )
    np.testing.assert_allclose(
        res["relative_error"].sel(forecaster="copy_last"), relative_error(pred, x[:, 6:14])
    )
    np.testing.assert_allclose(
        res["mse_sequence"].sel(forecaster="copy_last"),
        forecast_mse(pred, x[:, 6:14], pooled=False),
    )
    assert np.all(res["mse"].sel(forecaster="oracle") == 0)
    assert int(res["valid_prediction_time"].sel(forecaster="oracle")) == 8
    assert np.all(res["valid_prediction_time_sequence"].sel(forecaster="oracle") == 8)
    # copy-last of a bar turning 30 deg/frame is invalid from the first step
    assert int(res["valid_prediction_time"].sel(forecaster="copy_last")) == 0
    assert float(res["ratio_to_copy_last"].sel(forecaster="copy_last")) == 1.0
    assert list(res["frame"].values) == list(range(6, 14))
    # the labels of the test sequences come along
    np.testing.assert_array_equal(res["angular_velocity"], test["angular_velocity"])
    table = results_table(res, steps=[1, 8])
    assert "| oracle | 0 | 0.000 | 0 | 0 | 8 |" in table


def test_a_rotation_at_one_speed_is_an_exact_order_2_recurrence(bars):
    """Pixel samples of a rotated image lie in the span of its angular harmonics, on which a
    rotation by a fixed angle acts linearly; frames turning by +a or -a both satisfy
    x_t = (R + R^-1) x_{t-1} - x_{t-2}. So the ridge AR(2) baseline forecasts rotating bars at
    +-30 deg/frame essentially exactly (relative error < 1e-5 over 10 frames), while AR(1),
    which cannot tell the sense of rotation, is no better than half of copy-last."""
    fc = baselines(bars)
    fc["ridge_ar1"] = baselines(bars, ridge_order=1)["ridge_ar"]
    res = evaluate(fc, bars.test, 6, 10)
    assert float(res["relative_error"].sel(forecaster="ridge_ar").max()) < 1e-5
    assert int(res["valid_prediction_time"].sel(forecaster="ridge_ar")) == 10
    assert float(res["ratio_to_copy_last"].sel(forecaster="ridge_ar1")) > 0.3


def test_a_model_is_a_forecaster(bars):
    enc = LinearEncoder((12, 12), (6, 6))
    model = BridgeModel(enc, LinearDecoder((6, 6), (12, 12)), steps_per_frame=2)
    res = evaluate({"lattice": model, "copy_last": copy_last}, bars.test, 6, keep_predictions=True)
    assert res.sizes["step"] == 10
    x = bars.test["frames"].values
    np.testing.assert_allclose(
        res["prediction"].sel(forecaster="lattice"), model.forecast(x[:, :6], 10), rtol=1e-6
    )


def test_evaluate_errors(bars):
    with pytest.raises(ValueError, match="observe \\+ horizon = 30 exceeds the 16 frames"):
        evaluate({"copy_last": copy_last}, bars.test, 6, 24)
    with pytest.raises(ValueError, match="forecaster 'bad': returned shape"):
        evaluate({"bad": lambda c, h: c}, bars.test, 6, 4)
    with pytest.raises(TypeError, match="forecaster: expected an object with forecast"):
        evaluate({"bad": 3}, bars.test, 6, 4)
