"""Variable-length batches for the recurrent layers, as ``torch.nn.utils.rnn``.

A :class:`PackedSequence` holds the steps of a batch of sequences sorted by decreasing length, time
step by time step: ``data`` (sum of lengths, *) is step 0 of every sequence, then step 1 of those
still running, ...; ``batch_sizes[t]`` says how many sequences are running at step t.
``sorted_indices`` / ``unsorted_indices`` map between the caller's order and the sorted one.

Every conversion here is a gather (``index_select``) or a pad, so gradients flow through it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.ops.index import index_select
from neural_arch.ops.shape import cat, pad, stack, transpose

__all__ = [
    "PackedSequence", "invert_permutation", "pack_padded_sequence", "pack_sequence", "pad_packed_sequence",
    "pad_sequence", "unpack_sequence", "unpad_sequence",
]


def _ints(x) -> np.ndarray:
    return np.asarray(x.data if isinstance(x, Tensor) else x).astype(np.int64).reshape(-1)


def invert_permutation(permutation):
    """The inverse permutation (None stays None), as an int64 Tensor."""
    if permutation is None:
        return None
    p = _ints(permutation)
    inverse = np.empty_like(p)
    inverse[p] = np.arange(p.size)
    return Tensor(inverse)


class PackedSequence(NamedTuple):
    """A packed batch of variable-length sequences (see the module doc); the recurrent layers accept it.

    Fields: ``data`` (N, *), ``batch_sizes`` (T,) int64, ``sorted_indices`` and ``unsorted_indices``
    (B,) int64 or None (None: the batch was given already sorted).
    """

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    def to(self, *args, **kwargs) -> PackedSequence:
        """The same packing with ``data`` moved or cast by ``Tensor.to``."""
        return self._replace(data=self.data.to(*args, **kwargs))

    @property
    def is_cuda(self) -> bool:
        """False: packed data lives where its tensor does (the CPU here)."""
        return False


def _padded_index(batch_sizes: np.ndarray, B: int, missing: int) -> np.ndarray:
    """For the (T, B) grid of a time-major padded batch, the row of ``data`` holding each step (``missing``
    where the sequence has ended)."""
    T = batch_sizes.size
    index = np.full((T, B), missing, np.int64)
    start = 0
    for t, n in enumerate(batch_sizes.tolist()):
        index[t, :n] = np.arange(start, start + n)
        start += n
    return index.reshape(-1)


def _packed_index(batch_sizes: np.ndarray, B: int) -> np.ndarray:
    """The rows of a flattened (T * B, *) time-major padded batch that ``data`` keeps, in order."""
    return np.concatenate([t * B + np.arange(n) for t, n in enumerate(batch_sizes.tolist())])


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False, enforce_sorted: bool = True):  # noqa: A002
    """Pack a padded batch ``(T, B, *)`` (``(B, T, *)`` with ``batch_first``) of sequences of ``lengths``.

    ``enforce_sorted=True`` requires lengths in decreasing order (an error says so otherwise);
    ``False`` sorts them and records the permutation, as torch.
    """
    op = "pack_padded_sequence"
    x = transpose(input, 0, 1) if batch_first else input
    lens = _ints(lengths)
    if x.ndim < 2 or lens.size != x.shape[1]:
        raise ShapeError(f"{op}: expected {x.shape[1] if x.ndim >= 2 else '?'} lengths for input "
                         f"{shape_str(input.shape)} (batch_first={batch_first}), got {lens.size}")
    if lens.size and (lens.min() < 1 or lens.max() > x.shape[0]):
        raise ShapeError(f"{op}: every length must be in [1, {x.shape[0]}] (the padded length), got {lens.tolist()}")
    sorted_indices = None
    if enforce_sorted:
        if np.any(np.diff(lens) > 0):
            raise ConfigError(f"{op}: lengths {lens.tolist()} are not sorted in decreasing order; sort the batch "
                              "or pass enforce_sorted=False")
    else:
        order = np.argsort(-lens, kind="stable")
        sorted_indices = Tensor(order)
        lens = lens[order]
        x = index_select(x, 1, order)
    T, B = int(lens[0]), x.shape[1]
    batch_sizes = (lens[None, :] > np.arange(T)[:, None]).sum(axis=1)
    flat = x.reshape(x.shape[0] * B, *x.shape[2:])
    data = index_select(flat, 0, _packed_index(batch_sizes, B))
    return PackedSequence(data, Tensor(batch_sizes.astype(np.int64)), sorted_indices,
                          invert_permutation(sorted_indices))


def _unpack(sequence: PackedSequence, padding_value: float = 0.0, total_length=None):
    """(time-major padded (T, B, *) in sorted order, sorted lengths)."""
    sizes = _ints(sequence.batch_sizes)
    data = sequence.data
    B = int(sizes[0])
    fill = Tensor(np.full((1,) + tuple(data.shape[1:]), padding_value, data.dtype))
    index = _padded_index(sizes, B, data.shape[0])
    padded = index_select(cat([data, fill], 0), 0, index).reshape(sizes.size, B, *data.shape[1:])
    if total_length is not None:
        if total_length < sizes.size:
            raise ShapeError(f"pad_packed_sequence: total_length {total_length} is shorter than the longest "
                             f"sequence ({sizes.size} steps)")
        extra = total_length - sizes.size
        padded = pad(padded, (0, 0) * (padded.ndim - 1) + (0, extra), value=padding_value)
    lengths = (sizes[None, :] > np.arange(B)[:, None]).sum(axis=1)
    return padded, lengths


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None):
    """Undo :func:`pack_padded_sequence`: ``(padded, lengths)`` in the caller's original order."""
    padded, lengths = _unpack(sequence, padding_value, total_length)
    if sequence.unsorted_indices is not None:
        order = _ints(sequence.unsorted_indices)
        padded = index_select(padded, 1, order)
        lengths = lengths[order]
    if batch_first:
        padded = transpose(padded, 0, 1)
    return padded, Tensor(lengths.astype(np.int64))


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0, padding_side: str = "right"):
    """Stack tensors of shapes ``(L_i, *)`` into ``(T, B, *)`` (``(B, T, *)`` with ``batch_first``), padding
    each to the longest with ``padding_value`` on ``padding_side`` ('right' or 'left')."""
    if padding_side not in ("right", "left"):
        raise ConfigError(f"pad_sequence: padding_side must be 'right' or 'left', got {padding_side!r}")
    sequences = list(sequences)
    if not sequences:
        raise ShapeError("pad_sequence: expected a non-empty list of tensors")
    T = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        extra = T - s.shape[0]
        widths = (0, extra) if padding_side == "right" else (extra, 0)
        padded.append(pad(s, (0, 0) * (s.ndim - 1) + widths, value=padding_value) if extra else s)
    return stack(padded, 0 if batch_first else 1)


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of tensors ``(L_i, *)`` (decreasing lengths unless ``enforce_sorted=False``)."""
    sequences = list(sequences)
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list:
    """The list of tensors ``(L_i, *)`` in a padded batch (the inverse of :func:`pad_sequence`)."""
    x = padded_sequences if batch_first else transpose(padded_sequences, 0, 1)
    return [x[b, :int(n)] for b, n in enumerate(_ints(lengths).tolist())]


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The list of tensors ``(L_i, *)`` in a packed batch, in the caller's order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
