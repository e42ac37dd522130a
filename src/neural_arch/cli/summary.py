"""``neural-arch summary CONFIG``: the model a config builds, as a table with a memory estimate."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from neural_arch.cli.build import build_run
from neural_arch.config import load_config
from neural_arch.errors import NeuralArchError
from neural_arch.viz import summary as model_summary

OPTIMIZER_SLOTS = {"adamw": 2, "adam": 2, "lion": 1, "sgd": 1, "rmsprop": 1, "adagrad": 1}


@click.command(short_help="Layers, output shapes, parameters, mult-adds, memory.")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field.")
def summary(config, overrides) -> None:
    """Print the model CONFIG builds, one training batch through it: a torchinfo-style table."""
    try:
        cfg = load_config(config, overrides)
        run = build_run(cfg)
        x = next(iter(run.train_loader))[0]
        o = cfg.optimizer
        slots = OPTIMIZER_SLOTS[o.name] - (1 if o.name in ("sgd", "rmsprop") and not o.momentum else 0)
        table = model_summary(run.model, input_size=tuple(x.shape), dtypes=[np.dtype(str(x.dtype))],
                              optimizer_slots=slots)
    except NeuralArchError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{cfg.model.name or cfg.model.class_path} on a batch of {tuple(x.shape)} ({x.dtype}), "
               f"optimizer {o.name} ({slots} state arrays per parameter)")
    click.echo(str(table))
