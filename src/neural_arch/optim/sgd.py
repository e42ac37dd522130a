"""``SGD``: stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``."""

from __future__ import annotations

import numpy as np

from neural_arch.backend import kernels
from neural_arch.errors import ConfigError
from neural_arch.optim._helpers import fused_grad, grad_for_step
from neural_arch.optim.optimizer import Optimizer, check_range


class SGD(Optimizer):
    r"""Stochastic gradient descent.

    For each parameter, with g its gradient (negated when ``maximize``)::

        g = g + weight_decay * p                              (L2 penalty)
        b = g                        on the first step        (momentum buffer)
        b = momentum * b + (1 - dampening) * g   afterwards
        g = g + momentum * b  if nesterov  else  b            (when momentum != 0)
        p = p - lr * g

    This is torch's form (the learning rate multiplies the buffer, not the gradient
    inside it), so trajectories match ``torch.optim.SGD`` step by step.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False, foreach=None,
                 differentiable: bool = False, fused=None):
        check_range("SGD", "learning rate", lr)
        check_range("SGD", "momentum", momentum)
        check_range("SGD", "weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ConfigError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            for p, g in self._params_with_grad(group):
                if self._fused_step(p, g, group):
                    continue
                g = grad_for_step(p, g, group["maximize"], group["weight_decay"])
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = g.copy()
                    else:
                        buf *= momentum
                        buf += (1 - dampening) * g
                    g = g + momentum * buf if group["nesterov"] else buf
                p.data -= lr * g
        return loss

    def _fused_step(self, p, g, group) -> bool:
        """The update above in one pass over memory (a numba kernel); False when it does not apply."""
        momentum = group["momentum"]
        buf = self.state[p].get("momentum_buffer") if momentum != 0 else None
        first = momentum != 0 and buf is None
        if first:
            buf = np.empty_like(p.data)  # the kernel fills it with the gradient, as g.copy() would
        g = fused_grad(p, g, *(() if buf is None else (buf,)))
        if g is None:
            return False
        if first:
            self.state[p]["momentum_buffer"] = buf
        f = np.float32
        kernels.get().sgd_step(p.data.ravel("K"), g.ravel("K"), (_NO_BUFFER if buf is None else buf).ravel("K"),
                               f(group["lr"]), f(group["weight_decay"]), f(momentum), f(1 - group["dampening"]),
                               bool(group["nesterov"]), momentum != 0, first, f(-1.0 if group["maximize"] else 1.0))
        return True


_NO_BUFFER = np.empty(0, np.float32)  # the kernel's momentum buffer when there is no momentum
