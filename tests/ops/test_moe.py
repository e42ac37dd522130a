"""permute_rows (the MoE layer's gather by expert): torch parity, gradcheck, and the error."""

import numpy as np
import pytest

from neural_arch.errors import IndexingError
from neural_arch.ops.moe import permute_rows
from parity import check, gradcheck, randn

ORDER = np.array([3, 0, 4, 1, 2])


def test_permute_rows_matches_torch_indexing():
    check(lambda x: permute_rows(x, ORDER), [randn(5, 3)], torch_fn=lambda x: x[ORDER])


def test_permute_rows_gradcheck():
    assert gradcheck(lambda x: permute_rows(x, ORDER), [randn(5, 2, 3)])


def test_not_a_permutation_is_an_error():
    import neural_arch as na

    with pytest.raises(IndexingError, match="permutation"):
        permute_rows(na.tensor(randn(5, 3)), np.array([0, 0, 1, 2, 3]))
