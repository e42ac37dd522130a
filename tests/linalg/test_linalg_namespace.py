"""neural_arch.linalg vs torch.linalg: values and gradients (float64 and float32) and gradcheck."""

import numpy as np
import pytest
import torch
from parity import check, gradcheck, randn

import neural_arch as na
from neural_arch.errors import NumericalError, ShapeError


def svd_signs(m, usv):
    """Singular vectors are unique up to a sign per pair; fix it (first row of U positive) to compare."""
    u, s, vh = usv
    sign = m.sign(u[..., :1, :])
    return u * sign, s, vh * sign.mT


def eigh_signs(m, wq):
    w, q = wq
    return w, q * m.sign(q[..., :1, :])


def qr_signs(m, qr):
    q, r = qr
    sign = m.sign(m.diagonal(r, 0, -2, -1))
    return q * sign.unsqueeze(-2), r * sign.unsqueeze(-1)


def spd(*batch, n=3, seed=0):
    a = randn(*batch, n, n, seed=seed)
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


SQ = randn(2, 3, 3, seed=1) + 3 * np.eye(3)  # well-conditioned batch
TALL, WIDE = randn(2, 4, 3, seed=2), randn(3, 5, seed=3)

# (name, fn(m, x) where m is na or torch, input array); float32 tolerances are looser for decompositions
CASES = [
    ("det", lambda m, x: m.linalg.det(x), SQ),
    ("det_top", lambda m, x: m.det(x[0]), SQ),
    ("slogdet", lambda m, x: m.linalg.slogdet(x)[1], SQ - 3 * np.eye(3)),
    ("logdet", lambda m, x: m.logdet(x), spd(2)),
    ("inv", lambda m, x: m.linalg.inv(x), SQ),
    ("inverse", lambda m, x: m.inverse(x), SQ),
    ("cholesky", lambda m, x: m.linalg.cholesky(x), spd(2)),
    ("cholesky_upper", lambda m, x: m.linalg.cholesky(x, upper=True), spd(2)),
    ("qr", lambda m, x: qr_signs(m, m.linalg.qr(x)), TALL),
    ("qr_square", lambda m, x: qr_signs(m, m.linalg.qr(x)), SQ),
    ("svd", lambda m, x: svd_signs(m, m.linalg.svd(x, full_matrices=False)), TALL),
    ("svd_wide", lambda m, x: svd_signs(m, m.linalg.svd(x, full_matrices=False)), WIDE),
    ("svd_full_S_only", lambda m, x: m.linalg.svd(x)[1], TALL),
    ("svdvals", lambda m, x: m.linalg.svdvals(x), TALL),
    ("eigh", lambda m, x: eigh_signs(m, m.linalg.eigh(x)), spd(2)),
    ("eigh_upper", lambda m, x: eigh_signs(m, m.linalg.eigh(x, UPLO="U")), spd(2, seed=4)),
    ("eigvalsh", lambda m, x: m.linalg.eigvalsh(x), spd(2)),
    ("pinv_tall", lambda m, x: m.linalg.pinv(x), TALL),
    ("pinv_wide", lambda m, x: m.linalg.pinv(x), WIDE),
    ("pinverse", lambda m, x: m.pinverse(x), WIDE),
    ("matrix_power_3", lambda m, x: m.linalg.matrix_power(x, 3), SQ),
    ("matrix_power_neg", lambda m, x: m.matrix_power(x, -2), SQ),
    ("matrix_power_0", lambda m, x: m.linalg.matrix_power(x, 0), SQ),
    ("vector_norm", lambda m, x: m.linalg.vector_norm(x), TALL),
    ("vector_norm_3", lambda m, x: m.linalg.vector_norm(x, 3, dim=-1, keepdim=True), TALL),
    ("vector_norm_inf", lambda m, x: m.linalg.vector_norm(x, float("inf"), dim=(0, 1)), TALL),
    ("vector_norm_neg", lambda m, x: m.linalg.vector_norm(x, -1.5, dim=1), TALL),
    ("vector_norm_0", lambda m, x: m.linalg.vector_norm(x, 0, dim=1), TALL),
    ("matrix_norm_fro", lambda m, x: m.linalg.matrix_norm(x), TALL),
    ("matrix_norm_nuc", lambda m, x: m.linalg.matrix_norm(x, "nuc"), TALL),
    ("matrix_norm_2", lambda m, x: m.linalg.matrix_norm(x, 2, keepdim=True), TALL),
    ("matrix_norm_m2", lambda m, x: m.linalg.matrix_norm(x, -2), TALL),
    ("matrix_norm_1", lambda m, x: m.linalg.matrix_norm(x, 1), TALL),
    ("matrix_norm_inf", lambda m, x: m.linalg.matrix_norm(x, float("inf"), dim=(0, 2)), TALL),
    ("norm_matrix", lambda m, x: m.linalg.norm(x[0]), TALL),
    ("norm_vector", lambda m, x: m.linalg.norm(x, dim=1), TALL),
    ("norm_ord_matrix", lambda m, x: m.linalg.norm(x, 1, dim=(1, 2)), TALL),
    ("cond", lambda m, x: m.linalg.cond(x), SQ),
    ("cond_fro", lambda m, x: m.linalg.cond(x, "fro"), SQ),
    ("cross", lambda m, x: m.linalg.cross(x[0], x[1]), randn(2, 4, 3, seed=5)),
    ("cross_top", lambda m, x: m.cross(x[0], x[1], dim=1), randn(2, 4, 3, seed=5)),
    ("multi_dot", lambda m, x: m.linalg.multi_dot([x[0], x[1].T, x[0], x[1, 0]]), TALL),
    ("vecdot", lambda m, x: m.linalg.vecdot(x[0], x[1]), TALL),
    ("diagonal", lambda m, x: m.linalg.diagonal(x, offset=1), TALL),
    ("lstsq", lambda m, x: m.linalg.lstsq(x, x[..., :2] * 2 + 1).solution, TALL),
    ("solve_triangular", lambda m, x: m.linalg.solve_triangular(x, x[..., :2], upper=True), SQ),
    ("solve_triangular_right_unit", lambda m, x: m.linalg.solve_triangular(x, x[..., :2, :], upper=False,
                                                                           left=False, unitriangular=True), SQ),
    ("cholesky_inverse", lambda m, x: m.cholesky_inverse(m.linalg.cholesky(x)), spd(3, seed=6)[0]),
    ("svd_old", lambda m, x: svd_signs(m, (lambda u, s, v: (u, s, v.mT))(*m.svd(x))), TALL),
    ("qr_old_complete", lambda m, x: (lambda r: r[:3] * m.sign(m.diagonal(r[:3])).unsqueeze(-1))(
        m.qr(x[0], some=False)[1]), TALL),
]


def _no_ints(out):
    outs = out if isinstance(out, tuple) else (out,)
    return [o for o in outs if o.dtype.kind == "f"] if isinstance(outs[0], na.Tensor) else outs


@pytest.mark.parametrize("name,fn,x", CASES, ids=[c[0] for c in CASES])
def test_linalg_parity(name, fn, x):
    # torch's own backward fails on these (an in-place op in its formula; complete QR of a tall matrix):
    # values are compared with torch, gradients with gradcheck
    grad = name not in ("cond_fro", "qr_old_complete")
    # decompositions in float32 differ from torch's LAPACK by more than elementwise ops do
    check(lambda a: fn(na, a), [x], torch_fn=lambda a: fn(torch, a), rtol=1e-7, atol=1e-9, grad=grad)
    check(lambda a: fn(na, a), [x], torch_fn=lambda a: fn(torch, a), dtypes=(np.float32,), rtol=2e-4, atol=2e-5,
          grad=grad)


@pytest.mark.parametrize("name,fn,x", [c for c in CASES if c[0] != "qr_old_complete"],
                         ids=[c[0] for c in CASES if c[0] != "qr_old_complete"])
def test_linalg_gradcheck(name, fn, x):
    if name.startswith(("cholesky", "eigh", "eigvalsh", "logdet")):  # symmetric input: differentiate through a
        n = x.shape[-1]                                               # symmetric construction, as the op reads
        fn_sym = fn                                                   # one triangle only

        def fn(m, a, f=fn_sym):  # noqa: F811
            return f(m, a @ a.mT + n * m.tensor(np.eye(n)))

        x = randn(*x.shape, seed=7)
    outs = fn(na, na.tensor(x))
    k = len(outs) if isinstance(outs, tuple) else 1
    for i in range(k):
        pick = (lambda a, i=i: fn(na, a)[i]) if isinstance(outs, tuple) else (lambda a: fn(na, a))
        if pick(na.tensor(x)).dtype.kind == "f":
            gradcheck(pick, [x])


def test_solve_variants():
    a = SQ
    check(lambda x, b: na.linalg.solve(x, b), [a, randn(2, 3, 2, seed=3)],
          torch_fn=lambda x, b: torch.linalg.solve(x, b))
    check(lambda x, b: na.linalg.solve(x, b), [a, randn(2, 3, seed=3)],
          torch_fn=lambda x, b: torch.linalg.solve(x, b))  # batch of vectors
    check(lambda x, b: na.linalg.solve(x, b), [a, randn(3, 4, seed=3)],
          torch_fn=lambda x, b: torch.linalg.solve(x, b))  # B broadcast over the batch
    check(lambda x, b: na.linalg.solve(x, b, left=False), [a, randn(2, 4, 3, seed=3)],
          torch_fn=lambda x, b: torch.linalg.solve(x, b, left=False))
    check(lambda x, b: na.cholesky_solve(b, na.linalg.cholesky(x)), [spd(2), randn(2, 3, 2, seed=3)],
          torch_fn=lambda x, b: torch.cholesky_solve(b, torch.linalg.cholesky(x)))
    gradcheck(lambda x, b: na.linalg.solve(x, b), [a, randn(3, 2, seed=3)])
    gradcheck(lambda x, b: na.linalg.solve(x, b), [a, randn(2, 3, seed=3)])


def test_singular_and_rank_deficient():
    sing = np.array([[1.0, 2.0], [2.0, 4.0]])
    # at a singular matrix torch's det gradient is 0; the true one is the adjugate's transpose (gradcheck agrees)
    check(lambda x: na.linalg.det(x), [sing], torch_fn=torch.linalg.det, grad=False)
    gradcheck(lambda x: na.linalg.det(x), [sing])
    assert np.allclose(na.linalg.slogdet(na.tensor(SQ - 3 * np.eye(3))).sign.numpy(),
                       torch.linalg.slogdet(torch.tensor(SQ - 3 * np.eye(3))).sign.numpy())
    check(lambda x: na.linalg.matrix_rank(x), [sing], torch_fn=torch.linalg.matrix_rank, grad=False)
    check(lambda x: na.linalg.matrix_rank(x), [TALL], torch_fn=torch.linalg.matrix_rank, grad=False)
    check(lambda x: na.linalg.pinv(x), [sing], torch_fn=torch.linalg.pinv, grad=False)
    r = na.linalg.lstsq(na.tensor(TALL), na.tensor(TALL[..., :2] * 2 + 1))
    t = torch.linalg.lstsq(torch.tensor(TALL), torch.tensor(TALL[..., :2] * 2 + 1), driver="gelsd")
    np.testing.assert_allclose(r.residuals.numpy(), t.residuals.numpy(), rtol=1e-9)
    assert r.rank.tolist() == t.rank.tolist()
    with pytest.raises(NumericalError, match="inv: the input is singular"):
        na.linalg.inv(na.tensor(sing))
    with pytest.raises(NumericalError, match="not positive-definite"):
        na.linalg.cholesky(na.tensor(-np.eye(2)))
    with pytest.raises(ShapeError, match=r"det: expects a square matrix.*\(2, 3\)"):
        na.linalg.det(na.ones(2, 3))
    with pytest.raises(ShapeError, match="solve: A"):
        na.linalg.solve(na.ones(3, 3), na.ones(2, 1))


def test_methods():
    x = na.tensor(SQ[0])
    assert np.allclose(x.det().item(), np.linalg.det(SQ[0]))
    assert np.allclose(x.inverse().numpy(), np.linalg.inv(SQ[0]))
    assert np.allclose(x.pinverse().numpy(), np.linalg.pinv(SQ[0]))
    assert np.allclose(x.matrix_power(2).numpy(), SQ[0] @ SQ[0])
    assert x.slogdet()[0].item() == np.sign(np.linalg.det(SQ[0]))
