"""The ``neural-arch`` command.

    neural-arch train                                  # the default job: a char model on Tiny Shakespeare
    neural-arch train configs/fashion_mlp.yaml --set optimizer.lr=3e-4 --set train.epochs=2
    neural-arch train --resume runs/x/checkpoints/last.safetensors
    neural-arch evaluate runs/x                        # or a config file, with --checkpoint PATH
    neural-arch generate runs/x --prompt "ROMEO:"      # or a save_pretrained directory
    neural-arch info                                   # versions, BLAS, devices, optional extras
    neural-arch serve runs/x                           # an HTTP inference server (the serve extra)

A run directory holds ``config.yaml``, ``metrics.jsonl``, ``checkpoints/last.safetensors``
and ``curves.png``. Errors a user can fix (bad config, damaged checkpoint,
missing data) are printed as one clear message, without a traceback.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from neural_arch.errors import ConfigError, NeuralArchError


def _fail(e: Exception) -> None:
    raise click.ClickException(str(e))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neural-arch", prog_name="neural-arch")
def main() -> None:
    """neural-arch: a deep learning framework on NumPy, readable end to end."""


@main.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path), help="A checkpoint to continue from.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config field, e.g. --set optimizer.lr=3e-4 (repeatable).")
def train(config, resume, overrides) -> None:
    """Train the model described by CONFIG (YAML; default: a character model on Tiny Shakespeare)."""
    from neural_arch.cli.build import checkpoint_config
    from neural_arch.config import load_config

    try:
        if config is None and resume is not None:  # continue the run the checkpoint came from
            cfg = load_config(None, overrides, base=checkpoint_config(resume))
        else:
            cfg = load_config(config, overrides)
        code = run_training(cfg, resume)
    except NeuralArchError as e:
        _fail(e)
    sys.exit(code)


def run_training(cfg, resume=None, echo=click.echo) -> int:
    """Train ``cfg`` (resuming from ``resume``); 0 when finished, 130 when stopped by Ctrl-C."""
    from neural_arch.cli.build import build_run, default_run_dir
    from neural_arch.config import dump_config
    from neural_arch.train import JSONLLogger, ProgressBar, Trainer, demo_text, plot_curves

    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    ckpt_path = run_dir / "checkpoints" / "last.safetensors"
    if resume is None and ckpt_path.exists():
        raise ConfigError(f"run_dir: '{run_dir}' already holds a checkpoint; continue it with --resume {ckpt_path}, "
                          "or choose another run_dir (nothing was overwritten)")
    cfg = cfg.model_copy(update={"run_dir": str(run_dir)})
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(cfg), encoding="utf-8")

    run = build_run(cfg)
    n_params = sum(p.numel() for p in run.model.parameters())
    echo(f"run {cfg.name}: {cfg.model.name} ({n_params:,} parameters) on {cfg.data.name}, "
         f"{run.max_steps} steps of {cfg.train.batch_size}; run directory {run_dir}")
    callbacks = [JSONLLogger(run_dir / "metrics.jsonl", cfg.train.log_every), ProgressBar(cfg.logging.progress)]
    trainer = Trainer(run.model, run.optimizer, run.train_loader, task=run.task, val_loader=run.val_loader,
                      scheduler=run.scheduler, max_steps=run.max_steps, eval_every=cfg.train.eval_every,
                      checkpoint_every=cfg.train.checkpoint_every, run_dir=run_dir, grad_clip=cfg.train.grad_clip,
                      callbacks=callbacks, metadata=run.metadata)
    if resume is not None:
        trainer.load_checkpoint(resume)
        echo(f"resumed from {resume} at step {trainer.step}")
    start = time.perf_counter()
    metrics = trainer.fit()
    elapsed = time.perf_counter() - start
    if trainer.interrupted:
        echo(f"stopped at step {trainer.step}; checkpoint {trainer.checkpoint_path}\n"
             f"continue with: neural-arch train --resume {trainer.checkpoint_path}")
        return 130
    summary = ", ".join(f"{k} {100 * v:.2f}%" if k == "accuracy" else f"{k} {v:.4f}" for k, v in metrics.items())
    echo(f"done: {trainer.step} steps in {elapsed:.0f} s; final val {summary}; checkpoint {trainer.checkpoint_path}")
    if cfg.logging.plot:
        png = plot_curves(run_dir / "metrics.jsonl", run_dir / "curves.png")
        echo(f"training curves: {png}" if png else "matplotlib is not installed: no curves.png "
             "(pip install 'neural-arch[cli]')")
    if run.tokenizer is not None and cfg.logging.sample_chars:
        echo(demo_text(run.model, run.tokenizer, cfg.logging.sample_chars))
    return 0


@main.command()
@click.argument("config_or_run", type=click.Path(exists=True, path_type=Path))
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              help="Weights to score (default: RUN/checkpoints/last.safetensors).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field.")
def evaluate(config_or_run, checkpoint, overrides) -> None:
    """Score a checkpoint on the validation (or, for images, test) split."""
    from neural_arch.cli.build import build_run
    from neural_arch.config import load_config
    from neural_arch.io import load_checkpoint
    from neural_arch.train import Trainer, demo_text

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
        trainer = Trainer(run.model, run.optimizer, run.train_loader, task=run.task, max_steps=1)
        metrics = trainer.evaluate(run.val_loader)
    except NeuralArchError as e:
        _fail(e)
    split = "val" if run.tokenizer is not None else "test"
    click.echo(f"{checkpoint} (step {ckpt['step']}) on {cfg.data.name} {split}: "
               + ", ".join(f"{k} {100 * v:.2f}%" if k == "accuracy" else f"{k} {v:.4f}" for k, v in metrics.items()))
    if run.tokenizer is not None and cfg.logging.sample_chars:
        click.echo(demo_text(run.model, run.tokenizer, cfg.logging.sample_chars))


@main.command()
@click.argument("checkpoint", type=click.Path(exists=True, path_type=Path))
@click.option("--prompt", default="\n", show_default=True, help="The text to continue.")
@click.option("--max-new-tokens", default=300, show_default=True, type=int)
@click.option("--temperature", default=0.8, show_default=True, type=float)
@click.option("--top-k", default=200, show_default=True, type=int, help="0: no top-k filtering.")
@click.option("--top-p", default=None, type=float, help="Nucleus sampling threshold in (0, 1].")
@click.option("--greedy", is_flag=True, help="Take the most likely token each step (no sampling).")
@click.option("--seed", default=0, show_default=True, type=int)
def generate(checkpoint, prompt, max_new_tokens, temperature, top_k, top_p, greedy, seed) -> None:
    """Print PROMPT continued by a trained language model.

    CHECKPOINT is a Hugging Face-layout directory (config.json + model.safetensors + a tokenizer file, as
    save_pretrained and examples/train_shakespeare.py --out write), a run directory, or a training checkpoint.
    """
    import neural_arch as na
    from neural_arch.train import sample_text

    try:
        model, tokenizer = _load_language_model(checkpoint)
        lm = getattr(model, "lm", model)
        if not hasattr(lm, "generate"):  # the trainer's small char models: sample through the logits
            text = sample_text(model, tokenizer, prompt, max_new_tokens, temperature, top_k or None, na.Generator(seed))
        else:
            ids = tokenizer.encode(prompt)
            window = lm.max_positions or getattr(lm.config, "max_position_embeddings", None)
            out = lm.generate(ids[None], max_new_tokens=max_new_tokens, do_sample=not greedy, temperature=temperature,
                              top_k=top_k or None, top_p=top_p, generator=na.Generator(seed), context_window=window)
            text = tokenizer.decode(out[0, len(ids):])
    except NeuralArchError as e:
        _fail(e)
    click.echo(prompt + text)


def _load_language_model(path: Path):
    """(model, tokenizer) from a Hugging Face-layout directory or a ``neural-arch train`` checkpoint."""
    if path.is_dir() and (path / "config.json").is_file():
        from neural_arch.models import AutoModelForCausalLM, load_tokenizer

        return AutoModelForCausalLM.from_pretrained(path), load_tokenizer(path)
    from neural_arch.cli.build import build_run, checkpoint_config
    from neural_arch.config import load_config
    from neural_arch.io import load_checkpoint

    ckpt = path / "checkpoints" / "last.safetensors" if path.is_dir() else path
    run = build_run(load_config(None, (), base=checkpoint_config(ckpt)))
    if run.tokenizer is None:
        raise ConfigError(f"generate: '{ckpt}' holds a {run.config.model.name} image model, not a language model")
    if getattr(run.model, "mask_token_id", None) is not None:
        raise ConfigError(f"generate: '{ckpt}' holds a {run.config.model.name} masked language model, which fills "
                          "in hidden characters instead of continuing text; score it with `neural-arch evaluate`, "
                          "which also prints a filled-in line")
    load_checkpoint(ckpt, run.model, restore_rng=False)
    return run.model.eval(), run.tokenizer


@main.command()
def info() -> None:
    """Versions, BLAS, devices and which optional extras are installed."""
    from neural_arch.cli.info import collect_info

    for key, value in collect_info().items():
        click.echo(f"{key + ':':<14}{value}")


from neural_arch.cli.serve import serve  # noqa: E402  (its own module; imports the server only when run)

main.add_command(serve)
