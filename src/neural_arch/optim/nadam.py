"""``NAdam`` (Dozat, 2016, "Incorporating Nesterov Momentum into Adam"), as ``torch.optim.NAdam``."""

from __future__ import annotations

import numpy as np

from neural_arch.backend.kernels.optim import nadam_step
from neural_arch.optim.optimizer import Optimizer, check_adam_options, check_range


class NAdam(Optimizer):
    r"""Adam with Nesterov momentum and a momentum schedule.

    At step t, with g the gradient (negated when ``maximize``)::

        p = p * (1 - lr * weight_decay)          if decoupled_weight_decay
        g = g + weight_decay * p                 otherwise
        mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))
        P_t = P_{t-1} * mu_t                     (``mu_product``)
        m = lerp(m, g, 1 - beta1);   v = beta2 * v + (1 - beta2) * g^2
        d = sqrt(v / (1 - beta2^t)) + eps
        p = p - lr (1 - mu_t) / (1 - P_t) * g / d - lr mu_{t+1} / (1 - P_t mu_{t+1}) * m / d

    ``mu_product`` is kept in float32, as torch keeps it (a float32 scalar tensor), so
    trajectories match torch's in float64 too.
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, *,
                 foreach=None, maximize: bool = False, capturable: bool = False, differentiable: bool = False):
        check_adam_options("NAdam", lr, eps, betas, weight_decay)
        check_range("NAdam", "momentum_decay", momentum_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, wd, psi, eps = group["lr"], group["weight_decay"], group["momentum_decay"], group["eps"]
            for p, g in self._params_with_grad(group):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["mu_product"] = 1.0
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                state["step"] += 1
                t = state["step"]
                mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
                mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
                mu_product = float(np.float32(state["mu_product"]) * np.float32(mu))
                state["mu_product"] = mu_product
                nadam_step(p.data, g, state["exp_avg"], state["exp_avg_sq"], lr, beta1, beta2, eps, wd,
                           group["decoupled_weight_decay"], group["maximize"], t, mu, mu_next, mu_product)
        return loss
