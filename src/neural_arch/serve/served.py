"""What the app serves: a :class:`ServedModel` (a model, its task, its tokenizer or image transform),
and the transforms and labels shared by the loaders (``loading.py``, ``onnx_models.py``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neural_arch.data import MNIST, FashionMNIST
from neural_arch.errors import ConfigError

__all__ = ["CLASSIFY", "COMPLETIONS", "EMBEDDINGS", "ServedModel", "hf_image_transform", "hf_labels",
           "image_classifier"]

COMPLETIONS, EMBEDDINGS, CLASSIFY = "completions", "embeddings", "classify"


@dataclass
class ServedModel:
    """What the app needs to know about a model: its id, its task and the objects that run it.

    kind: one of ``completions``, ``embeddings``, ``classify``.
    model: the network (eval mode). For completions, the causal LM itself (``GPT2LMHeadModel``, ...), or a
        model with ``key_value_cache = False`` and ``logits(ids)`` (``OnnxCausalLM``), which the
        recomputing decode loop runs.
    tokenizer: ``encode``/``decode`` for completions; the encoder's own tokenizer for embeddings.
    labels: class names, for classify.
    inputs: what ``/v1/classify`` takes: ``"image"`` (base64 PNG/JPEG) or ``"text"`` (strings).
    transform: image (H, W) or (H, W, C) uint8 array -> model input (C, H, W) float32, for image classify.
    image_mode / image_size / resample: what Pillow converts an image to before ``transform`` ("L" or "RGB",
        (W, H), and the resize filter: a ``PIL.Image.Resampling`` number, 2 = bilinear).
    shortest_edge: when set, the image is first resized so that its shorter side has this many pixels (the
        aspect ratio kept, as transformers' processors round it), then centre-cropped to ``image_size``
        (torchvision's ``Resize`` + ``CenterCrop``, the ResNet / ConvNeXt processors' ``crop_pct``).
    eos_token_id: a token that ends a completion.
    embedding_dim: the width of the embeddings.
    run_batch: for embeddings and classify, ``payloads -> results`` run on the worker instead of the
        built-in batch functions (``runners.embed_batch``, ``runners.classify_batch``); the benchmark
        uses it to put another framework's model behind the same app and batching.
    forward_cost: for texts, one forward's fixed cost in characters of padded text, which decides how
        finely a batch is cut into forwards of similar lengths (``runners.by_length``). 96 suits a model
        that computes its padding; our SentenceEncoder computes it in attention only (``skip_padding``),
        so padding costs it about an eighth as much, and a forward's fixed cost weighs eight times more.
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
    shortest_edge: int | None = None
    eos_token_id: int | None = None
    embedding_dim: int | None = None
    run_batch: object = None  # optional: a batch function replacing the built-in one (another engine, same app)
    forward_cost: float = 96.0


def image_classifier(name: str, model, cfg) -> ServedModel:
    """An MNIST / Fashion-MNIST classifier with the transform it was trained with (build_data's)."""
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


def hf_image_transform(path: Path, config: dict, defaults: dict | None = None) -> dict:
    """The image fields of a :class:`ServedModel` (``transform``, ``image_mode``, ``image_size``, ``resample``,
    ``shortest_edge``) for a Hugging Face-layout image model: ``preprocessor_config.json``'s resize, centre
    crop, rescale and normalise. Where the file (or a key) is missing, ``defaults`` (the same keys) decide,
    then ViTImageProcessor's defaults (the model's ``image_size``, bilinear, 1/255, mean = std = 0.5).

    ``size`` is ``{"height", "width"}`` (resized to it) or ``{"shortest_edge": s}``: with ``crop_pct`` (the
    ConvNeXt / ResNet processors) the shorter side goes to ``int(s / crop_pct)`` and the centre ``s`` x ``s``
    is kept (``s`` >= 384: resized to ``s`` x ``s``, as they do); without it the shorter side goes to ``s``
    and ``crop_size`` is kept. The app resizes with Pillow, as their processors do; ``transform`` does the
    rest."""
    file = path / "preprocessor_config.json"
    pre = {**(defaults or {}), **(json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {})}
    side = int(config.get("image_size", 224))
    channels = int(config.get("num_channels", 3))
    hw, shortest = _resize_plan(pre, side)
    scale = float(pre.get("rescale_factor", 1 / 255)) if pre.get("do_rescale", True) else 1.0
    mean = np.asarray(pre.get("image_mean", [0.5] * channels), np.float32).reshape(-1, 1, 1)
    std = np.asarray(pre.get("image_std", [0.5] * channels), np.float32).reshape(-1, 1, 1)
    if not pre.get("do_normalize", True):
        mean, std = np.zeros_like(mean), np.ones_like(std)

    def transform(image: np.ndarray) -> np.ndarray:
        x = image.astype(np.float32) * np.float32(scale)
        x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)                    # (C, H, W)
        return ((x - mean) / std).astype(np.float32)

    return {"transform": transform, "image_mode": "L" if channels == 1 else "RGB", "image_size": (hw[1], hw[0]),
            "resample": int(pre.get("resample", 2)), "shortest_edge": shortest}


def _resize_plan(pre: dict, side: int) -> tuple[tuple[int, int], int | None]:
    """(final (H, W), shorter side to resize to first or None) from a processor config's size keys."""
    size = pre.get("size", {"height": side, "width": side}) if pre.get("do_resize", True) else {}
    if isinstance(size, int):  # old files: one number, the shorter side for ConvNeXt-style processors
        size = {"shortest_edge": size} if "crop_pct" in pre else {"height": size, "width": size}
    if "shortest_edge" not in size:
        return (int(size.get("height", side)), int(size.get("width", side))), None
    edge = int(size["shortest_edge"])
    if "crop_pct" in pre:
        return ((edge, edge), None) if edge >= 384 else ((edge, edge), int(edge / float(pre["crop_pct"])))
    crop = pre.get("crop_size", {"height": edge, "width": edge}) if pre.get("do_center_crop", True) else None
    if crop is None:
        raise ConfigError("serve: a preprocessor_config.json with a shortest_edge size and no centre crop gives "
                          "images of varying shapes; set do_center_crop with a crop_size")
    crop = {"height": crop, "width": crop} if isinstance(crop, int) else crop
    return (int(crop["height"]), int(crop["width"])), edge
