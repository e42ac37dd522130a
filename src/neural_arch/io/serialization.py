"""``na.save`` / ``na.load``: state dicts in the safetensors format, never pickle.

A safetensors file is an 8-byte header length, a JSON header (name, dtype,
shape and byte range of every tensor, plus a free ``__metadata__`` map of
strings) and the raw tensor bytes. Loading one runs no code, unlike pickle.

What ``save`` writes for a (possibly nested) dict such as an optimizer's
``state_dict()``::

    {"state": {0: {"exp_avg": <Tensor>, "step": 3}}, "param_groups": [{"lr": 0.1, "params": [0]}]}

- every tensor (``Tensor`` or ``np.ndarray``) becomes one safetensors tensor
  named by its dotted path: ``state.0.exp_avg``, so other tools can read it;
- everything else (numbers, strings, lists, tuples, ``None``, dict keys that
  are ints) goes into the metadata as JSON (``neural_arch.tree``), with each
  tensor replaced by a reference to its name, so ``load`` rebuilds the exact
  structure, types included;
- a SHA-256 over the tensors (``neural_arch.sha256``) lets ``load`` detect
  bytes changed after writing.

``load`` of a plain safetensors file written by another tool (no tree in its
metadata) returns a flat ``{name: Tensor}`` dict.

Files are written atomically (:mod:`neural_arch.io.atomic`): a crash while
saving leaves the previous file as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.device import to_numpy
from neural_arch.backend.dtypes import bfloat16
from neural_arch.errors import CheckpointError
from neural_arch.io.atomic import atomic_write_bytes

FORMAT = "neural-arch"
TREE_KEY = "neural_arch.tree"
HASH_KEY = "neural_arch.sha256"

# safetensors dtype names -> NumPy dtypes; BF16 needs ml_dtypes (numpy has no bfloat16)
SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
    "BOOL": np.bool_,
}
if bfloat16 is not None:  # ml_dtypes is an optional extra
    SAFETENSORS_DTYPES["BF16"] = bfloat16

_SCALARS = (str, int, float, bool, type(None))


# -- the tree <-> (tensors, JSON) encoding ------------------------------------------------------
def _encode(obj, key: str, tensors: dict):
    """Replace every tensor in ``obj`` by a reference, collecting the arrays in ``tensors``."""
    if isinstance(obj, (Tensor, np.ndarray, np.generic)):
        if key in tensors:
            raise CheckpointError(f"na.save: two entries flatten to the same name '{key}'; rename one of them")
        if isinstance(obj, Tensor):
            tensors[key] = _contiguous(to_numpy(obj.data))
            return {"__tensor__": key}
        tensors[key] = _contiguous(np.asarray(obj))
        return {"__ndarray__" if isinstance(obj, np.ndarray) else "__scalar__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, _join(key, k), tensors) for k, v in obj.items()}
        for k in obj:  # int keys (optimizer state), or keys that look like our markers
            if not isinstance(k, _SCALARS):
                raise CheckpointError(f"na.save: dict key {k!r} at '{key}' is a {type(k).__name__}; "
                                      "keys must be str, int, float, bool or None")
        return {"__dict__": [[k, _encode(v, _join(key, str(k)), tensors)] for k, v in obj.items()]}
    if isinstance(obj, list):
        return [_encode(v, _join(key, str(i)), tensors) for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, _join(key, str(i)), tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, _SCALARS):
        return obj
    raise CheckpointError(
        f"na.save: cannot save a {type(obj).__name__} at '{key or '<root>'}'; a state dict may hold tensors, "
        "NumPy arrays, numbers, strings, None, and lists/tuples/dicts of those (never pickled objects)"
    )


def _decode(obj, arrays: dict):
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        (marker, value), = obj.items()
        if marker in ("__tensor__", "__ndarray__", "__scalar__"):
            if value not in arrays:
                raise CheckpointError(f"na.load: the file's metadata refers to a tensor '{value}' that it does not "
                                      "hold; the file was altered after it was written")
            arr = arrays[value]
            return Tensor._wrap(arr) if marker == "__tensor__" else arr if marker == "__ndarray__" else arr[()]
        if marker == "__tuple__":
            return tuple(_decode(v, arrays) for v in value)
        if marker == "__dict__":
            return {k: _decode(v, arrays) for k, v in value}
    return {k: _decode(v, arrays) for k, v in obj.items()}


def _contiguous(a: np.ndarray) -> np.ndarray:
    # NOTE: not np.ascontiguousarray, which turns 0-d arrays into 1-d ones
    return a if a.flags.c_contiguous else a.copy(order="C")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _digest(items) -> str:
    """SHA-256 over (name, dtype, shape, bytes) of every tensor, in name order."""
    h = hashlib.sha256()
    for name, dtype, shape, data in sorted(items, key=lambda item: item[0]):
        h.update(f"{name}|{dtype}|{list(shape)}|".encode())
        h.update(data)
    return h.hexdigest()


def _safetensors_dtype(arr: np.ndarray) -> str:
    for name, dt in SAFETENSORS_DTYPES.items():
        if arr.dtype == dt:
            return name
    raise CheckpointError(f"na.save: dtype {arr.dtype} cannot be stored in safetensors")


# -- public API ---------------------------------------------------------------------------------
def save_bytes(obj: dict) -> bytes:
    """The safetensors bytes :func:`save` would write for ``obj``."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"na.save: expected a dict (a state dict), got a {type(obj).__name__}; "
                              "wrap it, e.g. na.save({'x': x}, path)")
    tensors: dict[str, np.ndarray] = {}
    tree = _encode(obj, "", tensors)
    digest = _digest((k, _safetensors_dtype(a), a.shape, memoryview(a.reshape(-1).view(np.uint8)))
                     for k, a in tensors.items())
    metadata = {"format": FORMAT, TREE_KEY: json.dumps(tree), HASH_KEY: digest}
    return safetensors.numpy.save(tensors, metadata=metadata)


def save(obj: dict, path: str | os.PathLike) -> Path:
    """Save a state dict (tensors plus plain values, nested) to ``path`` as safetensors, atomically.

    Like ``torch.save(state_dict, path)``, but never pickles: see the module docstring
    for what can be saved and how it is laid out.
    """
    return atomic_write_bytes(path, save_bytes(obj))


def load_bytes(data: bytes, source: str = "<bytes>") -> dict:
    """Inverse of :func:`save_bytes`; ``source`` names the file in error messages."""
    metadata = _read_metadata(data, source)
    try:
        entries = safetensors.deserialize(data)
    except Exception as e:  # noqa: BLE001 - SafetensorError (truncated, overlapping or out-of-range tensors)
        raise CheckpointError(f"na.load: '{source}' is not a valid safetensors file ({e}); it is probably "
                              "truncated or corrupted; use an earlier checkpoint") from None
    arrays = {}
    for name, info in entries:
        if info["dtype"] not in SAFETENSORS_DTYPES:
            raise CheckpointError(f"na.load: tensor '{name}' in '{source}' has dtype {info['dtype']}, "
                                  f"which neural-arch cannot read (install ml_dtypes for BF16)")
        arrays[name] = np.frombuffer(info["data"], dtype=SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"])
    if HASH_KEY in metadata:
        digest = _digest((n, i["dtype"], i["shape"], i["data"]) for n, i in entries)
        if digest != metadata[HASH_KEY]:
            raise CheckpointError(f"na.load: the tensors in '{source}' do not match the checksum stored when it "
                                  "was written; the file was corrupted or altered; use an earlier checkpoint")
    if TREE_KEY not in metadata:  # a plain safetensors file (e.g. from Hugging Face)
        return {name: Tensor._wrap(arr) for name, arr in arrays.items()}
    try:
        tree = json.loads(metadata[TREE_KEY])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"na.load: the structure stored in '{source}' is not valid JSON ({e})") from None
    return _decode(tree, arrays)


def load(path: str | os.PathLike) -> dict:
    """Load what :func:`save` wrote (or any safetensors file) from ``path``.

    Tensors come back as CPU ``Tensor``s (NumPy arrays stay arrays); a file that
    is truncated, has a damaged header or altered bytes raises ``CheckpointError``.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"na.load: no file at '{path}'") from None
    except IsADirectoryError:
        raise CheckpointError(f"na.load: '{path}' is a directory, not a safetensors file") from None
    return load_bytes(data, str(path))


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` strings of a safetensors file, reading only its header."""
    with open(path, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else None
        return _read_metadata(head + (f.read(n) if n is not None and n < 100_000_000 else b""), str(path))


def _read_metadata(data: bytes, source: str) -> dict[str, str]:
    """Parse the JSON header ourselves, so a damaged one gets a message a person can act on."""
    if len(data) < 8:
        raise CheckpointError(f"na.load: '{source}' is {len(data)} bytes long, too short for a safetensors "
                              "file; it is truncated or empty")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise CheckpointError(f"na.load: '{source}' declares a {n}-byte header but holds only {len(data) - 8} "
                              "bytes after the length; it is truncated or not a safetensors file")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"na.load: the header of '{source}' is not valid JSON ({e}); the file is "
                              "damaged or was altered") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"na.load: the header of '{source}' is not a JSON object; the file is damaged")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"na.load: the metadata in '{source}' is not a JSON object; the file is damaged")
    return meta
