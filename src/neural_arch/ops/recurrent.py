"""The recurrent layers' time loop: one op per layer and direction (RNN, LSTM, GRU).

Each Function's forward runs the whole sequence and saves what each step computed; its backward
runs back-propagation through time in one call, so autograd sees one node per layer-direction,
not one per time step. Per step the work is one GEMM (``h W_hh^T``) and one pass of the cell's
elementwise arithmetic (``backend/kernels/recurrent.py``); the input projection of all steps is
one GEMM before the loop, and the weight gradients are one GEMM each after backward's loop.

The per-step products are small (batch rows x hidden): each time loop runs inside one
single-threaded BLAS scope and calls NumPy's matmul straight into a buffer (``_times``), and
the forward multiplies by a row-major copy of ``W_hh^T``: OpenBLAS was markedly slower on these
shapes with the transposed view as its right operand (BENCHMARKS.md has the figures).

float32 LSTMs run the whole time loop of a layer-direction (forward, and backward) in one numba
call instead (``backend/kernels/recurrent_sequence.py``: BLAS's GEMM by address and the same cell
arithmetic, with no return to Python per step) when the kernels are on and BLAS's address is known;
the Python loop below stays the readable path, and the one float64 and JIT-off runs take.

Shapes (time-major): x (T, B, I); h0 (B, P) where P is the hidden size, or the projection size of
an LSTM with ``proj_size``; c0 (B, H). Weights with torch's shapes: W_ih (G H, I), W_hh (G H, P),
b_ih, b_hh (G H,), W_hr (P, H); G = 1, 4, 3 for RNN, LSTM, GRU.

Variable lengths (packed sequences): ``batch_sizes[t]`` rows are active at step t, the batch
sorted by decreasing length (torch's PackedSequence layout), so the active rows are always a
prefix. A row's state stops changing after its last step (forward) or starts at its last step
(``reverse``), its outputs past its length are zero, and the state left in h at the end is each
row's final state -- h_n -- in both directions.

Each Function returns one flat array ``[y, h_n(, c_n)]`` (a Function has one output); the
wrappers below cut it into tensors, and gradients reaching those pieces come back as one array.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np

from neural_arch.autograd.autocast import LOWER, PROMOTE, autocast_args
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend import threads
from neural_arch.backend.gemm import matmul
from neural_arch.backend.kernels.recurrent import (
    gru_step_backward,
    gru_step_forward,
    lstm_step_backward,
    lstm_step_forward,
    sequence_gemm,
)
from neural_arch.errors import ConfigError, ShapeError, shape_str

__all__ = ["gru_layer", "lstm_layer", "rnn_layer"]


def _steps(T: int, reverse: bool):
    return range(T - 1, -1, -1) if reverse else range(T)


def _active(batch_sizes, T: int, B: int):
    """The number of active rows at each step (all B when there are no lengths)."""
    return [B] * T if batch_sizes is None else [int(n) for n in batch_sizes]


@contextmanager
def _blas_one_thread():
    """BLAS on one thread for a whole time loop: set once, not around each small product (``threads``)."""
    threads.blas_enter()
    try:
        yield
    finally:
        threads.blas_exit()


# Per-step products of at least this many flops (2 B K N) are cut into column blocks, one per thread
# (``threads.run_split``); None: never. A time loop calls them back to back, so the helpers are still
# polling from the step before. Off by default: on the loaded 2-core host where it was written a helper
# often missed its time slice and the split loops came out slower; ``python -m benchmarks rnn`` times
# both (BENCHMARKS.md). A split that takes longer than STEP_SPLIT_GIVE_UP_S ends the splitting for
# the rest of that loop.
STEP_SPLIT_FLOPS: int | None = None
STEP_SPLIT_GIVE_UP_S = 1e-3


def _times(w):
    """``product(a, out)``: out = a @ w, for the per-step products of a loop run in ``_blas_one_thread``:
    NumPy's matmul straight into ``out``, with none of ``backend.gemm.matmul``'s tests per call (or its
    column blocks on all threads, see ``STEP_SPLIT_FLOPS``). Half-precision and non-NumPy operands go
    through ``matmul`` (BLAS has no half GEMM). Make one per loop: it keeps whether splitting still pays."""
    if type(w) is not np.ndarray or w.dtype.itemsize < 4:
        return lambda a, out: matmul(a, w, out=out)
    n = w.shape[1]
    k = min(threads.policy.num_threads, n // 16)
    if STEP_SPLIT_FLOPS is None or k < 2 or not threads.blas_is_ours():
        return lambda a, out: np.matmul(a, w, out=out)
    cuts = [16 * round(n * i / k / 16) for i in range(k)] + [n]  # blocks start on 64-byte boundaries
    blocks = [(lo, hi, w[:, lo:hi]) for lo, hi in zip(cuts, cuts[1:])]
    split = [True]

    def product(a, out):
        if not split[0] or 2 * a.size * n < STEP_SPLIT_FLOPS:
            return np.matmul(a, w, out=out)
        start = time.perf_counter()
        threads.run_split(_product_into, [(a, block, out[:, lo:hi]) for lo, hi, block in blocks], products=True)
        split[0] = time.perf_counter() - start < STEP_SPLIT_GIVE_UP_S
        return out

    return product


def _product_into(a, b, out):
    np.matmul(a, b, out=out)


def _row_major(w_t):
    """A C-ordered copy of a transposed weight view (``W_hh^T``), made once per sequence: the per-step
    products with it as their right operand run faster than with the view (see the module doc)."""
    return np.ascontiguousarray(w_t)


def _sequence_gemm(x, *weights):
    """BLAS's address for the one-call time loop of an LSTM (``kernels.recurrent.sequence_gemm``), or 0
    (then the Python loop runs): float32 NumPy arrays only."""
    if type(x) is not np.ndarray or any(w is not None and (type(w) is not np.ndarray or w.dtype != x.dtype)
                                        for w in weights):
        return 0
    return sequence_gemm(x.dtype)


def _whole_loop():
    """``backend/kernels/recurrent_sequence.py``, imported when an LSTM first runs its loop there (numba)."""
    from neural_arch.backend.kernels import recurrent_sequence  # noqa: PLC0415 - loads numba

    return recurrent_sequence


def _input_projection(x, w_ih, bias):
    """x W_ih^T + bias for every step at once: (T, B, G H)."""
    T, B, n_in = x.shape
    xg = matmul(x.reshape(T * B, n_in), w_ih.T).reshape(T, B, w_ih.shape[0])
    if bias is not None:
        xg += bias
    return xg


def _weight_grads(d, x, w_ih, needs_x):
    """dL/dW_ih = d^T x, dL/db = sum d, and dL/dx = d W_ih (when needed), d = dL/d(input projection)."""
    T, B, G = d.shape
    d2 = d.reshape(T * B, G)
    dw_ih = matmul(d2.T, x.reshape(T * B, x.shape[2]))
    dx = matmul(d2, w_ih).reshape(x.shape) if needs_x else None
    return dx, dw_ih, d2.sum(axis=0)


def lstm_weight_grads(dgates, xh, w_ih, needs_x):
    """(dL/dx or None, dL/dW_ih, dL/dW_hh, dL/db) of an LSTM layer-direction from its gate gradients
    ``dgates`` (T, B, 4 H) and ``xh`` (T, B, I + P), the [x_t | h_{t-1}] its forward kept side by side."""
    T, B, G = dgates.shape
    n_in = w_ih.shape[1]
    d2 = dgates.reshape(T * B, G)
    # [dW_ih | dW_hh]^T = [x | h_prev]^T d in one product; each gradient is a (column-major) view of it
    dw_t = matmul(xh.reshape(T * B, xh.shape[2]).T, d2)
    dx = matmul(d2, w_ih).reshape(T, B, n_in) if needs_x else None
    return dx, dw_t[:n_in].T, dw_t[n_in:].T, d2.sum(axis=0)


class RNNLayer(Function):
    """Elman RNN, one layer-direction, phi = tanh or relu:

        h_t = phi(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)          y_t = h_t

    BPTT with dh_t = dL/dy_t + dL/dh_t (from step t + 1) and da_t = dh_t phi'(a_t):

        dL/dh_{t-1} = da_t W_hh      dL/dW_hh = sum_t da_t^T h_{t-1}     dL/db_hh = dL/db_ih = sum_t da_t
        dL/dx_t = da_t W_ih           dL/dW_ih = sum_t da_t^T x_t

    Inputs: x, h0, W_ih, W_hh (, b_ih, b_hh). Output: flat [y (T, B, H), h_n (B, H)].
    """

    # torch's CPU rnn_tanh/rnn_relu run linear (on the list) on x and on h, so y and h_n come out in the
    # autocast dtype whatever the input's
    half = "float32"
    autocast = LOWER

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, *biases, nonlinearity="tanh", reverse=False, batch_sizes=None):
        T, B, _ = x.shape
        H = w_hh.shape[0]
        xg = _input_projection(x, w_ih, biases[0] + biases[1] if biases else None)
        ys = np.zeros((T, B, H), x.dtype)
        h_prev = np.zeros((T, B, H), x.dtype)
        h = h0.copy()
        hg = np.empty((B, H), x.dtype)
        active = _active(batch_sizes, T, B)
        times_w_hh_t = _times(_row_major(w_hh.T))
        with _blas_one_thread():
            for t in _steps(T, reverse):
                n = active[t]
                h_prev[t, :n] = h[:n]
                a = times_w_hh_t(h[:n], hg[:n])
                a += xg[t, :n]
                if nonlinearity == "tanh":
                    np.tanh(a, out=ys[t, :n])
                else:
                    np.maximum(a, 0, out=ys[t, :n])
                h[:n] = ys[t, :n]
        ctx.params = (nonlinearity, reverse, active, bool(biases))
        ctx.save_for_backward(x, w_ih, w_hh, ys, h_prev)
        return np.concatenate([ys.ravel(), h.ravel()])

    @staticmethod
    def backward(ctx, grad):
        nonlinearity, reverse, active, has_bias = ctx.params
        x, w_ih, w_hh, ys, h_prev = ctx.saved_tensors
        T, B, H = ys.shape
        gy = grad[:T * B * H].reshape(T, B, H)
        dh = grad[T * B * H:].reshape(B, H).copy()
        da = np.zeros_like(ys)
        times_w_hh = _times(w_hh)
        with _blas_one_thread():
            for t in reversed(_steps(T, reverse)):
                n = active[t]
                d = dh[:n] + gy[t, :n]
                y = ys[t, :n]
                da[t, :n] = d * (1 - y * y) if nonlinearity == "tanh" else d * (y > 0)
                times_w_hh(da[t, :n], dh[:n])
        dx, dw_ih, db = _weight_grads(da, x, w_ih, ctx.needs_input_grad[0])
        dw_hh = matmul(da.reshape(T * B, H).T, h_prev.reshape(T * B, H))
        return (dx, dh, dw_ih, dw_hh) + ((db, db.copy()) if has_bias else ())


class LSTMLayer(Function):
    """LSTM, one layer-direction (torch's gate order i, f, g, o; optional projection W_hr):

        a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh        i, f, o = sigmoid(.), g = tanh(.)
        c_t = f c_{t-1} + i g        r_t = o tanh(c_t)         h_t = y_t = r_t (or r_t W_hr^T)

    BPTT with dh_t = dL/dy_t + dL/dh_t (from step t + 1), dr_t = dh_t (or dh_t W_hr):

        dc_t += dr_t o (1 - tanh(c_t)^2)                  dL/dc_{t-1} = dc_t f
        da_i = dc_t g i (1 - i)   da_f = dc_t c_{t-1} f (1 - f)   da_g = dc_t i (1 - g^2)
        da_o = dr_t tanh(c_t) o (1 - o)                   dL/dh_{t-1} = da_t W_hh
        dL/dW_hh = sum_t da_t^T h_{t-1}    dL/dW_ih = sum_t da_t^T x_t    dL/db = sum_t da_t
        dL/dW_hr = sum_t dh_t^T r_t        dL/dx_t = da_t W_ih

    Inputs: x, h0, c0, W_ih, W_hh (, b_ih, b_hh) (, W_hr). Output: flat [y, h_n, c_n].
    """

    half = "float32"
    # torch's CPU LSTM runs oneDNN's mkldnn_rnn_layer, on the list (LSTMCell: nn.modules.rnn._composed_lstm)
    autocast = LOWER

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, *rest, has_bias=True, reverse=False, batch_sizes=None):
        T, B, _ = x.shape
        H = c0.shape[1]
        P = h0.shape[1]
        w_hr = rest[-1] if len(rest) in (1, 3) else None
        n_in = x.shape[2]
        packed = batch_sizes is not None  # rows past their length stay zero, as the Python loop leaves them
        new = np.zeros if packed else np.empty
        xg = _input_projection(x, w_ih, rest[0] + rest[1] if has_bias else None)
        gates = np.empty((T, B, 4 * H), x.dtype)
        tanh_c = np.empty((T, B, H), x.dtype)
        c_prev = new((T, B, H), x.dtype)
        # [x_t | h_{t-1}] side by side: backward's dW_ih and dW_hh are then one product
        xh = new((T, B, n_in + P), x.dtype)
        xh[:, :, :n_in] = x
        h_prev = xh[:, :, n_in:]
        ny = T * B * P
        out = np.empty(ny + B * P + B * H, x.dtype)  # the flat output [y, h_n, c_n]; ys is written in place
        ys = out[:ny].reshape(T, B, P)
        if packed:
            ys[...] = 0
        rs = ys if w_hr is None else new((T, B, H), x.dtype)  # r_t = o tanh(c_t), before the projection
        h, c = h0.copy(), c0.copy()
        hg = np.empty((B, 4 * H), x.dtype)
        active = _active(batch_sizes, T, B)
        w_hh_t = _row_major(w_hh.T)
        w_hr_t = None if w_hr is None else _row_major(w_hr.T)
        gemm = _sequence_gemm(x, w_hh, w_hr)
        times_w_hh_t = _times(w_hh_t)
        times_w_hr_t = None if w_hr is None else _times(w_hr_t)
        with _blas_one_thread():
            if gemm:  # the same steps in one numba call
                _whole_loop().lstm_sequence_forward(gemm, np.ascontiguousarray(xg), w_hh_t, w_hr_t, h, c, hg, gates,
                                                    tanh_c, c_prev, h_prev, rs, ys, np.array(active, np.int64), reverse)
            for t in () if gemm else _steps(T, reverse):
                n = active[t]
                h_prev[t, :n] = h[:n]
                c_prev[t, :n] = c[:n]
                times_w_hh_t(h[:n], hg[:n])
                lstm_step_forward(xg[t, :n], hg[:n], c_prev[t, :n], gates[t, :n], tanh_c[t, :n], c[:n], rs[t, :n])
                if w_hr is not None:
                    times_w_hr_t(rs[t, :n], ys[t, :n])
                h[:n] = ys[t, :n]
        ctx.params = (reverse, active, has_bias, w_hr is not None)
        ctx.save_for_backward(w_ih, w_hh, w_hr, gates, tanh_c, c_prev, xh, rs)
        out[ny:ny + B * P] = h.ravel()
        out[ny + B * P:] = c.ravel()
        return out

    @staticmethod
    def backward(ctx, grad):
        reverse, active, has_bias, has_proj = ctx.params
        w_ih, w_hh, w_hr, gates, tanh_c, c_prev, xh, rs = ctx.saved_tensors
        T, B, H = tanh_c.shape
        n_in = w_ih.shape[1]
        P = xh.shape[2] - n_in
        ny = T * B * P
        gy = grad[:ny].reshape(T, B, P)
        dh = grad[ny:ny + B * P].reshape(B, P).copy()
        dc = grad[ny + B * P:].reshape(B, H).copy()
        packed = any(n != B for n in active)  # inactive rows must hold zeros for the weight gradients
        dgates = np.zeros_like(gates) if packed else np.empty_like(gates)
        dhs = np.zeros((T, B, P), dh.dtype) if has_proj else None  # dL/dh_t at each step, for dW_hr
        dc_next = np.empty_like(dc)
        dr = np.empty((B, H), dc.dtype) if has_proj else None
        gemm = _sequence_gemm(dh, w_hh, w_hr)
        times_w_hh = _times(w_hh)
        times_w_hr = _times(w_hr) if has_proj else None
        with _blas_one_thread():
            if gemm:  # the same steps in one numba call
                _whole_loop().lstm_sequence_backward(
                    gemm, np.ascontiguousarray(gy), np.ascontiguousarray(w_hh),
                    None if w_hr is None else np.ascontiguousarray(w_hr), dh, dc, dc_next,
                    np.empty((B, H), dc.dtype) if dr is None else dr, gates, tanh_c, c_prev, dgates, dhs,
                    np.array(active, np.int64), reverse)
            for t in () if gemm else reversed(_steps(T, reverse)):
                n = active[t]
                d = np.add(dh[:n], gy[t, :n], out=dhs[t, :n] if has_proj else None)
                if has_proj:
                    d = times_w_hr(d, dr[:n])
                lstm_step_backward(d, dc[:n], gates[t, :n], c_prev[t, :n], tanh_c[t, :n], dgates[t, :n],
                                   dc_next[:n])
                dc[:n] = dc_next[:n]
                times_w_hh(dgates[t, :n], dh[:n])
        dx, dw_ih, dw_hh, db = lstm_weight_grads(dgates, xh, w_ih, ctx.needs_input_grad[0])
        grads = (dx, dh, dc, dw_ih, dw_hh) + ((db, db.copy()) if has_bias else ())
        if has_proj:
            grads += (matmul(dhs.reshape(T * B, P).T, rs.reshape(T * B, H)),)
        return grads


class GRULayer(Function):
    """GRU, one layer-direction (torch's gate order r, z, n):

        r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)      z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
        n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn))     h_t = y_t = (1 - z) n + z h_{t-1}

    BPTT with dh_t = dL/dy_t + dL/dh_t (from step t + 1) and hn = h_{t-1} W_hn^T + b_hn:

        dn = dh_t (1 - z)(1 - n^2)    dz = dh_t (h_{t-1} - n) z (1 - z)    dr = dn hn r (1 - r)
        dxg = (dr, dz, dn)    dhg = (dr, dz, r dn)    dL/dh_{t-1} = dh_t z + dhg W_hh
        dL/dW_ih = sum_t dxg^T x_t   dL/db_ih = sum_t dxg   dL/dW_hh = sum_t dhg^T h_{t-1}   dL/db_hh = sum_t dhg

    Inputs: x, h0, W_ih, W_hh (, b_ih, b_hh). Output: flat [y (T, B, H), h_n (B, H)].
    """

    # torch's CPU GRU runs linear (on the list) for the gates, then mixes them with h in h's dtype: the
    # weights are lowered at entry (gru_layer), and the layer runs in the widest dtype of x, h0 and them
    half = "float32"
    autocast = PROMOTE

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, *biases, reverse=False, batch_sizes=None):
        T, B, _ = x.shape
        H = h0.shape[1]
        xg = _input_projection(x, w_ih, biases[0] if biases else None)
        gates = np.empty((T, B, 3 * H), x.dtype)
        hgs = np.empty((T, B, 3 * H), x.dtype)
        h_prev = np.zeros((T, B, H), x.dtype)
        ys = np.zeros((T, B, H), x.dtype)
        h = h0.copy()
        active = _active(batch_sizes, T, B)
        times_w_hh_t = _times(_row_major(w_hh.T))
        with _blas_one_thread():
            for t in _steps(T, reverse):
                n = active[t]
                h_prev[t, :n] = h[:n]
                hg = times_w_hh_t(h[:n], hgs[t, :n])
                if biases:
                    hg += biases[1]
                gru_step_forward(xg[t, :n], hg, h_prev[t, :n], gates[t, :n], ys[t, :n])
                h[:n] = ys[t, :n]
        ctx.params = (reverse, active, bool(biases))
        ctx.save_for_backward(x, w_ih, w_hh, gates, hgs, h_prev)
        return np.concatenate([ys.ravel(), h.ravel()])

    @staticmethod
    def backward(ctx, grad):
        reverse, active, has_bias = ctx.params
        x, w_ih, w_hh, gates, hgs, h_prev = ctx.saved_tensors
        T, B, H = h_prev.shape
        gy = grad[:T * B * H].reshape(T, B, H)
        dh = grad[T * B * H:].reshape(B, H).copy()
        dxg, dhg = np.zeros_like(gates), np.zeros_like(gates)
        dh_direct = np.empty_like(dh)
        times_w_hh = _times(w_hh)
        with _blas_one_thread():
            for t in reversed(_steps(T, reverse)):
                n = active[t]
                d = dh[:n] + gy[t, :n]
                gru_step_backward(d, gates[t, :n], hgs[t, :n], h_prev[t, :n], dxg[t, :n], dhg[t, :n],
                                  dh_direct[:n])
                times_w_hh(dhg[t, :n], dh[:n])
                dh[:n] += dh_direct[:n]
        dx, dw_ih, db_ih = _weight_grads(dxg, x, w_ih, ctx.needs_input_grad[0])
        dhg2 = dhg.reshape(T * B, 3 * H)
        dw_hh = matmul(dhg2.T, h_prev.reshape(T * B, H))
        return (dx, dh, dw_ih, dw_hh) + ((db_ih, dhg2.sum(axis=0)) if has_bias else ())


# -- the wrappers: check shapes, run the Function, cut its flat output ------------------------------------
def _check(op, x, h0, w_ih, w_hh, gate_count, c0=None):
    if x.ndim != 3:
        raise ShapeError(f"{op}: input must be time-major (T, B, I), got {shape_str(x.shape)}")
    T, B, n_in = x.shape
    GH = w_ih.shape[0]
    if w_ih.ndim != 2 or w_ih.shape[1] != n_in or GH % gate_count:
        raise ShapeError(f"{op}: weight_ih must be ({gate_count} * hidden_size, {n_in}) for input "
                         f"{shape_str(x.shape)}, "
                         f"got {shape_str(w_ih.shape)}")
    H = GH // gate_count
    P = h0.shape[-1]
    if tuple(w_hh.shape) != (GH, P):
        raise ShapeError(f"{op}: weight_hh must be {shape_str((GH, P))}, got {shape_str(w_hh.shape)}")
    if tuple(h0.shape) != (B, P):
        raise ShapeError(f"{op}: h0 must be (batch, hidden) = {shape_str((B, P))}, got {shape_str(h0.shape)}")
    if c0 is not None and tuple(c0.shape) != (B, H):
        raise ShapeError(f"{op}: c0 must be (batch, hidden_size) = {shape_str((B, H))}, got {shape_str(c0.shape)}")
    return T, B, H, P


def _batch_sizes(batch_sizes, T, B, op):
    if batch_sizes is None:
        return None
    sizes = np.asarray(getattr(batch_sizes, "data", batch_sizes)).astype(np.int64)
    if sizes.shape != (T,) or (T and (sizes[0] > B or np.any(np.diff(sizes) > 0) or sizes[-1] < 1)):
        raise ShapeError(f"{op}: batch_sizes must be {T} non-increasing counts in [1, {B}], got {sizes.tolist()}")
    return tuple(sizes.tolist())


def rnn_layer(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih=None, b_hh=None, nonlinearity: str = "tanh",
              reverse: bool = False, batch_sizes=None):
    """One Elman RNN layer-direction over a time-major sequence: returns ``(y (T, B, H), h_n (B, H))``.

    ``batch_sizes``: the active rows per step of a sorted packed batch (see the module doc).
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ConfigError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    T, B, H, _ = _check("rnn_layer", x, h0, w_ih, w_hh, 1)
    biases = () if b_ih is None else (b_ih, b_hh)
    flat = RNNLayer.apply(x, h0, w_ih, w_hh, *biases, nonlinearity=nonlinearity, reverse=reverse,
                          batch_sizes=_batch_sizes(batch_sizes, T, B, "rnn_layer"))
    ny = T * B * H
    return flat[:ny].reshape(T, B, H), flat[ny:].reshape(B, H)


def lstm_layer(x: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih=None, b_hh=None, w_hr=None,
               reverse: bool = False, batch_sizes=None):
    """One LSTM layer-direction: returns ``(y (T, B, P), h_n (B, P), c_n (B, H))``; P = H without ``w_hr``."""
    T, B, H, P = _check("lstm_layer", x, h0, w_ih, w_hh, 4, c0)
    if (w_hr is None and P != H) or (w_hr is not None and tuple(w_hr.shape) != (P, H)):
        raise ShapeError(f"lstm_layer: weight_hr must be {shape_str((P, H))} for h0 {shape_str(h0.shape)}, "
                         f"got {None if w_hr is None else shape_str(w_hr.shape)}")
    rest = (() if b_ih is None else (b_ih, b_hh)) + (() if w_hr is None else (w_hr,))
    flat = LSTMLayer.apply(x, h0, c0, w_ih, w_hh, *rest, has_bias=b_ih is not None, reverse=reverse,
                           batch_sizes=_batch_sizes(batch_sizes, T, B, "lstm_layer"))
    ny = T * B * P
    return flat[:ny].reshape(T, B, P), flat[ny:ny + B * P].reshape(B, P), flat[ny + B * P:].reshape(B, H)


def gru_layer(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih=None, b_hh=None, reverse: bool = False,
              batch_sizes=None):
    """One GRU layer-direction: returns ``(y (T, B, H), h_n (B, H))``."""
    T, B, H, _ = _check("gru_layer", x, h0, w_ih, w_hh, 3)
    biases = () if b_ih is None else (b_ih, b_hh)
    w_ih, w_hh, *biases = autocast_args(LOWER, w_ih, w_hh, *biases)  # see GRULayer.autocast
    flat = GRULayer.apply(x, h0, w_ih, w_hh, *biases, reverse=reverse,
                          batch_sizes=_batch_sizes(batch_sizes, T, B, "gru_layer"))
    ny = T * B * H
    return flat[:ny].reshape(T, B, H), flat[ny:].reshape(B, H)
