"""Orientation maps, plaquette winding and pinwheel statistics.

Conventions under test (docs/conventions.md): arrays [y, x]; winding counter-clockwise around
(x,y)->(x+1,y)->(x+1,y+1)->(x,y+1); pinwheel charge = winding(2 theta)/2;
Lambda = 2 pi / <|k|> (power-weighted); densities per Lambda^2.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from wavesim.analysis.orientation_maps import pinwheels
from wavesim.analysis.winding import find_singularities, plaquette_winding, wrap_phase
from wavesim.maps import (
    estimate_wavelength,
    expected_pinwheel_density,
    orientation_map_from_array,
    pinwheel_crystal,
    random_orientation_map,
)


# --------------------------------------------------------------------------------------------
# pinwheel statistics of random maps
# --------------------------------------------------------------------------------------------
def test_thin_ring_density_is_pi():
    # 64 Lambda x 64 Lambda torus, 12 px per Lambda, 10 seeds. Measured (100+ maps): the
    # plaquette count overshoots the continuum value by ~+0.3 % at 12 px per Lambda
    # (discretisation; ~0.4/(px per Lambda)^2), and one map scatters by sd ~0.022, so the
    # 10-seed mean is pi + 0.007 +- 0.007. Tolerance (brief): |mean - pi| < 0.03.
    n = 64 * 12  # Lambda = 0.6 mm = 12 px of 0.05 mm
    dens = []
    for seed in range(10):
        theta = random_orientation_map((n, n), 0.6, dx=0.05, seed=seed)
        ds = pinwheels(theta)
        assert ds.attrs["periodic"] is True
        assert ds.attrs["density_units"] == "pinwheels per Lambda^2"
        dens.append(ds.attrs["density"])
    assert abs(np.mean(dens) - np.pi) < 0.03, dens
    # the generator's own spectrum: thin ring gives pi to < 1e-3
    assert expected_pinwheel_density((n, n), 12.0, dx=1.0) == pytest.approx(np.pi, abs=1e-3)


def test_gaussian_ring_density_matches_spectrum():
    # Relative width 0.3: expected pi <k^2>/<k>^2 = 3.358 (continuum value 3.3583). Measured at
    # 12 px per Lambda on 32 Lambda tori: -0.55 % +- 0.12 % (60 maps); one map scatters by ~0.9 %.
    # Tolerance (brief): mean over 10 seeds within 2 %.
    n = 32 * 12
    expected = expected_pinwheel_density((n, n), 12.0, spectrum_width=0.3)
    assert expected == pytest.approx(3.3583, abs=2e-3)
    dens = [
        pinwheels(random_orientation_map((n, n), 12.0, spectrum_width=0.3, seed=s)).attrs["density"]
        for s in range(10)
    ]
    assert np.mean(dens) == pytest.approx(expected, rel=0.02), dens


def test_wavelength_estimate_unbiased_thin_ring():
    # Each map within 0.5 % (brief); measured scatter ~0.05 % per map, mean bias +0.02 %.
    for seed, (shape, lam, dx) in enumerate(
        [((384, 384), 12.0, 1.0), ((400, 480), 0.8, 0.05), ((256, 256), 16.0, 1.0)]
    ):
        theta = random_orientation_map(shape, lam, dx=dx, seed=seed)
        assert estimate_wavelength(theta) == pytest.approx(lam, rel=0.005)
    # A Gaussian ring of width 0.3 has <|k|> = k0 / 0.91747 (continuum), i.e. a shorter Lambda.
    theta = random_orientation_map((384, 384), 12.0, spectrum_width=0.3, seed=1)
    assert estimate_wavelength(theta) == pytest.approx(12.0 * 0.91747, rel=0.005)


@pytest.mark.parametrize("width", [0.0, 0.3, 1.0])
def test_net_charge_zero_on_torus(width):
    # Exact (integer) identity: every edge enters two plaquettes with opposite signs.
    for seed, shape in enumerate([(96, 96), (84, 120), (100, 72)]):
        theta = random_orientation_map(shape, 12.0, spectrum_width=width, seed=seed)
        ds = pinwheels(theta)
        assert ds.attrs["n_positive"] == ds.attrs["n_negative"] > 0
        assert float(ds["charge"].sum()) == 0.0
        # Quantised angles (8 levels) put differences of exactly pi on many edges; a per-loop
        # wrap into [-pi, pi) would leave a net charge there (-118 on one such map).
        quantised = np.round(theta.values / (np.pi / 8)) * (np.pi / 8)
        w = plaquette_winding(2 * quantised, periodic=True)
        assert w.shape == shape
        assert int(w.sum()) == 0 and np.abs(w).sum() > 0


# --------------------------------------------------------------------------------------------
# crystal
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "lam", "dx"),
    [((96, 120), 12.0, 1.0), ((78, 52), 0.65, 0.05), ((75, 60), 15.0, 1.0)],
)
def test_crystal_four_per_lambda2_checkerboard(shape, lam, dx):
    theta = pinwheel_crystal(shape, lam, dx=dx)
    assert theta.attrs["periodic"] is True
    ds = pinwheels(theta)
    cells = (shape[0] * dx / lam) * (shape[1] * dx / lam)
    assert ds.sizes["pinwheel"] == round(4 * cells)  # exact count
    assert ds.attrs["wavelength"] == pytest.approx(lam, rel=1e-9)  # 4 spectral peaks at k0
    assert ds.attrs["density"] == pytest.approx(4.0, rel=1e-9)
    assert set(np.unique(ds["charge"].values)) == {-0.5, 0.5}
    # every site of the lattice x_c + (Lambda/2) Z^2 holds exactly one pinwheel ...
    xc = theta.attrs["pinwheel_offset"]
    m = (ds["x"].values - xc) / (lam / 2)
    n = (ds["y"].values - xc) / (lam / 2)
    assert np.allclose(m, np.round(m), atol=0.1 * dx / (lam / 2))  # within 0.1 px of the site
    assert np.allclose(n, np.round(n), atol=0.1 * dx / (lam / 2))
    sites = {(int(a), int(b)) for a, b in zip(np.round(m), np.round(n), strict=True)}
    assert len(sites) == ds.sizes["pinwheel"]
    # ... and charges alternate like a checkerboard: nearest neighbours have opposite sign
    parity = (-1.0) ** (np.round(m) + np.round(n))
    signed = ds["charge"].values * parity
    assert np.all(signed == signed[0])


def test_crystal_no_zero_on_nodes_and_periodic_flag():
    # For Lambda/dx = 14 a half-pixel shift would put zeros on nodes; the chosen offset keeps every
    # zero line >= 1/4 px from the pixel centres, so |z| stays well above 0 on the grid.
    for lam in (12.0, 13.0, 14.0, 12.5):
        theta = pinwheel_crystal((56, 56), lam)
        assert float(theta["amplitude"].min()) > 0.05
    assert pinwheel_crystal((60, 60), 12.0).attrs["periodic"] is True
    assert pinwheel_crystal((60, 66), 12.0).attrs["periodic"] is False


# --------------------------------------------------------------------------------------------
# winding conventions
# --------------------------------------------------------------------------------------------
def test_winding_sign_convention():
    y, x = np.mgrid[0:12, 0:10].astype(float)
    x0, y0 = 4.3, 6.8
    z = (x - x0) + 1j * (y - y0)
    w = plaquette_winding(np.angle(z))
    assert w.shape == (11, 9)
    assert w[6, 4] == 1 and np.abs(w).sum() == 1  # plaquette [i=6, j=4] holds (4.3, 6.8)
    assert plaquette_winding(np.angle(np.conj(z)))[6, 4] == -1
    # batch of frames, and a zero across the seam of a torus (plaquette [11, 9] wraps around)
    frames = np.stack([np.angle(z), np.angle(np.conj(z))])
    assert plaquette_winding(frames)[:, 6, 4].tolist() == [1, -1]
    # periodic field with zeros at x in {4.5, 9.5}, y in {5.5, 11.5}, charges alternating
    seam = np.angle(np.sin(2 * np.pi * (x - 9.5) / 10) + 1j * np.sin(2 * np.pi * (y - 11.5) / 12))
    wp = plaquette_winding(seam, periodic=True)
    assert wp.shape == (12, 10)
    assert (wp[11, 9], wp[11, 4], wp[5, 9], wp[5, 4]) == (1, -1, -1, 1)
    assert np.abs(wp).sum() == 4
    # NaN anywhere in a plaquette -> 0
    hole = np.angle(z)
    hole[7, 5] = np.nan
    assert plaquette_winding(hole)[6, 4] == 0


@pytest.mark.parametrize(("x0", "y0"), [(4.3, 6.8), (5.05, 5.93), (4.9, 6.1), (5.5, 6.5)])
def test_pinwheel_charge_and_subpixel_position(x0, y0):
    dx = 0.05
    y, x = np.mgrid[0:12, 0:11].astype(float)
    theta = orientation_map_from_array(0.5 * np.angle((x - x0) + 1j * (y - y0)), dx)
    ds = pinwheels(theta)
    assert ds.sizes["pinwheel"] == 1
    assert float(ds["charge"][0]) == 0.5
    # within 0.1 px (brief); the phase-only linear fit is exact for this field
    assert abs(float(ds["x"][0]) - x0 * dx) < 0.1 * dx
    assert abs(float(ds["y"][0]) - y0 * dx) < 0.1 * dx
    assert float(pinwheels(np.pi - theta.values)["charge"][0]) == -0.5
    # anisotropic linear zero, phase only, and the bilinear zero of z when z is known
    a, b = 0.7 - 1.1j, 0.4 + 0.9j
    field = a * (x - x0) + b * (y - y0)
    for found in (find_singularities(np.angle(field)), find_singularities(field)):
        assert found.charge.tolist() == [np.sign(np.imag(np.conj(a) * b))]
        assert np.hypot(found.x[0] - x0, found.y[0] - y0) < 1e-6


def test_rectangle_charge_equals_boundary_winding():
    theta = random_orientation_map((120, 120), 12.0, seed=5)
    phi = 2 * theta.values[10:90, 20:110]  # a non-periodic window
    w = plaquette_winding(phi)
    assert w.shape == (79, 89)
    rng = np.random.default_rng(0)
    checked_nonzero = 0
    for _ in range(50):
        i0, i1 = np.sort(rng.choice(80, 2, replace=False))
        j0, j1 = np.sort(rng.choice(90, 2, replace=False))
        # boundary nodes counter-clockwise: bottom (y=i0) left->right, right side up, top
        # right->left, left side down
        path = np.concatenate(
            [
                phi[i0, j0:j1],
                phi[i0:i1, j1],
                phi[i1, j1:j0:-1],
                phi[i1:i0:-1, j0],
                phi[i0, j0 : j0 + 1],
            ]
        )
        boundary = np.sum(wrap_phase(np.diff(path))) / (2 * np.pi)
        assert boundary == pytest.approx(round(boundary), abs=1e-9)
        inside = int(w[i0:i1, j0:j1].sum())
        assert inside == round(boundary)
        checked_nonzero += inside != 0
    assert checked_nonzero > 10  # the identity was exercised on charged rectangles


def test_measured_map_with_mask_and_wrapping():
    theta = random_orientation_map((96, 96), 12.0, seed=2)
    raw = theta.values + np.pi * np.random.default_rng(1).integers(-3, 4, size=(96, 96))
    raw[:10, :] = np.nan  # outside the map
    m = orientation_map_from_array(np.rad2deg(raw), 0.05, units="deg")
    assert m.dims == ("y", "x") and m.attrs["units"] == "rad" and m["x"].attrs["units"] == "mm"
    valid = np.isfinite(m.values)
    assert np.all((m.values[valid] >= 0) & (m.values[valid] < np.pi))
    assert np.allclose(np.exp(2j * m.values[valid]), np.exp(2j * theta.values[valid]))
    ds = pinwheels(m)
    assert ds.attrs["periodic"] is False
    assert ds.attrs["area"] == pytest.approx(85 * 95 * 0.05**2)  # plaquettes with 4 valid corners
    assert np.all(ds["y"].values > 9 * 0.05)
    # same windings as the torus map in the valid window
    full = plaquette_winding(2 * theta.values, periodic=True)[10:95, :95]
    assert ds.sizes["pinwheel"] == np.abs(full).sum()


# --------------------------------------------------------------------------------------------
# reproducibility and input validation
# --------------------------------------------------------------------------------------------
def test_seed_reproducibility():
    a = random_orientation_map((64, 80), 12.0, spectrum_width=0.2, seed=7)
    b = random_orientation_map((64, 80), 12.0, spectrum_width=0.2, seed=7)
    c = random_orientation_map((64, 80), 12.0, spectrum_width=0.2, seed=8)
    assert a.attrs["seed"] == 7
    assert np.array_equal(a.values, b.values)
    assert np.array_equal(a["amplitude"].values, b["amplitude"].values)
    assert not np.allclose(a.values, c.values)
    d = random_orientation_map((64, 80), 12.0)  # fresh seed, stored
    e = random_orientation_map((64, 80), 12.0, seed=d.attrs["seed"])
    assert isinstance(d.attrs["seed"], int) and np.array_equal(d.values, e.values)
    assert isinstance(a, xr.DataArray) and a.dims == ("y", "x")
    assert np.all((a.values >= 0) & (a.values < np.pi))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: random_orientation_map((64, 64), 0.0), "wavelength"),
        (lambda: random_orientation_map((64, 64), -3.0), "wavelength"),
        (lambda: random_orientation_map((64, 64), 3.0), "wavelength"),  # < 4 px per wavelength
        (lambda: random_orientation_map((64, 64), 0.3, dx=0.1), "wavelength"),
        (lambda: random_orientation_map((64, 64), 12.0, spectrum_width=-1), "spectrum_width"),
        (lambda: random_orientation_map((64,), 12.0), "shape"),
        (lambda: random_orientation_map((64, 64), 12.0, seed=1.5), "seed"),
        (lambda: pinwheel_crystal((64, 64), -1.0), "wavelength"),
        (lambda: pinwheel_crystal((64, 64), 12.0, dx=0), "dx"),
        (lambda: orientation_map_from_array(np.zeros(10), 1.0), "theta"),
        (lambda: orientation_map_from_array(np.zeros((4, 4)), -1.0), "dx"),
        (lambda: pinwheels(np.zeros(10)), "theta"),
        (lambda: estimate_wavelength(np.zeros((2, 3, 3))), "theta"),
        (lambda: plaquette_winding(np.zeros(10)), "phase"),
    ],
)
def test_bad_inputs_raise_naming_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
