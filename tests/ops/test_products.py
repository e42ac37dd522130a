"""diagonal, diag, diag_embed, diagflat, trace, add* products, kron, inner, tensordot, cross, cdist,
dist, block_diag, vander vs torch and gradcheck."""

import pytest
import torch
from parity import check, gradcheck, randn

import neural_arch as na
from neural_arch.errors import ShapeError

A, B = randn(3, 4, seed=1), randn(4, 2, seed=2)
CASES = [
    ("diagonal", lambda m, x: m.diagonal(x), [randn(3, 4, seed=1)]),
    ("diagonal_offset_dims", lambda m, x: m.diagonal(x, -1, 2, 0), [randn(3, 2, 4, seed=1)]),
    ("diagonal_method", lambda m, x: x.diagonal(offset=2), [randn(3, 4, seed=1)]),
    ("diag_embed", lambda m, x: m.diag_embed(x), [randn(2, 3, seed=1)]),
    ("diag_embed_offset", lambda m, x: m.diag_embed(x, 1, 0, 2), [randn(2, 3, seed=1)]),
    ("diag_1d", lambda m, x: m.diag(x, -1), [randn(3, seed=1)]),
    ("diag_2d", lambda m, x: x.diag(1), [randn(3, 4, seed=1)]),
    ("diagflat", lambda m, x: m.diagflat(x, 1), [randn(2, 2, seed=1)]),
    ("trace", lambda m, x: m.trace(x), [randn(3, 4, seed=1)]),
    ("addmm", lambda m, i, a, b: m.addmm(i, a, b, beta=0.5, alpha=2.0), [randn(2, seed=3), A, B]),
    ("addmm_method", lambda m, i, a, b: i.addmm(a, b), [randn(3, 2, seed=3), A, B]),
    ("addbmm", lambda m, i, a, b: m.addbmm(i, a, b, alpha=0.3),
     [randn(3, 2, seed=3), randn(2, 3, 4), randn(2, 4, 2)]),
    ("baddbmm", lambda m, i, a, b: m.baddbmm(i, a, b, beta=2), [randn(1, 3, 2, seed=3), randn(2, 3, 4), randn(2, 4, 2)]),
    ("addmv", lambda m, i, a, b: m.addmv(i, a, b), [randn(3, seed=3), A, randn(4, seed=4)]),
    ("addr", lambda m, i, a, b: m.addr(i, a, b, beta=-1), [randn(3, 4, seed=3), randn(3), randn(4, seed=4)]),
    ("kron", lambda m, a, b: m.kron(a, b), [randn(2, 3, seed=1), randn(3, 2, seed=2)]),
    ("kron_mixed_dims", lambda m, a, b: m.kron(a, b), [randn(2, seed=1), randn(2, 3, 2, seed=2)]),
    ("inner", lambda m, a, b: m.inner(a, b), [randn(2, 3, seed=1), randn(4, 3, seed=2)]),
    ("vdot", lambda m, a, b: m.vdot(a, b), [randn(3, seed=1), randn(3, seed=2)]),
    ("tensordot", lambda m, a, b: m.tensordot(a, b, dims=1), [randn(2, 3, seed=1), randn(3, 4, seed=2)]),
    ("tensordot_pairs", lambda m, a, b: m.tensordot(a, b, dims=([0, 2], [1, 0])),
     [randn(2, 3, 4, seed=1), randn(4, 2, 5, seed=2)]),
    ("cross", lambda m, a, b: m.cross(a, b, dim=0), [randn(3, 4, seed=1), randn(3, 4, seed=2)]),
    ("cross_broadcast", lambda m, a, b: m.linalg.cross(a, b), [randn(2, 3, seed=1), randn(1, 3, seed=2)]),
    ("cdist", lambda m, a, b: m.cdist(a, b), [randn(2, 3, 4, seed=1), randn(2, 5, 4, seed=2)]),
    ("cdist_p1", lambda m, a, b: m.cdist(a, b, p=1), [randn(3, 4, seed=1), randn(5, 4, seed=2)]),
    ("cdist_p3", lambda m, a, b: m.cdist(a, b, p=3), [randn(3, 4, seed=1), randn(5, 4, seed=2)]),
    ("dist", lambda m, a, b: m.dist(a, b, 3), [randn(3, 4, seed=1), randn(4, seed=2)]),
    ("block_diag", lambda m, a, b, c: m.block_diag(a, b, c), [randn(2, 3, seed=1), randn(3, seed=2), randn(2, 2)]),
    ("vander", lambda m, a: m.vander(a, 4), [randn(3, seed=1)]),
    ("vander_increasing", lambda m, a: m.vander(a, increasing=True), [randn(3, seed=1)]),
    ("chain_matmul", lambda m, a, b: m.chain_matmul(a, b, b.T), [A, B]),
]


@pytest.mark.parametrize("name,fn,ins", CASES, ids=[c[0] for c in CASES])
def test_products(name, fn, ins):
    # torch's own vander backward fails (an in-place op in its formula): compare values only there
    check(lambda *xs: fn(na, *xs), ins, torch_fn=lambda *xs: fn(torch, *xs), grad=not name.startswith("vander"))
    gradcheck(lambda *xs: fn(na, *xs), ins)


def test_errors():
    with pytest.raises(ShapeError, match="diag: expects a 1-d or 2-d"):
        na.diag(na.ones(2, 2, 2))
    with pytest.raises(ShapeError, match="addmm: mat1 must be 2-d"):
        na.addmm(na.ones(2), na.ones(2), na.ones(2, 2))
    with pytest.raises(ShapeError, match="cross: dim 1 must have size 3"):
        na.cross(na.ones(3, 4), na.ones(3, 4), dim=1)
    with pytest.raises(ShapeError, match="cdist"):
        na.cdist(na.ones(3, 4), na.ones(3, 5))
