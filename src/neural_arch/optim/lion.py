"""``Lion`` (EvoLved Sign Momentum; Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms").

torch has no Lion; this follows the paper's Algorithm 2 (and the widely used
``lion-pytorch`` reference), which the tests check step by step.
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend.kernels.optim import lion_step
from neural_arch.optim.optimizer import Optimizer, check_range


class Lion(Optimizer):
    r"""Lion: the update is the *sign* of an interpolation of momentum and gradient.

    With g the gradient (negated when ``maximize``)::

        p = p * (1 - lr * weight_decay)                 (decoupled weight decay)
        p = p - lr * sign(beta1 * m + (1 - beta1) * g)
        m = beta2 * m + (1 - beta2) * g

    Every coordinate moves by exactly lr, so Lion wants a learning rate 3-10x smaller
    and a weight decay 3-10x larger than AdamW's. State: ``exp_avg`` (m).
    """

    def __init__(self, params, lr: float = 1e-4, betas: tuple = (0.9, 0.99), weight_decay: float = 0.0, *,
                 maximize: bool = False):
        check_range("Lion", "learning rate", lr)
        check_range("Lion", "beta parameter at index 0", betas[0], 0.0, 1.0)
        check_range("Lion", "beta parameter at index 1", betas[1], 0.0, 1.0)
        check_range("Lion", "weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, maximize=maximize))

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p, g in self._params_with_grad(group):
                state = self.state[p]
                if not state:
                    state["exp_avg"] = np.zeros_like(p.data)
                lion_step(p.data, g, state["exp_avg"], lr, beta1, beta2, wd, group["maximize"])
        return loss
