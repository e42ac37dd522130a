"""The Hugging Face checkpoint layout, read and written with the ``safetensors`` package.

A Hugging Face model directory holds ``config.json`` (the hyperparameters)
and ``model.safetensors`` (every tensor by name), or, for big models,
``model.safetensors.index.json`` naming several shards. These helpers know
only that layout; each model file maps the names and the config fields.

    arrays = load_safetensors_dir("gpt2/")        # {"transformer.wte.weight": ndarray, ...}
    config = read_config("gpt2/")                 # the dict in config.json
    save_pretrained_dir("out/", model.state_dict(), {"model_type": "gpt2", ...})
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import safetensors
from safetensors.numpy import load_file, save_file

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.device import to_numpy
from neural_arch.errors import CheckpointError, ConfigError
from neural_arch.io.atomic import atomic_write
from neural_arch.io.serialization import SAFETENSORS_DTYPES
from neural_arch.nn import functional as F

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"

__all__ = ["read_config", "load_safetensors_dir", "load_safetensors_file", "save_pretrained_dir", "to_numpy_dict"]


# config.json's activation names (hidden_act, ...) -> the function, as transformers' ACT2FN
ACT2FN = {
    "gelu": F.gelu,                                            # exact, erf-based
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": F.quick_gelu,                                # x * sigmoid(1.702 x), CLIP's
    "relu": F.relu,
    "tanh": F.tanh,
}


def get_activation(name: str):
    """``ACT2FN[name]``, or a ``ConfigError`` naming the activations there are."""
    if name not in ACT2FN:
        raise ConfigError(f"unknown activation {name!r}; choose one of {sorted(ACT2FN)}")
    return ACT2FN[name]


def config_from_dict(cls, d: dict):
    """The config dataclass ``cls`` from a ``config.json`` dict; keys that are not its fields are ignored."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


def _directory(directory) -> Path:
    path = Path(directory)
    if not path.is_dir():
        raise CheckpointError(f"from_pretrained: {str(path)!r} is not a directory; pass a folder holding "
                              f"{CONFIG_NAME} and {WEIGHTS_NAME} (as written by save_pretrained)")
    return path


def read_json(path: Path, owner: str, default=None):
    """The JSON in the file ``path`` (``default`` when there is none); invalid JSON is a CheckpointError
    naming ``owner`` (the reader) and the file."""
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{owner}: {str(path)!r} is not valid JSON ({exc})") from exc


def read_config(directory) -> dict:
    """The dict stored in ``directory/config.json``."""
    path = _directory(directory) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"from_pretrained: no {CONFIG_NAME} in {str(path.parent)!r}")
    return read_json(path, "from_pretrained")


def load_safetensors_file(path) -> dict:
    """Every tensor of one ``.safetensors`` file as a NumPy array, by name.

    NOTE: NumPy itself has no bfloat16: with ``ml_dtypes`` installed (the
    ``bf16`` extra) bfloat16 tensors come back as ``ml_dtypes.bfloat16`` (the
    stored bytes, never widened), without it as float32 (exact: a bfloat16 is
    the top half of a float32).
    """
    path = Path(path)
    try:
        return load_file(str(path))
    except TypeError:  # a dtype NumPy does not know (bfloat16): read that file by hand
        return _load_with_bfloat16(path)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(f"cannot read {str(path)!r} as safetensors: {exc}") from exc


def _load_with_bfloat16(path: Path) -> dict:
    """The tensors of a file holding bfloat16 ones, which ``safetensors.numpy`` cannot make."""
    out = {}
    for name, info in safetensors.deserialize(path.read_bytes()):
        if info["dtype"] in SAFETENSORS_DTYPES:  # BF16 too when ml_dtypes is installed: as stored, no upcast
            arr = np.frombuffer(info["data"], dtype=np.dtype(SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<"))
            arr = arr.copy()
        elif info["dtype"] == "BF16":
            arr = (np.frombuffer(info["data"], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise CheckpointError(f"{str(path)!r}: tensor {name!r} has dtype {info['dtype']}, which we cannot read")
        out[name] = arr.reshape(info["shape"])
    return out


def load_safetensors_dir(directory) -> dict:
    """Every tensor of a Hugging Face model directory (one file or an index of shards), by name."""
    path = _directory(directory)
    if (path / WEIGHTS_NAME).is_file():
        return load_safetensors_file(path / WEIGHTS_NAME)
    if (path / INDEX_NAME).is_file():
        weight_map = json.loads((path / INDEX_NAME).read_text())["weight_map"]
        out = {}
        for shard in sorted(set(weight_map.values())):
            out.update(load_safetensors_file(path / shard))
        return out
    raise CheckpointError(f"from_pretrained: no {WEIGHTS_NAME} (or {INDEX_NAME}) in {str(path)!r}; "
                          "only the safetensors format is read (convert pytorch_model.bin with transformers first)")


def to_numpy_dict(state_dict) -> dict:
    """A state_dict of Tensors (or arrays) -> contiguous NumPy arrays, as safetensors needs."""
    out = {}
    for name, value in state_dict.items():
        arr = to_numpy(value.data if isinstance(value, Tensor) else value)  # a CuPy array -> host
        out[name] = np.ascontiguousarray(arr).reshape(arr.shape)  # keeps 0-d tensors 0-d (logit_scale)
    return out


def save_pretrained_dir(directory, state_dict, config_dict: dict) -> None:
    """Write ``config.json`` and ``model.safetensors`` into ``directory`` (created if needed).

    ``state_dict`` maps Hugging Face tensor names to Tensors or arrays; leave
    out tied copies (e.g. ``lm_head.weight`` when it is the embedding), as
    transformers does. Each file is written to a temporary name and renamed,
    so an existing checkpoint survives a failed save.
    """
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    arrays = to_numpy_dict(state_dict)
    atomic_write(path / WEIGHTS_NAME, lambda tmp: save_file(arrays, tmp, metadata={"format": "pt"}))
    text = json.dumps(config_dict, indent=2, sort_keys=True) + "\n"
    atomic_write(path / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text))


def load_causal_lm(model, arrays: dict, directory, dtype=None):
    """Fill a causal LM from a checkpoint's ``arrays`` (already renamed to our keys) after casting it to
    ``dtype`` (when given); returns it in eval mode.

    As transformers saves them, a tied ``lm_head.weight`` may be stored or not (it is the embedding
    matrix); any other missing or unexpected tensor is a :class:`CheckpointError` naming them."""
    if dtype is not None:
        model.to(dtype)
    tied = getattr(model.config, "tie_word_embeddings", False)
    if tied:
        arrays.pop("lm_head.weight", None)
    result = model.load_state_dict(arrays, strict=False)
    missing = [k for k in result.missing_keys if not (k == "lm_head.weight" and tied)]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"{type(model).__name__}.from_pretrained({str(directory)!r}): missing tensors {missing}, "
                              f"unexpected tensors {result.unexpected_keys}")
    return model.eval()


def save_causal_lm(model, directory) -> None:
    """Write ``config.json`` + ``model.safetensors`` as transformers does: a tied head is stored once."""
    state = model.state_dict()
    if model.config.tie_word_embeddings:
        del state["lm_head.weight"]
    save_pretrained_dir(directory, state, model.config.to_dict())
