"""Layer 6: model architectures, one readable file each, loading Hugging Face checkpoints.

``hf`` holds the shared helpers for the Hugging Face directory layout
(``config.json`` + ``model.safetensors``).
"""

from neural_arch.models import hf  # noqa: F401
