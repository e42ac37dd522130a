"""Ops that run a fused numba kernel (``neural_arch.backend.kernels.cpu``).

Each Function here is the fast twin of a readable NumPy Function elsewhere in
``ops`` (named in its docstring); the functional API (``F.gelu``,
``F.layer_norm``, ...) picks the twin through :func:`kernel_for` when numba is
available and the input is a non-empty float32 NumPy array: the kernel wins
at every size (GELU on 8x16 floats, fwd+bwd, 15 us against 54 us for the
NumPy twin's dozen ufunc calls; cross-entropy on 128x10, 18 us against 56 us).
``NEURAL_ARCH_JIT=0`` always selects the NumPy twin, and
``tests/ops/test_fused_paths.py`` checks that the two agree.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.backend import kernels, threads

def kernel_for(*arrays):
    """The kernel module if every array is a float32 NumPy array and the first has at least one dim
    and one element (empty and 0-d arrays take the NumPy twin: there is nothing to fuse)."""
    k = kernels.get()
    if k is None or arrays[0].size == 0 or arrays[0].ndim == 0:
        return None
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != np.float32:
            return None
    return k


def _flat(a):
    return np.ascontiguousarray(a).reshape(-1)


def _rows(a, d):
    return np.ascontiguousarray(a).reshape(-1, d)


def _f32(a):
    return a if a.dtype == np.float32 else a.astype(np.float32)


def _in_shape(a, shape):
    """``a`` with ``shape``; the array itself when it already has it. A gradient handed back as a
    fresh array (not a view) becomes a leaf's ``.grad`` without the engine copying it."""
    return a if a.shape == tuple(shape) else a.reshape(shape)


def _times(grad, deriv):
    """g dy/dx into a new array (the multiply kernel: split over the threads when large)."""
    g = _f32(grad)
    if g.shape != deriv.shape or not g.flags.c_contiguous:
        return g * deriv
    out = np.empty_like(deriv)
    kernels.get().multiply(g.reshape(-1), deriv.reshape(-1), out.reshape(-1))
    return out


def _map(kernel, x, *args):
    """Run an elementwise kernel ``kernel(x_flat, *args, out_flat)``; returns ``out`` shaped like ``x``."""
    out = np.empty_like(x)
    kernel(x.reshape(-1), *args, out.reshape(-1))
    return out


def _map_with_grad(kernel, x, *args):
    """Run ``kernel(x_flat, *args, out_flat, deriv_flat)``: the output and dy/dx, both shaped like ``x``."""
    out, deriv = np.empty_like(x), np.empty_like(x)
    kernel(x.reshape(-1), *args, out.reshape(-1), deriv.reshape(-1))
    return out, deriv


class FusedGELU(Function):
    """Kernel twin of ``activation.GELU`` (same math): exact y = x Phi(x), or the tanh form.

    When a gradient will be needed, the forward pass also writes dy/dx (it shares the erf/exp work
    with y) and saves it instead of x, so backward is one multiply: dL/dx = g dy/dx."""

    @staticmethod
    def forward(ctx, x, approximate):
        k = kernels.get()
        x = np.ascontiguousarray(x)
        tanh = approximate == "tanh"
        if not ctx.needs_input_grad[0]:
            return _map(k.gelu_tanh_forward if tanh else k.gelu_forward, x)
        out, deriv = _map_with_grad(k.gelu_tanh_forward_with_grad if tanh else k.gelu_forward_with_grad, x)
        ctx.save_for_backward(deriv)
        return out

    @staticmethod
    def backward(ctx, grad):
        (deriv,) = ctx.saved_tensors
        return _times(grad, deriv)


class FusedSiLU(Function):
    """Kernel twin of ``activation.SiLU`` (alpha = 1) and of quick_gelu (alpha = 1.702):
    y = x sigmoid(alpha x),   dy/dx = s + alpha x s (1 - s), written by the forward pass as FusedGELU does"""

    @staticmethod
    def forward(ctx, x, alpha):
        k = kernels.get()
        x = np.ascontiguousarray(x)
        if not ctx.needs_input_grad[0]:
            return _map(k.silu_forward, x, np.float32(alpha))
        out, deriv = _map_with_grad(k.silu_forward_with_grad, x, np.float32(alpha))
        ctx.save_for_backward(deriv)
        return out

    @staticmethod
    def backward(ctx, grad):
        (deriv,) = ctx.saved_tensors
        return _times(grad, deriv)


class FusedSoftmax(Function):
    """Kernel twin of ``activation.Softmax`` / ``LogSoftmax`` over the LAST dim."""

    @staticmethod
    def forward(ctx, x, log):
        k = kernels.get()
        d = x.shape[-1]
        x2 = _rows(x, d)
        y = np.empty_like(x2)
        k.softmax_forward(x2, y, log)
        ctx.save_for_backward(y)
        ctx.log, ctx.shape = log, x.shape
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        k = kernels.get()
        dx = np.empty(ctx.shape, np.float32)  # written through a (rows, d) view, returned whole
        k.softmax_backward(y, _rows(_f32(grad), y.shape[1]), dx.reshape(y.shape), ctx.log)
        return dx


def _chunks(rows: int) -> int:
    return max(1, min(threads.num_threads() * 4, rows))


class FusedMSELoss(Function):
    """Kernel twin of mse_loss's PointwiseLoss("mse") and its mean (or sum), for float32 x and y of
    one shape: l = sum (x - y)^2 [/ n],  dl/dx = 2 (x - y) [/ n],  dl/dy = -dl/dx.
    One read of x and y each way (the NumPy spelling: d = x - y, d * d, then the mean: 0.3 of
    torch's time on 4096x512); the squares are summed in float64. Saves x and y, not d."""

    @staticmethod
    def forward(ctx, x, y, mean):
        ctx.in_shape = x.shape
        x, y = _flat(x), _flat(y)
        parts = np.zeros(_chunks(x.size) if x.size >= threads.PARALLEL_MIN_ELEMENTS else 1)
        kernels.get().squared_error_sum(x, y, parts)
        total = float(parts.sum())
        ctx.save_for_backward(x, y)
        ctx.factor = 2 / x.size if mean else 2.0
        return np.asarray(total / x.size if mean else total, np.float32)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        s = float(grad) * ctx.factor
        out = []
        for sign, need in ((1.0, ctx.needs_input_grad[0]), (-1.0, ctx.needs_input_grad[1])):
            g = None
            if need:
                g = np.empty(x.size, np.float32)
                kernels.get().scaled_difference(x, y, np.float32(sign * s), g)
                g = g.reshape(ctx.in_shape)
            out.append(g)
        return tuple(out)


class FusedLayerNorm(Function):
    """Kernel twin of ``norm.Normalize`` for layer_norm (statistics over the trailing ``d`` elements):
    y = (x - mean) r w + b,  r = 1 / sqrt(var + eps);
    dL/dx = r (gw - mean(gw) - xhat mean(gw xhat)),  dL/dw = sum g xhat,  dL/db = sum g"""

    @staticmethod
    def forward(ctx, x, *affine, d, eps, has_w, has_b):
        k = kernels.get()
        x2 = _rows(x, d)
        rows = x2.shape[0]
        w = _flat(affine[0]) if has_w else np.ones(d, np.float32)
        b = _flat(affine[-1]) if has_b else np.zeros(d, np.float32)
        y = np.empty_like(x2)
        mean, rstd = np.empty(rows, np.float32), np.empty(rows, np.float32)
        k.layer_norm_forward(x2, w, b, np.float32(eps), y, mean, rstd)
        ctx.save_for_backward(x2, w, mean, rstd)
        ctx.shape, ctx.has_w, ctx.has_b, ctx.w_shape = x.shape, has_w, has_b, affine[0].shape if has_w else None
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x2, w, mean, rstd = ctx.saved_tensors
        k = kernels.get()
        rows, d = x2.shape
        chunks = _chunks(rows)
        dx = np.empty(ctx.shape, np.float32)  # written through a (rows, d) view, returned whole
        dw, db = np.zeros((chunks, d), np.float32), np.zeros((chunks, d), np.float32)
        k.layer_norm_backward(_rows(_f32(grad), d), x2, w, mean, rstd, dx.reshape(rows, d), dw, db)
        out = [dx]
        if ctx.has_w:
            out.append(_in_shape(dw.sum(axis=0), ctx.w_shape))
        if ctx.has_b:
            out.append(_in_shape(db.sum(axis=0), ctx.w_shape or (d,)))
        return tuple(out)


class FusedChannelNorm(Function):
    """Kernel twin of ``norm.Normalize`` for batch_norm (training) and group_norm on (N, C, ...) float32:
    x is viewed as a C-contiguous (A, R, K, S), statistics are taken per r over its A x K x S elements,
    w and b are per channel:
        batch_norm   (N, C, 1, HW): r = channel, a = sample
        group_norm   (1, N G, C / G, HW): r = (sample, group), k = channel of the group
    y = (x - mean_r) rstd_r w_c + b_c;   dL/dx = rstd (gw - mean(gw) - xhat mean(gw xhat)),
    dL/dw_c = sum g xhat,  dL/db_c = sum g  over channel c's elements.
    ``running=(running_mean, running_var, momentum)`` (batch_norm): updated in place, as Normalize does."""

    @staticmethod
    def forward(ctx, x, *affine, groups, eps, has_w, has_b, running=None):
        n, c = x.shape[:2]
        x = np.ascontiguousarray(x)
        y = np.empty_like(x)
        x4 = _blocks(x, groups)
        w = _per_block(_flat(affine[0]) if has_w else np.ones(c, np.float32), groups, n)
        b = _per_block(_flat(affine[-1]) if has_b else np.zeros(c, np.float32), groups, n)
        mean, var, rstd = (np.empty(x4.shape[1]) for _ in range(3))  # float64 (see the kernel)
        kernels.get().channel_norm_forward(mean, var, rstd, w, b, x4, _blocks(y, groups), 0, float(eps))
        if running is not None:
            from neural_arch.ops.norm import _update_running  # noqa: PLC0415 - norm.py imports this module

            _update_running(running, mean, var, x.size // x4.shape[1])
        ctx.save_for_backward(x, w, mean, rstd)
        ctx.groups, ctx.has_w, ctx.has_b = groups, has_w, has_b
        return y

    @staticmethod
    def backward(ctx, grad):
        x, w, mean, rstd = ctx.saved_tensors
        groups = ctx.groups
        g = np.ascontiguousarray(_f32(grad))
        dx = np.empty_like(x)
        dw, db = (np.empty(w.shape, np.float32) for _ in range(2))
        kernels.get().channel_norm_backward(mean, rstd, w, dw, db, _blocks(g, groups), _blocks(x, groups),
                                            _blocks(dx, groups), 0)
        out = [dx]
        for wanted, sums in ((ctx.has_w, dw), (ctx.has_b, db)):
            if wanted:  # per channel: batch_norm's (C, 1) as it is, group_norm's (N G, C / G) summed over N
                out.append(sums.reshape(-1) if groups is None else sums.reshape(x.shape[0], -1).sum(axis=0))
        return tuple(out)


def _blocks(a, groups):
    """The (A, R, K, S) view of a contiguous (N, C, ...) array: (N, C, 1, HW) for batch norm
    (``groups`` None), (1, N groups, C / groups, HW) for group norm."""
    n, c = a.shape[:2]
    if groups is None:
        return a.reshape(n, c, 1, -1)
    return a.reshape(1, n * groups, c // groups, -1)


def _per_block(v, groups, n):
    """A per-channel vector as the kernels' C-contiguous (R, K) array: (C, 1) for batch norm,
    v[(r mod G) C/G + k] for group norm's (N G, C / G)."""
    if groups is None:
        return v.reshape(-1, 1)
    return np.ascontiguousarray(np.broadcast_to(v.reshape(1, groups, -1), (n, groups, v.size // groups))
                                ).reshape(n * groups, -1)


class FusedRMSNorm(Function):
    """Kernel twin of ``norm.RMSNorm`` over the trailing ``d`` elements:
    y = x r w,  r = 1 / sqrt(mean(x^2) + eps);   dL/dx = r (gw - xhat mean(gw xhat)),  dL/dw = sum g xhat"""

    @staticmethod
    def forward(ctx, x, *w, d, eps):
        k = kernels.get()
        x2 = _rows(x, d)
        wf = _flat(w[0]) if w else np.ones(d, np.float32)
        y = np.empty_like(x2)
        rstd = np.empty(x2.shape[0], np.float32)
        k.rms_norm_forward(x2, wf, np.float32(eps), y, rstd)
        ctx.save_for_backward(x2, wf, rstd)
        ctx.shape, ctx.has_w, ctx.w_shape = x.shape, bool(w), w[0].shape if w else None
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x2, w, rstd = ctx.saved_tensors
        k = kernels.get()
        rows, d = x2.shape
        dx = np.empty(ctx.shape, np.float32)  # written through a (rows, d) view, returned whole
        dw = np.zeros((_chunks(rows), d), np.float32)
        k.rms_norm_backward(_rows(_f32(grad), d), x2, w, rstd, dx.reshape(rows, d), dw)
        return (dx, _in_shape(dw.sum(axis=0), ctx.w_shape)) if ctx.has_w else dx


class FusedCrossEntropy(Function):
    """Kernel twin of ``loss.ClassNLL`` (fused, no class weights) on (N, C) logits:
    l_n = lse(x_n) - (1 - e) x_{n,t} - e mean(x_n);   dl_n/dx_n = softmax(x_n) - (1 - e) onehot(t) - e / C.
    The gradient is computed in the forward pass (one read of the logits) when it will be needed."""

    @staticmethod
    def forward(ctx, x, target, ignore_index, smoothing, reduction):
        k = kernels.get()
        x = np.ascontiguousarray(x)
        n = x.shape[0]
        want = bool(ctx.needs_input_grad[0])
        loss = np.empty(n, np.float32)
        dx = np.empty_like(x) if want else np.empty((1, 1), np.float32)
        stats = np.zeros((_chunks(n) if x.size >= threads.PARALLEL_MIN_ELEMENTS else 1, 3))
        k.cross_entropy_forward(x, target.astype(np.int64, copy=False), ignore_index, np.float32(smoothing), loss,
                                dx, want, stats)
        total, counted, bad = (stats.sum(axis=0) if stats.shape[0] > 1 else stats[0]).tolist()
        if bad:
            from neural_arch.ops.loss import _check_targets  # noqa: PLC0415 - raises, naming a bad target

            _check_targets(target, x.shape[1], ignore_index, "cross_entropy")
        ctx.save_for_backward(dx if want else None)
        ctx.reduction = reduction
        if reduction == "none":
            return loss
        if reduction == "sum":
            return np.asarray(total, dtype=np.float32)
        ctx.denom = counted
        return np.asarray(total / counted if counted else np.nan, dtype=np.float32)  # all ignored: NaN, as torch

    @staticmethod
    def backward(ctx, grad):
        (dx,) = ctx.saved_tensors
        if ctx.reduction == "none":
            return dx * _f32(grad)[:, None]
        scale = float(grad)  # (Python floats: a 0-d array's arithmetic costs a microsecond a step)
        if ctx.reduction == "mean":
            scale = scale / ctx.denom if ctx.denom else 0.0  # all targets ignored: dx is 0, as torch's
        out = np.empty_like(dx)
        kernels.get().scale(dx.reshape(-1), np.float32(scale), out.reshape(-1))
        return out
