"""Half-precision matrix products: how to feed float32 BLAS with bfloat16 operands (issue 18, item 3).

NumPy has no bfloat16 GEMM, so a product of bfloat16 operands is computed in float32 and accumulated
there. ``gemm.matmul`` on the half operands (the path the ops take) widens both whole with the bit
kernels of ``kernels/half.py``, multiplies once and narrows the result with the same kernels. It chose
that over two others, timed here side by side in one process, interleaved, each giving the bfloat16
product:

* ``astype``: both operands widened and the result narrowed by ml_dtypes' ``astype`` (the earlier path);
* ``tiles``: the weight widened ``TILE_ROWS`` rows of the reduction axis at a time, partial products
  summed (a float32 copy of one tile, not of the whole weight);

against the float32 product of the same values (our ``gemm.matmul``) and torch's bfloat16 ``matmul``.
Shapes: GPT-2-small's linear layers at batch-1 decoding (M = 1) and in a training step (M = 4096).
The table's ratio column is torch / ours (> 1: ours faster) for the op path; compare ``astype``,
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
    from neural_arch.backend.kernels.half import narrow, widen

    def tiles(x, w):  # x @ w.T with w widened TILE_ROWS rows of the reduction axis at a time
        wide_x, wt = widen(x), w.T
        out = gemm.matmul(wide_x[:, :TILE_ROWS], widen(wt[:TILE_ROWS]))
        for k0 in range(TILE_ROWS, wt.shape[0], TILE_ROWS):
            out += gemm.matmul(wide_x[:, k0:k0 + TILE_ROWS], widen(wt[k0:k0 + TILE_ROWS]))
        return narrow(out)

    results = []
    rng = np.random.default_rng(0)
    for m, k, n in SHAPES:
        x = rng.standard_normal((m, k)).astype(np.float32).astype(bfloat16)
        w = np.asfortranarray(rng.standard_normal((n, k)).astype(np.float32)).astype(bfloat16)  # nn.Linear's layout
        x32, w32 = x.astype(np.float32), w.astype(np.float32)
        xt, wt = torch.tensor(x32).to(torch.bfloat16), torch.tensor(w32).to(torch.bfloat16)
        contenders = {
            "neural-arch": lambda x=x, w=w: gemm.matmul(x, w.T),
            "astype": lambda x=x, w=w: gemm.matmul(x.astype(np.float32), w.T.astype(np.float32)).astype(bfloat16),
            "tiles": lambda x=x, w=w: tiles(x, w),
            "float32": lambda x32=x32, w32=w32: gemm.matmul(x32, w32.T),
            "torch": lambda xt=xt, wt=wt: torch.matmul(xt, wt.T),
        }
        results.append(compare(f"bf16 ({m}, {k}) @ ({k}, {n})", contenders, rounds=rounds))
    return results
