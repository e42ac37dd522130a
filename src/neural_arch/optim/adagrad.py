"""``Adagrad`` (Duchi et al., 2011), as ``torch.optim.Adagrad``."""

from __future__ import annotations

import numpy as np

from neural_arch.backend.kernels.optim import adagrad_step
from neural_arch.optim.optimizer import Optimizer, check_range


class Adagrad(Optimizer):
    r"""Adagrad: step sizes shrink with the accumulated squared gradient of each coordinate.

    At step t, with g the gradient (negated when ``maximize``, plus ``weight_decay * p``)::

        lr_t = lr / (1 + (t - 1) * lr_decay)
        s = s + g^2                              (s starts at initial_accumulator_value)
        p = p - lr_t * g / (sqrt(s) + eps)
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach=None, *,
                 maximize: bool = False, differentiable: bool = False, fused=None):
        check_range("Adagrad", "learning rate", lr)
        check_range("Adagrad", "lr_decay", lr_decay)
        check_range("Adagrad", "weight_decay", weight_decay)
        check_range("Adagrad", "initial_accumulator_value", initial_accumulator_value)
        check_range("Adagrad", "epsilon", eps)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        super().__init__(params, defaults)

    def _init_state(self, group: dict) -> None:
        for p in group["params"]:
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["sum"] = np.full_like(p.data, group["initial_accumulator_value"])

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        self._init_state(self.param_groups[-1])  # torch creates Adagrad's state eagerly

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            for p, g in self._params_with_grad(group):
                state = self.state[p]
                state["step"] += 1
                clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
                adagrad_step(p.data, g, state["sum"], clr, group["eps"], group["weight_decay"], group["maximize"])
        return loss
