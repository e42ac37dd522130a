"""The top-level ``torch`` module's own entries in drop-in mode (the rest comes from ``neural_arch``)."""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.compat import serialization
from neural_arch.nn import functional

VERSION = "2.13.0+neuralarch"


class Size(tuple):
    """torch's shape type: a tuple (our shapes are plain tuples, which compare equal to it)."""

    def numel(self) -> int:
        """The number of elements of a tensor of this shape."""
        return int(np.prod(self, dtype=np.int64))


def own() -> dict:
    """Entries that take precedence over neural-arch's names."""
    return dict(__version__=VERSION, save=serialization.save, load=serialization.load)


# torch.X that are torch.nn.functional.X under another name, with the same signature (checked one by one
# against torch's: torch.embedding, batch_norm, layer_norm, ... take other arguments and are left out)
SAME_AS_FUNCTIONAL = (
    "log_softmax", "softmax", "relu", "selu", "celu", "prelu", "rrelu", "threshold", "hardshrink", "conv1d", "conv2d",
    "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "max_pool1d", "max_pool2d", "max_pool3d",
    "avg_pool1d", "pixel_shuffle", "pixel_unshuffle", "cosine_similarity", "pairwise_distance", "pdist", "bilinear",
    "alpha_dropout", "feature_alpha_dropout",
)


def fallbacks() -> dict:
    """Entries used only when neural-arch has no name of its own for them."""
    same = {name: getattr(functional, name) for name in SAME_AS_FUNCTIONAL if hasattr(functional, name)}
    return dict(
        **same,
        Size=Size,
        is_tensor=lambda obj: isinstance(obj, Tensor),
        numel=lambda t: int(np.prod(t.shape, dtype=np.int64)),
        is_floating_point=lambda t: np.dtype(t.dtype).kind == "f" or str(t.dtype) == "bfloat16",
        # torch.compile with its default backend does not change what a model computes; here it returns
        # the model (or function) as it is
        compile=lambda model=None, **kwargs: model if model is not None else (lambda m: m),
    )
