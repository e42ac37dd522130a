"""CPU kernels by op family: each numba kernel beside its readable NumPy twin.

Each family module (``elementwise``, ``activation``, ``reduce``, ``norm``, ``softmax_loss``,
``conv``, ``depthwise``, ``pool``, ``dropout``, ``embedding``, ``optim``, ``scan``, ``half``) exports
plain array functions, e.g.
``norm.layer_norm_forward(x, w, b, eps) -> (y, mean, rstd)``. Each is made by :func:`dispatch`
from two implementations with one signature, side by side in the family file: the numba kernel's
wrapper and the NumPy twin (the readable reference the tests hold the kernel to). Which one runs
is decided here and nowhere else:

* the kernel, when numba is installed, ``NEURAL_ARCH_JIT`` is not ``0`` and the first argument is a
  non-empty float32 NumPy array (and no other floating array argument has another dtype);
* the twin otherwise: float64 and the other dtypes, ``NEURAL_ARCH_JIT=0``, no numba.

Why numba and not NumPy alone: a fused kernel reads its input once and writes its output once,
where the NumPy spelling of the same formula makes a temporary array per operator. For
bandwidth-bound ops (GELU, layer norm, softmax, cross-entropy, optimizer steps) that is the
whole difference.

``calls`` counts the kernel runs of each family function (tests check that a kernel really ran).
"""

from __future__ import annotations

import time

import numpy as np

from neural_arch.backend.kernels._dispatch import (
    active,
    calls,
    dispatch,
    enabled,
    numba_installed,
    set_enabled,
)


def warm() -> float:
    """Compile (or load from numba's on-disk cache) every kernel once, on small float32 arrays;
    returns seconds. ``make test`` calls it before the suite so that no single test pays for it."""
    from neural_arch.backend import spin  # noqa: PLC0415 - imports numba: only when asked

    t0 = time.perf_counter()
    if not active():
        return 0.0
    f = np.float32
    x = np.linspace(-2, 2, 64, dtype=f)
    x2, w, t = x.reshape(8, 8), np.ones(8, f), np.arange(8)
    for tanh, grad in ((False, False), (False, True), (True, False), (True, True)):
        activation.gelu(x, tanh, grad)
        activation.silu(x, 1.0, grad)
    for fn in (activation.relu_forward, activation.sigmoid_forward):
        fn(x, np.empty_like(x))
    activation.relu_backward(x, x), activation.sigmoid_backward(x, x)
    elementwise.multiply_kernel(x, x, np.empty_like(x)), elementwise.scale(x, 2.0)
    reduce.row_sums(x2, np.empty(8, f))
    y, mean, rstd = norm.layer_norm_forward(x2, w, w, 1e-5)
    norm.layer_norm_backward(x2, x2, w, mean, rstd)
    y, rstd = norm.rms_norm_forward(x2, w, 1e-5)
    norm.rms_norm_backward(x2, x2, w, rstd)
    x4, w4 = x.reshape(2, 2, 4, 4), w.reshape(2, 4)
    y, mean, var, rstd = norm.channel_norm_forward(x4, w4, w4, 1e-5)
    norm.channel_norm_backward(x4, x4, w4, mean, rstd)
    for log in (False, True):
        softmax_loss.softmax_backward(softmax_loss.softmax(x2, (1,), log), x2, (1,), log)
    for grad in (False, True):
        softmax_loss.class_nll(x2, t, None, -100, 0.0, True, grad)
    softmax_loss.squared_error(x, x), softmax_loss.scaled_difference(x, x, 2.0)
    img, wk = x.reshape(1, 4, 4, 4), x[:36].reshape(1, 4, 3, 3)
    for stride, pads in (((1, 1), (1, 1, 1, 1)), ((2, 2), (0, 0, 0, 0))):
        conv.conv2d_backward(conv.conv2d_forward(img, wk, None, stride, pads, (1, 1), 1), img, wk, stride, pads,
                             (1, 1), 1, True, True)
    conv.col2im(np.ones((2, 2, 3, 3, 2, 2), f).transpose(0, 3, 1, 2, 4, 5), (4, 4), (1, 1), (1, 1))
    winograd.convolve(img, winograd.transform_filter(wk), (1, 1), (4, 4), np.matmul)  # conv's 3x3 stride-1 path
    conv.im2col_copy_phases(np.empty((4, 3, 3, 1, 1, 1), f), conv._phases(img, (0, 0, 0, 0)), 0)  # the stem's
    for stride, out_hw in (((1, 1), (2, 2)), ((2, 2), (1, 1))):  # the unit-stride and the strided loops
        y = depthwise.depthwise_forward(img, wk.reshape(4, 3, 3), out_hw, stride, (1, 1))
        depthwise.depthwise_backward(y, img, wk.reshape(4, 3, 3), stride, (1, 1), True, True)
    u, bc, a, h0 = x[:16].reshape(2, 2, 4), x[:12].reshape(2, 2, 3), -np.ones((4, 3), f), np.zeros((2, 4, 3), f)
    scan.scan_backward(scan.scan_forward(u, u * u, a, bc, bc, h0)[0], u, u * u, a, bc, bc, h0)
    index, values = pool.max_pool2d_index(img, (2, 2), (2, 2), (0, 0), (1, 1), (2, 2))
    pool.max_pool_scatter(values, index, img.shape, False)
    dropout.apply_mask(x, np.uint64(1), np.uint64(1 << 20), 1.25)
    embedding.scatter_rows(x2, t, 8)
    z = np.zeros_like(x)
    optim.adam_step(x.copy(), x, z.copy(), z.copy(), None, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False)
    optim.adam_step(x.copy(), x, z.copy(), z.copy(), z.copy(), 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False)
    optim.sgd_step(x.copy(), x, None, 0.1, 0.9, 0.0, 0.0, False, False)
    optim.lion_step(x.copy(), x, z.copy(), 1e-4, 0.9, 0.99, 0.0, False)
    optim.rmsprop_step(x.copy(), x, z.copy(), z.copy(), z.copy(), 1e-2, 0.99, 1e-8, 0.0, 0.9, False)
    optim.adagrad_step(x.copy(), x, z.copy(), 1e-2, 1e-10, 0.0, False)
    if half.bfloat16 is not None:
        half.widen_kernel(np.zeros(8, np.uint16), np.empty(8, f)), half.narrow_kernel(x, np.empty(64, np.uint16))
    spin.serve(np.zeros(3, np.int64), 0, 0, 0, 0, np.zeros(16, np.int64))  # the thread hand-off's polls
    spin.wait_finished(np.zeros(2, np.int64), 0, 0)
    return time.perf_counter() - t0


# The families, each made with ``dispatch`` above (so imported after it): ``kernels.norm`` and so on.
from neural_arch.backend.kernels import (  # noqa: E402
    activation,
    conv,
    depthwise,
    dropout,
    elementwise,
    embedding,
    half,
    norm,
    optim,
    pool,
    reduce,
    scan,
    softmax_loss,
    winograd,
)
