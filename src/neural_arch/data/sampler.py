"""Samplers: the order in which a DataLoader visits a dataset's indices.

``RandomSampler`` owns an ``na.Generator``; its state is saved in training
checkpoints (through ``DataLoader.state_dict``), so a resumed run shuffles
exactly as the uninterrupted one would have.
"""

from __future__ import annotations

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
