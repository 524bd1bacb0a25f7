"""Analyzers: xarray in, xarray out (phase, velocity, singularities, patterns, pinwheels)."""

from __future__ import annotations

from wavesim._lazy import lazy_getattr

_EXPORTS = {
    "pinwheels": "wavesim.analysis.orientation_maps",
    "plaquette_winding": "wavesim.analysis.winding",
    "estimate_wavelength": "wavesim.maps",
    "oscillator_phase": "wavesim.analysis.phase",
    "oscillator_amplitude": "wavesim.analysis.phase",
    "gate_phase": "wavesim.analysis.phase",
    "analytic_phase": "wavesim.analysis.phase",
    "demodulated_phase": "wavesim.analysis.phase",
    "generalized_phase": "wavesim.analysis.phase",
    "instantaneous_frequency": "wavesim.analysis.phase",
    "phase_gradient": "wavesim.analysis.velocity",
    "phase_gradient_directionality": "wavesim.analysis.velocity",
    "plane_wave_fit": "wavesim.analysis.velocity",
    "optical_flow": "wavesim.analysis.flow",
    "classify_patterns": "wavesim.analysis.patterns",
    "pattern_events": "wavesim.analysis.patterns",
    "phase_singularities": "wavesim.analysis.singularities",
    "track_singularities": "wavesim.analysis.singularities",
    "charge_balance": "wavesim.analysis.singularities",
    "link_points": "wavesim.analysis.linking",
    "wave_summary": "wavesim.analysis.summary",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
