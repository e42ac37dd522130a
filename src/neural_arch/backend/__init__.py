"""Layer 1: array namespaces per device, dtypes, type promotion and the RNG.

Everything above this package talks to arrays through these helpers, so the
same op code runs on NumPy (``cpu``) and CuPy (``cuda``).
"""

from neural_arch.backend.device import (
    Device,
    array_namespace,
    cuda_is_available,
    device_of,
    namespace_for,
    to_device,
    to_numpy,
)
from neural_arch.backend.dtypes import (
    bfloat16,
    bool_,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    is_floating,
    promote_types,
    resolve_dtype,
    set_default_dtype,
    uint8,
)
from neural_arch.backend.random import Generator, default_generator, manual_seed, seed

__all__ = [
    "Device", "array_namespace", "cuda_is_available", "device_of", "namespace_for", "to_device",
    "to_numpy", "bfloat16", "bool_", "float16", "float32", "float64", "get_default_dtype", "int8",
    "int16", "int32", "int64", "is_floating", "promote_types", "resolve_dtype", "set_default_dtype",
    "uint8", "Generator", "default_generator", "manual_seed", "seed",
]
