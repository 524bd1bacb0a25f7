"""Parameter sweeps on dask.distributed: sweep files, one zarr store per sweep, resumable runs.

A sweep file (TOML) names a base scenario and the scenario keys to vary (grid products, zipped
lists, random or Latin-hypercube samples, seeds); :func:`run_sweep` runs its members on a
dask.distributed ``LocalCluster`` (or an existing scheduler, or in this process) and writes one
zarr store with a ``member`` dimension; :func:`to_grid` puts the results on the sweep's own
dimensions::

    spec = load_sweep("scenarios/sweep_coupling_damping.toml")
    report = run_sweep(spec, "runs/sweep.zarr", workers=2)
    grid = to_grid(wavesim.open_store("runs/sweep.zarr"))

From the shell: ``wavesim sweep SWEEP.toml -o STORE [--workers N] [--scheduler ADDRESS]
[--resume]``. See ``docs/sweeps.md``.
"""

from __future__ import annotations

from wavesim._lazy import lazy_getattr

_EXPORTS = {
    "load_sweep": "wavesim.sweep.spec",
    "SweepSpec": "wavesim.sweep.spec",
    "SweepError": "wavesim.sweep.spec",
    "Axis": "wavesim.sweep.spec",
    "run_sweep": "wavesim.sweep.execute",
    "SweepReport": "wavesim.sweep.execute",
    "to_grid": "wavesim.sweep.results",
    "member_scenario": "wavesim.sweep.results",
    "compute_member": "wavesim.sweep.member",
    "MemberResult": "wavesim.sweep.member",
    "METRICS": "wavesim.sweep.metrics",
    "DEFAULT_METRICS": "wavesim.sweep.metrics",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
