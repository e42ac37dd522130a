"""Single-threaded matrix products at GPT shapes: the BLAS of our products against NumPy's OpenBLAS and torch.

Each row times one product on one thread, interleaved in one process:

* ``neural-arch``: ``gemm.matmul`` with one thread of ours, i.e. whichever library ``NEURAL_ARCH_BLAS_LIB``
  picks (MKL's sequential GEMM when installed; ``backend/blas.py``);
* ``openblas``: ``np.matmul`` with NumPy's OpenBLAS on one thread (our products without MKL);
* ``torch``: ``torch.matmul`` after ``torch.set_num_threads(1)``;
* bfloat16 rows add ``widened``: both operands widened to float32 whole, the float32 product, the result
  rounded back (the path without MKL's half GEMM).

Shapes: a 6-layer GPT's linear layers (d = 384, 16 x 256 tokens; x @ W^T with W as nn.Linear stores it)
and its attention products (16 x 6 heads, T = 256, head size 64). The first table gives medians and
torch / ours; the second, GFLOP/s (2 M N K per product) of each contender's median; the third, GFLOP/s
of the best thread CPU time (``time.thread_time``) of each: every contender runs on the calling thread,
so on a loaded machine this one leaves out the time the thread waited for a core.

    python -m benchmarks gemm
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.harness import compare, table

TOKENS, WIDTH, HEADS, T = 4096, 384, 6, 256
LINEAR = [(WIDTH, 3 * WIDTH), (WIDTH, WIDTH), (WIDTH, 4 * WIDTH), (4 * WIDTH, WIDTH)]  # (in, out)


def _workloads(rng):
    """(name, a, b, flops): x @ W^T for each Linear, then attention's Q K^T and P V."""
    for k, n in LINEAR:
        x = rng.standard_normal((TOKENS, k), dtype=np.float32)
        w = rng.standard_normal((n, k), dtype=np.float32)
        yield f"({TOKENS}, {k}) @ ({k}, {n})", x, w.T, 2 * TOKENS * k * n
    batch, d = TOKENS // T, WIDTH // HEADS
    q = rng.standard_normal((batch, HEADS, T, d), dtype=np.float32)
    p = rng.standard_normal((batch, HEADS, T, T), dtype=np.float32)
    yield f"({batch}, {HEADS}, {T}, {d}) @ K^T", q, np.swapaxes(q, -1, -2), 2 * batch * HEADS * T * T * d
    yield f"({batch}, {HEADS}, {T}, {T}) @ V", p, q, 2 * batch * HEADS * T * T * d


def run(rounds: int = 10):
    import torch

    from neural_arch.backend import gemm, threads
    from neural_arch.backend.dtypes import bfloat16
    from neural_arch.backend.kernels.half import to_float32, to_half

    torch.set_num_threads(1)
    saved = threads.policy.num_threads
    threads.policy.num_threads = 1
    print(f"our products: {threads.describe()['products']}")

    def openblas(a, b):
        threads.blas_enter()  # NumPy's BLAS on one thread, as inside our calls
        try:
            return np.matmul(a, b)
        finally:
            threads.blas_exit()

    def widened(a, b):
        return to_half(gemm.matmul(to_float32(a), to_float32(b)), a.dtype)

    results, flops, cpu = [], {}, {}
    try:
        for name, a, b, work in _workloads(np.random.default_rng(0)):
            # torch's operands in the same layouts (b: a transposed view of a row-major array)
            ta, tb = torch.from_numpy(a), torch.from_numpy(np.swapaxes(b, -1, -2).copy()).transpose(-1, -2)
            ha, hb = a.astype(bfloat16), b.astype(bfloat16)
            tha, thb = ta.to(torch.bfloat16), tb.to(torch.bfloat16)
            rows = {
                f"float32 {name}": {
                    "neural-arch": lambda a=a, b=b: gemm.matmul(a, b),
                    "openblas": lambda a=a, b=b: openblas(a, b),
                    "torch": lambda ta=ta, tb=tb: torch.matmul(ta, tb)},
                f"bfloat16 {name}": {
                    "neural-arch": lambda ha=ha, hb=hb: gemm.matmul(ha, hb),
                    "widened": lambda ha=ha, hb=hb: widened(ha, hb),
                    "torch": lambda tha=tha, thb=thb: torch.matmul(tha, thb)},
            }
            for row, contenders in rows.items():
                results.append(compare(row, contenders, rounds=rounds))
                flops[row] = work
                cpu[row] = {who: _best_cpu_time(fn, rounds) for who, fn in contenders.items()}
    finally:
        threads.policy.num_threads = saved
    return (table(results) + "\n\nGFLOP/s (median):\n\n" + _gflops({r.name: {w: r.median(w) for w in r.times}
                                                                      for r in results}, flops)
            + "\n\nGFLOP/s (best thread CPU time):\n\n" + _gflops(cpu, flops))


def _best_cpu_time(fn, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        fn()
        best = min(best, time.thread_time() - started)
    return best


def _gflops(seconds: dict, flops: dict) -> str:
    """A table of GFLOP/s from {row: {contender: seconds}}."""
    names = list(dict.fromkeys(who for row in seconds.values() for who in row))
    lines = ["| workload | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for row, times in seconds.items():
        cells = [f"{flops[row] / times[w] / 1e9:.0f}" if w in times else "-" for w in names]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def amp_step_cpu_time(rounds: int = 3) -> None:
    """Our 6-layer GPT step (``benchmarks.amp``'s) in bf16 autocast and in fp32, one thread, alternated,
    timed in thread CPU time after one warm-up each; prints the times and bf16 / fp32 of the best.

        PYTHONPATH=src:. python -c "from benchmarks.gemm import amp_step_cpu_time; amp_step_cpu_time()"
    """
    import neural_arch as na
    from benchmarks import amp
    from neural_arch.backend import threads

    na.set_num_threads(1)
    steps = {"bf16": amp._ours(amp.GPT_6L, "bf16"), "fp32": amp._ours(amp.GPT_6L, "fp32")}
    for fn in steps.values():
        fn()  # compiles kernels, allocates
    seconds = {who: [] for who in steps}
    for _ in range(rounds):
        for who, fn in steps.items():
            started = time.thread_time()
            fn()
            seconds[who].append(time.thread_time() - started)
    print(threads.describe()["products"], {w: [round(s, 2) for s in v] for w, v in seconds.items()},
          "bf16 / fp32 of best:", round(min(seconds["bf16"]) / min(seconds["fp32"]), 2))
