"""``neural_arch.linalg``: torch.linalg's names over the ops in ``ops/decomposition.py``,
``ops/matrix_functions.py`` and ``ops/products.py`` (layer 4, a facade: no ops live here).

    import neural_arch as na
    L = na.linalg.cholesky(A)
    U, S, Vh = na.linalg.svd(A, full_matrices=False)

Real (float32/float64) inputs; gradients as torch defines them, svd and eigh included
(undefined, as in torch, where singular values or eigenvalues repeat).
Not provided: the general (non-symmetric) eigen routines ``eig``/``eigvals``, ``lu``/``lu_factor``/
``lu_solve``/``ldl_factor``, ``householder_product``, complex inputs.
"""

from collections import namedtuple

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.ops.decomposition import cholesky, det, eigh, inv, qr, slogdet, solve, svd
from neural_arch.ops.elementwise import pow as _pow
from neural_arch.ops.layout import movedim
from neural_arch.ops.linalg import matmul
from neural_arch.ops.matrix_functions import (
    cond,
    eigvalsh,
    lstsq,
    matrix_exp,
    matrix_norm,
    matrix_power,
    matrix_rank,
    multi_dot,
    norm,
    pinv,
    solve_triangular,
    svdvals,
    vecdot,
    vector_norm,
)
from neural_arch.ops.products import cross as _cross
from neural_arch.ops.products import diagonal as _diagonal
from neural_arch.ops.shape import stack

__all__ = [
    "cholesky", "cholesky_ex", "cond", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "inv_ex", "lstsq",
    "matmul", "matrix_exp", "matrix_norm",
    "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet", "solve", "solve_triangular",
    "solve_ex", "svd", "svdvals", "tensorinv", "tensorsolve", "vander", "vecdot", "vector_norm",
]


def cross(input, other, *, dim: int = -1):  # noqa: A002 - torch's name
    """The 3-d cross product along ``dim`` (default the last dim, unlike ``torch.cross``)."""
    return _cross(input, other, dim=dim)


def diagonal(A, *, offset: int = 0, dim1: int = -2, dim2: int = -1):  # noqa: N803
    """The diagonal of each matrix over the last two dims (torch.linalg.diagonal)."""
    return _diagonal(A, offset, dim1, dim2)


def _info(a) -> Tensor:
    return Tensor._wrap(np.zeros(a.shape[:-2], dtype=np.int32))


def inv_ex(A, *, check_errors: bool = False):  # noqa: N803
    """(inverse, info) as torch.linalg.inv_ex; info is 0 (a singular input raises NumericalError)."""
    return _InvEx(inv(A), _info(A))


def cholesky_ex(A, *, upper: bool = False, check_errors: bool = False):  # noqa: N803
    """(L, info) as torch.linalg.cholesky_ex; info is 0 (a non-positive-definite input raises NumericalError)."""
    return _CholeskyEx(cholesky(A, upper=upper), _info(A))


def solve_ex(A, B, *, left: bool = True, check_errors: bool = False):  # noqa: N803
    """(solution, info) as torch.linalg.solve_ex."""
    return _SolveEx(solve(A, B, left=left), _info(A))


def vander(x, *, N=None):  # noqa: N803
    """Columns x^0, x^1, ..., x^(N-1) (torch.linalg.vander: increasing powers, batched over leading dims)."""
    n = x.shape[-1] if N is None else N
    return stack([_pow(x, k) if k else x * 0 + 1 for k in range(n)], -1)


def tensorinv(A, ind: int = 2):  # noqa: N803
    """The inverse of A seen as a linear map from its first ``ind`` dims to the rest."""
    out_shape, in_shape = A.shape[:ind], A.shape[ind:]
    rows = int(np.prod(out_shape))
    return inv(A.reshape(rows, -1)).reshape(tuple(in_shape) + tuple(out_shape))


def tensorsolve(A, B, dims=None):  # noqa: N803
    """X with tensordot(A, X, X.ndim) = B."""
    if dims is not None:
        A = movedim(A, tuple(dims), tuple(range(A.ndim - len(dims), A.ndim)))
    x_shape = A.shape[B.ndim:]
    return solve(A.reshape(int(np.prod(B.shape)), -1), B.reshape(-1)).reshape(x_shape)


_InvEx = namedtuple("inv_ex", ["inverse", "info"])
_CholeskyEx = namedtuple("cholesky_ex", ["L", "info"])
_SolveEx = namedtuple("solve_ex", ["result", "info"])
