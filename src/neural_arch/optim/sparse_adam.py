"""``SparseAdam``: Adam that moves only the rows a gradient touches, as ``torch.optim.SparseAdam``.

torch's SparseAdam takes sparse-layout gradients (``nn.Embedding(sparse=True)``) and updates
the moments and the parameter only at the entries the sparse gradient holds. We have no
sparse layout: a dense gradient is read the same way, row by row — a row (a slice along the
first dimension, one entry of a 1-D parameter) takes part in the step when any of its entries
is non-zero. For an Embedding those are the rows the batch looked up, as with torch's
``sparse=True`` gradient; untouched rows keep their moments and values.
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.optim.optimizer import Optimizer, check_range


class SparseAdam(Optimizer):
    r"""At step t (counted per parameter, on every call that gives it a gradient), on the touched
    rows only, with g the gradient (negated when ``maximize``)::

        m = m + (g - m) * (1 - beta1);    v = v + (g^2 - v) * (1 - beta2)
        p = p - lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 maximize: bool = False):
        check_range("SparseAdam", "learning rate", lr, low_open=True)
        check_range("SparseAdam", "epsilon", eps, low_open=True)
        check_range("SparseAdam", "beta parameter at index 0", betas[0], 0.0, 1.0)
        check_range("SparseAdam", "beta parameter at index 1", betas[1], 0.0, 1.0)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, maximize=maximize))

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps = group["lr"], group["eps"]
            for p, g in self._params_with_grad(group):
                state = self._counted_state(p, "exp_avg", "exp_avg_sq")
                g = -g if group["maximize"] else g
                rows = np.flatnonzero(g.reshape(g.shape[0], -1).any(axis=1)) if g.ndim else np.arange(0)
                if rows.size == 0:
                    continue
                values = g[rows]
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                old_m, old_v = exp_avg[rows], exp_avg_sq[rows]
                m_update = (values - old_m) * (1 - beta1)
                v_update = (values**2 - old_v) * (1 - beta2)
                exp_avg[rows] += m_update
                exp_avg_sq[rows] += v_update
                numer = m_update + old_m
                denom = np.sqrt(v_update + old_v) + eps
                t = state["step"]
                step_size = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                p.data[rows] += -step_size * (numer / denom)
        return loss
