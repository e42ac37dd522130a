"""Fused CPU kernels, compiled by numba and cached on disk.

Every kernel has a NumPy twin (the readable spelling in the op that calls
it, and in ``reference.py``); tests check that they agree. Rules that make
these loops vectorise (measured; see BENCHMARKS.md):

* ``error_model="numpy"``: Python's error model puts a division-by-zero
  branch in every division, which stops LLVM from vectorising the loop.
* No ``math.exp``/``math.erf`` in float32 loops: without Intel's SVML they
  are scalar libm calls. ``_expf`` and ``_normal_cdf_and_gauss`` below are
  branch-free polynomials accurate to ~1.5e-7 relative.
* float32 constants spelled ``F(...)`` so nothing silently widens to float64.
* Reductions (row sums) need ``fastmath`` to be reassociated into SIMD lanes.
* Kernels are compiled serially and threads come from outside (:class:`Kernel`):
  a call of at least ``threads.PARALLEL_MIN_ELEMENTS`` is cut into row ranges
  that ``threads.run_split`` runs at once, one per thread. numba's own
  ``parallel=True`` pool was measured slower (50-170 us a call, and at times
  slower than one thread; see BENCHMARKS.md). A small call costs about 1 us
  (an Adam step on 1,000 floats).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from neural_arch.backend import threads

F = np.float32
U = np.uint64  # an index LLVM knows is >= 0: a signed one gets a wrap-around test that stops vectorising
FAST = dict(cache=True, fastmath=True, error_model="numpy", nogil=True)
EXACT = dict(cache=True, error_model="numpy", nogil=True)  # no reassociation: bit-for-bit with NumPy order


class Kernel:
    """A serially compiled kernel whose big calls run on all threads, each on a range of rows.

    ``rows``: the positions of the array arguments cut into row ranges (axis 0, the length of the
    first argument); the others (weights, scalars) go whole to every range. ``parts``: per-thread
    accumulators of a reduction (shape (chunks, ...)), cut into equal blocks of chunks, one per range.
    ``offset``: the position of an integer argument that each range receives as its first row (for a
    kernel that reads a whole array at the rows it is writing, e.g. channel c0 + c of an NCHW input).
    ``work``: the position of the array whose size decides whether to split (default: the first).
    """

    def __init__(self, fn, options: dict, rows: tuple, parts: tuple = (), offset: int | None = None,
                 work: int = 0):
        self.serial = njit(**options)(fn)
        self.rows, self.parts, self.offset, self.work = rows, parts, offset, work
        self.__doc__, self.__name__ = fn.__doc__, fn.__name__

    def __call__(self, *args):
        if args[self.work].size < threads.PARALLEL_MIN_ELEMENTS:
            return self.serial(*args)
        n = args[0].shape[0]
        k = min(threads.num_threads(), n, *(args[j].shape[0] for j in self.parts))
        if k < 2:
            return self.serial(*args)
        jobs = []
        for i in range(k):
            lo, hi = n * i // k, n * (i + 1) // k
            job = list(args)
            for j in self.rows:
                if args[j].shape[0] == n:  # (an unused placeholder, e.g. a (1, 1) dx, goes whole)
                    job[j] = args[j][lo:hi]
            for j in self.parts:
                c = args[j].shape[0]
                job[j] = args[j][c * i // k: c * (i + 1) // k]
            if self.offset is not None:
                job[self.offset] = args[self.offset] + lo
            jobs.append(job)
        threads.run_split(self.serial, jobs)
        return None


def kernel(options: dict, rows: tuple, parts: tuple = (), offset: int | None = None, work: int = 0):
    """Decorator: ``@kernel(FAST, rows=(0, 1))`` makes a :class:`Kernel`."""
    return lambda fn: Kernel(fn, options, rows, parts, offset, work)


# -- float32 math, inlined into the loops ------------------------------------------------------------
@njit(inline="always", **FAST)
def _expf(x):
    """e^x = 2^n e^r with n = round(x / ln 2), |r| <= ln2 / 2; e^r by a degree-7 polynomial (Cephes)."""
    x = min(max(x, F(-87.3)), F(88.37))  # keeps n in [-126, 127]: a normal float32 2^n
    n = np.floor(x * F(1.4426950408889634) + F(0.5))
    r = x - n * F(0.693359375) + n * F(2.12194440e-4)
    p = F(1.9875691500e-4)
    p = p * r + F(1.3981999507e-3)
    p = p * r + F(8.3334519073e-3)
    p = p * r + F(4.1665795894e-2)
    p = p * r + F(1.6666665459e-1)
    p = p * r + F(5.0000001201e-1)
    p = p * r * r + r + F(1.0)
    return p * np.int32((np.int32(n) + 127) << 23).view(np.float32)  # times 2^n, built in the exponent bits


@njit(inline="always", **FAST)
def _normal_cdf_and_gauss(v):
    """Phi(v) and e^{-v^2/2}, sharing one exp.

    With z = |v| / sqrt 2 and t = 1 / (1 + z/2):  erfc(z) = t Q(t) e^{-z^2},  and e^{-z^2} = e^{-v^2/2},
    where Q(t) = erfc(z) e^{z^2} / t is smooth on t in (0, 1]: a degree-10 polynomial fitted for this
    project (numpy.linalg.lstsq of Q(t) / math's value against 1 on 4,000 Chebyshev nodes of (0, 1]):
    relative error 1.1e-8 in float64, 1.5e-7 evaluated in float32.
    Phi(v) = erfc(-v / sqrt 2) / 2 is erfc(z)/2 for v < 0, so the negative tail keeps its relative
    accuracy (1 + erf would cancel to a few bits there), and 1 - erfc(z)/2 for v >= 0."""
    z = abs(v) * F(0.7071067811865476)
    t = F(1.0) / (F(1.0) + F(0.5) * z)
    q = F(0.0432648752616789)
    q = q * t + F(-0.2350824295115305)
    q = q * t + F(0.49444094997904203)
    q = q * t + F(-0.45585929265329367)
    q = q * t + F(0.13281390360250722)
    q = q * t + F(-0.059496137603873483)
    q = q * t + F(0.0935404495187872)
    q = q * t + F(0.1753035745675804)
    q = q * t + F(0.2468855979364667)
    q = q * t + F(0.282093717965603)
    q = q * t + F(0.282094795668681)
    gauss = _expf(F(-0.5) * v * v)
    half_erfc = F(0.5) * t * q * gauss
    return (half_erfc if v < F(0.0) else F(1.0) - half_erfc), gauss


@njit(inline="always", **FAST)
def _sigmoidf(x):
    return F(1.0) / (F(1.0) + _expf(-x))


@njit(inline="always", **FAST)
def _larger(a, b):
    return a if a > b else b


@njit(inline="always", **FAST)
def _row_max(x, r, n):
    """max of x[r, :n] in eight independent running maxima: one chain of max() does not vectorise
    (measured: 4096 rows of 1000 floats, 1.9 ms as one chain, 0.52 ms in eight)."""
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = x[r, 0]
    full = n - n % 8
    for j in range(0, full, 8):
        m0, m1 = _larger(m0, x[r, j]), _larger(m1, x[r, j + 1])
        m2, m3 = _larger(m2, x[r, j + 2]), _larger(m3, x[r, j + 3])
        m4, m5 = _larger(m4, x[r, j + 4]), _larger(m5, x[r, j + 5])
        m6, m7 = _larger(m6, x[r, j + 6]), _larger(m7, x[r, j + 7])
    m = _larger(_larger(_larger(m0, m1), _larger(m2, m3)), _larger(_larger(m4, m5), _larger(m6, m7)))
    for j in range(full, n):
        m = _larger(m, x[r, j])
    return m


# -- activations (flat, contiguous float32) --------------------------------------------------------------
INV_SQRT_2PI = 0.3989422804014327
SQRT_2_OVER_PI = 0.7978845608028654


@kernel(FAST, rows=(0, 1))
def gelu_forward(x, out):
    """y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2"""
    for i in range(x.size):
        v = x[i]
        cdf, _ = _normal_cdf_and_gauss(v)
        out[i] = v * cdf


@kernel(FAST, rows=(0, 1, 2))
def gelu_forward_with_grad(x, out, deriv):
    """y = x Phi(x) and dy/dx = Phi(x) + x phi(x) in one pass: backward is then dL/dx = g dy/dx"""
    for i in range(x.size):
        v = x[i]
        cdf, gauss = _normal_cdf_and_gauss(v)
        out[i] = v * cdf
        deriv[i] = cdf + v * gauss * F(INV_SQRT_2PI)


@kernel(FAST, rows=(0, 1))
def gelu_tanh_forward(x, out):
    """y = x (1 + tanh u) / 2 = x sigmoid(2u),  u = sqrt(2/pi) (x + 0.044715 x^3)
    (the sigmoid form has no cancellation in the negative tail, where tanh u -> -1)"""
    for i in range(x.size):
        v = x[i]
        out[i] = v * _sigmoidf(F(2.0 * SQRT_2_OVER_PI) * (v + F(0.044715) * v * v * v))


@kernel(FAST, rows=(0, 1, 2))
def gelu_tanh_forward_with_grad(x, out, deriv):
    """gelu_tanh_forward and its derivative in one pass (one exp per element):
    dy/dx = s + 2 x s (1 - s) du/dx,  s = sigmoid(2u),  du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)"""
    for i in range(x.size):
        v = x[i]
        s = _sigmoidf(F(2.0 * SQRT_2_OVER_PI) * (v + F(0.044715) * v * v * v))
        du = F(SQRT_2_OVER_PI) * (F(1.0) + F(0.134145) * v * v)
        out[i] = v * s
        deriv[i] = s + F(2.0) * v * s * (F(1.0) - s) * du


@kernel(FAST, rows=(0, 2))
def silu_forward(x, alpha, out):
    """y = x sigmoid(alpha x)   (alpha = 1: SiLU; alpha = 1.702: quick GELU)"""
    for i in range(x.size):
        v = x[i]
        out[i] = v * _sigmoidf(alpha * v)


@kernel(FAST, rows=(0, 2, 3))
def silu_forward_with_grad(x, alpha, out, deriv):
    """silu_forward and its derivative in one pass: dy/dx = s + alpha x s (1 - s),  s = sigmoid(alpha x)"""
    for i in range(x.size):
        v = x[i]
        s = _sigmoidf(alpha * v)
        out[i] = v * s
        deriv[i] = s + alpha * v * s * (F(1.0) - s)


@kernel(FAST, rows=(0, 1))
def sigmoid_forward(x, y):
    """y = 1 / (1 + e^-x)  (_expf clamps its argument: no overflow; a NaN x stays NaN)"""
    for i in range(x.size):
        v = x[i]
        y[i] = v if np.isnan(v) else _sigmoidf(v)


@kernel(FAST, rows=(0, 1, 2))
def sigmoid_backward(y, g, out):
    """dL/dx = g y (1 - y), y the forward's output"""
    for i in range(y.size):
        out[i] = g[i] * (y[i] * (F(1.0) - y[i]))


@kernel(FAST, rows=(0, 1))
def row_sums(x, out):
    """out[r] = sum_j x[r, j], accumulated in float64 (a sum over the last dims: NumPy's took 578 us
    for 4096x1000 on one core, 6x torch's time)"""
    rows, n = x.shape
    for r in range(rows):
        s = 0.0
        for j in range(n):
            s += x[r, j]
        out[r] = s


@kernel(FAST, rows=(0, 1), parts=(2,))
def squared_error_sum(x, y, parts):
    """parts[c] += sum of (x - y)^2 over chunk c of the elements (float64; the caller adds the parts)"""
    n = x.size
    chunks = parts.shape[0]
    per = (n + chunks - 1) // chunks
    for c in range(chunks):
        xc, yc = x[c * per: min(n, (c + 1) * per)], y[c * per: min(n, (c + 1) * per)]
        s = 0.0
        for i in range(xc.size):  # (from 0: an index from c * per kept the loop scalar, see U above)
            d = xc[i] - yc[i]
            s += d * d
        parts[c] += s


@kernel(FAST, rows=(0, 1, 3))
def scaled_difference(x, y, s, out):
    """out = s (x - y): the gradient of a squared error"""
    for i in range(x.size):
        out[i] = s * (x[i] - y[i])


# -- row-wise kernels on (rows, D) C-contiguous float32 ----------------------------------------------------
@kernel(FAST, rows=(0, 4, 5, 6))
def layer_norm_forward(x, w, b, eps, y, mean, rstd):
    """y = (x - mean) / sqrt(var + eps) * w + b per row (biased variance, two passes for accuracy)"""
    rows, d = x.shape
    for r in range(rows):
        s = F(0.0)
        for j in range(d):
            s += x[r, j]
        mu = s / F(d)
        q = F(0.0)
        for j in range(d):
            c = x[r, j] - mu
            q += c * c
        rs = F(1.0) / np.sqrt(q / F(d) + eps)
        mean[r] = mu
        rstd[r] = rs
        for j in range(d):
            y[r, j] = (x[r, j] - mu) * rs * w[j] + b[j]


@kernel(FAST, rows=(0, 1, 3, 4, 5), parts=(6, 7))
def layer_norm_backward(g, x, w, mean, rstd, dx, dw_parts, db_parts):
    """xhat = (x - mean) rstd;  dx = rstd (g w - mean(g w) - xhat mean(g w xhat));
    dw = sum_rows g xhat,  db = sum_rows g  (per-chunk partial sums, added up by the caller)."""
    rows, d = x.shape
    chunks = dw_parts.shape[0]
    per = (rows + chunks - 1) // chunks
    for c in range(chunks):
        for r in range(c * per, min(rows, (c + 1) * per)):
            mu = mean[r]
            rs = rstd[r]
            s1 = F(0.0)
            s2 = F(0.0)
            for j in range(d):
                xh = (x[r, j] - mu) * rs
                gw = g[r, j] * w[j]
                s1 += gw
                s2 += gw * xh
                dw_parts[c, j] += g[r, j] * xh
                db_parts[c, j] += g[r, j]
            s1 /= F(d)
            s2 /= F(d)
            for j in range(d):
                xh = (x[r, j] - mu) * rs
                dx[r, j] = rs * (g[r, j] * w[j] - s1 - xh * s2)


@kernel(FAST, rows=(0, 1, 2, 3, 4), offset=7, work=5)
def channel_norm_forward(mean, var, rstd, w, b, x, y, r0, eps):
    """Normalise a C-contiguous float32 x (A, R, K, S) over each r's A x K x S elements:
    y = (x - mean_r) rstd_r w[r, k] + b[r, k], for r = r0 ... r0 + len(mean) - 1 (a thread's range
    of the per-r arrays; x and y go whole). The statistics are float64 (a block can hold millions of
    elements) and kept so: the backward's cancellations need the mean as exactly as it was removed.
    Writes each block's mean, biased variance and rstd."""
    na, _, kk, ss = x.shape
    count = na * kk * ss
    for i in range(mean.size):
        r = r0 + i
        s = 0.0
        for a in range(na):
            for k in range(kk):
                for j in range(ss):
                    s += x[a, r, k, j]
        mu = s / count
        q = 0.0
        for a in range(na):
            for k in range(kk):
                for j in range(ss):
                    c = x[a, r, k, j] - mu
                    q += c * c
        v = q / count
        rs = 1.0 / np.sqrt(v + eps)
        mean[i], var[i], rstd[i] = mu, v, rs
        for a in range(na):
            for k in range(kk):
                wk, bk = np.float64(w[i, k]), np.float64(b[i, k])
                for j in range(ss):
                    y[a, r, k, j] = ((x[a, r, k, j] - mu) * rs) * wk + bk


@kernel(FAST, rows=(0, 1, 2, 3, 4), offset=8, work=6)
def channel_norm_backward(mean, rstd, w, dw, db, g, x, dx, r0):
    """channel_norm_forward's gradient, per block r (xhat = (x - mean) rstd, gw = g w[r, k]):
    dx = rstd (gw - mean(gw) - xhat mean(gw xhat));  dw[r, k] = sum g xhat,  db[r, k] = sum g
    over the block's (a, j) (the caller adds dw and db up per channel).
    In float64 up to the stored dx: dx is what is left after gw - mean(gw) - xhat mean(gw xhat)
    cancel, and with a loss that hardly depends on the block (the sum of ResNet-50's train-mode
    logits) float32 statistics here put its conv1 gradient 3.6% (of the largest entry) from the
    float64 one, where NumPy's float32 path and torchvision's are 1.4-1.6% away."""
    na, _, kk, ss = x.shape
    count = na * kk * ss
    for i in range(mean.size):
        r = r0 + i
        mu, rs = mean[i], rstd[i]
        s1 = 0.0
        s2 = 0.0
        for k in range(kk):
            sg = 0.0
            sgx = 0.0
            for a in range(na):
                for j in range(ss):
                    gj = np.float64(g[a, r, k, j])
                    sg += gj
                    sgx += gj * ((x[a, r, k, j] - mu) * rs)
            db[i, k], dw[i, k] = sg, sgx
            s1 += w[i, k] * sg
            s2 += w[i, k] * sgx
        m1, m2 = s1 / count, s2 / count
        for a in range(na):
            for k in range(kk):
                wk = np.float64(w[i, k])
                for j in range(ss):
                    dx[a, r, k, j] = rs * (g[a, r, k, j] * wk - m1 - ((x[a, r, k, j] - mu) * rs) * m2)


@kernel(FAST, rows=(0, 3, 4))
def rms_norm_forward(x, w, eps, y, rstd):
    """y = x / sqrt(mean(x^2) + eps) * w per row"""
    rows, d = x.shape
    for r in range(rows):
        q = F(0.0)
        for j in range(d):
            q += x[r, j] * x[r, j]
        rs = F(1.0) / np.sqrt(q / F(d) + eps)
        rstd[r] = rs
        for j in range(d):
            y[r, j] = x[r, j] * rs * w[j]


@kernel(FAST, rows=(0, 1, 3, 4), parts=(5,))
def rms_norm_backward(g, x, w, rstd, dx, dw_parts):
    """xhat = x rstd;  dx = rstd (g w - xhat mean(g w xhat));  dw = sum_rows g xhat"""
    rows, d = x.shape
    chunks = dw_parts.shape[0]
    per = (rows + chunks - 1) // chunks
    for c in range(chunks):
        for r in range(c * per, min(rows, (c + 1) * per)):
            rs = rstd[r]
            s2 = F(0.0)
            for j in range(d):
                xh = x[r, j] * rs
                s2 += g[r, j] * w[j] * xh
                dw_parts[c, j] += g[r, j] * xh
            s2 /= F(d)
            for j in range(d):
                dx[r, j] = rs * (g[r, j] * w[j] - x[r, j] * rs * s2)


@kernel(FAST, rows=(0, 1))
def softmax_forward(x, y, log):
    """y = e^{x - max} / sum e^{x - max} per row; with ``log``: y = x - max - log sum e^{x - max}.
    A row that is all -inf gives NaN, as in torch."""
    rows, d = x.shape
    for r in range(rows):
        m = _row_max(x, r, d)
        s = F(0.0)
        for j in range(d):
            shifted = x[r, j] - m
            e = _expf(shifted)
            y[r, j] = shifted if log else e
            s += e
        if log:  # (x - m) - log s, stored then subtracted: fastmath may not regroup it as x - (m + log s),
            log_s = np.log(s)  # which rounds log s away when |m| is large
            for j in range(d):
                y[r, j] -= log_s
        else:
            inv = F(1.0) / s
            for j in range(d):
                y[r, j] *= inv


@kernel(FAST, rows=(0, 1, 2))
def softmax_backward(y, g, dx, log):
    """softmax: dx = y (g - sum(g y));   log_softmax: dx = g - e^y sum(g)"""
    rows, d = y.shape
    for r in range(rows):
        s = F(0.0)
        if log:
            for j in range(d):
                s += g[r, j]
            for j in range(d):
                dx[r, j] = g[r, j] - _expf(y[r, j]) * s
        else:
            for j in range(d):
                s += g[r, j] * y[r, j]
            for j in range(d):
                dx[r, j] = y[r, j] * (g[r, j] - s)


@kernel(FAST, rows=(0, 1, 4, 5), parts=(7,))
def cross_entropy_forward(x, target, ignore_index, smoothing, loss, dx, want_grad, stats):
    """Per row with logits x, class t and smoothing s over C classes:
        loss = lse(x) - (1 - s) x_t - s mean(x)
        dloss/dx = softmax(x) - (1 - s) onehot(t) - s / C      (0 for ignored rows)
    The gradient is written to ``dx`` here, in the same pass, when ``want_grad``.
    ``stats[k]`` (float64, zeroed by the caller) receives chunk k's (sum of losses, rows counted,
    rows whose target is neither ignore_index nor in [0, C)): the mean's numerator and denominator
    and the target check in the same pass; a bad row gets loss 0 and the caller raises."""
    rows, c = x.shape
    chunks = stats.shape[0]
    per = (rows + chunks - 1) // chunks
    for k in range(chunks):
        total = 0.0
        counted = 0.0
        bad = 0.0
        for r in range(k * per, min(rows, (k + 1) * per)):
            t = target[r]
            if t == ignore_index or t < 0 or t >= c:
                if t != ignore_index:
                    bad += 1.0
                loss[r] = F(0.0)
                if want_grad:
                    for j in range(c):
                        dx[r, j] = F(0.0)
                continue
            m = _row_max(x, r, c)
            s = F(0.0)
            s_shifted = F(0.0)  # sum of (x - m): with large logits, summing x itself would lose log s to rounding
            if want_grad:  # keep e^{x - m} in dx: one exp per logit, not two
                for j in range(c):
                    shifted = x[r, j] - m
                    e = _expf(shifted)
                    dx[r, j] = e
                    s += e
                    s_shifted += shifted
            else:
                for j in range(c):
                    shifted = x[r, j] - m
                    s += _expf(shifted)
                    s_shifted += shifted
            # lse - (1 - s) x_t - s mean(x) with lse = m + log s, written in differences from m
            lr = (F(1.0) - smoothing) * (m - x[r, t]) - smoothing * s_shifted / F(c) + np.log(s)
            loss[r] = lr
            total += lr
            counted += 1.0
            if want_grad:
                inv = F(1.0) / s
                off = smoothing / F(c)
                for j in range(c):
                    dx[r, j] = dx[r, j] * inv - off
                dx[r, t] -= F(1.0) - smoothing
        stats[k, 0] += total
        stats[k, 1] += counted
        stats[k, 2] += bad


# -- products for the backward passes (flat, contiguous float32) ------------------------------------
@kernel(FAST, rows=(0, 1, 2))
def multiply(a, b, out):
    """out = a b, elementwise: a backward's g dy/dx, split over the threads when large"""
    for i in range(a.size):
        out[i] = a[i] * b[i]


@kernel(EXACT, rows=(0, 1))
def relu_forward(x, y):
    """y = x where x > 0, else 0 (a NaN x stays NaN, as np.maximum(x, 0) and torch: the test is
    "not x <= 0"). np.maximum takes ~4.5 us on 128x100 floats, this ~1 us."""
    for i in range(x.size):
        v = x[i]
        y[i] = F(0.0) if v <= F(0.0) else v


@kernel(EXACT, rows=(0, 1, 2))
def relu_backward(y, g, out):
    """out = g where y > 0, else 0 (y the relu's output; a NaN y gives 0, as g [y > 0] does)"""
    for i in range(y.size):
        out[i] = g[i] if y[i] > F(0.0) else F(0.0)


@kernel(FAST, rows=(0, 2))
def scale(a, s, out):
    """out = a s for one float32 s"""
    for i in range(a.size):
        out[i] = a[i] * s


# -- convolution -----------------------------------------------------------------------------------------
@njit(inline="always", **FAST)
def _inside(start, step, count, size):
    """[lo, hi): the k in range(count) with 0 <= start + k step < size (hi <= lo when there are none)"""
    lo = max(0, (-start + step - 1) // step)
    hi = min(count, (size - 1 - start) // step + 1)
    return lo, max(lo, hi)


@kernel(FAST, rows=(0,), offset=2)
def im2col_copy(cols, x, c0, sh, sw, ph, pw, dh, dw):
    """cols[c, i, j, n, h, w] = x[n, c0 + c, h sh + i dh - ph, w sw + j dw - pw], 0 where that is padding.

    ``x`` is the NCHW input and ``cols`` the (C, kh, kw, N, Ho, Wo) buffer that reshapes to the GEMM
    operand (C kh kw, N Ho Wo); padding is read as zeros, never materialised. Threads split the
    channels (``c0`` is the first channel of a thread's share of ``cols``)."""
    nc, kh, kw, nn, ho, wo = cols.shape
    height, width = x.shape[2], x.shape[3]
    for c in range(nc):
        for i in range(kh):
            h_lo, h_hi = _inside(i * dh - ph, sh, ho, height)
            for j in range(kw):
                left = j * dw - pw
                w_lo, w_hi = _inside(left, sw, wo, width)
                for n in range(nn):
                    for h in range(ho):
                        if h < h_lo or h >= h_hi:
                            for w in range(wo):
                                cols[c, i, j, n, h, w] = F(0.0)
                            continue
                        r = h * sh + i * dh - ph
                        for w in range(w_lo):
                            cols[c, i, j, n, h, w] = F(0.0)
                        if sw == 1:  # unit stride: a contiguous copy
                            for w in range(U(w_lo), U(w_hi)):
                                cols[c, i, j, n, h, w] = x[n, c0 + c, r, w + U(left)]
                        else:
                            for w in range(U(w_lo), U(w_hi)):
                                cols[c, i, j, n, h, w] = x[n, c0 + c, r, w * U(sw) + U(left)]
                        for w in range(w_hi, wo):
                            cols[c, i, j, n, h, w] = F(0.0)


@njit(inline="always", **FAST)
def _flat_run(i, j, ho, height, width, ph, pw, dh, dw):
    """Where tap (i, j) of a unit-stride, Wo = W convolution reads a flat input plane.

    Returns (h_lo, h_hi, w_lo, w_hi, q_lo, q_hi, shift): the output rows and columns whose tap pixel is
    inside the image, and the run [q_lo, q_hi) of the flat output plane that maps to input position
    q + shift (shift = (i dh - ph) W + j dw - pw). q_hi <= q_lo when the tap falls wholly on padding."""
    top, left = i * dh - ph, j * dw - pw
    h_lo, h_hi = _inside(top, 1, ho, height)
    w_lo, w_hi = _inside(left, 1, width, width)
    if h_lo >= h_hi or w_lo >= w_hi:
        return h_lo, h_hi, w_lo, w_hi, 0, 0, 0
    return h_lo, h_hi, w_lo, w_hi, h_lo * width + w_lo, (h_hi - 1) * width + w_hi, top * width + left


@njit(inline="always", **FAST)
def _zero_wrapped(plane, width, h_lo, h_hi, w_lo, w_hi):
    """Zero the entries of a flat tap plane (rows h_lo..h_hi) whose column is outside [w_lo, w_hi):
    in a run that crosses row edges they hold the previous row's end or the next row's start."""
    for w in range(w_lo):
        for h in range(h_lo, h_hi):
            plane[h * width + w] = F(0.0)
    for w in range(w_hi, width):
        for h in range(h_lo, h_hi):
            plane[h * width + w] = F(0.0)


@kernel(FAST, rows=(0,), offset=2)
def im2col_copy_flat(cols, x, c0, height, width, ph, pw, dh, dw):
    """im2col_copy for unit strides and an output as wide as the input (Wo = W: a 3x3 kernel with
    padding 1): ``cols`` is (C, kh, kw, N, Ho*Wo) and ``x`` (N, C, H*W), each plane flat.

    Then every tap's plane is x's plane shifted by one offset, cols[c, i, j, n, q] =
    x[n, c0 + c, q + (i dh - ph) W + j dw - pw], so it is one long contiguous copy (a row of 28 is
    too short to vectorise well); the entries that wrapped across a row edge (columns w outside
    the tap's valid range) are then zeroed."""
    nc, kh, kw, nn, plane = cols.shape
    ho = plane // width
    for c in range(nc):
        for i in range(kh):
            for j in range(kw):
                h_lo, h_hi, w_lo, w_hi, q_lo, q_hi, shift = _flat_run(i, j, ho, height, width, ph, pw, dh, dw)
                for n in range(nn):
                    for q in range(q_lo):
                        cols[c, i, j, n, q] = F(0.0)
                    if q_hi > q_lo:
                        src = U(q_lo + shift)  # >= 0: the first valid pixel of the tap
                        for t in range(U(q_hi - q_lo)):
                            cols[c, i, j, n, U(q_lo) + t] = x[n, c0 + c, src + t]
                        _zero_wrapped(cols[c, i, j, n], width, h_lo, h_hi, w_lo, w_hi)
                    for q in range(max(q_lo, q_hi), plane):
                        cols[c, i, j, n, q] = F(0.0)


@kernel(FAST, rows=(0,), offset=2)
def col2im_sum_flat(cols, out, c0, height, width, ph, pw, dh, dw):
    """col2im_sum for the geometry of im2col_copy_flat: ``cols`` (C, kh, kw, N, Ho*Wo), ``out``
    (N, C, H*W). Each tap adds one long contiguous run into the plane; the run's entries that would
    wrap across a row edge are taps on the padding, so they are zeroed in ``cols`` first (``cols``
    is scratch: the GEMM's dL/dcols)."""
    nc, kh, kw, nn, plane = cols.shape
    ho = plane // width
    for c in range(nc):
        for n in range(nn):
            for p in range(height * width):
                out[n, c0 + c, p] = F(0.0)
            for i in range(kh):
                for j in range(kw):
                    h_lo, h_hi, w_lo, w_hi, q_lo, q_hi, shift = _flat_run(i, j, ho, height, width, ph, pw, dh, dw)
                    if q_hi <= q_lo:
                        continue
                    _zero_wrapped(cols[c, i, j, n], width, h_lo, h_hi, w_lo, w_hi)
                    dst = U(q_lo + shift)
                    for t in range(U(q_hi - q_lo)):
                        out[n, c0 + c, dst + t] += cols[c, i, j, n, U(q_lo) + t]


@kernel(FAST, rows=(0,), offset=2)
def col2im_sum(cols, out, c0, sh, sw, ph, pw, dh, dw):
    """out[n, c0 + c, y, x] = sum of cols[c, i, j, n, h, w] over the taps with h sh + i dh - ph = y and
    w sw + j dw - pw = x: the adjoint of im2col_copy (taps that fell on padding are dropped).

    ``out`` is the NCHW input gradient; the planes of the channels ``cols`` covers are overwritten. Each
    (n, c) plane is summed while it sits in L1; threads split the channels, so their writes never collide."""
    nc, kh, kw, nn, ho, wo = cols.shape
    height, width = out.shape[2], out.shape[3]
    for c in range(nc):
        for n in range(nn):
            for y in range(height):
                for x in range(width):
                    out[n, c0 + c, y, x] = F(0.0)
            for i in range(kh):
                h_lo, h_hi = _inside(i * dh - ph, sh, ho, height)
                for j in range(kw):
                    left = j * dw - pw
                    w_lo, w_hi = _inside(left, sw, wo, width)
                    for h in range(h_lo, h_hi):
                        r = h * sh + i * dh - ph
                        if sw == 1:  # unit stride spelled out: LLVM then sees a contiguous loop
                            for w in range(U(w_lo), U(w_hi)):
                                out[n, c0 + c, r, w + U(left)] += cols[c, i, j, n, h, w]
                        else:
                            for w in range(U(w_lo), U(w_hi)):
                                out[n, c0 + c, r, w * U(sw) + U(left)] += cols[c, i, j, n, h, w]


@kernel(FAST, rows=(0, 1))
def col2im_add(cols, out, sh, sw, dh, dw):
    """out[a, b, h sh + i dh, w sw + j dw] += cols[a, i, j, b, h, w]: the adjoint of im2col, for the
    (A, kh, kw, B, Ho, Wo) layout the conv GEMM writes. ``out`` (A, B, Hp, Wp) starts at zero.
    Threads split A (channels): each owns its output planes, so the adds never collide."""
    na, kh, kw, nb, ho, wo = cols.shape
    for a in range(na):
        for i in range(kh):
            for j in range(kw):
                for b in range(nb):
                    for h in range(ho):
                        r = h * sh + i * dh
                        if sw == 1:  # unit stride: the add vectorises
                            for w in range(U(wo)):
                                out[a, b, r, w + U(j * dw)] += cols[a, i, j, b, h, w]
                        else:
                            for w in range(U(wo)):
                                out[a, b, r, w * U(sw) + U(j * dw)] += cols[a, i, j, b, h, w]


@kernel(EXACT, rows=(0, 1, 2))
def max_pool2d_index(x, index, values, kh, kw, sh, sw, ph, pw, dh, dw):
    """index[p, oh, ow]: the flat position (h W + w) in plane x[p] of the maximum of the window at
    (oh sh - ph, ow sw - pw), taps dh, dw apart (padding taps skipped); values[p, oh, ow]: that maximum.
    torch's rules: the first maximum wins a tie, a NaN wins over everything (the last NaN of the
    window), and a window whose real pixels are all -inf reports its first real pixel.
    (No fastmath here: it would drop the NaN tests.)"""
    planes, height, width = x.shape
    _, ho, wo = index.shape
    # the taps of each window row / column that fall inside the image (so no test per tap), once per call
    i_lo, i_hi = np.empty(ho, np.int64), np.empty(ho, np.int64)
    for oh in range(ho):
        top = oh * sh - ph
        i_lo[oh], i_hi[oh] = max(0, (-top + dh - 1) // dh), min(kh, (height - 1 - top) // dh + 1)
    j_lo, j_hi = np.empty(wo, np.int64), np.empty(wo, np.int64)
    for ow in range(wo):
        left = ow * sw - pw
        j_lo[ow], j_hi[ow] = max(0, (-left + dw - 1) // dw), min(kw, (width - 1 - left) // dw + 1)
    for p in range(planes):
        for oh in range(ho):
            top = oh * sh - ph
            i0, i1 = i_lo[oh], i_hi[oh]
            for ow in range(wo):
                left = ow * sw - pw
                j0, j1 = j_lo[ow], j_hi[ow]
                if i1 - i0 == 2 and j1 - j0 == 2 and kh == 2 and kw == 2 and dh == 1 and dw == 1:
                    # a whole 2x2 window (MaxPool2d(2)'s every window), unrolled: taps in torch's order
                    r, c = top, left
                    best, at = x[p, r, c], r * width + c
                    v = x[p, r, c + 1]
                    if v > best or v != v:
                        best, at = v, r * width + c + 1
                    v = x[p, r + 1, c]
                    if v > best or v != v:
                        best, at = v, (r + 1) * width + c
                    v = x[p, r + 1, c + 1]
                    if v > best or v != v:
                        best, at = v, (r + 1) * width + c + 1
                    index[p, oh, ow] = at
                    values[p, oh, ow] = best
                    continue
                best = x[p, top + i0 * dh, left + j0 * dw]
                at = (top + i0 * dh) * width + left + j0 * dw
                for i in range(i0, i1):
                    r = top + i * dh
                    for j in range(j0, j1):
                        v = x[p, r, left + j * dw]
                        if v > best or v != v:  # torch's test: the last NaN of a window wins
                            best = v
                            at = r * width + left + j * dw
                index[p, oh, ow] = at
                values[p, oh, ow] = best


@kernel(EXACT, rows=(0, 1, 2))
def max_pool2d_backward(index, g, gx):
    """gx[p].flat[index[p, k]] += g[p, k]: max pooling's gradient, plane by plane (so overlapping
    windows that share a winner add up; threads own whole planes). gx starts at zero."""
    planes, n = index.shape
    for p in range(planes):
        for k in range(n):
            gx[p, index[p, k]] += g[p, k]


# -- dropout: a counter-based random stream -----------------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64's increment (2^64 / golden ratio)


@njit(inline="always", **EXACT)
def _splitmix64(seed, i):
    """The i-th output of SplitMix64 (Steele, Lea & Flood, 2014) started at ``seed``: its state after
    i + 1 steps is seed + (i + 1) golden, mixed by two multiply-xorshifts. Any element's draw is a pure
    function of (seed, i), so ranges of a split call need no shared state. (NumPy twin: ops/dropout.py.)"""
    z = seed + (i + U(1)) * _GOLDEN
    z = (z ^ (z >> U(30))) * U(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> U(27))) * U(0x94D049BB133111EB)
    return z ^ (z >> U(31))


@kernel(EXACT, rows=(0, 1), offset=3)
def dropout_apply(x, out, seed, start, threshold, scale):
    """out[i] = x[i] scale if the draw of element start + i keeps it, else x[i] 0 (as x * mask: NaN stays
    NaN). Element k is kept when the top 24 bits of splitmix64(seed, k) are >= threshold = p 2^24.
    The same call on the upstream gradient is the backward: the mask is never stored."""
    for i in range(x.size):
        keep = (_splitmix64(seed, U(start) + U(i)) >> U(40)) >= threshold
        out[i] = x[i] * (scale if keep else F(0.0))


# -- optimizer steps, in place on flat float32 arrays ------------------------------------------------------
@kernel(EXACT, rows=(0, 1, 2, 3, 13))
def adam_step(p, g, m, v, step_size, one_minus_beta1, beta2, one_minus_beta2, eps, l2, decay, bias_c2_sqrt,
              amsgrad, vmax):
    """Adam / AdamW in one pass, torch's formulas in torch's order of operations
    (scalars are precomputed in float64 by the caller, as torch does with Python floats):
        p <- p decay                  (AdamW: decay = 1 - lr wd;  Adam: decay = 1)
        g <- g + l2 p                 (Adam's L2 penalty;  AdamW: l2 = 0)
        m <- m + (g - m)(1 - b1);     v <- v b2 + (1 - b2) g^2
        p <- p - step_size m / (sqrt(v) / sqrt(bc2) + eps)     (sqrt(max v) with amsgrad)"""
    for i in range(p.size):
        pi = p[i] * decay
        gi = g[i] + l2 * pi
        mi = m[i] + (gi - m[i]) * one_minus_beta1
        vi = v[i] * beta2 + one_minus_beta2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vi = max(vmax[i], vi)
            vmax[i] = vi
        p[i] = pi - step_size * (mi / (np.sqrt(vi) / bias_c2_sqrt + eps))


@njit(inline="always", **EXACT)
def _decayed_grad(g, p, weight_decay, g_sign):
    """g_sign g + wd p: the gradient an SGD/RMSprop/Adagrad step uses (g_sign = -1 to maximize, exact)"""
    g = g_sign * g
    return g + weight_decay * p if weight_decay != F(0.0) else g


# The optimizer kernels below take an empty placeholder for a state array their options leave out, and
# never touch it in a loop: LLVM's vectorised loop checks at run time that every array it may access
# does not overlap the others, over the loop's whole length, and an empty array placed near the
# parameter failed that check at random (RMSprop ran 200 us or 1,800 us from call to call). Hence one
# loop per case instead of tests inside one loop.
@kernel(EXACT, rows=(0, 1, 2))
def sgd_step(p, g, buf, lr, weight_decay, momentum, one_minus_dampening, nesterov, use_momentum, first, g_sign):
    """SGD in one pass, torch's formulas in torch's order (``optim/sgd.py`` spells them in NumPy):
        g <- g_sign g + wd p
        b <- g on the first step, else b momentum + (1 - dampening) g     (when momentum is used)
        d <- g + momentum b (Nesterov), else b;   p <- p - lr d
    ``buf`` is an empty placeholder without momentum."""
    if not use_momentum:
        for i in range(p.size):
            p[i] = p[i] - lr * _decayed_grad(g[i], p[i], weight_decay, g_sign)
        return
    for i in range(p.size):
        gi = _decayed_grad(g[i], p[i], weight_decay, g_sign)
        b = gi if first else buf[i] * momentum + one_minus_dampening * gi
        buf[i] = b
        p[i] = p[i] - lr * (gi + momentum * b if nesterov else b)


@kernel(EXACT, rows=(0, 1, 2))
def lion_step(p, g, m, lr, decay, beta1, one_minus_beta1, beta2, one_minus_beta2, g_sign):
    """Lion in one pass, in the order of ``optim/lion.py``'s NumPy lines (g_sign = -1 to maximize):
        p <- p decay   (decay = 1 - lr wd);    p <- p - lr sign(b1 m + (1 - b1) g);    m <- b2 m + (1 - b2) g"""
    for i in range(p.size):
        gi = g_sign * g[i]
        mi = m[i]
        c = beta1 * mi + one_minus_beta1 * gi
        s = F(1.0) if c > F(0.0) else (F(-1.0) if c < F(0.0) else c)  # np.sign: 0 stays 0, NaN stays NaN
        p[i] = p[i] * decay - lr * s
        m[i] = mi * beta2 + one_minus_beta2 * gi


@kernel(EXACT, rows=(0, 1, 2, 3, 4))
def rmsprop_step(p, g, square_avg, grad_avg, buf, lr, alpha, one_minus_alpha, eps, weight_decay, momentum,
                 centered, use_momentum, lerp_from_start, lerp_back, g_sign):
    """RMSprop in one pass, in the order of ``optim/rmsprop.py``'s NumPy lines:
        g <- g_sign g + wd p;    v <- alpha v + (1 - alpha) g^2
        ga <- lerp(ga, g, 1 - alpha)    (centered; from the end ``lerp_`` starts at, lerp_back = 1 - (1 - alpha))
        s <- g / (sqrt(v - ga^2) + eps)   (centered)  or  g / (sqrt(v) + eps)
        b <- momentum b + s;  p <- p - lr b      (momentum)  or  p <- p - lr s
    ``grad_avg`` and ``buf`` are empty placeholders when unused (one loop per case: see above)."""
    if centered and use_momentum:
        for i in range(p.size):
            gi = _decayed_grad(g[i], p[i], weight_decay, g_sign)
            v, a = _rms_averages(square_avg, grad_avg, i, gi, alpha, one_minus_alpha, lerp_from_start, lerp_back)
            b = buf[i] * momentum + gi / (np.sqrt(v - a * a) + eps)
            buf[i] = b
            p[i] = p[i] - lr * b
    elif centered:
        for i in range(p.size):
            gi = _decayed_grad(g[i], p[i], weight_decay, g_sign)
            v, a = _rms_averages(square_avg, grad_avg, i, gi, alpha, one_minus_alpha, lerp_from_start, lerp_back)
            p[i] = p[i] - lr * (gi / (np.sqrt(v - a * a) + eps))
    elif use_momentum:
        for i in range(p.size):
            gi = _decayed_grad(g[i], p[i], weight_decay, g_sign)
            v = square_avg[i] * alpha + one_minus_alpha * (gi * gi)
            square_avg[i] = v
            b = buf[i] * momentum + gi / (np.sqrt(v) + eps)
            buf[i] = b
            p[i] = p[i] - lr * b
    else:
        for i in range(p.size):
            gi = _decayed_grad(g[i], p[i], weight_decay, g_sign)
            v = square_avg[i] * alpha + one_minus_alpha * (gi * gi)
            square_avg[i] = v
            p[i] = p[i] - lr * (gi / (np.sqrt(v) + eps))


@njit(inline="always", **EXACT)
def _rms_averages(square_avg, grad_avg, i, g, alpha, one_minus_alpha, lerp_from_start, lerp_back):
    """Centered RMSprop's running averages of g^2 and g at i, updated in place; returns both."""
    v = square_avg[i] * alpha + one_minus_alpha * (g * g)
    square_avg[i] = v
    a = grad_avg[i]
    a = a + one_minus_alpha * (g - a) if lerp_from_start else g - (g - a) * lerp_back
    grad_avg[i] = a
    return v, a


@kernel(EXACT, rows=(0, 1, 2))
def adagrad_step(p, g, total, lr, eps, weight_decay, g_sign):
    """Adagrad in one pass, in the order of ``optim/adagrad.py``'s NumPy lines (g_sign = -1 to maximize;
    lr already decayed for this step):   g <- g_sign g + wd p;   s <- s + g^2;   p <- p - lr (g / (sqrt(s) + eps))"""
    for i in range(p.size):
        gi = _decayed_grad(g[i], p[i], weight_decay, g_sign)
        si = total[i] + gi * gi
        total[i] = si
        p[i] = p[i] - lr * (gi / (np.sqrt(si) + eps))


# -- gather/scatter -------------------------------------------------------------------------------------
@njit(**EXACT)
def embedding_backward(ids, g, out, padding_idx):
    """out[ids[k]] += g[k] for every k (repeated ids accumulate; the padding row gets nothing)"""
    n, d = g.shape
    for k in range(n):
        row = ids[k]
        if row == padding_idx:
            continue
        for j in range(d):
            out[row, j] += g[k, j]
