"""The `neural-arch` command, run for real: in-process through click, and as subprocesses (SIGINT)."""

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
from click.testing import CliRunner

import neural_arch as na
from neural_arch.cli import main

TINY = {
    "name": "tiny",
    "seed": 3,
    "model": {"name": "char_mlp", "kwargs": {"context": 4, "n_embd": 8, "hidden": 32, "dropout": 0.1}},
    "data": {"name": "tinyshakespeare", "block_size": 16, "val_windows": 64, "prefetch": 1},
    "optimizer": {"name": "adamw", "lr": 0.01},
    "scheduler": {"name": "none"},
    "train": {"batch_size": 8, "max_steps": 6, "eval_every": 3, "checkpoint_every": 3, "log_every": 2},
    "logging": {"progress": False, "plot": True, "sample_chars": 20},
}


def write_config(tmp_path, run_dir, **changes):
    cfg = json.loads(json.dumps(TINY))
    cfg["run_dir"] = str(run_dir)
    for key, value in changes.items():
        section, field = key.split("__")
        cfg[section][field] = value
    path = tmp_path / f"{Path(run_dir).name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def test_info():
    code, out = cli("info")
    assert code == 0
    assert f"numpy:        {np.__version__}" in out
    assert "devices:" in out and "cpu" in out and "blas:" in out and "extras:" in out


def test_train_writes_a_complete_run_directory(tmp_path):
    run = tmp_path / "run"
    code, out = cli("train", write_config(tmp_path, run))
    assert code == 0, out
    assert "done: 6 steps" in out and "sample:" in out
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [2, 4, 6]
    assert [r["step"] for r in records if r["split"] == "val"] == [3, 6]
    assert all(np.isfinite(r["loss"]) for r in records)
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert yaml.safe_load((run / "config.yaml").read_text())["run_dir"] == str(run)
    ckpt = na.load(run / "checkpoints" / "last.safetensors")
    assert ckpt["step"] == 6 and ckpt["metadata"]["config"]["name"] == "tiny"
    assert len(ckpt["metadata"]["tokenizer"]["chars"]) == 65

    code, out = cli("evaluate", run)  # a run directory: its config and last checkpoint
    assert code == 0, out
    assert "(step 6) on tinyshakespeare val: loss" in out
    assert f"{records[-1]['loss']:.4f}" in out  # the same number the run logged


def test_resume_through_the_cli_matches_an_uninterrupted_run(tmp_path):
    code, out = cli("train", write_config(tmp_path, tmp_path / "straight"))
    assert code == 0, out
    code, out = cli("train", write_config(tmp_path, tmp_path / "split"), "--set", "train.max_steps=3")
    assert code == 0, out
    ckpt = tmp_path / "split" / "checkpoints" / "last.safetensors"
    code, out = cli("train", "--resume", ckpt, "--set", "train.max_steps=6")  # config read from the checkpoint
    assert code == 0, out
    assert "resumed from" in out and "at step 3" in out
    a, b = na.load(tmp_path / "straight" / "checkpoints" / "last.safetensors"), na.load(ckpt)
    assert b["step"] == 6
    for k, v in a["model"].items():
        assert np.array_equal(v.numpy(), b["model"][k].numpy()), k


def test_refuses_to_overwrite_an_existing_run(tmp_path):
    config = write_config(tmp_path, tmp_path / "run")
    assert cli("train", config)[0] == 0
    before = (tmp_path / "run" / "checkpoints" / "last.safetensors").read_bytes()
    code, out = cli("train", config)
    assert code == 1 and "already holds a checkpoint" in out and "--resume" in out
    assert (tmp_path / "run" / "checkpoints" / "last.safetensors").read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["--set", "optimizer.name=adamx"], "optimizer.name: 'adamx' is not one of adamw, adam, sgd, lion"),
    (["--set", "model.kwargs.width=3"], "model.kwargs: width not accepted by char_mlp"),
    (["--set", "model.name=mlp"], "model.name: 'mlp' does not fit data.name 'tinyshakespeare'"),
])
def test_config_errors_are_one_clear_message(tmp_path, args, message):
    code, out = cli("train", write_config(tmp_path, tmp_path / "run"), *args)
    assert code == 1
    assert message in out and "Traceback" not in out


def test_damaged_checkpoint_is_reported(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    code, out = cli("train", write_config(tmp_path, tmp_path / "run"), "--resume", bad)
    assert code == 1 and "not valid JSON" in out and "Traceback" not in out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_a_checkpoint_then_exits_and_the_run_resumes(tmp_path, sig):
    """Ctrl-C, and SIGTERM (what Slurm and Kubernetes send before killing a job): save, exit 128 + signal."""
    run = tmp_path / "run"
    config = write_config(tmp_path, run, train__max_steps=100000, train__log_every=1, train__checkpoint_every=None,
                          train__eval_every=100000)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "neural_arch.cli", "train", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        metrics = run / "metrics.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 3):
            time.sleep(0.1)
        assert proc.poll() is None, proc.stdout.read()
        os.kill(proc.pid, sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, out
    assert "interrupted: finishing this step and saving a checkpoint" in out
    assert "neural-arch train --resume" in out and "Traceback" not in out
    ckpt_path = run / "checkpoints" / "last.safetensors"
    ckpt = na.load(ckpt_path)
    assert 3 <= ckpt["step"] < 100000
    logged = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert ckpt["step"] == max(logged)  # the checkpoint holds every step that was taken
    assert "interrupted" in (run / "console.log").read_text()  # the console copy has what was printed

    # the run continues from there: two more steps on top of the saved parameters
    step = ckpt["step"]
    code, out = cli("train", "--resume", ckpt_path, "--set", f"train.max_steps={step + 2}")
    assert code == 0, out
    assert f"at step {step}" in out and f"done: {step + 2} steps" in out
    resumed = na.load(ckpt_path)
    assert resumed["step"] == step + 2
    assert any(not np.array_equal(v.numpy(), resumed["model"][k].numpy()) for k, v in ckpt["model"].items())


def test_a_config_that_fails_to_build_leaves_no_run_directory(tmp_path):
    run = tmp_path / "run"
    code, out = cli("train", write_config(tmp_path, run), "--set", "model.kwargs.context=two")
    assert code == 1 and "model.kwargs.context: must be a valid integer" in out and "Traceback" not in out
    assert not run.exists()


def test_the_run_directory_records_the_environment(tmp_path):
    run = tmp_path / "run"
    code, out = cli("train", write_config(tmp_path, run, train__max_steps=2))
    assert code == 0, out
    env = json.loads((run / "environment.json").read_text())
    assert env["packages"]["numpy"] == np.__version__ and env["info"]["numpy"] == np.__version__
    assert "git" in env  # a commit when run inside a git checkout, null otherwise
    console = (run / "console.log").read_text()
    assert "run tiny: char_mlp" in console and "done: 2 steps" in console and "sample:" in console
    assert "one epoch = " in console and "steps of 8 windows of 16 characters" in console


@pytest.mark.parametrize("make_root, message", [
    (lambda p: p / "missing", "is not a directory"),
    (lambda p: p, "lacks train-images-idx3-ubyte"),
])
def test_a_wrong_data_root_is_an_error(tmp_path, make_root, message):
    config = write_config(tmp_path, tmp_path / "run")
    code, out = cli("train", config, "--set", "data.name=fashion_mnist", "--set", "model.name=mlp",
                    "--set", "model.kwargs={}", "--set", f"data.root={make_root(tmp_path)}")
    assert code == 1 and f"data.root: '{make_root(tmp_path)}' {message}" in out
    assert not (tmp_path / "run").exists()
