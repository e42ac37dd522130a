"""``SGD``: stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``."""

from __future__ import annotations

from neural_arch.backend.kernels.optim import sgd_step
from neural_arch.errors import ConfigError
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
            momentum = group["momentum"]
            for p, g in self._params_with_grad(group):
                buf = sgd_step(p.data, g, self.state[p].get("momentum_buffer") if momentum != 0 else None,
                               group["lr"], momentum, group["dampening"], group["weight_decay"], group["nesterov"],
                               group["maximize"])
                if buf is not None:
                    self.state[p]["momentum_buffer"] = buf
        return loss
