"""The ``Distribution`` base class and the helpers every distribution shares.

Shapes follow torch: ``sample(sample_shape)`` has shape
``sample_shape + batch_shape + event_shape``; ``log_prob(value)`` has the
value's shape without the event dims. Random draws come from our seeded
generator (``na.manual_seed``, or ``generator=`` on ``sample``/``rsample``).
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch import ops
from neural_arch.autograd.grad_mode import no_grad
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import get_default_dtype
from neural_arch.backend.random import get_generator
from neural_arch.errors import ShapeError, shape_str
from neural_arch.ops.activation import softmax


def broadcast_all(*values):
    """Numbers and tensors -> tensors of one floating dtype, broadcast to one shape."""
    tensors = [v for v in values if isinstance(v, Tensor)]
    dtype = tensors[0].dtype if tensors and tensors[0].dtype.kind == "f" else get_default_dtype()
    out = [v if isinstance(v, Tensor) else Tensor(np.asarray(v, dtype=dtype)) for v in values]
    out = [t if t.dtype.kind == "f" else t.to(dtype) for t in out]
    return ops.broadcast_tensors(*out)


def draw(shape, dtype, kind: str, generator=None) -> Tensor:
    """A constant tensor of standard draws: 'normal', 'uniform' (on [0, 1)) or 'exponential'."""
    g = get_generator(generator)
    arr = {"normal": g.standard_normal, "uniform": g.random, "exponential": g.standard_exponential}[kind](shape)
    return Tensor._wrap(np.asarray(arr, dtype=dtype))


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """sigmoid(logits) (binary) or softmax over the last dim."""
    return ops.sigmoid(logits) if is_binary else softmax(logits, -1)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """log p (log p / (1 - p) for a binary one), p clamped into (0, 1) first as torch does."""
    eps = float(np.finfo(probs.dtype).eps)
    p = ops.clamp(probs, eps, 1 - eps)
    return ops.sub(ops.log(p), ops.log1p(ops.neg(p))) if is_binary else ops.log(p)


LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class Distribution:
    """A probability distribution with torch.distributions' interface."""

    has_rsample = False
    has_enumerate_support = False
    _dtype_of: str | None = None  # the parameter whose dtype values are converted to (see _dtype)

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape = tuple(batch_shape)
        self._event_shape = tuple(event_shape)

    @property
    def batch_shape(self) -> tuple:
        """The shape over which parameters are batched (independent distributions)."""
        return self._batch_shape

    @property
    def event_shape(self) -> tuple:
        """The shape of one draw (() for a scalar distribution)."""
        return self._event_shape

    def _extended_shape(self, sample_shape=()) -> tuple:
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        return tuple(sample_shape) + self._batch_shape + self._event_shape

    def sample(self, sample_shape=(), generator=None) -> Tensor:
        """Draws of shape ``sample_shape + batch_shape + event_shape``, outside the graph."""
        with no_grad():
            # no generator: rsample as torch calls it, so a user's subclass written for torch (rsample without a
            # generator argument) samples here too
            draws = self.rsample(sample_shape) if generator is None else self.rsample(sample_shape, generator=generator)
            return draws.detach()

    def rsample(self, sample_shape=(), generator=None) -> Tensor:
        """A reparameterised draw: differentiable with respect to the parameters."""
        raise NotImplementedError(f"{type(self).__name__} has no reparameterised sample (rsample); use sample()")

    def sample_n(self, n: int) -> Tensor:
        """``n`` draws (``sample((n,))``)."""
        return self.sample((n,))

    def log_prob(self, value) -> Tensor:  # pragma: no cover - abstract
        """log p(value), one value per batch element."""
        raise NotImplementedError(f"{type(self).__name__}.log_prob is not implemented")

    def entropy(self) -> Tensor:  # pragma: no cover - abstract
        """The entropy, per batch element."""
        raise NotImplementedError(f"{type(self).__name__}.entropy is not implemented")

    def cdf(self, value) -> Tensor:
        """P(X <= value)."""
        raise NotImplementedError(f"{type(self).__name__}.cdf is not implemented")

    def icdf(self, value) -> Tensor:
        """The value whose cdf is ``value`` (the inverse of ``cdf``)."""
        raise NotImplementedError(f"{type(self).__name__}.icdf is not implemented")

    @property
    def mean(self) -> Tensor:  # pragma: no cover - abstract
        """The mean."""
        raise NotImplementedError(f"{type(self).__name__}.mean is not implemented")

    @property
    def variance(self) -> Tensor:  # pragma: no cover - abstract
        """The variance."""
        raise NotImplementedError(f"{type(self).__name__}.variance is not implemented")

    @property
    def stddev(self) -> Tensor:
        """The standard deviation."""
        return ops.sqrt(self.variance)

    def perplexity(self) -> Tensor:
        """exp(entropy)."""
        return ops.exp(self.entropy())

    def _value(self, value) -> Tensor:
        """``value`` as a tensor of the parameters' dtype, checked to broadcast with the batch and event shape."""
        v = value if isinstance(value, Tensor) else Tensor(np.asarray(value, dtype=self._dtype()))
        full = self._batch_shape + self._event_shape
        try:
            np.broadcast_shapes(v.shape, full)
        except ValueError:
            raise ShapeError(f"{type(self).__name__}.log_prob: a value of shape {shape_str(v.shape)} does not "
                             f"broadcast with batch_shape + event_shape {shape_str(full)}") from None
        return v

    def _dtype(self):
        """The dtype a value is converted to: that of the parameter named ``_dtype_of`` (the default dtype
        when there is none)."""
        return get_default_dtype() if self._dtype_of is None else getattr(self, self._dtype_of).dtype

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_shape={self._batch_shape}, event_shape={self._event_shape})"
