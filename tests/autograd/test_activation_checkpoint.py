"""Activation checkpointing (``na.utils.checkpoint``): gradients equal those without it, bit for bit in
float64; dropout draws the same masks in the recomputation; nested regions; non-tensor arguments and
outputs; closures over parameters and over tensors computed outside; the region's activations freed;
checkpoint_sequential; errors; and against torch.utils.checkpoint on the same computation."""

import gc
import threading
import weakref

import numpy as np
import pytest
import torch
import torch.utils.checkpoint as tcheckpoint

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch import nn
from neural_arch.autograd.checkpoint import CheckpointNode
from neural_arch.autograd.engine import topological_order
from neural_arch.errors import GradientError
from neural_arch.utils.checkpoint import checkpoint, checkpoint_sequential


def _mlp(seed=0, p=0.0):
    na.manual_seed(seed)
    m = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Dropout(p), nn.Linear(16, 6), nn.LayerNorm(6)).double()
    return m


def _grads(model, x):
    return [x.grad.numpy()] + [p.grad.numpy() for p in model.parameters()]


def _run(model, use_checkpoint, seed=7, **kw):
    """One forward and backward from the same RNG state; the gradients of the input and the parameters."""
    model.zero_grad()
    x = na.tensor(np.random.default_rng(1).standard_normal((4, 6)), requires_grad=True)
    na.manual_seed(seed)
    h = x * 1.5  # the region's input is made by an op outside it
    y = checkpoint(model, h, **kw) if use_checkpoint else model(h)
    y = y + model[0].weight.sum()  # a parameter used in and outside the region
    (y.tanh() * na.tensor(np.linspace(-1, 1, 24).reshape(4, 6))).sum().backward()
    return y.detach().numpy(), _grads(model, x)


def _assert_same(a, b):
    ya, ga = a
    yb, gb = b
    np.testing.assert_array_equal(ya, yb)
    for u, v in zip(ga, gb):
        np.testing.assert_array_equal(u, v)


def test_gradients_equal_bit_for_bit_in_float64():
    model = _mlp()
    _assert_same(_run(model, False), _run(model, True))


def test_dropout_masks_are_the_same_in_the_recomputation():
    model = _mlp(p=0.5)
    plain, ckpt = _run(model, False), _run(model, True)
    _assert_same(plain, ckpt)
    # without restoring the RNG the recomputation draws other masks: other gradients (so the test can fail)
    other = _run(model, True, preserve_rng_state=False)
    np.testing.assert_array_equal(other[0], plain[0])  # (the forward is the first run: the same)
    assert not all(np.array_equal(u, v) for u, v in zip(other[1], plain[1]))


def test_the_rng_stream_continues_as_without_checkpointing():
    model = _mlp(p=0.5)
    after = []
    for use in (False, True):
        _run(model, use)
        after.append(na.rand(3).numpy())
    np.testing.assert_array_equal(after[0], after[1])


def test_nested_checkpoints():
    inner, outer = _mlp(seed=1, p=0.3), _mlp(seed=2)

    def region(h):
        return outer(checkpoint(inner, h) * 2.0)

    def run(use):
        inner.zero_grad(), outer.zero_grad()
        x = na.tensor(np.random.default_rng(3).standard_normal((4, 6)), requires_grad=True)
        na.manual_seed(11)
        y = checkpoint(region, x) if use else outer(inner(x) * 2.0)
        (y * y).sum().backward()
        return [x.grad.numpy()] + [p.grad.numpy() for p in [*inner.parameters(), *outer.parameters()]]

    for u, v in zip(run(False), run(True)):
        np.testing.assert_array_equal(u, v)


def test_non_tensor_arguments_kwargs_and_outputs():
    w = na.tensor(np.random.default_rng(2).standard_normal((6, 3)), requires_grad=True)

    def fn(x, power, scale=1.0, mask=None):
        y = (x @ w) ** power * scale
        return y, y.sum(), "label", None if mask is None else mask

    def run(use):
        w.grad = None
        x = na.tensor(np.random.default_rng(4).standard_normal((5, 6)), requires_grad=True)
        out = checkpoint(fn, x, 2, scale=0.5) if use else fn(x, 2, scale=0.5)
        assert out[2] == "label" and out[3] is None
        (out[0].sin().sum() + out[1] * 3).backward()
        return x.grad.numpy(), w.grad.numpy()

    # two outputs: each backpropagates through its own recomputation, and the two contributions meet at
    # the region's inputs instead of at y: the same terms, summed in another order (module doc)
    for u, v in zip(run(False), run(True)):
        np.testing.assert_allclose(u, v, rtol=1e-13, atol=1e-13)


def test_a_tensor_computed_outside_and_closed_over_gets_its_gradient():
    base = na.tensor(np.random.default_rng(5).standard_normal((6, 6)), requires_grad=True)

    def run(use):
        base.grad = None
        w = base * 2.0 + 1.0  # a non-leaf tensor the region uses without taking it as an argument
        x = na.tensor(np.random.default_rng(6).standard_normal((3, 6)), requires_grad=False)
        y = checkpoint(lambda h: (h @ w).tanh(), x) if use else (x @ w).tanh()
        y.sum().backward()
        return base.grad.numpy()

    np.testing.assert_array_equal(run(False), run(True))


def test_the_region_keeps_no_activations():
    model = _mlp()
    x = na.tensor(np.ones((4, 6)), requires_grad=True)
    kept = []

    def region(h):
        a = model[1](model[0](h))  # the GELU's output: an activation inside the region
        kept.append(weakref.ref(a))
        return model[4](model[3](a))

    y = checkpoint(region, x)
    gc.collect()
    assert kept[0]() is None  # freed when the region returned
    nodes = topological_order(y._ctx)
    assert [type(n) for n in nodes] == [CheckpointNode]  # one node stands for the region
    y.sum().backward()
    assert x.grad is not None and model[0].weight.grad is not None


def test_retain_graph_backward_twice_and_no_grad():
    model = _mlp()
    x = na.tensor(np.ones((2, 6)), requires_grad=True)
    y = checkpoint(model, x).sum()
    y.backward(retain_graph=True)
    once = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * once)
    with na.no_grad():
        out = checkpoint(model, x)
    assert not out.requires_grad and out._ctx is None


def test_leaf_hooks_see_the_total_gradient_once():
    model = _mlp()
    seen = []
    model[0].weight.register_hook(lambda g: seen.append(g.numpy().copy()))
    _, plain = _run(model, False)
    _, ckpt = _run(model, True)
    assert len(seen) == 2
    np.testing.assert_array_equal(seen[0], seen[1])
    np.testing.assert_array_equal(plain[1], ckpt[1])


def test_checkpoint_sequential_equals_the_plain_sequential():
    na.manual_seed(0)
    seq = nn.Sequential(*[nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Dropout(0.2)) for _ in range(5)]).double()

    def run(use, segments):
        seq.zero_grad()
        x = na.tensor(np.random.default_rng(8).standard_normal((3, 6)), requires_grad=True)
        na.manual_seed(9)
        y = checkpoint_sequential(seq, segments, x, use_reentrant=False) if use else seq(x)
        (y * y).sum().backward()
        return [x.grad.numpy()] + [p.grad.numpy() for p in seq.parameters()]

    plain = run(False, 1)
    for segments in (1, 2, 3, 5):
        for u, v in zip(plain, run(True, segments)):
            np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match="segments"):
        checkpoint_sequential(seq, 0, na.tensor(np.ones((1, 6))))


def test_a_region_that_computes_differently_the_second_time_is_an_error():
    a = na.tensor(np.ones(3), requires_grad=True)
    b = na.tensor(np.ones(3), requires_grad=True)
    calls = []

    def fickle(x):
        calls.append(1)
        return x * (a if len(calls) == 1 else b)

    y = checkpoint(fickle, na.tensor(np.ones(3), requires_grad=True))
    with pytest.raises(GradientError, match="same way twice"):
        y.sum().backward()


def test_matches_torch_utils_checkpoint():
    rng = np.random.default_rng(10)
    w1, w2, x0 = rng.standard_normal((6, 8)), rng.standard_normal((8, 6)), rng.standard_normal((4, 6))

    def block(lib, x, a, b):
        return (lib.tanh(x @ a) @ b).sin()

    ours = [na.tensor(v, requires_grad=True) for v in (x0, w1, w2)]
    theirs = [torch.tensor(v, requires_grad=True) for v in (x0, w1, w2)]
    checkpoint(lambda x, a, b: block(na, x, a, b), *ours).sum().backward()
    tcheckpoint.checkpoint(lambda x, a, b: block(torch, x, a, b), *theirs, use_reentrant=False).sum().backward()
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_half_precision_region():
    model = _mlp().bfloat16()
    x = na.tensor(np.random.default_rng(12).standard_normal((4, 6)).astype(na.bfloat16), requires_grad=True)
    grads = []
    for use in (False, True):
        model.zero_grad()
        x.grad = None
        y = checkpoint(model, x) if use else model(x)
        F.mse_loss(y, na.zeros_like(y)).backward()
        grads.append([x.grad.numpy()] + [p.grad.numpy() for p in model.parameters()])
    for u, v in zip(*grads):
        assert u.dtype == na.bfloat16
        np.testing.assert_array_equal(u.view(np.uint16), v.view(np.uint16))


def test_the_recomputation_runs_under_the_first_runs_autocast_state():
    model = _mlp().float()
    grads = []
    for use in (False, True):
        model.zero_grad()
        x = na.tensor(np.random.default_rng(13).standard_normal((4, 6)).astype(np.float32), requires_grad=True)
        with na.autocast("cpu", dtype=na.bfloat16):
            y = checkpoint(model, x) if use else model(x)
        (y.float() ** 2).sum().backward()  # backward outside the autocast block, as usual
        grads.append([x.grad.numpy()] + [p.grad.numpy() for p in model.parameters()])
    for u, v in zip(*grads):
        np.testing.assert_array_equal(u, v)


def _product_region(model, w):
    """A region whose last op is a product: backward never reads its output, so the recomputation skips it."""
    return lambda h: model(h) @ w


def _skipped(y):
    """The classes of the calls each CheckpointNode under y skips in its recomputation."""
    return [[] if node.plan is None else [node.plan[0][k].__name__ for k in sorted(node.plan[1])]
            for node in topological_order(y._ctx) if isinstance(node, CheckpointNode)]


def test_the_recomputation_skips_a_last_product_and_gradients_stay_bit_for_bit():
    model = _mlp()
    w = na.tensor(np.random.default_rng(14).standard_normal((6, 5)), requires_grad=True)
    got = []
    for use in (False, True):
        model.zero_grad()
        w.grad = None
        x = na.tensor(np.random.default_rng(15).standard_normal((4, 6)), requires_grad=True)
        region = _product_region(model, w)
        y = checkpoint(region, x) if use else region(x)
        if use:
            assert _skipped(y) == [["MatMul"]]
        (y.sin() * 3.0).sum().backward()
        got.append([x.grad.numpy(), w.grad.numpy()] + [p.grad.numpy() for p in model.parameters()])
    for u, v in zip(*got):
        np.testing.assert_array_equal(u, v)


def test_an_output_read_through_detach_is_recomputed():
    """An op reading a product's output through .detach() reads the same array: the plan keeps it."""
    got = []
    for use in (False, True):
        w = na.tensor(np.full((3, 3), 0.5), requires_grad=True)
        x = na.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)

        def region(h):
            y = h @ w
            return h * y.detach().sum()  # y's only reader is outside the graph

        y = checkpoint(region, x) if use else region(x)
        if use:
            assert _skipped(y) == [[]]
        y.sum().backward()
        got.append(x.grad.numpy())
    np.testing.assert_array_equal(*got)


def test_a_skipped_output_read_outside_the_ops_shows_as_nan():
    """The limit of the plan: it sees ops, not Python reading the values. Such a read finds NaN, not zeros."""
    w = na.tensor(np.ones((3, 3)), requires_grad=True)
    x = na.tensor(np.ones((2, 3)), requires_grad=True)

    def region(h):
        y = h @ w
        return h * float(y.detach().numpy().sum())  # a Python number: no op reads y

    y = checkpoint(region, x)
    assert _skipped(y) == [["MatMul"]]
    y.sum().backward()
    assert np.isnan(x.grad.numpy()).all()


def test_a_recomputation_that_calls_other_ops_than_its_plan_is_an_error():
    w = na.tensor(np.ones((3, 3)), requires_grad=True)
    calls = []

    def fickle(h):
        calls.append(1)
        return (h @ w) if len(calls) == 1 else (h + w)

    y = checkpoint(fickle, na.tensor(np.ones((3, 3)), requires_grad=True))
    with pytest.raises(GradientError, match="same way twice"):
        y.sum().backward()


def test_ops_another_thread_runs_meanwhile_are_not_the_regions():
    """A loader's thread may compute while a region runs or is recomputed: its ops are neither recorded nor
    numbered as the region's (here only during the recomputation, which would otherwise not line up)."""
    model = _mlp()
    w = na.tensor(np.random.default_rng(16).standard_normal((6, 5)), requires_grad=True)
    runs = []

    def region(h):
        if runs:  # the recomputation: another thread runs ops meanwhile
            other = threading.Thread(target=lambda: (na.tensor(np.ones((2, 2)), requires_grad=True) @ w[:2, :2]).sum())
            other.start()
            other.join()
        runs.append(1)
        return _product_region(model, w)(h)

    got = []
    for use in (False, True):
        model.zero_grad()
        w.grad = None
        x = na.tensor(np.random.default_rng(17).standard_normal((4, 6)), requires_grad=True)
        y = checkpoint(region, x) if use else _product_region(model, w)(x)
        if use:
            assert _skipped(y) == [["MatMul"]]
        (y * y).sum().backward()
        got.append([x.grad.numpy(), w.grad.numpy()] + [p.grad.numpy() for p in model.parameters()])
    for u, v in zip(*got):
        np.testing.assert_array_equal(u, v)
