"""Losses of wavesim.learn: values by hand, gradients against central differences, contracts.

Finite differences: central, float64, step H = 1e-6 on every entry of y and v; the gradient must
agree with them to a relative error (Euclidean norm of the difference over the norm of the
finite-difference gradient) below 1e-7.
"""

from __future__ import annotations

import numpy as np
import pytest

from wavesim.learn.losses import (
    ElectrodeMSE,
    FieldMSE,
    PhaseLoss,
    SumLoss,
    steps_from_times,
    warmup_weights,
)
from wavesim.recorders import ElectrodeRecorder, FieldRecorder, Grid
from wavesim.store import StoreWriter, open_store

H = 1e-6
RTOL = 1e-7
M, NY, NX = 2, 4, 5


def rng(seed=0):
    return np.random.default_rng(seed)


def fd_grad(f, a: np.ndarray) -> np.ndarray:
    """Central differences of the scalar function f over every entry of a (float64)."""
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        ap, am = a.copy(), a.copy()
        ap[idx] += H
        am[idx] -= H
        g[idx] = (f(ap) - f(am)) / (2 * H)
    return g


def rel_err(g, ref) -> float:
    return float(np.linalg.norm(g - ref) / np.linalg.norm(ref))


def check_grads(loss, k, y, v):
    """Gradients of evaluate(k, ...) w.r.t. y and v against central differences."""
    _, gy, gv = loss.evaluate(k, y, v)
    for g, a, used, f in (
        (gy, y, loss.uses_y, lambda a: loss.evaluate(k, a, v)[0]),
        (gv, v, loss.uses_v, lambda a: loss.evaluate(k, y, a)[0]),
    ):
        if not used:
            assert g is None
            continue
        ref = fd_grad(f, a)
        if g is None:  # "does not depend on it" at this state: the differences must vanish
            assert np.all(ref == 0)
            continue
        assert g.dtype == np.float64 and g.shape == a.shape
        assert rel_err(g, ref) < RTOL
    return gy, gv


# ----------------------------------------------------------------------------------------------
# time helpers
# ----------------------------------------------------------------------------------------------
def test_steps_from_times_exact_and_errors():
    dt = 0.1
    times = np.arange(6) * 3 * dt  # 0, 0.3, 0.6... (not exactly representable)
    np.testing.assert_array_equal(steps_from_times(times, dt), np.arange(6) * 3)
    assert steps_from_times(times, dt).dtype == np.int64
    with pytest.raises(ValueError, match=r"times_ms\[2\] = 0.25 ms is not a whole number"):
        steps_from_times([0.0, 0.2, 0.25], dt)
    with pytest.raises(ValueError, match=r"times_ms\[1\].*>= 0"):
        steps_from_times([0.0, -0.1], dt)
    with pytest.raises(ValueError, match="dt"):
        steps_from_times([0.0], 0.0)
    # within the 1e-9 relative tolerance, long runs included
    assert steps_from_times([1e6 * 0.05 * (1 + 1e-12)], 0.05)[0] == 1_000_000


def test_warmup_weights():
    t = np.array([0.0, 0.5, 1.0, 1.5])
    np.testing.assert_array_equal(warmup_weights(t, 1.0), [0, 0, 1, 1])
    np.testing.assert_array_equal(warmup_weights(t, 0.0), [1, 1, 1, 1])
    with pytest.raises(ValueError, match="warmup_ms = 2.0 discards every time"):
        warmup_weights(t, 2.0)


# ----------------------------------------------------------------------------------------------
# FieldMSE
# ----------------------------------------------------------------------------------------------
def test_field_mse_value_by_hand_with_mask_and_weights():
    r = rng(1)
    target = r.standard_normal((3, NY, NX))
    y = r.standard_normal((M, NY, NX))
    mask = np.zeros((NY, NX), bool)
    mask[1:3, 1:4] = True  # 6 observed sites
    w = np.array([0.5, 0.0, 2.0])
    loss = FieldMSE(target, [0, 4, 9], mask=mask, weights=w)
    np.testing.assert_array_equal(loss.steps, [0, 9])  # weight-0 time dropped
    # by hand: sum_k w_k sum_b sum_{i in mask} (y - t_k)^2 / (M * 6 * sum w)
    for k, kt in enumerate([0, 2]):
        acc = 0.0
        for b in range(M):
            for i in range(NY):
                for j in range(NX):
                    if mask[i, j]:
                        acc += (y[b, i, j] - target[kt, i, j]) ** 2
        want = w[kt] * acc / (M * 6 * w.sum())
        assert loss.evaluate(k, y, None)[0] == pytest.approx(want, rel=1e-13)
    # a constant offset c everywhere gives exactly c^2 whatever the weights (a weighted mean)
    traj = np.broadcast_to(target[None, [0, 0, 0, 0, 0, 0, 0, 0, 0, 2]], (M, 10, NY, NX)) + 0.3
    assert loss.total(traj) == pytest.approx(0.09, rel=1e-12)


def test_field_mse_gradient_and_masked_sites():
    r = rng(2)
    target = r.standard_normal((M, 2, NY, NX))  # one target per member
    mask = r.random((NY, NX)) < 0.6
    target[:, :, ~mask] = np.nan  # NaN allowed where unobserved
    loss = FieldMSE(target, [3, 5], mask=mask, weights=[1.0, 3.0])
    y = r.standard_normal((M, NY, NX))
    for k in range(2):
        gy, _ = check_grads(loss, k, y, None)
        assert np.all(gy[:, ~mask] == 0)
        assert np.all(gy[:, mask] != 0)
    # float32 states are computed in float64
    val32, g32, _ = loss.evaluate(0, y.astype(np.float32), None)
    assert g32.dtype == np.float64
    assert val32 == pytest.approx(loss.evaluate(0, y.astype(np.float32).astype(float), None)[0])


def test_field_mse_bad_input_names_the_argument():
    t = np.zeros((3, NY, NX))
    with pytest.raises(ValueError, match="target: expected shape"):
        FieldMSE(np.zeros((NY, NX)), [0])
    with pytest.raises(ValueError, match="steps: expected a 1-D array of 3"):
        FieldMSE(t, [0, 1])
    with pytest.raises(ValueError, match="steps: expected strictly increasing"):
        FieldMSE(t, [0, 2, 2])
    with pytest.raises(ValueError, match="steps: expected integer"):
        FieldMSE(t, [0, 1.5, 2])
    with pytest.raises(ValueError, match=r"mask: expected shape \(ny, nx\)"):
        FieldMSE(t, [0, 1, 2], mask=np.ones((NX, NY), bool))
    with pytest.raises(ValueError, match="mask: no site"):
        FieldMSE(t, [0, 1, 2], mask=np.zeros((NY, NX), bool))
    with pytest.raises(ValueError, match=r"weights: expected shape \(3,\)"):
        FieldMSE(t, [0, 1, 2], weights=[1, 1])
    with pytest.raises(ValueError, match="weights: expected finite values >= 0"):
        FieldMSE(t, [0, 1, 2], weights=[1, -1, 1])
    with pytest.raises(ValueError, match="target: non-finite values at observed sites"):
        FieldMSE(np.full((1, NY, NX), np.nan), [0])
    loss = FieldMSE(np.zeros((M, 3, NY, NX)), [0, 1, 2])
    with pytest.raises(ValueError, match=r"y must have shape \(members, ny, nx\)"):
        loss.evaluate(0, np.zeros((M, NY + 1, NX)), None)
    with pytest.raises(ValueError, match="y has 3 members but the target has 2"):
        loss.evaluate(0, np.zeros((3, NY, NX)), None)
    with pytest.raises(IndexError, match="k must be in"):
        loss.evaluate(3, np.zeros((M, NY, NX)), None)


# ----------------------------------------------------------------------------------------------
# ElectrodeMSE
# ----------------------------------------------------------------------------------------------
DX = 0.25
POS = np.array([[0.0, 0.0], [0.3, 0.55], [1.0, 0.75], [0.5, 0.25], [0.61, 0.1]])  # [x, y] mm


def test_electrode_sampling_matches_recorder_and_linear_field():
    r = rng(3)
    loss = ElectrodeMSE(np.zeros((1, len(POS))), [0], POS, dx=DX, shape=(NY, NX))
    y = r.standard_normal((M, NY, NX))
    rec = ElectrodeRecorder(POS, period=1, dx=DX)
    np.testing.assert_allclose(loss.sample(y), rec.sample(y)["electrodes"], rtol=0, atol=1e-15)
    # bilinear interpolation is exact on a linear field: f = 1 + 2x - 3y (mm)
    yy, xx = np.mgrid[0:NY, 0:NX] * DX
    lin = 1 + 2 * xx - 3 * yy
    want = 1 + 2 * POS[:, 0] - 3 * POS[:, 1]
    np.testing.assert_allclose(loss.sample(lin[None])[0], want, rtol=0, atol=1e-14)


def test_electrode_mse_value_gradient_transpose():
    r = rng(4)
    target = r.standard_normal((3, len(POS)))
    w = np.array([1.0, 2.0, 0.5])
    loss = ElectrodeMSE(target, [1, 2, 6], POS, dx=DX, shape=(NY, NX), weights=w)
    y = r.standard_normal((M, NY, NX))
    for k in range(3):
        s = loss.sample(y)
        want = w[k] * np.sum((s - target[k]) ** 2) / (M * len(POS) * w.sum())
        assert loss.evaluate(k, y, None)[0] == pytest.approx(want, rel=1e-13)
        gy, _ = check_grads(loss, k, y, None)
        # the gradient is S^T applied to the residual: <S y', res> = <y', grad> for any y'
        res = 2 * w[k] / (M * len(POS) * w.sum()) * (s - target[k])
        probe = r.standard_normal((M, NY, NX))
        assert np.sum(loss.sample(probe) * res) == pytest.approx(np.sum(probe * gy), rel=1e-12)
    # sites no electrode touches get zero gradient
    touched = np.asarray(np.abs(loss.sampling).sum(axis=0)).ravel().reshape(NY, NX) > 0
    assert np.all(gy[:, ~touched] == 0)


def test_electrode_mse_bad_input():
    with pytest.raises(ValueError, match=r"positions: expected shape \(ne, 2\)"):
        ElectrodeMSE(np.zeros((2, 3)), [0, 1], np.zeros((3, 3)), dx=DX, shape=(NY, NX))
    with pytest.raises(ValueError, match="positions: 5 electrodes but the target has 3"):
        ElectrodeMSE(np.zeros((2, 3)), [0, 1], POS, dx=DX, shape=(NY, NX))
    with pytest.raises(ValueError, match="electrode 1 at .* lies outside the lattice"):
        ElectrodeMSE(np.zeros((1, 2)), [0], [[0, 0], [5.0, 0]], dx=DX, shape=(NY, NX))
    with pytest.raises(ValueError, match="target: expected shape"):
        ElectrodeMSE(np.zeros(5), [0], POS, dx=DX, shape=(NY, NX))
    with pytest.raises(ValueError, match="dx"):
        ElectrodeMSE(np.zeros((1, 5)), [0], POS, dx=-1, shape=(NY, NX))


# ----------------------------------------------------------------------------------------------
# PhaseLoss
# ----------------------------------------------------------------------------------------------
def test_phase_loss_value_on_exact_oscillators():
    r = rng(5)
    omega = 1.7
    phi = r.uniform(-np.pi, np.pi, (M, NY, NX))
    amp = r.uniform(0.5, 2.0, (M, NY, NX))
    y, v = amp * np.cos(phi), -amp * omega * np.sin(phi)
    delta = r.uniform(-np.pi, np.pi, (M, NY, NX))
    target = (phi + delta + 4 * np.pi)[:, None]  # (members, 1, ny, nx), another branch
    loss = PhaseLoss(target, [0], omega=omega, eps=1e-9)
    want = np.mean(1 - np.cos(delta))
    assert loss.evaluate(0, y, v)[0] == pytest.approx(want, rel=1e-12)
    # the phase agrees with wavesim.analysis.oscillator_phase's convention: zero loss at phi
    assert PhaseLoss(phi[:, None], [0], omega=omega, eps=1e-9).evaluate(0, y, v)[0] < 1e-15


def test_phase_loss_gradient_mask_and_rest():
    r = rng(6)
    mask = r.random((NY, NX)) < 0.7
    omega = r.uniform(0.5, 2.0, (NY, NX))  # per-site omega
    target = r.uniform(-np.pi, np.pi, (2, NY, NX))
    target[:, ~mask] = np.nan
    loss = PhaseLoss(target, [0, 7], omega=omega, mask=mask, weights=[2.0, 1.0], eps=1e-3)
    y, v = r.standard_normal((M, NY, NX)), r.standard_normal((M, NY, NX))
    for k in range(2):
        gy, gv = check_grads(loss, k, y, v)
        assert np.all(gy[:, ~mask] == 0) and np.all(gv[:, ~mask] == 0)
    # at rest the phase is undefined: each observed site costs 1, the gradient stays finite
    zero = np.zeros((M, NY, NX))
    val, gy, gv = loss.evaluate(0, zero, zero)
    assert val == pytest.approx(2.0 / 3.0, rel=1e-12)  # weight 2 of 3, mean cost 1
    assert np.all(np.isfinite(gy)) and np.all(np.isfinite(gv))
    with pytest.raises(ValueError, match="omega: expected values > 0"):
        PhaseLoss(target, [0, 7], omega=-omega, mask=mask)
    with pytest.raises(ValueError, match=r"omega: expected a number or an \(ny, nx\)"):
        PhaseLoss(target, [0, 7], omega=np.ones(3), mask=mask)
    with pytest.raises(ValueError, match="needs the state 'v'"):
        loss.evaluate(0, y, None)


# ----------------------------------------------------------------------------------------------
# combinations
# ----------------------------------------------------------------------------------------------
def test_sum_loss_union_dispatch_and_gradient():
    r = rng(7)
    field = FieldMSE(r.standard_normal((2, NY, NX)), [1, 4])
    phase = PhaseLoss(r.uniform(-3, 3, (2, NY, NX)), [2, 4], omega=1.3)
    elec = ElectrodeMSE(r.standard_normal((1, len(POS))), [4], POS, dx=DX, shape=(NY, NX))
    loss = 0.5 * field + phase / 4 - 2 * elec
    assert isinstance(loss, SumLoss) and len(loss.terms) == 3
    np.testing.assert_array_equal(loss.steps, [1, 2, 4])
    assert loss.uses_y and loss.uses_v
    assert sum([field, phase]).steps.tolist() == [1, 2, 4]
    ys, vs = r.standard_normal((M, 5, NY, NX)), r.standard_normal((M, 5, NY, NX))
    want = 0.5 * field.total(ys) + phase.total(ys, vs) / 4 - 2 * elec.total(ys)
    assert loss.total(ys, vs) == pytest.approx(want, rel=1e-13)
    # state 1: only the field term looks, so the loss does not depend on v there
    assert loss.evaluate(0, ys[:, 1], vs[:, 1])[2] is None
    for k, n in enumerate(loss.steps):
        check_grads(loss, k, ys[:, n], vs[:, n])
    # total(return_grad=True) puts the per-state gradients at their state indices
    _, gy, gv = loss.total(ys, vs, return_grad=True)
    assert np.all(gy[:, [0, 3]] == 0) and np.all(gv[:, [0, 1, 3]] == 0)
    np.testing.assert_array_equal(gy[:, 4], loss.evaluate(2, ys[:, 4], vs[:, 4])[1])


# ----------------------------------------------------------------------------------------------
# from a store
# ----------------------------------------------------------------------------------------------
def _write_store(path, members):
    grid = Grid(NY, NX, dx=DX, dt=0.125, members=members)
    recs = [FieldRecorder(("y", "ydot"), period=2), ElectrodeRecorder(POS, period=1, dx=DX)]
    r = rng(8)
    states = [
        (r.standard_normal((members, NY, NX)), r.standard_normal((members, NY, NX)))
        for _ in range(7)
    ]
    with StoreWriter.create(path, recs, grid, scenario=f"[lattice]\nshape = [{NY}, {NX}]\n") as w:
        for n, (y, v) in enumerate(states):
            w.record(n, y, v)
    return states


@pytest.mark.parametrize("members", [1, 2])
def test_from_store_recorded_states_give_zero_loss(tmp_path, members):
    path = tmp_path / "run.zarr"
    states = _write_store(path, members)
    ds = open_store(path)
    field = FieldMSE.from_dataarray(ds)
    np.testing.assert_array_equal(field.steps, [0, 2, 4, 6])
    elec = ElectrodeMSE.from_dataarray(path)  # a path works too; dx, shape from the store
    np.testing.assert_array_equal(elec.steps, np.arange(7))
    assert elec.shape == (NY, NX) and elec.dx == DX
    for k, n in enumerate(field.steps):
        assert field.evaluate(k, states[n][0], None)[0] == 0.0
    for k, n in enumerate(elec.steps):
        assert elec.evaluate(k, states[n][0], None)[0] < 1e-28
    # a fitted model with half the step: state indices double
    field2 = FieldMSE.from_dataarray(ds["field"], 0.0625, warmup_ms=0.5)
    np.testing.assert_array_equal(field2.steps, [8, 12])  # t = 0.5, 0.75 ms
    with pytest.raises(ValueError, match="dt .* is required with a DataArray"):
        FieldMSE.from_dataarray(ds["field"])
    with pytest.raises(ValueError, match=r"times_ms\[1\] = 0.25 ms is not a whole number"):
        FieldMSE.from_dataarray(ds, dt=0.1)
    with pytest.raises(ValueError, match="shape .* is required"):
        ElectrodeMSE.from_dataarray(ds["electrodes"], 0.125, dx=DX)
    with pytest.raises(KeyError, match="no variable 'phase'"):
        PhaseLoss.from_dataarray(ds, omega=1.0)
