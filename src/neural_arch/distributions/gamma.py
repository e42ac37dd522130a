"""Gamma, Chi2 and Beta: log-densities through lgamma/digamma (SciPy, the ``special`` extra) and a
reparameterised sample through ``ops.standard_gamma`` (implicit gradients, as torch)."""

from __future__ import annotations

from neural_arch import ops
from neural_arch.distributions.distribution import Distribution, broadcast_all
from neural_arch.ops.pointwise import _special


class Gamma(Distribution):
    """Gamma(concentration a, rate b).  log p(x) = a log b + (a - 1) log x - b x - lgamma(a)"""

    has_rsample = True
    _dtype_of = "rate"

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(self.concentration.shape)

    @property
    def mean(self):
        """The mean."""
        return self.concentration / self.rate

    @property
    def mode(self):
        """The most likely value."""
        return ops.clamp((self.concentration - 1) / self.rate, min=0)

    @property
    def variance(self):
        """The variance."""
        return self.concentration / self.rate ** 2

    def rsample(self, sample_shape=(), generator=None):
        """A reparameterised draw of shape ``sample_shape + batch_shape + event_shape``."""
        alpha = ops.expand(self.concentration, self._extended_shape(sample_shape))
        return ops.standard_gamma(alpha, generator) / self.rate

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        v = self._value(value)
        a, b = self.concentration, self.rate
        return ops.xlogy(a, b) + ops.xlogy(a - 1, v) - b * v - ops.lgamma(a)

    def entropy(self):
        """The entropy, per batch element."""
        a = self.concentration
        return a - ops.log(self.rate) + ops.lgamma(a) + (1.0 - a) * ops.digamma(a)

    def cdf(self, value):
        """P(X <= value)."""
        x = (self.rate * self._value(value)).detach().numpy()
        return ops.tensor(_special().gammainc(self.concentration.detach().numpy(), x), dtype=self.rate.dtype)


class Chi2(Gamma):
    """Chi-squared with ``df`` degrees of freedom: Gamma(df / 2, 1 / 2)."""

    def __init__(self, df, validate_args=None):
        (df,) = broadcast_all(df)
        super().__init__(df * 0.5, ops.full_like(df, 0.5))

    @property
    def df(self):
        """The degrees of freedom."""
        return self.concentration * 2


class Beta(Distribution):
    """Beta(a, b) on (0, 1).  log p(x) = (a - 1) log x + (b - 1) log(1 - x) - log B(a, b)"""

    has_rsample = True
    _dtype_of = "concentration1"

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        super().__init__(self.concentration1.shape)

    @property
    def mean(self):
        """The mean."""
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def variance(self):
        """The variance."""
        a, b = self.concentration1, self.concentration0
        total = a + b
        return a * b / (total ** 2 * (total + 1))

    def rsample(self, sample_shape=(), generator=None):
        """X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b): differentiable through both gamma draws."""
        shape = self._extended_shape(sample_shape)
        x = ops.standard_gamma(ops.expand(self.concentration1, shape), generator)
        y = ops.standard_gamma(ops.expand(self.concentration0, shape), generator)
        return x / (x + y)

    def _log_beta(self):
        a, b = self.concentration1, self.concentration0
        return ops.lgamma(a) + ops.lgamma(b) - ops.lgamma(a + b)

    def log_prob(self, value):
        """log p(value), one value per batch element."""
        v = self._value(value)
        a, b = self.concentration1, self.concentration0
        return ops.xlogy(a - 1, v) + ops.xlogy(b - 1, 1 - v) - self._log_beta()

    def entropy(self):
        """The entropy, per batch element."""
        a, b = self.concentration1, self.concentration0
        return (self._log_beta() - (a - 1) * ops.digamma(a) - (b - 1) * ops.digamma(b)
                + (a + b - 2) * ops.digamma(a + b))
