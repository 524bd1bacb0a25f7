"""Datasets of transformed image sequences for the encoder/decoder bridge.

Every generator returns an :class:`xarray.Dataset` with

* ``frames`` -- float32 on dims ``(sequence, frame, y, x)``, values in ``[0, 1]``;
* coordinates ``sequence`` (index), ``frame`` (integer index; **the frame is the time unit of the
  bridge**, so speeds are per frame), ``y``, ``x`` (pixel centres ``0, 1, ...``, units ``"px"``;
  ``x`` is the column, ``y`` the row, angles are counter-clockwise in the right-handed ``(x, y)``
  frame -- plot with ``origin="lower"``);
* the transformation parameters of each sequence as coordinates along ``sequence`` (the labels:
  ``angular_velocity`` in deg/frame, ``initial_angle`` deg, ``velocity_x``/``velocity_y``
  px/frame, ``spatial_period`` px, ``phase`` rad, ``image_index`` ...), each with
  ``attrs["units"]``;
* attrs that make it self-describing: ``kind``, ``seed`` and ``spawn_key`` (the
  :class:`numpy.random.SeedSequence` it was drawn from), ``size``, ``n_frames``,
  ``n_sequences``, and ``parameters`` -- a JSON string of every generator argument, so
  ``generator(n, seed=..., **json.loads(ds.attrs["parameters"]))`` regenerates it bit for bit.

Random parameters are given as a number (fixed), a ``(low, high)`` tuple (uniform on that range)
or a list of values (one drawn uniformly per sequence). Sequence ``i`` draws from its own generator
seeded by ``SeedSequence(entropy, spawn_key=(*spawn_key, i))``: the first ``m`` sequences do not
depend on ``n``, and :func:`make_splits` gives train, validation and test their own spawned seeds,
so one split never changes when another split's size does.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import ndimage
from scipy.special import erf, erfc

__all__ = [
    "DATASETS",
    "Splits",
    "context_target",
    "digits",
    "drifting_gratings",
    "make_splits",
    "open_splits",
    "rotating_bars",
    "rotating_gratings",
    "transformed_images",
    "translating_blobs",
]

SPLIT_NAMES = ("train", "validation", "test")

_ROTATION_MODES = (
    "grid-constant",
    "constant",
    "nearest",
    "reflect",
    "mirror",
    "grid-mirror",
    "grid-wrap",
    "wrap",
)


# ---------------------------------------------------------------------------------------------
# parameters: fixed, uniform range or choice
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    """A per-sequence parameter: ``fixed`` value, ``uniform`` on [low, high) or ``choice``."""

    name: str
    kind: str
    values: tuple[float, ...]

    def value(self, u: float) -> float:
        """The parameter for a uniform draw ``u`` in [0, 1) (inverse CDF)."""
        if self.kind == "fixed":
            return self.values[0]
        if self.kind == "uniform":
            low, high = self.values
            return low + (high - low) * u
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]

    def to_json(self):
        if self.kind == "fixed":
            return self.values[0]
        return {self.kind: list(self.values)}

    def require(self, ok: Callable[[float], bool], expected: str) -> None:
        """Check ``ok`` on the values a sequence can get (the ends of a range: ``ok`` must
        describe an interval)."""
        bad = [v for v in self.values if not ok(v)]
        if bad:
            raise ValueError(f"{self.name} must be {expected}; got {self._describe()}")

    def _describe(self) -> str:
        if self.kind == "fixed":
            return f"{self.values[0]!r}"
        if self.kind == "uniform":
            return f"the range {self.values!r}"
        return f"the choices {list(self.values)!r}"


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _spec(name: str, value) -> _Spec:
    expected = (
        f"{name} must be a finite number (fixed), a (low, high) tuple (uniform range) or a "
        f"non-empty list of numbers (one drawn per sequence)"
    )
    if isinstance(value, Mapping):  # the JSON form stored in attrs["parameters"]
        if len(value) == 1 and next(iter(value)) in ("uniform", "choice"):
            kind, inner = next(iter(value.items()))
            value = tuple(inner) if kind == "uniform" else list(inner)
        else:
            raise ValueError(f"{expected}; got {value!r}")
    if _is_real(value):
        return _Spec(name, "fixed", (float(value),))
    if isinstance(value, tuple):
        if len(value) != 2 or not all(_is_real(v) for v in value):
            raise ValueError(f"{expected}; got the tuple {value!r} (a range needs two numbers)")
        low, high = (float(v) for v in value)
        if low > high:
            raise ValueError(f"{name}: the range {value!r} has low > high")
        return _Spec(name, "uniform", (low, high))
    if isinstance(value, np.ndarray):
        value = value.tolist() if value.ndim == 1 else value
    if isinstance(value, list):
        if not value or not all(_is_real(v) for v in value):
            raise ValueError(f"{expected}; got the list {value!r}")
        return _Spec(name, "choice", tuple(float(v) for v in value))
    raise ValueError(f"{expected}; got {value!r}")


def _draw(specs: list[_Spec], rng: np.random.Generator) -> dict[str, float]:
    """One value per spec. Always consumes ``len(specs)`` uniforms, so changing one parameter's
    spec never changes the values drawn for the others."""
    u = rng.random(len(specs))
    return {s.name: s.value(float(ui)) for s, ui in zip(specs, u, strict=True)}


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------
def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _check_real(name: str, value, ok: Callable[[float], bool], expected: str) -> float:
    if not _is_real(value) or not ok(float(value)):
        raise ValueError(f"{name} must be {expected}; got {value!r}")
    return float(value)


def _seed_sequence(seed) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        return np.random.SeedSequence(int(seed))
    raise ValueError(
        f"seed must be a non-negative integer, a numpy.random.SeedSequence or None (fresh "
        f"entropy, recorded in attrs['seed']); got {seed!r}"
    )


def _sequence_rngs(ss: np.random.SeedSequence, n: int) -> Iterator[np.random.Generator]:
    """Independent generator per sequence, keyed by its index (no state kept on ``ss``)."""
    for i in range(n):
        child = np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, i))
        yield np.random.default_rng(child)


def _seed_attr(entropy):
    if isinstance(entropy, numbers.Integral):
        return int(entropy) if entropy < 2**63 else str(int(entropy))
    return [_seed_attr(e) for e in entropy]


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (Y, X) relative to the frame centre."""
    c = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size].astype(float)
    return y - c, x - c


def _version() -> str:
    try:
        from wavesim import __version__

        return str(__version__)
    except Exception:  # pragma: no cover - partial installs
        return "unknown"


_LABEL_ATTRS = {
    "angular_velocity": {"units": "deg/frame", "long_name": "angular velocity (counter-clockwise)"},
    "initial_angle": {"units": "deg", "long_name": "orientation at frame 0"},
    "spatial_period": {"units": "px", "long_name": "spatial period of the grating"},
    "phase": {"units": "rad", "long_name": "grating phase at frame 0"},
    "direction": {"units": "deg", "long_name": "drift direction (wave vector), ccw from +x"},
    "orientation": {"units": "deg", "long_name": "orientation of the stripes, in [0, 180)"},
    "speed": {"units": "px/frame", "long_name": "drift speed along the direction"},
    "temporal_frequency": {"units": "cycles/frame", "long_name": "temporal frequency"},
    "velocity_x": {"units": "px/frame", "long_name": "translation velocity along x"},
    "velocity_y": {"units": "px/frame", "long_name": "translation velocity along y"},
    "sigma": {"units": "px", "long_name": "Gaussian blob standard deviation"},
    "blob_x": {"units": "px", "long_name": "blob centre x at frame 0"},
    "blob_y": {"units": "px", "long_name": "blob centre y at frame 0"},
    "image_index": {"long_name": "index of the source image"},
    "image_label": {"long_name": "label of the source image"},
}


def _dataset(
    kind: str,
    frames: np.ndarray,
    labels: Mapping[str, object],
    *,
    ss: np.random.SeedSequence,
    specs: Sequence[_Spec],
    parameters: Mapping,
    description: str,
    extra_attrs: Mapping | None = None,
) -> xr.Dataset:
    """The dataset of a generator: ``frames`` with coordinates, labels and provenance.

    ``labels`` maps names to per-sequence arrays or to ``(dims, values)``; ``parameters`` (the
    fixed arguments) and the per-sequence ``specs`` are stored together as JSON.
    """
    n, n_frames, ny, nx = frames.shape
    parameters = {"frames": int(n_frames), **parameters, **{s.name: s.to_json() for s in specs}}
    coords = {
        "sequence": ("sequence", np.arange(n), {"long_name": "sequence index"}),
        "frame": (
            "frame",
            np.arange(n_frames),
            {"units": "frame", "long_name": "frame index (the time unit of the bridge)"},
        ),
        "y": ("y", np.arange(ny, dtype=float), {"units": "px", "long_name": "row (pixel centre)"}),
        "x": (
            "x",
            np.arange(nx, dtype=float),
            {"units": "px", "long_name": "column (pixel centre)"},
        ),
    }
    for name, label in labels.items():
        dims, values = label if isinstance(label, tuple) else ("sequence", label)
        coords[name] = (dims, np.asarray(values), dict(_LABEL_ATTRS.get(name, {})))
    attrs = {
        "kind": kind,
        "generator": f"wavesim.bridge.datasets.{kind}",
        "description": description,
        "seed": _seed_attr(ss.entropy),
        "spawn_key": [int(k) for k in ss.spawn_key],
        "n_sequences": int(n),
        "n_frames": int(n_frames),
        "size": [int(ny), int(nx)],
        "parameters": json.dumps(dict(parameters), sort_keys=True),
        "wavesim_version": _version(),
        **(extra_attrs or {}),
    }
    data = xr.Variable(
        ("sequence", "frame", "y", "x"),
        frames,
        {"units": "1", "long_name": "frame intensity in [0, 1]"},
    )
    return xr.Dataset({"frames": data}, coords=coords, attrs=attrs)


def _box(s: np.ndarray, length: float, edge: float) -> np.ndarray:
    """Indicator of ``|s| < length/2`` convolved with a Gaussian of std ``edge``."""
    r = np.sqrt(2.0) * edge
    return 0.5 * (erf((s + length / 2) / r) - erf((s - length / 2) / r))


def _parse(names_values: Mapping[str, object]) -> list[_Spec]:
    return [_spec(name, value) for name, value in names_values.items()]


# ---------------------------------------------------------------------------------------------
# rotating bars
# ---------------------------------------------------------------------------------------------
def rotating_bars(
    n: int,
    size: int = 32,
    frames: int = 36,
    *,
    angular_velocity=20.0,
    initial_angle=(0.0, 180.0),
    width: float | None = None,
    length: float | None = None,
    edge: float = 0.6,
    seed=0,
) -> xr.Dataset:
    """Sequences of a bright bar rotating about the frame centre.

    Frame ``t`` of a sequence shows the bar at orientation ``initial_angle + angular_velocity*t``
    (degrees, counter-clockwise from +x, the direction of the bar's long axis). The bar is drawn
    analytically, not rasterized: a ``length x width`` rectangle blurred by a Gaussian of standard
    deviation ``edge`` (a product of two erf profiles in the bar's own frame), sampled at pixel
    centres. So every frame is the same continuous image rotated exactly: the orientation measured
    from each frame's second moments follows the label to about 0.002 degrees at the default
    ``edge`` (0.014 degrees at ``edge=0.5``, 0.3 degrees at 0.3).

    Parameters
    ----------
    n : int
        Number of sequences (>= 0).
    size : int
        Frame side in pixels (frames are ``size x size``).
    frames : int
        Frames per sequence.
    angular_velocity : float, (low, high) tuple or list
        Degrees per frame, counter-clockwise positive; fixed, uniform on a range, or drawn from a
        list (e.g. ``[-20, 20]`` for both senses). Must lie in (-90, 90): a bar is unchanged by a
        half turn, so ``w`` and ``w - 180`` would give identical frames.
    initial_angle : float, (low, high) tuple or list
        Orientation at frame 0, degrees (default uniform on [0, 180)).
    width, length : float, optional
        Bar size in pixels; default ``size/8`` and ``0.75*size``. The blurred bar must fit in the
        frame at every angle: ``hypot(length/2, width/2) + 3*edge <= (size - 1)/2``.
    edge : float
        Edge softness in pixels (standard deviation of the blur), > 0.
    seed : int, numpy.random.SeedSequence or None
        Seed of the dataset (recorded in ``attrs``).

    Returns
    -------
    xarray.Dataset
        ``frames`` (sequence, frame, y, x), float32 in [0, 1]; labels ``angular_velocity``
        (deg/frame) and ``initial_angle`` (deg) along ``sequence``.

    Examples
    --------
    >>> ds = rotating_bars(8, size=32, frames=36, angular_velocity=[-20.0, 20.0], seed=1)
    >>> ds["frames"].shape
    (8, 36, 32, 32)
    """
    n = _check_int("n", n, 0)
    size = _check_int("size", size, 8)
    n_frames = _check_int("frames", frames, 1)
    width = size / 8 if width is None else width
    length = 0.75 * size if length is None else length
    width = _check_real("width", width, lambda v: v > 0, "a positive number of pixels")
    length = _check_real("length", length, lambda v: v > 0, "a positive number of pixels")
    edge = _check_real("edge", edge, lambda v: v > 0, "a positive number of pixels")
    reach = math.hypot(length / 2, width / 2) + 3 * edge
    if reach > (size - 1) / 2:
        raise ValueError(
            f"the bar (length={length:g}, width={width:g}, edge={edge:g} px) does not fit in a "
            f"size={size} frame at every angle: need hypot(length/2, width/2) + 3*edge <= "
            f"(size - 1)/2 = {(size - 1) / 2:g}, got {reach:.3g}"
        )
    specs = _parse({"angular_velocity": angular_velocity, "initial_angle": initial_angle})
    specs[0].require(
        lambda v: abs(v) < 90, "within (-90, 90) deg/frame (a bar has a half-turn symmetry)"
    )
    ss = _seed_sequence(seed)

    Y, X = _grid(size)
    t = np.arange(n_frames, dtype=float)
    out = np.empty((n, n_frames, size, size), dtype=np.float32)
    labels = {s.name: np.empty(n) for s in specs}
    for i, rng in enumerate(_sequence_rngs(ss, n)):
        p = _draw(specs, rng)
        for k, v in p.items():
            labels[k][i] = v
        a = np.deg2rad(p["initial_angle"] + p["angular_velocity"] * t)[:, None, None]
        ca, sa = np.cos(a), np.sin(a)
        along = X * ca + Y * sa
        across = Y * ca - X * sa
        out[i] = _box(along, length, edge) * _box(across, width, edge)
    params = {
        "size": size,
        "width": width,
        "length": length,
        "edge": edge,
    }
    return _dataset(
        "rotating_bars",
        out,
        labels,
        ss=ss,
        specs=specs,
        parameters=params,
        description="a bar rotating about the frame centre",
    )


# ---------------------------------------------------------------------------------------------
# gratings
# ---------------------------------------------------------------------------------------------
def rotating_gratings(
    n: int,
    size: int = 32,
    frames: int = 36,
    *,
    angular_velocity=20.0,
    initial_angle=(0.0, 360.0),
    spatial_period=8.0,
    phase=(0.0, 2 * math.pi),
    contrast: float = 1.0,
    radius: float | None = None,
    seed=0,
) -> xr.Dataset:
    """Sequences of a sinusoidal grating in a circular aperture, rotating about the frame centre.

    With ``a(t) = initial_angle + angular_velocity*t`` (the orientation of the stripes, degrees
    counter-clockwise from +x) and ``n(t) = (-sin a, cos a)`` the unit normal to the stripes::

        frame(x, t) = 0.5 + 0.5 * contrast * A(r) * cos(2*pi * n(t).(x - c) / P + phase)

    with ``P`` the ``spatial_period``, ``c`` the frame centre, ``r = |x - c|`` and the aperture
    ``A(r) = erfc((r - radius)/sqrt(2))/2`` (a disk with a Gaussian edge of 1 px). Outside the
    aperture the frame is 0.5 (mean grey). The aperture is round, so each frame is the same
    continuous image rotated exactly.

    Parameters
    ----------
    n, size, frames, seed
        As in :func:`rotating_bars`.
    angular_velocity : float, (low, high) tuple or list
        Degrees per frame, counter-clockwise positive, within (-180, 180).
    initial_angle : float, (low, high) tuple or list
        Stripe orientation at frame 0, degrees (default uniform on [0, 360): with a phase, the
        grating turned by 180 degrees is a different image).
    spatial_period : float, (low, high) tuple or list
        Pixels per cycle, > 2 (the Nyquist limit).
    phase : float, (low, high) tuple or list
        Phase at the frame centre, radians.
    contrast : float
        Michelson contrast in (0, 1].
    radius : float, optional
        Aperture radius in pixels, default ``(size - 1)/2 - 2``.

    Returns
    -------
    xarray.Dataset
        ``frames`` (sequence, frame, y, x) float32 in [0, 1]; labels ``angular_velocity``,
        ``initial_angle``, ``spatial_period``, ``phase``.
    """
    n = _check_int("n", n, 0)
    size = _check_int("size", size, 8)
    n_frames = _check_int("frames", frames, 1)
    contrast = _check_real("contrast", contrast, lambda v: 0 < v <= 1, "in (0, 1]")
    half = (size - 1) / 2
    radius = half - 2 if radius is None else radius
    radius = _check_real(
        "radius", radius, lambda v: 0 < v <= half, f"in (0, (size - 1)/2 = {half:g}] pixels"
    )
    specs = _parse(
        {
            "angular_velocity": angular_velocity,
            "initial_angle": initial_angle,
            "spatial_period": spatial_period,
            "phase": phase,
        }
    )
    specs[0].require(lambda v: abs(v) < 180, "within (-180, 180) deg/frame")
    specs[2].require(lambda v: v > 2, "> 2 pixels (the Nyquist limit)")
    ss = _seed_sequence(seed)

    Y, X = _grid(size)
    aperture = 0.5 * erfc((np.hypot(X, Y) - radius) / np.sqrt(2.0))
    t = np.arange(n_frames, dtype=float)
    out = np.empty((n, n_frames, size, size), dtype=np.float32)
    labels = {s.name: np.empty(n) for s in specs}
    for i, rng in enumerate(_sequence_rngs(ss, n)):
        p = _draw(specs, rng)
        for k, v in p.items():
            labels[k][i] = v
        a = np.deg2rad(p["initial_angle"] + p["angular_velocity"] * t)[:, None, None]
        normal = Y * np.cos(a) - X * np.sin(a)
        wave = np.cos(2 * np.pi * normal / p["spatial_period"] + p["phase"])
        out[i] = 0.5 + 0.5 * contrast * aperture * wave
    params = {
        "size": size,
        "contrast": contrast,
        "radius": radius,
    }
    return _dataset(
        "rotating_gratings",
        out,
        labels,
        ss=ss,
        specs=specs,
        parameters=params,
        description="a sinusoidal grating in a circular aperture rotating about the frame centre",
    )


def drifting_gratings(
    n: int,
    size: int = 32,
    frames: int = 20,
    *,
    direction=(0.0, 360.0),
    spatial_period=8.0,
    speed=None,
    temporal_frequency=None,
    phase=(0.0, 2 * math.pi),
    contrast: float = 1.0,
    periodic: bool = False,
    seed=0,
) -> xr.Dataset:
    """Sequences of full-frame sinusoidal gratings drifting along their normal.

    Following the project's phase convention (phase increases with time, ``k = -grad phi``)::

        frame(x, t) = 0.5 + 0.5 * contrast * cos(2*pi*f*t - k.x + phase)

    with ``k = 2*pi/spatial_period * (cos d, sin d)``, ``d`` the drift ``direction`` (degrees
    counter-clockwise from +x), ``x`` the pixel coordinates (origin at pixel (0, 0)) and
    ``f = speed/spatial_period`` (cycles/frame). The grating moves towards ``d`` by ``speed``
    pixels per frame; its phase at pixel (0, 0) advances by ``2*pi*speed/spatial_period`` per
    frame. Labels ``orientation = (d + 90) mod 180`` give the orientation of the stripes.

    Parameters
    ----------
    n, size, frames, seed
        As in :func:`rotating_bars`.
    direction : float, (low, high) tuple or list
        Drift direction, degrees (default uniform on [0, 360)).
    spatial_period : float, (low, high) tuple or list
        Pixels per cycle, > 2.
    speed : float, (low, high) tuple or list, optional
        Pixels per frame (default 1.0 when ``temporal_frequency`` is not given).
    temporal_frequency : float, (low, high) tuple or list, optional
        Cycles per frame, instead of ``speed`` (then ``speed = temporal_frequency *
        spatial_period``). Either way ``|f| < 0.5`` cycles/frame, so the drift is not aliased.
    phase : float, (low, high) tuple or list
        Phase at pixel (0, 0) at frame 0, radians.
    contrast : float
        Michelson contrast in (0, 1].
    periodic : bool
        Seamless on the ``size x size`` torus: the wave vector is rounded to the nearest one with
        an integer number of cycles along x and along y, and the labels ``direction`` and
        ``spatial_period`` hold the rounded values actually drawn.

    Returns
    -------
    xarray.Dataset
        ``frames`` (sequence, frame, y, x) float32 in [0, 1]; labels ``direction``,
        ``orientation`` (deg), ``spatial_period`` (px), ``speed`` (px/frame),
        ``temporal_frequency`` (cycles/frame), ``phase`` (rad).
    """
    n = _check_int("n", n, 0)
    size = _check_int("size", size, 8)
    n_frames = _check_int("frames", frames, 1)
    contrast = _check_real("contrast", contrast, lambda v: 0 < v <= 1, "in (0, 1]")
    if not isinstance(periodic, bool):
        raise ValueError(f"periodic must be True or False; got {periodic!r}")
    if speed is not None and temporal_frequency is not None:
        raise ValueError(
            "give speed (px/frame) or temporal_frequency (cycles/frame), not both; got "
            f"speed={speed!r}, temporal_frequency={temporal_frequency!r}"
        )
    by_frequency = temporal_frequency is not None
    rate_name = "temporal_frequency" if by_frequency else "speed"
    rate = temporal_frequency if by_frequency else (1.0 if speed is None else speed)
    specs = _parse(
        {"direction": direction, "spatial_period": spatial_period, rate_name: rate, "phase": phase}
    )
    specs[1].require(lambda v: v > 2, "> 2 pixels (the Nyquist limit)")
    if by_frequency:
        specs[2].require(lambda v: abs(v) < 0.5, "within (-0.5, 0.5) cycles/frame (no aliasing)")
    ss = _seed_sequence(seed)

    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    t = np.arange(n_frames, dtype=float)[:, None, None]
    out = np.empty((n, n_frames, size, size), dtype=np.float32)
    names = ("direction", "orientation", "spatial_period", "speed", "temporal_frequency", "phase")
    labels = {k: np.empty(n) for k in names}
    for i, rng in enumerate(_sequence_rngs(ss, n)):
        p = _draw(specs, rng)
        d, period = np.deg2rad(p["direction"]), p["spatial_period"]
        kx, ky = 2 * np.pi / period * np.cos(d), 2 * np.pi / period * np.sin(d)
        if periodic:
            mx, my = round(size * kx / (2 * np.pi)), round(size * ky / (2 * np.pi))
            if mx == 0 and my == 0:
                raise ValueError(
                    f"spatial_period={period:g} px is too long for a periodic grating on a "
                    f"size={size} torus (it rounds to zero cycles); use spatial_period <= {size}"
                )
            kx, ky = 2 * np.pi * mx / size, 2 * np.pi * my / size
            period = size / math.hypot(mx, my)
            d = math.atan2(my, mx)
            if period <= 2:
                raise ValueError(
                    f"spatial_period={p['spatial_period']:g} px rounds to {period:.4g} px on the "
                    f"size={size} torus, not above the Nyquist limit of 2 px"
                )
        if by_frequency:
            f = p["temporal_frequency"]
            v = f * period
        else:
            v = p["speed"]
            f = v / period
        if not abs(f) < 0.5:
            raise ValueError(
                f"speed={v:g} px/frame with spatial_period={period:g} px is "
                f"{f:g} cycles/frame; the drift is aliased unless |speed| < spatial_period/2"
            )
        direction_deg = float(np.mod(np.rad2deg(d), 360.0))
        values = (direction_deg, np.mod(direction_deg + 90.0, 180.0), period, v, f, p["phase"])
        for k, val in zip(names, values, strict=True):
            labels[k][i] = val
        out[i] = 0.5 + 0.5 * contrast * np.cos(2 * np.pi * f * t - (kx * xx + ky * yy) + p["phase"])
    params = {
        "size": size,
        "contrast": contrast,
        "periodic": periodic,
    }
    return _dataset(
        "drifting_gratings",
        out,
        labels,
        ss=ss,
        specs=specs,
        parameters=params,
        description="full-frame sinusoidal gratings drifting along their normal",
    )


# ---------------------------------------------------------------------------------------------
# translating blobs
# ---------------------------------------------------------------------------------------------
def _periodic_gaussian(coord: np.ndarray, centre: np.ndarray, sigma: float, period: float):
    """``sum_m exp(-(coord - centre - m*period)**2 / (2 sigma**2))`` over all periodic images,
    divided by its peak value; ``centre`` (...,) against ``coord`` (S,) gives (..., S)."""
    d = np.mod(coord - np.asarray(centre)[..., None], period)
    m_max = int(math.ceil(8 * sigma / period)) + 1
    m = np.arange(-m_max, m_max + 2) * period
    g = np.exp(-((d[..., None] - m) ** 2) / (2 * sigma**2)).sum(axis=-1)
    peak = np.exp(-(m**2) / (2 * sigma**2)).sum()
    return g / peak


def translating_blobs(
    n: int,
    size: int = 32,
    frames: int = 20,
    *,
    velocity_x=(-2.0, 2.0),
    velocity_y=(-2.0, 2.0),
    sigma=2.0,
    n_blobs: int = 1,
    seed=0,
) -> xr.Dataset:
    """Sequences of Gaussian blobs translating with wrap-around on the ``size x size`` torus.

    Each blob is a periodic Gaussian (the sum over all its periodic images, scaled to peak 1)
    evaluated analytically at every frame, so sub-pixel motion is exact -- no image is shifted
    or resampled. All blobs of a sequence move with the same velocity (the sequence is one
    translation of its first frame); overlapping blobs combine as ``1 - prod(1 - g_b)``, which
    stays in [0, 1] and is exactly one Gaussian for a single blob.

    Parameters
    ----------
    n, size, frames, seed
        As in :func:`rotating_bars`.
    velocity_x, velocity_y : float, (low, high) tuple or list
        Pixels per frame (default uniform on [-2, 2] each).
    sigma : float, (low, high) tuple or list
        Blob standard deviation in pixels, in [0.5, size/4].
    n_blobs : int
        Blobs per sequence (>= 1); their centres at frame 0 are uniform on the torus.

    Returns
    -------
    xarray.Dataset
        ``frames`` (sequence, frame, y, x) float32 in [0, 1]; labels ``velocity_x``,
        ``velocity_y`` (px/frame), ``sigma`` (px), and ``blob_x``, ``blob_y`` (px, dims
        ``(sequence, blob)``): the centres at frame 0. At frame ``t`` a centre is at
        ``(blob_x + velocity_x*t) mod size``.
    """
    n = _check_int("n", n, 0)
    size = _check_int("size", size, 8)
    n_frames = _check_int("frames", frames, 1)
    n_blobs = _check_int("n_blobs", n_blobs, 1)
    specs = _parse({"velocity_x": velocity_x, "velocity_y": velocity_y, "sigma": sigma})
    specs[2].require(lambda v: 0.5 <= v <= size / 4, f"in [0.5, size/4 = {size / 4:g}] pixels")
    ss = _seed_sequence(seed)

    coord = np.arange(size, dtype=float)
    t = np.arange(n_frames, dtype=float)
    out = np.empty((n, n_frames, size, size), dtype=np.float32)
    labels = {s.name: np.empty(n) for s in specs}
    bx, by = np.empty((n, n_blobs)), np.empty((n, n_blobs))
    for i, rng in enumerate(_sequence_rngs(ss, n)):
        p = _draw(specs, rng)
        for k, v in p.items():
            labels[k][i] = v
        centres = rng.uniform(0.0, size, size=(n_blobs, 2))
        bx[i], by[i] = centres[:, 0], centres[:, 1]
        cx = centres[:, 0, None] + p["velocity_x"] * t  # (blob, frame)
        cy = centres[:, 1, None] + p["velocity_y"] * t
        gx = _periodic_gaussian(coord, cx, p["sigma"], size)  # (blob, frame, x)
        gy = _periodic_gaussian(coord, cy, p["sigma"], size)  # (blob, frame, y)
        dark = np.prod(1.0 - gy[..., :, None] * gx[..., None, :], axis=0)
        out[i] = 1.0 - dark
    params = {
        "size": size,
        "n_blobs": n_blobs,
    }
    labs = dict(labels)
    labs["blob_x"] = (("sequence", "blob"), bx)
    labs["blob_y"] = (("sequence", "blob"), by)
    return _dataset(
        "translating_blobs",
        out,
        labs,
        ss=ss,
        specs=specs,
        parameters=params,
        description="Gaussian blobs translating with wrap-around on the torus",
    )


# ---------------------------------------------------------------------------------------------
# user images
# ---------------------------------------------------------------------------------------------
def _check_images(images) -> np.ndarray:
    try:
        arr = np.asarray(images)
    except Exception as exc:  # ragged lists
        raise ValueError(
            f"images must be an array of shape (n, h, w); could not convert it: {exc}"
        ) from exc
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"images must hold real numbers (bool, integer or float); got dtype {arr.dtype}"
        )
    if arr.ndim != 3:
        hint = " (a single image? pass images[None])" if arr.ndim == 2 else ""
        raise ValueError(f"images must have shape (n, h, w); got shape {arr.shape}{hint}")
    if arr.shape[0] < 1 or arr.shape[1] < 2 or arr.shape[2] < 2:
        raise ValueError(
            f"images must have shape (n, h, w) with n >= 1, h, w >= 2; got {arr.shape}"
        )
    arr = arr.astype(float)
    if not np.isfinite(arr).all():
        raise ValueError("images must be finite; found NaN or inf")
    return arr


def transformed_images(
    images,
    n: int | None = None,
    *,
    kind: str = "rotate",
    frames: int = 20,
    angular_velocity=None,
    initial_angle=None,
    velocity_x=None,
    velocity_y=None,
    order: int = 3,
    mode: str = "grid-constant",
    pad: int = 0,
    normalize: bool = True,
    clip: bool = True,
    image_labels=None,
    seed=0,
) -> xr.Dataset:
    """Sequences of user images rotated or translated frame by frame.

    Every frame is computed from the source image directly (never from the previous frame), so
    errors do not accumulate and a total turn of 360 degrees, or a shift by a whole frame width,
    returns the source image.

    * ``kind="rotate"``: frame ``t`` is the image rotated counter-clockwise (in the ``(x, y)``
      frame, ``origin="lower"``) by ``initial_angle + angular_velocity*t`` degrees about its centre
      ``((w - 1)/2, (h - 1)/2)``, by :func:`scipy.ndimage.affine_transform` with spline
      interpolation of order ``order`` and boundary ``mode`` (default ``"grid-constant"``: outside
      the image is 0; ``"grid-wrap"`` rotates the periodic tiling).
    * ``kind="translate"``: frame ``t`` is the image shifted by ``(velocity_x*t, velocity_y*t)``
      pixels with wrap-around, by a phase ramp on its 2-D FFT (exact for periodic band-limited
      images; whole-pixel shifts equal :func:`numpy.roll`). At even sizes the Nyquist terms of a
      fractional shift are kept real (the real part of the inverse FFT).

    Parameters
    ----------
    images : array_like, shape (n_images, h, w)
        Real-valued images. With ``normalize`` they are mapped to [0, 1] by one global
        ``(x - min)/(max - min)``, which keeps relative intensities between images; otherwise they
        must already lie in [0, 1].
    n : int, optional
        Number of sequences. Default: one per image, in order. Given, each sequence draws its
        image uniformly (label ``image_index``).
    kind : {"rotate", "translate"}
    frames : int
        Frames per sequence.
    angular_velocity : float, (low, high) tuple or list
        ``kind="rotate"`` only: degrees per frame (default 20).
    initial_angle : float, (low, high) tuple or list
        ``kind="rotate"`` only: rotation of frame 0, degrees (default 0: frame 0 is the image).
    velocity_x, velocity_y : float, (low, high) tuple or list
        ``kind="translate"`` only: pixels per frame (default uniform on [-2, 2] each).
    order : int
        Spline order 0-5 for rotation.
    mode : str
        Boundary mode of :func:`scipy.ndimage.affine_transform` for rotation.
    pad : int
        Zeros added on each side of every image (after normalization), e.g. to keep the corners
        of a rotating image in the frame, or to give translated images room on the torus.
    normalize : bool
        Map the image set to [0, 1] (see ``images``).
    clip : bool
        Clip frames to [0, 1]: spline and Fourier interpolation ring (overshoot) near sharp edges.
        ``clip=False`` keeps the transformation linear.
    image_labels : array_like, shape (n_images,), optional
        A label per image (e.g. the digit), stored per sequence as ``image_label``.
    seed : int, numpy.random.SeedSequence or None
        Seed (recorded in ``attrs``).

    Returns
    -------
    xarray.Dataset
        ``frames`` (sequence, frame, y, x) float32; labels ``image_index`` (and ``image_label``),
        plus ``angular_velocity``, ``initial_angle`` (rotate) or ``velocity_x``, ``velocity_y``
        (translate). ``attrs["images_sha256"]`` fingerprints the normalized source images.
    """
    imgs = _check_images(images)
    n_images = imgs.shape[0]
    one_per_image = n is None
    n = n_images if one_per_image else _check_int("n", n, 0)
    n_frames = _check_int("frames", frames, 1)
    pad = _check_int("pad", pad, 0)
    if kind not in ("rotate", "translate"):
        raise ValueError(f"kind must be 'rotate' or 'translate'; got {kind!r}")
    if not isinstance(normalize, bool) or not isinstance(clip, bool):
        raise ValueError(f"normalize and clip must be True or False; got {normalize!r}, {clip!r}")
    if image_labels is not None:
        image_labels = np.asarray(image_labels)
        if image_labels.shape != (n_images,):
            raise ValueError(
                f"image_labels must have shape (n_images,) = ({n_images},); got "
                f"{image_labels.shape}"
            )
    rotation = {"angular_velocity": angular_velocity, "initial_angle": initial_angle}
    translation = {"velocity_x": velocity_x, "velocity_y": velocity_y}
    if kind == "rotate":
        given = [k for k, v in translation.items() if v is not None]
        values = {
            "angular_velocity": 20.0 if angular_velocity is None else angular_velocity,
            "initial_angle": 0.0 if initial_angle is None else initial_angle,
        }
        order = _check_int("order", order, 0)
        if order > 5:
            raise ValueError(f"order must be a spline order in 0..5; got {order}")
        if mode not in _ROTATION_MODES:
            raise ValueError(f"mode must be one of {', '.join(_ROTATION_MODES)}; got {mode!r}")
    else:
        given = [k for k, v in rotation.items() if v is not None]
        values = {k: (-2.0, 2.0) if v is None else v for k, v in translation.items()}
    if given:
        raise ValueError(f"{', '.join(given)} do(es) not apply to kind={kind!r}")

    lo, hi = float(imgs.min()), float(imgs.max())
    if normalize:
        if hi == lo:
            raise ValueError(f"images are constant (all {lo:g}); cannot normalize them to [0, 1]")
        imgs = (imgs - lo) / (hi - lo)
    elif lo < 0 or hi > 1:
        raise ValueError(
            f"with normalize=False, images must lie in [0, 1]; got values in [{lo:g}, {hi:g}]"
        )
    if pad:
        imgs = np.pad(imgs, ((0, 0), (pad, pad), (pad, pad)))
    h, w = imgs.shape[1:]

    index_spec = _Spec("image_index", "choice", tuple(range(n_images)))
    specs = _parse(values)
    ss = _seed_sequence(seed)
    t = np.arange(n_frames, dtype=float)
    out = np.empty((n, n_frames, h, w), dtype=np.float32)
    index = np.empty(n, dtype=np.int64)
    labels = {s.name: np.empty(n) for s in specs}
    spectra: dict[int, np.ndarray] = {}
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.fftfreq(w)[None, :]
    for i, rng in enumerate(_sequence_rngs(ss, n)):
        p = _draw([index_spec, *specs], rng)
        drawn = int(p.pop("image_index"))
        j = i if one_per_image else drawn
        index[i] = j
        for k, v in p.items():
            labels[k][i] = v
        img = imgs[j]
        if kind == "rotate":
            for k, angle in enumerate(np.deg2rad(p["initial_angle"] + p["angular_velocity"] * t)):
                c, s = math.cos(angle), math.sin(angle)
                # output (row, col) -> input: the inverse rotation; rows are y, columns x
                matrix = np.array([[c, -s], [s, c]])
                offset = centre - matrix @ centre
                out[i, k] = ndimage.affine_transform(
                    img, matrix, offset=offset, order=order, mode=mode, cval=0.0
                )
        else:
            if j not in spectra:
                spectra[j] = np.fft.fft2(img)
            sx = p["velocity_x"] * t[:, None, None]
            sy = p["velocity_y"] * t[:, None, None]
            ramp = np.exp(-2j * np.pi * (kx * sx + ky * sy))
            out[i] = np.fft.ifft2(spectra[j] * ramp).real
    if clip:
        np.clip(out, 0.0, 1.0, out=out)
    labs = {"image_index": ("sequence", index)}
    if image_labels is not None:
        labs["image_label"] = ("sequence", image_labels[index])
    labs.update(labels)
    params = {
        "kind": kind,
        "pad": pad,
        "normalize": normalize,
        "clip": clip,
        **({"order": order, "mode": mode} if kind == "rotate" else {}),
    }
    return _dataset(
        "transformed_images",
        out,
        labs,
        ss=ss,
        specs=specs,
        parameters=params,
        description=f"user images ({kind}d frame by frame)",
        extra_attrs={
            "transform": kind,
            "n_images": int(n_images),
            "one_per_image": one_per_image,
            "images_sha256": hashlib.sha256(np.ascontiguousarray(imgs).tobytes()).hexdigest(),
        },
    )


def digits(*, zoom: float = 1.0, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8 x 8 handwritten digits as images in [0, 1], for :func:`transformed_images`.

    scikit-learn is not a wavesim dependency; this example needs it installed.

    Parameters
    ----------
    zoom : float
        Upsampling factor (> 0; bilinear, :func:`scipy.ndimage.zoom` with ``order=1``): ``zoom=4``
        gives 32 x 32 digits.
    pad : int
        Zeros added on each side after zooming.

    Returns
    -------
    images : numpy.ndarray, shape (1797, h, w), float64 in [0, 1]
        The digits (raw values 0-16 divided by 16).
    labels : numpy.ndarray, shape (1797,), int
        The digit shown.

    Examples
    --------
    >>> images, labels = digits(zoom=3, pad=4)  # doctest: +SKIP
    >>> ds = transformed_images(images[:100], image_labels=labels[:100], pad=0)  # doctest: +SKIP
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "wavesim.bridge.digits() loads scikit-learn's 8x8 digits and needs scikit-learn, "
            "which is not a wavesim dependency: pip install scikit-learn (or pass your own "
            "(n, h, w) image array to transformed_images)"
        ) from exc
    zoom = _check_real("zoom", zoom, lambda v: v > 0, "a positive number")
    pad = _check_int("pad", pad, 0)
    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=float) / 16.0
    if zoom != 1.0:
        images = np.clip(ndimage.zoom(images, (1.0, zoom, zoom), order=1), 0.0, 1.0)
    if pad:
        images = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
    return images, np.asarray(bunch.target, dtype=np.int64)


#: The generators by name (the ``kind`` stored in each dataset's attrs).
DATASETS: dict[str, Callable[..., xr.Dataset]] = {
    "rotating_bars": rotating_bars,
    "rotating_gratings": rotating_gratings,
    "drifting_gratings": drifting_gratings,
    "translating_blobs": translating_blobs,
    "transformed_images": transformed_images,
}


# ---------------------------------------------------------------------------------------------
# splits
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Splits:
    """Train, validation and test datasets (each an :class:`xarray.Dataset` as returned by the
    generators, with ``attrs["split"]``). Index by name (``splits["test"]``) or iterate over
    :meth:`items`."""

    train: xr.Dataset
    validation: xr.Dataset
    test: xr.Dataset

    def __getitem__(self, name: str) -> xr.Dataset:
        if name not in SPLIT_NAMES:
            raise KeyError(f"no split {name!r}; the splits are {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(SPLIT_NAMES)

    def items(self) -> Iterator[tuple[str, xr.Dataset]]:
        """``(name, dataset)`` pairs in the order train, validation, test."""
        return ((name, getattr(self, name)) for name in SPLIT_NAMES)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={ds.sizes['sequence']}" for k, ds in self.items())
        return f"Splits({sizes} sequences of {self.train.attrs.get('kind', '?')})"

    def to_zarr(self, path, *, overwrite: bool = False) -> Path:
        """Write the three splits as groups ``train``, ``validation``, ``test`` of one zarr v3
        store. The root says ``complete=False`` until all three are written.

        Returns the path. Read it back with :func:`open_splits`.
        """
        import zarr

        from wavesim.store import consolidate, prepare_path

        path = Path(path)
        prepare_path(path, overwrite)
        root_attrs = {"wavesim_splits": 1, "splits": list(SPLIT_NAMES), "complete": False}
        root = zarr.open_group(str(path), mode="w-", zarr_format=3, attributes=root_attrs)
        for name, ds in self.items():
            ds.to_zarr(str(path), group=name, mode="w-", zarr_format=3, consolidated=False)
        root.attrs["complete"] = True
        consolidate(path)
        return path


def open_splits(path) -> Splits:
    """Open the splits written by :meth:`Splits.to_zarr` (lazily, no dask needed).

    Warns when the store is partial (writing it was interrupted); raises ``FileNotFoundError``
    for a missing path and ``ValueError`` for a store that is not a set of splits.
    """
    import zarr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no dataset splits at {path}: the path does not exist")
    try:
        root = zarr.open_group(str(path), mode="r")
    except Exception as exc:
        raise ValueError(f"{path} is not a zarr store of dataset splits ({exc})") from exc
    attrs = root.attrs.asdict()
    if "wavesim_splits" not in attrs:
        raise ValueError(
            f"{path} is a zarr store but not dataset splits (no 'wavesim_splits' attr)"
        )
    if not attrs.get("complete", False):
        warnings.warn(
            f"dataset splits at {path} are partial (complete=False): writing them was interrupted",
            UserWarning,
            stacklevel=2,
        )
    members = set(root.group_keys())
    out = {}
    for name in SPLIT_NAMES:
        if name not in members:
            raise ValueError(f"{path} has no {name!r} split")
        out[name] = xr.open_zarr(str(path), group=name, chunks=None, zarr_format=3)
    return Splits(**out)


def make_splits(
    generator,
    n_train: int,
    n_validation: int,
    n_test: int,
    *,
    seed=0,
    split_params: Mapping[str, Mapping] | None = None,
    **params,
) -> Splits:
    """Train, validation and test datasets from one generator, with independent seeds.

    The root :class:`numpy.random.SeedSequence` of ``seed`` spawns one child per split
    (``spawn_key`` 0, 1, 2 for train, validation, test), so each split depends only on the seed
    and its own arguments: changing ``n_train`` leaves validation and test unchanged, and the
    first ``m`` sequences of a split do not depend on its size.

    Parameters
    ----------
    generator : str or callable
        A name in :data:`DATASETS` (``"rotating_bars"``, ...) or a generator taking ``n`` and
        ``seed`` keywords.
    n_train, n_validation, n_test : int
        Sequences per split (>= 0).
    seed : int, numpy.random.SeedSequence or None
        Root seed.
    split_params : mapping, optional
        Per-split overrides of ``params``, keyed by ``"train"``, ``"validation"`` or ``"test"``
        -- e.g. held-out transformation speeds for a generalization test::

            make_splits("rotating_bars", 200, 50, 50, angular_velocity=[10.0, 30.0],
                        split_params={"test": {"angular_velocity": [15.0, 25.0]}})

        or disjoint image sets for :func:`transformed_images` (``{"test": {"images": held_out}}``).
    **params
        Arguments of the generator shared by all splits.

    Returns
    -------
    Splits
        Each dataset has ``attrs["split"]`` set to its name.
    """
    if isinstance(generator, str):
        if generator not in DATASETS:
            raise ValueError(
                f"unknown dataset generator {generator!r}; expected one of {', '.join(DATASETS)}"
            )
        generator = DATASETS[generator]
    elif not callable(generator):
        raise ValueError(f"generator must be a name in DATASETS or a callable; got {generator!r}")
    counts = {
        "train": _check_int("n_train", n_train, 0),
        "validation": _check_int("n_validation", n_validation, 0),
        "test": _check_int("n_test", n_test, 0),
    }
    clash = sorted({"n", "seed"} & set(params))
    if clash:
        raise ValueError(
            f"make_splits sets {' and '.join(clash)} for each split itself; use n_train/"
            f"n_validation/n_test and seed=..."
        )
    split_params = dict(split_params or {})
    for name, extra in split_params.items():
        if name not in SPLIT_NAMES:
            raise ValueError(
                f"split_params has an unknown split {name!r}; expected keys among "
                f"{', '.join(SPLIT_NAMES)}"
            )
        if not isinstance(extra, Mapping):
            raise ValueError(f"split_params[{name!r}] must be a mapping of generator arguments")
        clash = sorted({"n", "seed"} & set(extra))
        if clash:
            raise ValueError(f"split_params[{name!r}] cannot set {' and '.join(clash)}")
    root = _seed_sequence(seed)
    out = {}
    for k, name in enumerate(SPLIT_NAMES):
        child = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, k))
        ds = generator(n=counts[name], seed=child, **{**params, **split_params.get(name, {})})
        ds.attrs["split"] = name
        out[name] = ds
    return Splits(**out)


def context_target(data, observe: int, horizon: int | None = None):
    """Split sequences into the ``observe`` first frames (context) and the ``horizon`` frames
    after them (targets).

    Parameters
    ----------
    data : xarray.Dataset, xarray.DataArray or array_like
        With a ``frame`` dimension, or an array whose frame axis is the third from last
        (``(..., frame, y, x)``).
    observe : int
        Frames observed, K >= 1.
    horizon : int, optional
        Frames to forecast, H >= 1; default all the frames after the context.

    Returns
    -------
    context, target
        ``data`` restricted to frames ``[0, K)`` and ``[K, K + H)``, of the same type as
        ``data``; xarray objects keep their ``frame`` coordinate (target frames are numbered
        ``K, K + 1, ...``).
    """
    is_xr = isinstance(data, xr.Dataset | xr.DataArray)
    if is_xr:
        if "frame" not in data.dims:
            raise ValueError(f"data has no 'frame' dimension; its dims are {tuple(data.dims)}")
        n_frames = data.sizes["frame"]
    else:
        data = np.asarray(data)
        if data.ndim < 3:
            raise ValueError(
                f"data must be an array (..., frame, y, x) with at least 3 dims; got shape "
                f"{data.shape}"
            )
        n_frames = data.shape[-3]
    observe = _check_int("observe", observe, 1)
    if horizon is None:
        horizon = n_frames - observe
        if horizon < 1:
            raise ValueError(
                f"observe={observe} leaves no frame to forecast in sequences of {n_frames} frames"
            )
    horizon = _check_int("horizon", horizon, 1)
    if observe + horizon > n_frames:
        raise ValueError(
            f"observe + horizon = {observe} + {horizon} = {observe + horizon} exceeds the "
            f"{n_frames} frames of each sequence"
        )
    if is_xr:
        return (
            data.isel(frame=slice(0, observe)),
            data.isel(frame=slice(observe, observe + horizon)),
        )
    return data[..., :observe, :, :], data[..., observe : observe + horizon, :, :]
