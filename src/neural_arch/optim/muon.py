"""``Muon`` (MomentUm Orthogonalized by Newton-schulz; Jordan et al., 2024), as ``torch.optim.Muon``."""

from __future__ import annotations

import math

import numpy as np

from neural_arch.backend import dtypes
from neural_arch.backend.kernels.optim import lerp_
from neural_arch.errors import ConfigError, DTypeError
from neural_arch.optim.optimizer import Optimizer, check_range

DEFAULT_NS = (3.4445, -4.7750, 2.0315)


def _bf16(x: np.ndarray) -> np.ndarray:
    """Round to bfloat16 and back to float32: torch runs the iteration in bfloat16."""
    if dtypes.bfloat16 is None:
        raise DTypeError("Muon runs its Newton-Schulz iteration in bfloat16, which needs the ml_dtypes package")
    return np.asarray(x, np.float32).astype(dtypes.bfloat16).astype(np.float32)


def zeropower_via_newtonschulz(g: np.ndarray, ns_coefficients=DEFAULT_NS, ns_steps: int = 5,
                               eps: float = 1e-7) -> np.ndarray:
    """An approximate ``U V^T`` of ``g = U S V^T`` by a quintic Newton-Schulz iteration in bfloat16:
    ``X = g / ||g||``, then ``ns_steps`` times ``A = X X^T``, ``X = a X + (b A + c A^2) X``
    (on the wide orientation of g). Products accumulate in float32, results round to bfloat16."""
    if ns_steps >= 100:
        raise ConfigError("Muon: ns_steps must be less than 100")
    a, b, c = ns_coefficients
    x = _bf16(g)
    tall = g.shape[0] > g.shape[1]
    if tall:
        x = x.T
    x = _bf16(x / max(float(_bf16(np.linalg.norm(x))), eps))
    for _ in range(ns_steps):
        gram = _bf16(x @ x.T)
        update = _bf16(b * gram + c * (gram @ gram))
        x = _bf16(a * x + update @ x)
    return x.T if tall else x


def adjusted_lr(lr: float, adjust_lr_fn: str | None, shape) -> float:
    """The lr scaled for the matrix shape: ``sqrt(max(1, rows / cols))`` ("original", the default) or
    ``0.2 sqrt(max(rows, cols))`` ("match_rms_adamw", matching AdamW's update RMS)."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


class Muon(Optimizer):
    r"""Momentum whose update is orthogonalised (its singular values pushed towards 1), for 2-D
    parameters (hidden weight matrices; use AdamW for embeddings, biases and norms).

    With g the gradient::

        B = lerp(B, g, 1 - momentum);     U = lerp(g, B, momentum) if nesterov else B
        O = zeropower_via_newtonschulz(U)               (bfloat16, as torch)
        p = p * (1 - lr * weight_decay) - adjusted_lr(lr) * O
    """

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_coefficients: tuple = DEFAULT_NS, eps: float = 1e-7, ns_steps: int = 5,
                 adjust_lr_fn: str | None = None):
        check_range("Muon", "learning rate", lr)
        check_range("Muon", "momentum", momentum)
        check_range("Muon", "weight_decay", weight_decay)
        if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
            raise ConfigError(f"Muon: adjust_lr_fn must be None, 'original' or 'match_rms_adamw', got {adjust_lr_fn!r}")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                                      ns_coefficients=tuple(ns_coefficients), eps=eps, ns_steps=ns_steps,
                                      adjust_lr_fn=adjust_lr_fn))
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ConfigError(f"Muon only supports 2-D parameters, got one of shape {tuple(p.shape)}; "
                                      "optimize the others with AdamW")

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            for p, g in self._params_with_grad(group):
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = np.zeros_like(g)
                buf = state["momentum_buffer"]
                lerp_(buf, g, 1 - momentum)
                update = lerp_(g.copy(), buf, momentum) if group["nesterov"] else buf
                ortho = zeropower_via_newtonschulz(update, group["ns_coefficients"], group["ns_steps"], group["eps"])
                p.data *= 1 - lr * group["weight_decay"]
                p.data -= adjusted_lr(lr, group["adjust_lr_fn"], p.shape) * ortho.astype(p.dtype)
        return loss
