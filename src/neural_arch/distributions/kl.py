"""KL(p || q) between distributions: ``kl_divergence(p, q)`` and ``@register_kl(P, Q)``.

The implementation for a pair of types is looked up through both types' MROs; the most
specific registered pair wins (as torch.distributions.kl). The closed forms are torch's.
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch import ops
from neural_arch.autograd.tensor import Tensor
from neural_arch.distributions.continuous import Exponential, Laplace, Normal, Uniform
from neural_arch.distributions.discrete import Bernoulli, Categorical, OneHotCategorical, Poisson
from neural_arch.distributions.gamma import Beta, Gamma
from neural_arch.distributions.multivariate import Independent, MultivariateNormal, _mahalanobis
from neural_arch.ops.activation import softplus
from neural_arch.ops.matrix_functions import solve_triangular

_KL_REGISTRY: dict = {}


def register_kl(type_p, type_q):
    """Decorator: ``@register_kl(Normal, Normal) def kl(p, q): ...`` registers the closed form for that pair."""

    def decorator(fn):
        _KL_REGISTRY[type_p, type_q] = fn
        return fn

    return decorator


def _dispatch(type_p, type_q):
    best, rank = None, None
    for i, tp in enumerate(type_p.__mro__):
        for j, tq in enumerate(type_q.__mro__):
            fn = _KL_REGISTRY.get((tp, tq))
            if fn is not None and (rank is None or (i + j, i) < rank):
                best, rank = fn, (i + j, i)
    return best


def kl_divergence(p, q) -> Tensor:
    """KL(p || q) = E_p[log p(x) - log q(x)], per batch element."""
    fn = _dispatch(type(p), type(q))
    if fn is None:
        raise NotImplementedError(f"kl_divergence: no closed form registered for {type(p).__name__} || "
                                  f"{type(q).__name__}; add one with @register_kl({type(p).__name__}, "
                                  f"{type(q).__name__})")
    return fn(p, q)


def _where(cond, value, t):
    return ops.where(Tensor._wrap(np.asarray(cond)), value, t)


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    var_ratio = (p.scale / q.scale) ** 2
    t1 = ((p.loc - q.loc) / q.scale) ** 2
    return 0.5 * (var_ratio + t1 - 1 - ops.log(var_ratio))


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    t1 = p.probs * (softplus(-q.logits) - softplus(-p.logits))
    t1 = _where(p.probs.data == 0, 0.0, _where(q.probs.data == 0, math.inf, t1))
    t2 = (1 - p.probs) * (softplus(q.logits) - softplus(p.logits))
    t2 = _where(p.probs.data == 1, 0.0, _where(q.probs.data == 1, math.inf, t2))
    return t1 + t2


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    t = p.probs * (p.logits - q.logits)
    shape = t.shape
    t = _where(np.broadcast_to(q.probs.data == 0, shape), math.inf, t)
    t = _where(np.broadcast_to(p.probs.data == 0, shape), 0.0, t)
    return ops.sum(t, -1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehot_onehot(p, q):
    return _kl_categorical_categorical(p._categorical, q._categorical)


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p, q):
    result = ops.log((q.high - q.low) / (p.high - p.low))
    outside = (q.low.data > p.low.data) | (q.high.data < p.high.data)
    return _where(outside, math.inf, result)


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p, q):
    ratio = q.rate / p.rate
    return -ops.log(ratio) + ratio - 1


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p, q):
    scale_ratio = p.scale / q.scale
    diff = ops.abs(p.loc - q.loc)
    return -ops.log(scale_ratio) + diff / q.scale + scale_ratio * ops.exp(-diff / p.scale) - 1


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p, q):
    return p.rate * (ops.log(p.rate) - ops.log(q.rate)) - (p.rate - q.rate)


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p, q):
    t1 = q.concentration * ops.log(p.rate / q.rate)
    t2 = ops.lgamma(q.concentration) - ops.lgamma(p.concentration)
    t3 = (p.concentration - q.concentration) * ops.digamma(p.concentration)
    t4 = (q.rate - p.rate) * (p.concentration / p.rate)
    return t1 + t2 + t3 + t4


@register_kl(Beta, Beta)
def _kl_beta_beta(p, q):
    a1, b1, a2, b2 = p.concentration1, p.concentration0, q.concentration1, q.concentration0
    s1 = a1 + b1
    t1 = ops.lgamma(s1) - ops.lgamma(a1) - ops.lgamma(b1) - (ops.lgamma(a2 + b2) - ops.lgamma(a2) - ops.lgamma(b2))
    t2 = (a1 - a2) * (ops.digamma(a1) - ops.digamma(s1)) + (b1 - b2) * (ops.digamma(b1) - ops.digamma(s1))
    return t1 + t2


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p, q):
    if p.event_shape != q.event_shape:
        raise ValueError("kl_divergence: the two MultivariateNormals have different event shapes")
    half_term1 = q._half_log_det() - p._half_log_det()
    k = p.event_shape[0]
    shape = np.broadcast_shapes(q._unbroadcasted_scale_tril.shape[:-2], p._unbroadcasted_scale_tril.shape[:-2])
    ql = ops.expand(q._unbroadcasted_scale_tril, shape + (k, k))
    pl = ops.expand(p._unbroadcasted_scale_tril, shape + (k, k))
    term2 = ops.sum(solve_triangular(ql, pl, upper=False) ** 2, (-2, -1))  # trace(Sigma_q^{-1} Sigma_p)
    term3 = _mahalanobis(q._unbroadcasted_scale_tril, q.loc - p.loc)
    return half_term1 + 0.5 * (term2 + term3 - k)


@register_kl(Independent, Independent)
def _kl_independent_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError("kl_divergence: Independents with different reinterpreted_batch_ndims")
    return p._sum_right(kl_divergence(p.base_dist, q.base_dist))
