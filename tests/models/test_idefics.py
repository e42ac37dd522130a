"""The Flamingo-style VLM against ``transformers.IdeficsForVisionText2Text`` on tiny random configs:
perceiver resampler, gated cross-attention (gates shut and open), image masks, frozen LM, checkpoints."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import neural_arch as na  # noqa: E402
from neural_arch.errors import ConfigError, ShapeError  # noqa: E402
from neural_arch.models.idefics import IdeficsConfig, IdeficsForVisionText2Text  # noqa: E402

V, EXTRA, T = 53, 2, 9
TOL = dict(rtol=1e-4, atol=2e-5)


def _hf_config(resampler=True, interval=1, layers=2):
    return transformers.IdeficsConfig(
        vocab_size=V, additional_vocab_size=EXTRA, hidden_size=16, intermediate_size=24, num_hidden_layers=layers,
        num_attention_heads=2, cross_layer_interval=interval, qk_layer_norms=resampler, use_resampler=resampler,
        vision_config=dict(embed_dim=12, image_size=8, patch_size=4, intermediate_size=20, num_hidden_layers=1,
                           num_attention_heads=2),
        perceiver_config=dict(use_resampler=resampler, resampler_n_latents=3, resampler_depth=2, resampler_n_heads=2,
                              resampler_head_dim=4, qk_layer_norms_perceiver=resampler))


def _write(path, resampler=True, interval=1, layers=2, open_gates=True):
    torch.manual_seed(0)
    ref = transformers.IdeficsForVisionText2Text(_hf_config(resampler, interval, layers)).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "alpha" in name and open_gates:  # open the gates, so the image path shows in the logits
                p.copy_(torch.randn_like(p))
            elif "norm" in name or ".ln." in name:
                p.add_(0.1 * torch.randn_like(p))
    ref.save_pretrained(path)
    return transformers.IdeficsForVisionText2Text.from_pretrained(path, attn_implementation="eager").eval()


def _inputs(B=2, n_images=2, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V + EXTRA, size=(B, T)).astype(np.int64)
    pixels = rng.standard_normal((B, n_images, 3, 8, 8)).astype(np.float32)
    img_mask = np.ones((B, T, n_images), np.int64)
    img_mask[0, :3] = 0  # the first tokens of row 0 see no image at all: their cross-attention is dropped
    img_mask[1, :, 1] = 0  # row 1 sees its first image only
    return ids, pixels, img_mask


def _ref(ref, ids, pixels, img_mask, **kw):
    return ref(torch.from_numpy(ids), pixel_values=torch.from_numpy(pixels),
               image_attention_mask=torch.from_numpy(img_mask), **kw)


@pytest.mark.parametrize("resampler,interval", [(True, 1), (False, 2)], ids=["resampler", "no_resampler_interval2"])
def test_logits_match_transformers(tmp_path, resampler, interval):
    ref = _write(tmp_path, resampler, interval, layers=2 if interval == 1 else 4)
    ours = IdeficsForVisionText2Text.from_pretrained(tmp_path)
    assert set(ours.state_dict()) == set(ref.state_dict())
    ids, pixels, img_mask = _inputs()
    with torch.no_grad():
        expect = _ref(ref, ids, pixels, img_mask).logits.numpy()
    got = ours(ids, pixel_values=pixels, image_attention_mask=img_mask).logits.detach().numpy()
    assert got.shape == (2, T, V + EXTRA)
    np.testing.assert_allclose(got, expect, **TOL)


def test_left_padded_text_matches_transformers_on_real_tokens(tmp_path):
    ref = _write(tmp_path)
    ours = IdeficsForVisionText2Text.from_pretrained(tmp_path)
    ids, pixels, img_mask = _inputs()
    mask = np.ones((2, T), np.int64)
    mask[1, :4] = 0
    with torch.no_grad():
        expect = _ref(ref, ids, pixels, img_mask, attention_mask=torch.from_numpy(mask)).logits.numpy()
    got = ours(ids, pixel_values=pixels, image_attention_mask=img_mask, attention_mask=mask).logits.detach().numpy()
    real = mask.astype(bool)
    np.testing.assert_allclose(got[real], expect[real], **TOL)


def test_shut_gates_give_the_frozen_language_model(tmp_path):
    _write(tmp_path, open_gates=False)
    ours = IdeficsForVisionText2Text.from_pretrained(tmp_path)
    assert set(ours.gates().values()) == {0.0}
    ids, pixels, img_mask = _inputs()
    a = ours(ids, pixel_values=pixels, image_attention_mask=img_mask).logits.detach().numpy()
    b = ours(ids, pixel_values=pixels * 0 + 3.0, image_attention_mask=img_mask).logits.detach().numpy()
    np.testing.assert_array_equal(a, b)  # the images cannot matter while every tanh(alpha) is 0


def test_trainable_parts_and_gradients_match_transformers(tmp_path):
    ref = _write(tmp_path)
    ref.train()
    ours = IdeficsForVisionText2Text.from_pretrained(tmp_path).train()
    ids, pixels, img_mask = _inputs(seed=1)
    loss = ours(ids, pixel_values=pixels, image_attention_mask=img_mask, labels=ids).loss
    loss.backward()
    # (transformers' own loss views the logits with vocab_size and fails with extra tokens: shift by hand)
    logits = _ref(ref, ids, pixels, img_mask).logits
    expect = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V + EXTRA),
                                               torch.from_numpy(ids[:, 1:]).reshape(-1))
    expect.backward()
    np.testing.assert_allclose(loss.item(), expect.item(), rtol=1e-5)
    trainable = {n for n, p in ours.named_parameters() if p.requires_grad}
    # (what transformers' constructor freezes; its from_pretrained leaves the vision tower trainable)
    fresh = transformers.IdeficsForVisionText2Text(ref.config)
    assert trainable == {n for n, p in fresh.named_parameters() if p.requires_grad}
    assert not any(n.startswith(("model.layers.", "model.vision_model.")) for n in trainable)  # frozen LM, vision
    assert "model.gated_cross_attn_layers.0.alpha_cross_attn" in trainable
    grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        if p.requires_grad:
            np.testing.assert_allclose(p.grad.numpy(), grads[name].grad.numpy(), rtol=1e-3, atol=1e-6, err_msg=name)
        else:
            assert p.grad is None, name


def test_save_pretrained_loads_into_transformers(tmp_path):
    na.manual_seed(3)
    config = IdeficsConfig(vocab_size=V, additional_vocab_size=EXTRA, hidden_size=16, intermediate_size=24,
                           num_hidden_layers=2, num_attention_heads=2, use_resampler=True, alpha_type="vector",
                           alpha_initializer="normal", alphas_initializer_range=0.5,
                           vision_config=dict(embed_dim=12, image_size=8, patch_size=4, intermediate_size=20,
                                              num_hidden_layers=1, num_attention_heads=2),
                           perceiver_config=dict(resampler_n_latents=3, resampler_depth=1, resampler_n_heads=2,
                                                 resampler_head_dim=4))
    model = IdeficsForVisionText2Text(config).eval()
    model.save_pretrained(tmp_path)
    ref = transformers.IdeficsForVisionText2Text.from_pretrained(tmp_path, attn_implementation="eager").eval()
    ids, pixels, img_mask = _inputs()
    with torch.no_grad():
        expect = _ref(ref, ids, pixels, img_mask).logits.numpy()
    np.testing.assert_allclose(model(ids, pixel_values=pixels, image_attention_mask=img_mask).logits.detach().numpy(),
                               expect, **TOL)


def test_errors():
    with pytest.raises(ConfigError, match="alpha_type"):
        IdeficsConfig(hidden_size=16, num_attention_heads=2, num_hidden_layers=1, alpha_type="matrix")
    with pytest.raises(ConfigError, match="module_exceptions"):
        IdeficsConfig.from_dict({"freeze_text_module_exceptions": ["norm"]})
    model = IdeficsForVisionText2Text(IdeficsConfig(
        vocab_size=V, hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2,
        vision_config=dict(embed_dim=12, image_size=8, patch_size=4, intermediate_size=20, num_hidden_layers=1,
                           num_attention_heads=2)))
    ids = np.zeros((1, 4), np.int64)
    with pytest.raises(ShapeError, match="n_images"):
        model(ids, pixel_values=np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(ShapeError, match="image_attention_mask"):
        model(ids, pixel_values=np.zeros((1, 1, 3, 8, 8), np.float32), image_attention_mask=np.ones((1, 4, 2)))
