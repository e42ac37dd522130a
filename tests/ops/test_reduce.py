"""Reductions: parity with torch (forward, backward, float64/float32) and gradcheck."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes
from parity import check, gradcheck, rand_pos, randn

import neural_arch as na
from neural_arch.errors import DTypeError, IndexingError, ShapeError

REDUCE = {  # name: (fn, maker); the same lambda runs in torch and in neural-arch
    "sum": (lambda x: x.sum(), randn),
    "sum_dim": (lambda x: x.sum(1), randn),
    "sum_dims_keep": (lambda x: x.sum((0, 2), keepdim=True), randn),
    "sum_neg_dim": (lambda x: x.sum(-1), randn),
    "mean": (lambda x: x.mean(), randn),
    "mean_dims": (lambda x: x.mean((0, -1)), randn),
    "mean_keep": (lambda x: x.mean(1, keepdim=True), randn),
    "prod": (lambda x: x.prod(), rand_pos),
    "prod_dim": (lambda x: x.prod(1), randn),
    "prod_keep": (lambda x: x.prod(-1, keepdim=True), randn),
    "var": (lambda x: x.var(), randn),
    "var_dim": (lambda x: x.var(1), randn),
    "var_corr0": (lambda x: x.var((0, 2), correction=0, keepdim=True), randn),
    "var_corr2": (lambda x: x.var(2, correction=2), randn),
    "std": (lambda x: x.std(), randn),
    "std_dim": (lambda x: x.std(0, keepdim=True), randn),
    "amax": (lambda x: x.amax(), randn),
    "amax_dims": (lambda x: x.amax((0, 2)), randn),
    "amin_keep": (lambda x: x.amin(1, keepdim=True), randn),
    "max_all": (lambda x: x.max(), randn),
    "min_all": (lambda x: x.min(), randn),
    "max_dim": (lambda x: x.max(1), randn),
    "min_dim_keep": (lambda x: x.min(-1, keepdim=True), randn),
    "logsumexp": (lambda x: x.logsumexp(1), randn),
    "logsumexp_dims": (lambda x: x.logsumexp((0, 2), keepdim=True), randn),
    "cumsum": (lambda x: x.cumsum(1), randn),
    "cumsum_last": (lambda x: x.cumsum(-1), randn),
    "norm": (lambda x: x.norm(), randn),
    "norm_dim": (lambda x: x.norm(dim=1), randn),
    "norm_p1": (lambda x: x.norm(p=1, dim=-1), randn),
    "norm_p3": (lambda x: x.norm(p=3, dim=(0, 1), keepdim=True), randn),
    "norm_inf": (lambda x: x.norm(p=float("inf"), dim=1), randn),
}


@pytest.mark.parametrize("name", sorted(REDUCE))
def test_reduce_parity(name):
    fn, make = REDUCE[name]
    check(fn, [make(2, 3, 4, seed=1)])


@pytest.mark.parametrize("name", sorted(REDUCE))
def test_reduce_parity_noncontiguous(name):
    fn, make = REDUCE[name]
    check(fn, [make(3, 4, 5, seed=2)], noncontig=True)


@pytest.mark.parametrize("name", sorted(REDUCE))
def test_reduce_gradcheck(name):
    fn, make = REDUCE[name]
    gradcheck(fn, [make(2, 3, 4, seed=3)])


@pytest.mark.parametrize("fn", [lambda x: x.sum(), lambda x: x.mean(), lambda x: x.prod(), lambda x: x.amax(),
                                lambda x: x.logsumexp(0), lambda x: x.cumsum(0), lambda x: x.norm(),
                                lambda x: x.max(), lambda x: x.max(0), lambda x: x.sum(0)])
def test_reduce_scalars(fn):
    check(fn, [randn(seed=4)])


@pytest.mark.parametrize("fn", [lambda x: x.sum(0), lambda x: x.sum(), lambda x: x.mean(1), lambda x: x.prod(0),
                                lambda x: x.cumsum(0), lambda x: x.logsumexp(1), lambda x: x.amax(1),
                                lambda x: x.norm(dim=1)])
def test_reduce_empty_dims(fn):
    check(fn, [randn(0, 3, seed=5)])


@settings(max_examples=20, deadline=None)
@given(array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4), st.data())
def test_reductions_over_random_dims_hypothesis(shape, data):
    nd = len(shape)
    dims = data.draw(st.lists(st.integers(-nd, nd - 1), min_size=1, max_size=nd, unique_by=lambda d: d % nd))
    keep = data.draw(st.booleans())
    dims = tuple(dims)
    x = randn(*shape, seed=6)
    check(lambda t: t.sum(dims, keepdim=keep) + t.mean(dims, keepdim=keep) * t.amax(dims, keepdim=keep), [x])
    check(lambda t: t.logsumexp(dims, keepdim=keep), [x])


def test_logsumexp_large_magnitudes_and_neg_inf_masks():
    big = np.array([[1e4, 1e4 - 1, -1e4], [-1e4, -1e4 - 2, -1e4 - 5]])
    # float64 only: in float32 torch's backward exp(x - logsumexp) loses digits at |x| = 1e4 (ours: e / sum e)
    check(lambda x: x.logsumexp(1), [big], dtypes=(np.float64,))
    check(lambda x: x.logsumexp(1), [big / 100])
    mask = np.array([[False, True, True], [True, True, True]])  # second row fully masked
    check(lambda x: x.masked_fill(na.tensor(mask), float("-inf")).logsumexp(1),
          [randn(2, 3, seed=1)],
          torch_fn=lambda x: x.masked_fill(torch.tensor(mask), float("-inf")).logsumexp(1))


def test_prod_backward_with_zeros_matches_torch():
    a = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 2.0], [1.0, 2.0, 3.0], [4.0, 0.0, -1.0]])
    check(lambda x: x.prod(1), [a])
    check(lambda x: x.prod(0, keepdim=True), [a])
    check(lambda x: x.prod(), [np.array([2.0, 0.0, 3.0, 4.0])])  # one zero: only its grad survives
    check(lambda x: x.prod(), [np.array([2.0, 0.0, 3.0, 0.0])])  # two zeros: all grads 0
    gradcheck(lambda x: x.prod(1), [a])


def test_max_min_ties_vs_torch():
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, -1.0, 0.0]])
    # amax / max() over all: the gradient is split evenly among the ties
    check(lambda x: x.amax(1), [a])
    check(lambda x: x.amin(1), [a])
    check(lambda x: x.max(), [a])
    check(lambda x: x.min(), [a])
    # max(dim): the whole gradient goes to the returned index (the first maximum, as torch's CPU kernel)
    check(lambda x: x.max(1), [a])
    check(lambda x: x.min(0), [a])
    ours = na.tensor(a).max(1)
    assert ours.indices.dtype == np.int64
    np.testing.assert_array_equal(ours.indices.numpy(), torch.tensor(a).max(1).indices.numpy())


def test_max_returns_named_tuple_and_elementwise_form():
    x = na.tensor([[1.0, 5.0], [7.0, 2.0]])
    values, indices = x.max(dim=0)
    assert values.tolist() == [7.0, 5.0] and indices.tolist() == [1, 0]
    assert x.max(0).values.tolist() == [7.0, 5.0]
    assert na.max(x, na.tensor([3.0, 3.0])).tolist() == [[3.0, 5.0], [7.0, 3.0]]


@pytest.mark.parametrize("correction", [2, 3])
@pytest.mark.parametrize("dim", [None, 1])
def test_var_with_correction_at_least_n_matches_torch(correction, dim):
    a = np.array([[1.0, 2.0], [3.0, 3.0]])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that the degrees of freedom are <= 0
        check(lambda x: x.var(dim, correction=correction), [a])
        check(lambda x: x.std(dim, correction=correction), [a])


def test_var_unbiased_flag_and_var_mean():
    a = randn(3, 4, seed=1)
    check(lambda x: x.var(1, unbiased=False), [a], torch_fn=lambda x: x.var(1, unbiased=False))
    v, m = na.var_mean(na.tensor(a), 1)
    tv, tm = torch.var_mean(torch.tensor(a), 1)
    np.testing.assert_allclose(v.numpy(), tv.numpy())
    np.testing.assert_allclose(m.numpy(), tm.numpy())


def test_argmax_argmin_and_boolean_reductions():
    a = randn(3, 4, seed=2)
    t = torch.tensor(a)
    x = na.tensor(a)
    assert x.argmax().item() == t.argmax().item()
    np.testing.assert_array_equal(x.argmax(1).numpy(), t.argmax(1).numpy())
    np.testing.assert_array_equal(x.argmin(0, keepdim=True).numpy(), t.argmin(0, keepdim=True).numpy())
    assert x.argmax(1).dtype == np.int64
    np.testing.assert_array_equal((x > 0).all(1).numpy(), (t > 0).all(1).numpy())
    np.testing.assert_array_equal((x > 0).any(0).numpy(), (t > 0).any(0).numpy())
    assert (x > 0).count_nonzero().item() == torch.count_nonzero(t > 0).item()


def test_integer_sum_is_int64_and_mean_of_int_raises():
    x = na.tensor([1, 2, 3], dtype="int32")
    assert x.sum().dtype == np.int64 and x.sum().item() == 6
    assert na.tensor([True, True]).sum().item() == 2
    with pytest.raises(DTypeError, match="mean"):
        x.mean()
    assert x.mean(dtype="float64").item() == 2.0


def test_reduce_errors():
    x = na.randn(2, 3)
    with pytest.raises(IndexingError, match="sum: dim 2 is out of range"):
        x.sum(2)
    with pytest.raises(ShapeError, match=r"amax: cannot reduce over an empty dimension \(input shape \(0, 3\)\)"):
        na.zeros(0, 3).amax(0)
    with pytest.raises(ShapeError, match="max"):
        na.zeros(0, 3).max(0)
