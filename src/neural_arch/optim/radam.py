"""``RAdam`` (Liu et al., 2020, "On the Variance of the Adaptive Learning Rate and Beyond"),
as ``torch.optim.RAdam``."""

from __future__ import annotations

from neural_arch.backend.kernels.optim import radam_step
from neural_arch.optim.optimizer import Optimizer, check_adam_options


class RAdam(Optimizer):
    r"""Rectified Adam: SGD with momentum while the variance estimate is unreliable, then Adam
    with a rectification factor.

    At step t, with g the gradient (negated when ``maximize``)::

        p = p * (1 - lr * weight_decay)          if decoupled_weight_decay
        g = g + weight_decay * p                 otherwise
        m = lerp(m, g, 1 - beta1);   v = beta2 * v + (1 - beta2) * g^2
        rho_inf = 2 / (1 - beta2) - 1;   rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        rho_t > 5:  r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                    p = p - m / (1 - beta1^t) * lr * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r
        otherwise:  p = p - m / (1 - beta1^t) * lr
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False):
        check_adam_options("RAdam", lr, eps, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize))

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
            for p, g in self._params_with_grad(group):
                state = self._counted_state(p, "exp_avg", "exp_avg_sq")
                t = state["step"]
                radam_step(p.data, g, state["exp_avg"], state["exp_avg_sq"], lr, beta1, beta2, eps, wd,
                           group["decoupled_weight_decay"], group["maximize"], t)
        return loss
