"""Dense velocity fields of wave movies: robust (Charbonnier) Horn-Schunck optical flow.

Between consecutive frames the flow ``v = (vx, vy)`` is the displacement of the pattern: a
pattern ``I(x - v t)`` has optical flow ``v``. It satisfies the constancy equation

    gx vx + gy vy + gt = 0          (gx, gy, gt: derivatives of the movie along x, y, time)

regularised as in Horn & Schunck (1981), with the robust Charbonnier penalty of NeuroPattToolbox
(Townsend & Gong 2018) on both the data and the smoothness term (see
:mod:`wavesim.kernels.optical_flow` for the energy and the solver).

Conventions (``docs/conventions.md``)
-------------------------------------
* Movies are indexed ``(..., time, y, x)``; ``x`` is the column, ``y`` the row; coordinates in mm
  and ms. ``vx`` points along ``+x`` (increasing column), ``vy`` along ``+y`` (increasing row, *up*
  in plots made with ``origin="lower"``). ``direction = atan2(vy, vx)``, counter-clockwise from
  ``+x``.
* On a phase movie ``phi = omega t - k.x`` the flow is the phase velocity
  ``(dphi/dt) k / |k|^2`` with ``k = -grad phi``: a plane wave of speed ``c`` travelling along
  ``k`` gives ``v = c k/|k|``.
* Phase derivatives are built from *wrapped* nearest-neighbour differences (equivalently from
  ``z_b * conj(z_a)`` of unit phasors), so the ``2 pi`` jumps of a wrapped phase produce no flow.
"""

from __future__ import annotations

import numbers

import numpy as np
import xarray as xr

from wavesim.analysis.phase import space_units
from wavesim.analysis.winding import wrap_phase

__all__ = ["flow_derivatives", "optical_flow"]

_KINDS = ("auto", "phase", "amplitude")
_UNITS = ("mm/ms", "px/frame")
#: Multigrid: grids are coarsened while both sides are at least twice this.
_MIN_SIZE = 4
#: Upper bound on the float64 values held per block of frames (derivatives of ~32 MiB).
_BLOCK_VALUES = 1 << 22


# --------------------------------------------------------------------------------------------
# finite differences
# --------------------------------------------------------------------------------------------
def _gradient_from_differences(d, order):
    """Derivative along the last axis at every node from nearest-neighbour differences ``d``.

    ``d[..., m] = f[..., m+1] - f[..., m]`` (already wrapped for phase). Every stencil is written
    in terms of ``d`` so that only nearest-neighbour phase differences need to be unaliased.

    * ``order=2``: central differences ``(f[m+1] - f[m-1]) / 2``; at the edge nodes the
      one-sided ``(-3 f[0] + 4 f[1] - f[2]) / 2`` (and its mirror image).
    * ``order=4``: the 5-point stencil ``(f[m-2] - 8 f[m-1] + 8 f[m+1] - f[m+2]) / 12`` in the
      interior; at nodes 0 and 1 the one-sided / off-centre 5-point stencils
      ``(-25, 48, -36, 16, -3) / 12`` and ``(-3, -10, 18, -6, 1) / 12`` (mirrored at the far
      edge). Every node is then 4th-order accurate; with fewer than 5 nodes ``order=2`` is used.

    All nodes are treated alike so that the derivatives along x and y have the same accuracy
    everywhere: a one-sided 2-point difference at an edge would be centred half a pixel away
    and tilt the local gradient, which drives a spurious flow along the level lines.
    """
    n = d.shape[-1] + 1
    g = np.empty(d.shape[:-1] + (n,), dtype=float)
    if n == 2:
        g[..., 0] = d[..., 0]
        g[..., 1] = d[..., 0]
        return g
    if order == 4 and n >= 5:
        g[..., 2 : n - 2] = (
            7.0 * (d[..., 1:-2] + d[..., 2:-1]) - (d[..., :-3] + d[..., 3:])
        ) / 12.0
        d0, d1, d2, d3 = (d[..., m] for m in range(4))
        g[..., 0] = (25.0 * d0 - 23.0 * d1 + 13.0 * d2 - 3.0 * d3) / 12.0
        g[..., 1] = (3.0 * d0 + 13.0 * d1 - 5.0 * d2 + d3) / 12.0
        e0, e1, e2, e3 = (d[..., n - 2 - m] for m in range(4))
        g[..., n - 1] = (25.0 * e0 - 23.0 * e1 + 13.0 * e2 - 3.0 * e3) / 12.0
        g[..., n - 2] = (3.0 * e0 + 13.0 * e1 - 5.0 * e2 + e3) / 12.0
        return g
    g[..., 1 : n - 1] = 0.5 * (d[..., :-1] + d[..., 1:])
    g[..., 0] = 0.5 * (3.0 * d[..., 0] - d[..., 1])
    g[..., n - 1] = 0.5 * (3.0 * d[..., n - 2] - d[..., n - 3])
    return g


def _differences(frames, axis, phase):
    d = np.diff(frames, axis=axis)
    return wrap_phase(d) if phase else d


def flow_derivatives(frames, *, kind, order=4):
    """Spatial and temporal derivatives of a movie at the midpoint of every pair of frames.

    Parameters
    ----------
    frames : numpy.ndarray, shape (nt, ny, nx)
        Phase in radians (``kind="phase"``) or intensity (``kind="amplitude"``), ``nt >= 2``.
    kind : {"phase", "amplitude"}
        For phase, every nearest-neighbour difference (in x, y and time) is wrapped into
        ``[-pi, pi)`` before it is used.
    order : {2, 4}, default 4
        Accuracy order of the stencils. Space: see :func:`_gradient_from_differences` (5-point
        stencils for ``order=4``, one-sided/off-centre ones at the edges). Time, for the pair
        ``(k, k+1)``: ``order=2`` takes the two-frame difference and the mean of the two frames'
        spatial derivatives; ``order=4`` (with at least 4 frames) takes the derivative and the
        value at ``t = k + 1/2`` of the cubic through 4 frames: ``k-1 .. k+2``, i.e.
        ``(f[k-1] - 27 f[k] + 27 f[k+1] - f[k+2]) / 24`` and
        ``(-g[k-1] + 9 g[k] + 9 g[k+1] - g[k+2]) / 16``, or frames ``0 .. 3`` for the first
        pair, ``(-23 f0 + 21 f1 + 3 f2 - f3) / 24`` and ``(5 g0 + 15 g1 - 5 g2 + g3) / 16``
        (mirrored for the last pair).

    Returns
    -------
    gx, gy, gt : numpy.ndarray, shape (nt - 1, ny, nx)
        Derivatives per px (x, y) and per frame (t) at time ``k + 1/2``. NaN where a stencil
        touches a NaN.
    """
    f = np.asarray(frames, dtype=float)
    phase = kind == "phase"
    nt = f.shape[0]
    gx = _gradient_from_differences(_differences(f, -1, phase), order)
    gy = np.swapaxes(
        _gradient_from_differences(np.swapaxes(_differences(f, -2, phase), -1, -2), order), -1, -2
    )
    dt = _differences(f, 0, phase)  # (nt-1, ny, nx): pair k
    px = 0.5 * (gx[:-1] + gx[1:])
    py = 0.5 * (gy[:-1] + gy[1:])
    pt = dt.copy()
    if order == 4 and nt >= 4:
        # interior pairs k = 1 .. nt-3: frames k-1 .. k+2, centred cubic
        pt[1:-1] = (26.0 * dt[1:-1] - dt[:-2] - dt[2:]) / 24.0
        px[1:-1] = (9.0 * (gx[1:-2] + gx[2:-1]) - (gx[:-3] + gx[3:])) / 16.0
        py[1:-1] = (9.0 * (gy[1:-2] + gy[2:-1]) - (gy[:-3] + gy[3:])) / 16.0
        # first and last pairs: the cubic through frames 0..3 (nt-4 .. nt-1)
        pt[0] = (23.0 * dt[0] + 2.0 * dt[1] - dt[2]) / 24.0
        pt[-1] = (23.0 * dt[-1] + 2.0 * dt[-2] - dt[-3]) / 24.0
        for g, out in ((gx, px), (gy, py)):
            out[0] = (5.0 * g[0] + 15.0 * g[1] - 5.0 * g[2] + g[3]) / 16.0
            out[-1] = (5.0 * g[-1] + 15.0 * g[-2] - 5.0 * g[-3] + g[-4]) / 16.0
    return px, py, pt


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------
def _positive(name, value, *, allow_inf=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive number; got {value!r}")
    value = float(value)
    ok = value > 0 and (np.isfinite(value) or (allow_inf and value == np.inf))
    if not ok:
        extra = " (or inf)" if allow_inf else ""
        raise ValueError(f"{name} must be a positive finite number{extra}; got {value!r}")
    return value


def _step(coord, name):
    steps = np.diff(np.asarray(coord, dtype=float))
    step = float(steps[0])
    if not (np.isfinite(step) and step > 0 and np.allclose(steps, step, rtol=1e-6, atol=0)):
        raise ValueError(
            f"coordinate {name!r} must be uniformly increasing; got steps {steps[:3]} ..."
        )
    return step


def _reconcile(name, from_coord, given, unit):
    if given is None:
        return from_coord
    given = _positive(name, given)
    if from_coord is not None and not np.isclose(from_coord, given, rtol=1e-6):
        raise ValueError(
            f"{name}={given:g} {unit} disagrees with the data's coordinates (spacing "
            f"{from_coord:g} {unit}); leave {name} out for xarray input"
        )
    return given


def _select_movie(data, kind):
    """DataArray of the movie, its kind, and a mask (or None) from a Dataset or DataArray."""
    mask = None
    if isinstance(data, xr.Dataset):
        from wavesim.analysis.phase import oscillator_phase, state_variable

        if "mask" in data.data_vars or "mask" in data.coords:
            mask = data["mask"]
        if kind in ("auto", "phase") and "phase" in data.data_vars:
            return data["phase"], "phase", mask
        if kind == "amplitude" and "amplitude" in data.data_vars:
            return data["amplitude"], "amplitude", mask
        if kind in ("auto", "phase"):
            try:
                return oscillator_phase(data), "phase", mask
            except (KeyError, ValueError) as exc:
                if kind == "phase":
                    raise ValueError(
                        "data: kind='phase' needs a 'phase' variable or the oscillator state "
                        f"and velocity with omega ({exc})"
                    ) from exc
        return data[state_variable(data)], "amplitude", mask
    if isinstance(data, xr.DataArray):
        if kind == "auto":
            if np.issubdtype(data.dtype, np.complexfloating) or data.attrs.get("units") == "rad":
                kind = "phase"
            elif data.name == "phase":
                kind = "phase"
            else:
                kind = "amplitude"
        return data, kind, mask
    arr = np.asarray(data)
    if kind == "auto":
        if np.iscomplexobj(arr):
            kind = "phase"
        else:
            raise ValueError(
                "data: kind='auto' cannot tell whether a real numpy array holds a phase (rad) or "
                "an intensity; pass kind='phase' or kind='amplitude' (or a DataArray with "
                "attrs['units'] = 'rad' for phase)"
            )
    return arr, kind, mask


def _as_dataarray(arr):
    if arr.ndim < 3:
        raise ValueError(
            f"data must have at least 3 dimensions (..., time, y, x); got shape {arr.shape}"
        )
    lead = [f"dim_{i}" for i in range(arr.ndim - 3)]
    return xr.DataArray(arr, dims=(*lead, "time", "y", "x"))


def _to_real(frames, kind):
    if np.iscomplexobj(frames):
        return np.angle(frames) if kind == "phase" else np.abs(frames)
    return np.asarray(frames, dtype=float)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
def optical_flow(
    data,
    *,
    alpha=0.5,
    beta=1.0,
    kind="auto",
    n_iter=200,
    tol=1e-4,
    order=4,
    units="mm/ms",
    border=None,
    dx=None,
    dt=None,
):
    """Dense velocity field of a phase or intensity movie between consecutive frames.

    Robust Horn-Schunck optical flow with Charbonnier penalties, as in NeuroPattToolbox
    (Townsend & Gong 2018): for each pair of frames ``(k, k+1)`` the flow ``(u, v)`` in px/frame
    minimises

    ``sum rho(gx u + gy v + gt) + alpha * sum rho(|grad u|^2 + |grad v|^2)``,
    ``rho(s^2) = 2 beta^2 (sqrt(1 + s^2/beta^2) - 1)``,

    with ``gx, gy, gt`` the derivatives of the movie at the midpoint of the pair (see
    :func:`flow_derivatives`). The velocity is the displacement of the pattern: a pattern moving
    towards ``+x`` gives ``vx > 0``.

    Parameters
    ----------
    data : xarray.DataArray, xarray.Dataset or array_like
        Movie with dims ``(..., time, y, x)`` (leading dims are a batch, e.g. members), coordinates
        in mm and ms. Accepted:

        * a phase DataArray (radians; ``attrs["units"] = "rad"``, as from
          :func:`wavesim.analysis.oscillator_phase`) or a complex one (its angle is the phase);
        * an intensity/amplitude DataArray;
        * a Dataset (simulation store, analytic-signal output): its ``phase`` variable if present,
          else the oscillator phase from ``field`` and ``field_dot`` (``kind`` "auto"/"phase"),
          else (or with ``kind="amplitude"``) its ``amplitude`` variable or the state variable
          itself. Sites with ``mask == 0`` are ignored;
        * a numpy array ``(..., time, y, x)`` with ``dx`` and ``dt``; a real array needs an
          explicit ``kind``.

        NaN marks missing pixels: they get no data term (the flow there is filled in by the
        smoothness term) and are NaN in the output.
    alpha : float, default 0.5
        Smoothness weight (larger: smoother field). In the small-error (quadratic) limit the
        energy is classic Horn-Schunck with ``alpha`` in place of ``alpha_HS**2``; data in rad
        (phase) or in units of the movie's standard deviation (amplitude), flow in px/frame.
    beta : float, default 1.0
        Charbonnier scale, in the same units as the residuals (rad/frame for phase, std/frame for
        intensity; 1/frame for the flow gradients). Errors much smaller than ``beta`` are
        penalised quadratically, larger ones about linearly. ``inf`` gives the quadratic energy.
    kind : {"auto", "phase", "amplitude"}, default "auto"
        "phase": derivatives from wrapped phase differences. "amplitude": plain differences of
        the values (``|z|`` for complex data), after scaling each movie (each batch member) to
        unit standard deviation. "auto": phase for complex data, for DataArrays with
        ``attrs["units"] == "rad"`` or named ``phase``, and for stores as described above;
        amplitude for other DataArrays.
    n_iter : int, default 200
        Maximum iterations (Charbonnier reweighting + one multigrid V-cycle) per pair of frames.
    tol : float, default 1e-4
        Convergence tolerance in px/frame: stop when the largest distance of the flow to the
        solution, estimated from the contraction of successive iterations, is below ``tol``.
    order : {4, 2}, default 4
        Accuracy order of the finite differences (see :func:`flow_derivatives`).
    units : {"mm/ms", "px/frame"}, default "mm/ms"
        Units of ``vx``, ``vy`` and ``speed``. px/frame = mm/ms x ``dt/dx``. When the ``x``,
        ``y`` coordinates are pixel indices (``units = "px"``, a recording of unknown spacing),
        "mm/ms" gives px/ms and is labelled so.
    border : int, optional
        Width (px) of the frame along the edges of the grid whose pixels get no data term; the
        flow there is filled in by the smoothness term. Default ``order // 2``: only pixels where
        the centred stencils fit contribute data, so every data pixel measures the gradient with
        the same stencil. Edge stencils have different truncation errors, which tilt the local
        gradient; along a nearly straight wave front the aperture problem amplifies that tilt into
        a large flow along the front (an intensity plane wave at 10 px per wavelength, heading
        30 deg, came out at 60 deg with ``border=0``, ``alpha=0.1``). ``border=0`` uses every
        pixel, as NeuroPattToolbox does.
    dx, dt : float, optional
        Pixel spacing (mm) and frame interval (ms). Required for numpy input and for DataArrays
        without ``x``/``time`` coordinates; must agree with the coordinates otherwise.

    Returns
    -------
    xarray.Dataset
        Dims ``(..., time, y, x)`` with ``nt - 1`` times, **the midpoints** ``(t_k + t_{k+1})/2``
        of the frame pairs; ``x``, ``y`` and the leading coordinates are those of the input.

        * ``vx``, ``vy`` -- flow along ``+x`` (columns) and ``+y`` (rows), in ``units``;
        * ``speed`` -- ``hypot(vx, vy)``, in ``units``;
        * ``direction`` -- ``atan2(vy, vx)`` in rad, counter-clockwise from ``+x`` (with
          ``origin="lower"`` plots), in ``(-pi, pi]``;
        * ``iterations`` -- iterations used per pair (``(..., time)``; equal to ``n_iter`` when
          the solver did not converge).

        attrs: ``dx`` (mm), ``dt`` (ms), ``alpha``, ``beta``, ``kind``, ``order``, ``border``,
        ``velocity_units``, ``time_reference = "midpoint"``, ``not_converged`` (count of pairs),
        and ``mm_per_ms_per_px_per_frame`` (``dx/dt``).

    Raises
    ------
    ValueError
        Bad shapes, non-uniform or non-square grids, a missing ``dx``/``dt``, or bad parameters;
        the message names the argument.

    Notes
    -----
    Only the component of the flow along the gradient of the movie is measured locally (aperture
    problem); along level lines the smoothness term fills it in. A plane wave therefore gives
    the phase velocity along its wave vector and no tangential flow (from a zero start).

    Synchronous activity (no spatial gradient) has no defined flow: the solution tends to 0
    there, which :func:`wavesim.analysis.patterns.classify_patterns` uses to detect synchrony.

    Every pair is solved on its own, from a zero start, by lagged-diffusivity iterations with
    one multigrid V-cycle each (:mod:`wavesim.kernels.optical_flow`); the result does not depend
    on the other frames except through the time stencils. Cost on one core: ~5 ms per pair at
    64 x 64 and ~30-50 ms at 128 x 128 for a spiral wave; the number of iterations grows with
    the grid side when the data leave the flow along wave fronts nearly undetermined (~14, 25, 47
    iterations at 64, 128, 256 px for ``tol=1e-4``), and stays ~7 for textured movies.

    References
    ----------
    Horn, B. K. P. & Schunck, B. G. (1981) Determining optical flow. Artif. Intell. 17, 185-203.
    Townsend, R. G. & Gong, P. (2018) Detection and analysis of spatiotemporal patterns in brain
    activity. PLoS Comput. Biol. 14, e1006643.

    Examples
    --------
    >>> t = np.arange(6.0)[:, None, None]
    >>> x = np.arange(24.0)[None, None, :]
    >>> phase = np.broadcast_to(0.3 * t - 0.5 * x, (6, 8, 24))  # 0.6 px/frame towards +x
    >>> flow = optical_flow(phase, kind="phase", dx=1.0, dt=1.0)
    >>> round(float(flow["vx"].mean()), 4), round(float(abs(flow["vy"]).max()), 4)
    (0.6, 0.0)
    """
    from wavesim.kernels.optical_flow import solve_flow

    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}; got {kind!r}")
    if units not in _UNITS:
        raise ValueError(f"units must be one of {_UNITS}; got {units!r}")
    if order not in (2, 4):
        raise ValueError(f"order must be 2 or 4; got {order!r}")
    alpha = _positive("alpha", alpha)
    beta = _positive("beta", beta, allow_inf=True)
    tol = _positive("tol", tol)
    if isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer; got {n_iter!r}")
    if border is None:
        border = order // 2
    if isinstance(border, bool) or not isinstance(border, numbers.Integral) or border < 0:
        raise ValueError(f"border must be a non-negative integer (pixels); got {border!r}")
    border = int(border)

    movie, kind, mask = _select_movie(data, kind)
    if not isinstance(movie, xr.DataArray):
        movie = _as_dataarray(movie)
    missing = [d for d in ("time", "y", "x") if d not in movie.dims]
    if missing:
        raise ValueError(
            f"data must have dims (..., time, y, x); missing {missing} in {movie.dims}"
        )
    lead = [d for d in movie.dims if d not in ("time", "y", "x")]
    movie = movie.transpose(*lead, "time", "y", "x")
    nt, ny, nx = (movie.sizes[d] for d in ("time", "y", "x"))
    if nt < 2:
        raise ValueError(f"data must hold at least 2 frames along 'time'; got {nt}")
    if ny < 2 or nx < 2:
        raise ValueError(f"data must be at least 2 x 2 pixels (y, x); got {ny} x {nx}")
    if min(ny, nx) <= 2 * border:
        raise ValueError(
            f"border={border} px leaves no pixel with data on a {ny} x {nx} grid; "
            "pass a smaller border (e.g. border=0)"
        )
    edge = np.zeros((ny, nx), dtype=bool)
    if border:
        edge[:border, :] = edge[-border:, :] = True
        edge[:, :border] = edge[:, -border:] = True
    if not (
        np.issubdtype(movie.dtype, np.number) or np.issubdtype(movie.dtype, np.complexfloating)
    ):
        raise ValueError(f"data must hold numbers; got dtype {movie.dtype}")

    # grid
    dx_c = _step(movie["x"].values, "x") if "x" in movie.coords and nx >= 2 else None
    dy_c = _step(movie["y"].values, "y") if "y" in movie.coords and ny >= 2 else None
    dt_c = _step(movie["time"].values, "time") if "time" in movie.coords else None
    if dx_c is not None and dy_c is not None and not np.isclose(dx_c, dy_c, rtol=1e-6):
        raise ValueError(f"data must have square pixels; got spacing {dx_c:g} (x), {dy_c:g} (y)")
    dx = _reconcile("dx", dx_c if dx_c is not None else dy_c, dx, "mm")
    dt = _reconcile("dt", dt_c, dt, "ms")
    if dx is None:
        raise ValueError("dx (pixel spacing, mm) is required when data has no 'x' coordinate")
    if dt is None:
        raise ValueError("dt (frame interval, ms) is required when data has no 'time' coordinate")
    tc = movie["time"].values.astype(float) if dt_c is not None else np.arange(nt) * dt
    xc = movie["x"].values if "x" in movie.coords else np.arange(nx) * dx
    yc = movie["y"].values if "y" in movie.coords else np.arange(ny) * dx

    inactive = None
    if mask is not None:
        m = np.asarray(mask.transpose(*[d for d in ("y", "x") if d in mask.dims]).values)
        if m.shape != (ny, nx):
            raise ValueError(f"mask must have shape (y, x) = {(ny, nx)}; got {m.shape}")
        inactive = ~(m.astype(bool))

    lead_shape = tuple(movie.sizes[d] for d in lead)
    npairs = nt - 1
    vx = np.empty((*lead_shape, npairs, ny, nx))
    vy = np.empty_like(vx)
    iters = np.zeros((*lead_shape, npairs), dtype=np.int64)
    block = max(1, _BLOCK_VALUES // (ny * nx) - 3)

    for idx in np.ndindex(*lead_shape):
        member = movie[dict(zip(lead, idx, strict=True))] if lead else movie
        scale = 1.0
        if kind == "amplitude":
            mag = abs(member) if np.issubdtype(member.dtype, np.complexfloating) else member
            mag = mag.astype(float)
            sd = float(mag.std(skipna=True))
            rms = float(np.sqrt((mag * mag).mean(skipna=True)))
            # a constant movie (up to rounding) is left unscaled: it has no flow to measure
            scale = 1.0 / sd if np.isfinite(sd) and sd > 1e-9 * rms else 1.0
        for p0 in range(0, npairs, block):
            p1 = min(npairs, p0 + block)
            # frames p0-1 .. p1+1 (at least 4, for the cubic stencils), clipped to the movie:
            # the block's own first and last pairs are never used unless they are the movie's
            a = max(0, min(p0 - 1, nt - 4))
            b = min(nt, max(p1 + 2, a + 4))
            frames = _to_real(np.asarray(member.isel(time=slice(a, b)).values), kind)
            if kind == "amplitude":
                frames = frames * scale
            if inactive is not None:
                frames = np.where(inactive, np.nan, frames)
            gx, gy, gt = flow_derivatives(frames, kind=kind, order=order)
            # derivatives of the pairs p0 .. p1-1 (pair k of the block is k - a)
            sl = slice(p0 - a, p1 - a)
            gx, gy, gt = gx[sl], gy[sl], gt[sl]
            bad = ~(np.isfinite(gx) & np.isfinite(gy) & np.isfinite(gt)) | edge
            for g in (gx, gy, gt):
                g[bad] = 0.0
            gx, gy, gt = (np.ascontiguousarray(g) for g in (gx, gy, gt))
            ou = np.empty_like(gx)
            ov = np.empty_like(gx)
            sw = np.zeros(p1 - p0, dtype=np.int64)
            solve_flow(gx, gy, gt, alpha, beta, int(n_iter), tol, _MIN_SIZE, ou, ov, sw)
            # pixels missing in either frame of the pair
            fr = frames[p0 - a : p1 - a + 1]
            nan_px = ~np.isfinite(fr[:-1]) | ~np.isfinite(fr[1:])
            ou[nan_px] = np.nan
            ov[nan_px] = np.nan
            vx[idx + (slice(p0, p1),)] = ou
            vy[idx + (slice(p0, p1),)] = ov
            iters[idx + (slice(p0, p1),)] = sw

    to_units = dx / dt if units == "mm/ms" else 1.0
    su = space_units(movie)
    vx *= to_units
    vy *= to_units
    speed = np.hypot(vx, vy)
    direction = np.arctan2(vy, vx)
    direction = np.where(direction <= -np.pi, direction + 2 * np.pi, direction)

    dims = (*lead, "time", "y", "x")
    coords = {
        "time": ("time", 0.5 * (tc[:-1] + tc[1:]), {"units": "ms", "long_name": "pair midpoint"}),
        "y": ("y", np.asarray(yc), {"units": su}),
        "x": ("x", np.asarray(xc), {"units": su}),
    }
    for d in lead:
        if d in movie.coords:
            c = movie.coords[d]
            coords[d] = (d, c.values, dict(c.attrs))
    vunit = f"{su}/ms" if units == "mm/ms" else units  # px/ms for coordinates in px
    ds = xr.Dataset(
        {
            "vx": (dims, vx, {"units": vunit, "long_name": "optical flow along +x"}),
            "vy": (dims, vy, {"units": vunit, "long_name": "optical flow along +y"}),
            "speed": (dims, speed, {"units": vunit, "long_name": "flow speed"}),
            "direction": (
                dims,
                direction,
                {"units": "rad", "long_name": "flow direction, counter-clockwise from +x"},
            ),
            "iterations": (
                (*lead, "time"),
                iters,
                {"units": "1", "long_name": "solver iterations"},
            ),
        },
        coords=coords,
        attrs={
            "dx": float(dx),
            "dt": float(dt),
            "alpha": float(alpha),
            "beta": float(beta),
            "kind": kind,
            "order": int(order),
            "border": border,
            "velocity_units": vunit,
            "time_reference": "midpoint",
            "mm_per_ms_per_px_per_frame": float(dx / dt),
            "not_converged": int(np.count_nonzero(iters >= n_iter)),
            "method": "Horn-Schunck optical flow with Charbonnier penalties (NeuroPattToolbox)",
        },
    )
    for name in lead:
        if name in ds.coords and "units" not in ds[name].attrs:
            ds[name].attrs["units"] = "1"
    return ds
