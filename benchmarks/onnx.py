"""ONNX suite: onnxruntime on our exported graphs against our eager inference and torch eager.

Workloads (inference, no gradients, float32), each at batch 1 and 32:

* GPT-2 small shape (12 layers, 768 wide, 12 heads, vocab 50257): logits for ``SEQ`` tokens.
  torch: transformers' GPT2LMHeadModel loaded from our ``save_pretrained`` (the same weights).
* ResNet-50 on 224 x 224 images. torch: the same network written below in torch.nn, our weights
  copied in by name (torchvision's names; torchvision is not a dependency).

The exported graph is checked against our eager output before timing. ``onnxruntime`` appears as an
extra column; the ratio column stays torch / ours.

    python -m benchmarks onnx [--rounds N]
    NEURAL_ARCH_BENCH_SMALL=1 python -m benchmarks onnx --rounds 1     # tiny shapes: a smoke run
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from benchmarks.harness import compare

SMALL = os.environ.get("NEURAL_ARCH_BENCH_SMALL") == "1"
SEQ = 8 if SMALL else 64
BATCHES = (1, 2) if SMALL else (1, 32)
SIDE = 32 if SMALL else 224


def _gpt2():
    from neural_arch.models import GPT2Config, GPT2LMHeadModel

    if SMALL:
        return GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=64, n_embd=32, n_layer=2, n_head=4))
    return GPT2LMHeadModel(GPT2Config())


def _resnet50():
    from neural_arch.models import resnet

    if SMALL:
        return resnet.ResNet(resnet.Bottleneck, [1, 1, 1, 1], num_classes=10, widths=(8, 16, 32, 64))
    return resnet.resnet50()


def _torch_resnet(ours):
    """torchvision's ResNet (v1.5, Bottleneck) in plain torch.nn, with our weights."""
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, inplanes, planes, stride, down):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU()
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes * 4)) if down else None

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            return self.relu(self.bn3(self.conv3(out)) + idt)

    class ResNet(nn.Module):
        def __init__(self, layers, widths, classes):
            super().__init__()
            self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            inplanes = widths[0]
            for i, (n, w) in enumerate(zip(layers, widths)):
                blocks = []
                for j in range(n):
                    stride = 2 if (i > 0 and j == 0) else 1
                    blocks.append(Bottleneck(inplanes, w, stride, j == 0))
                    inplanes = w * 4
                setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(inplanes, classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            for i in range(4):
                x = getattr(self, f"layer{i + 1}")(x)
            return self.fc(torch.flatten(self.avgpool(x), 1))

    layers = [1, 1, 1, 1] if SMALL else [3, 4, 6, 3]
    widths = (8, 16, 32, 64) if SMALL else (64, 128, 256, 512)
    model = ResNet(layers, widths, ours.fc.weight.shape[0])
    state = {k: torch.from_numpy(np.ascontiguousarray(v.data)) for k, v in ours.state_dict().items()}
    model.load_state_dict(state, strict=False)
    return model.eval()


def _session(model, example, names, axes):
    import onnxruntime as ort

    from neural_arch.onnx import export

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        export(model, (example,), path, input_names=names, output_names=["logits"], dynamic_axes=axes)
        return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def run(rounds: int = 5):
    import torch
    import transformers

    import neural_arch as na
    from neural_arch import nn

    transformers.logging.set_verbosity_error()
    na.manual_seed(0)
    results = []

    # -- GPT-2 --------------------------------------------------------------------------------------
    gpt = _gpt2().eval()

    class Logits(nn.Module):
        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, ids):
            return self.lm(ids, use_cache=False).logits

    wrapped = Logits(gpt)
    sess = _session(wrapped, na.tensor(np.zeros((2, 5), np.int64)), ["input_ids"],
                    {"input_ids": {0: "batch", 1: "seq"}})
    with tempfile.TemporaryDirectory() as tmp:
        gpt.save_pretrained(tmp)
        theirs = transformers.GPT2LMHeadModel.from_pretrained(tmp).eval()
    rng = np.random.default_rng(0)
    for b in BATCHES:
        ids = rng.integers(0, gpt.config.vocab_size, (b, SEQ)).astype(np.int64)
        ids_t = torch.from_numpy(ids)
        _check(sess.run(None, {"input_ids": ids})[0], _ours(wrapped, ids), "GPT-2")

        def ours_call(x=ids):
            with na.no_grad():
                wrapped(na.tensor(x))

        def ort_call(x=ids):
            sess.run(None, {"input_ids": x})

        def torch_call(x=ids_t):
            with torch.no_grad():
                theirs(x, use_cache=False)

        results.append(compare(f"GPT-2 {'tiny' if SMALL else 'small'} shape, logits, batch {b} x {SEQ} tokens",
                               {"neural-arch": ours_call, "torch": torch_call, "onnxruntime": ort_call},
                               rounds=rounds, warmup=1))

    # -- ResNet-50 ----------------------------------------------------------------------------------
    net = _resnet50().eval()
    sess = _session(net, na.randn(2, 3, SIDE, SIDE), ["pixels"], {"pixels": {0: "batch"}})
    tnet = _torch_resnet(net)
    for b in BATCHES:
        x = rng.standard_normal((b, 3, SIDE, SIDE)).astype(np.float32)
        x_t = torch.from_numpy(x)
        _check(sess.run(None, {"pixels": x})[0], _ours(net, x), "ResNet-50")
        with torch.no_grad():
            _check(tnet(x_t).numpy(), _ours(net, x), "ResNet-50 (torch)")

        def ours_call(x=x):
            with na.no_grad():
                net(na.tensor(x))

        def ort_call(x=x):
            sess.run(None, {"pixels": x})

        def torch_call(x=x_t):
            with torch.no_grad():
                tnet(x)

        results.append(compare(f"ResNet-50{' (tiny)' if SMALL else ''}, {SIDE}x{SIDE}, batch {b}",
                               {"neural-arch": ours_call, "torch": torch_call, "onnxruntime": ort_call},
                               rounds=rounds, warmup=1))
    return results


def _ours(model, x):
    import neural_arch as na

    with na.no_grad():
        return model(na.tensor(x)).numpy()


def _check(got, want, what):
    err = float(np.abs(got - want).max())
    if err > 1e-3 * max(1.0, float(np.abs(want).max())):
        print(f"warning: {what}: outputs differ from our eager ones by up to {err:.2e}")
