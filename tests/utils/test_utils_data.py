"""neural_arch.utils.data: torch.utils.data's names at torch's path, and what neural_arch.data
lacked (IterableDataset, ChainDataset, StackDataset, SubsetRandomSampler, WeightedRandomSampler,
get_worker_info, default_convert, batch_size=None, torch's DataLoader arguments)."""

import numpy as np
import pytest
import torch
import torch.utils.data as tud
from parity import compare, reference

import neural_arch as na
from neural_arch import data as na_data
from neural_arch.errors import ConfigError, DataError
from neural_arch.utils import data as D


def test_every_public_name_of_torch_utils_data_we_cover_is_here():
    wanted = {"BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset", "DistributedSampler",
              "IterableDataset", "RandomSampler", "Sampler", "SequentialSampler", "StackDataset", "Subset",
              "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "default_collate",
              "default_convert", "get_worker_info", "random_split"}
    assert wanted <= set(tud.__all__)
    assert wanted <= set(D.__all__) and all(hasattr(D, n) for n in wanted)
    assert D.TensorDataset is na_data.TensorDataset and issubclass(D.DataLoader, na_data.DataLoader)


class Count(D.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        for i in range(self.n):
            yield np.array([i, i * i], dtype=np.float32), i

    def __len__(self):
        return self.n


class TorchCount(tud.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        for i in range(self.n):
            yield np.array([i, i * i], dtype=np.float32), i


@pytest.mark.parametrize("batch_size,drop_last", [(3, False), (3, True), (None, False)])
@pytest.mark.parametrize("prefetch", [0, 2])
def test_iterable_dataset_batches_like_torch(batch_size, drop_last, prefetch):
    ours = list(D.DataLoader(Count(8), batch_size=batch_size, drop_last=drop_last, prefetch=prefetch, num_workers=2))
    with reference():
        ref = list(tud.DataLoader(TorchCount(8), batch_size=batch_size, drop_last=drop_last))
    compare(ours, ref)
    if batch_size is not None:
        assert len(D.DataLoader(Count(8), batch_size=batch_size, drop_last=drop_last)) == len(ref)


def test_chain_and_stack_datasets():
    chained = Count(2) + Count(3)
    assert isinstance(chained, D.ChainDataset) and [int(x[1]) for x in chained] == [0, 1, 0, 1, 2]
    a = D.TensorDataset(na.tensor(np.arange(4.0)))
    stacked = D.StackDataset(a, np.arange(10, 14))
    assert len(stacked) == 4 and float(stacked[2][0][0].item()) == 2.0 and stacked[2][1] == 12
    named = D.StackDataset(x=a, y=np.arange(4))
    batch = next(iter(D.DataLoader(named, batch_size=4)))
    assert set(batch) == {"x", "y"} and batch["y"].numpy().tolist() == [0, 1, 2, 3]
    with pytest.raises(DataError, match="different lengths"):
        D.StackDataset(a, np.arange(3))
    with pytest.raises(ConfigError, match="IterableDataset"):
        D.DataLoader(Count(3), shuffle=True)


def test_map_dataset_with_torch_arguments_and_no_batching():
    ds = D.TensorDataset(na.tensor(np.arange(10.0).reshape(5, 2)), na.tensor(np.arange(5)))
    loader = D.DataLoader(ds, batch_size=2, shuffle=True, num_workers=4, pin_memory=True, persistent_workers=True,
                          generator=na.Generator(0), worker_init_fn=lambda i: None, prefetch_factor=2)
    seen = sorted(int(i) for _, y in loader for i in y.numpy())
    assert seen == [0, 1, 2, 3, 4]
    items = list(D.DataLoader(ds, batch_size=None))
    assert len(items) == 5 and items[3][0].shape == (2,)
    assert D.get_worker_info() is None
    with pytest.raises(ConfigError, match="num_workers"):
        D.DataLoader(ds, num_workers=-1)


def test_subset_random_sampler_and_weighted_sampler():
    s = D.SubsetRandomSampler([3, 5, 7, 9], generator=na.Generator(1))
    order = list(s)
    assert sorted(order) == [3, 5, 7, 9] and len(s) == 4
    w = D.WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], num_samples=400, generator=na.Generator(2))
    draws = np.array(list(w))
    assert set(draws.tolist()) <= {1, 3} and 0.6 < (draws == 3).mean() < 0.9  # 0.75 expected
    no_rep = list(D.WeightedRandomSampler([1.0, 2.0, 3.0, 4.0], 4, replacement=False, generator=na.Generator(3)))
    assert sorted(no_rep) == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="without replacement"):
        D.WeightedRandomSampler([1.0, 0.0], 2, replacement=False)
    with pytest.raises(ConfigError, match="weights"):
        D.WeightedRandomSampler([-1.0, 2.0], 2)


def test_default_convert_matches_torch():
    sample = {"a": np.arange(3.0), "b": (np.float32(2.0), "text"), "c": 5}
    ours = D.default_convert(sample)
    with reference():
        ref = tud.default_convert(sample)
    assert isinstance(ours["a"], na.Tensor) and isinstance(ref["a"], torch.Tensor)
    compare([ours["a"], ours["b"][1], ours["c"]], [ref["a"], ref["b"][1], ref["c"]])


def test_random_sampler_with_torch_arguments():
    ds = list(range(5))
    plain = D.RandomSampler(ds, generator=na.Generator(0))
    assert sorted(plain) == [0, 1, 2, 3, 4] and len(plain) == 5
    more = list(D.RandomSampler(ds, num_samples=12, generator=na.Generator(1)))
    assert len(more) == 12 and sorted(more[:5]) == [0, 1, 2, 3, 4] and sorted(more[5:10]) == [0, 1, 2, 3, 4]
    drawn = list(D.RandomSampler(ds, replacement=True, num_samples=50, generator=na.Generator(2)))
    assert len(drawn) == 50 and set(drawn) <= set(ds) and len(set(drawn)) < 50
    loader = D.DataLoader(D.TensorDataset(na.tensor(np.arange(5.0))), batch_size=4,
                          sampler=D.RandomSampler(ds, replacement=True, num_samples=8, generator=na.Generator(3)))
    assert [len(b[0]) for b in loader] == [4, 4]
    with pytest.raises(ConfigError, match="num_samples"):
        D.RandomSampler(ds, num_samples=0)
