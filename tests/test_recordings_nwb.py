"""NWB 2 recordings: movies (ImageSeries, OnePhotonSeries, TwoPhotonSeries) and electrode arrays
(ElectricalSeries, LFP in a processing module) from files the tests write with pynwb; choosing
series; malformed files; and the exact round trip simulation store -> NWB -> recording.

Exact checks: values, time (``starting_time`` + i/rate, or timestamps, in ms), spacing from the
imaging plane (20 um -> 0.02 mm), electrode positions from ``rel_x``/``rel_y`` (um -> mm), the
``conversion``/``offset`` scaling. Round trip: ``array_equal`` on values and coordinates and equal
units attributes (nothing is allowed to differ).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

pynwb = pytest.importorskip("pynwb")

from pynwb import NWBHDF5IO, NWBFile, TimeSeries  # noqa: E402
from pynwb.ecephys import LFP, ElectricalSeries  # noqa: E402
from pynwb.image import ImageSeries  # noqa: E402
from pynwb.ophys import OnePhotonSeries, OpticalChannel, TwoPhotonSeries  # noqa: E402

import wavesim  # noqa: E402
from wavesim.recordings import (  # noqa: E402
    RecordingError,
    describe_file,
    list_series,
    load,
    to_nwb,
)

# pynwb warns while the test builds an LFP whose electrodes table lives in the file
pytestmark = pytest.mark.filterwarnings("ignore:The linked table:UserWarning")

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
START = datetime(2020, 1, 1, tzinfo=UTC)
RNG = np.random.default_rng(7)
MOVIE = RNG.standard_normal((12, 6, 7)).astype(np.float32)
MOVIE[:, 0, :] = 0.0  # one row outside the aperture
LFP_DATA = RNG.standard_normal((40, 4))
POS_UM = np.array([[0.0, 0.0], [400.0, 0.0], [0.0, 400.0], [400.0, 400.0]])


def new_file():
    return NWBFile(
        session_description="test session", identifier="test-id", session_start_time=START
    )


def write(nwbfile, path):
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


@pytest.fixture(scope="module")
def rich_file(tmp_path_factory):
    """Two movies in acquisition, a two-photon movie and an LFP in processing, a TimeSeries."""
    f = new_file()
    f.add_acquisition(
        ImageSeries(name="wide", data=MOVIE, unit="dF/F", rate=100.0, starting_time=0.5)
    )
    device = f.create_device(name="cam")
    channel = OpticalChannel(name="green", description="g", emission_lambda=520.0)
    plane = f.create_imaging_plane(
        name="plane", optical_channel=channel, description="p", device=device,
        excitation_lambda=480.0, indicator="VSD", location="V1",
        grid_spacing=[20e-6, 20e-6], grid_spacing_unit="meters",
    )  # fmt: skip
    f.add_acquisition(
        OnePhotonSeries(
            name="op",
            data=(MOVIE * 100).astype(np.int16),
            unit="a.u.",
            rate=50.0,
            imaging_plane=plane,
            conversion=0.01,
            offset=1.0,
        )  # fmt: skip
    )
    ophys = f.create_processing_module(name="ophys", description="processed")
    ophys.add(
        TwoPhotonSeries(
            name="tp",
            data=MOVIE,
            unit="a.u.",
            imaging_plane=plane,
            timestamps=np.arange(12) * 0.03 + 1.0,
        )  # fmt: skip
    )
    group = f.create_electrode_group(
        name="utah", description="array", location="V1", device=f.create_device(name="array")
    )
    for x, y in POS_UM:
        f.add_electrode(location="V1", group=group, rel_x=x, rel_y=y, x=x + 5, y=y + 5, z=0.0)
    region = f.create_electrode_table_region(list(range(4)), "all")
    ecephys = f.create_processing_module(name="ecephys", description="lfp")
    ecephys.add(LFP(ElectricalSeries(name="lfp", data=LFP_DATA, electrodes=region, rate=1000.0)))
    f.add_acquisition(TimeSeries(name="running", data=np.zeros(10), unit="cm/s", rate=10.0))
    # a second series named "tp": the bare name is ambiguous, the path is not
    f.add_acquisition(ImageSeries(name="tp", data=MOVIE[:4], unit="a.u.", rate=10.0))
    return write(f, tmp_path_factory.mktemp("nwb") / "rich.nwb")


def test_list_series_and_info(rich_file):
    series = {s.path: s for s in list_series(rich_file)}
    assert set(series) == {
        "acquisition/wide",
        "acquisition/op",
        "acquisition/running",
        "acquisition/tp",
        "processing/ophys/tp",
        "processing/ecephys/LFP/lfp",
    }
    assert series["acquisition/op"].dx_mm == pytest.approx(0.02, rel=1e-6)
    assert series["processing/ecephys/LFP/lfp"].n_electrodes == 4
    assert series["acquisition/running"].kind is None
    text = describe_file(rich_file)
    for line in ("acquisition/wide, ImageSeries, 12x6x7 float32, 100 Hz", "4 electrodes"):
        assert line in text


def test_choose_series_errors_list_the_choices(rich_file):
    with pytest.raises(RecordingError, match=r"holds 5 series.*acquisition/op.*LFP/lfp"):
        load(rich_file)
    with pytest.raises(RecordingError, match=r"'tp' is ambiguous.*acquisition/tp.*ophys/tp"):
        load(rich_file, series="tp")
    assert load(rich_file, series="acquisition/tp")["field"].shape == (4, 6, 7)
    with pytest.raises(RecordingError, match=r"no series named 'nope'.*acquisition/wide"):
        load(rich_file, series="nope")
    with pytest.raises(RecordingError, match=r"'acquisition/running' is a TimeSeries, not a movie"):
        load(rich_file, series="running")


def test_image_series_rate_and_starting_time(rich_file):
    ds = load(rich_file, series="wide")
    np.testing.assert_array_equal(ds["field"].values, MOVIE)
    np.testing.assert_array_equal(ds["time"].values, 500.0 + np.arange(12) * 10.0)
    assert ds["field"].attrs["units"] == "dF/F"
    assert ds["x"].attrs["units"] == "px" and "dx" not in ds.attrs
    assert int((~ds["mask"]).sum()) == 7 and not ds["mask"].values[0].any()
    assert ds.attrs["nwb_identifier"] == "test-id"
    assert ds.attrs["nwb_session_description"] == "test session"
    assert ds.attrs["nwb_neurodata_type"] == "ImageSeries"
    # the user's spacing and rate win
    ds = load(rich_file, series="acquisition/wide", dx=0.1, rate=200.0)
    np.testing.assert_array_equal(ds["x"].values, np.arange(7) * 0.1)
    np.testing.assert_array_equal(ds["time"].values, 500.0 + np.arange(12) * 5.0)


def test_lazy_reading_gives_the_same_recording(rich_file):
    eager = load(rich_file, series="wide")
    lazy = load(rich_file, series="wide", lazy=True)
    assert lazy["field"].chunks is not None  # dask-backed, read on demand
    xr.testing.assert_identical(lazy["field"].compute(), eager["field"])
    xr.testing.assert_identical(lazy["mask"], eager["mask"])
    lazy.close()


def test_one_photon_spacing_and_scaling(rich_file):
    ds = load(rich_file, series="op")
    expected = (MOVIE * 100).astype(np.int16) * 0.01 + 1.0
    np.testing.assert_allclose(ds["field"].values, expected, rtol=1e-12)
    assert ds.attrs["dx"] == pytest.approx(0.02, rel=1e-6)  # grid_spacing is float32 in NWB
    assert ds["x"].attrs["units"] == "mm"
    np.testing.assert_array_equal(np.diff(ds["time"].values), 20.0)


def test_two_photon_timestamps(rich_file):
    ds = load(rich_file, series="processing/ophys/tp")
    np.testing.assert_allclose(ds["time"].values, 1000.0 + np.arange(12) * 30.0, rtol=1e-12)
    assert ds.attrs["dt"] == pytest.approx(30.0, rel=1e-9)


def test_lfp_electrodes_from_the_table(rich_file):
    ds = load(rich_file, series="lfp")
    assert ds["field"].dims == ("time", "channel")
    np.testing.assert_array_equal(ds["field"].values, LFP_DATA)
    np.testing.assert_allclose(ds["x"].values, POS_UM[:, 0] * 1e-3, rtol=1e-12)  # rel_x, um
    np.testing.assert_allclose(ds["y"].values, POS_UM[:, 1] * 1e-3, rtol=1e-12)
    assert ds["x"].attrs["units"] == "mm"
    assert ds.attrs["dt"] == 1.0


def test_missing_rate_and_corrupt_files(tmp_path):
    f = new_file()
    f.add_acquisition(ImageSeries(name="mov", data=MOVIE, unit="a.u.", rate=100.0))
    path = write(f, tmp_path / "norate.nwb")
    with h5py.File(path, "a") as h:
        del h["acquisition/mov/starting_time"]  # now neither rate nor timestamps
    with pytest.raises(RecordingError, match=r"'acquisition/mov'.*sampling rate is missing.*rate="):
        load(path)
    ds = load(path, rate=50.0)
    np.testing.assert_array_equal(ds["field"].values, MOVIE)
    np.testing.assert_array_equal(ds["time"].values, np.arange(12) * 20.0)
    (tmp_path / "junk.nwb").write_bytes(b"not an hdf5 file at all")
    with pytest.raises(RecordingError, match=r"junk\.nwb: cannot read it as an NWB 2 file"):
        load(tmp_path / "junk.nwb")
    empty = write(new_file(), tmp_path / "empty.nwb")
    with pytest.raises(RecordingError, match="holds no movie"):
        load(empty)


# ------------------------------------------------------------------------------------------
# export
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim_store(tmp_path_factory):
    """A small spiral run with electrodes and a disk mask (24 x 20 sites, 3 ms)."""
    scenario = wavesim.load_scenario(SCENARIOS / "spiral.toml").replace(
        {
            "lattice.shape": [24, 20],
            "lattice.sponge_width": 0.2,
            "lattice.mask": {"kind": "disk", "radius": 0.45},
            "initial.position": [0.5, 0.6],
            "run.duration": 3.0,
            "record.electrodes": [[0.1, 0.2], [0.5, 0.5], [0.7, 0.3]],
            "record.electrode_period": 0.1,
        }
    )
    path = tmp_path_factory.mktemp("sim") / "sim.zarr"
    wavesim.run(scenario, path, progress=False)
    return path


def test_a_simulation_store_loads_as_a_recording(sim_store):
    store = wavesim.open_store(sim_store)
    rec = load(sim_store)  # the field by default
    assert rec.attrs["format"] == "zarr (wavesim store)" and rec.attrs["dx"] == store.attrs["dx"]
    np.testing.assert_array_equal(rec["field"].values, store["field"].values)
    np.testing.assert_array_equal(rec["mask"].values, store["mask"].values > 0)
    for c in ("time", "x", "y"):
        np.testing.assert_array_equal(rec[c].values, store[c].values)
    el = load(sim_store, series="electrodes")
    assert el["field"].dims == ("time", "channel")
    np.testing.assert_array_equal(el["field"].values, store["electrodes"].values)
    np.testing.assert_array_equal(el["time"].values, store["time_electrodes"].values)
    np.testing.assert_array_equal(el["x"].values, store["electrode_x"].values)


@pytest.mark.parametrize("imaging", ["ImageSeries", "OnePhotonSeries"])
def test_simulation_round_trip_through_nwb_is_exact(sim_store, tmp_path, imaging):
    out = to_nwb(sim_store, tmp_path / "sim.nwb", imaging=imaging)
    store = wavesim.open_store(sim_store)
    assert {s.name for s in list_series(out)} == {"field", "field_dot", "electrodes"}
    for name in ("field", "field_dot"):
        rec = load(out, series=name)
        assert rec.attrs["nwb_neurodata_type"] == imaging
        assert rec["field"].dtype == store[name].dtype
        np.testing.assert_array_equal(rec["field"].values, store[name].values)
        for c in ("time", "x", "y"):
            np.testing.assert_array_equal(rec[c].values, store[c].values)
            assert rec[c].attrs["units"] == store[c].attrs["units"]
        assert rec["field"].attrs["units"] == store[name].attrs["units"]
        assert rec["field"].attrs["long_name"] == store[name].attrs["long_name"]
        np.testing.assert_array_equal(rec["mask"].values, store["mask"].values > 0)
        assert rec.attrs["dx"] == store.attrs["dx"]
        assert rec.attrs["scenario"] == store.attrs["scenario"]
    el = load(out, series="electrodes")
    np.testing.assert_array_equal(el["field"].values, store["electrodes"].values)
    np.testing.assert_array_equal(el["time"].values, store["time_electrodes"].values)
    np.testing.assert_array_equal(el["x"].values, store["electrode_x"].values)
    np.testing.assert_array_equal(el["y"].values, store["electrode_y"].values)
    assert el["field"].attrs["units"] == store["electrodes"].attrs["units"]
    # other NWB readers see the standard fields: rate in Hz, positions in um
    with NWBHDF5IO(str(out), "r") as io:
        f = io.read()
        assert f.acquisition["field"].rate == pytest.approx(2000.0)
        table = f.electrodes.to_dataframe()
        np.testing.assert_allclose(table["rel_x"], store["electrode_x"].values * 1000, rtol=1e-6)


def test_recording_round_trip_through_nwb(tmp_path):
    from wavesim.recordings import as_recording

    rec = as_recording(MOVIE, dt=0.6136, source="m.npy", units="dF/F")
    to_nwb(rec, tmp_path / "r.nwb")
    back = load(tmp_path / "r.nwb")
    for name in ("field", "mask", "time", "x", "y"):
        xr.testing.assert_identical(back[name], rec[name])
    assert back.attrs["spacing_units"] == "px"
    with pytest.raises(FileExistsError, match="overwrite"):
        to_nwb(rec, tmp_path / "r.nwb")
