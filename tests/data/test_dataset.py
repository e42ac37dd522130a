"""Dataset, TensorDataset, Subset, ConcatDataset, random_split."""

import numpy as np
import pytest

import neural_arch as na
from neural_arch.data import ConcatDataset, Subset, TensorDataset, random_split
from neural_arch.errors import DataError, IndexingError, ShapeError


def test_tensor_dataset_items_and_batches():
    x, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    ds = TensorDataset(na.tensor(x), y)
    assert len(ds) == 6
    a, b = ds[-1]
    np.testing.assert_array_equal(a.numpy(), x[5])
    assert b.item() == 5
    bx, by = ds.get_batch([4, 0, 4])
    np.testing.assert_array_equal(bx.numpy(), x[[4, 0, 4]])
    np.testing.assert_array_equal(by.numpy(), [4, 0, 4])


def test_tensor_dataset_errors():
    with pytest.raises(ShapeError, match=r"same first dimension, got \(3,\), \(4,\)"):
        TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(IndexingError, match="index 6 is out of range for a dataset of 6"):
        TensorDataset(np.zeros(6))[6]


def test_subset_and_concat():
    ds = TensorDataset(np.arange(10))
    sub = Subset(ds, [7, 2])
    assert len(sub) == 2 and sub[0][0].item() == 7 and sub[1][0].item() == 2
    cat = ConcatDataset([sub, ds])
    assert len(cat) == 12
    assert [cat[i][0].item() for i in (0, 1, 2, 11)] == [7, 2, 0, 9]


def test_random_split_is_a_seeded_partition():
    ds = TensorDataset(np.arange(100))
    parts = random_split(ds, [70, 20, 10], generator=na.Generator(3))
    seen = [i for p in parts for i in p.indices]
    assert [len(p) for p in parts] == [70, 20, 10]
    assert sorted(seen) == list(range(100)) and seen != list(range(100))
    again = random_split(ds, [70, 20, 10], generator=na.Generator(3))
    assert [p.indices for p in parts] == [p.indices for p in again]
    other = random_split(ds, [70, 20, 10], generator=na.Generator(4))
    assert [p.indices for p in parts] != [p.indices for p in other]


def test_random_split_fractions_and_errors():
    ds = TensorDataset(np.arange(11))
    assert [len(p) for p in random_split(ds, [0.5, 0.5], generator=na.Generator(0))] == [6, 5]
    with pytest.raises(DataError, match="summing to the dataset's length 11"):
        random_split(ds, [5, 5])
