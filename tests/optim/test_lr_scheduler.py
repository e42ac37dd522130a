"""LR schedulers: lr trajectories step by step against torch.optim.lr_scheduler; state_dict
round trips; WarmupCosineLR against its closed form and torch's LambdaLR."""

import copy
import math

import numpy as np
import pytest
import torch
from parity import compare, reference

import neural_arch as na
import neural_arch.nn as nn
import neural_arch.optim as optim
from neural_arch.errors import ConfigError
from neural_arch.optim import lr_scheduler as ls

T = torch.optim.lr_scheduler


def _opts(opt="SGD", groups=1, **kw):
    kw = {"lr": 0.1, **kw}
    if groups == 1:
        ours = getattr(optim, opt)([nn.Parameter(na.ones(2))], **kw)
        ref = getattr(torch.optim, opt)([torch.ones(2, requires_grad=True)], **kw)
    else:
        ours = getattr(optim, opt)([{"params": [nn.Parameter(na.ones(2))]},
                                    {"params": [nn.Parameter(na.ones(2))], "lr": 0.03}], **kw)
        ref = getattr(torch.optim, opt)([{"params": [torch.ones(2, requires_grad=True)]},
                                         {"params": [torch.ones(2, requires_grad=True)], "lr": 0.03}], **kw)
    return ours, ref


def _compare(make_ours, make_ref, steps=30, opt="SGD", groups=2, opt_kw=None, check_momentum=False):
    o_opt, t_opt = _opts(opt, groups, **(opt_kw or {}))
    o = make_ours(o_opt)
    with reference():  # torch's scheduler: claimed for the parity record by the comparisons below
        t = make_ref(t_opt)
    for k in range(steps + 1):
        compare(o.get_last_lr(), t.get_last_lr(), rtol=1e-13, atol=1e-16, what=f"lr at step {k}")
        for og, tg in zip(o_opt.param_groups, t_opt.param_groups):
            assert og["lr"] == pytest.approx(tg["lr"], rel=1e-13, abs=1e-16)
            if check_momentum:
                key = "betas" if "betas" in tg else "momentum"
                np.testing.assert_allclose(og[key], tg[key], rtol=1e-13)
        if k < steps:
            o_opt.step()
            o.step()
            with reference():
                t_opt.step()
                t.step()
    return o, t


CASES = {
    "StepLR": (lambda o: ls.StepLR(o, step_size=4, gamma=0.5), lambda o: T.StepLR(o, step_size=4, gamma=0.5)),
    "MultiStepLR": (lambda o: ls.MultiStepLR(o, [3, 7, 7, 20], gamma=0.3),
                    lambda o: T.MultiStepLR(o, [3, 7, 7, 20], gamma=0.3)),
    "ExponentialLR": (lambda o: ls.ExponentialLR(o, 0.9), lambda o: T.ExponentialLR(o, 0.9)),
    "CosineAnnealingLR": (lambda o: ls.CosineAnnealingLR(o, T_max=10, eta_min=1e-3),
                          lambda o: T.CosineAnnealingLR(o, T_max=10, eta_min=1e-3)),
    "LinearLR": (lambda o: ls.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=8),
                 lambda o: T.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=8)),
    "LinearLR-default": (lambda o: ls.LinearLR(o), lambda o: T.LinearLR(o)),
    "LambdaLR": (lambda o: ls.LambdaLR(o, lambda e: 1 / (1 + e)), lambda o: T.LambdaLR(o, lambda e: 1 / (1 + e))),
    "LambdaLR-per-group": (lambda o: ls.LambdaLR(o, [lambda e: 0.9**e, lambda e: e + 1]),
                           lambda o: T.LambdaLR(o, [lambda e: 0.9**e, lambda e: e + 1])),
    "SequentialLR": (
        lambda o: ls.SequentialLR(o, [ls.LinearLR(o, 0.1, total_iters=5), ls.CosineAnnealingLR(o, T_max=12)], [5]),
        lambda o: T.SequentialLR(o, [T.LinearLR(o, 0.1, total_iters=5), T.CosineAnnealingLR(o, T_max=12)], [5])),
    "SequentialLR-3": (
        lambda o: ls.SequentialLR(o, [ls.ExponentialLR(o, 0.9), ls.StepLR(o, 3), ls.LinearLR(o, 0.5)], [4, 10]),
        lambda o: T.SequentialLR(o, [T.ExponentialLR(o, 0.9), T.StepLR(o, 3), T.LinearLR(o, 0.5)], [4, 10])),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name):
    make_ours, make_ref = CASES[name]
    _compare(make_ours, make_ref)


@pytest.mark.parametrize("kw", [dict(max_lr=1.0, total_steps=30), dict(max_lr=[1.0, 0.2], total_steps=30,
                                anneal_strategy="linear", pct_start=0.25),
                                dict(max_lr=0.5, epochs=3, steps_per_epoch=10, three_phase=True)], ids=str)
@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_one_cycle_matches_torch(kw, opt):
    opt_kw = {"momentum": 0.9} if opt == "SGD" else {}
    _compare(lambda o: ls.OneCycleLR(o, **kw), lambda o: T.OneCycleLR(o, **kw), steps=29, opt=opt, opt_kw=opt_kw,
             check_momentum=True)


def test_one_cycle_past_total_steps_raises():
    o, _ = _opts()
    s = ls.OneCycleLR(o, max_lr=1.0, total_steps=3)
    for _ in range(3):
        s.step()
    with pytest.raises(ConfigError, match="total steps"):
        s.step()


@pytest.mark.parametrize("kw", [dict(), dict(mode="max", factor=0.5, patience=2, threshold_mode="abs", cooldown=2),
                                dict(patience=1, min_lr=[0.02, 0.01], threshold=0.1)], ids=str)
def test_reduce_on_plateau_matches_torch(kw):
    o_opt, t_opt = _opts(groups=2)
    o = ls.ReduceLROnPlateau(o_opt, **kw)
    with reference():  # claimed for the parity record by the comparisons below
        t = T.ReduceLROnPlateau(t_opt, **kw)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 2.0, 0.5] * 3 + [0.5] * 15
    for m in metrics:
        o.step(m)
        t.step(m)
        compare(o.get_last_lr(), t.get_last_lr(), rtol=1e-14, what=f"lr after metric {m}")
    assert o.num_bad_epochs == t.num_bad_epochs and o.best == t.best


def test_step_with_epoch_uses_closed_form():
    o_opt, t_opt = _opts()
    o, t = ls.StepLR(o_opt, 3, 0.5), T.StepLR(t_opt, 3, 0.5)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        o.step(7)
        t.step(7)
    assert o.get_last_lr() == pytest.approx(t.get_last_lr())


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "SequentialLR", "LinearLR"])
def test_state_dict_round_trip(name):
    """Save mid-schedule; a fresh optimizer + scheduler loaded from both state dicts continues identically."""
    make, _ = CASES[name]
    opt, _ = _opts()
    s = make(opt)
    for _ in range(7):
        opt.step()
        s.step()
    o_sd, s_sd = copy.deepcopy(opt.state_dict()), copy.deepcopy(s.state_dict())
    opt2, _ = _opts()
    s2 = make(opt2)
    opt2.load_state_dict(o_sd)
    s2.load_state_dict(s_sd)
    for _ in range(10):
        s.step()
        s2.step()
        assert s.get_last_lr() == s2.get_last_lr()


@pytest.mark.parametrize("warmup,total,start,eta", [(5, 20, 0.0, 0.0), (3, 10, 0.1, 1e-3), (0, 8, 0.0, 0.01)])
def test_warmup_cosine(warmup, total, start, eta):
    opt, t_opt = _opts(groups=2)
    s = ls.WarmupCosineLR(opt, warmup_steps=warmup, total_steps=total, eta_min=eta, warmup_start_factor=start)

    def closed(t, base):
        if t < warmup:
            return base * (start + (1 - start) * t / warmup)
        if t >= total:
            return eta
        return eta + (base - eta) * (1 + math.cos(math.pi * (t - warmup) / (total - warmup))) / 2

    # the same schedule as a torch LambdaLR (per group, relative to the group's base lr)
    ref = T.LambdaLR(t_opt, [lambda t, b=b: closed(t, b) / b for b in (0.1, 0.03)])
    for step in range(total + 4):
        assert s.get_last_lr() == pytest.approx([closed(step, 0.1), closed(step, 0.03)], rel=1e-14, abs=1e-16)
        np.testing.assert_allclose(s.get_last_lr(), ref.get_last_lr(), rtol=1e-12, atol=1e-16)
        opt.step()
        t_opt.step()
        s.step()
        ref.step()
    assert s.get_last_lr() == [eta, eta]


def test_warmup_cosine_peak_and_validation():
    opt, _ = _opts()
    s = ls.WarmupCosineLR(opt, warmup_steps=4, total_steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(s.get_last_lr()[0])
        s.step()
    assert lrs[0] == 0.0 and lrs[4] == pytest.approx(0.1) and max(lrs) == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))  # monotone decay after warmup
    with pytest.raises(ConfigError, match="warmup_steps"):
        ls.WarmupCosineLR(opt, warmup_steps=20, total_steps=10)


def test_scheduler_errors():
    opt, _ = _opts()
    with pytest.raises(ConfigError, match="start_factor"):
        ls.LinearLR(opt, start_factor=0)
    with pytest.raises(ConfigError, match="milestone"):
        ls.SequentialLR(opt, [ls.StepLR(opt, 2), ls.StepLR(opt, 3)], [])
    with pytest.raises(ConfigError, match="factor"):
        ls.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(TypeError, match="not an Optimizer"):
        ls.StepLR(object(), 2)
    fresh, _ = _opts()
    with pytest.raises(ConfigError, match="initial_lr"):
        ls.StepLR(fresh, 2, last_epoch=3)
