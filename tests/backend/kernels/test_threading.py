"""backend.kernels._jit.Kernel: calls split over the threads, in a forked child, from two threads."""

import numpy as np
import pytest

from neural_arch.backend.kernels import activation, norm, softmax_loss

pytestmark = pytest.mark.usefixtures("jit")

rng = np.random.default_rng(0)
f32 = np.float32


def test_kernels_run_when_numba_has_fewer_threads_than_cores(tmp_path):
    """NUMBA_NUM_THREADS=1 on a multi-core machine: big inputs must not ask numba for more threads."""
    import subprocess
    import sys

    code = ("import numpy as np, neural_arch as na, neural_arch.nn.functional as F\n"
            "x = na.tensor(np.ones((1100, 1000), np.float32), requires_grad=True)\n"
            "F.layer_norm(x, (1000,)).sum().backward()\nprint('ok')\n")
    env = {**__import__("os").environ, "NUMBA_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_calls_split_over_threads_agree_with_one_thread(monkeypatch):
    from neural_arch.backend import threads

    monkeypatch.setattr(threads.policy, "num_threads", 3)  # 3 row ranges, even on a 2-core machine
    x = (rng.standard_normal((64, 96)) * 2).astype(f32)
    w, b = rng.standard_normal(96).astype(f32), rng.standard_normal(96).astype(f32)
    g = rng.standard_normal((64, 96)).astype(f32)
    t = rng.integers(0, 96, 64)
    outs = {}
    for name, threshold in (("one thread", 1 << 40), ("split", 0)):  # what Kernel.__call__ picks by size
        monkeypatch.setattr(threads.policy, "kernel_min_elements", threshold)
        y, d = np.empty(x.size, f32), np.empty(x.size, f32)
        activation.gelu_forward_with_grad(x.reshape(-1), y, d)
        ln, mean, rstd = np.empty_like(x), np.empty(64, f32), np.empty(64, f32)
        norm.layer_norm_forward_kernel(x, w, b, f32(1e-5), ln, mean, rstd)
        dx, dw, db = np.empty_like(x), np.zeros((12, 96), f32), np.zeros((12, 96), f32)
        norm.layer_norm_backward_kernel(g, x, w, mean, rstd, dx, dw, db)
        loss, dce, stats = np.empty(64, f32), np.empty_like(x), np.zeros((12, 3))
        softmax_loss.cross_entropy_kernel(x, t, -100, f32(0.1), loss, dce, True, stats)
        outs[name] = (y, d, ln, mean, rstd, dx, dw.sum(0), db.sum(0), loss, dce, stats.sum(0))
    for a, b_ in zip(outs["one thread"], outs["split"]):
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-6)


def test_split_calls_work_in_a_forked_child_and_from_two_threads(monkeypatch):
    """The helper threads are per process (a fork has none), and a second caller runs its ranges itself."""
    import os
    import threading

    from neural_arch.backend import threads

    monkeypatch.setattr(threads.policy, "kernel_min_elements", 0)
    x = rng.standard_normal(4096).astype(f32)
    ref_y, ref_d = np.empty_like(x), np.empty_like(x)
    activation.gelu_forward_with_grad.serial(x, ref_y, ref_d)

    def check():
        y, d = np.empty_like(x), np.empty_like(x)
        activation.gelu_forward_with_grad(x, y, d)
        return np.array_equal(y, ref_y) and np.array_equal(d, ref_d)

    assert check()  # starts the helpers in this process
    results = []
    workers = [threading.Thread(target=lambda: results.append(all(check() for _ in range(50)))) for _ in range(3)]
    for w_ in workers:
        w_.start()
    for w_ in workers:
        w_.join()
    assert results == [True] * 3
    pid = os.fork()
    if pid == 0:  # the child: must not wait for helpers that were not forked with it
        os._exit(0 if check() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
