"""Layer 2: Tensor, Function, the backward engine, grad modes and gradcheck."""

from neural_arch.autograd.function import Function, unbroadcast
from neural_arch.autograd.grad_mode import (
    detect_anomaly,
    enable_grad,
    inference_mode,
    is_anomaly_enabled,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from neural_arch.autograd.tensor import Tensor

__all__ = [
    "Function", "unbroadcast", "detect_anomaly", "enable_grad", "inference_mode",
    "is_anomaly_enabled", "is_grad_enabled", "no_grad", "set_grad_enabled", "Tensor",
]
