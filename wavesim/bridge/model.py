"""The bridge model: encoder -> oscillator lattice -> decoder, with one exact gradient.

A :class:`BridgeModel` forecasts frame sequences. For sequences ``x`` of shape
``(members, frames, h, w)``, observe ``K`` frames and forecast ``H``:

1. **observe**: the encoded frames ``e = encoder.encode(x[:, :K])`` drive the lattice, frame
   ``f`` held for ``steps_per_frame = s`` integrator steps (steps ``[f·s, (f+1)·s)``), from rest;
2. **forecast**: the lattice runs free (no input) for ``H·s`` more steps;
3. **decode**: frame ``f`` is read out of the state at step ``(f+1)·s`` (the state right after
   frame ``f``'s slot): ``x̂_f = decoder.decode(y, ẏ)``. Frames ``K .. K+H-1`` are the forecast;
   frames ``0 .. K-1`` the reconstruction of the observed frames.

The training loss of a minibatch is

    L = mean_{f in forecast} D(x̂_f, x_f) + reconstruction · mean_{f < K} D(x̂_f, x_f)

with ``D`` the mean squared error over members and pixels (``loss="mse"``) or the Bernoulli
cross-entropy minus the entropy of the target (``loss="bce"``, a KL divergence: 0 for a perfect
forecast; needs the sigmoid output). One :meth:`wavesim.learn.GradientEngine.value_and_grad`
call (members = the minibatch) gives ``L`` and the exact gradient with respect to the lattice
parameters (the adjoint), to every input value (``grads["inputs"]``, pulled back through the
encoder by the chain rule) and to the decoder (accumulated while the loss visits each state).

Parameters live in one flat float64 vector (:meth:`BridgeModel.vector`): the lattice's free
entries in a :class:`wavesim.learn.ParameterSpace` (stencil symmetry, ``γ, ω² >= 0`` as box
bounds), then every encoder and decoder array. Names are ``"lattice.w"``, ``"encoder.weight"``,
``"decoder.weight_y"``, ...
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from wavesim.bridge.decoders import LinearDecoder, decoder_from_config
from wavesim.bridge.encoders import Encoder, encoder_from_config
from wavesim.drives import InputSequence
from wavesim.lattice import Lattice
from wavesim.learn.gradient import GradientEngine
from wavesim.learn.params import Param, ParameterSpace, StencilParam
from wavesim.models.oscillator import OscillatorParams

__all__ = ["LATTICE_LEARNABLE", "BridgeGradient", "BridgeModel", "nwm_params"]

#: Lattice parameters a bridge model can learn.
LATTICE_LEARNABLE = ("w", "wv", "omega2", "gamma", "bias")
LOSSES = ("mse", "bce")


def nwm_params(
    k: int = 3,
    coupling: float = 0.5,
    *,
    omega2: float = 1.0,
    gamma: float = 0.5,
    velocity: bool = False,
) -> OscillatorParams:
    """Neural-Wave-Machine defaults: a ``k × k`` stencil, ``ω² = 1``, ``γ = 0.5``, tanh.

    The stencil starts as ``coupling`` times the 5-point Laplacian (embedded in ``k × k``), so the
    lattice carries waves from the first iteration (Klein-Gordon dispersion
    ``Ω² = ω² + coupling·(4 sin²(kx/2) + 4 sin²(ky/2))`` in the linear regime). ``velocity`` adds
    a zero velocity stencil ``Ŵ`` to learn.
    """
    if k < 3 or k % 2 == 0:
        raise ValueError(f"k: expected an odd stencil size >= 3, got {k!r}")
    w = np.zeros((k, k))
    c = k // 2
    w[c, c] = -4.0 * coupling
    w[c - 1, c] = w[c + 1, c] = w[c, c - 1] = w[c, c + 1] = coupling
    return OscillatorParams(
        w=w,
        wv=np.zeros((k, k)) if velocity else None,
        omega2=omega2,
        gamma=gamma,
        activation="tanh",
    )


@dataclass
class BridgeGradient:
    """Loss of a minibatch and its gradient.

    Attributes
    ----------
    value : float
        The loss.
    grads : dict
        Gradient by full name (``"lattice.w"``, ``"encoder.weight"``, ``"decoder.bias"``, ...),
        in the shape of each value.
    forecast_loss, reconstruction_loss : float
        The two parts of ``value`` (the second before its weight).
    """

    value: float
    grads: dict
    forecast_loss: float
    reconstruction_loss: float


def _check_loss(loss: str, decoder: LinearDecoder) -> str:
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
    if loss == "bce" and decoder.output != "sigmoid":
        raise ValueError("loss='bce' needs a decoder with output='sigmoid'")
    return loss


def _entropy(x: np.ndarray) -> np.ndarray:
    """Bernoulli entropy of targets in [0, 1] (0 at 0 and 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(x * np.log(x) + (1 - x) * np.log1p(-x))
    return np.nan_to_num(h, nan=0.0)


class _FrameLoss:
    """The engine's loss: decode the states ``steps[k]`` and compare with target frames.

    The decoder's weight gradients are accumulated at the end (:meth:`decoder_grads`) with one
    matrix product over every visited state, which BLAS does much faster than one outer
    product per state. With a float32 lattice the decoder's matrix products run in float32
    (losses and their gradients with respect to the decoder's output stay float64).
    """

    def __init__(self, decoder, targets, steps, weights, kind, want_grad=True, dtype=np.float64):
        self.decoder = decoder
        self.targets = targets  # (B, nF, h, w) float64
        self.steps = np.asarray(steps, dtype=np.int64)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.kind = kind
        self.want_grad = want_grad
        self.uses_y = True
        self.uses_v = decoder.velocity
        self.values = np.zeros(len(self.steps))
        self.predictions = np.full(targets.shape, np.nan)
        self.dtype = np.dtype(dtype)
        p = decoder.parameters
        self._wy = p["weight_y"].astype(self.dtype)
        self._wv = p["weight_v"].astype(self.dtype) if decoder.velocity else None
        self._bias = p["bias"].reshape(-1) if decoder.bias else None
        self._cache: dict[int, tuple] = {}
        if kind == "bce":
            self._entropy = _entropy(targets)

    def evaluate(self, k, y, v):
        dec = self.decoder
        m = y.shape[0]
        x = self.targets[:, k].reshape(m, -1)
        ys = np.ascontiguousarray(y, dtype=self.dtype).reshape(m, -1)
        a = ys @ self._wy.T
        vs = None
        if self._wv is not None:
            vs = np.ascontiguousarray(v, dtype=self.dtype).reshape(m, -1)
            a += vs @ self._wv.T
        a = a.astype(np.float64)
        if self._bias is not None:
            a += self._bias
        p = dec.activate(a)
        self.predictions[:, k] = p.reshape(m, *dec.frame_shape)
        w = self.weights[k] / x.size
        if self.kind == "mse":
            diff = p - x
            val = w * float(np.sum(diff * diff))
            ga = 2 * w * diff
            if dec.output == "sigmoid":
                ga = ga * p * (1 - p)
        else:  # KL(x || p) per pixel = softplus(a) - x a - H(x)
            kl = np.logaddexp(0.0, a) - x * a - self._entropy[:, k].reshape(m, -1)
            val = w * float(np.sum(kl))
            ga = w * (p - x)
        self.values[k] = val
        if not self.want_grad:
            return val, None, None
        g = ga.astype(self.dtype)
        gy = (g @ self._wy).reshape(y.shape)
        gv = (g @ self._wv).reshape(y.shape) if self._wv is not None else None
        self._cache[k] = (g, ys, vs, ga.sum(axis=0))
        return val, gy, gv

    def decoder_grads(self) -> dict:
        """dL/d decoder parameters, accumulated over every visited state."""
        keys = sorted(self._cache)
        g = np.concatenate([self._cache[k][0] for k in keys])
        out = {"weight_y": (g.T @ np.concatenate([self._cache[k][1] for k in keys])).astype(float)}
        if self._wv is not None:
            vs = np.concatenate([self._cache[k][2] for k in keys])
            out["weight_v"] = (g.T @ vs).astype(np.float64)
        if self._bias is not None:
            out["bias"] = np.sum([self._cache[k][3] for k in keys], axis=0).reshape(
                self.decoder.frame_shape
            )
        return out


class BridgeModel:
    """Encoder, oscillator lattice and decoder, trained jointly on frame sequences.

    Parameters
    ----------
    encoder : Encoder
        :class:`~wavesim.bridge.encoders.LinearEncoder` or
        :class:`~wavesim.bridge.encoders.ReceptiveFieldEncoder`; its ``lattice_shape`` is the
        lattice's.
    decoder : LinearDecoder
    params : OscillatorParams, optional
        Lattice parameters (default :func:`nwm_params`: 3 × 3 Laplacian stencil, ``ω² = 1``,
        ``γ = 0.5``, tanh).
    lattice : Lattice, optional
        Default: a torus of the encoder's lattice shape with ``dx = 0.1`` mm.
    dt : float
        Integrator step (ms); default 0.125 (Neural Wave Machines).
    steps_per_frame : int
        Integrator steps per frame (each observed frame is held that long).
    learn : sequence of str
        Learnable lattice parameters among ``w``, ``wv``, ``omega2``, ``gamma``, ``bias`` (the
        encoder's and decoder's parameters are always learned). An empty sequence freezes the
        lattice.
    w_symmetry : {"none", "mirror", "isotropic"}
        Constraint of the learned stencil(s) (:class:`wavesim.learn.StencilParam`).
    per_site : sequence of str
        Lattice parameters among ``omega2``, ``gamma``, ``bias`` learned per site.
    dtype : float32 or float64
        Precision of the lattice (the encoder, decoder and losses work in float64).
    threads : int
        Kernel threads (members run in parallel when there are at least as many).
    checkpoint : "auto", int or None
        Checkpointing of the gradient (:class:`wavesim.learn.GradientEngine`).
    """

    def __init__(
        self,
        encoder: Encoder,
        decoder: LinearDecoder,
        params: OscillatorParams | None = None,
        *,
        lattice: Lattice | None = None,
        dt: float = 0.125,
        steps_per_frame: int = 4,
        learn: Sequence[str] = ("w", "omega2", "gamma"),
        w_symmetry: str = "none",
        per_site: Sequence[str] = (),
        dtype=np.float32,
        threads: int | None = 1,
        checkpoint="auto",
    ):
        if not isinstance(encoder, Encoder):
            raise TypeError(f"encoder: expected an Encoder, got {type(encoder).__name__}")
        if not isinstance(decoder, LinearDecoder):
            raise TypeError(f"decoder: expected a LinearDecoder, got {type(decoder).__name__}")
        if tuple(decoder.lattice_shape) != tuple(encoder.lattice_shape):
            raise ValueError(
                f"decoder.lattice_shape {decoder.lattice_shape} differs from the encoder's "
                f"{encoder.lattice_shape}"
            )
        if tuple(decoder.frame_shape) != tuple(encoder.frame_shape):
            raise ValueError(
                f"decoder.frame_shape {decoder.frame_shape} differs from the encoder's "
                f"{encoder.frame_shape}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.lattice = lattice or Lattice(encoder.lattice_shape, dx=0.1, boundary="periodic")
        if tuple(self.lattice.shape) != tuple(encoder.lattice_shape):
            raise ValueError(
                f"lattice.shape {self.lattice.shape} differs from the encoder's lattice_shape "
                f"{encoder.lattice_shape}"
            )
        self.dt = float(dt)
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt: expected a positive time step in ms, got {dt!r}")
        if isinstance(steps_per_frame, bool) or int(steps_per_frame) != steps_per_frame:
            raise ValueError(f"steps_per_frame: expected an integer >= 1, got {steps_per_frame!r}")
        if steps_per_frame < 1:
            raise ValueError(f"steps_per_frame: expected an integer >= 1, got {steps_per_frame!r}")
        self.steps_per_frame = int(steps_per_frame)
        learn = tuple(learn)
        unknown = sorted(set(learn) - set(LATTICE_LEARNABLE))
        if unknown:
            raise ValueError(
                f"learn: unknown lattice parameter(s) {unknown}; expected among "
                f"{', '.join(LATTICE_LEARNABLE)}"
            )
        params = nwm_params() if params is None else params
        if "wv" in learn and params.wv is None:
            params = replace(params, wv=np.zeros_like(params.w))
        if params.noise:
            raise ValueError("params.noise: the bridge model is deterministic; expected noise = 0")
        if params.kappa:
            raise ValueError(
                "params.kappa: orientation-modulated coupling is not learned by the bridge "
                "model; expected kappa = 0"
            )
        self.params = params
        self.learn = learn
        self.w_symmetry = w_symmetry
        self.per_site = tuple(per_site)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype: expected float32 or float64, got {self.dtype}")
        self.threads = threads
        self.checkpoint = checkpoint
        self.space = self._make_space()
        self._engines: dict[int, GradientEngine] = {}

    # ------------------------------------------------------------------ parameters
    def _make_space(self) -> ParameterSpace:
        p = self.params
        shape = self.lattice.shape

        def site(name, value, **kw):
            ps = name in self.per_site
            return Param(
                value, learnable=name in self.learn, per_site=ps, shape=shape if ps else None, **kw
            )

        spec = {
            "w": StencilParam(p.w, symmetry=self.w_symmetry, learnable="w" in self.learn),
            "omega2": site("omega2", p.omega2, transform="bounds", lower=0.0),
            "gamma": site("gamma", p.gamma, transform="bounds", lower=0.0),
            "bias": site("bias", p.bias),
        }
        if p.wv is not None:
            spec["wv"] = StencilParam(p.wv, symmetry=self.w_symmetry, learnable="wv" in self.learn)
        return ParameterSpace(spec)

    def _blocks(self):
        """(full name, owner, key) of every learnable array after the lattice space."""
        out = []
        for key in self.encoder.parameters:
            out.append((f"encoder.{key}", self.encoder, key))
        for key in self.decoder.parameters:
            out.append((f"decoder.{key}", self.decoder, key))
        return out

    @property
    def slices(self) -> dict[str, slice]:
        """Where each parameter lives in :meth:`vector` (``"lattice.w"``, ``"encoder.weight"``)."""
        out = {f"lattice.{k}": s for k, s in self.space.slices.items()}
        start = self.space.size
        for name, owner, key in self._blocks():
            n = owner.parameters[key].size
            out[name] = slice(start, start + n)
            start += n
        return out

    @property
    def size(self) -> int:
        """Length of :meth:`vector`."""
        return self.space.size + sum(o.parameters[k].size for _, o, k in self._blocks())

    def vector(self) -> np.ndarray:
        """All learnable parameters as one flat float64 vector."""
        parts = [self.space.x0]
        parts += [o.parameters[k].ravel() for _, o, k in self._blocks()]
        return np.concatenate(parts)

    def set_vector(self, x) -> None:
        """Set every learnable parameter from a flat vector (the inverse of :meth:`vector`)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.size,):
            raise ValueError(f"x: expected shape ({self.size},), got {x.shape}")
        sl = self.slices
        self.space.update(x[: self.space.size])
        self.params = self.lattice_params()
        for name, owner, key in self._blocks():
            owner.parameters[key] = x[sl[name]].reshape(owner.parameters[key].shape).copy()

    @property
    def bounds(self) -> list:
        """``(lower, upper)`` per entry of :meth:`vector` (None = unbounded), for Adam."""
        return self.space.bounds + [(None, None)] * (self.size - self.space.size)

    def lattice_params(self, x=None) -> OscillatorParams:
        """The lattice parameters (at the space's current values, or at lattice vector ``x``)."""
        values = self.space.unpack(self.space.x0 if x is None else x)
        kw = {}
        for name in ("w", "wv", "omega2", "gamma", "bias"):
            if name in values:
                v = values[name]
                kw[name] = float(v) if np.ndim(v) == 0 else v
        return replace(self.params, **kw)

    def parameters(self) -> dict[str, np.ndarray]:
        """Every parameter value by full name (lattice ones in model units)."""
        out = {}
        for name, v in self.space.values.items():
            out[f"lattice.{name}"] = np.asarray(v, dtype=np.float64)
        for name, owner, key in self._blocks():
            out[name] = owner.parameters[key].copy()
        return out

    def gradient_vector(self, grads: dict) -> np.ndarray:
        """Flat gradient (in the layout of :meth:`vector`) from gradients by full name."""
        lat = {k.split(".", 1)[1]: v for k, v in grads.items() if k.startswith("lattice.")}
        parts = [self.space.pullback(self.space.x0, lat)]
        parts += [
            np.asarray(grads[name], dtype=np.float64).ravel() for name, _, _ in self._blocks()
        ]
        return np.concatenate(parts)

    # ------------------------------------------------------------------ simulation
    def _engine(self, members: int) -> GradientEngine:
        eng = self._engines.get(members)
        if eng is None:
            eng = self._engines[members] = GradientEngine(
                self.lattice,
                members=members,
                dtype=self.dtype,
                threads=self.threads,
                checkpoint=self.checkpoint,
            )
        return eng

    def _check_sequences(self, frames, observe, horizon):
        x = np.asarray(frames)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[2:] != tuple(self.encoder.frame_shape):
            fs = self.encoder.frame_shape
            raise ValueError(
                f"frames: expected shape (sequences, frames, {fs[0]}, {fs[1]}), got {x.shape}"
            )
        for name, n in (("observe", observe), ("horizon", horizon)):
            if isinstance(n, bool) or int(n) != n or n < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {n!r}")
        if observe + horizon > x.shape[1]:
            raise ValueError(
                f"observe + horizon = {observe + horizon} exceeds the {x.shape[1]} frames of each "
                "sequence"
            )
        return x.astype(np.float64, copy=False)

    def inputs(self, context) -> InputSequence:
        """The encoded context frames as the lattice's :class:`~wavesim.drives.InputSequence`."""
        e = self.encoder.encode(context)
        return InputSequence(e.astype(self.dtype), steps_per_frame=self.steps_per_frame)

    def value_and_grad(
        self, frames, observe: int, horizon: int, *, loss: str = "mse", reconstruction: float = 0.0
    ) -> BridgeGradient:
        """Loss of a minibatch and its exact gradient with respect to every parameter.

        Parameters
        ----------
        frames : array ``(members, frames, h, w)``
            Sequences of at least ``observe + horizon`` frames (the first ones are used).
        observe, horizon : int
            ``K`` frames drive the lattice, the next ``H`` are forecast.
        loss : {"mse", "bce"}
        reconstruction : float
            Weight of the reconstruction of the observed frames (0: forecast only).

        Returns
        -------
        BridgeGradient
        """
        return self._evaluate(frames, observe, horizon, loss, reconstruction, want_grad=True)

    def loss(
        self, frames, observe: int, horizon: int, *, loss: str = "mse", reconstruction: float = 0.0
    ) -> float:
        """The loss alone (forward only): same value as :meth:`value_and_grad`."""
        return self._evaluate(frames, observe, horizon, loss, reconstruction, want_grad=False)

    def _frame_loss(self, x, observe, horizon, kind, reconstruction, want_grad):
        s = self.steps_per_frame
        reconstruction = float(reconstruction)
        if not (math.isfinite(reconstruction) and reconstruction >= 0):
            raise ValueError(f"reconstruction: expected a weight >= 0, got {reconstruction!r}")
        first = 0 if reconstruction > 0 else observe
        frames_used = np.arange(first, observe + horizon)
        weights = np.where(frames_used >= observe, 1.0 / horizon, reconstruction / observe)
        steps = (frames_used + 1) * s
        return _FrameLoss(
            self.decoder,
            x[:, first : observe + horizon],
            steps,
            weights,
            kind,
            want_grad,
            self.dtype,
        )

    def _evaluate(self, frames, observe, horizon, kind, reconstruction, want_grad):
        kind = _check_loss(kind, self.decoder)
        x = self._check_sequences(frames, observe, horizon)
        m = x.shape[0]
        context = x[:, :observe]
        inp = self.inputs(context)
        fl = self._frame_loss(x, observe, horizon, kind, reconstruction, want_grad)
        eng = self._engine(m)
        p = self.params
        nsteps = (observe + horizon) * self.steps_per_frame
        zeros = np.zeros((m, *self.lattice.shape))
        if not want_grad:
            return eng.loss(p, self.dt, zeros, zeros, nsteps, fl, inputs=inp)
        wrt = (*self.space.names_learnable, "inputs")
        res = eng.value_and_grad(p, self.dt, zeros, zeros, nsteps, fl, wrt=wrt, inputs=inp)
        grads = {f"lattice.{k}": res.grads[k] for k in self.space.names_learnable}
        for key, g in self.encoder.backward(context, res.grads["inputs"]).items():
            grads[f"encoder.{key}"] = g
        for key, g in fl.decoder_grads().items():
            grads[f"decoder.{key}"] = g
        nrec = len(fl.steps) - horizon
        rec = float(fl.values[:nrec].sum()) / reconstruction if nrec else 0.0
        return BridgeGradient(res.value, grads, float(fl.values[nrec:].sum()), rec)

    def objective(self, frames, observe: int, horizon: int, **kw):
        """``fun(x) -> (loss, flat gradient)`` on fixed sequences (for an optimizer or a
        gradient check). Sets the model's parameters to ``x`` on every call."""

        def fun(x):
            self.set_vector(x)
            r = self.value_and_grad(frames, observe, horizon, **kw)
            return r.value, self.gradient_vector(r.grads)

        return fun

    def run(self, context, horizon: int, *, every: int | None = None, batch: int = 64) -> dict:
        """Drive the lattice with ``context`` and let it run ``horizon`` frames (forward only).

        Parameters
        ----------
        context : array ``(sequences, K, h, w)``
        horizon : int
        every : int, optional
            Also record the lattice state every ``every`` steps (for wave analysis).
        batch : int
            Sequences simulated together.

        Returns
        -------
        dict
            ``"frames"``: decoded frames ``(sequences, K + H, h, w)`` (the first ``K`` are the
            reconstruction, the rest the forecast); with ``every``: ``"y"``, ``"v"`` of shape
            ``(sequences, T / every + 1, ny, nx)`` and ``"steps"``.
        """
        from wavesim.simulate import Simulator

        c = np.asarray(context, dtype=np.float64)
        if c.ndim == 3:
            c = c[None]
        if c.ndim != 4 or c.shape[2:] != tuple(self.encoder.frame_shape):
            fs = self.encoder.frame_shape
            raise ValueError(
                f"context: expected shape (sequences, K, {fs[0]}, {fs[1]}), got {c.shape}"
            )
        if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 0:
            raise ValueError(f"horizon: expected an integer >= 0, got {horizon!r}")
        n, K = c.shape[:2]
        s = self.steps_per_frame
        nframes = K + int(horizon)
        out = np.empty((n, nframes, *self.encoder.frame_shape))
        rec = every is not None
        if rec:
            if isinstance(every, bool) or int(every) != every or every < 1 or s % int(every):
                raise ValueError(
                    f"every: expected a divisor of steps_per_frame = {s} (>= 1), got {every!r}"
                )
            every = int(every)
            nrec = nframes * s // every + 1
            ys = np.empty((n, nrec, *self.lattice.shape), dtype=self.dtype)
            vs = np.empty_like(ys)
        for b0 in range(0, n, batch):
            part = c[b0 : b0 + batch]
            m = part.shape[0]
            sim = Simulator(
                self.params,
                self.lattice,
                self.dt,
                members=m,
                dtype=self.dtype,
                threads=self.threads,
                check=False,
                inputs=self.inputs(part),
            )
            sim.set_state(0.0, 0.0)
            if rec:
                ys[b0 : b0 + m, 0], vs[b0 : b0 + m, 0] = sim.y, sim.v
            for f in range(nframes):
                if rec:
                    for r in range(f * s // every + 1, (f + 1) * s // every + 1):
                        sim.advance(every)
                        ys[b0 : b0 + m, r], vs[b0 : b0 + m, r] = sim.y, sim.v
                else:
                    sim.advance(s)
                out[b0 : b0 + m, f] = self.decoder.decode(sim.y, sim.v)
        result = {"frames": out}
        if rec:
            result.update(y=ys, v=vs, steps=np.arange(nrec) * every)
        return result

    def forecast(self, context, horizon: int) -> np.ndarray:
        """Forecast ``horizon`` frames after ``context`` ``(sequences, K, h, w)``:
        ``(sequences, horizon, h, w)`` (the forecaster interface of the evaluation)."""
        c = np.asarray(context)
        squeeze = c.ndim == 3
        out = self.run(c, horizon)["frames"][:, c.shape[-3] :]
        return out[0] if squeeze else out

    # ------------------------------------------------------------------ configuration
    def config(self) -> dict:
        """JSON-serialisable description (everything but the parameter values)."""
        lat = self.lattice
        p = self.params
        return {
            "lattice": {"shape": list(lat.shape), "dx": lat.dx, "boundary": lat.boundary},
            "params": {
                "k": p.k,
                "velocity": p.wv is not None,
                "activation": p.activation,
                "integrator": p.integrator,
                "exact_tanh": p.exact_tanh,
            },
            "dt": self.dt,
            "steps_per_frame": self.steps_per_frame,
            "learn": list(self.learn),
            "w_symmetry": self.w_symmetry,
            "per_site": list(self.per_site),
            "dtype": str(self.dtype),
            "encoder": self.encoder.config(),
            "decoder": self.decoder.config(),
        }

    @classmethod
    def from_config(
        cls, config: dict, parameters: dict | None = None, *, threads=1, checkpoint="auto"
    ) -> BridgeModel:
        """Rebuild a model from :meth:`config` and parameter values by full name."""
        parameters = dict(parameters or {})
        enc = encoder_from_config(config["encoder"])
        dec = decoder_from_config(config["decoder"])
        lat_cfg = config["lattice"]
        lattice = Lattice(tuple(lat_cfg["shape"]), dx=lat_cfg["dx"], boundary=lat_cfg["boundary"])
        pc = config["params"]
        k = int(pc["k"])
        vals = {k_.split(".", 1)[1]: v for k_, v in parameters.items() if k_.startswith("lattice.")}
        params = OscillatorParams(
            w=np.asarray(vals.get("w", np.zeros((k, k))), float),
            wv=np.asarray(vals.get("wv", np.zeros((k, k))), float) if pc["velocity"] else None,
            omega2=_scalar(vals.get("omega2", 1.0)),
            gamma=_scalar(vals.get("gamma", 0.5)),
            bias=_scalar(vals.get("bias", 0.0)),
            activation=pc["activation"],
            integrator=pc["integrator"],
            exact_tanh=pc["exact_tanh"],
        )
        model = cls(
            enc,
            dec,
            params,
            lattice=lattice,
            dt=config["dt"],
            steps_per_frame=config["steps_per_frame"],
            learn=config["learn"],
            w_symmetry=config["w_symmetry"],
            per_site=config.get("per_site", ()),
            dtype=np.dtype(config["dtype"]),
            threads=threads,
            checkpoint=checkpoint,
        )
        enc.set_parameters({k_[8:]: v for k_, v in parameters.items() if k_.startswith("encoder.")})
        dec.set_parameters({k_[8:]: v for k_, v in parameters.items() if k_.startswith("decoder.")})
        return model

    def __repr__(self) -> str:
        return (
            f"BridgeModel(lattice={self.lattice.shape}, encoder={self.encoder!r}, "
            f"decoder={self.decoder!r}, steps_per_frame={self.steps_per_frame}, "
            f"dt={self.dt:g}, learn={self.learn})"
        )


def _scalar(v):
    a = np.asarray(v, dtype=float)
    return float(a) if a.ndim == 0 else a
