"""Layer 5: torch's ``torch.utils`` paths (``neural_arch.utils.data``, ``neural_arch.utils.checkpoint``)."""

from neural_arch.utils import checkpoint  # noqa: F401  (torch.utils.checkpoint's path)
from neural_arch.utils import data  # noqa: F401  (torch.utils.data's path)
