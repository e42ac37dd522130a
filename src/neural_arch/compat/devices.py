"""``torch.cuda``, ``torch.backends``, ``torch.accelerator`` in drop-in mode: what torch answers
on a machine without an accelerator (nothing is available; flags can be set and are ignored)."""

from __future__ import annotations

import types

from neural_arch.compat.registry import special
from neural_arch.errors import DeviceError


def _no_gpu(what: str):
    def fail(*args, **kwargs):
        raise DeviceError(f"torch.cuda.{what}: no CUDA device in neural-arch's drop-in mode (it runs on the CPU); "
                          "guard the call with torch.cuda.is_available()")
    fail.__name__ = what
    return fail


def _nothing(*args, **kwargs) -> None:
    return None


@special("torch.cuda")
def cuda() -> dict:
    """torch.cuda: nothing available; seeding and empty_cache do nothing; device calls raise DeviceError."""
    entries = dict(
        is_available=lambda: False, device_count=lambda: 0, is_initialized=lambda: False,
        is_bf16_supported=lambda *a, **k: False, manual_seed=_nothing, manual_seed_all=_nothing, seed=_nothing,
        seed_all=_nothing, empty_cache=_nothing, init=_no_gpu("init"),
    )
    for what in ("current_device", "get_device_name", "get_device_properties", "get_device_capability",
                 "set_device", "synchronize", "memory_allocated", "max_memory_allocated", "memory_reserved",
                 "reset_peak_memory_stats", "Event", "Stream", "stream", "current_stream", "device"):
        entries[what] = _no_gpu(what)
    return entries


@special("torch.backends")
def backends() -> dict:
    """torch.backends: its submodules below."""
    return {}  # (torch.backends.mps, .cudnn, .cuda come from the facade's submodule lookup)


@special("torch.backends.mps")
def mps() -> dict:
    """torch.backends.mps: not available, not built."""
    return dict(is_available=lambda: False, is_built=lambda: False)


@special("torch.backends.cudnn")
def cudnn() -> dict:
    """torch.backends.cudnn: not available; its flags can be set and change nothing."""
    return dict(is_available=lambda: False, enabled=True, benchmark=False, deterministic=False, allow_tf32=True,
                version=lambda: None)


@special("torch.backends.cuda")
def backends_cuda() -> dict:
    """torch.backends.cuda: not built; matmul/SDP flags can be set and change nothing."""
    matmul = types.SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True)
    return dict(is_built=lambda: False, matmul=matmul,
                flash_sdp_enabled=lambda: False, enable_flash_sdp=_nothing, enable_mem_efficient_sdp=_nothing,
                enable_math_sdp=_nothing)


@special("torch.accelerator")
def accelerator() -> dict:
    """torch.accelerator: none available."""
    return dict(is_available=lambda: False, current_accelerator=lambda check_available=False: None,
                device_count=lambda: 0)
