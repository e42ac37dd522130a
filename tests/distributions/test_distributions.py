"""neural_arch.distributions vs torch.distributions: log_prob, entropy, mean, variance, cdf and KL
values and their gradients with respect to the parameters; rsample's reparameterisation; sample statistics."""

import numpy as np
import pytest
import torch
from parity import check, rand_pos, randn

import neural_arch as na

LOC, SCALE = randn(2, 3, seed=1), rand_pos(2, 3, seed=2)
PROB = np.random.default_rng(3).uniform(0.1, 0.9, (2, 3))
LOGITS = randn(2, 4, seed=4)
A, B = rand_pos(2, 3, seed=5, low=0.8, high=3.0), rand_pos(2, 3, seed=6, low=0.8, high=3.0)
L = np.tril(randn(2, 3, 3, seed=7), -1) + np.diag([1.0, 1.5, 0.7])
COV = L @ np.swapaxes(L, -1, -2)


def _pos(x):
    return x


# name: (build(m, *params), params, a value in the support)
CASES = {
    "Normal": (lambda m, a, b: m.distributions.Normal(a, b), [LOC, SCALE], randn(2, 3, seed=9)),
    "LogNormal": (lambda m, a, b: m.distributions.LogNormal(a, b), [LOC, SCALE], rand_pos(2, 3, seed=9)),
    "Uniform": (lambda m, a, b: m.distributions.Uniform(a, a + b), [LOC, SCALE], LOC + 0.3 * SCALE),
    "Exponential": (lambda m, a: m.distributions.Exponential(a), [SCALE], rand_pos(2, 3, seed=9)),
    "Laplace": (lambda m, a, b: m.distributions.Laplace(a, b), [LOC, SCALE], randn(2, 3, seed=9)),
    "Cauchy": (lambda m, a, b: m.distributions.Cauchy(a, b), [LOC, SCALE], randn(2, 3, seed=9)),
    "Bernoulli_probs": (lambda m, p: m.distributions.Bernoulli(probs=p), [PROB], (PROB > 0.5) * 1.0),
    "Bernoulli_logits": (lambda m, p: m.distributions.Bernoulli(logits=p), [LOC], (LOC > 0) * 1.0),
    "Geometric": (lambda m, p: m.distributions.Geometric(probs=p), [PROB], np.array([[0.0, 2, 5], [1, 0, 3]])),
    "Poisson": (lambda m, r: m.distributions.Poisson(r), [SCALE], np.array([[0.0, 2, 5], [1, 0, 3]])),
    "Categorical_probs": (lambda m, p: m.distributions.Categorical(probs=p), [np.exp(LOGITS)],
                          np.array([0, 3], dtype=np.int64)),
    "Categorical_logits": (lambda m, p: m.distributions.Categorical(logits=p), [LOGITS],
                           np.array([[2], [1], [0]], dtype=np.int64)),  # value broadcast against the batch
    "OneHotCategorical": (lambda m, p: m.distributions.OneHotCategorical(logits=p), [LOGITS],
                          np.eye(4)[[1, 3]]),
    "Gamma": (lambda m, a, b: m.distributions.Gamma(a, b), [A, B], rand_pos(2, 3, seed=9)),
    "Chi2": (lambda m, a: m.distributions.Chi2(a), [A], rand_pos(2, 3, seed=9)),
    "Beta": (lambda m, a, b: m.distributions.Beta(a, b), [A, B], np.random.default_rng(9).uniform(0.1, 0.9, (2, 3))),
    "MVN_cov": (lambda m, mu, c: m.distributions.MultivariateNormal(mu, covariance_matrix=c), [LOC, COV],
                randn(2, 3, seed=9)),
    "MVN_tril": (lambda m, mu, t: m.distributions.MultivariateNormal(mu, scale_tril=t), [LOC, L], randn(4, 1, 3)),
    "MVN_precision": (lambda m, mu, c: m.distributions.MultivariateNormal(mu, precision_matrix=c), [LOC[0], COV[0]],
                      randn(3, seed=9)),
    "Independent": (lambda m, a, b: m.distributions.Independent(m.distributions.Normal(a, b), 1), [LOC, SCALE],
                    randn(2, 3, seed=9)),
}
NO_ENTROPY = {"Poisson"}  # torch has none
NO_MOMENTS = {"Cauchy"}  # undefined
HAS_CDF = {"Normal", "Uniform", "Exponential", "Laplace", "Cauchy"}


def _sym(build, name):
    """Covariance/precision parameters: differentiate through a symmetric construction."""
    if name in ("MVN_cov", "MVN_precision"):
        return lambda m, mu, c: build(m, mu, (c + c.mT) / 2)
    return build


@pytest.mark.parametrize("name", list(CASES))
def test_log_prob_entropy_moments(name):
    build, params, value = CASES[name]
    build = _sym(build, name)
    v_int = value.dtype.kind == "i"

    def lp(m, *ps):
        v = (torch.from_numpy(value) if m is torch else na.tensor(value)) if v_int else \
            (torch.tensor(value, dtype=ps[0].dtype) if m is torch else na.tensor(value, dtype=ps[0].dtype))
        return build(m, *ps).log_prob(v)

    check(lambda *ps: lp(na, *ps), params, torch_fn=lambda *ps: lp(torch, *ps), rtol=1e-8, atol=1e-10)
    if name not in NO_ENTROPY:
        check(lambda *ps: build(na, *ps).entropy(), params, torch_fn=lambda *ps: build(torch, *ps).entropy(),
              rtol=1e-8, atol=1e-10)
    if name not in NO_MOMENTS and not name.startswith("Categorical"):
        for attr in ("mean", "variance", "stddev"):
            check(lambda *ps: getattr(build(na, *ps), attr), params,
                  torch_fn=lambda *ps: getattr(build(torch, *ps), attr), rtol=1e-8, atol=1e-10)
    if name in HAS_CDF:
        check(lambda *ps: build(na, *ps).cdf(na.tensor(value, dtype=ps[0].dtype)), params,
              torch_fn=lambda *ps: build(torch, *ps).cdf(torch.tensor(value, dtype=ps[0].dtype)), rtol=1e-8,
              atol=1e-10)
    d, t = build(na, *[na.tensor(p) for p in params]), build(torch, *[torch.tensor(p) for p in params])
    assert d.batch_shape == tuple(t.batch_shape) and d.event_shape == tuple(t.event_shape)


def test_icdf_and_shapes():
    q = np.random.default_rng(0).uniform(0.05, 0.95, (2, 3))
    for name in ("Normal", "Uniform", "Exponential"):
        build, params, _ = CASES[name]
        check(lambda *ps: build(na, *ps).icdf(na.tensor(q, dtype=ps[0].dtype)), params,
              torch_fn=lambda *ps: build(torch, *ps).icdf(torch.tensor(q, dtype=ps[0].dtype)))


KL_PAIRS = [
    ("Normal", "Normal"), ("Bernoulli_probs", "Bernoulli_logits"), ("Categorical_probs", "Categorical_logits"),
    ("OneHotCategorical", "OneHotCategorical"), ("Exponential", "Exponential"), ("Laplace", "Laplace"),
    ("Poisson", "Poisson"), ("Gamma", "Gamma"), ("Beta", "Beta"), ("MVN_cov", "MVN_tril"),
    ("Independent", "Independent"), ("Uniform", "Uniform"),
]


@pytest.mark.parametrize("p_name,q_name", KL_PAIRS, ids=[f"{a}-{b}" for a, b in KL_PAIRS])
def test_kl_divergence(p_name, q_name):
    bp, pp, _ = CASES[p_name]
    bq, pq, _ = CASES[q_name]
    bp, bq = _sym(bp, p_name), _sym(bq, q_name)
    pq = [x[::-1].copy() if x.ndim and x.shape[0] == 2 else x for x in pq]  # a different q
    if p_name == "Uniform":  # q's support must contain p's for a finite value
        pq = [pp[0] - 0.5, pp[1] + 1.0]
    k = len(pp)

    def kl(m, *ps):
        return m.distributions.kl_divergence(bp(m, *ps[:k]), bq(m, *ps[k:]))

    check(lambda *ps: kl(na, *ps), pp + pq, torch_fn=lambda *ps: kl(torch, *ps), rtol=1e-8, atol=1e-10)


def test_kl_infinite_and_registry():
    p = na.distributions.Uniform(0.0, 2.0)
    q = na.distributions.Uniform(0.5, 1.0)
    assert na.distributions.kl_divergence(p, q).item() == np.inf
    b = na.distributions.Bernoulli(probs=na.tensor([0.0, 0.5, 1.0]))
    c = na.distributions.Bernoulli(probs=na.tensor([0.5, 0.0, 1.0]))
    tb = torch.distributions.Bernoulli(probs=torch.tensor([0.0, 0.5, 1.0]))
    tc = torch.distributions.Bernoulli(probs=torch.tensor([0.5, 0.0, 1.0]))
    np.testing.assert_allclose(na.distributions.kl_divergence(b, c).numpy(),
                               torch.distributions.kl_divergence(tb, tc).numpy(), rtol=1e-6)

    class MyNormal(na.distributions.Normal):
        pass

    @na.distributions.register_kl(MyNormal, na.distributions.Normal)
    def _kl(p, q):
        return na.tensor(42.0)

    mine, std = MyNormal(0.0, 1.0), na.distributions.Normal(0.0, 1.0)
    assert na.distributions.kl_divergence(mine, std).item() == 42.0  # the more specific pair wins
    assert na.distributions.kl_divergence(std, mine).item() == 0.0  # falls back to Normal || Normal
    with pytest.raises(NotImplementedError, match="register_kl"):
        na.distributions.kl_divergence(std, na.distributions.Exponential(1.0))


REPARAM = ["Normal", "LogNormal", "Uniform", "Exponential", "Laplace", "Cauchy", "MVN_tril", "Gamma", "Beta",
           "Independent"]


@pytest.mark.parametrize("name", REPARAM)
def test_rsample_is_differentiable_and_matches_the_moments(name):
    build, params, _ = CASES[name]
    ps = [na.tensor(p, requires_grad=True) for p in params]
    d = build(na, *ps)
    na.manual_seed(0)
    x = d.rsample((4000,))
    assert x.shape == (4000,) + d.batch_shape + d.event_shape
    x.mean().backward()
    assert all(p.grad is not None and np.isfinite(p.grad.numpy()).all() for p in ps)
    if name != "Cauchy":  # sample moments: 4000 draws, bounds of several standard errors
        mean, var = d.mean.detach().numpy(), d.variance.detach().numpy()
        got = x.detach().numpy().mean(0)
        assert np.all(np.abs(got - mean) < 6 * np.sqrt(var / 4000) + 1e-9), (got, mean)


def test_reparameterised_gradients_are_exact():
    loc, scale = na.tensor(LOC, requires_grad=True), na.tensor(SCALE, requires_grad=True)
    x = na.distributions.Normal(loc, scale).rsample((5,))
    x.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), np.full(LOC.shape, 5.0))
    np.testing.assert_allclose(scale.grad.numpy(), ((x.detach().numpy() - LOC) / SCALE).sum(0), rtol=1e-10)
    # Gamma: the implicit gradient dx/dalpha equals torch's at the same draws
    alpha = na.tensor(A, requires_grad=True)
    g = na.distributions.Gamma(alpha, na.tensor(np.ones_like(A))).rsample()
    g.sum().backward()
    ref = torch._standard_gamma_grad(torch.tensor(A), torch.tensor(g.detach().numpy()))  # (alpha, draw)
    np.testing.assert_allclose(alpha.grad.numpy(), ref.numpy(), rtol=1e-4)  # torch's is an approximation (~4e-5)
    # ours is a central difference of the exact CDF: against mpmath's derivative (torch depends on mpmath)
    import mpmath

    mpmath.mp.dps = 30
    a0, x0 = float(A[0, 0]), float(g.detach().numpy()[0, 0])
    exact = -mpmath.diff(lambda t: mpmath.gammainc(t, 0, x0, regularized=True), a0) / (
        mpmath.mpf(x0) ** (a0 - 1) * mpmath.e ** (-x0) / mpmath.gamma(a0))
    assert abs(alpha.grad.numpy()[0, 0] - float(exact)) < 1e-8 * abs(float(exact))


def test_discrete_sampling_seeded_and_frequencies():
    probs = na.tensor([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]])
    d = na.distributions.Categorical(probs=probs)
    na.manual_seed(1)
    s = d.sample((5000,))
    na.manual_seed(1)
    assert s.tolist() == d.sample((5000,)).tolist()
    assert s.shape == (5000, 2) and s.dtype == np.int64
    assert abs((s.numpy()[:, 0] == 2).mean() - 0.7) < 0.03 and not (s.numpy()[:, 1] == 2).any()
    oh = na.distributions.OneHotCategorical(probs=probs).sample((10,))
    assert oh.shape == (10, 2, 3) and np.all(oh.numpy().sum(-1) == 1)
    bern = na.distributions.Bernoulli(probs=na.full((3,), 0.25)).sample((4000,))
    assert abs(bern.numpy().mean() - 0.25) < 0.03
    assert na.distributions.Poisson(na.tensor(3.0)).sample((4000,)).numpy().mean() == pytest.approx(3.0, abs=0.15)
    assert na.distributions.Normal(0.0, 1.0).sample().requires_grad is False
    with pytest.raises(NotImplementedError, match="rsample"):
        na.distributions.Bernoulli(probs=0.3).rsample()
    with pytest.raises(ValueError, match="exactly one of probs or logits"):
        na.distributions.Categorical()
    with pytest.raises(na.errors.ShapeError, match="does not broadcast"):
        na.distributions.Normal(na.zeros(3), 1.0).log_prob(na.zeros(2))
