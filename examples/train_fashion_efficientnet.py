"""Train a scaled-down EfficientNet on Fashion-MNIST with neural-arch; print test accuracy and timings.

    python examples/train_fashion_efficientnet.py                # issue 22: 18 epochs, 93.60% (BENCHMARKS.md)
    python examples/train_fashion_efficientnet.py --epochs 1 --subset 512 --max-steps 3   # smoke run
    NEURAL_ARCH_EXAMPLE_SMOKE=1 python examples/train_fashion_efficientnet.py            # the same smoke run

The model is ``efficientnet_small``: B0's first five stages (MBConv with
depthwise convs, squeeze-and-excitation, SiLU, stochastic depth) scaled by
``--width`` and ``--depth``, with a stride-1 stem for 28x28 images
(28 -> 14 -> 7 -> 4). Augmentation: random crop with 2 pixels of padding and
horizontal flips. AdamW with a one-cycle learning rate.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fashion_common import SMOKE, Timer, batches, evaluate, load_arrays

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch import optim
from neural_arch.data.transforms import Compose, RandomCrop, RandomHorizontalFlip
from neural_arch.models.efficientnet import efficientnet_small


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=18)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--width", type=float, default=0.5, help="channel multiplier on B0's widths")
    p.add_argument("--depth", type=float, default=0.5, help="block-count multiplier on B0's depths")
    p.add_argument("--subset", type=int, default=0, help="train on this many images (0: all 60,000)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit; smoke runs)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if SMOKE:
        args.epochs, args.subset, args.max_steps = 1, 512, 3
    return args


def main():
    args = parse_args()
    na.manual_seed(args.seed)
    xtr, ytr, xte, yte = load_arrays(args.subset or None, args.seed)
    if args.max_steps:  # a smoke run: a slice of the test set is enough to exercise evaluation
        xte, yte = xte[:500], yte[:500]
    model = efficientnet_small(num_classes=10, width_mult=args.width, depth_mult=args.depth)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"efficientnet_small width={args.width} depth={args.depth}: {n_params:,} parameters; "
          f"train {len(xtr)} / test {len(xte)} images")
    background = (0.0 - 0.2860) / 0.3530
    augment = Compose([RandomCrop(28, padding=2, fill=background, batched=True), RandomHorizontalFlip(batched=True)])
    steps = args.epochs * ((len(xtr) + args.batch_size - 1) // args.batch_size)
    opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.2)
    rng = np.random.default_rng(args.seed)
    total, step, acc = Timer(), 0, float("nan")
    for epoch in range(args.epochs):
        model.train()
        t, seen, loss_sum = Timer(), 0, 0.0
        for xb, yb in batches(xtr, ytr, args.batch_size, rng):
            loss = F.cross_entropy(model(na.tensor(augment(xb))), na.tensor(yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seen, loss_sum, step = seen + len(yb), loss_sum + loss.item() * len(yb), step + 1
            if step % 50 == 0:
                print(f"  step {step}/{steps}: train loss {loss_sum / seen:.4f} | {t():.1f}s", flush=True)
            if args.max_steps and step >= args.max_steps:
                break
        model.eval()
        acc = evaluate(lambda xb: model(na.tensor(xb)).numpy(), xte, yte)
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {loss_sum / seen:.4f} | test acc {acc:.4f} | "
              f"{t():.1f}s", flush=True)
        if args.max_steps and step >= args.max_steps:
            break
    print(f"final test accuracy {acc:.4f}; wall time {total():.1f}s")


if __name__ == "__main__":
    main()
