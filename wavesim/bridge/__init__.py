"""The encoder/decoder bridge: fit lattices to transformed input sequences and forecast them.

Datasets of transformed sequences (deterministic by seed, with train/validation/test splits and
the transformation parameters stored as labels)::

    from wavesim.bridge import make_splits
    splits = make_splits("rotating_bars", 200, 50, 50, seed=0, angular_velocity=20.0)
    splits.train["frames"]  # (sequence, frame, y, x), float32 in [0, 1]

Model, training and evaluation::

    from wavesim.bridge import BridgeModel, LinearEncoder, LinearDecoder, train, evaluate
"""

from __future__ import annotations

from wavesim._lazy import lazy_getattr

_EXPORTS = {
    "DATASETS": "wavesim.bridge.datasets",
    "Splits": "wavesim.bridge.datasets",
    "context_target": "wavesim.bridge.datasets",
    "digits": "wavesim.bridge.datasets",
    "drifting_gratings": "wavesim.bridge.datasets",
    "make_splits": "wavesim.bridge.datasets",
    "open_splits": "wavesim.bridge.datasets",
    "rotating_bars": "wavesim.bridge.datasets",
    "rotating_gratings": "wavesim.bridge.datasets",
    "transformed_images": "wavesim.bridge.datasets",
    "translating_blobs": "wavesim.bridge.datasets",
    "LinearEncoder": "wavesim.bridge.encoders",
    "ReceptiveFieldEncoder": "wavesim.bridge.encoders",
    "gabor_bank": "wavesim.bridge.encoders",
    "retinotopic_centres": "wavesim.bridge.encoders",
    "LinearDecoder": "wavesim.bridge.decoders",
    "mean_bias": "wavesim.bridge.decoders",
    "BridgeModel": "wavesim.bridge.model",
    "nwm_params": "wavesim.bridge.model",
    "train": "wavesim.bridge.training",
    "TrainResult": "wavesim.bridge.training",
    "open_model": "wavesim.bridge.training",
    "open_training": "wavesim.bridge.training",
    "baselines": "wavesim.bridge.evaluation",
    "evaluate": "wavesim.bridge.evaluation",
    "results_table": "wavesim.bridge.evaluation",
    "lattice_recording": "wavesim.bridge.readout",
    "circulation": "wavesim.bridge.readout",
    "equivariance": "wavesim.bridge.readout",
    "orientation_tuning": "wavesim.bridge.readout",
    "load_bridge_file": "wavesim.bridge.cli",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
