"""DataLoader: batching, shuffling, collation, the prefetch thread, resuming mid-epoch."""

import collections
import threading
import time

import numpy as np
import pytest

import neural_arch as na
from neural_arch.data import BatchSampler, DataLoader, Dataset, SequentialSampler, TensorDataset, default_collate
from neural_arch.errors import ConfigError, DataError, ShapeError


class Squares(Dataset):
    """A dataset whose samples are a dict, a tuple and plain numbers (no get_batch)."""

    def __init__(self, n, fail_at=None, delay=0.0):
        self.n, self.fail_at, self.delay = n, fail_at, delay

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise DataError(f"sample {i} is broken")
        time.sleep(self.delay)
        return {"x": np.full(3, i, np.float32), "pair": (i, float(i) / 2), "sq": i * i}


def flatten(loader):
    return [int(v) for batch in loader for v in batch[-1].numpy()]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_sequential_batches_and_drop_last(prefetch):
    ds = TensorDataset(np.arange(10), np.arange(10) * 2)
    loader = DataLoader(ds, batch_size=4, prefetch=prefetch)
    assert len(loader) == 3
    assert [b[0].numpy().tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dropped = DataLoader(ds, batch_size=4, drop_last=True, prefetch=prefetch)
    assert len(dropped) == 2 and [len(b[0]) for b in dropped] == [4, 4]


def test_default_collate_structures():
    batch = default_collate([Squares(5)[i] for i in range(3)])
    assert set(batch) == {"x", "pair", "sq"}
    assert batch["x"].shape == (3, 3) and batch["x"].dtype == np.float32
    idx, half = batch["pair"]  # tuples collate position by position (into a list, as torch)
    assert idx.dtype == np.int64 and half.dtype == np.float64
    np.testing.assert_array_equal(half.numpy(), [0, 0.5, 1])
    np.testing.assert_array_equal(batch["sq"].numpy(), [0, 1, 4])
    Point = collections.namedtuple("Point", "a b")
    p = default_collate([Point(1, "u"), Point(2, "v")])
    assert isinstance(p, Point) and p.b == ["u", "v"] and p.a.numpy().tolist() == [1, 2]
    assert default_collate([True, False]).dtype == np.bool_


def test_default_collate_errors():
    with pytest.raises(ShapeError, match=r"different shapes \(2,\), \(3,\)"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(DataError, match="cannot collate samples of type object"):
        default_collate([object()])
    with pytest.raises(DataError, match="different lengths"):
        default_collate([(1, 2), (1,)])


def test_get_batch_fast_path_equals_collating_samples():
    rng = np.random.default_rng(0)
    ds = TensorDataset(rng.normal(size=(20, 3)).astype(np.float32), rng.integers(0, 5, 20))
    fast = DataLoader(ds, batch_size=6, shuffle=True, generator=na.Generator(1))
    slow = DataLoader(ds, batch_size=6, shuffle=True, generator=na.Generator(1),
                      collate_fn=lambda b: default_collate(b))
    assert fast._get_batch is not None and slow._get_batch is None
    for (fx, fy), (sx, sy) in zip(fast, slow):
        np.testing.assert_array_equal(fx.numpy(), sx.numpy())
        np.testing.assert_array_equal(fy.numpy(), sy.numpy())
        assert fx.dtype == sx.dtype and fy.dtype == sy.dtype


def test_shuffle_is_seeded_and_changes_every_epoch():
    ds = TensorDataset(np.arange(50))
    a = DataLoader(ds, batch_size=7, shuffle=True, generator=na.Generator(5))
    b = DataLoader(ds, batch_size=7, shuffle=True, generator=na.Generator(5))
    epoch1, epoch2 = flatten(a), flatten(a)
    assert sorted(epoch1) == list(range(50)) and epoch1 != list(range(50))
    assert epoch1 != epoch2
    assert flatten(b) == epoch1 and flatten(b) == epoch2
    na.manual_seed(9)
    c = flatten(DataLoader(ds, batch_size=7, shuffle=True))
    na.manual_seed(9)
    assert flatten(DataLoader(ds, batch_size=7, shuffle=True)) == c


def test_custom_sampler_and_batch_sampler():
    ds = TensorDataset(np.arange(6))
    rev = DataLoader(ds, batch_size=4, sampler=[5, 4, 3, 2, 1, 0])
    assert flatten(rev) == [5, 4, 3, 2, 1, 0]
    bs = DataLoader(ds, batch_sampler=[[0, 5], [1]])
    assert [b[0].numpy().tolist() for b in bs] == [[0, 5], [1]]
    seq = DataLoader(ds, batch_sampler=BatchSampler(SequentialSampler(ds), 5, drop_last=True))
    assert len(seq) == 1 and flatten(seq) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 2, "batch_sampler": [[0]]}, "batch_sampler is exclusive"),
    ({"shuffle": True, "sampler": [0]}, "sampler is exclusive with shuffle"),
    ({"batch_size": 0}, "batch_size must be a positive int"),
    ({"batch_size": None}, "needs a batch_sampler"),
    ({"prefetch": -1}, "prefetch must be an int >= 0"),
])
def test_argument_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DataLoader(TensorDataset(np.arange(3)), **kwargs)


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_worker_exception_is_reraised_in_the_main_thread(prefetch):
    loader = DataLoader(Squares(10, fail_at=5), batch_size=2, prefetch=prefetch)
    it = iter(loader)
    got = [next(it)["sq"].numpy().tolist() for _ in range(2)]
    assert got == [[0, 1], [4, 9]]
    with pytest.raises(DataError, match="sample 5 is broken"):
        next(it)
    with pytest.raises(StopIteration):  # the iterator is finished after the failure
        next(it)
    assert not [t for t in threading.enumerate() if t.name == "neural-arch-data"]


def test_prefetch_thread_runs_ahead_boundedly_and_stops_on_break():
    loader = DataLoader(Squares(1000, delay=0.001), batch_size=1, prefetch=3)
    it = iter(loader)
    next(it)
    deadline = time.monotonic() + 60  # a bound, not a timing: a stuck worker fails instead of hanging
    while it.queue.qsize() < 3:  # the worker fills the queue ...
        assert time.monotonic() < deadline, "the prefetch worker did not fill its queue"
        time.sleep(0.01)
    time.sleep(0.05)  # ... and then must wait: it never goes beyond `prefetch` batches
    assert it.queue.qsize() == 3
    thread = it.thread
    assert thread.is_alive()
    it.close()
    assert not thread.is_alive()
    for i, _ in enumerate(loader):  # break out of a loop: the iterator is collected and joined
        if i == 2:
            break
    del _
    import gc

    gc.collect()
    deadline = time.monotonic() + 60  # a bound for a worker that never stops, not a timing
    while time.monotonic() < deadline and [t for t in threading.enumerate() if t.name == "neural-arch-data"]:
        time.sleep(0.01)
    assert not [t for t in threading.enumerate() if t.name == "neural-arch-data"]


def test_loading_overlaps_with_the_consumer():
    # While the main thread still holds batch 0 (and waits), the worker must already be loading batch 1.
    loading = {i: threading.Event() for i in range(3)}

    class Recorder(Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            loading[i].set()
            return i

    it = iter(DataLoader(Recorder(), batch_size=1, prefetch=1))
    assert next(it).item() == 0
    assert loading[1].wait(timeout=5), "batch 1 was not loaded in the background"
    assert [b.item() for b in it] == [1, 2]
    serial = iter(DataLoader(Recorder(), batch_size=1, prefetch=0))
    loading[1].clear()
    next(serial)
    assert not loading[1].wait(timeout=0.1)  # without prefetching nothing runs ahead


@pytest.mark.parametrize("prefetch", [0, 2])
def test_state_dict_resumes_mid_epoch_exactly(prefetch):
    ds = TensorDataset(np.arange(23))
    ref = DataLoader(ds, batch_size=4, shuffle=True, generator=na.Generator(7), prefetch=prefetch)
    expected = [flatten(ref) for _ in range(3)]

    a = DataLoader(ds, batch_size=4, shuffle=True, generator=na.Generator(7), prefetch=prefetch)
    first = flatten(a)  # epoch 1 complete
    it = iter(a)
    head = [int(v) for _ in range(2) for v in next(it)[0].numpy()]  # 2 batches of epoch 2
    state = a.state_dict()
    assert state["batches"] == 2
    it.close()

    b = DataLoader(ds, batch_size=4, shuffle=True, generator=na.Generator(999), prefetch=prefetch)
    b.load_state_dict(state)
    tail = flatten(b)
    assert [first, head + tail, flatten(b)] == expected
    assert b.state_dict()["batches"] == 0


def test_state_dict_at_an_epoch_boundary():
    ds = TensorDataset(np.arange(8))
    a = DataLoader(ds, batch_size=4, shuffle=True, generator=na.Generator(1))
    ref = DataLoader(ds, batch_size=4, shuffle=True, generator=na.Generator(1))
    flatten(ref)
    flatten(a)
    b = DataLoader(ds, batch_size=4, shuffle=True, generator=na.Generator(2))
    b.load_state_dict(a.state_dict())
    assert flatten(b) == flatten(ref)
