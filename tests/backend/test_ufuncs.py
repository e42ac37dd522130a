"""backend/ufuncs.call: large elementwise NumPy calls cut into blocks on our threads give exactly
NumPy's result (values, dtype, broadcasting, weak Python numbers, errstate), and the ops that use it
(add, sub, mul, div, neg, exp) give the same values and gradients split or not."""

import warnings

import numpy as np
import pytest

import neural_arch as na
from neural_arch.backend import threads, ufuncs


@pytest.fixture
def split(monkeypatch):
    """Every call with an array of >= 2 elements is split, into three blocks."""
    monkeypatch.setattr(threads.policy, "ufunc_split_elements", 2)  # (the ops' size test, backend.kernels.elementwise)
    monkeypatch.setattr(threads.policy, "num_threads", 3)
    if not threads.blas_is_ours():
        pytest.skip("threading policy not in force (NEURAL_ARCH_BLAS_THREADS=native)")


rng = np.random.default_rng(0)
A = rng.standard_normal((7, 5, 4)).astype(np.float32)
CASES = [
    (np.add, (A, rng.standard_normal((7, 5, 4)).astype(np.float32))),
    (np.subtract, (A, rng.standard_normal(4).astype(np.float32))),  # a row vector goes whole
    (np.multiply, (A, rng.standard_normal((1, 5, 4)).astype(np.float32))),  # a first axis of 1
    (np.multiply, (A, 2.5)),  # a weak Python float keeps float32
    (np.true_divide, (A, rng.integers(1, 5, (7, 5, 4)))),  # float32 / int64 -> float64
    (np.add, (rng.integers(0, 9, (7, 3)), 3)),  # ints stay ints
    (np.multiply, (rng.random((7, 3)) > 0.5, rng.random((7, 3)) > 0.5)),  # bools
    (np.negative, (A,)),
    (np.exp, (A.transpose(2, 0, 1),)),  # a strided view
    (np.add, (A[:, :, :1], A)),  # broadcasting within the cut axis' rows
]


@pytest.mark.parametrize("ufunc,args", CASES, ids=[f"{u.__name__}-{i}" for i, (u, _) in enumerate(CASES)])
def test_split_call_is_numpys_result(split, ufunc, args):
    want = ufunc(*args)
    got = ufuncs.call(ufunc, *args)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_errstate_is_applied_in_every_block(split):
    x = np.array([[1.0, 0.0]] * 6, np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):  # 1/0 and 0/0
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = ufuncs.call(np.true_divide, x, np.zeros_like(x))
    assert np.isinf(out[:, 0]).all() and np.isnan(out[:, 1]).all()
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        ufuncs.call(np.true_divide, x, np.zeros_like(x))


def test_small_and_unsupported_calls_are_plain_numpy(split, monkeypatch):
    monkeypatch.setattr(threads.policy, "ufunc_split_elements", 1 << 30)
    assert ufuncs.call(np.add, A, A).flags.c_contiguous
    monkeypatch.setattr(threads.policy, "ufunc_split_elements", 2)
    objs = np.array([[1, 2], [3, 4]], dtype=object)
    assert ufuncs.call(np.add, objs, objs).dtype == object
    np.testing.assert_array_equal(ufuncs.call(np.add, np.ones((1, 3)), np.ones((1, 3))), 2)  # one row: no cut


def _ops(x, y):
    return [x + y, x - y, x * y, x / (y * y + 1), -x, (x * 0.1).exp()]


def test_ops_give_the_same_values_and_gradients_split(split, monkeypatch):
    def run():
        x = na.tensor(A.copy(), requires_grad=True)
        y = na.tensor((A[::-1] + 0.5).copy(), requires_grad=True)
        outs = _ops(x, y)
        sum(o.sum() for o in outs).backward()
        return [o.detach().numpy() for o in outs] + [x.grad.numpy(), y.grad.numpy()]

    calls = []
    real = ufuncs._blocks
    monkeypatch.setattr(ufuncs, "_blocks", lambda *a: calls.append(1) or real(*a))
    split_run = run()
    assert len(calls) >= 10, "the ops should have gone through ufuncs.call's blocks"
    monkeypatch.setattr(threads.policy, "ufunc_split_elements", 1 << 30)
    plain = run()
    for a, b in zip(split_run, plain):
        np.testing.assert_array_equal(a, b)
