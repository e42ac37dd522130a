"""More activations, each an exact composition of existing ops (so each backward is theirs):
threshold, hardshrink, softshrink, tanhshrink, softsign, prelu, rrelu, and gumbel_softmax.

The masks below (``x > threshold`` ...) are constants of the input's values, as in torch, where
the gradient at a kink is the one of the branch the comparison picks.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.grad_mode import STATE
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.random import get_generator
from neural_arch.errors import ConfigError, GradientError, ShapeError, shape_str
from neural_arch.ops._dims import normalize_dims
from neural_arch.ops._operands import floating as _float
from neural_arch.ops.activation import celu, elu, hardtanh, leaky_relu, relu, selu, softmax
from neural_arch.ops.elementwise import abs as _abs
from neural_arch.ops.elementwise import tanh, where
from neural_arch.ops.inplace import store

__all__ = [
    "celu_", "elu_", "gumbel_softmax", "hardshrink", "hardtanh_", "leaky_relu_", "prelu", "relu_", "rrelu", "rrelu_",
    "selu_", "softshrink", "softsign", "tanhshrink", "threshold", "threshold_",
]


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``x if x > threshold else value``; dy/dx = 1 where x > threshold, else 0."""
    _float(input, "threshold")
    return where(input.data > threshold, input, float(value))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x if |x| > lambd else 0``; dy/dx = 1 where |x| > lambd, else 0."""
    _float(input, "hardshrink")
    return where(np.abs(input.data) > lambd, input, 0.0)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x - lambd if x > lambd, x + lambd if x < -lambd, else 0``; dy/dx = 1 outside [-lambd, lambd]."""
    _float(input, "softshrink")
    if lambd < 0:
        raise ConfigError(f"softshrink: lambd must be >= 0, got {lambd}")
    x = input.data
    return where(x > lambd, input - lambd, where(x < -lambd, input + lambd, 0.0))


def tanhshrink(input: Tensor) -> Tensor:
    """``x - tanh(x)``; dy/dx = tanh(x)^2."""
    return input - tanh(input)


def softsign(input: Tensor) -> Tensor:
    """``x / (1 + |x|)``; dy/dx = 1 / (1 + |x|)^2."""
    return input / (_abs(input) + 1.0)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """``max(0, x) + w min(0, x)`` with one slope per channel (dim 1) or one for all.

    dL/dx = g (x > 0 ? 1 : w);  dL/dw = sum over the channel's elements of g min(0, x).
    """
    _float(input, "prelu")
    w = weight
    if w.ndim != 1 or (w.shape[0] != 1 and (input.ndim < 2 or w.shape[0] != input.shape[1])):
        raise ShapeError(f"prelu: weight must be (1,) or (channels,) = ({input.shape[1] if input.ndim > 1 else 1},), "
                         f"got {shape_str(w.shape)}")
    if w.shape[0] != 1:
        w = w.reshape((w.shape[0],) + (1,) * (input.ndim - 2))
    return where(input.data > 0, input, input * w)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False, generator=None) -> Tensor:
    """Randomized leaky ReLU: slope ``a ~ U(lower, upper)`` per element in training, ``(lower + upper) / 2``
    in eval. Random numbers come from ``generator`` or na's default one (the stream differs from torch's)."""
    _float(input, "rrelu")
    if not 0 <= lower <= upper:
        raise ConfigError(f"rrelu: need 0 <= lower <= upper, got lower={lower}, upper={upper}")
    if not training:
        return leaky_relu(input, (lower + upper) / 2)
    slopes = get_generator(generator).uniform(lower, upper, input.shape).astype(input.data.dtype)
    return where(input.data >= 0, input, input * Tensor(slopes))


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10, dim: int = -1,
                   generator=None) -> Tensor:
    """``softmax((logits + g) / tau)`` with Gumbel(0, 1) noise g = -log(E), E ~ Exp(1).

    ``hard=True`` returns the one-hot of the argmax in the forward pass, with the soft sample's
    gradient (straight-through: ``y_hard - y.detach() + y``).
    """
    _float(logits, "gumbel_softmax")
    if tau <= 0:
        raise ConfigError(f"gumbel_softmax: tau must be > 0, got {tau}")
    gumbels = -np.log(get_generator(generator).exponential(1.0, logits.shape)).astype(logits.data.dtype)
    y = softmax((logits + Tensor(gumbels)) / tau, dim)
    if not hard:
        return y
    (axis,) = normalize_dims(dim, y.ndim, "gumbel_softmax")
    one_hot = np.zeros_like(y.data)
    np.put_along_axis(one_hot, np.expand_dims(y.data.argmax(axis), axis), 1.0, axis)
    return y - y.detach() + Tensor(one_hot)


# -- the in-place forms: write into the input's array, as the other in-place methods (ops/inplace.py) ------
def _in_place(name, fn):
    def op(input: Tensor, *args, **kwargs) -> Tensor:
        if input.requires_grad and STATE.grad_enabled:
            raise GradientError(f"{name}: in-place activations work on tensors that need no gradient (or under "
                                f"no_grad()); use the out-of-place F.{name[:-1]}(x) inside a graph")
        return store(input, fn(input, *args, **kwargs), name)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"In-place ``{name[:-1]}``: writes the result into ``input`` (which must not need a gradient)."
    return op


relu_ = _in_place("relu_", relu)
elu_ = _in_place("elu_", elu)
celu_ = _in_place("celu_", celu)
selu_ = _in_place("selu_", selu)
leaky_relu_ = _in_place("leaky_relu_", leaky_relu)
hardtanh_ = _in_place("hardtanh_", hardtanh)
threshold_ = _in_place("threshold_", threshold)
rrelu_ = _in_place("rrelu_", rrelu)
