"""Linear stability limit of the integrators: analytic values and the edge in actual runs.

For the 5-point Laplacian ``W = (c/dx)^2 L`` plus ``omega2`` the largest mode frequency is
``Omega_max^2 = omega2 + 8 c^2/dx^2`` (the checkerboard mode, present on an even periodic lattice).
A mode's one-step matrix has ``det = alpha`` and trace ``1 + alpha - dt^2 Omega^2 * (beta/dt)``;
with ``0 < alpha < 1`` the only way out of the unit circle is through ``lambda = -1``
(``1 + tr + det = 0``), which gives

- symplectic Euler (``alpha = 1 - dt gamma``): ``dt^2 Omega^2 + 2 gamma dt = 4``
  -> ``dt_max = (-gamma + sqrt(gamma^2 + 4 Omega^2)) / Omega^2`` (= ``2/Omega_max`` undamped);
- IMEX (``alpha = 1/(1 + dt gamma)``): ``dt^2 Omega^2 = 4 + 2 gamma dt``
  -> ``dt_max = (gamma + sqrt(gamma^2 + 4 Omega^2)) / Omega^2``.

``max_stable_dt`` bisects to 1e-9 relative, so it must match these to 1e-6 (observed ~5e-10).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from wavesim.coupling import laplacian_stencil
from wavesim.kernels.driver import LatticeKernel
from wavesim.lattice import Lattice
from wavesim.models.oscillator import OscillatorParams
from wavesim.stability import (
    StabilityError,
    check_stability,
    max_stable_dt,
    omega_max,
    spectral_radius,
)

DX = 0.1  # mm
C = 0.2  # mm/ms  -> (c/dx)^2 = 4 ms^-2
OMEGA2 = 1.0  # ms^-2 (> 0: no marginal k = 0 mode with linear drift)

# (integrator, gamma, boundary, n, velocity-stencil scale)
CONFIGS = {
    "se_undamped": ("symplectic_euler", 0.0, "periodic", 16, 0.0),
    "se_damped": ("symplectic_euler", 0.5, "periodic", 16, 0.0),
    "imex_undamped": ("imex", 0.0, "periodic", 16, 0.0),
    "imex_damped": ("imex", 2.0, "periodic", 16, 0.0),
    # Reflecting: the Neumann lattice's top mode is 4 cos^2(pi/2n) per axis, 0.1 % below the
    # Brillouin-zone bound the analysis uses at n = 32, so +1 % still diverges.
    "se_damped_reflecting": ("symplectic_euler", 0.2, "reflecting", 32, 0.0),
    "imex_damped_reflecting": ("imex", 1.0, "reflecting", 32, 0.0),
    # velocity coupling (k-dependent damping, Kelvin-Voigt-like): no closed form used, only the
    # run-time edge
    "se_velocity_stencil": ("symplectic_euler", 0.1, "periodic", 16, 0.02),
}


def resolved(name):
    integrator, gamma, boundary, n, wv_scale = CONFIGS[name]
    lat = Lattice((n, n), dx=DX, boundary=boundary)
    wv = wv_scale * laplacian_stencil(1.0, 1.0) if wv_scale else None
    p = OscillatorParams(w=laplacian_stencil(C, DX), wv=wv, omega2=OMEGA2, gamma=gamma,
                         activation="linear", integrator=integrator)  # fmt: skip
    return p.resolved(lat)


def analytic_dt_max(integrator, gamma):
    om2 = OMEGA2 + 8 * C**2 / DX**2
    if integrator == "symplectic_euler":
        return (-gamma + np.sqrt(gamma**2 + 4 * om2)) / om2
    return (gamma + np.sqrt(gamma**2 + 4 * om2)) / om2


@pytest.mark.parametrize("name", [n for n in CONFIGS if CONFIGS[n][4] == 0])
def test_max_stable_dt_analytic(name):
    integrator, gamma, *_ = CONFIGS[name]
    rp = resolved(name)
    assert omega_max(rp) == pytest.approx(np.sqrt(OMEGA2 + 8 * C**2 / DX**2), rel=1e-12)
    dt_max = max_stable_dt(rp)
    assert dt_max == pytest.approx(analytic_dt_max(integrator, gamma), rel=1e-6)
    if gamma == 0:
        assert dt_max == pytest.approx(2 / omega_max(rp), rel=1e-6)
    # damping tightens the explicit limit and relaxes the IMEX one
    if gamma > 0:
        undamped = analytic_dt_max(integrator, 0.0)
        assert dt_max < undamped if integrator == "symplectic_euler" else dt_max > undamped


def _run_max(rp, dt, nsteps, seed=0):
    """max |y| / max |y0| over a run from a random state (all Fourier modes present)."""
    rng = np.random.default_rng(seed)
    n = rp.lattice.shape
    y0, v0 = rng.normal(size=(1, *n)), rng.normal(size=(1, *n))
    ker = LatticeKernel(rp, dt, np.float64)
    st = ker.new_state()
    st.set(y0, v0, ker.colmode)
    peak = 0.0
    chunk = max(1, nsteps // 50)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(0, nsteps, chunk):
            ker.advance(st, chunk, 0.0)
            m = np.max(np.abs(st.y))
            if not np.isfinite(m):
                return np.inf
            peak = max(peak, m)
    return peak / np.max(np.abs(y0))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_stability_edge_in_runs(name):
    rp = resolved(name)
    dt_max = max_stable_dt(rp)
    # Below: 20000 steps stay bounded. Undamped symplectic Euler keeps the modified energy, whose
    # level sets are ellipses of aspect ~1/sqrt(1 - (dt Omega/2)^2) ~ 7 at 0.99: peaks stay within
    # ~10x the start; 100x is the bound (a growth of even 1.001 per step would reach 1e8).
    assert _run_max(rp, 0.99 * dt_max, 20_000) < 100
    # Above: the worst mode grows by rho per step (rho = 1.10 .. 1.33 here); run long enough for
    # a 1e8 growth of its (random, O(1/n) relative) initial share.
    rho = spectral_radius(rp, 1.01 * dt_max)
    assert rho > 1.01
    nsteps = int(np.ceil(np.log(1e12) / np.log(rho)))
    assert _run_max(rp, 1.01 * dt_max, nsteps) > 1e6


@pytest.mark.parametrize("name", list(CONFIGS))
def test_check_stability(name):
    rp = resolved(name)
    dt_max = max_stable_dt(rp)
    assert check_stability(rp, 0.99 * dt_max) == pytest.approx(dt_max, rel=1e-12)
    with pytest.raises(StabilityError) as info:
        check_stability(rp, 1.01 * dt_max, source="scenario.toml")
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert msg.startswith("scenario.toml: ")
    found = re.search(r"largest stable dt is ([0-9.eE+-]+) ms", msg)
    assert found, msg
    # printed with 6 significant digits: relative rounding <= 5e-6
    assert float(found.group(1)) == pytest.approx(dt_max, rel=5e-6)
    # spectral radius: <= 1 (+ rounding) just below the edge, > 1 just above
    assert spectral_radius(rp, 0.99 * dt_max) <= 1 + 1e-9
    assert spectral_radius(rp, 1.001 * dt_max) > 1 + 1e-9
