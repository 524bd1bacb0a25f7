"""Transformed-sequence datasets of the bridge: determinism, splits, labels against the frames.

Labels are checked by measuring the transformation in the frames with estimators independent of
the generators (second moments, Fourier coefficients, circular means, scipy/numpy transforms).
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from types import ModuleType

import numpy as np
import pytest
import xarray as xr
from scipy.special import erfc

from wavesim.bridge import (
    DATASETS,
    Splits,
    context_target,
    digits,
    drifting_gratings,
    make_splits,
    open_splits,
    rotating_bars,
    rotating_gratings,
    transformed_images,
    translating_blobs,
)

S = 32

SMALL = {
    "rotating_bars": dict(size=S, frames=6, angular_velocity=(-30.0, 30.0)),
    "rotating_gratings": dict(size=S, frames=6, spatial_period=(4.0, 10.0)),
    "drifting_gratings": dict(size=S, frames=6, speed=(-1.5, 1.5), periodic=True),
    "translating_blobs": dict(size=S, frames=6, n_blobs=2, sigma=(1.0, 3.0)),
    "transformed_images": dict(
        images=np.random.default_rng(0).random((3, 12, 12)), frames=4, angular_velocity=(-40, 40)
    ),
}


def _make(kind, n, seed, **over):
    return DATASETS[kind](n=n, seed=seed, **{**SMALL[kind], **over})


def _wrap(a, period):
    return (np.asarray(a) + period / 2) % period - period / 2


# ---------------------------------------------------------------------------------------------
# determinism, layout, splits
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(DATASETS))
def test_layout_range_and_determinism(kind):
    a = _make(kind, 4, seed=7)
    b = _make(kind, 4, seed=7)
    c = _make(kind, 4, seed=8)
    f = a["frames"]
    assert f.dims == ("sequence", "frame", "y", "x") and f.dtype == np.float32
    assert float(f.min()) >= 0.0 and float(f.max()) <= 1.0
    assert a["x"].attrs["units"] == "px" and a["frame"].attrs["units"] == "frame"
    assert np.array_equal(a["frame"], np.arange(a.sizes["frame"]))
    assert a.attrs["kind"] == kind and a.attrs["seed"] == 7 and a.attrs["spawn_key"] == []
    xr.testing.assert_identical(a, b)  # bit-identical frames, labels and attrs
    assert not np.array_equal(a["frames"], c["frames"])
    # every label is a coordinate along sequence with units, except indices
    labels = [k for k in a.coords if k not in a.dims]
    assert labels
    for k in labels:
        assert a[k].dims[0] == "sequence"
        assert "units" in a[k].attrs or k.startswith("image_")


@pytest.mark.parametrize("kind", sorted(DATASETS))
def test_attrs_regenerate_the_dataset(kind):
    """attrs['parameters'] and the seed are a complete description of the dataset."""
    ds = make_splits(kind, 2, 3, 1, seed=11, **SMALL[kind]).validation
    params = json.loads(ds.attrs["parameters"])
    if kind == "transformed_images":
        params["images"] = SMALL[kind]["images"]
        if ds.attrs["one_per_image"]:
            pytest.fail("make_splits draws images per sequence (n is given)")
    seed = np.random.SeedSequence(ds.attrs["seed"], spawn_key=tuple(ds.attrs["spawn_key"]))
    again = DATASETS[kind](n=ds.sizes["sequence"], seed=seed, **params)
    np.testing.assert_array_equal(again["frames"], ds["frames"])
    for k in ds.coords:
        np.testing.assert_array_equal(again[k], ds[k])


def test_prefix_stability_and_split_independence():
    small = make_splits("rotating_bars", 5, 3, 4, seed=3, **SMALL["rotating_bars"])
    big = make_splits("rotating_bars", 7, 3, 2, seed=3, **SMALL["rotating_bars"])
    xr.testing.assert_identical(small.validation, big.validation)
    xr.testing.assert_equal(small.train, big.train.isel(sequence=slice(0, 5)))
    xr.testing.assert_equal(small.test.isel(sequence=slice(0, 2)), big.test)
    # the splits are different draws, and different from a direct call with the same seed
    direct = rotating_bars(3, seed=3, **SMALL["rotating_bars"])
    firsts = [small.train, small.validation, small.test, direct]
    angles = [float(ds["initial_angle"][0]) for ds in firsts]
    assert len(set(angles)) == 4
    assert [ds.attrs["split"] for _, ds in small.items()] == ["train", "validation", "test"]
    assert small["test"] is small.test and list(small) == ["train", "validation", "test"]
    assert small.test.attrs["spawn_key"] == [2]
    with pytest.raises(KeyError, match="the splits are train, validation, test"):
        small["val"]


def test_held_out_speeds_change_only_their_split():
    kw = dict(size=S, frames=4, angular_velocity=[10.0, 30.0])
    base = make_splits(rotating_bars, 20, 5, 20, seed=1, **kw)
    held = make_splits(
        rotating_bars,
        20,
        5,
        20,
        seed=1,
        split_params={"test": {"angular_velocity": (15, 25)}},
        **kw,
    )
    xr.testing.assert_identical(base.train, held.train)
    xr.testing.assert_identical(base.validation, held.validation)
    assert set(held.train["angular_velocity"].values) == {10.0, 30.0}
    w = held.test["angular_velocity"].values
    assert np.all((w >= 15) & (w <= 25)) and np.ptp(w) > 2
    # only the speed changed: the initial angles of the test split are the same draws
    np.testing.assert_array_equal(held.test["initial_angle"], base.test["initial_angle"])


def test_splits_store_roundtrip(tmp_path):
    import zarr

    splits = make_splits("translating_blobs", 3, 2, 2, seed=4, **SMALL["translating_blobs"])
    path = splits.to_zarr(tmp_path / "data.zarr")
    back = open_splits(path)
    assert isinstance(back, Splits)
    for name, ds in splits.items():
        xr.testing.assert_identical(back[name].load(), ds)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        splits.to_zarr(path)
    splits.to_zarr(path, overwrite=True)
    # an interrupted write leaves complete=False at the root, and reading it says so
    root = zarr.open_group(str(path), mode="r+")
    root.attrs["complete"] = False
    with pytest.warns(UserWarning, match="partial"):
        open_splits(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_splits(tmp_path / "nothing.zarr")
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w", zarr_format=3)
    with pytest.raises(ValueError, match="not dataset splits"):
        open_splits(tmp_path / "other.zarr")


# ---------------------------------------------------------------------------------------------
# labels against the frames
# ---------------------------------------------------------------------------------------------
def _moment_orientation(frame):
    """Orientation (deg, mod 180) of the principal axis of an image's second moments."""
    y, x = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]].astype(float)
    m = frame.sum()
    dx, dy = x - (frame * x).sum() / m, y - (frame * y).sum() / m
    mu20, mu02, mu11 = (frame * dx * dx).sum(), (frame * dy * dy).sum(), (frame * dx * dy).sum()
    return np.degrees(0.5 * np.arctan2(2 * mu11, mu20 - mu02))


def test_bar_orientation_follows_labels():
    ds = rotating_bars(6, size=S, frames=10, angular_velocity=[-35.0, 20.0, 50.0], seed=2)
    assert set(ds["angular_velocity"].values) <= {-35.0, 20.0, 50.0}
    worst = 0.0
    for seq in ds["sequence"].values:
        s = ds.sel(sequence=seq)
        expected = float(s["initial_angle"]) + float(s["angular_velocity"]) * s["frame"].values
        measured = [_moment_orientation(f.astype(float)) for f in s["frames"].values]
        worst = max(worst, np.abs(_wrap(np.array(measured) - expected, 180.0)).max())
    assert worst < 0.05  # degrees (measured ~0.002 at edge=0.6)


def test_grating_orientation_period_and_phase_follow_labels():
    ds = rotating_gratings(
        8, size=S, frames=6, angular_velocity=[-30.0, 25.0], spatial_period=(4, 10)
    )
    c = (S - 1) / 2
    y, x = np.mgrid[0:S, 0:S].astype(float)
    X, Y = x - c, y - c
    aperture = 0.5 * erfc((np.hypot(X, Y) - (c - 2)) / np.sqrt(2))
    n_pad = 4 * S
    k = np.fft.fftfreq(n_pad)
    kx, ky = np.meshgrid(k, k)
    double = np.exp(2j * np.arctan2(ky, kx))
    worst_angle = worst_proj = 0.0
    for seq in ds["sequence"].values:
        s = ds.sel(sequence=seq)
        for t, frame in enumerate(s["frames"].values.astype(float)):
            alpha = float(s["initial_angle"]) + float(s["angular_velocity"]) * t
            # orientation: doubled-angle mean of the (zero-padded) power spectrum is the wave
            # vector's orientation; stripes are perpendicular to it
            power = np.abs(np.fft.fft2(frame - 0.5, s=(n_pad, n_pad))) ** 2
            stripes = np.degrees(np.angle((power * double).sum()) / 2) + 90
            worst_angle = max(worst_angle, abs(_wrap(stripes - alpha, 180.0)))
            # period and phase: demodulate along the labelled normal
            a = np.radians(alpha)
            normal = Y * np.cos(a) - X * np.sin(a)
            wave = np.exp(-2j * np.pi * normal / float(s["spatial_period"]))
            z = ((frame - 0.5) * wave).sum() / (0.25 * aperture.sum())
            worst_proj = max(worst_proj, abs(z - np.exp(1j * float(s["phase"]))))
    assert worst_angle < 0.05  # degrees (measured 0.006)
    assert worst_proj < 0.03  # |z - e^{i phase}| (measured 0.009; a wrong period gives ~1)


def test_drifting_grating_phase_advance_from_fourier_coefficient():
    ds = drifting_gratings(
        6, size=S, frames=8, spatial_period=(4.0, 12.0), speed=(-1.8, 1.8), periodic=True, seed=9
    )
    F = np.fft.fft2(ds["frames"].values.astype(float))  # (sequence, frame, ky, kx)
    t = ds["frame"].values
    for i in range(ds.sizes["sequence"]):
        s = ds.isel(sequence=i)
        d, period = np.radians(float(s["direction"])), float(s["spatial_period"])
        mx, my = S / period * np.cos(d), S / period * np.sin(d)
        assert abs(mx - round(mx)) < 1e-9 and abs(my - round(my)) < 1e-9  # seamless on the torus
        coef = F[i, :, round(my) % S, round(mx) % S]
        # all the modulation sits in one Fourier coefficient: 0.25 * contrast * S^2
        np.testing.assert_allclose(np.abs(coef), 0.25 * S * S, rtol=1e-5)
        # F(k) = sum I exp(-i k.x) = |.| exp(-i (2 pi f t + phase))
        expected = 2 * np.pi * float(s["speed"]) / period * t + float(s["phase"])
        assert np.abs(_wrap(-np.angle(coef) - expected, 2 * np.pi)).max() < 1e-6
        assert float(s["temporal_frequency"]) == pytest.approx(float(s["speed"]) / period)
        assert float(s["orientation"]) == pytest.approx((float(s["direction"]) + 90) % 180)


def test_drifting_grating_exact_labels_and_temporal_frequency():
    ds = drifting_gratings(2, size=S, frames=3, direction=30.0, spatial_period=10.0,
                           temporal_frequency=0.1, phase=0.0)  # fmt: skip
    np.testing.assert_allclose(ds["direction"], 30.0)
    np.testing.assert_allclose(ds["speed"], 1.0)
    np.testing.assert_allclose(ds["orientation"], 120.0)
    # pixel (x=0, y=0) shows cos(2 pi f t + phase)
    np.testing.assert_allclose(
        ds["frames"].values[0, :, 0, 0],
        0.5 + 0.5 * np.cos(2 * np.pi * 0.1 * np.arange(3)),
        atol=1e-6,
    )


def _circular_centroid(frames, axis):
    e = np.exp(2j * np.pi * np.arange(S) / S)
    marginal = frames.sum(axis=-2 if axis == "x" else -1)
    return np.angle((marginal * e).sum(-1)) * S / (2 * np.pi)


@pytest.mark.parametrize("n_blobs", [1, 2])
def test_blob_centroid_moves_by_the_velocity_with_wraparound(n_blobs):
    ds = translating_blobs(
        6, size=S, frames=24, velocity_x=1.7, velocity_y=(-2.0, 2.0), sigma=(1.0, 3.0),
        n_blobs=n_blobs, seed=5,
    )  # fmt: skip
    f = ds["frames"].values.astype(float)
    # every blob crosses the border: the unwrapped x displacement over the run exceeds the width
    travel = ds["velocity_x"].values * (ds.sizes["frame"] - 1)
    assert np.all(travel > S)
    for axis, v in (("x", ds["velocity_x"].values), ("y", ds["velocity_y"].values)):
        c = _circular_centroid(f, axis)
        step = _wrap(np.diff(c, axis=1), S)
        assert np.abs(step - v[:, None]).max() < 1e-5  # px (measured 6e-7)
        if n_blobs == 1:
            start = ds[f"blob_{axis}"].values[:, 0]
            assert np.abs(_wrap(c[:, 0] - start, S)).max() < 1e-5
    assert f.max() <= 1.0 and np.isclose(f.max(), 1.0, atol=0.02)


# ---------------------------------------------------------------------------------------------
# user images
# ---------------------------------------------------------------------------------------------
def test_rotation_direction_full_turn_and_agreement_with_bars():
    n = 15
    img = np.zeros((n, n))
    c = (n - 1) // 2
    img[c, c + 4] = 1.0  # at x = c + 4, y = c
    img[c + 1, c] = 0.5  # background of other values, so normalization is exercised
    ds = transformed_images(img[None], kind="rotate", frames=5, angular_velocity=90.0, clip=False)
    f = ds["frames"].values[0]
    np.testing.assert_allclose(f[0], img, atol=1e-6)
    # counter-clockwise in (x, y): (x, y) -> (-y, x) about the centre; the point moves to
    # x = c, y = c + 4, i.e. numpy's rot90 with k=-1 on [row=y, col=x] arrays
    assert f[1, c + 4, c] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(f[1], np.rot90(img, k=-1), atol=1e-6)
    np.testing.assert_allclose(f[4], f[0], atol=1e-6)  # a total turn of 360 degrees
    assert np.abs(f[2] - f[0]).max() > 0.5
    # the same convention as rotating_bars: rotating the bar's first frame reproduces the others
    bars = rotating_bars(1, size=S, frames=8, angular_velocity=20.0, initial_angle=0.0)
    rot = transformed_images(bars["frames"].values[:, 0], kind="rotate", frames=8,
                             angular_velocity=20.0, normalize=False)  # fmt: skip
    assert np.abs(rot["frames"].values - bars["frames"].values).max() < 0.02  # measured 0.008


def test_translation_is_exact_fourier_shift():
    rng = np.random.default_rng(1)
    img = rng.random((2, 16, 16))
    ds = transformed_images(img, kind="translate", frames=5, velocity_x=4.0, velocity_y=-4.0)
    f = ds["frames"].values
    np.testing.assert_allclose(f[:, 4], f[:, 0], atol=1e-6)  # shifted by the full width
    np.testing.assert_allclose(f[:, 1], np.roll(f[:, 0], (-4, 4), axis=(-2, -1)), atol=1e-6)
    np.testing.assert_array_equal(ds["image_index"], [0, 1])  # n=None: one sequence per image
    # sub-pixel: a periodic Gaussian translated by FFT equals the analytic translating blob
    blobs = translating_blobs(3, size=S, frames=10, n_blobs=2, seed=1)
    for i in range(3):
        b = blobs.isel(sequence=i)
        moved = transformed_images(
            b["frames"].values[:1].astype(float), kind="translate", frames=10,
            velocity_x=float(b["velocity_x"]), velocity_y=float(b["velocity_y"]),
            normalize=False, clip=False,
        )  # fmt: skip
        np.testing.assert_allclose(moved["frames"].values[0], b["frames"].values, atol=1e-6)


def test_transformed_images_labels_normalization_and_padding():
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 256, size=(4, 6, 6)).astype(np.uint8)
    ds = transformed_images(
        imgs, 10, kind="rotate", frames=3, angular_velocity=[-10.0, 10.0],
        image_labels=np.array([7, 8, 9, 10]), pad=3, seed=1,
    )  # fmt: skip
    assert ds["frames"].shape == (10, 3, 12, 12)
    np.testing.assert_array_equal(ds["image_label"], ds["image_index"] + 7)
    assert len(set(ds["image_index"].values)) > 1
    lo, hi = imgs.min(), imgs.max()
    for i, j in enumerate(ds["image_index"].values):
        expected = (imgs[j] - float(lo)) / float(hi - lo)
        np.testing.assert_allclose(ds["frames"].values[i, 0, 3:-3, 3:-3], expected, atol=1e-6)
        assert np.abs(ds["frames"].values[i, 0, :3]).max() < 1e-6
    assert ds.attrs["n_images"] == 4 and len(ds.attrs["images_sha256"]) == 64


# ---------------------------------------------------------------------------------------------
# digits (scikit-learn is optional)
# ---------------------------------------------------------------------------------------------
def _fake_sklearn(monkeypatch):
    images = np.zeros((3, 8, 8))
    images[:, 2:6, 3:5] = 16.0
    images[1, 0, 0] = 8.0
    bunch = types.SimpleNamespace(images=images, target=np.array([0, 1, 2]))
    sk = ModuleType("sklearn")
    sk_datasets = ModuleType("sklearn.datasets")
    sk_datasets.load_digits = lambda: bunch
    sk.datasets = sk_datasets
    monkeypatch.setitem(sys.modules, "sklearn", sk)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", sk_datasets)


def test_digits_scaling_zoom_and_pad(monkeypatch):
    _fake_sklearn(monkeypatch)
    images, labels = digits()
    assert images.shape == (3, 8, 8) and images.max() == 1.0 and images[1, 0, 0] == 0.5
    np.testing.assert_array_equal(labels, [0, 1, 2])
    images, _ = digits(zoom=2, pad=3)
    assert images.shape == (3, 22, 22) and 0 <= images.min() and images.max() <= 1
    assert np.all(images[:, :3] == 0)


def test_digits_without_sklearn_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        digits()


def test_real_digits_when_installed():
    pytest.importorskip("sklearn")
    images, labels = digits()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,)
    ds = transformed_images(images[:5], image_labels=labels[:5], frames=3, pad=2)
    np.testing.assert_array_equal(ds["image_label"], labels[:5])


# ---------------------------------------------------------------------------------------------
# helpers, exports, bad input
# ---------------------------------------------------------------------------------------------
def test_context_target():
    ds = rotating_bars(2, size=16, frames=10, width=2.0, length=10.0)
    ctx, tgt = context_target(ds, 4, 3)
    assert ctx.sizes["frame"] == 4 and list(tgt["frame"].values) == [4, 5, 6]
    xr.testing.assert_identical(tgt["frames"], ds["frames"].isel(frame=slice(4, 7)))
    a_ctx, a_tgt = context_target(ds["frames"].values, 4)
    np.testing.assert_array_equal(a_ctx, ds["frames"].values[:, :4])
    np.testing.assert_array_equal(a_tgt, ds["frames"].values[:, 4:])
    with pytest.raises(ValueError, match="observe \\+ horizon = 4 \\+ 7 = 11 exceeds the 10"):
        context_target(ds, 4, 7)
    with pytest.raises(ValueError, match="observe must be an integer >= 1"):
        context_target(ds, 0)
    with pytest.raises(ValueError, match="observe=10 leaves no frame"):
        context_target(ds, 10)
    with pytest.raises(ValueError, match="no 'frame' dimension"):
        context_target(ds.isel(frame=0), 1)


def test_public_names_resolve():
    pkg = importlib.import_module("wavesim.bridge")
    for name in pkg.__all__:
        importlib.import_module(pkg._EXPORTS[name])
        obj = getattr(pkg, name)
        assert not isinstance(obj, ModuleType), name
        assert getattr(obj, "__name__", name) == name or not callable(obj), name


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: rotating_bars(2, angular_velocity=90.0), r"angular_velocity must be within \(-90"),
        (lambda: rotating_bars(2, angular_velocity=(1, 2, 3)), "a range needs two numbers"),
        (lambda: rotating_bars(2, angular_velocity="fast"), "angular_velocity must be a finite"),
        (lambda: rotating_bars(2, angular_velocity=[]), "non-empty list"),
        (lambda: rotating_bars(2, initial_angle=(10, 0)), "low > high"),
        (lambda: rotating_bars(2, size=16, length=16.0), "does not fit in a size=16 frame"),
        (lambda: rotating_bars(-1), "n must be an integer >= 0"),
        (lambda: rotating_bars(2, frames=2.5), "frames must be an integer >= 1"),
        (lambda: rotating_bars(2, seed=-3), "seed must be a non-negative integer"),
        (lambda: rotating_gratings(2, spatial_period=(1.5, 4)), "spatial_period must be > 2"),
        (lambda: rotating_gratings(2, contrast=1.5), r"contrast must be in \(0, 1\]"),
        (lambda: drifting_gratings(2, speed=1.0, temporal_frequency=0.1), "not both"),
        (lambda: drifting_gratings(2, spatial_period=4.0, speed=2.5), "aliased unless"),
        (lambda: drifting_gratings(2, temporal_frequency=0.6), r"within \(-0.5, 0.5\)"),
        (lambda: drifting_gratings(2, spatial_period=200.0, periodic=True), "too long"),
        (lambda: translating_blobs(2, sigma=0.1), r"sigma must be in \[0.5, size/4"),
        (lambda: transformed_images(np.ones((8, 8))), r"shape \(n, h, w\).*images\[None\]"),
        (lambda: transformed_images(np.ones((2, 4, 4)) * 1j), "real numbers"),
        (lambda: transformed_images(np.full((2, 4, 4), np.nan)), "finite"),
        (lambda: transformed_images(np.ones((2, 4, 4))), "constant"),
        (lambda: transformed_images(np.ones((2, 4, 4)) * 3, normalize=False), r"in \[0, 1\]"),
        (lambda: transformed_images(np.eye(4)[None], kind="shear"), "'rotate' or 'translate'"),
        (lambda: transformed_images(np.eye(4)[None], velocity_x=1.0), "velocity_x do"),
        (lambda: transformed_images(np.eye(4)[None], order=7), "spline order"),
        (lambda: transformed_images(np.eye(4)[None], mode="edge"), "mode must be one of"),
        (lambda: transformed_images(np.eye(4)[None], image_labels=[1, 2]), r"shape \(n_images"),
        (lambda: make_splits("spirals", 1, 1, 1), "unknown dataset generator 'spirals'"),
        (lambda: make_splits("rotating_bars", 1, 1, 1, n=3), "sets n for each split"),
        (
            lambda: make_splits("rotating_bars", 1, 1, 1, split_params={"val": {}}),
            "unknown split 'val'",
        ),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
