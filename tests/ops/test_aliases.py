"""torch's alternative spellings and small Tensor methods added with the tensor-ops stream, each against torch."""

import numpy as np
import pytest
import torch
from parity import check, randn

import neural_arch as na

A, B = randn(3, 4, seed=1), randn(3, 4, seed=2)
CASES = [
    ("greater", lambda m, x, y: x.greater(y), [A, B], False),
    ("greater_equal", lambda m, x, y: x.greater_equal(y), [A, B], False),
    ("less", lambda m, x, y: x.less(y), [A, B], False),
    ("less_equal", lambda m, x, y: x.less_equal(y), [A, B], False),
    ("not_equal", lambda m, x, y: x.not_equal(y), [A, B], False),
    ("swapdims", lambda m, x, y: x.swapdims(0, 1) * 2, [A, B], True),
    ("ravel", lambda m, x, y: x.ravel(), [A, B], True),
    ("mv", lambda m, x, y: x.mv(y[0]), [A, B], True),
    ("ger", lambda m, x, y: x[0].ger(y[1]), [A, B], True),
    ("outer_method", lambda m, x, y: x[0].outer(y[1]), [A, B], True),
    ("rsub", lambda m, x, y: m.rsub(x, y, alpha=2), [A, B], True),
    ("bitwise_method", lambda m, x, y: (x > 0).bitwise_and(y > 0), [A, B], False),
    ("conj_real", lambda m, x, y: x.conj() + y.resolve_conj(), [A, B], True),
    ("lstsq_method", lambda m, x, y: m.linalg.lstsq(x.T, y.T).solution, [A, B], True),
    ("clamp_min_", lambda m, x, y: m.clamp_min(x, 0.2), [A, B], True),
    ("top_level_relu", lambda m, x, y: m.relu(x) + m.softmax(y, 1) + m.log_softmax(y, 0), [A, B], True),
]


@pytest.mark.parametrize("name,fn,ins,grad", CASES, ids=[c[0] for c in CASES])
def test_aliases(name, fn, ins, grad):
    check(lambda *xs: fn(na, *xs), ins, torch_fn=lambda *xs: fn(torch, *xs), grad=grad)


def test_more_inplace_fillers_and_predicates():
    na.manual_seed(0)
    x = na.empty(5000)
    assert np.median(x.cauchy_(1.0, 0.5).numpy()) == pytest.approx(1.0, abs=0.05)
    assert np.median(np.log(x.log_normal_(0.5, 0.2).numpy())) == pytest.approx(0.5, abs=0.02)
    t = na.tensor([2.0])
    assert t.is_nonzero() and t.is_same_size(na.ones(1)) and not na.tensor([1]).is_floating_point()
