"""Compile suite: ``na.compile``'d training steps against torch eager (and our own eager step, and
``torch.compile`` where it runs on this machine), the workloads of the train suite:

* MLP 784-100-10, Adam, batch 128: one Fashion-MNIST epoch through the DataLoader
* the CNN of configs/fashion_cnn.yaml, Adam, batch 64: one Fashion-MNIST epoch
* char GPT 4L 128w 4h, block 64, batch 12, AdamW: one step
* GPT 6L 384w 6h, block 256, batch 16, AdamW: one step

Each contender runs the same step function (zero_grad, forward, loss, backward, step); ours compiled
is the step wrapped by ``na.compile`` (captured in the warm-up calls, replayed in the timed ones), with
its fused kernels, and ``fuse=False`` beside it (the op-by-op replay);
``torch.compile`` compiles the same step of a second torch model before the timing starts.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import compare
from benchmarks.train import _cnn, _copy_weights, _fashion_arrays, _mlp


def _torch_compiled(step, *example):
    """``torch.compile(step)`` if it compiles and runs here (inductor needs a C compiler), else None.
    The example call compiles it (outside the timing). Its optimizer and model are torch's own copy."""
    import torch

    try:
        fn = torch.compile(step)
        fn(*example)
        return fn
    except Exception:  # noqa: BLE001 - any failure means: not available on this machine
        return None


def _steps(ours, theirs, loss_na, loss_torch, make_opt_na, make_opt_torch):
    """Our step (eager), our step compiled (fused), torch's step (``theirs[0]``), torch's to be compiled
    (``[1]``) and ours compiled with ``fuse=False`` (``ours[2]``)."""
    import neural_arch as na

    opt_a, opt_c = make_opt_na(ours[0].parameters()), make_opt_na(ours[1].parameters())
    opt_u = make_opt_na(ours[2].parameters())
    opt_t, opt_tc = make_opt_torch(theirs[0].parameters()), make_opt_torch(theirs[1].parameters())

    def make(model, opt, loss_fn):
        def step(*batch):
            opt.zero_grad()
            loss = loss_fn(model, *batch)
            loss.backward()
            opt.step()
            return loss
        return step

    return (make(ours[0], opt_a, loss_na), na.compile(make(ours[1], opt_c, loss_na)),
            make(theirs[0], opt_t, loss_torch), make(theirs[1], opt_tc, loss_torch),
            na.compile(make(ours[2], opt_u, loss_na), fuse=False))


def _epochs(name, build, x_shape, batch, rounds):
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
    theirs = [build(tnn), build(tnn)]
    theirs[1].load_state_dict(theirs[0].state_dict())
    ours = [build(nn), build(nn), build(nn)]
    for m in ours:
        _copy_weights(m, theirs[0])
    eager, compiled, step_torch, step_tc, unfused = _steps(
        ours, theirs, lambda m, a, b: F.cross_entropy(m(a), b), lambda m, a, b: TF.cross_entropy(m(a), b),
        lambda p: optim.Adam(p, lr=1e-3), lambda p: torch.optim.Adam(p, lr=1e-3))
    loader_a = DataLoader(TensorDataset(na.tensor(x), na.tensor(y)), batch_size=batch, shuffle=True)
    loader_t = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)),
                                           batch_size=batch, shuffle=True)

    def epoch(step, loader):
        def run():
            for xb, yb in loader:
                step(xb, yb)
        return run

    contenders = {"neural-arch": epoch(compiled, loader_a), "torch": epoch(step_torch, loader_t),
                  "neural-arch eager": epoch(eager, loader_a), "neural-arch fuse=False": epoch(unfused, loader_a)}
    step_tc = _torch_compiled(step_tc, *next(iter(loader_t)))
    if step_tc is not None:
        contenders["torch.compile"] = epoch(step_tc, loader_t)
    res = compare(f"{name}: one epoch, {len(x):,} images with the DataLoader", contenders, rounds=rounds, warmup=1)
    res.name += f" ({compiled.fused_groups} fused groups)"
    if compiled.refusals:
        res.name += f" (compile refused: {compiled.refusals[0]})"
    return res


def _gpt(name, n_layer, n_embd, n_head, block, batch, vocab, rounds):
    import torch
    import transformers

    import neural_arch as na
    from neural_arch import optim
    from neural_arch.models import GPT2Config, GPT2LMHeadModel

    kw = dict(vocab_size=vocab, n_positions=block, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
              resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(0)
    theirs = [transformers.GPT2LMHeadModel(transformers.GPT2Config(**kw)).train() for _ in range(2)]
    theirs[1].load_state_dict(theirs[0].state_dict())
    ours = [GPT2LMHeadModel(GPT2Config(**kw)).train() for _ in range(3)]
    for m in ours:
        _copy_weights(m, theirs[0])
    rng = np.random.default_rng(0)
    ids, tgt = rng.integers(0, vocab, (batch, block)), rng.integers(0, vocab, (batch, block))

    def loss_na(m, a, b):
        return na.nn.functional.cross_entropy(m(a).logits.reshape(-1, vocab), b.reshape(-1))

    def loss_torch(m, a, b):
        return torch.nn.functional.cross_entropy(m(a).logits.reshape(-1, vocab), b.reshape(-1))

    eager, compiled, step_torch, step_tc, unfused = _steps(ours, theirs, loss_na, loss_torch,
                                                  lambda p: optim.AdamW(p, lr=1e-3),
                                                  lambda p: torch.optim.AdamW(p, lr=1e-3))
    a, t = (na.tensor(ids), na.tensor(tgt)), (torch.tensor(ids), torch.tensor(tgt))
    contenders = {"neural-arch": lambda: compiled(*a), "torch": lambda: step_torch(*t),
                  "neural-arch eager": lambda: eager(*a), "neural-arch fuse=False": lambda: unfused(*a)}
    step_tc = _torch_compiled(step_tc, *t)
    if step_tc is not None:
        contenders["torch.compile"] = lambda: step_tc(*t)
    res = compare(name + ": one step", contenders, rounds=rounds)
    res.name += f" ({compiled.fused_groups} fused groups)"
    if compiled.refusals:
        res.name += f" (compile refused: {compiled.refusals[0]})"
    return res


def run(rounds: int = 10):
    return [
        _epochs("MLP 784-100-10 Adam, batch 128", _mlp, (784,), 128, rounds),
        _epochs("CNN of configs/fashion_cnn.yaml, Adam, 28x28 batch 64", _cnn, (1, 28, 28), 64, max(3, rounds // 3)),
        _gpt("char GPT 4L 128w 4h, block 64, batch 12, AdamW", 4, 128, 4, 64, 12, 65, rounds),
        _gpt("GPT 6L 384w 6h, block 256, batch 16, AdamW", 6, 384, 6, 256, 16, 65, max(3, rounds // 3)),
    ]
