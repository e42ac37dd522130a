"""Importing neural-arch, and running a training step, changes nothing process-wide that a user sees:
NumPy's BLAS keeps its thread count and ``os.environ`` keeps every variable (DESIGN.md, Layers).

Each case runs in a fresh interpreter: what is checked is exactly the state import would change."""

import json
import os
import subprocess
import sys

import pytest

# Sets NumPy's BLAS to 3 threads first (a count neural-arch never picks itself, even on 2 cores), then
# snapshots the BLAS state and os.environ: after import, and after a step whose products are large
# enough to be split over our threads and small enough to be one scoped BLAS call. (A BLAS loaded
# later, as SciPy's by numba's first compile, is a new library, not a changed setting.)
_SCRIPT = r"""
import json, os, sys
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

threadpool_limits(3, user_api="blas")

def blas():
    return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas")

def snapshot():
    return {"blas": blas(), "environ": dict(os.environ)}

states = {"before": snapshot()}
import neural_arch
import neural_arch.nn as nn
import neural_arch.nn.functional as F
from neural_arch.optim import AdamW
states["import"] = snapshot()

neural_arch.manual_seed(0)
model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10))
opt = AdamW(model.parameters(), lr=1e-3)
x, y = neural_arch.randn(128, 784), neural_arch.randint(0, 10, (128,))
for _ in range(2):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
states["step"] = snapshot()
states["loss"] = float(loss.item())
print(json.dumps(states))
"""


def _run(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("threads", [None, "1"], ids=["default", "NEURAL_ARCH_NUM_THREADS=1"])
def test_import_and_a_training_step_leave_blas_threads_and_environ_unchanged(threads):
    env = dict(os.environ)
    if threads is None:
        env.pop("NEURAL_ARCH_NUM_THREADS", None)
    else:
        env["NEURAL_ARCH_NUM_THREADS"] = threads
    states = _run(env)
    before = states["before"]
    assert before["blas"] and all(n == 3 for _, n in before["blas"])  # the limit the script set took effect
    for when in ("import", "step"):
        # every BLAS loaded before keeps its threads (numba's first compile may load SciPy's, untouched)
        after = dict(map(tuple, states[when]["blas"]))
        assert all(after.get(path) == n for path, n in before["blas"]), (when, states[when]["blas"])
        assert states[when]["environ"] == before["environ"], when
    assert states["loss"] == states["loss"]  # a number: the step ran


def test_set_num_threads_is_torchs_and_checks_its_argument():
    import neural_arch as na
    from neural_arch.backend.threads import policy

    old = na.get_num_threads()
    try:
        na.set_num_threads(1)
        assert na.get_num_threads() == policy.num_threads == 1
    finally:
        na.set_num_threads(old)
    for bad in (0, -2, 1.5, "2", True):
        with pytest.raises(ValueError, match="set_num_threads"):
            na.set_num_threads(bad)
    assert na.get_num_threads() == old
