"""Every shipped architecture exports to ONNX, passes onnx's full check, and onnxruntime's outputs
equal ours (1e-4, float32) at a batch size and sequence length other than the traced ones."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_helpers import Call, check_export

RNG = np.random.default_rng(0)


def images(n, c=1, side=28):
    return RNG.standard_normal((n, c, side, side)).astype(np.float32)


def ids(b, t, vocab=50, low=0):
    return RNG.integers(low, vocab, size=(b, t)).astype(np.int64)


def _randomize_norms(model):
    """Random affine parameters and running statistics, so a wrong normalisation cannot pass."""
    for name, p in model.named_parameters():
        if name.endswith(("bias", "norm.weight", "ln_1.weight", "ln_2.weight", "ln_f.weight")) or "bn" in name:
            p.data[...] = RNG.standard_normal(p.shape).astype(p.data.dtype) * 0.1 + (p.data if p.data.any() else 0)
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf.data[...] = RNG.standard_normal(buf.shape) * 0.1
        elif name.endswith("running_var"):
            buf.data[...] = RNG.uniform(0.5, 1.5, buf.shape)


def test_mlp(tmp_path):
    from neural_arch.models.small import MLP

    model = MLP(hidden=(32, 16))
    check_export(tmp_path, model, [images(2)], [(images(5),), (images(1),)], ["x"], ["logits"],
                 {"x": {0: "batch"}})


def test_fashion_mnist_cnn(tmp_path):
    from neural_arch.models.small import CNN

    model = CNN(channels=(4, 8), hidden=16)
    check_export(tmp_path, model, [images(2)], [(images(3),)], ["x"], ["logits"], {"x": {0: "batch"}})


@pytest.mark.parametrize("depth", [18, 50])
def test_resnet(tmp_path, depth):
    from neural_arch.models import resnet

    model = (resnet.resnet18 if depth == 18 else resnet.resnet50)(num_classes=7)
    _randomize_norms(model)
    check_export(tmp_path, model, [images(2, 3, 32)], [(images(3, 3, 32),)], ["pixels"], ["logits"],
                 {"pixels": {0: "batch"}}, atol=2e-4, rtol=2e-4)


def test_efficientnet(tmp_path):
    """Depthwise convolutions (their own op), squeeze-excitation (SiLU, sigmoid gates), batch norm in eval."""
    from neural_arch.models.efficientnet import EfficientNet, MBConvConfig

    stages = [MBConvConfig(1, 3, 1, 8, 8, 1), MBConvConfig(4, 5, 2, 8, 16, 2)]
    model = EfficientNet(stages, num_classes=5, last_channel=32)
    _randomize_norms(model)
    check_export(tmp_path, model, [images(2, 3, 32)], [(images(3, 3, 32),)], ["pixels"], ["logits"],
                 {"pixels": {0: "batch"}})


def test_vit(tmp_path):
    from neural_arch.models.vit import ViTConfig, ViTForImageClassification

    model = ViTForImageClassification(ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                                intermediate_size=48, image_size=16, patch_size=4, num_channels=3,
                                                num_labels=5))
    _randomize_norms(model)
    check_export(tmp_path, model, [images(2, 3, 16)], [(images(4, 3, 16),)], ["pixel_values"], ["logits"],
                 {"pixel_values": {0: "batch"}})


def _clip():
    from neural_arch.models.clip import CLIPConfig, CLIPModel

    cfg = CLIPConfig(text_config={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                                      "intermediate_size": 48, "vocab_size": 99, "max_position_embeddings": 12,
                                      "eos_token_id": 98, "bos_token_id": 0, "pad_token_id": 1},
                     vision_config={"hidden_size": 24, "num_hidden_layers": 2, "num_attention_heads": 2,
                                        "intermediate_size": 40, "image_size": 16, "patch_size": 4, "num_channels": 3},
                     projection_dim=20)
    return CLIPModel(cfg)


def _clip_ids(b, t):
    x = ids(b, t, 90, low=3)
    for row in range(b):
        x[row, RNG.integers(1, t)] = 98  # the end-of-text token, whose hidden state is pooled
    return x


def test_clip_text_tower(tmp_path):
    model = Call(_clip(), lambda m, x: m.get_text_features(x))
    check_export(tmp_path, model, [_clip_ids(2, 7)], [(_clip_ids(3, 10),), (_clip_ids(1, 4),)], ["input_ids"],
                 ["text_embeds"], {"input_ids": {0: "batch", 1: "seq"}})


def test_clip_image_tower(tmp_path):
    model = Call(_clip(), lambda m, x: m.get_image_features(x))
    check_export(tmp_path, model, [images(2, 3, 16)], [(images(3, 3, 16),)], ["pixel_values"], ["image_embeds"],
                 {"pixel_values": {0: "batch"}})


def _bert():
    from neural_arch.models.bert import BertConfig, BertModel

    model = BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=48, max_position_embeddings=24, type_vocab_size=2))
    _randomize_norms(model)
    return model


def _mask(b, t):
    m = np.ones((b, t), np.int64)
    for row in range(b):
        m[row, RNG.integers(1, t):] = 0  # right padding of a different length per row
    return m


def test_bert(tmp_path):
    model = _bert()
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    check_export(tmp_path, model, [ids(2, 6), _mask(2, 6)], [(ids(3, 9), _mask(3, 9)), (ids(1, 3), _mask(1, 3))],
                 ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"], axes)


def test_sentence_encoder_mean_pooling(tmp_path):
    from neural_arch.models.sentence import SentenceEncoder

    model = SentenceEncoder(_bert(), tokenizer=None, pooling="mean", normalize=True)
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    check_export(tmp_path, model, [ids(2, 6), _mask(2, 6)], [(ids(4, 8), _mask(4, 8))],
                 ["input_ids", "attention_mask"], ["sentence_embedding"], axes)


def test_gpt2(tmp_path):
    from neural_arch.models.gpt2 import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=32, n_layer=2, n_head=4))
    _randomize_norms(model)
    logits = Call(model, lambda m, x: m(x, use_cache=False).logits)
    check_export(tmp_path, logits, [ids(2, 5)], [(ids(3, 9),), (ids(1, 2),)], ["input_ids"], ["logits"],
                 {"input_ids": {0: "batch", 1: "seq"}})


def test_modern_llama_layout(tmp_path):
    from neural_arch.models.modern import ModernConfig, ModernTransformer

    model = ModernTransformer(ModernConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                           num_attention_heads=4, num_key_value_heads=2,
                                           max_position_embeddings=64))
    _randomize_norms(model)
    logits = Call(model, lambda m, x: m(x, use_cache=False).logits)
    check_export(tmp_path, logits, [ids(2, 5)], [(ids(3, 9),), (ids(1, 20),)], ["input_ids"], ["logits"],
                 {"input_ids": {0: "batch", 1: "seq"}})


def test_gpt2_with_a_padding_mask(tmp_path):
    from neural_arch.models.gpt2 import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=32, n_layer=1, n_head=4))
    logits = Call(model, lambda m, x, mask: m(x, attention_mask=mask, use_cache=False).logits)
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    check_export(tmp_path, logits, [ids(2, 6), _mask(2, 6)], [(ids(3, 9), _mask(3, 9))],
                 ["input_ids", "attention_mask"], ["logits"], axes)


def test_clip_text_tower_with_a_padding_mask(tmp_path):
    model = Call(_clip(), lambda m, x, mask: m.get_text_features(x, mask))
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    check_export(tmp_path, model, [_clip_ids(2, 7), _mask(2, 7)], [(_clip_ids(3, 10), _mask(3, 10))],
                 ["input_ids", "attention_mask"], ["text_embeds"], axes)


def test_roberta_positions_skip_padding(tmp_path):
    from neural_arch.models.bert import RobertaConfig, RobertaModel

    model = RobertaModel(RobertaConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                       intermediate_size=48, max_position_embeddings=40, pad_token_id=1))

    def padded(b, t):
        x, m = ids(b, t, low=3), _mask(b, t)
        return np.where(m == 1, x, 1), m  # the pad id where the mask is 0

    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    check_export(tmp_path, model, list(padded(2, 6)), [padded(3, 9)], ["input_ids", "attention_mask"],
                 ["last_hidden_state", "pooler_output"], axes)
