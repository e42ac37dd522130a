"""Teach a frozen language model to caption Fashion-MNIST images with a Flamingo-style VLM (Idefics layout).

    python examples/train_fashion_vlm.py                                   # the run for issue 22
    python examples/train_fashion_vlm.py --lm-steps 3 --vlm-steps 3 --test-images 64 --probe-images 64  # smoke
    NEURAL_ARCH_EXAMPLE_SMOKE=1 python examples/train_fashion_vlm.py                  # the same smoke run

Two stages, as in Flamingo:

1. **The language model**, alone: a small Llama-style decoder learns caption text
   ("a photo of a sneaker", "here we see a coat", ...) from every template
   (training and held-out ones) with random class names and no image: it knows
   how captions are phrased but not which garment an image shows. The gated
   cross-attention layers are present but shut (tanh(0) = 0), so this is
   exactly the text-only model.
2. **The VLM**: the language model (embeddings, layers, head) is frozen; the
   vision encoder, the perceiver resampler and the gated cross-attention
   layers learn from (image, caption) pairs built with the *training*
   templates only. The gates start at 0 and open as the image becomes useful.

NOTE: Flamingo freezes a vision encoder pretrained elsewhere; nothing
pretrained is available offline here, so the ViT trains in stage 2
(``--freeze-vision`` keeps it frozen at its random initialisation instead).

Caption accuracy: each test image gets a prompt from a *held-out* template
("a snapshot of a"), the model decodes greedily, and the caption counts when
the decoded words equal the class name. The gate values tanh(alpha) are
printed before, during and after stage 2.

Two diagnostics say what limits the accuracy: the caption accuracy with the
*training* templates next to the held-out ones (is it the templates?), and a
linear probe of the image features the cross-attention reads (the resampler's
latents; ridge regression on ``--probe-images`` training images, scored on as
many test images) before and after stage 2 (does the vision side learn?).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fashion_common import CLASSES, SMOKE, Timer, load_arrays

import neural_arch as na
from neural_arch import optim
from neural_arch.models.idefics import IdeficsConfig, IdeficsForVisionText2Text

TRAIN_TEMPLATES = ["a photo of a {}", "this is a {}", "a picture of a {}", "an image showing a {}"]
HELD_OUT_TEMPLATES = ["a snapshot of a {}", "here we see a {}"]
SPECIALS = ["<pad>", "<bos>", "<eos>"]


class WordTokenizer:
    """Words of the templates and class names, plus <pad> (0), <bos> (1), <eos> (2)."""

    def __init__(self):
        words = {w for t in TRAIN_TEMPLATES + HELD_OUT_TEMPLATES for w in t.replace("{}", "").split()}
        words |= {w for c in CLASSES for w in c.split()}
        self.itos = SPECIALS + sorted(words)
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def encode(self, text: str) -> list:
        return [self.stoi[w] for w in text.split()]

    def caption(self, template: str, label: int) -> list:
        return [1] + self.encode(template.format(CLASSES[label])) + [2]


def batch_of(tok, templates, labels, rng, length: int):
    """(B, length) ids padded with <pad>: one caption per label, a random template each."""
    ids = np.zeros((len(labels), length), np.int64)
    for i, y in enumerate(labels):
        c = tok.caption(templates[rng.integers(len(templates))], int(y))
        ids[i, :len(c)] = c
    return ids


def build(args, vocab: int) -> IdeficsForVisionText2Text:
    return IdeficsForVisionText2Text(IdeficsConfig(
        vocab_size=vocab, hidden_size=args.width, intermediate_size=2 * args.width, num_hidden_layers=2,
        num_attention_heads=4, use_resampler=True, freeze_text_layers=False, freeze_vision_layers=False,
        pad_token_id=0, bos_token_id=1, eos_token_id=2,
        vision_config=dict(embed_dim=args.width, image_size=28, patch_size=7, intermediate_size=2 * args.width,
                           num_hidden_layers=2, num_attention_heads=4, num_channels=1),
        perceiver_config=dict(resampler_n_latents=8, resampler_depth=1, resampler_n_heads=4,
                              resampler_head_dim=args.width // 4)))


def set_trainable(model, stage: int, freeze_vision: bool) -> list:
    """Stage 1: the language model only. Stage 2: everything but the language model."""
    lm = ("model.embed_tokens.", "model.layers.", "model.norm.", "lm_head.")
    params = []
    for name, p in model.named_parameters():
        is_lm = name.startswith(lm)
        train = is_lm if stage == 1 else (not is_lm and not (freeze_vision and name.startswith("model.vision_model.")))
        p.requires_grad_(train)
        p.grad = None
        if train:
            params.append(p)
    return params


def train_stage(model, params, make_batch, steps: int, lr: float, label: str, show_gates: bool = False):
    opt = optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1)
    model.train()
    t = Timer()
    for step in range(steps):
        ids, pixels = make_batch()
        labels = np.where(ids == 0, -100, ids)  # no loss on padding
        loss = model(ids, pixel_values=pixels, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            gates = " | gates " + " ".join(f"{v:.3f}" for v in model.gates().values()) if show_gates else ""
            print(f"{label} step {step:5d}  loss {loss.item():.4f}{gates}  ({t():.0f}s)", flush=True)


def caption_accuracy(model, tok, x, y, templates=HELD_OUT_TEMPLATES, batch: int = 250) -> float:
    """Greedy captions after a template's prefix (held-out ones by default, one per batch in turn);
    correct when the decoded words equal the class name."""
    model.eval()
    correct = 0
    with na.no_grad():
        for i in range(0, len(x), batch):
            xb, yb = x[i:i + batch], y[i:i + batch]
            template = templates[(i // batch) % len(templates)]
            prefix = [1] + tok.encode(template.replace("{}", "").strip())
            ids = np.tile(np.array(prefix, np.int64), (len(xb), 1))
            for _ in range(3):  # class names are one or two words, then <eos>
                logits = model(ids, pixel_values=xb[:, None]).logits.numpy()[:, -1]
                ids = np.concatenate([ids, logits.argmax(-1)[:, None]], axis=1)
            for row, label in zip(ids[:, len(prefix):], yb):
                words = [tok.itos[t] for t in row[: list(row).index(2)]] if 2 in row else None
                correct += words is not None and " ".join(words) == CLASSES[label]
    model.train()
    return correct / len(x)


def probe_accuracy(model, xtr, ytr, xte, yte, batch: int = 250, ridge: float = 1e-2) -> float:
    """Test accuracy of a linear classifier (ridge regression on one-hot labels) over the flattened
    image features the cross-attention layers read: how much of the class the vision side exposes."""
    def features(x):
        with na.no_grad():
            return np.concatenate([model.model.image_features(na.tensor(x[i:i + batch, None])).numpy()
                                   .reshape(len(x[i:i + batch]), -1) for i in range(0, len(x), batch)])
    model.eval()
    ftr, fte = features(xtr), features(xte)
    model.train()
    mean, std = ftr.mean(0), ftr.std(0) + 1e-6
    ftr, fte = (ftr - mean) / std, (fte - mean) / std
    gram = ftr.T.astype(np.float64) @ ftr + ridge * len(ftr) * np.eye(ftr.shape[1])
    w = np.linalg.solve(gram, ftr.T.astype(np.float64) @ np.eye(10)[ytr])
    return float(((fte @ w).argmax(-1) == yte).mean())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lm-steps", type=int, default=400)
    p.add_argument("--vlm-steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--test-images", type=int, default=10000)
    p.add_argument("--freeze-vision", action="store_true", help="keep the ViT at its random initialisation")
    p.add_argument("--probe-images", type=int, default=2000, help="images to fit / score the linear probe on")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if SMOKE:  # the test suite's size
        args.lm_steps, args.vlm_steps, args.batch_size, args.test_images, args.probe_images = 3, 3, 16, 64, 64
    na.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    xtr, ytr, xte, yte = load_arrays()
    xte, yte = xte[:args.test_images], yte[:args.test_images]
    tok = WordTokenizer()
    model = build(args, len(tok.itos))
    length = 2 + max(len(tok.encode(t.format(c))) for t in TRAIN_TEMPLATES + HELD_OUT_TEMPLATES for c in CLASSES)
    blank = np.zeros((args.batch_size, 1, 1, 28, 28), np.float32)

    def text_batch():  # stage 1: captions of every template, random class names, no image to see
        labels = rng.integers(0, 10, args.batch_size)
        return batch_of(tok, TRAIN_TEMPLATES + HELD_OUT_TEMPLATES, labels, rng, length), blank

    def image_batch():  # stage 2: real pairs, training templates only
        idx = rng.integers(0, len(xtr), args.batch_size)
        return batch_of(tok, TRAIN_TEMPLATES, ytr[idx], rng, length), xtr[idx][:, None]

    total = Timer()
    train_stage(model, set_trainable(model, 1, args.freeze_vision), text_batch, args.lm_steps, args.lr, "LM ")
    n_probe = min(args.probe_images, len(xte))
    probe = lambda: probe_accuracy(model, xtr[:n_probe], ytr[:n_probe], xte[:n_probe], yte[:n_probe])  # noqa: E731
    before = caption_accuracy(model, tok, xte, yte)
    print(f"after stage 1 (text only, gates shut): caption accuracy {before:.4f} (chance 0.1); gates {model.gates()}")
    print(f"linear probe of the image features (vision side at its initialisation): {probe():.4f}", flush=True)
    train_stage(model, set_trainable(model, 2, args.freeze_vision), image_batch, args.vlm_steps, args.lr, "VLM",
                show_gates=True)
    acc = caption_accuracy(model, tok, xte, yte)
    gates = model.gates()
    print(f"after stage 2: caption accuracy {acc:.4f} on {len(xte)} test images with held-out templates")
    seen = caption_accuracy(model, tok, xte[:n_probe], yte[:n_probe], templates=TRAIN_TEMPLATES)
    print(f"  with the training templates instead: {seen:.4f} (first {n_probe} test images)")
    print(f"  linear probe of the image features after stage 2: {probe():.4f}")
    print("gates tanh(alpha): " + ", ".join(f"{k} {v:.3f}" for k, v in gates.items()))
    print(f"wall time {total():.0f}s")


if __name__ == "__main__":
    main()
