"""``neural_arch.distributions``: torch.distributions' common distributions (layer 4).

    from neural_arch.distributions import Normal, kl_divergence
    d = Normal(mu, sigma)
    x = d.rsample((16,))            # differentiable in mu and sigma
    d.log_prob(x).sum().backward()

``sample`` draws from our seeded generator (``na.manual_seed``, or ``generator=``);
``rsample`` is reparameterised (Normal, LogNormal, Uniform, Exponential, Laplace, Cauchy,
MultivariateNormal, Gamma/Chi2/Beta through implicit gradients). ``validate_args`` is accepted and
ignored: parameters are not checked against their constraints.
Not provided: Dirichlet, Binomial, Multinomial, StudentT, mixtures, transforms and constraints.
"""

from neural_arch.distributions.continuous import Cauchy, Exponential, Laplace, LogNormal, Normal, Uniform
from neural_arch.distributions.discrete import Bernoulli, Categorical, Geometric, OneHotCategorical, Poisson
from neural_arch.distributions.distribution import Distribution
from neural_arch.distributions.gamma import Beta, Chi2, Gamma
from neural_arch.distributions.kl import kl_divergence, register_kl
from neural_arch.distributions.multivariate import Independent, MultivariateNormal

__all__ = [
    "Bernoulli", "Beta", "Categorical", "Cauchy", "Chi2", "Distribution", "Exponential", "Gamma", "Geometric",
    "Independent", "Laplace", "LogNormal", "MultivariateNormal", "Normal", "OneHotCategorical", "Poisson",
    "Uniform", "kl_divergence", "register_kl",
]
