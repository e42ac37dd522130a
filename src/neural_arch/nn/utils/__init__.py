"""``nn.utils``: gradient clipping and parameter/vector conversion."""

from neural_arch.nn.utils import rnn  # noqa: F401
from neural_arch.nn.utils.clip_grad import (
    clip_grad_norm_,
    clip_grad_value_,
    get_total_norm,
    parameters_to_vector,
    vector_to_parameters,
)

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "parameters_to_vector", "vector_to_parameters"]
