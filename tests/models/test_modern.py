"""The modern transformer against ``transformers.LlamaForCausalLM``: GQA, RoPE, RMSNorm, SwiGLU, padding, cache."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import neural_arch as na  # noqa: E402
from neural_arch.errors import ConfigError  # noqa: E402
from neural_arch.models.hf import load_safetensors_dir  # noqa: E402
from neural_arch.models.modern import LlamaForCausalLM, ModernConfig, ModernTransformer  # noqa: E402

V, T = 101, 12
TOL = dict(rtol=1e-4, atol=2e-5)


def _write_llama(path, tie: bool, theta: float = 10000.0):
    """A small random Llama written by transformers: 2 layers, 4 query heads sharing 2 key/value heads."""
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=88, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                   rms_norm_eps=1e-5, tie_word_embeddings=tie, bos_token_id=0, eos_token_id=0,
                                   rope_parameters={"rope_type": "default", "rope_theta": theta})
    ref = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "norm" in name:  # non-unit gains, so that every tensor matters
                p.add_(0.1 * torch.randn_like(p))
    ref.save_pretrained(path)
    return transformers.LlamaForCausalLM.from_pretrained(path).eval()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf_llama")
    ref = _write_llama(path, tie=False)
    return ModernTransformer.from_pretrained(path), ref, path


def _ids(B=3, seed=0):
    return np.random.default_rng(seed).integers(0, V, size=(B, T)).astype(np.int64)


def _ref_out(ref, ids, **kw):
    kw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    with torch.no_grad():
        return ref(torch.from_numpy(ids), output_hidden_states=True, **kw)


def test_config_reads_llama_json(pair):
    ours, ref, path = pair
    c = ours.config
    assert (c.num_key_value_heads, c.head_dim, c.rope_theta, c.rms_norm_eps) == (2, 8, 10000.0, 1e-5)
    assert not c.tie_word_embeddings and ours.lm_head.weight is not ours.model.embed_tokens.weight
    assert LlamaForCausalLM is ModernTransformer


def test_logits_and_hidden_states_match_llama(pair):
    ours, ref, _ = pair
    ids = _ids()
    out = ours(ids, output_hidden_states=True)
    expect = _ref_out(ref, ids)
    np.testing.assert_allclose(out.logits.detach().numpy(), expect.logits.detach().numpy(), **TOL)
    assert len(out.hidden_states) == len(expect.hidden_states)
    for h, e in zip(out.hidden_states, expect.hidden_states):
        np.testing.assert_allclose(h.detach().numpy(), e.numpy(), **TOL)


@pytest.mark.parametrize("left", [False, True], ids=["right_pad", "left_pad"])
def test_padded_batch_matches_llama_on_real_tokens(pair, left):
    ours, ref, _ = pair
    ids = _ids()
    mask = np.zeros((3, T), np.int64)
    for b, n in enumerate([T, 8, 2]):
        if left:
            mask[b, T - n:] = 1
        else:
            mask[b, :n] = 1
    real = mask.astype(bool)
    pos = np.clip(np.cumsum(mask, 1) - 1, 0, None)
    for kw in ({}, {"position_ids": pos}):
        out = ours(ids, attention_mask=mask, output_hidden_states=True, **kw)
        expect = _ref_out(ref, ids, attention_mask=mask, **kw)
        assert np.isfinite(out.logits.detach().numpy()).all()
        np.testing.assert_allclose(out.logits.detach().numpy()[real], expect.logits.detach().numpy()[real], **TOL)
        for h, e in zip(out.hidden_states, expect.hidden_states):
            np.testing.assert_allclose(h.detach().numpy()[real], e.numpy()[real], **TOL)


@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
def test_save_pretrained_loads_into_transformers(tmp_path, tie):
    na.manual_seed(2)
    model = ModernTransformer(ModernConfig(vocab_size=V, hidden_size=48, intermediate_size=128,
                                           num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                                           rope_theta=500000.0, tie_word_embeddings=tie)).eval()
    model.save_pretrained(tmp_path)
    assert ("lm_head.weight" in load_safetensors_dir(tmp_path)) is not tie
    ref = transformers.LlamaForCausalLM.from_pretrained(tmp_path).eval()
    assert ref.config.num_key_value_heads == 2 and ref.config.rope_parameters["rope_theta"] == 500000.0
    ids = _ids()
    np.testing.assert_allclose(model(ids).logits.detach().numpy(), _ref_out(ref, ids).logits.detach().numpy(), **TOL)
    again = ModernTransformer.from_pretrained(tmp_path)
    assert (again.lm_head.weight is again.model.embed_tokens.weight) is tie
    np.testing.assert_array_equal(again(ids).logits.detach().numpy(), model(ids).logits.detach().numpy())


def test_tied_llama_checkpoint_loads(tmp_path):
    ref = _write_llama(tmp_path, tie=True, theta=1234.0)
    ours = ModernTransformer.from_pretrained(tmp_path)
    ids = _ids()
    np.testing.assert_allclose(ours(ids).logits.detach().numpy(), _ref_out(ref, ids).logits.detach().numpy(), **TOL)


def test_loss_and_gradients_match_llama(pair):
    _, _, path = pair
    ours = ModernTransformer.from_pretrained(path)
    ref = transformers.LlamaForCausalLM.from_pretrained(path).eval()
    ids = _ids(B=2)
    loss = ours(ids, labels=ids).loss
    loss.backward()
    ref_loss = ref(torch.from_numpy(ids), labels=torch.from_numpy(ids)).loss
    ref_loss.backward()
    np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=1e-5)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), ref_params[name].grad.numpy(), rtol=1e-3, atol=1e-6,
                                   err_msg=name)


def test_kv_cache_holds_kv_heads_and_equals_full_forward(pair):
    ours, _, _ = pair
    ids = _ids(B=2)
    full = ours(ids).logits.detach().numpy()
    out = ours(ids[:, :4])
    past, steps = out.past_key_values, [out.logits.detach().numpy()]
    assert past[0][0].shape == (2, 2, 4, 8)  # (B, n_kv_heads, T, head_dim): GQA shrinks the cache
    out = ours(ids[:, 4:7], past_key_values=past)  # a multi-token step on top of a cache
    past = out.past_key_values
    steps.append(out.logits.detach().numpy())
    for t in range(7, T):
        out = ours(ids[:, t:t + 1], past_key_values=past)
        past = out.past_key_values
        steps.append(out.logits.detach().numpy())
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, **TOL)


def test_greedy_generation_matches_llama_generate(pair):
    ours, ref, _ = pair
    prompt = _ids(B=2)[:, :6]
    cached = ours.generate(prompt, max_new_tokens=14).numpy()
    uncached = ours.generate(prompt, max_new_tokens=14, use_cache=False).numpy()
    expect = ref.generate(torch.from_numpy(prompt), max_new_tokens=14, do_sample=False, pad_token_id=0,
                          eos_token_id=None).numpy()
    np.testing.assert_array_equal(cached, uncached)
    np.testing.assert_array_equal(cached, expect)


def test_config_errors():
    with pytest.raises(ConfigError, match="multiple of num_key_value_heads"):
        ModernConfig(hidden_size=48, num_attention_heads=6, num_key_value_heads=4)
    with pytest.raises(ConfigError, match="rope scaling"):
        ModernConfig.from_dict({"rope_scaling": {"rope_type": "linear", "factor": 2.0}})
    with pytest.raises(ConfigError, match="hidden_act"):
        ModernConfig.from_dict({"hidden_act": "gelu"})
    d = ModernConfig(hidden_size=64, num_attention_heads=4).to_dict()
    assert json.loads(json.dumps(d))["model_type"] == "llama"
