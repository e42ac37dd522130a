"""Activation functions and softmax: relu family, elu/selu, gelu, silu, mish, softplus, glu,
softmax and log_softmax.

Each is one ``Function`` whose backward is written from the forward's saved
output or input; gelu, softmax and log_softmax are *fused* (one node, a
hand-written backward) for stability and speed. Everything computes in the
input's dtype: a float32 tensor never goes through float64.

NumPy has no ``erf``: exact GELU uses :func:`erf` / :func:`ndtr` below, the
rational approximations of the Cephes library (S. L. Moshier), accurate to a
few units in the last place of float64 (the test measures it against
``math.erf``).
"""

from __future__ import annotations

import warnings

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError, DTypeError, ShapeError, shape_str
from neural_arch.ops._dims import normalize_dims
from neural_arch.ops.elementwise import sigmoid, sigmoid_array, tanh  # noqa: F401 - sigmoid, tanh: F.sigmoid / F.tanh
from neural_arch.ops.fused import FusedGELU, FusedSiLU, FusedSoftmax, kernel_for

__all__ = [
    "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "quick_gelu", "silu", "mish", "sigmoid",
    "tanh", "softplus", "hardtanh", "hardswish", "hardsigmoid", "glu", "softmax", "log_softmax", "softmin",
    "logsigmoid",
]

# -- erf, erfc and the normal CDF (Cephes ndtr.c) ---------------------------------------------------
# erf(z) = z T(z^2) / U(z^2) for |z| < 1;  erfc(z) = e^{-z^2} P(z) / Q(z) for 1 <= z < 8, R/S beyond.
_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
      7.00332514112805075473e3, 5.55923013010394962768e4)
_U = (3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
      2.26290000613890934246e4, 4.92673942608635921086e4)
_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
      4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
      9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_Q = (1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
      9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
      1.65666309194161350182e3, 5.57535340817727675546e2)
_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
      6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)
_S = (2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
      1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)
_SQRTH = 0.7071067811865476  # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)


def _polevl(x, coef):
    """c0 x^n + ... + cn by Horner's rule (a loop over coefficients, not elements)."""
    y = coef[0] * x + coef[1]
    for c in coef[2:]:
        y = y * x + c
    return y


def _p1evl(x, coef):
    """x^n + c0 x^(n-1) + ... (leading coefficient 1)."""
    y = x + coef[0]
    for c in coef[1:]:
        y = y * x + c
    return y


def _erf_small(z):
    """erf(z) for |z| <= 1."""
    z2 = z * z
    return z * _polevl(z2, _T) / _p1evl(z2, _U)


def _erfc_large(a):
    """erfc(a) for a >= 1 (underflows gracefully to 0 past a ~ 27)."""
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        e = np.exp(-(a * a))
        out = e * _polevl(a, _P) / _p1evl(a, _Q)
        far = a >= 8
        if far.any():
            af = a[far]
            out[far] = e[far] * _polevl(af, _R) / _p1evl(af, _S)
    return out


def _piecewise(x, small, f_small, f_large):
    """f_small where ``small`` else f_large, evaluating each only where it is used."""
    if small.all():
        return f_small(x)
    out = np.empty_like(x)
    out[small] = f_small(x[small])
    big = ~small
    out[big] = f_large(x[big])
    return out


def erf(x):
    """The error function on an array, in its dtype (Cephes rational approximations)."""
    return _piecewise(x, np.abs(x) < 1, _erf_small, lambda v: np.copysign(1 - _erfc_large(np.abs(v)), v))


def erfc(x):
    """1 - erf(x), accurate in the tails (no cancellation for large x)."""
    return _piecewise(x, np.abs(x) < 1, lambda v: 1 - _erf_small(v),
                      lambda v: np.where(v > 0, 0, 2).astype(v.dtype) + np.sign(v) * _erfc_large(np.abs(v)))


def ndtr(x):
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2, the standard normal CDF; small in the left tail
    without cancellation."""
    z = x * _SQRTH

    def tails(v):
        c = 0.5 * _erfc_large(np.abs(v))
        return np.where(v > 0, 1 - c, c)

    return _piecewise(z, np.abs(z) < 1, lambda v: 0.5 + 0.5 * _erf_small(v), tails)


# -- the relu family ---------------------------------------------------------------------------------
class ReLU(Function):
    """y = max(x, 0)        dy/dx = [x > 0]   (0 at x = 0, as in torch)"""

    @staticmethod
    def forward(ctx, x):
        k = kernel_for(x) if x.size >= 4096 else None  # (below that np.maximum's ~1 us is less)
        if k is not None and x.flags.c_contiguous:
            y = np.empty_like(x)  # one pass, split over the threads when large
            k.relu_forward(x.reshape(-1), y.reshape(-1))
        else:
            y = np.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y = ctx.saved_tensors[0]
        k = kernel_for(y, grad)
        if k is not None and grad.shape == y.shape and grad.flags.c_contiguous and y.flags.c_contiguous:
            out = np.empty_like(y)  # one pass, split over the threads when large
            k.relu_backward(y.reshape(-1), grad.reshape(-1), out.reshape(-1))
            return out
        return grad * (y > 0)


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
            dy/dx = (1 + tanh u) / 2 + x (1 - tanh^2 u) c (1 + 3 * 0.044715 x^2) / 2"""

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.approximate = approximate
        if approximate == "tanh":
            t = np.tanh(0.7978845608028654 * (x + 0.044715 * (x * x * x)))
            ctx.save_for_backward(x, t)
            return 0.5 * x * (1 + t)
        phi_cdf = ndtr(x)
        ctx.save_for_backward(x, phi_cdf)
        return x * phi_cdf

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_tensors
        if ctx.approximate == "tanh":
            d = 0.5 * (1 + s) + (0.5 * 0.7978845608028654) * x * (1 - s * s) * (1 + 3 * 0.044715 * (x * x))
            return grad * d
        with np.errstate(under="ignore"):
            pdf = _INV_SQRT_2PI * np.exp(-0.5 * (x * x))
        return grad * (s + x * pdf)


_sigmoid = sigmoid_array  # (NumPy twin of the fused kernels' _sigmoidf)


class SiLU(Function):
    """y = x sigmoid(x)          dy/dx = s (1 + x (1 - s)),  s = sigmoid(x)"""

    @staticmethod
    def forward(ctx, x):
        s = _sigmoid(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_tensors
        return grad * (s * (1 + x * (1 - s)))


def _softplus(x):
    """log(1 + e^x) without overflow: max(x, 0) + log1p(e^{-|x|})."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


class Mish(Function):
    """y = x tanh(softplus(x))       dy/dx = t + x sigmoid(x) (1 - t^2),  t = tanh(softplus(x))"""

    @staticmethod
    def forward(ctx, x):
        t = np.tanh(_softplus(x))
        ctx.save_for_backward(x, t)
        return x * t

    @staticmethod
    def backward(ctx, grad):
        x, t = ctx.saved_tensors
        s = _sigmoid(x)
        return grad * (t + x * s * (1 - t * t))


class Softplus(Function):
    """y = log(1 + e^{b x}) / b  (y = x where b x > threshold)
    dy/dx = sigmoid(b x)  (1 where b x > threshold)"""

    @staticmethod
    def forward(ctx, x, beta, threshold):
        bx = x * beta if beta != 1 else x
        lin = bx > threshold
        ctx.save_for_backward(bx, lin)
        y = _softplus(bx)
        if beta != 1:
            y = y / beta
        return np.where(lin, x, y).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        bx, lin = ctx.saved_tensors
        return np.where(lin, grad, grad * _sigmoid(bx)).astype(grad.dtype, copy=False)


class Hardswish(Function):
    """y = x relu6(x + 3) / 6       dy/dx = 0 (x < -3), x/3 + 1/2 (-3 <= x <= 3), 1 (x > 3)"""

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

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return -_softplus(-x)

    @staticmethod
    def backward(ctx, grad):
        return grad * _sigmoid(-ctx.saved_tensors[0])


# -- softmax, log_softmax (fused) -----------------------------------------------------------------------
class Softmax(Function):
    """y_i = e^{x_i - m} / sum_j e^{x_j - m}   (m = max_j x_j: no overflow)
    dL/dx_i = y_i (g_i - sum_j g_j y_j)

    A row that is all -inf gives NaN, as torch.softmax does."""

    @staticmethod
    def forward(ctx, x, axis):
        with np.errstate(invalid="ignore"):
            e = np.exp(x - x.max(axis=axis, keepdims=True))
            y = e
            y /= e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        gy = grad * y
        gy -= y * gy.sum(axis=ctx.axis, keepdims=True)
        return gy


def _log_softmax(x, axis):
    """x - m - log sum e^{x - m} along ``axis`` (a tuple), m the max: one new array."""
    with np.errstate(invalid="ignore", divide="ignore"):
        y = x - x.max(axis=axis, keepdims=True)
        y -= np.log(np.exp(y).sum(axis=axis, keepdims=True))
    return y


class LogSoftmax(Function):
    """y_i = x_i - m - log sum_j e^{x_j - m}
    dL/dx_i = g_i - e^{y_i} sum_j g_j"""

    @staticmethod
    def forward(ctx, x, axis):
        y = _log_softmax(x, axis)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad - np.exp(y) * grad.sum(axis=ctx.axis, keepdims=True)


# -- the functional API (torch.nn.functional names and signatures) ---------------------------------------
def _float(x: Tensor, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise DTypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x.data.dtype.kind != "f":
        raise DTypeError(f"{op}: needs a floating-point tensor, got {x.dtype}; convert with .float() first")
    return x


def relu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002 - torch's names
    """max(x, 0). ``inplace`` is accepted and ignored (a new tensor is always returned)."""
    if input.data.dtype.kind in "iu":
        return Tensor._wrap(np.maximum(input.data, 0))
    return ReLU.apply(input)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    if min_val > max_val:
        raise ConfigError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    return Hardtanh.apply(_float(input, "hardtanh"), lo=min_val, hi=max_val)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """min(max(x, 0), 6) (hardtanh(x, 0, 6), as torch: gradient 0 at both kinks)."""
    return Hardtanh.apply(_float(input, "relu6"), lo=0.0, hi=6.0)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:  # noqa: A002
    return LeakyReLU.apply(_float(input, "leaky_relu"), slope=negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    return ELU.apply(_float(input, "elu"), alpha=alpha, scale=1.0, input_scale=1.0)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    return ELU.apply(_float(input, "selu"), alpha=_SELU_ALPHA, scale=_SELU_SCALE, input_scale=1.0)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    if alpha == 0:
        raise ConfigError("celu: alpha must not be 0")
    return ELU.apply(_float(input, "celu"), alpha=alpha, scale=1.0, input_scale=1.0 / alpha)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:  # noqa: A002
    """x Phi(x) (``approximate='none'``, exact through erf) or the tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise ConfigError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    x = _float(input, "gelu")
    if kernel_for(x.data) is not None:
        return FusedGELU.apply(x, approximate=approximate)
    return GELU.apply(x, approximate=approximate)


def quick_gelu(input: Tensor) -> Tensor:  # noqa: A002
    """x sigmoid(1.702 x): the GELU approximation of OpenAI's CLIP (not in torch; a composition)."""
    x = _float(input, "quick_gelu")
    if kernel_for(x.data) is not None:
        return FusedSiLU.apply(x, alpha=1.702)
    return x * sigmoid(x * 1.702)


def silu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    x = _float(input, "silu")
    if kernel_for(x.data) is not None:
        return FusedSiLU.apply(x, alpha=1.0)
    return SiLU.apply(x)


def mish(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    return Mish.apply(_float(input, "mish"))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:  # noqa: A002
    if beta == 0:
        raise ConfigError("softplus: beta must not be 0")
    return Softplus.apply(_float(input, "softplus"), beta=beta, threshold=threshold)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    return Hardswish.apply(_float(input, "hardswish"))


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    return Hardsigmoid.apply(_float(input, "hardsigmoid"))


def logsigmoid(input: Tensor) -> Tensor:  # noqa: A002
    return LogSigmoid.apply(_float(input, "logsigmoid"))


def glu(input: Tensor, dim: int = -1) -> Tensor:  # noqa: A002
    """a * sigmoid(b) where (a, b) are the two halves of ``input`` along ``dim`` (a composition)."""
    from neural_arch.ops.shape import chunk  # noqa: PLC0415

    x = _float(input, "glu")
    if x.data.ndim == 0:
        raise ShapeError("glu: does not support 0-d tensors")
    (axis,) = normalize_dims(dim, x.data.ndim, "glu")
    if x.data.shape[axis] % 2:
        raise ShapeError(f"glu: dim {dim} of {shape_str(x.shape)} must have an even size, got {x.data.shape[axis]}")
    a, b = chunk(x, 2, axis)
    return a * sigmoid(b)


def _softmax_dim(x: Tensor, dim, op: str) -> tuple:
    if dim is None:  # torch's legacy implicit choice, with its warning
        warnings.warn(f"Implicit dimension choice for {op} has been deprecated; pass dim=", stacklevel=3)
        dim = 0 if x.data.ndim in (0, 1, 3) else 1
    return normalize_dims(dim, x.data.ndim, op)


def _softmax_input(input, dtype, op):
    x = input if dtype is None else input.to(dtype)
    if x.data.dtype.kind != "f":
        raise DTypeError(f"{op}: needs a floating-point tensor, got {x.dtype}; pass dtype= or convert first")
    return x


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:  # noqa: A002
    """e^{x_i} / sum_j e^{x_j} along ``dim``; ``dtype`` casts the input first, as torch."""
    x = _softmax_input(input, dtype, "softmax")
    axis = _softmax_dim(x, dim, "softmax")
    if axis == (x.data.ndim - 1,) and kernel_for(x.data) is not None:
        return FusedSoftmax.apply(x, log=False)
    return Softmax.apply(x, axis=axis)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:  # noqa: A002
    x = _softmax_input(input, dtype, "softmin")
    return Softmax.apply(-x, axis=_softmax_dim(x, dim, "softmin"))


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:  # noqa: A002
    """x_i - log sum_j e^{x_j} along ``dim``, stable for any finite logits."""
    x = _softmax_input(input, dtype, "log_softmax")
    axis = _softmax_dim(x, dim, "log_softmax")
    if axis == (x.data.ndim - 1,) and kernel_for(x.data) is not None:
        return FusedSoftmax.apply(x, log=True)
    return LogSoftmax.apply(x, axis=axis)


