"""F.grouped_mm (ops/grouped_mm.py) against torch: its own CPU kernel in float32 (torch has no float64 one),
and in float64 the composition it stands for (one product per group)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from parity import check, gradcheck, randn

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch.errors import DTypeError, ShapeError

A2, B3 = randn(6, 8, seed=1), randn(2, 8, 4, seed=2)  # torch's kernel wants rows of 16 bytes: K, N multiples of 4
A3 = randn(2, 3, 8, seed=3)
OFFS = np.array([2, 6], dtype=np.int32)


def per_group(a, b, offs):
    """The composition grouped_mm computes: group g's rows of a times b[g]."""
    starts = [0, *offs[:-1]]
    return torch.cat([a[s:e] @ b[g] for g, (s, e) in enumerate(zip(starts, offs))])


def test_rows_by_group_against_torchs_kernel():
    check(lambda a, b: F.grouped_mm(a, b, offs=OFFS), [A2, B3],
          torch_fn=lambda a, b: TF.grouped_mm(a, b, offs=torch.tensor(OFFS)), dtypes=(np.float32,))


def test_batched_groups_against_torchs_kernel():
    check(lambda a, b: F.grouped_mm(a, b), [A3, B3], torch_fn=lambda a, b: TF.grouped_mm(a, b), dtypes=(np.float32,))


@pytest.mark.parametrize("offs", [[2, 6], [0, 6], [3, 3], [1, 4]], ids=["split", "empty_first", "empty_last",
                                                                        "rows_past_the_end"])
def test_against_the_composition_in_both_dtypes(offs):
    offs = np.array(offs)

    def reference(a, b):
        out = per_group(a, b, offs)
        return torch.cat([out, torch.zeros(a.shape[0] - out.shape[0], b.shape[2], dtype=a.dtype)])  # rows past: 0

    check(lambda a, b: F.grouped_mm(a, b, offs=na.tensor(offs)), [A2, B3], torch_fn=reference)
    check(lambda a, b: F.grouped_mm(a, b), [A3, B3], torch_fn=lambda a, b: a @ b)


def test_gradcheck():
    assert gradcheck(lambda a, b: F.grouped_mm(a, b, offs=OFFS), [A2, B3])
    assert gradcheck(lambda a, b: F.grouped_mm(a, b), [A3, B3])


def test_layouts_not_implemented_say_so():
    a, b = na.tensor(A2), na.tensor(B3)
    with pytest.raises(ShapeError, match="layouts implemented"):
        F.grouped_mm(a, na.tensor(randn(8, 4)), offs=OFFS)
    with pytest.raises(ShapeError, match="increasing offs"):
        F.grouped_mm(a, b, offs=np.array([4, 2]))
    with pytest.raises(ShapeError, match="increasing offs"):
        F.grouped_mm(a, b, offs=np.array([2, 7]))
    with pytest.raises(ShapeError, match="bias"):
        F.grouped_mm(a, b, offs=OFFS, bias=na.zeros(2, 4))
    with pytest.raises(DTypeError, match="out_dtype"):
        F.grouped_mm(a, b, offs=OFFS, out_dtype=na.bfloat16)
