"""Datasets: anything with ``__getitem__(i)`` and ``__len__``, as in ``torch.utils.data``.

``TensorDataset`` wraps arrays that share a first dimension, ``Subset`` picks
indices out of another dataset, ``random_split`` cuts one into disjoint
random parts with a seeded generator.
"""

from __future__ import annotations

import math

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.random import Generator, get_generator
from neural_arch.errors import DataError, IndexingError, ShapeError, shape_str


class Dataset:
    """Base class of map-style datasets: override ``__getitem__`` and ``__len__``.

    A dataset may also define ``get_batch(indices)`` returning the collated
    batch for those indices in one vectorised step; ``DataLoader`` then uses it
    instead of ``default_collate([ds[i] for i in indices])`` (which it must equal).
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


def _check_index(index, n: int, who: str) -> int:
    index = int(index)
    if not -n <= index < n:
        raise IndexingError(f"{who}: index {index} is out of range for a dataset of {n} samples")
    return index % n


class TensorDataset(Dataset):
    """Samples are slices ``(t[i] for t in tensors)`` of tensors (or arrays) with the same length."""

    def __init__(self, *tensors):
        if not tensors:
            raise DataError("TensorDataset: give at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor(t) for t in tensors)
        n = len(self.tensors[0].data)
        for t in self.tensors:
            if t.data.ndim == 0 or len(t.data) != n:
                shapes = ", ".join(shape_str(x.shape) for x in self.tensors)
                raise ShapeError(f"TensorDataset: all tensors must have the same first dimension, got {shapes}")

    def __getitem__(self, index):
        index = _check_index(index, len(self), "TensorDataset")
        return tuple(Tensor._wrap(t.data[index]) for t in self.tensors)

    def get_batch(self, indices):
        """One fancy-indexing gather per tensor: the same as stacking ``self[i]`` for each index."""
        idx = np.asarray(indices, dtype=np.int64)
        return tuple(Tensor._wrap(t.data[idx]) for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0].data)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]

    def __getitem__(self, index):
        if isinstance(index, (list, tuple)):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[_check_index(index, len(self), "Subset")]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Datasets one after another."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1] if self.cumulative_sizes else 0

    def __getitem__(self, index):
        index = _check_index(index, len(self), "ConcatDataset")
        which = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def batch_fetcher(dataset):
    """``dataset.get_batch`` if it (or the dataset under a ``Subset``) has one, else None."""
    if isinstance(dataset, Subset):
        inner = batch_fetcher(dataset.dataset)
        if inner is None:
            return None
        indices = np.asarray(dataset.indices, dtype=np.int64)
        return lambda idx: inner(indices[np.asarray(idx, dtype=np.int64)])
    return getattr(dataset, "get_batch", None)


def random_split(dataset, lengths, generator: Generator | None = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths.

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1
    (remainders go one by one to the first parts, as torch does). Pass a seeded
    ``na.Generator`` for a split that is the same on every run.
    """
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(0 <= f <= 1 for f in lengths) and math.isclose(sum(lengths), 1) and sum(lengths) != n:
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(int(x) != x or x < 0 for x in lengths) or sum(lengths) != n:
        raise DataError(f"random_split: lengths {lengths} must be non-negative counts summing to the dataset's "
                        f"length {n}, or fractions summing to 1")
    perm = get_generator(generator).permutation(n)
    out, start = [], 0
    for length in lengths:
        out.append(Subset(dataset, perm[start:start + int(length)].tolist()))
        start += int(length)
    return out
