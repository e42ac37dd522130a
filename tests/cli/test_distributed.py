"""``neural-arch train CONFIG --nproc N`` with real ranks: SIGTERM to the launcher stops every rank with a
checkpoint; ``--resume`` on a different N continues the same run (the same parameters as never stopping)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import neural_arch as na

SRC = Path(__file__).parents[2] / "src"
TINY = {
    "name": "tiny-ddp",
    "seed": 3,
    "model": {"name": "char_mlp", "kwargs": {"context": 4, "n_embd": 8, "hidden": 32, "dropout": 0.0}},
    "data": {"name": "tinyshakespeare", "block_size": 16, "val_windows": 64, "prefetch": 1},
    "optimizer": {"name": "sgd", "lr": 0.1},
    "scheduler": {"name": "none"},
    "train": {"batch_size": 8, "max_steps": 100000, "eval_every": 100000, "checkpoint_every": None, "log_every": 1},
    "logging": {"progress": False, "plot": False, "sample_chars": 0},
}


def config(tmp_path, run_dir, max_steps):
    cfg = json.loads(json.dumps(TINY))
    cfg["run_dir"] = str(run_dir)
    cfg["train"]["max_steps"] = max_steps
    path = tmp_path / f"{Path(run_dir).name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def train_cmd(*args):
    return [sys.executable, "-m", "neural_arch.cli", "train", *map(str, args)]


ENV = dict(os.environ, PYTHONPATH=str(SRC), PYTHONUNBUFFERED="1")


@pytest.mark.slow
def test_sigterm_stops_all_ranks_with_a_checkpoint_and_resume_on_other_n_continues_the_run(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(train_cmd(config(tmp_path, run, 100000), "--nproc", 2), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=ENV)
    metrics = run / "metrics.jsonl"
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 3):
            time.sleep(0.1)
        assert proc.poll() is None, proc.stdout.read()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "stop after the current step" in out and "Traceback" not in out
    ckpt_path = run / "checkpoints" / "last.safetensors"
    stopped = na.load(ckpt_path)["step"]
    logged = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert stopped == max(logged) >= 3  # the checkpoint holds every step taken
    assert logged == sorted(set(logged))  # one writer: rank 0 alone logs

    # continue on 4 ranks for 2 more steps, and compare with one uninterrupted run on 2 ranks
    resumed = subprocess.run(train_cmd("--resume", ckpt_path, "--set", f"train.max_steps={stopped + 2}",
                                       "--nproc", 4), capture_output=True, text=True, env=ENV, timeout=180, check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "saved on 2 ranks, continuing on 4" in resumed.stdout
    straight = tmp_path / "straight"
    whole = subprocess.run(train_cmd(config(tmp_path, straight, stopped + 2), "--nproc", 2), capture_output=True,
                           text=True, env=ENV, timeout=180, check=False)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    a = na.load(ckpt_path)
    b = na.load(straight / "checkpoints" / "last.safetensors")
    assert a["step"] == b["step"] == stopped + 2
    for name, value in b["model"].items():
        np.testing.assert_allclose(a["model"][name].numpy(), value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
