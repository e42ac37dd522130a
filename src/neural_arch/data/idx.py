"""The IDX file format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).

    bytes 0-1   zero
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    then        d big-endian uint32 sizes, then the elements, big-endian, row-major

Files may be gzip-compressed (``.gz``); ``read_idx`` tells them apart by the
gzip magic bytes, not by the name.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from neural_arch.errors import DataError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, decompressed if it is gzip."""
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DataError(f"read_idx: '{path}' is a damaged gzip file ({e}); delete it and fetch it again") from None
    return data


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an IDX file into an array (native byte order)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise DataError(f"read_idx: '{source}' is not an IDX file (its first bytes are {data[:4].hex()}, expected "
                        "00 00 <type> <ndim>)")
    dtype, ndim = np.dtype(_TYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"read_idx: '{source}' is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"read_idx: '{source}' declares shape {tuple(shape)} ({expected} bytes of data) but holds "
                        f"{len(data) - header} bytes; the file is truncated or damaged")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a NumPy array."""
    return parse_idx(read_bytes(path), str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as an IDX file (the inverse of :func:`parse_idx`)."""
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise DataError(f"write_idx: IDX cannot hold dtype {array.dtype}; use uint8, int8, int16, int32, "
                        "float32 or float64")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.dtype(_TYPES[code]), copy=False).tobytes()


def write_idx(array: np.ndarray, path: str | os.PathLike, compress: bool | None = None) -> Path:
    """Write an IDX file; gzip it when ``compress`` is true (default: when the name ends in ``.gz``)."""
    path = Path(path)
    data = idx_bytes(array)
    if compress or (compress is None and path.suffix == ".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path
