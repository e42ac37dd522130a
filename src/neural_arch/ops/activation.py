"""Activation functions and softmax: relu family, elu/selu, gelu, silu, mish, softplus, glu,
softmax and log_softmax.

Each is one ``Function`` whose backward is written from the forward's saved output or input,
in the input's dtype (a float32 tensor never goes through float64). relu, gelu, silu, softmax
and log_softmax compute through the array functions of ``backend.kernels.activation`` and
``softmax_loss`` (a numba kernel for float32, its NumPy twin otherwise).
"""

from __future__ import annotations

import warnings

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import is_floating
from neural_arch.backend.kernels import activation as kern
from neural_arch.backend.kernels import elementwise as ew
from neural_arch.backend.kernels import softmax_loss
from neural_arch.backend.kernels.activation import sigmoid_array, softplus_array
from neural_arch.backend.kernels.half import convert
from neural_arch.errors import ConfigError, DTypeError, ShapeError, shape_str
from neural_arch.ops._dims import normalize_dims
from neural_arch.ops._half import HALF
from neural_arch.ops._operands import floating as _float
from neural_arch.ops.elementwise import sigmoid, tanh  # noqa: F401 - F.sigmoid / F.tanh
from neural_arch.ops.shape import chunk

__all__ = [
    "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "quick_gelu", "silu", "mish", "sigmoid",
    "tanh", "softplus", "hardtanh", "hardswish", "hardsigmoid", "glu", "softmax", "log_softmax", "softmin",
    "logsigmoid",
]


# -- the relu family ---------------------------------------------------------------------------------
class ReLU(Function):
    """y = max(x, 0)        dy/dx = [x > 0]   (0 at x = 0, as in torch)"""

    @staticmethod
    def forward(ctx, x):
        y = kern.relu(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        return kern.relu_backward(ctx.saved_tensors[0], grad)


class Hardtanh(Function):
    """y = min(max(x, lo), hi)      dy/dx = [lo < x < hi]   (0 on the boundary, as torch)"""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return np.clip(x, lo, hi).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x > ctx.lo) & (x < ctx.hi))


class LeakyReLU(Function):
    """y = x if x > 0 else a x      dy/dx = 1 if x > 0 else a"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, slope):
        pos = x > 0
        ctx.save_for_backward(pos)
        ctx.slope = slope
        return np.where(pos, x, x * slope).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (pos,) = ctx.saved_tensors
        return np.where(pos, grad, grad * ctx.slope).astype(grad.dtype, copy=False)


class ELU(Function):
    """y = s x if x > 0 else s a (e^{k x} - 1)
    dy/dx = s if x > 0 else s a k e^{k x}      (elu: s = k = 1; selu: fixed s, a; celu: k = 1/a)"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, alpha, scale, input_scale):
        pos = x > 0
        neg = (scale * alpha) * np.expm1(np.minimum(x, 0) * input_scale)  # min(): no overflow for x > 0
        ctx.save_for_backward(pos, neg)
        ctx.alpha, ctx.scale, ctx.input_scale = alpha, scale, input_scale
        return np.where(pos, x * scale, neg).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        pos, neg = ctx.saved_tensors
        # s a k e^{kx} = k (neg + s a), from the saved output of the negative branch
        dneg = (neg + ctx.scale * ctx.alpha) * ctx.input_scale
        return grad * np.where(pos, ctx.scale, dneg).astype(grad.dtype, copy=False)


# -- smooth activations ---------------------------------------------------------------------------------
class GELU(Function):
    """Exact:  y = x Phi(x)                   dy/dx = Phi(x) + x phi(x),  phi(x) = e^{-x^2/2} / sqrt(2 pi)
    Tanh:   y = x (1 + tanh u) / 2,  u = c (x + 0.044715 x^3),  c = sqrt(2/pi)
            dy/dx = (1 + tanh u) / 2 + x (1 - tanh^2 u) c (1 + 3 * 0.044715 x^2) / 2
    dy/dx is computed with y when a gradient will be needed (they share the erf/exp work) and saved.
    Half inputs: the kernel reads them and rounds y once. Backward then recomputes dy/dx in float32 from
    the saved half x, as torch does (keeping dy/dx in float32 would take twice the memory of x), and
    rounds the gradient once to the input's dtype (what computing in float32 gives, without widening x)."""

    half = None  # the kernel reads and writes bfloat16 (float16: its twin, in float32)

    @staticmethod
    def forward(ctx, x, approximate):
        tanh, needs = approximate == "tanh", bool(ctx.needs_input_grad[0])
        ctx.dtype = x.dtype
        if x.dtype in HALF:
            y, _ = kern.gelu(x, tanh, False)
            ctx.save_for_backward(x if needs else None)
            ctx.tanh = tanh
            return y
        y, deriv = kern.gelu(x, tanh, needs)
        ctx.save_for_backward(deriv)
        return y

    @staticmethod
    def backward(ctx, grad):
        if ctx.dtype in HALF:  # the saved array is x: dy/dx is recomputed (see the docstring)
            return kern.gelu_backward(ctx.saved_tensors[0], grad, ctx.tanh)
        dx = ew.multiply(grad, ctx.saved_tensors[0])
        return dx if dx.dtype == ctx.dtype else convert(dx, ctx.dtype)


class SiLU(Function):
    """y = x sigmoid(a x)          dy/dx = s + a x s (1 - s),  s = sigmoid(a x)
    (a = 1: SiLU; a = 1.702: quick_gelu). dy/dx is computed with y and saved, as GELU's."""

    half = "float32"

    @staticmethod
    def forward(ctx, x, alpha):
        y, deriv = kern.silu(x, alpha, bool(ctx.needs_input_grad[0]))
        ctx.save_for_backward(deriv)
        return y

    @staticmethod
    def backward(ctx, grad):
        return ew.multiply(grad, ctx.saved_tensors[0])


class Mish(Function):
    """y = x tanh(softplus(x))       dy/dx = t + x sigmoid(x) (1 - t^2),  t = tanh(softplus(x))"""

    half = "float32"

    @staticmethod
    def forward(ctx, x):
        t = np.tanh(softplus_array(x))
        ctx.save_for_backward(x, t)
        return x * t

    @staticmethod
    def backward(ctx, grad):
        x, t = ctx.saved_tensors
        s = sigmoid_array(x)
        return grad * (t + x * s * (1 - t * t))


class Softplus(Function):
    """y = log(1 + e^{b x}) / b  (y = x where b x > threshold)
    dy/dx = sigmoid(b x)  (1 where b x > threshold)"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, beta, threshold):
        bx = x * beta if beta != 1 else x
        lin = bx > threshold
        ctx.save_for_backward(bx, lin)
        y = softplus_array(bx)
        if beta != 1:
            y = y / beta
        return np.where(lin, x, y).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        bx, lin = ctx.saved_tensors
        return np.where(lin, grad, grad * sigmoid_array(bx)).astype(grad.dtype, copy=False)


class Hardswish(Function):
    """y = x relu6(x + 3) / 6       dy/dx = 0 (x < -3), x/3 + 1/2 (-3 <= x <= 3), 1 (x > 3)"""

    half = "float32"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * np.clip(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        d = np.where(x < -3, 0, np.where(x <= 3, x / 3 + 0.5, 1)).astype(grad.dtype, copy=False)
        return grad * d


class Hardsigmoid(Function):
    """y = relu6(x + 3) / 6          dy/dx = 1/6 where -3 < x < 3, else 0"""

    half = "float32"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.clip(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x > -3) & (x < 3)) / 6


class LogSigmoid(Function):
    """y = log sigmoid(x) = -softplus(-x)       dy/dx = 1 - sigmoid(x) = sigmoid(-x)"""

    half = "float32"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return -softplus_array(-x)

    @staticmethod
    def backward(ctx, grad):
        return grad * sigmoid_array(-ctx.saved_tensors[0])


# -- softmax, log_softmax --------------------------------------------------------------------------------
class Softmax(Function):
    """softmax:      y_i = e^{x_i - m} / sum_j e^{x_j - m}   (m = max_j x_j: no overflow)
                    dL/dx_i = y_i (g_i - sum_j g_j y_j)
    log_softmax:  y_i = x_i - m - log sum_j e^{x_j - m}
                    dL/dx_i = g_i - e^{y_i} sum_j g_j
    (sums along ``axis``). A row that is all -inf gives NaN, as in torch."""

    half = None  # the kernels read and write bfloat16, computing in float32 (float16: their twins)

    @staticmethod
    def forward(ctx, x, axis, log):
        y = softmax_loss.softmax(x, axis, log)
        ctx.save_for_backward(y)
        ctx.axis, ctx.log = axis, log
        return y

    @staticmethod
    def backward(ctx, grad):
        return softmax_loss.softmax_backward(ctx.saved_tensors[0], grad, ctx.axis, ctx.log)


# -- the functional API (torch.nn.functional names and signatures) ---------------------------------------
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0). ``inplace`` is accepted and ignored (a new tensor is always returned)."""
    if input.data.dtype.kind in "iu":
        return Tensor._wrap(np.maximum(input.data, 0))
    return ReLU.apply(input)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clipped to [min_val, max_val] (torch.nn.functional.hardtanh)."""
    if min_val > max_val:
        raise ConfigError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    return Hardtanh.apply(_float(input, "hardtanh"), lo=min_val, hi=max_val)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6) (hardtanh(x, 0, 6), as torch: gradient 0 at both kinks)."""
    return Hardtanh.apply(_float(input, "relu6"), lo=0.0, hi=6.0)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x if x > 0 else negative_slope x, elementwise (torch.nn.functional.leaky_relu; ``inplace`` is ignored)."""
    return LeakyReLU.apply(_float(input, "leaky_relu"), slope=negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x if x > 0 else alpha (e^x - 1), elementwise (torch.nn.functional.elu)."""
    return ELU.apply(_float(input, "elu"), alpha=alpha, scale=1.0, input_scale=1.0)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale (x if x > 0 else alpha (e^x - 1)) with the self-normalising constants (torch.nn.functional.selu)."""
    return ELU.apply(_float(input, "selu"), alpha=_SELU_ALPHA, scale=_SELU_SCALE, input_scale=1.0)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x if x > 0 else alpha (e^(x/alpha) - 1), elementwise; ``alpha`` must not be 0 (torch.nn.functional.celu)."""
    if alpha == 0:
        raise ConfigError("celu: alpha must not be 0")
    return ELU.apply(_float(input, "celu"), alpha=alpha, scale=1.0, input_scale=1.0 / alpha)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x) (``approximate='none'``, exact through erf) or the tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise ConfigError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(_float(input, "gelu"), approximate=approximate)


def quick_gelu(input: Tensor) -> Tensor:
    """x sigmoid(1.702 x): the GELU approximation of OpenAI's CLIP (not in torch)."""
    return SiLU.apply(_float(input, "quick_gelu"), alpha=1.702)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x sigmoid(x), elementwise (SiLU / swish; torch.nn.functional.silu)."""
    return SiLU.apply(_float(input, "silu"), alpha=1.0)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x tanh(softplus(x)), elementwise (torch.nn.functional.mish)."""
    return Mish.apply(_float(input, "mish"))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta, linear where beta x > threshold (torch.nn.functional.softplus)."""
    if beta == 0:
        raise ConfigError("softplus: beta must not be 0")
    return Softplus.apply(_float(input, "softplus"), beta=beta, threshold=threshold)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x relu6(x + 3) / 6, elementwise (torch.nn.functional.hardswish)."""
    return Hardswish.apply(_float(input, "hardswish"))


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6, elementwise (torch.nn.functional.hardsigmoid)."""
    return Hardsigmoid.apply(_float(input, "hardsigmoid"))


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), elementwise, without overflow (torch.nn.functional.logsigmoid)."""
    return LogSigmoid.apply(_float(input, "logsigmoid"))


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b) where (a, b) are the two halves of ``input`` along ``dim`` (a composition)."""
    x = _float(input, "glu")
    if x.data.ndim == 0:
        raise ShapeError("glu: does not support 0-d tensors")
    (axis,) = normalize_dims(dim, x.data.ndim, "glu")
    if x.data.shape[axis] % 2:
        raise ShapeError(f"glu: dim {dim} of {shape_str(x.shape)} must have an even size, got {x.data.shape[axis]}")
    a, b = chunk(x, 2, axis)
    return a * sigmoid(b)


def _softmax_args(input, dim, dtype, op) -> tuple:
    """(input cast to ``dtype``, the axes of ``dim``) for the softmax family."""
    x = input if dtype is None else input.to(dtype)
    if not is_floating(x.data.dtype):
        raise DTypeError(f"{op}: needs a floating-point tensor, got {x.dtype}; pass dtype= or convert first")
    if dim is None:  # torch's legacy implicit choice, with its warning
        warnings.warn(f"Implicit dimension choice for {op} has been deprecated; pass dim=", stacklevel=3)
        dim = 0 if x.data.ndim in (0, 1, 3) else 1
    return x, normalize_dims(dim, x.data.ndim, op)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """e^{x_i} / sum_j e^{x_j} along ``dim``; ``dtype`` casts the input first, as torch."""
    x, axes = _softmax_args(input, dim, dtype, "softmax")
    return Softmax.apply(x, axis=axes, log=False)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """softmax(-x) along ``dim`` (torch.nn.functional.softmin)."""
    x, axes = _softmax_args(input, dim, dtype, "softmin")
    return Softmax.apply(-x, axis=axes, log=False)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """x_i - log sum_j e^{x_j} along ``dim``, stable for any finite logits."""
    x, axes = _softmax_args(input, dim, dtype, "log_softmax")
    return Softmax.apply(x, axis=axes, log=True)


