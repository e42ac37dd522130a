"""The schedulers added for issue 25 (MultiplicativeLR, ConstantLR, PolynomialLR, ChainedScheduler,
CyclicLR, CosineAnnealingWarmRestarts): lr (and momentum) sequences step by step against
torch.optim.lr_scheduler, state_dict round trips, errors."""

import copy
import warnings

import numpy as np
import pytest
import torch
from tests.optim.test_lr_scheduler import _compare, _opts

import neural_arch as na
import neural_arch.nn as nn
import neural_arch.optim as optim
from neural_arch.errors import ConfigError
from neural_arch.optim import lr_scheduler as ls

T = torch.optim.lr_scheduler

CASES = {
    "MultiplicativeLR": (lambda o: ls.MultiplicativeLR(o, lambda e: 0.95),
                         lambda o: T.MultiplicativeLR(o, lambda e: 0.95)),
    "MultiplicativeLR-per-group": (lambda o: ls.MultiplicativeLR(o, [lambda e: 0.9, lambda e: 1 + 0.01 * e]),
                                   lambda o: T.MultiplicativeLR(o, [lambda e: 0.9, lambda e: 1 + 0.01 * e])),
    "ConstantLR": (lambda o: ls.ConstantLR(o), lambda o: T.ConstantLR(o)),
    "ConstantLR-0.5-7": (lambda o: ls.ConstantLR(o, factor=0.5, total_iters=7),
                         lambda o: T.ConstantLR(o, factor=0.5, total_iters=7)),
    "PolynomialLR": (lambda o: ls.PolynomialLR(o), lambda o: T.PolynomialLR(o)),
    "PolynomialLR-2": (lambda o: ls.PolynomialLR(o, total_iters=12, power=2.0),
                       lambda o: T.PolynomialLR(o, total_iters=12, power=2.0)),
    "ChainedScheduler": (
        lambda o: ls.ChainedScheduler([ls.ConstantLR(o, factor=0.1, total_iters=2), ls.ExponentialLR(o, gamma=0.9)]),
        lambda o: T.ChainedScheduler([T.ConstantLR(o, factor=0.1, total_iters=2), T.ExponentialLR(o, gamma=0.9)])),
    "ChainedScheduler-3": (
        lambda o: ls.ChainedScheduler([ls.LinearLR(o, 0.2, total_iters=4), ls.StepLR(o, 3, 0.5),
                                       ls.MultiplicativeLR(o, lambda e: 0.99)]),
        lambda o: T.ChainedScheduler([T.LinearLR(o, 0.2, total_iters=4), T.StepLR(o, 3, 0.5),
                                      T.MultiplicativeLR(o, lambda e: 0.99)])),
    "CosineAnnealingWarmRestarts": (lambda o: ls.CosineAnnealingWarmRestarts(o, T_0=5),
                                    lambda o: T.CosineAnnealingWarmRestarts(o, T_0=5)),
    "CosineAnnealingWarmRestarts-mult": (lambda o: ls.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=1e-3),
                                         lambda o: T.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=1e-3)),
    "SequentialLR-ConstantLR": (
        lambda o: ls.SequentialLR(o, [ls.ConstantLR(o, 0.1, total_iters=3), ls.PolynomialLR(o, 10, 2.0)], [3]),
        lambda o: T.SequentialLR(o, [T.ConstantLR(o, 0.1, total_iters=3), T.PolynomialLR(o, 10, 2.0)], [3])),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name):
    make_ours, make_ref = CASES[name]
    _compare(make_ours, make_ref)


CYCLIC = [
    dict(base_lr=0.01, max_lr=0.1, step_size_up=4),
    dict(base_lr=[0.01, 0.02], max_lr=[0.1, 0.05], step_size_up=3, step_size_down=5, mode="triangular2"),
    dict(base_lr=0.01, max_lr=0.1, step_size_up=4, mode="exp_range", gamma=0.95, base_momentum=0.7),
    dict(base_lr=0.01, max_lr=0.1, step_size_up=2, scale_fn=lambda x: 0.5 ** x, scale_mode="iterations"),
]


@pytest.mark.parametrize("kw", CYCLIC, ids=lambda kw: kw.get("mode", "scale_fn" if "scale_fn" in kw else "triangular"))
@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_cyclic_matches_torch(kw, opt):
    opt_kw = {"momentum": 0.9} if opt == "SGD" else {}
    _compare(lambda o: ls.CyclicLR(o, **kw), lambda o: T.CyclicLR(o, **kw), steps=25, opt=opt, opt_kw=opt_kw,
             check_momentum=True)


def test_warm_restarts_fractional_epochs_match_torch():
    o_opt, t_opt = _opts(groups=2)
    o, t = ls.CosineAnnealingWarmRestarts(o_opt, T_0=4, T_mult=2), T.CosineAnnealingWarmRestarts(t_opt, T_0=4, T_mult=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in range(12):
            for i in range(3):
                o.step(epoch + i / 3)
                t.step(epoch + i / 3)
                np.testing.assert_allclose(o.get_last_lr(), t.get_last_lr(), rtol=1e-13)
                assert o.T_i == t.T_i and o.last_epoch == t.last_epoch


@pytest.mark.parametrize("name", ["MultiplicativeLR", "ConstantLR", "PolynomialLR-2", "ChainedScheduler",
                                  "CosineAnnealingWarmRestarts-mult"])
def test_state_dict_round_trip(name):
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


def test_cyclic_state_dict_keeps_a_callable_objects_attributes():
    class Scale:
        def __init__(self):
            self.k = 0.5

        def __call__(self, x):
            return self.k ** x

    opt, _ = _opts(momentum=0.9)
    s = ls.CyclicLR(opt, 0.01, 0.1, step_size_up=2, scale_fn=Scale())
    s._scale_fn_custom.k = 0.25
    saved = copy.deepcopy(s.state_dict())
    assert saved["_scale_fn_custom"] == {"k": 0.25}
    opt2, _ = _opts(momentum=0.9)
    s2 = ls.CyclicLR(opt2, 0.01, 0.1, step_size_up=2, scale_fn=Scale())
    s2.load_state_dict(saved)
    assert s2._scale_fn_custom.k == 0.25


def test_errors():
    opt, _ = _opts()
    with pytest.raises(ConfigError, match="factor"):
        ls.ConstantLR(opt, factor=2.0)
    with pytest.raises(ConfigError, match="T_0"):
        ls.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ConfigError, match="T_mult"):
        ls.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=0)
    with pytest.raises(ConfigError, match="mode"):
        ls.CyclicLR(opt, 0.01, 0.1, mode="sine", cycle_momentum=False)
    with pytest.raises(ConfigError, match="momentum"):
        ls.CyclicLR(optim.Adagrad([nn.Parameter(na.ones(2))]), 0.01, 0.1)
    with pytest.raises(ConfigError, match="ReduceLROnPlateau"):
        ls.ChainedScheduler([ls.ReduceLROnPlateau(opt)])
    with pytest.raises(TypeError, match="function"):
        ls.MultiplicativeLR(opt, 0.9)
    other, _ = _opts()
    with pytest.raises(ConfigError, match="another optimizer"):
        ls.ChainedScheduler([ls.StepLR(opt, 2), ls.StepLR(other, 2)])
