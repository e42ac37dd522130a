"""``Function.apply``'s hooks: whoever sets one on the module (graph, compile, checkpoint, autocast, a test)
is seen by the very next op, and once it is cleared no op calls it any more (``apply`` tests one module
flag that the module keeps up to date), whatever the op's arity."""

import numpy as np

import neural_arch as na
from neural_arch.autograd import function


def test_a_hook_set_on_the_module_is_seen_by_the_next_op_and_not_after_it_is_cleared(monkeypatch):
    seen = []
    x = na.tensor(np.ones(3, np.float32), requires_grad=True)
    monkeypatch.setattr(function, "_tracer", lambda cls, inputs, params, out: seen.append((cls.__name__, len(inputs))))
    y = (x * 2).exp()  # binary, then unary
    na.stack([x, x, y])  # three inputs
    assert seen == [("Mul", 2), ("Exp", 1), ("Stack", 3)]
    monkeypatch.undo()
    assert function._tracer is None
    x * 2
    assert len(seen) == 3


def test_edges_of_unary_binary_and_wider_calls_follow_requires_grad():
    a = na.tensor(np.ones(2, np.float32), requires_grad=True)
    b = na.tensor(np.full(2, 3.0, np.float32))
    for out, wanted in [(a * b, [3.0, 3.0]), (b * a, [3.0, 3.0]), (a.exp(), [np.e, np.e]),
                        (na.stack([b, a, b]).sum(0), [1.0, 1.0])]:
        a.grad = None
        assert out.requires_grad
        out.backward(na.ones(2))
        np.testing.assert_allclose(a.grad.numpy(), wanted, rtol=1e-6)
    assert not (b * b).requires_grad and not b.exp().requires_grad and not na.stack([b, b, b]).requires_grad
    with na.no_grad():
        assert not (a * b).requires_grad
