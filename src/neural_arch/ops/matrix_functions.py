"""Matrix functions composed from the decompositions (decomposition.py) and products:
norms, pinv, lstsq, matrix_rank, matrix_power, multi_dot, solve_triangular,
cholesky_solve/inverse, logdet, svdvals, eigvalsh, cond, and torch's older
top-level spellings (``torch.svd`` returning V, ``torch.qr(some=)``, ``pinverse``).

Each is a composition of differentiable ops, so its gradient is the chain rule
through ops that are tested on their own.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from neural_arch.autograd.autocast import FP32, autocast, autocast_args
from neural_arch.autograd.autocast import STATE as autocast_state
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ShapeError, shape_str
from neural_arch.ops import decomposition as dec
from neural_arch.ops import elementwise as ew
from neural_arch.ops import reduce
from neural_arch.ops.linalg import matmul
from neural_arch.ops.shape import mT, permute, tril, triu, unsqueeze

__all__ = [
    "cholesky_inverse", "cholesky_solve", "frobenius_norm", "inverse", "logdet", "matrix_exp", "matrix_power",
    "nuclear_norm", "pinverse", "triangular_solve",
]

LstsqResult = namedtuple("lstsq", ["solution", "residuals", "rank", "singular_values"])
OldSVDResult = namedtuple("svd", ["U", "S", "V"])


inverse = dec.inv  # torch.inverse


def logdet(a: Tensor) -> Tensor:
    """log det A (NaN for a negative determinant, -inf for a singular matrix), as torch.logdet."""
    sign, logabs = dec.slogdet(a)
    s = sign.data
    bad = np.where(s < 0, np.nan, np.where(s == 0, -np.inf, 0)).astype(logabs.data.dtype)
    return ew.add(logabs, Tensor._wrap(bad)) if np.any(s <= 0) else logabs


def svdvals(a: Tensor) -> Tensor:
    """The singular values, descending."""
    return dec.svd(a, full_matrices=False).S


def eigvalsh(a: Tensor, UPLO: str = "L") -> Tensor:  # noqa: N803
    """The eigenvalues of a symmetric matrix, ascending."""
    return dec.eigh(a, UPLO).eigenvalues


def _in_float32(fn, *tensors, **kwargs):
    """``fn(*tensors, **kwargs)`` as torch's autocast runs an op of its float32 list that we compose of several
    ops: the tensors cast up to float32, and no op inside lowered (autocast is off within)."""
    tensors = autocast_args(FP32, *tensors)
    with autocast("cpu", enabled=False):
        return fn(*tensors, **kwargs)


def _cutoff(a: Tensor, s: np.ndarray, atol, rtol):
    """max(atol, rtol * the largest singular value); rtol defaults to eps * max(m, n) when atol is not given."""
    atol = 0.0 if atol is None else float(atol)
    if rtol is None:
        rtol = np.finfo(a.data.dtype).eps * max(a.data.shape[-2:]) if atol == 0 else 0.0
    return np.maximum(atol, float(rtol) * s.max(axis=-1, keepdims=True, initial=0))


def pinv(a: Tensor, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:
    """The Moore-Penrose pseudo-inverse, from the SVD: singular values below
    max(atol, rtol * largest) count as zero."""
    dec._floating(a, "pinv")
    u, s, vh = dec.svd(a, full_matrices=False)
    keep = s.data > _cutoff(a, s.data, atol, rtol)
    s_inv = ew.where(Tensor._wrap(keep), ew.div(1.0, ew.where(Tensor._wrap(keep), s, 1.0)), 0.0)
    return matmul(mT(vh) * unsqueeze(s_inv, -2), mT(u))


def pinverse(a: Tensor, rcond: float = 1e-15) -> Tensor:
    """torch.pinverse: ``pinv`` with a relative cutoff ``rcond``."""
    return _in_float32(pinverse, a, rcond=rcond) if autocast_state.enabled else pinv(a, rtol=rcond)


def lstsq(a: Tensor, b: Tensor, rcond=None, *, driver=None):
    """The least-squares solution of A X = B (minimum norm when rank-deficient), via ``pinv``.

    Returns (solution, residuals, rank, singular_values) like torch.linalg.lstsq; residuals are
    filled (squared residual norms) when m > n and A has full rank, else empty, as torch's 'gelsd'.
    """
    if autocast_state.enabled:
        return _in_float32(lstsq, a, b, rcond=rcond, driver=driver)
    vector = b.data.ndim == a.data.ndim - 1
    bm = unsqueeze(b, -1) if vector else b
    if a.data.shape[-2] != bm.data.shape[-2]:
        raise ShapeError(f"lstsq: A {shape_str(a.shape)} and B {shape_str(b.shape)} need the same number of rows")
    x = matmul(pinv(a, rtol=rcond), bm)
    s = np.linalg.svd(a.data, compute_uv=False)
    m, n = a.data.shape[-2:]
    rank = (s > _cutoff(a, s, None, rcond)).sum(axis=-1)
    if m > n and np.all(rank == n):
        resid = reduce.sum(ew.pow(ew.sub(matmul(a, x), bm), 2), -2)
    else:
        resid = Tensor._wrap(np.zeros((0,), dtype=a.data.dtype))
    solution = x[..., 0] if vector else x
    return LstsqResult(solution, resid, Tensor._wrap(rank.astype(np.int64)), Tensor._wrap(s))


def matrix_rank(a: Tensor, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:
    """The number of singular values above max(atol, rtol * largest) (not differentiable)."""
    (a,) = autocast_args(FP32, a)  # on torch's float32 list: cast before the dtype check
    dec._floating(a, "matrix_rank")
    s = np.linalg.svd(a.data, compute_uv=False)
    return Tensor._wrap((s > _cutoff(a, s, atol, rtol)).sum(axis=-1).astype(np.int64))


def matrix_power(a: Tensor, n: int) -> Tensor:
    """A^n by repeated squaring (n = 0: the identity; n < 0: powers of the inverse)."""
    dec._square(a, "matrix_power")
    if n == 0:  # the identity, still in the graph (a zero gradient, as torch)
        return ew.add(ew.mul(a, 0), Tensor._wrap(np.eye(a.data.shape[-1], dtype=a.data.dtype)))
    if n < 0:
        a, n = dec.inv(a), -n
    result, base = None, a
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


def multi_dot(tensors) -> Tensor:
    """The product of a chain of matrices (the first may be a row vector, the last a column vector),
    multiplied in the order that needs the fewest operations."""
    ts = list(tensors)
    if len(ts) < 2:
        raise ShapeError(f"multi_dot: needs at least two tensors, got {len(ts)}")
    first_vec, last_vec = ts[0].data.ndim == 1, ts[-1].data.ndim == 1
    if first_vec:
        ts[0] = unsqueeze(ts[0], 0)
    if last_vec:
        ts[-1] = unsqueeze(ts[-1], 1)
    if any(t.data.ndim != 2 for t in ts):
        raise ShapeError("multi_dot: every tensor but the first and last must be 2-d")
    dims = [ts[0].data.shape[0]] + [t.data.shape[1] for t in ts]
    order = _chain_order(dims)
    out = _chain_product(ts, order, 0, len(ts) - 1)
    if first_vec:
        out = out[0]
    if last_vec:
        out = out[..., 0]
    return out


def _chain_order(dims):
    """The classic matrix-chain dynamic program: split[i][j] is where to cut the product i..j."""
    n = len(dims) - 1
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = float("inf")
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return split


def _chain_product(ts, split, i, j):
    if i == j:
        return ts[i]
    k = split[i][j]
    return matmul(_chain_product(ts, split, i, k), _chain_product(ts, split, k + 1, j))


def solve_triangular(a: Tensor, b: Tensor, *, upper: bool, left: bool = True, unitriangular: bool = False) -> Tensor:
    """X with A X = B (``left=False``: X A = B) reading only A's upper or lower triangle."""
    tri = triu(a) if upper else tril(a)
    if unitriangular:
        n = a.data.shape[-1]
        eye = np.eye(n, dtype=a.data.dtype)
        tri = ew.add(ew.mul(tri, Tensor._wrap(1 - eye)), Tensor._wrap(eye))
    return dec.solve(tri, b, left=left)


def cholesky_solve(b: Tensor, low: Tensor, upper: bool = False) -> Tensor:
    """X with (L L^T) X = B, given the Cholesky factor L (``upper``: U with U^T U)."""
    if upper:
        low = mT(low)
    y = solve_triangular(low, b, upper=False)
    return solve_triangular(mT(low), y, upper=True)


def cholesky_inverse(low: Tensor, upper: bool = False) -> Tensor:
    """(L L^T)^{-1} from the Cholesky factor L (``upper``: (U^T U)^{-1})."""
    n = low.data.shape[-1]
    eye = Tensor._wrap(np.broadcast_to(np.eye(n, dtype=low.data.dtype), low.data.shape).copy())
    return cholesky_solve(eye, low, upper)


def old_svd(a: Tensor, some: bool = True, compute_uv: bool = True):
    """torch.svd: (U, S, V) with V (not Vh); ``some=False`` gives the full U and V."""
    u, s, vh = dec.svd(a, full_matrices=not some)
    if not compute_uv:
        return OldSVDResult(Tensor._wrap(np.zeros_like(u.data)), s, Tensor._wrap(np.zeros_like(mT(vh).data)))
    return OldSVDResult(u, s, mT(vh))


def old_cholesky(a: Tensor, upper: bool = False) -> Tensor:
    """torch.cholesky: ``upper`` may be passed positionally."""
    return dec.cholesky(a, upper=upper)


def old_qr(a: Tensor, some: bool = True):
    """torch.qr: ``some=False`` is mode 'complete'."""
    return dec.qr(a, "reduced" if some else "complete")


# -- norms ---------------------------------------------------------------------------------------------
def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """The vector ``ord``-norm over ``dim`` (all elements by default): inf, -inf, 0 or any real p."""
    if dtype is not None:
        x = x.to(dtype)
    if ord == 0:  # the count of non-zeros, still in the graph (a zero gradient, as torch)
        return reduce.sum(ew.add(ew.mul(x, 0), Tensor._wrap((x.data != 0).astype(x.data.dtype))), dim, keepdim)
    if ord != float("inf") and ord != float("-inf") and ord < 0:
        return ew.pow(reduce.sum(ew.pow(ew.abs(x), ord), dim, keepdim), 1.0 / ord)
    return reduce.norm(x, ord, dim, keepdim)


def matrix_norm(a: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """'fro', 'nuc', inf, -inf, 1, -1, 2, -2 over the two dims ``dim``."""
    if dtype is not None:
        a = a.to(dtype)
    d0, d1 = (d % a.data.ndim for d in dim)
    if ord == "fro":
        return reduce.norm(a, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        moved = _move_last(a, d0, d1)
        s = svdvals(moved)
        out = reduce.sum(s, -1) if ord == "nuc" else (reduce.amax(s, -1) if ord == 2 else reduce.amin(s, -1))
        return _keep(out, a, d0, d1) if keepdim else out
    if ord in (1, -1, float("inf"), float("-inf")):
        over, across = (d0, d1) if ord in (1, -1) else (d1, d0)  # 1: max column sum, inf: max row sum
        sums = reduce.sum(ew.abs(a), over, keepdim=True)
        pick = reduce.amax if ord > 0 else reduce.amin
        out = pick(sums, across, keepdim=True)
        if not keepdim:
            out = out.reshape([s for i, s in enumerate(out.shape) if i not in (d0, d1)])
        return out
    raise ValueError(f"matrix_norm: ord must be 'fro', 'nuc', inf, -inf, 1, -1, 2 or -2, got {ord!r}")


def _move_last(a: Tensor, d0: int, d1: int) -> Tensor:
    rest = [i for i in range(a.data.ndim) if i not in (d0, d1)]
    return permute(a, *rest, d0, d1)


def _keep(out: Tensor, a: Tensor, d0: int, d1: int) -> Tensor:
    return out.reshape([1 if i in (d0, d1) else s for i, s in enumerate(a.shape)])


def norm(x: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """torch.linalg.norm: a vector norm for 1 dim, a matrix norm for 2 (2-norm / Frobenius by default)."""
    if dim is not None and not isinstance(dim, int) and len(dim) == 2 or (dim is None and ord is not None
                                                                          and x.data.ndim == 2):
        return matrix_norm(x, "fro" if ord is None else ord, (-2, -1) if dim is None else dim, keepdim, dtype=dtype)
    if dim is None and ord is not None and x.data.ndim != 1:
        raise ShapeError(f"norm: with ord={ord!r} and no dim the input must be 1-d or 2-d, got {shape_str(x.shape)}")
    return vector_norm(x, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def cond(a: Tensor, p=None) -> Tensor:
    """The condition number: ||A|| ||A^{-1}|| (p None / 2: largest over smallest singular value)."""
    if p is None or p in (2, -2):
        s = svdvals(a)
        hi, lo = reduce.amax(s, -1), reduce.amin(s, -1)
        return ew.div(hi, lo) if p in (None, 2) else ew.div(lo, hi)
    return ew.mul(matrix_norm(a, p), matrix_norm(dec.inv(a), p))


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """Sum of x * y over ``dim`` (broadcasting)."""
    return reduce.sum(ew.mul(x, y), dim)


def matrix_exp(a: Tensor) -> Tensor:
    """e^A by scaling and squaring: A / 2^k with norm <= 1/2, an 18-term Taylor series, then k squarings.
    Built from matmuls, so it is differentiable."""
    dec._square(a, "matrix_exp")
    norm = float(np.abs(a.data).sum(axis=-2).max()) if a.data.size else 0.0
    k = max(0, int(np.ceil(np.log2(norm / 0.5)))) if norm > 0.5 else 0
    x = ew.mul(a, 1.0 / 2 ** k)
    n = a.data.shape[-1]
    eye = Tensor._wrap(np.broadcast_to(np.eye(n, dtype=a.data.dtype), a.data.shape).copy())
    term, total = eye, eye
    for i in range(1, 19):
        term = ew.mul(matmul(term, x), 1.0 / i)
        total = ew.add(total, term)
    for _ in range(k):
        total = matmul(total, total)
    return total


def frobenius_norm(x: Tensor, dim=(-2, -1), keepdim: bool = False) -> Tensor:
    """sqrt of the sum of squares over ``dim``."""
    return reduce.norm(x, 2, dim, keepdim)


def nuclear_norm(x: Tensor, dim=(-2, -1), keepdim: bool = False) -> Tensor:
    """The sum of the singular values."""
    return matrix_norm(x, "nuc", dim, keepdim)


def triangular_solve(b: Tensor, a: Tensor, upper: bool = True, transpose: bool = False, unitriangular: bool = False):
    """torch.triangular_solve (deprecated there): (X, A) with op(A) X = B, op = transpose when asked."""
    tri = triu(a) if upper else tril(a)
    if transpose:
        tri, upper = mT(tri), not upper
    return namedtuple("triangular_solve", ["solution", "cloned_coefficient"])(
        solve_triangular(tri, b, upper=upper, unitriangular=unitriangular), a.clone())
