"""``Rprop``: resilient backpropagation (Riedmiller & Braun, 1993), as ``torch.optim.Rprop``."""

from __future__ import annotations

import numpy as np

from neural_arch.optim.optimizer import Optimizer, check_range


class Rprop(Optimizer):
    r"""Rprop: each coordinate has its own step size, grown while the gradient keeps its sign
    and shrunk when it flips; only the gradient's sign is used.

    With g the gradient (negated when ``maximize``) and g_prev the previous step's (after the
    zeroing below)::

        s = g * g_prev
        step_size = clamp(step_size * (etaplus if s > 0, etaminus if s < 0, 1 if s == 0), *step_sizes)
        g = 0 where s < 0               (no move on a sign flip, and it does not count next time)
        p = p - sign(g) * step_size;    g_prev = g

    ``step_size`` starts at ``lr``.
    """

    def __init__(self, params, lr: float = 1e-2, etas: tuple = (0.5, 1.2), step_sizes: tuple = (1e-6, 50), *,
                 capturable: bool = False, foreach=None, maximize: bool = False, differentiable: bool = False):
        check_range("Rprop", "learning rate", lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            check_range("Rprop", "eta values (etaminus, etaplus); etaminus", etas[0], 0.0, 1.0, low_open=True)
            check_range("Rprop", "eta values (etaminus, etaplus); etaplus", etas[1], 1.0, low_open=True)
        super().__init__(params, dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes), maximize=maximize))

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            etaminus, etaplus = group["etas"]
            smin, smax = group["step_sizes"]
            for p, g in self._params_with_grad(group):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["prev"] = np.zeros_like(p.data)
                    state["step_size"] = np.full_like(p.data, group["lr"])
                state["step"] += 1
                g = -g if group["maximize"] else g.copy()
                sign = np.sign(g * state["prev"])
                factor = np.where(sign > 0, etaplus, np.where(sign < 0, etaminus, 1.0)).astype(p.dtype)
                step_size = state["step_size"]
                step_size *= factor
                np.clip(step_size, smin, smax, out=step_size)
                g[factor == np.asarray(etaminus, p.dtype)] = 0
                p.data -= np.sign(g) * step_size
                state["prev"][...] = g
        return loss
