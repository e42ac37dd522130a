"""SIGKILL during checkpoint writes never leaves the latest checkpoint unreadable.

A child process (forked, so no interpreter start-up per kill) saves ~8 MB
checkpoints to the same path in a loop, each one filled with its step number,
and reports each finished save on a pipe; the parent waits for one, kills the
child with SIGKILL after a short random delay (inside the next save, most
often), and after every kill loads the file and checks it is a complete
checkpoint of one step. It goes on until it has killed at least 30 times and
at least one kill landed mid-write (a temp file left behind): no timing decides
whether the test passes.
"""

import os
import select
import signal
import time

import numpy as np
import pytest

import neural_arch as na

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

N_KILLS = 30
MAX_KILLS = 300  # a bound so that a broken writer fails the test instead of looping


def _write_forever(path, report):
    step = int(na.load(path)["step"])
    while True:
        step += 1
        na.save({"step": step, "w": na.full((1024, 1024), float(step)), "b": np.full(1024, step)}, path)
        os.write(report, b"s")


def _check(path):
    ckpt = na.load(path)  # raises CheckpointError if the file is torn
    step = ckpt["step"]
    assert (ckpt["w"].numpy() == step).all() and (ckpt["b"] == step).all()
    return step


def test_sigkill_mid_write_never_corrupts_the_checkpoint(tmp_path):
    path = tmp_path / "last.safetensors"
    na.save({"step": 0, "w": na.full((1024, 1024), 0.0), "b": np.full(1024, 0)}, path)
    rng = np.random.default_rng(0)
    steps = [0]
    kills = 0
    while kills < N_KILLS or not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]:
        assert kills < MAX_KILLS, "no kill landed during a write; the test did not exercise anything"
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: write until killed; never return into pytest
            try:
                os.close(read_end)
                _write_forever(path, write_end)
            finally:
                os._exit(1)
        os.close(write_end)
        try:  # a save finished (bounded wait: a writer that never finishes one fails the test)
            assert select.select([read_end], [], [], 300)[0], "the writer finished no checkpoint in 300 s"
            assert os.read(read_end, 1) == b"s"
            time.sleep(float(rng.uniform(0.0, 0.01)))  # where the kill lands varies; any place is valid
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        finally:
            os.close(read_end)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "the writer died on its own"
        kills += 1
        steps.append(_check(path))
    assert steps == sorted(steps) and steps[-1] >= kills  # every run finished at least one save
