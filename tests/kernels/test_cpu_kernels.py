"""The numba kernels against float64 NumPy math (the op-level tests compare both paths with torch)."""

import math

import numpy as np
import pytest

from neural_arch.backend import kernels

cpu = kernels.get()
pytestmark = pytest.mark.skipif(cpu is None, reason="numba not installed or NEURAL_ARCH_JIT=0")

rng = np.random.default_rng(0)
f32 = np.float32


def _erf64(x):
    return np.vectorize(math.erf)(x)


def test_gelu_exact_error_below_1e6_against_float64_math():
    x = np.linspace(-10, 10, 400_001).astype(f32)
    y = np.empty_like(x)
    cpu.gelu_forward(x, y)
    x64 = x.astype(np.float64)
    ref = 0.5 * x64 * (1 + _erf64(x64 / math.sqrt(2)))
    err = np.abs(y - ref).max()
    print(f"\nfused exact GELU (float32): max |error| vs float64 math on [-10, 10] = {err:.3g}")
    assert err < 1e-6


def test_gelu_derivative_matches_float64():
    x = (rng.standard_normal(10_000) * 3).astype(f32)
    y, d, y_plain = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    cpu.gelu_forward_with_grad(x, y, d)
    cpu.gelu_forward(x, y_plain)
    np.testing.assert_allclose(y, y_plain, rtol=1e-6, atol=1e-12)  # the same y, to an ulp or two
    x64 = x.astype(np.float64)
    ref = 0.5 * (1 + _erf64(x64 / math.sqrt(2))) + x64 * np.exp(-0.5 * x64**2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(d, ref, rtol=1e-5, atol=2e-6)


def test_gelu_tanh_and_silu():
    x = (rng.standard_normal(10_000) * 4).astype(f32)
    x64 = x.astype(np.float64)
    y, d, y2 = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    cpu.gelu_tanh_forward(x, y)
    u = math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3)
    np.testing.assert_allclose(y, 0.5 * x64 * (1 + np.tanh(u)), rtol=1e-5, atol=1e-6)
    cpu.gelu_tanh_forward_with_grad(x, y2, d)
    np.testing.assert_allclose(y2, 0.5 * x64 * (1 + np.tanh(u)), rtol=1e-5, atol=1e-6)
    t = np.tanh(u)
    ref = 0.5 * (1 + t) + 0.5 * x64 * (1 - t * t) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x64**2)
    np.testing.assert_allclose(d, ref, rtol=1e-4, atol=1e-5)
    for alpha in (1.0, 1.702):
        cpu.silu_forward(x, f32(alpha), y)
        s = 1 / (1 + np.exp(-alpha * x64))
        np.testing.assert_allclose(y, x64 * s, rtol=1e-5, atol=1e-6)
        cpu.silu_forward_with_grad(x, f32(alpha), y2, d)
        np.testing.assert_allclose(y2, x64 * s, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(d, s + alpha * x64 * s * (1 - s), rtol=1e-4, atol=1e-5)


def _layer_norm64(x, w, b, eps):
    mu = x.mean(1, keepdims=True)
    var = x.var(1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def test_layer_norm_forward_backward():
    x = (rng.standard_normal((64, 48)) * 3 + 1).astype(f32)
    w, b = rng.standard_normal(48).astype(f32), rng.standard_normal(48).astype(f32)
    g = rng.standard_normal((64, 48)).astype(f32)
    y, mean, rstd = np.empty_like(x), np.empty(64, f32), np.empty(64, f32)
    cpu.layer_norm_forward(x, w, b, f32(1e-5), y, mean, rstd)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(y, _layer_norm64(x64, w, b, 1e-5), rtol=1e-4, atol=1e-5)
    dx, dw, db = np.empty_like(x), np.zeros((3, 48), f32), np.zeros((3, 48), f32)
    cpu.layer_norm_backward(g, x, w, mean, rstd, dx, dw, db)
    # reference gradient by the closed form in float64
    mu, rs = x64.mean(1, keepdims=True), 1 / np.sqrt(x64.var(1, keepdims=True) + 1e-5)
    xh = (x64 - mu) * rs
    gw = g * w
    ref_dx = rs * (gw - gw.mean(1, keepdims=True) - xh * (gw * xh).mean(1, keepdims=True))
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(dw.sum(0), (g * xh).sum(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db.sum(0), g.sum(0), rtol=1e-4, atol=1e-4)


def test_rms_norm_forward_backward():
    x = rng.standard_normal((32, 40)).astype(f32)
    w = rng.standard_normal(40).astype(f32)
    g = rng.standard_normal((32, 40)).astype(f32)
    y, rstd = np.empty_like(x), np.empty(32, f32)
    cpu.rms_norm_forward(x, w, f32(1e-6), y, rstd)
    x64 = x.astype(np.float64)
    rs = 1 / np.sqrt((x64**2).mean(1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(y, x64 * rs * w, rtol=1e-5, atol=1e-6)
    dx, dw = np.empty_like(x), np.zeros((2, 40), f32)
    cpu.rms_norm_backward(g, x, w, rstd, dx, dw)
    xh = x64 * rs
    ref = rs * (g * w - xh * (g * w * xh).mean(1, keepdims=True))
    np.testing.assert_allclose(dx, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dw.sum(0), (g * xh).sum(0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("log", [False, True])
def test_softmax_rows_stable_at_1e4(log):
    x = (rng.standard_normal((16, 30)) * 1e4).astype(f32)
    g = rng.standard_normal((16, 30)).astype(f32)
    y, dx = np.empty_like(x), np.empty_like(x)
    cpu.softmax_forward(x, y, log)
    x64 = x.astype(np.float64)
    lse = x64.max(1, keepdims=True) + np.log(np.exp(x64 - x64.max(1, keepdims=True)).sum(1, keepdims=True))
    ref = x64 - lse if log else np.exp(x64 - lse)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    cpu.softmax_backward(y, g, dx, log)
    p = np.exp(x64 - lse)
    ref_dx = g - p * g.sum(1, keepdims=True) if log else p * (g - (g * p).sum(1, keepdims=True))
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-4, atol=1e-4)


def test_cross_entropy_rows_with_smoothing_and_ignore():
    n, c = 50, 17
    x = (rng.standard_normal((n, c)) * 5).astype(f32)
    t = rng.integers(0, c, n)
    t[3] = -100
    t[7] = c  # out of range: counted as bad, loss 0, no gradient (the caller raises)
    loss, dx, stats = np.empty(n, f32), np.empty_like(x), np.zeros((4, 3))
    cpu.cross_entropy_forward(x, t, -100, f32(0.1), loss, dx, True, stats)
    x64 = x.astype(np.float64)
    lse = np.log(np.exp(x64 - x64.max(1, keepdims=True)).sum(1)) + x64.max(1)
    safe_t = np.where((t < 0) | (t >= c), 0, t)
    ref = lse - 0.9 * x64[np.arange(n), safe_t] - 0.1 * x64.mean(1)
    ref[[3, 7]] = 0
    np.testing.assert_allclose(loss, ref, rtol=1e-5, atol=1e-5)
    p = np.exp(x64 - lse[:, None]) - 0.1 / c
    p[np.arange(n), safe_t] -= 0.9
    p[[3, 7]] = 0
    np.testing.assert_allclose(dx, p, rtol=1e-4, atol=1e-6)
    total, counted, bad = stats.sum(axis=0)  # four chunks of rows, summed
    assert (counted, bad) == (n - 2, 1)
    np.testing.assert_allclose(total, ref.sum(), rtol=1e-6)


def test_adam_step_matches_numpy_formula():
    p = rng.standard_normal(1000).astype(f32)
    g = rng.standard_normal(1000).astype(f32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    p0 = p.copy()
    lr, wd, bc1, bc2 = 1e-3, 0.01, 0.1, 0.001
    cpu.adam_step(p, g, m, v, f32(lr / bc1), f32(0.1), f32(0.999), f32(0.001), f32(1e-8), f32(0.0),
                  f32(1 - lr * wd), f32(math.sqrt(bc2)), False, m)
    pref = p0 * (1 - lr * wd)
    mref, vref = 0.1 * g, 0.001 * g * g
    pref = pref - (lr / bc1) * mref / (np.sqrt(vref) / math.sqrt(bc2) + 1e-8)
    np.testing.assert_allclose(p, pref, rtol=1e-6, atol=1e-7)


def test_embedding_backward_accumulates_repeats_and_skips_padding():
    ids = np.array([1, 3, 1, 0, 1])
    g = rng.standard_normal((5, 4)).astype(f32)
    out = np.zeros((5, 4), f32)
    cpu.embedding_backward(ids, g, out, 0)
    ref = np.zeros((5, 4), f32)
    np.add.at(ref, ids, g)
    ref[0] = 0
    np.testing.assert_allclose(out, ref, rtol=1e-6)


def test_kernels_run_when_numba_has_fewer_threads_than_cores(tmp_path):
    """NUMBA_NUM_THREADS=1 on a multi-core machine: big inputs must not ask numba for more threads."""
    import subprocess
    import sys

    code = ("import numpy as np, neural_arch as na, neural_arch.nn.functional as F\n"
            "x = na.tensor(np.ones((1100, 1000), np.float32), requires_grad=True)\n"
            "F.layer_norm(x, (1000,)).sum().backward()\nprint('ok')\n")
    env = {**__import__("os").environ, "NUMBA_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_calls_split_over_threads_agree_with_one_thread(monkeypatch):
    from neural_arch.backend import threads

    monkeypatch.setenv("NEURAL_ARCH_NUM_THREADS", "3")  # 3 row ranges, even on a 2-core machine
    x = (rng.standard_normal((64, 96)) * 2).astype(f32)
    w, b = rng.standard_normal(96).astype(f32), rng.standard_normal(96).astype(f32)
    g = rng.standard_normal((64, 96)).astype(f32)
    t = rng.integers(0, 96, 64)
    outs = {}
    for name, threshold in (("one thread", 1 << 40), ("split", 0)):  # what Kernel.__call__ picks by size
        monkeypatch.setattr(threads, "PARALLEL_MIN_ELEMENTS", threshold)
        y, d = np.empty(x.size, f32), np.empty(x.size, f32)
        cpu.gelu_forward_with_grad(x.reshape(-1), y, d)
        ln, mean, rstd = np.empty_like(x), np.empty(64, f32), np.empty(64, f32)
        cpu.layer_norm_forward(x, w, b, f32(1e-5), ln, mean, rstd)
        dx, dw, db = np.empty_like(x), np.zeros((12, 96), f32), np.zeros((12, 96), f32)
        cpu.layer_norm_backward(g, x, w, mean, rstd, dx, dw, db)
        loss, dce, stats = np.empty(64, f32), np.empty_like(x), np.zeros((12, 3))
        cpu.cross_entropy_forward(x, t, -100, f32(0.1), loss, dce, True, stats)
        outs[name] = (y, d, ln, mean, rstd, dx, dw.sum(0), db.sum(0), loss, dce, stats.sum(0))
    for a, b_ in zip(outs["one thread"], outs["split"]):
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-6)


def test_split_calls_work_in_a_forked_child_and_from_two_threads(monkeypatch):
    """The helper threads are per process (a fork has none), and a second caller runs its ranges itself."""
    import os
    import threading

    from neural_arch.backend import threads

    monkeypatch.setattr(threads, "PARALLEL_MIN_ELEMENTS", 0)
    x = rng.standard_normal(4096).astype(f32)
    ref_y, ref_d = np.empty_like(x), np.empty_like(x)
    cpu.gelu_forward_with_grad.serial(x, ref_y, ref_d)

    def check():
        y, d = np.empty_like(x), np.empty_like(x)
        cpu.gelu_forward_with_grad(x, y, d)
        return np.array_equal(y, ref_y) and np.array_equal(d, ref_d)

    assert check()  # starts the helpers in this process
    results = []
    workers = [threading.Thread(target=lambda: results.append(all(check() for _ in range(50)))) for _ in range(3)]
    for w_ in workers:
        w_.start()
    for w_ in workers:
        w_.join()
    assert results == [True] * 3
    pid = os.fork()
    if pid == 0:  # the child: must not wait for helpers that were not forked with it
        os._exit(0 if check() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

@pytest.mark.parametrize("geometry", [
    # (N, C, H, W, kh, kw, stride, top/left padding, dilation, bottom/right padding)
    (2, 3, 9, 7, 3, 2, (2, 1), (1, 2), (1, 2), (1, 2)),
    (2, 3, 5, 5, 3, 3, (3, 2), (0, 1), (2, 1), (0, 1)),
    (1, 2, 4, 4, 5, 5, (1, 1), (3, 3), (1, 1), (3, 3)),  # windows made only of padding
    (2, 4, 6, 6, 2, 2, (1, 1), (0, 0), (1, 1), (1, 1)),  # asymmetric, as padding="same" for an even kernel
])
def test_im2col_copy_and_col2im_sum_match_the_numpy_twins(geometry, monkeypatch):
    from neural_arch.backend import threads
    from neural_arch.ops.conv import col2im, crop_hw, im2col, pad_hw

    n, c, h, w, kh, kw, stride, (pt, pl), dil, (pb, pr) = geometry
    x = rng.standard_normal((n, c, h, w)).astype(f32)
    xp = pad_hw(x, (pt, pb, pl, pr))
    ho = (xp.shape[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (xp.shape[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    ref_cols = im2col(xp, (kh, kw), stride, dil, (ho, wo), batch_last=True)
    g = rng.standard_normal(ref_cols.shape).astype(f32)
    ref_gx = crop_hw(col2im(g.transpose(0, 3, 1, 2, 4, 5), xp.shape[2:], stride, dil).transpose(1, 0, 2, 3),
                     (pt, pb, pl, pr), (h, w))
    monkeypatch.setenv("NEURAL_ARCH_NUM_THREADS", "3")
    for threshold in (1 << 40, 0):  # one thread, then split by channels (c0 offsets)
        monkeypatch.setattr(threads, "PARALLEL_MIN_ELEMENTS", threshold)
        cols = np.full((c, kh, kw, n, ho, wo), np.nan, f32)
        cpu.im2col_copy(cols, x, 0, *stride, pt, pl, *dil)
        np.testing.assert_array_equal(cols, ref_cols)
        gx = np.full_like(x, np.nan)
        cpu.col2im_sum(g, gx, 0, *stride, pt, pl, *dil)
        np.testing.assert_allclose(gx, ref_gx, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("geometry", [
    # (N, C, H, W, kh, kw, top/left padding, dilation, bottom/right padding): unit strides, Wo = W
    (2, 3, 7, 6, 3, 3, (1, 1), (1, 1), (1, 1)),  # the common 3x3, padding 1
    (2, 3, 7, 9, 3, 5, (0, 2), (1, 1), (1, 2)),  # Ho != H, a wider kernel
    (1, 2, 6, 6, 3, 3, (2, 2), (2, 2), (2, 2)),  # dilated
    (2, 4, 5, 5, 2, 2, (0, 0), (1, 1), (1, 1)),  # asymmetric, as padding="same" for an even kernel
    (1, 2, 3, 3, 7, 7, (3, 3), (1, 1), (3, 3)),  # taps that fall wholly on padding
    (2, 3, 4, 4, 1, 1, (0, 0), (1, 1), (0, 0)),  # 1x1
])
def test_flat_im2col_and_col2im_match_the_numpy_twins(geometry, monkeypatch):
    """im2col_copy_flat / col2im_sum_flat (unit strides, Wo = W): one contiguous run per tap, the
    entries that wrap across a row edge zeroed; col2im_sum_flat zeroes them in its scratch input."""
    from neural_arch.backend import threads
    from neural_arch.ops.conv import col2im, crop_hw, im2col, pad_hw

    n, c, h, w, kh, kw, (pt, pl), dil, (pb, pr) = geometry
    x = rng.standard_normal((n, c, h, w)).astype(f32)
    xp = pad_hw(x, (pt, pb, pl, pr))
    ho = xp.shape[2] - dil[0] * (kh - 1)
    assert xp.shape[3] - dil[1] * (kw - 1) == w
    ref_cols = im2col(xp, (kh, kw), (1, 1), dil, (ho, w), batch_last=True)
    g = rng.standard_normal(ref_cols.shape).astype(f32)
    ref_gx = crop_hw(col2im(g.transpose(0, 3, 1, 2, 4, 5), xp.shape[2:], (1, 1), dil).transpose(1, 0, 2, 3),
                     (pt, pb, pl, pr), (h, w))
    monkeypatch.setenv("NEURAL_ARCH_NUM_THREADS", "3")
    for threshold in (1 << 40, 0):  # one thread, then split by channels (c0 offsets)
        monkeypatch.setattr(threads, "PARALLEL_MIN_ELEMENTS", threshold)
        cols = np.full((c, kh, kw, n, ho * w), np.nan, f32)
        cpu.im2col_copy_flat(cols, x.reshape(n, c, -1), 0, h, w, pt, pl, *dil)
        np.testing.assert_array_equal(cols.reshape(ref_cols.shape), ref_cols)
        gx = np.full((n, c, h * w), np.nan, f32)
        cpu.col2im_sum_flat(g.reshape(cols.shape).copy(), gx, 0, h, w, pt, pl, *dil)
        np.testing.assert_allclose(gx.reshape(x.shape), ref_gx, rtol=1e-6, atol=1e-6)


def test_relu_forward_keeps_nan_like_numpy_and_torch():
    x = np.array([-2.0, -0.0, 0.0, 1.5, np.nan, -np.inf, np.inf], f32)
    y = np.empty_like(x)
    cpu.relu_forward(x, y)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
