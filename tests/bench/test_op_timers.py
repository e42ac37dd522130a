"""``benchmarks.op_timers``: per-op timers count each forward and backward once, exclusive of nested calls,
and leave the classes as they found them."""

import os
import sys
import time

import numpy as np

import neural_arch as na
from neural_arch.autograd import function
from neural_arch.autograd.function import Function
from neural_arch.ops.linalg import MatMul

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))  # the repository root: `benchmarks`

from benchmarks.op_timers import OpTimers  # noqa: E402


def test_counts_each_op_once_per_phase_and_restores_the_classes():
    apply, backward, in_float32 = Function.__dict__["apply"], MatMul.__dict__["backward"], function.backward_in_float32
    a = na.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    b = na.tensor(np.ones((4, 2), np.float32), requires_grad=True)
    with OpTimers(time.thread_time) as timers:
        ((a @ b).sum()).backward()
        with na.autocast("cpu", dtype=na.bfloat16):  # a Cast nested in the product's apply: counted apart
            a @ b
    calls = {(op, phase): n for op, phase, _, n in timers.rows()}
    assert calls[("MatMul", "forward")] == 2 and calls[("MatMul", "backward")] == 1
    assert calls[("Sum", "forward")] == 1 and calls[("Cast", "forward")] == 2
    assert all(s >= 0 for _, _, s, _ in timers.rows())
    assert Function.__dict__["apply"] is apply and MatMul.__dict__["backward"] is backward
    assert function.backward_in_float32 is in_float32
    np.testing.assert_array_equal(a.grad.numpy(), np.full((3, 4), 2.0, np.float32))
