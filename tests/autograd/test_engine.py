"""The backward engine: graph shapes, accumulation, retain_graph, hooks, retain_grad."""

import gc
import weakref

import numpy as np
import pytest
import torch

import neural_arch as na
from neural_arch.errors import DTypeError, GradientError, ShapeError


def test_diamond_graph_sums_both_paths():
    x = na.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    z = y.exp() + y * y  # y used twice
    z.sum().backward()
    t = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    ty = t * 2
    (ty.exp() + ty * ty).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6)


def test_tensor_used_twice_in_one_op_and_as_both_operands():
    x = na.tensor([3.0], requires_grad=True)
    (x * x).backward(na.ones(1))
    assert x.grad.tolist() == [6.0]
    x.grad = None
    (x + x + x).sum().backward()
    assert x.grad.tolist() == [3.0]


def test_ten_thousand_op_chain_needs_no_recursion():
    x = na.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.0001**10_000, rtol=1e-3)


def test_wide_graph_with_shared_subexpressions():
    x = na.tensor([0.5, -1.0], requires_grad=True)
    parts = [x * float(i) for i in range(200)]
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    total.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [sum(range(200))] * 2)


def test_gradients_accumulate_across_backward_calls_and_in_place():
    x = na.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    g = x.grad
    (x * x).sum().backward()
    assert x.grad is g  # accumulated into the same tensor (optimizers may hold it)
    assert x.grad.tolist() == [5.0, 7.0]


def test_leaf_grad_is_never_aliased_with_other_arrays():
    x = na.tensor([1.0, 2.0], requires_grad=True)
    up = na.tensor([1.0, 1.0])
    (x + 0.0).backward(up)  # add passes the upstream gradient through unchanged
    x.grad.data += 1
    assert up.tolist() == [1.0, 1.0]
    a = na.ones(3, requires_grad=True)
    b = na.ones(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.data += 1
    assert b.grad.tolist() == [1.0, 1.0, 1.0]


def test_retain_graph_allows_a_second_backward_and_accumulates():
    x = na.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


@pytest.mark.parametrize("make", [lambda x: (x.exp() * x).sum(), lambda x: (x + 1).sum(), lambda x: x.sum()])
def test_double_backward_without_retain_graph_raises(make):
    x = na.tensor([1.0, 2.0], requires_grad=True)
    y = make(x)
    y.backward()
    with pytest.raises(GradientError, match="second time.*retain_graph=True"):
        y.backward()


def test_graph_and_saved_arrays_are_freed_after_backward():
    x = na.tensor(np.ones(1000), requires_grad=True)
    h = x.exp()
    ref = weakref.ref(h._ctx)
    y = (h * 2).sum()
    del h
    y.backward()
    gc.collect()
    assert ref() is None  # the exp node is unreachable once backward has run
    assert y._ctx.parents == ()


def test_the_graph_does_not_keep_intermediate_tensors_alive():
    # Only what an op saves for backward stays in memory: the Add below saves nothing, so the
    # matmul's output (an activation nobody needs any more) is freed before backward, as in torch.
    x = na.tensor(np.ones((4, 8)), requires_grad=True)
    w = na.tensor(np.full((8, 3), 0.5), requires_grad=True)
    h = x @ w
    ref = weakref.ref(h)
    y = ((h + 1.0) * 3.0).sum()
    del h
    gc.collect()
    assert ref() is None
    y.backward()
    np.testing.assert_allclose(w.grad.numpy(), np.full((8, 3), 12.0))  # 3 * (sum over 4 rows of x)
    np.testing.assert_allclose(x.grad.numpy(), np.full((4, 8), 4.5))  # 3 * (sum over 3 columns of w)


def test_backward_on_non_scalar_needs_a_gradient():
    x = na.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    with pytest.raises(GradientError, match=r"needs a scalar output, got shape \(3,\)"):
        y.backward()
    with pytest.raises(ShapeError, match=r"gradient has shape \(2,\) but the tensor has shape \(3,\)"):
        y.backward(na.ones(2))
    y.backward(na.tensor([1.0, 0.5, 0.0]))
    assert x.grad.tolist() == [2.0, 2.0, 0.0]
    z = x * 2
    z.backward([1.0, 1.0, 1.0])  # a list works too, as torch accepts sequences
    assert x.grad.tolist() == [4.0, 4.0, 2.0]


def test_backward_gradient_in_another_dtype_keeps_the_graph_dtype():
    x = na.ones(3, requires_grad=True)
    (x * 2).backward(na.ones(3, dtype="float64"))
    assert x.grad.dtype == np.float32


def test_backward_on_a_tensor_without_grad_raises():
    with pytest.raises(GradientError, match="does not require grad"):
        na.ones(2).sum().backward()


def test_requires_grad_only_on_floating_tensors():
    with pytest.raises(DTypeError, match="only floating-point tensors can require gradients, this one is int64"):
        na.tensor([1, 2], requires_grad=True)
    with pytest.raises(DTypeError):
        na.tensor([True]).requires_grad_()
    x = na.tensor([1.0, 2.0], requires_grad=True)
    assert not x.long().requires_grad and not (x > 1).requires_grad  # int results leave the graph


def test_leaf_and_non_leaf_properties():
    x = na.ones(2, requires_grad=True)
    y = x * 2
    assert x.is_leaf and not y.is_leaf and y.grad_fn is not None and x.grad_fn is None
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and np.shares_memory(d.data, y.data)
    with pytest.raises(GradientError, match="non-leaf"):
        y.requires_grad_(False)
    c = y.clone()
    c.backward(na.ones(2))
    assert x.grad.tolist() == [2.0, 2.0]


def test_hooks_on_leaf_see_the_total_gradient_once():
    x = na.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    (x * 3 + x * x).sum().backward()  # two paths into x
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [5.0, 7.0])


def test_hook_returning_a_replacement_and_handle_remove():
    x = na.tensor([1.0, 2.0], requires_grad=True)
    h = x.register_hook(lambda g: g * 10)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [20.0, 20.0]
    h.remove()
    x.grad = None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_non_leaf_hook_changes_what_flows_further():
    x = na.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    seen = []
    y.register_hook(lambda g: seen.append(g.tolist()))
    y.register_hook(lambda g: g * 0.5)
    (y * y).sum().backward()
    assert seen == [[6.0, 12.0]]
    assert x.grad.tolist() == [9.0, 18.0]  # 0.5 * 2y * 3
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    ty = t * 3
    ty.register_hook(lambda g: g * 0.5)
    (ty * ty).sum().backward()
    assert t.grad.tolist() == x.grad.tolist()


def test_register_hook_on_tensor_without_grad_raises():
    with pytest.raises(GradientError, match="register_hook"):
        na.ones(2).register_hook(lambda g: g)


def test_retain_grad_keeps_non_leaf_gradients():
    x = na.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y.retain_grad()
    z = y * 3
    z.sum().backward()
    assert y.grad.tolist() == [3.0, 3.0]
    assert z.grad is None  # not retained
    with pytest.raises(GradientError, match="retain_grad"):
        na.ones(2).retain_grad()


def test_custom_function_with_needs_input_grad_and_saved_tensors():
    class ScaledMul(na.Function):
        """z = s * x * y      dz/dx = s y,  dz/dy = s x"""

        @staticmethod
        def forward(ctx, x, y, scale):
            ctx.save_for_backward(x, y)
            ctx.scale = scale
            return scale * x * y

        @staticmethod
        def backward(ctx, grad):
            x, y = ctx.saved_tensors
            assert ctx.needs_input_grad == (True, False)
            return grad * ctx.scale * y, None

    x = na.tensor([1.0, 2.0], requires_grad=True)
    y = na.tensor([3.0, 4.0])
    out = ScaledMul.apply(x, y, scale=2.0)
    assert out.tolist() == [6.0, 16.0]
    out.sum().backward()
    assert x.grad.tolist() == [6.0, 8.0] and y.grad is None
    assert "ScaledMulBackward" in repr(ScaledMul.apply(x, y, scale=1.0))


def test_custom_function_returning_wrong_number_of_grads_is_a_gradient_error():
    class Bad(na.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, grad):
            return (grad,)

    with pytest.raises(GradientError, match="BadBackward: backward returned 1 gradients for 2 inputs"):
        Bad.apply(na.ones(2, requires_grad=True), na.ones(2)).sum().backward()


def test_broadcast_gradients_are_unbroadcast_once():
    x = na.tensor(np.ones((3, 1)), requires_grad=True)
    b = na.tensor(np.arange(4.0), requires_grad=True)
    (x * b).backward(na.ones(3, 4))
    assert x.grad.shape == (3, 1) and x.grad.numpy().ravel().tolist() == [6.0] * 3
    assert b.grad.shape == (4,) and b.grad.tolist() == [3.0] * 4


class _Halves(na.autograd.Function):
    """Two leaves' gradients as views of one array (shared) or a reshaped fresh array each."""

    @staticmethod
    def forward(ctx, x, y, shared):
        ctx.shared = shared
        return x + y

    @staticmethod
    def backward(ctx, grad):
        if ctx.shared:
            both = np.array(grad)  # one array, two views of all of it
            return both.reshape(-1), both.reshape(-1)
        return np.array(grad * 2).reshape(-1), np.array(grad * 3).reshape(-1)  # views of unshared arrays


def test_a_leaf_keeps_a_view_of_an_unshared_array_and_copies_a_shared_one():
    x = na.tensor(np.ones(4, np.float32), requires_grad=True)
    y = na.tensor(np.ones(4, np.float32), requires_grad=True)
    _Halves.apply(x, y, shared=False).backward(na.ones(4))
    assert x.grad.data.base is not None and y.grad.data.base is not None  # adopted, not copied
    assert x.grad.tolist() == [2.0] * 4 and y.grad.tolist() == [3.0] * 4
    x.grad = y.grad = None
    _Halves.apply(x, y, shared=True).backward(na.ones(4))
    x.grad.data += 1  # the two gradients are views of one array: each leaf must own its own
    assert y.grad.tolist() == [1.0] * 4 and x.grad.tolist() == [2.0] * 4
