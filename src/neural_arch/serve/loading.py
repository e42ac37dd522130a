"""From the MODEL argument of ``neural-arch serve`` to a served model.

MODEL may be

- a Hugging Face-layout directory (``config.json``): a causal LM with its tokenizer
  (``char_tokenizer.json`` or ``tokenizer.json``), a sentence-transformers / BERT / RoBERTa
  encoder (``modules.json`` or ``model_type`` bert/roberta), a BERT / RoBERTa text classifier
  (``architectures``: ``*ForSequenceClassification``) or a ViT image classifier (``model_type`` vit,
  with ``preprocessor_config.json``'s resize / rescale / normalise when present);
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

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neural_arch.errors import CheckpointError, ConfigError

__all__ = ["CLASSIFY", "COMPLETIONS", "EMBEDDINGS", "ServedModel", "load_served_model"]

COMPLETIONS, EMBEDDINGS, CLASSIFY = "completions", "embeddings", "classify"
_ENCODER_TYPES = ("bert", "roberta", "xlm-roberta", "camembert")


@dataclass
class ServedModel:
    """What the app needs to know about a model: its id, its task and the objects that run it.

    kind: one of ``completions``, ``embeddings``, ``classify``.
    model: the network (eval mode). For completions, the causal LM itself (``GPT2LMHeadModel``, ...).
    tokenizer: ``encode``/``decode`` for completions; the encoder's own tokenizer for embeddings.
    labels: class names, for classify.
    inputs: what ``/v1/classify`` takes: ``"image"`` (base64 PNG/JPEG) or ``"text"`` (strings).
    transform: image (H, W) or (H, W, C) uint8 array -> model input (C, H, W) float32, for image classify.
    image_mode / image_size / resample: what Pillow converts an image to before ``transform`` ("L" or "RGB",
        (W, H), and the resize filter: a ``PIL.Image.Resampling`` number, 2 = bilinear).
    eos_token_id: a token that ends a completion.
    embedding_dim: the width of the embeddings.
    run_batch: for embeddings and classify, ``payloads -> results`` run on the worker instead of the
        built-in batch functions (``runners.embed_batch``, ``runners.classify_batch``); the benchmark
        uses it to put another framework's model behind the same app and batching.
    """

    name: str
    kind: str
    model: object
    tokenizer: object = None
    labels: list = field(default_factory=list)
    inputs: str = "image"
    transform: object = None
    image_mode: str = "L"
    image_size: tuple = (28, 28)
    resample: int = 2
    eos_token_id: int | None = None
    embedding_dim: int | None = None
    run_batch: object = None  # optional: a batch function replacing the built-in one (another engine, same app)


def load_served_model(path, name: str | None = None) -> ServedModel:
    """Load MODEL (see the module docstring); ``name`` is the id clients see (default: the folder's name)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"serve: {str(path)!r} does not exist; give a run directory, a checkpoint or a "
                              "Hugging Face-layout directory")
    name = name or (path.name if path.is_dir() else path.stem)
    if path.suffix == ".onnx":
        from neural_arch.serve.onnx_models import load_onnx

        return load_onnx(path, name)
    if path.is_dir() and (path / "config.json").is_file():
        return _load_hf_dir(path, name)
    return _load_run(path, name)


def _load_hf_dir(path: Path, name: str) -> ServedModel:
    from neural_arch.models import AutoModelForCausalLM, load_tokenizer

    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    architectures = config.get("architectures") or []
    if any(str(a).endswith("ForSequenceClassification") for a in architectures):
        return _text_classifier(path, name, config)
    if config.get("model_type") == "vit":
        return _vit_classifier(path, name)
    if (path / "modules.json").is_file() or config.get("model_type") in _ENCODER_TYPES:
        from neural_arch.models.sentence import SentenceEncoder

        encoder = SentenceEncoder.from_pretrained(path)
        return ServedModel(name, EMBEDDINGS, encoder, encoder.tokenizer, embedding_dim=encoder.model.config.hidden_size)
    lm = AutoModelForCausalLM.from_pretrained(path).eval()
    tokenizer = load_tokenizer(path)
    eos = config.get("eos_token_id")
    eos = eos if isinstance(eos, int) and 0 <= eos < lm.config.vocab_size else None
    return ServedModel(name, COMPLETIONS, lm, tokenizer, eos_token_id=eos)


def _load_run(path: Path, name: str) -> ServedModel:
    from neural_arch.cli.build import build_run, checkpoint_config
    from neural_arch.config import load_config
    from neural_arch.io import load_checkpoint

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


def image_classifier(name: str, model, cfg) -> ServedModel:
    """An MNIST / Fashion-MNIST classifier with the transform it was trained with (build_data's)."""
    from neural_arch.data import MNIST, FashionMNIST

    cls = FashionMNIST if cfg.data.name == "fashion_mnist" else MNIST
    mean, std = 0.0, 1.0
    if cfg.data.normalize:  # the training set's statistics, computed as build_data computes them
        pixels = cls(cfg.data.root, train=True).data.astype(np.float32) / 255.0
        mean, std = float(pixels.mean()), float(pixels.std())

    def transform(image: np.ndarray) -> np.ndarray:
        return ((image.astype(np.float32) / 255.0 - mean) / std)[None]  # (1, 28, 28)

    return ServedModel(name, CLASSIFY, model, labels=list(cls.classes), transform=transform, image_mode="L",
                       image_size=(28, 28))


def hf_labels(config: dict, n: int) -> list[str]:
    """Class names from config.json's ``id2label`` (``LABEL_i`` where it has none), as transformers names them."""
    id2label = {int(k): str(v) for k, v in (config.get("id2label") or {}).items()}
    return [id2label.get(i, f"LABEL_{i}") for i in range(n)]


def _text_classifier(path: Path, name: str, config: dict) -> ServedModel:
    """A BERT / RoBERTa sequence classifier and its tokenizer: ``/v1/classify`` on text."""
    from neural_arch.models import BertForSequenceClassification, BertTokenizer, RobertaForSequenceClassification
    from neural_arch.models.bert import RobertaConfig

    cls = (RobertaForSequenceClassification if config.get("model_type") in RobertaConfig.accepted_model_types
           else BertForSequenceClassification)
    model = cls.from_pretrained(path).eval()
    tokenizer = BertTokenizer.from_pretrained(path)
    return ServedModel(name, CLASSIFY, model, tokenizer, labels=hf_labels(config, model.config.num_labels),
                       inputs="text")


def hf_image_transform(path: Path, config: dict) -> dict:
    """The image fields of a :class:`ServedModel` (``transform``, ``image_mode``, ``image_size``, ``resample``)
    for a Hugging Face image model: ``preprocessor_config.json``'s resize, rescale and normalise, with
    ViTImageProcessor's defaults where it is silent (the model's ``image_size``, bilinear, 1/255, mean =
    std = 0.5). The app resizes with Pillow, as their processor does; ``transform`` does the rest."""
    pre = json.loads((path / "preprocessor_config.json").read_text(encoding="utf-8")) \
        if (path / "preprocessor_config.json").is_file() else {}
    side = int(config.get("image_size", 224))
    size = pre.get("size", {"height": side, "width": side}) if pre.get("do_resize", True) else {}
    if isinstance(size, int):
        size = {"height": size, "width": size}
    hw = (int(size.get("height", side)), int(size.get("width", side)))
    scale = float(pre.get("rescale_factor", 1 / 255)) if pre.get("do_rescale", True) else 1.0
    channels = int(config.get("num_channels", 3))
    mean = np.asarray(pre.get("image_mean", [0.5] * channels), np.float32).reshape(-1, 1, 1)
    std = np.asarray(pre.get("image_std", [0.5] * channels), np.float32).reshape(-1, 1, 1)
    if not pre.get("do_normalize", True):
        mean, std = np.zeros_like(mean), np.ones_like(std)

    def transform(image: np.ndarray) -> np.ndarray:
        x = image.astype(np.float32) * np.float32(scale)
        x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)                    # (C, H, W)
        return ((x - mean) / std).astype(np.float32)

    return {"transform": transform, "image_mode": "L" if channels == 1 else "RGB", "image_size": (hw[1], hw[0]),
            "resample": int(pre.get("resample", 2))}


def _vit_classifier(path: Path, name: str) -> ServedModel:
    """A ViT image classifier folder (``ViTForImageClassification``): ``/v1/classify`` on images."""
    from neural_arch.models import ViTForImageClassification

    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
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
