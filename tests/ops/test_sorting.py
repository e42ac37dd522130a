"""sort, argsort, topk, kthvalue, median, mode, quantile, cummax/cummin, unique, searchsorted,
bucketize, histc vs torch (values, indices and gradients)."""

import numpy as np
import pytest
import torch
from parity import check, gradcheck, randn

import neural_arch as na
from neural_arch.errors import IndexingError

X = randn(3, 5, seed=1)  # distinct values: ties would make the indices arbitrary in torch

CASES = [
    ("sort", lambda m, x: m.sort(x, 1)),
    ("sort_desc", lambda m, x: m.sort(x, 0, descending=True)),
    ("sort_method", lambda m, x: x.sort(dim=-1, descending=True)),
    ("argsort", lambda m, x: m.argsort(x, 1, descending=True)),
    ("msort", lambda m, x: m.msort(x)),
    ("topk", lambda m, x: m.topk(x, 2)),
    ("topk_smallest_dim0", lambda m, x: x.topk(2, dim=0, largest=False)),
    ("kthvalue", lambda m, x: m.kthvalue(x, 2, 1)),
    ("kthvalue_keepdim", lambda m, x: x.kthvalue(3, 0, keepdim=True)),
    ("median_all", lambda m, x: m.median(x)),
    ("median_dim", lambda m, x: m.median(x, 1)),
    ("median_even_keepdim", lambda m, x: x[:, :4].median(dim=1, keepdim=True)),
    ("nanmedian_dim", lambda m, x: m.nanmedian(x, 0)),
    ("quantile", lambda m, x: m.quantile(x, 0.3)),
    ("quantile_dim", lambda m, x: m.quantile(x, 0.7, dim=1, keepdim=True)),
    ("quantile_vector_q", lambda m, x: m.quantile(x, m.tensor([0.1, 0.5, 0.9], dtype=x.dtype), dim=0)),
    ("quantile_lower", lambda m, x: m.quantile(x, 0.4, 1, interpolation="lower")),
    ("quantile_higher", lambda m, x: m.quantile(x, 0.4, 1, interpolation="higher")),
    ("quantile_midpoint", lambda m, x: m.quantile(x, 0.4, 1, interpolation="midpoint")),
    ("quantile_nearest", lambda m, x: m.quantile(x, 0.4, 1, interpolation="nearest")),
    ("nanquantile", lambda m, x: m.nanquantile(x, 0.25, dim=1)),
    ("cummax", lambda m, x: m.cummax(x, 1)),
    ("cummin", lambda m, x: x.cummin(0)),
]


@pytest.mark.parametrize("name,fn", CASES, ids=[c[0] for c in CASES])
def test_sorting_parity_and_gradcheck(name, fn):
    check(lambda x: fn(na, x), [X], torch_fn=lambda x: fn(torch, x))
    first = (lambda x: fn(na, x)[0]) if isinstance(fn(na, na.tensor(X)), tuple) else (lambda x: fn(na, x))
    if first(na.tensor(X)).is_floating_point():
        gradcheck(first, [X])


def test_ties_nan_and_zero_d():
    ties = np.array([[1.0, 3.0, 3.0, 2.0, 3.0], [2.0, 2.0, 1.0, 1.0, 1.0]])
    for fn in (lambda m, x: m.sort(x, 1), lambda m, x: m.sort(x, dim=1, descending=True, stable=True),
               lambda m, x: m.cummax(x, 1), lambda m, x: m.cummin(x, 1), lambda m, x: m.mode(x, 1),
               lambda m, x: m.mode(x, 0)):
        check(lambda x: fn(na, x), [ties], torch_fn=lambda x: fn(torch, x))
    nan = np.array([[1.0, np.nan, 3.0, np.inf, 2.0], [0.5, 1.5, -1.0, 4.0, 2.0]])
    for fn in (lambda m, x: m.sort(x, 1), lambda m, x: m.sort(x, 1, descending=True),
               lambda m, x: m.cummax(x, 1), lambda m, x: m.cummin(x, 1), lambda m, x: m.median(x, 1),
               lambda m, x: m.nanmedian(x, 1), lambda m, x: m.quantile(x, 0.5, 1),
               lambda m, x: m.nanquantile(x, 0.5, 1), lambda m, x: m.median(x)):
        check(lambda x: fn(na, x), [nan], torch_fn=lambda x: fn(torch, x), grad=False)
    z = np.array(2.5)
    for fn in (lambda m, x: m.sort(x), lambda m, x: m.topk(x, 1), lambda m, x: m.kthvalue(x, 1),
               lambda m, x: m.median(x, 0), lambda m, x: m.cummax(x, 0)):
        check(lambda x: fn(na, x), [z], torch_fn=lambda x: fn(torch, x))


def test_integer_inputs_and_named_fields():
    a = np.array([[4, 1, 3], [2, 9, 0]], dtype=np.int64)
    check(lambda x: x.sort(1, descending=True), [a], grad=False)
    check(lambda x: x.topk(2), [a], grad=False)
    out = na.topk(na.tensor([1.0, 5.0, 3.0]), 2)
    assert out.values.tolist() == [5.0, 3.0] and out.indices.tolist() == [1, 2]
    assert type(out).__name__ == "topk"


@pytest.mark.parametrize("kw", [{}, {"return_inverse": True}, {"return_counts": True},
                                {"return_inverse": True, "return_counts": True}, {"dim": 0}, {"dim": 1},
                                {"dim": 0, "return_inverse": True, "return_counts": True}])
def test_unique(kw):
    a = np.array([[1, 2, 2], [1, 2, 2], [0, 5, 1]], dtype=np.int64)
    check(lambda x: na.unique(x, **kw), [a], torch_fn=lambda x: torch.unique(x, **kw), grad=False)
    check(lambda x: na.unique_consecutive(x, **kw), [a], torch_fn=lambda x: torch.unique_consecutive(x, **kw),
          grad=False)
    check(lambda x: x.unique(**kw), [a.astype(np.float64)], grad=False)


def test_searchsorted_bucketize_histc():
    seq = np.array([[1.0, 3.0, 5.0, 7.0], [0.0, 2.0, 4.0, 8.0]])
    vals = np.array([[3.0, 6.0, 9.0], [0.0, 4.0, 1.0]])
    for kw in ({}, {"right": True}, {"side": "right"}, {"out_int32": True}):
        check(lambda s, v: na.searchsorted(s, v, **kw), [seq, vals],
              torch_fn=lambda s, v: torch.searchsorted(s, v, **kw), grad=False)
        check(lambda s, v: na.searchsorted(s[0], v, **kw), [seq, vals],
              torch_fn=lambda s, v: torch.searchsorted(s[0], v, **kw), grad=False)
    bounds = np.array([1.0, 3.0, 5.0])
    for right in (False, True):
        check(lambda x, b: na.bucketize(x, b, right=right), [vals * 1.0 + np.array([[0, 1, 0]]), bounds],
              torch_fn=lambda x, b: torch.bucketize(x, b, right=right), grad=False)
    data = randn(50, seed=3)
    check(lambda x: na.histc(x, bins=7), [data], torch_fn=lambda x: torch.histc(x, bins=7), grad=False)
    check(lambda x: x.histc(bins=4, min=-1, max=1), [data], grad=False)


def test_errors():
    with pytest.raises(IndexingError, match="topk: k=4 is out of range for a dim of size 3"):
        na.topk(na.ones(3), 4)
    with pytest.raises(IndexingError, match="kthvalue: k=0"):
        na.kthvalue(na.ones(3), 0)
    with pytest.raises(ValueError, match="quantile: q must be"):
        na.quantile(na.ones(3), 1.5)
