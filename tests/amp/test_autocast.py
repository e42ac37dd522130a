"""autocast's semantics (nesting, enabled=False, decorator, threads, cache, float32 master weights) and a
model's gradients under autocast against transformers' GPT-2 under torch's CPU autocast."""

import threading

import numpy as np
import pytest

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch import nn
from neural_arch.autograd import function as _function
from neural_arch.errors import DeviceError, DTypeError

rng = np.random.default_rng(0)
X = rng.normal(size=(4, 8)).astype(np.float32)


def test_default_dtype_nesting_and_enabled_false():
    lin = nn.Linear(8, 3)
    x = na.tensor(X)
    assert not na.is_autocast_enabled()
    with na.autocast("cpu"):
        assert na.is_autocast_enabled() and na.get_autocast_dtype("cpu") == na.bfloat16
        assert lin(x).dtype == na.bfloat16
        with na.autocast("cpu", dtype=na.float16):
            assert lin(x).dtype == na.float16
            with na.autocast("cpu", enabled=False):
                assert not na.is_autocast_enabled()
                assert lin(x).dtype == na.float32
            assert lin(x).dtype == na.float16
        assert lin(x).dtype == na.bfloat16
    assert not na.is_autocast_enabled() and lin(x).dtype == na.float32
    assert _function._autocast is None  # the hook is gone once no thread autocasts


def test_decorator_and_torch_module_names():
    lin = nn.Linear(8, 3)

    @na.autocast("cpu", dtype=na.float16)
    def forward(x):
        return lin(x)

    assert forward(na.tensor(X)).dtype == na.float16
    assert lin(na.tensor(X)).dtype == na.float32
    assert na.amp.autocast is na.autocast
    with na.amp.autocast("cpu"):
        assert na.amp.is_autocast_enabled()


def test_state_is_per_thread():
    seen = {}

    def other():
        seen["enabled"] = na.is_autocast_enabled()
        seen["dtype"] = nn.Linear(8, 3)(na.tensor(X)).dtype

    with na.autocast("cpu"):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen == {"enabled": False, "dtype": na.float32}


def test_float32_master_weights_get_float32_gradients():
    lin = nn.Linear(8, 3)
    x = na.tensor(X, requires_grad=True)
    with na.autocast("cpu"):
        y = F.gelu(lin(x))  # bf16 linear, gelu follows in bf16
        loss = F.mse_loss(y, na.zeros(4, 3))  # float32 list
    assert y.dtype == na.bfloat16 and loss.dtype == na.float32
    loss.backward()
    assert lin.weight.grad.dtype == lin.bias.grad.dtype == x.grad.dtype == na.float32
    # the gradient equals float32 math on the bf16-rounded operands, to bf16 precision
    ref_lin = nn.Linear(8, 3)
    ref_lin.load_state_dict(lin.state_dict())
    F.mse_loss(F.gelu(ref_lin(na.tensor(X))), na.zeros(4, 3)).backward()
    np.testing.assert_allclose(lin.weight.grad.numpy(), ref_lin.weight.grad.numpy(), rtol=0.05, atol=2e-3)


def test_cache_casts_a_parameter_once_per_region():
    w = nn.Parameter(na.tensor(rng.normal(size=(8, 8)).astype(np.float32)))
    x = na.tensor(X)
    with na.autocast("cpu"):
        a, b = x @ w, x @ w
        assert a._ctx.parents[1] is b._ctx.parents[1]  # the same bf16 copy (Cast node) of w
        with na.autocast("cpu", cache_enabled=False):
            c = x @ w
        assert c._ctx.parents[1] is not a._ctx.parents[1]
    with na.autocast("cpu"):
        d = x @ w
    assert d._ctx.parents[1] is not a._ctx.parents[1]  # the cache was cleared when the region closed
    (a.float().sum() + b.float().sum()).backward()
    x_bf16 = X.astype(na.bfloat16).astype(np.float32)  # the matmul saw x rounded to bf16
    np.testing.assert_allclose(w.grad.numpy(), 2 * np.repeat(x_bf16.sum(0)[:, None], 8, 1), rtol=1e-2)


def test_no_grad_copies_are_not_reused_with_grad():
    w = nn.Parameter(na.tensor(rng.normal(size=(8, 8)).astype(np.float32)))
    with na.autocast("cpu"):
        with na.no_grad():
            na.tensor(X) @ w
        y = na.tensor(X) @ w
    y.float().sum().backward()
    assert w.grad is not None and w.grad.dtype == na.float32


def test_unsupported_device_or_dtype_is_a_typed_error():
    with pytest.raises(DeviceError, match="device_type='cuda' is not supported"):
        na.autocast("cuda")
    with pytest.raises(DTypeError, match="use na.bfloat16 or na.float16"):
        na.autocast("cpu", dtype=na.float32)


torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def gpt_pair(tmp_path_factory):
    from neural_arch.models.gpt2 import GPT2LMHeadModel

    d = tmp_path_factory.mktemp("gpt2")
    cfg = transformers.GPT2Config(vocab_size=50, n_positions=32, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0,
                                  embd_pdrop=0, attn_pdrop=0)
    torch.manual_seed(0)
    ref = transformers.GPT2LMHeadModel(cfg)
    ref.save_pretrained(d)
    return ref, GPT2LMHeadModel.from_pretrained(d)


# bf16 keeps 8 bits of mantissa, float16 11: the same rounding points as torch, summed in another order
@pytest.mark.parametrize("name, tol", [("bfloat16", 4e-2), ("float16", 5e-3)])
def test_gpt2_gradients_under_autocast_match_torch(gpt_pair, name, tol):
    ref, ours = gpt_pair
    ids = np.random.default_rng(1).integers(0, 50, (2, 16))
    ref.zero_grad()
    ours.zero_grad()
    with torch.autocast("cpu", dtype=getattr(torch, name)):
        theirs = ref(torch.tensor(ids), labels=torch.tensor(ids))
    theirs.loss.backward()
    with na.autocast("cpu", dtype=getattr(na, name)):
        out = ours(ids, labels=ids)
    out.loss.backward()
    assert out.logits.dtype == getattr(na, name) and str(theirs.logits.dtype) == f"torch.{name}"
    assert out.loss.dtype == na.float32
    assert abs(out.loss.item() - theirs.loss.item()) < tol
    ref_grads = dict(ref.named_parameters())
    for n, p in ours.named_parameters():
        assert p.dtype == p.grad.dtype == na.float32, n
        r = ref_grads[n].grad.numpy()
        g = p.grad.numpy()
        r = r if r.shape == g.shape else r.T
        err = np.abs(g - r).max() / np.abs(r).max()
        assert err < tol, f"{n}: gradient differs from torch's by {err:.3g} of its largest element"
