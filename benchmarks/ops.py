"""Op suite: the hot ops of a training step, forward and forward+backward, float32.

The same computation in both frameworks, on the same NumPy-generated inputs.
Workloads are the ones in issue #3 / #7's speed tables, and dropout (a fused kernel of #7's list).
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import compare


def _pair(shape_list, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * scale).astype(np.float32) for s in shape_list]


def workloads():
    """name -> (arrays, fn(F, lib, *tensors) -> output tensor). ``lib`` is ``na`` or ``torch``."""
    mha_b, mha_t, mha_d, mha_h = 8, 128, 256, 8

    def mha(F, lib, x, w_qkv, w_o):
        b, t, d = x.shape
        qkv = x @ w_qkv  # (B, T, 3D)
        q, k, v = qkv.split(d, dim=-1)
        hs = d // mha_h
        q, k, v = (z.reshape(b, t, mha_h, hs).transpose(1, 2) for z in (q, k, v))  # (B, H, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return y.transpose(1, 2).reshape(b, t, d) @ w_o

    return {
        "matmul 512x512": (_pair([(512, 512), (512, 512)]), lambda F, lib, a, b: a @ b),
        "conv2d N32 16->32 28x28 k3 p1": (
            _pair([(32, 16, 28, 28), (32, 16, 3, 3)]),
            lambda F, lib, x, w: F.conv2d(x, w, padding=1),
        ),
        f"attention B{mha_b} T{mha_t} D{mha_d} H{mha_h} (qkv, sdpa causal, out proj)": (
            _pair([(mha_b, mha_t, mha_d), (mha_d, 3 * mha_d), (mha_d, mha_d)], scale=0.1),
            mha,
        ),
        "sdpa B8 H8 T128 d32": (
            _pair([(8, 8, 128, 32)] * 3),
            lambda F, lib, q, k, v: F.scaled_dot_product_attention(q, k, v),
        ),
        "layer_norm 4096x512": (
            _pair([(4096, 512), (512,), (512,)]),
            lambda F, lib, x, w, b: F.layer_norm(x, (512,), w, b),
        ),
        "gelu exact 1M": (_pair([(1 << 20,)]), lambda F, lib, x: F.gelu(x)),
        "dropout p=0.1 4096x512": (_pair([(4096, 512)]), lambda F, lib, x: F.dropout(x, 0.1)),
        "softmax cross-entropy 4096x1000": (
            _pair([(4096, 1000)]),
            lambda F, lib, x: F.cross_entropy(x, lib.tensor(_TARGETS)),
        ),
    }


_TARGETS = np.random.default_rng(1).integers(0, 1000, 4096)


def run(rounds: int = 15):
    return compare_workloads(workloads(), rounds)


def compare_workloads(table: dict, rounds: int, **timing):
    """Each workload of ``table`` (see ``workloads``) forward and forward+backward, ours against torch.
    ``timing``: passed on to ``harness.compare`` (e.g. ``clock``)."""
    import torch
    import torch.nn.functional as TF

    import neural_arch as na
    import neural_arch.nn.functional as F

    results = []
    for name, (arrays, fn) in table.items():
        ours_in = [na.tensor(a, requires_grad=True) for a in arrays]
        ref_in = [torch.tensor(a, requires_grad=True) for a in arrays]
        ups = {}

        def fwd_na():
            with na.no_grad():
                fn(F, na, *ours_in)

        def fwd_torch():
            with torch.no_grad():
                fn(TF, torch, *ref_in)

        def step_na():
            out = fn(F, na, *ours_in)
            if "na" not in ups:
                ups["na"] = na.tensor(np.ones(out.shape, np.float32))
            out.backward(ups["na"])
            for t in ours_in:
                t.grad = None

        def step_torch():
            out = fn(TF, torch, *ref_in)
            if "torch" not in ups:
                ups["torch"] = torch.ones(out.shape)
            out.backward(ups["torch"])
            for t in ref_in:
                t.grad = None

        results.append(compare(f"{name} fwd", {"neural-arch": fwd_na, "torch": fwd_torch}, rounds=rounds,
                               **timing))
        results.append(compare(f"{name} fwd+bwd", {"neural-arch": step_na, "torch": step_torch},
                               rounds=rounds, **timing))
    return results
