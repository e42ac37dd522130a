"""Indexing ops: x[idx] (basic and advanced), gather, scatter_add, index_select,
masked_fill, narrow and __setitem__: parity with torch and gradcheck."""

import numpy as np
import pytest
import torch
from parity import check, gradcheck, randn

import neural_arch as na
from neural_arch.errors import DTypeError, GradientError, IndexingError, ShapeError

MASK = np.array([True, False, True])
IDX = np.array([2, 0, 2, 2])  # repeated: gradients must accumulate

GETITEM = {  # name: index applied with x[index] in both frameworks
    "int": lambda m: 1,
    "neg_int": lambda m: -1,
    "slice": lambda m: slice(1, None),
    "step_slice": lambda m: (slice(None), slice(None, None, 2)),
    "neg_step_slice": lambda m: (slice(None), slice(None, None, -1)),  # torch has no negative steps
    "none": lambda m: (None, 0, None),
    "ellipsis": lambda m: (Ellipsis, 1),
    "ellipsis_none": lambda m: (0, Ellipsis, None),
    "mixed": lambda m: (slice(0, 2), None, slice(None, 3)),
    "int_and_slice": lambda m: (1, slice(None, 3)),
    "int_array_repeated": lambda m: m.tensor(IDX),
    "list": lambda m: [2, 0, 2],
    "two_lists": lambda m: ([0, 2, 2], [1, 1, 3]),
    "array_and_slice": lambda m: (slice(None), m.tensor(np.array([3, 3, 0]))),
    "array_2d": lambda m: m.tensor(np.array([[0, 2], [2, 2]])),
    "bool_mask_tensor": lambda m: m.tensor(MASK),
    "bool_mask_2d": lambda m: m.tensor(np.arange(12).reshape(3, 4) % 3 == 0),
    "bool_list": lambda m: [True, False, True],
    "scalar_tensor_index": lambda m: m.tensor(1),
}


def _lib(x):
    return torch if isinstance(x, torch.Tensor) else na


@pytest.mark.parametrize("name", sorted(GETITEM))
def test_getitem_parity(name):
    make = GETITEM[name]
    x = randn(3, 4, seed=1)
    if name == "neg_step_slice":  # torch refuses negative steps; compare with flip
        check(lambda t: t[make(na)], [x], torch_fn=lambda t: t.flip(1))
        return
    check(lambda t: t[make(_lib(t))], [x])
    check(lambda t: t[make(_lib(t))], [x], noncontig=True)


@pytest.mark.parametrize("name", sorted(GETITEM))
def test_getitem_gradcheck(name):
    gradcheck(lambda t: t[GETITEM[name](na)], [randn(3, 4, seed=2)])


def test_repeated_integer_indices_accumulate_gradient():
    x = na.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].backward(na.tensor([1.0, 2.0, 3.0, 4.0]))
    assert x.grad.tolist() == [7.0, 0.0, 3.0]
    y = na.tensor(np.ones((2, 2)), requires_grad=True)
    y[na.tensor([1, 1]), na.tensor([0, 0])].sum().backward()
    assert y.grad.tolist() == [[0.0, 0.0], [2.0, 0.0]]


def test_getitem_on_scalars_and_empty():
    check(lambda t: t[...], [randn(seed=1)])
    check(lambda t: t[None], [randn(seed=1)])
    check(lambda t: t[1:1], [randn(3, 2, seed=1)])
    check(lambda t: t[_lib(t).tensor(np.zeros(0, dtype=np.int64))], [randn(3, 2, seed=1)])


GATHERLIKE = {
    "gather0": (lambda m, x: x.gather(0, m.tensor(np.array([[2, 0, 1, 2], [2, 2, 2, 0]]))), (3, 4)),
    "gather1": (lambda m, x: x.gather(1, m.tensor(np.array([[3, 3], [0, 1], [2, 2]]))), (3, 4)),
    "gather_neg": (lambda m, x: x.gather(-1, m.tensor(np.array([[[1], [0]], [[1], [1]]]))), (2, 2, 3)),
    "index_select0": (lambda m, x: x.index_select(0, m.tensor(np.array([2, 2, 0]))), (3, 4)),
    "index_select1": (lambda m, x: x.index_select(1, m.tensor(np.array([3, 1, 3]))), (3, 4)),
    "narrow": (lambda m, x: x.narrow(1, 1, 2), (3, 4)),
    "narrow_neg_start": (lambda m, x: x.narrow(0, -2, 2), (3, 4)),
    "masked_fill": (lambda m, x: x.masked_fill(m.tensor(np.array([True, False, False, True])), -1.5), (3, 4)),
    "masked_fill_neg_inf": (lambda m, x: x.masked_fill(m.tensor(np.array([[True], [False], [True]])),
                                                          float("-inf")).softmax(-1)
                            if m is torch else _softmax(x.masked_fill(m.tensor(np.array([[True], [False], [True]])),
                                                                      float("-inf"))), (3, 4)),
}


def _softmax(x):
    e = (x - x.amax(-1, keepdim=True).detach()).exp()
    return e / e.sum(-1, keepdim=True)


@pytest.mark.parametrize("name", sorted(GATHERLIKE))
def test_gather_like_parity(name):
    fn, shape = GATHERLIKE[name]
    with np.errstate(invalid="ignore"):  # a fully masked row: -inf - (-inf) is nan, as in torch
        check(lambda x: fn(_lib(x), x), [randn(*shape, seed=3)])
    if name != "masked_fill_neg_inf":  # rows that are all -inf give nan in both frameworks
        gradcheck(lambda x: fn(na, x), [randn(*shape, seed=3)])


def test_masked_fill_partial_neg_inf_mask_softmax():
    mask = np.array([[False, True, True, False], [True, False, True, True], [False, False, False, False]])
    check(lambda x: _softmax(x.masked_fill(na.tensor(mask), float("-inf"))), [randn(3, 4, seed=1)],
          torch_fn=lambda x: x.masked_fill(torch.tensor(mask), float("-inf")).softmax(-1))


def test_scatter_add_parity_with_repeated_indices():
    index = np.array([[0, 1, 0, 0], [2, 2, 1, 0]])
    fn = lambda x, s: x.scatter_add(0, _lib(x).tensor(index), s)  # noqa: E731
    check(fn, [randn(3, 4, seed=1), randn(2, 4, seed=2)])
    # src larger than index: forward only (torch's own backward rejects this case)
    check(fn, [randn(3, 4, seed=1), randn(3, 5, seed=2)], grad=False)
    s = na.tensor(randn(3, 5, seed=2), requires_grad=True)
    na.zeros(3, 4, dtype="float64").scatter_add(0, na.tensor(index), s).sum().backward()
    assert s.grad.shape == (3, 5) and s.grad.numpy()[:2, :4].tolist() == np.ones((2, 4)).tolist()
    assert not s.grad.numpy()[2:].any() and not s.grad.numpy()[:, 4:].any()
    gradcheck(lambda x, s: x.scatter_add(0, na.tensor(index), s), [randn(3, 4, seed=1), randn(2, 4, seed=2)])
    idx1 = np.array([[1, 1], [0, 3], [2, 2]])
    check(lambda x, s: x.scatter_add(1, _lib(x).tensor(idx1), s), [randn(3, 4, seed=3), randn(3, 2, seed=4)])


def test_setitem_without_grad_matches_torch():
    cases = [
        (lambda t, m: t.__setitem__(1, 5.0)),
        (lambda t, m: t.__setitem__((slice(None), 0), m.tensor([1.0, 2.0, 3.0], dtype=t.dtype))),
        (lambda t, m: t.__setitem__(m.tensor([0, 2]), m.tensor([[9.0], [8.0]], dtype=t.dtype))),
        (lambda t, m: t.__setitem__(t > 0, -1.0)),
        (lambda t, m: t.__setitem__([2, 0], 7.0)),
        (lambda t, m: t.__setitem__((Ellipsis, m.tensor([1, 3])), m.zeros(3, 2, dtype=t.dtype))),
        (lambda t, m: t.__setitem__(m.tensor(np.array([True, False, True])), m.ones(4, dtype=t.dtype))),
    ]
    for fn in cases:
        ours, ref = na.tensor(randn(3, 4, seed=1)), torch.tensor(randn(3, 4, seed=1))
        fn(ours, na)
        fn(ref, torch)
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())


def test_setitem_casts_values_and_respects_no_grad():
    x = na.zeros(3, dtype="int64")
    x[1] = na.tensor(2.7)
    assert x.tolist() == [0, 2, 0] and x.dtype == np.int64  # torch truncates too
    w = na.ones(3, requires_grad=True)
    with pytest.raises(GradientError, match="in-place assignment"):
        w[0] = 2.0
    with na.no_grad():
        w[0] = 2.0
    assert w.tolist() == [2.0, 1.0, 1.0] and w.requires_grad


def test_index_errors_are_typed():
    x = na.randn(3, 4)
    with pytest.raises(IndexingError, match=r"Index: .*out of bounds.*\(input shapes \(3, 4\)\)"):
        x[5]
    with pytest.raises(IndexingError):
        x[na.tensor([0, 7])]
    with pytest.raises(DTypeError, match="integer or bool"):
        x[na.tensor([0.0, 1.0])]
    with pytest.raises(DTypeError, match="index lists"):
        x[[0.5]]
    with pytest.raises(IndexingError, match="gather: index out of range for a dim of size 4"):
        x.gather(1, na.tensor([[4]]))
    with pytest.raises(DTypeError, match="gather: index must be an integer tensor"):
        x.gather(1, na.tensor([[1.0]]))
    with pytest.raises(ShapeError, match="gather"):
        x.gather(1, na.tensor([0, 1]))
    with pytest.raises(ShapeError, match="index_select: index must be 1-d"):
        x.index_select(0, na.tensor([[0]]))
    with pytest.raises(DTypeError, match="masked_fill: mask must be bool"):
        x.masked_fill(na.tensor([1, 0, 1, 0]), 0.0)
    with pytest.raises(ShapeError, match=r"masked_fill: mask \(2,\) does not broadcast to \(3, 4\)"):
        x.masked_fill(na.tensor([True, False]), 0.0)
    with pytest.raises(IndexingError, match="narrow"):
        x.narrow(0, 2, 2)
    with pytest.raises(DTypeError, match="scatter_add: src dtype"):
        x.scatter_add(0, na.tensor([[0]]), na.ones(1, 1, dtype="float64"))
