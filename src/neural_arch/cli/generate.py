"""``neural-arch generate``: continue a prompt with a trained language model."""

from __future__ import annotations

from pathlib import Path

import click

from neural_arch.backend import Generator
from neural_arch.cli.build import build_run, checkpoint_config
from neural_arch.config import load_config
from neural_arch.errors import ConfigError, NeuralArchError
from neural_arch.io import load_checkpoint
from neural_arch.models import AutoModelForCausalLM, load_tokenizer
from neural_arch.train import sample_text


@click.command(short_help="Continue a prompt with a trained language model.")
@click.argument("checkpoint", type=click.Path(exists=True, path_type=Path))
@click.option("--prompt", default="\n", show_default="newline", help="The text to continue.")
@click.option("--max-new-tokens", default=300, show_default=True, type=click.IntRange(min=1))
@click.option("--temperature", default=0.8, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Divides the logits before sampling; must be > 0.")
@click.option("--top-k", default=200, show_default=True, type=click.IntRange(min=0), help="0: no top-k filtering.")
@click.option("--top-p", default=None, type=click.FloatRange(0, 1, min_open=True),
              help="Nucleus sampling: keep the most likely tokens up to this probability, in (0, 1].")
@click.option("--greedy", is_flag=True, help="Take the most likely token each step (no sampling).")
@click.option("--seed", default=0, show_default=True, type=int)
def generate(checkpoint, prompt, max_new_tokens, temperature, top_k, top_p, greedy, seed) -> None:
    """Print PROMPT continued by a trained language model.

    CHECKPOINT is a Hugging Face-layout directory (config.json + model.safetensors + a tokenizer file, as
    save_pretrained and examples/train_shakespeare.py --out write), a run directory, or a training checkpoint.
    """
    try:
        model, tokenizer = load_language_model(checkpoint)
        lm = getattr(model, "lm", model)
        if not hasattr(lm, "generate"):  # the trainer's small char models: sample through the logits
            text = sample_text(model, tokenizer, prompt, max_new_tokens, temperature, top_k or None, Generator(seed),
                               top_p=top_p, greedy=greedy)
        else:
            ids = tokenizer.encode(prompt)
            window = lm.max_positions or getattr(lm.config, "max_position_embeddings", None)
            out = lm.generate(ids[None], max_new_tokens=max_new_tokens, do_sample=not greedy, temperature=temperature,
                              top_k=top_k or None, top_p=top_p, generator=Generator(seed), context_window=window)
            text = tokenizer.decode(out[0, len(ids):])
    except NeuralArchError as e:
        raise click.ClickException(str(e)) from None
    click.echo(prompt + text)


def load_language_model(path: Path):
    """(model, tokenizer) from a Hugging Face-layout directory or a ``neural-arch train`` checkpoint."""
    if path.is_dir() and (path / "config.json").is_file():
        return AutoModelForCausalLM.from_pretrained(path), load_tokenizer(path)
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
