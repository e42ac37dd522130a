"""Attention-rollout overlays for Vision Transformers, saved as PNG with matplotlib.

    from neural_arch.viz import save_attention_rollout
    save_attention_rollout(model, images, "rollout.png", labels=y, class_names=names)

Each row shows an image, its rollout map (how much each patch flows into
the class token, see ``models.vit.attention_rollout``) upsampled to the
image size, and the two overlaid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neural_arch.autograd import Tensor, no_grad
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.models.vit import attention_rollout
from neural_arch.ops import tensor


def rollout_overlay(model, pixel_values, head_fusion: str = "mean", discard_ratio: float = 0.0):
    """(rollout maps upsampled to (B, H, W) in [0, 1], predicted class per image) for a ViT.

    ``model`` is a ``ViTForImageClassification`` (or ``ViTModel``, then no prediction).
    """
    x = pixel_values if isinstance(pixel_values, Tensor) else tensor(np.asarray(pixel_values, np.float32))
    if len(x.shape) != 4:
        raise ShapeError(f"rollout_overlay: expected images (B, C, H, W), got {shape_str(x.shape)}")
    was_training = model.training
    model.eval()
    with no_grad():
        out = model(x, output_attentions=True)
    model.train(was_training)
    maps = attention_rollout(out.attentions, head_fusion=head_fusion, discard_ratio=discard_ratio)  # (B, h, w)
    h, w = x.shape[2:]
    if h % maps.shape[1] or w % maps.shape[2]:
        raise ShapeError(f"rollout_overlay: image {h}x{w} is not a whole number of {maps.shape[1:]} patches")
    # each patch's value covers its whole patch: nearest-neighbour upsampling by repetition
    up = maps.repeat(h // maps.shape[1], axis=1).repeat(w // maps.shape[2], axis=2)
    pred = out.logits.numpy().argmax(-1) if out.logits is not None else None
    return up, pred


def save_attention_rollout(model, pixel_values, path, labels=None, class_names=None, mean: float = 0.0,
                           std: float = 1.0, head_fusion: str = "mean", discard_ratio: float = 0.0) -> Path:
    """Write a PNG grid (image | rollout | overlay per row) for a batch of images; returns the path.

    ``mean``/``std`` undo the input normalisation for display.
    """
    try:
        from matplotlib.figure import Figure  # noqa: PLC0415 - optional: the viz extra
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError("save_attention_rollout needs matplotlib: pip install 'neural-arch[viz]'") from exc
    maps, pred = rollout_overlay(model, pixel_values, head_fusion, discard_ratio)
    # stretch each map to [0, 1] for display: rollout maps of a shallow model are close to flat
    lo, hi = maps.min(axis=(1, 2), keepdims=True), maps.max(axis=(1, 2), keepdims=True)
    maps = (maps - lo) / np.maximum(hi - lo, 1e-12)
    imgs = np.asarray(pixel_values.numpy() if isinstance(pixel_values, Tensor) else pixel_values) * std + mean
    imgs = np.clip(imgs.transpose(0, 2, 3, 1), 0, 1)                      # (B, H, W, C)
    gray = imgs.shape[-1] == 1
    n = len(imgs)
    fig = Figure(figsize=(6.6, 2.2 * n))
    axes = fig.subplots(n, 3, squeeze=False)
    for i in range(n):
        img = imgs[i, :, :, 0] if gray else imgs[i]
        title = ""
        if labels is not None:
            title = f"true: {class_names[int(labels[i])] if class_names else int(labels[i])}"
        if pred is not None:
            title += f"\npred: {class_names[int(pred[i])] if class_names else int(pred[i])}"
        axes[i, 0].imshow(img, cmap="gray" if gray else None)
        axes[i, 0].set_title(title, fontsize=8)
        axes[i, 1].imshow(maps[i], cmap="inferno", vmin=0, vmax=1)
        axes[i, 1].set_title("rollout (min-max)", fontsize=8)
        axes[i, 2].imshow(img, cmap="gray" if gray else None)
        axes[i, 2].imshow(maps[i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
        axes[i, 2].set_title("overlay", fontsize=8)
        for ax in axes[i]:
            ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
