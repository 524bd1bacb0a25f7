"""Recording loaders: the layout, every plain format on files the tests write, malformed files,
and the ferret VSD recording (skipped when ``../shared/data`` is absent).

Checks are exact (``array_equal``) for values and coordinates: the loaders only reorder axes and
compute ``time = t0 + i * dt`` and ``x = j * dx``; the ferret file must load as 977 x 25 x 25
with exactly 162 masked pixels and a frame interval of 0.6136 ms (to 1e-4 ms).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import xarray as xr
from scipy.io import savemat

from wavesim.recordings import RecordingError, as_recording, describe_file, load, save_recording

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
FERRET = DATA / "ferret_vsd" / "ferret_vsd_roland2006.nwb"

NT, NY, NX = 6, 4, 5


def movie(dtype=np.float32):
    """A (time, y, x) movie with distinct values and one all-zero pixel (row 0, col 0)."""
    a = np.arange(1, NT * NY * NX + 1, dtype=np.float64).reshape(NT, NY, NX)
    a[:, 0, 0] = 0.0
    return a.astype(dtype)


def check_movie(ds, a, *, dt, dx=None, rtol=0.0):
    assert ds["field"].dims == ("time", "y", "x")
    np.testing.assert_array_equal(ds["field"].values, a)
    np.testing.assert_array_equal(ds["time"].values, np.arange(NT) * dt)
    assert ds["time"].attrs["units"] == "ms"
    step = 1.0 if dx is None else dx
    np.testing.assert_allclose(ds["x"].values, np.arange(NX) * step, rtol=rtol, atol=0)
    np.testing.assert_allclose(ds["y"].values, np.arange(NY) * step, rtol=rtol, atol=0)
    units = "px" if dx is None else "mm"
    assert ds["x"].attrs["units"] == ds["y"].attrs["units"] == units
    assert ds.attrs["spacing_units"] == units
    assert ("dx" in ds.attrs) == (dx is not None)
    assert ds["mask"].dtype == bool
    expected = np.ones((NY, NX), bool)
    expected[0, 0] = False
    np.testing.assert_array_equal(ds["mask"].values, expected)
    assert ds.attrs["wavesim_recording"] == 1
    assert ds.attrs["dt"] == pytest.approx(dt, rel=1e-12)
    assert ds.attrs["rate_hz"] == pytest.approx(1000.0 / dt, rel=1e-12)
    assert "/" not in ds.attrs["source"]  # a file name, never a path


# ------------------------------------------------------------------------------------------
# layout
# ------------------------------------------------------------------------------------------
def test_as_recording_axis_order_and_masks():
    a = movie()
    # the same movie stored pixel-major (y, x, time) comes back identical
    ds = as_recording(np.moveaxis(a, 0, -1), dt=2.0, dx=0.1, dims=("y", "x", "time"))
    check_movie(ds, a, dt=2.0, dx=0.1)
    user = np.ones((NY, NX), bool)
    user[3, 4] = False
    ds = as_recording(a, rate=500.0, mask=user)
    assert not ds["mask"].values[0, 0] and not ds["mask"].values[3, 4]
    assert int(ds["mask"].sum()) == NY * NX - 2
    b = a.astype(np.float64)
    b[:, 2, 2] = np.nan  # NaN at every time: masked too
    assert not as_recording(b, dt=1.0)["mask"].values[2, 2]


def test_as_recording_errors_name_what_is_missing():
    a = movie()
    with pytest.raises(RecordingError, match=r"sampling rate is missing.*rate=.*dt="):
        as_recording(a)
    with pytest.raises(RecordingError, match="3 dimension.*names 2"):
        as_recording(a, dt=1.0, dims=("time", "channel"))
    with pytest.raises(RecordingError, match="2 dimension.*names 3"):
        as_recording(a[:, 0], dt=1.0)
    with pytest.raises(RecordingError, match="not an axis order"):
        as_recording(a, dt=1.0, dims=("time", "row", "col"))
    with pytest.raises(RecordingError, match="disagree"):
        as_recording(a, dt=1.0, rate=500.0)
    with pytest.raises(RecordingError, match=r"mask has shape \(3, 3\)"):
        as_recording(a, dt=1.0, mask=np.ones((3, 3), bool))
    with pytest.raises(RecordingError, match="electrode positions are missing"):
        as_recording(a[:, 0], dt=1.0, dims=("time", "channel"))
    with pytest.raises(RecordingError, match="dx must be a finite number > 0"):
        as_recording(a, dt=1.0, dx=-1)


def test_electrode_layout():
    data = np.arange(12.0).reshape(4, 3) + 1
    ds = as_recording(data, dt=1.0, dims=("time", "channel"), x=[0, 0.4, 0.8], y=[0, 0, 0.4])
    assert ds["field"].dims == ("time", "channel")
    assert ds["x"].dims == ("channel",) and ds["x"].attrs["units"] == "mm"
    np.testing.assert_array_equal(ds["channel"].values, [0, 1, 2])
    assert ds["mask"].dims == ("channel",) and bool(ds["mask"].all())


# ------------------------------------------------------------------------------------------
# plain formats
# ------------------------------------------------------------------------------------------
def test_npy_needs_a_rate_and_reads_any_axis_order(tmp_path):
    a = movie()
    np.save(tmp_path / "m.npy", a)
    with pytest.raises(RecordingError, match=r"m\.npy: the sampling rate is missing"):
        load(tmp_path / "m.npy")
    check_movie(load(tmp_path / "m.npy", rate=1000.0), a, dt=1.0)
    np.save(tmp_path / "t.npy", np.moveaxis(a, 0, -1))
    ds = load(tmp_path / "t.npy", dt=0.5, dx=0.02, dims=("y", "x", "time"))
    check_movie(ds, a, dt=0.5, dx=0.02)
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 4, 5)))
    with pytest.raises(RecordingError, match="4 dimension"):
        load(tmp_path / "bad.npy", rate=1.0)


def test_npz_metadata_and_series(tmp_path):
    a = movie()
    np.savez(tmp_path / "m.npz", movie=a, rate=250.0, dx=0.05)
    check_movie(load(tmp_path / "m.npz"), a, dt=4.0, dx=0.05)
    np.savez(tmp_path / "two.npz", movie=a, other=a[:, :2], dt=1.0)
    with pytest.raises(RecordingError, match="holds 2 arrays.*series=.*movie.*other"):
        load(tmp_path / "two.npz")
    with pytest.raises(RecordingError, match="no array named 'nope'.*movie"):
        load(tmp_path / "two.npz", series="nope")
    ds = load(tmp_path / "two.npz", series="movie", rate=1000.0)  # the user's rate wins
    check_movie(ds, a, dt=1.0)


def test_mat_v5_and_v73(tmp_path):
    a = movie(np.float64)
    savemat(tmp_path / "v5.mat", {"vsd": a, "fs": 200.0, "dx": 0.025})
    check_movie(load(tmp_path / "v5.mat"), a, dt=5.0, dx=0.025)
    # v7.3: HDF5 with a 512-byte MATLAB header; MATLAB is column-major, so h5py sees the axes
    # reversed (x, y, time) and the loader transposes them back.
    path = tmp_path / "v73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["vsd"] = a.T
        f["fs"] = np.array([[200.0]])
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, written by a test".ljust(116, b" "))
    ds = load(path)
    assert ds.attrs["format"] == "mat v7.3"
    check_movie(ds, a, dt=5.0)


def test_tiff_stack_with_imagej_metadata(tmp_path):
    a = movie()
    path = tmp_path / "stack.tif"
    tifffile.imwrite(
        path, a, imagej=True, resolution=(1 / 20.0, 1 / 20.0),
        metadata={"unit": "um", "finterval": 0.002, "axes": "TYX"},
    )  # fmt: skip
    check_movie(load(path), a, dt=2.0, dx=0.02)
    tifffile.imwrite(tmp_path / "plain.tiff", a)
    with pytest.raises(RecordingError, match="sampling rate is missing"):
        load(tmp_path / "plain.tiff")
    check_movie(load(tmp_path / "plain.tiff", rate=500.0), a, dt=2.0)


def test_netcdf_and_zarr_through_xarray(tmp_path):
    a = movie(np.float64)
    ds = xr.Dataset(
        {"dff": (("frame", "row", "col"), a)},
        coords={"frame": ("frame", np.arange(NT) * 0.004, {"units": "s"})},
    )
    ds.to_netcdf(tmp_path / "m.nc", engine="scipy")
    with pytest.raises(RecordingError, match=r"dims \('frame', 'row', 'col'\).*dims="):
        load(tmp_path / "m.nc")
    rec = load(tmp_path / "m.nc", dims=("time", "y", "x"))
    check_movie(rec, a, dt=4.0)
    good = xr.Dataset(
        {"v": (("time", "y", "x"), a)},
        coords={
            "time": ("time", np.arange(NT) * 2.0, {"units": "ms"}),
            "x": ("x", np.arange(NX) * 50.0, {"units": "um"}),
            "y": ("y", np.arange(NY) * 50.0, {"units": "um"}),
        },
    )
    good.to_zarr(tmp_path / "m.zarr", zarr_format=3, consolidated=False)
    # coordinates in um, converted to mm (to rounding)
    check_movie(load(tmp_path / "m.zarr"), a, dt=2.0, dx=0.05, rtol=1e-12)
    no_units = good.assign_coords(time=("time", np.arange(NT) * 2.0))
    no_units.to_netcdf(tmp_path / "nounits.nc", engine="scipy")
    with pytest.raises(RecordingError, match="time coordinate has no units"):
        load(tmp_path / "nounits.nc")


def test_save_recording_round_trip_and_open_store(tmp_path):
    import wavesim

    rec = as_recording(movie(), dt=0.5, dx=0.1, source="m.npy", attrs={"note": "x"})
    save_recording(rec, tmp_path / "r.zarr")
    xr.testing.assert_identical(load(tmp_path / "r.zarr"), rec)
    store = wavesim.open_store(tmp_path / "r.zarr")  # no warning: complete
    assert store.attrs["complete"] is True
    np.testing.assert_array_equal(store["field"].values, rec["field"].values)
    with pytest.raises(FileExistsError, match="overwrite"):
        save_recording(rec, tmp_path / "r.zarr")


def test_unknown_corrupt_and_missing_files(tmp_path):
    (tmp_path / "x.xyz").write_text("hello")
    with pytest.raises(RecordingError, match=r"unknown recording format.*\.nwb"):
        load(tmp_path / "x.xyz")
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(RecordingError, match=r"broken\.npy: cannot read it"):
        load(tmp_path / "broken.npy", rate=1.0)
    (tmp_path / "broken.tif").write_bytes(b"II*\x00 not a tiff")
    with pytest.raises(RecordingError, match=r"broken\.tif: cannot read it as a TIFF"):
        load(tmp_path / "broken.tif", rate=1.0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "none.nwb")


def test_describe_file_lists_arrays(tmp_path):
    np.savez(tmp_path / "two.npz", movie=movie(), other=np.zeros((3, 2)))
    text = describe_file(tmp_path / "two.npz")
    assert "movie (6, 4, 5) float32" in text and "other (3, 2)" in text


# ------------------------------------------------------------------------------------------
# the ferret VSD recording
# ------------------------------------------------------------------------------------------
@pytest.mark.skipif(not FERRET.is_file(), reason="../shared/data/ferret_vsd is not available")
def test_ferret_vsd_loads_with_its_mask_and_rate():
    ds = load(FERRET)
    assert ds["field"].dims == ("time", "y", "x")
    assert ds["field"].shape == (977, 25, 25)
    assert ds["field"].dtype == np.float32
    assert int((~ds["mask"]).sum()) == 162
    # the masked pixels are exactly the all-zero ones
    zero = np.all(ds["field"].values == 0, axis=0)
    np.testing.assert_array_equal(~ds["mask"].values, zero)
    assert ds["time"].attrs["units"] == "ms"
    assert abs(ds.attrs["dt"] - 0.6136) < 1e-4
    assert np.allclose(np.diff(ds["time"].values), ds.attrs["dt"], rtol=1e-9)
    assert ds["time"].values[0] == 0.0
    assert ds["x"].attrs["units"] == "px" and "dx" not in ds.attrs
    assert ds.attrs["series"] == "vsd" and ds.attrs["format"] == "nwb"
    assert ds.attrs["trial_start_ms"] == [200.0]
    lazy = load(FERRET, lazy=True, dx=0.05)
    assert lazy["x"].attrs["units"] == "mm" and lazy.attrs["dx"] == 0.05
    np.testing.assert_array_equal(lazy["field"].values, ds["field"].values)
    np.testing.assert_array_equal(lazy["mask"].values, ds["mask"].values)
    lazy.close()
