"""Layer 5: torch's ``torch.utils`` paths (``neural_arch.utils.data``, ``neural_arch.utils.checkpoint``)."""

from neural_arch.utils import checkpoint, data  # torch.utils.checkpoint's and torch.utils.data's paths
