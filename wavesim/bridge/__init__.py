"""The encoder/decoder bridge: fit lattices to transformed input sequences and forecast them.

Datasets of transformed sequences (deterministic by seed, with train/validation/test splits and
the transformation parameters stored as labels)::

    from wavesim.bridge import make_splits
    splits = make_splits("rotating_bars", 200, 50, 50, seed=0, angular_velocity=20.0)
    splits.train["frames"]  # (sequence, frame, y, x), float32 in [0, 1]
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
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
