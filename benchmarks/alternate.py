"""Two versions of neural-arch, alternated process by process: medians of per-process best times.

On a machine that others load, two suite runs minutes apart differ by more than most changes; processes
that alternate, each timing CPU time (``time.process_time``: it also counts our helper threads), do not.

    python -m benchmarks.alternate OLD_SRC NEW_SRC chain [--pairs 7]
    python -m benchmarks.alternate OLD_SRC NEW_SRC mlp
    python -m benchmarks.alternate OLD_SRC NEW_SRC row "layer_norm 4096x512" step

OLD_SRC / NEW_SRC: each version's ``src`` folder (e.g. a ``git worktree`` of the old commit). The workloads
are this file's and the ops/layers suites' of the checkout it is run from, the same for both versions:

* ``chain``: the overhead suite's 100-op chain of tiny multiplications, forward and backward (us per op);
* ``mlp``: one step of the train suite's MLP 784-100-10 with Adam, batch 128, fixed batches (ms);
* ``row NAME fwd|step``: one row of ``benchmarks.ops`` / ``benchmarks.layers`` (ms).

A child (``--child``) warms up and prints its best time; the parent prints each pair and the medians.
Set ``NEURAL_ARCH_NUM_THREADS=1`` to compare the code on one thread, without the helpers' scheduling.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _best(fn, rounds: int, inner: int, warm: int) -> float:
    for _ in range(warm):
        fn()
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        for _ in range(inner):
            fn()
        best = min(best, (time.process_time() - t) / inner)
    return best


def _chain():
    import neural_arch as na

    x = na.tensor(np.random.default_rng(0).standard_normal(8).astype(np.float32), requires_grad=True)
    ones = na.ones(8)

    def run():
        y = x
        for _ in range(100):
            y = y * 1.0001
        y.backward(ones)
        x.grad = None

    return _best(run, 40, 20, 200) / 100 * 1e6, "us per op"


def _mlp():
    import neural_arch as na
    import neural_arch.nn as nn
    import neural_arch.nn.functional as F
    from neural_arch import optim

    model = nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    batches = [(na.tensor(rng.standard_normal((128, 784)).astype(np.float32)), na.tensor(rng.integers(0, 10, 128)))
               for _ in range(25)]

    def epoch():
        for x, y in batches:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()

    return _best(epoch, 20, 1, 2) / len(batches) * 1e3, "ms per step"


def _row(name: str, mode: str):
    import neural_arch as na
    import neural_arch.nn.functional as F
    from benchmarks import layers, ops

    arrays, fn = {**ops.workloads(), **layers.workloads()}[name]
    xs = [na.tensor(a, requires_grad=True) for a in arrays]
    up = []

    def run():
        if mode == "fwd":
            with na.no_grad():
                fn(F, na, *xs)
            return
        out = fn(F, na, *xs)
        if not up:
            up.append(na.tensor(np.ones(out.shape, np.float32)))
        out.backward(up[0])
        for t in xs:
            t.grad = None

    return _best(run, 30, 1, 5) * 1e3, "ms"


def _child(args):
    value, unit = {"chain": _chain, "mlp": _mlp}[args[0]]() if args[0] != "row" else _row(*args[1:3])
    print(f"{value:.4f} {unit}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old_src")
    p.add_argument("new_src")
    p.add_argument("workload", nargs="+", help="chain | mlp | row NAME fwd|step")
    p.add_argument("--pairs", type=int, default=7)
    a = p.parse_args(argv)
    runs = {"old": [], "new": []}
    unit = ""
    for i in range(a.pairs):
        for who, src in (("old", a.old_src), ("new", a.new_src)):
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(src), _ROOT]))
            out = subprocess.run([sys.executable, "-m", "benchmarks.alternate", "--child", *a.workload],
                                 env=env, cwd=_ROOT, capture_output=True, text=True, check=True).stdout.split()
            runs[who].append(float(out[0]))
            unit = " ".join(out[1:])
        print(f"pair {i + 1}: old {runs['old'][-1]:.3f}  new {runs['new'][-1]:.3f} {unit}", flush=True)
    old, new = statistics.median(runs["old"]), statistics.median(runs["new"])
    print(f"{' '.join(a.workload)}: median old {old:.3f}  new {new:.3f} {unit}  new/old {new / old:.3f}  "
          f"(old {min(runs['old']):.3f}-{max(runs['old']):.3f}, new {min(runs['new']):.3f}-{max(runs['new']):.3f})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
    else:
        main()
