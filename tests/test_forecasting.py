"""Forecasting baselines and metrics against hand-computed cases and exact processes."""

from __future__ import annotations

import numpy as np
import pytest

from wavesim.forecasting import (
    RELATIVE_ERROR_THRESHOLD,
    RidgeAR,
    copy_last,
    forecast_mse,
    mean_frame,
    relative_error,
    valid_prediction_time,
)


def exact_ar2(d=3, n_seq=4, length=30, seed=1):
    """Noise-free AR(2) sequences z_t = A1 z_{t-1} + A2 z_{t-2} (stable, oscillating)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    a1 = 0.9 * q
    a2 = -0.3 * np.eye(d) + 0.05 * rng.standard_normal((d, d))
    seqs = []
    for _ in range(n_seq):
        z = [rng.standard_normal(d), rng.standard_normal(d)]
        for _ in range(length - 2):
            z.append(a1 @ z[-1] + a2 @ z[-2])
        seqs.append(np.array(z))
    return a1, a2, seqs


# ------------------------------------------------------------------------------------------
# baselines


def test_copy_last_and_its_error_on_a_ramp():
    """A ramp x_t = t·c: copy-last is off by k·c at step k, so MSE_k = k²·mean(c²)."""
    c = np.arange(1.0, 7.0).reshape(2, 3)
    movie = np.arange(10)[:, None, None] * c  # (time, y, x)
    pred = copy_last(movie[:6], 4)
    assert pred.shape == (4, 2, 3)
    np.testing.assert_array_equal(pred, np.broadcast_to(movie[5], (4, 2, 3)))
    mse = forecast_mse(pred, movie[6:10])
    np.testing.assert_allclose(mse, np.arange(1, 5) ** 2 * np.mean(c**2), rtol=1e-12)
    rel = relative_error(pred, movie[6:10])
    t = np.arange(6, 10)
    np.testing.assert_allclose(rel, (np.arange(1, 5) / t) ** 2, rtol=1e-12)


def test_batched_shapes_and_per_sequence_metrics():
    rng = np.random.default_rng(0)
    ctx = rng.standard_normal((5, 7, 4, 3))  # (n, time, y, x)
    tgt = rng.standard_normal((5, 6, 4, 3))
    pred = copy_last(ctx, 6)
    assert pred.shape == (5, 6, 4, 3)
    per = forecast_mse(pred, tgt, pooled=False)
    assert per.shape == (5, 6)
    np.testing.assert_allclose(per.mean(axis=0), forecast_mse(pred, tgt), rtol=1e-12)
    np.testing.assert_allclose(per[2, 3], np.mean((ctx[2, -1] - tgt[2, 3]) ** 2), rtol=1e-12)


def test_mean_frame_window():
    movie = np.arange(12.0).reshape(6, 2, 1)  # frame t holds [2t, 2t+1]
    pred = mean_frame(movie, 2, window=3)  # mean of frames 3, 4, 5
    np.testing.assert_allclose(pred[0, :, 0], [8.0, 9.0])
    np.testing.assert_allclose(mean_frame(movie, 1)[0, :, 0], [5.0, 6.0])
    np.testing.assert_array_equal(mean_frame(movie, 3, window=1), copy_last(movie, 3))
    with pytest.raises(ValueError, match="window: 7 frames requested, the context holds 6"):
        mean_frame(movie, 2, window=7)


def test_metrics_honour_the_mask():
    """Masked sites may hold NaN or anything; they change nothing."""
    target = np.ones((3, 2, 2))
    pred = np.ones((3, 2, 2)) * 2.0
    mask = np.array([[True, True], [True, False]])
    pred[:, 1, 1] = 1e9
    target[:, 1, 1] = np.nan
    np.testing.assert_allclose(forecast_mse(pred, target, mask=mask), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(relative_error(pred, target, mask=mask), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="target: has non-finite values at valid sites"):
        forecast_mse(pred, target)
    with pytest.raises(ValueError, match=r"mask: expected a boolean array of the frame's shape"):
        forecast_mse(pred, target, mask=np.ones(3, bool))


def test_valid_prediction_time_of_constructed_curves():
    assert RELATIVE_ERROR_THRESHOLD == 0.025
    assert valid_prediction_time([0.001, 0.01, 0.024, 0.026, 0.001]) == 3
    assert valid_prediction_time([0.03, 0.0]) == 0  # wrong from the first step
    assert valid_prediction_time([0.0, 0.025, 0.025]) == 3  # equal is still valid: the horizon
    assert valid_prediction_time([0.0, np.nan, 0.0]) == 1  # NaN counts as exceeding
    assert valid_prediction_time([0.01, 0.02, 0.3], dt=0.5) == 1.0
    assert valid_prediction_time([0.1, 0.2], threshold=0.15) == 1
    curves = np.array([[0.0, 0.1, 0.2], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(valid_prediction_time(curves), [1, 3])
    # a quadratic error curve e_k = (k/10)^2 crosses 0.025 after k = sqrt(2.5) -> 1.58, so
    # steps 1 (0.01) is valid and step 2 (0.04) is the first above: one valid step
    e = (np.arange(1, 11) / 10) ** 2
    assert valid_prediction_time(e) == 1


# ------------------------------------------------------------------------------------------
# RidgeAR


def test_ridge_ar_recovers_an_exact_ar2_process():
    """alpha = 0 on noise-free AR(2) sequences: A1, A2 to 1e-6, and exact forecasts."""
    a1, a2, seqs = exact_ar2()
    ar = RidgeAR(order=2, alpha=0.0, frame_ndim=1).fit(seqs)
    assert ar.n_components_ is None and ar.alpha_ == 0.0
    np.testing.assert_allclose(ar.coef_[0], a1, atol=1e-6)
    np.testing.assert_allclose(ar.coef_[1], a2, atol=1e-6)
    # z_t - mean = A1 (z_{t-1} - mean) + A2 (z_{t-2} - mean) + c needs c = (A1 + A2 - I) mean
    np.testing.assert_allclose(ar.intercept_, (a1 + a2 - np.eye(3)) @ ar.mean_, atol=1e-6)
    z = seqs[0]
    pred = ar.forecast(z[:10], 15)
    np.testing.assert_allclose(pred, z[10:25], atol=1e-8)
    assert forecast_mse(pred, z[10:25], frame_ndim=1).max() < 1e-16


def test_ridge_ar_with_tiny_alpha_and_images():
    """The same process written as 2 x 2 'images' with a tiny ridge: still 1e-6."""
    a1, a2, seqs = exact_ar2(d=4, n_seq=5)
    movies = [s.reshape(-1, 2, 2) for s in seqs]
    ar = RidgeAR(order=2, alpha=1e-12).fit(movies)
    np.testing.assert_allclose(ar.coef_[0], a1, atol=1e-6)
    np.testing.assert_allclose(ar.coef_[1], a2, atol=1e-6)
    pred = ar.forecast(np.stack([m[:8] for m in movies]), 5)  # batched contexts
    assert pred.shape == (5, 5, 2, 2)
    np.testing.assert_allclose(pred, np.stack([m[8:13] for m in movies]), atol=1e-6)


def test_ridge_ar_pca_basis_is_exact_for_low_rank_movies():
    """A 3-dim AR(2) process embedded in 50-pixel frames: 3 components suffice, exactly."""
    a1, a2, seqs = exact_ar2(d=3, n_seq=4, length=40)
    rng = np.random.default_rng(5)
    basis, _ = np.linalg.qr(rng.standard_normal((50, 3)))
    movies = [s @ basis.T + 2.0 for s in seqs]  # (time, 50) frames with an offset
    ar = RidgeAR(order=2, alpha=0.0, n_components=3, frame_ndim=1).fit(movies)
    assert ar.components_.shape == (3, 50)
    pred = ar.forecast(movies[1][:12], 10)
    np.testing.assert_allclose(pred, movies[1][12:22], atol=1e-8)


def test_ridge_ar_validation_picks_the_right_components_and_shrinkage():
    """Noisy low-rank data: validation picks few components and a ridge that forecasts better
    than copy-last; scores of every candidate are kept."""
    rng = np.random.default_rng(2)
    t = np.arange(400) * 0.2
    modes = rng.standard_normal((2, 64))
    clean = np.cos(t)[:, None] * modes[0] + np.sin(0.7 * t)[:, None] * modes[1]
    movie = (clean + 0.3 * rng.standard_normal(clean.shape)).reshape(-1, 8, 8)
    ar = RidgeAR(order=3, n_components="auto", val_horizon=5).fit(movie[:300])
    assert ar.n_components_ is not None and ar.n_components_ <= 16
    best = min(ar.validation_, key=ar.validation_.get)  # (n_components, relative alpha)
    assert best[0] == ar.n_components_ and len(ar.validation_) > 10
    origins = range(310, 380, 7)
    ctx = np.stack([movie[o - 3 : o] for o in origins])
    tgt = np.stack([clean.reshape(-1, 8, 8)[o : o + 5] for o in origins])
    err_ar = forecast_mse(ar.forecast(ctx, 5), tgt).mean()
    err_copy = forecast_mse(copy_last(ctx, 5), tgt).mean()
    assert err_ar < 0.5 * err_copy, (err_ar, err_copy)


def test_ridge_ar_mask_and_fill():
    a1, a2, seqs = exact_ar2(d=3, n_seq=4)
    frames = [np.concatenate([s, np.full((len(s), 1), np.nan)], axis=1) for s in seqs]
    mask = np.array([True, True, True, False])
    ar = RidgeAR(order=2, alpha=0.0, frame_ndim=1, mask=mask).fit(frames)
    np.testing.assert_allclose(ar.coef_[0], a1, atol=1e-6)
    pred = ar.forecast(frames[0][:5], 3)
    assert np.all(np.isnan(pred[:, 3]))
    np.testing.assert_allclose(pred[:, :3], seqs[0][5:8], atol=1e-8)
    with pytest.raises(ValueError, match=r"sequences\[0\]: non-finite values at valid sites"):
        RidgeAR(order=2, alpha=0.0, frame_ndim=1).fit(frames)


def test_ridge_ar_errors():
    with pytest.raises(ValueError, match="order: expected a positive integer"):
        RidgeAR(order=0)
    with pytest.raises(ValueError, match="alpha: expected a finite number >= 0"):
        RidgeAR(alpha=-1.0)
    with pytest.raises(RuntimeError, match="call fit"):
        RidgeAR().forecast(np.zeros((3, 2, 2)), 2)
    with pytest.raises(ValueError, match="shorter than order"):
        RidgeAR(order=3, alpha=1.0).fit(np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="too short to hold out validation frames"):
        RidgeAR(order=3).fit(np.random.default_rng(0).standard_normal((4, 2, 2)))
    ar = RidgeAR(order=2, alpha=1.0).fit(np.random.default_rng(0).standard_normal((20, 2, 2)))
    with pytest.raises(ValueError, match=r"context: frames of shape \(3, 3\)"):
        ar.forecast(np.zeros((4, 3, 3)), 2)
    with pytest.raises(ValueError, match=r"context: expected at least 2 frame"):
        ar.forecast(np.zeros((1, 2, 2)), 2)
    with pytest.raises(ValueError, match="horizon: expected a positive integer"):
        copy_last(np.zeros((2, 2, 2)), 0)
    with pytest.raises(ValueError, match="forecast and target: expected the same shape"):
        forecast_mse(np.zeros((2, 2, 2)), np.zeros((3, 2, 2)))
