"""``RMSprop`` (Hinton, Coursera lecture 6e), as ``torch.optim.RMSprop``."""

from __future__ import annotations

import numpy as np

from neural_arch.backend import kernels
from neural_arch.optim._helpers import fused_grad, grad_for_step, lerp_
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
                if self._fused_step(p, g, state, group):
                    continue
                g = grad_for_step(p, g, group["maximize"], group["weight_decay"])
                square_avg = state["square_avg"]
                square_avg *= alpha
                square_avg += (1 - alpha) * (g * g)
                if group["centered"]:
                    grad_avg = lerp_(state["grad_avg"], g, 1 - alpha)
                    avg = np.sqrt(square_avg - grad_avg * grad_avg)
                else:
                    avg = np.sqrt(square_avg)
                avg += eps
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf *= momentum
                    buf += g / avg
                    p.data -= lr * buf
                else:
                    p.data -= lr * (g / avg)
        return loss

    @staticmethod
    def _fused_step(p, g, state, group) -> bool:
        """The update above in one pass over memory (a numba kernel); False when it does not apply."""
        centered, use_momentum = group["centered"], group["momentum"] > 0
        grad_avg = state["grad_avg"] if centered else _UNUSED
        buf = state["momentum_buffer"] if use_momentum else _UNUSED
        g = fused_grad(p, g, state["square_avg"], *(a for a in (grad_avg, buf) if a is not _UNUSED))
        if g is None:
            return False
        f, alpha = np.float32, group["alpha"]
        kernels.get().rmsprop_step(
            p.data.ravel("K"), g.ravel("K"), state["square_avg"].ravel("K"), grad_avg.ravel("K"), buf.ravel("K"),
            f(group["lr"]), f(alpha), f(1 - alpha), f(group["eps"]), f(group["weight_decay"]), f(group["momentum"]),
            centered, use_momentum, 1 - alpha < 0.5, f(1.0 - (1 - alpha)),  # (lerp_'s choice of end)
            f(-1.0 if group["maximize"] else 1.0))
        return True


_UNUSED = np.empty(0, np.float32)  # the kernel's placeholder for a state array the options leave out
