"""Data-parallel correctness on real MPI ranks (one mpiexec per world size, every check inside:
tests/distributed/ddp_worker.py), plus the engine's early leaf hooks that DDP's overlap relies on."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neural_arch as na
from neural_arch.distributed.launch import mpiexec_command

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"


def run_ranks(n, script, *args, timeout=240, env_extra=None, mpiexec_args=()):
    """Run ``script`` from this folder on ``n`` ranks with this worktree's sources; the CompletedProcess."""
    env_path = os.pathsep.join([str(SRC), str(HERE)] + ([os.environ["PYTHONPATH"]] if "PYTHONPATH" in os.environ else []))
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env_path
    os.environ["NEURAL_ARCH_NUM_THREADS"] = "1"
    try:
        argv, env = mpiexec_command(n)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = saved
        os.environ.pop("NEURAL_ARCH_NUM_THREADS")
    env["PYTHONPATH"], env["NEURAL_ARCH_NUM_THREADS"] = env_path, "1"
    env.update(env_extra or {})
    argv[1:1] = list(mpiexec_args)
    return subprocess.run(argv + [sys.executable, str(HERE / script), *map(str, args)], env=env, timeout=timeout,
                          capture_output=True, text=True, check=False)


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 4])
def test_n_ranks_match_one_process_with_the_whole_batch(n, tmp_path):
    out = tmp_path / "result.json"
    proc = run_ranks(n, "ddp_worker.py", out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["world_size"] == n
    checks = result["checks"]
    assert len(checks) == 11
    for name, check in checks.items():
        tol = 1e-12 if "float64" in name else 1e-6
        assert check["rel"] <= tol, (name, check)
    for name in ("zero_mlp_float64", "zero_mlp_float32", "zero_gpt_float64", "zero_gpt_float32"):
        per_rank, full = checks[name]["state_bytes_per_rank"], checks[name]["full_state_bytes"]
        assert sum(per_rank) == full > 0  # sharded, nothing kept twice
        if "gpt" in name:  # many parameters: the shards are close to 1/N each
            assert max(per_rank) <= 1.3 * full / n, (name, per_rank)
        assert checks[name]["consolidated_rel"] <= (1e-12 if "float64" in name else 1e-6)
        assert checks[name]["reloaded_equal"] is True
    for rank, errors in enumerate(result["errors"]):
        assert errors["shape"].startswith("ShapeError") and "different shapes" in errors["shape"], errors
        assert errors["dtype"].startswith("DTypeError") and "float32" in errors["dtype"], errors
        assert errors["unused"].startswith("GradientError") and "unused.weight" in errors["unused"], errors
        assert errors["find_unused_ok"] is True
        assert errors["async_sum"] == [n * (n + 1) / 2] * 4


def test_hooked_leaf_fires_before_the_rest_of_backward():
    """A leaf hook runs when the leaf's gradient is complete, not after the whole pass: here w2's hook
    must see its gradient before w1 (nearer the input) gets one, and the total for w (used twice)."""
    w1 = na.tensor(np.ones(3), requires_grad=True)
    w2 = na.tensor(np.full(3, 2.0), requires_grad=True)
    seen = []
    w2.register_hook(lambda g: seen.append(("w2", w1.grad is None, g.numpy().tolist())))
    w1.register_hook(lambda g: seen.append(("w1", g.numpy().tolist())))
    x = na.tensor(np.arange(3.0))
    ((x * w1).exp() * w2 * w2).sum().backward()
    assert seen[0][0] == "w2" and seen[0][1] is True  # w1 had no gradient yet
    np.testing.assert_allclose(seen[0][2], 2 * 2.0 * np.exp(np.arange(3.0)))  # d(w2^2)/dw2 summed over both uses
    np.testing.assert_allclose(w2.grad.numpy(), seen[0][2])


def test_queue_callback_runs_once_after_the_pass():
    from neural_arch.autograd.engine import queue_callback

    w = na.tensor(np.ones(2), requires_grad=True)
    calls = []
    w.register_hook(lambda g: queue_callback(lambda: calls.append(w.grad is not None)))
    (w * 3).sum().backward()
    assert calls == [True]  # ran once, after the gradient was accumulated
    (w * 3).sum().backward()
    assert calls == [True, True]
