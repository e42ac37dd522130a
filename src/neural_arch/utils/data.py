"""``neural_arch.utils.data``: ``torch.utils.data``'s names at torch's path.

The map-style datasets, the samplers and the loader live in ``neural_arch.data``; this module
re-exports them and adds what a PyTorch script also reaches for: ``IterableDataset`` (and
``ChainDataset``), ``StackDataset``, ``SubsetRandomSampler``, ``WeightedRandomSampler``,
``get_worker_info``, ``default_convert``, and a ``DataLoader`` that takes torch's full argument
list and iterable datasets.

NOTE on workers: torch's ``num_workers`` starts processes. Ours prepares batches ahead in one
background thread (see ``neural_arch.data.loader``) whatever ``num_workers`` says, so
``get_worker_info()`` is always None (the main process, as in torch with ``num_workers=0``)
and ``worker_init_fn`` is never called. ``pin_memory``, ``timeout``, ``persistent_workers``,
``multiprocessing_context``, ``pin_memory_device`` and ``in_order`` have no effect on a CPU
loader and are accepted for compatibility.
"""

from __future__ import annotations

import collections.abc
import itertools

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.random import Generator, get_generator
from neural_arch.data import loader as _loader
from neural_arch.data import sampler as _sampler
from neural_arch.data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from neural_arch.data.loader import default_collate
from neural_arch.data.sampler import BatchSampler, DistributedSampler, Sampler, SequentialSampler
from neural_arch.errors import ConfigError, DataError

__all__ = [
    "BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset", "DistributedSampler",
    "IterableDataset", "RandomSampler", "Sampler", "SequentialSampler", "StackDataset", "Subset",
    "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "default_collate", "default_convert",
    "get_worker_info", "random_split",
]


class IterableDataset(Dataset):
    """A dataset that is a stream: override ``__iter__`` (no ``__getitem__``, maybe no ``__len__``).
    A ``DataLoader`` batches it in the order it yields; ``a + b`` chains two streams."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __len__(self) -> int:
        # TypeError, what len() raises for an object without __len__ (torch's IterableDataset has none):
        # list(stream) and other length hints then fall back to iterating instead of failing
        raise TypeError(f"{type(self).__name__} has no len(): define __len__ if the stream knows its length")

    def __add__(self, other):
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """Iterable datasets one after another."""

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise DataError(f"ChainDataset only chains IterableDatasets, got {type(d).__name__}")
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


class StackDataset(Dataset):
    """Samples that are tuples (``StackDataset(a, b)``) or dicts (``StackDataset(x=a, y=b)``) of the
    samples of several datasets of one length at the same index."""

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise DataError("StackDataset: give datasets as positional arguments (tuple samples) or as keyword "
                            "arguments (dict samples), not both")
        self.datasets = args or kwargs
        sets = list(args) or list(kwargs.values())
        if not sets:
            raise DataError("StackDataset: give at least one dataset")
        self._length = len(sets[0])
        if any(len(d) != self._length for d in sets):
            raise DataError(f"StackDataset: the datasets have different lengths {[len(d) for d in sets]}")

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self) -> int:
        return self._length


class RandomSampler(_sampler.RandomSampler):
    """``neural_arch.data.RandomSampler`` with torch's ``replacement`` and ``num_samples``: draw
    ``num_samples`` indices (default: the dataset's length) with replacement, or as consecutive
    permutations without it (so more samples than the dataset holds repeat it, as in torch)."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator: Generator | None = None):
        super().__init__(data_source, generator)
        if not isinstance(replacement, bool):
            raise ConfigError(f"RandomSampler: replacement must be a bool, got {replacement!r}")
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise ConfigError(f"RandomSampler: num_samples must be a positive int, got {num_samples!r}")
        self.replacement, self._num_samples = replacement, num_samples

    @property
    def num_samples(self) -> int:
        """How many indices one iteration yields."""
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n, rng = len(self.data_source), self.generator.np
        if self.replacement:
            return iter(rng.integers(0, n, size=self.num_samples).tolist())
        if self._num_samples is None:
            return super().__iter__()
        rounds = -(-self.num_samples // n)
        return iter(np.concatenate([rng.permutation(n) for _ in range(rounds)])[: self.num_samples].tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a new random order every iteration."""

    def __init__(self, indices, generator: Generator | None = None):
        self.indices = list(indices)
        self.generator = generator

    def __iter__(self):
        for i in get_generator(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices in ``[0, len(weights))`` drawn with probability proportional to
    ``weights`` (with or without replacement)."""

    def __init__(self, weights, num_samples: int, replacement: bool = True, generator: Generator | None = None):
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ConfigError(f"WeightedRandomSampler: num_samples must be a positive int, got {num_samples!r}")
        if not isinstance(replacement, bool):
            raise ConfigError(f"WeightedRandomSampler: replacement must be a bool, got {replacement!r}")
        w = np.asarray(weights.data if isinstance(weights, Tensor) else weights, dtype=np.float64)
        if w.ndim != 1 or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise ConfigError("WeightedRandomSampler: weights must be a 1-D sequence of finite non-negative "
                              "numbers with a positive sum")
        if not replacement and num_samples > np.count_nonzero(w):
            raise ConfigError(f"WeightedRandomSampler: cannot draw {num_samples} samples without replacement "
                              f"from {np.count_nonzero(w)} with non-zero weight")
        self.weights = w
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        rng = get_generator(self.generator)
        return iter(rng.choice(len(self.weights), self.num_samples, self.replacement,
                               p=self.weights / self.weights.sum()).tolist())

    def __len__(self) -> int:
        return self.num_samples


def get_worker_info():
    """Always None: batches are loaded in this process (see the module note on workers)."""
    return None


def default_convert(data):
    """What torch's loader does to each sample when it does not batch (``batch_size=None``): NumPy
    arrays become Tensors, containers are converted element by element, anything else is kept."""
    if isinstance(data, np.ndarray) and data.dtype.kind not in "OSUV":
        return Tensor._wrap(data)
    if isinstance(data, np.generic):
        return Tensor._wrap(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return [default_convert(d) for d in data]
    return data


class _IterableBatches:
    """A batch sampler's stand-in for an IterableDataset: lists of samples read from the stream."""

    def __init__(self, dataset, batch_size, drop_last):
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last

    def __iter__(self):
        stream = iter(self.dataset)
        while True:
            batch = list(itertools.islice(stream, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self) -> int:
        n = len(self.dataset)  # a TypeError for a stream without a length, as in torch
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class _Unbatched:
    """The batch sampler's stand-in for ``batch_size=None``: one index (or stream sample) at a time."""

    def __init__(self, source):
        self.source = source

    def __iter__(self):
        return iter(self.source)

    def __len__(self) -> int:
        return len(self.source)


class DataLoader(_loader.DataLoader):
    """``neural_arch.data.DataLoader`` with torch's signature, plus iterable datasets and
    ``batch_size=None`` (no batching: each sample goes through ``default_convert``).
    ``prefetch`` (ours) is how many batches the background thread prepares ahead."""

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None, multiprocessing_context=None,
                 generator: Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "", in_order: bool = True,
                 prefetch: int = 2):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ConfigError(f"DataLoader: num_workers must be a non-negative int, got {num_workers!r}")
        self.num_workers, self.pin_memory, self.timeout = num_workers, pin_memory, timeout
        self.worker_init_fn, self.prefetch_factor = worker_init_fn, prefetch_factor
        self.persistent_workers, self.multiprocessing_context = persistent_workers, multiprocessing_context
        self.generator = generator
        shuffle = bool(shuffle)
        self._mode = "map"
        if isinstance(dataset, IterableDataset):
            if shuffle or sampler is not None or batch_sampler is not None:
                raise ConfigError("DataLoader with an IterableDataset: shuffle, sampler and batch_sampler do not "
                                  "apply (the dataset yields its own order); shuffle inside the dataset")
            self._mode = "stream"
            batches = _Unbatched(dataset) if batch_size is None else _IterableBatches(dataset, batch_size, drop_last)
            collate = collate_fn or (default_convert if batch_size is None else default_collate)
            super().__init__(dataset, batch_sampler=batches, collate_fn=collate, prefetch=prefetch)
        elif batch_size is None and batch_sampler is None:
            self._mode = "unbatched"
            if sampler is None:
                sampler = RandomSampler(dataset, generator) if shuffle else SequentialSampler(dataset)
            super().__init__(dataset, batch_sampler=_Unbatched(sampler), collate_fn=collate_fn or default_convert,
                             prefetch=prefetch)
            self.sampler = sampler
        else:
            super().__init__(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler,
                             batch_sampler=batch_sampler, collate_fn=collate_fn, drop_last=drop_last,
                             generator=generator, prefetch=prefetch)
        if self._mode != "map":
            self.batch_size, self.drop_last = batch_size, drop_last

    def fetch(self, indices):
        """The batch for a list of dataset indices (a stream: for the samples read; unbatched: one index)."""
        if self._mode == "stream":
            return self.collate_fn(indices)
        if self._mode == "unbatched":
            return self.collate_fn(self.dataset[indices])
        return super().fetch(indices)
