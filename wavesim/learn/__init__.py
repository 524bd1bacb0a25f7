"""Learnable coupling: exact adjoint gradients, losses, constraints, optimizers and fitting.

The main entry points::

    from wavesim.learn import fit, gradient_check
    res = fit("truth.toml", "truth.zarr", learn=["w", "kappa", "omega2", "gamma"], w_zero_sum=True)
    res.values, res.history, res.scenario

Lower levels: :class:`GradientEngine` (loss and gradient of a trajectory), the losses
(:class:`FieldMSE`, :class:`ElectrodeMSE`, :class:`PhaseLoss`), :class:`ParameterSpace` with
:class:`Param` / :class:`StencilParam`, and the optimizers :func:`adam` and :func:`lbfgsb`.
"""

from __future__ import annotations

from wavesim._lazy import lazy_getattr

_EXPORTS = {
    "fit": "wavesim.learn.fitting",
    "FitResult": "wavesim.learn.fitting",
    "FitStore": "wavesim.learn.fitting",
    "Objective": "wavesim.learn.fitting",
    "fitted_scenario": "wavesim.learn.fitting",
    "gradient_check": "wavesim.learn.fitting",
    "open_fit": "wavesim.learn.fitting",
    "GradientEngine": "wavesim.learn.gradient",
    "GradientResult": "wavesim.learn.gradient",
    "checkpoint_plan": "wavesim.learn.gradient",
    "Loss": "wavesim.learn.losses",
    "FieldMSE": "wavesim.learn.losses",
    "ElectrodeMSE": "wavesim.learn.losses",
    "PhaseLoss": "wavesim.learn.losses",
    "steps_from_times": "wavesim.learn.losses",
    "warmup_weights": "wavesim.learn.losses",
    "Param": "wavesim.learn.params",
    "StencilParam": "wavesim.learn.params",
    "ParameterSpace": "wavesim.learn.params",
    "adam": "wavesim.learn.optim",
    "lbfgsb": "wavesim.learn.optim",
    "load_fit_file": "wavesim.learn.cli_fit",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
