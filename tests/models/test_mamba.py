"""Mamba against ``transformers.MambaForCausalLM`` (its slow, pure-torch path): logits, gradients,
checkpoints both ways, and recurrent generation with a constant-size state. Logits, gradients and the
recurrent steps run on both implementations of the scan (the ``impl`` fixture: kernel, then twin)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import neural_arch as na  # noqa: E402
from neural_arch.backend import kernels  # noqa: E402
from neural_arch.errors import ConfigError  # noqa: E402
from neural_arch.models.mamba import MambaConfig, MambaForCausalLM  # noqa: E402

V, T = 67, 11
TOL = dict(rtol=1e-4, atol=2e-5)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(ours, reference, directory): a random Mamba saved by transformers, loaded by us."""
    path = tmp_path_factory.mktemp("hf_mamba")
    torch.manual_seed(0)
    cfg = transformers.MambaConfig(vocab_size=V, hidden_size=16, state_size=4, num_hidden_layers=2, expand=2,
                                   conv_kernel=3, time_step_rank=3, use_cache=True, tie_word_embeddings=True)
    ref = transformers.MambaForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "norm" in name or name.endswith(("D", "conv1d.bias")):  # non-default values, so that each matters
                p.add_(0.1 * torch.randn_like(p))
    ref.save_pretrained(path)
    return MambaForCausalLM.from_pretrained(path), transformers.MambaForCausalLM.from_pretrained(path).eval(), path


def _scan_ran(impl, before):
    """The selective scan ran on the implementation under test (the model is float32)."""
    ran = kernels.calls["scan_forward"] - before
    assert (ran > 0) == (impl == "kernel"), f"{impl}: {ran} scan kernel calls"


def _ids(B=2, seed=0, length=T):
    return np.random.default_rng(seed).integers(0, V, size=(B, length)).astype(np.int64)


def test_names_and_config(pair):
    ours, ref, path = pair
    assert set(ours.state_dict()) - {"lm_head.weight"} == set(ref.state_dict()) - {"lm_head.weight"}
    assert ours.lm_head.weight is ours.backbone.embeddings.weight
    from neural_arch.models import AutoModelForCausalLM

    assert isinstance(AutoModelForCausalLM.from_pretrained(path), MambaForCausalLM)
    assert (ours.config.time_step_rank, ours.config.intermediate_size, ours.config.conv_kernel) == (3, 32, 3)


def test_logits_and_hidden_states_match_transformers(pair, impl):
    ours, ref, _ = pair
    ids = _ids()
    before = kernels.calls["scan_forward"]
    out = ours(ids, output_hidden_states=True)
    _scan_ran(impl, before)
    with torch.no_grad():
        expect = ref(torch.from_numpy(ids), output_hidden_states=True, use_cache=False)
    np.testing.assert_allclose(out.logits.detach().numpy(), expect.logits.numpy(), **TOL)
    assert len(out.hidden_states) == len(expect.hidden_states) == 3  # each block's output, then the final norm's
    for h, e in zip(out.hidden_states, expect.hidden_states):
        np.testing.assert_allclose(h.detach().numpy(), e.numpy(), **TOL)


def test_left_padded_batch_matches_transformers_on_real_tokens(pair):
    ours, ref, _ = pair
    ids = _ids(B=3)
    mask = np.ones((3, T), np.int64)
    mask[1, :4] = 0
    mask[2, :9] = 0
    with torch.no_grad():
        expect = ref(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), use_cache=False).logits.numpy()
    got = ours(ids, attention_mask=mask).logits.detach().numpy()
    real = mask.astype(bool)
    np.testing.assert_allclose(got[real], expect[real], **TOL)
    alone = ours(ids[2:, 9:]).logits.detach().numpy()  # padding on the left changes nothing for the real tokens
    np.testing.assert_allclose(got[2, 9:], alone[0], **TOL)


def test_loss_and_gradients_match_transformers(pair, impl):
    _, _, path = pair
    ours = MambaForCausalLM.from_pretrained(path).train()
    ref = transformers.MambaForCausalLM.from_pretrained(path).train()
    ids = _ids(seed=1)
    before = kernels.calls["scan_backward"]
    loss = ours(ids, labels=ids).loss
    loss.backward()
    assert (kernels.calls["scan_backward"] > before) == (impl == "kernel")
    expect = ref(torch.from_numpy(ids), labels=torch.from_numpy(ids), use_cache=False).loss
    expect.backward()
    np.testing.assert_allclose(loss.item(), expect.item(), rtol=1e-5)
    grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        if name == "lm_head.weight":
            continue  # tied: its gradient is the embedding's
        np.testing.assert_allclose(p.grad.numpy(), grads[name].grad.numpy(), rtol=1e-3, atol=1e-6, err_msg=name)


def test_recurrent_steps_equal_full_forward_with_constant_state(pair, impl):
    ours, _, _ = pair
    ids = _ids()
    before = kernels.calls["scan_forward"]
    full = ours(ids).logits.detach().numpy()
    out = ours(ids[:, :4])
    steps, past = [out.logits.detach().numpy()], out.past_key_values
    sizes = {sum(a.size for pair_ in past for a in pair_)}
    for t in range(4, T):
        out = ours(ids[:, t:t + 1], past_key_values=past)
        past = out.past_key_values
        sizes.add(sum(a.size for pair_ in past for a in pair_))
        steps.append(out.logits.detach().numpy())
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, **TOL)
    assert len(sizes) == 1  # the state does not grow with the text
    _scan_ran(impl, before)


def test_greedy_generation_matches_transformers(pair):
    ours, ref, _ = pair
    prompt = _ids()[:, :5]
    cached = ours.generate(prompt, max_new_tokens=10).numpy()
    expect = ref.generate(torch.from_numpy(prompt), max_new_tokens=10, do_sample=False, pad_token_id=0,
                          eos_token_id=None).numpy()
    np.testing.assert_array_equal(cached, ours.generate(prompt, max_new_tokens=10, use_cache=False).numpy())
    np.testing.assert_array_equal(cached, expect)


def test_save_pretrained_loads_into_transformers(tmp_path):
    na.manual_seed(5)
    model = MambaForCausalLM(MambaConfig(vocab_size=V, hidden_size=12, state_size=3, num_hidden_layers=2,
                                         tie_word_embeddings=False)).eval()
    model.save_pretrained(tmp_path)
    ref = transformers.MambaForCausalLM.from_pretrained(tmp_path).eval()
    assert not ref.config.tie_word_embeddings
    ids = _ids()
    with torch.no_grad():
        expect = ref(torch.from_numpy(ids), use_cache=False).logits.numpy()
    np.testing.assert_allclose(model(ids).logits.detach().numpy(), expect, **TOL)
    again = MambaForCausalLM.from_pretrained(tmp_path)
    np.testing.assert_array_equal(again(ids).logits.detach().numpy(), model(ids).logits.detach().numpy())


def test_config_errors():
    with pytest.raises(ConfigError, match="hidden_act"):
        MambaConfig.from_dict({"hidden_act": "gelu"})
    with pytest.raises(ConfigError, match="conv_kernel"):
        MambaConfig(conv_kernel=0)
