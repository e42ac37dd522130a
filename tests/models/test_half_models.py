"""Half-precision models: ``Module.to(dtype)`` / ``.half()`` / ``.bfloat16()``, ``from_pretrained(dtype=)``
reading bfloat16 safetensors as stored, and greedy generation in bfloat16 against float32."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import neural_arch as na  # noqa: E402
from neural_arch.models.gpt2 import GPT2Config, GPT2LMHeadModel  # noqa: E402
from neural_arch.models.hf import load_safetensors_dir  # noqa: E402

V = 97
PROMPTS = np.random.default_rng(0).integers(0, V, size=(3, 5)).astype(np.int64)


@pytest.fixture(scope="module")
def hf_bf16_dir(tmp_path_factory):
    """A small random GPT-2 saved by transformers in bfloat16 (2 layers, 4 heads, 64 wide)."""
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=V, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                                  bos_token_id=0, eos_token_id=0)
    ref = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # larger weights than the default init: logits far enough apart to mean something
        for p in ref.parameters():
            p.mul_(3.0 if p.ndim == 2 else 1.0)
    path = tmp_path_factory.mktemp("hf_gpt2_bf16")
    ref.to(torch.bfloat16).save_pretrained(path)
    return path


def _param_bytes(model) -> int:
    return sum(p.data.nbytes for p in model.parameters())


def test_dtype_methods_convert_every_floating_parameter_in_place():
    model = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_positions=32, n_embd=32, n_layer=2, n_head=4))
    params = list(model.parameters())
    full = _param_bytes(model)
    assert model.bfloat16() is model
    assert {p.dtype for p in model.parameters()} == {na.bfloat16}
    assert _param_bytes(model) * 2 == full  # half the parameter bytes of float32
    assert list(model.parameters()) == params  # the same Parameter objects: an optimizer stays valid
    assert {p.dtype for p in model.half().parameters()} == {na.float16}
    assert {p.dtype for p in model.double().parameters()} == {na.float64}
    assert {p.dtype for p in model.to(na.bfloat16).parameters()} == {na.bfloat16}
    assert {p.dtype for p in model.float().parameters()} == {na.float32}
    with pytest.raises(TypeError, match="floating point"):
        model.to(na.int64)


def test_from_pretrained_reads_bfloat16_as_stored(hf_bf16_dir):
    arrays = load_safetensors_dir(hf_bf16_dir)
    assert {a.dtype for a in arrays.values()} == {na.bfloat16}  # no upcast on reading
    ours = GPT2LMHeadModel.from_pretrained(hf_bf16_dir, dtype=na.bfloat16)
    assert {p.dtype for p in ours.parameters()} == {na.bfloat16}
    w = ours.transformer.h[0].mlp.c_fc.weight.data
    np.testing.assert_array_equal(w.view(np.uint16), arrays["transformer.h.0.mlp.c_fc.weight"].view(np.uint16))


def test_bfloat16_logits_match_transformers_bfloat16(hf_bf16_dir):
    ours = GPT2LMHeadModel.from_pretrained(hf_bf16_dir, dtype=na.bfloat16)
    ref = transformers.GPT2LMHeadModel.from_pretrained(hf_bf16_dir, dtype=torch.bfloat16).eval()
    exact = transformers.GPT2LMHeadModel.from_pretrained(hf_bf16_dir, dtype=torch.float64).eval()
    with torch.no_grad():
        theirs = ref(torch.from_numpy(PROMPTS)).logits.float().numpy()
        truth = exact(torch.from_numpy(PROMPTS)).logits.numpy()
    logits = ours(PROMPTS).logits
    assert logits.dtype == na.bfloat16
    got = logits.detach().numpy().astype(np.float64)
    # both are bfloat16 computations of the same float64 truth: ours is no further from it than torch's
    scale = np.abs(truth).max()
    ours_err, torch_err = np.abs(got - truth).max() / scale, np.abs(theirs - truth).max() / scale
    assert ours_err <= max(1.5 * torch_err, 2 ** -8), (ours_err, torch_err)


def test_greedy_generation_bfloat16_against_float32(hf_bf16_dir):
    """Same tokens as float32 on the test prompts; where a prompt's tokens diverge, it is at a near tie
    of float32's two best logits (closer than bfloat16's resolution of the logits), never elsewhere."""
    f32 = GPT2LMHeadModel.from_pretrained(hf_bf16_dir)  # the same bfloat16 weights, widened exactly
    bf16 = GPT2LMHeadModel.from_pretrained(hf_bf16_dir, dtype=na.bfloat16)
    n = 12
    want = f32.generate(PROMPTS, max_new_tokens=n).numpy()
    got = bf16.generate(PROMPTS, max_new_tokens=n).numpy()
    for row in range(len(PROMPTS)):
        differ = np.flatnonzero(want[row] != got[row])
        if differ.size == 0:
            continue
        k = differ[0]
        logits = f32(want[row:row + 1, :k]).logits.detach().numpy()[0, -1].astype(np.float64)
        margin = logits[want[row, k]] - logits[got[row, k]]
        assert 0 <= margin <= 2 ** -6 * np.abs(logits).max(), (row, k, margin)
