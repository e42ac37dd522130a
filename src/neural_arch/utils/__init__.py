"""Layer 5: torch's ``torch.utils`` paths (``neural_arch.utils.data``, ...)."""

from neural_arch.utils import data  # noqa: F401  (torch.utils.data's path)
