"""Phase of lattice oscillators from their own state.

Convention (docs/conventions.md): phase increases with time, φ = ωt − k·x. For an oscillator
y = A cos φ the velocity is ẏ = −Aω sin φ, so φ = atan2(−ẏ/ω, y).

A fuller phase toolbox (band-pass filtering, analytic signal, generalized phase) comes later; this
module holds the one estimator that needs no filtering because the simulator records ẏ.
"""

from __future__ import annotations

import math
import tomllib

import numpy as np
import xarray as xr

__all__ = ["oscillator_phase", "resolve_omega", "state_variable", "velocity_variable"]

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
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"oscillator_phase expects an xarray.Dataset, got {type(ds).__name__}")
    state = var if var is not None else state_variable(ds)
    if state not in ds.data_vars:
        raise KeyError(f"{_describe(ds)} has no variable {state!r}")
    vel = velocity if velocity is not None else velocity_variable(ds, state)
    if vel not in ds.data_vars:
        raise KeyError(f"{_describe(ds)} has no velocity variable {vel!r} ('ydot')")
    w = resolve_omega(ds, omega)

    y = ds[state]
    ydot = ds[vel]
    phi = np.arctan2(-ydot / w, y)
    # atan2 returns [-π, π]; -π (y < 0, ẏ = +0) belongs to π in (-π, π].
    phi = xr.where(phi <= -np.pi, phi + 2 * np.pi, phi)
    phi = phi.transpose(*y.dims)
    phi.name = "phase"
    phi.attrs = {"units": "rad", "long_name": "oscillator phase"}
    return phi
