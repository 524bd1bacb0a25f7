"""Wave vector, speed and direction of phase fields: local phase gradients and plane-wave fits.

Conventions (``docs/conventions.md``): arrays are ``(..., time, y, x)`` with coordinates in mm and
ms; the phase increases with time, φ = ωt − k·x; the **wave vector is k = −∇φ** (rad/mm), the
**direction** is ``atan2(ky, kx)`` (rad, counter-clockwise from +x) and the **phase speed** is
(∂φ/∂t)/|∇φ| (mm/ms = m/s).

* :func:`phase_gradient` — per site and frame: k from wrapped differences between neighbouring
  sites, ω = ∂φ/∂t from neighbouring frames, the local speed and direction (numba kernel
  :mod:`wavesim.kernels.phase_gradient`).
* :func:`phase_gradient_directionality` — PGD per frame, ‖⟨∇φ⟩‖ / ⟨‖∇φ‖⟩ (Rubino et al. 2006).
* :func:`plane_wave_fit` — per frame, the wave vector maximizing the circular-linear resultant
  R(k) = |⟨exp(i(φ + k·x))⟩| (coarse FFT grid, then Newton-type refinement), with the speed from
  the frame-mean ∂φ/∂t and an optional spatial-shuffle p-value.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy import fft as sfft
from scipy import optimize

from wavesim.analysis.phase import _coord_spacing, space_units
from wavesim.kernels.phase_gradient import phase_gradient_frames

__all__ = ["phase_gradient", "phase_gradient_directionality", "plane_wave_fit"]

_ANGLE_UNITS_BAD = {"deg", "degree", "degrees", "°"}


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------
def _phase_dataarray(phase, *, dx, dt, func: str, name: str = "phase") -> xr.DataArray:
    """``phase`` as a real DataArray (rad) with dims ``(..., [time,] y, x)`` and mm/ms coords."""
    if isinstance(phase, xr.Dataset):
        if "phase" not in phase.data_vars:
            raise ValueError(
                f"{func}: {name} is a Dataset without a 'phase' variable; pass the phase "
                f"DataArray (e.g. from oscillator_phase or analytic_phase)"
            )
        phase = phase["phase"]
    if isinstance(phase, xr.DataArray):
        missing = {"y", "x"} - set(phase.dims)
        if missing:
            raise ValueError(
                f"{func}: {name} must have dims (..., time, y, x); missing {sorted(missing)} "
                f"in dims {phase.dims}"
            )
        units = str(phase.attrs.get("units", "rad")).strip().lower()
        if units in _ANGLE_UNITS_BAD:
            raise ValueError(f"{func}: {name} is in degrees ({units!r}); convert it to rad")
        order = [..., "time", "y", "x"] if "time" in phase.dims else [..., "y", "x"]
        da = phase.transpose(*order)
    else:
        arr = np.asarray(phase)
        if arr.ndim < 2:
            raise ValueError(
                f"{func}: {name} must be an array with dims (..., time, y, x) (or (y, x)); got "
                f"shape {arr.shape}"
            )
        if dx is None:
            raise ValueError(f"{func}: a numpy {name} needs dx= (site spacing in mm)")
        dims = ("y", "x") if arr.ndim == 2 else ("time", "y", "x")
        dims = tuple(f"dim_{n}" for n in range(arr.ndim - len(dims))) + dims
        coords = {
            "y": ("y", np.arange(arr.shape[dims.index("y")]) * float(dx), {"units": "mm"}),
            "x": ("x", np.arange(arr.shape[dims.index("x")]) * float(dx), {"units": "mm"}),
        }
        if "time" in dims and dt is not None:
            nt = arr.shape[dims.index("time")]
            coords["time"] = ("time", np.arange(nt) * float(dt), {"units": "ms"})
        da = xr.DataArray(arr, dims=dims, coords=coords, attrs={"units": "rad"})
    if np.iscomplexobj(da):
        da = xr.apply_ufunc(np.angle, da, keep_attrs=True)
    elif not (np.issubdtype(da.dtype, np.floating) or np.issubdtype(da.dtype, np.integer)):
        raise ValueError(f"{func}: {name} must be real (phase in rad) or complex; got {da.dtype}")
    if da.sizes["x"] < 2 or da.sizes["y"] < 2:
        raise ValueError(
            f"{func}: {name} needs at least 2 sites along y and x; got {da.sizes['y']} x "
            f"{da.sizes['x']}"
        )
    return da


def _spacings(da: xr.DataArray, *, dx, dt, func: str, need_dt: bool):
    sx = _coord_spacing(da, "x", dx, "dx", "mm")
    sy = _coord_spacing(da, "y", dx if "y" not in da.coords else None, "dx", "mm")
    if sx is None or sy is None:
        raise ValueError(
            f"{func}: cannot determine the site spacing: the phase has no x/y coordinates (mm); "
            "pass dx=..."
        )
    st = None
    if "time" in da.dims:
        st = _coord_spacing(da, "time", dt, "dt", "ms")
        if st is None and need_dt and da.sizes["time"] > 1:
            raise ValueError(
                f"{func}: cannot determine the frame interval: the phase has no time coordinate "
                "(ms); pass dt=..."
            )
    return sx, sy, st


def _frames(da: xr.DataArray) -> np.ndarray:
    """Values as a C-contiguous float64 array ``(members, frames, ny, nx)``."""
    v = np.asarray(da.values, dtype=np.float64)
    ny, nx = v.shape[-2:]
    nt = da.sizes["time"] if "time" in da.dims else 1
    return np.ascontiguousarray(v.reshape(-1, nt, ny, nx))


def _spatial_gradient(da: xr.DataArray, sx: float, sy: float, dt, with_time: bool):
    """Run the kernel; returns (kx, ky, omega, speed, direction) shaped like ``da``."""
    v = _frames(da) if with_time else np.ascontiguousarray(
        np.asarray(da.values, dtype=np.float64).reshape(-1, 1, *da.shape[-2:])
    )  # fmt: skip
    outs = [np.empty_like(v) for _ in range(4)]
    inv_dt = 1.0 / dt if (with_time and dt is not None) else math.nan
    phase_gradient_frames(v, 1.0 / sx, 1.0 / sy, inv_dt, *outs)
    outs.append(np.arctan2(outs[1], outs[0]))
    return [o.reshape(da.shape) for o in outs]


# --------------------------------------------------------------------------------------------
# local phase gradient
# --------------------------------------------------------------------------------------------
def phase_gradient(phase, *, dx: float | None = None, dt: float | None = None) -> xr.Dataset:
    """Local wave vector, temporal frequency, speed and direction of a phase field.

    At every site, the phase differences to the neighbours along x, y and time are wrapped into
    [−π, π) — the complex-multiplication difference ``arg(z[j+1] conj(z[j]))`` with
    ``z = exp(iφ)``, so phase wraps do not matter — and the two one-sided differences are averaged:
    a central difference, equal to ``arg(z[j+1] conj(z[j−1])) / (2 dx)`` while the phase turns by
    less than π/2 per site and valid up to π per site; one-sided at the array edges and next to
    NaN sites.

    Parameters
    ----------
    phase : xarray.DataArray or numpy.ndarray
        Phase in rad with dims ``(..., time, y, x)`` (or ``(..., y, x)`` for single frames;
        ``time`` is then absent and so are ``omega`` and ``speed``). Coordinates ``x``, ``y`` in mm
        and ``time`` in ms give the spacings. A complex field (analytic signal) is accepted and its
        angle used; a Dataset with a ``phase`` variable (:func:`~wavesim.analysis.analytic_phase`)
        too. NaN marks masked sites: their outputs are NaN and their neighbours use one-sided
        differences.
    dx : float, optional
        Site spacing in mm (numpy input, or a DataArray without x/y coordinates).
    dt : float, optional
        Frame interval in ms (numpy input, or a DataArray without a time coordinate). A numpy
        array of ndim >= 3 is read as ``(..., time, y, x)``.

    Returns
    -------
    xarray.Dataset
        Same dims and coords as ``phase``, with

        - ``kx``, ``ky`` (rad/mm): the wave vector k = −∇φ;
        - ``omega`` (rad/ms): ∂φ/∂t (2π·f/1000 for a frequency f in Hz);
        - ``speed`` (mm/ms): ω/|k|, the local phase speed (negative where the phase runs
          backwards in time, ±inf where ∇φ = 0);
        - ``direction`` (rad): ``atan2(ky, kx)`` in (−π, π], counter-clockwise from +x.

    Raises
    ------
    ValueError
        When the spacings cannot be determined, coordinates are not uniform, or ``phase`` has
        fewer than 2 sites along x or y.

    Notes
    -----
    For a plane wave φ = ωt − k·x the result is exact (up to rounding) as long as the phase
    changes by less than π between neighbouring sites and frames. With noise the local estimates
    are noisy; aggregate them (median) or use :func:`plane_wave_fit`.
    """
    da = _phase_dataarray(phase, dx=dx, dt=dt, func="phase_gradient")
    su = space_units(da)
    sx, sy, st = _spacings(da, dx=dx, dt=dt, func="phase_gradient", need_dt=True)
    with_time = "time" in da.dims
    kx, ky, om, sp, di = _spatial_gradient(da, sx, sy, st, with_time)
    tmpl = da.copy(data=kx)
    tmpl.attrs = {}
    out = {
        "kx": (kx, {"units": f"rad/{su}", "long_name": "wave vector x component (-dphi/dx)"}),
        "ky": (ky, {"units": f"rad/{su}", "long_name": "wave vector y component (-dphi/dy)"}),
    }
    if with_time:
        out["omega"] = (om, {"units": "rad/ms", "long_name": "temporal phase derivative"})
        out["speed"] = (sp, {"units": f"{su}/ms", "long_name": "local phase speed"})
    out["direction"] = (
        di,
        {"units": "rad", "long_name": "propagation direction, counter-clockwise from +x"},
    )
    ds = xr.Dataset({name: tmpl.copy(data=v).assign_attrs(a) for name, (v, a) in out.items()})
    ds.attrs = {"method": "phase_gradient (wrapped neighbour differences, k = -grad phase)"}
    _ensure_coord_units(ds)
    return ds


def _ensure_coord_units(ds: xr.Dataset) -> None:
    defaults = {"x": "mm", "y": "mm", "time": "ms"}
    for name, unit in defaults.items():
        if name in ds.coords and "units" not in ds[name].attrs:
            ds[name].attrs["units"] = unit


# --------------------------------------------------------------------------------------------
# phase gradient directionality
# --------------------------------------------------------------------------------------------
def phase_gradient_directionality(phase, *, dx: float | None = None) -> xr.DataArray:
    """Phase gradient directionality (PGD) of every frame.

    PGD = ‖⟨∇φ⟩‖ / ⟨‖∇φ‖⟩, the norm of the site-averaged gradient vector over the average
    gradient norm (Rubino, Robbins & Hatsopoulos 2006; Townsend & Gong 2018). It is 1 for a plane
    wave and 0 for a field whose gradients cancel (a centred rotating or target wave).

    Parameters
    ----------
    phase : xarray.DataArray, xarray.Dataset or numpy.ndarray
        Phase in rad, dims ``(..., y, x)`` (every leading dim, ``time`` included, is a frame), or
        the Dataset returned by :func:`phase_gradient` (its ``kx``, ``ky`` are used). NaN sites
        are left out.
    dx : float, optional
        Site spacing in mm for numpy input (PGD does not depend on a common scale, but an x/y
        spacing ratio other than 1 does).

    Returns
    -------
    xarray.DataArray
        ``pgd`` with the frame dims of ``phase``, ``attrs["units"] = "1"``; NaN for a frame with
        no valid gradient or a zero mean gradient norm.
    """
    if isinstance(phase, xr.Dataset) and {"kx", "ky"} <= set(phase.data_vars):
        kx = phase["kx"].transpose(..., "y", "x")
        ky = phase["ky"].transpose(..., "y", "x").values
        frames = kx.isel(y=0, x=0, drop=True)
        kx = kx.values
    else:
        da = _phase_dataarray(
            phase, dx=1.0 if dx is None else dx, dt=None, func="phase_gradient_directionality"
        )
        if "time" in da.dims:
            da = da.transpose(..., "time", "y", "x")
        sx, sy, _ = _spacings(
            da, dx=dx, dt=None, func="phase_gradient_directionality", need_dt=False
        )
        kx, ky, *_ = _spatial_gradient(da, sx, sy, None, with_time=False)
        frames = da.isel(y=0, x=0, drop=True)
    ok = np.isfinite(kx) & np.isfinite(ky)
    n = ok.sum(axis=(-2, -1))
    gx = np.where(ok, kx, 0.0).sum(axis=(-2, -1))
    gy = np.where(ok, ky, 0.0).sum(axis=(-2, -1))
    norm = np.where(ok, np.hypot(kx, ky), 0.0).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        pgd = np.where((n > 0) & (norm > 0), np.hypot(gx, gy) / norm, np.nan)
    out = frames.copy(data=pgd)
    out.name = "pgd"
    out.attrs = {"units": "1", "long_name": "phase gradient directionality"}
    return out


# --------------------------------------------------------------------------------------------
# plane-wave fit
# --------------------------------------------------------------------------------------------
class _Resultant:
    """R²(κ) = |⟨z exp(i κ·u)⟩|² and its derivatives, on scaled centred positions ``u``."""

    def __init__(self, z, u, v):
        self.z, self.u, self.v = z, u, v
        self._key = None

    def _eval(self, kappa):
        key = (float(kappa[0]), float(kappa[1]))
        if key != self._key:
            u, v = self.u, self.v
            e = self.z * np.exp(1j * (kappa[0] * u + kappa[1] * v))
            s = e.mean()
            su = (1j * u * e).mean()
            sv = (1j * v * e).mean()
            suu = -(u * u * e).mean()
            suv = -(u * v * e).mean()
            svv = -(v * v * e).mean()
            f = -(s.real**2 + s.imag**2)
            g = -2.0 * np.array([(np.conj(s) * su).real, (np.conj(s) * sv).real])
            h = np.empty((2, 2))
            h[0, 0] = -2.0 * (abs(su) ** 2 + (np.conj(s) * suu).real)
            h[1, 1] = -2.0 * (abs(sv) ** 2 + (np.conj(s) * svv).real)
            h[0, 1] = h[1, 0] = -2.0 * ((np.conj(su) * sv).real + (np.conj(s) * suv).real)
            self._key, self._val = key, (f, g, h, s)
        return self._val

    def fun(self, kappa):
        f, g, _, _ = self._eval(kappa)
        return f, g

    def hess(self, kappa):
        return self._eval(kappa)[2]

    def resultant(self, kappa):
        return self._eval(kappa)[3]


def _grid_resultant(z, n, shape):
    """|⟨z exp(i k·x)⟩| on the zero-padded FFT grid of wave vectors (batch over leading axes)."""
    g = sfft.ifft2(z, s=shape, axes=(-2, -1), workers=1)
    return np.abs(g) * (shape[0] * shape[1] / n)


def plane_wave_fit(
    phase,
    *,
    omega: float | None = None,
    significance: bool = False,
    n_shuffles: int = 199,
    seed=None,
    dx: float | None = None,
    dt: float | None = None,
    min_sites: int = 6,
) -> xr.Dataset:
    """Fit a plane wave φ ≈ φ0 − k·x to every frame (circular-linear regression).

    The wave vector maximizes the resultant length ``R(k) = |mean over sites of
    exp(i(φ + k·x))|``, which is 1 for an exact plane wave. The search starts from the best point
    of a zero-padded FFT grid covering the whole Nyquist band |kx| ≤ π/dx, |ky| ≤ π/dy (padded to
    at least twice the array size, so the grid step is at most half the main-lobe half-width) and
    is refined by a trust-region Newton method (``scipy.optimize.minimize``, ``trust-exact``) on
    −R² with analytic gradient and Hessian: the result does not depend on the grid.

    Parameters
    ----------
    phase : xarray.DataArray or numpy.ndarray
        Phase in rad, dims ``(..., time, y, x)`` (or ``(..., y, x)``: single frames, no speed
        unless ``omega`` is given), coordinates in mm/ms. Complex fields are accepted (their
        angle is used), as is a Dataset with a ``phase`` variable. NaN sites are left out.
    omega : float, optional
        Known temporal angular frequency in rad/ms (2π·f/1000 for f in Hz) for the speed. Default:
        measured per frame as the mean ∂φ/∂t over the sites, from the neighbouring frames:
        ω = [arg Σ z(t+1) z̄(t) + arg Σ z(t) z̄(t−1)] / (2 dt) with z = exp(iφ) (one-sided at the
        first and last frames).
    significance : bool, default False
        Also return ``p_value`` per frame: a permutation test in which the phases are shuffled
        across the valid sites ``n_shuffles`` times. The statistic is the grid maximum of R
        (the same grid for data and shuffles); p = (1 + #{R_shuffled ≥ R_data}) /
        (1 + n_shuffles).
    n_shuffles : int, default 199
    seed : int or numpy.random.SeedSequence, optional
        Seed of the shuffles (``numpy.random.default_rng(seed)``).
    dx, dt : float, optional
        Spacing in mm and frame interval in ms for numpy input (read as ``(..., time, y, x)``
        when ndim >= 3).
    min_sites : int, default 6
        Frames with fewer valid sites give NaN.

    Returns
    -------
    xarray.Dataset
        Dims: the frame dims of ``phase`` (``(..., time)``). Variables

        - ``kx``, ``ky`` (rad/mm): the wave vector;
        - ``direction`` (rad): ``atan2(ky, kx)``, counter-clockwise from +x;
        - ``wavelength`` (mm): 2π/|k|;
        - ``omega`` (rad/ms) and ``speed`` (mm/ms) = ω/|k| (when a time axis or ``omega``
          exists);
        - ``fit_quality`` (1): R at the optimum, in [0, 1];
        - ``phase_offset`` (rad): φ0, the fitted phase at x = y = 0 mm, in (−π, π];
        - ``n_sites`` (1): number of valid sites;
        - ``p_value`` (1) with ``significance=True``.

    Notes
    -----
    Aliasing: a wave with more than π rad of phase per site is indistinguishable from its alias
    inside the Nyquist band. A field that is not a plane wave still gets the best plane wave;
    look at ``fit_quality`` (and ``p_value``).
    """
    if not isinstance(n_shuffles, (int, np.integer)) or n_shuffles < 1:
        raise ValueError(f"n_shuffles must be a positive integer, got {n_shuffles!r}")
    if not isinstance(min_sites, (int, np.integer)) or min_sites < 3:
        raise ValueError(f"min_sites must be an integer >= 3, got {min_sites!r}")
    if omega is not None:
        omega = float(omega)
        if not math.isfinite(omega):
            raise ValueError(f"omega must be a finite number in rad/ms, got {omega!r}")
    da = _phase_dataarray(phase, dx=dx, dt=dt, func="plane_wave_fit")
    su = space_units(da)
    sx, sy, st = _spacings(da, dx=dx, dt=dt, func="plane_wave_fit", need_dt=omega is None)
    with_time = "time" in da.dims
    v = _frames(da)
    nb, nt, ny, nx = v.shape
    x0 = float(da["x"].values[0]) if "x" in da.coords else 0.0
    y0 = float(da["y"].values[0]) if "y" in da.coords else 0.0
    xs = x0 + sx * np.arange(nx)
    ys = y0 + sy * np.arange(ny)
    xx, yy = np.meshgrid(xs, ys)
    shape = (sfft.next_fast_len(max(2 * ny, 64)), sfft.next_fast_len(max(2 * nx, 64)))
    kxg = 2 * np.pi * np.fft.fftfreq(shape[1], sx)
    kyg = 2 * np.pi * np.fft.fftfreq(shape[0], sy)
    rng = np.random.default_rng(seed) if significance else None

    valid = np.isfinite(v)
    z = np.where(valid, np.exp(1j * np.where(valid, v, 0.0)), 0.0)
    names = ("kx", "ky", "fit_quality", "phase_offset", "n_sites", "p_value")
    res = {k: np.full((nb, nt), np.nan) for k in names}
    for b in range(nb):
        for t in range(nt):
            ok = valid[b, t]
            n = int(ok.sum())
            res["n_sites"][b, t] = n  # never NaN: cast to int below
            if n < min_sites:
                continue
            zf = z[b, t]
            grid = _grid_resultant(zf, n, shape)
            li, mi = np.unravel_index(np.argmax(grid), grid.shape)
            zv = zf[ok]
            xc, yc = xx[ok], yy[ok]
            xbar, ybar = xc.mean(), yc.mean()
            xc, yc = xc - xbar, yc - ybar
            scale = math.sqrt(float(np.mean(xc * xc + yc * yc))) or 1.0
            obj = _Resultant(zv, xc / scale, yc / scale)
            start = np.array([kxg[mi], kyg[li]]) * scale
            sol = optimize.minimize(
                obj.fun, start, jac=True, hess=obj.hess, method="trust-exact",
                options={"gtol": 1e-13, "maxiter": 200},
            )  # fmt: skip
            kappa = sol.x if -sol.fun >= -obj.fun(start)[0] else start
            s = obj.resultant(kappa)
            kx_, ky_ = kappa / scale
            res["kx"][b, t], res["ky"][b, t] = kx_, ky_
            res["fit_quality"][b, t] = abs(s)
            res["phase_offset"][b, t] = float(np.angle(s * np.exp(1j * (kx_ * xbar + ky_ * ybar))))
            if significance:
                res["p_value"][b, t] = _shuffle_p(zv, ok, grid.max(), n, shape, n_shuffles, rng)

    kx, ky = res["kx"], res["ky"]
    k = np.hypot(kx, ky)
    if omega is not None:
        om = np.full((nb, nt), omega)
    elif with_time and st is not None:
        om = _frame_omega(z, st)
    else:
        om = None

    frames = da.isel(y=0, x=0, drop=True)
    frames.attrs = {}
    lead = frames.shape

    def var(a, units, long_name):
        return frames.copy(data=np.asarray(a).reshape(lead)).assign_attrs(
            units=units, long_name=long_name
        )

    with np.errstate(divide="ignore", invalid="ignore"):
        wavelength = 2 * np.pi / k
        speed = om / k if om is not None else None
    out = {
        "kx": var(kx, f"rad/{su}", "wave vector x component"),
        "ky": var(ky, f"rad/{su}", "wave vector y component"),
        "direction": var(np.arctan2(ky, kx), "rad", "propagation direction, ccw from +x"),
        "wavelength": var(wavelength, su, "wavelength 2 pi/|k|"),
    }
    if om is not None:
        out["omega"] = var(om, "rad/ms", "temporal angular frequency (frame mean dphi/dt)")
        out["speed"] = var(speed, f"{su}/ms", "phase speed omega/|k|")
    out["fit_quality"] = var(res["fit_quality"], "1", "resultant length R of the fit")
    out["phase_offset"] = var(res["phase_offset"], "rad", "fitted phase at x = y = 0")
    out["n_sites"] = var(res["n_sites"].astype(np.int64), "1", "valid sites")
    if significance:
        out["p_value"] = var(res["p_value"], "1", "spatial-shuffle p-value of R")
    ds = xr.Dataset(out)
    ds.attrs = {"method": "circular-linear plane-wave fit: max_k |mean exp(i(phase + k.x))|"}
    if om is not None:
        ds.attrs["omega_source"] = "given" if omega is not None else "frame-mean dphi/dt"
    if significance:
        ds.attrs["n_shuffles"] = int(n_shuffles)
    _ensure_coord_units(ds)
    return ds


def _frame_omega(z: np.ndarray, dt: float) -> np.ndarray:
    """Frame-mean ∂φ/∂t (rad/ms) from resultants of neighbouring-frame phasor products."""
    nb, nt = z.shape[:2]
    om = np.full((nb, nt), np.nan)
    if nt < 2:
        return om
    c = (z[:, 1:] * np.conj(z[:, :-1])).sum(axis=(-2, -1))
    d = np.where(np.abs(c) > 0, np.angle(c), np.nan)  # (nb, nt - 1): step t -> t + 1
    fwd = np.concatenate([d, np.full((nb, 1), np.nan)], axis=1)
    bwd = np.concatenate([np.full((nb, 1), np.nan), d], axis=1)
    both = np.stack([fwd, bwd])
    cnt = np.isfinite(both).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, np.nansum(both, axis=0) / cnt, np.nan) / dt


def _shuffle_p(zv, ok, r_obs, n, shape, n_shuffles, rng) -> float:
    """Permutation p-value of the grid-maximum resultant under spatial shuffles of the phases."""
    per = max(1, int(2**25 // (16 * shape[0] * shape[1])))  # ~32 MiB of FFT output per chunk
    exceed = 0
    done = 0
    while done < n_shuffles:
        m = min(per, n_shuffles - done)
        batch = np.zeros((m, *ok.shape), dtype=complex)
        batch[:, ok] = rng.permuted(np.broadcast_to(zv, (m, zv.size)), axis=1)
        r = _grid_resultant(batch, n, shape).max(axis=(-2, -1))
        exceed += int(np.count_nonzero(r >= r_obs * (1 - 1e-12)))
        done += m
    return (1 + exceed) / (1 + n_shuffles)
