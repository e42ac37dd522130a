"""From the MODEL argument of ``neural-arch serve`` to a served model.

MODEL may be

- a Hugging Face-layout directory (``config.json``): a causal LM with its tokenizer
  (``char_tokenizer.json`` or ``tokenizer.json``), a sentence-transformers / BERT / RoBERTa
  encoder (``modules.json`` or ``model_type`` bert/roberta), a BERT / RoBERTa text classifier
  (``architectures``: ``*ForSequenceClassification``), a ViT image classifier (``model_type`` vit,
  with ``preprocessor_config.json``'s resize / rescale / normalise when present) or a
  ``ResNetForImageClassification`` (``model_type`` resnet, run as our ResNet: ``vision.py``);
- a folder of our ResNet / EfficientNet (``config.json`` naming the ``architecture``, torchvision-named
  weights), or a checkpoint in such a folder (``vision.py``);
- a run directory of ``neural-arch train`` or one of its checkpoints: a language model
  (gpt2, modern) or an image classifier (mlp, cnn);
- an ONNX file written by ``neural-arch export --format onnx``, run by onnxruntime
  (``onnx_models.py``); its tokenizer, labels and transform come from the run directory or Hugging
  Face folder it was exported into.

What it is decides which endpoint the server offers: ``/v1/completions``, ``/v1/embeddings``
or ``/v1/classify``. The loaded objects are plain ``neural_arch`` models in eval mode; the
server runs them on one worker thread each.
"""

from __future__ import annotations

from pathlib import Path

from neural_arch.cli.build import build_run, checkpoint_config
from neural_arch.config import load_config
from neural_arch.errors import CheckpointError, ConfigError
from neural_arch.io import load_checkpoint
from neural_arch.models import (
    AutoModelForCausalLM,
    BertForSequenceClassification,
    BertTokenizer,
    RobertaForSequenceClassification,
    SentenceEncoder,
    ViTForImageClassification,
    load_tokenizer,
)
from neural_arch.models.bert import RobertaConfig
from neural_arch.models.hf import read_json
from neural_arch.serve import vision
from neural_arch.serve.onnx_models import load_onnx
from neural_arch.serve.served import (
    CLASSIFY,
    COMPLETIONS,
    EMBEDDINGS,
    ServedModel,
    hf_image_transform,
    hf_labels,
    image_classifier,
)

__all__ = ["CLASSIFY", "COMPLETIONS", "EMBEDDINGS", "ServedModel", "load_served_model"]

_ENCODER_TYPES = ("bert", "roberta", "xlm-roberta", "camembert")
# a SentenceEncoder's forward_cost (ServedModel): it skips the padding in all but attention, about an
# eighth of its forward at the load test's lengths, so a forward's fixed cost weighs 8 x the default 96
SKIPPED_PADDING_FORWARD_COST = 8 * 96.0


def load_served_model(path, name: str | None = None) -> ServedModel:
    """Load MODEL (see the module docstring); ``name`` is the id clients see (default: the folder's name)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"serve: {str(path)!r} does not exist; give a run directory, a checkpoint or a "
                              "Hugging Face-layout directory")
    name = name or (path.name if path.is_dir() else path.stem)
    if path.suffix == ".onnx":
        return load_onnx(path, name)
    if path.is_dir() and (path / "config.json").is_file():
        return _load_hf_dir(path, name)
    if path.is_file() and vision.is_ours(_read_config(path.parent)):  # a checkpoint in a ResNet/EfficientNet folder
        return vision.load_ours(path.parent, name, checkpoint=path)
    return _load_run(path, name)


def _load_hf_dir(path: Path, name: str) -> ServedModel:
    config = _read_config(path)
    if vision.is_ours(config):
        return vision.load_ours(path, name)
    if vision.is_hf_resnet(config):
        return vision.load_hf_resnet(path, name)
    architectures = config.get("architectures") or []
    if any(str(a).endswith("ForSequenceClassification") for a in architectures):
        return _text_classifier(path, name, config)
    if config.get("model_type") == "vit":
        return _vit_classifier(path, name, config)
    if (path / "modules.json").is_file() or config.get("model_type") in _ENCODER_TYPES:
        encoder = SentenceEncoder.from_pretrained(path)
        return ServedModel(name, EMBEDDINGS, encoder, encoder.tokenizer, embedding_dim=encoder.model.config.hidden_size,
                           forward_cost=SKIPPED_PADDING_FORWARD_COST)
    lm = AutoModelForCausalLM.from_pretrained(path).eval()
    tokenizer = load_tokenizer(path)
    eos = config.get("eos_token_id")
    eos = eos if isinstance(eos, int) and 0 <= eos < lm.config.vocab_size else None
    return ServedModel(name, COMPLETIONS, lm, tokenizer, eos_token_id=eos)


def _read_config(folder: Path) -> dict:
    """``folder/config.json`` as a dict ({} when there is none); invalid JSON is a CheckpointError."""
    config = read_json(folder / "config.json", "serve", {})
    return config if isinstance(config, dict) else {}


def _load_run(path: Path, name: str) -> ServedModel:
    ckpt = path / "checkpoints" / "last.safetensors" if path.is_dir() else path
    if not ckpt.is_file():
        raise CheckpointError(f"serve: {str(path)!r} is neither a Hugging Face-layout directory (no config.json) nor "
                              f"a run directory (no {ckpt.relative_to(path) if path.is_dir() else ckpt})")
    cfg = load_config(None, (), base=checkpoint_config(ckpt))
    run = build_run(cfg)
    load_checkpoint(ckpt, run.model, restore_rng=False)
    model = run.model.eval()
    if run.tokenizer is None:
        return image_classifier(name, model, cfg)
    lm = getattr(model, "lm", None)
    if getattr(model, "mask_token_id", None) is not None or lm is None or not hasattr(lm, "generate"):
        raise ConfigError(f"serve: '{ckpt}' holds a {cfg.model.name} model; /v1/completions serves the causal "
                          "language models with a key/value cache (gpt2, modern)")
    return ServedModel(name, COMPLETIONS, lm.eval(), run.tokenizer)


def _text_classifier(path: Path, name: str, config: dict) -> ServedModel:
    """A BERT / RoBERTa sequence classifier and its tokenizer: ``/v1/classify`` on text."""
    cls = (RobertaForSequenceClassification if config.get("model_type") in RobertaConfig.accepted_model_types
           else BertForSequenceClassification)
    model = cls.from_pretrained(path).eval()
    tokenizer = BertTokenizer.from_pretrained(path)
    return ServedModel(name, CLASSIFY, model, tokenizer, labels=hf_labels(config, model.config.num_labels),
                       inputs="text")


def _vit_classifier(path: Path, name: str, config: dict) -> ServedModel:
    """A ViT image classifier folder (``ViTForImageClassification``): ``/v1/classify`` on images."""
    model = ViTForImageClassification.from_pretrained(path).eval()
    if model.config.num_labels < 1:
        raise ConfigError(f"serve: '{path}' is a ViT without a classifier head (no labels); /v1/classify needs one")
    return ServedModel(name, CLASSIFY, _Logits(model), labels=hf_labels(config, model.config.num_labels),
                       **hf_image_transform(path, config))


class _Logits:
    """``model(x).logits``: a Hugging Face-style classifier called as the run classifiers are (logits out)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, x):
        return self.model(x).logits
