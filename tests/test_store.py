"""Recorders and the zarr store, with synthetic states (no simulator)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
import zarr

from wavesim.recorders import ElectrodeRecorder, FieldRecorder, Grid
from wavesim.store import StoreWriter, open_store


def states(grid: Grid, n: int, seed: int = 0):
    """n random states (members, ny, nx) with exact zeros: a whole zero sample and zero sites."""
    rng = np.random.default_rng(seed)
    shape = (grid.members, grid.ny, grid.nx)
    for k in range(n):
        y = rng.standard_normal(shape).astype(grid.dtype)
        v = rng.standard_normal(shape).astype(grid.dtype)
        y[..., 0, :] = 0.0
        v[..., :, 1] = -0.0
        if k == 1:
            y[:] = 0.0
        yield y, v


def open_quietly(path, **kw) -> xr.Dataset:
    """xarray.open_zarr with every warning turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return xr.open_zarr(path, chunks=None, **kw)


def bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_bit_exact(tmp_path, dtype):
    grid = Grid(ny=6, nx=5, dx=0.25, dt=0.125, dtype=dtype)
    rec = FieldRecorder(("y", "ydot"), period=3)
    path = tmp_path / "run.zarr"
    kept = []
    with StoreWriter.create(
        path, [rec], grid, scenario="[model]\nomega = 1.0\n", seed=42, attrs={"note": "hi"}, block=4
    ) as w:
        for k, (y, v) in enumerate(states(grid, 10)):
            w.record(3 * k, y, v)
            kept.append((y.copy(), v.copy()))

    ds = open_quietly(path)
    assert ds.field.dims == ("time", "y", "x")  # no member dim for members == 1
    assert ds.field_dot.dims == ("time", "y", "x")
    assert ds.field.dtype == dtype and ds.field_dot.dtype == dtype
    np.testing.assert_array_equal(ds.time.values, np.arange(10) * 3 * 0.125)
    np.testing.assert_array_equal(ds.step.values, np.arange(10) * 3)
    np.testing.assert_array_equal(ds.y.values, np.arange(6) * 0.25)
    np.testing.assert_array_equal(ds.x.values, np.arange(5) * 0.25)
    assert ds.time.attrs["units"] == "ms"
    assert ds.y.attrs["units"] == "mm" and ds.x.attrs["units"] == "mm"
    assert ds.field.attrs["units"] == "1" and ds.field_dot.attrs["units"] == "1/ms"
    assert "long_name" in ds.field.attrs and "long_name" in ds.field_dot.attrs
    assert ds.attrs["scenario"] == "[model]\nomega = 1.0\n"
    assert ds.attrs["seed"] == 42
    assert ds.attrs["note"] == "hi"
    assert ds.attrs["complete"] is True
    assert ds.attrs["steps_done"] == 27
    assert ds.attrs["dt"] == 0.125 and ds.attrs["dx"] == 0.25
    assert ds.attrs["wavesim_version"]

    want_y = np.stack([y[0] for y, _ in kept])
    want_v = np.stack([v[0] for _, v in kept])
    np.testing.assert_array_equal(bits(ds.field.values), bits(want_y))  # -0.0 and 0.0 kept too
    np.testing.assert_array_equal(bits(ds.field_dot.values), bits(want_v))
    assert not ds.field.isnull().any() and (ds.field.values[1] == 0).all()

    # zeros stay zeros even when xarray is told to mask with the zarr fill value
    masked = open_quietly(path, use_zarr_fill_value_as_mask=True)
    np.testing.assert_array_equal(bits(masked.field.values), bits(want_y))
    np.testing.assert_array_equal(masked.step.values, np.arange(10) * 3)

    # open_store: same content, lazy, no warning for a complete store
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lazy = open_store(path)
    assert not lazy.field.variable._in_memory
    xr.testing.assert_identical(lazy.load(), ds.load())


def test_batched_layout_chunks_and_members(tmp_path):
    grid = Grid(ny=4, nx=6, dx=1.0, dt=0.5, members=3, dtype=np.float32)
    rec = FieldRecorder(("y",), period=1)
    path = tmp_path / "batch.zarr"
    theta = np.random.default_rng(1).uniform(0, np.pi, (3, 4, 6))
    ys = []
    with StoreWriter.create(path, [rec], grid, block=5, orientation=theta) as w:
        for k, (y, v) in enumerate(states(grid, 7)):
            w.record(k, y, v)
            ys.append(y)
    ds = open_quietly(path)
    assert ds.field.dims == ("member", "time", "y", "x")
    np.testing.assert_array_equal(ds.member.values, [0, 1, 2])
    np.testing.assert_array_equal(ds.field.values, np.stack(ys, axis=1))
    assert ds.orientation.dims == ("member", "y", "x")
    assert ds.orientation.attrs["units"] == "rad"
    np.testing.assert_array_equal(ds.orientation.values, theta)
    arr = zarr.open_group(str(path), mode="r")["field"]
    assert arr.chunks == (1, 5, 4, 6)
    assert arr.metadata.dimension_names == ("member", "time", "y", "x")
    assert ds.field.encoding["preferred_chunks"] == {"member": 1, "time": 5, "y": 4, "x": 6}


def test_subsampled_field_coords_and_static_fields(tmp_path):
    grid = Grid(ny=10, nx=7, dx=0.5, dt=1.0)
    rec = FieldRecorder("y", period=2, subsample=3)
    theta = np.random.default_rng(2).uniform(0, np.pi, (10, 7))
    mask = np.ones((10, 7), dtype=bool)
    mask[0, 0] = False
    path = tmp_path / "sub.zarr"
    with StoreWriter.create(path, [rec], grid, orientation=theta, static={"mask": mask}) as w:
        y = np.arange(70, dtype=np.float64).reshape(1, 10, 7)
        w.record(0, y)
        w.record(2, y + 1)
    ds = open_quietly(path)
    np.testing.assert_array_equal(ds.y.values, [0.0, 1.5, 3.0, 4.5])
    np.testing.assert_array_equal(ds.x.values, [0.0, 1.5, 3.0])
    np.testing.assert_array_equal(ds.field.values[0], y[0, ::3, ::3])
    np.testing.assert_array_equal(ds.field.values[1], y[0, ::3, ::3] + 1)
    assert ds.field.attrs["subsample"] == 3
    # full-resolution static fields live on the lattice dims, since y/x are subsampled here
    assert ds.orientation.dims == ("y_lattice", "x_lattice")
    np.testing.assert_array_equal(ds.orientation.values, theta)
    np.testing.assert_array_equal(ds.mask.values, mask)
    np.testing.assert_array_equal(ds.x_lattice.values, np.arange(7) * 0.5)
    np.testing.assert_array_equal(
        ds.orientation.sel(y_lattice=ds.y, x_lattice=ds.x), theta[::3, ::3]
    )

    # with a full-resolution field recorder, static fields share its (y, x) dims
    path2 = tmp_path / "full.zarr"
    with StoreWriter.create(path2, [FieldRecorder()], grid, orientation=theta) as w:
        w.record(0, y)
    ds2 = open_quietly(path2)
    assert ds2.orientation.dims == ("y", "x") and "y_lattice" not in ds2.dims


def test_electrodes_bilinear_exact_for_linear_field(tmp_path):
    grid = Grid(ny=9, nx=12, dx=0.4, dt=0.1, members=2)
    rng = np.random.default_rng(3)
    xmax, ymax = (grid.nx - 1) * grid.dx, (grid.ny - 1) * grid.dx
    pos = np.column_stack([rng.uniform(0, xmax, 20), rng.uniform(0, ymax, 20)])
    pos = np.vstack(
        [pos, [[0, 0], [xmax, ymax], [xmax, 0], [0, ymax], [0.8, 1.2]]]
    )  # corners, node
    rec = ElectrodeRecorder(pos, period=2, dx=grid.dx)
    X, Y = np.meshgrid(grid.x, grid.y)  # (ny, nx)
    coef = [(0.3, 1.7, -2.2), (-1.0, 0.5, 4.0)]  # per member: a + b x + c y
    y = np.stack([a + b * X + c * Y for a, b, c in coef])
    path = tmp_path / "el.zarr"
    with StoreWriter.create(path, [rec], grid) as w:
        w.record(0, y)
        w.record(2, 2 * y)
    ds = open_quietly(path)
    assert ds.electrodes.dims == ("member", "time_electrodes", "electrode")
    assert ds.electrode_x.attrs["units"] == "mm" and ds.electrode_y.attrs["units"] == "mm"
    assert ds.time_electrodes.attrs["units"] == "ms"
    np.testing.assert_array_equal(ds.time_electrodes.values, [0.0, 0.2])
    np.testing.assert_array_equal(ds.electrode_x.values, pos[:, 0])
    np.testing.assert_array_equal(ds.electrode_y.values, pos[:, 1])
    want = np.stack([a + b * pos[:, 0] + c * pos[:, 1] for a, b, c in coef])
    np.testing.assert_allclose(ds.electrodes.values[:, 0], want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds.electrodes.values[:, 1], 2 * want, rtol=0, atol=1e-12)
    # an electrode exactly on a pixel centre reads that pixel exactly
    assert ds.electrodes.values[0, 0, -1] == y[0, 3, 2]

    outside = ElectrodeRecorder([[xmax + 0.1, 0.0]], period=1, dx=grid.dx)
    with pytest.raises(ValueError, match="outside the lattice"):
        StoreWriter.create(tmp_path / "bad.zarr", [outside], grid)
    with pytest.raises(ValueError, match="dx"):
        StoreWriter.create(tmp_path / "bad.zarr", [ElectrodeRecorder(pos, 1, dx=1.0)], grid)
    assert not (tmp_path / "bad.zarr").exists()


def test_store_grows_by_blocks_and_readers_see_exactly_the_flushed_samples(tmp_path):
    grid = Grid(ny=5, nx=5, dx=1.0, dt=0.25)
    field = FieldRecorder(period=1)
    el = ElectrodeRecorder([[1.5, 2.5]], period=2, dx=1.0)
    path = tmp_path / "grow.zarr"
    w = StoreWriter.create(path, [field, el], grid, block=3)
    assert open_quietly(path).sizes["time"] == 0  # empty but valid from the start
    for step, (y, v) in enumerate(states(grid, 8)):
        w.record(step, y, v)
        ds = open_quietly(path)  # consolidated metadata never stale, never a warning
        n = (step + 1) // 3 * 3
        assert ds.sizes["time"] == n == w.written("time")
        np.testing.assert_array_equal(ds.time.values, np.arange(n) * 0.25)
        ne = (step // 2 + 1) // 3 * 3
        assert ds.sizes["time_electrodes"] == ne
        assert ds.attrs["complete"] is False
    w.flush()  # a partial block
    assert open_quietly(path).sizes["time"] == 8
    w.record(8, y, v)
    w.close(True)
    ds = open_quietly(path)
    assert ds.sizes["time"] == 9 and ds.sizes["time_electrodes"] == 5
    np.testing.assert_array_equal(ds.step_electrodes.values, [0, 2, 4, 6, 8])
    assert ds.attrs["complete"] is True


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_error_mid_block_leaves_partial_readable_store(tmp_path, exc_type):
    grid = Grid(ny=4, nx=4, dx=1.0, dt=0.5, members=2, dtype=np.float32)
    rec = FieldRecorder(("y", "ydot"), period=2)
    path = tmp_path / "crash.zarr"
    ys = []
    with pytest.raises(exc_type):
        with StoreWriter.create(path, [rec], grid, block=4, seed=7) as w:
            for k, (y, v) in enumerate(states(grid, 20)):
                if k == 6:  # 1.5 blocks appended: 4 on disk, 2 buffered
                    assert w.written("time") == 4 and w.buffered("time") == 2
                    assert open_quietly(path).sizes["time"] == 4
                    raise exc_type("blow-up at step 12")
                w.record(2 * k, y, v)
                ys.append(y)
    assert w.closed
    ds = open_quietly(path)  # readable, with the buffered samples flushed on close
    assert ds.attrs["complete"] is False
    assert "blow-up at step 12" in ds.attrs["error"] and exc_type.__name__ in ds.attrs["error"]
    assert ds.attrs["steps_done"] == 10
    assert ds.sizes["time"] == 6
    np.testing.assert_array_equal(ds.step.values, [0, 2, 4, 6, 8, 10])
    np.testing.assert_array_equal(ds.field.values, np.stack(ys, axis=1))
    with pytest.warns(UserWarning, match=r"partial \(complete=False\).*10 steps.*time: 6 samples"):
        part = open_store(path)
    assert part.attrs["seed"] == 7
    w.close(True)  # idempotent: a second close changes nothing
    assert open_quietly(path).attrs["complete"] is False


def test_close_without_error_flag_and_explicit_steps(tmp_path):
    grid = Grid(ny=3, nx=3, dx=1.0, dt=1.0)
    rec = FieldRecorder(period=5)
    path = tmp_path / "stop.zarr"
    w = StoreWriter.create(path, [rec], grid, block=2)
    for k, (y, _) in enumerate(states(grid, 3)):
        w.record(5 * k, y)
    w.close(False, steps_done=13, reason="NaN guard")
    with pytest.warns(UserWarning, match="13 steps"):
        ds = open_store(path)
    assert ds.attrs["reason"] == "NaN guard" and ds.sizes["time"] == 3
    with pytest.raises(RuntimeError, match="closed"):
        w.record(15, y)


def test_overwrite_refusal(tmp_path):
    grid = Grid(ny=3, nx=3, dx=1.0, dt=1.0)
    path = tmp_path / "x.zarr"
    StoreWriter.create(path, [FieldRecorder()], grid).close(True)
    with pytest.raises(FileExistsError, match="x.zarr.*overwrite=True"):
        StoreWriter.create(path, [FieldRecorder()], grid)
    assert open_quietly(path).attrs["complete"] is True  # untouched
    w = StoreWriter.create(path, [FieldRecorder()], grid, overwrite=True)
    assert open_quietly(path).attrs["complete"] is False
    w.close(True)
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(FileExistsError, match="not a zarr store"):
        StoreWriter.create(precious, [FieldRecorder()], grid, overwrite=True)
    assert (precious / "thesis.tex").exists()


def test_memory_bounded_by_one_block(tmp_path):
    grid = Grid(ny=8, nx=8, dx=1.0, dt=1.0, members=2)
    field = FieldRecorder(("y", "ydot"), period=1)
    el = ElectrodeRecorder([[1.0, 1.0], [2.5, 3.5]], period=1, dx=1.0)
    w = StoreWriter.create(tmp_path / "mem.zarr", [field, el], grid, block=4)
    nbytes = w.buffer_nbytes()
    per_block = 4 * 2 * (2 * 64 * 8 + 2 * 8) + 2 * 4 * 8  # samples + step buffers
    assert nbytes == per_block
    y = np.zeros((2, 8, 8))
    for step in range(50):
        w.record(step, y, y)
        assert 0 <= w.buffered("time") < 4 and 0 <= w.buffered(el) < 4
        assert w.written("time") + w.buffered("time") == step + 1
        assert w.buffer_nbytes() == nbytes
        for s in w._streams:
            assert all(b.shape[1] == 4 for b in s.buffers.values())
    w.close(True)


def test_auto_block_and_append_validation(tmp_path):
    grid = Grid(ny=4, nx=4, dx=1.0, dt=1.0)
    rec = FieldRecorder(period=3)
    el = ElectrodeRecorder([[0.5, 0.5]], period=2, dx=1.0)
    w = StoreWriter.create(tmp_path / "v.zarr", [rec, el], grid)
    assert w.block == 1024  # tiny samples: the auto block is capped
    big = Grid(ny=256, nx=256, dx=1.0, dt=1.0, members=4)  # 2 MiB per sample, all members
    wb = StoreWriter.create(tmp_path / "big.zarr", [FieldRecorder()], big)
    assert wb.block == 4 and wb.buffer_nbytes() <= 8 * 2**20 + 4 * 8
    wb.close(True)
    assert [w.next_due(s) for s in (0, 1, 3, 5, 7)] == [0, 2, 3, 6, 8]
    y = np.zeros((4, 4))
    with pytest.raises(ValueError, match="not a multiple"):
        w.append(rec, rec.sample(y), 4)
    w.append(rec, rec.sample(y), 3)
    with pytest.raises(ValueError, match="not after"):
        w.append(rec, rec.sample(y), 3)
    with pytest.raises(ValueError, match="shape"):
        w.append(rec, {"field": np.zeros((1, 3, 4))}, 6)
    with pytest.raises(ValueError, match="variables"):
        w.append(rec, {"field_dot": y}, 6)
    with pytest.raises(KeyError, match="not a recorder"):
        w.append(FieldRecorder(), {"field": y}, 6)
    w.append("time", {"field": y}, 6)  # by time-dim name, member axis omitted
    w.close(True)
    with pytest.raises(ValueError, match="both write"):
        StoreWriter.create(tmp_path / "dup.zarr", [FieldRecorder(), FieldRecorder()], grid)
    w2 = StoreWriter.create(
        tmp_path / "tag.zarr",
        [FieldRecorder(), FieldRecorder(period=2, subsample=2, tag="c")],
        grid,
    )
    w2.record(0, y)
    w2.close(True)
    ds = open_quietly(tmp_path / "tag.zarr")
    assert ds.field_c.dims == ("time_c", "y_c", "x_c") and ds.field.dims == ("time", "y", "x")


def test_open_store_errors(tmp_path):
    missing = tmp_path / "nope.zarr"
    with pytest.raises(FileNotFoundError, match="nope.zarr"):
        open_store(missing)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ValueError, match="plain.*not a wavesim store"):
        open_store(plain)
    other = tmp_path / "other.zarr"
    zarr.open_group(str(other), mode="w", zarr_format=3).attrs["hello"] = 1
    with pytest.raises(ValueError, match="other.zarr.*not a wavesim store"):
        open_store(other)


class _FailingWrites:
    """Wraps a zarr array: resizes work, writes fail (a full disk, say)."""

    def __init__(self, arr):
        self._arr = arr

    def __getattr__(self, name):
        return getattr(self._arr, name)

    def __setitem__(self, key, value):
        raise OSError("No space left on device")


def test_failed_flush_rolls_back_to_last_good_block(tmp_path):
    grid = Grid(ny=3, nx=4, dx=1.0, dt=1.0)
    rec = FieldRecorder(period=1)
    path = tmp_path / "full_disk.zarr"
    w = StoreWriter.create(path, [rec], grid, block=2)
    for k, (y, _) in enumerate(states(grid, 3)):
        w.record(k, y)
    stream = w._streams[0]
    stream.arrays["field"] = _FailingWrites(stream.arrays["field"])
    with pytest.warns(RuntimeWarning, match="could not flush"):
        w.close(False, error="RuntimeError: boom")
    ds = open_quietly(path)
    assert ds.sizes["time"] == 2 and ds.attrs["complete"] is False
    assert "No space left" in ds.attrs["flush_error"] and ds.attrs["error"] == "RuntimeError: boom"
    arr = zarr.open_group(str(path), mode="r", use_consolidated=False)["field"]
    assert arr.shape == (2, 3, 4)  # the half-written block was rolled back
