"""Importing and running neural-arch leaves a user's NumPy as it was: BLAS threads and their speed.

Rows (``neural-arch`` / the other column; the ratio other / neural-arch, ~1 means the same):

* a user's own ``np.matmul`` (float32, n x n): timed right after a neural-arch training step (an
  MLP 784-256-10, batch 128, AdamW: its products are split over our threads and run with BLAS on one
  thread) against the same product timed in the same process before neural-arch ran any op;
* the BLAS scope around our calls (``threads.blas_enter``/``blas_exit``: OpenBLAS's thread count read,
  set to 1 and put back, by address) against threadpoolctl's ``ThreadpoolController.limit`` doing
  the same, per call;
* a product OpenBLAS would thread (96^3), through ``gemm.matmul`` (scoped) and as a user's plain
  ``np.matmul`` (BLAS's own threads);
* the hand-off rate: the share of products a polling helper ran inside its poll, in a mix of
  products and Python jobs with gaps (``threads._Helper.post_product``; a rate, not a time);
* the poll's policy, in one process, interleaved: a user's ``np.matmul`` right after a step with the
  helpers' poll yielding its core past ``policy.spin_yield_after_us`` (the default) against one that
  keeps its core for the whole ``spin_us`` (as before), and the same product once the helpers sleep;
  with the CPU time our helper threads took meanwhile (from ``/proc``, Linux only).
"""

from __future__ import annotations

import gc
import statistics
import time

import numpy as np

from benchmarks.harness import Result, compare


def _time(fn, inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def _user_matmul(sizes, rounds: int, step) -> list[Result]:
    rng = np.random.default_rng(0)
    products = {n: (rng.standard_normal((n, n)).astype(np.float32),) * 2 for n in sizes}
    inner = {n: max(1, int(2e9 // (2 * n**3))) for n in sizes}  # ~2 GFLOP per timing
    before = {n: [] for n in sizes}
    after = {n: [] for n in sizes}
    gc.disable()
    try:
        for n, (a, b) in products.items():  # before neural-arch ran any op (import only)
            for _ in range(3):
                np.matmul(a, b)
            before[n] = [_time(lambda a=a, b=b: np.matmul(a, b), inner[n]) for _ in range(rounds)]
        for _ in range(3):
            step()
        for _ in range(rounds):
            for n, (a, b) in products.items():
                step()  # then the user's product, at once: our helpers may still be polling
                after[n].append(_time(lambda a=a, b=b: np.matmul(a, b), inner[n]))
    finally:
        gc.enable()
    return [Result(f"user's np.matmul {n}x{n} f32 (after a step / before any op)",
                   {"neural-arch": after[n], "before": before[n]}) for n in sizes]


def _helpers_cpu_s() -> float:
    """CPU seconds our helper threads (named "neural-arch-kernels") have run so far (Linux; else 0)."""
    import threading

    total = 0.0
    for t in threading.enumerate():
        if t.name == "neural-arch-kernels":
            try:
                with open(f"/proc/self/task/{t.native_id}/schedstat") as fh:
                    total += int(fh.read().split()[0]) / 1e9
            except OSError:
                pass
    return total


def _poll_policies(n: int, rounds: int, step) -> list[Result]:
    """A user's n x n product right after a step, the helpers' poll yielding (default) or keeping its
    core for all of ``spin_us`` (old), and after the helpers went to sleep; interleaved in one process."""
    from neural_arch.backend import threads

    rng = np.random.default_rng(2)
    a = b = rng.standard_normal((n, n)).astype(np.float32)
    yielding = threads.policy.spin_yield_after_us
    keeping = threads.policy.spin_us  # never yields within its poll: the policy before the yield
    # "neural-arch": the poll as it is (yields); "before": once the helpers sleep, as before any step
    times = {"neural-arch": [], "keeps core": [], "before": []}
    cpu = {"neural-arch": [], "keeps core": []}
    gc.disable()
    try:
        for _ in range(rounds):
            for who in times:
                threads.policy.spin_yield_after_us = keeping if who == "keeps core" else yielding
                step()
                c0 = _helpers_cpu_s()  # (a spinning thread's count is brought up to date at its next switch)
                step()  # this step's helpers then poll with this policy
                if who == "before":
                    time.sleep(2 * threads.policy.spin_us / 1e6 + 0.02)
                t0 = time.perf_counter()
                np.matmul(a, b)
                times[who].append(time.perf_counter() - t0)
                if who in cpu:
                    time.sleep(2 * threads.policy.spin_us / 1e6 + 0.02)  # the poll ends, the helpers sleep
                    cpu[who].append(_helpers_cpu_s() - c0)
    finally:
        threads.policy.spin_yield_after_us = yielding
        gc.enable()
    return [Result(f"user's np.matmul {n}x{n} f32 right after a step: poll yields (neural-arch) / keeps its core / "
                   "helpers asleep (before)", times),
            Result("our helpers' CPU time, a step and the user's product after it: yields / keeps its core", cpu)]


def _hand_off_rate(rounds: int) -> Result:
    from neural_arch.backend import threads

    spin = threads._spin_module()
    if spin is None or not threads._gemm_address(np.dtype(np.float32)):
        return Result("hand-off: products run in the poll (n/a: no polling helper here)", {"neural-arch": [0.0]},
                      unit="%")
    rates = []
    rng = np.random.default_rng(0)
    helper = threads._Helper(spin)
    a, b = rng.standard_normal((9, 7)).astype(np.float32), rng.standard_normal((7, 5)).astype(np.float32)
    out = np.empty((9, 5), np.float32)
    for _ in range(rounds):
        in_poll = products = 0
        for _ in range(120):
            if rng.random() < 0.7:
                products += 1
                if helper.post_product(a, b, out):
                    in_poll += 1
                else:
                    helper.start(np.matmul, (a, b, out))
                helper.join()
            else:
                helper.start(np.copyto, (out, 0.0))
                helper.join()
            if rng.random() < 0.2:
                time.sleep(0.003)  # a gap longer than a short poll
        rates.append(100.0 * in_poll / products)
    return Result(f"hand-off: products run in the poll (spin {threads.policy.spin_us} us)", {"neural-arch": rates},
                  unit="%")


def run(rounds: int = 20):
    from threadpoolctl import ThreadpoolController

    import neural_arch as na
    import neural_arch.nn as nn
    import neural_arch.nn.functional as F
    from neural_arch.backend import gemm, threads
    from neural_arch.optim import AdamW

    na.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = AdamW(model.parameters(), lr=1e-3)
    x, y = na.randn(128, 784), na.randint(0, 10, (128,))

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    results = _user_matmul((256, 1024), rounds, step)
    results += _poll_policies(1024, rounds, step)

    controller = ThreadpoolController()

    def ours():
        threads.blas_enter()
        threads.blas_exit()

    def threadpoolctl_limit():
        with controller.limit(limits=1, user_api="blas"):
            pass

    results.append(compare("BLAS set to 1 thread and put back, per call",
                           {"neural-arch": ours, "threadpoolctl": threadpoolctl_limit}, rounds=rounds, inner=200))
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((96, 96)).astype(np.float32), rng.standard_normal((96, 96)).astype(np.float32)
    results.append(compare("96^3 product: gemm.matmul (scoped) / np.matmul (BLAS's threads)",
                           {"neural-arch": lambda: gemm.matmul(a, b), "np.matmul": lambda: np.matmul(a, b)},
                           rounds=rounds, inner=50))
    results.append(_hand_off_rate(max(3, rounds // 4)))
    print(f"(hand-off rate per round, %: {[round(r) for r in results[-1].times['neural-arch']]}; "
          f"median {statistics.median(results[-1].times['neural-arch']):.0f})")
    return results
