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


def _named(module, names: str) -> dict:
    """``{name: module.name}`` for each of the space-separated ``names``: methods spelled as the op they call."""
    return {name: getattr(module, name) for name in names.split()}


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
    **_named(ew, "add sub mul div pow neg exp log log1p expm1 sqrt rsqrt abs sign sin cos tanh sigmoid clamp clip "
                 "maximum minimum floor ceil round trunc eq ne lt le gt ge logical_and logical_or logical_not "
                 "logical_xor isnan isinf isfinite allclose equal bitwise_and bitwise_or bitwise_xor bitwise_not"),
    "where": lambda self, cond, other: ew.where(cond, self, other),
    "greater": ew.gt, "greater_equal": ew.ge, "less": ew.lt, "less_equal": ew.le, "not_equal": ew.ne,
    **_named(reduce, "sum mean prod var std max min amax amin argmax argmin logsumexp cumsum norm all any "
                     "count_nonzero"),
    **_named(shape, "reshape view view_as reshape_as transpose swapaxes permute t squeeze unsqueeze expand "
                    "expand_as broadcast_to flatten unflatten repeat tile repeat_interleave split chunk unbind flip "
                    "roll tril triu"),
    **_named(index, "gather scatter_add index_select masked_fill narrow"),
    **_named(linalg, "matmul mm bmm dot outer"), "ger": linalg.outer, "mv": linalg.matmul,
    **_named(activation, "relu softmax log_softmax"),
    **_named(sorting, "sort argsort msort topk kthvalue median nanmedian mode quantile nanquantile cummax cummin "
                      "unique unique_consecutive histc"),
    **_named(products, "diagonal diag diag_embed diagflat trace addmm addbmm baddbmm addmv addr kron inner vdot cross "
                       "dist"),
    **_named(decomposition, "det slogdet"),
    **_named(matrix_functions, "logdet inverse pinverse matrix_power cholesky_solve cholesky_inverse lstsq matrix_exp "
                               "triangular_solve"),
    "cholesky": matrix_functions.old_cholesky, "svd": matrix_functions.old_svd, "qr": matrix_functions.old_qr,
    **_named(pointwise, "absolute acos acosh arccos arccosh arcsin arcsinh arctan arctan2 arctanh asin asinh atan "
                        "atan2 atanh clamp_max clamp_min copysign cosh deg2rad digamma divide erf erfc erfinv exp2 fix "
                        "float_power floor_divide fmax fmin fmod frac heaviside hypot isclose isneginf isposinf isreal "
                        "lerp lgamma log10 log2 logaddexp logaddexp2 logit multiply nan_to_num negative positive "
                        "rad2deg reciprocal remainder signbit sinc sinh square subtract tan true_divide xlogy addcmul "
                        "addcdiv sgn ldexp frexp gcd lcm nextafter i0 mvlgamma renorm"),
    "polygamma": lambda self, n: pointwise.polygamma(n, self),
    **_named(cumulative, "cumprod logcumsumexp diff"),
    **_named(layout, "rot90 fliplr flipud movedim moveaxis select tensor_split hsplit vsplit dsplit"),
    "swapdims": shape.transpose, "ravel": lambda self: shape.reshape(self, -1),
    **_named(scatter, "scatter scatter_reduce index_add index_copy index_fill masked_scatter masked_select take "
                      "take_along_dim nonzero argwhere index_put put select_scatter slice_scatter"),
    **_named(sampling, "bernoulli multinomial bernoulli_ exponential_ geometric_ cauchy_ log_normal_ random_"),
    "conj": cx.conj, "conj_physical": cx.conj, "resolve_conj": lambda self: self, "resolve_neg": lambda self: self,
    "angle": cx.angle, "is_complex": cx.is_complex, "is_conj": lambda self: False, "is_neg": lambda self: False,
    # the rest
    **_named(statistics, "nansum nanmean aminmax cov corrcoef bincount histogram"),
    "adjoint": lambda self: cx.conj(shape.mT(self)),
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
INPLACE = (
    "abs absolute acos acosh add addbmm addcdiv addcmul addmm addmv addr arccos arccosh arcsin arcsinh arctan "
    "arctan2 arctanh asin asinh atan atan2 atanh baddbmm bitwise_and bitwise_not bitwise_or bitwise_xor ceil clamp "
    "clamp_max clamp_min clip conj_physical copysign cos cosh cumprod cumsum deg2rad digamma div divide eq erf erfc "
    "erfinv exp exp2 expm1 fix float_power floor floor_divide fmod frac gcd ge greater greater_equal gt heaviside "
    "hypot i0 index_add index_copy index_fill index_put put lcm ldexp le lerp less less_equal lgamma log log10 "
    "log1p log2 logical_and logical_not logical_or logical_xor logit lt masked_fill masked_scatter mul multiply "
    "mvlgamma nan_to_num ne neg negative nextafter not_equal polygamma pow rad2deg reciprocal relu remainder renorm "
    "round rsqrt scatter scatter_add scatter_reduce sgn sigmoid sign sin sinc sinh sqrt square sub subtract tan "
    "tanh tril triu true_divide trunc xlogy"
).split()


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
