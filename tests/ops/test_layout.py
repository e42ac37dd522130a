"""rot90, fliplr/flipud, movedim, select, splits, atleast_*, stacks, meshgrid, cartesian_prod, combinations,
tril/triu_indices, logspace vs torch."""

import numpy as np
import pytest
import torch
from parity import check, gradcheck, randn

import neural_arch as na

X = randn(2, 3, 4, seed=1)
CASES = [
    ("rot90", lambda m, x: m.rot90(x), [X]),
    ("rot90_k2", lambda m, x: m.rot90(x, 2, (1, 2)), [X]),
    ("rot90_k3", lambda m, x: x.rot90(-1, [0, 2]), [X]),
    ("rot90_k0", lambda m, x: m.rot90(x, 4), [X]),
    ("fliplr", lambda m, x: m.fliplr(x), [X]),
    ("flipud", lambda m, x: x.flipud(), [X]),
    ("movedim", lambda m, x: m.movedim(x, 0, -1), [X]),
    ("movedim_many", lambda m, x: x.movedim((0, 1), (2, 0)), [X]),
    ("moveaxis", lambda m, x: m.moveaxis(x, 2, 0), [X]),
    ("select", lambda m, x: m.select(x, 1, -1), [X]),
    ("tensor_split", lambda m, x: m.tensor_split(x, 3, dim=2), [X]),
    ("tensor_split_idx", lambda m, x: x.tensor_split([1, 3], 2), [X]),
    ("hsplit", lambda m, x: m.hsplit(x, 3), [X]),
    ("vsplit", lambda m, x: m.vsplit(x, [1]), [X]),
    ("dsplit", lambda m, x: m.dsplit(x, 2), [X]),
    ("atleast_3d", lambda m, x, y: m.atleast_3d(x, y), [randn(3), randn(2, 3)]),
    ("atleast_2d", lambda m, x: m.atleast_2d(x), [randn(3)]),
    ("atleast_1d", lambda m, x: m.atleast_1d(x), [np.array(1.5)]),
    ("hstack", lambda m, x, y: m.hstack([x, y]), [randn(2, 3), randn(2, 1)]),
    ("vstack", lambda m, x, y: m.vstack([x, y]), [randn(3), randn(2, 3)]),
    ("row_stack", lambda m, x, y: m.row_stack((x, y)), [randn(3), randn(3)]),
    ("dstack", lambda m, x, y: m.dstack([x, y]), [randn(2, 3), randn(2, 3)]),
    ("column_stack", lambda m, x, y: m.column_stack([x, y]), [randn(3), randn(3, 2)]),
    ("meshgrid_ij", lambda m, x, y: m.meshgrid(x, y, indexing="ij"), [randn(3), randn(2)]),
    ("meshgrid_xy", lambda m, x, y, z: m.meshgrid(x, y, z, indexing="xy"), [randn(3), randn(2), randn(4)]),
    ("cartesian_prod", lambda m, x, y: m.cartesian_prod(x, y), [randn(3), randn(2)]),
    ("combinations", lambda m, x: m.combinations(x, 2), [randn(4)]),
    ("combinations_repl", lambda m, x: m.combinations(x, 3, with_replacement=True), [randn(3)]),
]


@pytest.mark.parametrize("name,fn,ins", CASES, ids=[c[0] for c in CASES])
def test_layout(name, fn, ins):
    check(lambda *xs: fn(na, *xs), ins, torch_fn=lambda *xs: fn(torch, *xs))
    first = (lambda *xs: fn(na, *xs)[0]) if isinstance(fn(na, *[na.tensor(i) for i in ins]), tuple) else (
        lambda *xs: fn(na, *xs))
    gradcheck(first, ins)


def test_factories():
    for args in ((3, 3), (4, 3, 1), (3, 5, -1)):
        assert na.tril_indices(*args).tolist() == torch.tril_indices(*args).tolist()
        assert na.triu_indices(*args).tolist() == torch.triu_indices(*args).tolist()
    np.testing.assert_allclose(na.logspace(-1, 2, 5).numpy(), torch.logspace(-1, 2, 5).numpy(), rtol=1e-6)
    np.testing.assert_allclose(na.logspace(0, 3, 4, base=2, dtype="float64").numpy(),
                               torch.logspace(0, 3, 4, base=2, dtype=torch.float64).numpy())
    assert na.logspace(0, 1, 3).dtype == np.float32
