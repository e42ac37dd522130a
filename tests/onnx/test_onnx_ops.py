"""Each op in the ONNX table, exported alone (float32 and, where it matters, with a dynamic batch axis)
and run by onnxruntime: equal to our op within 1e-5."""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest
from onnx_helpers import check_export

import neural_arch as na
import neural_arch.nn.functional as F
import neural_arch.ops
from neural_arch.autograd.function import Function
from neural_arch.graph import flops, op_name
from neural_arch.onnx.ops import OPS

X = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
X2 = np.random.default_rng(1).standard_normal((5, 4, 5)).astype(np.float32)
IMG = np.random.default_rng(2).standard_normal((2, 4, 6, 6)).astype(np.float32)
IMG2 = np.random.default_rng(3).standard_normal((3, 4, 6, 6)).astype(np.float32)
W = na.tensor(np.random.default_rng(4).standard_normal((5, 5)).astype(np.float32))
CONV_W = na.tensor(np.random.default_rng(5).standard_normal((6, 2, 3, 3)).astype(np.float32))
DEPTHWISE_W = na.tensor(np.random.default_rng(6).standard_normal((4, 1, 3, 3)).astype(np.float32))
DEPTHWISE_B = na.tensor(np.random.default_rng(7).standard_normal(4).astype(np.float32))

ON_SEQUENCES = {  # name -> function of a (B, 4, 5) tensor
    "sub_div_pow": lambda x: ((x - 1) / (x.abs() + 1)) ** 2,
    "neg_exp_log": lambda x: (-x).exp() + (x.abs() + 1).log(),
    "sqrt_rsqrt": lambda x: (x.abs() + 1).sqrt() + (x.abs() + 1).rsqrt(),
    "log1p_expm1": lambda x: na.log1p(x.abs()) + na.expm1(x),
    "sin_cos_tanh_sigmoid": lambda x: x.sin() * x.cos() + x.tanh() - x.sigmoid(),
    "pow_tensor": lambda x: na.pow(x.abs() + 1, x),
    "clamp": lambda x: x.clamp(-0.5, 0.7) + x.clamp(min=0.1),
    "maximum_minimum": lambda x: na.maximum(x, x * 0.5) + na.minimum(x, -x),
    "where_masked_fill": lambda x: x.masked_fill(na.tensor(np.array([True, False, True, False, False]) ), 2.0),
    "sign_floor": lambda x: na.sign(x) + na.floor(x),
    "leaky_elu_hardtanh": lambda x: F.leaky_relu(x, 0.1) + F.elu(x) + F.hardtanh(x),
    "silu_mish_softplus": lambda x: F.silu(x) + F.mish(x) + F.softplus(x) + F.softplus(x, beta=2.0),
    "hardswish_hardsigmoid_logsigmoid": lambda x: F.hardswish(x) + F.hardsigmoid(x) + F.logsigmoid(x),
    "gelu_exact_tanh": lambda x: F.gelu(x) + F.gelu(x, approximate="tanh"),
    "softmax_log_softmax": lambda x: x.softmax(1) + F.log_softmax(x, -1),
    "matmul_einsum": lambda x: x @ W + na.einsum("bij,jk->bik", x, W),
    "permute_reshape_expand": lambda x: x.permute(0, 2, 1).reshape(x.shape[0], -1, 2)[:, :1].expand(x.shape[0], 3, 2),
    "tile_flip_cat_stack": lambda x: na.cat([x.repeat(1, 2, 1), na.flip(x, [1]).repeat(1, 2, 1)], 2)
    + na.stack([x, x], 1).sum(1).repeat(1, 2, 2),
    "tril_triu_pad": lambda x: na.tril(x, 1) + na.triu(x) + F.pad(x, (1, 0))[..., 1:],
    "index_basic": lambda x: x[:, 1:3, ::2] * x[:, -1:, 0:3] + x[..., None, 1][:, 1:3],
    "gather_index_select": lambda x: na.gather(x, 2, na.tensor(np.zeros(x.shape, np.int64))) + na.index_select(
        x, 1, na.tensor(np.array([3, 0, 1, 2]))),
    "cumsum_reductions": lambda x: x.cumsum(1) + x.sum(1, keepdim=True) + x.mean(-1, keepdim=True)
    + x.amax(1, keepdim=True) + x.var(-1, keepdim=True) + na.logsumexp(x, -1, keepdim=True)
    + x.max(dim=1, keepdim=True)[0] + x.norm(dim=-1, keepdim=True) + (x.abs() + 0.5).prod(-1, keepdim=True),
    "layer_norm_float_paths": lambda x: F.layer_norm(x, (5,)) + F.layer_norm(x, (4, 5)),
    "rms_norm": lambda x: F.rms_norm(x, (5,), eps=1e-6),
    "normalize": lambda x: F.normalize(x, dim=-1),
}

ON_IMAGES = {  # name -> function of a (B, 4, 6, 6) tensor
    "conv_groups_stride": lambda x: F.conv2d(x, CONV_W, stride=2, padding=1, groups=2),
    "conv_dilation": lambda x: F.conv2d(x, CONV_W, padding=2, dilation=2, groups=2),
    "depthwise_conv": lambda x: F.conv2d(x, DEPTHWISE_W, DEPTHWISE_B, stride=2, padding=1, groups=4)
    + F.conv2d(x, DEPTHWISE_W, padding=2, dilation=2, groups=4)[..., ::2, ::2],
    "avg_pool": lambda x: F.avg_pool2d(x, 2) + F.avg_pool2d(x, 3, stride=1, padding=1)[..., ::2, ::2][..., :3, :3],
    "adaptive_avg_pool": lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
    "group_instance_norm": lambda x: F.group_norm(x, 2) + F.instance_norm(x),
    "batch_norm_eval": lambda x: F.batch_norm(x, na.tensor(np.arange(4, dtype=np.float32)),
                                              na.tensor(np.arange(1, 5, dtype=np.float32)), training=False),
}


@pytest.mark.parametrize("name", sorted(ON_SEQUENCES))
def test_sequence_ops(tmp_path, name):
    fn = ON_SEQUENCES[name]
    check_export(tmp_path, lambda x: fn(x), [X], [(X2,), (X,)], ["x"], dynamic_axes={"x": {0: "batch"}},
                 atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(ON_IMAGES))
def test_image_ops(tmp_path, name):
    fn = ON_IMAGES[name]
    check_export(tmp_path, lambda x: fn(x), [IMG], [(IMG2,)], ["x"], dynamic_axes={"x": {0: "batch"}},
                 atol=1e-5, rtol=1e-5)


def test_float64_layer_norm(tmp_path):
    x = X.astype(np.float64)
    check_export(tmp_path, lambda t: F.layer_norm(t, (5,)), [x], [(X2.astype(np.float64),)], ["x"],
                 dynamic_axes={"x": {0: "batch"}}, atol=1e-9, rtol=1e-9)


def current_op_names() -> set:
    """The traced name (``graph.op_name``) of every Function in ``neural_arch.ops``."""
    for info in pkgutil.iter_modules(neural_arch.ops.__path__):
        importlib.import_module(f"neural_arch.ops.{info.name}")
    found, todo = set(), [Function]
    while todo:
        for cls in todo.pop().__subclasses__():
            if cls.__module__.startswith("neural_arch.ops."):
                found.add(op_name(cls))
            todo.append(cls)
    return found


def test_every_table_entry_names_a_current_op():
    """An op renamed or merged in ops/ leaves no dead entry in the ONNX table or the FLOP rules (the
    new name would have no mapping, or count 1 FLOP per element)."""
    ops = current_op_names()
    assert {"Linear", "Softmax", "LayerNorm", "Conv2d"} <= ops
    assert sorted(set(OPS) - ops) == []
    assert sorted((flops._MOVES | set(flops._PER_ELEMENT)) - ops) == []
