"""Orientation-pinwheel maps: Gaussian random fields, an analytic crystal, measured arrays; Λ.

An orientation map is an :class:`xarray.DataArray` of preferred orientations ``theta`` in
``[0, pi)`` radians (``attrs["units"] = "rad"``) with dims ``("y", "x")`` and pixel-centre
coordinates ``x_j = j*dx``, ``y_i = i*dx`` in mm. It is handled as the complex field
``z = |z| exp(2i theta)``. Where ``|z|`` is known (the generators here, or a measured selectivity
passed to :func:`orientation_map_from_array`) it is stored as the auxiliary coordinate
``"amplitude"`` (dims ``("y", "x")``); without it ``|z| = 1`` is assumed.

Column spacing (project convention)
-----------------------------------
``Lambda = 2*pi / <|k|>``, with ``<|k|>`` the mean wavenumber (rad/mm) weighted by the power
spectrum ``|FFT(z - mean z)|**2``, ``k = 0`` excluded. Pinwheel densities are reported per
``Lambda**2``.

Note that ``Lambda`` depends on ``|z|``: the unit phasor ``exp(2i theta)`` of a Gaussian random
map has a ``k**-4`` power tail from the pinwheel singularities, and its ``Lambda`` comes out about
20 % short (0.78 of the generating wavelength at 12 px per wavelength, depending on resolution).
Keep the ``"amplitude"`` coordinate wherever it exists.
"""

from __future__ import annotations

import numbers

import numpy as np
import xarray as xr

__all__ = [
    "estimate_wavelength",
    "expected_pinwheel_density",
    "orientation_field",
    "orientation_map_from_array",
    "pinwheel_crystal",
    "random_orientation_map",
]

#: Minimum pixels per wavelength accepted by the generators.
MIN_PX_PER_WAVELENGTH = 4.0


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------
def _check_shape(shape):
    try:
        ny, nx = (int(n) for n in shape)
        ok = all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in shape)
    except (TypeError, ValueError):
        ok = False
    if not ok or len(tuple(shape)) != 2 or ny < 2 or nx < 2:
        raise ValueError(f"shape must be a pair of integers (ny, nx), each >= 2; got {shape!r}")
    return ny, nx


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    return value


def _check_generator_args(shape, wavelength, dx):
    ny, nx = _check_shape(shape)
    wavelength = _check_positive("wavelength", wavelength)
    dx = _check_positive("dx", dx)
    if wavelength / dx < MIN_PX_PER_WAVELENGTH:
        raise ValueError(
            f"wavelength must span at least {MIN_PX_PER_WAVELENGTH:g} pixels (wavelength/dx); got "
            f"wavelength={wavelength:g} mm, dx={dx:g} mm ({wavelength / dx:.3g} px per wavelength)"
        )
    if min(nx, ny) * dx < wavelength:
        raise ValueError(
            f"shape {shape!r} with dx={dx:g} mm spans less than one wavelength "
            f"({wavelength:g} mm) along at least one axis"
        )
    return ny, nx, wavelength, dx


def _wrap_theta(theta):
    """Wrap angles into [0, pi) (NaN stays NaN)."""
    out = np.mod(theta, np.pi)
    # np.mod can return exactly pi for tiny negative inputs
    return np.where(out >= np.pi, 0.0, out)


def _make_map(theta, dx, attrs, amplitude=None):
    ny, nx = theta.shape
    coords = {
        "y": ("y", np.arange(ny) * dx, {"units": "mm"}),
        "x": ("x", np.arange(nx) * dx, {"units": "mm"}),
    }
    if amplitude is not None:
        coords["amplitude"] = (
            ("y", "x"),
            amplitude,
            {"long_name": "|z| of z = |z| exp(2i theta)", "units": "1"},
        )
    base = {"units": "rad", "long_name": "preferred orientation"}
    return xr.DataArray(
        theta, dims=("y", "x"), coords=coords, name="theta", attrs={**base, **attrs}
    )


# ---------------------------------------------------------------------------------------------
# spectra
# ---------------------------------------------------------------------------------------------
def _k_grids(ny, nx, dx):
    kx = 2 * np.pi * np.fft.fftfreq(nx, d=dx)
    ky = 2 * np.pi * np.fft.fftfreq(ny, d=dx)
    kxx, kyy = np.meshgrid(kx, ky)  # [y, x]
    return kxx, kyy, np.hypot(kxx, kyy)


def _thin_shell(kabs, k0, dk):
    """Shell ``c - dk/2 <= |k| < c + dk/2`` whose mean |k| is closest to ``k0``.

    The centre ``c`` is searched in ``[k0 - dk/2, k0 + dk/2]``; returns a boolean mask.
    """
    h = 0.5 * dk
    r = np.sort(kabs[np.abs(kabs - k0) <= 2 * h + 1e-12 * k0].ravel())
    if r.size == 0:
        return np.zeros(kabs.shape, dtype=bool)
    csum = np.concatenate([[0.0], np.cumsum(r)])
    centres = k0 + h * np.linspace(-1.0, 1.0, 401)
    lo = np.searchsorted(r, centres - h, side="left")
    hi = np.searchsorted(r, centres + h, side="left")
    count = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (csum[hi] - csum[lo]) / count
    err = np.where(count > 0, np.abs(mean - k0), np.inf)
    if not np.isfinite(err).any():
        return np.zeros(kabs.shape, dtype=bool)
    # best mean; ties broken by the centre closest to k0
    tied = np.flatnonzero(err <= err.min() + 1e-12 * k0)
    best = tied[np.argmin(np.abs(centres[tied] - k0))]
    c = centres[best]
    return (kabs >= c - h) & (kabs < c + h)


def _ring_power(ny, nx, wavelength, dx, spectrum_width):
    """Power per discrete k-vector of the generator's spectrum, normalised to sum 1 ([y, x])."""
    kxx, kyy, kabs = _k_grids(ny, nx, dx)
    k0 = 2 * np.pi / wavelength
    if spectrum_width == 0:
        dk = 2 * np.pi / (min(nx, ny) * dx)
        power = _thin_shell(kabs, k0, dk).astype(float)
    else:
        power = np.exp(-((kabs - k0) ** 2) / (2 * (spectrum_width * k0) ** 2))
    power[0, 0] = 0.0
    total = power.sum()
    if not total > 0:
        raise ValueError(
            f"the spectral ring at wavelength={wavelength:g} mm holds no k-vectors of the "
            f"{ny} x {nx} torus with dx={dx:g} mm; use a larger shape or spectrum_width > 0"
        )
    return power / total, kxx, kyy, kabs


def _check_width(spectrum_width):
    if isinstance(spectrum_width, bool) or not isinstance(spectrum_width, numbers.Real):
        raise ValueError(f"spectrum_width must be a finite number >= 0; got {spectrum_width!r}")
    spectrum_width = float(spectrum_width)
    if not (np.isfinite(spectrum_width) and spectrum_width >= 0):
        raise ValueError(f"spectrum_width must be a finite number >= 0; got {spectrum_width!r}")
    return spectrum_width


def expected_pinwheel_density(shape, wavelength, *, dx=1.0, spectrum_width=0.0):
    """Expected pinwheel density (per Λ²) of :func:`random_orientation_map` with these arguments.

    Computed from the discrete spectrum ``P(k)`` the generator actually uses. By the Kac-Rice
    formula the zeros of a stationary circular complex Gaussian field have density
    ``sqrt(det K) / (2*pi)`` per unit area, with ``K = sum P k k^T / sum P``; with
    ``Lambda = 2*pi / <|k|>`` this is ``2*pi*sqrt(det K) / <|k|>**2`` per ``Lambda**2``, which
    equals ``pi <k^2> / <|k|>^2`` for an isotropic spectrum (and ``pi`` for a thin ring).

    Parameters
    ----------
    shape : (int, int)
        ``(ny, nx)`` of the map.
    wavelength : float
        Generating wavelength (mm), as passed to :func:`random_orientation_map`.
    dx : float, default 1.0
        Pixel spacing (mm).
    spectrum_width : float, default 0.0
        Relative width of the Gaussian ring (0 = thin ring).

    Returns
    -------
    float
        Expected pinwheels per ``Lambda**2`` of the continuous field. Plaquette counting on the
        grid approaches it when there are >= 12 px per wavelength.
    """
    ny, nx, wavelength, dx = _check_generator_args(shape, wavelength, dx)
    spectrum_width = _check_width(spectrum_width)
    power, kxx, kyy, kabs = _ring_power(ny, nx, wavelength, dx, spectrum_width)
    kmean = np.sum(power * kabs)
    cxx = np.sum(power * kxx**2)
    cyy = np.sum(power * kyy**2)
    cxy = np.sum(power * kxx * kyy)
    return float(2 * np.pi * np.sqrt(cxx * cyy - cxy**2) / kmean**2)


# ---------------------------------------------------------------------------------------------
# generators
# ---------------------------------------------------------------------------------------------
def random_orientation_map(shape, wavelength, *, dx=1.0, spectrum_width=0.0, seed=None):
    """Gaussian random orientation map on a periodic grid, with a ring-shaped power spectrum.

    ``z(r) = sum_k A_k exp(i k.r)`` over the discrete wave vectors of the ``(ny, nx)`` torus, with
    independent circular complex Gaussian amplitudes ``A_k`` of variance ``P(k)`` (``sum P = 1``, so
    ``<|z|^2> = 1``), and ``theta = (angle(z) / 2) mod pi``.

    Parameters
    ----------
    shape : (int, int)
        ``(ny, nx)`` pixels.
    wavelength : float
        Column spacing ``Lambda`` (mm): the ring lies at ``|k| = k0 = 2*pi/wavelength``. Must span
        at least 4 pixels (``wavelength / dx >= 4``; use >= 12 for unbiased pinwheel counts).
    dx : float, default 1.0
        Pixel spacing (mm).
    spectrum_width : float, default 0.0
        ``0``: thin ring -- equal power on the k-vectors with ``c - dk/2 <= |k| < c + dk/2``,
        ``dk = 2*pi/(min(ny, nx)*dx)`` (one k-lattice step), where the centre ``c`` (within
        ``dk/2`` of ``k0``) is chosen so that the mean ``|k|`` over the shell equals ``k0`` as
        closely as the lattice allows. With equal power per mode the expected power-weighted
        ``<|k|>`` of a realisation is exactly that shell mean, so the Λ estimate of
        :func:`estimate_wavelength` is unbiased (to first order) although lattice points are not
        spread evenly in ``|k|``.
        ``s > 0``: Gaussian ring, ``P(k) ∝ exp(-(|k| - k0)^2 / (2 (s k0)^2))``. Then Λ as defined
        by the mean wavenumber is shorter than ``wavelength`` (the ring's ``<|k|>`` exceeds k0).
    seed : int, optional
        Seed of :func:`numpy.random.default_rng`. If None a fresh seed is drawn from the OS and
        stored, so every map can be regenerated from its ``attrs["seed"]``.

    Returns
    -------
    xarray.DataArray
        ``theta`` in ``[0, pi)`` rad, dims ``("y", "x")``, coords ``x``, ``y`` (mm) and
        ``amplitude`` (``|z|``). attrs: ``units="rad"``, ``kind="random"``, ``wavelength``,
        ``spectrum_width``, ``seed``, ``dx``, ``periodic=True``, ``n_modes`` (k-vectors with
        nonzero power).

    Raises
    ------
    ValueError
        On a bad shape, ``wavelength <= 0``, ``dx <= 0``, ``spectrum_width < 0``, fewer than 4 px
        per wavelength, a map smaller than one wavelength, or an empty thin ring.

    Examples
    --------
    >>> theta = random_orientation_map((96, 96), 12.0, seed=1)
    >>> theta.attrs["seed"], float(theta.max()) < np.pi
    (1, True)
    """
    ny, nx, wavelength, dx = _check_generator_args(shape, wavelength, dx)
    spectrum_width = _check_width(spectrum_width)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    elif isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None; got {seed!r}")
    seed = int(seed)

    power, _, _, _ = _ring_power(ny, nx, wavelength, dx, spectrum_width)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((2, ny, nx))
    amp = np.sqrt(power / 2.0) * (noise[0] + 1j * noise[1])
    z = np.fft.ifft2(amp) * (ny * nx)
    theta = _wrap_theta(np.angle(z) / 2.0)
    attrs = {
        "kind": "random",
        "wavelength": wavelength,
        "spectrum_width": spectrum_width,
        "seed": seed,
        "dx": dx,
        "periodic": True,
        "n_modes": int(np.count_nonzero(power)),
    }
    return _make_map(theta, dx, attrs, amplitude=np.abs(z))


def _crystal_offset(p, n):
    """Offset ``o`` (px, in [0, 1)) that keeps the lines ``o + m p/2`` farthest from integers."""
    m = np.arange(int(np.ceil(2 * n / p)) + 2)
    f = np.unique(np.round(np.mod(m * p / 2.0, 1.0), 12) % 1.0)
    gaps = np.diff(np.concatenate([f, [f[0] + 1.0]]))
    k = int(np.argmax(gaps))
    mid = f[k] + gaps[k] / 2.0
    return float(np.mod(-mid, 1.0))


def pinwheel_crystal(shape, wavelength, *, dx=1.0):
    """Analytic square pinwheel lattice ``z = cos(2 pi (x-s)/Λ) + i cos(2 pi (y-s)/Λ)``.

    Its zeros (pinwheels) lie on the square lattice ``x, y in x_c + (Λ/2) Z`` -- exactly 4 per
    ``Λ^2`` -- with charges ``+-1/2`` alternating like a checkerboard (nearest neighbours have
    opposite charge).

    Grid offset
    -----------
    The pattern is shifted (by ``s = x_c - Λ/4``, the same along x and y) so that no pixel row or
    column lies on a zero line of ``Re z`` or ``Im z``: ``x_c = o*dx`` with ``o in [0, 1)`` chosen
    to keep the lines ``x_c + m Λ/2`` as far from the pixel centres as possible. Thus every zero
    lies strictly inside a plaquette and plaquette counting is exact. When ``Λ/dx`` is an even
    integer, ``o = 1/2``: every pinwheel sits at a plaquette centre
    ``((j + 1/2) dx, (i + 1/2) dx)``.
    ``x_c`` is stored as ``attrs["pinwheel_offset"]`` (mm).

    Parameters
    ----------
    shape : (int, int)
        ``(ny, nx)`` pixels.
    wavelength : float
        Lattice period Λ (mm), at least 4 px.
    dx : float, default 1.0
        Pixel spacing (mm).

    Returns
    -------
    xarray.DataArray
        ``theta`` in ``[0, pi)`` rad with coords ``x``, ``y``, ``amplitude``; attrs ``units="rad"``,
        ``kind="crystal"``, ``wavelength``, ``dx``, ``pinwheel_offset`` and ``periodic`` (True only
        when both ``nx*dx`` and ``ny*dx`` are whole multiples of Λ).
    """
    ny, nx, wavelength, dx = _check_generator_args(shape, wavelength, dx)
    p = wavelength / dx
    o = _crystal_offset(p, max(nx, ny))
    xc = o * dx
    shift = xc - wavelength / 4.0
    x = np.arange(nx) * dx
    y = np.arange(ny) * dx
    re = np.cos(2 * np.pi * (x - shift) / wavelength)
    im = np.cos(2 * np.pi * (y - shift) / wavelength)
    z = re[None, :] + 1j * im[:, None]
    theta = _wrap_theta(np.angle(z) / 2.0)

    def whole(n):
        r = n * dx / wavelength
        return abs(r - round(r)) < 1e-9 * max(1.0, r)

    attrs = {
        "kind": "crystal",
        "wavelength": wavelength,
        "dx": dx,
        "pinwheel_offset": xc,
        "periodic": bool(whole(nx) and whole(ny)),
    }
    return _make_map(theta, dx, attrs, amplitude=np.abs(z))


def orientation_map_from_array(theta, dx, *, periodic=False, amplitude=None, units="rad"):
    """Wrap a measured orientation map (any 2-D real array) as a wavesim orientation map.

    Parameters
    ----------
    theta : array_like, shape (ny, nx)
        Preferred orientations; any real values, wrapped into ``[0, pi)``. NaN marks pixels
        outside the map (pinwheels are not counted in plaquettes touching them).
    dx : float
        Pixel spacing (mm).
    periodic : bool, default False
        Whether the map is a torus (only for synthetic data).
    amplitude : array_like, optional
        ``|z|`` (e.g. orientation selectivity) on the same grid, ``>= 0`` or NaN. Strongly
        recommended for :func:`estimate_wavelength`; without it ``|z| = 1`` is assumed.
    units : {"rad", "deg"}, default "rad"
        Units of ``theta``; degrees are converted to radians.

    Returns
    -------
    xarray.DataArray
        ``theta`` in ``[0, pi)`` rad, dims ``("y", "x")``, coords ``x``, ``y`` (mm) starting at 0
        (and ``amplitude`` if given); attrs ``units="rad"``, ``kind="measured"``, ``dx``,
        ``periodic``.
    """
    arr = np.asarray(theta.values if isinstance(theta, xr.DataArray) else theta)
    if arr.ndim != 2:
        raise ValueError(f"theta must be a 2-D array (ny, nx); got {arr.ndim}-D, shape {arr.shape}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"theta must be at least 2 x 2; got shape {arr.shape}")
    if np.iscomplexobj(arr) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"theta must be a real array of angles; got dtype {arr.dtype}")
    arr = arr.astype(float)
    if np.isinf(arr).any():
        raise ValueError("theta must be finite or NaN; it contains infinite values")
    dx = _check_positive("dx", dx)
    if units not in ("rad", "deg"):
        raise ValueError(f"units must be 'rad' or 'deg'; got {units!r}")
    if units == "deg":
        arr = np.deg2rad(arr)
    amp = None
    if amplitude is not None:
        amp = np.asarray(amplitude, dtype=float)
        if amp.shape != arr.shape:
            raise ValueError(f"amplitude must have the shape of theta {arr.shape}; got {amp.shape}")
        if (amp < 0).any() or np.isinf(amp).any():
            raise ValueError("amplitude must be >= 0 and finite (or NaN)")
    attrs = {"kind": "measured", "dx": dx, "periodic": bool(periodic)}
    return _make_map(_wrap_theta(arr), dx, attrs, amplitude=amp)


# ---------------------------------------------------------------------------------------------
# analysis helpers
# ---------------------------------------------------------------------------------------------
def _map_parts(theta, name="theta"):
    """``(theta ndarray, amplitude or None, dx, (x0, y0), attrs)`` of a DataArray or plain array."""
    if isinstance(theta, xr.DataArray):
        if theta.ndim != 2:
            raise ValueError(f"{name} must be 2-D (y, x); got dims {theta.dims}")
        if set(theta.dims) == {"y", "x"}:
            theta = theta.transpose("y", "x")
        values = np.asarray(theta.values, dtype=float)
        attrs = dict(theta.attrs)
        amp = None
        if "amplitude" in theta.coords:
            amp = np.asarray(theta.coords["amplitude"].transpose(*theta.dims).values, dtype=float)
        dx = float(attrs.get("dx", 1.0))
        x0 = y0 = 0.0
        ydim, xdim = theta.dims
        if xdim in theta.coords and theta.sizes[xdim] >= 2:
            xs = np.asarray(theta.coords[xdim].values, dtype=float)
            dx = _uniform_step(xs, xdim)
            x0 = float(xs[0])
        if ydim in theta.coords and theta.sizes[ydim] >= 2:
            ys = np.asarray(theta.coords[ydim].values, dtype=float)
            dy = _uniform_step(ys, ydim)
            y0 = float(ys[0])
            if not np.isclose(dy, dx, rtol=1e-6):
                raise ValueError(
                    f"{name} must have square pixels; got spacing {dx:g} along x, {dy:g} along y"
                )
        return values, amp, dx, (x0, y0), attrs
    values = np.asarray(theta)
    if values.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (ny, nx); got shape {values.shape}")
    if np.iscomplexobj(values):
        raise ValueError(f"{name} must be a real array of angles; got dtype {values.dtype}")
    return values.astype(float), None, 1.0, (0.0, 0.0), {}


def _uniform_step(coord, name):
    steps = np.diff(coord)
    step = float(steps[0])
    if not (step > 0 and np.allclose(steps, step, rtol=1e-6, atol=0)):
        raise ValueError(f"coordinate {name!r} must be uniformly increasing; got steps {steps[:3]}")
    return step


def orientation_field(theta):
    """Complex field ``z = |z| exp(2i theta)`` of an orientation map.

    Parameters
    ----------
    theta : xarray.DataArray or array_like, shape (ny, nx)
        Orientation map in radians; ``|z|`` is its ``"amplitude"`` coordinate if present, else 1.

    Returns
    -------
    numpy.ndarray of complex
        ``z`` (NaN where ``theta`` or the amplitude is NaN).
    """
    values, amp, _, _, _ = _map_parts(theta)
    z = np.exp(2j * values)
    return z if amp is None else amp * z


def estimate_wavelength(theta):
    """Column spacing ``Lambda = 2*pi / <|k|>`` of an orientation map (mm).

    ``<|k|>`` is the mean wavenumber (rad/mm) weighted by the power spectrum
    ``|FFT(z - mean z)|^2`` over all FFT frequencies except ``k = 0``, with
    ``z = |z| exp(2i theta)`` (see :func:`orientation_field`); NaN pixels are set to 0 after the
    mean is removed. Non-periodic maps are transformed as they are (no window), so edge effects
    bias Λ slightly.

    Parameters
    ----------
    theta : xarray.DataArray or array_like, shape (ny, nx)
        Orientation map (rad). For a DataArray, ``dx`` comes from its ``x``/``y`` coordinates
        (else ``attrs["dx"]``, else 1); a plain array has ``dx = 1``.

    Returns
    -------
    float
        Λ in mm (in pixels for a plain array).
    """
    _, _, dx, _, _ = _map_parts(theta)
    z = orientation_field(theta)
    valid = np.isfinite(z)
    if not valid.any():
        raise ValueError("theta has no finite values")
    z = np.where(valid, z - z[valid].mean(), 0.0)
    power = np.abs(np.fft.fft2(z)) ** 2
    ny, nx = z.shape
    _, _, kabs = _k_grids(ny, nx, dx)
    power[0, 0] = 0.0
    total = power.sum()
    if not total > 0:
        raise ValueError("theta is uniform: its spectrum has no power at k != 0")
    return float(2 * np.pi / (np.sum(power * kabs) / total))
