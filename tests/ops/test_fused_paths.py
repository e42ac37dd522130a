"""The numba-kernel twins in ops/fused.py against their NumPy twins and against torch.

Inputs are non-empty float32 arrays, so that the kernel path is taken; the
same call with kernels switched off takes the NumPy path.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.backend import kernels

pytestmark = pytest.mark.skipif(kernels.get() is None, reason="numba not installed or NEURAL_ARCH_JIT=0")

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
    return out.detach().numpy(), grads, type(out.grad_fn).__name__


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_path_matches_numpy_path_and_torch(name):
    fn, torch_fn = CASES[name]
    y_k, g_k, node = _run(fn, F, na)
    assert node.startswith("Fused"), f"kernel path not taken ({node})"
    kernels.set_enabled(False)
    try:
        y_n, g_n, node_n = _run(fn, F, na)
        assert not node_n.startswith("Fused")
    finally:
        kernels.set_enabled(True)
    y_t, g_t, _ = _run(torch_fn or fn, TF, torch)
    for ours, ref, what in [(y_k, y_n, "kernel vs numpy"), (y_k, y_t, "kernel vs torch")]:
        np.testing.assert_allclose(ours, ref, rtol=2e-5, atol=2e-5, err_msg=f"{name} forward {what}")
    for a, b_, c in zip(g_k, g_n, g_t):
        if c is None:
            continue
        np.testing.assert_allclose(a, b_, rtol=1e-4, atol=1e-4, err_msg=f"{name} grad kernel vs numpy")
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-4, err_msg=f"{name} grad kernel vs torch")


def test_small_inputs_take_the_kernel_path_and_agree():
    x = na.tensor(X[:2, :3].copy(), requires_grad=True)  # 6 floats: the kernel still beats a dozen ufunc calls
    y = F.gelu(x)
    assert type(y.grad_fn).__name__ == "FusedGELU"
    y.sum().backward()
    ref = torch.tensor(X[:2, :3].copy(), requires_grad=True)
    y_ref = TF.gelu(ref)
    y_ref.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), y_ref.detach().numpy(), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), ref.grad.numpy(), rtol=2e-6, atol=1e-6)


def test_empty_inputs_take_the_numpy_path():
    x = na.tensor(np.zeros((0, 5), np.float32), requires_grad=True)
    assert type(F.gelu(x).grad_fn).__name__ == "GELU"


def test_float64_takes_the_numpy_path():
    x = na.tensor(X.astype(np.float64), requires_grad=True)
    assert type(F.gelu(x).grad_fn).__name__ == "GELU"


def test_softmax_large_logits_kernel_path_stable():
    x = na.tensor(X * 3000)  # |x| up to ~4e4
    y = F.log_softmax(x, dim=-1)
    ref = TF.log_softmax(torch.tensor(X * 3000), dim=-1).numpy()
    assert np.isfinite(y.numpy()).all()
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-2)


def test_embedding_backward_kernel_accumulates():
    w = na.tensor(rng.standard_normal((50, 8)).astype(np.float32), requires_grad=True)
    ids = rng.integers(0, 50, (30, 20))
    out = F.embedding(na.tensor(ids), w, padding_idx=3)
    up = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(na.tensor(up))
    wt = torch.tensor(w.detach().numpy(), requires_grad=True)
    TF.embedding(torch.tensor(ids), wt, padding_idx=3).backward(torch.tensor(up))
    np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), rtol=1e-5, atol=1e-5)


IMAGE_CASES = {  # ops whose kernels sit inside an ordinary node (no "Fused" name): the results must agree
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
def test_image_kernels_match_numpy_path_and_torch(name):
    _check_image_case(name)


@pytest.mark.parametrize("name", [n for n in sorted(IMAGE_CASES) if n.startswith("conv2d")])
def test_conv2d_kernel_path_in_chunks_of_one_image(name, monkeypatch):
    import neural_arch.ops.conv as conv

    monkeypatch.setattr(conv, "_CHUNK_BYTES", 1)  # every image its own chunk: each loop runs twice
    _check_image_case(name)


def _check_image_case(name):
    fn = IMAGE_CASES[name]
    kernel = _run_image(fn, F, na)
    kernels.set_enabled(False)
    try:
        numpy_path = _run_image(fn, F, na)
    finally:
        kernels.set_enabled(True)
    ref = _run_image(fn, TF, torch)
    for ours, other, what in [(kernel, numpy_path, "numpy path"), (kernel, ref, "torch")]:
        for a, b_ in zip(ours, other):
            if a is not None:
                np.testing.assert_allclose(a, b_, rtol=1e-4, atol=1e-4, err_msg=f"{name}: kernel vs {what}")


def test_sigmoid_kernels_match_numpy_path_and_torch(monkeypatch):
    """The Sigmoid node runs sigmoid_forward / sigmoid_backward on float32; extremes and NaN included,
    one thread and split over three."""
    from neural_arch.backend import threads

    x = np.concatenate([X.reshape(-1), [-100.0, -88.5, -30.0, 30.0, 100.0, np.nan, 0.0]]).astype(np.float32)
    up = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)

    def run(lib):
        t = lib.tensor(x.copy(), requires_grad=True)
        y = t.sigmoid()
        y.backward(lib.tensor(up))
        return y.detach().numpy(), t.grad.numpy()

    fused = run(na)
    monkeypatch.setattr(threads, "PARALLEL_MIN_ELEMENTS", 64)
    monkeypatch.setenv("NEURAL_ARCH_NUM_THREADS", "3")
    split = run(na)
    kernels.set_enabled(False)
    try:
        numpy_path = run(na)
    finally:
        kernels.set_enabled(True)
    ref = run(torch)
    for got in (split, numpy_path, ref):
        for a, b in zip(fused, got):
            np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7)  # (NaN in the same places: equal_nan)


CHANNEL_NORMS = {
    "batch_norm": lambda F, lib, x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3),
    "batch_norm_no_affine": lambda F, lib, x, w, b, rm, rv: F.batch_norm(x, rm, rv, training=True),
    "group_norm": lambda F, lib, x, w, b, rm, rv: F.group_norm(x, 3, w, b),
    "group_norm_one_group": lambda F, lib, x, w, b, rm, rv: F.group_norm(x, 1, w, b),
    "group_norm_per_channel": lambda F, lib, x, w, b, rm, rv: F.group_norm(x, 6),
}


@pytest.mark.parametrize("shape", [(4, 6, 5, 7), (3, 6, 11)])
@pytest.mark.parametrize("name", sorted(CHANNEL_NORMS))
def test_channel_norm_kernels_match_numpy_path_and_torch(name, shape, monkeypatch):
    """batch_norm (training) and group_norm run FusedChannelNorm on float32 (N, C, ...): outputs,
    gradients and running statistics against the NumPy path and torch, one thread and split."""
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
        return [y.detach().numpy(), *grads, rm.numpy(), rv.numpy()], type(y.grad_fn).__name__

    fused, node = run(F, na)
    assert node.startswith("FusedChannelNorm"), node
    monkeypatch.setattr(threads, "PARALLEL_MIN_ELEMENTS", 32)
    monkeypatch.setenv("NEURAL_ARCH_NUM_THREADS", "3")
    split, _ = run(F, na)
    kernels.set_enabled(False)
    try:
        numpy_path, node_n = run(F, na)
    finally:
        kernels.set_enabled(True)
    assert not node_n.startswith("Fused")
    ref, _ = run(TF, torch)
    what = ["y", "dx", "dw", "db", "running_mean", "running_var"]
    for i, a in enumerate(fused):
        np.testing.assert_array_equal(a, split[i], err_msg=f"{what[i]}: split over threads")
        np.testing.assert_allclose(a, numpy_path[i], rtol=1e-4, atol=1e-5, err_msg=f"{what[i]}: numpy path")
        np.testing.assert_allclose(a, ref[i], rtol=1e-4, atol=1e-5, err_msg=f"{what[i]}: torch")


@pytest.mark.parametrize("dims,keepdim", [(-1, False), ((1, 2), True), ((2,), False)])
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_trailing_sums_kernel(op, dims, keepdim, monkeypatch):
    """Sums and means over the last dims of float32 arrays take the row_sums kernel (float64
    accumulation): against float64 NumPy, the NumPy path and torch, values and gradients."""
    from neural_arch.ops import reduce

    calls = []
    real = kernels.get().row_sums
    monkeypatch.setattr(kernels.get(), "row_sums", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(reduce, "_TRAILING_MIN", 8)
    x = (np.random.default_rng(4).standard_normal((5, 6, 33)) * 10 + 3).astype(np.float32)
    up = np.random.default_rng(5).standard_normal(getattr(torch.tensor(x), op)(dims, keepdim=keepdim).shape)

    def run(lib, t):
        out = getattr(t, op)(dims, keepdim=keepdim)
        out.backward(lib.tensor(up.astype(np.float32)))
        return out.detach().numpy(), t.grad.numpy()

    y, g = run(na, na.tensor(x, requires_grad=True))
    assert calls, "the kernel path should have run"
    exact = getattr(x.astype(np.float64), op)(axis=dims, keepdims=keepdim)
    np.testing.assert_allclose(y, exact, rtol=1e-6, atol=1e-6)
    yt, gt = run(torch, torch.tensor(x, requires_grad=True))
    np.testing.assert_allclose(y, yt, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g, gt, rtol=1e-6)
    kernels.set_enabled(False)
    try:
        yn, gn = run(na, na.tensor(x, requires_grad=True))
    finally:
        kernels.set_enabled(True)
    np.testing.assert_allclose(y, yn, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(g, gn)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_loss_kernels_match_numpy_path_and_torch(reduction, monkeypatch):
    """mse_loss of float32 arrays of one shape runs FusedMSELoss: loss and both gradients against the
    NumPy path and torch, one thread and split over three."""
    from neural_arch.backend import threads

    r = np.random.default_rng(6)
    a, t = (r.standard_normal((37, 29)) * 3).astype(np.float32), r.standard_normal((37, 29)).astype(np.float32)

    def run(lib):
        x, y = lib.tensor(a.copy(), requires_grad=True), lib.tensor(t.copy(), requires_grad=True)
        loss = (F if lib is na else TF).mse_loss(x, y, reduction=reduction)
        (loss * 1.5).backward()
        return [loss.detach().numpy(), x.grad.numpy(), y.grad.numpy()], type(loss.grad_fn).__name__

    fused, node = run(na)
    assert node.startswith("FusedMSELoss"), node
    monkeypatch.setattr(threads, "PARALLEL_MIN_ELEMENTS", 64)
    monkeypatch.setenv("NEURAL_ARCH_NUM_THREADS", "3")
    split, _ = run(na)
    kernels.set_enabled(False)
    try:
        numpy_path, node_n = run(na)
    finally:
        kernels.set_enabled(True)
    assert not node_n.startswith("Fused")
    ref, _ = run(torch)
    for i, a_ in enumerate(fused):
        np.testing.assert_allclose(a_, split[i], rtol=1e-6)
        np.testing.assert_allclose(a_, numpy_path[i], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a_, ref[i], rtol=1e-5, atol=1e-6)
