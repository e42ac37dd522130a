"""Two stacked LSTM layers run as a wavefront over two threads (what cuDNN does for stacked RNNs).

Why: a layer's time loop is a chain (step t needs step t - 1), so ``recurrent.LSTMLayer`` runs it on one
thread, and a two-layer LSTM runs its two loops one after the other while the second core idles (torch's
oneDNN LSTM uses both). But layer 2's step t needs only layer 1's output at t: cut the sequence into chunks
of ``CHUNK_STEPS`` steps, and round k runs, at the same time,

    this thread:  layer 1 over chunk k        a helper (``threads.run_split``):  layer 2 over chunk k - 1

each one numba call of ``recurrent_sequence``'s loop over a range of steps, the state (h, c) carried from
chunk to chunk. Each job starts with its chunk's input projection (its C x B rows times W_ih^T, one product),
so the two jobs of a round cost about the same. Backward runs the same in reverse: layer 2 over chunk k on
this thread, ending with dL/d(layer 1's output) of the chunk (one product, dgates2 @ W_ih2), while the helper
runs layer 1's backward over chunk k + 1, ending with its chunk of dL/dx. A round waits for both jobs; the
pipeline idles one chunk at each end, and layer 1's backward job (no dL/dy1 product) is the shorter one. The
weight gradients fill that idle time: layer 2's dL/dW = sum over chunks of ``dgates[c]^T [y1 | h_prev][c]``,
each chunk's products queued once its gates' gradients exist and taken by whichever thread has finished its
job of the round (``_Fill``); what is left, and layer 1's, whose chunks end too late to fill the rounds (one
product each over the sequence), run on both threads after the loops. Without the compiled loop
(float64, kernels off) the op still works: each chunk runs ``LSTMLayer``'s Python loop, one job after the
other.

The steps are the arithmetic of ``LSTMLayer`` (the same compiled loop on the same operands). Each chunk's
input projection is its own product, layer 1's input gradient goes through dL/dy1 computed per chunk, and
layer 2's weight gradients are summed chunk by chunk (in a fixed order, whichever thread runs a product), all of
which BLAS may round differently from one product over the sequence (a few float32 ulps);
``tests/nn/test_rnn.py`` compares the two paths.

When (``nn.LSTM`` asks :func:`pair_applies` for each pair of consecutive layers): float32 NumPy arrays with
the compiled loop available (``recurrent.sequence_gemm``), at least two threads and our pool driving BLAS,
more than one chunk of steps; the module adds: one direction, no ``proj_size``, no packed batch, no dropout
between the layers in training, autocast off. Everything else runs ``LSTMLayer`` per layer.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from neural_arch.autograd.autocast import LOWER
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend import threads
from neural_arch.backend.gemm import matmul_here
from neural_arch.backend.kernels.recurrent import lstm_step_backward, lstm_step_forward
from neural_arch.ops.recurrent import _sequence_gemm, _whole_loop

__all__ = ["lstm_pair", "pair_applies"]

# False: every layer runs on its own (``LSTMLayer``); ``python -m benchmarks rnn`` times both ("layer by layer").
ENABLED = True
# Steps per chunk: a round's jobs must be long enough to pay for the hand-off to the helper, and the
# pipeline's idle ends are one chunk each. Chosen on a loaded machine (BENCHMARKS.md, stream `lstmwave`: 5, 7
# and 10 within noise of each other): retune on a quiet one.
CHUNK_STEPS = 7


def pair_applies(x, *weights) -> bool:
    """Whether two layers with these arrays run here (see the module doc; ``nn.LSTM`` checks the rest)."""
    return (ENABLED and threads.policy.num_threads >= 2 and x.shape[0] > CHUNK_STEPS and threads.blas_is_ours()
            and bool(_sequence_gemm(x, *weights)))


def _chunks(T: int):
    """The steps of each round: a first chunk of half the length, then ``CHUNK_STEPS`` each. Backward's
    rounds are paced by layer 2's jobs (with dL/dy1), and its last round, layer 1 over the first chunk,
    waits alone: a short first chunk shortens it. (Forward's rounds cost the same either way.)"""
    first = min(max(1, CHUNK_STEPS // 2), T)
    return [(0, first)] + [(s, min(s + CHUNK_STEPS, T)) for s in range(first, T, CHUNK_STEPS)] if T else []


def _run_round(jobs, together: bool) -> None:
    """The jobs of one round: at once (the first on this thread, the second on a helper) when ``together``,
    else one after the other (the Python loop's steps hold the GIL: nothing to gain from a helper)."""
    jobs = [(job,) for job in jobs if job is not None]
    if len(jobs) < 2:
        together = False  # (none, or one: nothing to hand to a helper)
    if together:
        threads.run_split(_call, jobs)
    else:
        for args in jobs:
            _call(*args)


def _call(job):
    job()


def _project(rows, w, bias, out):
    """out = rows @ w (+ bias) for one chunk's (C, B, K) rows, one product on this thread."""
    matmul_here(rows.reshape(-1, rows.shape[2]), w, out=out.reshape(-1, out.shape[2]))
    if bias is not None:
        out += bias


class _Layer:
    """One layer's arrays for its steps, as ``LSTMLayer.forward`` keeps them (``xh``: [x_t | h_{t-1}])."""

    def __init__(self, T, B, n_in, h0, c0, w_hh, ys):
        H, dtype = c0.shape[1], c0.dtype
        self.gates = np.empty((T, B, 4 * H), dtype)
        self.tanh_c = np.empty((T, B, H), dtype)
        self.c_prev = np.empty((T, B, H), dtype)
        self.xh = np.empty((T, B, n_in + H), dtype)
        self.h_prev = self.xh[:, :, n_in:]
        self.ys = ys
        self.h, self.c = h0.copy(), c0.copy()
        self.hg = np.empty((B, 4 * H), dtype)
        self.w_hh = w_hh
        self.w_hh_t = self.packing = None  # made by ``prepare``
        self.active = np.full(T, B, np.int64)

    def prepare(self, addr):
        """The row-major W_hh^T the steps multiply by, and its packing for the compiled loop when ``addr``."""
        self.w_hh_t = np.ascontiguousarray(self.w_hh.T)
        if addr:
            self.packing = _whole_loop().packed_right(self.w_hh_t, self.h.shape[0], self.active)

    def steps(self, addr, xg, s, e):
        """Forward steps s .. e - 1, from the state left by the steps before: the compiled loop when ``addr``
        (``recurrent.sequence_gemm``) is known, else ``LSTMLayer``'s Python loop."""
        if self.w_hh_t is None:
            self.prepare(addr)
        if addr:
            _whole_loop().lstm_steps_forward(addr, self.packing, xg[s:e], self.w_hh_t, None, self.h, self.c,
                                             self.hg, self.gates[s:e], self.tanh_c[s:e], self.c_prev[s:e],
                                             self.h_prev[s:e], self.ys[s:e], self.ys[s:e], self.active[s:e], False)
            return
        for t in range(s, e):
            self.h_prev[t] = self.h
            self.c_prev[t] = self.c
            np.matmul(self.h, self.w_hh_t, out=self.hg)
            lstm_step_forward(xg[t], self.hg, self.c_prev[t], self.gates[t], self.tanh_c[t], self.c, self.ys[t])
            self.h[...] = self.ys[t]


class _LayerGrads:
    """One layer's backward arrays: ``dh``, ``dc`` carry dL/dh_t, dL/dc_t from chunk to chunk."""

    def __init__(self, saved, dh, dc, w_hh):
        self.gates, self.tanh_c, self.c_prev, self.active = saved
        self.dh, self.dc = dh, dc
        self.dc_next, self.dr = np.empty_like(dc), np.empty_like(dc)
        self.dgates = np.empty_like(self.gates)
        self.w_hh = np.ascontiguousarray(w_hh)
        self.packing = None

    def prepare(self, addr):
        """W_hh packed for the compiled loop (when ``addr``)."""
        if addr and self.packing is None:
            self.packing = _whole_loop().packed_right(self.w_hh, self.dh.shape[0], self.active)

    def steps(self, addr, gy, s, e):
        """Backward steps e - 1 .. s (the compiled loop when ``addr``, else ``LSTMLayer``'s Python loop)."""
        if addr:
            self.prepare(addr)
            _whole_loop().lstm_steps_backward(addr, self.packing, gy[s:e], self.w_hh, None, self.dh, self.dc,
                                              self.dc_next, self.dr, self.gates[s:e], self.tanh_c[s:e],
                                              self.c_prev[s:e], self.dgates[s:e], None, self.active[s:e], False)
            return
        for t in range(e - 1, s - 1, -1):
            d = np.add(self.dh, gy[t], out=self.dr)
            lstm_step_backward(d, self.dc, self.gates[t], self.c_prev[t], self.tanh_c[t], self.dgates[t],
                               self.dc_next)
            self.dc[...] = self.dc_next
            np.matmul(self.dgates[t], self.w_hh, out=self.dh)


class LSTMPairLayer(Function):
    """Two stacked LSTM layers (one direction each, no projection), layer 2 reading layer 1's output:

        y1, (h1_n, c1_n) = LSTM_1(x; h1_0, c1_0)        y2, (h2_n, c2_n) = LSTM_2(y1; h2_0, c2_0)

    each with ``recurrent.LSTMLayer``'s forward and backward formulas (see there), run as a wavefront over
    two threads (the module doc). Backward: LSTM_2's BPTT gives dL/dy1 = sum over gates of da2_t W_ih2, which
    feeds LSTM_1's BPTT; every other gradient is LSTMLayer's.

    Inputs: x, h1_0, c1_0, h2_0, c2_0, then each layer's W_ih, W_hh (, b_ih, b_hh).
    Output: flat [y2, h1_n, c1_n, h2_n, c2_n].
    """

    half = "float32"
    autocast = LOWER  # as LSTMLayer's (pair_applies never runs it under autocast: the module's check)

    @staticmethod
    def forward(ctx, x, h0a, c0a, h0b, c0b, *weights, has_bias=True):
        T, B, n_in = x.shape
        H = c0a.shape[1]
        per = len(weights) // 2
        w_ih1, w_hh1, w_ih2, w_hh2 = weights[0], weights[1], weights[per], weights[per + 1]
        bias1 = weights[2] + weights[3] if has_bias else None
        bias2 = weights[per + 2] + weights[per + 3] if has_bias else None
        ny = T * B * H
        out = np.empty(ny + 4 * B * H, x.dtype)  # [y2, h1_n, c1_n, h2_n, c2_n]; y2 is written in place
        one = _Layer(T, B, n_in, h0a, c0a, w_hh1, np.empty((T, B, H), x.dtype))
        two = _Layer(T, B, H, h0b, c0b, w_hh2, out[:ny].reshape(T, B, H))
        x = np.ascontiguousarray(x)
        xg1, xg2 = np.empty((T, B, 4 * H), x.dtype), np.empty((T, B, 4 * H), x.dtype)
        addr = _sequence_gemm(x, *weights)
        chunks = _chunks(T)
        ahead = chunks[min(1, len(chunks) - 1)][1] if chunks else 0

        def prepare():
            one.xh[:, :, :n_in] = x
            one.prepare(addr)
            two.prepare(addr)

        # each job projects its own chunk's input first: the two jobs of a round then cost about the same
        def layer_two_input(s, e):
            two.xh[s:e, :, :H] = one.ys[s:e]
            _project(one.ys[s:e], w_ih2.T, bias2, xg2[s:e])

        def first(s, e):
            def job():
                if s >= ahead:  # (the first two chunks': while the helper prepares, below)
                    _project(x[s:e], w_ih1.T, bias1, xg1[s:e])
                one.steps(addr, xg1, s, e)
                if e == T:  # the last round has layer 2's job alone: its projection is done here instead
                    layer_two_input(s, e)
            return job

        def second(s, e):
            def job():
                if e < T:
                    layer_two_input(s, e)
                two.steps(addr, xg2, s, e)
            return job

        # before the first round (which has one job), this thread projects the first two chunks' input while
        # the helper copies and packs the weights for both layers (which the first two rounds' jobs did)
        _run_round([lambda: _project(x[:ahead], w_ih1.T, bias1, xg1[:ahead]), prepare], bool(addr))
        for k in range(len(chunks) + 1):
            _run_round([first(*chunks[k]) if k < len(chunks) else None, second(*chunks[k - 1]) if k else None],
                       bool(addr))
        ctx.params = has_bias
        ctx.save_for_backward(w_ih1, w_hh1, w_ih2, w_hh2, one.gates, one.tanh_c, one.c_prev, one.xh,
                              two.gates, two.tanh_c, two.c_prev, two.xh)
        for i, state in enumerate((one.h, one.c, two.h, two.c)):
            out[ny + i * B * H:ny + (i + 1) * B * H] = state.ravel()
        return out

    @staticmethod
    def backward(ctx, grad):
        has_bias = ctx.params
        w_ih1, w_hh1, w_ih2, w_hh2, g1, tc1, cp1, xh1, g2, tc2, cp2, xh2 = ctx.saved_tensors
        T, B, H = tc1.shape
        n_in = w_ih1.shape[1]
        ny = T * B * H
        states = [grad[ny + i * B * H:ny + (i + 1) * B * H].reshape(B, H).copy() for i in range(4)]
        active = np.full(T, B, np.int64)
        one = _LayerGrads((g1, tc1, cp1, active), states[0], states[1], w_hh1)
        two = _LayerGrads((g2, tc2, cp2, active), states[2], states[3], w_hh2)
        gy2 = np.ascontiguousarray(grad[:ny].reshape(T, B, H))
        gy1 = np.empty((T, B, H), grad.dtype)  # dL/dy1, filled chunk by chunk by layer 2's jobs
        needs_x = ctx.needs_input_grad[0]
        dx = np.empty((T, B, n_in), grad.dtype) if needs_x else None
        w_ih1, w_ih2 = np.ascontiguousarray(w_ih1), np.ascontiguousarray(w_ih2)
        addr = _sequence_gemm(gy2, w_hh1, w_hh2)
        # dL/dW = sum over chunks of dgates[chunk]^T [x | h_prev][chunk]: layer 2's added chunk by chunk by
        # whichever thread has finished its part of a round (``_Fill``), the rest after the loops
        fill = _Fill(addr)
        grads1, add1 = fill.weights(one.dgates, xh1, n_in)
        grads2, add2 = fill.weights(two.dgates, xh2, H)

        def second(s, e):
            def job():
                two.steps(addr, gy2, s, e)
                add2(s, e)
                if e < T:
                    _project(two.dgates[s:e], w_ih2, None, gy1[s:e])
            return job

        def first(s, e):
            def job():
                if e == T:  # the last chunk's dL/dy1: here, not in the first round, which has one job
                    _project(two.dgates[s:e], w_ih2, None, gy1[s:e])
                one.steps(addr, gy1, s, e)
                if needs_x:
                    _project(one.dgates[s:e], w_ih1, None, dx[s:e])
            return job

        chunks = _chunks(T)[::-1]
        for k in range(len(chunks) + 1):  # (layer 1's packing: in the first round, which has one job)
            fill.round([second(*chunks[k]) if k < len(chunks) else None,
                        first(*chunks[k - 1]) if k else lambda: one.prepare(addr)], bool(addr))
        add1(0, T)  # layer 1's: one product over the sequence (its chunks end too late to fill the rounds)
        db1, db2 = (fill.bias(one.dgates), fill.bias(two.dgates)) if has_bias else (None, None)
        fill.round([None, None], bool(addr))  # what is left: both threads take products until none is
        grads1 += (db1, db1.copy()) if has_bias else ()
        grads2 += (db2, db2.copy()) if has_bias else ()
        return (dx, one.dh, one.dc, two.dh, two.dc) + grads1 + grads2


class _Fill:
    """The weight gradients' products as tasks for whichever thread of a round has finished its own job (the
    pipeline's rounds wait for both jobs, and layer 1's backward job, with no dL/dy1 product, is the shorter).

    Tasks form chains, each adding to its own block of one gradient in a fixed order (the chunks' order),
    one thread at a time (a lock per chain): the sums do not depend on which thread ran what. A thread
    starts a task only while the other job of its round still runs, so a round ends at most one task later;
    the last call, ``round([None, None])``, runs all that is left on both threads."""

    ROWS = 400  # gate rows of dL/dW per task: (400 x 7 B) @ (7 B x 200), ~0.2 ms at this benchmark's size

    def __init__(self, addr):
        self.addr = addr
        self.chains = []  # (lock, deque of tasks)

    def weights(self, dgates, xh, n_in):
        """(zeroed dL/dW_ih, dL/dW_hh), and ``add(s, e)``, which queues their products over steps s .. e - 1."""
        G = dgates.shape[2]
        dw_ih = np.zeros((G, n_in), dgates.dtype)
        dw_hh = np.zeros((G, xh.shape[2] - n_in), dgates.dtype)
        parts = [(xh[:, :, :n_in], dw_ih), (xh[:, :, n_in:], dw_hh)]
        rows = [(r, min(r + self.ROWS, G)) for r in range(0, G, self.ROWS)]
        first = len(self.chains)
        self.chains += [(threading.Lock(), deque()) for _ in range(len(parts) * len(rows))]

        def add(s, e):
            d = dgates[s:e].reshape(-1, G)
            i = first
            for src, dw in parts:
                b = src[s:e].reshape(-1, src.shape[2])
                for r0, r1 in rows:
                    self.chains[i][1].append((d[:, r0:r1].T, b, dw[r0:r1]))
                    i += 1

        return (dw_ih, dw_hh), add

    def bias(self, dgates):
        """dL/db = sum of dgates over steps and rows, as one more task; returns its (zeroed) array."""
        db = np.zeros(dgates.shape[2], dgates.dtype)
        self.chains.append((threading.Lock(), deque([(dgates.reshape(-1, dgates.shape[2]), None, db)])))
        return db

    def _run(self, task):
        a, b, out = task
        if b is None:
            np.sum(a, axis=0, out=out)
        elif not (self.addr and _whole_loop().add_product(self.addr, a, b, out)):
            out += a @ b

    def take(self, busy) -> None:
        """Run queued tasks while ``busy()`` (the round's other job runs) and one is free to take."""
        while busy():
            for lock, queue in self.chains:
                if queue and lock.acquire(blocking=False):
                    try:
                        if queue:
                            self._run(queue.popleft())
                    finally:
                        lock.release()
                    break
            else:
                return

    def round(self, jobs, together: bool) -> None:
        """One round of two jobs (None: none), each then taking tasks while the other runs (``together``:
        at once, as ``_run_round``; else one after the other, and the tasks after both)."""
        if not together:
            for job in jobs:
                if job is not None:
                    job()
            self.take(lambda: True)
            return
        done = [job is None for job in jobs]

        def part(i):
            if jobs[i] is not None:
                jobs[i]()
            done[i] = True
            self.take(lambda: not done[1 - i] or all(j is None for j in jobs))

        _run_round([lambda: part(0), lambda: part(1)], True)


def lstm_pair(x: Tensor, state1, state2, weights1, weights2):
    """Two stacked LSTM layers as one op (``LSTMPairLayer``), for :func:`pair_applies`' cases: ``state*`` are
    (h0, c0) (B, H) each, ``weights*`` (w_ih, w_hh, b_ih, b_hh), the biases both None or both given.
    Returns ``(y2 (T, B, H), (h1_n, c1_n), (h2_n, c2_n))``."""
    T, B, _ = x.shape
    H = state1[1].shape[1]
    has_bias = weights1[2] is not None
    used = [w for w in (*weights1, *weights2) if w is not None]
    flat = LSTMPairLayer.apply(x, *state1, *state2, *used, has_bias=has_bias)
    ny, n = T * B * H, B * H
    pieces = [flat[ny + i * n:ny + (i + 1) * n].reshape(B, H) for i in range(4)]
    return flat[:ny].reshape(T, B, H), (pieces[0], pieces[1]), (pieces[2], pieces[3])
