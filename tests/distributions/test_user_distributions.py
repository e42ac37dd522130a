"""What a user builds on torch.distributions' base: a ``Distribution`` subclass (shapes, ``sample`` through
the subclass's ``rsample``) and a KL registered with ``register_kl`` for it, written the same way
in both frameworks, against torch's; ``kl_divergence`` picks the most specific registered pair as torch's does."""

import numpy as np
import torch
from parity import compare, reference

import neural_arch as na

LOC = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.7]])


def _point_mass(m):
    """A distribution at ``loc``: its draws are ``loc``, its log-density 0 there and -inf elsewhere."""

    class PointMass(m.distributions.Distribution):
        has_rsample = True
        arg_constraints = {}  # torch validates the arguments a class constrains: none here

        def __init__(self, loc):
            self.loc = loc
            super().__init__(batch_shape=loc.shape)

        def rsample(self, sample_shape=()):
            return self.loc.expand(self._extended_shape(sample_shape))

        def log_prob(self, value):
            return m.where(value == self.loc, m.zeros_like(self.loc), m.full_like(self.loc, -np.inf))

    return PointMass


def _kl_to_normal(m, point_mass):
    """A KL a user registers for the pair: here the cross-entropy term -log q(loc) (differentiable in q)."""

    @m.distributions.register_kl(point_mass, m.distributions.Normal)
    def _kl(p, q):
        return -q.log_prob(p.loc)

    return _kl


def test_a_users_distribution_has_torchs_shapes_and_samples():
    ours_cls = _point_mass(na)
    ref_loc = torch.tensor(LOC)
    with reference():
        ref = _point_mass(torch)(ref_loc)
        ref_out = [list(ref.batch_shape), list(ref.event_shape), ref.sample((2,)), ref.sample(),
                   ref.log_prob(ref_loc)]
    ours = ours_cls(na.tensor(LOC))
    compare([list(ours.batch_shape), list(ours.event_shape), ours.sample((2,)), ours.sample(),
             ours.log_prob(na.tensor(LOC))], ref_out)


def test_a_registered_kl_is_dispatched_as_torchs():
    ours_cls, ref_cls = _point_mass(na), _point_mass(torch)
    _kl_to_normal(na, ours_cls)
    loc, scale = torch.tensor(LOC, requires_grad=True), torch.tensor(np.full(3, 1.5))
    with reference():
        _kl_to_normal(torch, ref_cls)
        want = torch.distributions.kl_divergence(ref_cls(torch.tensor(LOC[::-1].copy())),
                                                 torch.distributions.Normal(loc, scale))
    ours_loc = na.tensor(LOC, requires_grad=True)
    got = na.distributions.kl_divergence(ours_cls(na.tensor(LOC[::-1].copy())),
                                         na.distributions.Normal(ours_loc, na.tensor(np.full(3, 1.5))))
    compare(got, want, rtol=1e-12, atol=1e-14)
    want.sum().backward()
    got.sum().backward()
    compare(ours_loc.grad, loc.grad, rtol=1e-12, atol=1e-14, what="grad of the Normal's loc")


def test_the_most_specific_registered_pair_wins_as_in_torch():
    def pick(m):
        class MyNormal(m.distributions.Normal):
            pass

        @m.distributions.register_kl(MyNormal, m.distributions.Normal)
        def _kl(p, q):
            return p.loc * 0 + 42.0

        mine, std = MyNormal(m.tensor([0.0, 1.0]), m.tensor([1.0, 2.0])), m.distributions.Normal(1.0, 3.0)
        return [m.distributions.kl_divergence(mine, std), m.distributions.kl_divergence(std, mine)]

    ours = pick(na)
    with reference():
        ref = pick(torch)
    compare(ours, ref, rtol=1e-6, atol=1e-7)
