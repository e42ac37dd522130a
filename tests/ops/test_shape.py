"""Shape ops: parity with torch (forward, backward, float64/float32) and gradcheck."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes
from parity import check, gradcheck, randn

import neural_arch as na
from neural_arch.errors import IndexingError, ShapeError

SHAPE = {  # name: (fn, input shape); the same lambda runs in torch and in neural-arch
    "reshape": (lambda x: x.reshape(4, 6), (2, 3, 4)),
    "reshape_neg1": (lambda x: x.reshape(-1, 3), (2, 3, 4)),
    "view": (lambda x: x.view(6, 4), (2, 3, 4)),
    "transpose": (lambda x: x.transpose(0, 2), (2, 3, 4)),
    "transpose_neg": (lambda x: x.transpose(-1, -2), (2, 3, 4)),
    "permute": (lambda x: x.permute(2, 0, 1), (2, 3, 4)),
    "permute_neg": (lambda x: x.permute(-1, 0, 1), (2, 3, 4)),
    "T": (lambda x: x.T, (3, 4)),
    "mT": (lambda x: x.mT, (2, 3, 4)),
    "t": (lambda x: x.t(), (3, 4)),
    "squeeze": (lambda x: x.squeeze(), (1, 3, 1, 4)),
    "squeeze_dim": (lambda x: x.squeeze(2), (1, 3, 1, 4)),
    "squeeze_non1": (lambda x: x.squeeze(1), (1, 3, 1, 4)),
    "unsqueeze": (lambda x: x.unsqueeze(1), (3, 4)),
    "unsqueeze_neg": (lambda x: x.unsqueeze(-1), (3, 4)),
    "expand": (lambda x: x.expand(2, 3, 4), (3, 1)),
    "expand_neg1": (lambda x: x.expand(5, -1, 4), (3, 1)),
    "broadcast_to": (lambda x: x.broadcast_to((2, 3, 4)), (1, 4)),
    "flatten": (lambda x: x.flatten(), (2, 3, 4)),
    "flatten_range": (lambda x: x.flatten(1, 2), (2, 3, 4, 5)),
    "unflatten": (lambda x: x.unflatten(1, (3, 4)), (2, 12)),
    "repeat": (lambda x: x.repeat(2, 3), (3, 4)),
    "repeat_more_dims": (lambda x: x.repeat(2, 1, 3), (3, 4)),
    "tile": (lambda x: x.tile((2,)), (3, 4)),
    "repeat_interleave": (lambda x: x.repeat_interleave(2, dim=1), (3, 4)),
    "flip": (lambda x: x.flip(0), (3, 4)),
    "flip_dims": (lambda x: x.flip((0, -1)), (2, 3, 4)),
    "roll": (lambda x: x.roll(1, 0), (3, 4)),
    "roll_multi": (lambda x: x.roll((1, -2), (0, 1)), (3, 4)),
    "roll_none": (lambda x: x.roll(2), (3, 4)),
    "tril": (lambda x: x.tril(), (4, 4)),
    "triu_k": (lambda x: x.triu(1), (3, 5)),
    "tril_batched": (lambda x: x.tril(-1), (2, 4, 3)),
    "contiguous_after_T": (lambda x: x.T.contiguous() * 2, (3, 4)),
}


@pytest.mark.parametrize("name", sorted(SHAPE))
def test_shape_parity(name):
    fn, shape = SHAPE[name]
    check(fn, [randn(*shape, seed=1)])
    check(fn, [randn(*shape, seed=2)], noncontig=True)


@pytest.mark.parametrize("name", sorted(SHAPE))
def test_shape_gradcheck(name):
    fn, shape = SHAPE[name]
    gradcheck(fn, [randn(*shape, seed=3)])


JOIN = {
    "cat0": lambda x, y: torch_or_na(x).cat([x, y], 0),
    "cat_neg": lambda x, y: torch_or_na(x).cat([x, y[:2, :, :2] * 1.0], -1),
    "stack": lambda x, y: torch_or_na(x).stack([x, y[:2]], 1),
    "stack_neg": lambda x, y: torch_or_na(x).stack([x, y[:2], x], -1),
}


def torch_or_na(t):
    return torch if isinstance(t, torch.Tensor) else na


@pytest.mark.parametrize("name", sorted(JOIN))
def test_cat_stack_parity(name):
    check(JOIN[name], [randn(2, 3, 4, seed=1), randn(4, 3, 4, seed=2)])
    gradcheck(JOIN[name], [randn(2, 3, 4, seed=1), randn(4, 3, 4, seed=2)])


def test_cat_skips_empty_1d_tensors_and_promotes_mixed_dtypes():
    a = na.tensor([1, 2])
    b = na.ones(2)
    c = na.ones(2, dtype="float64")
    for tensors, ttensors in [([a, b], [torch.tensor([1, 2]), torch.ones(2)]),
                              ([b, c], [torch.ones(2), torch.ones(2, dtype=torch.float64)]),
                              ([a, b, c], [torch.tensor([1, 2]), torch.ones(2), torch.ones(2, dtype=torch.float64)]),
                              ([a, na.tensor([True])], [torch.tensor([1, 2]), torch.tensor([True])])]:
        ours, ref = na.cat(tensors), torch.cat(ttensors)
        assert str(ours.dtype) == str(ref.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    ours = na.cat([na.zeros(0), na.ones(2, 3)])  # torch's legacy rule: a (0,) tensor is skipped
    assert ours.shape == (2, 3)


def test_cat_gradient_flows_back_in_each_inputs_dtype():
    x = na.ones(2, requires_grad=True)
    y = na.ones(3, dtype="float64", requires_grad=True)
    na.cat([x, y]).backward(na.arange(5.0, dtype="float64"))
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [0.0, 1.0]
    assert y.grad.dtype == np.float64 and y.grad.tolist() == [2.0, 3.0, 4.0]


@pytest.mark.parametrize("n,arg,dim", [(5, 2, 0), (5, [1, 4], 0), (6, 3, 0), (7, 3, 1), (4, [0, 4], 1), (4, 10, 0)])
def test_split_parity(n, arg, dim):
    shape = (n, 3) if dim == 0 else (2, n)
    check(lambda x: x.split(arg, dim), [randn(*shape, seed=1)])
    gradcheck(lambda x: x.split(arg, dim), [randn(*shape, seed=1)])


@pytest.mark.parametrize("n,chunks", [(5, 3), (6, 4), (6, 3), (1, 3), (0, 3), (7, 7), (3, 5)])
def test_chunk_matches_torch(n, chunks):
    ours = na.arange(float(n)).chunk(chunks)
    ref = torch.arange(float(n)).chunk(chunks)
    assert [tuple(c.shape) for c in ours] == [tuple(c.shape) for c in ref]
    if n:
        check(lambda x: x.chunk(chunks), [randn(n, seed=2)])


def test_unbind_parity():
    check(lambda x: x.unbind(1), [randn(2, 3, seed=1)])
    gradcheck(lambda x: x.unbind(1), [randn(2, 3, seed=1)])
    gradcheck(lambda x: x.chunk(3, 1), [randn(2, 5, seed=1)])


@pytest.mark.parametrize("pad", [(1, 2), (0, 0, 2, 1), (1, 1, 1, 1, 1, 1), (-1, 2), (2, -1, -1, 1), (-1, -1, 0, 0)])
def test_constant_pad_parity_including_negative_widths(pad):
    fn_na = lambda x: na.pad(x, pad, value=0.5)  # noqa: E731
    fn_t = lambda x: torch.nn.functional.pad(x, pad, value=0.5)  # noqa: E731
    check(fn_na, [randn(2, 3, 4, seed=1)], torch_fn=fn_t)
    gradcheck(fn_na, [randn(2, 3, 4, seed=1)])


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_nonconstant_pad_parity(mode):
    fn_na = lambda x: na.pad(x, (2, 1, 1, 2), mode=mode)  # noqa: E731
    fn_t = lambda x: torch.nn.functional.pad(x, (2, 1, 1, 2), mode=mode)  # noqa: E731
    check(fn_na, [randn(2, 3, 4, 5, seed=1)], torch_fn=fn_t)
    gradcheck(fn_na, [randn(1, 1, 3, 4, seed=2)])


@settings(max_examples=20, deadline=None)
@given(array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4), st.data())
def test_permute_and_flatten_hypothesis(shape, data):
    perm = data.draw(st.permutations(range(len(shape))))
    start = data.draw(st.integers(0, len(shape) - 1))
    check(lambda x: x.permute(*perm).flatten(start) * 1.5, [randn(*shape, seed=4)])


@pytest.mark.parametrize("fn", [lambda x: x.reshape(0, 6), lambda x: x.transpose(0, 1), lambda x: x.flatten(),
                                lambda x: x.unsqueeze(0), lambda x: x.flip(0), lambda x: x.repeat(2, 1, 1),
                                lambda x: x.expand(2, 0, 3, 2)])
def test_shape_ops_on_empty_tensors(fn):
    check(fn, [randn(0, 3, 2, seed=1)])


@pytest.mark.parametrize("fn", [lambda x: x.reshape(1), lambda x: x.unsqueeze(0), lambda x: x.flatten(),
                                lambda x: x.expand(3, 2), lambda x: x.t(), lambda x: x.squeeze(), lambda x: x.repeat(2)])
def test_shape_ops_on_scalars(fn):
    check(fn, [randn(seed=1)])


def test_shape_errors_name_the_op_and_shapes():
    x = na.randn(2, 3)
    with pytest.raises(ShapeError, match=r"reshape: cannot view \(2, 3\) \(6 elements\) as \(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ShapeError, match="reshape"):
        x.reshape(-1, -1)
    with pytest.raises(ShapeError, match="permute"):
        x.permute(0, 0)
    with pytest.raises(ShapeError, match=r"expand: cannot expand \(2, 3\)"):
        x.expand(2, 4)
    with pytest.raises(ShapeError, match="expand: -1 is not allowed"):
        x.expand(-1, 2, 3)
    with pytest.raises(ShapeError, match=r"cat: sizes must match except in dim 0; got \(2, 3\), \(2, 4\)"):
        na.cat([x, na.randn(2, 4)])
    with pytest.raises(ShapeError, match="stack"):
        na.stack([x, na.randn(3, 2)])
    with pytest.raises(ShapeError, match="split: sizes"):
        x.split([1, 2])
    with pytest.raises(ShapeError, match="chunk"):
        x.chunk(0)
    with pytest.raises(IndexingError, match="transpose"):
        x.transpose(0, 2)
    with pytest.raises(IndexingError, match="unsqueeze"):
        x.unsqueeze(4)
    with pytest.raises(ShapeError, match="pad"):
        na.pad(x, (1, 1, 1, 1, 1, 1))
    with pytest.raises(ShapeError, match="t\\(\\)"):
        na.randn(2, 3, 4).t()
