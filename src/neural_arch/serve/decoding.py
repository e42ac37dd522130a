"""Continuous batching for completions: requests join and leave a shared decoding batch between steps.

One worker thread owns the batch. Each decoding step feeds every active sequence its newest token
in ONE forward with the key/value cache, so 32 concurrent requests cost one (B=32) step per token,
not 32 steps. Between steps the worker

- admits waiting sequences (up to ``max_batch_size`` active): a prompt pass (prefill) gives each one's
  cache and first token, the prompts that join together in one forward (left-padded); each cache is
  then merged into the batch's;
- drops finished sequences (``max_tokens``, a stop string, the end-of-text token) and those whose
  request gave up (deadline, disconnect).

The batch cache per layer is ``(B, heads, S, head_dim)`` with an attention mask ``(B, S)``: rows of
different lengths are LEFT-padded (mask 0), and each row's position ids count only its real tokens,
so a row computes exactly what it would alone (``generate`` with an attention mask does the same).
Columns that are padding in every row are trimmed after a row leaves, so S stays the longest row.

A model with a limited number of positions (GPT-2's ``n_positions``) slides as ``generate`` with
``context_window`` does: a row whose cache is full restarts on its last ``n // 2`` tokens (a prefill).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from neural_arch.autograd.grad_mode import no_grad
from neural_arch.autograd.tensor import Tensor
from neural_arch.models.generation import position_ids_from_mask, softmax_rows, top_p_filter
from neural_arch.serve.batching import QueueFull, WorkerThread

__all__ = ["DecodeLoop", "GenSequence", "RecomputeDecodeLoop", "choose_tokens", "safe_text_end"]


@dataclass
class GenSequence:
    """One prompt being continued. ``emit(delta_text, finish_reason)`` is called on the worker thread
    whenever new text is final (finish_reason None) and once at the end ("stop" or "length")."""

    prompt_ids: list
    max_tokens: int
    emit: Callable[[str, str | None], None]
    temperature: float = 1.0
    top_p: float | None = None
    seed: int | None = None
    stops: tuple = ()
    ids: list = field(default_factory=list)
    text: str = ""
    sent: int = 0
    cancelled: bool = False  # set by the request when it gives up; the worker drops the row

    def __post_init__(self):
        self.ids = list(self.prompt_ids)
        self.rng = np.random.default_rng(None if self.seed is None else self.seed % 2**64)

    @property
    def n_generated(self) -> int:
        return len(self.ids) - len(self.prompt_ids)


def safe_text_end(text: str, stops) -> int:
    """How much of ``text`` can be sent without sending the start of a stop string that may follow."""
    keep = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                keep = max(keep, k)
                break
    return len(text) - keep


class DecodeLoop(WorkerThread):
    """Owns a causal LM and decodes every submitted sequence in one shared, changing batch.

    Args:
        lm: a causal LM taking ``(ids, attention_mask, position_ids, past_key_values, use_cache,
            logits_to_keep)`` (``GPT2LMHeadModel``, ``ModernTransformer``, ...).
        tokenizer: ``decode(ids) -> str``.
        max_batch_size: the most sequences decoded together.
        max_wait_s: when idle, how long the first sequence waits for others before decoding starts.
        max_queue: the most sequences waiting to join; beyond it ``submit`` raises ``QueueFull``.
        eos_token_id: a token that ends a sequence (finish_reason "stop").
        on_step: called on the worker with (rows, seconds) after each forward (a step or a prefill), for
            metrics, before the text it produced is sent; each row produced one token.
    """

    def __init__(self, lm, tokenizer, max_batch_size: int = 32, max_wait_s: float = 0.005, max_queue: int = 256,
                 eos_token_id: int | None = None, on_step: Callable[[int, float], None] | None = None):
        self.lm, self.tokenizer, self.eos = lm, tokenizer, eos_token_id
        self.max_batch_size, self.max_wait_s, self.max_queue = max_batch_size, max_wait_s, max_queue
        self.limit = getattr(lm, "max_positions", None)
        self.on_step = on_step
        self._waiting: collections.deque[GenSequence] = collections.deque()
        # the batch: its rows, their real cache lengths, the cache per layer and the mask
        self.rows: list[GenSequence] = []
        self.lengths = np.zeros(0, np.int64)
        self.cache: list = []
        self.mask = np.zeros((0, 0), np.int64)
        self._live: set[int] = set()  # ids of the admitted sequences not finished yet (rows, or between them)
        super().__init__(self._work, "neural-arch-decode")
        self._thread.start()

    # -- the request side (event loop) ------------------------------------------------------------
    def depth(self) -> int:
        """Sequences waiting to join the batch."""
        return len(self._waiting)

    def active(self) -> int:
        """Sequences admitted and not finished (in the batch, or in their prompt pass)."""
        return len(self._live)

    def submit(self, seqs: list[GenSequence]) -> None:
        """Queue every sequence or none (``QueueFull``)."""
        with self._cond:
            self._refuse_if_closed()
            if len(self._waiting) + len(seqs) > self.max_queue:
                self._waiting = collections.deque(s for s in self._waiting if not s.cancelled)  # abandoned
            if len(self._waiting) + len(seqs) > self.max_queue:
                raise QueueFull(f"{len(self._waiting)} of {self.max_queue} sequences are waiting")
            self._waiting.extend(seqs)
            self._cond.notify()

    def _on_stopped(self, error: Exception) -> None:
        with self._cond:
            waiting, self._waiting = list(self._waiting), collections.deque()
        for seq in waiting + self.rows:
            seq.emit("", f"error: {self.problem() or error}")

    # -- the worker -------------------------------------------------------------------------------
    def _admit(self) -> list[GenSequence] | None:
        with self._cond:
            while not self._waiting and not self.rows and not self._closed:
                self._cond.wait()
            if not self._waiting and not self.rows:
                return None  # closed and drained
            if not self.rows:  # idle: let a batch gather for at most max_wait_s
                self._gather(self._waiting)
            n = min(self.max_batch_size - len(self.rows), len(self._waiting))
            joining = [self._waiting.popleft() for _ in range(n)]
            self._live.update(id(seq) for seq in joining)
            return joining

    def _work(self) -> None:
        with no_grad():
            while (joining := self._admit()) is not None:
                self._busy(True)
                self._live.difference_update(id(seq) for seq in joining if seq.cancelled)
                joining = [seq for seq in joining if not seq.cancelled]
                if len(joining) == 1:
                    self._run_safely(joining[0], self._prefill)
                elif joining:
                    try:
                        self._prefill_together(joining)
                    except Exception as e:  # noqa: BLE001 - the joining sequences end with the error; the loop goes on
                        for seq in joining:
                            if id(seq) in self._live and not any(seq is row for row in self.rows):
                                self._live.discard(id(seq))
                                seq.emit("", f"error: {e}")
                cancelled = [i for i, s in enumerate(self.rows) if s.cancelled]
                self._live.difference_update(id(self.rows[i]) for i in cancelled)
                self._drop(cancelled)
                if self.rows:
                    try:
                        self._step()
                    except Exception as e:  # noqa: BLE001 - the batch's rows end with the error; the loop goes on
                        rows = self.rows
                        self._drop(list(range(len(rows))))
                        for seq in rows:
                            self._live.discard(id(seq))
                            seq.emit("", f"error: {e}")
                self._busy(False)

    def _run_safely(self, seq: GenSequence, fn) -> None:
        try:
            fn(seq)
        except Exception as e:  # noqa: BLE001 - a failure ends this sequence, never the loop
            self._live.discard(id(seq))
            seq.emit("", f"error: {e}")

    def _prefill(self, seq: GenSequence) -> None:
        """Run the sequence's context alone, choose its next token, and merge its cache into the batch."""
        view = self._context(seq)
        start = time.perf_counter()
        out = self.lm(np.asarray([view], np.int64), use_cache=True, logits_to_keep=1)
        if self.on_step is not None:
            self.on_step(1, time.perf_counter() - start)
        if self._advance(seq, int(choose_tokens([seq], out.logits.data[:, -1, :])[0])):
            return
        cache = [(k.data, v.data) for k, v in out.past_key_values]
        self._join(seq, cache, len(view))

    def _context(self, seq: GenSequence) -> list:
        """What a prefill runs: the sequence's ids, or their last ``limit // 2`` once they outgrow ``limit``."""
        return seq.ids[-(self.limit // 2):] if self.limit is not None and len(seq.ids) > self.limit else seq.ids[:]

    def _prefill_together(self, seqs: list[GenSequence]) -> None:
        """The prompt passes of sequences joining at once, in ONE forward: contexts LEFT-padded to the longest,
        masked, positions counting real tokens only (as ``generate`` with an attention mask), so each row
        computes what its own prefill would. Each row's cache joins the batch without its padding columns."""
        views = [self._context(seq) for seq in seqs]
        L = max(len(v) for v in views)
        ids, mask = np.zeros((len(seqs), L), np.int64), np.zeros((len(seqs), L), np.int64)
        for i, v in enumerate(views):
            ids[i, L - len(v):], mask[i, L - len(v):] = v, 1
        start = time.perf_counter()
        out = self.lm(ids, attention_mask=mask, position_ids=position_ids_from_mask(mask), use_cache=True,
                      logits_to_keep=1)
        if self.on_step is not None:
            self.on_step(len(seqs), time.perf_counter() - start)
        tokens = choose_tokens(seqs, out.logits.data[:, -1, :])
        cache = [(k.data, v.data) for k, v in out.past_key_values]
        for i, (seq, view) in enumerate(zip(seqs, views)):
            if not self._advance(seq, int(tokens[i])):
                real = slice(L - len(view), L)
                self._join(seq, [(np.ascontiguousarray(K[i:i + 1, :, real]), np.ascontiguousarray(V[i:i + 1, :, real]))
                                 for K, V in cache], len(view))

    def _join(self, seq: GenSequence, cache: list, length: int) -> None:
        S = self.mask.shape[1]
        width = max(S, length)
        if not self.rows:
            self.cache = [(k, v) for k, v in cache]
            self.mask = np.ones((1, length), np.int64)
        else:
            self.cache = [(np.concatenate([_left_pad(K, width), _left_pad(k, width)]),
                           np.concatenate([_left_pad(V, width), _left_pad(v, width)]))
                          for (K, V), (k, v) in zip(self.cache, cache)]
            row = np.ones((1, length), np.int64)
            self.mask = np.concatenate([_left_pad(self.mask, width, axis=1), _left_pad(row, width, axis=1)])
        self.rows.append(seq)
        self.lengths = np.append(self.lengths, length)

    def _drop(self, gone: list[int]) -> None:
        if not gone:
            return
        keep = np.setdiff1d(np.arange(len(self.rows)), gone)
        self.rows = [self.rows[i] for i in keep]
        self.lengths = self.lengths[keep]
        if not self.rows:
            self.cache, self.mask = [], np.zeros((0, 0), np.int64)
            return
        lead = self.mask.shape[1] - int(self.lengths.max())  # columns that are padding in every row
        self.cache = [(np.ascontiguousarray(K[keep, :, lead:]), np.ascontiguousarray(V[keep, :, lead:]))
                      for K, V in self.cache]
        self.mask = self.mask[keep, lead:]

    def _step(self) -> None:
        """One token for every row, in one forward."""
        if self.limit is not None:  # rows whose cache is full restart on their last limit // 2 tokens
            full = [i for i in range(len(self.rows)) if self.lengths[i] + 1 > self.limit]
            sliding = [self.rows[i] for i in full]
            self._drop(full)
            for seq in sliding:
                self._run_safely(seq, self._prefill)
            if not self.rows:
                return
        start = time.perf_counter()
        B = len(self.rows)
        ids = np.asarray([[s.ids[-1]] for s in self.rows], np.int64)
        mask = np.concatenate([self.mask, np.ones((B, 1), np.int64)], axis=1)
        past = tuple((Tensor._wrap(K), Tensor._wrap(V)) for K, V in self.cache)
        out = self.lm(ids, attention_mask=mask, position_ids=self.lengths[:, None].copy(), past_key_values=past,
                      use_cache=True, logits_to_keep=1)
        self.cache = [(k.data, v.data) for k, v in out.past_key_values]
        self.mask, self.lengths = mask, self.lengths + 1
        logits = out.logits.data[:, -1, :]
        tokens = choose_tokens(self.rows, logits)
        if self.on_step is not None:  # before any text is sent: a client that sees its answer sees it counted
            self.on_step(B, time.perf_counter() - start)
        done = [i for i, seq in enumerate(self.rows) if self._advance(seq, int(tokens[i]))]
        self._drop(done)

    def _advance(self, seq: GenSequence, token: int) -> bool:
        """Append the chosen token, send the text that became final; True when the sequence is finished."""
        seq.ids.append(token)
        if self.eos is not None and token == self.eos:
            return self._finish(seq, "stop")
        seq.text = self.tokenizer.decode(seq.ids[len(seq.prompt_ids):])
        hits = [i for i in (seq.text.find(s) for s in seq.stops) if i >= 0]
        if hits:
            seq.text = seq.text[:min(hits)]
            return self._finish(seq, "stop")
        if seq.n_generated >= seq.max_tokens:
            return self._finish(seq, "length")
        end = safe_text_end(seq.text, seq.stops)
        if end > seq.sent:
            seq.emit(seq.text[seq.sent:end], None)
            seq.sent = end
        return False

    def _finish(self, seq: GenSequence, reason: str) -> bool:
        self._live.discard(id(seq))
        seq.emit(seq.text[seq.sent:], reason)
        seq.sent = len(seq.text)
        return True


class RecomputeDecodeLoop(DecodeLoop):
    """Continuous batching for a causal LM without a key/value cache (an ONNX file run by onnxruntime).

    ``lm.logits(ids (B, T) int64) -> (B, T, V)``; ``lm.max_positions`` (or None) bounds a row's context.
    Rows join and leave between steps as in :class:`DecodeLoop`, but every step runs each row's whole
    context again: the rows RIGHT-padded to the longest (a causal model's outputs at a row's real
    positions never see the padding after them, and positions count from 0 in every row), each row's
    next token read at its last real position. A row whose context outgrows ``max_positions`` restarts
    on its last ``max_positions // 2`` tokens, exactly when and as a :class:`DecodeLoop` row does, so
    both loops choose the same tokens.
    """

    def __init__(self, lm, tokenizer, max_batch_size: int = 32, max_wait_s: float = 0.005, max_queue: int = 256,
                 eos_token_id: int | None = None, on_step: Callable[[int, float], None] | None = None):
        self.starts: list[int] = []  # where each row's context begins in its ids
        super().__init__(lm, tokenizer, max_batch_size, max_wait_s, max_queue, eos_token_id, on_step)

    def _prefill(self, seq: GenSequence) -> None:
        """Join the batch; the first token comes with the next step."""
        self.rows.append(seq)
        self.starts.append(0)

    def _prefill_together(self, seqs: list[GenSequence]) -> None:
        for seq in seqs:
            self._prefill(seq)

    def _drop(self, gone: list[int]) -> None:
        gone = set(gone)
        keep = [i for i in range(len(self.rows)) if i not in gone]
        self.rows = [self.rows[i] for i in keep]
        self.starts = [self.starts[i] for i in keep]

    def _step(self) -> None:
        start = time.perf_counter()
        if self.limit is not None:
            for i, seq in enumerate(self.rows):
                if len(seq.ids) - self.starts[i] > self.limit:
                    self.starts[i] = len(seq.ids) - self.limit // 2
        contexts = [seq.ids[s:] for seq, s in zip(self.rows, self.starts)]
        lengths = np.asarray([len(c) for c in contexts])
        ids = np.zeros((len(contexts), int(lengths.max())), np.int64)
        for i, c in enumerate(contexts):
            ids[i, :len(c)] = c
        logits = np.asarray(self.lm.logits(ids))[np.arange(len(contexts)), lengths - 1]         # (B, V)
        tokens = choose_tokens(self.rows, logits)
        if self.on_step is not None:  # before any text is sent, as DecodeLoop's
            self.on_step(len(self.rows), time.perf_counter() - start)
        done = [i for i, seq in enumerate(self.rows) if self._advance(seq, int(tokens[i]))]
        self._drop(done)


def choose_tokens(seqs: list[GenSequence], logits: np.ndarray) -> np.ndarray:
    """The next token of every row of ``logits`` (B, V), each with its sequence's own settings and generator.

    temperature 0: the argmax. Otherwise, as ``process_logits`` + ``sample_next_token`` row by row (the
    same draws from each sequence's generator) but for all rows at once: scores = logits / T; top-p keeps
    the smallest set of most likely tokens whose probability reaches p; then the inverse of the CDF at u.
    """
    tokens = logits.argmax(axis=-1).astype(np.int64)
    temperature = np.asarray([s.temperature for s in seqs], np.float32)
    rows = np.flatnonzero(temperature > 0)
    if rows.size == 0:
        return tokens
    scores = logits[rows].astype(np.float32) / temperature[rows, None]                       # (R, V)
    top_p = np.asarray([1.0 if seqs[i].top_p is None else seqs[i].top_p for i in rows])
    if (top_p < 1).any():
        scores = top_p_filter(scores, top_p)
    cdf = np.cumsum(softmax_rows(scores), axis=-1)
    u = np.asarray([seqs[i].rng.random() for i in rows])[:, None] * cdf[:, -1:]
    tokens[rows] = np.minimum((cdf < u).sum(axis=-1), scores.shape[-1] - 1)
    return tokens


def _left_pad(a: np.ndarray, width: int, axis: int = 2) -> np.ndarray:
    """``a`` with zeros prepended along ``axis`` up to ``width``."""
    extra = width - a.shape[axis]
    if extra == 0:
        return a
    pad = [(0, 0)] * a.ndim
    pad[axis] = (extra, 0)
    return np.pad(a, pad)
