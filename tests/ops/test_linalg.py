"""matmul (batched, broadcasting, 1-d operands, ``@``), mm/bmm/dot/outer and einsum vs torch."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import check, gradcheck, randn

import neural_arch as na
from neural_arch.errors import ShapeError

MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4,)),  # 1-d @ 1-d: a 0-d result
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((2, 3, 4), (4, 5)),  # the Linear-layer case
    ((2, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),  # batch dims broadcast
    ((4,), (2, 4, 5)),
    ((2, 3, 4), (4,)),
    ((1, 3, 4), (2, 4, 5)),
    ((0, 4), (4, 3)),  # empty rows
    ((2, 0), (0, 3)),  # empty inner dim: zeros
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul_parity(sa, sb):
    a, b = randn(*sa, seed=1), randn(*sb, seed=2)
    check(lambda x, y: x @ y, [a, b])
    check(lambda x, y: x.matmul(y), [a, b], noncontig=True)


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES[:10])
def test_matmul_gradcheck(sa, sb):
    gradcheck(lambda x, y: x @ y, [randn(*sa, seed=1), randn(*sb, seed=2)])


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=0, max_size=2), st.lists(st.integers(1, 3), min_size=0, max_size=2),
       st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.data())
def test_matmul_broadcast_batches_hypothesis(batch_a, batch_b, m, k, n, data):
    # make the batch dims mutually broadcastable by replacing clashes with 1
    la, lb = len(batch_a), len(batch_b)
    for i in range(1, min(la, lb) + 1):
        if batch_a[-i] != batch_b[-i] and data.draw(st.booleans()):
            batch_a[-i] = 1
        elif batch_a[-i] != batch_b[-i]:
            batch_b[-i] = 1
    check(lambda x, y: x @ y, [randn(*batch_a, m, k, seed=1), randn(*batch_b, k, n, seed=2)])


def test_mm_bmm_dot_outer():
    check(lambda x, y: x.mm(y), [randn(3, 4, seed=1), randn(4, 2, seed=2)])
    check(lambda x, y: x.bmm(y), [randn(2, 3, 4, seed=1), randn(2, 4, 2, seed=2)])
    check(lambda x, y: x.dot(y), [randn(4, seed=1), randn(4, seed=2)])
    check(lambda x, y: na.outer(x, y), [randn(4, seed=1), randn(3, seed=2)], torch_fn=torch.outer)
    check(lambda x: 2.0 * x @ np.ones((4, 2), dtype=np.float32), [randn(3, 4, seed=1)],
          torch_fn=lambda x: 2.0 * x @ torch.ones(4, 2, dtype=x.dtype))  # ndarray operand: reflected op


EINSUM = [
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bij,bjk", [(2, 3, 4), (2, 4, 5)]),  # implicit output
    ("...ij,...jk", [(2, 3, 4), (2, 4, 5)]),  # implicit with ellipsis
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),  # ellipsis dims broadcast
    ("ij->", [(3, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ba", [(3, 4)]),  # implicit: alphabetical order transposes
    ("ii->i", [(3, 3)]),  # diagonal
    ("ii", [(3, 3)]),  # trace
    ("bii->bi", [(2, 3, 3)]),
    ("iij,jk->ik", [(3, 3, 4), (4, 2)]),
    ("i,i", [(5,), (5,)]),
    ("i,j->ij", [(5,), (3,)]),
    ("...i,i->...", [(2, 4, 5), (5,)]),
    ("bij->j", [(2, 3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("...j,j...->...", [(2, 3, 4), (4, 2, 3)]),
    ("b...,b->...", [(2, 3, 4), (2,)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("i,->i", [(3,), ()]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM, ids=[e for e, _ in EINSUM])
def test_einsum_parity_and_gradcheck(eq, shapes):
    ins = [randn(*s, seed=i + 1) for i, s in enumerate(shapes)]
    check(lambda *xs: na.einsum(eq, *xs), ins, torch_fn=lambda *xs: torch.einsum(eq, *xs))
    gradcheck(lambda *xs: na.einsum(eq, *xs), ins)


def test_einsum_accepts_a_list_and_promotes_dtypes():
    a = na.ones(2, 3)
    b = na.ones(3, dtype="float64")
    out = na.einsum("ij,j->i", [a, b])
    assert out.dtype == np.float64 and out.tolist() == [3.0, 3.0]


def test_linalg_errors():
    with pytest.raises(ShapeError, match=r"matmul: shapes \(2, 3\) and \(2, 3\) cannot be multiplied \(3 != 2"):
        na.ones(2, 3) @ na.ones(2, 3)
    with pytest.raises(ShapeError, match="at least 1 dim"):
        na.tensor(1.0) @ na.ones(2)
    with pytest.raises(ShapeError, match="Matmul|MatMul|broadcast"):
        na.ones(2, 3, 4) @ na.ones(3, 4, 5)  # batch dims 2 and 3 do not broadcast
    with pytest.raises(ShapeError, match="mm: expects two matrices"):
        na.ones(2, 3, 4).mm(na.ones(4, 2))
    with pytest.raises(ShapeError, match="bmm"):
        na.ones(2, 3).bmm(na.ones(3, 2))
    with pytest.raises(ShapeError, match="dot"):
        na.ones(2, 3).dot(na.ones(3))
    with pytest.raises(ShapeError, match="einsum: 'ij,jk->ik' names 2 operands but got 1"):
        na.einsum("ij,jk->ik", na.ones(2, 2))
    with pytest.raises(ShapeError, match="einsum: subscripts 'ijk' do not match an operand of shape"):
        na.einsum("ijk->i", na.ones(2, 2))
