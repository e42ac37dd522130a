"""conv_transpose3d / ConvTranspose3d, conv_tbc, fractional max pooling, linear_cross_entropy,
DataParallel (no GPUs) and grid_sample's mode tables: parity with torch and gradcheck."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from test_layers import check_layer, rnd

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch import nn
from neural_arch.errors import ConfigError, ShapeError
from parity import check, gradcheck, randn

CONV_T3 = [dict(), dict(stride=2, padding=1, output_padding=1),
           dict(stride=(2, 1, 2), padding=(0, 1, 1), dilation=(2, 1, 1), groups=2)]


@pytest.mark.parametrize("kw", CONV_T3, ids=str)
def test_conv_transpose3d(kw):
    g = kw.get("groups", 1)
    inputs = [randn(2, 4, 3, 3, 2, seed=1), randn(4, 2, 2, 2, 3, seed=2), randn(2 * g, seed=3)]
    check(lambda x, w, b: F.conv_transpose3d(x, w, b, **kw), inputs,
          torch_fn=lambda x, w, b: TF.conv_transpose3d(x, w, b, **kw))


def test_conv_transpose3d_gradcheck_and_module():
    assert gradcheck(lambda x, w: F.conv_transpose3d(x, w, stride=2, padding=1, output_padding=1),
                     [randn(1, 2, 2, 2, 2, seed=4), randn(2, 1, 2, 2, 2, seed=5)])
    check_layer(lambda: nn.ConvTranspose3d(4, 6, 3, stride=2, padding=1, groups=2),
                lambda: torch.nn.ConvTranspose3d(4, 6, 3, stride=2, padding=1, groups=2), [rnd(2, 4, 2, 3, 2)])
    lazy = nn.LazyConvTranspose3d(3, 2)
    lazy(na.zeros(1, 5, 2, 2, 2))
    assert type(lazy) is nn.ConvTranspose3d and lazy.weight.shape == (5, 3, 2, 2, 2)


def test_conv_tbc():
    check(lambda x, w, b: F.conv_tbc(x, w, b, 1), [randn(7, 2, 3, seed=6), randn(3, 3, 4, seed=7), randn(4, seed=8)],
          torch_fn=lambda x, w, b: torch.conv_tbc(x, w, b, 1))
    assert gradcheck(lambda x, w, b: F.conv_tbc(x, w, b), [randn(5, 2, 2, seed=9), randn(2, 2, 3, seed=10),
                                                          randn(3, seed=11)])


@pytest.mark.parametrize("nd,kernel,out", [(2, 2, (4, 3)), (2, (3, 2), (5, 4)), (3, (2, 3, 2), (5, 4, 3))])
def test_fractional_max_pool(nd, kernel, out):
    x = randn(2, 3, 9, 8, seed=12) if nd == 2 else randn(2, 3, 9, 8, 7, seed=12)
    samples = np.random.default_rng(13).random((2, 3, nd))
    name = f"fractional_max_pool{nd}d"

    def ours(t):
        return getattr(F, name)(t, kernel, out, _random_samples=samples.astype(t.data.dtype))

    def ref(t):
        return getattr(TF, name)(t, kernel, out, _random_samples=torch.tensor(samples, dtype=t.dtype))

    check(ours, [x], torch_fn=ref)
    y, i = getattr(F, f"{name}_with_indices")(na.tensor(x), kernel, out, _random_samples=samples)
    yt, it = getattr(TF, f"{name}_with_indices")(torch.tensor(x), kernel, out, _random_samples=torch.tensor(samples))
    np.testing.assert_array_equal(i.numpy(), it.numpy())
    module = getattr(nn, f"FractionalMaxPool{nd}d")(kernel, output_ratio=0.5)
    assert module(na.tensor(x)).shape[2:] == tuple(int(n * 0.5) for n in x.shape[2:])
    with pytest.raises(ShapeError, match="too large"):
        getattr(F, name)(na.tensor(x), 4, tuple(n for n in x.shape[2:]))


def test_linear_cross_entropy_and_module():
    target = np.array([0, 3, 1, 4])
    check(lambda x, w, b: F.linear_cross_entropy(x, w, na.tensor(target), linear_bias=b, label_smoothing=0.1),
          [randn(4, 6, seed=14), randn(5, 6, seed=15), randn(5, seed=16)],
          torch_fn=lambda x, w, b: TF.linear_cross_entropy(x, w, torch.tensor(target), linear_bias=b,
                                                           label_smoothing=0.1))
    check_layer(lambda: nn.LinearCrossEntropyLoss(6, 5, bias=True, reduction="sum"),
                lambda: torch.nn.LinearCrossEntropyLoss(6, 5, bias=True, reduction="sum"),
                [rnd(4, 6), target], call=lambda m, x, t: m(x, t))
    with pytest.raises(ConfigError, match="out_features"):
        nn.LinearCrossEntropyLoss(6, 5, out_features=(2,))


def test_data_parallel_without_gpus_runs_the_module():
    inner = nn.Linear(3, 2)
    dp = nn.DataParallel(inner)
    x = na.tensor(randn(4, 3).astype(np.float32))
    np.testing.assert_array_equal(dp(x).detach().numpy(), inner(x).detach().numpy())
    ref = torch.nn.DataParallel(torch.nn.Linear(3, 2))
    assert list(dp.state_dict()) == list(ref.state_dict())


def test_grid_sample_mode_tables_match_torch():
    assert F.GRID_SAMPLE_INTERPOLATION_MODES == TF.GRID_SAMPLE_INTERPOLATION_MODES
    assert F.GRID_SAMPLE_PADDING_MODES == TF.GRID_SAMPLE_PADDING_MODES


@pytest.mark.parametrize("kw", [dict(), dict(add_bias_kv=True, add_zero_attn=True), dict(kdim=3, vdim=5)], ids=str)
def test_multi_head_attention_forward(kw):
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(8, 2, **kw).double()
    sep = "kdim" in kw
    q, k, v = rnd(4, 2, 8), rnd(5, 2, kw.get("kdim", 8), seed=2), rnd(5, 2, kw.get("vdim", 8), seed=3)
    params = {n: p.detach().numpy() for n, p in ref.named_parameters()}
    names = ["in_proj_bias", "bias_k", "bias_v", "out_proj.weight", "out_proj.bias"] + (
        ["q_proj_weight", "k_proj_weight", "v_proj_weight"] if sep else ["in_proj_weight"])
    floats = [q, k, v] + [params[n] for n in names if n in params]
    kpm = np.zeros((2, 5), bool)
    kpm[1, 4] = True

    def call(lib, fn, tensor):
        def run(q, k, v, *ps):
            p = dict(zip([n for n in names if n in params], ps))
            return fn(q, k, v, 8, 2, p.get("in_proj_weight"), p["in_proj_bias"], p.get("bias_k"), p.get("bias_v"),
                      kw.get("add_zero_attn", False), 0.0, p["out_proj.weight"], p["out_proj.bias"],
                      key_padding_mask=tensor(kpm), use_separate_proj_weight=sep, q_proj_weight=p.get("q_proj_weight"),
                      k_proj_weight=p.get("k_proj_weight"), v_proj_weight=p.get("v_proj_weight"))
        return run

    check(call(na, F.multi_head_attention_forward, na.tensor), floats,
          torch_fn=call(torch, TF.multi_head_attention_forward, torch.tensor))
