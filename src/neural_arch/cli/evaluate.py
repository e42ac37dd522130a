"""``neural-arch evaluate``: score a checkpoint on a split with the metrics of :mod:`neural_arch.train.metrics`."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from neural_arch.autograd import no_grad
from neural_arch.cli.build import build_run
from neural_arch.config import load_config
from neural_arch.errors import ConfigError, NeuralArchError
from neural_arch.io import load_checkpoint
from neural_arch.train import Trainer, demo_text
from neural_arch.train.callbacks import format_metric
from neural_arch.train.metrics import METRICS, compute_metrics
from neural_arch.train.tasks import Classification, LanguageModeling


@click.command(short_help="Score a checkpoint: accuracy, top5, f1_macro, perplexity, loss.")
@click.argument("config_or_run", type=click.Path(exists=True, path_type=Path))
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              help="Weights to score (default: RUN/checkpoints/last.safetensors).")
@click.option("--split", type=click.Choice(["test", "val"]), default=None,
              help="Which split [default: test where the data has one (images), else val].")
@click.option("--metrics", "metric_names", default=None, metavar="NAMES",
              help=f"Comma-separated, from {', '.join(METRICS)} [default: the task's own].")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field.")
def evaluate(config_or_run, checkpoint, split, metric_names, overrides) -> None:
    """Score a checkpoint on the test split (images) or the validation split (text)."""
    try:
        if config_or_run.is_dir():
            config_path = config_or_run / "config.yaml"
            checkpoint = checkpoint or config_or_run / "checkpoints" / "last.safetensors"
        else:
            config_path = config_or_run
        if checkpoint is None:
            raise ConfigError("evaluate: give --checkpoint PATH (or a run directory instead of a config)")
        cfg = load_config(config_path, overrides)
        run = build_run(cfg)
        ckpt = load_checkpoint(checkpoint, run.model, restore_rng=False)
        split = split or ("test" if run.test_loader is not None else "val")
        loader = run.test_loader if split == "test" else run.val_loader
        if loader is None:
            raise ConfigError(f"evaluate: this data has no {split} split; use --split "
                              + ("val" if split == "test" else "test"))
        if metric_names:
            metrics = score(run.model, loader, run.task, [m.strip() for m in metric_names.split(",") if m.strip()])
        else:
            metrics = Trainer(run.model, run.optimizer, run.train_loader, task=run.task, max_steps=1).evaluate(loader)
    except NeuralArchError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{checkpoint} (step {ckpt['step']}) on {cfg.data.name or cfg.data.class_path} {split}: "
               + ", ".join(f"{k} {format_metric(k, v)}" for k, v in metrics.items()))
    if run.tokenizer is not None and cfg.logging.sample_chars:
        click.echo(demo_text(run.model, run.tokenizer, cfg.logging.sample_chars))


def score(model, loader, task, names) -> dict[str, float]:
    """The named metrics over the whole ``loader``, from the model's logits on every item."""
    if not isinstance(task, (Classification, LanguageModeling)):
        raise ConfigError(f"evaluate --metrics: works for classification and language modelling, not "
                          f"{type(task).__name__}; leave --metrics out to get the task's own metrics")
    logits, labels = [], []
    was_training = model.training
    model.eval()
    with no_grad():
        for x, y in loader:
            out = model(x).numpy()
            logits.append(out.reshape(-1, out.shape[-1]))
            labels.append(np.asarray(y.numpy() if hasattr(y, "numpy") else y).reshape(-1))
    model.train(was_training)
    return compute_metrics(names, np.concatenate(logits), np.concatenate(labels))
