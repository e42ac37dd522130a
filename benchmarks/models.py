"""Models suite: the kernels the new architectures lean on, forward and forward+backward, float32,
against torch (the ops suite's protocol): EfficientNet's depthwise convolutions and Mamba's selective
scan (torch has no scan op: its side is the sequential loop of transformers' slow path).

    python -m benchmarks models                   # the full sizes (a quiet machine)
    python -c "from benchmarks.models import smoke; smoke()"   # tiny sizes, checks the suite runs
"""

from __future__ import annotations

from benchmarks.ops import _pair, compare_workloads


def _scan(F, lib, u, delta, A, B, C):
    """Ours: the selective_scan op. torch: the recurrence as transformers' slow path spells it."""
    import neural_arch as na

    if lib is na:
        from neural_arch.ops.scan import selective_scan

        return selective_scan(u, F.softplus(delta), -A.exp(), B, C)
    delta, A = F.softplus(delta), -A.exp()
    h = lib.zeros(u.shape[0], u.shape[2], A.shape[1])
    ys = []
    for t in range(u.shape[1]):
        h = lib.exp(delta[:, t, :, None] * A) * h + (delta[:, t] * u[:, t])[..., None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1))
    return lib.stack(ys, dim=1)


def workloads(n: int = 32, hw: int = 56, length: int = 256, d_inner: int = 256):
    """name -> (arrays, fn(F, lib, *tensors)); the defaults are B0's shapes at 224x224 / a small Mamba."""
    c1, c2 = 96, 144
    return {
        f"depthwise conv2d N{n} C{c1} {hw}x{hw} k3 s1 p1 (B0 stage 2)": (
            _pair([(n, c1, hw, hw), (c1, 1, 3, 3)]), lambda F, lib, x, w: F.conv2d(x, w, padding=1, groups=c1)),
        f"depthwise conv2d N{n} C{c2} {hw}x{hw} k5 s2 p2 (B0 stage 3)": (
            _pair([(n, c2, hw, hw), (c2, 1, 5, 5)]),
            lambda F, lib, x, w: F.conv2d(x, w, stride=2, padding=2, groups=c2)),
        f"selective scan B8 L{length} D{d_inner} N16": (
            _pair([(8, length, d_inner), (8, length, d_inner), (d_inner, 16), (8, length, 16), (8, length, 16)],
                  scale=0.5), _scan),
    }


def run(rounds: int = 10):
    return compare_workloads(workloads(), rounds)


def smoke():
    """Tiny sizes, two rounds: the suite runs end to end (no figures worth keeping)."""
    from benchmarks.harness import table

    print(table(compare_workloads(workloads(n=2, hw=8, length=8, d_inner=8), rounds=2)))
