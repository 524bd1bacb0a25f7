"""Preprocessing of recordings, checked against exact answers.

* dF/F of F = F0 (1 + s(t)) with s = 0 over the baseline window is s (to 1e-12);
* detrending removes an exact linear (and quadratic) trend (to 1e-9 of the trend's size);
* band-pass 5-20 Hz (order 4, 1 kHz, 2 s): a 10 Hz sinusoid keeps its amplitude within 1 % and
  an 80 Hz one is attenuated below 1 % on the reliable samples;
* masked Gaussian smoothing keeps a constant field constant (to 1e-12) and never produces NaN
  inside the mask, nor a value outside it;
* block-mean downsampling preserves the mean (to 1e-12) and the pixel-centre coordinates;
* Delaunay-linear interpolation of bad pixels or channels reproduces a linear field (to 1e-10);
* a 10 x 10 Utah array without corners has 96 channels that land on the right pixels.
"""

from __future__ import annotations

import numpy as np
import pytest

from wavesim.recordings import (
    RecordingError,
    apply_mask,
    as_recording,
    bandpass,
    baseline_normalize,
    detrend,
    downsample,
    interpolate_bad,
    smooth,
    to_grid,
    utah_layout,
)


def disk_mask(n, r):
    y, x = np.mgrid[0:n, 0:n]
    c = (n - 1) / 2
    return (x - c) ** 2 + (y - c) ** 2 <= r * r


def test_apply_mask_sets_nan_outside():
    a = np.ones((5, 6, 6))
    a[:, 0, :] = 0.0  # zero for all time
    user = np.ones((6, 6), bool)
    user[3, 3] = False
    out = apply_mask(as_recording(a, dt=1.0), user)
    assert int((~out["mask"]).sum()) == 7
    assert np.isnan(out["field"].values[:, ~out["mask"].values]).all()
    assert np.isfinite(out["field"].values[:, out["mask"].values]).all()
    assert "apply_mask" in out.attrs["preprocessing"][-1]


def test_baseline_normalize_modes():
    t = np.arange(100) * 2.0  # ms
    s = np.where(t >= 50, np.sin(t / 7.0), 0.0)
    f0 = np.linspace(1.0, 3.0, 12).reshape(3, 4)
    rec = as_recording(f0[None] * (1 + s[:, None, None]), dt=2.0)
    dff = baseline_normalize(rec, (0, 49))
    np.testing.assert_allclose(dff["field"].values, np.broadcast_to(s[:, None, None], (100, 3, 4)),
                               atol=1e-12)  # fmt: skip
    assert dff["field"].attrs["units"] == "1"
    sub = baseline_normalize(rec, (0, 49), mode="subtract")
    np.testing.assert_allclose(sub["field"].values, f0[None] * s[:, None, None], atol=1e-12)
    noisy = as_recording(np.random.default_rng(0).standard_normal((200, 2, 2)) * 3 + 5, dt=1.0)
    z = baseline_normalize(noisy, (0, 199), mode="zscore")["field"].values
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-12)
    with pytest.raises(RecordingError, match="holds no frame"):
        baseline_normalize(rec, (500, 600))
    zero = as_recording(np.concatenate([np.zeros((10, 1, 2)), np.ones((10, 1, 2))]), dt=1.0)
    with pytest.raises(RecordingError, match="non-zero baseline"):
        baseline_normalize(zero, (0, 5))


def test_detrend_removes_exact_polynomials():
    t = np.arange(300) * 0.5
    a = np.arange(6.0).reshape(2, 3)
    b = np.linspace(-2, 2, 6).reshape(2, 3)
    lin = a[None] + b[None] * t[:, None, None]
    out = detrend(as_recording(lin, dt=0.5), order=1)["field"].values
    assert np.abs(out).max() < 1e-9 * np.abs(lin).max()
    quad = lin + 0.01 * (t[:, None, None] - 40) ** 2
    assert np.abs(detrend(as_recording(quad, dt=0.5), order=2)["field"].values).max() < 1e-9 * 100
    # a cosine of whole periods (orthogonal to 1 and t) on top of the trend survives unchanged
    wave = np.cos(2 * np.pi * t / 50.0)[:, None, None] * np.ones((1, 2, 3))
    kept = detrend(as_recording(lin + wave, dt=0.5), order=1)["field"].values
    assert np.abs(kept - wave).max() < 0.02
    nan = lin.copy()
    nan[5, 0, 0] = np.nan
    got = detrend(as_recording(nan, dt=0.5))["field"].values
    assert np.isnan(got[:, 0, 0]).all() and np.isfinite(got[:, 1:, :]).all()


def test_bandpass_keeps_in_band_and_removes_out_of_band():
    dt = 1.0  # ms: 1 kHz
    t = np.arange(2000) * dt
    inband = np.cos(2 * np.pi * 10 * t / 1000)
    outband = np.cos(2 * np.pi * 80 * t / 1000)
    data = np.stack([inband, outband, inband + outband], axis=1)[:, None, :]  # (t, 1, 3)
    out = bandpass(as_recording(data, dt=dt), (5, 20))
    rel = out["reliable"].values
    assert rel.sum() > 1000 and out["reliable"].attrs["edge_units"] == "ms"
    y = out["field"].values[rel, 0]
    assert np.abs(y[:, 0] - inband[rel]).max() < 0.01
    assert np.abs(y[:, 1]).max() < 0.01
    assert np.abs(y[:, 2] - inband[rel]).max() < 0.01
    assert out.attrs["band"] == [5.0, 20.0]
    # downsampling keeps the flag: a block is reliable when all its frames are
    down = downsample(out, time=4)
    np.testing.assert_array_equal(down["reliable"].values, rel.reshape(-1, 4).all(axis=1))
    with pytest.raises(ValueError, match="Nyquist"):
        bandpass(as_recording(data, dt=dt), (5, 600))


def test_masked_smoothing_is_exact_on_constants_and_never_leaks():
    n = 21
    mask = disk_mask(n, 8)
    a = np.full((3, n, n), 2.5)
    a[:, ~mask] = 0.0
    a[1, 10, 10] = np.nan  # one bad sample inside
    rec = apply_mask(as_recording(a, dt=1.0, dx=0.05), mask)
    out = smooth(rec, 0.1)["field"].values  # sigma 0.1 mm = 2 px
    inside = mask[None] & np.isfinite(a)
    np.testing.assert_allclose(out[inside], 2.5, rtol=1e-12)
    assert np.isnan(out[:, ~mask]).all()
    assert np.isfinite(out[0][mask]).all() and np.isfinite(out[2][mask]).all()
    noise = np.random.default_rng(1).standard_normal((2, n, n))
    sm = smooth(as_recording(noise, dt=1.0), 2.0)["field"].values  # sigma in px (no dx)
    assert sm[:, 6:-6, 6:-6].std() < 0.3 * noise.std()


def test_downsample_preserves_means_and_centres():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((12, 8, 6))
    rec = as_recording(a, dt=0.5, dx=0.1)
    out = downsample(rec, time=3, space=2)
    assert out["field"].shape == (4, 4, 3)
    np.testing.assert_allclose(float(out["field"].mean()), a.mean(), rtol=1e-12)
    np.testing.assert_allclose(out["field"].values[0, 0, 0], a[:3, :2, :2].mean(), rtol=1e-12)
    np.testing.assert_allclose(out["x"].values, [0.05, 0.25, 0.45], rtol=1e-12)
    np.testing.assert_allclose(out["time"].values, [0.5, 2.0, 3.5, 5.0], rtol=1e-12)
    assert out.attrs["dt"] == 1.5 and out.attrs["dx"] == pytest.approx(0.2)
    # masked pixels do not enter the block means; an all-masked block is masked
    mask = np.ones((8, 6), bool)
    mask[:2, :2] = False
    mask[2, 2] = False
    m = downsample(as_recording(a, dt=0.5, mask=mask), space=2)
    assert not m["mask"].values[0, 0] and np.isnan(m["field"].values[:, 0, 0]).all()
    np.testing.assert_allclose(
        m["field"].values[:, 1, 1], a[:, 2:4, 2:4].reshape(12, 4)[:, 1:].mean(axis=1), rtol=1e-12
    )


def test_interpolate_bad_pixels_and_channels_is_exact_for_linear_fields():
    y, x = np.mgrid[0:9, 0:11] * 0.05
    frames = np.stack([1 + 2 * x - 3 * y, 0.5 - x + 4 * y])
    bad = np.zeros((9, 11), bool)
    bad[3, 4] = bad[4, 4] = bad[6, 8] = True
    data = frames.copy()
    data[:, bad] = 99.0
    out = interpolate_bad(as_recording(data, dt=1.0, dx=0.05), bad)
    np.testing.assert_allclose(out["field"].values, frames, atol=1e-10)
    assert out["interpolated"].values.sum() == 3 and bool(out["mask"].all())
    # default: the invalid sites of the mask; corners outside the hull stay masked
    data[:, 0, 0] = 0.0
    rec = as_recording(data, dt=1.0, dx=0.05, mask=~bad)
    filled = interpolate_bad(rec)
    assert not filled["mask"].values[0, 0]
    np.testing.assert_allclose(filled["field"].values[:, bad], frames[:, bad], atol=1e-10)
    ext = interpolate_bad(rec, extrapolate=True)
    assert bool(ext["mask"].values[0, 0])
    # electrode arrays: a bad channel of a Utah array
    ux, uy, ch = utah_layout()
    sig = np.stack([2 * ux + uy, -ux + 0.5 * uy + 1])
    sig_bad = sig.copy()
    sig_bad[:, 40] = 0.0
    arr = as_recording(sig_bad, dt=1.0, dims=("time", "channel"), x=ux, y=uy, channel=ch)
    assert not arr["mask"].values[40]  # zero at every time: invalid
    fixed = interpolate_bad(arr)
    np.testing.assert_allclose(fixed["field"].values[:, 40], sig[:, 40], atol=1e-10)


def test_utah_array_onto_a_grid():
    ux, uy, ch = utah_layout(10, 0.4)
    assert ux.size == 96
    order = np.random.default_rng(3).permutation(96)  # channels in any order
    t = np.arange(5.0)
    values = 1000 * t[:, None] + (10 * uy / 0.4 + ux / 0.4)[None]  # encodes row and column
    rec = as_recording(values[:, order], dt=1.0, dims=("time", "channel"),
                       x=ux[order], y=uy[order], channel=ch[order] + 1)  # fmt: skip
    grid = to_grid(rec)
    assert grid["field"].dims == ("time", "y", "x") and grid["field"].shape == (5, 10, 10)
    mask = grid["mask"].values
    assert mask.sum() == 96
    assert not mask[0, 0] and not mask[0, 9] and not mask[9, 0] and not mask[9, 9]
    rows, cols = np.mgrid[0:10, 0:10]
    expected = 1000 * t[:, None, None] + 10 * rows + cols
    np.testing.assert_allclose(grid["field"].values[:, mask], expected[:, mask], atol=1e-9)
    assert np.isnan(grid["field"].values[:, ~mask]).all()
    np.testing.assert_allclose(grid["x"].values, np.arange(10) * 0.4, atol=1e-12)
    assert grid.attrs["dx"] == pytest.approx(0.4)
    idx = grid["channel_index"].values
    assert idx[0, 0] == -1 and (rec["channel"].values[idx[mask]] == ch[order][idx[mask]] + 1).all()
    with pytest.raises(RecordingError, match="pitches from the nearest site"):
        to_grid(rec, pitch=0.3)
    with pytest.raises(RecordingError, match="electrode array"):
        to_grid(grid)
