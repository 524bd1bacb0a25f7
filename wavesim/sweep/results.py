"""Sweep results on the grid's own dimensions."""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["member_scenario", "to_grid"]


def _axes(ds: xr.Dataset) -> list[dict]:
    axes = ds.attrs.get("sweep_dims")
    if axes is None or "member" not in ds.dims:
        raise ValueError(
            "to_grid needs a sweep store's Dataset (wavesim.open_store(STORE)): it has no "
            "'sweep_dims' attribute or no 'member' dimension"
        )
    return list(axes)


def to_grid(ds: xr.Dataset) -> xr.Dataset:
    """Unstack ``member`` into the sweep's own dimensions.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep store as :func:`wavesim.open_store` (or ``xarray.open_zarr``) returns it, with
        every member (select variables afterwards, not members before).

    Returns
    -------
    xarray.Dataset
        Every variable on ``member`` is put on the sweep's dimensions, in member order: one per
        grid key (named like its coordinate, e.g. ``coupling_speed``, whose values it takes),
        then ``zip`` and ``sample`` (positions 0..n-1, with the zipped or sampled parameters as
        coordinates along them) and ``seed``. ``member`` stays as a coordinate on these
        dimensions; ``status`` and the other variables keep their units and attributes. Lazy
        (dask) variables stay lazy; others are loaded.

    Examples
    --------
    >>> grid = to_grid(wavesim.open_store("sweep.zarr"))  # doctest: +SKIP
    >>> speed = grid["speed_median"].mean("seed")  # doctest: +SKIP
    >>> speed.plot(x="coupling_speed", y="model_gamma")  # doctest: +SKIP
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(
            f"to_grid takes the sweep's Dataset (wavesim.open_store(STORE)), got "
            f"{type(ds).__name__}; select variables after to_grid"
        )
    axes = _axes(ds)
    shape = tuple(int(a["size"]) for a in axes)
    n = int(np.prod(shape)) if shape else 1
    if ds.sizes["member"] != n:
        raise ValueError(
            f"to_grid needs every member of the sweep ({n}), the Dataset has "
            f"{ds.sizes['member']}; select members after to_grid"
        )
    if not axes:  # one member, no axes
        return ds.isel(member=0)
    dims = tuple(a["name"] for a in axes)
    member = np.asarray(ds["member"].values)
    if not np.array_equal(member, np.arange(n)):
        raise ValueError("to_grid needs the members in their order 0..N-1 (do not reorder them)")

    # Coordinates of the new dimensions, from the member coordinates.
    coords: dict = {}
    axis_coords = set()
    for k, a in enumerate(axes):
        # the members at positions 0..size-1 along this axis and 0 along the others
        pick = np.array(
            [np.ravel_multi_index(tuple(j if m == k else 0 for m in range(len(shape))), shape)
             for j in range(a["size"])], dtype=np.int64,
        )  # fmt: skip
        if a["kind"] in ("grid", "seeds"):
            src = ds[a["name"]]
            coords[a["name"]] = (a["name"], np.asarray(src.values)[pick], dict(src.attrs))
            axis_coords.add(a["name"])
        else:
            src = ds[a["name"]]
            coords[a["name"]] = (a["name"], np.arange(a["size"]), dict(src.attrs))
            axis_coords.add(a["name"])
            for c in a["coords"]:
                src = ds[c]
                coords[c] = (a["name"], np.asarray(src.values)[pick], dict(src.attrs))
                axis_coords.add(c)

    def reshape(var: xr.Variable) -> xr.Variable:
        v = var.transpose("member", ...)
        data = v.data
        if not hasattr(data, "dask"):
            data = np.asarray(data)
        data = data.reshape(shape + v.shape[1:])
        return xr.Variable(dims + v.dims[1:], data, v.attrs)

    data_vars = {}
    for name, var in ds.data_vars.items():
        data_vars[name] = reshape(var.variable) if "member" in var.dims else var.variable
    other = {}
    for name, var in ds.coords.items():
        if name in axis_coords:
            continue
        if name == "member":
            other["member"] = reshape(var.variable)
        elif "member" in var.dims:
            other[name] = reshape(var.variable)
        else:
            other[name] = var.variable
    out = xr.Dataset(data_vars, coords={**coords, **other}, attrs=dict(ds.attrs))
    return out


def member_scenario(ds: xr.Dataset, member: int):
    """The scenario of one member of a sweep store.

    The store's ``scenario`` attribute is the base scenario (with ``[set]``); a member's own
    values are its parameter coordinates. This rebuilds the member's
    :class:`~wavesim.scenario.Scenario` from both, e.g. for its ``omega2`` when analysing its
    recorded fields. Relative file paths in the scenario resolve against the working directory.

    Parameters
    ----------
    ds : xarray.Dataset
        The sweep store (:func:`wavesim.open_store`), with its ``member`` dimension.
    member : int
        The member's index (the ``member`` coordinate).

    Returns
    -------
    wavesim.scenario.Scenario
    """
    import json

    from wavesim.scenario import Scenario

    _axes(ds)
    hits = np.flatnonzero(np.asarray(ds["member"].values) == member)
    if hits.size == 0:
        raise IndexError(f"member {member} is not in the Dataset (members {ds['member'].values})")
    i = int(hits[0])
    name = ds.attrs.get("name", "sweep")
    base = Scenario.from_toml(ds.attrs["scenario"], source=f"{name} (sweep store, base scenario)")
    params = {}
    for axis in ds.attrs["sweep_dims"]:
        names = axis["coords"] if axis["kind"] in ("zip", "sample") else [axis["name"]]
        for key, cname in zip(axis["keys"], names, strict=True):
            coord = ds[cname]
            value = np.asarray(coord.values)[i]
            value = value.item() if hasattr(value, "item") else value
            if coord.attrs.get("encoding") == "json":
                value = json.loads(str(value))
            elif isinstance(value, str) or coord.dtype.kind in "OTU":
                value = str(value)
            params[key] = value
    return base.replace(params)
