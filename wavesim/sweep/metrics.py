"""Per-member metrics of a sweep, computed with the analyzers of :mod:`wavesim.analysis`.

Each metric has a name, units, dimensions (most are scalars; ``pattern_occupancy`` is on
``category``) and a function of a :class:`MetricInput`: the member's recording (the oscillator
phase of its field, from the frames at ``time >= analysis_start``), its
:func:`~wavesim.analysis.wave_summary` (computed once, with plane-wave fits and pattern
classification only when a chosen metric needs them) and its orientation map.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

__all__ = ["DEFAULT_METRICS", "METRICS", "Metric", "MetricInput", "compute_metrics"]


@dataclass
class MetricInput:
    """What a metric function sees.

    Attributes
    ----------
    ds : xarray.Dataset
        The member's recording in the store layout (``field``, ``field_dot`` on
        ``(time, y, x)``), restricted to ``time >= analysis_start``; ``attrs["scenario"]`` is the
        member's scenario TOML.
    scenario : wavesim.scenario.Scenario
    theta : xarray.DataArray or None
        The orientation map (with its ``amplitude``), ``None`` without a map.
    summary : xarray.Dataset or None
        :func:`~wavesim.analysis.wave_summary` of ``ds``, when a chosen metric needs it.
    """

    ds: xr.Dataset
    scenario: object
    theta: xr.DataArray | None = None
    summary: xr.Dataset | None = None


@dataclass(frozen=True)
class Metric:
    """A named per-member metric.

    ``needs`` lists what it reads: ``"summary"`` (wave_summary), ``"plane_wave"`` (with
    plane-wave fits), ``"patterns"`` (with pattern classification), ``"map"``.
    ``dims`` and ``coords`` (a function returning ``{dim: (values, attrs)}``, called when
    needed, so that the registry imports no analyzer) describe a non-scalar result.
    """

    name: str
    units: str
    long_name: str
    func: Callable[[MetricInput], object]
    needs: tuple[str, ...] = ("summary",)
    dims: tuple[str, ...] = ()
    coords: Callable[[], dict] = dict

    @property
    def shape(self) -> tuple[int, ...]:
        coords = self.coords()
        return tuple(len(coords[d][0]) for d in self.dims)


def _scalar(name):
    def get(m: MetricInput):
        return float(m.summary[name])

    return get


def _median_over_frames(name):
    def get(m: MetricInput):
        v = np.asarray(m.summary[name].values, dtype=float)
        return float(np.nanmedian(v)) if np.isfinite(v).any() else math.nan

    return get


def _plaquette_area(summary: xr.Dataset) -> float:
    """mm² covered by the plaquettes searched for singularities (the phase's own grid)."""
    ny, nx = summary.attrs["shape"]
    dx = float(summary.attrs["dx"])
    n = ny * nx if summary.attrs["periodic"] else (ny - 1) * (nx - 1)
    return n * dx * dx


def _singularity_density(m: MetricInput) -> float:
    return float(m.summary["singularities_per_frame"]) / _plaquette_area(m.summary)


def _occupancy(m: MetricInput):
    return np.asarray(m.summary["pattern_occupancy"].values, dtype=float)


def _amplitude_rms(m: MetricInput) -> float:
    y = np.asarray(m.ds["field"].values, dtype=np.float64)
    if "mask" in m.ds:
        y = y[:, np.asarray(m.ds["mask"].values) > 0]
    return float(np.sqrt(np.mean(y * y)))


def _pinwheel_density(m: MetricInput) -> float:
    if m.theta is None:
        return math.nan
    from wavesim.analysis import pinwheels

    return float(pinwheels(m.theta).attrs["density"])


def _pattern_coords() -> dict:
    from wavesim.analysis.patterns import KINDS

    return {"category": (tuple(KINDS), {"long_name": "pattern kind"})}


def _registry() -> dict[str, Metric]:
    items = [
        Metric("speed_median", "mm/ms", "median local phase speed (dphi/dt)/|grad phi|",
               _scalar("speed_median")),
        Metric("speed_iqr", "mm/ms", "interquartile range of the local phase speed",
               _scalar("speed_iqr")),
        Metric("direction_mean", "rad",
               "dominant direction: circular mean of the local directions k/|k|, "
               "counter-clockwise from +x", _scalar("direction_circular_mean")),
        Metric("direction_coherence", "1",
               "resultant length of the local directions (1: all waves travel one way)",
               _scalar("direction_resultant_length")),
        Metric("plane_wave_speed", "mm/ms", "median over frames of the plane-wave fit speed",
               _median_over_frames("plane_wave_speed"), ("summary", "plane_wave")),
        Metric("plane_wave_quality", "1",
               "median over frames of the plane-wave fit quality R in [0, 1]",
               _median_over_frames("plane_wave_fit_quality"), ("summary", "plane_wave")),
        Metric("pgd", "1", "mean phase gradient directionality", _scalar("pgd_mean")),
        Metric("singularity_count", "1", "mean number of phase singularities per frame",
               _scalar("singularities_per_frame")),
        Metric("singularity_density", "1/mm^2",
               "mean number of phase singularities per frame per mm^2 of lattice",
               _singularity_density),
        Metric("singularity_lifetime", "ms",
               "mean lifetime of the singularity tracks (tracks cut by the first or last frame "
               "count with their observed part)", _scalar("lifetime_mean")),
        Metric("singularity_tracks", "1", "number of singularity tracks", _scalar("n_tracks")),
        Metric("pattern_occupancy", "1",
               "fraction of frame pairs in which each pattern kind occurs", _occupancy,
               ("summary", "patterns"), ("category",), _pattern_coords),
        Metric("amplitude_rms", "1", "root mean square of the field y over the analysed frames",
               _amplitude_rms, ()),
        Metric("pinwheel_density", "pinwheels per Lambda^2",
               "pinwheel density of the orientation map (NaN without a map)",
               _pinwheel_density, ("map",)),
    ]  # fmt: skip
    return {m.name: m for m in items}


#: The metrics a sweep can record, by name.
METRICS: dict[str, Metric] = _registry()

#: The metrics recorded when ``[sweep] metrics`` is not given.
DEFAULT_METRICS = (
    "speed_median",
    "direction_mean",
    "direction_coherence",
    "singularity_count",
    "singularity_density",
    "singularity_lifetime",
    "pattern_occupancy",
    "amplitude_rms",
)


def compute_metrics(
    names: Sequence[str], ds: xr.Dataset, scenario, theta=None, analysis_start: float = 0.0
) -> dict[str, np.ndarray]:
    """The metrics ``names`` of one member's recording.

    Parameters
    ----------
    names : sequence of str
        Keys of :data:`METRICS`.
    ds : xarray.Dataset
        The recording, store layout, with ``field`` and ``field_dot`` on ``(time, y, x)`` and
        ``attrs["scenario"]`` (for ω and the boundary).
    scenario : wavesim.scenario.Scenario
    theta : xarray.DataArray, optional
        The orientation map.
    analysis_start : float
        First time analysed (ms).

    Returns
    -------
    dict of str to numpy.ndarray
        One float64 array per metric, of shape :attr:`Metric.shape`.
    """
    from wavesim.analysis.summary import wave_summary

    metrics = [METRICS[n] for n in names]
    window = ds.sel(time=slice(analysis_start, None))
    needs = {n for m in metrics for n in m.needs}
    summary = None
    if "summary" in needs:
        summary = wave_summary(
            window,
            omega=_omega(scenario, window),
            plane_wave="plane_wave" in needs,
            patterns="patterns" in needs,
        )
    inp = MetricInput(window, scenario, theta, summary)
    out = {}
    for m in metrics:
        value = np.asarray(m.func(inp), dtype=np.float64)
        if value.shape != m.shape:
            raise ValueError(f"metric {m.name!r} returned shape {value.shape}, expected {m.shape}")
        out[m.name] = value
    return out


def _omega(scenario, ds: xr.Dataset):
    """ω = √omega2 for the oscillator phase (a per-site map gives a DataArray on (y, x))."""
    om2 = scenario.model.omega2
    if isinstance(om2, int | float):
        return None if om2 <= 0 else math.sqrt(om2)  # None: the analyzer explains the error
    s = scenario.record.subsample
    arr = np.sqrt(np.asarray(om2.load(), dtype=float))[::s, ::s]
    return xr.DataArray(arr, dims=("y", "x"), coords={"y": ds["y"], "x": ds["x"]})
