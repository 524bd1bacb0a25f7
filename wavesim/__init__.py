"""wavesim: a simulation engine for cortical traveling waves.

Damped coupled-oscillator lattices on orientation-pinwheel maps, integrated by numba kernels,
recorded to self-describing zarr stores, and analysed with xarray-native tools.

The public API is re-exported here lazily, so ``import wavesim`` stays cheap (numba kernels are
compiled, or loaded from the cache, the first time a simulation runs).
"""

from __future__ import annotations

from wavesim._lazy import lazy_getattr

__version__ = "0.1.0"

_EXPORTS = {
    "load_scenario": "wavesim.scenario",
    "Scenario": "wavesim.scenario",
    "ScenarioError": "wavesim.scenario",
    "run": "wavesim.simulate",
    "Simulator": "wavesim.simulate",
    "open_store": "wavesim.store",
    "Lattice": "wavesim.lattice",
    "random_orientation_map": "wavesim.maps",
    "pinwheel_crystal": "wavesim.maps",
    "orientation_map_from_array": "wavesim.maps",
}

__all__ = sorted([*_EXPORTS, "__version__"])


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__():
    return __all__
