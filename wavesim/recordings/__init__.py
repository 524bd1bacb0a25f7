"""Experimental recordings in the wavesim layout: loaders, preprocessing, export, the evoked
response, and fitting lattices to recordings with forecast skill against baselines.

``load(path)`` reads NWB 2 (movies and electrode arrays), zarr / NetCDF, ``.npy`` / ``.npz``,
MATLAB ``.mat`` and multi-page TIFF into one :class:`xarray.Dataset` layout -- ``field`` on
``(time, y, x)`` or ``(time, channel)``, time in ms, space in mm (or px), a boolean ``mask`` --
which the analyzers (:mod:`wavesim.analysis`) and the fitting (:mod:`wavesim.learn`) take as they
take simulation stores. See ``docs/recordings.md``.
"""

from __future__ import annotations

from wavesim._lazy import lazy_getattr

_EXPORTS = {
    "load": "wavesim.recordings.loaders",
    "describe_file": "wavesim.recordings.loaders",
    "as_recording": "wavesim.recordings.layout",
    "validate_recording": "wavesim.recordings.layout",
    "RecordingError": "wavesim.recordings.layout",
    "list_series": "wavesim.recordings.nwb",
    "SeriesInfo": "wavesim.recordings.nwb",
    "apply_mask": "wavesim.recordings.preprocess",
    "baseline_normalize": "wavesim.recordings.preprocess",
    "detrend": "wavesim.recordings.preprocess",
    "bandpass": "wavesim.recordings.preprocess",
    "smooth": "wavesim.recordings.preprocess",
    "downsample": "wavesim.recordings.preprocess",
    "interpolate_bad": "wavesim.recordings.preprocess",
    "to_grid": "wavesim.recordings.preprocess",
    "utah_layout": "wavesim.recordings.preprocess",
    "to_nwb": "wavesim.recordings.export",
    "save_recording": "wavesim.recordings.export",
    "evoked_response": "wavesim.recordings.evoked",
    "format_evoked": "wavesim.recordings.evoked",
    "fit_recording": "wavesim.recordings.fit",
    "RecordingFit": "wavesim.recordings.fit",
    "recording_scenario": "wavesim.recordings.fit",
    "lattice_forecast": "wavesim.recordings.fit",
    "initial_from_frames": "wavesim.recordings.fit",
    "select_ridge_ar": "wavesim.recordings.fit",
    "skill_table": "wavesim.recordings.fit",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
