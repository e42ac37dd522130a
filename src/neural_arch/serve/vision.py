"""ResNet and EfficientNet image classifiers as served models (``/v1/classify`` on images).

Two layouts are read:

- **Ours**: a folder whose ``config.json`` names one of our builders and its arguments, with the weights
  in torchvision's names (``conv1.weight``, ``features.0.0.weight`` ...: ``model.state_dict()`` as ``na.save``
  or ``save_checkpoint`` writes it, or a torchvision state dict saved with ``safetensors``)::

      config.json                 {"architecture": "resnet18", "kwargs": {"num_classes": 10},
                                   "id2label": {"0": "cat", ...}}
      model.safetensors           the weights
      preprocessor_config.json    optional: transformers' keys (size, crop_pct, resample, image_mean, ...)

  MODEL is the folder, or any ``.safetensors`` checkpoint in it (a run's ``step-N.safetensors``).
  Without ``preprocessor_config.json`` a 3-channel model gets torchvision's ImageNet evaluation transform
  (shorter side to 256/224 of the input size, centre crop, ImageNet mean and std); a 1-channel one has no
  such convention, so its folder must give ``image_mean`` and ``image_std``.
- **Hugging Face** ``ResNetForImageClassification`` folders (``model_type`` resnet: ``microsoft/resnet-50``
  and the like): the same network under other names; its weights are renamed to ours
  (:func:`hf_resnet_names`) and its ConvNeXt-style processor config is followed (``crop_pct``).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from neural_arch.errors import CheckpointError, ConfigError
from neural_arch.io import load_checkpoint
from neural_arch.io.checkpoint import check_state_dict
from neural_arch.models import efficientnet as efficientnet_builders  # the function efficientnet(variant, ...)
from neural_arch.models import efficientnet_small
from neural_arch.models.efficientnet import SCALING
from neural_arch.models.hf import WEIGHTS_NAME, load_safetensors_dir
from neural_arch.models.resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50, resnet_small
from neural_arch.serve.served import CLASSIFY, ServedModel, hf_image_transform, hf_labels

__all__ = ["ARCHITECTURES", "hf_resnet_names", "is_hf_resnet", "is_ours", "load_hf_resnet", "load_ours"]

# the builders a folder may name: resnet18/34/50/_small, efficientnet (variant=...), efficientnet_b0-b7/_small
ARCHITECTURES = {f.__name__: f for f in (resnet18, resnet34, resnet50, resnet_small, efficientnet_builders,
                                         efficientnet_small)}
ARCHITECTURES.update({f"efficientnet_{v}": functools.partial(efficientnet_builders, v) for v in SCALING})

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def is_ours(config: dict) -> bool:
    """Whether a config.json is our ResNet / EfficientNet folder's (it names an ``architecture``)."""
    return isinstance(config.get("architecture"), str)


def is_hf_resnet(config: dict) -> bool:
    """Whether a config.json is transformers' ResNet's (``model_type`` resnet)."""
    return config.get("model_type") == "resnet"


def load_ours(folder: Path, name: str, checkpoint: Path | None = None) -> ServedModel:
    """Our ResNet / EfficientNet folder (see the module docstring); ``checkpoint``: the weights file to read
    instead of ``model.safetensors``."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    arch, kwargs = config["architecture"], config.get("kwargs") or {}
    if arch not in ARCHITECTURES:
        raise ConfigError(f"serve: {folder / 'config.json'} names architecture {arch!r}; one of "
                          f"{', '.join(sorted(ARCHITECTURES))} is served")
    if not isinstance(kwargs, dict):
        raise ConfigError(f"serve: {folder / 'config.json'}: kwargs must be an object of {arch}'s arguments")
    try:
        model = ARCHITECTURES[arch](**kwargs)
    except TypeError as e:
        raise ConfigError(f"serve: {folder / 'config.json'}: {arch} does not take these kwargs ({e})") from None
    weights = checkpoint or folder / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"serve: no {weights.name} in '{folder}' (the weights of its {arch})")
    load_checkpoint(weights, model, restore_rng=False)  # ours, or any safetensors state dict (torch's)
    fc = model.fc if hasattr(model, "fc") else model.classifier[-1]
    channels = model.conv1.in_channels if hasattr(model, "conv1") else model.features[0][0].in_channels
    side = config.get("image_size") or _input_side(arch, kwargs)
    image = hf_image_transform(folder, {"image_size": side, "num_channels": channels},
                               defaults=_torchvision_eval(folder, channels, side))
    return ServedModel(name, CLASSIFY, model.eval(), labels=hf_labels(config, fc.out_features), **image)


def load_hf_resnet(folder: Path, name: str) -> ServedModel:
    """A transformers ``ResNetForImageClassification`` folder, as our ResNet with its weights renamed."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    layer_type = config.get("layer_type", "bottleneck")
    block = {"basic": BasicBlock, "bottleneck": Bottleneck}.get(layer_type)
    hidden, depths = list(config.get("hidden_sizes", [])), list(config.get("depths", []))
    unsupported = [what for what, bad in (
        (f"layer_type {layer_type!r}", block is None),
        (f"hidden_act {config.get('hidden_act')!r}", config.get("hidden_act", "relu") != "relu"),
        ("downsample_in_first_stage", config.get("downsample_in_first_stage", False)),
        ("downsample_in_bottleneck", config.get("downsample_in_bottleneck", False))) if bad]
    if unsupported:
        raise ConfigError(f"serve: '{folder}' is a ResNet with {', '.join(unsupported)}; torchvision's layout "
                          "(basic or bottleneck blocks, relu, stride in the 3x3 conv) is what our ResNet is")
    widths = [h // block.expansion for h in hidden]
    if config.get("embedding_size", 64) != (widths[0] if widths else None):
        raise ConfigError(f"serve: '{folder}': embedding_size {config.get('embedding_size', 64)} must equal the "
                          f"first stage's width ({hidden[:1]} / {block.expansion}) in our ResNet")
    labels = hf_labels(config, len(config.get("id2label") or {}) or int(config.get("num_labels", 0)))
    arrays = hf_resnet_names(load_safetensors_dir(folder), str(folder))
    if "fc.weight" not in arrays:
        raise ConfigError(f"serve: '{folder}' holds a ResNet without a classifier head; /v1/classify needs one")
    model = ResNet(block, depths, num_classes=arrays["fc.weight"].shape[0],
                                 in_channels=int(config.get("num_channels", 3)), widths=tuple(widths))
    _check_and_load(model, arrays, str(folder))
    return ServedModel(name, CLASSIFY, model.eval(), labels=labels[:model.fc.out_features],
                       **hf_image_transform(folder, config, defaults={"crop_pct": 224 / 256, "resample": 3}))


_HF_RESNET = [
    (re.compile(r"resnet\.embedder\.embedder\.convolution\.(.+)"), r"conv1.\1"),
    (re.compile(r"resnet\.embedder\.embedder\.normalization\.(.+)"), r"bn1.\1"),
    (re.compile(r"resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.convolution\.(.+)"),
     lambda m: f"layer{int(m[1]) + 1}.{m[2]}.downsample.0.{m[3]}"),
    (re.compile(r"resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.normalization\.(.+)"),
     lambda m: f"layer{int(m[1]) + 1}.{m[2]}.downsample.1.{m[3]}"),
    (re.compile(r"resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.convolution\.(.+)"),
     lambda m: f"layer{int(m[1]) + 1}.{m[2]}.conv{int(m[3]) + 1}.{m[4]}"),
    (re.compile(r"resnet\.encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.normalization\.(.+)"),
     lambda m: f"layer{int(m[1]) + 1}.{m[2]}.bn{int(m[3]) + 1}.{m[4]}"),
    (re.compile(r"classifier\.1\.(.+)"), r"fc.\1"),
]


def hf_resnet_names(arrays: dict, source: str) -> dict:
    """transformers' ResNet weight names -> torchvision's (ours): ``resnet.embedder.embedder.convolution`` ->
    ``conv1``, ``...stages.i.layers.j.layer.k.convolution`` -> ``layer{i+1}.j.conv{k+1}``, ``shortcut`` ->
    ``downsample``, ``classifier.1`` -> ``fc``. A name it does not know is a CheckpointError."""
    out = {}
    for key, value in arrays.items():
        for pattern, target in _HF_RESNET:
            match = pattern.fullmatch(key)
            if match:
                out[match.expand(target) if isinstance(target, str) else target(match)] = value
                break
        else:
            raise CheckpointError(f"serve: '{source}' holds {key!r}, not a weight of transformers' "
                                  "ResNetForImageClassification")
    return out


def _check_and_load(model, arrays: dict, source: str) -> None:
    check_state_dict(model.state_dict(), arrays, source)
    model.load_state_dict(arrays)


def _input_side(arch: str, kwargs: dict) -> int:
    """The input size the architecture is built for: 28 (the *_small ones), B0-B7's resolution, else 224."""
    if arch.endswith("_small"):
        return 28
    variant = kwargs.get("variant", "b0") if arch == "efficientnet" else arch.rsplit("_", 1)[-1]
    return SCALING.get(variant, (0, 0, 224))[2]


def _torchvision_eval(folder: Path, channels: int, side: int) -> dict:
    """The defaults when the folder says nothing: torchvision's ImageNet evaluation transform (RGB)."""
    given = folder / "preprocessor_config.json"
    pre = json.loads(given.read_text(encoding="utf-8")) if given.is_file() else {}
    if channels != 3 and not {"image_mean", "image_std"} <= set(pre):
        raise ConfigError(f"serve: '{folder}' holds a {channels}-channel model; write its normalisation "
                          "(image_mean, image_std: the training set's) in preprocessor_config.json")
    if side < 64:  # small inputs (28x28) are resized whole, as they were trained
        return {"size": {"height": side, "width": side}, "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD}
    return {"size": {"shortest_edge": side}, "crop_pct": 224 / 256, "resample": 2, "image_mean": IMAGENET_MEAN,
            "image_std": IMAGENET_STD}
