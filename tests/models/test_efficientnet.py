"""EfficientNet against torchvision's own outputs (tests/fixtures/torchvision: spec.json + ref.npz).

torchvision cannot be installed beside our torch build, so, as for ResNet, its
outputs are stored data: the weights are rebuilt from the fixture's seeded
recipe, written as safetensors through torch, loaded by name, and the eval
logits must equal torchvision's within 1e-4. The eval logits and the small training run go through
both implementations of the depthwise conv (the ``impl`` fixture: kernel, then twin).
"""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from test_resnet import REF, SPEC, fixture_input, rebuild_state_dict

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch import optim
from neural_arch.backend import kernels
from neural_arch.errors import ConfigError, ShapeError
from neural_arch.models.efficientnet import (
    SCALING,
    efficientnet,
    efficientnet_b0,
    efficientnet_recipe,
    efficientnet_small,
    load_torchvision_safetensors,
    make_divisible,
    stochastic_depth,
)


def test_b0_state_dict_keys_shapes_and_order_equal_torchvision():
    sd = efficientnet_b0(num_classes=10).state_dict()
    expected = [(k, tuple(s)) for k, s, _ in SPEC["models"]["efficientnet_b0"]["state_dict"]]
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == expected


def _depthwise_ran(impl, before):
    """The depthwise conv ran on the implementation under test (the models are float32)."""
    ran = kernels.calls["depthwise_forward"] - before
    assert (ran > 0) == (impl == "kernel"), f"{impl}: {ran} depthwise kernel calls"


def test_b0_eval_logits_match_torchvision(tmp_path, impl):
    path = tmp_path / "efficientnet_b0.safetensors"
    save_file({k: torch.from_numpy(v) for k, v in rebuild_state_dict("efficientnet_b0").items()}, str(path))
    model = efficientnet_b0(num_classes=10)
    model.load_state_dict(load_torchvision_safetensors(path))
    model.eval()
    before = kernels.calls["depthwise_forward"]
    with na.no_grad():
        logits = model(na.tensor(fixture_input("efficientnet_b0")))
    _depthwise_ran(impl, before)
    np.testing.assert_allclose(logits.numpy(), REF["efficientnet_b0.eval_logits"], rtol=1e-4, atol=1e-4)


def test_compound_scaling_follows_torchvision():
    # torchvision's B1..B7 head widths and block counts (4 * make_divisible(320 * w), sum of ceil(n * d))
    heads = {"b0": 1280, "b1": 1280, "b2": 1408, "b3": 1536, "b4": 1792, "b5": 2048, "b6": 2304, "b7": 2560}
    blocks = {"b0": 16, "b1": 23, "b2": 23, "b3": 26, "b4": 32, "b5": 39, "b6": 45, "b7": 55}
    for name in SCALING:
        stages, dropout, bn = efficientnet_recipe(name)
        assert 4 * stages[-1].out_channels == heads[name]
        assert sum(s.num_layers for s in stages) == blocks[name]
        assert dropout == SCALING[name][3] and bn.get("bn_eps", 1e-5) == (1e-3 if name >= "b5" else 1e-5)
    model = efficientnet("b2", num_classes=3)  # the recipe becomes the module tree
    assert model.classifier[1].weight.shape == (3, heads["b2"]) and model.classifier[0].p == 0.3
    assert sum(len(stage) for stage in model.features[1:-1]) == blocks["b2"]
    assert make_divisible(32 * 1.1) == 32 and make_divisible(16 * 1.4) == 24


def test_stochastic_depth_drops_whole_samples_and_keeps_the_mean():
    na.manual_seed(0)
    x = na.ones(4000, 2, 3, 3)
    y = stochastic_depth(x, 0.25, training=True).numpy()
    per_sample = y.reshape(4000, -1)
    np.testing.assert_allclose(sorted(set(per_sample.min(1).tolist())), [0.0, 1 / 0.75], rtol=1e-6)
    assert (per_sample.min(1) == per_sample.max(1)).all()
    assert abs(y.mean() - 1.0) < 0.05
    assert stochastic_depth(x, 0.25, training=False) is x


def test_small_variant_on_28x28_trains(impl):
    na.manual_seed(0)
    before = kernels.calls["depthwise_backward"]
    model = efficientnet_small(num_classes=10, width_mult=0.25, depth_mult=0.25)
    x = na.randn(8, 1, 28, 28)
    y = na.tensor(np.arange(8) % 10)
    assert model(x).shape == (8, 10)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):  # the loss on one fixed batch must fall
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.75, losses
    assert (kernels.calls["depthwise_backward"] > before) == (impl == "kernel")


def test_errors():
    with pytest.raises(ConfigError, match="variant"):
        efficientnet("b9")
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        efficientnet_small()(na.randn(1, 28, 28))
