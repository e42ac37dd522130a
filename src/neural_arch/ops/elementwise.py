"""Elementwise ops: arithmetic, exp/log family, trigonometry, clamping, ``where``.

Gradients are written for the broadcast output shape; the engine sums them
back to each input's shape (``unbroadcast``). Non-differentiable ops
(comparisons, logical ops) build plain tensors without a graph node.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import get_default_dtype, is_floating
from neural_arch.backend.kernels import activation as kern
from neural_arch.backend.kernels import elementwise as ew
from neural_arch.ops._operands import array_of, as_tensor, binary_operands

__all__ = [
    "abs", "add", "allclose", "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor", "ceil", "clamp",
    "clip", "cos", "div", "eq", "equal", "exp", "expm1", "floor", "ge", "gt", "isfinite", "isinf", "isnan",
    "le", "log", "log1p", "logical_and", "logical_not", "logical_or", "logical_xor", "lt", "maximum",
    "minimum", "mul", "ne", "neg", "pow", "round", "rsqrt", "sigmoid", "sign", "sin", "sqrt", "sub", "tanh",
    "trunc", "where",
]


# -- arithmetic (large arrays run on all our threads: backend.kernels.elementwise) -------------------
class Add(Function):
    """z = x + y        dz/dx = 1,  dz/dy = 1"""

    @staticmethod
    def forward(ctx, x, y):
        return ew.add(x, y)

    @staticmethod
    def save_only(ctx, x, y):
        """Backward reads nothing (``Function.save_only``)."""

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    """z = x - y        dz/dx = 1,  dz/dy = -1"""

    @staticmethod
    def forward(ctx, x, y):
        return ew.subtract(x, y)

    @staticmethod
    def backward(ctx, grad):
        if not ctx.needs_input_grad[1]:
            return grad, None
        return grad, ew.negative(grad)


class Mul(Function):
    """z = x * y        dz/dx = y,  dz/dy = x"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, y if ctx.needs_input_grad[0] else None)
        return ew.multiply(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        if grad.dtype.kind == "c":  # complex: dz/dx conjugated (torch's convention), see neural_arch.fft
            x, y = (None if x is None else np.conj(x)), (None if y is None else np.conj(y))
        return (ew.multiply(grad, y) if y is not None else None), (ew.multiply(grad, x) if x is not None else None)


class Div(Function):
    """z = x / y        dz/dx = 1 / y,  dz/dy = -x / y^2 = -z / y"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, y):
        z = ew.divide(x, y)
        ctx.save_for_backward(y, z if ctx.needs_input_grad[1] else None)
        return z

    @staticmethod
    def backward(ctx, grad):
        y, z = ctx.saved_tensors
        if grad.dtype.kind == "c":  # complex: conjugated, as Mul
            y, z = np.conj(y), (None if z is None else np.conj(z))
        gx = ew.divide(grad, y)
        return gx, (-gx * z if z is not None else None)


class Neg(Function):
    """y = -x           dy/dx = -1"""

    @staticmethod
    def forward(ctx, x):
        return ew.negative(x)

    @staticmethod
    def backward(ctx, grad):
        return ew.negative(grad)


class PowScalar(Function):
    """y = x^p (p a number)        dy/dx = p x^(p-1)"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, p):
        ctx.p = p
        ctx.save_for_backward(x)
        if p == 2:
            return x * x
        return x**p

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        p = ctx.p
        if p == 2:
            return grad * (x + x)
        if p == 0:
            return grad * 0
        return grad * (p * x ** (p - 1)).astype(x.dtype, copy=False)


class Pow(Function):
    """z = x^y          dz/dx = y x^(y-1)  (0 where y = 0),   dz/dy = x^y log x  (0 where x = 0 and y >= 0)

    The two masks are torch's: they keep 0^0 and 0^y (y >= 0) free of 0 * inf = nan."""

    half = "float32"

    @staticmethod
    def forward(ctx, x, y):
        z = x**y
        ctx.save_for_backward(x, y, z)
        return z

    @staticmethod
    def backward(ctx, grad):
        x, y, z = ctx.saved_tensors
        gx = gy = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if ctx.needs_input_grad[0]:
                gx = grad * np.where(y == 0, 0, y * x ** (y - 1)).astype(grad.dtype, copy=False)
            if ctx.needs_input_grad[1]:
                gy = grad * np.where((x == 0) & (y >= 0), 0, z * np.log(x)).astype(grad.dtype, copy=False)
        return gx, gy


# -- exp / log family ----------------------------------------------------------------------------------
class Exp(Function):
    """y = e^x          dy/dx = e^x = y"""

    half = "float32"

    @staticmethod
    def forward(ctx, x):
        y = ew.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        return ew.multiply(grad, ctx.saved_tensors[0])


class Log(Function):
    """y = ln x         dy/dx = 1 / x"""

    half = "float32"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        return grad / ctx.saved_tensors[0]


class Log1p(Function):
    """y = ln(1 + x)    dy/dx = 1 / (1 + x)"""

    half = "float32"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log1p(x)

    @staticmethod
    def backward(ctx, grad):
        return grad / (1 + ctx.saved_tensors[0])


class Expm1(Function):
    """y = e^x - 1      dy/dx = e^x = y + 1"""

    half = "float32"

    @staticmethod
    def forward(ctx, x):
        y = np.expm1(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        return grad * (ctx.saved_tensors[0] + 1)


class Sqrt(Function):
    """y = sqrt(x)      dy/dx = 1 / (2 y)"""

    half = "float32"

    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        return grad / (2 * ctx.saved_tensors[0])


class Rsqrt(Function):
    """y = 1 / sqrt(x)  dy/dx = -y^3 / 2"""

    half = "float32"

    @staticmethod
    def forward(ctx, x):
        y = 1 / np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y = ctx.saved_tensors[0]
        return grad * (-0.5 * y * y * y).astype(y.dtype, copy=False)


# -- trigonometry and squashing ----------------------------------------------------------------------
class Sin(Function):
    """y = sin x        dy/dx = cos x"""

    half = "float32"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * np.cos(ctx.saved_tensors[0])


class Cos(Function):
    """y = cos x        dy/dx = -sin x"""

    half = "float32"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cos(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad * np.sin(ctx.saved_tensors[0])


class Tanh(Function):
    """y = tanh x       dy/dx = 1 - y^2"""

    half = "float32"

    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y = ctx.saved_tensors[0]
        return grad * (1 - y * y)


class Sigmoid(Function):
    """y = 1 / (1 + e^-x)    dy/dx = y (1 - y)"""

    half = "float32"

    @staticmethod
    def forward(ctx, x):
        y = kern.sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        return kern.sigmoid_backward(ctx.saved_tensors[0], grad)


class Abs(Function):
    """y = |x|          dy/dx = sign(x)   (0 at x = 0, as in torch)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * np.sign(ctx.saved_tensors[0])


class ZeroGrad(Function):
    """Piecewise-constant maps (sign, floor, ceil, round, trunc): dy/dx = 0 almost everywhere."""

    @staticmethod
    def forward(ctx, x, fn):
        return fn(x)

    @staticmethod
    def backward(ctx, grad):
        return np.zeros_like(grad)


# -- clamping and selection -------------------------------------------------------------------------
class Clamp(Function):
    """y = min(max(x, lo), hi)      dy/dx = 1 where lo <= x <= hi, else 0"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return np.clip(x, lo, hi).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        keep = np.ones(x.shape, dtype=bool) if ctx.lo is None else x >= ctx.lo
        if ctx.hi is not None:
            keep &= x <= ctx.hi
        return grad * keep


class Maximum(Function):
    """z = max(x, y)    dz/dx = [x > y] + [x = y] / 2   (ties split, as in torch)"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return np.maximum(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        wx = (x > y) + 0.5 * (x == y)
        return grad * wx.astype(grad.dtype), grad * (1 - wx).astype(grad.dtype)


class Minimum(Function):
    """z = min(x, y)    dz/dx = [x < y] + [x = y] / 2"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return np.minimum(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        wx = (x < y) + 0.5 * (x == y)
        return grad * wx.astype(grad.dtype), grad * (1 - wx).astype(grad.dtype)


class Where(Function):
    """z = cond ? x : y     dz/dx = [cond],  dz/dy = [not cond]"""

    @staticmethod
    def forward(ctx, x, y, cond):
        ctx.cond = cond
        return np.where(cond, x, y)

    @staticmethod
    def backward(ctx, grad):
        cond = ctx.cond
        zero = np.zeros((), dtype=grad.dtype)
        gx = np.where(cond, grad, zero) if ctx.needs_input_grad[0] else None
        gy = np.where(cond, zero, grad) if ctx.needs_input_grad[1] else None
        return gx, gy


# -- the functional API ------------------------------------------------------------------------------
def add(a, b, alpha=1) -> Tensor:
    """a + alpha b, with broadcasting and torch's type promotion (torch.add)."""
    if alpha != 1:
        b = mul(b, alpha)
    return Add.apply(*binary_operands(a, b))


def sub(a, b, alpha=1) -> Tensor:
    """a - alpha b, with broadcasting (torch.sub)."""
    if alpha != 1:
        b = mul(b, alpha)
    return Sub.apply(*binary_operands(a, b))


def mul(a, b) -> Tensor:
    """a * b, elementwise with broadcasting (torch.mul)."""
    return Mul.apply(*binary_operands(a, b))


def div(a, b, rounding_mode: str | None = None) -> Tensor:
    """a / b with broadcasting; ``rounding_mode`` 'trunc' or 'floor' rounds the quotient (torch.div)."""
    a, b = binary_operands(a, b)
    if rounding_mode is None:
        if a.data.dtype.kind in "biu":  # true division of integers gives the default float
            a, b = a.to(get_default_dtype()), b.to(get_default_dtype())
        return Div.apply(a, b)
    if rounding_mode == "floor":
        return Tensor._wrap(np.floor_divide(a.data, b.data))
    if rounding_mode == "trunc":
        return Tensor._wrap(np.trunc(a.data / b.data).astype(a.data.dtype, copy=False))
    raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")


def neg(x) -> Tensor:
    """-x, elementwise (torch.neg)."""
    return Neg.apply(x)


def pow(x, exponent) -> Tensor:  # noqa: A001 - torch's name
    """x ** exponent, elementwise; either may be a tensor or a number (torch.pow)."""
    if isinstance(x, Tensor) and isinstance(exponent, (int, float)) and not isinstance(exponent, bool):
        if x.data.dtype.kind in "iub" and isinstance(exponent, float):
            x = x.to(get_default_dtype())
        return PowScalar.apply(x, p=exponent)
    return Pow.apply(*binary_operands(x, exponent))


def _unary(cls):
    def op(x: Tensor) -> Tensor:
        if x.data.dtype.kind in "iub":  # exp, log, sin, ... of integers give the default float
            x = x.to(get_default_dtype())
        return cls.apply(x)

    op.__name__ = cls.__name__.lower()
    op.__doc__ = cls.__doc__
    return op


exp = _unary(Exp)
log = _unary(Log)
log1p = _unary(Log1p)
expm1 = _unary(Expm1)
sqrt = _unary(Sqrt)
rsqrt = _unary(Rsqrt)
sin = _unary(Sin)
cos = _unary(Cos)
tanh = _unary(Tanh)
sigmoid = _unary(Sigmoid)


def abs(x) -> Tensor:  # noqa: A001
    """|x|, elementwise (torch.abs)."""
    return Abs.apply(x)


def sign(x) -> Tensor:
    """-1, 0 or 1 by the sign of x; its gradient is 0 (torch.sign)."""
    return ZeroGrad.apply(x, fn=np.sign)


def floor(x) -> Tensor:
    """The largest integer <= x, elementwise; its gradient is 0 (torch.floor)."""
    return ZeroGrad.apply(x, fn=np.floor) if is_floating(x.data.dtype) else x


def ceil(x) -> Tensor:
    """The smallest integer >= x, elementwise; its gradient is 0 (torch.ceil)."""
    return ZeroGrad.apply(x, fn=np.ceil) if is_floating(x.data.dtype) else x


def round(x, decimals: int = 0) -> Tensor:  # noqa: A001
    """Round half to even, as torch.round (and np.round) do."""
    return ZeroGrad.apply(x, fn=lambda a: np.round(a, decimals)) if is_floating(x.data.dtype) else x


def trunc(x) -> Tensor:
    """x rounded towards zero, elementwise; its gradient is 0 (torch.trunc)."""
    return ZeroGrad.apply(x, fn=np.trunc) if is_floating(x.data.dtype) else x


def clamp(x, min=None, max=None) -> Tensor:
    """Clamp into [min, max]; tensor bounds are applied with maximum/minimum."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = x
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    return Clamp.apply(x, lo=min, hi=max)


clip = clamp


def maximum(a, b) -> Tensor:
    """The larger of a and b, elementwise with broadcasting; ties split the gradient (torch.maximum)."""
    return Maximum.apply(*binary_operands(a, b))


def minimum(a, b) -> Tensor:
    """The smaller of a and b, elementwise with broadcasting; ties split the gradient (torch.minimum)."""
    return Minimum.apply(*binary_operands(a, b))


def where(condition, x, y) -> Tensor:
    """``x`` where ``condition`` holds, else ``y`` (broadcast together)."""
    cond = array_of(condition)
    if cond.dtype != np.bool_:
        cond = cond.astype(bool)
    x, y = binary_operands(x, y)
    return Where.apply(x, y, cond=cond)


# -- no-grad elementwise: comparisons and logic ---------------------------------------------------------
def _no_grad_binary(ufunc, doc, promote=True):
    """A comparison, logical or bitwise op: operands promoted as for arithmetic (``promote``), no graph node."""

    def op(input, other) -> Tensor:  # noqa: A002 - torch's names
        a, b = binary_operands(input, other) if promote else (as_tensor(input), as_tensor(other))
        return Tensor._wrap(ufunc(a.data, b.data))

    op.__name__ = ufunc.__name__
    op.__doc__ = doc
    return op


def _no_grad_unary(ufunc, doc, name=None):
    def op(x) -> Tensor:
        return Tensor._wrap(ufunc(x.data))

    op.__name__ = name or ufunc.__name__
    op.__doc__ = doc
    return op


eq = _no_grad_binary(np.equal, "input == other elementwise with broadcasting; a bool tensor (torch.eq).")
ne = _no_grad_binary(np.not_equal, "input != other elementwise; a bool tensor (torch.ne, torch.not_equal).")
lt = _no_grad_binary(np.less, "input < other elementwise; a bool tensor (torch.lt, torch.less).")
le = _no_grad_binary(np.less_equal, "input <= other elementwise; a bool tensor (torch.le, torch.less_equal).")
gt = _no_grad_binary(np.greater, "input > other elementwise; a bool tensor (torch.gt, torch.greater).")
ge = _no_grad_binary(np.greater_equal, "input >= other elementwise; a bool tensor (torch.ge, torch.greater_equal).")
logical_and = _no_grad_binary(np.logical_and, "input and other elementwise (nonzero is true); a bool tensor "
                              "(torch.logical_and).", promote=False)
logical_or = _no_grad_binary(np.logical_or, "input or other elementwise; a bool tensor (torch.logical_or).",
                             promote=False)
logical_xor = _no_grad_binary(np.logical_xor, "input xor other elementwise; a bool tensor (torch.logical_xor).",
                              promote=False)
logical_not = _no_grad_unary(np.logical_not, "not x, elementwise; a bool tensor, no gradient (torch.logical_not).")
isnan = _no_grad_unary(np.isnan, "x != x, elementwise; a bool tensor (torch.isnan).")
isinf = _no_grad_unary(np.isinf, "True where x is +inf or -inf; a bool tensor (torch.isinf).")
isfinite = _no_grad_unary(np.isfinite, "True where x is neither inf nor nan; a bool tensor (torch.isfinite).")
bitwise_and = _no_grad_binary(np.bitwise_and, "input & other for integer and bool tensors (torch.bitwise_and).")
bitwise_or = _no_grad_binary(np.bitwise_or, "input | other for integer and bool tensors (torch.bitwise_or).")
bitwise_xor = _no_grad_binary(np.bitwise_xor, "input ^ other for integer and bool tensors (torch.bitwise_xor).")
bitwise_not = _no_grad_unary(np.invert, "~x for integer and bool tensors; no gradient (torch.bitwise_not).",
                             "bitwise_not")


def allclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
    """True when |a - b| <= atol + rtol |b| everywhere (torch.allclose); a Python bool."""
    return bool(np.allclose(as_tensor(a).data, as_tensor(b).data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(a, b) -> bool:
    """True when a and b have the same shape and the same elements (torch.equal); a Python bool."""
    a, b = as_tensor(a), as_tensor(b)
    return a.shape == b.shape and bool((a.data == b.data).all())
