"""Running an encoder's blocks on a padded batch's tokens only (``BertModel(..., skip_padding=True)``).

In a bidirectional encoder with a padding mask, a token's state never depends on the padding (its keys
are masked) and every op of a block but attention works row by row. So the blocks can run on the
(N, H) states of the N tokens of a (B, T) batch instead of all B * T positions: only attention needs
the (B, T) layout, and gets it by a gather (:meth:`Tokens.pad`) and leaves it by another
(:meth:`Tokens.unpad`). A batch of texts of mixed lengths is then computed without its padding in
every product, layer norm and activation; the tokens' states are those of the padded forward (each
row of a product is the same dot products; BLAS may block a product of another height differently,
which moves results by float32 rounding at most).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neural_arch import ops
from neural_arch.autograd import function as _function
from neural_arch.autograd.tensor import Tensor


@dataclass(frozen=True)
class Tokens:
    """Where the tokens (the attention mask's nonzeros) of a (B, T) batch are.

    ``tokens``: (N,) flat positions ``b * T + t`` of the tokens, row after row.
    ``slots``: (B * T,) for each position, the index (into the N tokens) of the state that fills it:
    its own for a token, its row's first token's for padding (any finite state would do: padding is
    masked as a key, and its own outputs are dropped by :meth:`unpad`).
    """

    tokens: np.ndarray
    slots: np.ndarray
    batch: int
    length: int

    @classmethod
    def of(cls, mask: np.ndarray) -> Tokens | None:
        """The packing of a (B, T) 0/1 mask; None when there is no padding to skip, or a row has no
        token at all (its states are all padding: the padded forward computes them), or while ops are
        recorded (``graph.trace``: an ONNX export, a capture, a checkpointed region): the gathers' indices
        come from this mask's data, which a recorded graph would keep as constants."""
        if _function._tracer is not None:
            return None
        real = np.asarray(mask) != 0
        counts = real.sum(axis=1)
        if real.all() or not counts.all():
            return None
        B, T = real.shape
        flat = real.ravel()
        first = np.cumsum(counts) - counts  # (B,) the index of each row's first token
        slots = np.where(flat, np.cumsum(flat) - 1, np.repeat(first, T))
        return cls(np.flatnonzero(flat), slots, B, T)

    def take(self, ids: np.ndarray) -> np.ndarray:
        """(B, T) per-position values (ids, positions; broadcast from (1, T) too) -> (N,) the tokens'."""
        return np.broadcast_to(ids, (self.batch, self.length)).ravel()[self.tokens]

    def pad(self, x: Tensor) -> Tensor:
        """(N, F) token states -> (B, T, F), each padding position filled as ``slots`` says."""
        return ops.index_select(x, 0, self.slots).view(self.batch, self.length, x.shape[-1])

    def unpad(self, y: Tensor) -> Tensor:
        """(B, T, F) -> (N, F): the tokens' rows."""
        return ops.index_select(y.reshape(self.batch * self.length, y.shape[-1]), 0, self.tokens)
