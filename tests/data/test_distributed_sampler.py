"""DistributedSampler against torch.utils.data.DistributedSampler: the same index lists per rank."""

import pytest
import torch.utils.data as tud
from parity import compare, reference

from neural_arch.data import DistributedSampler
from neural_arch.errors import ConfigError


@pytest.mark.parametrize("n", [1, 3, 10, 11, 17])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_unshuffled_index_lists_are_torchs(n, replicas, drop_last):
    data = list(range(n))
    for rank in range(replicas):
        ours = DistributedSampler(data, replicas, rank, shuffle=False, drop_last=drop_last)
        with reference():
            theirs = tud.DistributedSampler(data, replicas, rank, shuffle=False, drop_last=drop_last)
        compare([list(ours), len(ours)], [list(theirs), len(theirs)], what=f"rank {rank}")


def test_too_few_items_with_drop_last_gives_nothing():
    assert list(DistributedSampler(list(range(2)), 4, 3, shuffle=False, drop_last=True)) == []


@pytest.mark.parametrize("n,replicas,drop_last", [(10, 4, False), (10, 4, True), (7, 3, False), (3, 5, False)])
def test_shuffled_shares_follow_torchs_layout_of_one_permutation(n, replicas, drop_last):
    """Same permutation on every rank, padded or cut as torch, rank r takes positions r, r+R, ... ."""
    data = list(range(n))
    shares = [list(DistributedSampler(data, replicas, r, shuffle=True, seed=5, drop_last=drop_last))
              for r in range(replicas)]
    interleaved = [shares[r][k] for k in range(len(shares[0])) for r in range(replicas)]
    theirs = [list(tud.DistributedSampler(data, replicas, r, shuffle=False, drop_last=drop_last))
              for r in range(replicas)]
    # torch's unshuffled layout is positions into the (identity) permutation: map them through ours
    order = interleaved[:n] if not drop_last else None
    if not drop_last:
        assert sorted(order) == data  # the first n positions are a permutation of the dataset
        perm = order
        assert shares == [[perm[i] for i in t] for t in theirs]
    else:
        assert len(set(interleaved)) == len(interleaved) == (n // replicas) * replicas
    assert all(len(s) == len(t) for s, t in zip(shares, theirs))


def test_set_epoch_reshuffles_deterministically():
    data = list(range(50))
    a = DistributedSampler(data, 2, 0, seed=1)
    first = list(a)
    assert list(a) == first  # same epoch, same order
    a.set_epoch(1)
    second = list(a)
    assert second != first
    b = DistributedSampler(data, 2, 0, seed=1)
    b.set_epoch(1)
    assert list(b) == second
    other = DistributedSampler(data, 2, 1, seed=1)
    other.set_epoch(1)
    assert sorted(second + list(other)) == data


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="rank"):
        DistributedSampler([1, 2], 2, 2)
    with pytest.raises(ConfigError, match="num_replicas"):
        DistributedSampler([1, 2], 0, 0)


def test_defaults_without_a_process_group_are_one_replica():
    s = DistributedSampler(list(range(5)), shuffle=False)
    assert (s.num_replicas, s.rank, list(s)) == (1, 0, [0, 1, 2, 3, 4])
