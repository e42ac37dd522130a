"""``Adafactor`` (Shazeer & Stern, 2018), as ``torch.optim.Adafactor``."""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.kernels.optim import lerp_
from neural_arch.errors import ConfigError
from neural_arch.optim.optimizer import Optimizer, check_range


class Adafactor(Optimizer):
    r"""Adam's second moment stored factored (a row and a column vector per matrix), no first moment.

    At step t, with g the gradient (negated when ``maximize``) of a parameter with n entries::

        beta2_t' = t^beta2_decay;   rho = min(lr, 1 / sqrt(t))
        alpha = max(eps2, ||p|| / sqrt(n)) * rho                 (before the decay below)
        p = p * (1 - lr * weight_decay)
        matrices (the last two dims):  R = lerp(R, mean of g^2 over the last dim, beta2_t')
                                       C = lerp(C, mean of g^2 over the second-to-last dim, beta2_t')
                                       V = R C / max(mean of R over rows, eps1)
        vectors:                       V = lerp(V, g^2, beta2_t')
        u = g / sqrt(max(V, eps1^2));   p = p - alpha / max(1, ||u|| / (sqrt(n) d)) * u

    ``eps1=None`` means the machine epsilon of the parameter's dtype, as in torch.
    """

    def __init__(self, params, lr: float = 1e-2, beta2_decay: float = -0.8, eps: tuple = (None, 1e-3),
                 d: float = 1.0, weight_decay: float = 0.0, *, foreach=None, maximize: bool = False):
        check_range("Adafactor", "learning rate", lr)
        if beta2_decay > 0:
            raise ConfigError(f"Adafactor: beta2_decay should be <= 0, got {beta2_decay}")
        if eps[0] is not None:
            check_range("Adafactor", "epsilon1", eps[0])
        check_range("Adafactor", "epsilon2", eps[1])
        check_range("Adafactor", "clipping threshold d", d, 1.0)
        check_range("Adafactor", "weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d,
                                      weight_decay=weight_decay, maximize=maximize))

    @staticmethod
    def _restore_value(key: str, value, param):
        if key in ("row_var", "col_var"):  # factored: not shaped like the parameter
            return np.array(value.data if isinstance(value, Tensor) else value, dtype=param.dtype)
        return Optimizer._restore_value(key, value, param)

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, wd, d = group["lr"], group["weight_decay"], group["d"]
            eps1, eps2 = group["eps"]
            for p, g in self._params_with_grad(group):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    if g.ndim > 1:
                        state["row_var"] = np.zeros(g.shape[:-1] + (1,), p.dtype)
                        state["col_var"] = np.zeros(g.shape[:-2] + (1, g.shape[-1]), p.dtype)
                    else:
                        state["variance"] = np.zeros_like(p.data)
                g = -g if group["maximize"] else g
                if eps1 is None:  # (torch sets it once, from the first parameter it meets)
                    eps1 = float(np.finfo(p.dtype).eps)
                state["step"] += 1
                t = float(state["step"])
                one_minus_beta2_t = t ** group["beta2_decay"]
                rho_t = min(lr, 1 / (t**0.5))
                alpha = max(eps2, float(np.linalg.norm(p.data.ravel())) / (p.data.size**0.5)) * rho_t
                if wd != 0:
                    p.data *= 1 - lr * wd
                if g.ndim > 1:
                    row_var, col_var = state["row_var"], state["col_var"]
                    gg = g * g
                    lerp_(row_var, gg.sum(axis=-1, keepdims=True) / g.shape[-1], one_minus_beta2_t)
                    lerp_(col_var, gg.sum(axis=-2, keepdims=True) / g.shape[-2], one_minus_beta2_t)
                    var_estimate = row_var @ col_var
                    var_estimate /= np.maximum(row_var.mean(axis=-2, keepdims=True), eps1)
                else:
                    variance = state["variance"]
                    lerp_(variance, g * g, one_minus_beta2_t)
                    var_estimate = variance.copy()
                update = 1.0 / np.sqrt(np.maximum(var_estimate, eps1 * eps1))
                update *= g
                denom = max(1.0, float(np.linalg.norm(update.ravel())) / ((update.size**0.5) * d))
                p.data -= (alpha / denom) * update
        return loss
