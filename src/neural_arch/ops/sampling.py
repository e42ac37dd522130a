"""Random sampling from tensors of parameters: bernoulli, multinomial, poisson,
normal (tensor mean/std), standard_gamma (differentiable), and the in-place fillers behind ``x.uniform_()``,
``x.normal_()``, ``x.bernoulli_()``, ``x.exponential_()``.

All draw from our seeded generator (``backend/random.py``: the default one, or
``generator=``), so ``na.manual_seed`` makes them reproducible. Only
``standard_gamma`` is differentiable (as torch's ``_standard_gamma``); the
``distributions`` build their reparameterised ``rsample`` on it and on ``randn``.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import get_default_dtype
from neural_arch.backend.random import get_generator
from neural_arch.errors import DTypeError, ShapeError, shape_str
from neural_arch.ops import creation
from neural_arch.ops._operands import array_of, floating
from neural_arch.ops.pointwise import _special

__all__ = ["bernoulli", "multinomial", "normal", "poisson", "standard_gamma"]


def bernoulli(x: Tensor, p=None, *, generator=None) -> Tensor:
    """1 with probability ``x`` (or ``p``) per element, else 0, in x's dtype."""
    probs = np.broadcast_to(array_of(p), x.data.shape) if p is not None else x.data
    if probs.size and (np.nanmin(probs) < 0 or np.nanmax(probs) > 1):
        raise ValueError("bernoulli: probabilities must lie in [0, 1]")
    draw = get_generator(generator).random(probs.shape)
    dtype = x.data.dtype if x.data.dtype.kind == "f" else get_default_dtype()
    return Tensor._wrap((draw < probs).astype(dtype))


def multinomial(x: Tensor, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Draw ``num_samples`` category indices per row from the (unnormalised) weights in x (1-d or 2-d)."""
    w = x.data.astype(np.float64)
    if w.ndim not in (1, 2):
        raise ShapeError(f"multinomial: expects a 1-d or 2-d tensor of weights, got {shape_str(x.shape)}")
    rows = w.reshape(-1, w.shape[-1])
    if (rows < 0).any() or not np.isfinite(rows).all():
        raise ValueError("multinomial: weights must be finite and non-negative")
    if (rows.sum(axis=1) == 0).any():
        raise ValueError("multinomial: a row of weights sums to zero")
    if not replacement and num_samples > (rows > 0).sum(axis=1).min():
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement from "
                         f"{int((rows > 0).sum(axis=1).min())} categories with non-zero weight")
    g = get_generator(generator)
    out = np.empty((rows.shape[0], num_samples), dtype=np.int64)
    for r, row in enumerate(rows):
        out[r] = g.choice(row.size, size=num_samples, replace=replacement, p=row / row.sum())
    return Tensor._wrap(out.reshape(w.shape[:-1] + (num_samples,)))


def poisson(rates: Tensor, generator=None) -> Tensor:
    """A Poisson count per element with the given rates, in the rates' dtype."""
    if rates.data.dtype.kind != "f":
        raise DTypeError(f"poisson: rates must be floating point, got {rates.dtype}")
    return Tensor._wrap(get_generator(generator).poisson(rates.data).astype(rates.data.dtype))


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None) -> Tensor:
    """Normal draws: ``normal(mean_tensor, std_tensor)`` elementwise (shapes broadcast), or
    ``normal(mean, std, size)`` with numbers."""
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        return creation.normal(mean, std, size if size is not None else (), generator=generator, dtype=dtype,
                               device=device)
    m, s = array_of(mean), array_of(std)
    ref = mean if isinstance(mean, Tensor) else std
    d = ref.data.dtype if ref.data.dtype.kind == "f" else get_default_dtype()
    shape = np.broadcast_shapes(m.shape, s.shape)
    return Tensor._wrap((m + s * get_generator(generator).standard_normal(shape)).astype(d))


# -- in-place fillers (Tensor methods; uniform_ and normal_ are in ops/inplace.py) -------------------
def _fill(x: Tensor, values) -> Tensor:
    x.data[...] = values
    return x


def bernoulli_(x: Tensor, p=0.5, *, generator=None) -> Tensor:
    """Fill x with 0/1 draws, 1 with probability p."""
    probs = np.broadcast_to(array_of(p), x.data.shape)
    return _fill(x, get_generator(generator).random(x.data.shape) < probs)


def exponential_(x: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    """Fill x with exponential draws of rate ``lambd``."""
    return _fill(x, get_generator(generator).exponential(1.0 / lambd, x.data.shape))


def geometric_(x: Tensor, p: float, *, generator=None) -> Tensor:
    """Fill x with the number of trials up to the first success (>= 1)."""
    return _fill(x, get_generator(generator).geometric(p, x.data.shape))


def cauchy_(x: Tensor, median: float = 0.0, sigma: float = 1.0, *, generator=None) -> Tensor:
    """Fill x with Cauchy draws."""
    return _fill(x, median + sigma * get_generator(generator).standard_cauchy(x.data.shape))


def log_normal_(x: Tensor, mean: float = 1.0, std: float = 2.0, *, generator=None) -> Tensor:
    """Fill x with log-normal draws (mean/std of the log)."""
    return _fill(x, get_generator(generator).lognormal(mean, std, x.data.shape))


def random_(x: Tensor, low: int = 0, high=None, *, generator=None) -> Tensor:
    """Fill x with integers uniform on [low, high) (``random_(high)``: [0, high))."""
    if high is None:
        low, high = 0, low if low else (2 ** 24 if x.data.dtype.kind == "f" else np.iinfo(x.data.dtype).max)
    return _fill(x, get_generator(generator).integers(low, high, x.data.shape))


# -- a differentiable draw: Gamma's implicit reparameterisation -----------------------------------------------
class StandardGamma(Function):
    """x ~ Gamma(alpha, 1)
    dx/dalpha = -(dF/dalpha)(x; alpha) / f(x; alpha)     (the implicit reparameterisation gradient, as torch:
    x moves with alpha so that its CDF value F(x; alpha) stays fixed; f is the density, dF/dalpha a central
    difference of SciPy's regularised incomplete gamma function)."""

    half = "unsupported"

    @staticmethod
    def forward(ctx, alpha, generator):
        x = get_generator(generator).standard_gamma(alpha).astype(alpha.dtype)
        x = np.maximum(x, np.finfo(alpha.dtype).tiny)  # as torch: never exactly 0
        ctx.save_for_backward(x, alpha)
        return x

    @staticmethod
    def backward(ctx, grad):
        x, alpha = ctx.saved_tensors
        return grad * standard_gamma_grad(x.astype(np.float64), alpha.astype(np.float64)).astype(grad.dtype)


def standard_gamma_grad(x, alpha):
    """d x / d alpha for x ~ Gamma(alpha, 1) at fixed CDF value (see ``StandardGamma``)."""
    sp = _special()
    h = 1e-5 * np.maximum(alpha, 1.0)
    dcdf = (sp.gammainc(alpha + h, x) - sp.gammainc(alpha - h, x)) / (2 * h)
    log_pdf = (alpha - 1) * np.log(x) - x - sp.gammaln(alpha)
    return -dcdf / np.exp(log_pdf)


def standard_gamma(alpha: Tensor, generator=None) -> Tensor:
    """Gamma(alpha, 1) draws, one per element of ``alpha``, differentiable in alpha (implicit reparameterisation)."""
    return StandardGamma.apply(floating(alpha, "standard_gamma"), generator=generator)
