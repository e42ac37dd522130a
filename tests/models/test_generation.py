"""generate(): logits warpers against transformers', sampling, stop tokens, padded batches, the KV cache."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import neural_arch as na  # noqa: E402
from neural_arch.errors import ConfigError, ShapeError  # noqa: E402
from neural_arch.models.generation import attention_bias, process_logits, sample_next_token  # noqa: E402
from neural_arch.models.gpt2 import GPT2Config, GPT2LMHeadModel  # noqa: E402
from neural_arch.models.modern import ModernConfig, ModernTransformer  # noqa: E402

V = 61


@pytest.fixture(scope="module", params=["gpt2", "modern"])
def model(request):
    na.manual_seed(3)
    if request.param == "gpt2":
        m = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                       initializer_range=0.5))
    else:
        m = ModernTransformer(ModernConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                           num_attention_heads=4, num_key_value_heads=1, initializer_range=0.5))
    return m.eval()


def _prompt(B=2, T=5, seed=0):
    return np.random.default_rng(seed).integers(0, V, size=(B, T)).astype(np.int64)


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.7, None, None), (1.0, 5, None), (1.0, None, 0.8),
                                                     (1.3, 10, 0.5), (1.0, None, 0.01), (1.0, V + 5, 1.0)])
def test_logit_filters_match_transformers_warpers(temperature, top_k, top_p):
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    logits = np.random.default_rng(0).standard_normal((4, 50)).astype(np.float32) * 3
    scores = torch.from_numpy(logits)
    if temperature != 1.0:
        scores = TemperatureLogitsWarper(temperature)(None, scores)
    if top_k is not None:
        scores = TopKLogitsWarper(top_k)(None, scores)
    if top_p is not None and top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(None, scores)
    ours = process_logits(logits, temperature, top_k, top_p)
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(scores.numpy()))
    np.testing.assert_allclose(ours[np.isfinite(ours)], scores.numpy()[np.isfinite(ours)], rtol=1e-6)


def test_sampling_follows_the_distribution():
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    scores = np.tile(np.log(probs), (20000, 1))
    draws = sample_next_token(scores, np.random.default_rng(0))
    freq = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(freq, probs, atol=0.01)
    masked = scores.copy()
    masked[:, 0] = -np.inf
    assert (sample_next_token(masked, np.random.default_rng(1)) != 0).all()


def test_kv_cache_gives_exactly_the_greedy_tokens(model):
    prompt = _prompt()
    cached = model.generate(prompt, max_new_tokens=20).numpy()
    uncached = model.generate(prompt, max_new_tokens=20, use_cache=False).numpy()
    assert cached.shape == (2, 25) and cached.dtype == np.int64
    np.testing.assert_array_equal(cached[:, :5], prompt)
    np.testing.assert_array_equal(cached, uncached)
    assert len(set(cached[0, 5:].tolist())) > 1  # a real continuation, not one repeated token


def test_sampling_is_seeded_and_cached_equals_uncached(model):
    prompt = _prompt()
    kw = dict(max_new_tokens=15, do_sample=True, temperature=0.9, top_k=20, top_p=0.9)
    a = model.generate(prompt, generator=na.Generator(7), **kw).numpy()
    b = model.generate(prompt, generator=na.Generator(7), use_cache=False, **kw).numpy()
    c = model.generate(prompt, generator=na.Generator(8), **kw).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    greedy = model.generate(prompt, max_new_tokens=15).numpy()
    np.testing.assert_array_equal(model.generate(prompt, max_new_tokens=15, do_sample=True, top_k=1).numpy(), greedy)


def test_stop_token_finishes_a_row_and_pads_it(model):
    prompt = _prompt()
    greedy = model.generate(prompt, max_new_tokens=12).numpy()
    stop = int(greedy[0, 7])  # row 0 produces this token at its third step
    first = {b: next((t for t in range(5, 17) if greedy[b, t] == stop), None) for b in range(2)}
    out = model.generate(prompt, max_new_tokens=12, eos_token_id=stop, pad_token_id=V - 1).numpy()
    end = max(first[b] if first[b] is not None else 16 for b in range(2)) + 1
    assert out.shape[1] == end  # stops as soon as every row has finished
    for b in range(2):
        if first[b] is not None:
            np.testing.assert_array_equal(out[b, :first[b] + 1], greedy[b, :first[b] + 1])
            assert (out[b, first[b] + 1:] == V - 1).all()
    assert model.generate(prompt, max_new_tokens=0).shape == (2, 5)


def test_left_padded_batch_generates_what_each_prompt_generates_alone(model):
    long, short = _prompt(1, 7, seed=1), _prompt(1, 3, seed=2)
    ids = np.concatenate([long, np.concatenate([np.zeros((1, 4), np.int64), short], 1)])
    mask = np.array([[1] * 7, [0] * 4 + [1] * 3])
    batched = model.generate(ids, attention_mask=mask, max_new_tokens=10).numpy()
    np.testing.assert_array_equal(batched[0], model.generate(long, max_new_tokens=10).numpy()[0])
    np.testing.assert_array_equal(batched[1, 4:], model.generate(short, max_new_tokens=10).numpy()[0])


def test_generate_rejects_bad_arguments(model):
    prompt = _prompt()
    with pytest.raises(ConfigError, match="temperature"):
        model.generate(prompt, do_sample=True, temperature=0.0)
    with pytest.raises(ConfigError, match="top_p"):
        model.generate(prompt, do_sample=True, top_p=1.5)
    with pytest.raises(ConfigError, match="top_k"):
        model.generate(prompt, do_sample=True, top_k=0)
    with pytest.raises(ConfigError, match="max_new_tokens"):
        model.generate(prompt, max_new_tokens=-1)
    with pytest.raises(ShapeError, match="attention_mask"):
        model.generate(prompt, attention_mask=np.ones((2, 4)))
    if isinstance(model, GPT2LMHeadModel):
        with pytest.raises(ShapeError, match="positions"):
            model.generate(prompt, max_new_tokens=60)


def test_attention_bias_masks_future_and_padding():
    bias, causal = attention_bias(None, 0, 4, np.float32)
    assert bias is None and causal
    assert attention_bias(None, 6, 1, np.float32) == (None, False)
    bias, causal = attention_bias(np.array([[0, 1, 1, 1]]), 2, 2, np.float32)
    allowed = bias.numpy()[0, 0] == 0
    np.testing.assert_array_equal(allowed, [[False, True, True, False], [False, True, True, True]])
    assert not causal and np.isfinite(bias.numpy()).all()


def test_context_window_slides_past_the_position_limit(model):
    prompt = _prompt(B=1, T=6)
    kw = dict(max_new_tokens=30, context_window=10)
    cached = model.generate(prompt, **kw).numpy()
    np.testing.assert_array_equal(cached, model.generate(prompt, use_cache=False, **kw).numpy())
    assert cached.shape == (1, 36)
    # until the first slide the window changes nothing
    np.testing.assert_array_equal(cached[:, :11], model.generate(prompt, max_new_tokens=5).numpy())
    with pytest.raises(ConfigError, match="context_window"):
        model.generate(prompt, context_window=1)


def test_bpe_tokenizer_round_trip_and_files(tmp_path):
    from neural_arch.data import CharTokenizer
    from neural_arch.models import BPETokenizer, load_tokenizer, save_char_tokenizer

    text = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 20
    tok = BPETokenizer.train(text, vocab_size=300)
    ids = tok.encode("To be, or not to be? Ça va, 東京")  # unseen bytes still encode
    assert ids.dtype == np.int64 and tok.vocab_size <= 300
    assert len(tok.encode("to be, or not to be")) < len("to be, or not to be")  # merges were learned
    assert tok.decode(ids) == "To be, or not to be? Ça va, 東京"
    tok.save(tmp_path / "bpe")
    assert load_tokenizer(tmp_path / "bpe").encode("the question").tolist() == tok.encode("the question").tolist()
    save_char_tokenizer(tmp_path / "char", CharTokenizer.from_text(text))
    assert load_tokenizer(tmp_path / "char").decode([0, 1]) == CharTokenizer.from_text(text).decode([0, 1])
    with pytest.raises(ConfigError, match="vocab_size"):
        BPETokenizer.train(text, vocab_size=100)


def test_cli_generate_from_a_save_pretrained_directory(tmp_path):
    from click.testing import CliRunner

    from neural_arch.cli.main import main
    from neural_arch.data import CharTokenizer
    from neural_arch.models import save_char_tokenizer

    tok = CharTokenizer.from_text("abcdefgh \n")
    na.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_positions=16, n_embd=16, n_layer=1, n_head=2,
                                       initializer_range=0.5))
    model.save_pretrained(tmp_path)
    save_char_tokenizer(tmp_path, tok)
    res = CliRunner().invoke(main, ["generate", str(tmp_path), "--prompt", "abc", "--max-new-tokens", "40", "--greedy"])
    assert res.exit_code == 0, res.output
    expect = model.generate(tok.encode("abc")[None], max_new_tokens=40, context_window=16)
    assert res.output == tok.decode(expect[0]) + "\n"  # 43 characters: slid past the 16 positions
    (tmp_path / "char_tokenizer.json").unlink()
    res = CliRunner().invoke(main, ["generate", str(tmp_path)])
    assert res.exit_code == 1 and "no tokenizer" in res.output
