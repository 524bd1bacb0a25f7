"""Exact discrete physics of the compiled lattice kernels (linear activation).

- dispersion: symplectic Euler on the 5-point Laplacian obeys cos(w dt) = 1 - dt^2 Omega^2 / 2,
  Omega^2 = omega0^2 + c^2 (4 sin^2(kx dx/2) + 4 sin^2(ky dx/2)) / dx^2 (ARCHITECTURE.md sec. 5);
- damping: uncoupled sites decay by the scheme's exact per-step factor sqrt(det M);
- energy: the undamped scheme conserves a modified quadratic energy exactly (periodic and
  reflecting lattices, plain and orientation-modulated coupling);
- absorbing layers reflect < 5 % of an incident packet, reflecting edges ~100 %;
- the orientation modulation is symmetric, m(i, j) = m(j, i).
"""

from __future__ import annotations

import numpy as np
import pytest

from wavesim.coupling import laplacian_stencil
from wavesim.kernels.driver import LatticeKernel
from wavesim.lattice import Lattice
from wavesim.models.oscillator import OscillatorParams, _coupling_sum
from wavesim.stability import max_stable_dt


def kernel_state(rp, dt, y0, v0):
    ker = LatticeKernel(rp, dt, np.float64, members=y0.shape[0])
    st = ker.new_state()
    st.set(y0, v0, ker.colmode)
    return ker, st


# --------------------------------------------------------------------------------------------
# 3. discrete dispersion relation
# --------------------------------------------------------------------------------------------
def test_plane_wave_dispersion_symplectic_euler():
    # 16 x 16 torus, dx = 0.1 mm, c = 0.2 mm/ms, omega0^2 = 1 ms^-2: Omega_max = 5.74 rad/ms,
    # dt_max = 0.348 ms. dt = 0.3 ms (dt Omega_max = 1.72) makes the time discretisation large.
    # 2^14 steps: one FFT bin is 2 pi / (16384 * 0.3 ms) = 1.28e-3 rad/ms.
    n, dx, c, om0sq, dt, nt = 16, 0.1, 0.2, 1.0, 0.3, 2**14
    lat = Lattice((n, n), dx=dx, boundary="periodic")
    p = OscillatorParams(w=laplacian_stencil(c, dx), omega2=om0sq, gamma=0.0, bias=0.0,
                         activation="linear")  # fmt: skip
    rp = p.resolved(lat)
    # Mode numbers (mx, my): axis-aligned, diagonal (4, 4), oblique, and the checkerboard (8, 8).
    modes = [(1, 0), (0, 3), (4, 4), (2, 5), (8, 8)]
    jj, ii = np.meshgrid(np.arange(n), np.arange(n), indexing="xy")
    basis = [np.cos(2 * np.pi * (mx * jj + my * ii) / n) for mx, my in modes]
    # Superpose the modes (linear lattice: they evolve independently), different amplitudes.
    y0 = sum((1.0 + 0.3 * m) * b for m, b in enumerate(basis))[None]
    ker, st = kernel_state(rp, dt, y0, np.zeros_like(y0))
    assert ker.fused
    amp = np.empty((len(modes), nt))
    for t in range(nt):
        ker.advance(st, 1, t * dt)
        for m, b in enumerate(basis):
            amp[m, t] = np.sum(st.y[0] * b) / np.sum(b * b)
    binw = 2 * np.pi / (nt * dt)
    freqs = 2 * np.pi * np.fft.rfftfreq(nt, dt)
    window = np.hanning(nt)
    for m, (mx, my) in enumerate(modes):
        kx, ky = 2 * np.pi * mx / (n * dx), 2 * np.pi * my / (n * dx)
        om2 = om0sq + c**2 * (4 * np.sin(kx * dx / 2) ** 2 + 4 * np.sin(ky * dx / 2) ** 2) / dx**2
        w_discrete = np.arccos(1 - dt**2 * om2 / 2) / dt
        w_continuum = np.sqrt(om0sq + c**2 * (kx**2 + ky**2))
        w_measured = freqs[np.argmax(np.abs(np.fft.rfft(amp[m] * window)))]
        # the measurement resolves the discrete law from the continuum law (> 2 bins apart) ...
        # (observed >= 3.7 bins, up to 1600 for the checkerboard), and from the time-continuous
        # lattice law w = Omega (>= 6 bins), so both discretisations are checked ...
        assert abs(w_continuum - w_discrete) > 2 * binw, (mx, my)
        assert abs(np.sqrt(om2) - w_discrete) > 2 * binw, (mx, my)
        # ... and lands within one bin of the discrete law (observed <= 0.43 bin: nearest bin)
        assert abs(w_measured - w_discrete) <= binw, (mx, my, w_measured, w_discrete)
        assert abs(w_measured - w_continuum) > binw


# --------------------------------------------------------------------------------------------
# 4. exact damping factor of uncoupled oscillators
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("integrator", ["symplectic_euler", "imex"])
@pytest.mark.parametrize("per_site", [False, True])
def test_uncoupled_damping_factor(integrator, per_site):
    # W = 0: every site is y'' = -omega2 y - gamma y'. One step maps (y, v) by
    #   symplectic Euler  M = [[1 - dt^2 w2, dt a], [-dt w2, a]],  a = 1 - dt gamma
    #   IMEX              M = [[1 - dt^2 w2 a, dt a], [-dt w2 a, a]], a = 1 / (1 + dt gamma)
    # (rows: y', v'). det M = a in both cases, so for complex eigenvalues (underdamped)
    # |lambda| = sqrt(det M): sqrt(1 - gamma dt) resp. sqrt(1 / (1 + gamma dt)).
    # Measurement without fitting a phase: any 2-term recurrence y_{n+1} = tr y_n - det y_{n-1}
    # has D_n = y_n^2 - y_{n-1} y_{n+1} = det^n D_0 exactly, so sqrt(D_{n+1}/D_n) is the
    # per-step amplitude factor. Rounding: D_n has relative error ~eps / sin^2(w dt) ~ 1e-13 here.
    shape, dt, nt = (4, 5), 0.05, 300
    rng = np.random.default_rng(3)
    if per_site:
        omega2 = rng.uniform(1.0, 4.0, shape)
        gamma = rng.uniform(0.0, 0.5, shape)
        gamma[0, 0] = 0.0  # an undamped site: factor exactly 1
    else:
        omega2, gamma = 2.0, 0.3
    lat = Lattice(shape, dx=0.1, boundary="periodic")
    p = OscillatorParams(w=np.zeros((3, 3)), omega2=omega2, gamma=gamma, bias=0.0,
                         activation="linear", integrator=integrator)  # fmt: skip
    rp = p.resolved(lat)
    om2 = np.broadcast_to(omega2, shape)
    gam = np.broadcast_to(gamma, shape)
    if integrator == "symplectic_euler":
        a = 1 - dt * gam
        tr = 1 - dt**2 * om2 + a
        expected = np.sqrt(1 - gam * dt)
    else:
        a = 1 / (1 + dt * gam)
        tr = 1 - dt**2 * om2 * a + a
        expected = np.sqrt(1 / (1 + gam * dt))
    assert np.all(tr**2 < 4 * a)  # underdamped everywhere: complex eigenvalues
    y0 = rng.uniform(0.5, 1.0, (1, *shape))
    ker, st = kernel_state(rp, dt, y0, rng.normal(size=(1, *shape)))
    assert ker.fused == (not per_site)
    ys = [st.y[0].copy()]
    for t in range(nt):
        ker.advance(st, 1, t * dt)
        ys.append(st.y[0].copy())
    ys = np.array(ys)
    d = ys[1:-1] ** 2 - ys[:-2] * ys[2:]
    factor = np.sqrt(d[1:] / d[:-1])
    err = np.max(np.abs(factor / expected - 1))
    assert err < 1e-10, err  # observed <= 7e-14
    # The continuum factor exp(-gamma dt / 2) differs by (gamma dt)^2 / 4 (both schemes): 5.6e-5
    # at gamma = 0.3, >= 6e-6 for gamma > 0.1 -- far above the tolerance, so the test tells the
    # scheme's factor from the continuum one.
    damped = gam > 0.1
    assert np.all(np.abs(np.exp(-gam * dt / 2) / expected - 1)[damped] > 1e-6)


# --------------------------------------------------------------------------------------------
# 5. conserved modified energy of undamped symplectic Euler
# --------------------------------------------------------------------------------------------
def _apply_k(y, rp):
    """K y = omega2 y - sum_o W_o m_o y[i + o]   (y'' = -K y), via the lattice's ghost padding."""
    w = rp.params.w
    k = w.shape[0]
    h = k // 2
    ny, nx = rp.lattice.shape
    pad = np.pad(y, h, mode=rp.lattice.pad_mode)
    s = np.zeros_like(y)
    for oy in range(k):
        for ox in range(k):
            term = w[oy, ox] * pad[oy : oy + ny, ox : ox + nx]
            if rp.modulation is not None:
                term = term * rp.modulation[oy * k + ox]
            s += term
    return rp.omega2 * y - s


def _energies(y, v, rp, dt):
    ky = _apply_k(y, rp)
    naive = v.ravel() @ v.ravel() + y.ravel() @ ky.ravel()
    return naive - dt * (v.ravel() @ ky.ravel()), naive


@pytest.mark.parametrize(
    "boundary, kappa, k",
    [("periodic", 0.0, 3), ("reflecting", 0.0, 3), ("reflecting", 1.2, 3),
     ("periodic", 1.2, 5), ("reflecting", 0.0, 5)],
)  # fmt: skip
def test_modified_energy_conserved(boundary, kappa, k):
    # Symplectic Euler for y'' = -K y (K symmetric): v' = v - dt K y, y' = y + dt v'.
    # E = v.v + y.K y - dt v.K y is exactly invariant: with v' = v - dt K y,
    #   E(y', v') = v'.v' + y.K y + dt y.K v'   (expand y' = y + dt v')
    #             = v.v - 2 dt v.K y + dt^2 |K y|^2 + y.K y + dt y.K v - dt^2 |K y|^2 = E(y, v).
    # That needs K = K^T: true for a symmetric stencil on a torus and, with half-sample-symmetric
    # ghosts, on a reflecting lattice too -- also with the orientation modulation, which is
    # symmetric (m(i, j) = m(j, i)). Rounding only: relative drift ~1e-14 over 1e5 steps
    # (random walk of 1e5 x 1e-16 errors); tolerance 1e-10.
    shape, dx, c, om0sq = (12, 10), 0.1, 0.2, 1.0
    rng = np.random.default_rng(4)
    lat = Lattice(shape, dx=dx, boundary=boundary)
    if k == 3:
        # 9-point isotropic Laplacian (diagonals too): the corner ghosts matter
        w = (c / dx) ** 2 * np.array([[1, 4, 1], [4, -20, 4], [1, 4, 1]]) / 6
    else:
        g = np.exp(-np.add.outer(np.arange(-2, 3) ** 2, np.arange(-2, 3) ** 2) / 2.0)
        w = (c / dx) ** 2 * (g - g.sum() * (np.arange(25) == 12).reshape(5, 5))
    assert np.array_equal(w, w[::-1]) and np.array_equal(w, w[:, ::-1])
    theta = rng.uniform(0, np.pi, shape)
    p = OscillatorParams(w=w, kappa=kappa, theta=theta, omega2=om0sq, gamma=0.0, bias=0.0,
                         activation="linear")  # fmt: skip
    rp = p.resolved(lat)
    dt = 0.8 * max_stable_dt(rp)
    y0, v0 = rng.normal(size=(1, *shape)), rng.normal(size=(1, *shape))
    ker, st = kernel_state(rp, dt, y0, v0)
    assert ker.fused == (kappa == 0 and k == 3)
    e0, n0 = _energies(y0[0], v0[0], rp, dt)
    drift, naive_spread = 0.0, 0.0
    for _ in range(100):
        ker.advance(st, 1000, 0.0)
        e, nv = _energies(st.y[0], st.v[0], rp, dt)
        drift = max(drift, abs(e / e0 - 1))
        naive_spread = max(naive_spread, abs(nv / n0 - 1))
    assert drift < 1e-10, drift
    # Observed drift <= 1.2e-14. The naive energy v.v + y.K y is not invariant: at dt = 0.8
    # dt_max its O(dt) oscillation is O(1) (observed 0.95 .. 1.7 relative), so this test would
    # catch a kernel that conserved something else.
    assert naive_spread > 1e-4, naive_spread


def test_damping_breaks_modified_energy():
    # Control: the same measurement with damping does not conserve E (it decays).
    shape, dx, c = (12, 10), 0.1, 0.2
    rng = np.random.default_rng(5)
    lat = Lattice(shape, dx=dx, boundary="reflecting")
    p = OscillatorParams(w=laplacian_stencil(c, dx), omega2=1.0, gamma=1e-3, bias=0.0,
                         activation="linear")  # fmt: skip
    rp = p.resolved(lat)
    dt = 0.8 * max_stable_dt(rp)
    y0, v0 = rng.normal(size=(1, *shape)), rng.normal(size=(1, *shape))
    ker, st = kernel_state(rp, dt, y0, v0)
    e0, _ = _energies(y0[0], v0[0], rp, dt)
    ker.advance(st, 1000, 0.0)
    e, _ = _energies(st.y[0], st.v[0], rp, dt)
    assert e / e0 < 1 - 1e-3


# --------------------------------------------------------------------------------------------
# 6. absorbing layer vs reflecting edge
# --------------------------------------------------------------------------------------------
# Wave equation (omega2 = 0, gamma = 0), c = 0.1 mm/ms, dx = 0.1 mm, dt = 0.5 ms (c dt/dx = 0.5).
# A Gaussian beam packet (carrier wavelength 1.2 mm = 12 sites, sigma_x = 1.2 mm, sigma_y = 1.6 mm,
# Rayleigh range ~27 mm >> path) travels in +x toward the right edge. Sponge: width 3.6 mm
# (3 wavelengths, 36 sites), damping 0.5/ms at the edge: round-trip amplitude attenuation
# ~exp(-damping * width / (2 c)) = exp(-9), and the smooth ramp reflects little.
DX_A, C_A, DT_A, LAM = 0.1, 0.1, 0.5, 1.2
SIG_X, SIG_Y, SPONGE, SPONGE_DAMPING = 1.2, 1.6, 3.6, 0.5


def _right_moving_packet(shape, x0, yc):
    """A packet exactly right-moving under the discrete scheme.

    The complex packet psi = env * exp(i k0 x) has (for k0 sigma_x = 6.3) only +kx Fourier
    content; each mode's discrete frequency w(k) (cos(w dt) = 1 - dt^2 Omega^2/2) gives
    y_{-1} = Re ifft(psi_k exp(+i w dt)), and symplectic Euler has v_0 = (y_0 - y_{-1}) / dt.
    """
    ny, nx = shape
    yy, xx = np.meshgrid(np.arange(ny) * DX_A, np.arange(nx) * DX_A, indexing="ij")
    psi = np.exp(-((xx - x0) ** 2) / (2 * SIG_X**2) - (yy - yc) ** 2 / (2 * SIG_Y**2)
                 + 1j * 2 * np.pi / LAM * (xx - x0))  # fmt: skip
    ky, kx = np.meshgrid(2 * np.pi * np.fft.fftfreq(ny, DX_A), 2 * np.pi * np.fft.fftfreq(nx, DX_A),
                         indexing="ij")  # fmt: skip
    om2 = (C_A / DX_A) ** 2 * (4 * np.sin(kx * DX_A / 2) ** 2 + 4 * np.sin(ky * DX_A / 2) ** 2)
    w = np.arccos(1 - DT_A**2 * om2 / 2) / DT_A
    prev = np.fft.ifft2(np.fft.fft2(psi) * np.exp(1j * w * DT_A)).real
    return psi.real, (psi.real - prev) / DT_A


def _reflection(boundary, sponge_damping=SPONGE_DAMPING):
    """Reflected / incident peak amplitude at the right edge of a (ny, nx) lattice.

    Reference: the same lattice extended to the right by nx + 36 columns (same boundary kind, so
    the top, bottom and left edges act identically); in the common interior box the difference of
    the two runs is the wave returned by the right edge alone. The incident amplitude is the
    reference's peak in the mirror image of that box behind the right edge (x -> 2 x_edge - x,
    same times): the amplitude a perfect mirror would send back into the box, so a Neumann edge
    gives ~1 whatever the beam's spreading and dispersion.
    """
    ws = int(round(SPONGE / DX_A))  # 36 sites
    ny = 2 * (ws + int(4 * SIG_Y / DX_A)) + 1  # beam 4 sigma clear of the top/bottom sponge
    x0 = (ws + 4 * SIG_X / DX_A) * DX_A  # packet 4 sigma clear of the left sponge
    nx = ws + int(4 * SIG_X / DX_A) + 60 + ws + 1  # 60 sites from the packet to the sponge
    p = OscillatorParams(w=laplacian_stencil(C_A, DX_A), omega2=0.0, gamma=0.0, bias=0.0,
                         activation="linear")  # fmt: skip
    runs = []
    for width in (nx, 2 * nx + ws):
        lat = Lattice((ny, width), dx=DX_A, boundary=boundary, sponge_width=SPONGE,
                      sponge_damping=sponge_damping)  # fmt: skip
        y0, v0 = _right_moving_packet((ny, width), x0, (ny - 1) * DX_A / 2)
        runs.append(kernel_state(p.resolved(lat), DT_A, y0[None], v0[None]))
    (ka, sa), (kr, sr) = runs
    rows = slice(ws, ny - ws)
    box = slice(ws, nx - ws)  # interior (outside every sponge)
    mirror = slice(2 * nx - 1 - (nx - ws - 1), 2 * nx - 1 - ws + 1)  # j -> 2 nx - 1 - j
    # until the reflection from the lattice edge has crossed back through the whole box
    nsteps = int(2.5 * (nx - x0 / DX_A) * DX_A / C_A / DT_A)
    reflected = incident = 0.0
    for _ in range(0, nsteps, 2):
        ka.advance(sa, 2, 0.0)
        kr.advance(sr, 2, 0.0)
        reflected = max(reflected, np.abs(sa.y[0, rows, box] - sr.y[0, rows, box]).max())
        incident = max(incident, np.abs(sr.y[0, rows, mirror]).max())
    assert incident > 0.5  # the packet (amplitude 1) did reach the mirror box
    return reflected / incident


def test_absorbing_layer_reflects_little():
    r = _reflection("absorbing")
    # observed 1.4e-3 (0.14 %) for width 3.6 mm = 3 wavelengths, damping 0.5/ms
    assert r < 0.05, r


def test_reflecting_edge_reflects_everything():
    r = _reflection("reflecting")
    # Neumann edge: reflection coefficient +1. The half-sample-symmetric edge is exactly the
    # method of images, so the mirror comparison gives 1 - 2.5e-11 (far edges only); tolerance 1 %.
    assert 0.99 < r < 1.01, r
    # and an absorbing lattice whose sponge has no damping is just a reflecting one
    assert _reflection("absorbing", sponge_damping=0.0) > 0.99


# --------------------------------------------------------------------------------------------
# 10b. symmetric orientation modulation
# --------------------------------------------------------------------------------------------
def _operator_matrix(lat, modulation, w):
    """Dense coupling operator A with (W * y)_i = sum_j A[i, j] y[j], built from index padding."""
    ny, nx = lat.shape
    k = w.shape[0]
    h = k // 2
    idx = np.pad(np.arange(ny * nx).reshape(ny, nx), h, mode=lat.pad_mode)
    a = np.zeros((ny * nx, ny * nx))
    rows = np.arange(ny * nx)
    for oy in range(k):
        for ox in range(k):
            cols = idx[oy : oy + ny, ox : ox + nx].ravel()
            m = 1.0 if modulation is None else modulation[oy * k + ox].ravel()
            np.add.at(a, (rows, cols), w[oy, ox] * m)
    return a


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("boundary", ["periodic", "reflecting", "absorbing"])
def test_modulation_symmetric(boundary, k):
    # m(i, j) = exp(kappa (cos 2(theta_i - theta_j) - 1)) over every (site, neighbour) pair,
    # neighbours across an edge being the boundary's ghost images. With a uniform all-ones stencil
    # the operator matrix is M[i, j] = sum over offsets o with image(i + o) = j of m_o(i): it must
    # be symmetric (exactly: cos is even and a - b = -(b - a) in floating point).
    rng = np.random.default_rng(6)
    shape = (6, 7)
    lat = Lattice(shape, dx=0.1, boundary=boundary)
    theta = rng.uniform(0, np.pi, shape)
    p = OscillatorParams(w=np.ones((k, k)), kappa=2.0, theta=theta)
    rp = p.resolved(lat)
    mmat = _operator_matrix(lat, rp.modulation, p.w)
    assert np.std(mmat[mmat > 0]) > 0.1  # genuinely non-uniform factors
    np.testing.assert_array_equal(mmat, mmat.T)
    # The dense matrix is the operator the reference applies (ties the index construction to the
    # package's own coupling sum).
    y = rng.normal(size=shape)
    np.testing.assert_allclose(
        (mmat @ y.ravel()).reshape(shape), _coupling_sum(y[None], p.w, rp.modulation, lat)[0],
        rtol=0, atol=1e-12,
    )  # fmt: skip
