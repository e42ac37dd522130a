"""Matrix functions and decompositions (torch.linalg's core): det, slogdet, inv,
solve, cholesky, qr, svd, eigh. All act on the last two dims and batch over the rest.

Gradients are torch's (real case; ``tools/autograd/FunctionsManual.cpp``).
Notation: A the input, G = dL/d(output), ^T the transpose over the last two dims.

An op with several differentiable outputs (qr, svd, eigh) returns them packed
into one flat array; ``_split`` slices them back out with differentiable
indexing, so backward gets one packed gradient, zeros where an output was not used.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from neural_arch.autograd.autocast import FP32, autocast_args
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend import gemm
from neural_arch.errors import DTypeError, GradientError, NumericalError, ShapeError, shape_str
from neural_arch.ops.reduce import _prod_others
from neural_arch.ops.shape import transpose

__all__ = ["cholesky", "det", "eigh", "inv", "qr", "slogdet", "solve", "svd"]

SlogdetResult = namedtuple("slogdet", ["sign", "logabsdet"])
QRResult = namedtuple("qr", ["Q", "R"])
SVDResult = namedtuple("svd", ["U", "S", "Vh"])
EighResult = namedtuple("eigh", ["eigenvalues", "eigenvectors"])


def _T(a):
    return np.swapaxes(a, -1, -2)


_mm = gemm.matmul


def _square(x: Tensor, op: str) -> None:
    s = x.data.shape
    if x.data.ndim < 2 or s[-1] != s[-2]:
        raise ShapeError(f"{op}: expects a square matrix or a batch of them (..., n, n), got {shape_str(s)}")
    _floating(x, op)


def _floating(x: Tensor, op: str) -> None:
    if x.data.ndim < 2:
        raise ShapeError(f"{op}: expects a matrix or a batch of them (..., m, n), got {shape_str(x.shape)}")
    if x.data.dtype.kind != "f" or x.data.dtype.itemsize < 4:
        raise DTypeError(f"{op}: supports float32 and float64 inputs, got {x.dtype}; convert with .double() "
                         "or .float()")


def _pack(*arrays):
    return np.concatenate([a.reshape(-1) for a in arrays])


def _split(packed, shapes) -> list:
    """The consecutive pieces of a flat ``packed`` (an array, or a Tensor: differentiable slices), one per shape."""
    parts, start = [], 0
    for shape in shapes:
        n = math.prod(shape)
        parts.append(packed[start:start + n].reshape(shape))
        start += n
    return parts


def _linalg_error(op: str, what: str):
    return NumericalError(f"{op}: the input is {what}; check it for linearly dependent rows/columns "
                          "(or add a small multiple of the identity)")


# -- determinants ------------------------------------------------------------------------------------
class Det(Function):
    """y = det A          dL/dA = g adj(A)^T  (= g det(A) A^{-T} when A is invertible)

    The adjugate comes from the SVD, adj(A) = det(U) det(V) V diag(prod_{j != i} s_j) U^T,
    so a singular A has its (finite) gradient too, as in torch.
    """

    half = "unsupported"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.linalg.det(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        u, s, vh = np.linalg.svd(a)
        sign = np.linalg.det(u) * np.linalg.det(vh)
        adj = _mm(_T(vh) * _prod_others(s, -1)[..., None, :], _T(u)) * sign[..., None, None]
        return (grad[..., None, None] * _T(adj)).astype(a.dtype, copy=False)


class LogAbsDet(Function):
    """y = log |det A|     dL/dA = g A^{-T}"""

    half = "unsupported"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.linalg.slogdet(a)[1].astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad[..., None, None] * _T(np.linalg.inv(a))


def det(a: Tensor) -> Tensor:
    """The determinant of a square matrix (or of each in a batch)."""
    _square(a, "det")
    return Det.apply(a)


def slogdet(a: Tensor):
    """(sign, log|det|), the stable way to a determinant's size; the gradient flows through logabsdet."""
    _square(a, "slogdet")
    sign = np.linalg.slogdet(a.data)[0].astype(a.data.dtype)
    return SlogdetResult(Tensor._wrap(sign), LogAbsDet.apply(a))


# -- inverse and solve -------------------------------------------------------------------------------
class Inv(Function):
    """Y = A^{-1}          dL/dA = -Y^T G Y^T"""

    half = "unsupported"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, a):
        try:
            y = np.linalg.inv(a)
        except np.linalg.LinAlgError:
            raise _linalg_error("inv", "singular") from None
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        yt = _T(y)
        return -_mm(_mm(yt, grad), yt)


def inv(a: Tensor) -> Tensor:
    """The inverse of a square matrix; a singular one raises NumericalError."""
    (a,) = autocast_args(FP32, a)  # on torch's float32 list: cast before the dtype check
    _square(a, "inv")
    return Inv.apply(a)


class Solve(Function):
    """X = A^{-1} B        dL/dB = A^{-T} G,   dL/dA = -(dL/dB) X^T

    ``vector``: B is a (batch of) vector(s), handled as one-column matrices.
    """

    half = "unsupported"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, a, b, vector):
        bm = b[..., None] if vector else b
        try:
            x = np.linalg.solve(a, bm)
        except np.linalg.LinAlgError:
            raise _linalg_error("solve", "singular") from None
        ctx.save_for_backward(a, x)
        ctx.vector = vector
        return x[..., 0] if vector else x

    @staticmethod
    def backward(ctx, grad):
        a, x = ctx.saved_tensors
        g = grad[..., None] if ctx.vector else grad
        gb = np.linalg.solve(_T(a), g) if g.shape[:-2] == a.shape[:-2] else _solve_broadcast(_T(a), g)
        ga = -_mm(gb, _T(x)) if ctx.needs_input_grad[0] else None
        return ga, (gb[..., 0] if ctx.vector else gb)


def _solve_broadcast(a, b):
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return np.linalg.solve(np.broadcast_to(a, shape + a.shape[-2:]), np.broadcast_to(b, shape + b.shape[-2:]))


def solve(a: Tensor, b: Tensor, *, left: bool = True) -> Tensor:
    """X with A X = B (``left=False``: X A = B). B may be a vector (or a batch of vectors)."""
    a, b = autocast_args(FP32, a, b)  # on torch's float32 list: cast before the dtype check
    _square(a, "solve")
    if not left:
        return transpose(solve(transpose(a, -1, -2), transpose(b, -1, -2)), -1, -2)
    if b.data.dtype != a.data.dtype:
        raise DTypeError(f"solve: A is {a.dtype} but B is {b.dtype}; convert one of them")
    vector = b.data.ndim == 1 or (b.data.ndim == a.data.ndim - 1 and b.data.shape == a.data.shape[:-1])
    n = a.data.shape[-1]
    if (b.data.shape[-1] if vector else b.data.shape[-2] if b.data.ndim >= 2 else -1) != n:
        raise ShapeError(f"solve: A {shape_str(a.shape)} and B {shape_str(b.shape)} do not fit (B needs {n} rows)")
    try:
        return Solve.apply(a, b, vector=vector)
    except ValueError as exc:  # pragma: no cover - batch dims that do not broadcast
        raise ShapeError(f"solve: batch dims of A {shape_str(a.shape)} and B {shape_str(b.shape)}: {exc}") from None


# -- decompositions ----------------------------------------------------------------------------------
class Cholesky(Function):
    """L = chol(A), A = L L^T (lower).
    dL/dA = L^{-T} Phi L^{-1},  Phi = P + tril(P, -1)^T halved: 0.5 (P + tril(P,-1)^T),  P = tril(L^T G)

    (torch's formula; its symmetric part is the gradient with respect to a symmetric A.)
    """

    half = "unsupported"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, a):
        try:
            low = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            raise NumericalError("cholesky: the input is not positive-definite (a leading minor is <= 0)") from None
        ctx.save_for_backward(low)
        return low

    @staticmethod
    def backward(ctx, grad):
        (low,) = ctx.saved_tensors
        p = np.tril(_mm(_T(low), grad))
        phi = 0.5 * (p + _T(np.tril(p, -1)))
        linv = np.linalg.inv(low)
        return _mm(_mm(_T(linv), phi), linv)


def cholesky(a: Tensor, *, upper: bool = False) -> Tensor:
    """The Cholesky factor of a symmetric positive-definite matrix (lower; ``upper=True``: L^T)."""
    (a,) = autocast_args(FP32, a)  # on torch's float32 list: cast before the dtype check
    _square(a, "cholesky")
    low = Cholesky.apply(a)
    return transpose(low, -1, -2) if upper else low


class QR(Function):
    """A = Q R (reduced: Q (m, k), R (k, n), k = min(m, n)), packed [Q, R].
    For m >= n:  M = R G_R^T - G_Q^T Q,   dL/dA = (G_Q + Q copyltu(M)) R^{-T}
    with copyltu(M) = tril(M) + tril(M, -1)^T (torch's formula; m < n has no gradient here).
    """

    half = "unsupported"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, a, mode):
        q, r = np.linalg.qr(a, mode=mode)
        ctx.save_for_backward(q, r)
        ctx.shapes = (q.shape, r.shape)
        return _pack(q, r)

    @staticmethod
    def backward(ctx, grad):
        q, r = ctx.saved_tensors
        gq, gr = _split(grad, ctx.shapes)
        m, n = q.shape[-2], r.shape[-1]
        if m < n or q.shape[-1] != r.shape[-2] or q.shape[-1] != n:
            raise GradientError("qr: the gradient is implemented for mode='reduced' with m >= n "
                                f"(got Q {shape_str(q.shape)}, R {shape_str(r.shape)})")
        mm = _mm(r, _T(gr)) - _mm(_T(gq), q)
        copyltu = np.tril(mm) + _T(np.tril(mm, -1))
        b = gq + _mm(q, copyltu)
        # B R^{-T}: solve R X^T = B^T
        return _T(np.linalg.solve(r, _T(b)))


def qr(a: Tensor, mode: str = "reduced"):
    """(Q, R) with A = Q R; ``mode`` 'reduced', 'complete' or 'r' (then Q is empty), as torch.linalg.qr."""
    (a,) = autocast_args(FP32, a)  # on torch's float32 list: cast before the dtype check
    _floating(a, "qr")
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    if mode == "r":
        r = np.linalg.qr(a.data, mode="r")
        return QRResult(Tensor._wrap(np.zeros((0,), dtype=a.data.dtype)), Tensor._wrap(np.triu(r)))
    m, n = a.data.shape[-2:]
    k = m if mode == "complete" else min(m, n)
    batch = a.data.shape[:-2]
    return QRResult(*_split(QR.apply(a, mode=mode), [batch + (m, k), batch + (k, n)]))


class SVD(Function):
    """A = U diag(S) V^T, packed [U, S, Vh].  With E_jk = S_k^2 - S_j^2 (1 on the diagonal),
    skew(X) = X - X^T, J = (skew(U^T G_U) S + S skew(V^T G_V)) / E + diag(G_S):
        dL/dA = U J V^T + (I - U U^T) G_U S^{-1} V^T + U S^{-1} G_V^T (I - V V^T)
    (torch's formula; with full_matrices only the first k columns of U and V carry a gradient).
    """

    half = "unsupported"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, a, full_matrices):
        u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
        ctx.save_for_backward(u, s, vh)
        ctx.shapes = (u.shape, s.shape, vh.shape)
        return _pack(u, s, vh)

    @staticmethod
    def backward(ctx, grad):
        u, s, vh = ctx.saved_tensors
        gu, gs, gvh = _split(grad, ctx.shapes)
        return _svd_backward(u, s, vh, gu, gs, gvh)


def _svd_backward(u, s, vh, gu, gs, gvh):
    k = s.shape[-1]
    u, gu, vh, gvh = u[..., :k], gu[..., :k], vh[..., :k, :], gvh[..., :k, :]
    m, n = u.shape[-2], vh.shape[-1]
    v, gv = _T(vh), _T(gvh)
    s2 = s * s
    e = s2[..., None, :] - s2[..., :, None]
    idx = np.arange(k)
    e[..., idx, idx] = 1
    utgu, vtgv = _mm(_T(u), gu), _mm(vh, gv)
    j = ((utgu - _T(utgu)) * s[..., None, :] + s[..., :, None] * (vtgv - _T(vtgv))) / e
    j[..., idx, idx] += gs
    if m > k:
        gus = gu / s[..., None, :]
        inner = _mm(u, j) + gus - _mm(u, _mm(_T(u), gus))
        return _mm(inner, vh)
    if n > k:
        sgv = _T(gv) / s[..., :, None]
        inner = _mm(j, vh) + sgv - _mm(_mm(sgv, v), vh)
        return _mm(u, inner)
    return _mm(_mm(u, j), vh)


def svd(a: Tensor, full_matrices: bool = True):
    """(U, S, Vh) with A = U diag(S) Vh, S descending (torch.linalg.svd)."""
    (a,) = autocast_args(FP32, a)  # on torch's float32 list: cast before the dtype check
    _floating(a, "svd")
    m, n = a.data.shape[-2:]
    k = min(m, n)
    batch = a.data.shape[:-2]
    cu, rv = (m, n) if full_matrices else (k, k)
    shapes = [batch + (m, cu), batch + (k,), batch + (rv, n)]
    return SVDResult(*_split(SVD.apply(a, full_matrices=full_matrices), shapes))


class Eigh(Function):
    """A = Q diag(L) Q^T (symmetric A, ascending L), packed [L, Q].
    With E_jk = L_k - L_j (1 on the diagonal):  X = Q (diag(G_L) + (Q^T G_Q) / E) Q^T,  dL/dA = (X + X^T) / 2
    (torch's formula; the gradient is symmetric although only one triangle is read, ``UPLO``)."""

    half = "unsupported"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, a, uplo):
        w, q = np.linalg.eigh(a, UPLO=uplo)
        ctx.save_for_backward(w, q)
        ctx.shapes = (w.shape, q.shape)
        return _pack(w, q)

    @staticmethod
    def backward(ctx, grad):
        w, q = ctx.saved_tensors
        gw, gq = _split(grad, ctx.shapes)
        e = w[..., None, :] - w[..., :, None]
        idx = np.arange(w.shape[-1])
        e[..., idx, idx] = 1
        inner = _mm(_T(q), gq) / e
        inner[..., idx, idx] = gw
        x = _mm(_mm(q, inner), _T(q))
        return 0.5 * (x + _T(x))


def eigh(a: Tensor, UPLO: str = "L"):  # noqa: N803 - torch's name
    """(eigenvalues ascending, eigenvectors as columns) of a symmetric matrix."""
    (a,) = autocast_args(FP32, a)  # on torch's float32 list: cast before the dtype check
    _square(a, "eigh")
    if UPLO not in ("L", "U"):
        raise ValueError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    n = a.data.shape[-1]
    batch = a.data.shape[:-2]
    return EighResult(*_split(Eigh.apply(a, uplo=UPLO), [batch + (n,), batch + (n, n)]))
