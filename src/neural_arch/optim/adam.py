"""``Adam`` and ``AdamW`` (Kingma & Ba, 2015; Loshchilov & Hutter, 2019), as in ``torch.optim``."""

from __future__ import annotations

import numpy as np

from neural_arch.backend import kernels
from neural_arch.optim._helpers import fused_grad, grad_for_step, lerp_
from neural_arch.optim.optimizer import Optimizer, check_range


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
        name = type(self).__name__
        check_range(name, "learning rate", lr)
        check_range(name, "epsilon", eps)
        check_range(name, "beta parameter at index 0", betas[0], 0.0, 1.0)
        check_range(name, "beta parameter at index 1", betas[1], 0.0, 1.0)
        check_range(name, "weight_decay", weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            decoupled = group["decoupled_weight_decay"]
            consts = {}  # step -> the fused kernel's float32 scalars, shared by the group's parameters
            for p, g in self._params_with_grad(group):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = np.zeros_like(p.data)
                state["step"] += 1
                step = state["step"]
                if self._fused_step(p, g, state, group, step, consts):
                    continue
                if decoupled:
                    g = -g if group["maximize"] else g
                    if wd != 0:
                        p.data *= 1 - lr * wd
                else:
                    g = grad_for_step(p, g, group["maximize"], wd)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                lerp_(exp_avg, g, 1 - beta1)
                exp_avg_sq *= beta2
                exp_avg_sq += (1 - beta2) * (g * g)
                step_size = lr / (1 - beta1**step)
                bias_correction2_sqrt = (1 - beta2**step) ** 0.5
                if group["amsgrad"]:
                    np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                    denom = np.sqrt(state["max_exp_avg_sq"]) / bias_correction2_sqrt
                else:
                    denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt
                denom += eps
                p.data -= step_size * (exp_avg / denom)
        return loss


    @staticmethod
    def _fused_step(p, g, state, group, step, consts) -> bool:
        """The same update as the NumPy lines above in one pass over memory (a numba kernel);
        returns False when it does not apply (see ``fused_grad``)."""
        if group["maximize"]:
            return False
        m, v = state["exp_avg"], state["exp_avg_sq"]
        vmax = state.get("max_exp_avg_sq", v)
        g = fused_grad(p, g, m, v, vmax)
        if g is None:
            return False
        scalars = consts.get(step)
        if scalars is None:
            lr, wd = group["lr"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            decoupled = group["decoupled_weight_decay"]
            f = np.float32
            scalars = consts[step] = (
                f(lr / (1 - beta1**step)), f(1 - beta1), f(beta2), f(1 - beta2), f(group["eps"]),
                f(0.0 if decoupled else wd), f(1 - lr * wd if decoupled else 1.0), f((1 - beta2**step) ** 0.5),
                bool(group["amsgrad"]))
        kernels.get().adam_step(p.data.ravel("K"), g.ravel("K"), m.ravel("K"), v.ravel("K"), *scalars,
                                vmax.ravel("K"))
        return True


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr * weight_decay`` before the Adam step,
    instead of adding ``weight_decay * p`` to the gradient. Default ``weight_decay=1e-2``."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False, foreach=None,
                 capturable: bool = False, differentiable: bool = False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
