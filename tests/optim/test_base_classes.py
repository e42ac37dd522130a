"""The base classes a user derives from, against torch's: an Optimizer subclass (param groups, per-parameter
state, ``add_param_group``, ``zero_grad``, ``state_dict``) and an LRScheduler subclass (``base_lrs``,
``last_epoch``, the initial step) written the same way in both frameworks give the same trajectories."""

import numpy as np
import pytest
import torch
from parity import compare, reference
from tests.optim.test_lr_scheduler import _compare
from tests.optim.test_optimizers import DT, run_pair

import neural_arch as na
import neural_arch.nn as nn
import neural_arch.optim as optim
from neural_arch.optim import lr_scheduler as ls


class SignDecay(optim.Optimizer):
    """Sign descent with a step size that decays with the parameter's own step count (kept in ``state``)."""

    def __init__(self, params, lr=0.1, decay=0.5):
        super().__init__(params, dict(lr=lr, decay=decay))

    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = state.get("step", 0) + 1
                p.data -= group["lr"] / (1 + group["decay"] * state["step"]) * np.sign(p.grad.data)


class TorchSignDecay(torch.optim.Optimizer):
    def __init__(self, params, lr=0.1, decay=0.5):
        super().__init__(params, dict(lr=lr, decay=decay))

    def step(self):
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    state = self.state[p]
                    state["step"] = state.get("step", 0) + 1
                    p.sub_(group["lr"] / (1 + group["decay"] * state["step"]) * torch.sign(p.grad))


@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("groups", [None, dict(lr=0.02, decay=2.0)], ids=["one-group", "two-groups"])
def test_a_users_optimizer_steps_like_torchs(dtype, groups):
    run_pair(SignDecay, TorchSignDecay, dict(lr=0.05), dtype, groups=groups)


def test_a_users_optimizer_groups_state_and_zero_grad_are_torchs():
    ours_p = [nn.Parameter(na.ones(3)), nn.Parameter(na.zeros(2))]
    ref_p = [torch.ones(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    o = SignDecay(ours_p[:1], lr=0.1)
    with reference():
        t = TorchSignDecay(ref_p[:1], lr=0.1)
        t.add_param_group({"params": ref_p[1:], "decay": 1.0})
    o.add_param_group({"params": ours_p[1:], "decay": 1.0})
    for p, r in zip(ours_p, ref_p):
        p.grad, r.grad = na.tensor(np.arange(p.shape[0], dtype=np.float32) - 1), torch.arange(r.shape[0]) - 1.0
    o.step()
    t.step()
    o_sd, t_sd = o.state_dict(), t.state_dict()
    compare([sorted(g.items()) for g in o_sd["param_groups"]], [sorted(g.items()) for g in t_sd["param_groups"]])
    compare(o_sd["state"], t_sd["state"])
    o.zero_grad()
    t.zero_grad()
    compare([p.grad is None for p in ours_p], [r.grad is None for r in ref_p])


class HalfLife(ls.LRScheduler):
    """lr = base_lr * 2^(-epoch / half_life), from the base class's ``base_lrs`` and ``last_epoch``."""

    def __init__(self, optimizer, half_life, last_epoch=-1):
        self.half_life = half_life
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * 2.0 ** (-self.last_epoch / self.half_life) for base in self.base_lrs]


class TorchHalfLife(torch.optim.lr_scheduler.LRScheduler):
    def __init__(self, optimizer, half_life, last_epoch=-1):
        self.half_life = half_life
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * 2.0 ** (-self.last_epoch / self.half_life) for base in self.base_lrs]


@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_a_users_scheduler_steps_like_torchs(opt):
    _compare(lambda o: HalfLife(o, 4.0), lambda o: TorchHalfLife(o, 4.0), steps=12, opt=opt)
