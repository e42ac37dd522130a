"""The one registration point: Tensor methods and Python operators -> ops.

``ops`` imports ``Tensor``; ``Tensor`` cannot import ``ops`` (lower layers
never import higher ones), so the methods are attached here, once, when
``neural_arch.ops`` is imported. Each entry maps a torch method name to the
functional op, so ``x.sum(1)`` is exactly ``ops.sum(x, 1)``.
"""

from __future__ import annotations

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import category
from neural_arch.errors import DTypeError, ShapeError, shape_str
from neural_arch.ops import elementwise as ew
from neural_arch.ops import activation, index, linalg, reduce, shape
from neural_arch.ops import inplace  # torch's in-place and new_* methods (add_, zero_, new_zeros, ...)


def _reflected(fn):
    return lambda self, other: fn(other, self)


def _inplace(fn, symbol: str):
    """``x += y`` and friends on tensors that need no grad: write into x's array."""

    def op(self, other):
        out = fn(self, other)
        if out.data.dtype != self.data.dtype:
            if category(out.data.dtype) > category(self.data.dtype):  # as torch: no silent truncation
                raise DTypeError(
                    f"in-place {fn.__name__}: the result is {out.dtype} and cannot be stored in this "
                    f"{self.dtype} tensor; use the out-of-place form (x = x {symbol} y)"
                )
            out = Tensor._wrap(out.data.astype(self.data.dtype))
        if out.data.shape != self.data.shape:
            raise ShapeError(
                f"in-place {fn.__name__}: the result has shape {shape_str(out.shape)}, which does not fit "
                f"this tensor's shape {shape_str(self.shape)}"
            )
        self[...] = out.data
        return self

    return op


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
}

PROPERTIES = {"T": shape.T, "mT": shape.mT}


def register() -> None:
    for name, fn in inplace.METHODS.items():
        setattr(Tensor, name, fn)
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)
    for name, fn in PROPERTIES.items():
        setattr(Tensor, name, property(fn))
