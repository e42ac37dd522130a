"""Winograd's minimal filtering F(2x2, 3x3) for 3x3, stride-1 convolutions (Lavin and Gray, 2016).

Each 2x2 tile Y of the output comes from the 4x4 tile d of the padded input at twice its position:

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise; g the 3x3 filter)

    B^T = | 1  0 -1  0 |     G = | 1    0    0  |     A^T = | 1  1  1  0 |
          | 0  1  1  0 |         | 1/2  1/2  1/2 |           | 0  1 -1 -1 |
          | 0 -1  1  0 |         | 1/2 -1/2  1/2 |
          | 0  1  0 -1 |         | 0    0    1  |

Summed over the input channels, the elementwise products of the 16 positions k = (a, b) of a tile are 16
matrix products, M[k] (O, T) = U[k] (O, C) @ V[k] (C, T), with U = G g G^T (the filter, transformed once
per call) and V = B^T d B (the input, per tile): 16 multiplies per 4 outputs instead of 36, so the
GEMMs do 4/9 of im2col's flops, at the price of two passes over tiles (the transforms).

Its backward in the input is the same algorithm: dL/dx is the 3x3 correlation of dL/dy, padded by
(2 - top, 2 - left), with the filter turned by 180 degrees and its channel axes swapped
(:func:`input_grad_filter`). (dL/dW stays im2col's GEMM.) Only float32 takes this path, so the
float64 parity tests check the NumPy twin and the float32 ones this one; the transforms add a few
roundings (|error| ~ 1e-6 of the output's scale, measured in tests/ops/test_conv.py).
"""

from __future__ import annotations

import numpy as np

from neural_arch.backend.kernels._jit import FAST, F, U, inline, kernel


def applies(kernel_hw, stride, dilation, groups, pads) -> bool:
    """Whether a convolution has the geometry this algorithm computes: 3x3, stride 1, no dilation, no groups,
    padding of at most 2 on each side (so that the input gradient's padding, 2 - p, is not negative)."""
    return (tuple(kernel_hw) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
            and groups == 1 and max(pads) <= 2)


def transform_filter(w):
    """U[(a, b), o, c] = (G w[o, c] G^T)[a, b], as the (16, O, C) GEMM operand."""
    u = np.empty((16,) + w.shape[:2], np.float32)
    filter_tiles.serial(w.astype(np.float32, copy=False), u)
    return u


def input_grad_filter(w):
    """The filter whose correlation with dL/dy gives dL/dx: w turned by 180 degrees, (C, O) for (O, C)."""
    return w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)


# G R = P G for R the reversal of a filter's three taps and P the swap of rows 0 and 3 of G (rows 1 and 2 of G
# are symmetric): the position (a, b) of the turned filter's transform is (p(a), p(b)) of the filter's
_TURN = [4 * p + q for p in (3, 1, 2, 0) for q in (3, 1, 2, 0)]


def turned(u):
    """The transform of :func:`input_grad_filter` (w turned by 180 degrees, channel axes swapped) from w's own
    transform ``u`` (16, O, C): G (R g R) G^T = P (G g G^T) P^T, so U'[(a, b), c, o] = U[(p(a), p(b)), o, c]
    with p swapping 0 and 3: a permutation and a transpose, cheaper than transforming again; the values
    differ from the direct transform by the order of a few roundings."""
    return np.ascontiguousarray(u[_TURN].transpose(0, 2, 1))


def convolve(x, u, top_left, out_hw, matmul, y=None):
    """y = the 3x3 stride-1 correlation of x (n, C, H, W), any strides, with the filter transformed to ``u``
    (16, O, C), padded by ``top_left`` (rows above, columns to the left; the rest of each window that
    falls outside x reads zeros), giving ``out_hw``. Written into ``y`` (n, O, Ho, Wo) when given."""
    n, c, h, w = x.shape
    (top, left), (ho, wo) = top_left, out_hw
    th, tw = -(-ho // 2), -(-wo // 2)
    # the padded input, 2 t + 2 rows and columns: every tile's 4x4 window lies inside it, no bounds tests
    xp = np.zeros((n, c, 2 * th + 2, 2 * tw + 2), np.float32)
    rows, cols = min(h, 2 * th + 2 - top), min(w, 2 * tw + 2 - left)
    xp[:, :, top : top + rows, left : left + cols] = x[:, :, :rows, :cols]
    v = np.empty((16, c, n * th * tw), np.float32)
    input_tiles.serial(xp, v)
    m = matmul(u, v)  # (16, O, n th tw)
    exact = ho == 2 * th and wo == 2 * tw
    out = y if exact and y is not None else np.empty((n, u.shape[1], 2 * th, 2 * tw), np.float32)
    output_tiles.serial(m, out)
    if exact:
        return out
    if y is None:
        return np.ascontiguousarray(out[:, :, :ho, :wo])
    y[...] = out[:, :, :ho, :wo]
    return y


@inline(FAST)
def _g(r0, r1, r2):
    """G times a column of three: (r0, (r0 + r1 + r2) / 2, (r0 - r1 + r2) / 2, r2)"""
    return r0, (r0 + r1 + r2) * F(0.5), (r0 - r1 + r2) * F(0.5), r2


@kernel(FAST, rows=(0,))
def filter_tiles(w, u):
    """u[(a, b), o, c] = (G w[o, c] G^T)[a, b]: G combines the filter's rows (t = G w, column by column),
    then the three columns of each row of t. The loop over c writes the 16 planes of u contiguously."""
    no, nc = w.shape[0], w.shape[1]
    for o in range(no):
        for c in range(nc):
            t00, t10, t20, t30 = _g(w[o, c, 0, 0], w[o, c, 1, 0], w[o, c, 2, 0])
            t01, t11, t21, t31 = _g(w[o, c, 0, 1], w[o, c, 1, 1], w[o, c, 2, 1])
            t02, t12, t22, t32 = _g(w[o, c, 0, 2], w[o, c, 1, 2], w[o, c, 2, 2])
            u[0, o, c], u[1, o, c], u[2, o, c], u[3, o, c] = _g(t00, t01, t02)
            u[4, o, c], u[5, o, c], u[6, o, c], u[7, o, c] = _g(t10, t11, t12)
            u[8, o, c], u[9, o, c], u[10, o, c], u[11, o, c] = _g(t20, t21, t22)
            u[12, o, c], u[13, o, c], u[14, o, c], u[15, o, c] = _g(t30, t31, t32)


@kernel(FAST, rows=(0,))
def input_tiles(xp, v):
    """v[(a, b), c, (n, ty, tx)] = (B^T d B)[a, b] for the 4x4 tile d = xp[n, c, 2 ty : 2 ty + 4, 2 tx : 2 tx + 4].

    B^T combines four rows of xp (r0 - r2, r1 + r2, r2 - r1, r1 - r3) along the whole padded width into
    ``e`` (contiguous loops), then B the same way each tile's four columns of e."""
    nn, nc, hp, wp = xp.shape
    th, tw = (hp - 2) // 2, (wp - 2) // 2
    e = np.empty((4, wp), np.float32)
    for c in range(nc):
        for n in range(nn):
            for ty in range(th):
                r = 2 * ty
                for q in range(U(wp)):
                    d0, d1, d2, d3 = xp[n, c, r, q], xp[n, c, r + 1, q], xp[n, c, r + 2, q], xp[n, c, r + 3, q]
                    e[0, q], e[1, q], e[2, q], e[3, q] = d0 - d2, d1 + d2, d2 - d1, d1 - d3
                t0 = U((n * th + ty) * tw)
                for a in range(4):
                    k = 4 * a
                    for tx in range(U(tw)):
                        q = U(2) * tx
                        d0, d1, d2, d3 = e[a, q], e[a, q + U(1)], e[a, q + U(2)], e[a, q + U(3)]
                        v[k, c, t0 + tx] = d0 - d2
                        v[k + 1, c, t0 + tx] = d1 + d2
                        v[k + 2, c, t0 + tx] = d2 - d1
                        v[k + 3, c, t0 + tx] = d1 - d3


@kernel(FAST, rows=(0,))
def output_tiles(m, y):
    """y[n, o, 2 ty + i, 2 tx + j] = (A^T M A)[i, j] for the 4x4 tile M[(a, b)] = m[(a, b), o, (n, ty, tx)]:
    A^T combines M's rows (m0 + m1 + m2, m1 - m2 - m3) for a row of tiles at once into ``s`` (contiguous
    loops), then A the same way each tile's four columns of s."""
    no = m.shape[1]
    nn, th, tw = y.shape[0], y.shape[2] // 2, y.shape[3] // 2
    s = np.empty((2, 4, tw), np.float32)
    for o in range(no):
        for n in range(nn):
            for ty in range(th):
                t0 = U((n * th + ty) * tw)
                for b in range(4):
                    for tx in range(U(tw)):
                        t = t0 + tx
                        m1, m2 = m[4 + b, o, t], m[8 + b, o, t]
                        s[0, b, tx] = m[b, o, t] + m1 + m2
                        s[1, b, tx] = m1 - m2 - m[12 + b, o, t]
                for i in range(2):
                    row = 2 * ty + i
                    for tx in range(U(tw)):
                        s1, s2 = s[i, 1, tx], s[i, 2, tx]
                        y[n, o, row, U(2) * tx] = s[i, 0, tx] + s1 + s2
                        y[n, o, row, U(2) * tx + U(1)] = s1 - s2 - s[i, 3, tx]
