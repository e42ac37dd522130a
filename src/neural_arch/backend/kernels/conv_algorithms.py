"""Which algorithm a float32 conv2d runs, per shape class: the one place that decides it.

Every candidate computes the same sums; they differ in the algorithm and in how the work is cut, and each
wins at some shapes on this hardware:

- ``method``: ``"im2col"`` (columns + GEMMs, ``kernels/conv.py``), ``"winograd"`` (F(2x2, 3x3) for the
  forward and dL/dx of 3x3 stride-1 convolutions, ``kernels/winograd.py``; dL/dW stays im2col's GEMM) or
  ``"dense"`` (images with fewer pixels than the kernel has taps: the whole image's linear map as one
  matrix, ``kernels/conv_dense.py``; it has no chunks and one dL/dW product, so its plan is
  ``dense/whole/direct``). ``kernels/conv.py`` runs im2col where the chosen method's geometry does not fit.
- ``chunk``: ``"cache"`` runs a thread's images a few at a time (``policy.conv_chunk_bytes`` of columns, in
  chunks of equal size) so that the columns stay in the caches between the copy and the GEMMs;
  ``"whole"`` runs the thread's whole range as one chunk, so each GEMM is as long as it can be and the
  weight is read once (deep layers: small images, large weights).
- ``weight_grad``: dL/dW = g cols^T as one GEMM with a long K (N Ho Wo). ``"direct"`` computes it as it
  stands; ``"transposed"`` as (cols g^T)^T, which BLAS runs faster when the output has few rows (few
  output channels) and K is long. NumPy's OpenBLAS always takes ``"transposed"`` (measured there before).

Which BLAS runs the pipelines' products is a choice too (:func:`products`): MKL's sequential GEMM where MKL
is in use, except on CPUs that are not Intel's, where MKL does not run its AVX-512 kernels and NumPy's
OpenBLAS (called by address, one thread inside our calls) is faster at every conv shape measured; there
OpenBLAS runs them whether MKL is in use or not.

The table in :func:`plan_for` is what the measurements chose (``python -m benchmarks.conv_algos candidates``;
the figures for every candidate are in BENCHMARKS.md, "conv2d per shape"). ``force`` overrides it, for
those measurements.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from neural_arch.backend import gemm, threads


class Plan(NamedTuple):
    method: str  # "im2col", "winograd" or "dense"
    chunk: str  # "cache" or "whole"
    weight_grad: str  # "direct" or "transposed"

    @property
    def name(self) -> str:
        return f"{self.method}/{self.chunk}/{self.weight_grad}"


CANDIDATES = {p.name: p for p in [Plan(m, c, g) for m in ("im2col", "winograd") for c in ("cache", "whole")
                                  for g in ("direct", "transposed")] + [Plan("dense", "whole", "direct")]}

force: Plan | None = None  # every float32 conv2d takes this plan when set (benchmarks' candidates)
force_products: str | None = None  # "mkl" or "openblas": the products' BLAS when set (benchmarks, tests)
_products: str | None = None  # products(), decided once


def products() -> str:
    """The BLAS of the conv pipelines' products: ``"mkl"`` (MKL's sequential GEMM, ``gemm.matmul_here``),
    ``"openblas"`` (NumPy's OpenBLAS by address, held to one thread inside our calls) or ``"numpy"``
    (``np.matmul``: NumPy's BLAS, with the plan every shape took before the table). OpenBLAS on a CPU that is
    not Intel's, whether MKL is in use or not: MKL runs its AVX2 code there, OpenBLAS its AVX-512 kernels on
    an AVX-512 CPU (twice MKL's speed on a Zen 5 core; with ``OPENBLAS_CORETYPE=Haswell`` forced, still no
    slower: BENCHMARKS.md, "Stream conv3"). Decided once; ``force_products`` overrides it."""
    global _products
    if force_products is not None:
        return force_products
    if _products is None:
        if threads.cpu_vendor() not in ("GenuineIntel", "") and _openblas_callable():
            _products = "openblas"
        else:
            _products = "mkl" if gemm.mkl_in_use() else "numpy"
    return _products


def _openblas_callable() -> bool:
    """NumPy's BLAS is an OpenBLAS with an ILP64 ``cblas_sgemm`` we found, and our calls hold it to one thread."""
    blas = threads._numpy_openblas()
    return threads.blas_is_ours() and blas is not None and np.dtype(np.float32) in blas.gemm


def plan_for(in_channels: int, out_channels: int, kernel_hw: tuple, stride: tuple, out_hw: tuple,
             in_hw: tuple | None = None, batch: int = 0) -> Plan:
    """The measured choice for a convolution of this shape class (the batch enters only the dense choice:
    for the others a thread's share of it is what the chunks cut). Winograd and dense are only choices:
    ``kernels/conv.py`` runs im2col where their geometry does not fit (Winograd: dilation, groups, padding
    over 2, a batch smaller than the threads; dense: groups, or at least as many pixels as taps)."""
    if force is not None:
        return force
    if products() == "numpy":
        return Plan("im2col", "cache", "transposed")
    pixels = out_hw[0] * out_hw[1]
    # fewer input pixels than taps (ResNet's 2x2 images under 3x3): most of im2col's columns are padding. The
    # expanded filter is written once per step whatever the batch, so it pays from a batch of 16 (512x512 at
    # 2x2: 19.7 against im2col's 24.7 ms at 16, 19.3 against 15.3 at 8), and only while it stays at most twice
    # the filter (Ho Wo H W <= 2 kh kw; a 7x7 kernel on a 6x6 image would expand it 26 times)
    taps = kernel_hw[0] * kernel_hw[1]
    if in_hw is not None and batch >= 16 and in_hw[0] * in_hw[1] < taps and pixels * in_hw[0] * in_hw[1] <= 2 * taps:
        return Plan("dense", "whole", "direct")
    # Winograd where its 2.25x fewer multiplies outweigh its transforms: enough channels for the 16 GEMMs
    # to run at speed, and images large enough that transforming the filter (twice a step) is a small
    # part (ResNet-18's 64 channels at 16x16 and 128 at 8x8; it lost at 16 channels and at 4x4 and 2x2)
    fits = tuple(kernel_hw) == (3, 3) and tuple(stride) == (1, 1)
    method = "winograd" if fits and in_channels >= 64 and pixels >= 64 else "im2col"
    # dL/dW: MKL runs g cols^T as it stands faster once the output has 128 rows or more; below that,
    # with a long K (large images), the transposed orientation (1.3x at the ops suite's 32 channels)
    weight_grad = "direct" if out_channels >= 128 else "transposed"
    # small images with large weights (ResNet's 8x8 and below): one chunk, each weight read once
    chunk = "whole" if pixels <= 64 else "cache"
    return Plan(method, chunk, weight_grad)
