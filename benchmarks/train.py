"""Train suite: time per training step (forward, backward, optimizer) of whole models.

The same architecture, initial weights and batches in both frameworks:

* MLP 784-100-10, ReLU, Adam, batch 128: one epoch of Fashion-MNIST's 60,000 training images
* small CNN (two 3x3 conv blocks + pooling + two linear layers) on 28x28, batch 64: one epoch
* char GPT: 4 layers, 128 wide, 4 heads, block 64, batch 12, AdamW
* GPT: 6 layers, 384 wide, 6 heads, block 256, batch 16, AdamW

The GPTs are ours (``neural_arch.models.GPT2LMHeadModel``) and Hugging Face
``transformers``' GPT-2 in torch, built from one config.

The classifiers are timed as users run them: a whole epoch over the real images, each framework's
own ``DataLoader`` (shuffled, every batch different) over the same normalised arrays, its loading
included. Beside each epoch, one fixed batch's step time (the per-step figure of earlier tables).
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import compare


def _mlp(nn):
    return nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))


def _cnn(nn):
    """The model of configs/fashion_cnn.yaml (92.9% on Fashion-MNIST)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10),
    )


def _copy_weights(ours, theirs):
    """Give both models the same initial weights (torch's init, copied by parameter name)."""
    import neural_arch as na

    ref = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    ours.load_state_dict({k: na.tensor(v) for k, v in ref.items()}, strict=False)


def _step_pair(ours, theirs, make_opt_na, make_opt_torch, batch_na, batch_torch, loss_na, loss_torch):
    opt_a, opt_t = make_opt_na(ours.parameters()), make_opt_torch(theirs.parameters())

    def step_na():
        opt_a.zero_grad()
        loss = loss_na(ours, *batch_na)
        loss.backward()
        opt_a.step()

    def step_torch():
        opt_t.zero_grad()
        loss = loss_torch(theirs, *batch_torch)
        loss.backward()
        opt_t.step()

    return step_na, step_torch


def _classifier(name, build, x_shape, batch, rounds):
    import torch
    import torch.nn as tnn
    import torch.nn.functional as TF

    import neural_arch as na
    import neural_arch.nn as nn
    import neural_arch.nn.functional as F
    from neural_arch import optim

    torch.manual_seed(0)
    theirs, ours = build(tnn), build(nn)
    _copy_weights(ours, theirs)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *x_shape)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    step_na, step_torch = _step_pair(
        ours, theirs, lambda p: optim.Adam(p, lr=1e-3), lambda p: torch.optim.Adam(p, lr=1e-3),
        (na.tensor(x), na.tensor(y)), (torch.tensor(x), torch.tensor(y)),
        lambda m, a, b: F.cross_entropy(m(a), b), lambda m, a, b: TF.cross_entropy(m(a), b),
    )
    return compare(name + ": one step", {"neural-arch": step_na, "torch": step_torch}, rounds=rounds)


def _fashion_arrays(x_shape):
    """Fashion-MNIST's training images, scaled and normalised as configs/fashion_*.yaml do."""
    from neural_arch.data import FashionMNIST

    train = FashionMNIST(train=True, download=False)
    x = (train.data.astype(np.float32) / 255.0 - 0.2860) / 0.3530
    return x.reshape(len(x), *x_shape), train.targets


def _epoch_classifier(name, build, x_shape, batch, rounds):
    """One whole epoch per timing: each framework's DataLoader over the same arrays, shuffled."""
    import torch
    import torch.nn as tnn
    import torch.nn.functional as TF

    import neural_arch as na
    import neural_arch.nn as nn
    import neural_arch.nn.functional as F
    from neural_arch import optim
    from neural_arch.data import DataLoader, TensorDataset

    x, y = _fashion_arrays(x_shape)
    torch.manual_seed(0)
    na.manual_seed(0)
    theirs, ours = build(tnn), build(nn)
    _copy_weights(ours, theirs)
    opt_a, opt_t = optim.Adam(ours.parameters(), lr=1e-3), torch.optim.Adam(theirs.parameters(), lr=1e-3)
    loader_a = DataLoader(TensorDataset(na.tensor(x), na.tensor(y)), batch_size=batch, shuffle=True)
    loader_t = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)),
                                           batch_size=batch, shuffle=True)

    def epoch_na():
        for xb, yb in loader_a:
            opt_a.zero_grad()
            F.cross_entropy(ours(xb), yb).backward()
            opt_a.step()

    def epoch_torch():
        for xb, yb in loader_t:
            opt_t.zero_grad()
            TF.cross_entropy(theirs(xb), yb).backward()
            opt_t.step()

    return compare(f"{name}: one epoch, {len(x):,} images with the DataLoader",
                   {"neural-arch": epoch_na, "torch": epoch_torch}, rounds=rounds, warmup=1)


def _gpt(name, n_layer, n_embd, n_head, block, batch, vocab, rounds):
    import torch
    import transformers

    import neural_arch as na
    from neural_arch import optim
    from neural_arch.models import GPT2Config, GPT2LMHeadModel

    kw = dict(vocab_size=vocab, n_positions=block, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
              resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(0)
    theirs = transformers.GPT2LMHeadModel(transformers.GPT2Config(**kw)).train()
    ours = GPT2LMHeadModel(GPT2Config(**kw)).train()
    _copy_weights(ours, theirs)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, (batch, block))
    tgt = rng.integers(0, vocab, (batch, block))

    def loss_na(m, a, b):
        logits = m(a).logits
        return na.nn.functional.cross_entropy(logits.reshape(-1, vocab), b.reshape(-1))

    def loss_torch(m, a, b):
        logits = m(a).logits
        return torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), b.reshape(-1))

    step_na, step_torch = _step_pair(
        ours, theirs, lambda p: optim.AdamW(p, lr=1e-3), lambda p: torch.optim.AdamW(p, lr=1e-3),
        (na.tensor(ids), na.tensor(tgt)), (torch.tensor(ids), torch.tensor(tgt)), loss_na, loss_torch,
    )
    return compare(name, {"neural-arch": step_na, "torch": step_torch}, rounds=rounds)


def run(rounds: int = 10):
    mlp, cnn = "MLP 784-100-10 Adam, batch 128", "CNN of configs/fashion_cnn.yaml, Adam, 28x28 batch 64"
    results = [
        _epoch_classifier(mlp, _mlp, (784,), 128, rounds),
        _classifier(mlp + ", one fixed batch", _mlp, (784,), 128, rounds * 5),
        _epoch_classifier(cnn, _cnn, (1, 28, 28), 64, max(3, rounds // 3)),
        _classifier(cnn + ", one fixed batch", _cnn, (1, 28, 28), 64, rounds),
        _gpt("char GPT 4L 128w 4h, block 64, batch 12, AdamW", 4, 128, 4, 64, 12, 65, rounds),
        _gpt("GPT 6L 384w 6h, block 256, batch 16, AdamW", 6, 384, 6, 256, 16, 65, max(3, rounds // 3)),
    ]
    return results
