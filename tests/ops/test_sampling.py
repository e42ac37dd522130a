"""bernoulli, multinomial, poisson, normal and the in-place fillers: seeded, in range, with the right
statistics (loose bounds far beyond sampling noise at these sizes: a wrong distribution fails, luck does not)."""

import numpy as np
import pytest

import neural_arch as na
from neural_arch.errors import ShapeError


def test_bernoulli_seeded_and_mean():
    p = na.full((20000,), 0.3)
    na.manual_seed(1)
    a = na.bernoulli(p)
    na.manual_seed(1)
    b = p.bernoulli()
    assert a.tolist() == b.tolist() and a.dtype == np.float32
    assert set(np.unique(a.numpy())) <= {0.0, 1.0}
    assert abs(a.numpy().mean() - 0.3) < 0.02
    g = na.Generator(5)
    c = na.bernoulli(na.zeros(1000), p=0.9, generator=g)
    assert abs(c.numpy().mean() - 0.9) < 0.04
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        na.bernoulli(na.tensor([1.5]))


def test_multinomial():
    w = na.tensor([[0.0, 1.0, 3.0], [5.0, 0.0, 5.0]])
    na.manual_seed(0)
    draws = na.multinomial(w, 4000, replacement=True).numpy()
    assert draws.shape == (2, 4000) and draws.dtype == np.int64
    assert not (draws[0] == 0).any() and not (draws[1] == 1).any()
    assert abs((draws[0] == 2).mean() - 0.75) < 0.03
    no_rep = na.multinomial(na.tensor([1.0, 1.0, 1.0, 1.0]), 4).numpy()
    assert sorted(no_rep.tolist()) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="without replacement"):
        na.multinomial(na.tensor([1.0, 0.0]), 2)
    with pytest.raises(ShapeError):
        na.multinomial(na.ones(2, 2, 2), 1)


def test_poisson_normal_and_fillers():
    na.manual_seed(3)
    counts = na.poisson(na.full((20000,), 4.0)).numpy()
    assert abs(counts.mean() - 4.0) < 0.1 and abs(counts.var() - 4.0) < 0.3
    draws = na.normal(na.tensor([0.0, 10.0]).expand(5000, 2), na.tensor([1.0, 0.1])).numpy()
    assert abs(draws[:, 1].mean() - 10.0) < 0.01 and abs(draws[:, 0].std() - 1.0) < 0.05
    assert na.normal(2.0, 3.0, (4,)).shape == (4,)
    x = na.empty(20000)
    assert x.uniform_(2, 3) is x and 2 <= x.numpy().min() and x.numpy().max() < 3
    assert abs(x.normal_(1, 2).numpy().std() - 2) < 0.1
    assert abs(x.exponential_(2.0).numpy().mean() - 0.5) < 0.02
    assert set(np.unique(x.bernoulli_(0.5).numpy())) == {0.0, 1.0}
    assert x.random_(0, 5).numpy().max() == 4
    assert x.geometric_(0.5).numpy().min() >= 1
    na.manual_seed(9)
    a = na.empty(3).normal_().tolist()
    na.manual_seed(9)
    assert na.empty(3).normal_().tolist() == a
