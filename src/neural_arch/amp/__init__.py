"""Layer 4: mixed precision, torch's ``torch.amp``: ``autocast`` (the state lives in
``autograd/autocast.py``, where every op consults it), ``GradScaler``, and the op lists.

``ops_by_policy()`` lists which of our ops run in the low dtype, which in float32 and which promote
their inputs under autocast (each ``Function`` declares its policy; see ``autograd/autocast.py``).
"""

from neural_arch.amp.grad_scaler import GradScaler
from neural_arch.amp.lists import ops_by_policy
from neural_arch.autograd.autocast import (
    FP32,
    LOWER,
    PROMOTE,
    autocast,
    clear_autocast_cache,
    get_autocast_dtype,
    is_autocast_cache_enabled,
    is_autocast_enabled,
)

__all__ = [
    "GradScaler", "autocast", "is_autocast_enabled", "get_autocast_dtype", "is_autocast_cache_enabled",
    "clear_autocast_cache", "ops_by_policy", "LOWER", "FP32", "PROMOTE",
]
