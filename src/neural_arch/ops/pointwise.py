"""More pointwise math beside elementwise.py: the rest of trigonometry and the
hyperbolic functions, log2/log10/exp2, the special functions (erf, erfc,
erfinv, lgamma, digamma, polygamma: SciPy's ``scipy.special``, the ``special``
extra), xlogy, atan2, hypot, logaddexp, lerp, nan_to_num, and torch's aliases.

A unary primitive saves what its derivative needs; binary ones return
gradients in the broadcast shape (the engine sums them back).
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import is_floating
from neural_arch.errors import DTypeError
from neural_arch.ops import elementwise as ew
from neural_arch.ops import reduce
from neural_arch.ops._operands import array_of, as_tensor, binary_operands
from neural_arch.ops._operands import as_floating as _floating

__all__ = [
    "absolute", "acos", "acosh", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh", "asin",
    "asinh", "atan", "atan2", "atanh", "clamp_max", "clamp_min", "copysign", "cosh", "deg2rad", "digamma", "divide",
    "erf", "erfc", "erfinv", "exp2", "fix", "float_power", "floor_divide", "fmax", "fmin", "fmod", "frac",
    "heaviside", "hypot", "isclose", "isneginf", "isposinf", "isreal", "lerp", "lgamma", "log10", "log2",
    "logaddexp", "logaddexp2", "logit", "multiply", "nan_to_num", "negative", "polygamma", "positive",
    "rad2deg", "reciprocal", "remainder", "rsub", "signbit", "sinc", "sinh", "square", "subtract", "tan",
    "true_divide", "xlogy", "addcdiv", "addcmul", "sgn", "ldexp", "frexp", "gcd", "lcm", "nextafter", "i0", "mvlgamma",
    "renorm",
]


def _special():
    try:
        import scipy.special  # noqa: PLC0415 - optional (the special extra), imported when first used
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("erf, erfinv, lgamma, digamma and polygamma need SciPy: pip install 'neural-arch[special]'"
                          ) from None
    return scipy.special


class Unary(Function):
    """y = f(x)        dy/dx = f'(x): ``fn`` and ``derivative`` (of x and y) name the pair.

    Shared by the functions below, each stating its own pair (and its math) in ``UNARY``.
    """

    half = "float32"

    @staticmethod
    def forward(ctx, x, fn, derivative):
        y = fn(x)
        ctx.save_for_backward(x, y)
        ctx.derivative = derivative
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            return (grad * ctx.derivative(x, y)).astype(grad.dtype, copy=False)


def _sinc_grad(x, y):
    px = np.pi * x
    safe = np.where(x == 0, 1, x)
    # y recomputed, not the saved output: cos(pi x) - y cancels, and a half input's saved y is rounded to half
    return np.where(x == 0, 0, (np.cos(px) - np.sinc(x)) / safe)


LN2, LN10 = math.log(2), math.log(10)

# name: (f, df/dx as a function of x and y = f(x), the pair's math for the docstring: the docs site renders it)
UNARY = {
    "tan": (np.tan, lambda x, y: 1 + y * y, "y = tan x        dy/dx = 1 + y^2"),
    "asin": (np.arcsin, lambda x, y: 1 / np.sqrt(1 - x * x), "y = arcsin x        dy/dx = 1 / sqrt(1 - x^2)"),
    "acos": (np.arccos, lambda x, y: -1 / np.sqrt(1 - x * x), "y = arccos x        dy/dx = -1 / sqrt(1 - x^2)"),
    "atan": (np.arctan, lambda x, y: 1 / (1 + x * x), "y = arctan x        dy/dx = 1 / (1 + x^2)"),
    "sinh": (np.sinh, lambda x, y: np.cosh(x), "y = sinh x        dy/dx = cosh x"),
    "cosh": (np.cosh, lambda x, y: np.sinh(x), "y = cosh x        dy/dx = sinh x"),
    "asinh": (np.arcsinh, lambda x, y: 1 / np.sqrt(x * x + 1), "y = arsinh x        dy/dx = 1 / sqrt(x^2 + 1)"),
    "acosh": (np.arccosh, lambda x, y: 1 / np.sqrt(x * x - 1), "y = arcosh x        dy/dx = 1 / sqrt(x^2 - 1)"),
    "atanh": (np.arctanh, lambda x, y: 1 / (1 - x * x), "y = artanh x        dy/dx = 1 / (1 - x^2)"),
    "log2": (np.log2, lambda x, y: 1 / (x * LN2), "y = log_2 x        dy/dx = 1 / (x ln 2)"),
    "log10": (np.log10, lambda x, y: 1 / (x * LN10), "y = log_10 x        dy/dx = 1 / (x ln 10)"),
    "exp2": (np.exp2, lambda x, y: y * LN2, "y = 2^x        dy/dx = y ln 2"),
    "reciprocal": (np.reciprocal, lambda x, y: -y * y, "y = 1 / x        dy/dx = -y^2"),
    "sinc": (np.sinc, _sinc_grad,
             "y = sin(pi x) / (pi x), y(0) = 1        dy/dx = (cos(pi x) - y) / x, 0 at x = 0"),
    "erf": (lambda x: _special().erf(x), lambda x, y: 2 / math.sqrt(math.pi) * np.exp(-x * x),
            "y = erf x        dy/dx = 2 / sqrt(pi) e^(-x^2)"),
    "erfc": (lambda x: _special().erfc(x), lambda x, y: -2 / math.sqrt(math.pi) * np.exp(-x * x),
             "y = 1 - erf x        dy/dx = -2 / sqrt(pi) e^(-x^2)"),
    "erfinv": (lambda x: _special().erfinv(x), lambda x, y: math.sqrt(math.pi) / 2 * np.exp(y * y),
               "y = erf^(-1) x        dy/dx = sqrt(pi) / 2 e^(y^2)"),
    "lgamma": (lambda x: _special().gammaln(x), lambda x, y: _special().digamma(x),
               "y = ln |Gamma(x)|        dy/dx = psi(x) (digamma)"),
    "digamma": (lambda x: _special().digamma(x), lambda x, y: _special().polygamma(1, x),
                "y = psi(x) = Gamma'(x) / Gamma(x)        dy/dx = polygamma(1, x)"),
}


def _unary(name):
    fn, derivative, math_ = UNARY[name]

    def op(x) -> Tensor:
        return Unary.apply(_floating(x), fn=fn, derivative=derivative)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise ``{name}`` (torch.{name}): a ``Unary`` op.\n\n{math_}\n"
    return op


tan, asin, acos, atan = _unary("tan"), _unary("asin"), _unary("acos"), _unary("atan")
sinh, cosh, asinh, acosh, atanh = _unary("sinh"), _unary("cosh"), _unary("asinh"), _unary("acosh"), _unary("atanh")
log2, log10, exp2, sinc = _unary("log2"), _unary("log10"), _unary("exp2"), _unary("sinc")
reciprocal, erf, erfc, erfinv = _unary("reciprocal"), _unary("erf"), _unary("erfc"), _unary("erfinv")
lgamma, digamma = _unary("lgamma"), _unary("digamma")
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh


def polygamma(n: int, x) -> Tensor:
    """The n-th derivative of digamma; its derivative is polygamma(n + 1)."""
    sp = _special()
    return Unary.apply(_floating(x), fn=lambda a: sp.polygamma(n, a), derivative=lambda a, y: sp.polygamma(n + 1, a))


def square(x) -> Tensor:
    """x * x"""
    return ew.mul(x, x)


def frac(x) -> Tensor:
    """x - trunc(x) (derivative 1)."""
    return ew.sub(x, ew.trunc(x))


def logit(x, eps=None) -> Tensor:
    """log(x / (1 - x)), x first clamped to [eps, 1 - eps] when ``eps`` is given."""
    x = _floating(x)
    if eps is not None:
        x = ew.clamp(x, eps, 1 - eps)
    return ew.sub(ew.log(x), ew.log(ew.sub(1, x)))


def deg2rad(x) -> Tensor:
    """Degrees to radians."""
    return ew.mul(_floating(x), math.pi / 180)


def rad2deg(x) -> Tensor:
    """Radians to degrees."""
    return ew.mul(_floating(x), 180 / math.pi)


class XLogY(Function):
    """z = x log y (0 where x = 0)      dz/dx = log y (0 where x = 0 and y <= 0, as torch),  dz/dy = x / y"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x == 0, 0, x * np.log(y)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            gx = grad * np.where((x == 0) & (y <= 0), 0, np.log(y)) if ctx.needs_input_grad[0] else None
            gy = grad * x / y if ctx.needs_input_grad[1] else None
        return gx, gy


def xlogy(x, y) -> Tensor:
    """x * log(y), defined as 0 where x = 0 (even for y = 0)."""
    x, y = binary_operands(_floating(x) if isinstance(x, Tensor) else x, _floating(y) if isinstance(y, Tensor) else y)
    return XLogY.apply(_floating(x), _floating(y))


class Atan2(Function):
    """z = atan2(y, x)       dz/dy = x / (x^2 + y^2),  dz/dx = -y / (x^2 + y^2)"""

    half = "float32"

    @staticmethod
    def forward(ctx, y, x):
        ctx.save_for_backward(y, x)
        return np.arctan2(y, x)

    @staticmethod
    def backward(ctx, grad):
        y, x = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = x * x + y * y
            return grad * x / r2, -grad * y / r2


def atan2(input, other) -> Tensor:  # noqa: A002 - torch's names
    """The angle of the point (other, input): atan(input / other) in the right quadrant."""
    y, x = binary_operands(input, other)
    return Atan2.apply(_floating(y), _floating(x))


arctan2 = atan2


class Hypot(Function):
    """z = sqrt(x^2 + y^2)      dz/dx = x / z,  dz/dy = y / z"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, y):
        z = np.hypot(x, y)
        ctx.save_for_backward(x, y, z)
        return z

    @staticmethod
    def backward(ctx, grad):
        x, y, z = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad * x / z, grad * y / z


def hypot(x, y) -> Tensor:
    """sqrt(x^2 + y^2), elementwise."""
    x, y = binary_operands(x, y)
    return Hypot.apply(x, y)


class LogAddExp(Function):
    """z = log(e^x + e^y) (``base2``: log2(2^x + 2^y))
    dz/dx = sigmoid(x - y) = 1 / (1 + b^(y - x)),  dz/dy = 1 - dz/dx"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, y, base2):
        ctx.save_for_backward(x, y)
        ctx.base2 = base2
        return (np.logaddexp2 if base2 else np.logaddexp)(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        with np.errstate(over="ignore", invalid="ignore"):
            d = y - x
            wx = 1 / (1 + (np.exp2(d) if ctx.base2 else np.exp(d)))
            wx = np.where(np.isnan(wx) & (x == y), 0.5, wx)  # x = y = +-inf
        return grad * wx, grad * (1 - wx)


def logaddexp(x, y) -> Tensor:
    """log(e^x + e^y) without overflow."""
    x, y = binary_operands(x, y)
    return LogAddExp.apply(_floating(x), _floating(y), base2=False)


def logaddexp2(x, y) -> Tensor:
    """log2(2^x + 2^y) without overflow."""
    x, y = binary_operands(x, y)
    return LogAddExp.apply(_floating(x), _floating(y), base2=True)


def lerp(start, end, weight) -> Tensor:
    """start + weight * (end - start)"""
    return ew.add(start, ew.mul(weight, ew.sub(end, start)))


class NanToNum(Function):
    """y = x with NaN, +inf, -inf replaced      dy/dx = 1 where x is finite, else 0"""

    @staticmethod
    def forward(ctx, x, nan, posinf, neginf):
        ctx.save_for_backward(np.isfinite(x))
        if x.dtype.kind == "f":
            return np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)
        # bfloat16 (ml_dtypes, kind "V"), which np.nan_to_num leaves as it is: the same replacements by hand,
        # the defaults being the dtype's own largest finite values (the float next to inf)
        top = np.nextafter(np.array(np.inf, x.dtype), np.array(0, x.dtype))
        y = np.where(np.isnan(x), np.array(nan).astype(x.dtype), x)
        y = np.where(np.isposinf(x), np.array(top if posinf is None else posinf).astype(x.dtype), y)
        return np.where(np.isneginf(x), np.array(-top if neginf is None else neginf).astype(x.dtype), y)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.saved_tensors[0]


def nan_to_num(x, nan: float = 0.0, posinf=None, neginf=None) -> Tensor:
    """NaN -> ``nan``, +inf -> ``posinf`` (default: the dtype's largest), -inf -> ``neginf`` (its lowest)."""
    if not is_floating(x.data.dtype):
        return x.clone()
    return NanToNum.apply(x, nan=nan, posinf=posinf, neginf=neginf)


def clamp_min(x, min) -> Tensor:  # noqa: A002
    """max(x, min) elementwise."""
    return ew.clamp(x, min=min)


def clamp_max(x, max) -> Tensor:  # noqa: A002
    """min(x, max) elementwise."""
    return ew.clamp(x, max=max)


def fmod(x, y) -> Tensor:
    """The remainder of x / y rounded toward zero (the sign of x), as C's fmod."""
    return ew.sub(x, ew.mul(ew.div(x, y, rounding_mode="trunc"), y))


def remainder(x, y) -> Tensor:
    """The remainder of x / y rounded down (the sign of y), as Python's %."""
    return ew.sub(x, ew.mul(ew.div(x, y, rounding_mode="floor"), y))


def floor_divide(x, y) -> Tensor:
    """x / y rounded down."""
    return ew.div(x, y, rounding_mode="floor")


def fmax(x, y) -> Tensor:
    """Elementwise maximum that ignores NaN (NaN only where both are NaN)."""
    x, y = binary_operands(x, y)
    return ew.where(ew.isnan(y), x, ew.where(ew.isnan(x), y, ew.maximum(x, y)))


def fmin(x, y) -> Tensor:
    """Elementwise minimum that ignores NaN."""
    x, y = binary_operands(x, y)
    return ew.where(ew.isnan(y), x, ew.where(ew.isnan(x), y, ew.minimum(x, y)))


class CopySign(Function):
    """z = |x| sign(y) (signed zeros count)     dz/dx = z / x (0 at x = 0),  dz/dy = 0"""

    half = "float32"

    @staticmethod
    def forward(ctx, x, y):
        z = np.copysign(x, y)
        ctx.save_for_backward(x, z)
        return z

    @staticmethod
    def backward(ctx, grad):
        x, z = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            gx = grad * np.where(x == 0, 0, z / np.where(x == 0, 1, x))
        return gx, (np.zeros_like(grad) if ctx.needs_input_grad[1] else None)


def copysign(x, y) -> Tensor:
    """|x| with the sign of y (signed zeros count: -0.0 is negative)."""
    x, y = binary_operands(_floating(x), y)
    return CopySign.apply(_floating(x), _floating(y))


def float_power(x, exponent) -> Tensor:
    """x ** exponent computed in float64."""
    x = as_tensor(x).to("float64")
    return ew.pow(x, exponent.to("float64") if isinstance(exponent, Tensor) else exponent)


def heaviside(x, values) -> Tensor:
    """0 where x < 0, ``values`` where x = 0, 1 where x > 0 (not differentiable)."""
    a = x.data
    v = array_of(values)
    if a.dtype != v.dtype:
        raise DTypeError(f"heaviside: input is {x.dtype} but values is {v.dtype}; they must match")
    return Tensor._wrap(np.where(a == 0, v, a > 0).astype(a.dtype))  # NaN -> 0, as torch


signbit = ew._no_grad_unary(np.signbit, "True where the sign bit is set (-0.0 included).")


def isposinf(x) -> Tensor:
    """True where x is +inf."""
    return Tensor._wrap(np.isposinf(x.data) if x.data.dtype.kind == "f" else np.zeros(x.data.shape, bool))


def isneginf(x) -> Tensor:
    """True where x is -inf."""
    return Tensor._wrap(np.isneginf(x.data) if x.data.dtype.kind == "f" else np.zeros(x.data.shape, bool))


def isreal(x) -> Tensor:
    """True where the imaginary part is 0."""
    a = x.data
    return Tensor._wrap(np.isreal(a) if a.dtype.kind == "c" else np.ones(a.shape, bool))


def isclose(a, b, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Tensor:
    """|a - b| <= atol + rtol |b|, elementwise."""
    a, b = binary_operands(a, b)
    return Tensor._wrap(np.isclose(a.data, b.data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def rsub(x, other, alpha=1) -> Tensor:
    """other - alpha * x"""
    return ew.sub(other, ew.mul(x, alpha) if alpha != 1 else x)


def positive(x) -> Tensor:
    """x itself."""
    return x


# torch's alternative spellings
absolute, negative, multiply, subtract, fix = ew.abs, ew.neg, ew.mul, ew.sub, ew.trunc
divide = true_divide = ew.div


def addcmul(x, tensor1, tensor2, *, value=1) -> Tensor:
    """x + value * tensor1 * tensor2"""
    prod = ew.mul(tensor1, tensor2)
    return ew.add(x, ew.mul(prod, value) if value != 1 else prod)


def addcdiv(x, tensor1, tensor2, *, value=1) -> Tensor:
    """x + value * tensor1 / tensor2"""
    quot = ew.div(tensor1, tensor2)
    return ew.add(x, ew.mul(quot, value) if value != 1 else quot)


def sgn(x) -> Tensor:
    """sign for real tensors; z / |z| (0 at 0) for complex ones."""
    if x.data.dtype.kind != "c":
        return ew.sign(x)
    r = ew.abs(x)
    safe = ew.where(ew.eq(r, 0), 1.0, r)
    return ew.where(ew.eq(r, 0), 0.0, ew.div(x, safe.to(x.dtype)))


def ldexp(x, other) -> Tensor:
    """x * 2 ** other"""
    return ew.mul(_floating(x), ew.pow(2.0, as_tensor(other).to(_floating(x).dtype)))


def frexp(x):
    """(mantissa, exponent) with x = mantissa * 2 ** exponent and 0.5 <= |mantissa| < 1 (not differentiable)."""
    m, e = np.frexp(x.data)
    return Tensor._wrap(m), Tensor._wrap(e.astype(np.int32))


gcd = ew._no_grad_binary(np.gcd, "The greatest common divisor of integer tensors.")
lcm = ew._no_grad_binary(np.lcm, "The least common multiple of integer tensors.")
nextafter = ew._no_grad_binary(np.nextafter, "The next representable value after input towards other (not "
                                             "differentiable).")


def i0(x) -> Tensor:
    """The modified Bessel function of the first kind, order 0; its derivative is i1."""
    sp = _special()
    return Unary.apply(_floating(x), fn=sp.i0, derivative=lambda a, y: sp.i1(a))


def mvlgamma(x, p: int) -> Tensor:
    """The multivariate log-gamma function of dimension p: sum_i lgamma(x - i/2) + p(p-1)/4 log pi."""
    x = _floating(x)
    total = lgamma(x)
    for i in range(1, p):
        total = ew.add(total, lgamma(ew.sub(x, i / 2)))
    return ew.add(total, p * (p - 1) / 4 * math.log(math.pi))


def renorm(x, p, dim: int, maxnorm) -> Tensor:
    """Each slice along ``dim`` whose p-norm exceeds ``maxnorm`` scaled down to norm ``maxnorm``."""
    others = tuple(i for i in range(x.data.ndim) if i != dim % x.data.ndim)
    norms = reduce.norm(x, p, others, keepdim=True)
    scale = ew.where(ew.gt(norms, maxnorm), ew.div(maxnorm, ew.add(norms, 1e-7)), 1.0)
    return ew.mul(x, scale)
