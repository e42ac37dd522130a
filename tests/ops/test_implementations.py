"""Ops whose arithmetic is in backend.kernels, on both implementations (the ``impl`` fixture:
the numba kernels, then their NumPy twins), against torch. Inputs are float32 arrays, so that
the kernel run really takes the kernels (checked by ``kernels.calls``)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.backend import kernels

rng = np.random.default_rng(0)
X = (rng.standard_normal((48, 160)) * 3).astype(np.float32)
W = rng.standard_normal(160).astype(np.float32)
B = rng.standard_normal(160).astype(np.float32)
T = rng.integers(0, 160, 48)
T[5] = -100

CASES = {
    "gelu": (lambda F, x, w, b: F.gelu(x), None),
    "gelu_tanh": (lambda F, x, w, b: F.gelu(x, approximate="tanh"), None),
    "silu": (lambda F, x, w, b: F.silu(x), None),
    "quick_gelu": (lambda F, x, w, b: F.quick_gelu(x), lambda F, x, w, b: x * torch.sigmoid(1.702 * x)),
    "softmax": (lambda F, x, w, b: F.softmax(x, dim=-1), None),
    "log_softmax": (lambda F, x, w, b: F.log_softmax(x, dim=-1), None),
    "layer_norm": (lambda F, x, w, b: F.layer_norm(x, (160,), w, b), None),
    "layer_norm_no_affine": (lambda F, x, w, b: F.layer_norm(x, (160,)), None),
    "rms_norm": (lambda F, x, w, b: F.rms_norm(x, (160,), w, eps=1e-6), None),
    "cross_entropy": (lambda F, x, w, b: F.cross_entropy(x, _target(F)), None),
    "cross_entropy_smooth_sum": (
        lambda F, x, w, b: F.cross_entropy(x, _target(F), label_smoothing=0.1, reduction="sum"), None),
    "cross_entropy_none": (lambda F, x, w, b: F.cross_entropy(x, _target(F), reduction="none"), None),
}


def _target(Fmod):
    return torch.tensor(T) if Fmod is TF else na.tensor(T)


def _run(fn, Fmod, lib):
    x, w, b = (lib.tensor(a.copy(), requires_grad=True) for a in (X, W, B))
    out = fn(Fmod, x, w, b)
    up = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    out.backward(lib.tensor(up))
    grads = [t.grad.numpy() if t.grad is not None else None for t in (x, w, b)]
    return out.detach().numpy(), grads


class _Ran:
    """Counts the kernel runs inside a with-block: more than none in the kernel run, none in the twin's."""

    def __init__(self, impl):
        self.impl = impl

    def __enter__(self):
        self.before = sum(kernels.calls.values())

    def __exit__(self, *exc):
        if exc[0] is None:
            ran = sum(kernels.calls.values()) - self.before
            assert (ran > 0) == (self.impl == "kernel"), f"{self.impl}: {ran} kernel calls"


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name, impl):
    fn, torch_fn = CASES[name]
    with _Ran(impl):
        y, g = _run(fn, F, na)
    y_t, g_t = _run(torch_fn or fn, TF, torch)
    np.testing.assert_allclose(y, y_t, rtol=2e-5, atol=2e-5, err_msg=f"{name} forward")
    for a, c in zip(g, g_t):
        if c is not None:
            np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-4, err_msg=f"{name} grad")


def test_small_inputs_agree(impl):
    x = na.tensor(X[:2, :3].copy(), requires_grad=True)
    y = F.gelu(x)
    y.sum().backward()
    ref = torch.tensor(X[:2, :3].copy(), requires_grad=True)
    y_ref = TF.gelu(ref)
    y_ref.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), y_ref.detach().numpy(), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), ref.grad.numpy(), rtol=2e-6, atol=1e-6)


def test_empty_inputs(impl):
    x = na.tensor(np.zeros((0, 5), np.float32), requires_grad=True)
    y = F.gelu(x)
    y.sum().backward()
    assert y.shape == (0, 5) and x.grad.shape == (0, 5)


def test_softmax_large_logits_stable(impl):
    x = na.tensor(X * 3000)  # |x| up to ~4e4
    y = F.log_softmax(x, dim=-1)
    ref = TF.log_softmax(torch.tensor(X * 3000), dim=-1).numpy()
    assert np.isfinite(y.numpy()).all()
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-2)


def test_embedding_backward_accumulates(impl):
    w = na.tensor(rng.standard_normal((50, 8)).astype(np.float32), requires_grad=True)
    ids = rng.integers(0, 50, (30, 20))
    out = F.embedding(na.tensor(ids), w, padding_idx=3)
    up = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(na.tensor(up))
    wt = torch.tensor(w.detach().numpy(), requires_grad=True)
    TF.embedding(torch.tensor(ids), wt, padding_idx=3).backward(torch.tensor(up))
    np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), rtol=1e-5, atol=1e-5)


IMAGE_CASES = {
    "relu": lambda F, x, w: F.relu(x),
    "max_pool2d": lambda F, x, w: F.max_pool2d(x, 2),
    "max_pool2d_overlapping_padded": lambda F, x, w: F.max_pool2d(x, 3, stride=2, padding=1),
    "max_pool2d_dilated": lambda F, x, w: F.max_pool2d(x, (2, 3), stride=1, dilation=(2, 1)),
    "conv2d": lambda F, x, w: F.conv2d(x, w, padding=1),
    "conv2d_strided_dilated": lambda F, x, w: F.conv2d(x, w, stride=2, dilation=2),
    "conv2d_uneven_stride_padding": lambda F, x, w: F.conv2d(x, w, stride=(2, 1), padding=(2, 1), dilation=(1, 2)),
    "conv2d_padding_beyond_kernel": lambda F, x, w: F.conv2d(x, w, padding=4),  # whole windows of padding
}


def _run_image(fn, Fmod, lib):
    x = lib.tensor(X.reshape(2, 3, 32, 40).copy(), requires_grad=True)
    w = lib.tensor(W[:54].reshape(2, 3, 3, 3).copy(), requires_grad=True)
    out = fn(Fmod, x, w)
    out.backward(lib.tensor(np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)))
    return out.detach().numpy(), x.grad.numpy(), None if w.grad is None else w.grad.numpy()


@pytest.mark.parametrize("name", sorted(IMAGE_CASES))
def test_image_ops_match_torch(name, impl):
    _check_image_case(name, impl)


@pytest.mark.parametrize("name", [n for n in sorted(IMAGE_CASES) if n.startswith("conv2d")])
def test_conv2d_kernel_path_in_chunks_of_one_image(name, monkeypatch, jit):
    from neural_arch.backend import threads

    monkeypatch.setattr(threads.policy, "conv_chunk_bytes", 1)  # every image its own chunk: each loop runs twice
    _check_image_case(name, "kernel")


@pytest.mark.parametrize("name", [n for n in sorted(IMAGE_CASES) if n.startswith("conv2d")])
def test_conv2d_kernel_path_with_a_range_of_images_per_thread(name, monkeypatch, jit):
    from neural_arch.backend import threads

    monkeypatch.setattr(threads.policy, "num_threads", 2)  # two ranges of one image each
    _check_image_case(name, "kernel")


def _check_image_case(name, impl):
    fn = IMAGE_CASES[name]
    with _Ran(impl):
        ours = _run_image(fn, F, na)
    ref = _run_image(fn, TF, torch)
    for a, b_ in zip(ours, ref):
        if a is not None:
            np.testing.assert_allclose(a, b_, rtol=1e-4, atol=1e-4, err_msg=f"{name} ({impl}) vs torch")


def test_sigmoid_matches_torch(monkeypatch, impl):
    """Extremes and NaN included; the kernel on one thread and split over three."""
    from neural_arch.backend import threads

    x = np.concatenate([X.reshape(-1), [-100.0, -88.5, -30.0, 30.0, 100.0, np.nan, 0.0]]).astype(np.float32)
    up = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)

    def run(lib):
        t = lib.tensor(x.copy(), requires_grad=True)
        y = t.sigmoid()
        y.backward(lib.tensor(up))
        return y.detach().numpy(), t.grad.numpy()

    fused = run(na)
    monkeypatch.setattr(threads.policy, "kernel_min_elements", 64)
    monkeypatch.setattr(threads.policy, "num_threads", 3)
    split = run(na)
    ref = run(torch)
    for a, b in zip(fused, split):  # (the vector loop's edges fall elsewhere: an ulp apart)
        np.testing.assert_allclose(a, b, rtol=2e-7, atol=1e-7)  # (NaN in the same places: equal_nan)
    # y within an ulp of torch's; y (1 - y) near saturation then differs by ~ulp(1) |g| in absolute terms
    for a, b, atol in zip(fused, ref, (1e-7, 5e-7)):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=atol)


CHANNEL_NORMS = {
    "batch_norm": lambda F, lib, x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3),
    "batch_norm_no_affine": lambda F, lib, x, w, b, rm, rv: F.batch_norm(x, rm, rv, training=True),
    "group_norm": lambda F, lib, x, w, b, rm, rv: F.group_norm(x, 3, w, b),
    "group_norm_one_group": lambda F, lib, x, w, b, rm, rv: F.group_norm(x, 1, w, b),
    "group_norm_per_channel": lambda F, lib, x, w, b, rm, rv: F.group_norm(x, 6),
}


@pytest.mark.parametrize("shape", [(4, 6, 5, 7), (3, 6, 11)])
@pytest.mark.parametrize("name", sorted(CHANNEL_NORMS))
def test_channel_norms_match_torch(name, shape, monkeypatch, impl):
    """batch_norm (training) and group_norm on float32 (N, C, ...): outputs, gradients and running
    statistics against torch; the kernels on one thread and split."""
    from neural_arch.backend import threads

    r = np.random.default_rng(3)
    arrays = [(r.standard_normal(shape) * 2 + 0.5).astype(np.float32), r.standard_normal(6).astype(np.float32),
              r.standard_normal(6).astype(np.float32)]
    up = r.standard_normal(shape).astype(np.float32)

    def run(Fmod, lib):
        x, w, b = (lib.tensor(a.copy(), requires_grad=True) for a in arrays)
        rm, rv = lib.tensor(np.zeros(6, np.float32)), lib.tensor(np.ones(6, np.float32))
        y = CHANNEL_NORMS[name](Fmod, lib, x, w, b, rm, rv)
        y.backward(lib.tensor(up))
        grads = [t.grad.numpy() if t.grad is not None else np.zeros(1) for t in (x, w, b)]
        return [y.detach().numpy(), *grads, rm.numpy(), rv.numpy()]

    with _Ran(impl):
        fused = run(F, na)
    monkeypatch.setattr(threads.policy, "kernel_min_elements", 32)
    monkeypatch.setattr(threads.policy, "num_threads", 3)
    split = run(F, na)
    ref = run(TF, torch)
    what = ["y", "dx", "dw", "db", "running_mean", "running_var"]
    for i, a in enumerate(fused):
        np.testing.assert_array_equal(a, split[i], err_msg=f"{what[i]}: split over threads")
        np.testing.assert_allclose(a, ref[i], rtol=1e-4, atol=1e-5, err_msg=f"{what[i]}: torch")


@pytest.mark.parametrize("dims,keepdim", [(-1, False), ((1, 2), True), ((2,), False)])
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_trailing_sums(op, dims, keepdim, impl):
    """Sums and means over the last dims of large float32 arrays (the kernel accumulates each row in
    float64): against float64 NumPy and torch, values and gradients."""
    x = (np.random.default_rng(4).standard_normal((50, 6, 133)) * 10 + 3).astype(np.float32)
    up = np.random.default_rng(5).standard_normal(getattr(torch.tensor(x), op)(dims, keepdim=keepdim).shape)

    def run(lib, t):
        out = getattr(t, op)(dims, keepdim=keepdim)
        out.backward(lib.tensor(up.astype(np.float32)))
        return out.detach().numpy(), t.grad.numpy()

    with _Ran(impl):
        y, g = run(na, na.tensor(x, requires_grad=True))
    exact = getattr(x.astype(np.float64), op)(axis=dims, keepdims=keepdim)
    np.testing.assert_allclose(y, exact, rtol=1e-5 if impl == "twin" else 1e-6, atol=1e-5)
    yt, gt = run(torch, torch.tensor(x, requires_grad=True))
    np.testing.assert_allclose(y, yt, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g, gt, rtol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_loss_matches_torch(reduction, monkeypatch, impl):
    """mse_loss of float32 arrays of one shape: loss and both gradients against torch, the kernels on
    one thread and split over three."""
    from neural_arch.backend import threads

    r = np.random.default_rng(6)
    a, t = (r.standard_normal((37, 29)) * 3).astype(np.float32), r.standard_normal((37, 29)).astype(np.float32)

    def run(lib):
        x, y = lib.tensor(a.copy(), requires_grad=True), lib.tensor(t.copy(), requires_grad=True)
        loss = (F if lib is na else TF).mse_loss(x, y, reduction=reduction)
        (loss * 1.5).backward()
        return [loss.detach().numpy(), x.grad.numpy(), y.grad.numpy()]

    with _Ran(impl):
        fused = run(na)
    monkeypatch.setattr(threads.policy, "kernel_min_elements", 64)
    monkeypatch.setattr(threads.policy, "num_threads", 3)
    split = run(na)
    ref = run(torch)
    for i, a_ in enumerate(fused):
        np.testing.assert_allclose(a_, split[i], rtol=1e-6)
        np.testing.assert_allclose(a_, ref[i], rtol=1e-5, atol=1e-6)
