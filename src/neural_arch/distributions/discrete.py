"""Discrete distributions: Bernoulli, Categorical, OneHotCategorical, Poisson, Geometric.

Each takes ``probs`` or ``logits`` (exactly one), as torch: Bernoulli's logits
are log-odds, Categorical's are unnormalised log-probabilities (normalised here
with logsumexp)."""

from __future__ import annotations

import numpy as np

from neural_arch import ops
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.random import get_generator
from neural_arch.distributions.distribution import Distribution, broadcast_all, logits_to_probs, probs_to_logits
from neural_arch.errors import ShapeError
from neural_arch.ops.loss import binary_cross_entropy_with_logits as bce_logits


def _one_of(probs, logits, name):
    if (probs is None) == (logits is None):
        raise ValueError(f"{name}: give exactly one of probs or logits")


def _binary_params(probs, logits, name):
    """(probs, logits) of a yes/no event, from whichever of the two was given."""
    _one_of(probs, logits, name)
    if probs is not None:
        (probs,) = broadcast_all(probs)
        return probs, probs_to_logits(probs, is_binary=True)
    (logits,) = broadcast_all(logits)
    return logits_to_probs(logits, is_binary=True), logits


class Bernoulli(Distribution):
    """1 with probability p.  log p(x) = x log p + (1 - x) log(1 - p) = -BCE_with_logits(logits, x)"""

    _dtype_of = "probs"

    def __init__(self, probs=None, logits=None, validate_args=None):
        self.probs, self.logits = _binary_params(probs, logits, "Bernoulli")
        super().__init__(self.probs.shape)

    @property
    def mean(self):
        """The mean."""
        return self.probs

    @property
    def variance(self):
        """The variance."""
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=(), generator=None):
        """Draws of shape ``sample_shape + batch_shape + event_shape``, outside the graph."""
        shape = self._extended_shape(sample_shape)
        p = np.broadcast_to(self.probs.data, shape)
        return Tensor._wrap((get_generator(generator).random(shape) < p).astype(self.probs.dtype))

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        v = self._value(value)
        logits, v = ops.broadcast_tensors(self.logits, v)
        return -bce_logits(logits, v, reduction="none")

    def entropy(self):
        """The entropy, per batch element."""
        return bce_logits(self.logits, self.probs, reduction="none")

    def enumerate_support(self, expand: bool = True):
        """Every value of the support, along a new leading dim."""
        values = Tensor(np.array([0.0, 1.0], dtype=self.probs.dtype).reshape((2,) + (1,) * len(self.batch_shape)))
        return ops.expand(values, (2,) + self.batch_shape) if expand else values


class Categorical(Distribution):
    """One of K categories (the last dim of probs/logits).  log p(k) = logits_k - logsumexp(logits)"""

    has_enumerate_support = True
    _dtype_of = "probs"

    def __init__(self, probs=None, logits=None, validate_args=None):
        _one_of(probs, logits, "Categorical")
        if probs is not None:
            p = probs if isinstance(probs, Tensor) else Tensor(np.asarray(probs))
            if p.ndim < 1:
                raise ShapeError("Categorical: probs must have at least one dim (the categories)")
            self.probs = p / ops.sum(p, -1, keepdim=True)
            self.logits = probs_to_logits(self.probs)
        else:
            lg = logits if isinstance(logits, Tensor) else Tensor(np.asarray(logits))
            if lg.ndim < 1:
                raise ShapeError("Categorical: logits must have at least one dim (the categories)")
            self.logits = lg - ops.logsumexp(lg, -1, keepdim=True)
            self.probs = logits_to_probs(self.logits)
        self._num_events = self.probs.shape[-1]
        super().__init__(self.probs.shape[:-1])

    @property
    def param_shape(self):
        """The shape of ``probs``/``logits``."""
        return self.probs.shape

    @property
    def mean(self):
        """The mean."""
        return Tensor._wrap(np.full(self.batch_shape, np.nan, dtype=self.probs.dtype))

    @property
    def variance(self):
        """The variance."""
        return Tensor._wrap(np.full(self.batch_shape, np.nan, dtype=self.probs.dtype))

    @property
    def mode(self):
        """The most likely value."""
        return ops.argmax(self.probs, -1)

    def sample(self, sample_shape=(), generator=None):
        """Draws of shape ``sample_shape + batch_shape + event_shape``, outside the graph."""
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        n = int(np.prod(sample_shape)) if sample_shape else 1
        rows = self.probs.reshape(-1, self._num_events)
        draws = ops.multinomial(rows, n, replacement=True, generator=generator)  # (batch, n)
        out = draws.data.T.reshape(tuple(sample_shape) + self.batch_shape)
        return Tensor._wrap(np.ascontiguousarray(out))

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        v = value if isinstance(value, Tensor) else Tensor(np.asarray(value, dtype=np.int64))
        v = v.to("int64")
        shape = np.broadcast_shapes(v.shape, self.batch_shape)
        idx = np.broadcast_to(v.data, shape)[..., None]
        logits = ops.expand(self.logits, shape + (self._num_events,))
        return ops.squeeze(ops.gather(logits, -1, np.ascontiguousarray(idx)), -1)

    def entropy(self):
        """The entropy, per batch element."""
        lo = float(np.finfo(self.logits.dtype).min)
        return -ops.sum(ops.clamp(self.logits, min=lo) * self.probs, -1)

    def enumerate_support(self, expand: bool = True):
        """Every value of the support, along a new leading dim."""
        values = Tensor._wrap(np.arange(self._num_events).reshape((-1,) + (1,) * len(self.batch_shape)))
        return ops.expand(values, (self._num_events,) + self.batch_shape) if expand else values


class OneHotCategorical(Distribution):
    """A Categorical whose draws are one-hot vectors (event shape (K,))."""

    has_enumerate_support = True
    _dtype_of = "probs"

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:])

    probs = property(lambda self: self._categorical.probs)
    logits = property(lambda self: self._categorical.logits)

    @property
    def mean(self):
        """The mean."""
        return self.probs

    @property
    def variance(self):
        """The variance."""
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=(), generator=None):
        """Draws of shape ``sample_shape + batch_shape + event_shape``, outside the graph."""
        idx = self._categorical.sample(sample_shape, generator).data
        k = self.event_shape[0]
        return Tensor._wrap((np.arange(k) == idx[..., None]).astype(self.probs.dtype))

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        v = self._value(value)
        return self._categorical.log_prob(ops.argmax(v, -1))

    def entropy(self):
        """The entropy, per batch element."""
        return self._categorical.entropy()


class Poisson(Distribution):
    """Poisson(rate).  log p(k) = k log rate - rate - lgamma(k + 1)"""

    _dtype_of = "rate"

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape)

    @property
    def mean(self):
        """The mean."""
        return self.rate

    @property
    def variance(self):
        """The variance."""
        return self.rate

    def sample(self, sample_shape=(), generator=None):
        """Draws of shape ``sample_shape + batch_shape + event_shape``, outside the graph."""
        shape = self._extended_shape(sample_shape)
        lam = np.broadcast_to(self.rate.data, shape)
        return Tensor._wrap(get_generator(generator).poisson(lam).astype(self.rate.dtype))

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        v = self._value(value)
        return ops.xlogy(v, self.rate) - self.rate - ops.lgamma(v + 1)


class Geometric(Distribution):
    """The number of failures before the first success.  log p(k) = k log(1 - p) + log p"""

    _dtype_of = "probs"

    def __init__(self, probs=None, logits=None, validate_args=None):
        self.probs, self.logits = _binary_params(probs, logits, "Geometric")
        super().__init__(self.probs.shape)

    @property
    def mean(self):
        """The mean."""
        return 1 / self.probs - 1

    @property
    def variance(self):
        """The variance."""
        return (1 / self.probs - 1) / self.probs

    def sample(self, sample_shape=(), generator=None):
        """Draws of shape ``sample_shape + batch_shape + event_shape``, outside the graph."""
        shape = self._extended_shape(sample_shape)
        p = np.broadcast_to(self.probs.data, shape)
        return Tensor._wrap((get_generator(generator).geometric(p) - 1).astype(self.probs.dtype))

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        v = self._value(value)
        return v * ops.log1p(-self.probs) + ops.log(self.probs)

    def entropy(self):
        """The entropy, per batch element."""
        return bce_logits(self.logits, self.probs, reduction="none") / self.probs
