"""``gradient_checkpointing_enable()`` on GPT-2, BERT, RoBERTa, the modern transformer and ViT: in float64
with dropout on, the loss and every gradient equal those without checkpointing bit for bit; the graph
keeps one node per block instead of the blocks' ops; eval and generation run as without it."""

from pathlib import Path

import numpy as np
import pytest

import neural_arch as na
from neural_arch.autograd.checkpoint import CheckpointNode
from neural_arch.autograd.engine import topological_order
from neural_arch.models.bert import BertConfig, BertForMaskedLM, RobertaConfig, RobertaForMaskedLM
from neural_arch.models.gpt2 import GPT2Config, GPT2LMHeadModel
from neural_arch.models.modern import ModernConfig, ModernTransformer
from neural_arch.models.vit import ViTConfig, ViTForImageClassification

V, B, T, LAYERS = 31, 2, 6, 3
IDS = np.random.default_rng(0).integers(3, V, size=(B, T)).astype(np.int64)


def _gpt2():
    return GPT2LMHeadModel(GPT2Config(vocab_size=V, n_positions=16, n_embd=16, n_layer=LAYERS, n_head=2,
                                      resid_pdrop=0.2, embd_pdrop=0.1, attn_pdrop=0.2))


def _modern():
    return ModernTransformer(ModernConfig(vocab_size=V, hidden_size=16, intermediate_size=24, num_hidden_layers=LAYERS,
                                          num_attention_heads=4, num_key_value_heads=2, attention_dropout=0.2))


def _bert_config(cls):
    return cls(vocab_size=V, hidden_size=16, num_hidden_layers=LAYERS, num_attention_heads=2, intermediate_size=24,
               max_position_embeddings=16, hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2)


def _lm_loss(model):
    return model(IDS, labels=IDS).loss


def _vit_loss(model):
    pixels = na.tensor(np.random.default_rng(1).standard_normal((B, 3, 8, 8)))
    return model(pixels, labels=na.tensor(np.array([0, 2]))).loss


FAMILIES = {
    "gpt2": (_gpt2, _lm_loss),
    "modern": (_modern, _lm_loss),
    "bert": (lambda: BertForMaskedLM(_bert_config(BertConfig)), _lm_loss),
    "roberta": (lambda: RobertaForMaskedLM(_bert_config(RobertaConfig)), _lm_loss),
    "vit": (lambda: ViTForImageClassification(ViTConfig(
        hidden_size=16, num_hidden_layers=LAYERS, num_attention_heads=2, intermediate_size=24, image_size=8,
        patch_size=4, num_labels=3, hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2)), _vit_loss),
}


def _step(model, loss_fn):
    model.zero_grad()
    na.manual_seed(123)  # the same dropout masks in both runs
    loss = loss_fn(model)
    nodes = topological_order(loss._ctx)
    loss.backward()
    return loss.item(), {n: p.grad.numpy().copy() for n, p in model.named_parameters()}, nodes


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_gradients_equal_without_checkpointing_bit_for_bit(family):
    build, loss_fn = FAMILIES[family]
    na.manual_seed(0)
    model = build().double().train()
    assert not model.is_gradient_checkpointing
    loss, grads, nodes = _step(model, loss_fn)
    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing
    loss_ck, grads_ck, nodes_ck = _step(model, loss_fn)
    assert loss_ck == loss
    for name, g in grads.items():
        np.testing.assert_array_equal(grads_ck[name], g, err_msg=name)
    assert sum(isinstance(n, CheckpointNode) for n in nodes_ck) == LAYERS
    assert len(nodes_ck) < len(nodes) - LAYERS * 10  # each block's ops replaced by one node
    model.gradient_checkpointing_disable()
    assert not model.is_gradient_checkpointing
    assert not any(isinstance(n, CheckpointNode) for n in _step(model, loss_fn)[2])


@pytest.mark.parametrize("family", ["gpt2", "modern"])
def test_eval_and_generation_do_not_checkpoint(family):
    build, _ = FAMILIES[family]
    na.manual_seed(0)
    model = build()
    model.gradient_checkpointing_enable()
    model.eval()
    out = model(IDS).logits
    assert not any(isinstance(n, CheckpointNode) for n in topological_order(out._ctx))
    plain = build()
    plain.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(model.generate(IDS[:, :3], max_new_tokens=4).numpy(),
                                  plain.eval().generate(IDS[:, :3], max_new_tokens=4).numpy())


def test_checkpoint_kwargs_reach_checkpoint():
    na.manual_seed(0)
    model = _gpt2().double().train()
    _, grads, _ = _step(model, _lm_loss)
    model.gradient_checkpointing_enable({"preserve_rng_state": False})  # other dropout masks in backward
    _, grads_ck, _ = _step(model, _lm_loss)
    assert not all(np.array_equal(grads_ck[n], g) for n, g in grads.items())


def test_config_switch_enables_it_and_a_model_without_it_is_a_config_error():
    from neural_arch.cli.build import build_run
    from neural_arch.config import load_config
    from neural_arch.errors import ConfigError

    gpt = Path(__file__).resolve().parents[2] / "configs" / "gpt_shakespeare.yaml"
    small = ["model.kwargs.n_layer=1", "model.kwargs.n_embd=16", "model.kwargs.n_head=2", "data.val_windows=8",
             "data.prefetch=0", "train.max_steps=2"]
    run = build_run(load_config(gpt, small + ["train.gradient_checkpointing=true"]))
    assert run.model.lm.is_gradient_checkpointing
    assert not build_run(load_config(gpt, small)).model.lm.is_gradient_checkpointing
    with pytest.raises(ConfigError, match="gradient_checkpointing"):
        build_run(load_config(gpt, small + [
            "model.name=char_mlp", "model.kwargs={}", "train.gradient_checkpointing=true"]))


NO_DROPOUT = {
    "gpt2": lambda: GPT2LMHeadModel(GPT2Config(vocab_size=V, n_positions=16, n_embd=16, n_layer=LAYERS, n_head=2,
                                               resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)),
    "modern": lambda: ModernTransformer(ModernConfig(vocab_size=V, hidden_size=16, intermediate_size=24,
                                                     num_hidden_layers=LAYERS, num_attention_heads=4,
                                                     num_key_value_heads=2, attention_dropout=0.0)),
}


@pytest.mark.parametrize("family", sorted(NO_DROPOUT))
def test_without_dropout_the_recomputation_skips_the_last_product_bit_for_bit(family):
    """With no dropout after it, a block's output product is read by nothing in backward: the recomputation
    skips it (``autograd/checkpoint.py``), and the gradients stay those without checkpointing, bit for bit."""
    na.manual_seed(0)
    model = NO_DROPOUT[family]().double().train()
    loss, grads, _ = _step(model, _lm_loss)
    model.gradient_checkpointing_enable()
    loss_ck, grads_ck, nodes_ck = _step(model, _lm_loss)
    assert loss_ck == loss
    for name, g in grads.items():
        np.testing.assert_array_equal(grads_ck[name], g, err_msg=name)
    for node in (n for n in nodes_ck if isinstance(n, CheckpointNode)):
        classes, stand_ins = node.plan
        assert any(classes[k].__name__ in ("MatMul", "Linear") for k in stand_ins)
