"""Sorting and order statistics: sort, argsort, topk, kthvalue, median, mode,
quantile, cummax/cummin, unique, searchsorted, bucketize, histc.

Every op that returns values picked from its input finds the *indices* on
the raw array first and then takes the values with ``Gather`` (index.py), so
the gradient is Gather's: dL/dy scatter-added back to the positions it came
from. There is no separate backward to get wrong. Ops that return
(values, indices) give a named tuple, as torch does (``.values``, ``.indices``).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from neural_arch.autograd.autocast import FP32, autocast_args
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import get_default_dtype
from neural_arch.errors import DTypeError, IndexingError, ShapeError, shape_str
from neural_arch.ops import elementwise as ew
from neural_arch.ops._dims import normalize_dims
from neural_arch.ops.index import Gather
from neural_arch.ops.shape import reshape, stack

__all__ = [
    "argsort", "bucketize", "cummax", "cummin", "histc", "kthvalue", "median", "mode", "msort", "nanmedian",
    "nanquantile", "quantile", "searchsorted", "sort", "topk", "unique", "unique_consecutive",
]


def _result(name):
    return namedtuple(name, ["values", "indices"])


SortResult, TopKResult, KthValueResult = _result("sort"), _result("topk"), _result("kthvalue")
MedianResult, ModeResult = _result("median"), _result("mode")
CumMaxResult, CumMinResult = _result("cummax"), _result("cummin")


def _axis(x: Tensor, dim: int, op: str) -> int:
    return normalize_dims(dim, x.data.ndim, op)[0] if x.data.ndim else 0


def _take(x: Tensor, idx: np.ndarray, axis: int) -> Tensor:
    """x's values at ``idx`` along ``axis``; the gradient scatters back (Gather)."""
    return Gather.apply(x, index=idx, axis=axis)


def _as_1d(x: Tensor):
    """0-d tensors are sorted as one-element vectors (torch allows dim 0 / -1 there)."""
    return reshape(x, (1,)) if x.data.ndim == 0 else x


def _back(t: Tensor, zero_d: bool) -> Tensor:
    return reshape(t, ()) if zero_d else t


def _sort_key(a: np.ndarray, descending: bool) -> np.ndarray:
    """An array whose stable ascending order is torch's order (NaN counts as the largest value)."""
    if a.dtype == np.bool_:
        a = a.astype(np.int8)
    if not descending:
        return a
    if a.dtype.kind == "f":
        return np.where(np.isnan(a), -np.inf, -a.astype(np.float64))
    if a.dtype.kind == "u":
        return np.iinfo(a.dtype).max - a
    return -a.astype(np.int64)


def _argsort(a: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    return np.argsort(_sort_key(a, descending), axis=axis, kind="stable")


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) along ``dim``. Always stable: equal elements keep their order."""
    axis = _axis(x, dim, "sort")
    zero_d, x1 = x.data.ndim == 0, _as_1d(x)
    idx = _argsort(x1.data, axis, descending)
    return SortResult(_back(_take(x1, idx, axis), zero_d), _back(Tensor._wrap(idx.astype(np.int64)), zero_d))


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort ``x`` along ``dim`` (``sort(...).indices``)."""
    return sort(x, dim, descending, stable).indices


def msort(x: Tensor) -> Tensor:
    """Sorted along dim 0 (values only)."""
    return sort(x, 0).values


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """The ``k`` largest (or smallest) elements along ``dim`` and their indices, largest first."""
    axis = _axis(x, dim, "topk")
    zero_d, x1 = x.data.ndim == 0, _as_1d(x)
    n = x1.data.shape[axis]
    if not 0 <= k <= n:
        raise IndexingError(f"topk: k={k} is out of range for a dim of size {n}")
    idx = np.take(_argsort(x1.data, axis, largest), np.arange(k), axis=axis)
    return TopKResult(_back(_take(x1, idx, axis), zero_d), _back(Tensor._wrap(idx.astype(np.int64)), zero_d))


def _select(x: Tensor, idx: np.ndarray, axis: int, keepdim: bool, zero_d: bool, result):
    """Values and indices of one position per row (``idx`` keeps the reduced axis with size 1)."""
    values = _take(x, idx, axis)
    indices = Tensor._wrap(idx.astype(np.int64))
    if zero_d:
        return result(reshape(values, ()), reshape(indices, ()))
    if not keepdim:
        shape = tuple(s for i, s in enumerate(values.data.shape) if i != axis)
        values, indices = reshape(values, shape), reshape(indices, shape)
    return result(values, indices)


def kthvalue(x: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    """The k-th smallest element along ``dim`` (k counts from 1) and its index."""
    axis = _axis(x, dim, "kthvalue")
    zero_d, x1 = x.data.ndim == 0, _as_1d(x)
    n = x1.data.shape[axis]
    if not 1 <= k <= n:
        raise IndexingError(f"kthvalue: k={k} is out of range for a dim of size {n} (k counts from 1)")
    idx = np.take(_argsort(x1.data, axis, False), [k - 1], axis=axis)
    return _select(x1, idx, axis, keepdim, zero_d, KthValueResult)


def _median(x: Tensor, dim, keepdim: bool, ignore_nan: bool, op: str):
    if dim is None:  # over all elements: the value only
        flat = reshape(x, (-1,))
        if flat.data.size == 0:
            raise ShapeError(f"{op}: cannot take the median of an empty tensor")
        return reshape(_median(flat, 0, False, ignore_nan, op).values, ())
    axis = _axis(x, dim, op)
    zero_d, x1 = x.data.ndim == 0, _as_1d(x)
    a = x1.data
    if a.shape[axis] == 0:
        raise ShapeError(f"{op}: cannot reduce over an empty dim (input shape {shape_str(x.shape)})")
    order = _argsort(a, axis, False)  # NaN sorts last
    if ignore_nan and a.dtype.kind == "f":
        valid = (~np.isnan(a)).sum(axis=axis, keepdims=True)
        pos = np.maximum(valid - 1, 0) // 2  # the lower median of the non-NaN values (NaN if none)
    else:
        n = a.shape[axis]
        has_nan = np.isnan(a).any(axis=axis, keepdims=True) if a.dtype.kind == "f" else False
        pos = np.where(has_nan, n - 1, (n - 1) // 2)  # torch: a row with a NaN has median NaN
        pos = np.broadcast_to(pos, order.take([0], axis=axis).shape)
    idx = np.take_along_axis(order, pos.astype(np.intp), axis=axis)
    if not ignore_nan and a.dtype.kind == "f":  # the index torch reports for a NaN row is the first NaN's
        first_nan = np.argmax(np.isnan(a), axis=axis)
        idx = np.where(has_nan, np.expand_dims(first_nan, axis), idx)
    return _select(x1, idx, axis, keepdim, zero_d, MedianResult)


def median(x: Tensor, dim=None, keepdim: bool = False):
    """The lower median (of an even count, the smaller of the two middle values), as torch.

    ``median(x)`` -> a 0-d tensor; ``median(x, dim)`` -> (values, indices). A row with a NaN has median NaN.
    """
    return _median(x, dim, keepdim, False, "median")


def nanmedian(x: Tensor, dim=None, keepdim: bool = False):
    """``median`` that ignores NaN (a row of NaNs only gives NaN)."""
    return _median(x, dim, keepdim, True, "nanmedian")


def mode(x: Tensor, dim: int = -1, keepdim: bool = False):
    """The most frequent value along ``dim`` (the smallest one on a tie) and the last index where it occurs."""
    axis = _axis(x, dim, "mode")
    zero_d, x1 = x.data.ndim == 0, _as_1d(x)
    a = np.moveaxis(x1.data, axis, -1)
    rows = a.reshape(-1, a.shape[-1])
    if rows.shape[-1] == 0:
        raise ShapeError(f"mode: cannot reduce over an empty dim (input shape {shape_str(x.shape)})")
    picks = np.empty(rows.shape[0], dtype=np.int64)
    for r, row in enumerate(rows):
        values, counts = np.unique(row, return_counts=True)
        best = values[np.argmax(counts)]  # np.unique sorts, argmax takes the first: the smallest on a tie
        picks[r] = np.flatnonzero(row == best)[-1]
    idx = np.expand_dims(picks.reshape(a.shape[:-1]), axis)
    return _select(x1, idx, axis, keepdim, zero_d, ModeResult)


def _cumulative(x: Tensor, dim: int, use_min: bool, result):
    axis = _axis(x, dim, "cummin" if use_min else "cummax")
    zero_d, x1 = x.data.ndim == 0, _as_1d(x)
    a = x1.data
    running = (np.minimum if use_min else np.maximum).accumulate(a, axis=axis)
    pos = np.arange(a.shape[axis]).reshape([-1 if d == axis else 1 for d in range(a.ndim)])
    # the latest position holding the running extreme (torch takes the last of equal values); once a
    # NaN appears the running value is NaN, at the latest NaN's position
    hit = (a == running) | (np.isnan(a) if a.dtype.kind == "f" else False)
    idx = np.maximum.accumulate(np.where(hit, pos, 0), axis=axis)
    values, indices = _take(x1, idx, axis), Tensor._wrap(idx.astype(np.int64))
    return result(_back(values, zero_d), _back(indices, zero_d))


def cummax(x: Tensor, dim: int):
    """Running maximum along ``dim`` and where each running maximum was found."""
    return _cumulative(x, dim, False, CumMaxResult)


def cummin(x: Tensor, dim: int):
    """Running minimum along ``dim`` and where each running minimum was found."""
    return _cumulative(x, dim, True, CumMinResult)


# -- quantiles ---------------------------------------------------------------------------------------
def _quantile(x: Tensor, q, dim, keepdim: bool, interpolation: str, ignore_nan: bool, op: str) -> Tensor:
    (x,) = autocast_args(FP32, x)  # on torch's float32 list: cast before the dtype check
    if x.data.dtype.kind != "f":
        raise DTypeError(f"{op}: needs a floating-point input, got {x.dtype}")
    qs = np.asarray(q.data if isinstance(q, Tensor) else q, dtype=np.float64)
    if qs.ndim > 1 or (qs.size and (qs.min() < 0 or qs.max() > 1)):
        raise ValueError(f"{op}: q must be a scalar or 1-d with values in [0, 1], got {qs.tolist()}")
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise ValueError(f"{op}: interpolation must be linear, lower, higher, midpoint or nearest, "
                         f"got {interpolation!r}")
    src, axis = (reshape(x, (-1,)), 0) if dim is None else (_as_1d(x), _axis(x, dim, op))
    a = src.data
    n = a.shape[axis]
    if n == 0:
        raise ShapeError(f"{op}: cannot take a quantile over an empty dim (input shape {shape_str(x.shape)})")
    order = _argsort(a, axis, False)
    nans = np.isnan(a).sum(axis=axis, keepdims=True)
    count = (n - nans) if ignore_nan else np.full_like(nans, n)
    outs = []
    for qv in qs.reshape(-1):
        pos = qv * (count - 1).astype(np.float64)
        lo, hi = np.floor(pos), np.ceil(pos)
        if interpolation == "nearest":
            lo = hi = np.round(pos)  # half to even, as torch
        elif interpolation == "lower":
            hi = lo
        elif interpolation == "higher":
            lo = hi
        weight = pos - lo if interpolation == "linear" else np.full_like(pos, 0.5 if interpolation == "midpoint" else 0)
        # a row with a NaN (or, for nanquantile, with nothing but NaNs) gives NaN: point at the NaN
        bad = (nans > 0) if not ignore_nan else (count == 0)
        lo = np.where(bad, n - 1, np.clip(lo, 0, n - 1)).astype(np.intp)
        hi = np.where(bad, n - 1, np.clip(hi, 0, n - 1)).astype(np.intp)
        vlo = _take(src, np.take_along_axis(order, lo, axis=axis), axis)
        vhi = _take(src, np.take_along_axis(order, hi, axis=axis), axis)
        w = Tensor._wrap(weight.astype(a.dtype))
        out = ew.add(vlo, ew.mul(w, ew.sub(vhi, vlo)))  # lerp(lo, hi, w)
        if dim is None:
            out = reshape(out, [1] * x.data.ndim if keepdim else [])
        elif not keepdim or x.data.ndim == 0:
            out = reshape(out, [s for i, s in enumerate(out.data.shape) if i != axis])
        outs.append(out)
    return outs[0] if qs.ndim == 0 else stack(outs, 0)


def quantile(x: Tensor, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear") -> Tensor:
    """The ``q``-quantiles along ``dim`` (all elements by default); a 1-d ``q`` adds a leading dim."""
    return _quantile(x, q, dim, keepdim, interpolation, False, "quantile")


def nanquantile(x: Tensor, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear") -> Tensor:
    """``quantile`` that ignores NaN."""
    return _quantile(x, q, dim, keepdim, interpolation, True, "nanquantile")


# -- not differentiable: unique, searchsorted, bucketize, histc ----------------------------------------
def unique(x: Tensor, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False,  # noqa: A002
           dim=None):
    """The distinct elements (or, with ``dim``, distinct slices along ``dim``), sorted.

    Returns the tensor alone or a tuple (output, inverse indices, counts) as torch does.
    """
    a = x.data
    axis = None if dim is None else _axis(x, dim, "unique")
    out, inverse, counts = np.unique(a, return_inverse=True, return_counts=True, axis=axis)
    return _unique_result(out, inverse.reshape(a.shape if dim is None else -1), counts, return_inverse, return_counts)


def _unique_result(out, inverse, counts, return_inverse, return_counts):
    result = [Tensor._wrap(out)]
    if return_inverse:
        result.append(Tensor._wrap(inverse.astype(np.int64)))
    if return_counts:
        result.append(Tensor._wrap(counts.astype(np.int64)))
    return result[0] if len(result) == 1 else tuple(result)


def unique_consecutive(x: Tensor, return_inverse: bool = False, return_counts: bool = False, dim=None):
    """Collapse runs of equal consecutive elements (or slices along ``dim``) to one."""
    a = x.data
    flat, axis = (a.reshape(-1), 0) if dim is None else (a, _axis(x, dim, "unique_consecutive"))
    moved = np.moveaxis(flat, axis, 0)
    n = moved.shape[0]
    if n == 0:
        starts = np.zeros(0, dtype=bool)
    else:
        changed = (moved[1:] != moved[:-1]).reshape(n - 1, -1).any(axis=1)
        starts = np.concatenate([[True], changed])
    out = np.moveaxis(moved[starts], 0, axis)
    inverse = np.cumsum(starts) - 1
    counts = np.diff(np.append(np.flatnonzero(starts), n))
    if dim is None:
        inverse = inverse.reshape(a.shape)
    return _unique_result(out, inverse, counts, return_inverse, return_counts)


def searchsorted(sorted_sequence, values, *, out_int32: bool = False, right: bool = False, side=None,
                 sorter=None) -> Tensor:
    """Indices where ``values`` would be inserted into the last dim of ``sorted_sequence`` to keep it sorted."""
    seq = sorted_sequence.data if isinstance(sorted_sequence, Tensor) else np.asarray(sorted_sequence)
    vals = values.data if isinstance(values, Tensor) else np.asarray(values)
    if side is not None:
        if side not in ("left", "right"):
            raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise ValueError("searchsorted: side='left' contradicts right=True")
        right = side == "right"
    if sorter is not None:
        seq = np.take_along_axis(seq, np.asarray(sorter.data if isinstance(sorter, Tensor) else sorter), -1)
    how = "right" if right else "left"
    if seq.ndim <= 1:
        out = np.searchsorted(seq, vals, side=how)
    else:
        if seq.shape[:-1] != vals.shape[:-1]:
            raise ShapeError(f"searchsorted: the leading dims of sorted_sequence {shape_str(seq.shape)} and values "
                             f"{shape_str(vals.shape)} must match")
        rows_s, rows_v = seq.reshape(-1, seq.shape[-1]), vals.reshape(-1, vals.shape[-1])
        out = np.stack([np.searchsorted(s, v, side=how) for s, v in zip(rows_s, rows_v)]).reshape(vals.shape)
    return Tensor._wrap(np.asarray(out, dtype=np.int32 if out_int32 else np.int64))


def bucketize(x, boundaries, *, out_int32: bool = False, right: bool = False) -> Tensor:
    """The bucket of each element: i with boundaries[i-1] < x <= boundaries[i] (``right``: <= x <)."""
    b = boundaries.data if isinstance(boundaries, Tensor) else np.asarray(boundaries)
    if b.ndim != 1:
        raise ShapeError(f"bucketize: boundaries must be 1-d, got {shape_str(b.shape)}")
    a = x.data if isinstance(x, Tensor) else np.asarray(x)
    out = np.searchsorted(b, a, side="right" if right else "left")
    return Tensor._wrap(np.asarray(out, dtype=np.int32 if out_int32 else np.int64))


def histc(x: Tensor, bins: int = 100, min=0, max=0) -> Tensor:  # noqa: A002
    """Counts in ``bins`` equal-width bins over [min, max] (the data's range when min = max); elements
    outside are ignored. The result has the input's (floating) dtype."""
    a = x.data
    if a.dtype.kind != "f":
        raise DTypeError(f"histc: needs a floating-point input, got {x.dtype}")
    lo, hi = float(min), float(max)
    if lo == hi and a.size:
        lo, hi = float(a.min()), float(a.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise ValueError(f"histc: max ({hi}) must be larger than min ({lo})")
    counts, _ = np.histogram(a[np.isfinite(a)], bins=bins, range=(lo, hi))
    return Tensor._wrap(counts.astype(a.dtype if a.dtype.kind == "f" else get_default_dtype()))
