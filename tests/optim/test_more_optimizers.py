"""The optimizers added for issue 25 (Adamax, NAdam, RAdam, Adadelta, ASGD, Rprop, Adafactor,
SparseAdam, LBFGS): parameter trajectories step by step against torch.optim from the same
weights and gradients (float64 tight, float32 close), state_dict round trips, errors."""

import copy

import numpy as np
import pytest
import torch
from parity import compare, reference
from tests.optim.test_optimizers import DT, STEPS, _grad, _problem, run_pair

import neural_arch as na
import neural_arch.nn as nn
import neural_arch.optim as optim
from neural_arch.errors import ConfigError

CASES = {
    "Adamax": [dict(lr=0.01), dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, maximize=True)],
    "NAdam": [dict(lr=0.01), dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01),
              dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)],
    "RAdam": [dict(lr=0.01), dict(lr=0.01, betas=(0.9, 0.9), weight_decay=0.1),  # beta2=0.9: rho_t > 5 from step 6
              dict(lr=0.01, betas=(0.3, 0.8), weight_decay=0.1, decoupled_weight_decay=True, maximize=True)],
    "Adadelta": [dict(), dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1, maximize=True)],
    "ASGD": [dict(lr=0.05), dict(lr=0.05, lambd=0.01, alpha=0.5, t0=4, weight_decay=0.1, maximize=True)],
    "Rprop": [dict(lr=0.01), dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.1), maximize=True)],
    "Adafactor": [dict(lr=0.01), dict(lr=0.05, beta2_decay=-0.5, eps=(1e-6, 1e-2), d=2.0, weight_decay=0.1),
                  dict(lr=0.02, maximize=True)],
}


@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("name,kw", [(n, kw) for n, cases in CASES.items() for kw in cases], ids=str)
def test_matches_torch(name, kw, dtype):
    run_pair(getattr(optim, name), getattr(torch.optim, name), kw, dtype)


@pytest.mark.parametrize("dtype", DT)
def test_param_groups_with_own_options(dtype):
    run_pair(optim.NAdam, torch.optim.NAdam, dict(lr=0.01), dtype, groups=dict(lr=0.001, weight_decay=0.2))
    run_pair(optim.Rprop, torch.optim.Rprop, dict(lr=0.01), dtype, groups=dict(etas=(0.4, 1.1)))


@pytest.mark.parametrize("name,kw", [(n, cases[-1]) for n, cases in CASES.items()] + [("SparseAdam", dict(lr=0.01))],
                         ids=str)
def test_state_dict_round_trip_continues_identically(name, kw):
    params, grads = _problem(1)
    a = [nn.Parameter(na.tensor(p)) for p in params]
    opt_a = getattr(optim, name)(a, **kw)

    def step(opt, ps, k):
        for p, g in zip(ps, grads[k]):
            p.grad = na.tensor(_grad(g, p.data, 0.3))
        opt.step()

    for k in range(6):
        step(opt_a, a, k)
    saved = copy.deepcopy(opt_a.state_dict())
    b = [nn.Parameter(na.tensor(p.data.copy())) for p in a]
    opt_b = getattr(optim, name)(b, **{**kw, "lr": 123.0})
    opt_b.load_state_dict(saved)
    assert opt_b.param_groups[0]["lr"] == kw["lr"]
    for k in range(6, STEPS):
        step(opt_a, a, k)
        step(opt_b, b, k)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_keys_match_torch():
    for name, cases in CASES.items():
        params, grads = _problem()
        ours = [nn.Parameter(na.tensor(p)) for p in params]
        ref = [torch.tensor(p, requires_grad=True) for p in params]
        o, t = getattr(optim, name)(ours, **cases[0]), getattr(torch.optim, name)(ref, **cases[0])
        for p, r, g in zip(ours, ref, grads[0]):
            p.grad, r.grad = na.tensor(g), torch.tensor(g)
        o.step()
        t.step()
        os, ts = o.state_dict(), t.state_dict()
        assert os["state"].keys() == ts["state"].keys(), name
        for i in ts["state"]:
            assert set(os["state"][i]) == set(ts["state"][i]), name
        assert set(os["param_groups"][0]) <= set(ts["param_groups"][0]), name


# -- SparseAdam -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("maximize", [False, True])
def test_sparse_adam_matches_torch_on_embedding_rows(dtype, maximize):
    """An embedding table whose gradient touches a few rows per step: ours from the dense gradient,
    torch's from the same rows as a sparse gradient; untouched rows keep their value and moments."""
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal((10, 4)).astype(dtype)
    ours = nn.Parameter(na.tensor(w0.copy()))
    ref = torch.tensor(w0.copy(), requires_grad=True)
    o = optim.SparseAdam([ours], lr=0.05, betas=(0.8, 0.95), maximize=maximize)
    with reference():  # claimed for the parity record by the comparisons below
        t = torch.optim.SparseAdam([ref], lr=0.05, betas=(0.8, 0.95), maximize=maximize)
    for _ in range(12):
        rows = np.unique(rng.integers(0, 10, size=3))
        values = rng.standard_normal((rows.size, 4)).astype(dtype)
        dense = np.zeros_like(w0)
        dense[rows] = values
        ours.grad = na.tensor(dense)
        ref.grad = torch.sparse_coo_tensor(torch.tensor(rows)[None], torch.tensor(values), w0.shape)
        o.step()
        t.step()
        rtol = 1e-12 if dtype == np.float64 else 2e-5
        compare(ours.data, ref, rtol=rtol, atol=rtol / 10, what="embedding table")
    untouched = np.setdiff1d(np.arange(10), np.flatnonzero(o.state[ours]["exp_avg"].any(axis=1)))
    np.testing.assert_array_equal(ours.data[untouched], w0[untouched])


def test_sparse_adam_with_an_embedding_layer():
    emb = nn.Embedding(20, 3)
    before = emb.weight.data.copy()
    opt = optim.SparseAdam(emb.parameters(), lr=0.1)
    emb(na.tensor(np.array([2, 5, 5]))).sum().backward()
    opt.step()
    moved = np.flatnonzero((emb.weight.data != before).any(axis=1))
    assert moved.tolist() == [2, 5]


# -- LBFGS ------------------------------------------------------------------------------------------------
def _lbfgs_pair(dtype, **kw):
    """A smooth, well-conditioned non-quadratic problem in two parameter tensors (so rounding
    differences between the frameworks' losses are not amplified), stepped by ours and torch's."""
    x0 = np.array([-1.2, 1.0, 0.5], dtype)
    w0 = np.array([[0.3, -0.2], [0.1, 0.4]], dtype)
    a = np.array([[1.0, 0.3, 0.0], [0.2, 1.5, 0.4], [0.0, 0.1, 0.8], [0.5, 0.0, 0.3]], dtype)
    b = np.array([0.5, -1.0, 2.0, 0.3], dtype)
    ours = [nn.Parameter(na.tensor(x0.copy())), nn.Parameter(na.tensor(w0.copy()))]
    ref = [torch.tensor(x0.copy(), requires_grad=True), torch.tensor(w0.copy(), requires_grad=True)]

    def loss_of(x, w, tensor):
        r = tensor(a) @ x - tensor(b)
        return (r * r).sum() + 0.1 * (x**4).sum() + ((w @ w - 0.5 * w) ** 2).sum() + (w.sum() - x[0]) ** 2

    o = optim.LBFGS(ours, **kw)
    with reference():  # claimed for the parity record by the test's comparisons
        t = torch.optim.LBFGS(ref, **kw)

    def closure_ours():
        o.zero_grad()
        loss = loss_of(*ours, na.tensor)
        loss.backward()
        return loss

    def closure_ref():
        t.zero_grad()
        loss = loss_of(*ref, torch.tensor)
        loss.backward()
        return loss

    return o, t, ours, ref, closure_ours, closure_ref


@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("kw", [dict(), dict(line_search_fn="strong_wolfe"),
                                dict(lr=0.5, history_size=3, max_iter=7, line_search_fn="strong_wolfe"),
                                dict(lr=0.1, history_size=2, max_iter=5)], ids=str)
def test_lbfgs_matches_torch(dtype, kw):
    """float64: the same iterates to rounding over 5 steps (up to 100 iterations). float32: near
    the optimum the iterates wander in directions the loss cannot see in float32, so the
    parameters are compared over the first 3 steps of 4 iterations, the losses over all 5."""
    if dtype == np.float32:
        kw = {**kw, "max_iter": min(4, kw.get("max_iter", 20))}
    o, t, ours, ref, co, ct = _lbfgs_pair(dtype, **kw)
    rtol, atol = (1e-9, 1e-10) if dtype == np.float64 else (2e-5, 2e-6)
    for k in range(5):
        lo = o.step(co)
        with reference():
            lt = t.step(ct)
        compare(float(lo), float(lt.detach()), rtol=rtol, what=f"loss at step {k}")
        for p, r in zip(ours, ref):
            assert p.data.dtype == dtype
            if dtype == np.float64 or k < 3:
                np.testing.assert_allclose(p.data, r.detach().numpy(), rtol=rtol, atol=atol, err_msg=f"step {k}")
    so, st = o.state[ours[0]], t.state[ref[0]]
    assert so["func_evals"] == st["func_evals"] and so["n_iter"] == st["n_iter"]


def test_lbfgs_state_dict_round_trip_and_errors():
    o, _, ours, _, co, _ = _lbfgs_pair(np.float64, line_search_fn="strong_wolfe", max_iter=4)
    o.step(co)
    saved = copy.deepcopy(o.state_dict())
    o2, _, ours2, _, co2, _ = _lbfgs_pair(np.float64, line_search_fn="strong_wolfe", max_iter=4)
    for p, q in zip(ours2, ours):
        p.data[...] = q.data
    o2.load_state_dict(saved)
    o.step(co)
    o2.step(co2)
    for p, q in zip(ours, ours2):
        np.testing.assert_array_equal(p.data, q.data)
    with pytest.raises(ConfigError, match="closure"):
        o.step(None)
    with pytest.raises(ConfigError, match="line_search_fn"):
        optim.LBFGS(ours, line_search_fn="armijo")
    with pytest.raises(ConfigError, match="parameter groups"):
        optim.LBFGS([{"params": ours[:1]}, {"params": ours[1:]}])


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.Adamax(p, betas=(1.0, 0.9)), "index 0"),
    (lambda p: optim.NAdam(p, momentum_decay=-1), "momentum_decay"),
    (lambda p: optim.RAdam(p, eps=-1), "epsilon"), (lambda p: optim.Adadelta(p, rho=1.5), "rho"),
    (lambda p: optim.ASGD(p, lr=-1), "learning rate"), (lambda p: optim.Rprop(p, etas=(1.5, 2.0)), "etaminus"),
    (lambda p: optim.Adafactor(p, beta2_decay=0.5), "beta2_decay"), (lambda p: optim.Adafactor(p, d=0.5), "clipping"),
    (lambda p: optim.SparseAdam(p, lr=0), "learning rate"),
])
def test_invalid_hyperparameters_raise(make, match):
    with pytest.raises(ConfigError, match=match):
        make([nn.Parameter(na.ones(2))])


# -- Muon -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("kw", [dict(lr=0.02), dict(lr=0.05, momentum=0.9, weight_decay=0.01, ns_steps=3),
                                dict(lr=0.02, nesterov=False, weight_decay=0.0, adjust_lr_fn="match_rms_adamw")],
                         ids=str)
def test_muon_matches_torch(kw, dtype):
    """2-D parameters, wide and tall (the iteration runs on the transpose); the Newton-Schulz
    iteration is bfloat16 in both, products accumulated in float32."""
    rng = np.random.default_rng(0)
    shapes = [(4, 6), (7, 3)]
    ours = [nn.Parameter(na.tensor(rng.standard_normal(s).astype(dtype))) for s in shapes]
    ref = [torch.tensor(p.data.copy(), requires_grad=True) for p in ours]
    o = optim.Muon(ours, **kw)
    with reference():  # claimed for the parity record by the comparisons below
        t = torch.optim.Muon(ref, **kw)
    for k in range(8):
        for a, b in zip(ours, ref):
            g = rng.standard_normal(a.shape).astype(dtype)
            a.grad, b.grad = na.tensor(g + 0.3 * a.data), torch.tensor(g + 0.3 * b.detach().numpy())
        o.step()
        with reference():
            t.step()
        for a, b in zip(ours, ref):
            assert a.data.dtype == dtype
            compare(a.data, b, rtol=1e-12 if dtype == np.float64 else 2e-5,
                    atol=1e-14 if dtype == np.float64 else 2e-6, what=f"step {k + 1}")
    assert set(o.state_dict()["state"][0]) == set(t.state_dict()["state"][0])


def test_muon_refuses_non_matrices():
    with pytest.raises(ConfigError, match="2-D"):
        optim.Muon([nn.Parameter(na.ones(3))])
