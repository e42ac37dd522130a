"""Train a small ResNet on Fashion-MNIST with neural-arch; print test accuracy and timings.

    python examples/train_fashion_resnet.py --epochs 6
    python examples/train_fashion_resnet.py --epochs 1 --subset 5000      # measure an epoch on a subset
    python examples/train_fashion_resnet.py --epochs 6 --compare-torch    # also time torch per epoch

The model is ``resnet_small``: a 3x3 stem and three BasicBlock stages
(28 -> 14 -> 7), global average pool, linear head. Augmentation: random
crop with 2 pixels of padding and horizontal flips, drawn per image.
SGD with Nesterov momentum, one-cycle learning rate.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import neural_arch as na  # noqa: E402
import neural_arch.nn.functional as F  # noqa: E402
from fashion_common import Timer, batches, copy_params_to_torch, evaluate, load_arrays  # noqa: E402
from neural_arch import optim  # noqa: E402
from neural_arch.data.transforms import Compose, RandomCrop, RandomHorizontalFlip  # noqa: E402
from neural_arch.models.resnet import resnet_small  # noqa: E402

# NEURAL_ARCH_EXAMPLE_SMOKE=1 (the test suite): one epoch of a narrow model on 256 images
SMOKE = os.environ.get("NEURAL_ARCH_EXAMPLE_SMOKE") == "1"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--layers", type=int, nargs="+", default=[1, 1, 1])
    p.add_argument("--subset", type=int, default=0, help="train on this many images (0: all 60,000)")
    p.add_argument("--max-minutes", type=float, default=0, help="stop training after this long (0: no limit)")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare-torch", action="store_true", help="time one epoch of the same model in torch")
    return p.parse_args()


def torch_twin(widths, layers):
    """The same network written in torch (torchvision's block structure), for timing only."""
    import torch.nn as tnn

    class Block(tnn.Module):
        def __init__(self, inp, out, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(inp, out, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(out)
            self.relu = tnn.ReLU()
            self.conv2 = tnn.Conv2d(out, out, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(out)
            self.downsample = None
            if stride != 1 or inp != out:
                self.downsample = tnn.Sequential(tnn.Conv2d(inp, out, 1, stride, bias=False), tnn.BatchNorm2d(out))

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + idt)

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(1, widths[0], 3, 1, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(widths[0])
            self.relu = tnn.ReLU()
            inp = widths[0]
            for i, (w, n) in enumerate(zip(widths, layers)):
                blocks = [Block(inp, w, 1 if i == 0 else 2)] + [Block(w, w, 1) for _ in range(n - 1)]
                setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
                inp = w
            self.fc = tnn.Linear(widths[-1], 10)
            self.n = len(widths)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            for i in range(self.n):
                x = getattr(self, f"layer{i + 1}")(x)
            return self.fc(x.mean((2, 3)))

    return Net()


def time_torch_epoch(model_na, args, xtr, ytr, augment) -> float:
    import torch

    torch.manual_seed(args.seed)
    net = torch_twin(args.widths, args.layers)
    copy_params_to_torch(model_na, net)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr / 10, momentum=0.9, nesterov=True,
                          weight_decay=args.weight_decay)
    net.train()
    t = Timer()
    for xb, yb in batches(xtr, ytr, args.batch_size, np.random.default_rng(args.seed)):
        xb = augment(xb)
        loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(xb)), torch.from_numpy(yb))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return t()


def main():
    args = parse_args()
    if SMOKE:
        args.epochs, args.subset, args.widths = 1, 256, [8, 16, 32]
    na.manual_seed(args.seed)
    xtr, ytr, xte, yte = load_arrays(args.subset or None, args.seed)
    model = resnet_small(num_classes=10, widths=args.widths, layers=args.layers)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"resnet_small widths={args.widths} layers={args.layers}: {n_params:,} parameters; "
          f"train {len(xtr)} / test {len(xte)} images; threads: {os.environ.get('OMP_NUM_THREADS', 'default')}")

    background = (0.0 - 0.2860) / 0.3530  # a black pixel after normalisation
    augment = (lambda xb: xb) if args.no_augment else Compose([
        RandomCrop(28, padding=2, fill=background, batched=True),
        RandomHorizontalFlip(batched=True),
    ])

    torch_epoch = time_torch_epoch(model, args, xtr, ytr, augment) if args.compare_torch else None

    steps = args.epochs * ((len(xtr) + args.batch_size - 1) // args.batch_size)
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.25)
    rng = np.random.default_rng(args.seed)
    total, epoch_times, acc, done, stop = Timer(), [], float("nan"), 0.0, False
    for epoch in range(args.epochs):
        model.train()
        t = Timer()
        seen, loss_sum, correct = 0, 0.0, 0
        for xb, yb in batches(xtr, ytr, args.batch_size, rng):
            xb = augment(xb)
            logits = model(na.tensor(xb))
            loss = F.cross_entropy(logits, na.tensor(yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seen += len(yb)
            loss_sum += loss.item() * len(yb)
            correct += int((logits.detach().numpy().argmax(-1) == yb).sum())
            if args.max_minutes and total() > 60 * args.max_minutes:
                stop = True
                break
        epoch_times.append(t() * len(xtr) / seen)  # extrapolated to a full epoch if cut short
        done = epoch + seen / len(xtr)
        model.eval()
        acc = evaluate(lambda xb: model(na.tensor(xb)).numpy(), xte, yte)
        print(f"epoch {done:.2f}/{args.epochs}: train loss {loss_sum / seen:.4f} acc {correct / seen:.4f} | "
              f"test acc {acc:.4f} | epoch time {epoch_times[-1]:.1f}s", flush=True)
        if stop:
            print(f"stopped after {args.max_minutes} minutes (--max-minutes)")
            break
    print(f"final test accuracy {acc:.4f} after {done:.2f} epochs; wall time {total():.1f}s; "
          f"time per epoch {np.mean(epoch_times):.1f}s (neural-arch)")
    if torch_epoch is not None:
        print(f"torch {__import__('torch').__version__}, same model and batches: {torch_epoch:.1f}s per epoch "
              f"(ratio torch/ours {torch_epoch / np.mean(epoch_times):.3f})")


if __name__ == "__main__":
    main()
