"""MultivariateNormal and Independent (batch dims reinterpreted as event dims)."""

from __future__ import annotations

import math

import numpy as np

from neural_arch import ops
from neural_arch.autograd.tensor import Tensor
from neural_arch.distributions.distribution import Distribution, draw
from neural_arch.errors import ShapeError, shape_str
from neural_arch.ops import decomposition as dec
from neural_arch.ops.matrix_functions import solve_triangular


class MultivariateNormal(Distribution):
    """N(loc, Sigma) with Sigma = L L^T given as covariance_matrix, precision_matrix or scale_tril.
    log p(x) = -k/2 log(2 pi) - sum log diag L - |L^{-1} (x - loc)|^2 / 2"""

    has_rsample = True
    _dtype_of = "loc"

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:
            raise ValueError("MultivariateNormal: give exactly one of covariance_matrix, precision_matrix, scale_tril")
        loc = loc if isinstance(loc, Tensor) else Tensor(np.asarray(loc))
        if loc.ndim < 1:
            raise ShapeError("MultivariateNormal: loc must be at least 1-d")
        m = given[0] if isinstance(given[0], Tensor) else Tensor(np.asarray(given[0], dtype=loc.dtype))
        if m.ndim < 2 or m.shape[-1] != m.shape[-2] or m.shape[-1] != loc.shape[-1]:
            raise ShapeError(f"MultivariateNormal: the matrix {shape_str(m.shape)} must be square and match loc "
                             f"{shape_str(loc.shape)} in its last dim")
        if scale_tril is not None:
            tril = m
        elif covariance_matrix is not None:
            tril = dec.cholesky(m)
        else:  # the Cholesky factor of the inverse of the precision matrix
            tril = dec.cholesky(dec.inv(m))
        batch = np.broadcast_shapes(tril.shape[:-2], loc.shape[:-1])
        k = loc.shape[-1]
        self.loc = ops.expand(loc, batch + (k,))
        self._unbroadcasted_scale_tril = tril
        super().__init__(batch, (k,))

    @property
    def scale_tril(self):
        """The lower Cholesky factor L of the covariance."""
        return ops.expand(self._unbroadcasted_scale_tril, self.batch_shape + self.event_shape * 2)

    @property
    def covariance_matrix(self):
        """The covariance matrix L L^T."""
        low = self._unbroadcasted_scale_tril
        return ops.expand(low @ low.mT, self.batch_shape + self.event_shape * 2)

    @property
    def precision_matrix(self):
        """The inverse of the covariance matrix."""
        return dec.inv(self.covariance_matrix)

    @property
    def mean(self):
        """The mean."""
        return self.loc

    @property
    def mode(self):
        """The most likely value."""
        return self.loc

    @property
    def variance(self):
        """The variance."""
        return ops.expand(ops.sum(self._unbroadcasted_scale_tril ** 2, -1), self.batch_shape + self.event_shape)

    def rsample(self, sample_shape=(), generator=None):
        """A reparameterised draw of shape ``sample_shape + batch_shape + event_shape``."""
        eps = draw(self._extended_shape(sample_shape), self.loc.dtype, "normal", generator)
        return self.loc + ops.squeeze(self._unbroadcasted_scale_tril @ ops.unsqueeze(eps, -1), -1)

    def _half_log_det(self):
        return ops.sum(ops.log(ops.diagonal(self._unbroadcasted_scale_tril, 0, -2, -1)), -1)

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        diff = self._value(value) - self.loc
        m = _mahalanobis(self._unbroadcasted_scale_tril, diff)
        k = self.event_shape[0]
        return -0.5 * (k * math.log(2 * math.pi) + m) - self._half_log_det()

    def entropy(self):
        """The entropy, per batch element."""
        k = self.event_shape[0]
        h = 0.5 * k * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        return ops.expand(h, self.batch_shape) if len(self.batch_shape) else h


def _mahalanobis(low: Tensor, diff: Tensor) -> Tensor:
    """|L^{-1} d|^2 over the last dim, L broadcast against d's batch dims."""
    shape = np.broadcast_shapes(low.shape[:-2], diff.shape[:-1])
    k = low.shape[-1]
    low_b = ops.expand(low, shape + (k, k))
    d = ops.expand(diff, shape + (k,))
    z = solve_triangular(low_b, ops.unsqueeze(d, -1), upper=False)
    return ops.sum(ops.squeeze(z, -1) ** 2, -1)


class Independent(Distribution):
    """Treat the last ``reinterpreted_batch_ndims`` batch dims of ``base_distribution`` as event dims:
    log_prob and entropy sum over them."""

    def __init__(self, base_distribution, reinterpreted_batch_ndims: int, validate_args=None):
        n = reinterpreted_batch_ndims
        shape = base_distribution.batch_shape + base_distribution.event_shape
        event_dim = n + len(base_distribution.event_shape)
        if n > len(base_distribution.batch_shape):
            raise ShapeError(f"Independent: reinterpreted_batch_ndims={n} exceeds the base batch dims "
                             f"{base_distribution.batch_shape}")
        self.base_dist = base_distribution
        self.reinterpreted_batch_ndims = n
        super().__init__(shape[:len(shape) - event_dim], shape[len(shape) - event_dim:])

    @property
    def has_rsample(self):
        """Whether the base distribution has ``rsample``."""
        return self.base_dist.has_rsample

    def _dtype(self):
        return self.base_dist._dtype()

    @property
    def mean(self):
        """The mean."""
        return self.base_dist.mean

    @property
    def variance(self):
        """The variance."""
        return self.base_dist.variance

    def sample(self, sample_shape=(), generator=None):
        """Draws of shape ``sample_shape + batch_shape + event_shape``, outside the graph."""
        return self.base_dist.sample(sample_shape, generator)

    def rsample(self, sample_shape=(), generator=None):
        """A reparameterised draw of shape ``sample_shape + batch_shape + event_shape``."""
        return self.base_dist.rsample(sample_shape, generator)

    def _sum_right(self, t):
        n = self.reinterpreted_batch_ndims
        return ops.sum(t, tuple(range(-n, 0))) if n else t

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        return self._sum_right(self.base_dist.log_prob(value))

    def entropy(self):
        """The entropy, per batch element."""
        return self._sum_right(self.base_dist.entropy())
