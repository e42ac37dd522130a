"""Trainer: the loop's bookkeeping, evaluation, callbacks, logging, failure on a non-finite loss."""

import numpy as np
import pytest

import neural_arch as na
from neural_arch import nn, optim
from neural_arch.data import CharTokenizer, DataLoader, TensorDataset
from neural_arch.errors import ConfigError, NumericalError
from neural_arch.train import (
    Classification,
    JSONLLogger,
    LanguageModeling,
    Trainer,
    build_model,
    plot_curves,
    read_metrics,
    sample_text,
)

rng = np.random.default_rng(1)
X = rng.normal(size=(50, 4)).astype(np.float32)
Y = (X @ np.array([1.0, -2.0, 0.5, 0.0]) > 0).astype(np.int64)


class Recorder:
    def __init__(self):
        self.events = []

    def on_train_start(self, t):
        self.events.append(("start", t.step))

    def on_step_end(self, t, m):
        self.events.append(("step", t.step))

    def on_eval_end(self, t, m):
        self.events.append(("eval", t.step))

    def on_checkpoint(self, t, path):
        self.events.append(("ckpt", t.step))

    def on_train_end(self, t):
        self.events.append(("end", t.step))


def trainer(tmp_path=None, **kwargs):
    model = nn.Linear(4, 2)
    opt = optim.SGD(model.parameters(), lr=0.5)
    loader = DataLoader(TensorDataset(X, Y), batch_size=16, shuffle=True, generator=na.Generator(0))  # 4 batches
    val = DataLoader(TensorDataset(X, Y), batch_size=16)
    return Trainer(model, opt, loader, task=Classification(), val_loader=val,
                   run_dir=tmp_path, **kwargs)


def test_learns_and_reports_exact_averages(tmp_path):
    t = trainer(tmp_path, max_epochs=15)
    metrics = t.fit()
    assert t.step == 60 and t.epoch == 15
    assert metrics["accuracy"] > 0.9
    # the averages are over samples, not batches (the last batch has only 2 of the 50)
    with na.no_grad():
        logits = t.model(na.tensor(X))
        loss = na.nn.functional.cross_entropy(logits, na.tensor(Y)).item()
    assert metrics["loss"] == pytest.approx(loss, rel=1e-5)
    assert metrics["accuracy"] == np.mean(logits.numpy().argmax(1) == Y)


def test_callback_order_with_epoch_evaluation(tmp_path):
    rec = Recorder()
    trainer(tmp_path, max_steps=6, checkpoint_every=5, callbacks=[rec]).fit()
    assert rec.events == [("start", 0), ("step", 1), ("step", 2), ("step", 3), ("step", 4), ("eval", 4),
                          ("step", 5), ("ckpt", 5), ("step", 6), ("eval", 6), ("ckpt", 6), ("end", 6)]


def test_eval_every_and_final_checkpoint(tmp_path):
    rec = Recorder()
    trainer(tmp_path, max_steps=6, val_every=3, checkpoint_every=3, callbacks=[rec]).fit()
    assert [e for e in rec.events if e[0] in ("eval", "ckpt")] == [("eval", 3), ("ckpt", 3), ("eval", 6),
                                                                   ("ckpt", 6)]
    assert na.load(tmp_path / "checkpoints" / "last.safetensors")["step"] == 6


def test_steps_or_epochs_not_both():
    with pytest.raises(ConfigError, match="exactly one of max_steps and max_epochs"):
        trainer(max_steps=3, max_epochs=1)


def test_non_finite_loss_stops_training():
    t = trainer(max_steps=5)
    t.model.weight.data[...] = np.inf
    with np.errstate(invalid="ignore"), pytest.raises(NumericalError, match="the loss is nan at step 1"):
        t.fit()


def test_jsonl_log_and_plot(tmp_path):
    log = JSONLLogger(tmp_path / "metrics.jsonl", log_every=2)
    trainer(tmp_path, max_steps=8, val_every=4, callbacks=[log]).fit()
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [(r["split"], r["step"]) for r in records] == [("train", 2), ("train", 4), ("val", 4), ("train", 6),
                                                          ("train", 8), ("val", 8)]
    assert records[0]["samples_per_s"] > 0 and "lr" in records[0] and "accuracy" in records[2]
    png = plot_curves(tmp_path / "metrics.jsonl", tmp_path / "curves.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_language_model_task_and_sampling():
    tok = CharTokenizer.from_text("abcdefgh")
    na.manual_seed(0)
    model = build_model("char_transformer", vocab_size=8, block_size=6, n_layer=1, n_head=2, n_embd=8)
    ids = na.tensor(np.arange(12).reshape(2, 6) % 8)
    loss = LanguageModeling().loss(model, (ids, ids))
    assert loss.shape == () and 1.0 < loss.item() < 4.0  # about log(8) = 2.08 at init
    ev = LanguageModeling().evaluate(model, (ids, ids))
    assert ev["count"] == 12 and ev["loss"] == pytest.approx(12 * loss.item(), rel=1e-5)
    state = na.backend.default_generator.get_state()
    a = sample_text(model, tok, "abc", 20, generator=na.Generator(5))
    b = sample_text(model, tok, "abc", 20, generator=na.Generator(5))
    assert a == b and len(a) == 20 and set(a) <= set("abcdefgh")
    assert na.backend.default_generator.get_state() == state  # sampling leaves the training stream alone


@pytest.mark.parametrize("name, kwargs, shape", [
    ("mlp", {"hidden": (32, 16)}, (3, 1, 28, 28)),
    ("cnn", {"channels": (4, 8), "hidden": 16}, (3, 1, 28, 28)),
    ("char_mlp", {"vocab_size": 65, "block_size": 10, "context": 3}, (3, 10)),
    ("char_transformer", {"vocab_size": 65, "block_size": 10, "n_embd": 16}, (3, 10)),
])
def test_models_build_and_run(name, kwargs, shape):
    model = build_model(name, **kwargs)
    x = na.randn(*shape) if len(shape) == 4 else na.tensor(np.arange(30).reshape(shape) % 65)
    out = model(x)
    assert out.shape == ((3, 10) if len(shape) == 4 else (3, 10, 65))


def test_model_errors():
    with pytest.raises(ConfigError, match="model.name: 'resnet' is not one of"):
        build_model("resnet")
    with pytest.raises(ConfigError, match="model.kwargs: widht not accepted by mlp; it takes in_features"):
        build_model("mlp", widht=3)
    with pytest.raises(ConfigError, match="n_embd=10 must be divisible by n_head=4"):
        build_model("char_transformer", vocab_size=5, block_size=4, n_embd=10, n_head=4)


def test_plot_curves_draws_lr_and_throughput_without_pyplot(tmp_path):
    """In a fresh process: plotting neither imports pyplot nor changes matplotlib's backend."""
    import subprocess
    import sys

    log = JSONLLogger(tmp_path / "metrics.jsonl", log_every=2)
    trainer(tmp_path, max_steps=8, val_every=4, callbacks=[log]).fit()
    code = ("import sys, matplotlib; matplotlib.use('svg'); from neural_arch.train import plot_curves; "
            f"plot_curves({str(tmp_path / 'metrics.jsonl')!r}, {str(tmp_path / 'c.png')!r}); "
            "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["svg", "False"]
    from PIL import Image

    width, height = Image.open(tmp_path / "c.png").size
    assert width == 4 * 450 and height == 380  # four panels: loss, accuracy, learning rate, throughput
