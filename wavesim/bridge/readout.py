"""What the lattice of a bridge model does, measured with wavesim's analyzers.

* :func:`lattice_recording` -- the lattice trajectory of a model driven by frames, as a wavesim
  Dataset (``field``, ``field_dot`` on ``(sequence, time, y, x)``, mm and ms), so every analyzer
  applies.
* :func:`circulation` -- with the receptive-field encoder on an orientation map and a rotating
  grating, the lattice's response at the grating's orientation frequency: its phase
  singularities sit on the map's pinwheels, with charge ``-2 q sign(Ω)`` (activity circulates in
  opposite senses around +1/2 and -1/2 pinwheels, and reverses with the sense of rotation).
* :func:`equivariance` -- for each sequence, the dominant wave velocity of the lattice (plane-wave
  fits of the oscillator phase) next to the transformation's labels.
* :func:`orientation_tuning` -- probe a model with gratings at many orientations: each site's
  preferred orientation and selectivity, the resulting orientation map, its pinwheels and their
  density per Λ².
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

__all__ = ["circulation", "equivariance", "lattice_recording", "orientation_tuning"]


def lattice_recording(model, frames, horizon: int = 0, *, every: int | None = None) -> xr.Dataset:
    """Drive a model's lattice with ``frames`` and record its state.

    Parameters
    ----------
    model : BridgeModel
    frames : array ``(sequences, K, h, w)``
        Frames that drive the lattice (each held ``steps_per_frame`` steps).
    horizon : int
        Frames of free run after them.
    every : int, optional
        Recording period in steps (a divisor of ``steps_per_frame``; default one sample per
        frame, at the end of each frame's slot).

    Returns
    -------
    xarray.Dataset
        ``field`` (the displacement y) and ``field_dot`` (ẏ) on ``(sequence, time, y, x)``, as
        in wavesim stores (time in ms from the start, x and y in mm), and the ``decoded`` frames
        on ``(sequence, frame, py, px)``; attrs ``omega2`` (mean), ``dt``, ``dx``,
        ``steps_per_frame``.
    """
    s = model.steps_per_frame
    every = s if every is None else int(every)
    out = model.run(frames, horizon, every=every)
    lat = model.lattice
    t = out["steps"] * model.dt
    ds = xr.Dataset(
        {
            "field": (("sequence", "time", "y", "x"), out["y"], {"units": "1"}),
            "field_dot": (("sequence", "time", "y", "x"), out["v"], {"units": "1/ms"}),
            "decoded": (("sequence", "frame", "py", "px"), out["frames"]),
        },
        coords={
            "time": ("time", t, {"units": "ms"}),
            "y": ("y", lat.y, {"units": "mm"}),
            "x": ("x", lat.x, {"units": "mm"}),
            "step": ("time", out["steps"]),
        },
        attrs={
            "omega2": float(np.mean(model.params.omega2)),
            "dt": model.dt,
            "dx": lat.dx,
            "steps_per_frame": s,
        },
    )
    return ds


def _wrap_distance(d, length):
    return (d + length / 2) % length - length / 2


def circulation(
    model, data, *, angular_velocity=None, periods: int = 1, max_distance: float | None = None
) -> xr.Dataset:
    """Phase singularities of the lattice's response to a rotating grating, matched to the
    pinwheels of the receptive-field encoder's orientation map.

    A grating turning by ω deg/frame returns to the same orientation every ``180/|ω|`` frames.
    The lattice's displacement is demodulated at that frequency
    (:func:`wavesim.analysis.demodulated_phase`) over the last ``periods`` cycles of the record.
    A drive ``cos 2(θ_s(t) − θ_i)`` with ``θ_s = θ_0 + Ωt`` gives the phase ``2|Ω|t − 2
    sign(Ω) θ_i`` (up to a constant): around a pinwheel of charge ``q`` it winds by
    ``−2q·sign(Ω)`` turns. Activity circulates around every pinwheel, in opposite senses around
    +1/2 and −1/2 pinwheels, and the senses swap with the sense of rotation.

    Parameters
    ----------
    model : BridgeModel
        With a :class:`~wavesim.bridge.encoders.ReceptiveFieldEncoder` (its ``theta`` is the map).
    data : Dataset or array ``(sequences, F, h, w)``
        Rotating gratings (e.g. :func:`wavesim.bridge.rotating_gratings`) with at least
        ``periods + 1`` cycles (the first is the transient); every sequence must turn at the
        same |ω|, with ``180/|ω|`` a whole number of frames.
    angular_velocity : float or array, optional
        ω (deg/frame) per sequence; default: the ``angular_velocity`` label of ``data``.
    periods : int
        Cycles in the demodulation window.
    max_distance : float, optional
        A pinwheel counts as matched when a singularity lies within this distance (mm); default
        a quarter of the mean distance between pinwheels, ``0.25·sqrt(area / n_pinwheels)``.

    Returns
    -------
    xarray.Dataset
        ``pinwheel_charge`` (±1/2) and coordinates ``x``, ``y`` (mm) on ``pinwheel``;
        ``singularity_charge`` (±1) and ``distance`` (mm) of the nearest singularity on
        ``(sequence, pinwheel)``; ``angular_velocity`` on ``sequence``; the demodulated
        ``phase`` of the lattice's response on ``(sequence, lattice_y, lattice_x)``. attrs:
        ``n_pinwheels``,
        ``n_singularities`` (per sequence), ``matched_fraction`` (pinwheels with a singularity
        within ``max_distance``), ``charge_rule_fraction`` (per sequence: matched pinwheels whose
        singularity has charge ``−2q·sign(ω)``), ``frequency_hz``.
    """
    from wavesim.analysis import demodulated_phase, phase_singularities, pinwheels
    from wavesim.bridge.training import sequences
    from wavesim.maps import orientation_map_from_array

    theta = getattr(model.encoder, "theta", None)
    if theta is None:
        raise ValueError("circulation: the model's encoder has no orientation map (theta)")
    frames = sequences(data, "data")
    n = frames.shape[0]
    if angular_velocity is None:
        if not isinstance(data, xr.Dataset | xr.DataArray) or "angular_velocity" not in data.coords:
            raise ValueError(
                "circulation: pass angular_velocity= (deg/frame) or a dataset with that label"
            )
        angular_velocity = data["angular_velocity"].values
    omega = np.broadcast_to(np.asarray(angular_velocity, dtype=float), (n,))
    speeds = np.unique(np.abs(omega))
    if speeds.size != 1 or speeds[0] == 0:
        raise ValueError(
            f"circulation: expected one nonzero |angular_velocity| for every sequence, got "
            f"{speeds.tolist()}"
        )
    period = 180.0 / speeds[0]
    period_frames = int(round(period))
    if abs(period - period_frames) > 1e-9 * period:
        raise ValueError(
            f"circulation: 180/|angular_velocity| = {period:.6g} frames is not a whole number"
        )
    if frames.shape[1] < (periods + 1) * period_frames:
        raise ValueError(
            f"data: {frames.shape[1]} frames hold fewer than periods + 1 = {periods + 1} cycles "
            f"of {period_frames} frames"
        )
    lat = model.lattice
    rec = lattice_recording(model, frames)
    tframe = model.steps_per_frame * model.dt
    freq = 1000.0 / (period_frames * tframe)
    y = rec["field"].isel(time=slice(1, None))
    phase = demodulated_phase(y, freq, periods=periods)["phase"].isel(time=-1)
    pmap = orientation_map_from_array(theta, lat.dx, periodic=lat.periodic)
    pw = pinwheels(pmap)
    q = pw["charge"].values
    px, py = pw["x"].values, pw["y"].values
    lx, ly = lat.nx * lat.dx, lat.ny * lat.dx
    if max_distance is None:
        max_distance = 0.25 * math.sqrt(lx * ly / max(len(q), 1))
    charges = np.zeros((n, len(q)), dtype=np.int64)
    dists = np.full((n, len(q)), np.inf)
    nsing, rule = [], []
    for b in range(n):
        sg = phase_singularities(phase.isel(sequence=b), periodic=lat.periodic)
        sx, sy, sc = sg["x"].values, sg["y"].values, sg["charge"].values
        nsing.append(int(sx.size))
        for i in range(len(q)):
            if sx.size == 0:
                break
            dx = _wrap_distance(sx - px[i], lx) if lat.periodic else sx - px[i]
            dy = _wrap_distance(sy - py[i], ly) if lat.periodic else sy - py[i]
            d = np.hypot(dx, dy)
            j = int(np.argmin(d))
            charges[b, i], dists[b, i] = sc[j], d[j]
        ok = dists[b] <= max_distance
        expected = -2 * q[ok] * np.sign(omega[b])
        rule.append(float(np.mean(charges[b, ok] == expected)) if ok.any() else math.nan)
    return xr.Dataset(
        {
            "pinwheel_charge": ("pinwheel", q),
            "singularity_charge": (("sequence", "pinwheel"), charges),
            "distance": (("sequence", "pinwheel"), dists, {"units": "mm"}),
            "angular_velocity": ("sequence", omega, {"units": "deg/frame"}),
            "phase": (("sequence", "lattice_y", "lattice_x"), phase.values, {"units": "rad"}),
        },
        coords={
            "x": ("pinwheel", px, {"units": "mm"}),
            "y": ("pinwheel", py, {"units": "mm"}),
            "lattice_x": ("lattice_x", lat.x, {"units": "mm"}),
            "lattice_y": ("lattice_y", lat.y, {"units": "mm"}),
        },
        attrs={
            "n_pinwheels": len(q),
            "n_singularities": nsing,
            "matched_fraction": float(np.mean(dists <= max_distance)),
            "charge_rule_fraction": rule,
            "max_distance": float(max_distance),
            "frequency_hz": freq,
        },
    )


def equivariance(
    model, data, observe: int, horizon: int, *, labels=None, min_quality: float = 0.0
) -> xr.Dataset:
    """Dominant wave velocity of the lattice for each sequence, next to its labels.

    The lattice is driven by the first ``observe`` frames and runs free for ``horizon`` frames,
    sampled at every step. Its oscillator phase (:func:`wavesim.analysis.oscillator_phase` with
    ω = √ω²) is fitted by a plane wave in every sample of the free run
    (:func:`wavesim.analysis.plane_wave_fit`); the dominant wave velocity of a sequence is the
    fit-quality-weighted mean of ``speed · (cos, sin)(direction)`` over those samples.

    Parameters
    ----------
    model : BridgeModel
    data : Dataset or array ``(sequences, frames, h, w)``
    observe, horizon : int
    labels : sequence of str, optional
        Label coordinates of ``data`` to carry along (default: all along ``sequence``).
    min_quality : float
        Samples whose plane-wave fit quality is below this are left out.

    Returns
    -------
    xarray.Dataset
        On ``sequence``: ``wave_vx``, ``wave_vy``, ``wave_speed`` (mm/ms), ``wave_direction``
        (deg), ``fit_quality`` (mean), the labels, and (when ``velocity_x``/``velocity_y`` or
        ``angular_velocity`` are labels) attrs with the correlation between the wave velocity
        and the transformation: ``corr_vx``, ``corr_vy`` or ``corr_speed``.
    """
    from wavesim.analysis import oscillator_phase, plane_wave_fit
    from wavesim.bridge.training import sequences

    x = sequences(data, "data")
    rec = lattice_recording(model, x[:, :observe], horizon, every=1)
    start = observe * model.steps_per_frame
    free = rec.isel(time=slice(start + 1, None))
    phase = oscillator_phase(free, omega=math.sqrt(max(rec.attrs["omega2"], 1e-12)))
    fit = plane_wave_fit(phase)
    q = fit["fit_quality"].fillna(0.0)
    q = q.where(q >= min_quality, 0.0)
    d = fit["direction"]
    sp = fit["speed"].fillna(0.0)
    w = q / q.sum("time").where(q.sum("time") > 0)
    vx = (w * sp * np.cos(d)).sum("time")
    vy = (w * sp * np.sin(d)).sum("time")
    out = xr.Dataset(
        {
            "wave_vx": ("sequence", vx.values, {"units": "mm/ms"}),
            "wave_vy": ("sequence", vy.values, {"units": "mm/ms"}),
            "wave_speed": ("sequence", np.hypot(vx.values, vy.values), {"units": "mm/ms"}),
            "wave_direction": (
                "sequence",
                np.rad2deg(np.arctan2(vy.values, vx.values)),
                {"units": "deg"},
            ),
            "fit_quality": ("sequence", fit["fit_quality"].mean("time").values),
        }
    )
    if isinstance(data, xr.Dataset | xr.DataArray):
        for name, c in data.coords.items():
            if (
                c.dims == ("sequence",)
                and name != "sequence"
                and (labels is None or name in labels)
            ):
                out.coords[name] = ("sequence", c.values, dict(c.attrs))
    corr = {}
    for lab, var in (("velocity_x", "wave_vx"), ("velocity_y", "wave_vy")):
        if lab in out.coords:
            corr[f"corr_{lab}"] = _corr(out.coords[lab].values, out[var].values)
    if "angular_velocity" in out.coords:
        corr["corr_angular_speed"] = _corr(
            np.abs(out.coords["angular_velocity"].values), out["wave_speed"].values
        )
    out.attrs.update(corr)
    return out


def _corr(a, b) -> float:
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return math.nan
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def orientation_tuning(
    model,
    *,
    orientations: int = 16,
    phases: int = 4,
    spatial_period: float = 8.0,
    frames: int = 8,
    source: str = "lattice",
) -> xr.Dataset:
    """Probe a model with static gratings: preferred orientation and selectivity of every site.

    For each of ``orientations`` orientations and ``phases`` spatial phases, a grating of the
    model's frame size drives the lattice for ``frames`` frames; the response of a site is the
    RMS of its displacement over the last half of them (``source="lattice"``) or the magnitude of
    its encoder drive (``source="encoder"``), averaged over phases. The preferred orientation is
    half the angle of ``sum_θ r(θ) e^{2iθ}`` and the selectivity its modulus over ``sum_θ r(θ)``
    (0: untuned, 1: responds to one orientation only). The orientation map's pinwheels and
    their density per Λ² come from :func:`wavesim.analysis.pinwheels`.

    Returns
    -------
    xarray.Dataset
        ``response`` ``(orientation, y, x)``, ``preferred_orientation`` (rad, in [0, π), with
        ``selectivity`` as its amplitude coordinate) and ``selectivity`` on ``(y, x)``; attrs
        ``n_pinwheels``, ``pinwheel_density`` (per Λ²), ``wavelength`` (Λ, mm),
        ``mean_selectivity``.
    """
    from wavesim.analysis import pinwheels
    from wavesim.maps import orientation_map_from_array

    if source not in ("lattice", "encoder"):
        raise ValueError(f"source: expected 'lattice' or 'encoder', got {source!r}")
    h, w = model.encoder.frame_shape
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    thetas = np.arange(orientations) * np.pi / orientations
    k = 2 * np.pi / float(spatial_period)
    probes = []
    for th in thetas:
        for ph in np.arange(phases) * 2 * np.pi / phases:
            g = 0.5 + 0.5 * np.cos(k * (-np.sin(th) * xx + np.cos(th) * yy) + ph)
            probes.append(np.repeat(g[None], frames, axis=0))
    probes = np.stack(probes)  # (orientations*phases, frames, h, w)
    if source == "encoder":
        e = model.encoder.encode(probes[:, :1])[:, 0]
        r = np.abs(e)
    else:
        rec = model.run(probes, 0, every=model.steps_per_frame)
        y = rec["y"][:, 1 + frames // 2 :]
        r = np.sqrt(np.mean(y.astype(float) ** 2, axis=1))
    r = r.reshape(orientations, phases, *model.lattice.shape).mean(axis=1)
    z = np.tensordot(np.exp(2j * thetas), r, axes=(0, 0))
    total = r.sum(axis=0)
    sel = np.abs(z) / np.where(total > 0, total, 1.0)
    pref = (np.angle(z) / 2) % np.pi
    lat = model.lattice
    pmap = orientation_map_from_array(pref, lat.dx, periodic=lat.periodic, amplitude=sel)
    pw = pinwheels(pmap)
    out = xr.Dataset(
        {
            "response": (("orientation", "y", "x"), r),
            "preferred_orientation": (("y", "x"), pref, {"units": "rad"}),
            "selectivity": (("y", "x"), sel),
        },
        coords={
            "orientation": ("orientation", thetas, {"units": "rad"}),
            "y": ("y", lat.y, {"units": "mm"}),
            "x": ("x", lat.x, {"units": "mm"}),
        },
        attrs={
            "n_pinwheels": int(pw.sizes["pinwheel"]),
            "pinwheel_density": float(pw.attrs["density"]),
            "density_units": "pinwheels per Lambda^2",
            "wavelength": float(pw.attrs["wavelength"]),
            "mean_selectivity": float(sel.mean()),
            "source": source,
        },
    )
    return out
