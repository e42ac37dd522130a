"""``ASGD``: averaged stochastic gradient descent (Polyak & Juditsky, 1992), as ``torch.optim.ASGD``."""

from __future__ import annotations

import numpy as np

from neural_arch.optim.optimizer import Optimizer, check_range


def _f32(x: float) -> float:
    """torch keeps ``eta`` and ``mu`` in float32 scalar tensors; round as it does."""
    return float(np.float32(x))


class ASGD(Optimizer):
    r"""SGD with a decaying step size and a running (Polyak) average of the iterates.

    At step t, with g the gradient (negated when ``maximize``, plus ``weight_decay * p``)::

        p = p * (1 - lambd * eta) - eta * g
        ax = ax + mu * (p - ax)          (ax = p while mu == 1)
        eta = lr / (1 + lambd * lr * t)^alpha;   mu = 1 / max(1, t - t0)

    State: ``step``, ``eta``, ``mu`` (floats, rounded to float32 as torch stores them) and ``ax``,
    the averaged parameters (evaluate with them for the averaged model).
    """

    def __init__(self, params, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6,
                 weight_decay: float = 0, foreach=None, maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False):
        check_range("ASGD", "learning rate", lr)
        check_range("ASGD", "weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                                      maximize=maximize))

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, lambd, alpha, t0, wd = group["lr"], group["lambd"], group["alpha"], group["t0"], group["weight_decay"]
            for p, g in self._params_with_grad(group):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["eta"] = _f32(lr)
                    state["mu"] = 1.0
                    state["ax"] = np.zeros_like(p.data)
                state["step"] += 1
                g = -g if group["maximize"] else g
                if wd != 0:
                    g = g + wd * p.data
                eta = state["eta"]
                p.data *= 1 - lambd * eta
                p.data -= eta * g
                ax = state["ax"]
                if state["mu"] != 1:
                    ax += (p.data - ax) * state["mu"]
                else:
                    ax[...] = p.data
                t = state["step"]
                state["eta"] = _f32(lr / ((1 + lambd * lr * t) ** alpha))
                state["mu"] = _f32(1 / max(1, t - t0))
        return loss
