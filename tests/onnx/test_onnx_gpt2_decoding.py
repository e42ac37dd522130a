"""GPT-2 as two ONNX graphs -- the prompt (logits + key/value cache) and one decoding step (past
keys/values in, updated ones out) -- and greedy decoding driven by onnxruntime gives our tokens."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

import neural_arch as na
import onnx
from neural_arch import nn
from neural_arch.models.gpt2 import GPT2Config, GPT2LMHeadModel
from neural_arch.onnx import export

LAYERS = 2


class Prompt(nn.Module):
    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, ids):
        out = self.lm(ids, use_cache=True)
        return (out.logits, *[t for kv in out.past_key_values for t in kv])


class Step(nn.Module):
    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, ids, *past):
        pairs = tuple((past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2))
        out = self.lm(ids, past_key_values=pairs, use_cache=True)
        return (out.logits, *[t for kv in out.past_key_values for t in kv])


def _names(prefix):
    return [f"{prefix}.{i}.{kv}" for i in range(LAYERS) for kv in ("key", "value")]


def test_greedy_decoding_with_past_key_values(tmp_path):
    rng = np.random.default_rng(0)
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=32, n_embd=32, n_layer=LAYERS, n_head=4)).eval()
    for p in lm.parameters():  # larger weights than the initialisation: the greedy choices are not near-ties
        scale = 0.15 if p.ndim == 2 else 0.02
        p.data[...] = rng.standard_normal(p.shape).astype(np.float32) * scale + (p.ndim == 1) * p.data
    ids = rng.integers(0, 40, size=(2, 4))
    kv_axes = {0: "batch", 2: "past"}

    export(Prompt(lm), (na.tensor(ids),), tmp_path / "prompt.onnx", input_names=["input_ids"],
           output_names=["logits"] + _names("present"), dynamic_axes={"input_ids": {0: "batch", 1: "seq"}})
    with na.no_grad():
        first = Prompt(lm)(na.tensor(ids))
    step_args = (na.tensor(ids[:, -1:]),) + tuple(first[1:])
    export(Step(lm), step_args, tmp_path / "step.onnx", input_names=["input_ids"] + _names("past"),
           output_names=["logits"] + _names("present"),
           dynamic_axes={"input_ids": {0: "batch"}, **{n: kv_axes for n in _names("past")}})
    for f in ("prompt.onnx", "step.onnx"):
        onnx.checker.check_model(onnx.load(tmp_path / f), full_check=True)
    prompt = ort.InferenceSession(str(tmp_path / "prompt.onnx"), providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(str(tmp_path / "step.onnx"), providers=["CPUExecutionProvider"])

    prefix = rng.integers(0, 40, size=(3, 6))  # another batch size and prompt length than traced
    out = prompt.run(None, {"input_ids": prefix})
    tokens = []
    for _ in range(8):
        nxt = out[0][:, -1].argmax(-1)[:, None]
        tokens.append(nxt)
        out = step.run(None, {"input_ids": nxt, **dict(zip(_names("past"), out[1:]))})
    onnx_tokens = np.concatenate(tokens, axis=1)

    ours = lm.generate(na.tensor(prefix), max_new_tokens=8, do_sample=False)
    ours = np.asarray(getattr(ours, "data", ours))[:, prefix.shape[1]:]
    np.testing.assert_array_equal(onnx_tokens, ours)
    assert len(set(onnx_tokens.ravel().tolist())) > 1  # a real sequence, not one repeated id
