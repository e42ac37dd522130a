"""Scan suite: more everyday ops, forward and forward+backward, float32, against torch (the ops
suite's protocol), to find the next slow one. No targets; BENCHMARKS.md keeps the latest table.
"""

from __future__ import annotations

from benchmarks.ops import _pair, compare_workloads


def workloads():
    return {
        "conv2d stride 2 32x32x28x28 -> 64 k3 p1": (
            _pair([(32, 32, 28, 28), (64, 32, 3, 3)]), lambda F, lib, x, w: F.conv2d(x, w, stride=2, padding=1)),
        "conv2d 1x1 32x64x14x14 -> 128": (_pair([(32, 64, 14, 14), (128, 64, 1, 1)]),
                                          lambda F, lib, x, w: F.conv2d(x, w)),
        "softmax 4096x1000": (_pair([(4096, 1000)]), lambda F, lib, x: F.softmax(x, -1)),
        "relu 4M": (_pair([(1 << 22,)]), lambda F, lib, x: F.relu(x)),
        "tanh 1M": (_pair([(1 << 20,)]), lambda F, lib, x: x.tanh()),
        "exp 1M": (_pair([(1 << 20,)]), lambda F, lib, x: x.exp()),
        "rms_norm 4096x512": (_pair([(4096, 512), (512,)]), lambda F, lib, x, w: F.rms_norm(x, (512,), w)),
        "mse_loss 4096x512": (_pair([(4096, 512), (4096, 512)]), lambda F, lib, a, b: F.mse_loss(a, b)),
        "sum over dim 1 4096x1000": (_pair([(4096, 1000)]), lambda F, lib, x: x.sum(1)),
        "mean over dim 0 4096x1000": (_pair([(4096, 1000)]), lambda F, lib, x: x.mean(0)),
        "transpose(1, 2) + b 64x128x256": (_pair([(64, 128, 256), (64, 256, 128)]),
                                           lambda F, lib, a, b: a.transpose(1, 2) + b),
        "x * v (broadcast) 64x128x256": (_pair([(64, 128, 256), (256,)]), lambda F, lib, a, b: a * b),
        "cat of three 64x128x256 on dim 1": (_pair([(64, 128, 256)] * 3),
                                             lambda F, lib, a, b, c: lib.cat([a, b, c], 1)),
        "bmm 64x128x64 @ 64x64x128": (_pair([(64, 128, 64), (64, 64, 128)]), lambda F, lib, a, b: a @ b),
    }


def run(rounds: int = 15):
    return compare_workloads(workloads(), rounds)
