"""``Adamax`` (Kingma & Ba, 2015, section 7.1), as ``torch.optim.Adamax``."""

from __future__ import annotations

from neural_arch.backend.kernels.optim import adamax_step
from neural_arch.optim.optimizer import Optimizer, check_adam_options


class Adamax(Optimizer):
    r"""Adam with the infinity norm: the second moment is a decaying running maximum of |g|.

    At step t, with g the gradient (negated when ``maximize``, plus ``weight_decay * p``)::

        m = lerp(m, g, 1 - beta1)
        u = max(beta2 * u, |g| + eps)
        p = p - lr / (1 - beta1^t) * m / u

    State per parameter: ``step``, ``exp_avg`` (m), ``exp_inf`` (u).
    ``foreach``, ``capturable`` and ``differentiable`` are accepted for torch compatibility and ignored.
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, foreach=None, *, maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False):
        check_adam_options("Adamax", lr, eps, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            for p, g in self._params_with_grad(group):
                state = self._counted_state(p, "exp_avg", "exp_inf")
                clr = lr / (1 - beta1 ** state["step"])
                adamax_step(p.data, g, state["exp_avg"], state["exp_inf"], clr, beta1, beta2, eps, wd,
                            group["maximize"])
        return loss
