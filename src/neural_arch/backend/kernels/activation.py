"""Activations: gelu (exact and tanh), silu (and quick_gelu), sigmoid, relu.

Each array function returns what its op's Function needs. ``gelu`` and ``silu`` take
``with_grad``: when a gradient will be needed they also return dy/dx, computed in the same pass
as y (it shares the exp/erf work), so that backward is one multiply, g dy/dx.

NumPy has no ``erf``: the twins use :func:`erf` / :func:`ndtr` below, the rational approximations
of the Cephes library (S. L. Moshier), accurate to a few units in the last place of float64. The
kernels use a float32 polynomial (:func:`normal_cdf_and_gauss`).
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend.kernels import half
from neural_arch.backend.kernels._dispatch import dispatch
from neural_arch.backend.kernels._jit import EXACT, FAST, FAST_SIGNED, F, expf, f32, fit, inline, kernel, sigmoidf
from neural_arch.backend.threads import policy

INV_SQRT_2PI = 0.3989422804014327
SQRT_2_OVER_PI = 0.7978845608028654
SQRT_HALF = 0.7071067811865476

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
    z = x * SQRT_HALF

    def tails(v):
        c = 0.5 * _erfc_large(np.abs(v))
        return np.where(v > 0, 1 - c, c)

    return _piecewise(z, np.abs(z) < 1, lambda v: 0.5 + 0.5 * _erf_small(v), tails)


def sigmoid_array(x):
    """1 / (1 + e^-x) in x's dtype. For x below about -88 (float32) e^-x overflows to inf and y is 0,
    its correct value, so the overflow warning is silenced (the two-branch np.where form is slower)."""
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-x))).astype(x.dtype, copy=False)


def softplus_array(x):
    """log(1 + e^x) without overflow: max(x, 0) + log1p(e^{-|x|})."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


# -- gelu -----------------------------------------------------------------------------------------------
def _gelu(x, tanh, with_grad):
    """(y, dy/dx or None); exact y = x Phi(x), dy/dx = Phi(x) + x phi(x); tanh form
    y = x (1 + t) / 2, t = tanh(c (x + 0.044715 x^3)), dy/dx = (1 + t)/2 + x (1 - t^2) c (1 + 3 0.044715 x^2) / 2"""
    if tanh:
        t = np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x)))
        y = 0.5 * x * (1 + t)
        if not with_grad:
            return y, None
        return y, 0.5 * (1 + t) + (0.5 * SQRT_2_OVER_PI) * x * (1 - t * t) * (1 + 3 * 0.044715 * (x * x))
    cdf = ndtr(x)
    if not with_grad:
        return x * cdf, None
    with np.errstate(under="ignore"):
        pdf = INV_SQRT_2PI * np.exp(-0.5 * (x * x))
    return x * cdf, cdf + x * pdf


@inline(FAST)
def normal_cdf_and_gauss(v):
    """Phi(v) and e^{-v^2/2}, sharing one exp.

    With z = |v| / sqrt 2 and t = 1 / (1 + z/2):  erfc(z) = t Q(t) e^{-z^2},  and e^{-z^2} = e^{-v^2/2},
    where Q(t) = erfc(z) e^{z^2} / t is smooth on t in (0, 1]: a degree-10 polynomial fitted for this
    project (least squares of Q(t) / math's value against 1 on 4,000 Chebyshev nodes of (0, 1]):
    relative error 1.1e-8 in float64, 1.5e-7 evaluated in float32.
    Phi(v) = erfc(-v / sqrt 2) / 2 is erfc(z)/2 for v < 0, so the negative tail keeps its relative
    accuracy, and 1 - erfc(z)/2 for v >= 0."""
    z = abs(v) * F(SQRT_HALF)
    t = F(1.0) / (F(1.0) + F(0.5) * z)
    q = F(0.0432648752616789)
    q = q * t + F(-0.2350824295115305)
    q = q * t + F(0.49444094997904203)
    q = q * t + F(-0.45585929265329367)
    q = q * t + F(0.13281390360250722)
    q = q * t + F(-0.059496137603873483)
    q = q * t + F(0.0935404495187872)
    q = q * t + F(0.1753035745675804)
    q = q * t + F(0.2468855979364667)
    q = q * t + F(0.282093717965603)
    q = q * t + F(0.282094795668681)
    gauss = expf(F(-0.5) * v * v)
    half_erfc = F(0.5) * t * q * gauss
    return (half_erfc if v < F(0.0) else F(1.0) - half_erfc), gauss


@kernel(FAST_SIGNED, rows=(0, 1))
def gelu_forward(x, out):
    for i in range(x.size):
        v = f32(x[i])
        cdf, _ = normal_cdf_and_gauss(v)
        out[i] = fit(out, v * cdf)


@kernel(FAST_SIGNED, rows=(0, 1, 2))
def gelu_forward_with_grad(x, out, deriv):
    for i in range(x.size):
        v = f32(x[i])
        cdf, gauss = normal_cdf_and_gauss(v)
        out[i] = fit(out, v * cdf)
        deriv[i] = cdf + v * gauss * F(INV_SQRT_2PI)


@kernel(FAST, rows=(0, 1))
def gelu_tanh_forward(x, out):
    """y = x sigmoid(2u): the sigmoid form has no cancellation in the negative tail, where tanh u -> -1"""
    for i in range(x.size):
        v = f32(x[i])
        out[i] = fit(out, v * sigmoidf(F(2.0 * SQRT_2_OVER_PI) * (v + F(0.044715) * v * v * v)))


@inline(FAST)
def _gelu_tanh_and_slope(v):
    """(s, dy/dx) for y = x s: dy/dx = s + 2 x s (1 - s) du/dx,  s = sigmoid(2u),
    du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2); one spelling for the forward and the backward kernel."""
    s = sigmoidf(F(2.0 * SQRT_2_OVER_PI) * (v + F(0.044715) * v * v * v))
    du = F(SQRT_2_OVER_PI) * (F(1.0) + F(0.134145) * v * v)
    return s, s + F(2.0) * v * s * (F(1.0) - s) * du


@kernel(FAST, rows=(0, 1, 2))
def gelu_tanh_forward_with_grad(x, out, deriv):
    """y = x s and dy/dx (``_gelu_tanh_and_slope``)"""
    for i in range(x.size):
        v = f32(x[i])
        s, slope = _gelu_tanh_and_slope(v)
        out[i] = fit(out, v * s)
        deriv[i] = slope


def _map(kern, x, *args, with_grad=False):
    """Run ``kern(x_flat, *args, out_flat[, deriv_flat])``; returns (out, deriv or None) shaped like x.
    A bfloat16 ``x`` goes in as its bits and gives a bfloat16 ``out`` (rounded once, in the kernel) and a
    float32 ``deriv`` (what the float32 op would keep for backward, so backward is unchanged)."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    flat_x, flat_out = half.bits(x.reshape(-1)), half.bits(out.reshape(-1))
    if not with_grad:
        kern(flat_x, *args, flat_out)
        return out, None
    deriv = np.empty(x.shape, np.float32)
    kern(flat_x, *args, flat_out, deriv.reshape(-1))
    return out, deriv


@dispatch(half.widened(_gelu), first=half.KERNEL_DTYPES)
def gelu(x, tanh, with_grad):
    if with_grad:
        return _map(gelu_tanh_forward_with_grad if tanh else gelu_forward_with_grad, x, with_grad=True)
    return _map(gelu_tanh_forward if tanh else gelu_forward, x)


def _gelu_backward(x, g, tanh):
    """dx = g dy/dx, dy/dx recomputed from x (as ``_gelu``'s)"""
    return g * _gelu(x, tanh, True)[1]


@kernel(FAST_SIGNED, rows=(0, 1, 2))
def gelu_backward_kernel(x, g, dx):
    """dx = g (Phi(x) + x phi(x)), the derivative spelled as gelu_forward_with_grad's"""
    for i in range(x.size):
        v = f32(x[i])
        cdf, gauss = normal_cdf_and_gauss(v)
        dx[i] = fit(dx, f32(g[i]) * (cdf + v * gauss * F(INV_SQRT_2PI)))


@kernel(FAST, rows=(0, 1, 2))
def gelu_tanh_backward_kernel(x, g, dx):
    """dx = g dy/dx, the derivative spelled as gelu_tanh_forward_with_grad's"""
    for i in range(x.size):
        dx[i] = fit(dx, f32(g[i]) * _gelu_tanh_and_slope(f32(x[i]))[1])


@dispatch(half.widened(_gelu_backward), first=half.KERNEL_DTYPES)
def gelu_backward(x, g, tanh):
    """x, g float32 or bfloat16 (each its own); dx in x's dtype, rounded once. For GELU on half inputs,
    whose backward recomputes dy/dx from the saved half x (as torch) instead of keeping it in float32."""
    if g.shape != x.shape:
        return half.widened(_gelu_backward)(x, g, tanh)
    x, g = np.ascontiguousarray(x), np.ascontiguousarray(g)
    dx = np.empty_like(x)
    kern = gelu_tanh_backward_kernel if tanh else gelu_backward_kernel
    kern(half.bits(x.reshape(-1)), half.bits(g.reshape(-1)), half.bits(dx.reshape(-1)))
    return dx


# -- silu ------------------------------------------------------------------------------------------------
def _silu(x, alpha, with_grad):
    """(y, dy/dx or None):  y = x s,  dy/dx = s + alpha x s (1 - s),  s = sigmoid(alpha x)"""
    s = sigmoid_array(x * alpha if alpha != 1 else x)
    y = x * s
    return y, (s + (alpha * x) * (s * (1 - s)) if with_grad else None)


@kernel(FAST, rows=(0, 2))
def silu_forward(x, alpha, out):
    for i in range(x.size):
        v = x[i]
        out[i] = v * sigmoidf(alpha * v)


@kernel(FAST, rows=(0, 2, 3))
def silu_forward_with_grad(x, alpha, out, deriv):
    for i in range(x.size):
        v = x[i]
        s = sigmoidf(alpha * v)
        out[i] = v * s
        deriv[i] = s + alpha * v * s * (F(1.0) - s)


@dispatch(_silu)
def silu(x, alpha, with_grad):
    return _map(silu_forward_with_grad if with_grad else silu_forward, x, np.float32(alpha), with_grad=with_grad)


# -- sigmoid ---------------------------------------------------------------------------------------------
@kernel(FAST, rows=(0, 1))
def sigmoid_forward(x, y):
    """expf clamps its argument: no overflow; a NaN x stays NaN"""
    for i in range(x.size):
        v = x[i]
        y[i] = v if np.isnan(v) else sigmoidf(v)


@dispatch(sigmoid_array)
def sigmoid(x):
    return _map(sigmoid_forward, x)[0]


def _sigmoid_backward(y, g):
    """dL/dx = g y (1 - y), y the forward's output"""
    return g * (y * (1 - y))


@kernel(FAST, rows=(0, 1, 2))
def sigmoid_backward_kernel(y, g, out):
    for i in range(y.size):
        out[i] = g[i] * (y[i] * (F(1.0) - y[i]))


@dispatch(_sigmoid_backward)
def sigmoid_backward(y, g):
    if type(g) is not np.ndarray or g.shape != y.shape:
        return _sigmoid_backward(y, g)
    out = np.empty_like(y)
    sigmoid_backward_kernel(y.reshape(-1), np.ascontiguousarray(g).reshape(-1), out.reshape(-1))
    return out


# -- relu ---------------------------------------------------------------------------------------------------
def _relu(x):
    """y = max(x, 0) (a NaN x stays NaN)"""
    return np.maximum(x, 0)


@kernel(EXACT, rows=(0, 1))
def relu_forward(x, y):
    """the test is "not x <= 0", so a NaN stays NaN as in np.maximum(x, 0) and torch"""
    for i in range(x.size):
        v = x[i]
        y[i] = F(0.0) if v <= F(0.0) else v


@dispatch(_relu, min_elements=policy.small_kernel_min_elements)  # (below it np.maximum's one call costs less)
def relu(x):
    if not x.flags.c_contiguous:
        return _relu(x)
    y = np.empty_like(x)
    relu_forward(x.reshape(-1), y.reshape(-1))
    return y


def _relu_backward(y, g):
    """dL/dx = g where y > 0, else 0 (y the forward's output; a NaN y gives 0)"""
    return g * (y > 0)


@kernel(EXACT, rows=(0, 1, 2))
def relu_backward_kernel(y, g, out):
    for i in range(y.size):
        out[i] = g[i] if y[i] > F(0.0) else F(0.0)


@dispatch(_relu_backward)
def relu_backward(y, g):
    if type(g) is not np.ndarray or g.shape != y.shape or not (g.flags.c_contiguous and y.flags.c_contiguous):
        return _relu_backward(y, g)
    out = np.empty_like(y)
    relu_backward_kernel(y.reshape(-1), g.reshape(-1), out.reshape(-1))
    return out
