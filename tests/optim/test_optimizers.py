"""Optimizers: parameter trajectories step by step against torch.optim (same initial params,
same gradients), float64 tight and float32; param groups; state_dict round trips; errors."""

import copy
import math

import numpy as np
import pytest
import torch
from parity import compare, reference

import neural_arch as na
import neural_arch.nn as nn
import neural_arch.optim as optim
from neural_arch.errors import CheckpointError, ConfigError

SHAPES = [(4, 3), (3,), (2, 2, 2)]
STEPS = 15
TOL = {np.float64: (1e-12, 1e-14), np.float32: (2e-5, 2e-6)}


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) * (1 + k % 3) for s in SHAPES] for k in range(STEPS)]
    # a few exact zeros: sign() and division edge cases
    grads[3][1][0] = 0.0
    return params, grads


def _grad(g, p, curv):
    # gradient of sum(g*p) + curv/2 * |p|^2: depends on the trajectory, so errors would compound
    return g + curv * p


def run_pair(ours_cls, torch_cls, kwargs, dtype, torch_kwargs=None, curv=0.3, groups=None, steps=STEPS,
             torch_fn=None):
    """Step both optimizers on the same problem; assert params match after every step."""
    params, grads = _problem()
    ours = [nn.Parameter(na.tensor(p.astype(dtype))) for p in params]
    ref = [torch.tensor(p.astype(dtype), requires_grad=True) for p in params]
    o_opt = ours_cls([{"params": ours[:1], **groups}, {"params": ours[1:]}] if groups else ours, **kwargs)
    with reference():  # torch's optimizer: claimed for the parity record by the comparisons below
        t_opt = torch_cls([{"params": ref[:1], **groups}, {"params": ref[1:]}] if groups else ref,
                          **(torch_kwargs or kwargs)) if torch_cls else None
    rtol, atol = TOL[dtype]
    for k in range(steps):
        for p, t, g in zip(ours, ref, grads[k]):
            p.grad = na.tensor(_grad(g.astype(dtype), p.data, curv))
            t.grad = torch.tensor(_grad(g.astype(dtype), t.detach().numpy(), curv))
        o_opt.step()
        with reference():
            t_opt.step() if t_opt is not None else torch_fn(ref, k)
        for i, (p, t) in enumerate(zip(ours, ref)):
            assert p.data.dtype == dtype, f"param {i} changed dtype to {p.data.dtype}"
            compare(p.data, t, rtol=rtol, atol=atol, what=f"param {i} after step {k + 1}")
    return o_opt, t_opt, ours, ref


DT = [np.float64, np.float32]

SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
    dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
    dict(lr=0.05, momentum=0.5, maximize=True),
]


@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("kw", SGD_CASES, ids=str)
def test_sgd_matches_torch(kw, dtype):
    run_pair(optim.SGD, torch.optim.SGD, kw, dtype)


ADAM_CASES = [
    dict(lr=0.01),
    dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.01, amsgrad=True, weight_decay=0.1, maximize=True),
    dict(lr=0.01, betas=(0.3, 0.9)),  # beta1 < 0.5: the other branch of torch's lerp
]


@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("kw", ADAM_CASES, ids=str)
def test_adam_matches_torch(kw, dtype):
    run_pair(optim.Adam, torch.optim.Adam, kw, dtype)


@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("kw", [dict(lr=0.01), dict(lr=0.01, weight_decay=0.1, amsgrad=True),
                                dict(lr=0.03, betas=(0.9, 0.95), weight_decay=0.0)], ids=str)
def test_adamw_matches_torch(kw, dtype):
    run_pair(optim.AdamW, torch.optim.AdamW, kw, dtype)


RMS_CASES = [
    dict(lr=0.01),
    dict(lr=0.01, alpha=0.9, momentum=0.9),
    dict(lr=0.01, centered=True, weight_decay=0.1),
    dict(lr=0.005, centered=True, momentum=0.5, eps=1e-4, maximize=True),
]


@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("kw", RMS_CASES, ids=str)
def test_rmsprop_matches_torch(kw, dtype):
    run_pair(optim.RMSprop, torch.optim.RMSprop, kw, dtype)


ADAGRAD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.5),
    dict(lr=0.1, weight_decay=0.1, eps=1e-6, maximize=True),
]


@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("kw", ADAGRAD_CASES, ids=str)
def test_adagrad_matches_torch(kw, dtype):
    run_pair(optim.Adagrad, torch.optim.Adagrad, kw, dtype)


def _torch_lion(lr, betas, weight_decay):
    """The reference Lion update (paper's Algorithm 2 / lion-pytorch), written in torch."""
    bufs = {}

    def step(params, k):
        with torch.no_grad():
            for p in params:
                m = bufs.setdefault(id(p), torch.zeros_like(p))
                p.mul_(1 - lr * weight_decay)
                p.add_(torch.sign(m * betas[0] + p.grad * (1 - betas[0])), alpha=-lr)
                m.mul_(betas[1]).add_(p.grad, alpha=1 - betas[1])

    return step


@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("kw", [dict(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.0),
                                dict(lr=3e-3, betas=(0.95, 0.98), weight_decay=0.1)], ids=str)
def test_lion_matches_reference(kw, dtype):
    run_pair(optim.Lion, None, kw, dtype, torch_fn=_torch_lion(**kw))


@pytest.mark.parametrize("dtype", DT)
def test_param_groups_with_own_options(dtype):
    run_pair(optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9), dtype, groups=dict(lr=0.01, nesterov=True))
    run_pair(optim.Adam, torch.optim.Adam, dict(lr=0.01), dtype, groups=dict(lr=0.001, weight_decay=0.2))


def test_params_without_grad_are_skipped():
    a, b = nn.Parameter(na.ones(2)), nn.Parameter(na.ones(2))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = na.tensor([1.0, -1.0])
    opt.step()
    assert np.all(b.data == 1) and b not in opt.state
    assert not np.allclose(a.data, 1)


@pytest.mark.parametrize("name,kw", [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)), ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)), ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)), ("Lion", dict(lr=1e-3)),
])
def test_state_dict_round_trip_continues_identically(name, kw):
    """Save after 6 steps, load into a fresh optimizer on copies of the params, and both continue
    bit-identically; the loaded state is a copy (stepping one does not move the other)."""
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
    assert sorted(saved["state"]) == [0, 1, 2]
    assert saved["param_groups"][0]["params"] == [0, 1, 2]
    b = [nn.Parameter(na.tensor(p.data.copy())) for p in a]
    opt_b = getattr(optim, name)(b, **{**kw, "lr": 123.0})  # lr comes back from the state dict
    opt_b.load_state_dict(saved)
    assert opt_b.param_groups[0]["lr"] == kw["lr"]
    for k in range(6, STEPS):
        step(opt_a, a, k)
        step(opt_b, b, k)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_structure_matches_torch():
    params, grads = _problem()
    ours = [nn.Parameter(na.tensor(p)) for p in params]
    ref = [torch.tensor(p, requires_grad=True) for p in params]
    o = optim.Adam([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.5}], lr=0.1)
    t = torch.optim.Adam([{"params": ref[:2]}, {"params": ref[2:], "lr": 0.5}], lr=0.1)
    for p, r, g in zip(ours, ref, grads[0]):
        p.grad, r.grad = na.tensor(g), torch.tensor(g)
    o.step()
    t.step()
    os, ts = o.state_dict(), t.state_dict()
    assert [g["params"] for g in os["param_groups"]] == [g["params"] for g in ts["param_groups"]]
    assert os["state"].keys() == ts["state"].keys()
    for i in ts["state"]:
        assert set(os["state"][i]) == set(ts["state"][i])
        np.testing.assert_allclose(os["state"][i]["exp_avg_sq"].numpy(), ts["state"][i]["exp_avg_sq"].numpy())
        assert float(os["state"][i]["step"]) == float(ts["state"][i]["step"])
    assert os["param_groups"][1]["lr"] == 0.5


def test_load_state_dict_mismatch_raises():
    o = optim.SGD([nn.Parameter(na.ones(2))], lr=0.1)
    other = optim.SGD([{"params": [nn.Parameter(na.ones(2))]}, {"params": [nn.Parameter(na.ones(2))]}], lr=0.1)
    with pytest.raises(CheckpointError, match="2 parameter groups"):
        o.load_state_dict(other.state_dict())
    two = optim.SGD([nn.Parameter(na.ones(2)), nn.Parameter(na.ones(2))], lr=0.1)
    with pytest.raises(CheckpointError, match="group 0 has 2 parameters"):
        o.load_state_dict(two.state_dict())


def test_float32_stays_float32_state_too():
    p = nn.Parameter(na.ones(3))
    opt = optim.Adam([p], lr=0.1, weight_decay=0.1)
    p.grad = na.tensor([1.0, 2.0, 3.0])
    opt.step()
    assert p.data.dtype == np.float32
    assert opt.state[p]["exp_avg"].dtype == np.float32


def test_zero_grad_and_add_param_group():
    a, b = nn.Parameter(na.ones(2)), nn.Parameter(na.ones(2))
    opt = optim.SGD([a], lr=0.1)
    a.grad = na.ones(2)
    opt.zero_grad(set_to_none=False)
    assert a.grad is not None and not a.grad.data.any()
    opt.zero_grad()
    assert a.grad is None
    opt.add_param_group({"params": b, "lr": 0.5})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0
    with pytest.raises(ConfigError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_closure_is_called_with_grad_enabled():
    p = nn.Parameter(na.tensor([2.0]))
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with na.no_grad():
        loss = opt.step(closure)
    assert float(loss) == 4.0 and math.isclose(float(p.data[0]), 1.0)


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.SGD(p, lr=-1), "learning rate"), (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.9)), "beta parameter at index 0"), (lambda p: optim.AdamW(p, eps=-1), "epsilon"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), "alpha"), (lambda p: optim.Adagrad(p, lr_decay=-1), "lr_decay"),
    (lambda p: optim.Lion(p, betas=(0.9, 1.5)), "index 1"),
])
def test_invalid_hyperparameters_raise(make, match):
    with pytest.raises(ConfigError, match=match):
        make([nn.Parameter(na.ones(2))])


def test_wrong_params_types():
    with pytest.raises(TypeError, match="iterable"):
        optim.SGD(nn.Parameter(na.ones(2)), lr=0.1)
    with pytest.raises(TypeError, match="set"):
        optim.SGD({nn.Parameter(na.ones(2))}, lr=0.1)
    with pytest.raises(ConfigError, match="empty"):
        optim.Adam([])
