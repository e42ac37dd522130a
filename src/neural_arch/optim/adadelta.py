"""``Adadelta`` (Zeiler, 2012), as ``torch.optim.Adadelta``."""

from __future__ import annotations

from neural_arch.backend.kernels.optim import adadelta_step
from neural_arch.optim.optimizer import Optimizer, check_range


class Adadelta(Optimizer):
    r"""Adadelta: step sizes from the ratio of running RMS of updates and of gradients.

    With g the gradient (negated when ``maximize``, plus ``weight_decay * p``)::

        v = rho * v + (1 - rho) * g^2
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta^2
        p = p - lr * delta

    State per parameter: ``step``, ``square_avg`` (v), ``acc_delta`` (u).
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
                 foreach=None, *, capturable: bool = False, maximize: bool = False, differentiable: bool = False):
        check_range("Adadelta", "learning rate", lr)
        check_range("Adadelta", "rho", rho, 0.0, 1.0, high_open=False)
        check_range("Adadelta", "epsilon", eps)
        check_range("Adadelta", "weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, rho, eps, wd = group["lr"], group["rho"], group["eps"], group["weight_decay"]
            for p, g in self._params_with_grad(group):
                state = self._counted_state(p, "square_avg", "acc_delta")
                adadelta_step(p.data, g, state["square_avg"], state["acc_delta"], lr, rho, eps, wd,
                              group["maximize"])
        return loss
