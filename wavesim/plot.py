"""Matplotlib figures and animations of wavesim fields, phases and orientation maps.

Conventions (docs/conventions.md): images are drawn with ``origin="lower"`` and an ``extent`` in mm
(pixel edges, so pixel centres sit on the ``x``/``y`` coordinates), which makes what is
counter-clockwise in the data look counter-clockwise on screen. Axes read ``x (mm)`` and ``y (mm)``;
titles give the time in ms.

Every ``plot_*`` function draws into ``ax`` when given one (else a new pyplot figure) and returns
the Axes, so notebooks can compose panels. :func:`animate` and :func:`plot_store` write files
and do not touch pyplot state.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from wavesim.analysis.phase import oscillator_phase, state_variable, velocity_variable

__all__ = [
    "animate",
    "plot_field",
    "plot_orientation_map",
    "plot_phase",
    "plot_store",
    "STORE_PLOTS",
]

#: What :func:`plot_store` can draw, and the file types each accepts.
STORE_PLOTS = {
    "field": (".png", ".pdf", ".svg"),
    "phase": (".png", ".pdf", ".svg"),
    "orientation": (".png", ".pdf", ".svg"),
    "animation": (".gif", ".mp4"),
}

_ORIENTATION_NAMES = ("orientation", "theta")


# --------------------------------------------------------------------------------------------
# helpers


def _new_axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # only when the caller wants a new interactive figure

    _, ax = plt.subplots(figsize=(5.4, 4.4), layout="constrained")
    return ax


def _as_dataarray(obj, what: str) -> xr.DataArray:
    if isinstance(obj, xr.Dataset):
        return obj[state_variable(obj)]
    if not isinstance(obj, xr.DataArray):
        raise TypeError(f"{what} expects an xarray.DataArray, got {type(obj).__name__}")
    return obj


def _select_member(da: xr.DataArray, member) -> xr.DataArray:
    if "member" not in da.dims:
        if member is not None:
            raise ValueError(f"member={member!r} given but the data has no 'member' dimension")
        return da
    if member is None:
        return da.isel(member=0)
    if "member" in da.coords:
        try:
            return da.sel(member=member)
        except KeyError:
            labels = da["member"].values.tolist()
            raise KeyError(f"member {member!r} not found; members are {labels}") from None
    return da.isel(member=int(member))


def _select_time(da: xr.DataArray, time) -> xr.DataArray:
    if "time" not in da.dims:
        return da
    if time is None:
        return da.isel(time=-1)
    if "time" not in da.coords:
        raise ValueError("the data has a 'time' dimension without a coordinate (ms) to select on")
    return da.sel(time=time, method="nearest")


def _sorted_xy(da: xr.DataArray) -> xr.DataArray:
    for dim in ("y", "x"):
        if dim in da.coords and da.sizes[dim] > 1:
            c = da[dim].values
            if np.any(np.diff(c) < 0):
                da = da.sortby(dim)
    return da


def _as_frame(da: xr.DataArray) -> xr.DataArray:
    """Check that only (y, x) remain, squeezing size-1 extras, and order them (y, x)."""
    extra = [d for d in da.dims if d not in ("y", "x")]
    single = [d for d in extra if da.sizes[d] == 1]
    if single:
        da = da.isel({d: 0 for d in single})
    extra = [d for d in da.dims if d not in ("y", "x")]
    if extra or set(da.dims) != {"y", "x"}:
        raise ValueError(
            f"expected dims (y, x) after selecting time and member, got {da.dims}; "
            f"select along {extra} first"
        )
    return _sorted_xy(da.transpose("y", "x"))


def _coord_units(da: xr.DataArray, dim: str, default: str) -> str:
    if dim in da.coords:
        return str(da[dim].attrs.get("units", default))
    return "px"


def _extent(da: xr.DataArray) -> tuple[float, float, float, float]:
    """Pixel-edge extent (left, right, bottom, top) in coordinate units for a (y, x) frame."""
    edges = []
    for dim in ("x", "y"):
        n = da.sizes[dim]
        c = (
            np.asarray(da[dim].values, dtype=float)
            if dim in da.coords
            else np.arange(n, dtype=float)
        )
        step = (c[-1] - c[0]) / (n - 1) if n > 1 else 1.0
        if step == 0:
            step = 1.0
        edges += [float(c[0] - step / 2), float(c[-1] + step / 2)]
    return edges[0], edges[1], edges[2], edges[3]


def _time_label(da: xr.DataArray) -> str | None:
    """'t = 12.5 ms' for a frame that kept its scalar time coordinate."""
    if "time" in da.coords and da["time"].ndim == 0:
        t = da["time"].values
        units = da["time"].attrs.get("units", "ms")
        if np.issubdtype(np.asarray(t).dtype, np.number):
            return f"t = {float(t):.6g} {units}"
        return f"t = {t}"
    return None


def _member_label(da: xr.DataArray) -> str | None:
    if "member" in da.coords and da["member"].ndim == 0:
        return f"member {da['member'].values.item()}"
    return None


def _name(da: xr.DataArray, default: str) -> str:
    return str(da.attrs.get("long_name") or da.name or default)


def _label_with_units(da: xr.DataArray, default: str) -> str:
    name = _name(da, default)
    units = da.attrs.get("units")
    if units is not None and str(units).strip() == "1":
        units = "dimensionless"
    return f"{name} ({units})" if units else name


def _title(da: xr.DataArray, default: str) -> str:
    parts = [_name(da, default)]
    parts += [p for p in (_member_label(da), _time_label(da)) if p]
    return ", ".join(parts)


def _imshow(ax: Axes, frame: xr.DataArray, *, cmap, vmin, vmax, cbar_label: str, title: str):
    im = ax.imshow(
        np.asarray(frame.values),
        origin="lower",
        extent=_extent(frame),
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
        aspect="equal",
    )
    ax.set_xlabel(f"x ({_coord_units(frame, 'x', 'mm')})")
    ax.set_ylabel(f"y ({_coord_units(frame, 'y', 'mm')})")
    ax.set_title(title)
    cbar = ax.figure.colorbar(im, ax=ax)
    cbar.set_label(cbar_label)
    return im, cbar


def _limits(values: np.ndarray, symmetric: bool) -> tuple[float, float]:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return (-1.0, 1.0) if symmetric else (0.0, 1.0)
    if symmetric:
        v = float(np.max(np.abs(finite)))
        v = v if v > 0 else 1.0
        return -v, v
    lo, hi = float(finite.min()), float(finite.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


# --------------------------------------------------------------------------------------------
# figures


def plot_field(
    da: xr.DataArray,
    *,
    time: float | None = None,
    member=None,
    ax: Axes | None = None,
    cmap="RdBu_r",
    symmetric: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Axes:
    """Draw one snapshot of a field on the lattice.

    Parameters
    ----------
    da : xarray.DataArray
        Dims ``(..., time, y, x)`` (``member`` optional), coords in mm and ms. A Dataset is accepted
        and its oscillator state variable is drawn.
    time : float, optional
        Time in ms; the nearest recorded frame is drawn. Default: the last frame.
    member : optional
        Member label (or index when ``member`` has no coordinate). Default: the first member.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; default a new figure.
    cmap : str or Colormap
        Colormap, default ``"RdBu_r"``.
    symmetric : bool
        Colour limits ±max|value| of the frame (zero is white with the default colormap); else
        the frame's min and max. Explicit ``vmin``/``vmax`` override.

    Returns
    -------
    matplotlib.axes.Axes
        The axes; the image is ``ax.images[0]``, the colourbar label carries ``attrs["units"]``.
    """
    da = _as_dataarray(da, "plot_field")
    frame = _as_frame(_select_time(_select_member(da, member), time))
    lo, hi = _limits(frame.values, symmetric)
    ax = _new_axes(ax)
    _imshow(
        ax,
        frame,
        cmap=cmap,
        vmin=lo if vmin is None else vmin,
        vmax=hi if vmax is None else vmax,
        cbar_label=_label_with_units(da, "field"),
        title=_title(frame, "field"),
    )
    return ax


def plot_phase(
    phase: xr.DataArray, *, time: float | None = None, member=None, ax: Axes | None = None
) -> Axes:
    """Draw one snapshot of a phase field with a cyclic colormap over (−π, π].

    Parameters
    ----------
    phase : xarray.DataArray
        Phase in rad, dims ``(..., time, y, x)``, e.g. from
        :func:`wavesim.analysis.phase.oscillator_phase`.
    time : float, optional
        Time in ms (nearest frame); default the last frame.
    member : optional
        Member label; default the first member.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        Colormap ``twilight`` with limits (−π, π); colourbar ticks at multiples of π/2.
    """
    phase = _as_dataarray(phase, "plot_phase")
    frame = _as_frame(_select_time(_select_member(phase, member), time))
    ax = _new_axes(ax)
    name = _name(phase, "phase")
    _, cbar = _imshow(
        ax,
        frame,
        cmap="twilight",
        vmin=-np.pi,
        vmax=np.pi,
        cbar_label=f"{name} (rad)",
        title=_title(frame, "phase"),
    )
    cbar.set_ticks([-np.pi, -np.pi / 2, 0.0, np.pi / 2, np.pi])
    cbar.set_ticklabels(["−π", "−π/2", "0", "π/2", "π"])
    return ax


def plot_orientation_map(
    theta: xr.DataArray,
    *,
    pinwheels: xr.Dataset | None = None,
    ax: Axes | None = None,
    cmap="hsv",
) -> Axes:
    """Draw an orientation map θ ∈ [0, π) with a cyclic colormap, pinwheels marked by charge.

    Parameters
    ----------
    theta : xarray.DataArray
        Preferred orientation in radians, dims ``(y, x)``, coords in mm.
    pinwheels : xarray.Dataset, optional
        As returned by :func:`wavesim.analysis.pinwheels`: variables ``x``, ``y`` (mm) and
        ``charge`` (±0.5) along ``pinwheel``; attrs ``wavelength`` (Λ, mm) and ``density``
        (pinwheels per Λ²). +½ pinwheels are drawn as white circles, −½ as black crosses, with
        counts in the legend; Λ and the density per Λ² go in the title.
    ax : matplotlib.axes.Axes, optional
    cmap : str or Colormap
        A cyclic colormap, default ``"hsv"``.

    Returns
    -------
    matplotlib.axes.Axes
        The image holds θ in degrees over [0, 180) (colourbar in degrees); the markers are the
        Line2D artists with gid ``"pinwheels+"`` and ``"pinwheels-"``.
    """
    if isinstance(theta, xr.Dataset):
        name = next((n for n in _ORIENTATION_NAMES if n in theta.data_vars), None)
        if name is None:
            raise KeyError("the dataset has no 'orientation' variable")
        theta = theta[name]
    frame = _as_frame(theta)
    degrees = np.degrees(np.mod(frame, np.pi))
    degrees.attrs = dict(frame.attrs)
    ax = _new_axes(ax)
    title = "orientation map"
    _, cbar = _imshow(
        ax,
        degrees,
        cmap=cmap,
        vmin=0.0,
        vmax=180.0,
        cbar_label="preferred orientation (deg)",
        title=title,
    )
    cbar.set_ticks([0, 45, 90, 135, 180])
    cbar.set_ticklabels(["0°", "45°", "90°", "135°", "180°"])

    attrs = dict(theta.attrs)
    if pinwheels is not None:
        attrs.update(pinwheels.attrs)
        missing = [v for v in ("x", "y", "charge") if v not in pinwheels.variables]
        if missing:
            raise KeyError(f"pinwheels dataset lacks variable(s) {missing}; expected x, y, charge")
        px = np.asarray(pinwheels["x"].values, dtype=float)
        py = np.asarray(pinwheels["y"].values, dtype=float)
        q = np.asarray(pinwheels["charge"].values, dtype=float)
        xlim, ylim = ax.get_xlim(), ax.get_ylim()
        plus, minus = q > 0, q < 0
        ax.plot(
            px[plus],
            py[plus],
            linestyle="none",
            marker="o",
            markersize=7,
            markerfacecolor="none",
            markeredgecolor="white",
            markeredgewidth=1.6,
            label=f"+½ ({int(plus.sum())})",
            gid="pinwheels+",
        )
        ax.plot(
            px[minus],
            py[minus],
            linestyle="none",
            marker="x",
            markersize=7,
            color="black",
            markeredgewidth=1.6,
            label=f"−½ ({int(minus.sum())})",
            gid="pinwheels-",
        )
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)
        legend = ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
        legend.get_frame().set_facecolor("0.75")

    parts = []
    wavelength = attrs.get("wavelength")
    if wavelength is not None and np.isfinite(float(wavelength)):
        units = _coord_units(frame, "x", "mm")
        parts.append(f"Λ = {float(wavelength):.3g} {units}")
    density = attrs.get("density")
    if density is not None and np.isfinite(float(density)):
        parts.append(f"{float(density):.3g} pinwheels per Λ²")
    if parts:
        title = f"{title}: " + ", ".join(parts)
    ax.set_title(title)
    return ax


# --------------------------------------------------------------------------------------------
# animation


def _frame_indices(n: int, max_frames: int) -> np.ndarray:
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if n <= max_frames:
        return np.arange(n)
    # evenly spaced, first and last included; distinct because the spacing is >= 1
    return np.unique(np.round(np.linspace(0, n - 1, max_frames)).astype(int))


def animate(
    da: xr.DataArray,
    path,
    *,
    fps: float = 10,
    max_frames: int = 200,
    cmap="RdBu_r",
    symmetric: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    member=None,
    dpi: int = 100,
    figsize: Sequence[float] = (5.4, 4.4),
) -> Path:
    """Write an animation of a run, one frame per recorded time (subsampled to ``max_frames``).

    Parameters
    ----------
    da : xarray.DataArray
        Dims ``(..., time, y, x)``; a Dataset is accepted and its oscillator state is animated.
    path : str or Path
        Output file: ``.gif`` (Pillow) or ``.mp4`` (needs ``ffmpeg`` on PATH).
    fps : float
        Frames per second.
    max_frames : int
        At most this many frames, evenly spaced in time (first and last included).
    cmap, symmetric, vmin, vmax
        As in :func:`plot_field`, but the colour limits are fixed across all frames
        (computed over every frame drawn).
    member : optional
        Member label; default the first member.
    dpi : int
        Resolution of each frame.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        For an unsupported extension or data without a ``time`` dimension.
    RuntimeError
        For ``.mp4`` when ffmpeg is not installed (save as ``.gif`` instead).
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".gif":
        writer = PillowWriter(fps=fps)
    elif ext == ".mp4":
        if shutil.which("ffmpeg") is None:
            raise RuntimeError(
                f"cannot write {path}: ffmpeg was not found on PATH. Install ffmpeg, or save the "
                "animation as .gif (written through Pillow)."
            )
        from matplotlib.animation import FFMpegWriter

        writer = FFMpegWriter(fps=fps)
    else:
        raise ValueError(f"cannot write an animation to {path}: use a .gif or .mp4 file name")

    da = _as_dataarray(da, "animate")
    da = _select_member(da, member)
    if "time" not in da.dims:
        raise ValueError(f"animate needs a 'time' dimension, got dims {da.dims}")
    idx = _frame_indices(da.sizes["time"], max_frames)
    frames = da.isel(time=idx).transpose("time", "y", "x")
    frames = _sorted_xy(frames).load()
    lo, hi = _limits(frames.values, symmetric)
    lo = lo if vmin is None else vmin
    hi = hi if vmax is None else vmax

    fig = Figure(figsize=tuple(figsize), dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    first = _as_frame(frames.isel(time=0))
    im, _ = _imshow(
        ax,
        first,
        cmap=cmap,
        vmin=lo,
        vmax=hi,
        cbar_label=_label_with_units(da, "field"),
        title=_title(first, "field"),
    )
    data = np.asarray(frames.values)

    def update(i: int):
        frame = frames.isel(time=i)
        im.set_data(data[i])
        ax.set_title(_title(frame, "field"))
        return (im,)

    anim = FuncAnimation(
        fig, update, frames=range(len(idx)), init_func=lambda: (im,), blit=False, repeat=False
    )
    anim.save(path, writer=writer, dpi=dpi)
    return path


# --------------------------------------------------------------------------------------------
# store-level entry point (used by `wavesim plot STORE --what ... -o FILE`)


def _open_store(path: Path) -> xr.Dataset:
    from wavesim.store import open_store

    return open_store(path)


def _store_name(ds: xr.Dataset, path: Path | None) -> str:
    if path is not None:
        return str(path)
    return str(ds.encoding.get("source") or ds.attrs.get("name") or "<in-memory dataset>")


def plot_store(
    ds_or_path,
    what: str,
    out,
    *,
    time: float | None = None,
    member=None,
    fps: float = 10,
    max_frames: int = 200,
    dpi: int = 120,
) -> Path:
    """Draw one view of a simulation store and save it to ``out``.

    Parameters
    ----------
    ds_or_path : xarray.Dataset or str or Path
        An opened store, or the path of one (opened with :func:`wavesim.open_store` when
        available, else with xarray).
    what : {"field", "phase", "orientation", "animation"}
        ``field``: the oscillator state at ``time``; ``phase``: the recorded ``phase`` variable,
        else :func:`~wavesim.analysis.phase.oscillator_phase` from ``y`` and ``ydot``;
        ``orientation``: the ``orientation`` map with its pinwheels (from
        :func:`wavesim.analysis.pinwheels`); ``animation``: the state over the whole run.
    out : str or Path
        Output file; the extension picks the format: png/pdf/svg for figures, gif/mp4 for
        the animation.
    time : float, optional
        Time in ms (nearest frame) for ``field`` and ``phase``; default the last frame.
        Ignored for ``orientation`` and ``animation``.
    member : optional
        Member of a batched store; default the first.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        For an unsupported ``what`` or file extension, or when ω for the phase is unknown.
    KeyError
        When the store lacks the variable that ``what`` needs (named in the message).
    """
    if what not in STORE_PLOTS:
        raise ValueError(
            f"cannot plot {what!r}: supported views are {', '.join(map(repr, STORE_PLOTS))}"
        )
    out = Path(out)
    ext = out.suffix.lower()
    if ext not in STORE_PLOTS[what]:
        raise ValueError(
            f"cannot save a {what!r} plot to {out}: use one of {', '.join(STORE_PLOTS[what])}"
        )

    path = None
    if isinstance(ds_or_path, xr.Dataset):
        ds = ds_or_path
    else:
        path = Path(ds_or_path)
        ds = _open_store(path)
    store = _store_name(ds, path)

    def need(name: str, why: str):
        if name not in ds.data_vars:
            found = ", ".join(map(str, ds.data_vars)) or "none"
            raise KeyError(
                f"store {store!r} has no variable {name!r} ({why}); data variables: {found}"
            )
        return ds[name]

    def state() -> xr.DataArray:
        try:
            return ds[state_variable(ds)]
        except KeyError as exc:
            raise KeyError(f"store {store!r}: {exc.args[0]}") from None

    if what == "animation":
        return animate(state(), out, fps=fps, max_frames=max_frames, member=member, dpi=dpi)

    fig = Figure(figsize=(5.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    if what == "field":
        plot_field(state(), time=time, member=member, ax=ax)
    elif what == "phase":
        if "phase" in ds.data_vars:
            phase = ds["phase"]
        else:
            y = state()
            try:
                vel = velocity_variable(ds, str(y.name))
            except KeyError:
                found = ", ".join(map(str, ds.data_vars))
                raise KeyError(
                    f"store {store!r} has no variable 'ydot' ({str(y.name)!r}_dot: the oscillator "
                    f"velocity, needed for the phase; record ydot); data variables: {found}"
                ) from None
            try:
                phase = oscillator_phase(ds, var=str(y.name), velocity=vel)
            except ValueError as exc:
                raise ValueError(f"store {store!r}: {exc}") from None
        plot_phase(phase, time=time, member=member, ax=ax)
    else:  # orientation
        name = next((n for n in _ORIENTATION_NAMES if n in ds.data_vars), "orientation")
        theta = need(name, "the orientation map; this run has none to plot")
        theta = _select_member(theta, member) if "member" in theta.dims else theta
        if "time" in theta.dims:
            theta = theta.isel(time=0)
        if "orientation_selectivity" in ds.data_vars:  # |z|: needed for an unbiased wavelength
            theta = theta.assign_coords(amplitude=ds["orientation_selectivity"])
        theta.attrs["periodic"] = bool(ds.attrs.get("map_periodic", False))
        from wavesim.analysis.orientation_maps import pinwheels as find_pinwheels

        plot_orientation_map(theta, pinwheels=find_pinwheels(theta), ax=ax)
    fig.savefig(out, dpi=dpi)
    return out
