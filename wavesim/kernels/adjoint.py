"""Compiled reverse-mode (adjoint) kernels of the damped-oscillator lattice.

The forward step of :mod:`wavesim.kernels.oscillator`, for site ``i`` of member ``b`` (mask ``m``)::

    s   = sum_o Wm_o(i) y[i + o] + sum_o Whm_o(i) v[i + o] + bias(i) + u(i, t_n)
    a   = sigma(s) + xi
    r   = alpha(i) v + beta(i) a - delta(i) y            (the unmasked new velocity)
    v'  = m r,     y' = m (y + dt r)

is differentiated by hand. Given the adjoints ``ly' = dL/dy'`` and ``lv' = dL/dv'`` of the new
state, one reverse step computes, with ``L = m lv' + dt m ly'`` (the adjoint of ``r``) and
``g = beta sigma'(s) L`` (the adjoint of ``s``)::

    ly[i] = m ly'[i] - delta(i) L[i] + sum_o Wm_o(i - o) g[i - o]
    lv[i] = alpha(i) L[i]             + sum_o Whm_o(i - o) g[i - o]

The coupling sums are *scattered* (``ly[i + o] += Wm_o(i) g[i]``) into a padded buffer whose
ghost frame is then folded back onto the interior sites it was copied from
(:func:`fold_ghosts`, the transpose of :func:`~wavesim.kernels.oscillator.fill_ghosts`), so every
boundary is exact. Parameter adjoints are accumulated along the way:

=============================  ================================================================
``A_alpha += L v``             per site (``site_acc``) or summed per member
``A_beta += L a``              (``a`` includes the noise)
``A_delta -= L y``
``A_bias += g``
``GW[o] += sum_i g M_o(i) y[i + o]``            position stencil (``M`` = orientation modulation)
``GK[o] += sum_i g P_o(i) y[i + o]``            ``P = dM/dkappa = (cos 2dtheta - 1) M``
``GWV, GKV``                    the same with ``v`` for the velocity stencil
``DC[n, c] += sum_i g du/dc``  drive coefficients of every step (gain, dt through the drive)
``GE[b, f(n), i] += g``        input frames (per member, per frame)
``S_dt += m ly' r``, ``S_noise += L beta xi``   the explicit ``dt`` dependences
=============================  ================================================================

The Python side (:mod:`wavesim.learn.gradient`) turns these into gradients with respect to
``gamma``, ``omega2``, ``dt`` (chain rule through alpha, beta, delta of each integrator), ``W``,
``kappa``, ``gain`` and ``bias``. The plain-numpy reference of one reverse step is
:func:`reference_adjoint_step`.

Reductions use ``reassoc`` fast-math (row partial sums vectorize); the order of operations is
fixed at compile time, so results are deterministic, and a checkpointed gradient is bit-identical
to an un-checkpointed one.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit, prange

from wavesim.kernels import oscillator as ko
from wavesim.kernels.fpenv import flush_subnormals, restore_fpenv
from wavesim.kernels.tanh import fast_tanh_and_grad, fast_tanh_grad_numpy, fast_tanh_numpy

#: The forward kernels' flags plus reassociation, so that row reductions vectorize.
AFASTMATH = {"contract", "arcp", "nsz", "reassoc"}

AdjointConfig = namedtuple(
    "AdjointConfig",
    [
        "site_mode",  # bool: per-site weights (modulation), needed whenever kappa is involved
        "mod",  # (k*k, ny, nx) modulation M, or (1, 1, 1)
        "dmod",  # (k*k, ny, nx) dM/dkappa, or (1, 1, 1)
        "want_kappa",  # bool: accumulate GK / GKV
        "site_acc",  # bool: per-site A_alpha, A_beta, A_delta, A_bias
    ],
)

#: Indices into the per-member scalar accumulator ``sums`` (members, N_SUMS).
S_ALPHA, S_BETA, S_DELTA, S_BIAS, S_DT, S_NOISE = range(6)
N_SUMS = 6


@njit(cache=True, fastmath=AFASTMATH, error_model="numpy")
def fold_ghosts(a, b, h, colmode):
    """Add the ghost frame of member ``b`` onto the interior sites it copies, then zero it.

    The transpose of :func:`wavesim.kernels.oscillator.fill_ghosts` (which fills columns of the
    interior rows first and then whole rows): rows are folded first, then columns.
    """
    npy, npx = a.shape[1], a.shape[2]
    ny = npy - 2 * h
    nx = npx - 2 * h
    if colmode == ko.COL_PERIODIC:
        for j in range(h):
            for c in range(npx):
                a[b, ny + j, c] += a[b, j, c]
                a[b, j, c] = 0
                a[b, h + j, c] += a[b, ny + h + j, c]
                a[b, ny + h + j, c] = 0
        for i in range(h, h + ny):
            for j in range(h):
                a[b, i, nx + j] += a[b, i, j]
                a[b, i, j] = 0
                a[b, i, h + j] += a[b, i, nx + h + j]
                a[b, i, nx + h + j] = 0
    else:
        for j in range(h):
            for c in range(npx):
                a[b, 2 * h - 1 - j, c] += a[b, j, c]
                a[b, j, c] = 0
                a[b, ny + h - 1 - j, c] += a[b, ny + h + j, c]
                a[b, ny + h + j, c] = 0
        for i in range(h, h + ny):
            for j in range(h):
                a[b, i, 2 * h - 1 - j] += a[b, i, j]
                a[b, i, j] = 0
                a[b, i, nx + h - 1 - j] += a[b, i, nx + h + j]
                a[b, i, nx + h + j] = 0


@njit(cache=True, fastmath=AFASTMATH, error_model="numpy")
def _scatter_stencil(b, i0, i1, src, dst, g, w, mod, dmod, site_mode, want_kappa, gw, gk):
    """For rows ``[i0, i1)``: dst[i+o] += W_o(i) g;  gw[o] += sum g M_o src[i+o];
    gk[o] += sum g P_o src[i+o]  (``g`` is the block's ``(rows, nx)`` adjoint of s)."""
    k = w.shape[0]
    nx = g.shape[1]
    zero = g[0, 0] - g[0, 0]
    for i in range(i0, i1):
        r = i - i0
        for oy in range(k):
            for ox in range(k):
                o = oy * k + ox
                if site_mode:
                    wo = w[oy, ox]
                    sw = zero
                    sk = zero
                    if want_kappa:
                        for x in range(nx):
                            gs = g[r, x]
                            dst[b, i + oy, x + ox] += wo * mod[o, i, x] * gs
                            t = gs * src[b, i + oy, x + ox]
                            sw += t * mod[o, i, x]
                            sk += t * dmod[o, i, x]
                        gk[b, o] += sk
                    else:
                        for x in range(nx):
                            gs = g[r, x]
                            dst[b, i + oy, x + ox] += wo * mod[o, i, x] * gs
                            sw += gs * mod[o, i, x] * src[b, i + oy, x + ox]
                    gw[b, o] += sw
                else:
                    wo = w[oy, ox]
                    sw = zero
                    for x in range(nx):
                        gs = g[r, x]
                        dst[b, i + oy, x + ox] += wo * gs
                        sw += gs * src[b, i + oy, x + ox]
                    gw[b, o] += sw


def _make_reverse_rows(H):
    """The reverse row update with the ghost width ``h`` a compile-time constant ``H`` (0: read
    it from the stencil at run time). With a constant, ``x + h`` indices are provably
    non-negative, numba's negative-index wraparound disappears and the loops vectorize: the
    reverse sweep of 3 x 3 stencils runs 1.3x faster."""

    @njit(cache=True, fastmath=AFASTMATH, error_model="numpy")
    def _reverse_rows(b, i0, i1, n, ys, vs, ly, lv, LY, LV, cfg, acfg, out, acc, tmp, g, lt):
        """Reverse of the update of rows ``[i0, i1)`` at local step ``n`` (``ys, vs``: the state
        before the step). Scratch ``acc, tmp, g, lt``: ``(reverse_block_rows(nx), nx)``."""
        gw, gk, gwv, gkv, dc, sums, site_sums, ginp = out
        h = H if H > 0 else cfg.w.shape[0] // 2
        nx = acc.shape[1]
        nr = i1 - i0
        ko.preactivation_rows(b, i0, i1, n, ys, vs, cfg, acc, tmp)
        # sigma and sigma' (acc <- a, g <- sigma')
        if cfg.act == ko.ACT_FAST_TANH:
            for r in range(nr):
                for x in range(nx):
                    t, d = fast_tanh_and_grad(acc[r, x])
                    g[r, x] = d
                    acc[r, x] = t
        elif cfg.act == ko.ACT_EXACT_TANH:
            for r in range(nr):
                for x in range(nx):
                    t = np.tanh(acc[r, x])
                    acc[r, x] = t
                    g[r, x] = 1 - t * t
        else:
            for r in range(nr):
                for x in range(nx):
                    g[r, x] = 1
        if cfg.has_noise:
            for i in range(i0, i1):
                for x in range(nx):
                    acc[i - i0, x] += cfg.noise[b, n, i, x]
        if cfg.has_mask:
            for i in range(i0, i1):
                for x in range(nx):
                    ly[b, i, x] *= cfg.mask[i, x]
                    lv[b, i, x] *= cfg.mask[i, x]
        dt = cfg.scal[4]
        zero = dt - dt
        s_a = zero
        s_b = zero
        s_d = zero
        s_g = zero
        s_dt = zero
        s_nz = zero
        # Separate loops with few arrays each: LLVM vectorizes a loop only when its runtime alias
        # checks (stores x loads) stay few.
        if cfg.uniform:
            al = cfg.scal[0]
            be = cfg.scal[1]
            de = cfg.scal[2]
            for i in range(i0, i1):
                r = i - i0
                for x in range(nx):
                    lt[r, x] = lv[b, i, x] + dt * ly[b, i, x]
                for x in range(nx):
                    g[r, x] = be * g[r, x] * lt[r, x]
                for x in range(nx):
                    LY[b, i + h, x + h] += ly[b, i, x] - de * lt[r, x]
                for x in range(nx):
                    LV[b, i + h, x + h] += al * lt[r, x]
                for x in range(nx):
                    s_dt += ly[b, i, x] * (
                        al * vs[b, i + h, x + h] + be * acc[r, x] - de * ys[b, i + h, x + h]
                    )
        else:
            st = cfg.site
            for i in range(i0, i1):
                r = i - i0
                for x in range(nx):
                    lt[r, x] = lv[b, i, x] + dt * ly[b, i, x]
                for x in range(nx):
                    g[r, x] = st[1, i, x] * g[r, x] * lt[r, x]
                for x in range(nx):
                    LY[b, i + h, x + h] += ly[b, i, x] - st[2, i, x] * lt[r, x]
                for x in range(nx):
                    LV[b, i + h, x + h] += st[0, i, x] * lt[r, x]
                for x in range(nx):
                    s_dt += ly[b, i, x] * (
                        st[0, i, x] * vs[b, i + h, x + h]
                        + st[1, i, x] * acc[r, x]
                        - st[2, i, x] * ys[b, i + h, x + h]
                    )
        if cfg.has_input:
            f = cfg.inp_frame[n]
            if f >= 0:
                for i in range(i0, i1):
                    for x in range(nx):
                        ginp[b, f, i, x] += g[i - i0, x]
        if acfg.site_acc:
            for i in range(i0, i1):
                r = i - i0
                for x in range(nx):
                    site_sums[b, 0, i, x] += lt[r, x] * vs[b, i + h, x + h]
                    site_sums[b, 1, i, x] += lt[r, x] * acc[r, x]
                    site_sums[b, 2, i, x] -= lt[r, x] * ys[b, i + h, x + h]
                    site_sums[b, 3, i, x] += g[r, x]
        else:
            for i in range(i0, i1):
                r = i - i0
                for x in range(nx):
                    s_a += lt[r, x] * vs[b, i + h, x + h]
                    s_b += lt[r, x] * acc[r, x]
                    s_d -= lt[r, x] * ys[b, i + h, x + h]
                    s_g += g[r, x]
        if cfg.has_noise:
            if cfg.uniform:
                be = cfg.scal[1]
                for i in range(i0, i1):
                    for x in range(nx):
                        s_nz += lt[i - i0, x] * be * cfg.noise[b, n, i, x]
            else:
                for i in range(i0, i1):
                    for x in range(nx):
                        s_nz += lt[i - i0, x] * cfg.site[1, i, x] * cfg.noise[b, n, i, x]
        sums[b, S_ALPHA] += s_a
        sums[b, S_BETA] += s_b
        sums[b, S_DELTA] += s_d
        sums[b, S_BIAS] += s_g
        sums[b, S_DT] += s_dt
        sums[b, S_NOISE] += s_nz
        # couplings: scatter g into the neighbours' adjoints, accumulate stencil gradients
        _scatter_stencil(b, i0, i1, ys, LY, g, cfg.w, acfg.mod, acfg.dmod,
                         acfg.site_mode, acfg.want_kappa, gw, gk)  # fmt: skip
        if cfg.wv_mode != ko.WV_NONE:
            _scatter_stencil(b, i0, i1, vs, LV, g, cfg.wv, acfg.mod, acfg.dmod,
                             acfg.site_mode, acfg.want_kappa, gwv, gkv)  # fmt: skip
        # drive coefficients of this step
        if cfg.drive_kind == ko.DRIVE_LINEAR:
            for m in range(cfg.dcoef.shape[1]):
                sc = zero
                for i in range(i0, i1):
                    for x in range(nx):
                        sc += g[i - i0, x] * cfg.dbasis[m, i, x]
                dc[b, n, m] += sc
        elif cfg.drive_kind == ko.DRIVE_EXP:
            c0 = cfg.dcoef[n, 0]
            if c0 != 0:
                sc = zero
                for r in range(nr):
                    for x in range(nx):
                        tmp[r, x] = g[r, x] * np.exp(tmp[r, x])
                        sc += tmp[r, x]
                dc[b, n, 0] += sc
                for m in range(1, cfg.dcoef.shape[1]):
                    sc = zero
                    for i in range(i0, i1):
                        for x in range(nx):
                            sc += tmp[i - i0, x] * cfg.dbasis[m, i, x]
                    dc[b, n, m] += c0 * sc

    return _reverse_rows


_reverse_rows_h1 = _make_reverse_rows(1)
_reverse_rows_any = _make_reverse_rows(0)


@njit(cache=True)
def reverse_block_rows(nx):
    """Rows per block of the reverse sweep: small enough that a block's per-site weights (three
    ``(k*k, rows, nx)`` slabs with orientation modulation) stay in L2 while every member of the
    chunk passes over them."""
    return max(2, min(64, 1024 // max(nx, 1)))


@njit(cache=True, fastmath=AFASTMATH, error_model="numpy")
def _inject(b, k, ly, lv, inj_y, inj_v):
    for i in range(ly.shape[1]):
        for x in range(ly.shape[2]):
            ly[b, i, x] += inj_y[k, b, i, x]
            lv[b, i, x] += inj_v[k, b, i, x]


@njit(cache=True, fastmath=AFASTMATH, error_model="numpy")
def _members_reverse(b0, b1, Y, V, ly, lv, LY, LV, nsteps, inj_state, inj_y, inj_v, cfg, acfg,
                     out):  # fmt: skip
    """Reverse sweep of members ``[b0, b1)``: per step and block of rows, every member in turn,
    so the block's per-site weights are read from cache, not memory, by all but the first.
    Each member's arithmetic and its order are those of a member swept alone."""
    old = flush_subnormals()
    h = cfg.w.shape[0] // 2
    ny = ly.shape[1]
    nx = ly.shape[2]
    nb = reverse_block_rows(nx)
    acc = np.empty((nb, nx), dtype=ly.dtype)
    tmp = np.empty((nb, nx), dtype=ly.dtype)
    g = np.empty((nb, nx), dtype=ly.dtype)
    lt = np.empty((nb, nx), dtype=ly.dtype)
    k = inj_state.shape[0] - 1
    for n in range(nsteps - 1, -1, -1):
        # loss injections at state n + 1
        while k >= 0 and inj_state[k] == n + 1:
            for b in range(b0, b1):
                _inject(b, k, ly, lv, inj_y, inj_v)
            k -= 1
        for r0 in range(0, ny, nb):
            r1 = min(r0 + nb, ny)
            for b in range(b0, b1):
                if h == 1:
                    _reverse_rows_h1(b, r0, r1, n, Y[n], V[n], ly, lv, LY, LV, cfg, acfg, out,
                                     acc, tmp, g, lt)  # fmt: skip
                else:
                    _reverse_rows_any(b, r0, r1, n, Y[n], V[n], ly, lv, LY, LV, cfg, acfg, out,
                                      acc, tmp, g, lt)  # fmt: skip
        for b in range(b0, b1):
            fold_ghosts(LY, b, h, cfg.colmode)
            fold_ghosts(LV, b, h, cfg.colmode)
            for i in range(ny):
                for x in range(nx):
                    ly[b, i, x] = LY[b, i + h, x + h]
                    LY[b, i + h, x + h] = 0
                    lv[b, i, x] = LV[b, i + h, x + h]
                    LV[b, i + h, x + h] = 0
    while k >= 0 and inj_state[k] == 0:
        for b in range(b0, b1):
            _inject(b, k, ly, lv, inj_y, inj_v)
        k -= 1
    restore_fpenv(old)


@njit(cache=True, fastmath=AFASTMATH, error_model="numpy", parallel=True)
def reverse_members(Y, V, ly, lv, LY, LV, nsteps, inj_state, inj_y, inj_v, cfg, acfg, out,
                    nchunks):  # fmt: skip
    """Reverse ``nsteps`` steps over the stored states ``Y[0..nsteps]``, members split into
    ``nchunks`` parallel chunks (one per thread).

    ``ly, lv`` (members, ny, nx) hold the adjoint of state ``nsteps`` on entry and of state 0 on
    exit. ``inj_state`` (sorted, local state indices in ``[0, nsteps]``) with ``inj_y, inj_v``
    (n_inj, members, ny, nx) are loss gradients added when the reverse sweep reaches that state.
    ``LY, LV`` are zeroed padded scratch buffers (members, ny + 2h, nx + 2h).
    """
    nm = ly.shape[0]
    for c in prange(nchunks):
        _members_reverse((c * nm) // nchunks, ((c + 1) * nm) // nchunks, Y, V, ly, lv, LY, LV,
                         nsteps, inj_state, inj_y, inj_v, cfg, acfg, out)  # fmt: skip


@njit(cache=True, fastmath=AFASTMATH, error_model="numpy")
def reverse_serial(Y, V, ly, lv, LY, LV, nsteps, inj_state, inj_y, inj_v, cfg, acfg, out):
    """:func:`reverse_members` on one thread."""
    _members_reverse(0, ly.shape[0], Y, V, ly, lv, LY, LV, nsteps, inj_state, inj_y, inj_v, cfg,
                     acfg, out)  # fmt: skip


@njit(cache=True, fastmath=ko.FASTMATH, error_model="numpy")
def _member_trajectory(b, Y, V, nsteps, cfg, acc, tmp):
    old = flush_subnormals()
    h = cfg.w.shape[0] // 2
    ny = Y.shape[2] - 2 * h
    for n in range(nsteps):
        ko._rows(b, 0, ny, n, Y[n], V[n], Y[n + 1], V[n + 1], cfg, acc, tmp)
        ko.fill_ghosts(Y[n + 1], b, h, cfg.colmode)
        ko.fill_ghosts(V[n + 1], b, h, cfg.colmode)
    restore_fpenv(old)


@njit(cache=True, fastmath=ko.FASTMATH, error_model="numpy", parallel=True)
def trajectory_members(Y, V, nsteps, cfg):
    """Forward ``nsteps`` steps keeping every padded state: ``Y[n + 1]`` from ``Y[n]``.

    ``Y, V`` are ``(nsteps + 1, members, ny + 2h, nx + 2h)`` with ``Y[0], V[0]`` set (ghosts
    filled). Members in parallel. The same row updates as the forward drivers, so the states are
    bit-identical to :meth:`wavesim.kernels.driver.LatticeKernel.advance`.
    """
    nx = Y.shape[3] - 2 * (cfg.w.shape[0] // 2)
    for b in prange(Y.shape[1]):
        acc = np.empty((ko.block_rows(nx), nx), dtype=Y.dtype)
        tmp = np.empty((ko.block_rows(nx), nx), dtype=Y.dtype)
        _member_trajectory(b, Y, V, nsteps, cfg, acc, tmp)


@njit(cache=True, fastmath=ko.FASTMATH, error_model="numpy")
def trajectory_serial(Y, V, nsteps, cfg):
    """:func:`trajectory_members` on one thread."""
    nx = Y.shape[3] - 2 * (cfg.w.shape[0] // 2)
    acc = np.empty((ko.block_rows(nx), nx), dtype=Y.dtype)
    tmp = np.empty((ko.block_rows(nx), nx), dtype=Y.dtype)
    for b in range(Y.shape[1]):
        _member_trajectory(b, Y, V, nsteps, cfg, acc, tmp)


# --------------------------------------------------------------------------------------------
# plain-numpy reference of one reverse step (for the tests)


def _pad(a, h, mode):
    return np.pad(a, ((0, 0), (h, h), (h, h)), mode=mode)


def _unpad_fold(a, h, mode):
    """Transpose of ``numpy.pad(..., mode)`` for a batch ``(m, ny + 2h, nx + 2h)``."""
    m, npy, npx = a.shape
    ny, nx = npy - 2 * h, npx - 2 * h
    out = np.zeros((m, ny, nx), dtype=a.dtype)
    idx_y = np.pad(np.arange(ny), h, mode=mode)
    idx_x = np.pad(np.arange(nx), h, mode=mode)
    np.add.at(out, (slice(None), idx_y[:, None], idx_x[None, :]), a)
    return out


def reference_adjoint_step(y, v, ly1, lv1, rp, dt, u=None, xi=None, modulation=None, dmod=None,
                           e=None):  # fmt: skip
    """One reverse step in plain numpy: adjoints of ``(y, v)`` and parameter adjoints.

    Parameters
    ----------
    y, v : (members, ny, nx)
        State before the step.
    ly1, lv1 : (members, ny, nx)
        Adjoints of the state after the step.
    rp : wavesim.models.oscillator.ResolvedParams
    dt : float
    u : (ny, nx), optional
        Drive before the gain.
    xi : (members, ny, nx), optional
        Standard normal draws of the step.
    modulation, dmod : (k*k, ny, nx), optional
        Orientation modulation ``M`` and ``dM/dkappa`` (default: ``rp.modulation``, no kappa
        gradient).
    e : (members, ny, nx), optional
        Input frame of the step (its adjoint is ``u``'s: ``g``).

    Returns
    -------
    dict
        ``ly, lv`` (adjoints of ``y, v``) and ``alpha, beta, delta, bias`` (per-site sums over
        members), ``w, wv`` (k, k), ``kw, kwv`` (k, k) (the ``P``-weighted stencil sums),
        ``u`` (the adjoint of the gained drive, per member), ``dt_direct`` and ``noise``.
    """
    p = rp.params
    lat = rp.lattice
    k = p.k
    h = k // 2
    mode = lat.pad_mode
    ny, nx = lat.shape
    mod = rp.modulation if modulation is None else modulation
    mask = np.ones(lat.shape) if lat.mask is None else lat.mask.astype(float)
    g_ = np.asarray(rp.gamma, float)
    w2 = np.asarray(rp.omega2, float)
    if p.integrator == "symplectic_euler":
        al, be, de = 1 - dt * g_, dt + 0 * g_, dt * w2
    else:
        al = 1 / (1 + dt * g_)
        be, de = dt * al, dt * w2 * al
    yp, vp = _pad(y, h, mode), _pad(v, h, mode)

    def couple(pad, w):
        out = np.zeros_like(y)
        for oy in range(k):
            for ox in range(k):
                t = w[oy, ox] * pad[:, oy : oy + ny, ox : ox + nx]
                out = out + (t if mod is None else t * mod[oy * k + ox])
        return out

    s = couple(yp, p.w) + rp.bias
    if p.wv is not None:
        s = s + couple(vp, p.wv)
    if u is not None:
        s = s + p.gain * u
    if e is not None:
        s = s + e
    if p.activation == "tanh":
        a = np.tanh(s) if p.exact_tanh else fast_tanh_numpy(s)
        da = 1 - a * a if p.exact_tanh else fast_tanh_grad_numpy(s)
    else:
        a, da = s, np.ones_like(s)
    nz = 0.0 if xi is None or p.noise == 0 else p.noise / np.sqrt(dt) * xi
    a = a + nz
    lyp, lvp = mask * ly1, mask * lv1
    L = lvp + dt * lyp
    g = be * da * L
    LY = np.zeros_like(yp)
    LV = np.zeros_like(vp)
    LY[:, h : h + ny, h : h + nx] += lyp - de * L
    LV[:, h : h + ny, h : h + nx] += al * L
    out = {"w": np.zeros((k, k)), "wv": np.zeros((k, k)), "kw": np.zeros((k, k)),
           "kwv": np.zeros((k, k))}  # fmt: skip
    for oy in range(k):
        for ox in range(k):
            o = oy * k + ox
            m_o = 1.0 if mod is None else mod[o]
            win = (slice(None), slice(oy, oy + ny), slice(ox, ox + nx))
            LY[win] += p.w[oy, ox] * m_o * g
            out["w"][oy, ox] = np.sum(g * m_o * yp[win])
            if dmod is not None:
                out["kw"][oy, ox] = np.sum(g * dmod[o] * yp[win])
            if p.wv is not None:
                LV[win] += p.wv[oy, ox] * m_o * g
                out["wv"][oy, ox] = np.sum(g * m_o * vp[win])
                if dmod is not None:
                    out["kwv"][oy, ox] = np.sum(g * dmod[o] * vp[win])
    out["ly"] = _unpad_fold(LY, h, mode)
    out["lv"] = _unpad_fold(LV, h, mode)
    out["alpha"] = np.sum(L * v, axis=0)
    out["beta"] = np.sum(L * a, axis=0)
    out["delta"] = -np.sum(L * y, axis=0)
    out["bias"] = np.sum(g, axis=0)
    out["u"] = g
    r = al * v + be * a - de * y
    out["dt_direct"] = float(np.sum(lyp * r))
    out["noise"] = float(np.sum(L * be * nz))
    return out
