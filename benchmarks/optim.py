"""Optimizer steps: one ``step()`` of each optimizer over the parameters of a 1,024-wide MLP block
(1024x1024, 1024 and 256x1024 float32: 1.31 M numbers), neural-arch against torch.optim with its
defaults (the ``foreach`` implementation on CPU). Lion is not in torch: it runs against our own
NumPy step (kernels switched off), the spelling every fused kernel is tested against.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import compare

SHAPES = [(1024, 1024), (1024,), (256, 1024)]

CASES = [
    ("SGD", dict(lr=1e-2)),
    ("SGD", dict(lr=1e-2, momentum=0.9)),
    ("SGD", dict(lr=1e-2, momentum=0.9, nesterov=True, weight_decay=1e-4)),
    ("Adam", dict(lr=1e-3)),
    ("AdamW", dict(lr=1e-3, weight_decay=0.1)),
    ("RMSprop", dict(lr=1e-3)),
    ("RMSprop", dict(lr=1e-3, momentum=0.9, centered=True)),
    ("Adagrad", dict(lr=1e-2)),
    ("Adamax", dict(lr=2e-3)),
    ("Adadelta", dict(lr=1.0)),
    ("NAdam", dict(lr=2e-3)),
    ("RAdam", dict(lr=1e-3)),
]


def _label(name, kw):
    extra = ", ".join(f"{k}={v}" for k, v in kw.items() if k != "lr")
    return f"{name}({extra}) step, 1.31 M params" if extra else f"{name} step, 1.31 M params"


def run(rounds: int = 30):
    import torch

    import neural_arch as na
    from neural_arch import optim
    from neural_arch.backend import kernels

    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [rng.standard_normal(s).astype(np.float32) * 1e-3 for s in SHAPES]
    ours = [na.nn.Parameter(na.tensor(v.copy())) for v in values]
    theirs = [torch.nn.Parameter(torch.tensor(v.copy())) for v in values]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = na.tensor(g), torch.tensor(g)

    results = []
    for name, kw in CASES:
        ours_opt, torch_opt = getattr(optim, name)(ours, **kw), getattr(torch.optim, name)(theirs, **kw)
        results.append(compare(_label(name, kw), {"neural-arch": ours_opt.step, "torch": torch_opt.step},
                               rounds=rounds))

    lion = optim.Lion(ours, lr=1e-4, weight_decay=0.1)

    def numpy_lion():
        with kernels.enabled(False):
            lion.step()

    results.append(compare("Lion(weight_decay=0.1) step, 1.31 M params (against our NumPy step)",
                           {"neural-arch": lion.step, "NumPy step": numpy_lion}, rounds=rounds))
    return results
