"""Scalar continuous distributions: Normal, LogNormal, Uniform, Exponential, Laplace, Cauchy."""

from __future__ import annotations

import math

import numpy as np

from neural_arch import ops
from neural_arch.distributions.distribution import LOG_SQRT_2PI, Distribution, broadcast_all, draw


class _LocScale(Distribution):
    """Normal, Laplace and Cauchy: a location and a scale, broadcast to one shape; draws are
    reparameterised (loc + scale * a standard draw)."""

    has_rsample = True
    _dtype_of = "loc"

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape)


class Normal(_LocScale):
    """N(loc, scale^2).  log p(x) = -(x - loc)^2 / (2 scale^2) - log scale - log sqrt(2 pi)"""

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
        return ops.pow(self.scale, 2)

    @property
    def stddev(self):
        """The standard deviation."""
        return self.scale

    def rsample(self, sample_shape=(), generator=None):
        """A reparameterised draw of shape ``sample_shape + batch_shape + event_shape``."""
        eps = draw(self._extended_shape(sample_shape), self.loc.dtype, "normal", generator)
        return self.loc + eps * self.scale

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        v = self._value(value)
        return -((v - self.loc) ** 2) / (2 * self.scale ** 2) - ops.log(self.scale) - LOG_SQRT_2PI

    def entropy(self):
        """The entropy, per batch element."""
        return 0.5 + LOG_SQRT_2PI + ops.log(self.scale)

    def cdf(self, value):
        """P(X <= value)."""
        return 0.5 * (1 + ops.erf((self._value(value) - self.loc) / (self.scale * math.sqrt(2))))

    def icdf(self, value):
        """The value whose cdf is ``value`` (the inverse of ``cdf``)."""
        return self.loc + self.scale * ops.erfinv(2 * self._value(value) - 1) * math.sqrt(2)


class LogNormal(Distribution):
    """exp(X) with X ~ N(loc, scale^2).  log p(y) = log N(log y) - log y"""

    has_rsample = True
    _dtype_of = "loc"

    def __init__(self, loc, scale, validate_args=None):
        self.base_dist = Normal(loc, scale)
        self.loc, self.scale = self.base_dist.loc, self.base_dist.scale
        super().__init__(self.loc.shape)

    @property
    def mean(self):
        """The mean."""
        return ops.exp(self.loc + self.scale ** 2 / 2)

    @property
    def variance(self):
        """The variance."""
        s2 = self.scale ** 2
        return ops.expm1(s2) * ops.exp(2 * self.loc + s2)

    def rsample(self, sample_shape=(), generator=None):
        """A reparameterised draw of shape ``sample_shape + batch_shape + event_shape``."""
        return ops.exp(self.base_dist.rsample(sample_shape, generator))

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        v = self._value(value)
        return self.base_dist.log_prob(ops.log(v)) - ops.log(v)

    def entropy(self):
        """The entropy, per batch element."""
        return self.base_dist.entropy() + self.loc


class Uniform(Distribution):
    """U[low, high).  log p(x) = -log(high - low) inside, -inf outside"""

    has_rsample = True
    _dtype_of = "low"

    def __init__(self, low, high, validate_args=None):
        self.low, self.high = broadcast_all(low, high)
        super().__init__(self.low.shape)

    @property
    def mean(self):
        """The mean."""
        return (self.high + self.low) / 2

    @property
    def variance(self):
        """The variance."""
        return (self.high - self.low) ** 2 / 12

    def rsample(self, sample_shape=(), generator=None):
        """A reparameterised draw of shape ``sample_shape + batch_shape + event_shape``."""
        u = draw(self._extended_shape(sample_shape), self.low.dtype, "uniform", generator)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        v = self._value(value)
        inside = ops.logical_and(ops.ge(v, self.low), ops.lt(v, self.high))
        return ops.where(inside, -ops.log(self.high - self.low), -math.inf)

    def entropy(self):
        """The entropy, per batch element."""
        return ops.log(self.high - self.low)

    def cdf(self, value):
        """P(X <= value)."""
        return ops.clamp((self._value(value) - self.low) / (self.high - self.low), 0, 1)

    def icdf(self, value):
        """The value whose cdf is ``value`` (the inverse of ``cdf``)."""
        return self._value(value) * (self.high - self.low) + self.low


class Exponential(Distribution):
    """Exp(rate).  log p(x) = log rate - rate x"""

    has_rsample = True
    _dtype_of = "rate"

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape)

    @property
    def mean(self):
        """The mean."""
        return 1 / self.rate

    @property
    def variance(self):
        """The variance."""
        return self.rate ** -2

    def rsample(self, sample_shape=(), generator=None):
        """A reparameterised draw of shape ``sample_shape + batch_shape + event_shape``."""
        return draw(self._extended_shape(sample_shape), self.rate.dtype, "exponential", generator) / self.rate

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        return ops.log(self.rate) - self.rate * self._value(value)

    def entropy(self):
        """The entropy, per batch element."""
        return 1.0 - ops.log(self.rate)

    def cdf(self, value):
        """P(X <= value)."""
        return 1 - ops.exp(-self.rate * self._value(value))

    def icdf(self, value):
        """The value whose cdf is ``value`` (the inverse of ``cdf``)."""
        return -ops.log1p(-self._value(value)) / self.rate


class Laplace(_LocScale):
    """Laplace(loc, scale).  log p(x) = -log(2 scale) - |x - loc| / scale"""

    @property
    def mean(self):
        """The mean."""
        return self.loc

    @property
    def variance(self):
        """The variance."""
        return 2 * self.scale ** 2

    def rsample(self, sample_shape=(), generator=None):
        """A reparameterised draw of shape ``sample_shape + batch_shape + event_shape``."""
        shape = self._extended_shape(sample_shape)
        eps = float(np.finfo(self.loc.dtype).eps)
        u = draw(shape, self.loc.dtype, "uniform", generator) * (2 - eps) - (1 - eps)  # in (-1, 1)
        return self.loc - self.scale * ops.sign(u) * ops.log1p(-ops.abs(u))

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        return -ops.log(2 * self.scale) - ops.abs(self._value(value) - self.loc) / self.scale

    def entropy(self):
        """The entropy, per batch element."""
        return 1 + ops.log(2 * self.scale)

    def cdf(self, value):
        """P(X <= value)."""
        d = self._value(value) - self.loc
        return 0.5 - 0.5 * ops.sign(d) * ops.expm1(-ops.abs(d) / self.scale)


class Cauchy(_LocScale):
    """Cauchy(loc, scale).  log p(x) = -log(pi scale (1 + ((x - loc) / scale)^2))"""

    def rsample(self, sample_shape=(), generator=None):
        """A reparameterised draw of shape ``sample_shape + batch_shape + event_shape``."""
        u = draw(self._extended_shape(sample_shape), self.loc.dtype, "uniform", generator)
        return self.loc + self.scale * ops.tan(math.pi * (u - 0.5))

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        z = (self._value(value) - self.loc) / self.scale
        return -math.log(math.pi) - ops.log(self.scale) - ops.log1p(z ** 2)

    def entropy(self):
        """The entropy, per batch element."""
        return math.log(4 * math.pi) + ops.log(self.scale)

    def cdf(self, value):
        """P(X <= value)."""
        return ops.atan((self._value(value) - self.loc) / self.scale) / math.pi + 0.5
