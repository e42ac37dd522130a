"""``EmbeddingBag``: sums, means or maxima of bags of embeddings, without the per-id intermediate."""

from __future__ import annotations

from neural_arch.errors import ConfigError
from neural_arch.nn import functional as F
from neural_arch.nn import init
from neural_arch.nn.modules.module import Module
from neural_arch.nn.parameter import empty_param

__all__ = ["EmbeddingBag"]


class EmbeddingBag(Module):
    """``weight`` (num_embeddings, embedding_dim) ~ N(0, 1); ``forward(input, offsets=None,
    per_sample_weights=None)`` -> ``(bags, embedding_dim)`` (see ``F.embedding_bag``)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm=None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False, _weight=None,
                 include_last_offset: bool = False, padding_idx: int | None = None, device=None, dtype=None):
        super().__init__()
        if mode not in ("sum", "mean", "max"):
            raise ConfigError(f"EmbeddingBag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ConfigError(f"EmbeddingBag: padding_idx {padding_idx} must be within num_embeddings "
                                  f"({num_embeddings})")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, scale_grad_by_freq
        self.mode, self.sparse, self.padding_idx = mode, sparse, padding_idx
        self.include_last_offset = include_last_offset
        self.weight = empty_param(num_embeddings, embedding_dim, dtype=dtype, device=device)
        if _weight is not None:
            self.weight.data[...] = getattr(_weight, "data", _weight)
        else:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input, offsets=None, per_sample_weights=None):
        return F.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                               self.mode, self.sparse, per_sample_weights, self.include_last_offset, self.padding_idx)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}"
