"""scatter, scatter_reduce, index_add/copy/fill, masked_scatter, take, take_along_dim, masked_select,
nonzero/argwhere vs torch and gradcheck."""

import numpy as np
import pytest
import torch
from parity import check, gradcheck, randn

import neural_arch as na
from neural_arch.errors import DTypeError

X = randn(3, 4, seed=1)
SRC = randn(2, 4, seed=2)
IDX = np.array([[0, 2, 1, 0], [2, 0, 0, 1]], dtype=np.int64)  # distinct per column: scatter is deterministic
IDX_DUP = np.array([[0, 2, 0, 0], [0, 0, 0, 0]], dtype=np.int64)  # repeats: the reductions combine them
ROWS = np.array([2, 0], dtype=np.int64)
MASK = np.array([[True, False, True, False], [False, False, True, True], [True, False, False, False]])

CASES = [
    ("scatter", lambda m, x, s: m.scatter(x, 0, torch_or_na(m, IDX), s), [X, SRC]),
    ("scatter_value", lambda m, x: x.scatter(1, torch_or_na(m, IDX[:, :2]), 1.5), [X]),
    ("scatter_method_add", lambda m, x, s: x.scatter(0, torch_or_na(m, IDX_DUP), s, reduce="add"), [X, SRC]),
    ("index_add", lambda m, x, s: m.index_add(x, 0, torch_or_na(m, ROWS), s, alpha=2.0), [X, SRC]),
    ("index_add_dup", lambda m, x, s: x.index_add(1, torch_or_na(m, np.array([1, 1])), s.T[:3]), [X, SRC]),
    ("index_copy", lambda m, x, s: m.index_copy(x, 0, torch_or_na(m, ROWS), s), [X, SRC]),
    ("index_fill", lambda m, x: m.index_fill(x, 1, torch_or_na(m, np.array([0, 3])), -2.0), [X]),
    ("masked_scatter", lambda m, x, s: x.masked_scatter(torch_or_na(m, MASK), s), [X, randn(8, seed=3)]),
    ("take", lambda m, x: m.take(x, torch_or_na(m, np.array([[0, 11], [5, 5]]))), [X]),
    ("take_along_dim", lambda m, x: m.take_along_dim(x, torch_or_na(m, np.argsort(X, 1)), 1), [X]),
    ("take_along_dim_bcast", lambda m, x: m.take_along_dim(x, torch_or_na(m, np.array([[0], [2]])), 0), [X]),
    ("take_along_dim_flat", lambda m, x: m.take_along_dim(x, torch_or_na(m, np.array([3, 1]))), [X]),
    ("masked_select", lambda m, x: m.masked_select(x, torch_or_na(m, MASK)), [X]),
    ("masked_select_bcast", lambda m, x: x.masked_select(torch_or_na(m, MASK[0])), [X]),
]


def torch_or_na(m, a):
    return torch.from_numpy(a) if m is torch else na.tensor(a)


@pytest.mark.parametrize("name,fn,ins", CASES, ids=[c[0] for c in CASES])
def test_scatter_family(name, fn, ins):
    # torch has no derivative for scatter's legacy reduce=: values against torch, gradients by gradcheck
    check(lambda *xs: fn(na, *xs), ins, torch_fn=lambda *xs: fn(torch, *xs), grad=name != "scatter_method_add")
    gradcheck(lambda *xs: fn(na, *xs), ins)


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce(reduce, include_self):
    src = randn(2, 4, seed=2) + np.array([0, 0, 0.0, 0])
    for idx in (IDX, IDX_DUP):
        def fn(m, x, s, idx=idx):
            return m.scatter_reduce(x, 0, torch_or_na(m, idx), s, reduce, include_self=include_self)
        check(lambda x, s: fn(na, x, s), [X, src], torch_fn=lambda x, s: fn(torch, x, s))
        gradcheck(lambda x, s: fn(na, x, s), [X, src])


def test_scatter_reduce_prod_with_zeros_and_ints():
    x = np.array([[1.0, 0.0], [2.0, 3.0]])
    s = np.array([[0.0, 2.0], [4.0, 0.0]])
    idx = np.zeros((2, 2), dtype=np.int64)
    check(lambda a, b: na.scatter_reduce(a, 0, na.tensor(idx), b, "prod"), [x, s],
          torch_fn=lambda a, b: torch.scatter_reduce(a, 0, torch.from_numpy(idx), b, "prod"))
    ints = np.array([[1, 5], [2, 3]], dtype=np.int64)
    check(lambda a: na.scatter_reduce(a, 0, na.tensor(idx), a, "amax", include_self=False), [ints],
          torch_fn=lambda a: torch.scatter_reduce(a, 0, torch.from_numpy(idx), a, "amax", include_self=False),
          grad=False)


def test_nonzero_argwhere():
    a = np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]])
    check(lambda x: na.nonzero(x), [a], torch_fn=torch.nonzero, grad=False)
    check(lambda x: x.nonzero(as_tuple=True), [a], grad=False)
    check(lambda x: na.argwhere(x), [a], torch_fn=torch.argwhere, grad=False)
    check(lambda x: na.nonzero(x), [np.array(2.0)], torch_fn=torch.nonzero, grad=False)


def test_errors():
    with pytest.raises(DTypeError, match="scatter_reduce: src dtype"):
        na.scatter_reduce(na.ones(2), 0, na.tensor([0]), na.ones(1, dtype="float64"), "sum")
    with pytest.raises(ValueError, match="reduce must be"):
        na.scatter_reduce(na.ones(2), 0, na.tensor([0]), na.ones(1), "max")
    x = na.zeros(3)
    x.scatter_(0, na.tensor([2]), na.ones(1))
    assert x.tolist() == [0.0, 0.0, 1.0]


PUT_CASES = [
    ("index_put", lambda m, x, v: m.index_put(x, (torch_or_na(m, np.array([0, 2])), torch_or_na(m, np.array([1, 3]))),
                                              v[0, :2]), [X, SRC]),
    ("index_put_accumulate", lambda m, x, v: x.index_put((torch_or_na(m, np.array([0, 0, 2])),),
                                                         v[:1].expand(3, 4), accumulate=True), [X, SRC]),
    ("index_put_rows_broadcast", lambda m, x, v: x.index_put((torch_or_na(m, np.array([1])),), v[0]), [X, SRC]),
    ("put", lambda m, x, v: x.put(torch_or_na(m, np.array([0, 5, 11])), v[0, :3]), [X, SRC]),
    ("put_accumulate", lambda m, x, v: m.put(x, torch_or_na(m, np.array([1, 1, 4])), v[1, :3], accumulate=True),
     [X, SRC]),
    ("select_scatter", lambda m, x, v: m.select_scatter(x, v[0], 0, 1), [X, SRC]),
    ("slice_scatter", lambda m, x, v: m.slice_scatter(x, v, 1, 1, 4, 2), [X, randn(3, 2, seed=5)]),
    ("slice_scatter_dim0", lambda m, x, v: x.slice_scatter(v, 0, 1), [X, SRC]),
]


@pytest.mark.parametrize("name,fn,ins", PUT_CASES, ids=[c[0] for c in PUT_CASES])
def test_put_family(name, fn, ins):
    check(lambda *xs: fn(na, *xs), ins, torch_fn=lambda *xs: fn(torch, *xs))
    gradcheck(lambda *xs: fn(na, *xs), ins)
