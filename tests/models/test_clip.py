"""CLIP against Hugging Face transformers, and the zero-shot / retrieval helpers."""

import numpy as np
import pytest
import torch
import transformers

import neural_arch as na
from neural_arch.errors import ConfigError, ShapeError
from neural_arch.models.clip import (
    CLIPConfig,
    CLIPModel,
    clip_loss,
    retrieval_recall,
    zero_shot_classifier,
    zero_shot_predict,
)

TOL = dict(rtol=1e-4, atol=2e-5)
VOCAB, EOS = 99, 98


def hf_config(eos_token_id=EOS):
    cfg = transformers.CLIPConfig(
        text_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                         vocab_size=VOCAB, max_position_embeddings=12, eos_token_id=eos_token_id,
                         bos_token_id=0, pad_token_id=1),
        vision_config=dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=2, intermediate_size=40,
                           image_size=16, patch_size=4, num_channels=3),
        projection_dim=20)
    return cfg


def batch(eos=EOS, seed=0):
    """Token ids with the end token at different places, padding (id 1, mask 0) after it."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, 90, size=(3, 10))
    mask = np.ones_like(ids)
    for row, end in enumerate([9, 5, 3]):
        ids[row, end] = eos
        ids[row, end + 1:] = 1
        mask[row, end + 1:] = 0
    ids[:, 0] = 0  # a start token
    pix = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    return ids, mask, pix


def _tensor(x):
    return x if isinstance(x, torch.Tensor) else x.pooler_output  # transformers 5 returns an output object


@pytest.fixture(scope="module", params=[EOS, 2])
def pair(request, tmp_path_factory):
    """(hf model, our model loaded from its save_pretrained dir, eos id); eos 2 is the legacy argmax rule."""
    torch.manual_seed(0)
    hf_model = transformers.CLIPModel(hf_config(request.param)).eval()
    path = tmp_path_factory.mktemp("clip")
    hf_model.save_pretrained(path)
    return hf_model, CLIPModel.from_pretrained(path), request.param


def test_logits_and_embeddings_match_transformers(pair):
    hf_model, ours, eos = pair
    ids, mask, pix = batch(eos if eos != 2 else 97)  # legacy rule: the largest id marks the end
    with torch.no_grad():
        ref = hf_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                       pixel_values=torch.from_numpy(pix), return_loss=False)
    out = ours(input_ids=na.tensor(ids), attention_mask=na.tensor(mask), pixel_values=na.tensor(pix))
    assert out.logits_per_image.shape == (2, 3) and out.logits_per_text.shape == (3, 2)
    np.testing.assert_allclose(out.logits_per_image.detach().numpy(), ref.logits_per_image.numpy(), **TOL)
    np.testing.assert_allclose(out.logits_per_text.detach().numpy(), ref.logits_per_text.numpy(), **TOL)
    np.testing.assert_allclose(out.text_embeds.detach().numpy(), ref.text_embeds.numpy(), **TOL)
    np.testing.assert_allclose(out.image_embeds.detach().numpy(), ref.image_embeds.numpy(), **TOL)


def test_features_and_loss_match_transformers():
    torch.manual_seed(1)
    hf_model = transformers.CLIPModel(hf_config()).eval()
    ours = CLIPModel(CLIPConfig.from_dict(hf_model.config.to_dict()))
    ours.load_state_dict({k: v.numpy() for k, v in hf_model.state_dict().items() if "position_ids" not in k})
    ids, mask, pix = batch(seed=1)
    with torch.no_grad():
        tf = _tensor(hf_model.get_text_features(input_ids=torch.from_numpy(ids),
                                                attention_mask=torch.from_numpy(mask)))
        imf = _tensor(hf_model.get_image_features(pixel_values=torch.from_numpy(pix)))
    ours_text = ours.get_text_features(na.tensor(ids), na.tensor(mask))
    np.testing.assert_allclose(ours_text.detach().numpy(), tf.numpy(), **TOL)
    np.testing.assert_allclose(ours.get_image_features(na.tensor(pix)).detach().numpy(), imf.numpy(), **TOL)
    # the contrastive loss needs a square batch: 3 captions, 3 images
    pix3 = np.concatenate([pix, pix[:1] * 0.5])
    with torch.no_grad():
        ref = hf_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                       pixel_values=torch.from_numpy(pix3), return_loss=True)
    out = ours(input_ids=na.tensor(ids), attention_mask=na.tensor(mask), pixel_values=na.tensor(pix3),
               return_loss=True)
    np.testing.assert_allclose(out.loss.item(), ref.loss.item(), rtol=1e-5)
    out.loss.backward()
    assert ours.logit_scale.grad is not None and ours.logit_scale.grad.item() != 0
    assert np.any(ours.text_model.embeddings.token_embedding.weight.grad.detach().numpy())


def test_causal_mask_text_cannot_see_the_future():
    torch.manual_seed(2)
    ours = CLIPModel(CLIPConfig.from_dict(hf_config().to_dict()))
    ids, _, _ = batch()
    h1 = ours.text_model(na.tensor(ids)).last_hidden_state.detach().numpy()
    ids2 = ids.copy()
    ids2[:, 6:] = 5  # change only the later tokens
    h2 = ours.text_model(na.tensor(ids2)).last_hidden_state.detach().numpy()
    np.testing.assert_allclose(h1[:, :6], h2[:, :6], rtol=1e-6, atol=1e-6)
    assert not np.allclose(h1[:, 6:], h2[:, 6:])


def test_save_pretrained_loads_in_transformers(tmp_path):
    na.manual_seed(0)
    ours = CLIPModel(CLIPConfig.from_dict(hf_config().to_dict()))
    ours.save_pretrained(tmp_path)
    back = transformers.CLIPModel.from_pretrained(tmp_path).eval()
    ids, mask, pix = batch(seed=3)
    with torch.no_grad():
        ref = back(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                   pixel_values=torch.from_numpy(pix))
    out = ours(input_ids=na.tensor(ids), attention_mask=na.tensor(mask), pixel_values=na.tensor(pix))
    np.testing.assert_allclose(out.logits_per_image.detach().numpy(), ref.logits_per_image.numpy(), **TOL)
    np.testing.assert_allclose(ours.logit_scale.item(), 2.6592, rtol=1e-6)


def test_clip_loss_is_symmetric_cross_entropy():
    logits = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    t = torch.from_numpy(logits)
    ref = (torch.nn.functional.cross_entropy(t, torch.arange(4)) +
           torch.nn.functional.cross_entropy(t.T, torch.arange(4))) / 2
    np.testing.assert_allclose(clip_loss(na.tensor(logits)).item(), ref.item(), rtol=1e-6)
    with pytest.raises(ShapeError, match="square"):
        clip_loss(na.randn(2, 3))


def test_retrieval_recall_by_hand():
    img = np.eye(3)
    txt = np.array([[1.0, 0.1, 0], [0, 0, 1.0], [0, 1.0, 0.2]])  # text 1 is image 2's, text 2 image 1's
    r = retrieval_recall(img, txt, ks=(1, 2))
    assert r["i2t_R@1"] == pytest.approx(1 / 3) and r["t2i_R@1"] == pytest.approx(1 / 3)
    # class-level: texts labelled by the class they describe
    r = retrieval_recall(img, txt, image_labels=[0, 1, 2], text_labels=[0, 2, 1], ks=(1,))
    assert r == {"i2t_R@1": 1.0, "t2i_R@1": 1.0}
    with pytest.raises(ShapeError, match="paired"):
        retrieval_recall(np.eye(3), np.eye(3)[:2])


def test_zero_shot_helpers_run_end_to_end():
    na.manual_seed(0)
    model = CLIPModel(CLIPConfig.from_dict(hf_config().to_dict())).eval()
    prompts = [np.array([[0, 5 + c, 7, EOS], [0, 9, 5 + c, EOS]]) for c in range(4)]  # 2 templates x 4 classes
    classifier = zero_shot_classifier(model, prompts)
    assert classifier.shape == (4, 20)
    np.testing.assert_allclose(np.linalg.norm(classifier.numpy(), axis=1), 1.0, rtol=1e-5)
    pred = zero_shot_predict(model, na.randn(5, 3, 16, 16), classifier)
    assert pred.shape == (5,) and set(pred.tolist()) <= set(range(4))


def test_errors():
    with pytest.raises(ConfigError, match="divisible"):
        CLIPConfig(text_config=dict(hidden_size=30, num_attention_heads=4))
    model = CLIPModel(CLIPConfig.from_dict(hf_config().to_dict()))
    with pytest.raises(ConfigError, match="both"):
        model(input_ids=na.tensor(np.zeros((1, 3), np.int64)))
    with pytest.raises(ShapeError, match="max_position_embeddings"):
        model.get_text_features(na.tensor(np.zeros((1, 20), np.int64)))
    with pytest.raises(ShapeError, match="pixel_values"):
        model.get_image_features(na.randn(1, 3, 8, 8))
