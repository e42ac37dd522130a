"""Layer 5: saving and loading. safetensors files (never pickle), atomic writes, training checkpoints."""

from neural_arch.io.atomic import atomic_write_bytes
from neural_arch.io.checkpoint import check_state_dict, load_checkpoint, save_checkpoint
from neural_arch.io.serialization import load, load_bytes, read_metadata, save, save_bytes

__all__ = ["atomic_write_bytes", "check_state_dict", "load", "load_bytes", "load_checkpoint", "read_metadata",
           "save", "save_bytes", "save_checkpoint"]
