"""Layer suite: the other layers of convolutional and recurrent nets, forward and forward+backward,
float32, neural-arch against torch (the ops suite's protocol): normalisation over channels, pooling,
sigmoid. Added when a scan of common ops found these 3-25x slower than torch (BENCHMARKS.md).
"""

from __future__ import annotations

from benchmarks.ops import _pair, compare_workloads


def workloads():
    def w(c):
        return [(c,), (c,)]

    return {
        "batch_norm train 64x32x28x28": (
            _pair([(64, 32, 28, 28), *w(32)]),
            lambda F, lib, x, g, b: F.batch_norm(x, None, None, g, b, training=True),
        ),
        "group_norm 8 groups 32x64x28x28": (
            _pair([(32, 64, 28, 28), *w(64)]), lambda F, lib, x, g, b: F.group_norm(x, 8, g, b),
        ),
        "max_pool2d 2 64x32x28x28": (_pair([(64, 32, 28, 28)]), lambda F, lib, x: F.max_pool2d(x, 2)),
        "avg_pool2d 2 64x32x28x28": (_pair([(64, 32, 28, 28)]), lambda F, lib, x: F.avg_pool2d(x, 2)),
        "adaptive_avg_pool2d 1 64x256x7x7": (
            _pair([(64, 256, 7, 7)]), lambda F, lib, x: F.adaptive_avg_pool2d(x, 1),
        ),
        "sigmoid 1M": (_pair([(1 << 20,)]), lambda F, lib, x: x.sigmoid()),
    }


def run(rounds: int = 15):
    return compare_workloads(workloads(), rounds)
