"""The one registration point: Tensor methods and Python operators -> ops.

``ops`` imports ``Tensor``; ``Tensor`` cannot import ``ops`` (lower layers
never import higher ones), so the methods are attached here, once, when
``neural_arch.ops`` is imported. Each entry maps a torch method name to the
functional op, so ``x.sum(1)`` is exactly ``ops.sum(x, 1)``.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.ops import (
    activation,
    cumulative,
    decomposition,
    index,
    inplace,  # store (behind every in-place method), zero_, fill_, new_zeros, ...
    layout,
    linalg,
    matrix_functions,
    pointwise,
    products,
    reduce,
    sampling,
    scatter,
    shape,
    sorting,
    statistics,
)
from neural_arch.ops import complex as cx
from neural_arch.ops import elementwise as ew


def _reflected(fn):
    return lambda self, other: fn(other, self)


def _inplace(fn, symbol: str):
    """``x += y`` and friends on tensors that need no grad: write into x's array (``inplace.store``)."""
    return lambda self, other: inplace.store(self, fn(self, other), f"in-place {fn.__name__}", f"x = x {symbol} y")


METHODS = {
    # operators
    "__add__": ew.add, "__radd__": _reflected(ew.add), "__sub__": ew.sub, "__rsub__": _reflected(ew.sub),
    "__mul__": ew.mul, "__rmul__": _reflected(ew.mul), "__truediv__": ew.div, "__rtruediv__": _reflected(ew.div),
    "__pow__": ew.pow, "__rpow__": _reflected(ew.pow), "__matmul__": linalg.matmul,
    "__rmatmul__": _reflected(linalg.matmul), "__neg__": ew.neg, "__pos__": lambda self: self,
    "__abs__": ew.abs, "__floordiv__": lambda a, b: ew.div(a, b, rounding_mode="floor"),
    "__mod__": lambda a, b: a - ew.div(a, b, rounding_mode="floor") * b,
    "__eq__": ew.eq, "__ne__": ew.ne, "__lt__": ew.lt, "__le__": ew.le, "__gt__": ew.gt, "__ge__": ew.ge,
    "__and__": ew.bitwise_and, "__or__": ew.bitwise_or, "__xor__": ew.bitwise_xor, "__invert__": ew.bitwise_not,
    "__rand__": _reflected(ew.bitwise_and), "__ror__": _reflected(ew.bitwise_or),
    "__iadd__": _inplace(ew.add, "+"), "__isub__": _inplace(ew.sub, "-"), "__imul__": _inplace(ew.mul, "*"),
    "__itruediv__": _inplace(ew.div, "/"), "__getitem__": index.getitem,
    # elementwise
    "add": ew.add, "sub": ew.sub, "mul": ew.mul, "div": ew.div, "pow": ew.pow, "neg": ew.neg, "exp": ew.exp,
    "log": ew.log, "log1p": ew.log1p, "expm1": ew.expm1, "sqrt": ew.sqrt, "rsqrt": ew.rsqrt, "abs": ew.abs,
    "sign": ew.sign, "sin": ew.sin, "cos": ew.cos, "tanh": ew.tanh, "sigmoid": ew.sigmoid, "clamp": ew.clamp,
    "clip": ew.clamp, "maximum": ew.maximum, "minimum": ew.minimum, "floor": ew.floor, "ceil": ew.ceil,
    "round": ew.round, "trunc": ew.trunc, "eq": ew.eq, "ne": ew.ne, "lt": ew.lt, "le": ew.le, "gt": ew.gt,
    "ge": ew.ge, "logical_and": ew.logical_and, "logical_or": ew.logical_or, "logical_not": ew.logical_not,
    "logical_xor": ew.logical_xor, "isnan": ew.isnan, "isinf": ew.isinf, "isfinite": ew.isfinite,
    "where": lambda self, cond, other: ew.where(cond, self, other), "allclose": ew.allclose, "equal": ew.equal,
    # reductions
    "sum": reduce.sum, "mean": reduce.mean, "prod": reduce.prod, "var": reduce.var, "std": reduce.std,
    "max": reduce.max, "min": reduce.min, "amax": reduce.amax, "amin": reduce.amin, "argmax": reduce.argmax,
    "argmin": reduce.argmin, "logsumexp": reduce.logsumexp, "cumsum": reduce.cumsum, "norm": reduce.norm,
    "all": reduce.all, "any": reduce.any, "count_nonzero": reduce.count_nonzero,
    # shape
    "reshape": shape.reshape, "view": shape.view, "view_as": shape.view_as, "reshape_as": shape.reshape_as,
    "transpose": shape.transpose, "swapaxes": shape.transpose, "permute": shape.permute, "t": shape.t,
    "squeeze": shape.squeeze, "unsqueeze": shape.unsqueeze, "expand": shape.expand,
    "expand_as": shape.expand_as, "broadcast_to": shape.broadcast_to, "flatten": shape.flatten,
    "unflatten": shape.unflatten, "repeat": shape.repeat, "tile": shape.tile,
    "repeat_interleave": shape.repeat_interleave, "split": shape.split, "chunk": shape.chunk,
    "unbind": shape.unbind, "flip": shape.flip, "roll": shape.roll, "tril": shape.tril, "triu": shape.triu,
    # indexing
    "gather": index.gather, "scatter_add": index.scatter_add, "index_select": index.index_select,
    "masked_fill": index.masked_fill, "narrow": index.narrow,
    # linear algebra
    "matmul": linalg.matmul, "mm": linalg.mm, "bmm": linalg.bmm, "dot": linalg.dot,
    # activations
    "relu": activation.relu, "softmax": activation.softmax, "log_softmax": activation.log_softmax,
    # sorting and order statistics
    "sort": sorting.sort, "argsort": sorting.argsort, "msort": sorting.msort, "topk": sorting.topk,
    "kthvalue": sorting.kthvalue, "median": sorting.median, "nanmedian": sorting.nanmedian, "mode": sorting.mode,
    "quantile": sorting.quantile, "nanquantile": sorting.nanquantile, "cummax": sorting.cummax,
    "cummin": sorting.cummin, "unique": sorting.unique, "unique_consecutive": sorting.unique_consecutive,
    "histc": sorting.histc,
    # diagonals, products and matrix functions
    "diagonal": products.diagonal, "diag": products.diag, "diag_embed": products.diag_embed,
    "diagflat": products.diagflat, "trace": products.trace, "addmm": products.addmm, "addbmm": products.addbmm,
    "baddbmm": products.baddbmm, "addmv": products.addmv, "addr": products.addr, "kron": products.kron,
    "inner": products.inner, "vdot": products.vdot, "cross": products.cross, "dist": products.dist,
    "det": decomposition.det, "slogdet": decomposition.slogdet, "logdet": matrix_functions.logdet,
    "inverse": matrix_functions.inverse, "pinverse": matrix_functions.pinverse,
    "matrix_power": matrix_functions.matrix_power, "cholesky": matrix_functions.old_cholesky,
    "cholesky_solve": matrix_functions.cholesky_solve, "cholesky_inverse": matrix_functions.cholesky_inverse,
    "svd": matrix_functions.old_svd, "qr": matrix_functions.old_qr, "outer": linalg.outer, "ger": linalg.outer,
    "mv": linalg.matmul, "lstsq": matrix_functions.lstsq,
    # more pointwise math
    **{name: getattr(pointwise, name) for name in (
        "absolute", "acos", "acosh", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh",
        "asin", "asinh", "atan", "atan2", "atanh", "clamp_max", "clamp_min", "copysign", "cosh", "deg2rad",
        "digamma", "divide", "erf", "erfc", "erfinv", "exp2", "fix", "float_power", "floor_divide", "fmax", "fmin",
        "fmod", "frac", "heaviside", "hypot", "isclose", "isneginf", "isposinf", "isreal", "lerp", "lgamma",
        "log10", "log2", "logaddexp", "logaddexp2", "logit", "multiply", "nan_to_num", "negative", "positive",
        "rad2deg", "reciprocal", "remainder", "signbit", "sinc", "sinh", "square", "subtract", "tan",
        "true_divide", "xlogy")},
    "polygamma": lambda self, n: pointwise.polygamma(n, self),
    "greater": ew.gt, "greater_equal": ew.ge, "less": ew.lt, "less_equal": ew.le, "not_equal": ew.ne,
    # cumulative
    "cumprod": cumulative.cumprod, "logcumsumexp": cumulative.logcumsumexp, "diff": cumulative.diff,
    # layout
    "rot90": layout.rot90, "fliplr": layout.fliplr, "flipud": layout.flipud, "movedim": layout.movedim,
    "moveaxis": layout.movedim, "select": layout.select, "tensor_split": layout.tensor_split,
    "hsplit": layout.hsplit, "vsplit": layout.vsplit, "dsplit": layout.dsplit, "swapdims": shape.transpose,
    "ravel": lambda self: shape.reshape(self, -1),
    # scatter and selection
    "scatter": scatter.scatter, "scatter_reduce": scatter.scatter_reduce, "index_add": scatter.index_add,
    "index_copy": scatter.index_copy, "index_fill": scatter.index_fill, "masked_scatter": scatter.masked_scatter,
    "masked_select": scatter.masked_select, "take": scatter.take, "take_along_dim": scatter.take_along_dim,
    "nonzero": scatter.nonzero, "argwhere": scatter.argwhere, "index_put": scatter.index_put, "put": scatter.put,
    "select_scatter": scatter.select_scatter, "slice_scatter": scatter.slice_scatter,
    # sampling
    "bernoulli": sampling.bernoulli, "multinomial": sampling.multinomial, "bernoulli_": sampling.bernoulli_,
    "exponential_": sampling.exponential_, "geometric_": sampling.geometric_, "cauchy_": sampling.cauchy_,
    "log_normal_": sampling.log_normal_, "random_": sampling.random_,
    # complex
    "conj": cx.conj, "conj_physical": cx.conj, "resolve_conj": lambda self: self, "resolve_neg": lambda self: self,
    "angle": cx.angle, "is_complex": cx.is_complex, "is_conj": lambda self: False, "is_neg": lambda self: False,
    # statistics and the rest
    "nansum": statistics.nansum, "nanmean": statistics.nanmean, "aminmax": statistics.aminmax,
    "cov": statistics.cov, "corrcoef": statistics.corrcoef, "bincount": statistics.bincount,
    "histogram": statistics.histogram, "addcmul": pointwise.addcmul, "addcdiv": pointwise.addcdiv,
    "sgn": pointwise.sgn, "ldexp": pointwise.ldexp, "frexp": pointwise.frexp, "gcd": pointwise.gcd,
    "lcm": pointwise.lcm, "nextafter": pointwise.nextafter, "i0": pointwise.i0, "mvlgamma": pointwise.mvlgamma,
    "renorm": pointwise.renorm, "matrix_exp": matrix_functions.matrix_exp,
    "adjoint": lambda self: cx.conj(shape.mT(self)),
    "triangular_solve": matrix_functions.triangular_solve, "bitwise_and": ew.bitwise_and,
    "bitwise_or": ew.bitwise_or, "bitwise_xor": ew.bitwise_xor, "bitwise_not": ew.bitwise_not,
    "type_as": lambda self, other: self.to(other.dtype), "ndimension": lambda self: self.data.ndim,
    "nelement": lambda self: self.data.size, "is_signed": lambda self: self.data.dtype.kind in "fic",
    "is_nonzero": lambda self: bool(self.item()), "is_same_size": lambda self, other: self.shape == other.shape,
    "split_with_sizes": lambda self, split_sizes, dim=0: shape.split(self, list(split_sizes), dim),
    "sum_to_size": lambda self, *size: _sum_to_size(self, size),
    "unfold": lambda self, dimension, size, step: _unfold(self, dimension, size, step),
    "itemsize": property(lambda self: self.data.dtype.itemsize), "nbytes": property(lambda self: self.data.nbytes),
    "is_cpu": property(lambda self: str(self.device) == "cpu"),
    "byte": lambda self: self.to("uint8"), "char": lambda self: self.to("int8"), "short": lambda self: self.to("int16"),
    "cfloat": lambda self: self.to("complex64"), "cdouble": lambda self: self.to("complex128"),
}


def _sum_to_size(self, size):
    size = shape._shape_arg(size)
    lead = self.data.ndim - len(size)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(size) if s == 1 and self.shape[lead + i] != 1)
    out = reduce.sum(self, axes, keepdim=True) if axes else self
    return shape.reshape(out, tuple(size))


def _unfold(self, dimension, size, step):
    """All slices of length ``size`` along ``dimension`` every ``step`` elements, as a new last dim."""
    d = dimension % max(self.data.ndim, 1)
    n = self.data.shape[d] if self.data.ndim else 1
    starts = range(0, n - size + 1, step)
    idx = np.array([[s + k for k in range(size)] for s in starts], dtype=np.int64).reshape(-1, size)
    picked = index.index_select(self, d, idx.reshape(-1))  # (..., windows * size, ...)
    new_shape = self.shape[:d] + (len(starts), size) + self.shape[d + 1:]
    return layout.movedim(shape.reshape(picked, new_shape), d + 1, -1)

# x.abs_(), x.clamp_(0, 1), x.scatter_(...): the out-of-place op, written back into x (tensors that need no grad)
INPLACE = [
    "abs", "absolute", "acos", "acosh", "add", "addbmm", "addcdiv", "addcmul", "addmm", "addmv", "addr", "arccos",
    "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh", "asin", "asinh", "atan", "atan2", "atanh",
    "baddbmm", "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor", "ceil", "clamp", "clamp_max",
    "clamp_min", "clip", "conj_physical", "copysign", "cos", "cosh", "cumprod", "cumsum", "deg2rad", "digamma",
    "div", "divide", "eq", "erf", "erfc", "erfinv", "exp", "exp2", "expm1", "fix", "float_power", "floor",
    "floor_divide", "fmod", "frac", "gcd", "ge", "greater", "greater_equal", "gt", "heaviside", "hypot", "i0",
    "index_add", "index_copy", "index_fill", "index_put", "put", "lcm", "ldexp", "le", "lerp", "less", "less_equal",
    "lgamma", "log", "log10", "log1p", "log2", "logical_and", "logical_not", "logical_or", "logical_xor", "logit", "lt",
    "masked_fill", "masked_scatter", "mul", "multiply", "mvlgamma", "nan_to_num", "ne", "neg", "negative",
    "nextafter", "not_equal", "polygamma", "pow", "rad2deg", "reciprocal", "relu", "remainder", "renorm", "round",
    "rsqrt", "scatter", "scatter_add", "scatter_reduce", "sgn", "sigmoid", "sign", "sin", "sinc", "sinh", "sqrt",
    "square", "sub", "subtract", "tan", "tanh", "tril", "triu", "true_divide", "trunc", "xlogy",
]


def _inplace_method(fn, name: str):
    def op(self, *args, **kwargs):
        return inplace.store(self, fn(self, *args, **kwargs), name + "_")

    op.__name__ = name + "_"
    op.__doc__ = f"In-place ``{name}``: the result is written into this tensor (which must not need grad)."
    return op

PROPERTIES = {"T": shape.T, "mT": shape.mT, "real": cx.real, "imag": cx.imag,
              "H": lambda self: cx.conj(shape.t(self)), "mH": lambda self: cx.conj(shape.mT(self))}


def register() -> None:
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)
    for name in INPLACE:  # x.op_() from x.op()
        setattr(Tensor, name + "_", _inplace_method(METHODS[name], name))
    for name, fn in inplace.METHODS.items():
        setattr(Tensor, name, fn)
    for name, fn in PROPERTIES.items():
        setattr(Tensor, name, property(fn))


def inplace_functions() -> dict:
    """torch's function forms of the in-place methods: ``torch.relu_(x)`` is ``x.relu_()``."""
    return {name + "_": getattr(Tensor, name + "_") for name in INPLACE}
