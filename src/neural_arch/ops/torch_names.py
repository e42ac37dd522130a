"""torch's top-level spellings of ops neural-arch already has: ``torch.greater``, ``torch.swapdims``,
``torch.kl_div`` with its integer ``reduction``, ``torch.gradient``, ... Each calls the op it names, with
torch's top-level signature (which is sometimes not the functional one: ``torch.embedding(weight, indices)``,
``torch.batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled)``).
No new math here, so nothing new to differentiate: the ops called carry their own backward.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.backend.dtypes import category, get_default_dtype, resolve_dtype
from neural_arch.errors import DTypeError, IndexingError, ShapeError
from neural_arch.ops import creation, elementwise, loss, loss_extra, shape
from neural_arch.ops import matrix_functions as mf
from neural_arch.ops._operands import array_of, as_tensor
from neural_arch.ops.embedding import embedding as _embedding  # (the family modules by path: ops.norm and
from neural_arch.ops.norm import batch_norm as _batch_norm  # ops.embedding are also function names)
from neural_arch.ops.norm import instance_norm as _instance_norm
from neural_arch.ops.pool3d import adaptive_max_pool1d_with_indices as adaptive_max_pool1d  # torch's: with indices
from neural_arch.ops.pool3d import max_pool1d_with_indices
from neural_arch.ops.pool_extra import adaptive_avg_pool1d
from neural_arch.ops.spatial import channel_shuffle

__all__ = [
    "greater", "greater_equal", "less", "less_equal", "not_equal", "swapdims", "ravel", "clone", "detach", "ger",
    "mv", "adjoint", "fill", "resolve_conj", "resolve_neg", "is_conj", "is_neg", "is_signed", "is_same_size",
    "is_nonzero", "split_with_sizes", "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk", "scalar_tensor",
    "asarray", "can_cast", "bitwise_left_shift", "bitwise_right_shift", "unravel_index", "gradient", "norm",
    "kl_div", "binary_cross_entropy_with_logits", "margin_ranking_loss", "hinge_embedding_loss",
    "poisson_nll_loss", "cosine_embedding_loss", "triplet_margin_loss", "embedding", "batch_norm", "instance_norm",
    "adaptive_avg_pool1d", "adaptive_max_pool1d", "max_pool1d_with_indices", "channel_shuffle", "constant_pad_nd",
]


# -- comparisons and layout: the Tensor methods as functions ---------------------------------------------
# torch's aliases of the comparisons
greater, greater_equal, less, less_equal = elementwise.gt, elementwise.ge, elementwise.lt, elementwise.le
not_equal = elementwise.ne


def swapdims(input, dim0: int, dim1: int) -> Tensor:  # noqa: A002
    """``input`` with dimensions ``dim0`` and ``dim1`` exchanged (torch's alias of ``transpose``)."""
    return as_tensor(input).swapdims(dim0, dim1)


def ravel(input) -> Tensor:  # noqa: A002
    """``input`` flattened to one dimension."""
    return as_tensor(input).ravel()


def clone(input) -> Tensor:  # noqa: A002
    """A copy of ``input`` that stays in the graph (its gradient flows back to ``input``)."""
    return as_tensor(input).clone()


def detach(input) -> Tensor:  # noqa: A002
    """``input``'s values, cut from the graph."""
    return as_tensor(input).detach()


def ger(input, vec2) -> Tensor:  # noqa: A002
    """The outer product of two vectors (torch's older name of ``outer``)."""
    return as_tensor(input).ger(vec2)


def mv(input, vec) -> Tensor:  # noqa: A002
    """Matrix (n, m) times vector (m,)."""
    return as_tensor(input).mv(vec)


def adjoint(input) -> Tensor:  # noqa: A002
    """The conjugate transpose of the last two dimensions."""
    return as_tensor(input).adjoint()


def fill(input, value) -> Tensor:  # noqa: A002
    """A new tensor of ``input``'s shape and dtype holding ``value`` everywhere (``torch.fill``, out of place)."""
    input = as_tensor(input)  # noqa: A001
    return creation.full_like(input, value.item() if isinstance(value, Tensor) else value)


def resolve_conj(input) -> Tensor:  # noqa: A002
    """``input`` itself: conjugation is never lazy here, so there is nothing to resolve."""
    return as_tensor(input).resolve_conj()


def resolve_neg(input) -> Tensor:  # noqa: A002
    """``input`` itself: negation is never lazy here, so there is nothing to resolve."""
    return as_tensor(input).resolve_neg()


def is_conj(input) -> bool:  # noqa: A002
    """False: conjugation is never lazy here (``conj`` computes)."""
    return as_tensor(input).is_conj()


def is_neg(input) -> bool:  # noqa: A002
    """False: negation is never lazy here."""
    return as_tensor(input).is_neg()


def is_signed(input) -> bool:  # noqa: A002
    """Whether ``input``'s dtype is signed (every dtype but bool and uint8)."""
    return as_tensor(input).is_signed()


def is_same_size(input, other) -> bool:  # noqa: A002
    """Whether the two tensors have the same shape."""
    return as_tensor(input).is_same_size(other)


def is_nonzero(input) -> bool:  # noqa: A002
    """Whether a one-element tensor's value is not zero (an error for more elements, as torch)."""
    return as_tensor(input).is_nonzero()


# -- splitting ---------------------------------------------------------------------------------------------
def split_with_sizes(input, split_sizes, dim: int = 0) -> tuple:  # noqa: A002
    """``input`` cut along ``dim`` into pieces of the given sizes (which must add up to its length)."""
    return as_tensor(input).split_with_sizes(split_sizes, dim)


def unsafe_split(input, split_size, dim: int = 0) -> tuple:  # noqa: A002
    """``split``: torch's "unsafe" variant only skips view tracking, which has no counterpart here."""
    return shape.split(as_tensor(input), split_size, dim)


unsafe_split_with_sizes = split_with_sizes  # (see unsafe_split)


def unsafe_chunk(input, chunks: int, dim: int = 0) -> tuple:  # noqa: A002
    """``chunk`` (see ``unsafe_split``)."""
    return shape.chunk(as_tensor(input), chunks, dim)


# -- creation and dtypes -----------------------------------------------------------------------------------
def scalar_tensor(s, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A 0-d tensor holding ``s``, in the default float dtype unless ``dtype`` says otherwise (as torch, even for
    an int)."""
    dtype = resolve_dtype(dtype) if dtype is not None else get_default_dtype()
    return creation.tensor(s, dtype=dtype, device=device, requires_grad=requires_grad)


def asarray(obj, *, dtype=None, device=None, copy: bool | None = None, requires_grad: bool = False) -> Tensor:
    """``obj`` as a tensor, sharing its memory when it can (a tensor or NumPy array of the right dtype) unless
    ``copy=True``; ``copy=False`` refuses a copy it cannot avoid. Python data becomes a tensor as ``tensor`` does."""
    if isinstance(obj, Tensor | np.ndarray):
        src = obj.data if isinstance(obj, Tensor) else obj
        out = creation.as_tensor(obj, dtype=dtype, device=device)
        if copy is False and out.data is not src and not np.shares_memory(out.data, src):
            raise DTypeError(f"asarray: copy=False but the {dtype} result cannot share the input's memory; "
                             "pass copy=None to allow the copy")
        if copy:
            out = Tensor(out.data.copy())
    else:
        out = creation.tensor(obj, dtype=dtype, device=device)
    if requires_grad:
        out = out.detach().requires_grad_(True) if out is obj else out.requires_grad_(True)
    return out


def can_cast(from_, to) -> bool:
    """Whether torch's casting rules allow ``from_`` -> ``to``: never to a lower category (float to int,
    complex to float, anything but bool to bool); any size within a category."""
    return category(resolve_dtype(from_)) <= category(resolve_dtype(to))


# -- integer and index helpers (no gradient) --------------------------------------------------------------
def _integer_pair(name, input, other):  # noqa: A002
    a = as_tensor(input)
    b = other.data if isinstance(other, Tensor) else np.asarray(other, dtype=a.dtype)
    if a.data.dtype.kind not in "iub" or b.dtype.kind not in "iub":
        raise DTypeError(f"{name}: expected integer tensors, got {a.dtype} and {b.dtype}")
    return a.data, b


def bitwise_left_shift(input, other) -> Tensor:  # noqa: A002
    """``input << other`` elementwise, for integer tensors."""
    a, b = _integer_pair("bitwise_left_shift", input, other)
    return Tensor(np.left_shift(a, b))


def bitwise_right_shift(input, other) -> Tensor:  # noqa: A002
    """``input >> other`` elementwise, for integer tensors (arithmetic: the sign bit is kept)."""
    a, b = _integer_pair("bitwise_right_shift", input, other)
    return Tensor(np.right_shift(a, b))


def unravel_index(indices, shape: tuple) -> tuple:
    """The coordinates in ``shape`` of flat ``indices`` (row-major), one int64 tensor per dimension."""
    flat = array_of(indices)
    if flat.dtype.kind not in "iu":
        raise DTypeError(f"unravel_index: expected integer indices, got {flat.dtype}")
    size = int(np.prod(shape, dtype=np.int64))
    if flat.size and (flat.min() < -size or flat.max() >= size):
        raise IndexingError(f"unravel_index: an index is out of range for shape {tuple(shape)} ({size} elements)")
    coords = np.unravel_index(np.where(flat < 0, flat + size, flat), tuple(shape))
    return tuple(Tensor(c.astype(np.int64)) for c in coords)


def gradient(input, *, spacing=1, dim=None, edge_order: int = 1) -> tuple:  # noqa: A002
    """The derivative of sampled values by finite differences along each dimension of ``dim`` (all by default),
    as ``numpy.gradient``: central differences inside, one-sided ones of order ``edge_order`` (1 or 2) at the
    ends. ``spacing``: one step size for all dimensions or one per dimension (coordinate tensors are not
    implemented). Differentiable: it is made of slices, subtractions and a cat."""
    x = as_tensor(input)
    dims = list(range(x.ndim)) if dim is None else [dim] if isinstance(dim, int) else list(dim)
    steps = list(spacing) if isinstance(spacing, list | tuple) else [spacing] * len(dims)
    if len(steps) != len(dims) or not all(isinstance(h, int | float) for h in steps):
        raise ShapeError(f"gradient: spacing must be one number or one per dimension ({len(dims)}); coordinate "
                         "tensors are not implemented")
    if edge_order not in (1, 2):
        raise ShapeError(f"gradient: edge_order must be 1 or 2, got {edge_order}")
    out = []
    for d, h in zip(dims, steps):
        n = x.shape[d]
        if n < edge_order + 1:
            raise ShapeError(f"gradient: dimension {d} has {n} samples; edge_order={edge_order} needs at least "
                             f"{edge_order + 1}")

        def part(start, length, d=d):
            return shape.narrow(x, d, start, length)

        inner = (part(2, n - 2) - part(0, n - 2)) / (2 * h)
        if edge_order == 1:
            first = (part(1, 1) - part(0, 1)) / h
            last = (part(n - 1, 1) - part(n - 2, 1)) / h
        else:
            first = (part(0, 1) * -3 + part(1, 1) * 4 - part(2, 1)) / (2 * h)
            last = (part(n - 1, 1) * 3 - part(n - 2, 1) * 4 + part(n - 3, 1)) / (2 * h)
        out.append(shape.cat([first, inner, last], d))
    return tuple(out)


def norm(input, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:  # noqa: A002
    """torch's older ``norm``: ``p="fro"`` (the default) or a number is a vector norm over ``dim`` (all elements
    by default; "fro" is the 2-norm), ``p="nuc"`` the nuclear norm of the matrices in ``dim`` (the last two by
    default). ``linalg.vector_norm`` and ``linalg.matrix_norm`` are the current names."""
    x = as_tensor(input)
    if p == "nuc":
        return mf.matrix_norm(x, "nuc", dim=(-2, -1) if dim is None else dim, keepdim=keepdim, dtype=dtype)
    return mf.vector_norm(x, 2 if p == "fro" else p, dim=dim, keepdim=keepdim, dtype=dtype)


# -- torch.<loss>: the functional losses with torch's integer reduction (0 none, 1 mean, 2 sum) ---------
# NOTE: left out, the reduction is 0 (none) in torch 2.13's top-level losses, whatever their schema says
# (torch.kl_div(x, y) has x's shape): the defaults below follow what torch does
_REDUCTION = {0: "none", 1: "mean", 2: "sum"}


def _reduction(value) -> str:
    if value not in _REDUCTION:
        raise ShapeError(f"reduction: torch's top-level losses take 0 (none), 1 (mean) or 2 (sum), got {value!r}")
    return _REDUCTION[value]


def kl_div(input, target, reduction: int = 0, *, log_target: bool = False) -> Tensor:  # noqa: A002
    """``F.kl_div`` with an integer reduction (0: none, the default; 1: the mean over all elements, not
    ``batchmean``; 2: the sum)."""
    return loss.kl_div(input, target, reduction=_reduction(reduction), log_target=log_target)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction: int = 0) -> Tensor:  # noqa: A002
    """``F.binary_cross_entropy_with_logits`` with an integer reduction."""
    return loss.binary_cross_entropy_with_logits(input, target, weight=weight, pos_weight=pos_weight,
                                                 reduction=_reduction(reduction))


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, reduction: int = 0) -> Tensor:
    """``F.margin_ranking_loss`` with an integer reduction."""
    return loss_extra.margin_ranking_loss(input1, input2, target, margin=margin, reduction=_reduction(reduction))


def hinge_embedding_loss(input, target, margin: float = 1.0, reduction: int = 0) -> Tensor:  # noqa: A002
    """``F.hinge_embedding_loss`` with an integer reduction."""
    return loss_extra.hinge_embedding_loss(input, target, margin=margin, reduction=_reduction(reduction))


def poisson_nll_loss(input, target, log_input: bool, full: bool, eps: float, reduction: int) -> Tensor:  # noqa: A002
    """``F.poisson_nll_loss`` with every argument positional and an integer reduction, as torch's."""
    return loss_extra.poisson_nll_loss(input, target, log_input=log_input, full=full, eps=eps,
                                       reduction=_reduction(reduction))


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, reduction: int = 0) -> Tensor:
    """``F.cosine_embedding_loss`` with an integer reduction."""
    return loss_extra.cosine_embedding_loss(input1, input2, target, margin=margin, reduction=_reduction(reduction))


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, reduction: int = 0) -> Tensor:
    """``F.triplet_margin_loss`` with an integer reduction."""
    return loss_extra.triplet_margin_loss(anchor, positive, negative, margin=margin, p=p, eps=eps, swap=swap,
                                          reduction=_reduction(reduction))


# -- torch.<layer function> with torch's top-level argument order ----------------------------------------
def embedding(weight, indices, padding_idx: int = -1, scale_grad_by_freq: bool = False, sparse: bool = False):
    """``F.embedding(indices, weight)`` with the table first, as ``torch.embedding``; ``padding_idx=-1`` means
    none."""
    return _embedding(indices, weight, padding_idx=None if padding_idx == -1 else padding_idx,
                      scale_grad_by_freq=scale_grad_by_freq)


def batch_norm(input, weight, bias, running_mean, running_var, training: bool, momentum: float, eps: float,  # noqa: A002
               cudnn_enabled: bool = True) -> Tensor:
    """``F.batch_norm`` with torch's top-level argument order (``cudnn_enabled`` has no effect here)."""
    return _batch_norm(input, running_mean, running_var, weight, bias, training=training, momentum=momentum,
                           eps=eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats: bool, momentum: float,  # noqa: A002
                  eps: float, cudnn_enabled: bool = True) -> Tensor:
    """``F.instance_norm`` with torch's top-level argument order (``cudnn_enabled`` has no effect here)."""
    return _instance_norm(input, running_mean, running_var, weight, bias, use_input_stats=use_input_stats,
                              momentum=momentum, eps=eps)


def constant_pad_nd(input, pad, value: float = 0) -> Tensor:  # noqa: A002
    """``F.pad(input, pad, value=value)`` (constant mode)."""
    return shape.pad(input, pad, value=value)
