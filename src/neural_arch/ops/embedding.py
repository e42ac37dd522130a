"""``embedding`` (a row lookup with a scatter-add backward) and ``one_hot``."""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.function import Function
from neural_arch.autograd.grad_mode import no_grad
from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.kernels.embedding import scatter_rows
from neural_arch.errors import ConfigError, DTypeError, IndexingError, ShapeError, shape_str

__all__ = ["embedding", "one_hot"]


class Embedding(Function):
    """y[...] = W[ids[...]]        dL/dW[i] = sum over positions p with ids[p] = i of g[p]

    Repeated ids accumulate (a scatter-add). The ``padding_idx`` row gets no gradient;
    ``scale_grad_by_freq`` divides each row's gradient by how often its id occurs.
    """

    half = "float32"

    @staticmethod
    def forward(ctx, weight, ids, padding_idx, scale_grad_by_freq):
        ctx.ids, ctx.num, ctx.padding_idx, ctx.freq = ids, weight.shape[0], padding_idx, scale_grad_by_freq
        return np.take(weight, ids, axis=0)

    @staticmethod
    def backward(ctx, grad):
        ids = ctx.ids.reshape(-1)
        g = grad.reshape(ids.size, -1)
        if ctx.freq:
            counts = np.bincount(ids, minlength=ctx.num)
            g = g / counts[ids][:, None].astype(g.dtype)
        out = scatter_rows(g, ids, ctx.num)
        if ctx.padding_idx is not None:
            out[ctx.padding_idx] = 0
        return out.reshape((ctx.num,) + grad.shape[ctx.ids.ndim:])


def _renorm_(weight: Tensor, ids, max_norm, norm_type):
    """torch's max_norm: rows referenced by ``ids`` with norm > max_norm are rescaled IN PLACE."""
    rows = np.unique(ids)
    w = weight.data
    norms = np.linalg.norm(w[rows].reshape(rows.size, -1), ord=norm_type, axis=1)
    big = norms > max_norm
    if big.any():
        scale = (max_norm / (norms[big] + 1e-7)).astype(w.dtype)
        w[rows[big]] *= scale.reshape((-1,) + (1,) * (w.ndim - 1))


def embedding(input, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Look up rows of ``weight`` (num_embeddings, dim) at the integer ``input`` ids.

    ``sparse`` is accepted and ignored (gradients are dense).
    """
    ids = input.data if isinstance(input, Tensor) else np.asarray(input)
    if ids.dtype.kind not in "iu":
        raise DTypeError(f"embedding: ids must be an integer tensor, got {ids.dtype}")
    if weight.data.ndim != 2:
        raise ShapeError(f"embedding: weight must be (num_embeddings, embedding_dim), got {shape_str(weight.shape)}")
    num = weight.data.shape[0]
    if ids.size and (ids.min() < 0 or ids.max() >= num):
        bad = int(ids.min()) if ids.min() < 0 else int(ids.max())
        raise IndexingError(f"embedding: index {bad} is out of range for {num} embeddings")
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ConfigError(f"embedding: padding_idx {padding_idx} must be within [-{num}, {num})")
        padding_idx %= num
    if max_norm is not None:
        with no_grad():
            _renorm_(weight, ids, max_norm, norm_type)
    return Embedding.apply(weight, ids=ids, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq)


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding with a new last dim of size ``num_classes`` (max + 1 when -1)."""
    t = tensor.data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if t.dtype.kind not in "iu":
        raise DTypeError(f"one_hot: needs an integer (class index) tensor, got {t.dtype}")
    if t.size and t.min() < 0:
        raise IndexingError(f"one_hot: class values must be non-negative, got {int(t.min())}")
    if num_classes == -1:
        if t.size == 0:
            raise ShapeError("one_hot: cannot infer num_classes from an empty tensor; pass num_classes")
        num_classes = int(t.max()) + 1
    elif t.size and t.max() >= num_classes:
        raise IndexingError(f"one_hot: class value {int(t.max())} is out of range for num_classes={num_classes}")
    out = np.zeros(t.shape + (num_classes,), dtype=np.int64)
    np.put_along_axis(out, t[..., None].astype(np.intp), 1, axis=-1)
    return Tensor._wrap(out)
