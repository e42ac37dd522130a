"""The benchmark harness's bookkeeping (no timings are asserted): interleaving, settling calls, the table."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))  # the repository root: `benchmarks`

from benchmarks.harness import Result, compare, table  # noqa: E402


def test_each_round_settles_then_times_every_contender():
    calls = []
    contenders = {"neural-arch": lambda: calls.append("a"), "torch": lambda: calls.append("t")}
    res = compare("tiny", contenders, rounds=4, warmup=2, settle_s=0.0, quiet=0.0)
    assert len(res.times["neural-arch"]) == len(res.times["torch"]) == 4
    # 2 warm-up calls each, then per round one settling and one timed call each, in rotating order
    assert calls[:4] == ["a", "a", "t", "t"]
    assert calls[4:8] == ["a", "a", "t", "t"] and calls[8:12] == ["t", "t", "a", "a"]
    assert len(calls) == 4 + 4 * 4


class _Clock:
    """A clock for the harness that only moves when told: the test reads the harness's own timing
    decisions, never how fast the machine happens to be."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_settling_lasts_settle_s_after_a_quiet_pause(monkeypatch):
    import benchmarks.harness as harness

    clock = _Clock()
    monkeypatch.setattr(harness, "time", clock)
    calls = []

    def work(tag):
        calls.append((tag, clock.now))
        clock.sleep(0.002)

    contenders = {"neural-arch": lambda: work("a"), "torch": lambda: work("t")}
    compare("settle", contenders, rounds=2, warmup=1, settle_s=0.01, quiet=0.02)
    timed = calls[2:]  # after one warm-up call each
    runs = [[timed[0]]]
    for prev, cur in zip(timed, timed[1:]):
        if cur[0] == prev[0] and cur[1] - prev[1] < 0.015:
            runs[-1].append(cur)
        else:
            runs.append([cur])
    assert [r[0][0] for r in runs] == ["a", "t", "t", "a"]  # rotating order, one block per contender
    for block in runs:
        assert len(block) >= 5  # >= 10 ms of 2 ms settling calls, then the timed one
    for before, after in zip(runs, runs[1:]):
        assert after[0][1] - before[-1][1] >= 0.02  # the quiet pause between contenders


def test_slow_workloads_skip_the_settling_call():
    calls = []
    res = compare("slow", {"neural-arch": lambda: calls.append(1)}, rounds=3, warmup=1, settle=0)
    assert len(calls) == 1 + 3 and len(res.times["neural-arch"]) == 3


def test_table_ratio_uses_torch_or_the_other_contender():
    with_torch = Result("w", {"neural-arch": [1.0, 1.0], "torch": [2.0, 2.0]})
    assert table([with_torch]).splitlines()[-1].endswith("| 2.00 |")
    without = Result("w", {"neural-arch": [1.0], "NumPy path": [3.0]})
    lines = table([without]).splitlines()
    assert "NumPy path / neural-arch" in lines[0] and lines[-1].endswith("| 3.00 |")


def test_optim_suite_runs_every_optimizer_against_a_reference():
    pytest.importorskip("torch")
    from benchmarks import optim as optim_suite

    results = optim_suite.run(rounds=1)
    assert len(results) == len(optim_suite.CASES) + 1
    for res in results:
        assert len(res.times["neural-arch"]) == 1 and len(res.times) == 2


def test_conv_algos_times_every_candidate_and_names_the_chosen_one():
    from benchmarks import conv_algos

    import neural_arch as na

    threads = na.get_num_threads()
    shapes = [("tiny 3x3 s1", (2, 4, 6, 6), (4, 4, 3, 3), 1, 1), ("tiny 1x1 s2", (2, 4, 6, 6), (8, 4, 1, 1), 2, 0),
              ("tiny 3x3 s1 2x2", (16, 4, 2, 2), (4, 4, 3, 3), 1, 1)]
    try:
        rows = conv_algos.candidates(rounds=1, shapes=shapes).splitlines()[2:]
    finally:
        na.set_num_threads(threads)
    assert [r.split("|")[1].strip() for r in rows] == ["tiny 3x3 s1", "tiny 1x1 s2", "tiny 3x3 s1 2x2"]
    from neural_arch.backend.kernels.conv_algorithms import CANDIDATES, products

    cells = [r.split("|")[1:-1] for r in rows]
    assert all(c[-2].strip() in CANDIDATES for c in cells)  # the "chosen" column names a candidate
    assert all(float(x) > 0 for x in cells[0][1:-4])  # every im2col and Winograd candidate on the 3x3 stride-1 shape
    assert [x.strip() for x in cells[1][5:9]] == ["-"] * 4  # and Winograd not where it does not apply (1x1)
    assert [x.strip() for x in (cells[0][-4], cells[1][-4])] == ["-"] * 2  # nor dense (more pixels than taps)
    assert float(cells[2][-4]) > 0  # 2x2 images: dense timed, and chosen where the table runs (MKL, OpenBLAS)
    assert cells[2][-2].strip() == "dense/whole/direct" or products() == "numpy"
