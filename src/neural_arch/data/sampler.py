"""Samplers: the order in which a DataLoader visits a dataset's indices.

``RandomSampler`` owns an ``na.Generator``; its state is saved in training
checkpoints (through ``DataLoader.state_dict``), so a resumed run shuffles
exactly as the uninterrupted one would have.
"""

from __future__ import annotations

from neural_arch.backend import comm
from neural_arch.backend.random import Generator, default_generator
from neural_arch.errors import ConfigError


class Sampler:
    """Base class: ``__iter__`` yields dataset indices, ``__len__`` says how many."""

    def __iter__(self):
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A fresh random permutation of the indices at every iteration (every epoch).

    NOTE: without a ``generator`` we create one seeded from the default generator
    once, here (torch draws a new seed every epoch); either way ``na.manual_seed``
    makes the order reproducible, and ours has one state to save and restore.
    """

    def __init__(self, data_source, generator: Generator | None = None):
        self.data_source = data_source
        if generator is None:
            generator = Generator(int(default_generator.np.integers(2**62)))
        self.generator = generator

    def __iter__(self):
        return iter(self.generator.np.permutation(len(self.data_source)).tolist())

    def __len__(self) -> int:
        return len(self.data_source)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


class BatchSampler(Sampler):
    """Group the indices of ``sampler`` into lists of ``batch_size`` (the last one shorter unless ``drop_last``)."""

    def __init__(self, sampler, batch_size: int, drop_last: bool = False):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ConfigError(f"BatchSampler: batch_size must be a positive int, got {batch_size!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class DistributedSampler(Sampler):
    """Each rank's share of a dataset for data-parallel training, with ``torch.utils.data.DistributedSampler``'s
    semantics.

    Every rank draws the same permutation (seeded by ``seed + epoch``; call :meth:`set_epoch` at the start of
    each epoch or every epoch repeats the first one's order), then takes every ``num_replicas``-th index from
    position ``rank``. So that all ranks take the same number of steps, the list is padded by repeating its
    start until it divides evenly (``drop_last=False``) or cut to the largest multiple of ``num_replicas``
    (``drop_last=True``).

    ``num_replicas`` and ``rank`` default to the running process group's (1 and 0 without one).

    NOTE: the permutation comes from our generator (PCG64), not torch's, so shuffled orders differ from torch's;
    without shuffling the index lists are torch's exactly.
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            default = comm.current()
            num_replicas = (default.size if default is not None else 1) if num_replicas is None else num_replicas
            rank = (default.rank if default is not None else 0) if rank is None else rank
        if not isinstance(num_replicas, int) or num_replicas < 1:
            raise ConfigError(f"DistributedSampler: num_replicas must be a positive int, got {num_replicas!r}")
        if not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ConfigError(f"DistributedSampler: rank must be in [0, {num_replicas - 1}], got {rank!r}")
        self.dataset = dataset
        self.num_replicas, self.rank = num_replicas, rank
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = -(-(n - num_replicas) // num_replicas)  # ceil((n - R) / R)
        else:
            self.num_samples = -(-n // num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration shuffle with ``seed + epoch`` (the same on every rank)."""
        self.epoch = int(epoch)

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = Generator(self.seed + self.epoch).np.permutation(n).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            pad = self.total_size - n
            if pad <= n:
                indices += indices[:pad]
            else:
                indices += (indices * -(-pad // n))[:pad]
        else:
            indices = indices[: self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.seed = int(state["epoch"]), int(state["seed"])
