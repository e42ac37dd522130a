"""ViT against Hugging Face transformers: random-weight models saved with save_pretrained, loaded by ours."""

import numpy as np
import pytest
import torch
import transformers

import neural_arch as na
from neural_arch.errors import CheckpointError, ConfigError, ShapeError
from neural_arch.models.vit import ViTConfig, ViTForImageClassification, ViTModel, attention_rollout

TOL = dict(rtol=1e-4, atol=2e-5)
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, image_size=16,
             patch_size=4, num_channels=3)


def hf_config(**kw):
    cfg = transformers.ViTConfig(**{**SMALL, **kw})
    cfg._attn_implementation = "eager"  # so transformers returns attention probabilities too
    return cfg


def pixels(b=2, c=3, s=16, seed=0):
    return np.random.default_rng(seed).standard_normal((b, c, s, s)).astype(np.float32)


@pytest.fixture(scope="module")
def hf_classifier(tmp_path_factory):
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(hf_config(num_labels=5)).eval()
    path = tmp_path_factory.mktemp("vit_cls")
    model.save_pretrained(path)
    return model, path


def hf_outputs(model, x, **kw):
    with torch.no_grad():
        return model(torch.from_numpy(x), output_attentions=True, output_hidden_states=True, **kw)


def test_classifier_matches_transformers(hf_classifier):
    hf_model, path = hf_classifier
    ours = ViTForImageClassification.from_pretrained(path)
    assert ours.config.num_labels == 5
    x = pixels()
    ref = hf_outputs(hf_model, x)
    out = ours(na.tensor(x), output_attentions=True, output_hidden_states=True)
    np.testing.assert_allclose(out.logits.detach().numpy(), ref.logits.detach().numpy(), **TOL)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (2, 4, 17, 17)
    for a, r in zip(out.attentions, ref.attentions):
        np.testing.assert_allclose(a.detach().numpy(), r.numpy(), **TOL)
    # hidden_states: embeddings, then every layer (transformers' last one is before the final layernorm)
    assert len(out.hidden_states) == len(ref.hidden_states) == 3
    for h, r in zip(out.hidden_states, ref.hidden_states):
        np.testing.assert_allclose(h.detach().numpy(), r.numpy(), **TOL)


def test_labels_give_the_cross_entropy_loss(hf_classifier):
    hf_model, path = hf_classifier
    ours = ViTForImageClassification.from_pretrained(path)
    x, y = pixels(4, seed=1), np.array([0, 4, 2, 1])
    with torch.no_grad():
        ref = hf_model(torch.from_numpy(x), labels=torch.from_numpy(y))
    out = ours(na.tensor(x), labels=na.tensor(y))
    np.testing.assert_allclose(out.loss.item(), ref.loss.item(), rtol=1e-5)


def test_vit_model_with_pooler_round_trips_through_transformers(tmp_path):
    torch.manual_seed(1)
    hf_model = transformers.ViTModel(hf_config(hidden_act="gelu_new", qkv_bias=False)).eval()
    hf_model.save_pretrained(tmp_path / "hf")
    ours = ViTModel.from_pretrained(tmp_path / "hf")
    x = pixels(seed=2)
    ref = hf_outputs(hf_model, x)
    out = ours(na.tensor(x))
    np.testing.assert_allclose(out.last_hidden_state.detach().numpy(), ref.last_hidden_state.numpy(), **TOL)
    np.testing.assert_allclose(out.pooler_output.detach().numpy(), ref.pooler_output.numpy(), **TOL)
    assert "embeddings.cls_token" in ours.state_dict() and "pooler.dense.weight" in ours.state_dict()

    ours.save_pretrained(tmp_path / "ours")  # ours -> transformers
    back = transformers.ViTModel.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        again = back(torch.from_numpy(x))
    np.testing.assert_allclose(again.pooler_output.detach().numpy(), out.pooler_output.detach().numpy(), **TOL)


def test_trained_classifier_saves_for_transformers(tmp_path):
    na.manual_seed(0)
    cfg = ViTConfig(**{**SMALL, "num_channels": 1, "image_size": 8, "patch_size": 2}, num_labels=3)
    ours = ViTForImageClassification(cfg)
    x = np.random.default_rng(3).standard_normal((3, 1, 8, 8)).astype(np.float32)
    out = ours(na.tensor(x), labels=na.tensor(np.array([0, 1, 2])))
    out.loss.backward()
    names = [n for n, p in ours.named_parameters() if p.grad is None or not np.any(p.grad.numpy())]
    assert names == [], f"no gradient reached {names}"
    ours.save_pretrained(tmp_path)
    hf_model = transformers.ViTForImageClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        ref = hf_model(torch.from_numpy(x)).logits.detach().numpy()
    np.testing.assert_allclose(ours.eval()(na.tensor(x)).logits.detach().numpy(), ref, **TOL)


def test_attention_rollout_formula():
    rng = np.random.default_rng(0)
    layers = [rng.random((2, 3, 5, 5)) for _ in range(2)]
    layers = [a / a.sum(-1, keepdims=True) for a in layers]
    maps = attention_rollout(layers)
    # by hand, for the first image
    r = np.eye(5)
    for a in layers:
        m = 0.5 * a[0].mean(0) + 0.5 * np.eye(5)
        r = (m / m.sum(-1, keepdims=True)) @ r
    expected = r[0, 1:].reshape(2, 2)
    np.testing.assert_allclose(maps[0], expected / expected.max())
    assert maps.shape == (2, 2, 2) and maps.max() == 1.0
    # a class token that attends uniformly gives a flat map
    flat = attention_rollout([np.full((1, 1, 5, 5), 0.2)])
    np.testing.assert_allclose(flat, np.ones((1, 2, 2)))
    with pytest.raises(ShapeError):
        attention_rollout([np.ones((1, 1, 4, 4))])  # 3 patches are no square grid
    with pytest.raises(ConfigError):
        attention_rollout(layers, head_fusion="min")


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="divisible"):
        ViTConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ConfigError, match="multiple"):
        ViTConfig(image_size=30, patch_size=4)
    with pytest.raises(ConfigError, match="activation"):
        ViTConfig(hidden_act="swish2")
    model = ViTModel(ViTConfig(**SMALL))
    with pytest.raises(ShapeError, match="image size"):
        model(na.randn(1, 3, 20, 20))
    with pytest.raises(ShapeError, match="pixel_values"):
        model(na.randn(1, 1, 16, 16))
    with pytest.raises(CheckpointError):
        ViTModel.from_pretrained(tmp_path / "missing")


def test_save_attention_rollout_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from neural_arch.viz import rollout_overlay, save_attention_rollout

    na.manual_seed(0)
    model = ViTForImageClassification(ViTConfig(**{**SMALL, "num_channels": 1}, num_labels=3))
    x = np.random.default_rng(0).random((2, 1, 16, 16)).astype(np.float32)
    maps, pred = rollout_overlay(model, x)
    assert maps.shape == (2, 16, 16) and pred.shape == (2,)
    np.testing.assert_array_equal(maps[:, :4, :4], np.broadcast_to(maps[:, :1, :1], (2, 4, 4)))  # one value per patch
    path = save_attention_rollout(model, x, tmp_path / "r.png", labels=[0, 2], class_names=["a", "b", "c"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
