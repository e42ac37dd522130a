"""nansum, nanmean, aminmax, cov, corrcoef, bincount, histogram, isin, the extra pointwise ops (addcmul,
addcdiv, sgn, ldexp, frexp, gcd, lcm, nextafter, i0, mvlgamma, renorm), matrix_exp, the window functions and
the smaller Tensor methods vs torch."""

import numpy as np
import pytest
import torch

import neural_arch as na
from parity import check, gradcheck, rand_pos, randn

X = randn(3, 5, seed=1)
WITH_NAN = X.copy()
WITH_NAN[0, 1] = WITH_NAN[2, 4] = np.nan

CASES = [
    ("nansum", lambda m, x: m.nansum(x, 1), [WITH_NAN]),
    ("nansum_all", lambda m, x: x.nansum(), [WITH_NAN]),
    ("nanmean", lambda m, x: m.nanmean(x, 0, keepdim=True), [WITH_NAN]),
    ("aminmax", lambda m, x: m.aminmax(x, dim=1), [X]),
    ("aminmax_all", lambda m, x: x.aminmax(), [X]),
    ("cov", lambda m, x: m.cov(x), [X]),
    ("cov_correction0", lambda m, x: m.cov(x, correction=0), [X]),
    ("cov_weights", lambda m, x, a: m.cov(x, fweights=m.tensor([1, 2, 1, 3, 1]), aweights=a), [X, rand_pos(5, seed=3)]),
    ("cov_1d", lambda m, x: m.cov(x[0]), [X]),
    ("corrcoef", lambda m, x: m.corrcoef(x), [X]),
    ("addcmul", lambda m, x, a, b: m.addcmul(x, a, b, value=0.5), [X, randn(5, seed=2), randn(3, 1, seed=3)]),
    ("addcdiv", lambda m, x, a, b: x.addcdiv(a, b, value=-2), [X, randn(5, seed=2), rand_pos(3, 1, seed=3)]),
    ("sgn", lambda m, x: m.sgn(x), [X]),
    # (negative exponents: torch's own ldexp gradient is 0 there, an integer 2 ** -2)
    ("ldexp", lambda m, x: m.ldexp(x, m.tensor([1, 2, 0, 3, 1])), [X]),
    ("i0", lambda m, x: m.i0(x), [X]),
    ("mvlgamma", lambda m, x: m.mvlgamma(x, 3), [rand_pos(3, 5, seed=4, low=1.5, high=4)]),
    ("renorm", lambda m, x: m.renorm(x, 2, 0, 1.0), [X]),
    ("renorm_p1_dim1", lambda m, x: x.renorm(1, 1, 0.8), [X]),
    ("matrix_exp", lambda m, x: m.matrix_exp(x), [randn(2, 3, 3, seed=5)]),
    ("matrix_exp_large", lambda m, x: m.linalg.matrix_exp(x * 4), [randn(3, 3, seed=6)]),
    ("frobenius_norm", lambda m, x: m.frobenius_norm(x, dim=(-2, -1)), [randn(2, 3, 3, seed=5)]),
    ("nuclear_norm", lambda m, x: m.nuclear_norm(x), [randn(3, 4, seed=5)]),
    ("unfold", lambda m, x: x.unfold(1, 2, 2), [X]),
    ("unfold_dim0", lambda m, x: x.unfold(0, 2, 1), [X]),
    ("sum_to_size", lambda m, x: x.sum_to_size(1, 5), [X]),
    ("adjoint", lambda m, x: x.adjoint(), [X]),
    ("type_as", lambda m, x: x.type_as(m.ones(1, dtype=m.float64)), [X]),
]


@pytest.mark.parametrize("name,fn,ins", CASES, ids=[c[0] for c in CASES])
def test_parity(name, fn, ins):
    # torch's sgn gradient is a ZeroTensor it cannot hand to NumPy: sgn's (zero) gradient by gradcheck only
    check(lambda *xs: fn(na, *xs), ins, torch_fn=lambda *xs: fn(torch, *xs), grad=name != "sgn")
    out = fn(na, *[na.tensor(i) for i in ins])
    first = (lambda *xs: fn(na, *xs)[0]) if isinstance(out, tuple) else (lambda *xs: fn(na, *xs))
    if "nan" not in name:
        gradcheck(first, ins)


def test_counting_and_integer_ops():
    ints = np.array([1, 3, 3, 0, 7], dtype=np.int64)
    check(lambda x: na.bincount(x), [ints], torch_fn=torch.bincount, grad=False)
    check(lambda x: na.bincount(x, minlength=10), [ints], torch_fn=lambda x: torch.bincount(x, minlength=10),
          grad=False)
    w = np.array([0.5, 1.0, 2.0, 1.0, 3.0])
    check(lambda x, y: na.bincount(x, y), [ints, w], torch_fn=torch.bincount, grad=False)
    check(lambda x: na.histogram(x, 4), [X], torch_fn=lambda x: torch.histogram(x, 4), grad=False)
    check(lambda x: x.histogram(3, range=(-1.0, 1.0), density=True), [X], grad=False)
    check(lambda x, y: na.isin(x, y), [ints, np.array([3, 7], dtype=np.int64)], torch_fn=torch.isin, grad=False)
    check(lambda x, y: na.gcd(x, y), [ints, np.array([2, 6, 9, 5, 14], dtype=np.int64)], torch_fn=torch.gcd,
          grad=False)
    check(lambda x, y: x.lcm(y), [ints, np.array([2, 6, 9, 5, 14], dtype=np.int64)], grad=False)
    check(lambda x: na.frexp(x), [X], torch_fn=torch.frexp, grad=False)
    check(lambda x, y: na.nextafter(x, y), [X, np.zeros(5)], torch_fn=torch.nextafter, grad=False)


def test_windows():
    for name in ("hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window"):
        for n in (0, 1, 7, 8):
            for periodic in (True, False):
                ours = getattr(na, name)(n, periodic).numpy()
                ref = getattr(torch, name)(n, periodic).numpy()
                np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6, err_msg=f"{name}({n}, {periodic})")
    assert na.hann_window(4, dtype="float64").dtype == np.float64


def test_small_tensor_methods_and_inplace_functions():
    x = na.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert x.new_zeros(3).tolist() == [0.0, 0.0, 0.0] and x.new_ones((1, 2)).shape == (1, 2)
    assert x.new_full((2,), 7.0).tolist() == [7.0, 7.0] and x.new_tensor([1, 2]).dtype == np.float32
    assert x.new_empty(2, 2).shape == (2, 2) and x.ndimension() == 2 and x.nelement() == 4
    assert x.itemsize == 4 and x.nbytes == 16 and x.is_cpu and x.is_signed()
    assert x.byte().dtype == np.uint8 and x.short().dtype == np.int16 and x.cfloat().dtype == np.complex64
    assert [t.shape for t in x.split_with_sizes([1, 1], 1)] == [(2, 1), (2, 1)]
    y = x.clone()
    assert y.fill_(3.0).tolist() == [[3.0, 3.0], [3.0, 3.0]] and y.zero_().tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert y.copy_(na.tensor([5.0, 6.0])).tolist() == [[5.0, 6.0], [5.0, 6.0]]
    z = na.tensor([-1.0, 2.0])
    assert na.relu_(z) is z and z.tolist() == [0.0, 2.0]
    assert na.abs_(na.tensor([-3.0])).tolist() == [3.0]
    w = na.tensor([1.0, 2.0])
    w.addcmul_(na.tensor([1.0, 1.0]), na.tensor([2.0, 3.0]))
    assert w.tolist() == [3.0, 5.0]
    assert na.softmax(na.tensor([0.0, 0.0]), 0).tolist() == [0.5, 0.5]


def test_linalg_ex_and_tensor_forms():
    a = randn(3, 3, seed=1) + 3 * np.eye(3)
    t = torch.tensor(a)
    out = na.linalg.inv_ex(na.tensor(a))
    np.testing.assert_allclose(out.inverse.numpy(), torch.linalg.inv_ex(t).inverse.numpy(), rtol=1e-10)
    assert out.info.tolist() == 0
    spd = a @ a.T
    np.testing.assert_allclose(na.linalg.cholesky_ex(na.tensor(spd)).L.numpy(), torch.linalg.cholesky(
        torch.tensor(spd)).numpy(), rtol=1e-10)
    b = randn(3, seed=2)
    np.testing.assert_allclose(na.linalg.solve_ex(na.tensor(a), na.tensor(b)).result.numpy(),
                               torch.linalg.solve(t, torch.tensor(b)).numpy(), rtol=1e-10)
    check(lambda x: na.linalg.vander(x, N=4), [randn(2, 3)], torch_fn=lambda x: torch.linalg.vander(x, N=4))
    big = randn(6, 2, 3, seed=3) + np.eye(6).reshape(6, 2, 3) * 3
    check(lambda x: na.linalg.tensorinv(x, 1), [big], torch_fn=lambda x: torch.linalg.tensorinv(x, 1))
    check(lambda x, y: na.linalg.tensorsolve(x, y), [big.reshape(2, 3, 2, 3), randn(2, 3, seed=4)],
          torch_fn=torch.linalg.tensorsolve)
    check(lambda x, y: na.triangular_solve(y, x, upper=False, transpose=True)[0], [a, randn(3, 2, seed=5)],
          torch_fn=lambda x, y: torch.triangular_solve(y, x, upper=False, transpose=True)[0])
