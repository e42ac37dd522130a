"""``RMSprop`` (Hinton, Coursera lecture 6e), as ``torch.optim.RMSprop``."""

from __future__ import annotations

import numpy as np

from neural_arch.backend.kernels.optim import rmsprop_step
from neural_arch.optim.optimizer import Optimizer, check_range


class RMSprop(Optimizer):
    r"""RMSprop: divide the gradient by a running root-mean-square of recent gradients.

    With g the gradient (negated when ``maximize``, plus ``weight_decay * p``)::

        v = alpha * v + (1 - alpha) * g^2
        ga = ga + (1 - alpha) * (g - ga)         (centered only: running mean of g)
        d = sqrt(v - ga^2) + eps  if centered  else  sqrt(v) + eps
        b = momentum * b + g / d;  p = p - lr * b     (momentum > 0)
        p = p - lr * g / d                            (otherwise)

    NOTE: eps is added *outside* the square root, as torch does (TensorFlow adds it inside).
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False, capturable: bool = False, foreach=None,
                 maximize: bool = False, differentiable: bool = False):
        check_range("RMSprop", "learning rate", lr)
        check_range("RMSprop", "epsilon", eps)
        check_range("RMSprop", "momentum", momentum)
        check_range("RMSprop", "weight_decay", weight_decay)
        check_range("RMSprop", "alpha", alpha)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
            for p, g in self._params_with_grad(group):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["square_avg"] = np.zeros_like(p.data)
                    if momentum > 0:
                        state["momentum_buffer"] = np.zeros_like(p.data)
                    if group["centered"]:
                        state["grad_avg"] = np.zeros_like(p.data)
                state["step"] += 1
                rmsprop_step(p.data, g, state["square_avg"], state.get("grad_avg"), state.get("momentum_buffer"),
                             lr, alpha, eps, group["weight_decay"], momentum, group["maximize"])
        return loss
