"""Optional fused CPU kernels (numba), each with a NumPy reference beside it.

The ops in :mod:`neural_arch.ops` ask ``kernels.get()`` for the kernel
module; it returns ``None`` when numba is not installed, when the
environment sets ``NEURAL_ARCH_JIT=0``, or when compiling failed, and the
op then runs its readable NumPy implementation. Tests run both paths and
check that they agree.

Why numba and not NumPy alone: a fused kernel reads its input once and
writes its output once, where the NumPy spelling of the same formula makes a
temporary array per operator. For bandwidth-bound ops (GELU, layer norm,
softmax, cross-entropy, optimizer steps) that is the whole difference.
"""

from __future__ import annotations

import os

_module = None
_tried = False


def enabled_by_env() -> bool:
    return os.environ.get("NEURAL_ARCH_JIT", "1").strip().lower() not in ("0", "false", "no", "off")


def get():
    """The numba kernel module, or None (then use the NumPy path)."""
    global _module, _tried
    if not _tried:
        _tried = True
        if enabled_by_env():
            try:
                from neural_arch.backend.kernels import cpu  # noqa: PLC0415

                _module = cpu
            except ImportError:
                _module = None
    return _module


def set_enabled(flag: bool) -> None:
    """Switch the kernels on or off for this process (tests compare both paths)."""
    global _module, _tried
    if flag:
        _tried = False
        os.environ["NEURAL_ARCH_JIT"] = "1"
        get()
    else:
        _module, _tried = None, True


def warm() -> float:
    """Compile (or load from numba's on-disk cache) every kernel for float32; returns seconds.

    Compiling costs ~0.5 s per kernel the first time; with a warm cache all of them load in
    well under a second. ``make test`` calls this once before the suite so that no single
    test pays for compilation.
    """
    import time  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    t0 = time.perf_counter()
    k = get()
    if k is None:
        return 0.0
    f = np.float32
    x = np.linspace(-2, 2, 64, dtype=f)
    out = np.empty_like(x)
    x2, y2, d2 = x.reshape(8, 8), np.empty((8, 8), f), np.empty((8, 8), f)
    w, r1, r2 = np.ones(8, f), np.empty(8, f), np.empty(8, f)
    parts = np.zeros((2, 8), f)
    calls = [
        (k.gelu_forward, x, out), (k.gelu_tanh_forward, x, out), (k.silu_forward, x, f(1.0), out),
        (k.gelu_forward_with_grad, x, out, x.copy()), (k.gelu_tanh_forward_with_grad, x, out, x.copy()),
        (k.silu_forward_with_grad, x, f(1.0), out, x.copy()),
        (k.layer_norm_forward, x2, w, w, f(1e-5), y2, r1, r2),
        (k.layer_norm_backward, x2, x2, w, r1, r2, d2, parts, parts.copy()),
        (k.rms_norm_forward, x2, w, f(1e-6), y2, r1), (k.rms_norm_backward, x2, x2, w, r1, d2, parts),
    ]
    for log in (False, True):
        calls += [(k.softmax_forward, x2, y2, log), (k.softmax_backward, y2, x2, d2, log)]
    for want in (False, True):
        calls.append((k.cross_entropy_forward, x2, np.arange(8, dtype=np.int64), -100, f(0.0), r1, d2, want,
                      np.zeros((1, 3))))
    for ams in (False, True):
        calls.append((k.adam_step, x.copy(), x, np.zeros_like(x), np.zeros_like(x), f(1e-3), f(0.1), f(0.999),
                      f(0.001), f(1e-8), f(0.0), f(1.0), f(1.0), ams, np.zeros_like(x)))
    calls += [(k.sgd_step, x.copy(), x, np.zeros_like(x), f(0.1), f(0.0), f(0.9), f(1.0), False, True, False, f(1.0)),
              (k.lion_step, x.copy(), x, np.zeros_like(x), f(1e-4), f(1.0), f(0.9), f(0.1), f(0.99), f(0.01), f(1.0)),
              (k.rmsprop_step, x.copy(), x, np.zeros_like(x), np.zeros_like(x), np.zeros_like(x), f(1e-3), f(0.99),
               f(0.01), f(1e-8), f(0.0), f(0.9), True, True, True, f(0.99), f(1.0)),
              (k.adagrad_step, x.copy(), x, np.zeros_like(x), f(1e-2), f(1e-10), f(0.0), f(1.0))]
    calls += [(k.dropout_apply, x, out, np.uint64(1), 0, np.uint64(1 << 20), f(1.25)),
              (k.sigmoid_forward, x, out), (k.sigmoid_backward, x, x, out), (k.row_sums, x2, r1),
              (k.squared_error_sum, x, x, np.zeros(2)), (k.scaled_difference, x, x, f(2.0), out),
              (k.channel_norm_forward, np.empty(2), np.empty(2), np.empty(2), w.reshape(2, 4), w.reshape(2, 4),
               x.reshape(2, 2, 4, 4), out.reshape(2, 2, 4, 4), 0, 1e-5),
              (k.channel_norm_backward, np.zeros(2), np.ones(2), w.reshape(2, 4), r1.reshape(2, 4), r2.reshape(2, 4),
               x.reshape(2, 2, 4, 4), x.reshape(2, 2, 4, 4), out.reshape(2, 2, 4, 4), 0),
              (k.multiply, x, x, out), (k.scale, x, f(2.0), out), (k.relu_forward, x, out), (k.relu_backward, x, x, out),
              (k.col2im_add, np.ones((2, 3, 3, 2, 4, 4), f), np.zeros((2, 2, 6, 6), f), 1, 1, 1, 1),
              (k.im2col_copy, np.empty((2, 3, 3, 1, 4, 4), f), np.ones((1, 2, 4, 4), f), 0, 1, 1, 1, 1, 1, 1),
              (k.col2im_sum, np.ones((2, 3, 3, 1, 4, 4), f), np.empty((1, 2, 4, 4), f), 0, 1, 1, 1, 1, 1, 1),
              (k.im2col_copy_flat, np.empty((2, 3, 3, 1, 16), f), np.ones((1, 2, 16), f), 0, 4, 4, 1, 1, 1, 1),
              (k.col2im_sum_flat, np.ones((2, 3, 3, 1, 16), f), np.empty((1, 2, 16), f), 0, 4, 4, 1, 1, 1, 1),
              (k.max_pool2d_index, x2.reshape(1, 8, 8), np.empty((1, 4, 4), np.int64), np.empty((1, 4, 4), f),
               2, 2, 2, 2, 0, 0, 1, 1),
              (k.max_pool2d_backward, np.zeros((1, 16), np.int64), np.ones((1, 16), f), np.zeros((1, 64), f))]
    for kern, *args in calls:
        kern.serial(*args)
    from neural_arch.backend import spin  # noqa: PLC0415 - the thread hand-off's polls

    spin.serve(np.zeros(3, np.int64), 0, 0, 0, np.zeros(16, np.int64))
    spin.wait_finished(np.zeros(2, np.int64), 0, 0)
    k.embedding_backward(np.arange(8, dtype=np.int64), x2, y2, -1)
    return time.perf_counter() - t0
