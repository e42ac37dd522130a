"""Timing both frameworks on one workload, interleaved, in one process.

Each round runs every contender once (in a rotating order) so that slow
drifts of the machine (thermal, other processes) hit all of them alike; the
table reports medians and ``torch_time / our_time`` (> 1: we are faster).

Before its timed call in a round, a contender makes one untimed call (for
workloads under 50 ms). The reason is measured: on 2 cores, right after
torch's step its OpenMP workers still spin, and right after ours OpenBLAS's
workers do, so the *first* call after a switch ran 8-10x slower for either
framework (an MLP step: 0.39 ms alone, 3.9 ms right after torch's; torch's
0.48 ms alone, 4.1 ms right after ours). One settling call removes that
artefact, which no user running one framework sees, and keeps the rounds
interleaved.

Our own helper threads poll for work for 2 ms after each job (backend/threads.py),
and torch's OpenMP workers spin after theirs, so a contender also waits ``quiet``
seconds (10 ms) before settling: the other framework's threads are then asleep,
as they would be in a process of one framework. Settling then runs untimed calls
for at least ``settle_s`` (20 ms), not just one: after the pause the cores are
cold, and a single 1 ms call left both frameworks ~35% slower than back-to-back
calls (layer_norm 4096x512 fwd+bwd: ours 0.71 ms back-to-back and 0.97 ms after a
pause and one call; torch 1.40 and 0.96 ms). After a 0.25 s pause our MLP step
took 760 us with 5 ms of settling and 287 us with 20 ms (back-to-back: 290 us).
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    name: str
    times: dict = field(default_factory=dict)  # contender -> list of seconds (or of MB when unit == "MB")
    unit: str = "s"

    def median(self, who: str) -> float:
        return statistics.median(self.times[who])


def compare(name: str, contenders: dict, rounds: int = 20, warmup: int = 3, inner: int = 1,
            settle: int | None = None, quiet: float = 0.01, settle_s: float = 0.02,
            clock=time.perf_counter) -> Result:
    """Time each ``contenders[who]()`` (a zero-argument callable) ``rounds`` times, interleaved.
    ``clock``: what a timed call is measured by (``time.process_time``: the CPU time of the process,
    which a loaded machine inflates less than wall time; meaningful when each contender runs on one
    thread).

    ``inner`` repeats the call inside one timing (for microsecond workloads);
    the recorded time is per call. ``settle`` untimed calls precede each timed
    one (default: 1 when a call takes under 50 ms, else 0; see the module doc), repeated until
    ``settle_s`` seconds have passed, after a ``quiet``-second pause when the contender changes.
    """
    slowest = 0.0
    for fn in contenders.values():
        fastest = float("inf")  # of the warm-up calls: the first may include compiling or loading kernels
        for _ in range(warmup):
            t0 = time.perf_counter()
            fn()
            fastest = min(fastest, time.perf_counter() - t0)
        slowest = max(slowest, fastest)
    if settle is None:
        settle = 1 if slowest < 0.05 else 0
    res = Result(name, {who: [] for who in contenders})
    names = list(contenders)
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            order = names[r % len(names):] + names[: r % len(names)]
            for who in order:
                fn = contenders[who]
                if len(names) > 1:
                    time.sleep(quiet)
                started = time.perf_counter()
                for _ in range(settle):
                    fn()
                while settle and time.perf_counter() - started < settle_s:
                    fn()
                t0 = clock()
                for _ in range(inner):
                    fn()
                res.times[who].append((clock() - t0) / inner)
            gc.collect()
    finally:
        if gc_was:
            gc.enable()
    return res


def _fmt(seconds: float, unit: str = "s") -> str:
    if unit != "s":
        return f"{seconds:8.1f} {unit}"
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.2f} us"
    if seconds < 1:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds:8.2f} s "


def table(results: list[Result], ours: str = "neural-arch", ref: str = "torch") -> str:
    """A Markdown table: one row per workload, medians per contender, and torch/ours
    (or other/ours when no torch took part, as in the jit suite)."""
    if not any(ref in r.times for r in results):
        ref = next((w for r in results for w in r.times if w != ours), ref)
    others = []
    for r in results:
        for who in r.times:
            if who not in (ours, ref) and who not in others:
                others.append(who)
    head = ["workload", ours, ref, *others, f"{ref} / {ours}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r.name, _fmt(r.median(ours), r.unit), _fmt(r.median(ref), r.unit) if ref in r.times else "-"]
        cells += [_fmt(r.median(o), r.unit) if o in r.times else "-" for o in others]
        cells.append(f"{r.median(ref) / r.median(ours):.2f}" if ref in r.times else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    """One line naming the machine and the library versions."""
    import os
    import platform

    import numpy as np

    parts = [platform.processor() or platform.machine(), f"{os.cpu_count()} cores", f"Python {platform.python_version()}",
             f"NumPy {np.__version__}"]
    try:
        import torch

        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info

        blas = [f"{i['internal_api']} {i.get('version')} {i.get('architecture')}" for i in threadpool_info()
                if i.get("user_api") == "blas"]
        parts += blas
    except ImportError:
        pass
    from neural_arch.backend import threads

    parts.append(f"our products: {threads.describe()['products']}")  # (MKL when installed: NumPy's BLAS is not it)
    return ", ".join(parts)
