"""Connectionist temporal classification loss (Graves et al. 2006), torch's ``F.ctc_loss``.

For one sample with log-probabilities lp (T, C), its target l (S labels) extended with blanks,
l' = (blank, l_1, blank, ..., l_S, blank) of length S' = 2S + 1, the forward and backward variables
in log space are

    alpha_0 = lp[0, l'_0], lp[0, l'_1] at s = 0, 1 (-inf elsewhere)
    alpha_t(s) = lp[t, l'_s] + logsumexp(alpha_{t-1}(s), alpha_{t-1}(s-1), alpha_{t-1}(s-2) if l'_s != blank, l'_{s-2})
    beta likewise from the end;          nll = -logsumexp(alpha_{T-1}(S'-1), alpha_{T-1}(S'-2))

and the gradient torch returns for lp (the gradient with respect to the logits, assuming lp is a
log_softmax; through log_softmax's backward it is the exact one):

    dnll/dlp[t, c] = exp(lp[t, c]) - exp(logsumexp_{s: l'_s = c}(alpha_t(s) + beta_t(s)) + nll - lp[t, c])

for t < the sample's input length, 0 after it.
"""

from __future__ import annotations

import numpy as np

from neural_arch.autograd.autocast import FP32, autocast_args
from neural_arch.autograd.function import Function
from neural_arch.autograd.tensor import Tensor
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.ops import reduce as _r

__all__ = ["ctc_loss"]

_NEG = -np.inf


def _lse(*terms):
    out = terms[0]
    for t in terms[1:]:
        out = np.logaddexp(out, t)
    return out


def _shift(a, k):
    """a[s - k] (with -inf where s - k is outside a); k may be negative."""
    out = np.full_like(a, _NEG)
    if k > 0:
        out[k:] = a[:-k]
    else:
        out[:k] = a[-k:]
    return out


def _one_sample(lp, labels, blank):
    """(nll, gradient (T, C)) of one sample, lp (T, C) already cut to its input length."""
    T, C = lp.shape
    ext = np.full(2 * labels.size + 1, blank, np.int64)
    ext[1::2] = labels
    S = ext.size
    skip = np.zeros(S, bool)  # may come from s - 2: a label different from the one two back
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    emit = lp[:, ext]  # (T, S')
    alpha = np.full((T, S), _NEG)
    alpha[0, :min(2, S)] = emit[0, :min(2, S)]
    for t in range(1, T):
        a = alpha[t - 1]
        alpha[t] = emit[t] + _lse(a, _shift(a, 1), np.where(skip, _shift(a, 2), _NEG))
    beta = np.full((T, S), _NEG)
    beta[T - 1, max(S - 2, 0):] = emit[T - 1, max(S - 2, 0):]
    skip_next = np.zeros(S, bool)  # s + 2 may be reached from s
    skip_next[:-2] = skip[2:]
    for t in range(T - 2, -1, -1):
        b = beta[t + 1]
        beta[t] = emit[t] + _lse(b, _shift(b, -1), np.where(skip_next, _shift(b, -2), _NEG))
    nll = -_lse(alpha[T - 1, S - 1], alpha[T - 1, S - 2] if S > 1 else _NEG)
    ab = alpha + beta  # (T, S')
    lcab = np.full((T, C), _NEG)
    for s in range(S):
        lcab[:, ext[s]] = np.logaddexp(lcab[:, ext[s]], ab[:, s])
    with np.errstate(over="ignore", invalid="ignore"):
        grad = np.exp(lp) - np.exp(lcab + nll - lp)
    return nll, grad


class CTCLoss(Function):
    """The per-sample negative log-likelihood of CTC (see the module doc for both directions).

    log_probs (T, N, C); the targets, input and target lengths are plain parameters. Output (N,).
    """

    half = "unsupported"
    autocast = FP32  # torch's CPU autocast list

    @staticmethod
    def forward(ctx, log_probs, targets=None, input_lengths=None, target_lengths=None, blank=0, zero_infinity=False):
        T, N, C = log_probs.shape
        lp64 = log_probs.astype(np.float64)
        losses = np.empty(N)
        grads = np.zeros((T, N, C))
        for n in range(N):
            t_n = int(input_lengths[n])
            nll, g = _one_sample(lp64[:t_n, n], targets[n], blank)
            if zero_infinity and not np.isfinite(nll):
                nll, g = 0.0, 0.0
            losses[n] = nll
            grads[:t_n, n] = g
        ctx.grads = grads.astype(log_probs.dtype)
        return losses.astype(log_probs.dtype)

    @staticmethod
    def backward(ctx, grad):
        return (ctx.grads * grad[None, :, None],)


def _lengths(x, N, op, what):
    a = np.asarray(x.data if isinstance(x, Tensor) else x).astype(np.int64).reshape(-1)
    if a.size != N:
        raise ShapeError(f"{op}: {what} must have one entry per sample ({N}), got {a.size}")
    return a


def ctc_loss(log_probs: Tensor, targets, input_lengths, target_lengths, blank: int = 0, reduction: str = "mean",
             zero_infinity: bool = False) -> Tensor:
    """CTC loss of ``log_probs`` (T, N, C) (a log_softmax over C) against ``targets`` ((N, S) padded, or the
    concatenated 1-d labels), as torch. 'mean' divides each sample's loss by its target length, then averages."""
    op = "ctc_loss"
    (log_probs,) = autocast_args(FP32, log_probs)  # on torch's float32 list: the reduction runs in float32 too
    if reduction not in ("none", "mean", "sum"):
        raise ConfigError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    unbatched = log_probs.ndim == 2
    lp = log_probs.reshape(log_probs.shape[0], 1, log_probs.shape[1]) if unbatched else log_probs
    if lp.ndim != 3:
        raise ShapeError(f"{op}: log_probs must be (T, N, C) or (T, C), got {shape_str(log_probs.shape)}")
    T, N, C = lp.shape
    in_len = _lengths(input_lengths, N, op, "input_lengths")
    tg_len = _lengths(target_lengths, N, op, "target_lengths")
    tg = np.asarray(targets.data if isinstance(targets, Tensor) else targets).astype(np.int64)
    if unbatched:
        tg = tg.reshape(1, -1)
    if tg.ndim == 2:
        labels = [tg[n, :tg_len[n]] for n in range(N)]
    else:
        ends = np.cumsum(tg_len)
        labels = [tg[e - k:e] for e, k in zip(ends, tg_len)]
    if np.any(in_len > T) or np.any(in_len < 1):
        raise ShapeError(f"{op}: input_lengths must be in [1, {T}], got {in_len.tolist()}")
    for n, lab in enumerate(labels):
        if lab.size and (lab.min() < 0 or lab.max() >= C or np.any(lab == blank)):
            raise ConfigError(f"{op}: targets of sample {n} must be classes in [0, {C}) other than blank={blank}")
    losses = CTCLoss.apply(lp, targets=labels, input_lengths=in_len, target_lengths=tg_len, blank=blank,
                           zero_infinity=zero_infinity)
    if reduction == "none":
        return losses.reshape(()) if unbatched else losses
    if reduction == "sum":
        return _r.sum(losses)
    return _r.mean(losses / Tensor(np.maximum(tg_len, 1).astype(lp.data.dtype)))
