"""``neural_arch.linalg``: torch.linalg's names over the ops in ``ops/decomposition.py``,
``ops/matrix_functions.py`` and ``ops/products.py`` (layer 4, a facade: no ops live here).

    import neural_arch as na
    L = na.linalg.cholesky(A)
    U, S, Vh = na.linalg.svd(A, full_matrices=False)

Real (float32/float64) inputs; gradients as torch defines them, svd and eigh included
(undefined, as in torch, where singular values or eigenvalues repeat).
Not provided: the complex-only and general (non-symmetric) eigen routines ``eig``/``eigvals``,
``lu``/``lu_factor``/``ldl``, ``matrix_exp``, ``householder_product``.
"""

from neural_arch.ops.decomposition import cholesky, det, eigh, inv, qr, slogdet, solve, svd
from neural_arch.ops.linalg import matmul
from neural_arch.ops.matrix_functions import (
    cond,
    eigvalsh,
    lstsq,
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

__all__ = [
    "cholesky", "cond", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "lstsq", "matmul", "matrix_norm",
    "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet", "solve", "solve_triangular",
    "svd", "svdvals", "vecdot", "vector_norm",
]


def cross(input, other, *, dim: int = -1):  # noqa: A002 - torch's name
    """The 3-d cross product along ``dim`` (default the last dim, unlike ``torch.cross``)."""
    return _cross(input, other, dim=dim)


def diagonal(A, *, offset: int = 0, dim1: int = -2, dim2: int = -1):  # noqa: N803
    """The diagonal of each matrix over the last two dims (torch.linalg.diagonal)."""
    return _diagonal(A, offset, dim1, dim2)
