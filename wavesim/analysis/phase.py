"""Phase estimators: oscillator phase, band-pass analytic phase, generalized phase.

Convention (docs/conventions.md): phase increases with time, φ = ωt − k·x, in rad, wrapped to
(−π, π].

* :func:`oscillator_phase` — from a lattice oscillator's own state: for y = A cos φ the velocity
  is ẏ = −Aω sin φ, so φ = atan2(−ẏ/ω, y). Needs no filtering because the simulator records ẏ.
* :func:`analytic_phase` — zero-phase Butterworth band-pass along time, then the analytic signal
  (Hilbert transform): for y = cos(ωt − k·x) the analytic signal is exp(i(ωt − k·x)). Edge
  samples spoiled by the filter transients are flagged (``reliable``).
* :func:`generalized_phase` — Davis et al. (2020): a wide-band analytic phase whose
  negative-frequency epochs are bridged by interpolation of the unwrapped phase.
* :func:`instantaneous_frequency` — wrapped phase differences along time, in Hz (or rad/ms).

Frequencies (``band``) are given in **Hz**, as electrophysiologists quote them; the time axis is in
ms, so a frequency f Hz is 2π·f/1000 rad/ms.
"""

from __future__ import annotations

import math
import tomllib
import warnings

import numpy as np
import xarray as xr
from scipy import interpolate, signal

__all__ = [
    "analytic_phase",
    "demodulated_phase",
    "gate_phase",
    "generalized_phase",
    "instantaneous_frequency",
    "oscillator_amplitude",
    "oscillator_phase",
    "resolve_omega",
    "state_variable",
    "velocity_variable",
]

#: Names tried, in order, for the oscillator displacement y in a store. xarray cannot hold a data
#: variable called ``y`` next to a dimension ``y``, so wavesim stores write it as ``field`` (and ẏ
#: as ``field_dot``, see :mod:`wavesim.recorders`); the other names serve recordings.
STATE_NAMES = ("field", "y", "state", "u", "activity")


def _velocity_names(state: str) -> tuple[str, ...]:
    names = (f"{state}_dot", f"{state}dot", f"d{state}dt", "ydot", "y_dot", "dydt")
    return tuple(dict.fromkeys(names))


def _describe(ds: xr.Dataset) -> str:
    source = ds.encoding.get("source")
    return f"store {source!r}" if source else "the dataset"


def state_variable(ds: xr.Dataset) -> str:
    """Name of the data variable that holds the oscillator displacement y.

    Parameters
    ----------
    ds : xarray.Dataset
        A simulation store (or recording) in the wavesim layout.

    Returns
    -------
    str
        The first of :data:`STATE_NAMES` present as a data variable; otherwise the only data
        variable with dims ``time``, ``y`` and ``x`` that is not a velocity or a phase.

    Raises
    ------
    KeyError
        When no such variable exists, or several candidates do and none has a known name.
    """
    for name in STATE_NAMES:
        if name in ds.data_vars:
            return name
    velocity_like = {n for s in STATE_NAMES for n in _velocity_names(s)} | {"phase"}
    candidates = [
        str(name)
        for name, var in ds.data_vars.items()
        if {"time", "y", "x"} <= set(var.dims) and str(name) not in velocity_like
    ]
    if len(candidates) == 1:
        return candidates[0]
    found = ", ".join(map(str, ds.data_vars)) or "none"
    if candidates:
        raise KeyError(
            f"{_describe(ds)} has several (time, y, x) variables ({', '.join(candidates)}) "
            f"and none is named one of {', '.join(STATE_NAMES)}; data variables: {found}"
        )
    raise KeyError(
        f"{_describe(ds)} has no oscillator state variable ({' or '.join(STATE_NAMES)}) "
        f"with dims (time, y, x); data variables: {found}"
    )


def velocity_variable(ds: xr.Dataset, state: str | None = None) -> str:
    """Name of the data variable that holds ẏ for the state variable ``state``.

    Raises
    ------
    KeyError
        Naming ``ydot`` when the store holds no velocity (it was not recorded).
    """
    state = state_variable(ds) if state is None else state
    for name in _velocity_names(state):
        if name in ds.data_vars:
            return name
    found = ", ".join(map(str, ds.data_vars)) or "none"
    raise KeyError(
        f"{_describe(ds)} has no variable 'ydot' ({state!r}_dot: the oscillator velocity, needed "
        f"for the phase atan2(-ydot/omega, y)); record ydot in the scenario. "
        f"Data variables: {found}"
    )


def resolve_omega(ds: xr.Dataset, omega: float | xr.DataArray | None = None):
    """The angular frequency ω used to scale ẏ, as a positive float (or a DataArray if given one).

    Order of precedence: the ``omega`` argument; ``ds.attrs["omega2"]``; ``[model] omega2`` in the
    TOML text ``ds.attrs["scenario"]``. Then ω = √omega2.

    Raises
    ------
    ValueError
        When none of these gives ω, the scenario text does not parse, or ω is not positive.
    """
    if omega is not None:
        if isinstance(omega, xr.DataArray):
            if not bool((omega > 0).all()):
                raise ValueError("omega must be positive everywhere")
            return omega
        value = float(omega)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"omega must be a positive finite number, got {omega!r}")
        return value

    source = None
    omega2 = ds.attrs.get("omega2")
    if omega2 is not None:
        source = "attrs['omega2']"
    elif "scenario" in ds.attrs:
        try:
            scenario = tomllib.loads(str(ds.attrs["scenario"]))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(
                f"{_describe(ds)}: attrs['scenario'] is not valid TOML: {exc}"
            ) from exc
        model = scenario.get("model", {})
        if isinstance(model, dict) and "omega2" in model:
            omega2 = model["omega2"]
            source = "[model] omega2 in attrs['scenario']"
    if omega2 is None:
        raise ValueError(
            f"cannot determine omega for {_describe(ds)}: pass omega=..., or store "
            "attrs['omega2'], or a scenario (attrs['scenario']) with [model] omega2"
        )
    try:
        omega2 = float(np.asarray(omega2).item())
    except (TypeError, ValueError) as exc:
        raise ValueError(f"omega2 from {source} must be a scalar number, got {omega2!r}") from exc
    if not (math.isfinite(omega2) and omega2 > 0):
        raise ValueError(f"omega2 from {source} must be positive to define a phase, got {omega2}")
    return math.sqrt(omega2)


def _oscillator_state(ds, omega, var, velocity, func: str):
    """``(y, ydot, omega)`` of a store for the oscillator phase and amplitude."""
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"{func} expects an xarray.Dataset, got {type(ds).__name__}")
    state = var if var is not None else state_variable(ds)
    if state not in ds.data_vars:
        raise KeyError(f"{_describe(ds)} has no variable {state!r}")
    vel = velocity if velocity is not None else velocity_variable(ds, state)
    if vel not in ds.data_vars:
        raise KeyError(f"{_describe(ds)} has no velocity variable {vel!r} ('ydot')")
    return ds[state], ds[vel], resolve_omega(ds, omega)


def oscillator_phase(
    ds: xr.Dataset,
    omega: float | xr.DataArray | None = None,
    *,
    var: str | None = None,
    velocity: str | None = None,
) -> xr.DataArray:
    """Phase of each lattice oscillator from its displacement and velocity.

    φ = atan2(−ẏ/ω, y), so that for y = A cos(ωt − k·x) the result is ωt − k·x (phase increases
    with time), wrapped to (−π, π].

    Parameters
    ----------
    ds : xarray.Dataset
        Store with the displacement (``y``; see :func:`state_variable`) and velocity ``ydot``, dims
        ``(..., time, y, x)``.
    omega : float or xarray.DataArray, optional
        Angular frequency in rad/ms. Default: √omega2 from ``ds.attrs["omega2"]``, else from
        ``[model] omega2`` in the scenario TOML text ``ds.attrs["scenario"]``.
    var, velocity : str, optional
        Names of the displacement and velocity variables, when they are not the default ones.

    Returns
    -------
    xarray.DataArray
        Named ``phase``, same dims and coords as the state, ``attrs["units"] = "rad"``.

    Raises
    ------
    KeyError
        When the state or the velocity ``ydot`` is missing from ``ds``.
    ValueError
        When ω cannot be determined or is not positive.

    Notes
    -----
    This is the exact phase of an undamped linear oscillator at frequency ω. With damping or
    coupling the instantaneous frequency differs from ω and the estimate is approximate (the
    phase still winds once per cycle and has the same singularities).
    """
    y, ydot, w = _oscillator_state(ds, omega, var, velocity, "oscillator_phase")
    phi = np.arctan2(-ydot / w, y)
    # atan2 returns [-π, π]; -π (y < 0, ẏ = +0) belongs to π in (-π, π].
    phi = xr.where(phi <= -np.pi, phi + 2 * np.pi, phi)
    phi = phi.transpose(*y.dims)
    phi.name = "phase"
    phi.attrs = {"units": "rad", "long_name": "oscillator phase"}
    return phi


def oscillator_amplitude(
    ds: xr.Dataset,
    omega: float | xr.DataArray | None = None,
    *,
    var: str | None = None,
    velocity: str | None = None,
) -> xr.DataArray:
    """Amplitude of each lattice oscillator, the modulus that goes with :func:`oscillator_phase`.

    ``A = sqrt(y**2 + (ydot/omega)**2)``: for y = A cos(ωt − k·x) it is A exactly. Arguments as
    in :func:`oscillator_phase`.

    Returns
    -------
    xarray.DataArray
        Named ``amplitude``, same dims and coords as the state, in the units of y.
    """
    y, ydot, w = _oscillator_state(ds, omega, var, velocity, "oscillator_amplitude")
    amp = np.sqrt(y**2 + (ydot / w) ** 2).transpose(*y.dims)
    amp.name = "amplitude"
    amp.attrs = {"units": y.attrs.get("units", "1"), "long_name": "oscillator amplitude"}
    return amp


def gate_phase(phase: xr.DataArray, amplitude: xr.DataArray, min_amplitude: float, *,
               relative: bool = True, radius: int = 3) -> xr.DataArray:  # fmt: skip
    """The phase with the sites of quiet regions set to NaN (missing).

    Where the activity is small the phase is noise, and its windings are noise singularities (a
    free wave dying out, the quiet rim of a recording). A site is kept when the *largest*
    amplitude within ``radius`` sites of it (a square window) reaches the threshold: the core of
    a real singularity, where the amplitude itself goes to zero, is kept because its
    surroundings are active. The analyzers treat NaN sites as missing: no singularity lies on a
    plaquette with a NaN corner, and :func:`~wavesim.analysis.charge_balance` follows the border
    of the valid region.

    Parameters
    ----------
    phase, amplitude : xarray.DataArray
        Same dims ``(..., time, y, x)`` (as :func:`oscillator_phase` and
        :func:`oscillator_amplitude`, or ``analytic_phase(...)["phase"]`` and ``["amplitude"]``).
    min_amplitude : float
        Threshold, >= 0: a fraction of each frame's largest amplitude (``relative=True``) or an
        absolute amplitude.
    relative : bool
    radius : int
        Half-width (sites) of the window whose largest amplitude is compared, >= 0.

    Returns
    -------
    xarray.DataArray
        ``phase`` where the local amplitude reaches the threshold, NaN elsewhere; ``attrs``
        record the gate.
    """
    from scipy.ndimage import maximum_filter

    if not (np.isfinite(min_amplitude) and min_amplitude >= 0):
        raise ValueError(f"min_amplitude: expected a number >= 0, got {min_amplitude!r}")
    if int(radius) != radius or radius < 0:
        raise ValueError(f"radius: expected an integer >= 0 (sites), got {radius!r}")
    if set(amplitude.dims) != set(phase.dims):
        raise ValueError(
            f"amplitude: expected the dims of the phase {phase.dims}, got {amplitude.dims}"
        )
    amp = amplitude.transpose(*phase.dims)
    values = np.nan_to_num(np.asarray(amp.values, dtype=float), nan=0.0)
    size = [1] * (values.ndim - 2) + [2 * int(radius) + 1] * 2
    local = maximum_filter(values, size=size, mode="nearest")
    if relative:
        frame_max = values.max(axis=(-2, -1), keepdims=True)
        keep = local >= min_amplitude * frame_max
    else:
        keep = local >= min_amplitude
    out = phase.where(xr.DataArray(keep, dims=phase.dims, coords=phase.coords))
    out.attrs = {
        **phase.attrs,
        "min_amplitude": float(min_amplitude),
        "min_amplitude_relative": int(bool(relative)),
        "gate_radius": int(radius),
    }
    return out


# --------------------------------------------------------------------------------------------
# Band-pass analytic phase, generalized phase, instantaneous frequency
# --------------------------------------------------------------------------------------------
#: Fraction of the single-pass impulse-response energy of the band-pass filter that defines the
#: unreliable edges of :func:`analytic_phase` (see ``_edge_samples``).
EDGE_ENERGY = 0.999


def space_units(da) -> str:
    """Length unit of the ``x``/``y`` coordinates of ``da``: ``"px"`` when they are pixel
    indices (a recording whose spacing is unknown, ``attrs["units"] == "px"``), else ``"mm"``.

    Analyzers label their outputs with it (speeds in px/ms, wave vectors in rad/px, ...).
    """
    coords = getattr(da, "coords", {})
    for name in ("x", "y"):
        if name in coords and str(coords[name].attrs.get("units", "mm")).strip() == "px":
            return "px"
    return "mm"


def _coord_spacing(da: xr.DataArray, dim: str, given, kwname: str, unit: str):
    """Uniform spacing of coordinate ``dim`` (checked against ``given``), else ``given`` or None."""
    if dim in da.coords and da[dim].ndim == 1 and da.sizes[dim] >= 2:
        c = da[dim].values
        if not np.issubdtype(c.dtype, np.number):
            raise ValueError(f"the {dim} coordinate must be numeric ({unit}); got dtype {c.dtype}")
        d = np.diff(c.astype(float))
        step = float(d.mean())
        if not (np.isfinite(step) and step > 0):
            raise ValueError(f"the {dim} coordinate must increase ({unit}); got steps {d[:3]}")
        if not np.allclose(d, step, rtol=1e-6, atol=0):
            raise ValueError(
                f"the {dim} coordinate must be uniformly spaced; its steps range from "
                f"{d.min():g} to {d.max():g} {unit}"
            )
        if given is not None and not math.isclose(float(given), step, rel_tol=1e-6):
            raise ValueError(
                f"{kwname}={given!r} disagrees with the {dim} coordinate spacing {step:g} {unit}"
            )
        return step
    if given is None:
        return None
    try:
        value = float(given)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{kwname} must be a positive number of {unit}, got {given!r}")
    return value


def _signal_dataarray(data, dt, func: str, name: str = "da") -> tuple[xr.DataArray, float]:
    """A DataArray with a ``time`` dim and its (uniform) time step in ms."""
    if isinstance(data, xr.Dataset):
        if "phase" in data.data_vars and func == "instantaneous_frequency":
            data = data["phase"]
        else:
            data = data[state_variable(data)]
    if isinstance(data, xr.DataArray):
        if "time" not in data.dims:
            raise ValueError(
                f"{func}: {name} must have a 'time' dimension (dims (..., time, y, x)); got "
                f"dims {data.dims}"
            )
        da = data
    else:
        arr = np.asarray(data)
        if arr.ndim == 1:
            dims = ("time",)
        elif arr.ndim >= 3:
            dims = tuple(f"dim_{n}" for n in range(arr.ndim - 3)) + ("time", "y", "x")
        else:
            raise ValueError(
                f"{func}: a numpy {name} must be 1-D (time,) or have dims (..., time, y, x); got "
                f"shape {arr.shape} (wrap 2-D data in an xarray.DataArray with a 'time' dim)"
            )
        if dt is None:
            raise ValueError(f"{func}: a numpy {name} needs dt= (the sampling interval in ms)")
        nt = arr.shape[dims.index("time")]
        da = xr.DataArray(
            arr, dims=dims, coords={"time": ("time", np.arange(nt) * float(dt), {"units": "ms"})}
        )
    step = _coord_spacing(da, "time", dt, "dt", "ms")
    if step is None:
        raise ValueError(
            f"{func}: cannot determine the sampling interval: {name} has no time coordinate "
            "(ms) with at least 2 values; pass dt=..."
        )
    return da, step


def _check_band(band, fs: float, func: str) -> tuple[float, float]:
    nyq = fs / 2
    try:
        lo, hi = (float(b) for b in band)
    except (TypeError, ValueError):
        raise ValueError(
            f"{func}: band must be a pair (low, high) of frequencies in Hz, got {band!r}"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi < nyq):
        raise ValueError(
            f"{func}: band must be (low, high) in Hz with 0 < low < high < Nyquist = {nyq:g} Hz "
            f"(sampling interval {1000 / fs:g} ms); got {band!r}. Frequencies are in Hz, not 1/ms"
        )
    return lo, hi


def _edge_samples(sos: np.ndarray, fs: float, lo: float) -> int:
    """Samples holding ``EDGE_ENERGY`` of the single-pass impulse-response energy of ``sos``."""
    n = int(math.ceil(20 * fs / lo)) + 64
    imp = np.zeros(n)
    imp[0] = 1.0
    h = signal.sosfilt(sos, imp)
    e = np.cumsum(h * h)
    return int(min(np.searchsorted(e, EDGE_ENERGY * e[-1]) + 1, n))


def zero_phase_bandpass(
    x: np.ndarray, fs: float, band, order: int = 4, func: str = "bandpass"
) -> tuple[np.ndarray, int]:
    """Zero-phase Butterworth band-pass of ``x`` along its last axis (the one filter of wavesim).

    ``scipy.signal.butter(order, band, btype="bandpass", fs=fs, output="sos")`` applied forwards
    and backwards (``sosfiltfilt``), mirror-padded by the filter's impulse-response length.
    Used by :func:`analytic_phase` and :func:`wavesim.recordings.bandpass`.

    Parameters
    ----------
    x : numpy.ndarray
        Finite real samples, time along the last axis.
    fs : float
        Sampling rate in Hz.
    band : (float, float)
        Pass band in Hz, 0 < low < high < fs/2.
    order : int
        Butterworth order.

    Returns
    -------
    (numpy.ndarray, int)
        The filtered array (float64, shape of ``x``) and the number of samples at each end
        within which the filter's single-pass impulse response delivers ``EDGE_ENERGY`` of its
        energy (the unreliable edge).
    """
    if not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"{func}: order must be a positive integer, got {order!r}")
    lo, hi = _check_band(band, fs, func)
    sos = signal.butter(int(order), [lo, hi], btype="bandpass", fs=fs, output="sos")
    x = np.asarray(x, dtype=np.float64)
    nt = x.shape[-1]
    n_ir = _edge_samples(sos, fs, lo)
    n_min = 3 * (2 * len(sos) + 1)  # scipy's default padding of sosfiltfilt
    if nt <= n_min:
        raise ValueError(
            f"{func}: the signal has {nt} samples; the order-{order} band-pass filter needs more "
            f"than {n_min} (and about {2 * n_ir} for a reliable middle)"
        )
    if x.size == 0:
        return x.copy(), n_ir
    # Even (mirror) padding over the impulse-response length: against scipy's default (odd
    # padding of 3*(2*sections+1) samples) it cuts the phase error next to the flagged edges
    # of band-limited noise several-fold (the odd extension adds a step that rings).
    y = signal.sosfiltfilt(sos, x, axis=-1, padtype="even", padlen=min(n_ir, nt - 1))
    return y, n_ir


def _bandpass_analytic(da: xr.DataArray, step: float, band, order: int, edge, func: str):
    """Analytic signal of the zero-phase band-passed ``da`` along time.

    Returns ``(z, reliable, info)``: ``z`` complex with the shape of ``da`` (NaN at sites with any
    NaN sample), the boolean ``reliable`` mask along time, and a dict of attributes.
    """
    if np.iscomplexobj(da):
        raise ValueError(f"{func}: expects a real signal, got a complex array")
    if not (np.issubdtype(da.dtype, np.number) or da.dtype == bool):
        raise ValueError(f"{func}: expects a real numeric signal, got dtype {da.dtype}")
    if not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"{func}: order must be a positive integer, got {order!r}")
    fs = 1000.0 / step  # Hz
    lo, hi = _check_band(band, fs, func)
    axis = da.get_axis_num("time")
    nt = da.sizes["time"]
    arr = np.moveaxis(np.asarray(da.values, dtype=np.float64), axis, -1)
    shape = arr.shape
    x2 = arr.reshape(-1, nt)
    ok = np.isfinite(x2).all(axis=1)
    y, n_ir = zero_phase_bandpass(x2[ok], fs, (lo, hi), order, func)
    z2 = np.full(x2.shape, np.nan + 1j * np.nan)
    if ok.any():
        z2[ok] = signal.hilbert(y, axis=-1)
    z = np.moveaxis(z2.reshape(shape), -1, axis)

    if edge is None:
        n_edge = n_ir
    else:
        edge = float(edge)
        if not (math.isfinite(edge) and edge >= 0):
            raise ValueError(f"{func}: edge must be a non-negative duration in ms, got {edge!r}")
        n_edge = int(math.ceil(edge / step - 1e-9))
    idx = np.arange(nt)
    reliable = (idx >= n_edge) & (idx < nt - n_edge)
    if not reliable.any():
        warnings.warn(
            f"{func}: no sample is reliable: the signal lasts {nt * step:g} ms, less than twice "
            f"the filter's edge of {n_edge * step:g} ms (band {lo:g}-{hi:g} Hz)",
            RuntimeWarning,
            stacklevel=3,
        )
    info = {
        "band": [lo, hi],
        "band_units": "Hz",
        "filter": f"Butterworth band-pass, order {int(order)} (x2: forward-backward, zero phase)",
        "filter_order": int(order),
        "edge": n_edge * step,
        "edge_units": "ms",
    }
    return z, reliable, info


def _like(da: xr.DataArray, values, attrs: dict) -> xr.DataArray:
    out = da.copy(data=values)
    out.attrs = dict(attrs)
    out.name = None
    return out


def _reliable_coord(reliable: np.ndarray, edge_ms: float):
    return (
        "time",
        reliable,
        {
            "units": "1",
            "long_name": "sample outside the filter's edge transients",
            "edge": edge_ms,
            "edge_units": "ms",
        },
    )


def _phase_dataset(da, phase, amp, reliable, info, method, extra=None) -> xr.Dataset:
    amp_units = da.attrs.get("units", "1")
    data = {
        "phase": _like(da, phase, {"units": "rad", "long_name": method}),
        "amplitude": _like(da, amp, {"units": amp_units, "long_name": "analytic amplitude"}),
    }
    data.update(extra or {})
    ds = xr.Dataset(data).assign_coords(reliable=_reliable_coord(reliable, info["edge"]))
    if "time" in ds.coords and "units" not in ds["time"].attrs:
        ds["time"].attrs["units"] = "ms"
    ds.attrs = {"method": method, **info}
    return ds


def analytic_phase(
    da,
    band,
    *,
    order: int = 4,
    dt: float | None = None,
    edge: float | None = None,
) -> xr.Dataset:
    """Band-pass analytic phase and amplitude along time.

    The signal is band-passed with a zero-phase Butterworth filter (``scipy.signal.butter(order,
    band, btype="bandpass", output="sos")`` applied forwards and backwards with
    ``sosfiltfilt``, mirror-padded by the filter's impulse-response length), then turned into its
    analytic signal ``z = y + i H[y]`` (``scipy.signal.hilbert``, along time). For
    y = cos(ωt − k·x), z = exp(i(ωt − k·x)): the phase increases with time, as
    :func:`oscillator_phase`.

    Parameters
    ----------
    da : xarray.DataArray, xarray.Dataset or numpy.ndarray
        Real signal with a ``time`` dim (ms), typically ``(..., time, y, x)``. A Dataset (a store)
        gives its state variable (:func:`state_variable`). A numpy array is read as ``(time,)`` or
        ``(..., time, y, x)`` and needs ``dt``. Sites with any NaN sample (masked) are NaN in the
        output; the others are not affected.
    band : (float, float)
        Pass band ``(low, high)`` in **Hz** (e.g. ``(5, 15)``), 0 < low < high < Nyquist. The time
        axis is in ms: the Nyquist frequency is 500/dt Hz.
    order : int, default 4
        Butterworth order (the band-pass has 2·order poles; forward-backward filtering squares its
        magnitude response).
    dt : float, optional
        Sampling interval in ms, for numpy input or a DataArray without a time coordinate.
    edge : float, optional
        Duration in ms flagged unreliable at each end. Default: the time within which the filter's
        single-pass impulse response delivers 99.9 % of its energy (about 1.5–2.5 periods of the
        low band edge for order 4).

    Returns
    -------
    xarray.Dataset
        ``phase`` (rad, in (−π, π]) and ``amplitude`` (units of the input) with the dims and
        coords of ``da``, plus the boolean coordinate ``reliable(time)``: False within ``edge`` of
        either end. Attributes record the band (Hz), the order and the edge (ms).

    Raises
    ------
    ValueError
        For a band outside (0, Nyquist), an unknown sampling interval, a complex input, or a
        signal too short for the filter. A RuntimeWarning when no sample is reliable.

    Notes
    -----
    The edges are unreliable because the filter starts and ends in the wrong state (transients
    that decay with the filter's impulse response) and because the FFT-based Hilbert transform
    treats the record as periodic. For a 10 Hz cosine, band (5, 15) Hz, order 4, the phase error
    is below 0.02 rad on the reliable samples and up to ~1 rad within the edges.
    """
    func = "analytic_phase"
    da, step = _signal_dataarray(da, dt, func)
    z, reliable, info = _bandpass_analytic(da, step, band, order, edge, func)
    return _phase_dataset(da, np.angle(z), np.abs(z), reliable, info, "analytic phase")


def _extend_runs(mask: np.ndarray, extend: float) -> np.ndarray:
    """Each run ``[s, e]`` of True along the last axis becomes ``[s, s + extend*(e - s)]``."""
    nt = mask.shape[-1]
    m = mask.reshape(-1, nt)
    prev = np.zeros_like(m)
    prev[:, 1:] = m[:, :-1]
    nxt = np.zeros_like(m)
    nxt[:, :-1] = m[:, 1:]
    rs, cs = np.nonzero(m & ~prev)
    _, ce = np.nonzero(m & ~nxt)  # row-major order: the k-th end closes the k-th start
    stop = np.minimum(cs + np.floor(extend * (ce - cs)).astype(int), nt - 1)
    delta = np.zeros((m.shape[0], nt + 1), dtype=np.int64)
    np.add.at(delta, (rs, cs), 1)
    np.add.at(delta, (rs, stop + 1), -1)
    return (np.cumsum(delta, axis=1)[:, :nt] > 0).reshape(mask.shape)


def _bridge(p: np.ndarray, bad: np.ndarray, step: float) -> np.ndarray:
    """Replace ``p[bad]`` by a shape-preserving interpolation of the unwrapped phase.

    ``step`` is the site's mean phase advance per sample (rad); it sets the number of whole
    cycles across each gap and the slope of the extrapolation past the last good sample.
    """
    gi = np.flatnonzero(~bad)
    if gi.size < 2:
        return p
    u = np.unwrap(p[gi])
    jumps = np.diff(u)
    gaps = np.diff(gi)
    corr = np.where(gaps > 1, 2 * np.pi * np.round((step * gaps - jumps) / (2 * np.pi)), 0.0)
    u[1:] += np.cumsum(corr)
    bi = np.flatnonzero(bad)
    inner = bi[bi < gi[-1]]
    tail = bi[bi > gi[-1]]
    q = np.array(p, dtype=float)
    q[gi] = u
    if inner.size:
        q[inner] = interpolate.PchipInterpolator(gi, u)(inner)
    if tail.size:
        q[tail] = u[-1] + step * (tail - gi[-1])
    return np.angle(np.exp(1j * q))


def generalized_phase(
    da,
    band=(5.0, 40.0),
    *,
    order: int = 4,
    threshold: float = 0.0,
    extend: float = 3.0,
    dt: float | None = None,
    edge: float | None = None,
) -> xr.Dataset:
    """Generalized phase (Davis, Muller et al. 2020): wide-band phase without negative frequency.

    1. Wide-band zero-phase Butterworth band-pass and analytic signal, as :func:`analytic_phase`
       (default band 5–40 Hz, order 4, as in the paper).
    2. Instantaneous frequency from one sample to the next, f[t] = arg(z[t+1] z̄[t]) / (2π dt).
       Samples with f < ``threshold`` (0 Hz: the phase runs backwards) form epochs; the first
       sample never starts one.
    3. Each epoch ``[s, e]`` (samples) is extended to ``[s, s + extend·(e − s)]`` (``extend`` = 3,
       the published rule), and the phase there is replaced by a shape-preserving piecewise cubic
       (PCHIP) interpolation of the unwrapped phase between the good samples around it, then
       wrapped again. Amplitudes are not changed.

    Parameters
    ----------
    da : xarray.DataArray, xarray.Dataset or numpy.ndarray
        Real signal with a ``time`` dim (ms); see :func:`analytic_phase`.
    band : (float, float), default (5, 40)
        Pass band in **Hz**.
    order : int, default 4
        Butterworth order.
    threshold : float, default 0.0
        Instantaneous-frequency threshold in Hz below which a sample is repaired.
    extend : float, default 3
        Epoch extension factor (``nwin`` of the published code).
    dt, edge : float, optional
        As in :func:`analytic_phase`.

    Returns
    -------
    xarray.Dataset
        ``phase`` (rad), ``amplitude`` and ``repaired`` (bool, True where the phase was
        interpolated), dims and coords of ``da``, plus the ``reliable(time)`` coordinate.

    Notes
    -----
    Two details are not in the published code. The number of whole cycles across a repaired gap
    is chosen to make the phase advance across the gap closest to the site's mean advance per
    sample times the gap length (the published code unwraps across the gap, which silently drops
    a cycle when the gap spans more than half a period); for short gaps the two agree. A repaired
    epoch reaching the end of the record is extrapolated linearly at the mean advance instead of
    by the PCHIP end polynomial (those samples are within the unreliable edge anyway).

    References
    ----------
    Davis Z. W., Muller L., Martinez-Trujillo J., Sejnowski T., Reynolds J. H. (2020).
    Spontaneous travelling cortical waves gate perception in behaving primates. Nature 587,
    432–436. Reference code: github.com/mullerlab/generalized-phase.
    """
    func = "generalized_phase"
    threshold = float(threshold)
    extend = float(extend)
    if not math.isfinite(threshold):
        raise ValueError(f"{func}: threshold must be a finite frequency in Hz, got {threshold!r}")
    if not (math.isfinite(extend) and extend >= 1):
        raise ValueError(f"{func}: extend must be a number >= 1, got {extend!r}")
    da, step = _signal_dataarray(da, dt, func)
    z, reliable, info = _bandpass_analytic(da, step, band, order, edge, func)
    axis = da.get_axis_num("time")
    nt = da.sizes["time"]
    z2 = np.moveaxis(z, axis, -1)
    shape = z2.shape
    z2 = z2.reshape(-1, nt)
    ph = np.angle(z2)
    ok = np.isfinite(z2).all(axis=1)
    prod = z2[:, 1:] * np.conj(z2[:, :-1])
    f_hz = np.angle(prod) * (1000.0 / (2 * np.pi * step))
    neg = np.zeros(z2.shape, dtype=bool)
    neg[:, :-1] = ok[:, None] & (f_hz < threshold)
    neg[:, 0] = False
    repaired = _extend_runs(neg, extend)
    mean_step = np.angle(np.where(ok[:, None], prod, 0).sum(axis=1))
    for r in np.flatnonzero(repaired.any(axis=1)):
        ph[r] = _bridge(ph[r], repaired[r], float(mean_step[r]))

    def back(a):
        return np.moveaxis(a.reshape(shape), -1, axis)

    info = {**info, "threshold": threshold, "threshold_units": "Hz", "extend": extend}
    rep = _like(da, back(repaired), {"units": "1", "long_name": "phase interpolated"})
    return _phase_dataset(
        da, back(ph), np.abs(z), reliable, info, "generalized phase", {"repaired": rep}
    )


def instantaneous_frequency(phase, *, units: str = "Hz", dt: float | None = None) -> xr.DataArray:
    """Instantaneous frequency from the phase: wrapped phase differences along time.

    The phase step to each neighbouring sample is taken by complex multiplication,
    ``arg(z[t+1] z̄[t])`` with ``z = exp(iφ)`` (no unwrapping), and the two steps around each
    sample are averaged (one-sided at the ends and next to NaN samples). Correct while the phase
    advances by less than π per sample.

    Parameters
    ----------
    phase : xarray.DataArray, xarray.Dataset or numpy.ndarray
        Phase in rad with a ``time`` dim (ms); a Dataset from :func:`analytic_phase` or
        :func:`generalized_phase` (its ``phase`` is used, and its ``reliable`` coordinate kept).
        A numpy array is read as ``(time,)`` or ``(..., time, y, x)`` and needs ``dt``.
    units : {"Hz", "rad/ms"}, default "Hz"
        ``"Hz"``: cycles per second, f = (dφ/dt) · 1000 / (2π) with t in ms. ``"rad/ms"``: the
        angular frequency dφ/dt in the project's time unit (the ``omega`` of
        :func:`~wavesim.analysis.phase_gradient`).
    dt : float, optional
        Sampling interval in ms, for numpy input.

    Returns
    -------
    xarray.DataArray
        ``frequency`` with the dims and coords of ``phase``, ``attrs["units"]`` = ``units``.
        Negative where the phase runs backwards.
    """
    func = "instantaneous_frequency"
    if units not in ("Hz", "rad/ms"):
        raise ValueError(f"{func}: units must be 'Hz' or 'rad/ms', got {units!r}")
    da, step = _signal_dataarray(phase, dt, func, name="phase")
    if np.iscomplexobj(da):
        da = xr.apply_ufunc(np.angle, da, keep_attrs=True)
    axis = da.get_axis_num("time")
    p = np.moveaxis(np.asarray(da.values, dtype=np.float64), axis, -1)
    z = np.exp(1j * p)
    d = np.angle(z[..., 1:] * np.conj(z[..., :-1]))
    pad = [(0, 0)] * (d.ndim - 1)
    both = np.stack(
        [
            np.pad(d, [*pad, (0, 1)], constant_values=np.nan),
            np.pad(d, [*pad, (1, 0)], constant_values=np.nan),
        ]
    )
    n = np.isfinite(both).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, np.nansum(both, axis=0) / n, np.nan) / step  # rad/ms
    if units == "Hz":
        rate = rate * (1000.0 / (2 * np.pi))
    out = _like(
        da,
        np.moveaxis(rate, -1, axis),
        {"units": units, "long_name": "instantaneous frequency"},
    )
    out.name = "frequency"
    if "units" not in out["time"].attrs:
        out["time"].attrs["units"] = "ms"
    return out


def demodulated_phase(
    data, frequency: float, *, periods: int = 1, window: str = "sliding", dt: float | None = None
) -> xr.Dataset:
    """Phase and amplitude of the response at a known frequency (lock-in demodulation).

    For activity driven periodically (a rotating grating, a drifting bar, a periodic stimulus in
    phase-encoded mapping) the response's phase at the drive frequency ν is what carries the
    map. Over a window of whole periods, ``Z(x, t) = mean over [t - W, t] of y(x, t') e^{-iνt'}``
    removes the mean and every harmonic exactly; then

        φ = νt + arg Z,  amplitude = 2|Z|,

    so that y = a cos(νt − ψ(x)) gives φ = νt − ψ(x): the phase increases with time and the
    wave vector is −∇φ, as everywhere in wavesim.

    Parameters
    ----------
    data : xarray.DataArray or xarray.Dataset
        Signal with a ``time`` dim in ms (a Dataset: its state variable, e.g. ``field``).
    frequency : float
        Drive frequency in **Hz** (cycles per second; f Hz is 2π f / 1000 rad/ms).
    periods : int
        Window length in periods (>= 1).
    window : {"sliding", "full"}
        ``"sliding"``: a window ending at every frame (the first ``W − 1`` frames are dropped);
        ``"full"``: one estimate from the whole record, which must span a whole number of
        periods (a single frame at the record's last time).
    dt : float, optional
        Sampling interval (ms) when ``data`` has no time coordinate.

    Returns
    -------
    xarray.Dataset
        ``phase`` (rad, wrapped to (−π, π]) and ``amplitude`` (units of the signal) on the
        signal's dims.

    Raises
    ------
    ValueError
        When the window is not a whole number of frames (within 1e-6 of a frame), is longer
        than the record, or the frequency is not positive.
    """
    func = "demodulated_phase"
    da, step = _signal_dataarray(data, dt, func, name="data")
    if not (np.isfinite(frequency) and frequency > 0):
        raise ValueError(f"{func}: frequency must be a positive number of Hz, got {frequency!r}")
    if int(periods) != periods or periods < 1:
        raise ValueError(f"{func}: periods must be a whole number >= 1, got {periods!r}")
    if window not in ("sliding", "full"):
        raise ValueError(f"{func}: window must be 'sliding' or 'full', got {window!r}")
    nu = 2 * np.pi * frequency / 1000.0  # rad/ms
    t = np.asarray(da["time"].values, dtype=float)
    if window == "full":
        span = (t[-1] - t[0]) + step
        n_win = t.size
        cycles = span * frequency / 1000.0
        if abs(cycles - round(cycles)) > 1e-6 * max(1.0, cycles) or round(cycles) < 1:
            raise ValueError(
                f"{func}: window='full' needs a record of whole periods; {t.size} frames of "
                f"{step:g} ms span {cycles:.6g} periods of {frequency:g} Hz"
            )
    else:
        frames = periods * 1000.0 / frequency / step
        n_win = int(round(frames))
        if abs(frames - n_win) > 1e-6 * frames:
            raise ValueError(
                f"{func}: {periods} period(s) of {frequency:g} Hz are {frames:.6g} frames of "
                f"{step:g} ms: choose a frequency or periods that give a whole number of frames"
            )
        if n_win > t.size:
            raise ValueError(
                f"{func}: the window of {n_win} frames is longer than the record ({t.size} "
                "frames); use fewer periods or window='full'"
            )
    carrier = xr.DataArray(np.exp(-1j * nu * t), dims="time", coords={"time": da["time"]})
    prod = da.astype(float) * carrier
    if window == "full":
        z = prod.mean("time").expand_dims(time=da["time"].values[-1:])
        z = z.transpose(*da.dims)
    else:
        z = prod.rolling(time=n_win).mean().isel(time=slice(n_win - 1, None))
    tt = z["time"].values
    shape = [1] * z.ndim
    shape[z.get_axis_num("time")] = tt.size
    phi = np.angle(np.asarray(z.values) * np.exp(1j * nu * tt).reshape(shape))
    phi = np.where(phi <= -np.pi, phi + 2 * np.pi, phi)
    units = da.attrs.get("units", "1")
    out = xr.Dataset(
        {
            "phase": (z.dims, phi, {"units": "rad", "long_name": "demodulated phase"}),
            "amplitude": (z.dims, 2 * np.abs(np.asarray(z.values)), {"units": units}),
        },
        coords=z.coords,
    )
    out["time"].attrs.setdefault("units", "ms")
    out.attrs = {"frequency_hz": float(frequency), "window_frames": int(n_win), "window": window}
    return out
