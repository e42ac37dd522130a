"""Per-op overhead: a tiny elementwise op, forward + backward, in microseconds per op.

A chain of ``n`` multiplications on an 8-element tensor, then one backward:
the arrays are so small that the time is the framework's Python/C++
bookkeeping per op (Tensor creation, graph recording, the backward walk).
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import compare

N_OPS = 100


def run(rounds: int = 30):
    import torch

    import neural_arch as na

    x_np = np.random.default_rng(0).standard_normal(8).astype(np.float32)
    xa = na.tensor(x_np, requires_grad=True)
    xt = torch.tensor(x_np, requires_grad=True)
    c = 1.0001

    def ours():
        y = xa
        for _ in range(N_OPS):
            y = y * c
        y.backward(na.ones(8))
        xa.grad = None

    def theirs():
        y = xt
        for _ in range(N_OPS):
            y = y * c
        y.backward(torch.ones(8))
        xt.grad = None

    res = compare(f"tiny mul fwd+bwd, per op ({N_OPS}-op chain)", {"neural-arch": ours, "torch": theirs},
                  rounds=rounds, inner=5)
    for who in res.times:  # report per op
        res.times[who] = [t / N_OPS for t in res.times[who]]
    return [res]
