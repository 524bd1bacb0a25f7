"""Decoders: lattice state (y, ẏ) -> frames, with exact vector-Jacobian products.

:class:`LinearDecoder` reads a frame out of the lattice state through a learnable dense map,

    a[p] = sum_i A[p, i] y[i] + sum_i B[p, i] ẏ[i] + c[p],      x̂ = phi(a),

with ``phi`` the identity or the logistic sigmoid (for images in [0, 1]). :meth:`~LinearDecoder.
vjp` and :meth:`~LinearDecoder.vjp_pre` give the gradient of a loss with respect to the
parameters and to ``(y, ẏ)`` from its gradient with respect to ``x̂`` or ``a``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

__all__ = ["LinearDecoder", "decoder_from_config", "mean_bias"]


OUTPUTS = ("identity", "sigmoid")


def mean_bias(mean_pixel: float, output: str = "sigmoid") -> float:
    """The output bias that makes an untrained decoder predict the mean pixel.

    Parameters
    ----------
    mean_pixel : float
        Mean of the training frames (in (0, 1) for a sigmoid output).
    output : {"sigmoid", "identity"}

    Returns
    -------
    float
        ``logit(mean_pixel)`` (clipped to [1e-3, 1 - 1e-3] first) for a sigmoid output,
        ``mean_pixel`` for the identity. Starting from the mean frame rather than from grey
        (sigmoid(0) = 0.5) matters: with bias 0 a trained bars model was at 0.29 x copy-last at the
        trained horizon and 2.8 x at three times it; from the mean, 0.06-0.07 and 0.53-0.57 over
        three training seeds (docs/bridge.md).
    """
    if output not in OUTPUTS:
        raise ValueError(f"output: expected one of {OUTPUTS}, got {output!r}")
    mu = float(mean_pixel)
    if not math.isfinite(mu):
        raise ValueError(f"mean_pixel: expected a finite number, got {mean_pixel!r}")
    if output == "sigmoid":
        mu = min(max(mu, 1e-3), 1 - 1e-3)
        return math.log(mu / (1 - mu))
    return mu


def _shape2(value, name):
    from wavesim.bridge.encoders import _shape2 as s2

    return s2(value, name)


class LinearDecoder:
    """Learnable linear readout from the lattice state ``(y, ẏ)`` to frames.

    Parameters
    ----------
    lattice_shape : (ny, nx)
    frame_shape : (h, w)
    velocity : bool
        Read ``ẏ`` too (weights ``B``); otherwise only ``y``.
    output : {"identity", "sigmoid"}
        Output nonlinearity ``phi`` (sigmoid keeps frames in (0, 1)).
    bias : bool
        Learn a per-pixel bias ``c``.
    scale : float
        Initial weights are ``N(0, scale² / n)`` with ``n`` the number of state entries read.
    seed : int
        Seed of the initial weights.
    bias_init : float
        Initial value of ``c`` (e.g. the logit of the mean pixel).

    Attributes
    ----------
    parameters : dict
        ``"weight_y"`` ``(h·w, ny·nx)``, ``"weight_v"`` (with ``velocity``), ``"bias"``
        ``(h, w)`` (with ``bias``).
    """

    kind = "linear"

    def __init__(
        self,
        lattice_shape,
        frame_shape,
        *,
        velocity: bool = True,
        output: str = "sigmoid",
        bias: bool = True,
        scale: float = 1.0,
        seed: int = 0,
        bias_init: float = 0.0,
    ):
        self.lattice_shape = _shape2(lattice_shape, "lattice_shape")
        self.frame_shape = _shape2(frame_shape, "frame_shape")
        if output not in OUTPUTS:
            raise ValueError(f"output: expected one of {OUTPUTS}, got {output!r}")
        self.output = output
        self.velocity = bool(velocity)
        self.bias = bool(bias)
        self.scale = float(scale)
        if not (math.isfinite(self.scale) and self.scale >= 0):
            raise ValueError(f"scale: expected a finite number >= 0, got {scale!r}")
        self.seed = int(seed)
        self.bias_init = float(bias_init)
        nsites = self.lattice_shape[0] * self.lattice_shape[1]
        npix = self.frame_shape[0] * self.frame_shape[1]
        rng = np.random.default_rng(self.seed)
        n_in = nsites * (2 if self.velocity else 1)
        std = self.scale / math.sqrt(n_in)
        self.parameters = {"weight_y": rng.standard_normal((npix, nsites)) * std}
        if self.velocity:
            self.parameters["weight_v"] = rng.standard_normal((npix, nsites)) * std
        if self.bias:
            self.parameters["bias"] = np.full(self.frame_shape, self.bias_init)

    # ------------------------------------------------------------------ forward
    def _state(self, y, name):
        a = np.asarray(y)
        if a.ndim < 2 or a.shape[-2:] != self.lattice_shape:
            raise ValueError(
                f"{name}: expected shape (..., {self.lattice_shape[0]}, {self.lattice_shape[1]}), "
                f"got {a.shape}"
            )
        return a.reshape(-1, a.shape[-2] * a.shape[-1]).astype(np.float64, copy=False), a.shape[:-2]

    def pre_activation(self, y, v=None) -> np.ndarray:
        """``a`` of states ``(..., ny, nx)``: shape ``(..., h, w)``."""
        ys, lead = self._state(y, "y")
        a = ys @ self.parameters["weight_y"].T
        if self.velocity:
            if v is None:
                raise ValueError("v: this decoder reads the velocity too; pass v")
            vs, lead_v = self._state(v, "v")
            if lead_v != lead:
                raise ValueError(f"v: expected the shape of y {np.shape(y)}, got {np.shape(v)}")
            a += vs @ self.parameters["weight_v"].T
        if self.bias:
            a += self.parameters["bias"].reshape(1, -1)
        return a.reshape(*lead, *self.frame_shape)

    def activate(self, a) -> np.ndarray:
        """``phi(a)``."""
        return expit(a) if self.output == "sigmoid" else np.asarray(a, dtype=np.float64)

    def decode(self, y, v=None) -> np.ndarray:
        """Frames ``phi(a)`` of states ``(..., ny, nx)``: shape ``(..., h, w)``."""
        return self.activate(self.pre_activation(y, v))

    # ------------------------------------------------------------------ backward
    def vjp_pre(self, y, v, grad_a):
        """Gradients from ``dL/da`` (shape ``(..., h, w)``).

        Returns
        -------
        grads : dict
            dL/d parameter, by name.
        grad_y, grad_v : arrays ``(..., ny, nx)`` (``grad_v`` is None without ``velocity``)
        """
        ys, lead = self._state(y, "y")
        g = np.asarray(grad_a, dtype=np.float64).reshape(ys.shape[0], -1)
        grads = {"weight_y": g.T @ ys}
        grad_y = (g @ self.parameters["weight_y"]).reshape(*lead, *self.lattice_shape)
        grad_v = None
        if self.velocity:
            vs, _ = self._state(v, "v")
            grads["weight_v"] = g.T @ vs
            grad_v = (g @ self.parameters["weight_v"]).reshape(*lead, *self.lattice_shape)
        if self.bias:
            grads["bias"] = g.sum(axis=0).reshape(self.frame_shape)
        return grads, grad_y, grad_v

    def vjp(self, y, v, grad_frames):
        """Gradients from ``dL/dx̂`` (shape ``(..., h, w)``): chain through ``phi``, then
        :meth:`vjp_pre`."""
        g = np.asarray(grad_frames, dtype=np.float64)
        if self.output == "sigmoid":
            s = self.decode(y, v)
            g = g * s * (1.0 - s)
        return self.vjp_pre(y, v, g)

    # ------------------------------------------------------------------ bookkeeping
    def set_parameters(self, values) -> None:
        """Replace parameter values (mapping name -> array of the same shape)."""
        for name, value in values.items():
            if name not in self.parameters:
                raise KeyError(
                    f"LinearDecoder: no parameter {name!r} (it has {', '.join(self.parameters)})"
                )
            v = np.asarray(value, dtype=np.float64)
            if v.shape != self.parameters[name].shape:
                raise ValueError(
                    f"LinearDecoder.{name}: expected shape {self.parameters[name].shape}, got "
                    f"{v.shape}"
                )
            self.parameters[name] = v.copy()

    def config(self) -> dict:
        return {
            "kind": self.kind,
            "lattice_shape": list(self.lattice_shape),
            "frame_shape": list(self.frame_shape),
            "velocity": self.velocity,
            "output": self.output,
            "bias": self.bias,
            "scale": self.scale,
            "seed": self.seed,
            "bias_init": self.bias_init,
        }

    def __repr__(self) -> str:
        return (
            f"LinearDecoder(lattice_shape={self.lattice_shape}, frame_shape="
            f"{self.frame_shape}, velocity={self.velocity}, output={self.output!r})"
        )


def decoder_from_config(config: dict, parameters=None) -> LinearDecoder:
    """Rebuild a decoder from :meth:`LinearDecoder.config` (and optionally its parameters)."""
    cfg = dict(config)
    kind = cfg.pop("kind", "linear")
    if kind != "linear":
        raise ValueError(f"decoder kind: expected 'linear', got {kind!r}")
    dec = LinearDecoder(cfg.pop("lattice_shape"), cfg.pop("frame_shape"), **cfg)
    if parameters is not None:
        dec.set_parameters(parameters)
    return dec
