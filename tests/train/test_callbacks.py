"""EarlyStopping, ModelCheckpoint (best k by a metric, save_last, every_n_steps), LR and gradient-norm monitors."""

import math

import numpy as np
import pytest

import neural_arch as na
from neural_arch import nn, optim
from neural_arch.data import DataLoader, TensorDataset
from neural_arch.errors import ConfigError
from neural_arch.nn.utils import get_total_norm
from neural_arch.train import (
    Callback,
    Classification,
    EarlyStopping,
    GradientNormMonitor,
    JSONLLogger,
    LearningRateMonitor,
    ModelCheckpoint,
    Trainer,
    read_metrics,
)

rng = np.random.default_rng(4)
X = rng.normal(size=(48, 4)).astype(np.float32)
Y = (X @ np.array([1.0, -1.0, 0.5, 0.0]) > 0).astype(np.int64)


class ScriptedMetrics(Callback):
    """Replaces the validation loss by a scripted sequence, so the callbacks see known values."""

    def __init__(self, losses):
        self.losses = list(losses)

    def on_eval_end(self, trainer, metrics):
        metrics["loss"] = self.losses.pop(0)


def make(tmp_path, callbacks, **kwargs):
    na.manual_seed(0)
    model = nn.Linear(4, 2)
    loader = DataLoader(TensorDataset(X, Y), batch_size=16)
    return Trainer(model, optim.SGD(model.parameters(), lr=0.1), loader, DataLoader(TensorDataset(X, Y), batch_size=48),
                   task=Classification(), callbacks=callbacks, run_dir=tmp_path, **kwargs)


def test_early_stopping_after_patience_evaluations_without_improvement(tmp_path):
    stop = EarlyStopping("loss", patience=2, mode="min", min_delta=0.05)
    t = make(tmp_path, [ScriptedMetrics([1.0, 0.8, 0.79, 0.78, 0.5, 0.4]), stop], max_steps=60, val_every=1)
    t.fit()
    assert stop.best == 0.8 and stop.stopped_step == 4 and t.step == 4  # 0.79 and 0.78: not 0.05 better
    assert na.load(tmp_path / "checkpoints" / "last.safetensors")["step"] == 4
    with pytest.raises(ConfigError, match="mode='low' is not one of min, max"):
        EarlyStopping(mode="low")


def test_early_stopping_in_max_mode_on_accuracy(tmp_path):
    stop = EarlyStopping("accuracy", patience=1, mode="max")
    t = make(tmp_path, [stop], max_steps=300, val_every=1)
    t.fit()
    assert t.step < 300 and stop.stopped_step == t.step


def test_model_checkpoint_keeps_the_best_k_files(tmp_path):
    losses = [0.9, 0.5, 0.7, 0.3, 0.6, 0.4]
    ckpt = ModelCheckpoint(monitor="loss", mode="min", save_top_k=2)
    make(tmp_path, [ScriptedMetrics(losses + [1.0]), ckpt], max_steps=6, val_every=1).fit()
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step=*.safetensors"))
    assert kept == ["step=4-loss=0.3000.safetensors", "step=6-loss=0.4000.safetensors"]
    assert ckpt.best_model_path.name == "step=4-loss=0.3000.safetensors" and ckpt.best_model_score == 0.3
    assert na.load(ckpt.best_model_path)["step"] == 4  # the file holds the state of that step
    assert (tmp_path / "checkpoints" / "last.safetensors").exists()


def test_model_checkpoint_max_mode_and_every_n_steps(tmp_path):
    ckpt = ModelCheckpoint(monitor=None, save_top_k=2, every_n_steps=2)
    make(tmp_path, [ckpt], max_steps=7).fit()
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step=*")) == ["step=4.safetensors",
                                                                                  "step=6.safetensors"]
    best_acc = ModelCheckpoint(dirpath=tmp_path / "acc", monitor="loss", mode="max", save_top_k=1)
    make(tmp_path / "b", [ScriptedMetrics([0.1, 0.9, 0.5, 1.0]), best_acc], max_steps=3, val_every=1).fit()
    assert [p.name for p in (tmp_path / "acc").glob("step=*")] == ["step=2-loss=0.9000.safetensors"]


def test_monitors_log_the_lr_of_each_group_and_the_gradient_norm(tmp_path):
    na.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = optim.SGD([{"params": model[0].parameters(), "lr": 0.1}, {"params": model[2].parameters(), "lr": 0.01}])
    norms = []

    class Expected(Callback):  # the norm computed independently, right before the step
        def on_before_optimizer_step(self, trainer):
            norms.append(float(get_total_norm([p.grad for p in model.parameters()]).item()))

    log = JSONLLogger(tmp_path / "metrics.jsonl", log_every=1)
    Trainer(model, opt, DataLoader(TensorDataset(X, Y), batch_size=16), task=Classification(), max_steps=3,
            callbacks=[Expected(), LearningRateMonitor(), GradientNormMonitor(), log]).fit()
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["lr_group_0"] for r in records] == [0.1] * 3 and [r["lr_group_1"] for r in records] == [0.01] * 3
    assert [r["grad_norm"] for r in records] == pytest.approx(norms, rel=1e-6)
    assert all(math.isfinite(n) and n > 0 for n in norms)
