"""Train a small Vision Transformer from scratch on Fashion-MNIST; print test accuracy and timings.

    python examples/train_fashion_vit.py --epochs 10 --save /tmp/vit-fashion
    python examples/train_fashion_vit.py --epochs 1 --subset 5000 --compare-torch
    python examples/train_fashion_vit.py --epochs 95 --patch 4   # 90.94% (BENCHMARKS.md), ~55 min

The model is ``ViTForImageClassification`` (Hugging Face layout): 28x28
grey images in 7x7 patches (16 tokens + class token; ``--patch 4``: 49), ``--dim`` wide,
``--depth`` pre-LN layers. AdamW with warmup + cosine decay, random-crop
and flip augmentation. ``--save DIR`` writes the trained model with
``save_pretrained`` (transformers can load it; ``attention_rollout.py`` uses it).
``--compare-torch`` times one epoch of transformers' own ViTForImageClassification
with the same config and initial weights, in this run.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import neural_arch as na  # noqa: E402
from fashion_common import CLASSES, MEAN, STD, Timer, batches, evaluate, load_arrays  # noqa: E402

# NEURAL_ARCH_EXAMPLE_SMOKE=1 (the test suite): one epoch of a one-layer model on 256 images
SMOKE = os.environ.get("NEURAL_ARCH_EXAMPLE_SMOKE") == "1"
from neural_arch import optim  # noqa: E402
from neural_arch.data.transforms import Compose, RandomCrop, RandomHorizontalFlip  # noqa: E402
from neural_arch.models.vit import ViTConfig, ViTForImageClassification  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--patch", type=int, default=7)
    p.add_argument("--mlp-ratio", type=int, default=2, help="MLP hidden width as a multiple of --dim")
    p.add_argument("--subset", type=int, default=0, help="train on this many images (0: all 60,000)")
    p.add_argument("--max-minutes", type=float, default=0, help="stop training after this long (0: no limit)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default="", help="directory for save_pretrained")
    p.add_argument("--compare-torch", action="store_true")
    return p.parse_args()


def time_torch_epoch(model, config, args, xtr, ytr, augment) -> float:
    """One epoch of transformers' ViTForImageClassification, same config, same initial weights."""
    import torch
    import transformers

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # through the checkpoint: transformers maps the names itself
        model.save_pretrained(tmp)
        net = transformers.ViTForImageClassification.from_pretrained(tmp)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr / 10, weight_decay=args.weight_decay)
    net.train()
    t = Timer()
    for xb, yb in batches(xtr, ytr, args.batch_size, np.random.default_rng(args.seed)):
        out = net(torch.from_numpy(augment(xb)), labels=torch.from_numpy(yb))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    return t()


def main():
    args = parse_args()
    if SMOKE:
        args.epochs, args.subset, args.dim, args.depth = 1, 256, 32, 1
    na.manual_seed(args.seed)
    xtr, ytr, xte, yte = load_arrays(args.subset or None, args.seed)
    config = ViTConfig(hidden_size=args.dim, num_hidden_layers=args.depth, num_attention_heads=args.heads,
                       intermediate_size=args.mlp_ratio * args.dim, image_size=28, patch_size=args.patch, num_channels=1,
                       id2label=dict(enumerate(CLASSES)))
    model = ViTForImageClassification(config)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"ViT dim={args.dim} depth={args.depth} heads={args.heads} patch={args.patch}: {n_params:,} parameters; "
          f"train {len(xtr)} / test {len(xte)} images", flush=True)
    background = (0.0 - MEAN) / STD
    augment = Compose([RandomCrop(28, padding=2, fill=background, batched=True), RandomHorizontalFlip(batched=True)])
    torch_epoch = time_torch_epoch(model, config, args, xtr, ytr, augment) if args.compare_torch else None

    steps_per_epoch = (len(xtr) + args.batch_size - 1) // args.batch_size
    opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = optim.lr_scheduler.WarmupCosineLR(opt, warmup_steps=min(200, steps_per_epoch),
                                               total_steps=args.epochs * steps_per_epoch)
    rng = np.random.default_rng(args.seed)
    total, epoch_times, acc, done = Timer(), [], float("nan"), 0
    stop = False
    for epoch in range(args.epochs):
        model.train()
        t = Timer()
        seen, loss_sum = 0, 0.0
        for xb, yb in batches(xtr, ytr, args.batch_size, rng):
            out = model(na.tensor(augment(xb)), labels=na.tensor(yb))
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            sched.step()
            seen += len(yb)
            loss_sum += out.loss.item() * len(yb)
            if args.max_minutes and total() > 60 * args.max_minutes:
                stop = True
                break
        epoch_times.append(t() * len(xtr) / seen)  # extrapolated to a full epoch if cut short
        done = epoch + seen / len(xtr)
        model.eval()
        acc = evaluate(lambda xb: model(na.tensor(xb)).logits.numpy(), xte, yte)
        print(f"epoch {done:.2f}/{args.epochs}: train loss {loss_sum / seen:.4f} | test acc {acc:.4f} | "
              f"epoch time {epoch_times[-1]:.1f}s", flush=True)
        if stop:
            print(f"stopped after {args.max_minutes} minutes (--max-minutes)")
            break
    print(f"final test accuracy {acc:.4f} after {done:.2f} epochs; wall time {total():.1f}s; "
          f"time per epoch {np.mean(epoch_times):.1f}s (neural-arch)")
    if torch_epoch is not None:
        print(f"transformers ViT in torch, same config and batches: {torch_epoch:.1f}s per epoch "
              f"(ratio torch/ours {torch_epoch / np.mean(epoch_times):.3f})")
    if args.save:
        model.save_pretrained(args.save)
        print(f"saved to {args.save}")


if __name__ == "__main__":
    main()
