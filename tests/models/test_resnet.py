"""ResNet against torchvision's own outputs (tests/fixtures/torchvision: spec.json + ref.npz).

torchvision cannot be installed beside our torch build, so its outputs are
stored data: the weights are rebuilt here from the fixture's seeded NumPy
recipe, written as a safetensors file through torch (as a torchvision user
would save a state dict), loaded by name into our model, and the eval-mode
logits, train-mode logits, conv1 gradient and bn1 running statistics must
match torchvision's.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch import optim
from neural_arch.errors import ConfigError, ShapeError
from neural_arch.models.resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    load_torchvision_safetensors,
    resnet18,
    resnet34,
    resnet50,
    resnet_small,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "torchvision"
SPEC = json.loads((FIXTURES / "spec.json").read_text())
REF = np.load(FIXTURES / "ref.npz")


def rebuild_state_dict(name: str) -> dict:
    """The fixture's recipe, step by step: one draw per tensor, in torchvision's key order."""
    spec = SPEC["models"][name]
    rng = np.random.default_rng(spec["seed"])
    out = {}
    for key, shape, _dtype in spec["state_dict"]:
        shape = tuple(shape)
        if key.endswith("num_batches_tracked"):
            out[key] = np.array(0, dtype=np.int64)
            continue
        if key.endswith("running_var"):
            arr = rng.uniform(0.5, 1.5, shape)
        elif key.endswith("running_mean"):
            arr = rng.normal(0, 0.1, shape)
        elif len(shape) == 1 and key.endswith("weight"):
            arr = 0.5 + rng.normal(0, 0.05, shape)
        elif len(shape) == 1 and key.endswith("bias"):
            arr = rng.normal(0, 0.1, shape)
        else:
            arr = rng.normal(0, 1, shape) * np.sqrt(1 / np.prod(shape[1:]))
        out[key] = arr.astype(np.float32)
    return out


def fixture_input(name: str) -> np.ndarray:
    spec = SPEC["models"][name]
    return np.random.default_rng(spec["input_seed"]).standard_normal(spec["input_shape"]).astype(np.float32)


@pytest.fixture(scope="module", params=["resnet18", pytest.param("resnet50", marks=pytest.mark.slow)])
def loaded(request, tmp_path_factory):
    """(name, model) with torchvision's weights, loaded from a safetensors file written by torch."""
    name = request.param
    path = tmp_path_factory.mktemp(name) / f"{name}.safetensors"
    save_file({k: torch.from_numpy(v) for k, v in rebuild_state_dict(name).items()}, str(path))
    model = {"resnet18": resnet18, "resnet50": resnet50}[name](num_classes=10)
    model.load_state_dict(load_torchvision_safetensors(path))
    return name, model


@pytest.mark.parametrize("name,ctor", [("resnet18", resnet18), ("resnet50", resnet50)])
def test_state_dict_keys_shapes_and_order_equal_torchvision(name, ctor):
    sd = ctor(num_classes=10).state_dict()
    expected = [(k, tuple(s)) for k, s, _ in SPEC["models"][name]["state_dict"]]
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == expected
    assert sd["bn1.num_batches_tracked"].dtype == na.int64


def test_eval_logits_match_torchvision(loaded):
    name, model = loaded
    model.eval()
    with na.no_grad():
        logits = model(na.tensor(fixture_input(name)))
    np.testing.assert_allclose(logits.detach().numpy(), REF[f"{name}.eval_logits"], rtol=1e-4, atol=1e-4)


def test_train_forward_backward_and_running_stats_match_torchvision(loaded):
    name, model = loaded
    model.load_state_dict({k: na.tensor(v) for k, v in rebuild_state_dict(name).items()})  # fresh stats
    model.train()
    model.zero_grad()
    logits = model(na.tensor(fixture_input(name)))
    # Train-mode float32 logits carry float32's rounding through 53 batch norms: torchvision's own are
    # 8e-5 from the float64 result (ours 9e-5 with the kernels, 1e-4 with NEURAL_ARCH_JIT=0), so the
    # two float32 results may differ by the sum of those; ResNet-18's by less than 1e-5.
    atol = 2e-4 if name == "resnet50" else 1e-4
    np.testing.assert_allclose(logits.detach().numpy(), REF[f"{name}.train_logits"], rtol=1e-4, atol=atol)
    logits.sum().backward()
    grad = model.conv1.weight.grad.numpy()
    ref = REF[f"{name}.train_conv1_grad"]
    # NOTE: ResNet-50's conv1 gradient of sum(train logits) is ill-conditioned: train-mode BN makes
    # the sum nearly independent of each BN input, so the gradient is what survives large
    # cancellations. Our float32 and float64 gradients differ by 0.3% of the largest entry, and our
    # float64 one differs from torchvision's float32 reference by 1.4%; ResNet-18's agree to 1e-5.
    # So ResNet-50 is held to 3% of the largest entry plus direction (cosine), ResNet-18 to 1e-4.
    scale = np.abs(ref).max()
    tol = {"resnet18": 1e-4, "resnet50": 3e-2}[name]
    assert np.abs(grad - ref).max() <= tol * scale, np.abs(grad - ref).max() / scale
    g64, r64 = grad.ravel().astype(np.float64), ref.ravel().astype(np.float64)
    cosine = (g64 @ r64) / (np.linalg.norm(g64) * np.linalg.norm(r64))
    assert cosine > 1 - {"resnet18": 1e-8, "resnet50": 5e-4}[name]
    np.testing.assert_allclose(model.bn1.running_mean.detach().numpy(), REF[f"{name}.bn1_running_mean_after"],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.bn1.running_var.detach().numpy(), REF[f"{name}.bn1_running_var_after"],
                               rtol=1e-5, atol=1e-6)
    assert int(model.bn1.num_batches_tracked.item()) == 1


def test_resnet34_layout():
    model = resnet34(num_classes=7)
    keys = list(model.state_dict())
    assert sum(k.endswith("conv1.weight") for k in keys) == 1 + 3 + 4 + 6 + 3  # stem + one per block
    assert "layer2.0.downsample.0.weight" in keys and "layer1.0.downsample.0.weight" not in keys
    assert model.fc.weight.shape == (7, 512)
    assert isinstance(model.layer4[2], BasicBlock)


def test_small_resnet_on_28x28_trains():
    na.manual_seed(0)
    model = resnet_small(num_classes=10, widths=(8, 16), layers=(1, 1))
    assert "layer2.0.downsample.1.running_var" in model.state_dict()
    x = na.randn(8, 1, 28, 28)
    y = na.tensor(np.arange(8) % 10)
    assert model(x).shape == (8, 10)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):  # the loss on one fixed batch must fall
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.75, losses


def test_zero_init_residual_and_init_statistics():
    model = resnet18(num_classes=10, zero_init_residual=True)
    assert np.all(model.layer1[0].bn2.weight.detach().numpy() == 0)
    # He-normal, fan_out: std = sqrt(2 / (out_channels * k * k))
    w = model.layer3[0].conv2.weight.detach().numpy()
    assert abs(w.std() - np.sqrt(2 / (256 * 9))) < 0.05 * np.sqrt(2 / (256 * 9))
    assert isinstance(resnet50().layer1[0], Bottleneck)


def test_errors():
    with pytest.raises(ConfigError, match="block"):
        ResNet(object, [1])
    with pytest.raises(ConfigError, match="layers"):
        ResNet(BasicBlock, [1, 1], widths=(8,))
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        resnet_small(widths=(4,), layers=(1,))(na.randn(1, 28, 28))
