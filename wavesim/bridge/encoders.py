"""Encoders: input frames -> lattice drive (the input values of an ``InputSequence``).

An encoder maps frames ``x`` of shape ``(members, frames, h, w)`` to input values
``e = encode(x)`` of shape ``(members, frames, ny, nx)``: one drive frame per lattice site,
added to the argument of the lattice's nonlinearity while the frame is shown
(:class:`wavesim.drives.InputSequence`). Its learnable parameters are a dict of arrays
(:attr:`Encoder.parameters`); :meth:`Encoder.backward` turns the gradient of a loss with respect
to ``e`` (``grads["inputs"]`` of :meth:`wavesim.learn.GradientEngine.value_and_grad`) into the
gradients with respect to those parameters (the exact chain rule).

* :class:`LinearEncoder` -- a learnable dense map from frame pixels to lattice sites, plus an
  optional per-site bias (the Neural Wave Machine encoder):
  ``e[b, f, i] = sum_p W[i, p] x[b, f, p] + c[i]``.
* :class:`ReceptiveFieldEncoder` -- every site sees the frame through a fixed oriented Gabor
  receptive field whose orientation is the site's preferred orientation in an orientation map
  and whose centre follows a retinotopic map of the lattice onto the image, with a learnable gain
  per site and an optional per-site bias: ``e[b, f, i] = g[i] F_i(x[b, f]) + c[i]``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ENCODERS", "Encoder", "LinearEncoder", "ReceptiveFieldEncoder", "encoder_from_config"]


def _shape2(value, name: str) -> tuple[int, int]:
    try:
        shape = tuple(int(s) for s in value)
    except TypeError:
        raise ValueError(f"{name}: expected (ny, nx), got {value!r}") from None
    if len(shape) != 2 or min(shape) < 1 or any(int(s) != s for s in value):
        raise ValueError(f"{name}: expected two positive integers (ny, nx), got {value!r}")
    return shape


def _frames(frames, frame_shape, name: str = "frames") -> np.ndarray:
    """``frames`` as float64 ``(members, frames, h, w)`` (a 3-D array is one member)."""
    x = np.asarray(frames)
    if x.dtype.kind not in "fiub":
        raise ValueError(f"{name}: expected a real array, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[2:] != tuple(frame_shape):
        raise ValueError(
            f"{name}: expected shape (members, frames, {frame_shape[0]}, {frame_shape[1]}), "
            f"got {x.shape}"
        )
    return x.astype(np.float64, copy=False)


class Encoder:
    """Base class: parameters by name, ``encode`` and its exact ``backward``.

    Subclasses set :attr:`frame_shape`, :attr:`lattice_shape` and :attr:`parameters` (a dict
    name -> float64 array, the learnable values) and implement :meth:`encode` and
    :meth:`backward`.
    """

    kind = "encoder"
    frame_shape: tuple[int, int]
    lattice_shape: tuple[int, int]
    parameters: dict[str, np.ndarray]

    def encode(self, frames) -> np.ndarray:  # pragma: no cover - abstract
        """Input values ``(members, frames, ny, nx)`` of frames ``(members, frames, h, w)``."""
        raise NotImplementedError

    def backward(self, frames, grad_inputs) -> dict[str, np.ndarray]:  # pragma: no cover
        """Gradients of a loss with respect to :attr:`parameters` from its gradient with
        respect to the input values (``grad_inputs``, shape of :meth:`encode`'s output)."""
        raise NotImplementedError

    def set_parameters(self, values) -> None:
        """Replace parameter values (a mapping name -> array of the same shape)."""
        for name, value in values.items():
            if name not in self.parameters:
                raise KeyError(
                    f"{type(self).__name__}: no parameter {name!r} "
                    f"(it has {', '.join(self.parameters)})"
                )
            v = np.asarray(value, dtype=np.float64)
            if v.shape != self.parameters[name].shape:
                raise ValueError(
                    f"{type(self).__name__}.{name}: expected shape "
                    f"{self.parameters[name].shape}, got {v.shape}"
                )
            self.parameters[name] = v.copy()

    def _grad_inputs(self, grad_inputs, members: int, frames: int) -> np.ndarray:
        g = np.asarray(grad_inputs, dtype=np.float64)
        shape = (members, frames, *self.lattice_shape)
        if g.shape != shape:
            raise ValueError(f"grad_inputs: expected shape {shape}, got {g.shape}")
        return g

    def config(self) -> dict:  # pragma: no cover - abstract
        """JSON-serialisable description from which :func:`encoder_from_config` rebuilds it
        (parameter values excluded)."""
        raise NotImplementedError


class LinearEncoder(Encoder):
    """Learnable dense map from frame pixels to lattice sites (the Neural Wave Machine encoder).

    ``e[b, f, i] = sum_p W[i, p] x[b, f, p] + c[i]`` with sites ``i`` (row-major over the
    lattice) and pixels ``p`` (row-major over the frame).

    Parameters
    ----------
    frame_shape : (h, w)
        Pixels of a frame.
    lattice_shape : (ny, nx)
        Sites of the lattice.
    bias : bool
        Learn a per-site bias ``c`` (initialised to 0).
    scale : float
        Initial weights are ``N(0, scale² / (h·w))``: an input frame of unit pixels gives
        drives of standard deviation about ``scale``.
    seed : int
        Seed of the initial weights.
    weight : array, optional
        Initial ``W`` of shape ``(ny·nx, h·w)`` (overrides the random draw).

    Attributes
    ----------
    parameters : dict
        ``"weight"`` ``(ny·nx, h·w)`` and, with ``bias``, ``"bias"`` ``(ny, nx)``.
    """

    kind = "linear"

    def __init__(
        self,
        frame_shape,
        lattice_shape,
        *,
        bias: bool = True,
        scale: float = 1.0,
        seed: int = 0,
        weight=None,
    ):
        self.frame_shape = _shape2(frame_shape, "frame_shape")
        self.lattice_shape = _shape2(lattice_shape, "lattice_shape")
        self.scale = float(scale)
        if not (math.isfinite(self.scale) and self.scale >= 0):
            raise ValueError(f"scale: expected a finite number >= 0, got {scale!r}")
        self.seed = int(seed)
        self.bias = bool(bias)
        npix = self.frame_shape[0] * self.frame_shape[1]
        nsites = self.lattice_shape[0] * self.lattice_shape[1]
        if weight is None:
            rng = np.random.default_rng(self.seed)
            w = rng.standard_normal((nsites, npix)) * (self.scale / math.sqrt(npix))
        else:
            w = np.array(weight, dtype=np.float64)
            if w.shape != (nsites, npix):
                raise ValueError(
                    f"weight: expected shape (ny*nx, h*w) = ({nsites}, {npix}), got {w.shape}"
                )
            if not np.all(np.isfinite(w)):
                raise ValueError("weight: expected finite values")
        self.parameters = {"weight": w}
        if self.bias:
            self.parameters["bias"] = np.zeros(self.lattice_shape)

    def encode(self, frames) -> np.ndarray:
        x = _frames(frames, self.frame_shape)
        m, f = x.shape[:2]
        e = x.reshape(m * f, -1) @ self.parameters["weight"].T
        if self.bias:
            e += self.parameters["bias"].reshape(1, -1)
        return e.reshape(m, f, *self.lattice_shape)

    def backward(self, frames, grad_inputs) -> dict[str, np.ndarray]:
        x = _frames(frames, self.frame_shape)
        m, f = x.shape[:2]
        g = self._grad_inputs(grad_inputs, m, f).reshape(m * f, -1)
        out = {"weight": g.T @ x.reshape(m * f, -1)}
        if self.bias:
            out["bias"] = g.sum(axis=0).reshape(self.lattice_shape)
        return out

    def config(self) -> dict:
        return {
            "kind": self.kind,
            "frame_shape": list(self.frame_shape),
            "lattice_shape": list(self.lattice_shape),
            "bias": self.bias,
            "scale": self.scale,
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        return (
            f"LinearEncoder(frame_shape={self.frame_shape}, lattice_shape="
            f"{self.lattice_shape}, bias={self.bias})"
        )


def _theta_array(theta) -> np.ndarray:
    """Orientation map values (rad) from a DataArray or an array."""
    values = getattr(theta, "values", theta)
    t = np.asarray(values, dtype=np.float64)
    if t.ndim != 2:
        raise ValueError(f"theta: expected an (ny, nx) orientation map in rad, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("theta: expected finite orientations (rad)")
    return t


def gabor_bank(
    theta,
    frame_shape,
    *,
    wavelength: float = 8.0,
    sigma: float | None = None,
    phase: float = 0.0,
    retinotopy=None,
    zero_mean: bool = True,
    periodic: bool = False,
) -> np.ndarray:
    """Receptive fields of every site: one oriented Gabor per site, ``(ny·nx, h·w)``.

    Site ``(i, j)`` with preferred orientation ``theta[i, j]`` (rad, the orientation of the
    stripes it prefers, counter-clockwise from the x axis) looks at the frame around its
    retinotopic centre ``(cx, cy)`` (px) through

        G(p) = exp(-|p - c|² / (2 sigma²)) · cos(k·(p - c) + phase),
        k = (2 pi / wavelength) · (-sin theta, cos theta)

    (``k`` is perpendicular to the stripes, so a grating of orientation ``theta`` and period
    ``wavelength`` drives it most). With ``zero_mean`` the Gaussian-weighted mean of the carrier is
    removed, so a uniform frame does not drive the site; every field is then scaled to unit
    Euclidean norm.

    Parameters
    ----------
    theta : (ny, nx) array or DataArray
        Preferred orientations (rad).
    frame_shape : (h, w)
    wavelength, sigma : float
        Preferred spatial period and Gaussian width (px); ``sigma`` defaults to
        ``0.5 · wavelength``.
    phase : float
        Phase of the carrier at the centre (0: even, symmetric field; pi/2: odd).
    retinotopy : (cx, cy) arrays of shape (ny, nx), optional
        Centre of each site's field (px). Default: the lattice spread uniformly over the frame,
        ``cx[j] = (j + 0.5)·w/nx - 0.5`` (and likewise for ``cy``).
    periodic : bool
        Measure ``p - c`` on the torus of the frame (for wrapped stimuli).

    Returns
    -------
    numpy.ndarray, shape ``(ny·nx, h·w)``
    """
    t = _theta_array(theta)
    ny, nx = t.shape
    h, w = _shape2(frame_shape, "frame_shape")
    wavelength = float(wavelength)
    if not wavelength > 0:
        raise ValueError(f"wavelength: expected a positive period in px, got {wavelength!r}")
    sigma = 0.5 * wavelength if sigma is None else float(sigma)
    if not sigma > 0:
        raise ValueError(f"sigma: expected a positive width in px, got {sigma!r}")
    cx, cy = retinotopic_centres((ny, nx), (h, w)) if retinotopy is None else retinotopy
    cx = np.broadcast_to(np.asarray(cx, dtype=float), (ny, nx)).reshape(-1, 1)
    cy = np.broadcast_to(np.asarray(cy, dtype=float), (ny, nx)).reshape(-1, 1)
    py, px = np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij")
    dx = px.reshape(1, -1) - cx
    dy = py.reshape(1, -1) - cy
    if periodic:
        dx = (dx + w / 2) % w - w / 2
        dy = (dy + h / 2) % h - h / 2
    k = 2 * np.pi / wavelength
    th = t.reshape(-1, 1)
    env = np.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))
    carrier = np.cos(k * (-np.sin(th) * dx + np.cos(th) * dy) + phase)
    if zero_mean:
        carrier = carrier - (env * carrier).sum(1, keepdims=True) / env.sum(1, keepdims=True)
    g = env * carrier
    norm = np.linalg.norm(g, axis=1, keepdims=True)
    return g / np.where(norm > 0, norm, 1.0)


def retinotopic_centres(lattice_shape, frame_shape) -> tuple[np.ndarray, np.ndarray]:
    """Uniform retinotopy: the centre (px) in the frame of every lattice site, ``(cx, cy)``.

    Site ``(i, j)`` of an ``(ny, nx)`` lattice maps to ``cx = (j + 0.5)·w/nx - 0.5``,
    ``cy = (i + 0.5)·h/ny - 0.5``: the lattice covers the frame with the same orientation (x
    right, y up in plots with ``origin="lower"``), one site per pixel when the shapes agree.
    """
    ny, nx = _shape2(lattice_shape, "lattice_shape")
    h, w = _shape2(frame_shape, "frame_shape")
    cx = (np.arange(nx) + 0.5) * w / nx - 0.5
    cy = (np.arange(ny) + 0.5) * h / ny - 0.5
    return np.broadcast_to(cx, (ny, nx)).copy(), np.broadcast_to(cy[:, None], (ny, nx)).copy()


class ReceptiveFieldEncoder(Encoder):
    """V1-like encoder: an oriented Gabor receptive field per site, learnable gain per site.

    ``e[b, f, i] = g[i] · F_i(x[b, f]) + c[i]`` where ``F_i`` is the site's response to the frame:

    * ``response="simple"``: ``F_i(x) = <G_i, x>`` with the even Gabor ``G_i`` of
      :func:`gabor_bank` (phase-sensitive, linear);
    * ``response="energy"``: ``F_i(x) = sqrt(<G_i, x>² + <G'_i, x>² + eps²) - eps`` with the
      quadrature (odd) Gabor ``G'_i`` (a complex cell: orientation-tuned, phase-invariant).

    The orientation of ``G_i`` is the site's preferred orientation ``theta[i]`` from an
    orientation map (:mod:`wavesim.maps`), its centre follows :func:`retinotopic_centres` (or a
    given retinotopy), so the pinwheel map is tied to the input. ``g`` (and the optional bias
    ``c``) are learned; the receptive fields are fixed.

    Parameters
    ----------
    theta : (ny, nx) array or DataArray
        Preferred orientation of every site (rad); sets the lattice shape.
    frame_shape : (h, w)
    wavelength, sigma, retinotopy, periodic :
        Receptive-field geometry, see :func:`gabor_bank`.
    response : {"simple", "energy"}
    gain : float or (ny, nx) array
        Initial gain.
    bias : bool
        Learn a per-site bias (initialised to 0).
    eps : float
        Smoothing of the energy response at 0 (keeps it differentiable).

    Attributes
    ----------
    fields : (ny·nx, h·w) array
        The receptive fields (``fields_odd`` too for ``"energy"``).
    parameters : dict
        ``"gain"`` ``(ny, nx)`` and, with ``bias``, ``"bias"`` ``(ny, nx)``.
    """

    kind = "receptive_field"

    def __init__(
        self,
        theta,
        frame_shape,
        *,
        wavelength: float = 8.0,
        sigma: float | None = None,
        retinotopy=None,
        periodic: bool = False,
        response: str = "simple",
        gain=1.0,
        bias: bool = True,
        eps: float = 1e-3,
    ):
        t = _theta_array(theta)
        self.theta = t
        self.frame_shape = _shape2(frame_shape, "frame_shape")
        self.lattice_shape = t.shape
        if response not in ("simple", "energy"):
            raise ValueError(f"response: expected 'simple' or 'energy', got {response!r}")
        self.response = response
        self.wavelength = float(wavelength)
        self.sigma = 0.5 * self.wavelength if sigma is None else float(sigma)
        self.periodic = bool(periodic)
        self.retinotopy = retinotopy
        self.eps = float(eps)
        if not self.eps > 0:
            raise ValueError(f"eps: expected a positive number, got {eps!r}")
        kw = {
            "wavelength": self.wavelength,
            "sigma": self.sigma,
            "retinotopy": retinotopy,
            "periodic": self.periodic,
        }
        self.fields = gabor_bank(t, self.frame_shape, phase=0.0, **kw)
        self.fields_odd = (
            gabor_bank(t, self.frame_shape, phase=np.pi / 2, **kw) if response == "energy" else None
        )
        g = np.broadcast_to(np.asarray(gain, dtype=np.float64), self.lattice_shape).copy()
        if not np.all(np.isfinite(g)):
            raise ValueError("gain: expected finite values")
        self.bias = bool(bias)
        self.parameters = {"gain": g}
        if self.bias:
            self.parameters["bias"] = np.zeros(self.lattice_shape)

    def responses(self, frames) -> np.ndarray:
        """``F_i(x)`` of every site and frame, ``(members, frames, ny, nx)`` (before the gain)."""
        x = _frames(frames, self.frame_shape)
        m, f = x.shape[:2]
        flat = x.reshape(m * f, -1)
        r = flat @ self.fields.T
        if self.response == "energy":
            q = flat @ self.fields_odd.T
            r = np.sqrt(r * r + q * q + self.eps**2) - self.eps
        return r.reshape(m, f, *self.lattice_shape)

    def encode(self, frames) -> np.ndarray:
        e = self.responses(frames) * self.parameters["gain"]
        if self.bias:
            e = e + self.parameters["bias"]
        return e

    def backward(self, frames, grad_inputs) -> dict[str, np.ndarray]:
        r = self.responses(frames)
        g = self._grad_inputs(grad_inputs, *r.shape[:2])
        out = {"gain": np.sum(g * r, axis=(0, 1))}
        if self.bias:
            out["bias"] = g.sum(axis=(0, 1))
        return out

    def config(self) -> dict:
        return {
            "kind": self.kind,
            "frame_shape": list(self.frame_shape),
            "theta": self.theta.tolist(),
            "wavelength": self.wavelength,
            "sigma": self.sigma,
            "periodic": self.periodic,
            "response": self.response,
            "bias": self.bias,
            "eps": self.eps,
            "retinotopy": None
            if self.retinotopy is None
            else [np.asarray(a, float).tolist() for a in self.retinotopy],
        }

    def __repr__(self) -> str:
        return (
            f"ReceptiveFieldEncoder(lattice_shape={self.lattice_shape}, frame_shape="
            f"{self.frame_shape}, response={self.response!r}, wavelength="
            f"{self.wavelength:g})"
        )


#: Encoder kinds by name (the ``kind`` of a configuration).
ENCODERS = {"linear": LinearEncoder, "receptive_field": ReceptiveFieldEncoder}


def encoder_from_config(config: dict, parameters=None) -> Encoder:
    """Rebuild an encoder from :meth:`Encoder.config` (and optionally its parameter values)."""
    cfg = dict(config)
    kind = cfg.pop("kind", None)
    if kind not in ENCODERS:
        raise ValueError(f"encoder kind: expected one of {', '.join(ENCODERS)}, got {kind!r}")
    if kind == "linear":
        enc = LinearEncoder(cfg.pop("frame_shape"), cfg.pop("lattice_shape"), **cfg)
    else:
        theta = np.asarray(cfg.pop("theta"), dtype=float)
        retino = cfg.pop("retinotopy", None)
        if retino is not None:
            retino = tuple(np.asarray(a, float) for a in retino)
        enc = ReceptiveFieldEncoder(theta, cfg.pop("frame_shape"), retinotopy=retino, **cfg)
    if parameters is not None:
        enc.set_parameters(parameters)
    return enc
