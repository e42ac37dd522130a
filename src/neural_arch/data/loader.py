"""``DataLoader``: batches from a dataset, prepared ahead in a background thread.

    loader = DataLoader(train_set, batch_size=128, shuffle=True, generator=na.Generator(0))
    for x, y in loader:         # x: (128, ...) Tensor, y: (128,) Tensor
        ...

How a batch is made: the (batch) sampler yields a list of indices; the
dataset's ``get_batch(indices)`` gathers them in one vectorised step if it has
one (and ``collate_fn`` is the default), else ``collate_fn([dataset[i] for i in
indices])``.

Prefetching (``prefetch=2``, the default): a worker *thread* makes the next
batches while the main thread computes on the current one, keeping at most
``prefetch`` ready batches in a bounded queue. NumPy releases the GIL in its
large copies and in BLAS, so the two really overlap. An exception raised while
loading is re-raised in the main thread by the ``next()`` that would have
returned that batch; abandoning an iterator (``break``, ``close()``, garbage
collection) stops and joins its thread. ``prefetch=0`` loads in the calling
thread. NOTE: torch's ``num_workers`` starts processes; we use one thread
instead, so there is no such argument. Data transforms that draw random numbers
should use their own ``na.Generator``: the default one is also drawn on by the
main thread (dropout), and two threads sharing it would make runs irreproducible.

Resuming: ``state_dict()`` records the sampler's generator as it was when the
current epoch began and how many batches of the epoch were consumed;
``load_state_dict`` makes the next iteration replay that epoch's order and
skip the consumed batches (indices only, no data is loaded for them).
"""

from __future__ import annotations

import collections.abc
import queue
import threading

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.device import array_namespace
from neural_arch.backend.random import Generator
from neural_arch.data.dataset import batch_fetcher
from neural_arch.data.sampler import BatchSampler, RandomSampler, SequentialSampler
from neural_arch.errors import ConfigError, DataError, ShapeError, shape_str


# -- collation ----------------------------------------------------------------------------------
def default_collate(batch):
    """Stack a list of samples into a batch, as ``torch.utils.data.default_collate``.

    Tensors, NumPy arrays and NumPy scalars are stacked into a Tensor with a new
    first dimension; Python ints become an int64 Tensor, floats a float64 one
    (as in torch), bools a bool one; strings stay a list; tuples/lists are
    collated position by position (returned as a list, as torch does; named
    tuples keep their type) and dicts key by key.
    """
    if not batch:
        raise DataError("default_collate: got an empty batch")
    elem = batch[0]
    if isinstance(elem, (Tensor, np.ndarray, np.generic)):
        arrays = [b.data if isinstance(b, Tensor) else np.asarray(b) for b in batch]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ShapeError("default_collate: cannot stack samples of different shapes "
                             f"{', '.join(sorted(shape_str(s) for s in shapes))}; pad them to one shape, "
                             "or pass a collate_fn that does")
        xp = np if isinstance(arrays[0], np.ndarray) else array_namespace(arrays[0])
        return Tensor._wrap(xp.stack(arrays))
    if isinstance(elem, bool):
        return Tensor._wrap(np.array(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return Tensor._wrap(np.array(batch, dtype=np.int64))
    if isinstance(elem, float):
        return Tensor._wrap(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(s) != len(elem) for s in batch):
            raise DataError("default_collate: samples in one batch have different lengths "
                            f"({sorted({len(s) for s in batch})}); every sample must have the same structure")
        return [default_collate(list(s)) for s in zip(*batch)]
    raise DataError(f"default_collate: cannot collate samples of type {type(elem).__name__}; return tensors, "
                    "arrays, numbers, strings, or tuples/dicts of those, or pass a collate_fn")


# -- the loader ---------------------------------------------------------------------------------
class DataLoader:
    """Iterate over ``dataset`` in batches; see the module docstring.

    Args:
        dataset: a map-style dataset (``__getitem__`` + ``__len__``).
        batch_size: samples per batch (``None`` with ``batch_sampler``).
        shuffle: visit the samples in a new random order every epoch.
        sampler: an iterable of indices (instead of ``shuffle``).
        batch_sampler: an iterable of index lists (instead of the four above).
        collate_fn: turns a list of samples into a batch (``default_collate``).
        drop_last: drop the last batch if it is smaller than ``batch_size``.
        generator: the ``na.Generator`` that shuffles (seed it for a reproducible order).
        prefetch: batches prepared ahead by the worker thread; 0 disables the thread.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False, sampler=None,
                 batch_sampler=None, collate_fn=None, drop_last: bool = False,
                 generator: Generator | None = None, prefetch: int = 2):
        if batch_sampler is not None:
            if batch_size not in (1, None) or shuffle or sampler is not None or drop_last:
                raise ConfigError("DataLoader: batch_sampler is exclusive with batch_size, shuffle, sampler "
                                  "and drop_last; the batch sampler decides all of them")
            batch_size = None
        elif batch_size is None:
            raise ConfigError("DataLoader: batch_size=None needs a batch_sampler")
        if sampler is not None and shuffle:
            raise ConfigError("DataLoader: sampler is exclusive with shuffle=True; shuffle in the sampler")
        if not isinstance(prefetch, int) or prefetch < 0:
            raise ConfigError(f"DataLoader: prefetch must be an int >= 0, got {prefetch!r}")
        if sampler is None:
            sampler = RandomSampler(dataset, generator) if shuffle else SequentialSampler(dataset)
        if batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.collate_fn = collate_fn or default_collate
        self.prefetch = prefetch
        # get_batch equals default_collate of the samples, so it may only replace the default
        self._get_batch = batch_fetcher(dataset) if self.collate_fn is default_collate else None
        self._epoch_start_state = None  # sampler state when the current epoch began (None: not in an epoch)
        self._batches_done = 0  # batches of the current epoch handed out
        self._skip = 0  # batches to skip at the next iteration (set by load_state_dict)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self) -> _LoaderIterator:
        sampler = self._stateful_sampler()
        self._epoch_start_state = sampler.state_dict() if sampler is not None else None
        skip, self._skip = self._skip, 0
        self._batches_done = skip
        return _LoaderIterator(self, skip)

    @property
    def position(self) -> int:
        """Batches of the current epoch handed out so far (0 between epochs)."""
        return self._batches_done

    def fetch(self, indices):
        """The batch for a list of dataset indices."""
        if self._get_batch is not None:
            return self._get_batch(indices)
        return self.collate_fn([self.dataset[i] for i in indices])

    # -- resuming --------------------------------------------------------------------------------
    def _stateful_sampler(self):
        for s in (self.sampler, getattr(self.batch_sampler, "sampler", None), self.batch_sampler):
            if s is not None and hasattr(s, "state_dict"):
                return s
        return None

    def state_dict(self) -> dict:
        """Where the loader stands: sampler state at the start of this epoch, batches consumed."""
        sampler = self._stateful_sampler()
        if self._epoch_start_state is not None:  # mid-epoch
            return {"sampler": self._epoch_start_state, "batches": self._batches_done}
        return {"sampler": sampler.state_dict() if sampler is not None else None, "batches": 0}

    def load_state_dict(self, state: dict) -> None:
        sampler = self._stateful_sampler()
        if state.get("sampler") is not None:
            if sampler is None:
                raise ConfigError("DataLoader.load_state_dict: the state holds a sampler state but this "
                                  "loader's sampler has none; build the loader as the saved one was (shuffle=...)")
            sampler.load_state_dict(state["sampler"])
        self._skip = int(state.get("batches", 0))
        self._epoch_start_state = None

    def _epoch_finished(self) -> None:
        self._epoch_start_state = None
        self._batches_done = 0


_END = object()  # the worker's "no more batches"


class _Failure:
    """An exception raised in the worker thread, carried to the main thread."""

    def __init__(self, exc: BaseException):
        self.exc = exc


def _work(batches, fetch, q: queue.Queue, stop: threading.Event) -> None:
    """The worker thread: fetch batch after batch into the bounded queue until done or stopped."""
    try:
        for indices in batches:
            if stop.is_set() or not _put(q, stop, fetch(indices)):
                return
        _put(q, stop, _END)
    except BaseException as e:  # noqa: BLE001 - every failure goes to the main thread
        _put(q, stop, _Failure(e))


def _put(q: queue.Queue, stop: threading.Event, item) -> bool:
    """Block until there is room in the queue or we are told to stop; False if stopped."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


class _LoaderIterator:
    """One pass over the loader; owns the worker thread, if any."""

    def __init__(self, loader: DataLoader, skip: int):
        self.loader = loader
        self.batches = iter(loader.batch_sampler)
        for _ in range(skip):  # resuming mid-epoch: replay the order, load nothing
            if next(self.batches, _END) is _END:
                break
        self.done = False
        self.thread = None
        if loader.prefetch > 0:
            self.queue: queue.Queue = queue.Queue(maxsize=loader.prefetch)
            self.stop = threading.Event()
            # NOTE: the thread must not hold a reference to this iterator, or a loop left by
            # `break` would never be garbage collected and its thread never stopped.
            self.thread = threading.Thread(target=_work, args=(self.batches, loader.fetch, self.queue, self.stop),
                                           name="neural-arch-data", daemon=True)
            self.thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        if self.done:
            raise StopIteration
        if self.thread is None:
            try:
                indices = next(self.batches, _END)
                item = _END if indices is _END else self.loader.fetch(indices)
            except BaseException as e:  # noqa: BLE001 - same behaviour as with the thread
                item = _Failure(e)
        else:
            item = self.queue.get()
        if item is _END:
            self.close()
            self.loader._epoch_finished()
            raise StopIteration
        if isinstance(item, _Failure):
            self.close()
            raise item.exc
        self.loader._batches_done += 1
        return item

    def __len__(self) -> int:
        return len(self.loader)

    def close(self) -> None:
        """Stop the worker thread and wait for it; the iterator yields nothing more."""
        self.done = True
        if self.thread is not None:
            self.stop.set()
            while self.thread.is_alive():
                try:  # make room, in case the worker is blocked on a full queue
                    self.queue.get_nowait()
                except queue.Empty:
                    pass
                self.thread.join(timeout=0.05)
            self.thread = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
