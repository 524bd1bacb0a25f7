"""Compiled solver of the robust (Charbonnier) Horn-Schunck optical-flow equations.

For one pair of frames, with spatial derivatives ``gx, gy`` and temporal derivative ``gt`` of the
movie (px and frame units), the flow ``(u, v)`` (px/frame) minimises::

    E(u, v) = sum_p  rho(gx u + gy v + gt)  +  alpha * sum_p  rho(|grad u|^2 + |grad v|^2)
    rho(s^2) = 2 beta^2 (sqrt(1 + s^2 / beta^2) - 1)          (Charbonnier; rho(s^2) ~ s^2)

The Euler-Lagrange equations are solved by lagged diffusivity: with the weights
``wd = rho'(e_d^2) = 1/sqrt(1 + e_d^2/beta^2)`` (data, ``e_d = gx u + gy v + gt``) and
``ws = rho'(|grad u|^2 + |grad v|^2)`` (smoothness) frozen, the equations are linear::

    wd gx (gx u + gy v + gt) - sum_q w_pq (u_q - u_p) = 0     (same for v with gy)

with ``q`` the 4 nearest neighbours inside the grid (Neumann edges: missing neighbours are left
out) and the edge weights ``w_pq = alpha (ws_p + ws_q) / 2``. Each iteration recomputes the
weights from the current flow and applies one multigrid V-cycle to the linear system
(:func:`solve_flow`): point-coupled Gauss-Seidel smoothing (the 2 x 2 system of ``(u_p, v_p)``
solved exactly at each pixel), residuals restricted by summing 2 x 2 blocks, coarse data terms
summed over the blocks, coarse edge weights averaged over the fine edges they replace, and
cell-centred bilinear prolongation. Plain SOR needs hundreds to thousands of sweeps on a
128 x 128 grid to remove smooth errors; a V-cycle reduces them by a roughly grid-independent
factor. The iteration stops when the estimated distance to the fixed point is below ``tol``.

``|grad u|^2`` in the smoothness weight uses central differences (one-sided at the edges).
``beta = inf`` gives the quadratic (classic Horn-Schunck) energy, all weights 1.

The plain-numpy/scipy reference of the same fixed point is :func:`reference_solve`: it builds the
sparse linear system for frozen weights, solves it directly, and iterates the weights.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: fastmath flags as in :mod:`wavesim.kernels.oscillator` (no nnan/ninf).
FASTMATH = {"contract", "arcp", "nsz"}


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _update_weights(gx, gy, gt, u, v, inv_beta2, wd, ws):
    """Charbonnier weights ``rho'`` of the data and smoothness terms at the current flow."""
    ny, nx = u.shape
    for i in range(ny):
        i0 = i - 1 if i > 0 else i
        i1 = i + 1 if i < ny - 1 else i
        for j in range(nx):
            e = gx[i, j] * u[i, j] + gy[i, j] * v[i, j] + gt[i, j]
            wd[i, j] = 1.0 / np.sqrt(1.0 + e * e * inv_beta2)
            j0 = j - 1 if j > 0 else j
            j1 = j + 1 if j < nx - 1 else j
            hx = 1.0 / max(j1 - j0, 1)
            hy = 1.0 / max(i1 - i0, 1)
            ux = (u[i, j1] - u[i, j0]) * hx
            uy = (u[i1, j] - u[i0, j]) * hy
            vx = (v[i, j1] - v[i, j0]) * hx
            vy = (v[i1, j] - v[i0, j]) * hy
            s = ux * ux + uy * uy + vx * vx + vy * vy
            ws[i, j] = 1.0 / np.sqrt(1.0 + s * inv_beta2)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _data_tensor(gx, gy, gt, wd, j11, j12, j22, b1, b2):
    """Data term of each pixel as ``wd * (g g^T, g gt)``."""
    ny, nx = gx.shape
    for i in range(ny):
        for j in range(nx):
            d = wd[i, j]
            ax = gx[i, j]
            ay = gy[i, j]
            at = gt[i, j]
            j11[i, j] = d * ax * ax
            j12[i, j] = d * ax * ay
            j22[i, j] = d * ay * ay
            b1[i, j] = d * ax * at
            b2[i, j] = d * ay * at


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _edge_weights(ws, alpha, wh, wv):
    """Smoothness weights of the grid edges, ``alpha * (ws_p + ws_q) / 2``.

    ``wh[i, j]`` joins ``(i, j)`` and ``(i, j+1)``; ``wv[i, j]`` joins ``(i, j)`` and ``(i+1, j)``.
    """
    ny, nx = ws.shape
    for i in range(ny):
        for j in range(nx - 1):
            wh[i, j] = 0.5 * alpha * (ws[i, j] + ws[i, j + 1])
    for i in range(ny - 1):
        for j in range(nx):
            wv[i, j] = 0.5 * alpha * (ws[i, j] + ws[i + 1, j])


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _gs_sweep(j11, j12, j22, f1, f2, wh, wv, u, v, omega):
    """One lexicographic point-coupled Gauss-Seidel/SOR sweep of ``A (u, v) = (f1, f2)``.

    ``(A w)_p = J_p w_p + sum_q w_pq (w_p - w_q)`` over the neighbours ``q`` inside the grid, with
    the 2 x 2 data tensor ``J_p = [[j11, j12], [j12, j22]]`` and the edge weights ``wh``/``wv``.
    At each pixel the 2 x 2 system for ``(u_p, v_p)`` is solved exactly and over-relaxed by
    ``omega``. Returns the largest change of ``u`` or ``v``.
    """
    ny, nx = u.shape
    change = 0.0
    for i in range(ny):
        for j in range(nx):
            s = 0.0
            nu = 0.0
            nv = 0.0
            if i > 0:
                w = wv[i - 1, j]
                s += w
                nu += w * u[i - 1, j]
                nv += w * v[i - 1, j]
            if i < ny - 1:
                w = wv[i, j]
                s += w
                nu += w * u[i + 1, j]
                nv += w * v[i + 1, j]
            if j > 0:
                w = wh[i, j - 1]
                s += w
                nu += w * u[i, j - 1]
                nv += w * v[i, j - 1]
            if j < nx - 1:
                w = wh[i, j]
                s += w
                nu += w * u[i, j + 1]
                nv += w * v[i, j + 1]
            a11 = j11[i, j] + s
            a12 = j12[i, j]
            a22 = j22[i, j] + s
            r1 = f1[i, j] + nu
            r2 = f2[i, j] + nv
            det = a11 * a22 - a12 * a12
            if not det > 0.0:
                continue
            du = omega * ((a22 * r1 - a12 * r2) / det - u[i, j])
            dv = omega * ((a11 * r2 - a12 * r1) / det - v[i, j])
            u[i, j] += du
            v[i, j] += dv
            change = max(change, abs(du), abs(dv))
    return change


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def residual(j11, j12, j22, f1, f2, wh, wv, u, v, r1, r2):
    """``(r1, r2) = (f1, f2) - A (u, v)`` with ``A`` as in :func:`_gs_sweep`."""
    ny, nx = u.shape
    for i in range(ny):
        for j in range(nx):
            au = j11[i, j] * u[i, j] + j12[i, j] * v[i, j]
            av = j12[i, j] * u[i, j] + j22[i, j] * v[i, j]
            if i > 0:
                w = wv[i - 1, j]
                au += w * (u[i, j] - u[i - 1, j])
                av += w * (v[i, j] - v[i - 1, j])
            if i < ny - 1:
                w = wv[i, j]
                au += w * (u[i, j] - u[i + 1, j])
                av += w * (v[i, j] - v[i + 1, j])
            if j > 0:
                w = wh[i, j - 1]
                au += w * (u[i, j] - u[i, j - 1])
                av += w * (v[i, j] - v[i, j - 1])
            if j < nx - 1:
                w = wh[i, j]
                au += w * (u[i, j] - u[i, j + 1])
                av += w * (v[i, j] - v[i, j + 1])
            r1[i, j] = f1[i, j] - au
            r2[i, j] = f2[i, j] - av


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _remaining(change, prev):
    """Distance to the fixed point estimated from two successive changes of the iterate.

    With a contraction factor ``r = change / prev`` the remaining error is about
    ``change * r / (1 - r)``; before a second change is known, or for ``r >= 1`` (not
    contracting), it is unknown (inf).
    """
    if change == 0.0:
        return 0.0
    if not prev < np.inf:
        return np.inf
    r = change / prev
    if not r < 0.999:
        return np.inf
    return change * r / (1.0 - r)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _restrict_sum(f, out):
    """``out[I, J]`` = sum of ``f`` over the 2 x 2 block ``(2I.., 2J..)`` (partial at odd edges)."""
    out[:] = 0.0
    ny, nx = f.shape
    for i in range(ny):
        for j in range(nx):
            out[i // 2, j // 2] += f[i, j]


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _restrict_edges(wh, wv, ny, nx, whc, wvc):
    """Coarse edge weights: the mean of the fine edges crossing the boundary between blocks.

    With data terms summed over blocks and residuals restricted by summation this is the
    consistent rediscretisation (the Dirichlet energy of a 2-D field is scale-free).
    """
    nyc, nxc = (ny + 1) // 2, (nx + 1) // 2
    for ic in range(nyc):
        for jc in range(nxc - 1):
            j = 2 * jc + 1
            acc = wh[2 * ic, j]
            cnt = 1.0
            if 2 * ic + 1 < ny:
                acc += wh[2 * ic + 1, j]
                cnt += 1.0
            whc[ic, jc] = acc / cnt
    for ic in range(nyc - 1):
        i = 2 * ic + 1
        for jc in range(nxc):
            acc = wv[i, 2 * jc]
            cnt = 1.0
            if 2 * jc + 1 < nx:
                acc += wv[i, 2 * jc + 1]
                cnt += 1.0
            wvc[ic, jc] = acc / cnt


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _prolong_add(c, f):
    """Add the cell-centred bilinear interpolation of the coarse field ``c`` to ``f``.

    Fine pixel ``2I`` lies a quarter of a coarse cell before the centre of coarse cell ``I``,
    ``2I + 1`` a quarter after: weights 3/4 (own cell) and 1/4 (neighbour), clamped at the edges.
    """
    ny, nx = f.shape
    nyc, nxc = c.shape
    for i in range(ny):
        ic = i // 2
        io = ic - 1 if i % 2 == 0 else ic + 1
        if io < 0 or io >= nyc:
            io = ic
        for j in range(nx):
            jc = j // 2
            jo = jc - 1 if j % 2 == 0 else jc + 1
            if jo < 0 or jo >= nxc:
                jo = jc
            f[i, j] += 0.5625 * c[ic, jc] + 0.1875 * (c[io, jc] + c[ic, jo]) + 0.0625 * c[io, jo]


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _vcycle(lj11, lj12, lj22, lf1, lf2, lwh, lwv, lu, lv, lr1, lr2, nu1, nu2, n_coarse):
    """One multigrid V-cycle on the level lists (level 0 = full grid; ``lu[0]``, ``lv[0]`` are
    updated in place, the right-hand sides of the coarser levels are overwritten)."""
    nlev = len(lj11)
    for lev in range(nlev - 1):
        for _ in range(nu1):
            _gs_sweep(
                lj11[lev],
                lj12[lev],
                lj22[lev],
                lf1[lev],
                lf2[lev],
                lwh[lev],
                lwv[lev],
                lu[lev],
                lv[lev],
                1.0,
            )
        residual(
            lj11[lev],
            lj12[lev],
            lj22[lev],
            lf1[lev],
            lf2[lev],
            lwh[lev],
            lwv[lev],
            lu[lev],
            lv[lev],
            lr1[lev],
            lr2[lev],
        )
        _restrict_sum(lr1[lev], lf1[lev + 1])
        _restrict_sum(lr2[lev], lf2[lev + 1])
        lu[lev + 1][:] = 0.0
        lv[lev + 1][:] = 0.0
    last = nlev - 1
    for _ in range(n_coarse):
        _gs_sweep(
            lj11[last],
            lj12[last],
            lj22[last],
            lf1[last],
            lf2[last],
            lwh[last],
            lwv[last],
            lu[last],
            lv[last],
            1.0,
        )
    for lev in range(nlev - 2, -1, -1):
        _prolong_add(lu[lev + 1], lu[lev])
        _prolong_add(lv[lev + 1], lv[lev])
        for _ in range(nu2):
            _gs_sweep(
                lj11[lev],
                lj12[lev],
                lj22[lev],
                lf1[lev],
                lf2[lev],
                lwh[lev],
                lwv[lev],
                lu[lev],
                lv[lev],
                1.0,
            )


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def solve_flow(gx, gy, gt, alpha, beta, n_iter, tol, min_size, out_u, out_v, cycles):
    """Robust Horn-Schunck flow for a sequence of frame pairs, by multigrid.

    Every pair starts from zero. Each iteration (re)computes the Charbonnier weights from the
    current flow, builds the linear system and its coarse-grid versions, and applies one V-cycle
    (2 + 2 Gauss-Seidel sweeps per level). The iteration stops when the distance to the fixed
    point, estimated from the changes of the flow over successive cycles (:func:`_remaining`), is
    below ``tol``, or after ``n_iter`` cycles.

    Parameters
    ----------
    gx, gy, gt : float64 arrays (npairs, ny, nx)
        Derivatives of the movie along x (columns), y (rows) and time, per frame pair (px, frame
        units). Pixels without data carry zeros.
    alpha, beta, tol : float
        Smoothness weight, Charbonnier scale (``inf``: quadratic), tolerance (px/frame).
    n_iter, min_size : int
        Maximum V-cycles per pair; grids are coarsened while both sides are at least
        ``2 * min_size``.
    out_u, out_v : float64 arrays (npairs, ny, nx)
        Flow of every pair (px/frame).
    cycles : int64 array (npairs,)
        V-cycles used per pair (``n_iter`` means not converged).
    """
    ny, nx = gx.shape[1], gx.shape[2]
    inv_beta2 = 1.0 / (beta * beta) if np.isfinite(beta) else 0.0
    # level lists (level 0: full grid)
    shapes = [(ny, nx)]
    while min(shapes[-1][0], shapes[-1][1]) >= 2 * min_size:
        shapes.append(((shapes[-1][0] + 1) // 2, (shapes[-1][1] + 1) // 2))
    lj11 = [np.zeros(sh) for sh in shapes]
    lj12 = [np.zeros(sh) for sh in shapes]
    lj22 = [np.zeros(sh) for sh in shapes]
    lf1 = [np.zeros(sh) for sh in shapes]
    lf2 = [np.zeros(sh) for sh in shapes]
    lu = [np.zeros(sh) for sh in shapes]
    lv = [np.zeros(sh) for sh in shapes]
    lr1 = [np.zeros(sh) for sh in shapes]
    lr2 = [np.zeros(sh) for sh in shapes]
    lwh = [np.zeros((sh[0], max(sh[1] - 1, 0))) for sh in shapes]
    lwv = [np.zeros((max(sh[0] - 1, 0), sh[1])) for sh in shapes]
    wd = np.ones((ny, nx))
    ws = np.ones((ny, nx))
    b1 = np.zeros((ny, nx))
    b2 = np.zeros((ny, nx))
    u_old = np.zeros((ny, nx))
    v_old = np.zeros((ny, nx))
    nlev = len(shapes)
    for p in range(gx.shape[0]):
        u = lu[0]
        v = lv[0]
        u[:] = 0.0
        v[:] = 0.0
        prev = np.inf
        it = 0
        while it < n_iter:
            if it == 0 or inv_beta2 != 0.0:
                _update_weights(gx[p], gy[p], gt[p], u, v, inv_beta2, wd, ws)
                _data_tensor(gx[p], gy[p], gt[p], wd, lj11[0], lj12[0], lj22[0], b1, b2)
                _edge_weights(ws, alpha, lwh[0], lwv[0])
                for lev in range(1, nlev):
                    _restrict_sum(lj11[lev - 1], lj11[lev])
                    _restrict_sum(lj12[lev - 1], lj12[lev])
                    _restrict_sum(lj22[lev - 1], lj22[lev])
                    sh = shapes[lev - 1]
                    _restrict_edges(lwh[lev - 1], lwv[lev - 1], sh[0], sh[1], lwh[lev], lwv[lev])
            lf1[0][:] = -b1
            lf2[0][:] = -b2
            u_old[:] = u
            v_old[:] = v
            _vcycle(lj11, lj12, lj22, lf1, lf2, lwh, lwv, lu, lv, lr1, lr2, 2, 2, 50)
            it += 1
            change = max(np.abs(u - u_old).max(), np.abs(v - v_old).max())
            if _remaining(change, prev) < tol:
                break
            prev = change
        cycles[p] = it
        out_u[p] = u
        out_v[p] = v


# --------------------------------------------------------------------------------------------
# Plain numpy / scipy reference
# --------------------------------------------------------------------------------------------


def reference_weights(gx, gy, gt, u, v, beta):
    """Numpy version of the Charbonnier weights ``(wd, ws)`` used by the kernel."""
    inv_beta2 = 1.0 / beta**2 if np.isfinite(beta) else 0.0
    e = gx * u + gy * v + gt
    wd = 1.0 / np.sqrt(1.0 + e * e * inv_beta2)
    grads = []
    for f in (u, v):
        for axis in (0, 1):
            grads.append(np.gradient(f, axis=axis) if f.shape[axis] > 1 else np.zeros_like(f))
    s = sum(g * g for g in grads)
    ws = 1.0 / np.sqrt(1.0 + s * inv_beta2)
    return wd, ws


def reference_system(gx, gy, gt, wd, ws, alpha):
    """Sparse matrix ``A`` and right-hand side ``b`` of the linearised equations, ``A [u; v] = b``.

    Unknowns are ordered ``u`` (C order over ``(y, x)``) then ``v``.
    """
    from scipy import sparse

    ny, nx = gx.shape
    n = ny * nx
    idx = np.arange(n).reshape(ny, nx)
    rows, cols, vals = [], [], []
    diag_s = np.zeros(n)
    for a, b, wa, wb in (
        (idx[:, :-1], idx[:, 1:], ws[:, :-1], ws[:, 1:]),
        (idx[:-1, :], idx[1:, :], ws[:-1, :], ws[1:, :]),
    ):
        w = 0.5 * (wa + wb).ravel()
        a, b = a.ravel(), b.ravel()
        np.add.at(diag_s, a, w)
        np.add.at(diag_s, b, w)
        rows += [a, b]
        cols += [b, a]
        vals += [-alpha * w, -alpha * w]
    rows = np.concatenate(rows)
    cols = np.concatenate(cols)
    vals = np.concatenate(vals)
    lap = sparse.coo_matrix((vals, (rows, cols)), shape=(n, n)) + sparse.diags(alpha * diag_s)
    d = wd.ravel()
    ax, ay, at = gx.ravel(), gy.ravel(), gt.ravel()
    a = sparse.bmat(
        [
            [lap + sparse.diags(d * ax * ax), sparse.diags(d * ax * ay)],
            [sparse.diags(d * ax * ay), lap + sparse.diags(d * ay * ay)],
        ],
        format="csc",
    )
    b = np.concatenate([-d * ax * at, -d * ay * at])
    return a, b


def reference_solve(gx, gy, gt, alpha, beta, *, u0=None, v0=None, n_outer=200, tol=1e-12):
    """Fixed point of the robust Horn-Schunck equations by direct sparse solves (reference).

    Parameters
    ----------
    gx, gy, gt : numpy.ndarray (ny, nx)
        Derivatives of one frame pair.
    alpha, beta : float
        As in :func:`solve_flow`.
    u0, v0 : numpy.ndarray, optional
        Initial flow (default zero). For the quadratic energy the solution is unique only when
        the data constrain every direction somewhere; otherwise it depends on the start.
    n_outer : int
        Maximum number of reweightings.
    tol : float
        Stop when the largest change of the flow between reweightings is below ``tol``.

    Returns
    -------
    (u, v) : numpy.ndarray
    """
    from scipy.sparse.linalg import spsolve

    ny, nx = gx.shape
    u = np.zeros((ny, nx)) if u0 is None else np.array(u0, dtype=float)
    v = np.zeros((ny, nx)) if v0 is None else np.array(v0, dtype=float)
    for _ in range(n_outer):
        wd, ws = reference_weights(gx, gy, gt, u, v, beta)
        a, b = reference_system(gx, gy, gt, wd, ws, alpha)
        sol = spsolve(a, b)
        un = sol[: ny * nx].reshape(ny, nx)
        vn = sol[ny * nx :].reshape(ny, nx)
        change = max(np.abs(un - u).max(), np.abs(vn - v).max())
        u, v = un, vn
        if change < tol or not np.isfinite(beta):
            break
    return u, v
