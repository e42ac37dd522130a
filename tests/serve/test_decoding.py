"""Continuous batching: sequences that join and leave a shared batch decode exactly what each would alone."""

import threading

import numpy as np
import pytest
from serve_helpers import greedy_reference

from neural_arch.models.generation import process_logits, sample_next_token
from neural_arch.serve.decoding import DecodeLoop, GenSequence, choose_tokens, safe_text_end
from neural_arch.serve.loading import load_served_model


@pytest.fixture(scope="module")
def served(char_gpt_dir):
    return load_served_model(char_gpt_dir)


def _collect(n):
    """Emit callbacks that gather each sequence's text and finish reason; ``done`` is set when all finished."""
    texts, reasons, done = [""] * n, [None] * n, threading.Event()

    def emitter(i):
        def emit(text, reason):
            texts[i] += text
            reasons[i] = reason
            if all(r is not None for r in reasons):
                done.set()
        return emit
    return texts, reasons, done, emitter


def test_sequences_joining_a_running_batch_decode_as_they_would_alone(served):
    tok, lm = served.tokenizer, served.model
    prompts = ["First", "hear me speak", "All: Speak, speak.\nBefore we proceed", "F", "we proceed", "Citizen"]
    lengths = [30, 9, 17, 40, 3, 25]    # some rows leave early; two outgrow the 24 positions and slide
    texts, reasons, done, emitter = _collect(len(prompts))
    seqs = [GenSequence([int(t) for t in tok.encode(p)], n, emitter(i), temperature=0.0)
            for i, (p, n) in enumerate(zip(prompts, lengths))]
    loop = DecodeLoop(lm, tok, max_batch_size=4, max_wait_s=0.0, max_queue=16)
    try:
        loop.submit(seqs[:2])
        loop.submit(seqs[2:])           # more than max_batch_size: the rest join as rows leave
        assert done.wait(120)
    finally:
        loop.close()
    for i, (p, n) in enumerate(zip(prompts, lengths)):
        expected = tok.decode(greedy_reference(lm, [int(t) for t in tok.encode(p)], n))
        assert texts[i] == expected, (i, texts[i], expected)
        assert reasons[i] == "length" and seqs[i].n_generated == n


def test_stop_strings_end_the_text_before_them_and_are_never_sent(served):
    tok, lm = served.tokenizer, served.model
    ids = [int(t) for t in tok.encode("Before")]
    full = tok.decode(greedy_reference(lm, ids, 20))
    stop = full[6:9]
    cut = full.find(stop)
    texts, reasons, done, emitter = _collect(1)
    loop = DecodeLoop(lm, tok, max_batch_size=2, max_wait_s=0.0)
    try:
        loop.submit([GenSequence(ids, 20, emitter(0), temperature=0.0, stops=(stop, "never-there"))])
        assert done.wait(60)
    finally:
        loop.close()
    assert texts[0] == full[:cut] and reasons[0] == "stop"


def test_same_seed_same_sample_and_cancelled_rows_leave(served):
    tok, lm = served.tokenizer, served.model
    ids = [int(t) for t in tok.encode("All")]
    texts, reasons, done, emitter = _collect(3)
    seqs = [GenSequence(ids, 15, emitter(0), temperature=1.5, top_p=0.9, seed=7),
            GenSequence(ids, 15, emitter(1), temperature=1.5, top_p=0.9, seed=7),
            GenSequence(ids, 10_000, emitter(2), temperature=1.0)]
    seqs[2].cancelled = True
    reasons[2] = "cancelled"   # never emits: it is dropped before its first token
    loop = DecodeLoop(lm, tok, max_batch_size=4, max_wait_s=0.0)
    try:
        loop.submit(seqs)
        assert done.wait(60)
    finally:
        loop.close()
    assert texts[0] == texts[1] and len(seqs[0].ids) == len(ids) + 15
    assert seqs[2].n_generated == 0


@pytest.mark.parametrize("text, stops, end", [("hello wor", ("world",), 6), ("hello", ("xyz",), 5),
                                              ("abab", ("abc", "bx"), 2), ("", ("a",), 0)])
def test_safe_text_end_holds_back_a_possible_stop_prefix(text, stops, end):
    assert safe_text_end(text, stops) == end


def test_closing_finishes_queued_sequences(served):
    tok, lm = served.tokenizer, served.model
    texts, reasons, done, emitter = _collect(3)
    loop = DecodeLoop(lm, tok, max_batch_size=1, max_wait_s=0.0)
    loop.submit([GenSequence([1, 2], 5, emitter(i), temperature=0.0) for i in range(3)])
    loop.close()
    assert done.is_set() and reasons == ["length"] * 3
    assert np.unique(texts).size == 1


def test_choosing_tokens_for_all_rows_at_once_equals_generate_row_by_row():
    """choose_tokens draws what generate's process_logits + sample_next_token draw for each row alone."""
    logits = np.random.default_rng(0).normal(0, 3, (7, 50)).astype(np.float32)
    settings = [(0.0, None), (1.0, None), (0.7, 0.9), (1.3, 0.5), (0.0, 0.3), (2.0, 1.0), (0.5, 0.05)]

    def seqs():
        return [GenSequence([0], 1, lambda t, r: None, temperature=t, top_p=p, seed=i)
                for i, (t, p) in enumerate(settings)]
    batch = choose_tokens(seqs(), logits)
    for i, seq in enumerate(seqs()):
        t, p = settings[i]
        if t == 0:
            expected = int(logits[i].argmax())
        else:
            expected = int(sample_next_token(process_logits(logits[i:i + 1], t, None, p), seq.rng)[0])
        assert batch[i] == expected, i


def test_prompts_that_join_together_share_one_prefill_and_decode_as_alone(served):
    tok, lm = served.tokenizer, served.model
    # different lengths (left padding), one longer than the 24 positions (its prefill starts on the last 12)
    prompts = ["F", "hear me speak", "All: Speak, speak.\nBefore we proceed", "we"]
    steps = []
    texts, reasons, done, emitter = _collect(len(prompts))
    seqs = [GenSequence([int(t) for t in tok.encode(p)], 10, emitter(i), temperature=0.0)
            for i, p in enumerate(prompts)]
    loop = DecodeLoop(lm, tok, max_batch_size=4, max_wait_s=5.0, max_queue=8,
                      on_step=lambda rows, seconds: steps.append(rows))
    try:
        loop.submit(seqs)               # a full batch at once: admitted together, no waiting
        assert done.wait(120)
    finally:
        loop.close()
    assert steps[0] == 4                # the four prompt passes were one forward
    for i, p in enumerate(prompts):
        expected = tok.decode(greedy_reference(lm, [int(t) for t in tok.encode(p)], 10))
        assert texts[i] == expected, (i, texts[i], expected)
