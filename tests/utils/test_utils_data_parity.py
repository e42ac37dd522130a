"""torch.utils.data, name by name, against torch's own: the items of each dataset, the indices of each sampler,
the batches of the loader and of default_collate, random_split's lengths. Where a sampler draws at random the
generators differ, so what is compared is what both must agree on: the draws of a degenerate distribution
(one weight, a one-item dataset) exactly, and the set of indices a permutation covers."""

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import neural_arch as na
from neural_arch.utils import data as D
from parity import compare, reference

ROWS = np.arange(12.0).reshape(6, 2)
LABELS = np.arange(6)


def _items(ds):
    return [ds[i] for i in range(len(ds))]


def _tensor_datasets():
    ours = D.TensorDataset(na.tensor(ROWS), na.tensor(LABELS))
    x, y = torch.tensor(ROWS), torch.tensor(LABELS)
    with reference():
        ref = tud.TensorDataset(x, y)
    return ours, ref


def test_tensor_dataset_subset_concat_and_stack_give_torchs_items():
    ours, ref = _tensor_datasets()
    compare(_items(ours), _items(ref), what="TensorDataset")
    with reference():
        ref_parts = [tud.Subset(ref, [4, 1, 3]), tud.ConcatDataset([ref, tud.Subset(ref, [5, 0])]),
                     tud.StackDataset(ref, tud.Subset(ref, [5, 4, 3, 2, 1, 0]))]
    ours_parts = [D.Subset(ours, [4, 1, 3]), D.ConcatDataset([ours, D.Subset(ours, [5, 0])]),
                  D.StackDataset(ours, D.Subset(ours, [5, 4, 3, 2, 1, 0]))]
    for o, r, what in zip(ours_parts, ref_parts, ("Subset", "ConcatDataset", "StackDataset")):
        compare([len(o), _items(o)], [len(r), _items(r)], what=what)


def _users_classes(data):
    """A user's Dataset and Sampler, written once and subclassed from ``data``'s bases (ours or torch's)."""

    class Squares(data.Dataset):
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            return np.array([i, i * i], dtype=np.float32), i

    class Reversed(data.Sampler):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n - 1, -1, -1))

        def __len__(self):
            return self.n

    return Squares, Reversed


@pytest.mark.parametrize("drop_last", [False, True])
def test_a_users_dataset_and_sampler_batch_like_torchs(drop_last):
    squares, reversed_ = _users_classes(D)
    ours = list(D.DataLoader(squares(7), batch_size=3, sampler=reversed_(7), drop_last=drop_last))
    with reference():
        squares, reversed_ = _users_classes(tud)
        ref = list(tud.DataLoader(squares(7), batch_size=3, sampler=reversed_(7), drop_last=drop_last))
    compare(ours, ref)


class _Count(D.IterableDataset):
    def __init__(self, start, stop):
        self.range = range(start, stop)

    def __iter__(self):
        return iter(self.range)


class _TorchCount(tud.IterableDataset):
    def __init__(self, start, stop):
        self.range = range(start, stop)

    def __iter__(self):
        return iter(self.range)


def test_chain_dataset_runs_its_parts_in_order():
    ours = list(D.ChainDataset([_Count(0, 3), _Count(10, 12)]))
    with reference():
        ref = list(tud.ChainDataset([_TorchCount(0, 3), _TorchCount(10, 12)]))
    compare(ours, ref)


@pytest.mark.parametrize("size,drop_last", [(3, False), (3, True), (5, False)])
def test_sequential_and_batch_samplers_give_torchs_indices(size, drop_last):
    ours = D.BatchSampler(D.SequentialSampler(range(10)), size, drop_last)
    with reference():
        ref = tud.BatchSampler(tud.SequentialSampler(range(10)), size, drop_last)
    compare([list(ours), len(ours), list(D.SequentialSampler(range(4)))],
            [list(ref), len(ref), list(tud.SequentialSampler(range(4)))])


def test_random_samplers_cover_what_torchs_cover():
    ours = [sorted(D.RandomSampler(range(9), generator=na.Generator(0))),
            list(D.RandomSampler(range(1), replacement=True, num_samples=5, generator=na.Generator(0))),
            len(D.RandomSampler(range(9), num_samples=13)),
            sorted(D.SubsetRandomSampler([7, 2, 5], generator=na.Generator(1))),
            list(D.WeightedRandomSampler([0.0, 0.0, 2.5, 0.0], 6, generator=na.Generator(2))),
            sorted(D.WeightedRandomSampler([1.0, 2.0, 3.0, 4.0], 4, replacement=False, generator=na.Generator(3)))]
    with reference():
        ref = [sorted(tud.RandomSampler(range(9))),
               list(tud.RandomSampler(range(1), replacement=True, num_samples=5)),
               len(tud.RandomSampler(range(9), num_samples=13)),
               sorted(tud.SubsetRandomSampler([7, 2, 5])),
               list(tud.WeightedRandomSampler([0.0, 0.0, 2.5, 0.0], 6)),
               sorted(tud.WeightedRandomSampler([1.0, 2.0, 3.0, 4.0], 4, replacement=False))]
    compare(ours, ref)


@pytest.mark.parametrize("lengths", [[3, 7], [0.3, 0.7], [0.33, 0.33, 0.34], [0.5, 0.25, 0.25]], ids=str)
def test_random_split_makes_torchs_lengths_of_disjoint_parts(lengths):
    ours = D.random_split(range(10), lengths, generator=na.Generator(0))
    with reference():
        ref = tud.random_split(range(10), lengths)
    compare([len(p) for p in ours], [len(p) for p in ref], what="lengths")
    compare(sorted(i for p in ours for i in p), sorted(i for p in ref for i in p), what="indices")


def test_default_collate_batches_like_torch():
    samples = [(np.ones(2), 1, {"a": np.float32(2.0), "b": np.arange(3)}, 0.5),
               (np.zeros(2), 2, {"a": np.float32(3.0), "b": np.arange(3, 6)}, 1.5)]
    ours = D.default_collate(samples)
    with reference():
        ref = tud.default_collate(samples)
    compare(ours, ref)


def test_get_worker_info_outside_a_worker_is_none_as_in_torch():
    with reference():
        ref = tud.get_worker_info()
    compare(D.get_worker_info(), ref)
