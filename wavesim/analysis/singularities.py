"""Phase singularities of wave fields: detection, charge bookkeeping and tracking.

A phase singularity is a plaquette around which the phase winds by a nonzero multiple of 2π
(``docs/conventions.md``: counter-clockwise loop ``(x, y) -> (x+1, y) -> (x+1, y+1) -> (x, y+1)``,
``arg((x - x0) + i(y - y0))`` has charge +1; phase increases with time, φ = ωt − k·x).

* :func:`phase_singularities` finds them frame by frame (compiled plaquette winding, sub-pixel
  positions from :func:`wavesim.analysis.winding.find_singularities`);
* :func:`charge_balance` checks per frame that the detected charges add up to the winding of the
  phase around the border of the (valid part of the) window, or to 0 on a torus;
* :func:`track_singularities` links them into charge-preserving tracks
  (:func:`wavesim.analysis.linking.link_points`) and classifies births and deaths as pair
  creation / annihilation, boundary entry / exit, or unexplained.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from wavesim.analysis.linking import _assign, link_points
from wavesim.analysis.winding import find_singularities, wrap_phase

__all__ = ["charge_balance", "phase_singularities", "track_singularities"]

#: Event kinds of :func:`track_singularities`, in the order of the ``event_kind`` codes.
EVENT_KINDS = (
    "pair_creation",
    "pair_annihilation",
    "boundary_entry",
    "boundary_exit",
    "birth",
    "death",
)

CONVENTION = (
    "charge = winding of the phase in units of 2*pi around the plaquette loop "
    "(x, y) -> (x+1, y) -> (x+1, y+1) -> (x, y+1) (counter-clockwise in the right-handed (x, y) "
    "frame); arg((x - x0) + 1j*(y - y0)) has charge +1; phase increases with time "
    "(phi = omega*t - k.x); positions are pixel-centre coordinates"
)

#: Sites per chunk when frames are processed in blocks (float64: 32 MiB).
_CHUNK_SITES = 1 << 22


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------
class _Grid:
    """Layout of a phase input: ``values`` indexable as ``[*lead, time, y, x]``."""

    def __init__(self, values, lead_dims, lead_coords, times, dx, origin, units, complex_):
        self.values = values
        self.lead_dims = lead_dims
        self.lead_coords = lead_coords
        self.times = times
        self.dx = dx
        self.origin = origin
        self.space_units, self.time_units = units
        self.complex = complex_

    @property
    def lead_shape(self):
        return tuple(len(c) for c in self.lead_coords)

    @property
    def shape(self):
        return tuple(self.values.shape[-2:])


def _uniform_step(coord, name, argname):
    steps = np.diff(coord)
    step = float(steps[0])
    if not (np.isfinite(step) and step > 0 and np.allclose(steps, step, rtol=1e-6, atol=0)):
        raise ValueError(
            f"{argname}: coordinate {name!r} must be uniformly increasing; got steps {steps[:3]}"
        )
    return step


def _check_positive(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a positive number; got {value!r}") from exc
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    return value


def _grid(phase, dx, dt, argname="phase"):
    """Normalise a phase (or complex field) input to a :class:`_Grid`."""
    if isinstance(phase, xr.Dataset):
        raise TypeError(
            f"{argname} must be a phase DataArray or array, not a Dataset; for a simulation store "
            "use wavesim.analysis.oscillator_phase(ds)"
        )
    if isinstance(phase, xr.DataArray):
        if "y" not in phase.dims or "x" not in phase.dims:
            raise ValueError(
                f"{argname} must have dims (..., time, y, x); got dims {phase.dims} "
                "(no 'y' or no 'x')"
            )
        if "time" not in phase.dims:
            phase = phase.expand_dims("time", axis=-3)
        lead = [d for d in phase.dims if d not in ("time", "y", "x")]
        phase = phase.transpose(*lead, "time", "y", "x")
        if phase.dtype.kind not in "fciub":
            raise ValueError(
                f"{argname} must hold real phases or complex values; got {phase.dtype}"
            )
        if phase.sizes["y"] < 2 or phase.sizes["x"] < 2:
            raise ValueError(f"{argname} must be at least 2 x 2 in (y, x); got {dict(phase.sizes)}")
        space_units, time_units = "mm", "ms"
        x0 = y0 = 0.0
        if "x" in phase.coords and phase.sizes["x"] >= 2:
            xs = np.asarray(phase["x"].values, dtype=float)
            step = _uniform_step(xs, "x", argname)
            if dx is not None and not np.isclose(step, float(dx), rtol=1e-6):
                raise ValueError(
                    f"dx={dx!r} contradicts the x coordinate of {argname} (spacing {step:g}); "
                    "leave dx=None for DataArrays with coordinates"
                )
            dx, x0 = step, float(xs[0])
            if str(phase["x"].attrs.get("units", "mm")).strip() == "px":
                space_units = "px"  # a recording of unknown spacing
            if "y" in phase.coords and phase.sizes["y"] >= 2:
                ys = np.asarray(phase["y"].values, dtype=float)
                dy = _uniform_step(ys, "y", argname)
                if not np.isclose(dy, dx, rtol=1e-6):
                    raise ValueError(
                        f"{argname} must have square pixels; got spacing {dx:g} along x, "
                        f"{dy:g} along y"
                    )
                y0 = float(ys[0])
        elif dx is None:
            dx, space_units = 1.0, "px"
        dx = _check_positive(dx, "dx")
        nt = phase.sizes["time"]
        if "time" in phase.coords:
            times = np.asarray(phase["time"].values, dtype=float).reshape(nt)
        else:
            step = 1.0 if dt is None else _check_positive(dt, "dt")
            time_units = "ms" if dt is not None else "frame"
            times = np.arange(nt) * step
        lead_coords = [
            np.asarray(phase[d].values) if d in phase.coords else np.arange(phase.sizes[d])
            for d in lead
        ]
        return _Grid(
            phase.variable,
            lead,
            lead_coords,
            times,
            dx,
            (x0, y0),
            (space_units, time_units),
            phase.dtype.kind == "c",
        )
    values = np.asarray(phase)
    if values.dtype.kind not in "fciub":
        raise ValueError(
            f"{argname} must be a real (phase in rad) or complex array; got dtype {values.dtype}"
        )
    if values.ndim < 2:
        raise ValueError(
            f"{argname} must have dims (..., time, y, x) or (y, x); got shape {values.shape}"
        )
    if values.ndim == 2:
        values = values[None]
    if values.shape[-1] < 2 or values.shape[-2] < 2:
        raise ValueError(f"{argname} must be at least 2 x 2 in (y, x); got shape {values.shape}")
    space_units = "mm" if dx is not None else "px"
    time_units = "ms" if dt is not None else "frame"
    dx = 1.0 if dx is None else _check_positive(dx, "dx")
    dt = 1.0 if dt is None else _check_positive(dt, "dt")
    lead = [f"dim_{k}" for k in range(values.ndim - 3)]
    return _Grid(
        values,
        lead,
        [np.arange(n) for n in values.shape[:-3]],
        np.arange(values.shape[-3]) * dt,
        dx,
        (0.0, 0.0),
        (space_units, time_units),
        values.dtype.kind == "c",
    )


def _load(grid, lead_index, t0, t1):
    """Frames ``t0:t1`` of member ``lead_index`` as a numpy array (float or complex)."""
    block = grid.values[(*lead_index, slice(t0, t1))]
    arr = np.asarray(block.values if isinstance(block, xr.Variable) else block)
    if arr.dtype.kind in "iub":
        arr = arr.astype(float)
    return arr


def _chunks(grid):
    ny, nx = grid.shape
    nt = len(grid.times)
    step = max(1, _CHUNK_SITES // (ny * nx))
    for lead_index in np.ndindex(*grid.lead_shape):
        for t0 in range(0, nt, step):
            yield lead_index, t0, min(nt, t0 + step)


# --------------------------------------------------------------------------------------------
# detection
# --------------------------------------------------------------------------------------------
def phase_singularities(phase, *, periodic=False, dx=None, dt=None):
    """Phase singularities of every frame, with integer charge and sub-pixel position.

    Parameters
    ----------
    phase : xarray.DataArray or array_like, dims (..., time, y, x)
        Phase in radians (any real values; only ``phase mod 2*pi`` matters) or a complex field
        (its ``angle`` is the phase and the field is used to place the singularities). A DataArray
        gives the grid through its ``x``, ``y`` (mm) and ``time`` (ms) coordinates; leading dims
        (e.g. ``member``) are kept as variables along ``singularity``. A plain array is
        ``(..., time, y, x)`` or a single frame ``(y, x)``. NaN (e.g. outside a mask) marks
        missing sites: plaquettes with a missing corner hold no singularity.
    periodic : bool, default False
        Torus topology (also the plaquettes that wrap around the edges).
    dx, dt : float, optional
        Grid spacing (mm) and frame interval (ms) of a plain array (default 1, reported in units
        ``"px"`` and ``"frame"``). For a DataArray, ``dx`` is read from the coordinates.

    Returns
    -------
    xarray.Dataset
        Along dim ``singularity``, ordered by (leading dims, frame, row, column):

        * ``time`` (ms) and ``frame`` (index along ``time``);
        * ``x``, ``y`` (mm): sub-pixel position inside the plaquette -- the zero of the linear
          complex field fitted to the phase of the 4 x 4 surrounding nodes (phase input), or of
          the bilinear interpolation of the field (complex input);
        * ``charge``: +1 or -1. A 2 x 2 plaquette has winding -1, 0 or +1 (four wrapped
          differences in ``[-pi, pi)`` sum to a multiple of 2π in ``(-4 pi, 4 pi)``), so a
          charge-m defect shows as |m| (or more) unit charges around its core; should a plaquette
          ever hold a winding ``m`` with ``|m| > 1``, it is listed as ``|m|`` unit charges of
          sign ``m`` at the same place. Charge sums are exact either way;
        * ``row``, ``column``: plaquette index (lower-left node ``[row, column]``);
        * one variable per leading dim, holding its coordinate value.

        Along dim ``frames``: ``frame_time`` (ms), the time of every frame (also those without
        singularities). attrs: ``convention``, ``periodic``, ``dx``, ``origin`` (x, y of node
        [0, 0]), ``shape`` ``[ny, nx]``, ``extent`` ``[x_min, x_max, y_min, y_max]`` (node
        coordinates), ``lead_dims``, ``source`` (``"phase"`` or ``"complex"``).

    See Also
    --------
    charge_balance, track_singularities, wavesim.analysis.winding.find_singularities

    Examples
    --------
    >>> yy, xx = np.mgrid[0:16, 0:16]
    >>> frames = np.stack([np.angle((xx - 7.3 - t) + 1j * (yy - 8.6)) for t in range(3)])
    >>> s = phase_singularities(frames)
    >>> s["charge"].values.tolist(), np.round(s["x"].values, 6).tolist()
    ([1, 1, 1], [7.3, 8.3, 9.3])
    """
    grid = _grid(phase, dx, dt)
    periodic = bool(periodic)
    ny, nx = grid.shape
    cols = {k: [] for k in ("frame", "x", "y", "charge", "row", "column")}
    lead_cols = [[] for _ in grid.lead_dims]
    for lead_index, t0, t1 in _chunks(grid):
        arr = _load(grid, lead_index, t0, t1)
        sing = find_singularities(arr, periodic=periodic, dx=grid.dx, origin=grid.origin)
        reps = np.abs(sing.charge).astype(np.int64)
        cols["frame"].append(np.repeat(sing.index[:, 0] + t0, reps))
        cols["row"].append(np.repeat(sing.index[:, 1], reps))
        cols["column"].append(np.repeat(sing.index[:, 2], reps))
        cols["x"].append(np.repeat(sing.x, reps))
        cols["y"].append(np.repeat(sing.y, reps))
        cols["charge"].append(np.repeat(np.sign(sing.charge), reps))
        for k, idx in enumerate(lead_index):
            lead_cols[k].append(np.repeat(grid.lead_coords[k][idx : idx + 1], int(reps.sum())))

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    frame = cat(cols["frame"], np.int64)
    n = frame.size
    x0, y0 = grid.origin
    su, tu = grid.space_units, grid.time_units
    data = {
        "time": ("singularity", grid.times[frame], {"units": tu}),
        "frame": ("singularity", frame, {"units": "1", "long_name": "frame index along time"}),
        "x": ("singularity", cat(cols["x"], float), {"units": su}),
        "y": ("singularity", cat(cols["y"], float), {"units": su}),
        "charge": (
            "singularity",
            cat(cols["charge"], np.int32),
            {"units": "1", "long_name": "topological charge (winding / 2 pi)"},
        ),
        "row": ("singularity", cat(cols["row"], np.int64), {"units": "1"}),
        "column": ("singularity", cat(cols["column"], np.int64), {"units": "1"}),
        "frame_time": ("frames", grid.times, {"units": tu, "long_name": "time of every frame"}),
    }
    for k, dim in enumerate(grid.lead_dims):
        dtype = grid.lead_coords[k].dtype
        values = np.concatenate(lead_cols[k]) if lead_cols[k] else np.zeros(0, dtype)
        data[dim] = ("singularity", values, {"units": "1", "long_name": f"{dim} of the point"})
    ds = xr.Dataset(
        data,
        coords={"singularity": ("singularity", np.arange(n), {"units": "1"})},
        attrs={
            "convention": CONVENTION,
            "periodic": int(periodic),
            "dx": float(grid.dx),
            "origin": [float(x0), float(y0)],
            "shape": [int(ny), int(nx)],
            "extent": [float(x0), x0 + (nx - 1) * grid.dx, float(y0), y0 + (ny - 1) * grid.dx],
            "lead_dims": list(grid.lead_dims),
            "source": "complex" if grid.complex else "phase",
            "space_units": su,
            "time_units": tu,
        },
    )
    return ds


# --------------------------------------------------------------------------------------------
# charge bookkeeping
# --------------------------------------------------------------------------------------------
def _boundary_winding(arr, periodic):
    """Winding of each frame's phase around the border of its valid region (int, per frame).

    The border of the union of plaquettes with four finite corners: every edge is weighted by
    (valid plaquettes on its left) - (valid plaquettes on its right) along the counter-clockwise
    orientation, which keeps exactly the boundary edges. For a complete window this is the loop
    along the outer rim; on a torus it is 0.
    """
    phi = np.angle(arr) if np.iscomplexobj(arr) else np.asarray(arr, dtype=float)
    nf = phi.shape[0]
    if periodic:
        return np.zeros(nf, dtype=np.int64)
    ok = np.isfinite(phi)
    valid = ok[:, :-1, :-1] & ok[:, :-1, 1:] & ok[:, 1:, :-1] & ok[:, 1:, 1:]
    v = valid.astype(np.int64)
    nfr, ny, nx = phi.shape
    # horizontal edge (i, j)->(i, j+1): bottom (+) of plaquette (i, j), top (-) of (i-1, j)
    ch = np.zeros((nfr, ny, nx - 1), dtype=np.int64)
    ch[:, :-1, :] += v
    ch[:, 1:, :] -= v
    # vertical edge (i, j)->(i+1, j): right (+) of plaquette (i, j-1), left (-) of (i, j)
    cv = np.zeros((nfr, ny - 1, nx), dtype=np.int64)
    cv[:, :, 1:] += v
    cv[:, :, :-1] -= v
    with np.errstate(invalid="ignore"):
        ddx = wrap_phase(np.diff(phi, axis=-1))
        ddy = wrap_phase(np.diff(phi, axis=-2))
    total = np.where(ch != 0, ch * ddx, 0.0).sum(axis=(1, 2))
    total += np.where(cv != 0, cv * ddy, 0.0).sum(axis=(1, 2))
    return np.rint(total / (2.0 * np.pi)).astype(np.int64)


def _net_charge(sings, grid):
    """Sum of the charges per (lead..., frame) from a singularity Dataset."""
    nt = len(grid.times)
    out = np.zeros((*grid.lead_shape, nt), dtype=np.int64)
    if sings.sizes.get("singularity", 0) == 0:
        return out
    idx = []
    for k, dim in enumerate(grid.lead_dims):
        if dim not in sings:
            raise ValueError(f"sings has no variable {dim!r} for the leading dim of phase")
        coord = grid.lead_coords[k]
        vals = np.asarray(sings[dim].values)
        pos = {v: p for p, v in enumerate(coord.tolist())}
        try:
            idx.append(np.array([pos[v] for v in vals.tolist()], dtype=np.int64))
        except KeyError as exc:
            raise ValueError(
                f"sings[{dim!r}] holds a value ({exc.args[0]!r}) that is not a coordinate of phase"
            ) from exc
    frame = np.asarray(sings["frame"].values, dtype=np.int64)
    if frame.size and (frame.min() < 0 or frame.max() >= nt):
        raise ValueError(f"sings['frame'] indexes beyond the {nt} frames of phase")
    np.add.at(out, (*idx, frame), np.asarray(sings["charge"].values, dtype=np.int64))
    return out


def charge_balance(phase, sings=None, *, periodic=None, dx=None, dt=None):
    """Per-frame check of charge conservation: net detected charge vs the boundary winding.

    Parameters
    ----------
    phase : xarray.DataArray or array_like, dims (..., time, y, x)
        The phase (or complex field) the singularities were detected in.
    sings : xarray.Dataset, optional
        Output of :func:`phase_singularities` for ``phase``; computed when omitted.
    periodic : bool, optional
        Torus topology; default ``sings.attrs["periodic"]`` (False without ``sings``).
    dx, dt : float, optional
        As in :func:`phase_singularities`, for plain arrays.

    Returns
    -------
    xarray.Dataset
        Dims ``(..., time)`` (the leading dims and time of ``phase``):

        * ``net_charge``: sum of the detected charges in the frame;
        * ``boundary_winding``: winding of the phase (units of 2π) counter-clockwise around the
          border of the window -- more precisely of the union of plaquettes with four finite
          corners, so masks are handled -- computed from the phase along that border only;
          0 on a torus;
        * ``residual``: ``net_charge - boundary_winding``, 0 when charge is conserved.

        attrs: ``balanced`` (1 if every residual is 0), ``periodic``.

    Notes
    -----
    Because every edge enters its two plaquettes with opposite signs, the windings of all
    plaquettes inside a region sum exactly to the winding around its border (Stokes' theorem on
    the grid). A nonzero residual therefore means singularities were lost or duplicated on the
    way from windings to points (it cannot come from the field).
    """
    if periodic is None:
        periodic = bool(sings.attrs.get("periodic", False)) if sings is not None else False
    periodic = bool(periodic)
    if sings is None:
        sings = phase_singularities(phase, periodic=periodic, dx=dx, dt=dt)
    elif not isinstance(sings, xr.Dataset) or not {"frame", "charge"} <= set(sings.variables):
        raise ValueError(
            "sings must be the Dataset returned by phase_singularities (variables 'frame', "
            "'charge')"
        )
    grid = _grid(phase, dx, dt)
    nt = len(grid.times)
    bw = np.zeros((*grid.lead_shape, nt), dtype=np.int64)
    for lead_index, t0, t1 in _chunks(grid):
        bw[(*lead_index, slice(t0, t1))] = _boundary_winding(_load(grid, lead_index, t0, t1),
                                                             periodic)  # fmt: skip
    net = _net_charge(sings, grid)
    dims = (*grid.lead_dims, "time")
    coords = {"time": ("time", grid.times, {"units": grid.time_units})}
    for dim, c in zip(grid.lead_dims, grid.lead_coords, strict=True):
        coords[dim] = (dim, c, {"units": "1"})
    residual = net - bw
    return xr.Dataset(
        {
            "net_charge": (dims, net, {"units": "1", "long_name": "sum of detected charges"}),
            "boundary_winding": (
                dims,
                bw,
                {"units": "1", "long_name": "winding of the phase around the window border"},
            ),
            "residual": (dims, residual, {"units": "1"}),
        },
        coords=coords,
        attrs={"balanced": int(not residual.any()), "periodic": int(periodic)},
    )


# --------------------------------------------------------------------------------------------
# tracking
# --------------------------------------------------------------------------------------------
def _min_image(d, period):
    return d if period is None else d - period * np.round(d / period)


def _pair_up(idx_a, idx_b, xs, ys, gate, periods):
    """Hungarian pairing of points ``idx_a`` with ``idx_b`` within ``gate``; returns pairs."""
    if idx_a.size == 0 or idx_b.size == 0:
        return []
    px, py = periods
    ddx = _min_image(xs[idx_b][None, :] - xs[idx_a][:, None], px)
    ddy = _min_image(ys[idx_b][None, :] - ys[idx_a][:, None], py)
    d2 = ddx * ddx + ddy * ddy
    rows, cols = np.nonzero(d2 <= gate * gate)
    r, c = _assign(idx_a.size, idx_b.size, rows, cols, d2[rows, cols], gate)
    return [(int(idx_a[i]), int(idx_b[j])) for i, j in zip(r, c, strict=True)]


def track_singularities(
    sings,
    *,
    max_distance=None,
    max_gap=0,
    pair_distance=None,
    edge_distance=None,
    phase=None,
):
    """Link phase singularities into tracks of constant charge and classify births and deaths.

    Parameters
    ----------
    sings : xarray.Dataset
        Output of :func:`phase_singularities`.
    max_distance : float, optional
        Largest displacement (mm) between consecutive points of a track. Default ``2 * dx``.
    max_gap : int, default 0
        Frames a track may skip (see :func:`wavesim.analysis.linking.link_points`).
    pair_distance : float, optional
        Gate (mm) for pairing a +1 and a -1 that are born (or die) in the same frame into a
        creation (annihilation) event. Default ``3 * dx``.
    edge_distance : float, optional
        A birth (death) within this distance (mm) of the window edge is a ``boundary_entry``
        (``boundary_exit``); not used on a torus. Default ``2 * dx``.
    phase : xarray.DataArray or array_like, optional
        The phase the singularities came from; when given the per-frame charge balance
        (:func:`charge_balance`) is included.

    Returns
    -------
    xarray.Dataset
        * dim ``singularity``: ``track_id`` of every point of ``sings`` (join with
          ``sings.assign(track=tracks["track_id"])``);
        * dim ``track`` (0 .. T-1, in order of first appearance): ``track_charge`` (±1),
          ``birth`` and ``death`` (ms, time of the first and last frame seen), ``lifetime``
          (``death - birth``, ms), ``n_points``, ``x_mean``, ``y_mean`` (mm; circular means on a
          torus), ``birth_kind`` and ``death_kind`` (the event kinds below, or ``"start"`` /
          ``"end"`` for tracks present in the first / last frame), ``track_<dim>`` for leading
          dims;
        * dim ``event``: ``event_kind`` (``"pair_creation"``, ``"pair_annihilation"``,
          ``"boundary_entry"``, ``"boundary_exit"``, ``"birth"``, ``"death"``), ``event_time``
          (ms), ``event_frame``, ``event_x``, ``event_y`` (mm; the midpoint for pair events),
          ``event_tracks`` (dims ``event, pair``: the track ids, -1 for one-track events), and
          ``event_<dim>`` for leading dims. Ordered by frame;
        * with ``phase``: ``net_charge``, ``boundary_winding``, ``residual`` on ``(..., time)``.

        attrs: the parameters used, ``n_tracks``, counts of every event kind, ``periodic`` and,
        with ``phase``, ``charge_conserved`` (1 if every frame balances).

    Notes
    -----
    Only points of equal charge (and equal leading-dim values) are linked, so every track has a
    single charge. A pair event needs two opposite charges whose first (last) frame is the same
    frame and whose first (last) positions lie within ``pair_distance``; the pairing among all
    candidates of a frame is a maximum-cardinality, minimum-distance assignment. Births in the
    first frame and deaths in the last frame are not events. Deaths are dated by the last frame
    in which the track was seen.
    """
    if not isinstance(sings, xr.Dataset) or not {"frame", "x", "y", "charge"} <= set(
        sings.variables
    ):
        raise ValueError(
            "sings must be the Dataset returned by phase_singularities "
            "(variables 'frame', 'x', 'y', 'charge')"
        )
    dx = float(sings.attrs.get("dx", 1.0))
    max_distance = (
        2.0 * dx if max_distance is None else _check_positive(max_distance, "max_distance")
    )
    pair_distance = (
        3.0 * dx if pair_distance is None else _check_positive(pair_distance, "pair_distance")
    )
    edge_distance = (
        2.0 * dx if edge_distance is None else _check_positive(edge_distance, "edge_distance")
    )
    periodic = bool(sings.attrs.get("periodic", False))
    ny, nx = sings.attrs.get("shape", (0, 0))
    x_min, x_max, y_min, y_max = sings.attrs.get("extent", (np.nan,) * 4)
    periods = (nx * dx, ny * dx) if periodic else (None, None)
    lead_dims = list(sings.attrs.get("lead_dims", []))
    frame_time = (
        np.asarray(sings["frame_time"].values, dtype=float) if "frame_time" in sings else None
    )

    frame = np.asarray(sings["frame"].values, dtype=np.int64)
    xs = np.asarray(sings["x"].values, dtype=float)
    ys = np.asarray(sings["y"].values, dtype=float)
    charge = np.asarray(sings["charge"].values, dtype=np.int64)
    times = np.asarray(sings["time"].values, dtype=float) if "time" in sings else frame * 1.0
    n = frame.size
    n_frames = len(frame_time) if frame_time is not None else (int(frame.max()) + 1 if n else 0)
    if frame_time is None:
        frame_time = np.full(n_frames, np.nan)
        frame_time[frame] = times
    # group = leading-dim values; label = (group, charge)
    if lead_dims and n:
        keys = np.stack([np.unique(sings[d].values, return_inverse=True)[1] for d in lead_dims])
        _, group = np.unique(keys, axis=1, return_inverse=True)
        group = group.reshape(-1)
    else:
        group = np.zeros(n, dtype=np.int64)
    label = group * 3 + (charge + 1)

    track = link_points(
        frame,
        xs,
        ys,
        label,
        max_distance=max_distance,
        max_gap=max_gap,
        periodic=periods if periodic else None,
    )
    nt_ = int(track.max()) + 1 if n else 0
    order = np.lexsort((frame, track))
    starts = np.searchsorted(track[order], np.arange(nt_))
    first = order[starts]
    last = order[np.append(starts[1:], n) - 1] if n else order[:0]
    n_points = np.bincount(track, minlength=nt_)

    def mean_pos(v, period):
        if period is None:
            return np.bincount(track, weights=v, minlength=nt_) / np.maximum(n_points, 1)
        ang = 2 * np.pi * v / period
        c = np.bincount(track, weights=np.cos(ang), minlength=nt_)
        s = np.bincount(track, weights=np.sin(ang), minlength=nt_)
        return np.mod(np.arctan2(s, c), 2 * np.pi) * period / (2 * np.pi)

    x_mean = mean_pos(xs, periods[0])
    y_mean = mean_pos(ys, periods[1])
    t_charge = charge[first]
    t_group = group[first]
    birth_kind = np.full(nt_, "birth", dtype=object)
    death_kind = np.full(nt_, "death", dtype=object)
    birth_kind[frame[first] == 0] = "start"
    death_kind[frame[last] == n_frames - 1] = "end"

    events = []  # (frame, kind, x, y, track_a, track_b, point index for lead values)

    def classify(ends, kinds, pair_kind, edge_kind):
        cand = np.flatnonzero(kinds != ("start" if pair_kind == "pair_creation" else "end"))
        key = np.stack([frame[ends[cand]], t_group[cand]]) if cand.size else np.zeros((2, 0))
        for f, g in {tuple(k) for k in key.T.tolist()}:
            here = cand[(frame[ends[cand]] == f) & (t_group[cand] == g)]
            pos = here[t_charge[here] > 0]
            neg = here[t_charge[here] < 0]
            paired = set()
            for a, b in _pair_up(ends[pos], ends[neg], xs, ys, pair_distance, periods):
                ta, tb = int(track[a]), int(track[b])
                mx = xs[a] + 0.5 * _min_image(xs[b] - xs[a], periods[0])
                my = ys[a] + 0.5 * _min_image(ys[b] - ys[a], periods[1])
                kinds[ta] = kinds[tb] = pair_kind
                events.append((int(f), pair_kind, mx, my, ta, tb, a))
                paired.update((ta, tb))
            for t in here:
                if int(t) in paired:
                    continue
                p = ends[t]
                near_edge = not periodic and (
                    min(xs[p] - x_min, x_max - xs[p], ys[p] - y_min, y_max - ys[p]) <= edge_distance
                )
                kind = edge_kind if near_edge else kinds[t]
                kinds[t] = kind
                events.append((int(f), kind, xs[p], ys[p], int(t), -1, p))

    classify(first, birth_kind, "pair_creation", "boundary_entry")
    classify(last, death_kind, "pair_annihilation", "boundary_exit")
    events.sort(key=lambda e: (e[0], e[4]))
    ne = len(events)
    ev_frame = np.array([e[0] for e in events], dtype=np.int64)
    ev_point = np.array([e[6] for e in events], dtype=np.int64)
    su = sings["x"].attrs.get("units", "mm")
    tu = sings["time"].attrs.get("units", "ms") if "time" in sings else "frame"

    data = {
        "track_id": ("singularity", track, {"units": "1", "long_name": "track of each point"}),
        "track_charge": ("track", t_charge.astype(np.int32), {"units": "1"}),
        "birth": ("track", times[first], {"units": tu, "long_name": "first frame seen"}),
        "death": ("track", times[last], {"units": tu, "long_name": "last frame seen"}),
        "lifetime": ("track", times[last] - times[first], {"units": tu}),
        "n_points": ("track", n_points, {"units": "1"}),
        "x_mean": ("track", x_mean, {"units": su}),
        "y_mean": ("track", y_mean, {"units": su}),
        "birth_kind": ("track", birth_kind.astype(str), {"units": "1"}),
        "death_kind": ("track", death_kind.astype(str), {"units": "1"}),
        "event_kind": (
            "event",
            np.array([e[1] for e in events], dtype=str) if ne else np.zeros(0, dtype=str),
            {"units": "1"},
        ),
        "event_time": ("event", frame_time[ev_frame], {"units": tu}),
        "event_frame": ("event", ev_frame, {"units": "1"}),
        "event_x": ("event", np.array([e[2] for e in events], dtype=float), {"units": su}),
        "event_y": ("event", np.array([e[3] for e in events], dtype=float), {"units": su}),
        "event_tracks": (
            ("event", "pair"),
            np.array([e[4:6] for e in events], dtype=np.int64).reshape(ne, 2),
            {"units": "1", "long_name": "track ids (-1: none)"},
        ),
    }
    for d in lead_dims:
        vals = np.asarray(sings[d].values)
        data[f"track_{d}"] = ("track", vals[first], {"units": "1"})
        data[f"event_{d}"] = ("event", vals[ev_point], {"units": "1"})
    kinds_all = EVENT_KINDS
    attrs = {
        "max_distance": max_distance,
        "max_gap": int(max_gap),
        "pair_distance": pair_distance,
        "edge_distance": edge_distance,
        "periodic": int(periodic),
        "n_tracks": nt_,
        **{f"n_{k}": sum(e[1] == k for e in events) for k in kinds_all},
        "convention": sings.attrs.get("convention", CONVENTION),
    }
    ds = xr.Dataset(
        data,
        coords={
            "track": ("track", np.arange(nt_), {"units": "1"}),
            "event": ("event", np.arange(ne), {"units": "1"}),
        },
        attrs=attrs,
    )
    if phase is not None:
        bal = charge_balance(phase, sings, periodic=periodic)
        ds = ds.merge(bal, combine_attrs="drop_conflicts")
        ds.attrs["charge_conserved"] = bal.attrs["balanced"]
    return ds
