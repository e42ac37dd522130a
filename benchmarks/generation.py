"""Generation suite: greedy decoding with the key/value cache, batch 1, time per generated token.

Tokens per second is 1 / the time shown. Each call continues a 16-token
prompt by ``NEW_TOKENS`` tokens (no stop token, so every call makes all of
them), ours with ``model.generate`` and Hugging Face ``transformers`` with its
``generate``, from the same random weights (our ``save_pretrained`` loaded by
``transformers``):

* char GPT: 4 layers, 128 wide, 4 heads, vocab 65 (the Tiny Shakespeare model)
* modern char model: the same size with RoPE, SwiGLU, RMSNorm, 2 key/value heads
* GPT-2 small shape: 12 layers, 768 wide, 12 heads, vocab 50257 (124M parameters)

    python -m benchmarks generation [--rounds N]
"""

from __future__ import annotations

import tempfile

import numpy as np

from benchmarks.harness import compare

PROMPT, NEW_TOKENS = 16, 32


def _models():
    from neural_arch.models import GPT2Config, GPT2LMHeadModel, ModernConfig, ModernTransformer

    yield "char GPT 4x128", GPT2LMHeadModel(GPT2Config(vocab_size=65, n_positions=256, n_embd=128, n_layer=4,
                                                         n_head=4, bos_token_id=None, eos_token_id=None))
    yield "modern char 4x128 (GQA 4/2)", ModernTransformer(ModernConfig(
        vocab_size=65, hidden_size=128, intermediate_size=344, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=None, eos_token_id=None))
    yield "GPT-2 small shape 12x768", GPT2LMHeadModel(GPT2Config(bos_token_id=None, eos_token_id=None))


def run(rounds: int = 5):
    import torch
    import transformers

    import neural_arch as na

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    na.manual_seed(0)
    results = []
    for name, ours in _models():
        ours.eval()
        with tempfile.TemporaryDirectory() as tmp:
            ours.save_pretrained(tmp)
            theirs = transformers.AutoModelForCausalLM.from_pretrained(tmp).eval()
        prompt = np.random.default_rng(0).integers(0, ours.config.vocab_size, (1, PROMPT)).astype(np.int64)
        prompt_t = torch.from_numpy(prompt)

        def ours_call(model=ours):
            model.generate(prompt, max_new_tokens=NEW_TOKENS)

        def theirs_call(model=theirs):
            with torch.no_grad():
                model.generate(prompt_t, max_new_tokens=NEW_TOKENS, do_sample=False,
                               use_cache=True, pad_token_id=0)

        # same weights, so the same greedy tokens: a benchmark of two different computations would be moot
        got = ours.generate(prompt, max_new_tokens=8).numpy()
        with torch.no_grad():
            want = theirs.generate(prompt_t, max_new_tokens=8, do_sample=False, pad_token_id=0).numpy()
        if not np.array_equal(got, want):
            print(f"warning: {name}: greedy tokens differ from transformers' ({got[0, PROMPT:]} vs {want[0, PROMPT:]})")
        res = compare(f"{name}: greedy, KV cache, batch 1, per token ({NEW_TOKENS} new)",
                      {"neural-arch": ours_call, "torch": theirs_call}, rounds=rounds, warmup=1)
        for who in res.times:
            res.times[who] = [t / NEW_TOKENS for t in res.times[who]]
        results.append(res)
    return results
