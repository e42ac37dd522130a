"""Mixtral against ``transformers.MixtralForCausalLM``: routing, experts on routed tokens, aux loss, checkpoints."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import neural_arch as na  # noqa: E402
from neural_arch.errors import ConfigError  # noqa: E402
from neural_arch.models.hf import load_safetensors_dir  # noqa: E402
from neural_arch.models.mixtral import Expert, MixtralConfig, MixtralForCausalLM, load_balancing_loss  # noqa: E402

V, T = 97, 10
TOL = dict(rtol=1e-4, atol=2e-5)


def _hf_config(**kw):
    base = dict(vocab_size=V, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=64,
                rms_norm_eps=1e-5, router_aux_loss_coef=0.02, bos_token_id=0, eos_token_id=0)
    return transformers.MixtralConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(ours, reference, directory): a random Mixtral saved by transformers, loaded by us."""
    path = tmp_path_factory.mktemp("hf_mixtral")
    torch.manual_seed(0)
    ref = transformers.MixtralForCausalLM(_hf_config()).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
            if "gate.weight" in name:  # a confident router: no near-ties in the top-k choice
                p.mul_(20.0)
    ref.save_pretrained(path)
    return MixtralForCausalLM.from_pretrained(path), ref, path


def _ids(B=3, seed=0):
    return np.random.default_rng(seed).integers(0, V, size=(B, T)).astype(np.int64)


def test_checkpoint_uses_published_mixtral_names(pair):
    ours, _, path = pair
    names = set(load_safetensors_dir(path))
    assert "model.layers.1.block_sparse_moe.experts.3.w2.weight" in names
    assert names == set(ours.state_dict())
    assert ours.config.num_local_experts == 4 and ours.config.router_aux_loss_coef == 0.02
    from neural_arch.models import AutoModelForCausalLM

    assert isinstance(AutoModelForCausalLM.from_pretrained(path), MixtralForCausalLM)


def test_logits_hidden_states_and_router_logits_match(pair):
    ours, ref, _ = pair
    ids = _ids()
    out = ours(ids, output_hidden_states=True, output_router_logits=True)
    with torch.no_grad():
        expect = ref(torch.from_numpy(ids), output_hidden_states=True, output_router_logits=True)
    np.testing.assert_allclose(out.logits.detach().numpy(), expect.logits.numpy(), **TOL)
    for h, e in zip(out.hidden_states, expect.hidden_states):
        np.testing.assert_allclose(h.detach().numpy(), e.numpy(), **TOL)
    for r, e in zip(out.router_logits, expect.router_logits):
        np.testing.assert_allclose(r.detach().numpy(), e.numpy(), **TOL)
    np.testing.assert_allclose(out.aux_loss.item(), expect.aux_loss.item(), rtol=1e-5)


def test_left_padded_batch_matches_transformers_on_real_tokens(pair):
    ours, ref, _ = pair
    ids = _ids()
    mask = np.ones((3, T), np.int64)
    mask[1, :3] = 0
    mask[2, :7] = 0
    out = ours(ids, attention_mask=mask, output_router_logits=True)
    with torch.no_grad():
        expect = ref(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), output_router_logits=True)
    real = mask.astype(bool)
    np.testing.assert_allclose(out.logits.detach().numpy()[real], expect.logits.numpy()[real], **TOL)
    np.testing.assert_allclose(out.aux_loss.item(), expect.aux_loss.item(), rtol=1e-5)  # padding left out


def test_loss_with_aux_and_every_gradient_match(pair):
    _, _, path = pair
    ours = MixtralForCausalLM.from_pretrained(path).train()
    ref = transformers.MixtralForCausalLM.from_pretrained(path).train()
    ids = _ids(B=2, seed=1)
    out = ours(ids, labels=ids, output_router_logits=True)
    out.loss.backward()
    expect = ref(torch.from_numpy(ids), labels=torch.from_numpy(ids), output_router_logits=True)
    expect.loss.backward()
    np.testing.assert_allclose(out.loss.item(), expect.loss.item(), rtol=1e-5)
    grads = {n: p.grad for n, p in ref.named_parameters()}
    ours_grads = {n: p.grad.numpy() for n, p in ours.named_parameters()}
    for layer in range(2):  # transformers keeps the experts as stacked (E, 2H, C) / (E, C, H) tensors
        pre = f"model.layers.{layer}."
        gate_up, down = grads[pre + "mlp.experts.gate_up_proj"], grads[pre + "mlp.experts.down_proj"]
        H = gate_up.shape[1] // 2
        for e in range(4):
            moe = f"{pre}block_sparse_moe.experts.{e}."
            np.testing.assert_allclose(ours_grads[moe + "w1.weight"], gate_up[e, :H].numpy(), rtol=1e-3, atol=1e-6)
            np.testing.assert_allclose(ours_grads[moe + "w3.weight"], gate_up[e, H:].numpy(), rtol=1e-3, atol=1e-6)
            np.testing.assert_allclose(ours_grads[moe + "w2.weight"], down[e].numpy(), rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(ours_grads[pre + "block_sparse_moe.gate.weight"],
                                   grads[pre + "mlp.gate.weight"].numpy(), rtol=1e-3, atol=1e-6)
    for name, g in ours_grads.items():
        if "block_sparse_moe" not in name:
            np.testing.assert_allclose(g, grads[name].numpy(), rtol=1e-3, atol=1e-6, err_msg=name)


def test_experts_see_only_their_routed_tokens(pair):
    ours, _, _ = pair
    seen = {}
    block = ours.model.layers[0].block_sparse_moe
    originals = [Expert.forward] * len(block.experts)

    def recording(e):
        def forward(x):
            seen[e] = seen.get(e, 0) + x.shape[0]
            return originals[e](block.experts[e], x)
        return forward

    for e, expert in enumerate(block.experts):
        expert.forward = recording(e)
    try:
        ids = _ids(B=2)
        ours(ids)
    finally:
        for expert in block.experts:
            del expert.forward
    assert sum(seen.values()) == 2 * T * 2  # N tokens * top_k slots, not N * num_experts
    assert all(n < 2 * T for n in seen.values())


def test_load_balancing_loss_matches_and_ignores_padding():
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

    rng = np.random.default_rng(3)
    logits = [rng.standard_normal((12, 5)) for _ in range(3)]
    mask = np.array([[1] * 6, [1] * 4 + [0] * 2])
    for m in (None, mask):
        ours = load_balancing_loss([na.tensor(x, requires_grad=True) for x in logits], 5, 2, m)
        ref = load_balancing_loss_func(tuple(torch.from_numpy(x) for x in logits), 5, 2,
                                       None if m is None else torch.from_numpy(m))
        np.testing.assert_allclose(ours.item(), ref.item(), rtol=1e-6)


def test_save_pretrained_loads_into_transformers_and_back(tmp_path):
    na.manual_seed(4)
    model = MixtralForCausalLM(MixtralConfig(vocab_size=V, hidden_size=24, intermediate_size=32,
                                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                             num_local_experts=3, num_experts_per_tok=2)).eval()
    for name, p in model.named_parameters():
        if name.endswith("gate.weight"):
            p.data *= 50.0
    model.save_pretrained(tmp_path)
    ref = transformers.MixtralForCausalLM.from_pretrained(tmp_path).eval()
    assert ref.config.num_local_experts == 3
    ids = _ids()
    with torch.no_grad():
        expect = ref(torch.from_numpy(ids)).logits.numpy()
    np.testing.assert_allclose(model(ids).logits.detach().numpy(), expect, **TOL)
    again = MixtralForCausalLM.from_pretrained(tmp_path)
    np.testing.assert_array_equal(again(ids).logits.detach().numpy(), model(ids).logits.detach().numpy())


def test_kv_cache_generation_matches_transformers(pair):
    ours, ref, _ = pair
    prompt = _ids(B=2)[:, :5]
    cached = ours.generate(prompt, max_new_tokens=8).numpy()
    expect = ref.generate(torch.from_numpy(prompt), max_new_tokens=8, do_sample=False, pad_token_id=0,
                          eos_token_id=None).numpy()
    np.testing.assert_array_equal(cached, ours.generate(prompt, max_new_tokens=8, use_cache=False).numpy())
    np.testing.assert_array_equal(cached, expect)


def test_active_parameters_and_config_errors():
    c = MixtralConfig(vocab_size=50, hidden_size=16, intermediate_size=8, num_hidden_layers=2,
                      num_attention_heads=2, num_local_experts=4, num_experts_per_tok=1)
    model = MixtralForCausalLM(c)
    total = sum(p.numel() for p in model.parameters())
    assert model.num_active_parameters() == total - 2 * 3 * (3 * 16 * 8)
    with pytest.raises(ConfigError, match="num_experts_per_tok"):
        MixtralConfig(num_local_experts=2, num_experts_per_tok=3)
    with pytest.raises(ConfigError, match="sliding_window"):
        MixtralConfig.from_dict({"sliding_window": 4096})
