"""Convolution per shape: every distinct conv2d of ResNet-18 on 64x64 images at batch 32, and the ops
suite's shape, forward and forward+backward, float32, neural-arch against torch (oneDNN), interleaved.

    python -m benchmarks conv_algos

``candidates(rounds)`` times each algorithm of ``backend/kernels/conv.py`` on each shape, our own
candidates only (forced through ``conv.force_algorithm``), for the per-shape choice in that module's table.
"""

from __future__ import annotations

from benchmarks.ops import _pair, compare_workloads

BATCH = 32

# (name, input shape, weight shape, stride, padding): ResNet-18 at 64x64 (stem 32x32 after stride 2, then
# max-pool to 16x16; stages at 16, 8, 4, 2), and the ops suite's shape
SHAPES = [
    ("suite 16->32 28x28 k3 s1", (BATCH, 16, 28, 28), (32, 16, 3, 3), 1, 1),
    ("stem 3->64 64x64 k7 s2", (BATCH, 3, 64, 64), (64, 3, 7, 7), 2, 3),
    ("64->64 16x16 k3 s1", (BATCH, 64, 16, 16), (64, 64, 3, 3), 1, 1),
    ("64->128 16x16 k3 s2", (BATCH, 64, 16, 16), (128, 64, 3, 3), 2, 1),
    ("64->128 16x16 k1 s2", (BATCH, 64, 16, 16), (128, 64, 1, 1), 2, 0),
    ("128->128 8x8 k3 s1", (BATCH, 128, 8, 8), (128, 128, 3, 3), 1, 1),
    ("128->256 8x8 k3 s2", (BATCH, 128, 8, 8), (256, 128, 3, 3), 2, 1),
    ("128->256 8x8 k1 s2", (BATCH, 128, 8, 8), (256, 128, 1, 1), 2, 0),
    ("256->256 4x4 k3 s1", (BATCH, 256, 4, 4), (256, 256, 3, 3), 1, 1),
    ("256->512 4x4 k3 s2", (BATCH, 256, 4, 4), (512, 256, 3, 3), 2, 1),
    ("256->512 4x4 k1 s2", (BATCH, 256, 4, 4), (512, 256, 1, 1), 2, 0),
    ("512->512 2x2 k3 s1", (BATCH, 512, 2, 2), (512, 512, 3, 3), 1, 1),
]


def workloads(shapes=SHAPES):
    def conv(stride, padding, input_grad):
        if input_grad:
            return lambda F, lib, x, w: F.conv2d(x, w, stride=stride, padding=padding)
        return lambda F, lib, x, w: F.conv2d(x.detach(), w, stride=stride, padding=padding)

    # the stem's input is the images: a network needs no gradient for it, so neither framework computes one
    return {f"conv2d {name}{'' if xs[1] > 3 else ' (no dL/dx)'}": (_pair([xs, ws], scale=0.1), conv(s, p, xs[1] > 3))
            for name, xs, ws, s, p in shapes}


def _torch_resnet18(classes):
    """torchvision's ResNet-18 (BasicBlock, [2, 2, 2, 2]) in plain torch.nn (torchvision is not a dependency)."""
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU()
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes)) if stride != 1 or inplanes != planes else None

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + idt)

    widths = (64, 128, 256, 512)
    stages = [nn.Sequential(BasicBlock(i, w, s), BasicBlock(w, w, 1))
              for i, w, s in zip((64,) + widths[:-1], widths, (1, 2, 2, 2))]
    return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                         *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes))


def resnet18_step(rounds: int = 5, side: int = 64, batch: int = BATCH, classes: int = 100, clock=None,
                  previous_plan: bool = False, without_dense: bool = False, mkl_products: bool = False):
    """One SGD training step (forward, cross-entropy, backward, momentum update) of ResNet-18 on
    ``batch`` images of ``side`` x ``side``, ours against torch's, interleaved. ``previous_plan`` adds our
    step with every conv forced to the plan all shapes took before the per-shape table (im2col, chunks
    sized for the caches, dL/dW transposed): the table's effect, measured in the same process.
    ``without_dense`` adds our step with the dense method off (``kernels.conv._DENSE``): im2col where the
    table picks dense (the 2x2 stage). ``mkl_products`` adds our step with the convs' products on MKL
    (``conv_algorithms.force_products``), where ``products()`` picks OpenBLAS (CPUs that are not Intel's)."""
    import time

    from benchmarks.harness import compare

    step_na, step_torch = _resnet_steps(batch, side, classes)
    contenders = {"neural-arch": step_na, "torch": step_torch}
    if previous_plan:
        from neural_arch.backend.kernels import conv_algorithms

        def step_previous():
            conv_algorithms.force = conv_algorithms.Plan("im2col", "cache", "transposed")
            try:
                step_na()
            finally:
                conv_algorithms.force = None

        contenders["neural-arch, previous plan"] = step_previous
    if without_dense:
        from neural_arch.backend.kernels import conv

        def step_without_dense():
            conv._DENSE = False
            try:
                step_na()
            finally:
                conv._DENSE = True

        contenders["neural-arch, no dense"] = step_without_dense
    if mkl_products:
        from neural_arch.backend.kernels import conv_algorithms as algos

        def step_mkl():
            algos.force_products = "mkl"
            try:
                step_na()
            finally:
                algos.force_products = None

        contenders["neural-arch, MKL products"] = step_mkl
    return [compare(f"ResNet-18 training step, batch {batch}, {side}x{side}", contenders, rounds=rounds,
                    clock=clock or time.perf_counter)]


def _resnet_steps(batch: int = BATCH, side: int = 64, classes: int = 100):
    """(our step, torch's step): ResNet-18 SGD training steps on one fixed batch, as ``resnet18_step`` times."""
    import numpy as np
    import torch

    import neural_arch as na
    from neural_arch.models import resnet18

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, side, side)).astype(np.float32)
    y = rng.integers(0, classes, batch)
    ours, ref = resnet18(num_classes=classes), _torch_resnet18(classes)
    opt = na.optim.SGD(ours.parameters(), lr=0.01, momentum=0.9)
    topt = torch.optim.SGD(ref.parameters(), lr=0.01, momentum=0.9)
    xs, ys, txs, tys = na.tensor(x), na.tensor(y), torch.tensor(x), torch.tensor(y)

    def step_na():
        opt.zero_grad()
        na.nn.functional.cross_entropy(ours(xs), ys).backward()
        opt.step()

    def step_torch():
        topt.zero_grad()
        torch.nn.functional.cross_entropy(ref(txs), tys).backward()
        topt.step()

    return step_na, step_torch


def profile(steps: int = 5, clock=None, top: int = 25) -> str:
    """Where a ResNet-18 step's time goes, ours against torch's, at the current thread counts: our per-op
    exclusive times (``benchmarks/op_timers.py``), our conv forward / backward per shape, and
    ``torch.profiler``'s self CPU time per op (wall time; ``clock`` sets ours, default wall time too).
    Milliseconds per step, averaged over ``steps`` after one warm-up step each."""
    import time
    from collections import defaultdict

    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from benchmarks.op_timers import OpTimers
    from neural_arch.ops import conv as conv_ops

    clock = clock or time.perf_counter
    step_na, step_torch = _resnet_steps()
    step_na()
    step_torch()
    per_shape = defaultdict(float)
    kern = conv_ops.kern

    def timed(name, fn):
        def run(grad_or_x, x_or_w, *rest):
            w, stride = (rest[0], rest[1]) if name == "backward" else (x_or_w, rest[1])
            c = w.shape[1]
            side = grad_or_x.shape[2] if name == "forward" else x_or_w.shape[2]
            key = f"{c}->{w.shape[0]} {side}x{side} k{w.shape[2]} s{stride[0]} {name}"
            t0 = clock()
            try:
                return fn(grad_or_x, x_or_w, *rest)
            finally:
                per_shape[key] += clock() - t0
        return run

    class _Timed:  # the conv op module's kernel functions, timed per shape
        conv2d_forward = staticmethod(timed("forward", kern.conv2d_forward))
        conv2d_backward = staticmethod(timed("backward", kern.conv2d_backward))

    conv_ops.kern = _Timed
    total = 0.0
    try:
        with OpTimers(clock=clock) as timers:
            for _ in range(steps):
                t0 = clock()
                step_na()
                total += clock() - t0
    finally:
        conv_ops.kern = kern
    lines = [f"neural-arch: step {total / steps * 1e3:.1f} ms", "| op, phase | ms per step | calls |", "|---|---|---|"]
    rows = timers.rows()
    lines += [f"| {op} {phase} | {s / steps * 1e3:.2f} | {calls // steps} |" for op, phase, s, calls in rows[:top]]
    lines.append(f"| rest (engine, optimizer) | {(total - sum(r[2] for r in rows)) / steps * 1e3:.2f} | |")
    lines += ["", "| conv2d per shape | ms per step |", "|---|---|"]
    lines += [f"| {k} | {v / steps * 1e3:.2f} |" for k, v in sorted(per_shape.items())]
    t0 = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step_torch()
    lines += ["", f"torch: step {(time.perf_counter() - t0) / steps * 1e3:.1f} ms (under the profiler)",
              "| op | self CPU ms per step | calls per step |", "|---|---|---|"]
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]
    lines += [f"| {e.key} | {e.self_cpu_time_total / 1e3 / steps:.2f} | {e.count // steps} |" for e in events]
    return "\n".join(lines)


def run(rounds: int = 15):
    return compare_workloads(workloads(), rounds) + resnet18_step(max(3, rounds // 3))


def run_one_thread(rounds: int = 15, shapes=SHAPES):
    """Both frameworks on one thread, timed by the process's CPU time: on a machine shared with other
    jobs that measures the work itself (wall time there measures the scheduler)."""
    import time

    import torch

    import neural_arch as na

    threads_before = (torch.get_num_threads(), na.get_num_threads())
    torch.set_num_threads(1)
    na.set_num_threads(1)
    try:
        return (compare_workloads(workloads(shapes), rounds, clock=time.process_time)
                + resnet18_step(max(3, rounds // 3), clock=time.process_time))
    finally:
        torch.set_num_threads(threads_before[0])
        na.set_num_threads(threads_before[1])


def candidates(rounds: int = 9, shapes=SHAPES) -> str:
    """fwd+bwd of every candidate plan of ``conv_algorithms`` on each shape, and torch's, interleaved, on
    one thread, by CPU time; a Markdown table with the median of each (ms) and the plan the table picks."""
    import time

    import numpy as np
    import torch
    import torch.nn.functional as TF

    import neural_arch as na
    import neural_arch.nn.functional as F
    from benchmarks.harness import compare
    from neural_arch.backend.kernels import conv_algorithms, conv_dense, winograd

    torch.set_num_threads(1)
    na.set_num_threads(1)
    names = list(conv_algorithms.CANDIDATES)
    lines = ["| shape | " + " | ".join(names) + " | torch | chosen | torch / chosen |", "|---" * (len(names) + 4) + "|"]
    for name, xs, ws, stride, pad in shapes:
        x, w = _pair([xs, ws], scale=0.1)
        ours = [na.tensor(x, requires_grad=True), na.tensor(w, requires_grad=True)]
        ref = [torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)]
        up = np.ones(F.conv2d(ours[0], ours[1], stride=stride, padding=pad).shape, np.float32)

        def step(lib, fn, tensors, plan, stride=stride, pad=pad, up=up):
            def run():
                conv_algorithms.force = plan
                y = fn.conv2d(tensors[0], tensors[1], stride=stride, padding=pad)
                y.backward(lib.tensor(up))
                conv_algorithms.force = None
            return run

        fits = {"im2col": True, "winograd": winograd.applies(ws[2:], (stride, stride), (1, 1), 1, (pad,) * 4),
                "dense": conv_dense.applies(xs[2:], ws[2:], 1)}
        contenders = {c: step(na, F, ours, plan) for c, plan in conv_algorithms.CANDIDATES.items()
                      if fits[plan.method]}
        contenders["torch"] = step(torch, TF, ref, None)
        res = compare(name, contenders, rounds=rounds, clock=time.process_time)
        med = {c: res.median(c) * 1e3 for c in contenders}
        chosen = conv_algorithms.plan_for(xs[1], ws[0], ws[2:], (stride, stride), up.shape[2:], xs[2:], xs[0])
        pick = chosen.name
        cells = [f"{med[c]:.2f}" if c in med else "-" for c in names]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {med['torch']:.2f} | {pick} | "
                     f"{med['torch'] / med[pick]:.2f} |")
    return "\n".join(lines)


def products(rounds: int = 9, shapes=SHAPES, threads_each: int = 1) -> str:
    """fwd+bwd of the plan the table picks on each shape with the products on MKL and on NumPy's OpenBLAS
    (``conv_algorithms.force_products``), and torch's, interleaved, on one thread, by CPU time (with
    ``threads_each`` > 1: on that many threads each, by wall time); a Markdown table of the medians (ms), and
    which BLAS ``conv_algorithms.products()`` picks on this machine."""
    import time

    import numpy as np
    import torch
    import torch.nn.functional as TF

    import neural_arch as na
    import neural_arch.nn.functional as F
    from benchmarks.harness import compare
    from neural_arch.backend import threads
    from neural_arch.backend.kernels import conv_algorithms

    torch.set_num_threads(threads_each)
    na.set_num_threads(threads_each)
    clock = time.process_time if threads_each == 1 else time.perf_counter
    arch = ", ".join(str(i.get("architecture")) for i in threads.blas_info())
    picks = f"products() picks {conv_algorithms.products()} (CPU {conv_algorithms.threads.cpu_vendor()}, OpenBLAS {arch})"
    lines = [picks, "", "| shape | plan | MKL | OpenBLAS | torch | torch / MKL | torch / OpenBLAS |",
             "|---|---|---|---|---|---|---|"]
    for name, xs, ws, stride, pad in shapes:
        x, w = _pair([xs, ws], scale=0.1)
        ours = [na.tensor(x, requires_grad=xs[1] > 3), na.tensor(w, requires_grad=True)]
        ref = [torch.tensor(x, requires_grad=xs[1] > 3), torch.tensor(w, requires_grad=True)]
        up = np.ones(F.conv2d(ours[0], ours[1], stride=stride, padding=pad).shape, np.float32)

        def step(lib, fn, tensors, blas, stride=stride, pad=pad, up=up):
            def run():
                conv_algorithms.force_products = blas
                try:
                    fn.conv2d(tensors[0], tensors[1], stride=stride, padding=pad).backward(lib.tensor(up))
                finally:
                    conv_algorithms.force_products = None
            return run

        contenders = {"mkl": step(na, F, ours, "mkl"), "openblas": step(na, F, ours, "openblas"),
                      "torch": step(torch, TF, ref, None)}
        res = compare(name, contenders, rounds=rounds, clock=clock)
        med = {c: res.median(c) * 1e3 for c in contenders}
        plan = conv_algorithms.plan_for(xs[1], ws[0], ws[2:], (stride, stride), up.shape[2:], xs[2:], xs[0]).name
        lines.append(f"| {name} | {plan} | {med['mkl']:.2f} | {med['openblas']:.2f} | {med['torch']:.2f} | "
                     f"{med['torch'] / med['mkl']:.2f} | {med['torch'] / med['openblas']:.2f} |")
    return "\n".join(lines)


def stem_im2col(rounds: int = 11):
    """The stem's fwd+bwd (no dL/dx), one thread, CPU time: ours with the phase-plane im2col, torch, and ours
    with the strided im2col (``kernels.conv._PHASES`` off), interleaved in one process."""
    import time

    import numpy as np
    import torch

    import neural_arch as na
    import neural_arch.nn.functional as F
    from benchmarks.harness import compare
    from neural_arch.backend.kernels import conv

    torch.set_num_threads(1)
    na.set_num_threads(1)
    x, w = _pair([(BATCH, 3, 64, 64), (64, 3, 7, 7)], scale=0.1)
    xs, ws = na.tensor(x), na.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x), torch.tensor(w, requires_grad=True)
    up = np.ones((BATCH, 64, 32, 32), np.float32)

    def ours(phases):
        def run():
            conv._PHASES = phases
            try:
                F.conv2d(xs, ws, stride=2, padding=3).backward(na.tensor(up))
            finally:
                conv._PHASES = True
            ws.grad = None
        return run

    def ref():
        torch.nn.functional.conv2d(tx, tw, stride=2, padding=3).backward(torch.tensor(up))
        tw.grad = None

    return [compare("stem 3->64 64x64 k7 s2, fwd+bwd (no dL/dx)",
                    {"neural-arch": ours(True), "torch": ref, "neural-arch, strided im2col": ours(False)},
                    rounds=rounds, clock=time.process_time)]


if __name__ == "__main__":  # python -m benchmarks.conv_algos [candidates|products|resnet|stem|profile] [rounds]: one
    # thread, CPU time (profile: the default threads, wall time)
    import sys
    import time

    import torch

    import neural_arch as na
    from benchmarks.harness import machine, table

    args = sys.argv[1:]
    mode = args.pop(0) if args and not args[0].isdigit() else "compare"
    count = int(args[0]) if args else 9
    print(f"machine: {machine()}\n")
    if mode == "candidates":
        print(candidates(count))
    elif mode == "profile":  # at the default thread counts, wall time: take it on a quiet machine
        print(profile(count))
    elif mode == "products":  # products 9 2: at two threads each, wall time
        print(products(count, threads_each=int(args[1]) if len(args) > 1 else 1))
    elif mode == "stem":
        print(table(stem_im2col(count)))
    elif mode == "resnet":  # the step, one thread, CPU time, with the previous plan beside it
        torch.set_num_threads(1)
        na.set_num_threads(1)
        print(table(resnet18_step(count, clock=time.process_time, previous_plan=True, without_dense=True,
                                  mkl_products=True)))
    else:
        print(table(run_one_thread(count)))
