"""Experiment tracking, read back by each tool's own reader: TensorBoard's event accumulator, MLflow's client,
the csv module, wandb's offline run directory."""

import csv
import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from neural_arch.cli import main
from neural_arch.train import read_metrics

TINY = {
    "name": "tracked", "seed": 3,
    "model": {"name": "char_mlp", "kwargs": {"context": 4, "n_embd": 8, "hidden": 32}},
    "data": {"name": "tinyshakespeare", "block_size": 16, "val_windows": 32, "prefetch": 0},
    "optimizer": {"name": "adamw", "lr": 0.01},
    "scheduler": {"name": "none"},
    "train": {"batch_size": 8, "max_steps": 6, "eval_every": 3, "checkpoint_every": 3, "log_every": 2},
    "callbacks": {"lr_monitor": True, "grad_norm_monitor": True},
    "logging": {"progress": False, "plot": True, "sample_chars": 10, "histogram_every": 2},
}


def train(tmp_path, backends):
    cfg = json.loads(json.dumps(TINY))
    cfg["run_dir"] = str(tmp_path / "runs" / "r1")
    cfg["logging"]["backends"] = backends
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(main, ["train", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return tmp_path / "runs" / "r1"


@pytest.mark.slow
def test_tensorboard_events_read_back_by_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train(tmp_path, ["tensorboard"])
    jsonl = read_metrics(run / "metrics.jsonl")  # jsonl is always kept
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    train_loss = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    assert train_loss == [(r["step"], pytest.approx(r["loss"], rel=1e-6)) for r in jsonl if r["split"] == "train"]
    val_loss = [(e.step, e.value) for e in acc.Scalars("val/loss")]
    assert val_loss == [(r["step"], pytest.approx(r["loss"], rel=1e-6)) for r in jsonl if r["split"] == "val"]
    assert {"train/lr", "train/grad_norm", "train/lr_group_0", "train/tokens_per_s"} <= set(tags["scalars"])
    assert "weights/emb.weight" in tags["histograms"] and "grads/emb.weight" in tags["histograms"]
    assert [e.step for e in acc.Histograms("grads/emb.weight")] == [2, 4, 6]
    assert any(t.startswith("sample") for t in tags["tensors"])  # the text sample at the end
    hparams = EventAccumulator(str(run / "tensorboard" / "hparams"))
    hparams.Reload()
    [final] = hparams.Scalars("hparam/loss")  # the hparams entry carries the final validation loss
    assert final.value == pytest.approx([r for r in jsonl if r["split"] == "val"][-1]["loss"], rel=1e-6)


@pytest.mark.slow
def test_mlflow_run_read_back_by_the_mlflow_client(tmp_path):
    from mlflow import MlflowClient

    run = train(tmp_path, ["mlflow"])
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("neural-arch")
    [found] = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == "r1" and found.info.status == "FINISHED"
    assert found.data.params["optimizer.lr"] == "0.01" and found.data.params["model.name"] == "char_mlp"
    history = client.get_metric_history(found.info.run_id, "train/loss")
    jsonl = [r for r in read_metrics(run / "metrics.jsonl") if r["split"] == "train"]
    assert [(m.step, m.value) for m in history] == [(r["step"], pytest.approx(r["loss"])) for r in jsonl]
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"config.yaml", "curves.png", "last.safetensors"} <= artifacts


def test_csv_and_wandb_offline(tmp_path):
    run = train(tmp_path, ["csv", "wandb"])
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    jsonl = read_metrics(run / "metrics.jsonl")
    assert [(r["split"], int(r["step"])) for r in rows] == [(r["split"], r["step"]) for r in jsonl]
    assert np.isclose(float(rows[0]["loss"]), jsonl[0]["loss"])
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))
