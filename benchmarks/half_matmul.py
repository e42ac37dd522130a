"""Half-precision matrix products: how to feed float32 BLAS with bfloat16 operands (issue 18, item 3).

NumPy has no bfloat16 GEMM, so a product of bfloat16 operands is computed in float32 and accumulated
there. Three ways, timed side by side in one process, interleaved, each returning the bfloat16 product:

* ``neural-arch``: ``gemm.matmul`` on the half operands, the path the ops take (``_half_matmul``:
  ml_dtypes' ``astype`` both ways);
* ``whole``: ``gemm.matmul_half``, both operands widened whole by the bit kernels of
  ``kernels/half.py``, one product, the result narrowed by the same kernels;
* ``tiles``: as ``whole``, but the weight widened ``TILE_ROWS`` rows of the reduction axis at a time,
  partial products summed;

against the float32 product of the same values (our ``gemm.matmul``) and torch's bfloat16 ``matmul``.
Shapes: GPT-2-small's linear layers at batch-1 decoding (M = 1) and in a training step (M = 4096).
The table's ratio column is torch / ours (> 1: ours faster) for the op path; compare ``whole``,
``tiles`` and ``float32`` in their own columns.

    python -m benchmarks half_matmul
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import compare

TILE_ROWS = 256
SHAPES = [  # (M, K, N): x (M, K) @ W^T (K, N)
    (1, 768, 2304), (1, 768, 3072), (1, 3072, 768), (1, 768, 50257),
    (4096, 768, 2304), (4096, 768, 3072), (4096, 3072, 768),
]


def run(rounds: int = 10):
    import torch

    from neural_arch.backend import gemm
    from neural_arch.backend.dtypes import bfloat16
    from neural_arch.backend.kernels.half import narrow

    results = []
    rng = np.random.default_rng(0)
    for m, k, n in SHAPES:
        x = rng.standard_normal((m, k)).astype(np.float32).astype(bfloat16)
        w = np.asfortranarray(rng.standard_normal((n, k)).astype(np.float32)).astype(bfloat16)  # nn.Linear's layout
        x32, w32 = x.astype(np.float32), w.astype(np.float32)
        xt, wt = torch.tensor(x32).to(torch.bfloat16), torch.tensor(w32).to(torch.bfloat16)
        contenders = {
            "neural-arch": lambda x=x, w=w: gemm.matmul(x, w.T),
            "whole": lambda x=x, w=w: narrow(gemm.matmul_half(x, w.T)),
            "tiles": lambda x=x, w=w: narrow(gemm.matmul_half(x, w.T, tile_rows=TILE_ROWS)),
            "float32": lambda x32=x32, w32=w32: gemm.matmul(x32, w32.T),
            "torch": lambda xt=xt, wt=wt: torch.matmul(xt, wt.T),
        }
        results.append(compare(f"bf16 ({m}, {k}) @ ({k}, {n})", contenders, rounds=rounds))
    return results
