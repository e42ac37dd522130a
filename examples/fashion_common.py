"""Shared pieces of the Fashion-MNIST examples: data as arrays, batching, evaluation, timing."""

from __future__ import annotations

import os
import time

import numpy as np

import neural_arch as na
from neural_arch.data import FashionMNIST

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training-set pixel statistics
# NEURAL_ARCH_EXAMPLE_SMOKE=1: the examples run a few steps on a few hundred images (the test suite's size)
SMOKE = os.environ.get("NEURAL_ARCH_EXAMPLE_SMOKE", "") not in ("", "0")
CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]


def load_arrays(subset: int | None = None, seed: int = 0):
    """(x_train, y_train, x_test, y_test): normalised float32 (N, 1, 28, 28) images, int64 labels."""
    train, test = FashionMNIST(train=True), FashionMNIST(train=False)

    def prep(ds):
        x = (ds.data.astype(np.float32) / 255.0 - MEAN) / STD
        return x[:, None], ds.targets.astype(np.int64)

    xtr, ytr = prep(train)
    xte, yte = prep(test)
    if subset:
        idx = np.random.default_rng(seed).permutation(len(xtr))[:subset]
        xtr, ytr = xtr[idx], ytr[idx]
    return xtr, ytr, xte, yte


def batches(x, y, batch_size: int, rng: np.random.Generator | None = None):
    """Yield (x, y) NumPy mini-batches, shuffled when ``rng`` is given."""
    order = rng.permutation(len(x)) if rng is not None else np.arange(len(x))
    for i in range(0, len(x), batch_size):
        idx = order[i:i + batch_size]
        yield x[idx], y[idx]


def evaluate(predict, x, y, batch_size: int = 500) -> float:
    """Accuracy of ``predict(np batch) -> np logits`` over (x, y), under no_grad."""
    correct = 0
    with na.no_grad():
        for xb, yb in batches(x, y, batch_size):
            correct += int((predict(xb).argmax(-1) == yb).sum())
    return correct / len(x)


class Timer:
    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


def copy_params_to_torch(na_model, torch_model) -> None:
    """Give the torch twin our initial weights (same names, same shapes), so both runs start equal."""
    import torch

    sd = {k: torch.from_numpy(np.array(v.numpy())) for k, v in na_model.state_dict().items()}
    torch_model.load_state_dict(sd, strict=True)
