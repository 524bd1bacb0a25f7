"""Parameterisation and constraints: an unconstrained vector ``x`` ↔ model values by name.

An optimiser works on one flat float64 vector ``x``. A :class:`ParameterSpace` maps it to the
model's parameter values by name (``"w"``, ``"gamma"``, ...) and pulls gradients with respect to
those values back to gradients with respect to ``x`` (the chain rule through every transform):

.. code-block:: python

    space = ParameterSpace({
        "w": StencilParam(w0, symmetry="isotropic", zero_sum=True),
        "gamma": Param(0.5, transform="softplus"),          # gamma = softplus(x) > 0
        "omega2": Param(1.0, transform="bounds", lower=0.1),  # L-BFGS-B keeps x >= 0.1
        "bias": Param(0.0, per_site=True, shape=(ny, nx)),
        "kappa": Param(0.3, learnable=False),
    })
    values = space.unpack(x)                     # dict name -> float or array
    grad_x = space.pullback(x, grads_by_name)    # grads of the loss w.r.t. the values

Transforms of a :class:`Param` (value ``p`` from its free entries ``x``):

* ``"identity"``: ``p = x``.
* ``"softplus"``: ``p = lower + log(1 + e^x)`` (``lower`` defaults to 0) — strictly above
  ``lower`` for every ``x``; use it for γ, ω², dt, κ.
* ``"log"``: ``p = lower + e^x`` — also positive, for scale-like parameters.
* ``"bounds"``: ``p = x`` with box bounds ``[lower, upper]`` reported by
  :attr:`ParameterSpace.bounds`. L-BFGS-B enforces them natively; :func:`wavesim.learn.optim.adam`
  projects (clips) ``x`` back into the box after every step.

A :class:`StencilParam` writes a k × k stencil as ``W = A·c`` with a fixed linear map ``A`` from
free coefficients ``c`` (symmetries, zero sum); its pullback is ``Aᵀ·∇W``.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping

import numpy as np
from scipy.special import expit

__all__ = [
    "PARAMETER_NAMES",
    "Param",
    "ParameterSpace",
    "StencilParam",
    "stencil_basis",
]

#: Parameter names the gradient driver knows (see ``wavesim.learn.gradient``).
PARAMETER_NAMES = ("w", "wv", "kappa", "omega2", "gamma", "bias", "gain", "y0", "v0", "dt")

TRANSFORMS = ("identity", "softplus", "log", "bounds")
SYMMETRIES = ("none", "mirror", "isotropic")

_SCALAR_NAMES = ("kappa", "gain", "dt")
_MAP_NAMES = ("omega2", "gamma", "bias")  # scalar or (ny, nx)
_STATE_NAMES = ("y0", "v0")  # (members, ny, nx)
_STENCIL_NAMES = ("w", "wv")
_NONNEGATIVE = ("kappa", "omega2", "gamma")
_POSITIVE = ("dt",)


def _softplus(x):
    return np.logaddexp(0.0, x)


def _softplus_inv(p):
    # log(e^p - 1), stable for small and large p > 0
    return p + np.log(-np.expm1(-p))


def _as_bound(value, what: str) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Param {what}: expected a number or None, got {value!r}") from None
    if math.isnan(out):
        raise ValueError(f"Param {what}: expected a number or None, got NaN")
    return out


class Param:
    """One model parameter: a scalar or an array, learnable or frozen, with a transform.

    Parameters
    ----------
    value : float or array
        Initial value (scalar, ``(ny, nx)`` map, ``(members, ny, nx)`` state, or a stencil).
    learnable : bool
        False freezes it at ``value`` (it has no entries in ``x``).
    transform : {"identity", "softplus", "log", "bounds"}
        How the value is obtained from its free entries (see the module docstring).
    lower, upper : float, optional
        ``"softplus"``/``"log"``: the value is ``lower + softplus(x)`` / ``lower + exp(x)``
        (``lower`` defaults to 0; ``upper`` is not allowed). ``"bounds"``: the box ``[lower,
        upper]`` (at least one given). ``"identity"``: neither allowed.
    per_site : bool
        Promote a scalar ``value`` to a per-site map of ``shape`` (each site learned separately).
    shape : (ny, nx), optional
        Shape of the per-site map (required when ``per_site`` and ``value`` is a scalar).

    Raises
    ------
    ValueError
        For an unknown transform, bounds that do not fit the transform, a value outside its
        constraint (e.g. ``value <= lower`` for softplus), or a non-finite value.
    """

    def __init__(
        self,
        value,
        *,
        learnable: bool = True,
        transform: str = "identity",
        lower: float | None = None,
        upper: float | None = None,
        per_site: bool = False,
        shape=None,
    ):
        if transform not in TRANSFORMS:
            raise ValueError(f"Param transform: expected one of {TRANSFORMS}, got {transform!r}")
        v = np.array(value, dtype=np.float64)
        if per_site:
            if v.ndim == 0:
                if shape is None:
                    raise ValueError("Param per_site=True with a scalar value needs shape=(ny, nx)")
                shape = tuple(int(s) for s in shape)
                if len(shape) != 2 or min(shape) < 1:
                    raise ValueError(f"Param shape: expected (ny, nx), got {shape!r}")
                v = np.full(shape, float(v))
            elif v.ndim != 2 or (shape is not None and v.shape != tuple(shape)):
                raise ValueError(
                    f"Param per_site=True: expected a scalar or an (ny, nx) map"
                    f"{'' if shape is None else f' of shape {tuple(shape)}'}, got shape {v.shape}"
                )
        elif shape is not None and v.shape != tuple(shape):
            raise ValueError(f"Param shape: value has shape {v.shape}, expected {tuple(shape)}")
        if not np.all(np.isfinite(v)):
            raise ValueError("Param value: expected finite values")
        lower = _as_bound(lower, "lower")
        upper = _as_bound(upper, "upper")
        if transform == "identity" and (lower is not None or upper is not None):
            raise ValueError(
                "Param: lower/upper need transform='bounds' (box), 'softplus' or 'log' (lower only)"
            )
        if transform in ("softplus", "log"):
            if upper is not None:
                raise ValueError(f"Param transform={transform!r}: upper is not supported")
            lower = 0.0 if lower is None else lower
            if not math.isfinite(lower):
                raise ValueError(f"Param lower: expected a finite number, got {lower!r}")
            if np.any(v <= lower):
                raise ValueError(
                    f"Param transform={transform!r}: value must be > lower = {lower}, got min "
                    f"{float(v.min())!r}"
                )
        if transform == "bounds":
            if lower is None and upper is None:
                raise ValueError("Param transform='bounds': give lower and/or upper")
            lo = -np.inf if lower is None else lower
            hi = np.inf if upper is None else upper
            if not lo < hi:
                raise ValueError(f"Param bounds: expected lower < upper, got [{lo}, {hi}]")
            if np.any(v < lo) or np.any(v > hi):
                raise ValueError(
                    f"Param value: expected inside the bounds [{lo}, {hi}], got values in "
                    f"[{float(v.min())!r}, {float(v.max())!r}]"
                )
        self.value = v
        self.learnable = bool(learnable)
        self.transform = transform
        self.lower = lower
        self.upper = upper

    # -- maps between the value and its free entries -------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def size(self) -> int:
        """Number of free entries in ``x`` when learnable."""
        return int(self.value.size)

    def to_x(self, value=None) -> np.ndarray:
        """Free entries (flat) whose value is ``value`` (default: the current value)."""
        v = (self.value if value is None else np.asarray(value, dtype=np.float64)).ravel()
        if self.transform == "softplus":
            return _softplus_inv(v - self.lower)
        if self.transform == "log":
            return np.log(v - self.lower)
        return v.copy()

    def from_x(self, x) -> np.ndarray:
        """Value (shape :attr:`shape`) of the free entries ``x`` (flat)."""
        x = np.asarray(x, dtype=np.float64)
        if self.transform == "softplus":
            v = self.lower + _softplus(x)
        elif self.transform == "log":
            v = self.lower + np.exp(x)
        else:
            v = x.copy()
        return v.reshape(self.shape)

    def pullback(self, x, grad) -> np.ndarray:
        """d loss / d x (flat) from d loss / d value (shape :attr:`shape`)."""
        x = np.asarray(x, dtype=np.float64)
        g = np.asarray(grad, dtype=np.float64).ravel()
        if self.transform == "softplus":
            return g * expit(x)
        if self.transform == "log":
            return g * np.exp(x)
        return g.copy()

    def x_bounds(self) -> list[tuple[float | None, float | None]]:
        if self.transform == "bounds":
            return [(self.lower, self.upper)] * self.size
        return [(None, None)] * self.size

    def describe_transform(self) -> str:
        if self.transform in ("softplus", "log"):
            return f"{self.transform}(lower={self.lower:g})"
        if self.transform == "bounds":
            lo = "-inf" if self.lower is None else f"{self.lower:g}"
            hi = "inf" if self.upper is None else f"{self.upper:g}"
            return f"bounds[{lo}, {hi}]"
        return "identity"

    def __repr__(self) -> str:
        v = f"{float(self.value):g}" if self.value.ndim == 0 else f"array{self.shape}"
        frozen = "" if self.learnable else ", learnable=False"
        return f"Param({v}, transform={self.describe_transform()!r}{frozen})"


# ----------------------------------------------------------------------------------------------
# Stencils
# ----------------------------------------------------------------------------------------------
def stencil_basis(k: int, symmetry: str = "none", zero_sum: bool = False) -> np.ndarray:
    """The fixed linear map ``A`` (shape ``(k·k, n_free)``) of a constrained k × k stencil.

    ``W.ravel() = A @ c``. Offsets ``(oy, ox) = (r − k//2, c − k//2)``:

    * ``"none"``: every entry free;
    * ``"mirror"``: ``W`` invariant under ``x → −x`` and under ``y → −y`` (classes of equal
      ``(|oy|, |ox|)``);
    * ``"isotropic"``: ``W`` depends only on ``oy² + ox²`` (for 3 × 3: centre, edges, corners).

    ``zero_sum`` removes the centre from the free coefficients and sets it to minus the sum of
    all other entries (so ``W`` sums to 0, like a Laplacian). Columns are ordered by the
    first entry (row-major) of each class.
    """
    if isinstance(k, bool) or int(k) != k or k < 1 or k % 2 == 0:
        raise ValueError(f"stencil size: expected an odd integer >= 1, got {k!r}")
    k = int(k)
    if symmetry not in SYMMETRIES:
        raise ValueError(f"StencilParam symmetry: expected one of {SYMMETRIES}, got {symmetry!r}")
    h = k // 2
    keys = []
    for r in range(k):
        for c in range(k):
            oy, ox = r - h, c - h
            if symmetry == "none":
                keys.append((r, c))
            elif symmetry == "mirror":
                keys.append((abs(oy), abs(ox)))
            else:
                keys.append(oy * oy + ox * ox)
    classes = list(dict.fromkeys(keys))
    centre = h * k + h
    if zero_sum:
        classes.remove(keys[centre])
        if not classes:
            raise ValueError("StencilParam zero_sum: a 1 x 1 stencil has no free coefficient")
    a = np.zeros((k * k, len(classes)))
    col = {key: j for j, key in enumerate(classes)}
    for i, key in enumerate(keys):
        if zero_sum and i == centre:
            continue
        a[i, col[key]] = 1.0
    if zero_sum:
        a[centre] = -a.sum(axis=0)
    return a


class StencilParam:
    """A k × k coupling stencil ``W = A·c`` with symmetry and zero-sum constraints.

    Parameters
    ----------
    w0 : (k, k) array, k odd
        Initial stencil. Its least-squares projection onto the constrained set is used as the
        initial value; when ``w0`` violates the constraints by more than ``tol · max|w0|`` a
        ``UserWarning`` says by how much.
    symmetry : {"none", "mirror", "isotropic"}
        See :func:`stencil_basis`.
    zero_sum : bool
        Centre = −(sum of the other entries).
    learnable : bool
        False freezes the stencil at its (projected) value.
    tol : float
        Relative tolerance of the constraint check (default 1e-9).

    Attributes
    ----------
    basis : (k·k, n_free) array ``A``
    value : (k, k) array, always exactly ``A @ c`` of the current coefficients.
    """

    transform = "stencil"

    def __init__(
        self,
        w0,
        *,
        symmetry: str = "none",
        zero_sum: bool = False,
        learnable: bool = True,
        tol: float = 1e-9,
    ):
        w = np.array(w0, dtype=np.float64)
        if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] % 2 == 0:
            raise ValueError(f"StencilParam w0: expected a (k, k) array with k odd, got {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError("StencilParam w0: expected finite values")
        self.symmetry = symmetry
        self.zero_sum = bool(zero_sum)
        self.basis = stencil_basis(w.shape[0], symmetry, self.zero_sum)
        c, *_ = np.linalg.lstsq(self.basis, w.ravel(), rcond=None)
        self.coefficients = c
        self.value = (self.basis @ c).reshape(w.shape)
        dev = float(np.max(np.abs(self.value - w)))
        if dev > tol * max(float(np.max(np.abs(w))), np.finfo(float).tiny):
            warnings.warn(
                f"StencilParam: w0 violates the constraints ({self.describe_transform()}) by up "
                f"to {dev:.3g} (max |w0| = {np.max(np.abs(w)):.3g}); using its least-squares "
                "projection",
                UserWarning,
                stacklevel=2,
            )
        self.learnable = bool(learnable)

    @property
    def shape(self) -> tuple[int, int]:
        return self.value.shape

    @property
    def size(self) -> int:
        """Number of free coefficients."""
        return self.basis.shape[1]

    def to_x(self, value=None) -> np.ndarray:
        if value is None:
            return self.coefficients.copy()
        c, *_ = np.linalg.lstsq(self.basis, np.asarray(value, dtype=float).ravel(), rcond=None)
        return c

    def from_x(self, x) -> np.ndarray:
        return (self.basis @ np.asarray(x, dtype=np.float64)).reshape(self.shape)

    def pullback(self, x, grad) -> np.ndarray:
        return self.basis.T @ np.asarray(grad, dtype=np.float64).ravel()

    def x_bounds(self) -> list[tuple[None, None]]:
        return [(None, None)] * self.size

    def describe_transform(self) -> str:
        zs = ", zero_sum" if self.zero_sum else ""
        return f"stencil({self.symmetry}{zs})"

    def __repr__(self) -> str:
        frozen = "" if self.learnable else ", learnable=False"
        return f"StencilParam({self.shape[0]}x{self.shape[1]}, {self.describe_transform()}{frozen})"


# ----------------------------------------------------------------------------------------------
# The space
# ----------------------------------------------------------------------------------------------
class ParameterSpace:
    """The map between an unconstrained optimisation vector ``x`` and model values by name.

    Parameters
    ----------
    params : mapping name -> Param or StencilParam
        Names among :data:`PARAMETER_NAMES`: ``"w"``, ``"wv"`` (k × k stencils, a
        :class:`StencilParam` or a plain :class:`Param`), ``"kappa"``, ``"gain"``, ``"dt"``
        (scalars), ``"omega2"``, ``"gamma"``, ``"bias"`` (scalar or ``(ny, nx)``), ``"y0"``,
        ``"v0"`` (``(members, ny, nx)``). The space keeps its own copies.

    ``x`` concatenates the free entries of the learnable parameters, in the order of ``params``
    (:attr:`slices` says where each one lives; :meth:`labels` names every entry).

    Raises
    ------
    ValueError
        For an unknown name (the known names are listed), shapes that do not fit the name or
        disagree between parameters, or an initial value outside the model's domain (κ, ω², γ
        < 0, dt <= 0).
    TypeError
        When an entry is not a Param/StencilParam.
    """

    def __init__(self, params: Mapping[str, Param | StencilParam]):
        if not isinstance(params, Mapping):
            raise TypeError(
                f"ParameterSpace params: expected a dict name -> Param, got {type(params).__name__}"
            )
        self._params: dict[str, Param | StencilParam] = {}
        for name, p in params.items():
            self._check_name(name)
            if not isinstance(p, (Param, StencilParam)):
                raise TypeError(
                    f"ParameterSpace[{name!r}]: expected a Param or StencilParam, got "
                    f"{type(p).__name__} (wrap values as Param(value))"
                )
            self._params[name] = copy.deepcopy(p)
        self._check_consistency()

    # -- validation ----------------------------------------------------------------------------
    @staticmethod
    def _check_name(name) -> None:
        if name not in PARAMETER_NAMES:
            raise ValueError(
                f"unknown parameter name {name!r}; known names: {', '.join(PARAMETER_NAMES)}"
            )

    def _check_consistency(self) -> None:
        site_shape = None
        site_from = None

        def same_sites(shape, name):
            nonlocal site_shape, site_from
            if site_shape is None:
                site_shape, site_from = tuple(shape), name
            elif tuple(shape) != site_shape:
                raise ValueError(
                    f"ParameterSpace[{name!r}]: lattice shape {tuple(shape)} differs from "
                    f"{site_shape} of {site_from!r}"
                )

        for name, p in self._params.items():
            v = p.value
            if isinstance(p, StencilParam) and name not in _STENCIL_NAMES:
                raise ValueError(
                    f"ParameterSpace[{name!r}]: a StencilParam is only for 'w' or 'wv'"
                )
            if name in _STENCIL_NAMES:
                if v.ndim != 2 or v.shape[0] != v.shape[1] or v.shape[0] % 2 == 0:
                    raise ValueError(
                        f"ParameterSpace[{name!r}]: expected a (k, k) stencil with k odd, got "
                        f"shape {v.shape}"
                    )
            elif name in _SCALAR_NAMES and v.ndim != 0:
                raise ValueError(
                    f"ParameterSpace[{name!r}]: expected a scalar, got shape {v.shape}"
                )
            elif name in _MAP_NAMES:
                if v.ndim not in (0, 2):
                    raise ValueError(
                        f"ParameterSpace[{name!r}]: expected a scalar or an (ny, nx) map, got "
                        f"shape {v.shape}"
                    )
                if v.ndim == 2:
                    same_sites(v.shape, name)
            elif name in _STATE_NAMES:
                if v.ndim != 3:
                    raise ValueError(
                        f"ParameterSpace[{name!r}]: expected (members, ny, nx), got {v.shape}"
                    )
                same_sites(v.shape[1:], name)
            low = float(v.min())
            if name in _NONNEGATIVE and low < 0:
                raise ValueError(f"ParameterSpace[{name!r}]: expected values >= 0, got {low}")
            if name in _POSITIVE and low <= 0:
                raise ValueError(f"ParameterSpace[{name!r}]: expected a value > 0, got {low}")
        if "w" in self._params and "wv" in self._params:
            if self._params["w"].shape != self._params["wv"].shape:
                raise ValueError(
                    f"ParameterSpace['wv']: shape {self._params['wv'].shape} differs from the "
                    f"shape {self._params['w'].shape} of 'w'"
                )
        if "y0" in self._params and "v0" in self._params:
            if self._params["y0"].shape != self._params["v0"].shape:
                raise ValueError(
                    f"ParameterSpace['v0']: shape {self._params['v0'].shape} differs from the "
                    f"shape {self._params['y0'].shape} of 'y0'"
                )

    def _get(self, name: str) -> Param | StencilParam:
        if name not in self._params:
            self._check_name(name)
            raise KeyError(
                f"parameter {name!r} is not in this space (it holds {', '.join(self._params)})"
            )
        return self._params[name]

    # -- layout ----------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """All parameter names, in order."""
        return list(self._params)

    @property
    def names_learnable(self) -> list[str]:
        """Names of the learnable parameters, in the order of ``x``."""
        return [n for n, p in self._params.items() if p.learnable]

    @property
    def slices(self) -> dict[str, slice]:
        """Where each learnable parameter's free entries live in ``x``."""
        out, start = {}, 0
        for name in self.names_learnable:
            size = self._params[name].size
            out[name] = slice(start, start + size)
            start += size
        return out

    @property
    def size(self) -> int:
        """Length of ``x``."""
        return sum(self._params[n].size for n in self.names_learnable)

    def __len__(self) -> int:
        return self.size

    def __contains__(self, name) -> bool:
        return name in self._params

    def __getitem__(self, name: str) -> Param | StencilParam:
        return self._get(name)

    def labels(self) -> list[str]:
        """A readable name for every entry of ``x``: ``"gamma"``, ``"bias[2, 5]"``, ``"w.c[1]"``
        (free coefficient 1 of a constrained stencil)."""
        out = []
        for name in self.names_learnable:
            p = self._params[name]
            if isinstance(p, StencilParam):
                if p.symmetry == "none" and not p.zero_sum:
                    out.extend(f"{name}[{i}, {j}]" for i, j in np.ndindex(p.shape))
                else:
                    out.extend(f"{name}.c[{j}]" for j in range(p.size))
            elif p.value.ndim == 0:
                out.append(name)
            else:
                out.extend(f"{name}[{', '.join(map(str, idx))}]" for idx in np.ndindex(p.shape))
        return out

    # -- the maps ------------------------------------------------------------------------------
    @property
    def x0(self) -> np.ndarray:
        """``x`` of the current values (the initial values until :meth:`update`)."""
        parts = [self._params[n].to_x() for n in self.names_learnable]
        return np.concatenate(parts) if parts else np.zeros(0)

    def _check_x(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.size,):
            raise ValueError(
                f"x: expected shape ({self.size},) for the learnable parameters "
                f"{self.names_learnable}, got {x.shape}"
            )
        return x

    def unpack(self, x) -> dict[str, float | np.ndarray]:
        """Model values of every parameter (frozen ones at their values) for ``x``.

        Returns
        -------
        dict name -> float (scalars) or float64 array (fresh copies).
        """
        x = self._check_x(x)
        sl = self.slices
        out: dict[str, float | np.ndarray] = {}
        for name, p in self._params.items():
            v = p.from_x(x[sl[name]]) if name in sl else p.value.copy()
            out[name] = float(v) if v.ndim == 0 else v
        return out

    @property
    def values(self) -> dict[str, float | np.ndarray]:
        """The current values of every parameter."""
        return self.unpack(self.x0)

    def pullback(self, x, grads: Mapping[str, np.ndarray | float]) -> np.ndarray:
        """Gradient with respect to ``x`` from gradients with respect to the model values.

        Parameters
        ----------
        x : (size,) array
            Where the gradient is taken (the transforms are nonlinear).
        grads : mapping name -> array
            d loss / d value for (at least) every learnable parameter, in the value's shape. A
            per-site gradient ``(ny, nx)`` for a scalar parameter is summed (the scalar is
            broadcast over the sites). Names of frozen parameters or not in the space are
            ignored.

        Returns
        -------
        (size,) float64 array: ``(∂value/∂x)ᵀ · grad`` (``Aᵀ·∇W`` for a stencil).
        """
        x = self._check_x(x)
        out = np.zeros(self.size)
        for name, s in self.slices.items():
            if name not in grads or grads[name] is None:
                raise ValueError(
                    f"grads: no gradient for the learnable parameter {name!r} "
                    f"(got {', '.join(map(str, grads)) or 'none'})"
                )
            p = self._params[name]
            g = np.asarray(grads[name], dtype=np.float64)
            if p.value.ndim == 0 and g.ndim > 0:
                g = g.sum()
            if g.shape != p.shape:
                raise ValueError(
                    f"grads[{name!r}]: expected shape {p.shape} (that of the value), got {g.shape}"
                )
            out[s] = p.pullback(x[s], g)
        return out

    @property
    def bounds(self) -> list[tuple[float | None, float | None]]:
        """``(lower, upper)`` for every entry of ``x`` (None = unbounded), for L-BFGS-B/Adam."""
        out = []
        for name in self.names_learnable:
            out.extend(self._params[name].x_bounds())
        return out

    # -- state changes -------------------------------------------------------------------------
    def update(self, x) -> ParameterSpace:
        """Store the values of ``x`` as the current values (so :attr:`x0` becomes ``x``)."""
        x = self._check_x(x)
        for name, s in self.slices.items():
            p = self._params[name]
            if isinstance(p, StencilParam):
                p.coefficients = x[s].copy()
            p.value = p.from_x(x[s])
        return self

    def freeze(self, *names: str) -> ParameterSpace:
        """Make parameters non-learnable (kept at their current values). Returns the space."""
        for name in names:
            self._get(name).learnable = False
        return self

    def unfreeze(self, *names: str) -> ParameterSpace:
        """Make parameters learnable again, starting from their current values."""
        for name in names:
            self._get(name).learnable = True
        return self

    # -- display -------------------------------------------------------------------------------
    def describe(self) -> str:
        """A table of every parameter: name, shape, transform, learnable, free entries, value."""
        rows = [("name", "shape", "transform", "learnable", "free", "value")]
        for name, p in self._params.items():
            v = p.value
            if v.ndim == 0:
                val = f"{float(v):.6g}"
            else:
                val = f"mean {v.mean():.4g}, range [{v.min():.4g}, {v.max():.4g}]"
            rows.append(
                (
                    name,
                    str(tuple(v.shape)),
                    p.describe_transform(),
                    "yes" if p.learnable else "frozen",
                    str(p.size if p.learnable else 0),
                    val,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(f"{self.size} free entries in x")
        return "\n".join(lines)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={p!r}" for n, p in self._params.items())
        return f"ParameterSpace({inner})"
