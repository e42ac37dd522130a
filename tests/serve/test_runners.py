"""Grouping a batch of texts by length before the forward (runners.by_length / length_groups)."""

import asyncio
import itertools
import random

import pytest

from neural_arch.serve.app import ServeSettings
from neural_arch.serve.metrics import ServerMetrics
from neural_arch.serve.runners import by_length, length_groups, make_worker
from neural_arch.serve.served import EMBEDDINGS, ServedModel


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


@pytest.mark.parametrize("forward_cost,forwards", [(96.0, 2), (8 * 96.0, 1)])
def test_the_worker_cuts_a_batch_with_its_models_forward_cost(forward_cost, forwards):
    """A model that skips its padding (our SentenceEncoder) is cut into fewer forwards than one that computes it."""
    calls = []

    def run(texts):
        calls.append(list(texts))
        return [len(t) for t in texts]

    served = ServedModel("m", EMBEDDINGS, model=None, run_batch=run, forward_cost=forward_cost)
    worker = make_worker(served, ServeSettings(max_wait_ms=0.0), ServerMetrics("embeddings", lambda: 0))
    texts = ["a" * n for n in (100, 9, 95, 10, 8, 99)]

    async def go():
        return await asyncio.wait_for(asyncio.gather(*worker.submit(texts)), 30.0)

    try:
        assert asyncio.run(go()) == [len(t) for t in texts]
    finally:
        worker.close()
    assert len(calls) == forwards and sorted(map(len, sum(calls, []))) == sorted(map(len, texts))
