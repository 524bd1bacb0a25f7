"""Training a bridge model: the loss falls, a resumed or interrupted run continues bit for bit,
early stopping keeps the best parameters, and the model store is readable at every point
(tiny sizes: 12 x 12 frames, an 8 x 8 lattice)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wavesim.bridge import make_splits
from wavesim.bridge.decoders import LinearDecoder
from wavesim.bridge.encoders import LinearEncoder
from wavesim.bridge.model import BridgeModel, nwm_params
from wavesim.bridge.training import open_model, open_training, train

K, H = 5, 5


@pytest.fixture(scope="module")
def splits():
    return make_splits("rotating_bars", 24, 8, 0, seed=0, size=12, frames=K + H,
                       angular_velocity=[-30.0, 30.0], width=2.0, length=7.0)  # fmt: skip


def small_model():
    enc = LinearEncoder((12, 12), (8, 8), seed=1)
    dec = LinearDecoder((8, 8), (12, 12), seed=2, bias_init=-2.0)
    return BridgeModel(enc, dec, nwm_params(coupling=1.0, gamma=0.1), steps_per_frame=4)


KW = {"observe": K, "horizon": H, "batch_size": 8, "validate_every": 5, "progress": False}


def test_training_lowers_the_validation_loss(splits):
    model = small_model()
    start = model.loss(splits.validation["frames"].values, K, H)
    res = train(model, splits, iterations=30, **KW)
    assert res.iterations == 30
    assert res.history.shape == (30,)
    assert list(res.validation_iteration) == [5, 10, 15, 20, 25, 30]
    # the best validation loss is well below the untrained model's (measured: about 0.3x)
    assert res.best_validation < 0.6 * start
    i = int(np.argmin(res.validation_loss))
    assert res.best_iteration == res.validation_iteration[i]
    assert res.best_validation == res.validation_loss[i]
    # the model is left at its best parameters
    assert model.loss(splits.validation["frames"].values, K, H) == pytest.approx(
        res.best_validation, rel=1e-12
    )
    assert res.sequences_per_second > 0


def test_resume_continues_bit_for_bit(splits, tmp_path):
    full = train(small_model(), splits, iterations=20, store=tmp_path / "a.zarr", **KW)
    train(small_model(), splits, iterations=10, store=tmp_path / "b.zarr", **KW)
    resumed = train(small_model(), splits, iterations=20, store=tmp_path / "b.zarr", resume=True,
                    **KW)  # fmt: skip
    np.testing.assert_array_equal(resumed.history, full.history)
    np.testing.assert_array_equal(resumed.validation_loss, full.validation_loss)
    np.testing.assert_array_equal(resumed.model.vector(), full.model.vector())
    # the store holds the best parameters, the history and the description of the data
    back = open_model(tmp_path / "b.zarr")
    np.testing.assert_array_equal(back.vector(), full.model.vector())
    rec = open_training(tmp_path / "b.zarr")
    np.testing.assert_array_equal(rec["loss"].values, full.history)
    assert rec.attrs["complete"] is True
    assert rec["track_lattice.w"].dims == ("check", "ky", "kx")
    data = json.loads(rec.attrs["dataset"])
    assert data["train"]["kind"] == "rotating_bars"
    assert data["train"]["shape"] == [24, K + H, 12, 12]
    with pytest.raises(ValueError, match="resume: the training in .* used lr=0.003, this call"):
        train(small_model(), splits, iterations=30, lr=0.01, store=tmp_path / "b.zarr",
              resume=True, **KW)  # fmt: skip
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        train(small_model(), splits, iterations=5, store=tmp_path / "b.zarr", **KW)
    # overwrite=True replaces a model store, never a folder that is not a zarr store
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a zarr store; refusing to delete it"):
        train(small_model(), splits, iterations=5, store=folder, overwrite=True, **KW)
    assert (folder / "notes.txt").read_text() == "keep me"


def test_interrupted_training_leaves_a_partial_store_and_resumes(splits, tmp_path):
    path = tmp_path / "m.zarr"

    def interrupt(it, model, val):
        if it == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(small_model(), splits, iterations=20, store=path, callback=interrupt, **KW)
    rec = open_training(path)
    assert rec.attrs["complete"] is False
    assert "KeyboardInterrupt" in rec.attrs["error"]
    assert rec.sizes["iteration"] == 5  # the checkpoint before the interrupted validation
    with pytest.warns(UserWarning, match="partial"):
        open_model(path)
    resumed = train(small_model(), splits, iterations=20, store=path, resume=True, **KW)
    full = train(small_model(), splits, iterations=20, **KW)
    np.testing.assert_array_equal(resumed.history, full.history)
    np.testing.assert_array_equal(resumed.model.vector(), full.model.vector())
    assert open_training(path).attrs["complete"] is True


def test_early_stopping_keeps_the_best(splits):
    # a learning rate far too large: the validation loss stops improving and training stops
    res = train(small_model(), splits, iterations=200, lr=0.3, patience=2, **KW)
    assert res.stopped_early
    assert res.iterations < 200
    i = int(np.argmin(res.validation_loss))
    assert res.best_iteration == res.validation_iteration[i]
    assert len(res.validation_loss) - 1 - i == 2  # stopped after 2 checks without improvement
    assert res.model.loss(splits.validation["frames"].values, K, H) == pytest.approx(
        res.best_validation, rel=1e-12
    )


def test_train_errors(splits):
    with pytest.raises(ValueError, match="observe \\+ horizon = 12 exceeds the 10 frames"):
        train(small_model(), splits, observe=6, horizon=6, iterations=1, progress=False)
    with pytest.raises(ValueError, match="data: expected real frames of shape"):
        train(small_model(), np.zeros((3, 10, 12)), observe=K, horizon=H, progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_model("no/such/store.zarr")


def test_weight_decay_penalizes_the_dense_weights(splits):
    from wavesim.bridge.training import _batch_indices

    lam = 0.05
    model = small_model()
    start = model.vector()
    names = ("encoder.weight", "decoder.weight_y", "decoder.weight_v")
    penalty = 0.5 * lam * sum(float(np.sum(model.parameters()[n] ** 2)) for n in names)
    x = splits.train["frames"].values
    idx = _batch_indices(x.shape[0], 8, 0, 0)
    first = model.loss(x[idx], K, H)
    res = train(model, splits, iterations=10, weight_decay=lam, **KW)
    # the first minibatch loss is the forecast MSE plus the L2 penalty of the initial weights
    assert res.history[0] == pytest.approx(first + penalty, rel=1e-10)
    plain = train(small_model(), splits, iterations=10, **KW)
    norm = {
        name: np.linalg.norm(m.parameters()["encoder.weight"])
        for name, m in (("decay", res.model), ("plain", plain.model))
    }
    assert norm["decay"] < norm["plain"]
    np.testing.assert_array_equal(small_model().vector(), start)
