"""Compiled forward kernels of the damped-oscillator lattice.

One step of either integrator, for every site (row ``i``, column ``x``) of member ``b``::

    s   = sum_o W_o(i) * y[i + o] + sum_o What_o(i) * v[i + o] + bias(i) + g * u(i, t_n)
          + e[b, f(n), i]                            (optional per-member input frames)
    a   = sigma(s)                                   (fast tanh, exact tanh, or identity)
    v'  = alpha(i) * v + beta(i) * (a + xi) - delta(i) * y
    y'  = y + dt * v'

with, for symplectic Euler (the Neural-Wave-Machine step: velocity first, then position)
``alpha = 1 - dt*gamma, beta = dt, delta = dt*omega2``, and for IMEX (implicit damping)
``alpha = 1/(1 + dt*gamma), beta = dt*alpha, delta = dt*omega2*alpha``. ``xi`` is the
Euler-Maruyama noise, pre-scaled to ``eta * N(0,1) / sqrt(dt)`` so that ``beta * xi`` is the
``eta * sqrt(dt) * N(0, 1)`` increment (divided by ``1 + dt*gamma`` for IMEX).

Layout: the state arrays are ``(members, ny + 2h, nx + 2h)``, framed by ``h = k // 2`` ghost rows
and columns that :func:`fill_ghosts` refreshes after every step (periodic wrap or
half-sample-symmetric reflection, as ``numpy.pad`` modes "wrap" and "symmetric"). Two buffers
ping-pong; the drivers leave the newest state in ``(y, v)`` when ``nsteps`` is even and in
``(y2, v2)`` when it is odd (``wavesim.kernels.driver.LatticeKernel.advance`` tracks this).

``error_model="numpy"`` matters: under numba's default Python error model every float division
carries a ZeroDivisionError check, which stops LLVM from vectorizing the fast-tanh loop (8x).
Subnormals are flushed to zero while a kernel runs (:mod:`wavesim.kernels.fpenv`).

All floating-point constants arrive as arrays of the state dtype (``cfg.scal``), or are typed
per dtype at compile time (fast tanh), so a float32 kernel never promotes to float64. Hot loops
keep every branch outside the innermost loop.
The plain-numpy reference of the same step is :func:`wavesim.models.oscillator.reference_step`.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit, prange

from wavesim.kernels.fpenv import flush_subnormals, restore_fpenv
from wavesim.kernels.tanh import fast_tanh

#: fastmath flags: contraction to FMA, reciprocal, signed zeros. Not nnan/ninf: blow-ups must stay
#: visible as NaN/inf.
FASTMATH = {"contract", "arcp", "nsz"}

# Activation codes.
ACT_FAST_TANH = 0
ACT_LINEAR = 1
ACT_EXACT_TANH = 2
# Stencil codes.
W_FUSED3 = 0  # uniform 3x3 stencil, fused single-pass row update (the fast path)
W_FUSED5 = 3  # the same with zero corners (5-point stencils such as the Laplacian)
W_UNIFORM = 1  # uniform k x k stencil, staged
W_SITE = 2  # per-site weights (orientation-modulated coupling), staged
# Velocity-stencil codes.
WV_NONE = 0
WV_UNIFORM = 1
WV_SITE = 2
# Drive codes.
DRIVE_NONE = 0
DRIVE_LINEAR = 1  # u = sum_m c[n, m] * basis[m]
DRIVE_EXP = 2  # u = c[n, 0] * exp(sum_{m>=1} c[n, m] * basis[m])
# Column (ghost) modes.
COL_PERIODIC = 0
COL_REFLECT = 1

KernelConfig = namedtuple(
    "KernelConfig",
    [
        "colmode",  # int: COL_PERIODIC or COL_REFLECT
        "w_mode",  # int: W_FUSED3 / W_UNIFORM / W_SITE
        "w",  # (k, k) uniform position stencil
        "w_site",  # (k*k, ny, nx) per-site position weights, or (1, 1, 1) unused
        "wv_mode",  # int: WV_NONE / WV_UNIFORM / WV_SITE
        "wv",  # (k, k) uniform velocity stencil
        "wv_site",  # (k*k, ny, nx) per-site velocity weights, or (1, 1, 1)
        "act",  # int activation code
        "uniform",  # bool: alpha, beta, delta, bias are scalars (cfg.scal)
        "scal",  # (5,): alpha, beta, delta, bias, dt
        "site",  # (4, ny, nx): alpha, beta, delta, bias per site, or (4, 1, 1)
        "drive_kind",  # int drive code
        "dcoef",  # (nsteps, m) drive coefficients per step of this call (gain folded in)
        "dbasis",  # (m, ny, nx) drive spatial basis
        "has_noise",  # bool
        "noise",  # (members, nsteps, ny, nx) pre-scaled noise, or (1, 1, 1, 1)
        "has_mask",  # bool
        "mask",  # (ny, nx) 0/1 in state dtype, or (1, 1)
        "has_input",  # bool: a per-member input sequence is added to s
        "inp",  # (members, frames, ny, nx) input frames in state dtype, or (1, 1, 1, 1)
        "inp_frame",  # (nsteps,) int64 frame of each step of this call (-1: no input)
    ],
)


@njit(cache=True, error_model="numpy")
def count_nonfinite(bits_a, bits_b, exponent):
    """Number of NaN/inf elements in two float arrays given as unsigned-integer views.

    A float is NaN or inf exactly when its exponent bits are all ones (``exponent`` is that mask:
    ``0x7F800000`` for float32, ``0x7FF0000000000000`` for float64). An integer test cannot be
    rewritten by floating-point optimisations, and the integer sum vectorizes.
    """
    n = 0
    af = bits_a.reshape(-1)
    bf = bits_b.reshape(-1)
    for i in range(af.shape[0]):
        n += (af[i] & exponent) == exponent
    for i in range(bf.shape[0]):
        n += (bf[i] & exponent) == exponent
    return n


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def fill_ghosts(a, b, h, colmode):
    """Refresh the ghost frame (width ``h``) of member ``b`` of a padded array from its interior.

    Columns first (interior rows), then whole rows, so corners are wrapped or mirrored in both
    directions exactly as ``numpy.pad(mode="wrap" | "symmetric")`` does.
    """
    npy, npx = a.shape[1], a.shape[2]
    ny = npy - 2 * h
    nx = npx - 2 * h
    if colmode == COL_PERIODIC:
        for i in range(h, h + ny):
            for j in range(h):
                a[b, i, j] = a[b, i, nx + j]
                a[b, i, nx + h + j] = a[b, i, h + j]
        for j in range(h):
            a[b, j, :] = a[b, ny + j, :]
            a[b, ny + h + j, :] = a[b, h + j, :]
    else:
        for i in range(h, h + ny):
            for j in range(h):
                a[b, i, j] = a[b, i, 2 * h - 1 - j]
                a[b, i, nx + h + j] = a[b, i, nx + h - 1 - j]
        for j in range(h):
            a[b, j, :] = a[b, 2 * h - 1 - j, :]
            a[b, ny + h + j, :] = a[b, ny + h - 1 - j, :]


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def _sum9(ra, rb, rc, x, wt):
    return (
        wt[0] * ra[x] + wt[1] * ra[x + 1] + wt[2] * ra[x + 2]
        + wt[3] * rb[x] + wt[4] * rb[x + 1] + wt[5] * rb[x + 2]
        + wt[6] * rc[x] + wt[7] * rc[x + 1] + wt[8] * rc[x + 2]
    )  # fmt: skip


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def _sum5(ra, rb, rc, x, wt):
    return (
        wt[1] * ra[x + 1]
        + wt[3] * rb[x]
        + wt[4] * rb[x + 1]
        + wt[5] * rb[x + 2]
        + wt[7] * rc[x + 1]
    )


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _flat_fused3(ys, vs, yd, vd, b, i0, i1, cfg):
    """Fast path over interior rows ``[i0, i1)``: uniform 3x3 stencil, scalar parameters.

    The rows are processed as one flat loop over the padded row-major buffer (ghost columns in
    between are computed too and overwritten by :func:`fill_ghosts`), through slice views whose
    indices are provably non-negative, so LLVM vectorizes it. A stencil whose corners are zero
    (the 5-point Laplacian) skips them (``W_FUSED5``). One explicit loop per (stencil,
    activation): LLVM does not reliably unswitch such branches out of a vectorized loop.
    """
    npx = ys.shape[2]
    yf = ys[b].reshape(-1)
    vf = vs[b].reshape(-1)
    yo = yd[b].reshape(-1)
    vo = vd[b].reshape(-1)
    p0 = (1 + i0) * npx + 1
    p1 = (1 + i1) * npx - 1
    w = cfg.w
    wt = (w[0, 0], w[0, 1], w[0, 2], w[1, 0], w[1, 1], w[1, 2], w[2, 0], w[2, 1], w[2, 2])
    al = cfg.scal[0]
    be = cfg.scal[1]
    de = cfg.scal[2]
    bias = cfg.scal[3]
    dt = cfg.scal[4]
    ra = yf[p0 - npx - 1 :]
    rb = yf[p0 - 1 :]
    rc = yf[p0 + npx - 1 :]
    vb = vf[p0:]
    yw = yo[p0:]
    vw = vo[p0:]
    n = p1 - p0
    if cfg.w_mode == W_FUSED5:
        if cfg.act == ACT_FAST_TANH:
            for x in range(n):
                vn = al * vb[x] + be * fast_tanh(_sum5(ra, rb, rc, x, wt) + bias) - de * rb[x + 1]
                vw[x] = vn
                yw[x] = rb[x + 1] + dt * vn
        elif cfg.act == ACT_LINEAR:
            for x in range(n):
                vn = al * vb[x] + be * (_sum5(ra, rb, rc, x, wt) + bias) - de * rb[x + 1]
                vw[x] = vn
                yw[x] = rb[x + 1] + dt * vn
        else:
            for x in range(n):
                vn = al * vb[x] + be * np.tanh(_sum5(ra, rb, rc, x, wt) + bias) - de * rb[x + 1]
                vw[x] = vn
                yw[x] = rb[x + 1] + dt * vn
    else:
        if cfg.act == ACT_FAST_TANH:
            for x in range(n):
                vn = al * vb[x] + be * fast_tanh(_sum9(ra, rb, rc, x, wt) + bias) - de * rb[x + 1]
                vw[x] = vn
                yw[x] = rb[x + 1] + dt * vn
        elif cfg.act == ACT_LINEAR:
            for x in range(n):
                vn = al * vb[x] + be * (_sum9(ra, rb, rc, x, wt) + bias) - de * rb[x + 1]
                vw[x] = vn
                yw[x] = rb[x + 1] + dt * vn
        else:
            for x in range(n):
                vn = al * vb[x] + be * np.tanh(_sum9(ra, rb, rc, x, wt) + bias) - de * rb[x + 1]
                vw[x] = vn
                yw[x] = rb[x + 1] + dt * vn


#: Sites per block of rows of the staged path: the block's scratch stays in L1/L2, and the
#: per-call cost of passing the configuration is paid once per block, not per row.
BLOCK_SITES = 4096


@njit(cache=True)
def block_rows(nx):
    """Rows per block of the staged path for rows of ``nx`` sites (between 4 and 64)."""
    return max(4, min(64, BLOCK_SITES // max(nx, 1)))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _accumulate_stencil(acc, src, b, i0, i1, mode, w, w_site):
    """acc[i - i0, x] += sum_o (uniform or per-site) weight * src[b, i + oy, x + ox].

    Direct indexing over a block of rows: no per-row array views, whose reference counting
    (an atomic increment and decrement through a call each) costs more than the arithmetic on
    short rows. One pass per offset keeps LLVM's runtime alias checks few, so loops vectorize.
    """
    k = w.shape[0]
    nx = acc.shape[1]
    for i in range(i0, i1):
        r = i - i0
        for oy in range(k):
            for ox in range(k):
                if mode == W_SITE:
                    o = oy * k + ox
                    for x in range(nx):
                        acc[r, x] += w_site[o, i, x] * src[b, i + oy, x + ox]
                else:
                    wo = w[oy, ox]
                    if wo != 0:
                        for x in range(nx):
                            acc[r, x] += wo * src[b, i + oy, x + ox]


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def preactivation_rows(b, i0, i1, n, ys, vs, cfg, acc, tmp):
    """``acc[i - i0, x] = s`` for rows ``[i0, i1)``: bias + couplings + drive + input (sigma's
    argument).

    For ``DRIVE_EXP`` drives ``tmp`` is left holding the exponent ``sum_m c[n, m] * basis[m]``
    (the adjoint kernels reuse it). Shared by the forward and the adjoint kernels. Called once
    per block of rows: passing the configuration tuple costs a reference-count operation per
    array in it, too much to pay per row.
    """
    nx = acc.shape[1]
    # 1-2. bias and position coupling
    if cfg.w_mode == W_SITE and cfg.w.shape[0] == 3:
        # 3x3 per-site weights (orientation modulation) in one pass, bias included
        ws = cfg.w_site
        for i in range(i0, i1):
            r = i - i0
            for x in range(nx):
                acc[r, x] = (
                    ws[0, i, x] * ys[b, i, x] + ws[1, i, x] * ys[b, i, x + 1]
                    + ws[2, i, x] * ys[b, i, x + 2] + ws[3, i, x] * ys[b, i + 1, x]
                    + ws[4, i, x] * ys[b, i + 1, x + 1] + ws[5, i, x] * ys[b, i + 1, x + 2]
                    + ws[6, i, x] * ys[b, i + 2, x] + ws[7, i, x] * ys[b, i + 2, x + 1]
                    + ws[8, i, x] * ys[b, i + 2, x + 2]
                )  # fmt: skip
        if cfg.uniform:
            bias = cfg.scal[3]
            for r in range(i1 - i0):
                for x in range(nx):
                    acc[r, x] += bias
        else:
            for i in range(i0, i1):
                for x in range(nx):
                    acc[i - i0, x] += cfg.site[3, i, x]
    else:
        if cfg.uniform:
            bias = cfg.scal[3]
            for r in range(i1 - i0):
                for x in range(nx):
                    acc[r, x] = bias
        else:
            for i in range(i0, i1):
                for x in range(nx):
                    acc[i - i0, x] = cfg.site[3, i, x]
        _accumulate_stencil(acc, ys, b, i0, i1, cfg.w_mode, cfg.w, cfg.w_site)
    if cfg.wv_mode != WV_NONE:
        _accumulate_stencil(acc, vs, b, i0, i1, cfg.wv_mode, cfg.wv, cfg.wv_site)
    # 3. drive (gain folded into the coefficients)
    if cfg.drive_kind == DRIVE_LINEAR:
        for m in range(cfg.dcoef.shape[1]):
            c = cfg.dcoef[n, m]
            if c != 0:
                for i in range(i0, i1):
                    for x in range(nx):
                        acc[i - i0, x] += c * cfg.dbasis[m, i, x]
    elif cfg.drive_kind == DRIVE_EXP:
        c0 = cfg.dcoef[n, 0]
        if c0 != 0:
            for r in range(i1 - i0):
                for x in range(nx):
                    tmp[r, x] = 0
            for m in range(1, cfg.dcoef.shape[1]):
                c = cfg.dcoef[n, m]
                for i in range(i0, i1):
                    for x in range(nx):
                        tmp[i - i0, x] += c * cfg.dbasis[m, i, x]
            for r in range(i1 - i0):
                for x in range(nx):
                    acc[r, x] += c0 * np.exp(tmp[r, x])
    # 4. per-member input frames (an encoder's output), not scaled by the gain
    if cfg.has_input:
        f = cfg.inp_frame[n]
        if f >= 0:
            for i in range(i0, i1):
                for x in range(nx):
                    acc[i - i0, x] += cfg.inp[b, f, i, x]


def _make_update_rows(H):
    """:func:`_update_rows` with the ghost width a compile-time constant ``H`` (0: from the
    stencil at run time). A constant makes ``x + h`` provably non-negative, so numba emits no
    negative-index wraparound and LLVM vectorizes the update."""

    @njit(cache=True, fastmath=FASTMATH, error_model="numpy")
    def _update_rows(b, i0, i1, n, ys, vs, yd, vd, cfg, acc):
        """Activation, noise, integrator update and mask of rows ``[i0, i1)`` (``acc`` holds s)."""
        h = H if H > 0 else cfg.w.shape[0] // 2
        nx = acc.shape[1]
        nr = i1 - i0
        # 4. activation
        if cfg.act == ACT_FAST_TANH:
            for r in range(nr):
                for x in range(nx):
                    acc[r, x] = fast_tanh(acc[r, x])
        elif cfg.act == ACT_EXACT_TANH:
            for r in range(nr):
                for x in range(nx):
                    acc[r, x] = np.tanh(acc[r, x])
        # 5. noise
        if cfg.has_noise:
            for i in range(i0, i1):
                for x in range(nx):
                    acc[i - i0, x] += cfg.noise[b, n, i, x]
        # 6. update
        dt = cfg.scal[4]
        if cfg.uniform:
            al = cfg.scal[0]
            be = cfg.scal[1]
            de = cfg.scal[2]
            for i in range(i0, i1):
                for x in range(nx):
                    yb = ys[b, i + h, x + h]
                    vn = al * vs[b, i + h, x + h] + be * acc[i - i0, x] - de * yb
                    vd[b, i + h, x + h] = vn
                    yd[b, i + h, x + h] = yb + dt * vn
        else:
            st = cfg.site
            for i in range(i0, i1):
                for x in range(nx):
                    yb = ys[b, i + h, x + h]
                    vn = (
                        st[0, i, x] * vs[b, i + h, x + h]
                        + st[1, i, x] * acc[i - i0, x]
                        - st[2, i, x] * yb
                    )
                    vd[b, i + h, x + h] = vn
                    yd[b, i + h, x + h] = yb + dt * vn
        # 7. inactive sites stay at rest
        if cfg.has_mask:
            for i in range(i0, i1):
                for x in range(nx):
                    vd[b, i + h, x + h] *= cfg.mask[i, x]
                    yd[b, i + h, x + h] *= cfg.mask[i, x]

    return _update_rows


_update_rows_h1 = _make_update_rows(1)
_update_rows_any = _make_update_rows(0)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _rows(b, i0, i1, n, ys, vs, yd, vd, cfg, acc, tmp):
    """Update interior rows ``[i0, i1)`` of member ``b`` (ghosts of the output not refreshed).

    ``acc, tmp``: scratch ``(block_rows(nx), nx)``.
    """
    if cfg.w_mode == W_FUSED3 or cfg.w_mode == W_FUSED5:
        _flat_fused3(ys, vs, yd, vd, b, i0, i1, cfg)
    else:
        nb = acc.shape[0]
        for r0 in range(i0, i1, nb):
            r1 = min(r0 + nb, i1)
            preactivation_rows(b, r0, r1, n, ys, vs, cfg, acc, tmp)
            if cfg.w.shape[0] == 3:
                _update_rows_h1(b, r0, r1, n, ys, vs, yd, vd, cfg, acc)
            else:
                _update_rows_any(b, r0, r1, n, ys, vs, yd, vd, cfg, acc)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _member_steps(b, y, v, y2, v2, nsteps, cfg, acc, tmp):
    old = flush_subnormals()
    h = cfg.w.shape[0] // 2
    ny = y.shape[1] - 2 * h
    for n in range(nsteps):
        if n % 2 == 0:
            _rows(b, 0, ny, n, y, v, y2, v2, cfg, acc, tmp)
            fill_ghosts(y2, b, h, cfg.colmode)
            fill_ghosts(v2, b, h, cfg.colmode)
        else:
            _rows(b, 0, ny, n, y2, v2, y, v, cfg, acc, tmp)
            fill_ghosts(y, b, h, cfg.colmode)
            fill_ghosts(v, b, h, cfg.colmode)
    restore_fpenv(old)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def advance_serial(y, v, y2, v2, nsteps, cfg):
    """Advance every member ``nsteps`` steps on one thread."""
    nx = y.shape[2] - 2 * (cfg.w.shape[0] // 2)
    acc = np.empty((block_rows(nx), nx), dtype=y.dtype)
    tmp = np.empty((block_rows(nx), nx), dtype=y.dtype)
    for b in range(y.shape[0]):
        _member_steps(b, y, v, y2, v2, nsteps, cfg, acc, tmp)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", parallel=True)
def advance_members(y, v, y2, v2, nsteps, cfg):
    """Advance every member ``nsteps`` steps, members in parallel (one parallel region per call)."""
    nx = y.shape[2] - 2 * (cfg.w.shape[0] // 2)
    for b in prange(y.shape[0]):
        acc = np.empty((block_rows(nx), nx), dtype=y.dtype)
        tmp = np.empty((block_rows(nx), nx), dtype=y.dtype)
        _member_steps(b, y, v, y2, v2, nsteps, cfg, acc, tmp)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", parallel=True)
def advance_rows(y, v, y2, v2, nsteps, nchunks, cfg):
    """Advance ``nsteps`` steps with rows split into ``nchunks`` parallel chunks per step.

    For single large lattices. One parallel region per step: use for lattices large enough
    that a step takes much longer than the region's start-up (tens of microseconds).
    """
    h = cfg.w.shape[0] // 2
    ny = y.shape[1] - 2 * h
    nx = y.shape[2] - 2 * h
    for n in range(nsteps):
        for b in range(y.shape[0]):
            for c in prange(nchunks):
                i0 = (c * ny) // nchunks
                i1 = ((c + 1) * ny) // nchunks
                acc = np.empty((block_rows(nx), nx), dtype=y.dtype)
                tmp = np.empty((block_rows(nx), nx), dtype=y.dtype)
                old = flush_subnormals()
                if n % 2 == 0:
                    _rows(b, i0, i1, n, y, v, y2, v2, cfg, acc, tmp)
                else:
                    _rows(b, i0, i1, n, y2, v2, y, v, cfg, acc, tmp)
                restore_fpenv(old)
            if n % 2 == 0:
                fill_ghosts(y2, b, h, cfg.colmode)
                fill_ghosts(v2, b, h, cfg.colmode)
            else:
                fill_ghosts(y, b, h, cfg.colmode)
                fill_ghosts(v, b, h, cfg.colmode)
