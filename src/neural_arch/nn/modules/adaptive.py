"""``AdaptiveLogSoftmaxWithLoss`` (Grave et al., 2017, "Efficient softmax approximation for GPUs"), torch's.

The classes are split at ``cutoffs`` into a head (the most frequent ``cutoffs[0]`` classes plus one
entry per tail cluster) and tail clusters with smaller projections (in_features / div_value^(i+1)).
For a target in cluster i: log p = log p_head(cluster i) + log p_cluster_i(target - cutoff_i);
for a head target: log p = log p_head(target). Parameter names as torch's (``head``, ``tail.i.0/1``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.nn import functional as F
from neural_arch.nn.modules.container import ModuleList, Sequential
from neural_arch.nn.modules.linear import Linear
from neural_arch.nn.modules.module import Module
from neural_arch.ops.index import gather, index_select
from neural_arch.ops.shape import cat

__all__ = ["AdaptiveLogSoftmaxWithLoss"]


class _ASMoutput(NamedTuple):
    output: Tensor
    loss: Tensor


class AdaptiveLogSoftmaxWithLoss(Module):
    """``forward(input (N, in_features), target (N,))`` -> ``(output, loss)``: each target's log-probability and
    the mean negative log-likelihood. ``log_prob(input)`` (N, n_classes) and ``predict(input)`` (N,) as torch."""

    def __init__(self, in_features: int, n_classes: int, cutoffs, div_value: float = 4.0, head_bias: bool = False,
                 device=None, dtype=None):
        super().__init__()
        cutoffs = list(cutoffs)
        if (not cutoffs or cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ConfigError("AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of unique, positive integers "
                              f"sorted in an increasing order, each in [1, n_classes - 1]; got {cutoffs}")
        kw = dict(device=device, dtype=dtype)
        self.in_features, self.n_classes = in_features, n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value, self.head_bias = div_value, head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, **kw)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, **kw),
                                        Linear(hsz, osz, bias=False, **kw)))

    def forward(self, input, target) -> _ASMoutput:  # noqa: A002
        t = np.asarray(target.data if isinstance(target, Tensor) else target).astype(np.int64)
        batched = input.ndim == 2
        x = input if batched else input.reshape(1, -1)
        t = t.reshape(-1)
        if x.ndim != 2 or x.shape[0] != t.size:
            raise ShapeError(f"AdaptiveLogSoftmaxWithLoss: expected input (N, {self.in_features}) and target (N,), "
                             f"got {shape_str(input.shape)} and {t.shape}")
        if t.size and (t.min() < 0 or t.max() >= self.n_classes):
            raise ConfigError(f"AdaptiveLogSoftmaxWithLoss: targets must be in [0, {self.n_classes}), got "
                              f"[{t.min()}, {t.max()}]")
        head_index = np.where(t < self.shortlist_size, t, 0)
        parts, rows = [], []
        bounds = [0] + self.cutoffs
        for i in range(1, self.n_clusters + 1):
            low, high = bounds[i], bounds[i + 1]
            members = np.flatnonzero((t >= low) & (t < high))
            if members.size == 0:
                continue
            head_index[members] = self.shortlist_size + i - 1
            cluster_logprob = F.log_softmax(self.tail[i - 1](index_select(x, 0, members)), dim=1)
            parts.append(gather(cluster_logprob, 1, (t[members] - low).reshape(-1, 1)).reshape(-1))
            rows.append(members)
        head_logprob = F.log_softmax(self.head(x), dim=1)
        output = gather(head_logprob, 1, head_index.reshape(-1, 1)).reshape(-1)
        if parts:  # add each tail row's in-cluster log-probability at its row
            members = np.concatenate(rows)
            where = np.full(t.size, members.size, np.int64)  # rows in the head: the zero at the end
            where[members] = np.arange(members.size)
            zero = Tensor(np.zeros(1, output.data.dtype))
            output = output + index_select(cat(parts + [zero], 0), 0, where)
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.reshape(()), loss)

    def _full_log_prob(self, x, head_output):
        head_logprob = F.log_softmax(head_output, dim=1)
        pieces = [head_logprob[:, :self.shortlist_size]]
        for i, tail in enumerate(self.tail):
            cluster = F.log_softmax(tail(x), dim=1)
            pieces.append(cluster + head_logprob[:, self.shortlist_size + i:self.shortlist_size + i + 1])
        return cat(pieces, 1)

    def log_prob(self, input) -> Tensor:  # noqa: A002
        """The log-probability of every class, (N, n_classes) (or (n_classes,) unbatched)."""
        x = input if input.ndim == 2 else input.reshape(1, -1)
        out = self._full_log_prob(x, self.head(x))
        return out if input.ndim == 2 else out.reshape(-1)

    def predict(self, input) -> Tensor:  # noqa: A002
        """The most likely class of each row (the argmax of :meth:`log_prob`)."""
        lp = self.log_prob(input)
        return Tensor(np.asarray(lp.data.argmax(axis=-1)))
