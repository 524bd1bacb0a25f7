"""Subnormals are flushed inside the kernels only; the caller's floating-point mode is restored."""

from __future__ import annotations

import numpy as np
import pytest

from wavesim.coupling import laplacian_stencil
from wavesim.kernels.driver import LatticeKernel
from wavesim.kernels.fpenv import IS_X86
from wavesim.lattice import Lattice
from wavesim.models.oscillator import OscillatorParams

pytestmark = pytest.mark.skipif(not IS_X86, reason="FTZ/DAZ is an x86 MXCSR feature")

TINY32 = np.finfo(np.float32).tiny  # smallest normal float32, 1.18e-38


@pytest.mark.parametrize("mode", ["serial", "rows", "members"])
def test_kernel_flushes_subnormals_and_restores_fp_mode(mode):
    lat = Lattice((8, 8), dx=1.0)
    p = OscillatorParams(w=laplacian_stencil(0.5, 1.0), omega2=1.0, gamma=0.0, activation="linear")
    ker = LatticeKernel(p.resolved(lat), 0.1, np.float32, members=2, threads=2)
    st = ker.new_state()
    # a state of subnormals (and normals just above): one step multiplies by ~1, so IEEE
    # arithmetic would keep subnormals; with DAZ they are read as 0 and results flush to 0
    y0 = np.full((2, 8, 8), 3e-39, dtype=np.float32)  # subnormal
    y0[:, 0, 0] = 1e-30  # a normal value whose neighbours' updates stay normal
    st.set(y0, np.zeros_like(y0), ker.colmode)
    ker.advance(st, 1, 0.0, mode=mode)
    y = np.asarray(st.y)
    small = np.abs(y[(y != 0)])
    assert small.min() >= TINY32  # no subnormal survives a kernel step
    assert np.all(y[:, 4, 4] == 0)  # far from the normal seed, the subnormal state flushed to 0
    # IEEE subnormals are back for numpy in this thread after the call
    a = np.array([3e-39], dtype=np.float32)
    assert a[0] != 0 and (a * np.float32(1.0))[0] != 0
    b = np.array([5e-324])
    assert (b * 1.0)[0] != 0
