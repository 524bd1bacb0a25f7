"""Analyzers: xarray in, xarray out (pinwheels of orientation maps, phase of oscillator fields)."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "pinwheels": "wavesim.analysis.orientation_maps",
    "plaquette_winding": "wavesim.analysis.winding",
    "estimate_wavelength": "wavesim.maps",
    "oscillator_phase": "wavesim.analysis.phase",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wavesim.analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
