"""GPT-2 against ``transformers.GPT2LMHeadModel``: checkpoints both ways, padded batches, KV cache, gradients."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import neural_arch as na  # noqa: E402
from neural_arch.errors import CheckpointError, ConfigError, DTypeError, IndexingError, ShapeError  # noqa: E402
from neural_arch.models.gpt2 import GPT2Config, GPT2LMHeadModel  # noqa: E402
from neural_arch.models.hf import load_safetensors_dir  # noqa: E402

V, T = 97, 12
TOL = dict(rtol=1e-4, atol=2e-5)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A small random GPT-2 written by transformers: 2 layers, 4 heads, 32 wide."""
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=V, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                  bos_token_id=0, eos_token_id=0)
    ref = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # non-trivial LayerNorms and biases, so that every tensor matters
        for name, p in ref.named_parameters():
            if "ln" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("hf_gpt2")
    ref.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def ref(hf_dir):
    return transformers.GPT2LMHeadModel.from_pretrained(hf_dir).eval()


@pytest.fixture(scope="module")
def ours(hf_dir):
    return GPT2LMHeadModel.from_pretrained(hf_dir)


def _ids(B=3, seed=0):
    return np.random.default_rng(seed).integers(0, V, size=(B, T)).astype(np.int64)


def _mask(lengths, left: bool):
    mask = np.zeros((len(lengths), T), np.int64)
    for b, n in enumerate(lengths):
        if left:
            mask[b, T - n:] = 1
        else:
            mask[b, :n] = 1
    return mask


def _ref_out(ref, ids, **kw):
    kw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    with torch.no_grad():
        return ref(torch.from_numpy(ids), output_hidden_states=True, **kw)


def test_loads_transformers_checkpoint_and_matches_logits_and_hidden_states(ours, ref):
    ids = _ids()
    out = ours(ids, output_hidden_states=True)
    expect = _ref_out(ref, ids)
    assert isinstance(out.logits, na.Tensor) and out.logits.shape == (3, T, V)
    np.testing.assert_allclose(out.logits.detach().numpy(), expect.logits.detach().numpy(), **TOL)
    assert len(out.hidden_states) == len(expect.hidden_states) == 3
    for h, e in zip(out.hidden_states, expect.hidden_states):
        np.testing.assert_allclose(h.detach().numpy(), e.numpy(), **TOL)


@pytest.mark.parametrize("left", [False, True], ids=["right_pad", "left_pad"])
def test_padded_batch_matches_transformers_on_real_tokens(ours, ref, left):
    ids, mask = _ids(), _mask([T, 7, 3], left)
    real = mask.astype(bool)
    out = ours(na.tensor(ids), attention_mask=mask, output_hidden_states=True)
    expect = _ref_out(ref, ids, attention_mask=mask)
    assert np.isfinite(out.logits.detach().numpy()).all()
    np.testing.assert_allclose(out.logits.detach().numpy()[real], expect.logits.detach().numpy()[real], **TOL)
    for h, e in zip(out.hidden_states, expect.hidden_states):
        np.testing.assert_allclose(h.detach().numpy()[real], e.numpy()[real], **TOL)
    if left:  # positions counted from the first real token, as generate() does
        pos = np.clip(np.cumsum(mask, 1) - 1, 0, None)
        out = ours(ids, attention_mask=mask, position_ids=pos)
        expect = _ref_out(ref, ids, attention_mask=mask, position_ids=pos)
        np.testing.assert_allclose(out.logits.detach().numpy()[real], expect.logits.detach().numpy()[real], **TOL)
        # and then each row equals the same tokens without padding
        row = ours(ids[2:, T - 3:]).logits.detach().numpy()
        np.testing.assert_allclose(out.logits.detach().numpy()[2, T - 3:], row[0], **TOL)


def test_save_pretrained_loads_into_transformers(tmp_path):
    na.manual_seed(1)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_positions=32, n_embd=48, n_layer=2, n_head=4))
    model.save_pretrained(tmp_path)
    saved = load_safetensors_dir(tmp_path)
    assert "lm_head.weight" not in saved and saved["transformer.h.0.attn.c_attn.weight"].shape == (48, 144)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "gpt2"
    ref = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids = _ids()
    ours = model.eval()(ids).logits.detach().numpy()
    np.testing.assert_allclose(ours, _ref_out(ref, ids).logits.detach().numpy(), **TOL)
    again = GPT2LMHeadModel.from_pretrained(tmp_path)
    assert again.lm_head.weight is again.transformer.wte.weight  # tying survives the round trip
    np.testing.assert_array_equal(again(ids).logits.detach().numpy(), model(ids).logits.detach().numpy())


def test_loss_and_gradients_match_transformers(hf_dir):
    ref = transformers.GPT2LMHeadModel.from_pretrained(hf_dir).eval()
    ours = GPT2LMHeadModel.from_pretrained(hf_dir)
    ids = _ids(B=2)
    labels = ids.copy()
    labels[0, :4] = -100  # ignored positions
    loss = ours(ids, labels=labels).loss
    loss.backward()
    ref_loss = ref(torch.from_numpy(ids), labels=torch.from_numpy(labels)).loss
    ref_loss.backward()
    np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=1e-5)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():  # the tied matrix appears once, under wte
        np.testing.assert_allclose(p.grad.numpy(), ref_params[name].grad.numpy(), rtol=1e-3, atol=1e-6,
                                   err_msg=name)


def test_kv_cache_equals_full_forward(ours):
    ids = _ids(B=2)
    full = ours(ids).logits.detach().numpy()
    out = ours(ids[:, :5], use_cache=True)
    steps = [out.logits.detach().numpy()]
    past = out.past_key_values
    assert len(past) == 2 and past[0][0].shape == (2, 4, 5, 8)  # (B, nh, T, hs) per layer
    for t in range(5, T):
        out = ours(ids[:, t:t + 1], past_key_values=past, use_cache=True)
        past = out.past_key_values
        steps.append(out.logits.detach().numpy())
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, **TOL)


def test_greedy_generation_cached_uncached_and_transformers_agree(ours, ref):
    prompt = _ids(B=2)[:, :5]
    cached = ours.generate(prompt, max_new_tokens=15).numpy()
    uncached = ours.generate(prompt, max_new_tokens=15, use_cache=False).numpy()
    expect = ref.generate(torch.from_numpy(prompt), max_new_tokens=15, do_sample=False, pad_token_id=0,
                          eos_token_id=None).numpy()
    assert cached.shape == (2, 20)
    np.testing.assert_array_equal(cached, uncached)
    np.testing.assert_array_equal(cached, expect)


def test_user_mistakes_raise_typed_errors(ours, tmp_path):
    with pytest.raises(ShapeError, match="batch, seq_len"):
        ours(np.zeros(5, np.int64))
    with pytest.raises(DTypeError, match="integer"):
        ours(np.zeros((1, 5), np.float32))
    with pytest.raises(IndexingError, match="vocab_size"):
        ours(np.full((1, 5), V, np.int64))
    with pytest.raises(ShapeError, match="n_positions"):
        ours(np.zeros((1, 65), np.int64))
    with pytest.raises(ShapeError, match="attention_mask"):
        ours(np.zeros((1, 5), np.int64), attention_mask=np.ones((1, 4)))
    with pytest.raises(CheckpointError, match="not a directory"):
        GPT2LMHeadModel.from_pretrained(tmp_path / "nope")
    with pytest.raises(ConfigError, match="divisible"):
        GPT2Config(n_embd=30, n_head=4)
    with pytest.raises(ConfigError, match="scale_attn_by_inverse_layer_idx"):
        GPT2Config.from_dict({"scale_attn_by_inverse_layer_idx": True})


def test_checkpoint_with_wrong_shapes_is_rejected(hf_dir, tmp_path):
    cfg = json.loads((hf_dir / "config.json").read_text())
    cfg["n_embd"] = 64
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "model.safetensors").write_bytes((hf_dir / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="size mismatch"):
        GPT2LMHeadModel.from_pretrained(tmp_path)


def test_hub_layout_without_prefix_and_bfloat16_checkpoint_load(hf_dir, ref, tmp_path):
    """The original ``gpt2`` on the Hub is a GPT2Model file (no ``transformer.`` prefix, causal-mask
    buffers ``h.N.attn.bias``); big checkpoints are often bfloat16. Both load."""
    from safetensors.numpy import save_file

    arrays = load_safetensors_dir(hf_dir)
    bare = {k.removeprefix("transformer."): v for k, v in arrays.items()}
    bare["h.0.attn.bias"] = np.tril(np.ones((1, 1, 64, 64), np.float32))
    (tmp_path / "bare").mkdir()
    save_file(bare, str(tmp_path / "bare" / "model.safetensors"), metadata={"format": "pt"})
    (tmp_path / "bare" / "config.json").write_text((hf_dir / "config.json").read_text())
    ids = _ids()
    np.testing.assert_allclose(GPT2LMHeadModel.from_pretrained(tmp_path / "bare")(ids).logits.detach().numpy(),
                               _ref_out(ref, ids).logits.numpy(), **TOL)

    half = transformers.GPT2LMHeadModel.from_pretrained(hf_dir).to(torch.bfloat16)
    half.save_pretrained(tmp_path / "bf16")
    ours = GPT2LMHeadModel.from_pretrained(tmp_path / "bf16")
    assert ours.lm_head.weight.dtype == np.float32  # bfloat16 values, widened exactly
    np.testing.assert_allclose(ours(ids).logits.detach().numpy(), _ref_out(half.float(), ids).logits.numpy(), **TOL)
