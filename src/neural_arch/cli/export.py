"""``neural-arch export``: a trained run as an ONNX file, a Hugging Face folder, or bare safetensors.

    neural-arch export runs/gpt --format onnx --dynamic-batch          # runs/gpt/export/model.onnx
    neural-arch export runs/gpt/checkpoints/last.safetensors --format hf -o gpt2-hf
    neural-arch export runs/cnn --format safetensors -o cnn.safetensors
    neural-arch export gpt2-hf --format onnx                           # a save_pretrained folder (GPT-2, Llama, ViT)

ONNX: the model is traced in eval mode on a small example input; a language model's sequence axis
is always dynamic (up to the block size), the batch axis with ``--dynamic-batch``. The graph has one
input (``input_ids`` int64 (B, T), or ``pixels`` float32 (B, 1, 28, 28)) and one output, ``logits``.
``hf`` writes what ``transformers`` loads (GPT-2, the modern transformer as Llama, BERT, RoBERTa):
``config.json`` and ``model.safetensors``. ``safetensors`` writes the model's weights alone.
An existing output is never overwritten.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from neural_arch.cli.build import build_run, checkpoint_config
from neural_arch.config import load_config
from neural_arch.errors import ConfigError, NeuralArchError
from neural_arch.io import load_checkpoint, save
from neural_arch.models import CAUSAL_LM_CLASSES, ViTForImageClassification
from neural_arch.models.hf import read_config
from neural_arch.nn import Module
from neural_arch.onnx import export
from neural_arch.ops.creation import tensor

FORMATS = ("onnx", "hf", "safetensors")
_DEFAULT_NAMES = {"onnx": "model.onnx", "hf": "hf", "safetensors": "model.safetensors"}


@click.command("export", short_help="A trained run as ONNX, a Hugging Face folder or safetensors.")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="onnx", show_default=True,
              help="onnx: an ONNX graph; hf: a Hugging Face folder (config.json + model.safetensors); "
                   "safetensors: the weights alone.")
@click.option("--opset", type=int, default=None, help="ONNX opset version (17-21; default 17).")
@click.option("--dynamic-batch", is_flag=True, help="ONNX: any batch size (the sequence axis of a language "
              "model is always dynamic).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Where to write (default: RUN_DIR/export/model.onnx, .../hf or .../model.safetensors).")
def export_command(source, fmt, opset, dynamic_batch, output) -> None:
    """Export SOURCE (a run directory or a training checkpoint) as ONNX, a Hugging Face folder or safetensors."""
    try:
        path = export_run(source, fmt, opset=opset, dynamic_batch=dynamic_batch, output=output)
    except NeuralArchError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {path}")


def export_run(source: Path, fmt: str, opset: int | None = None, dynamic_batch: bool = False,
               output: Path | None = None) -> Path:
    """Load a ``neural-arch train`` run (or checkpoint) and write it in ``fmt``; returns the path written."""
    if source.is_dir() and (source / "config.json").is_file():
        return _export_hf_folder(source, fmt, opset, dynamic_batch, output)
    ckpt = source / "checkpoints" / "last.safetensors" if source.is_dir() else source
    if not ckpt.is_file():
        raise ConfigError(f"export: '{source}' is neither a run directory with checkpoints/last.safetensors nor a "
                          "checkpoint file")
    run = build_run(load_config(None, (), base=checkpoint_config(ckpt)))
    load_checkpoint(ckpt, run.model, restore_rng=False)
    model = run.model.eval()
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    out = Path(output) if output is not None else run_dir / "export" / _DEFAULT_NAMES[fmt]
    if out.exists():
        raise ConfigError(f"export: '{out}' already exists; choose another -o PATH (nothing was overwritten)")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        _export_onnx(run, model, out, opset, dynamic_batch)
    elif fmt == "hf":
        inner = _pretrained(model)
        if inner is None:
            raise ConfigError(f"export: a {run.config.model.name} model has no Hugging Face layout; use --format "
                              "onnx or safetensors (hf: gpt2, modern, bert, roberta)")
        inner.save_pretrained(out)
    else:
        save(model.state_dict(), out)
    return out


def _pretrained(model):
    """The module that writes the Hugging Face layout: the model itself or the one it wraps (``.lm``)."""
    if hasattr(model, "save_pretrained"):
        return model
    return next((m for m in model.children() if hasattr(m, "save_pretrained")), None)


class _Logits(Module):
    """``inner(x).logits`` as a module (parameter names keep an ``inner.`` prefix)."""

    def __init__(self, inner, **call):
        super().__init__()
        self.inner, self.call = inner, call

    def forward(self, x):
        return self.inner(x, **self.call).logits


def _export_hf_folder(source: Path, fmt: str, opset, dynamic_batch: bool, output) -> Path:
    """A ``save_pretrained`` folder (GPT-2, Llama, ViT) to ONNX: logits from ids or from pixels."""
    if fmt != "onnx":
        raise ConfigError(f"export: '{source}' is already a Hugging Face folder; only --format onnx applies to it")
    config = read_config(source)
    kind = config.get("model_type")
    if kind in CAUSAL_LM_CLASSES:
        model = _Logits(CAUSAL_LM_CLASSES[kind].from_pretrained(source), use_cache=False)
        example = tensor(np.arange(10, dtype=np.int64).reshape(2, 5) % int(config["vocab_size"]))
        name, axes = "input_ids", {1: "seq"}
    elif kind == "vit":
        model = _Logits(ViTForImageClassification.from_pretrained(source))
        side, channels = int(config["image_size"]), int(config.get("num_channels", 3))
        example = tensor(np.zeros((2, channels, side, side), np.float32) + np.linspace(-1, 1, side, dtype=np.float32))
        name, axes = "pixel_values", {}
    else:
        raise ConfigError(f"export: model_type {kind!r} in '{source}' is not one the command exports from a Hugging "
                          f"Face folder ({', '.join(sorted(CAUSAL_LM_CLASSES))}, vit); use na.onnx.export in Python")
    out = Path(output) if output is not None else source / "model.onnx"
    if out.exists():
        raise ConfigError(f"export: '{out}' already exists; choose another -o PATH (nothing was overwritten)")
    if dynamic_batch:
        axes = {0: "batch", **axes}
    export(model.eval(), (example,), out, input_names=[name], output_names=["logits"],
           dynamic_axes={name: axes} if axes else None, opset_version=opset)
    return out


def _export_onnx(run, model, out: Path, opset, dynamic_batch: bool) -> None:
    if run.tokenizer is not None:
        block = int(run.config.data.block_size)
        t = max(2, min(8, block - 1))
        example = tensor(np.arange(2 * t, dtype=np.int64).reshape(2, t) % run.tokenizer.vocab_size)
        name, axes = "input_ids", {1: "seq"}
    else:
        x, _ = run.val_loader.dataset[0]
        sample = np.asarray(getattr(x, "data", x), dtype=np.float32)
        example = tensor(np.stack([sample, sample]))
        name, axes = "pixels", {}
    if dynamic_batch:
        axes = {0: "batch", **axes}
    export(model, (example,), out, input_names=[name], output_names=["logits"],
           dynamic_axes={name: axes} if axes else None, opset_version=opset)
