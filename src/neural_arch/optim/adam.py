"""``Adam`` and ``AdamW`` (Kingma & Ba, 2015; Loshchilov & Hutter, 2019), as in ``torch.optim``."""

from __future__ import annotations

from neural_arch.backend.kernels.optim import adam_step
from neural_arch.optim.optimizer import Optimizer, check_adam_options


class Adam(Optimizer):
    r"""Adam: per-parameter step sizes from running moments of the gradient.

    At step t, with g the gradient (negated when ``maximize``)::

        p = p * (1 - lr * weight_decay)          if decoupled (AdamW)
        g = g + weight_decay * p                 otherwise (L2 penalty, Adam)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        v_max = max(v_max, v)                    (amsgrad: use v_max below instead of v)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    State per parameter: ``step``, ``exp_avg`` (m), ``exp_avg_sq`` (v) and, with amsgrad,
    ``max_exp_avg_sq``.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach=None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False, fused=None,
                 decoupled_weight_decay: bool = False):
        check_adam_options(type(self).__name__, lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            buffers = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if group["amsgrad"] else ("exp_avg", "exp_avg_sq")
            for p, g in self._params_with_grad(group):
                state = self._counted_state(p, *buffers)
                adam_step(p.data, g, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                          state["step"], group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
                          group["decoupled_weight_decay"], group["maximize"])
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr * weight_decay`` before the Adam step,
    instead of adding ``weight_decay * p`` to the gradient. Default ``weight_decay=1e-2``."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False, foreach=None,
                 capturable: bool = False, differentiable: bool = False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
