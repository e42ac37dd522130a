"""Statistics and counting: nansum, nanmean, aminmax, cov, corrcoef (composites of
reductions, so differentiable), and bincount, histogram, isin (integer/boolean results)."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import get_default_dtype
from neural_arch.errors import DTypeError, ShapeError, shape_str
from neural_arch.ops import elementwise as ew
from neural_arch.ops import reduce

__all__ = ["aminmax", "bincount", "corrcoef", "cov", "histogram", "isin", "nanmean", "nansum"]

AminmaxResult = namedtuple("aminmax", ["min", "max"])
HistogramResult = namedtuple("histogram", ["hist", "bin_edges"])


def nansum(x: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum treating NaN as zero (the gradient at a NaN is zero)."""
    if x.data.dtype.kind != "f":
        return reduce.sum(x, dim, keepdim, dtype=dtype)
    return reduce.sum(ew.where(ew.isnan(x), 0.0, x), dim, keepdim, dtype=dtype)


def nanmean(x: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean over the non-NaN elements."""
    if x.data.dtype.kind != "f":
        raise DTypeError(f"nanmean: needs a floating-point input, got {x.dtype}")
    count = reduce.sum(Tensor._wrap((~np.isnan(x.data)).astype(x.data.dtype)), dim, keepdim)
    return ew.div(nansum(x, dim, keepdim), count)


def aminmax(x: Tensor, *, dim=None, keepdim: bool = False):
    """(min, max) over ``dim`` (all elements by default)."""
    return AminmaxResult(reduce.amin(x, dim, keepdim), reduce.amax(x, dim, keepdim))


def cov(x: Tensor, *, correction: int = 1, fweights=None, aweights=None) -> Tensor:
    """The covariance matrix of the variables in the rows of x (observations in the columns)."""
    if x.data.ndim > 2:
        raise ShapeError(f"cov: expects a 1-d or 2-d tensor, got {shape_str(x.shape)}")
    if x.data.ndim < 2:
        x = x.reshape(1, -1)
    if x.data.dtype.kind != "f":
        x = x.to(get_default_dtype())
    n = x.data.shape[1]
    w = None
    if fweights is not None:
        w = fweights if isinstance(fweights, Tensor) else Tensor(np.asarray(fweights))
        w = w.to(x.dtype)
    if aweights is not None:
        a = aweights if isinstance(aweights, Tensor) else Tensor(np.asarray(aweights, dtype=x.data.dtype))
        w = a if w is None else ew.mul(w, a)
    if w is None:
        w_sum = float(n)
        avg = reduce.mean(x, 1, keepdim=True)
        norm = w_sum - correction
    else:
        w_sum = reduce.sum(w)
        avg = ew.div(reduce.sum(ew.mul(x, w), 1, keepdim=True), w_sum)
        if correction == 0:
            norm = w_sum
        elif aweights is None:
            norm = ew.sub(w_sum, correction)
        else:
            norm = ew.sub(w_sum, ew.div(ew.mul(reduce.sum(ew.mul(w, a)), correction), w_sum))
    centered = ew.sub(x, avg)
    weighted = centered if w is None else ew.mul(centered, w)
    out = ew.div(weighted @ centered.mT, norm if isinstance(norm, Tensor) else max(norm, 0))
    return out.reshape(()) if out.shape == (1, 1) else out


def corrcoef(x: Tensor) -> Tensor:
    """Pearson correlation coefficients between the rows of x (clipped into [-1, 1] as torch)."""
    c = cov(x)
    if c.data.ndim == 0:
        return ew.div(c, c)
    std = ew.sqrt(c.diagonal())
    c = ew.div(ew.div(c, std.reshape(-1, 1)), std.reshape(1, -1))
    return ew.clamp(c, -1, 1)


def bincount(x: Tensor, weights=None, minlength: int = 0) -> Tensor:
    """Occurrences of each value 0..max(x) in a 1-d non-negative integer tensor (summed ``weights``)."""
    a = x.data
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise DTypeError(f"bincount: expects a 1-d integer tensor, got {x.dtype} {shape_str(x.shape)}")
    if a.size and a.min() < 0:
        raise ValueError("bincount: values must be non-negative")
    if weights is None:
        return Tensor._wrap(np.bincount(a, minlength=minlength).astype(np.int64))
    w = weights.data if isinstance(weights, Tensor) else np.asarray(weights)
    out = np.bincount(a, weights=w, minlength=minlength)
    return Tensor._wrap(out.astype(w.dtype if w.dtype.kind == "f" else np.float64))


def histogram(x: Tensor, bins=100, *, range=None, weight=None, density: bool = False):  # noqa: A002
    """(hist, bin_edges) of the flattened input, as numpy.histogram (floating input)."""
    a = x.data
    if a.dtype.kind != "f":
        raise DTypeError(f"histogram: needs a floating-point input, got {x.dtype}")
    b = bins.data if isinstance(bins, Tensor) else bins
    w = weight.data if isinstance(weight, Tensor) else weight
    hist, edges = np.histogram(a.reshape(-1), bins=b, range=range, weights=None if w is None else w.reshape(-1),
                               density=density)
    return HistogramResult(Tensor._wrap(hist.astype(a.dtype)), Tensor._wrap(edges.astype(a.dtype)))


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False) -> Tensor:
    """True where an element of ``elements`` occurs in ``test_elements``."""
    e = elements.data if isinstance(elements, Tensor) else np.asarray(elements)
    t = test_elements.data if isinstance(test_elements, Tensor) else np.asarray(test_elements)
    return Tensor._wrap(np.isin(e, t, assume_unique=assume_unique, invert=invert))
