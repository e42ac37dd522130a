"""JIT suite: the fused numba kernels against our own NumPy path for the same ops.

This is the measurement that decides whether numba is worth being a core
dependency (README: "Speed, and the one dependency beyond NumPy"). Both
contenders are neural-arch; the NumPy path is what ``NEURAL_ARCH_JIT=0`` runs.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import compare


def run(rounds: int = 15):
    import neural_arch as na
    import neural_arch.nn.functional as F
    from neural_arch import nn, optim
    from neural_arch.backend import kernels

    rng = np.random.default_rng(0)

    def leaf(*shape):
        return na.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)

    x1, up1 = leaf(1 << 20), na.tensor(np.ones(1 << 20, np.float32))
    x2, w2, b2 = leaf(4096, 512), leaf(512), leaf(512)
    up2 = na.tensor(np.ones((4096, 512), np.float32))
    x3, t3 = leaf(4096, 1000), na.tensor(rng.integers(0, 1000, 4096))
    mlp = nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    opt = optim.Adam(mlp.parameters(), lr=1e-3)
    xm, ym = na.tensor(rng.standard_normal((128, 784)).astype(np.float32)), na.tensor(rng.integers(0, 10, 128))

    def clear(*leaves):
        for t in leaves:
            t.grad = None

    workloads = {
        "exact GELU 1M fwd+bwd": lambda: (F.gelu(x1).backward(up1), clear(x1)),
        "layer_norm 4096x512 fwd+bwd": lambda: (F.layer_norm(x2, (512,), w2, b2).backward(up2), clear(x2, w2, b2)),
        "softmax cross-entropy 4096x1000 fwd+bwd": lambda: (F.cross_entropy(x3, t3).backward(), clear(x3)),
        "MLP 784-100-10 step with Adam, batch 128": lambda: (opt.zero_grad(), F.cross_entropy(mlp(xm), ym).backward(),
                                                            opt.step()),
    }

    def with_kernels(flag, fn):
        def call():
            with kernels.enabled(flag):
                fn()
        return call

    return [compare(name, {"neural-arch": with_kernels(True, fn), "NumPy path": with_kernels(False, fn)},
                    rounds=rounds) for name, fn in workloads.items()]
