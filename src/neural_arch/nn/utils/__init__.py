"""``nn.utils``: gradient clipping, parameter/vector conversion, parametrizations
(``parametrize``, ``parametrizations.weight_norm`` / ``spectral_norm``) and the older hook-based
``weight_norm`` / ``spectral_norm``."""

from neural_arch.nn.utils import parametrizations, parametrize, rnn  # noqa: F401
from neural_arch.nn.utils.clip_grad import (
    clip_grad_norm,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
    parameters_to_vector,
    vector_to_parameters,
)
from neural_arch.nn.utils.legacy_norms import (
    remove_spectral_norm,
    remove_weight_norm,
    spectral_norm,
    weight_norm,
)

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "parameters_to_vector", "vector_to_parameters"]
__all__ += ["clip_grad_norm", "clip_grads_with_norm_", "parametrizations", "parametrize", "remove_spectral_norm",
            "remove_weight_norm", "spectral_norm", "weight_norm"]
