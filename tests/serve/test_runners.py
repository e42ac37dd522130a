"""Grouping a batch of texts by length before the forward (runners.by_length / length_groups)."""

import itertools
import random

from neural_arch.serve.runners import by_length, length_groups


def _cost(lengths, cuts, call_cost):
    return sum((b - a) * lengths[b - 1] + call_cost for a, b in zip(cuts, cuts[1:]))


def test_length_groups_is_the_cheapest_cut():
    rng = random.Random(0)
    for _ in range(30):
        lengths = sorted(rng.randint(1, 300) for _ in range(rng.randint(1, 9)))
        call_cost = rng.choice([0.0, 20.0, 96.0, 1000.0])
        got = length_groups(lengths, call_cost)
        n = len(lengths)
        assert got[0] == 0 and got[-1] == n and got == sorted(set(got))
        best = min(_cost(lengths, [0, *inner, n], call_cost)
                   for k in range(n) for inner in itertools.combinations(range(1, n), k))
        assert _cost(lengths, got, call_cost) == best


def test_length_groups_examples():
    assert length_groups([17] * 8, 96.0) == [0, 8]                          # equal lengths: one forward
    assert length_groups([10] * 16 + [300] * 16, 96.0) == [0, 16, 32]       # two lengths: two forwards
    assert length_groups(list(range(1000)), 96.0) == [0, 125, 250, 375, 500, 625, 750, 875, 1000]


def test_by_length_runs_similar_lengths_together_and_keeps_the_order():
    calls = []

    def run(texts):
        calls.append(list(texts))
        return [f"<{t}>" for t in texts]

    texts = ["a" * n for n in (300, 5, 290, 7, 6, 310)]
    assert by_length(run)(texts) == [f"<{t}>" for t in texts]
    assert sorted(map(len, calls[0])) == [5, 6, 7] and sorted(map(len, calls[1])) == [290, 300, 310]
