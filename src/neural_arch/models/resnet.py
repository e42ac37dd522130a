"""ResNet (He et al., 2015), laid out exactly as ``torchvision.models.resnet``.

The module tree and therefore every ``state_dict`` key equals torchvision's
(``conv1.weight``, ``bn1.running_mean``, ``layer1.0.conv1.weight``,
``layer2.0.downsample.0.weight``, ``fc.bias`` ...), so a torchvision state
dict loads by name::

    model = resnet50(num_classes=10)
    model.load_state_dict(load_torchvision_safetensors("resnet50.safetensors"))

Data flow (ImageNet stem, 224x224 input)::

    x (N, 3, 224, 224)
    conv1 7x7/2 -> bn1 -> relu -> maxpool 3x3/2      (N, 64, 56, 56)
    layer1 .. layer4 (each halves H, W except layer1) (N, 512*expansion, 7, 7)
    avgpool (adaptive, 1x1) -> flatten -> fc          (N, num_classes)

``resnet_small`` is the same network with a stem for 28x28 images
(Fashion-MNIST): a 3x3/1 conv, no max-pool, fewer and narrower stages.
"""

from __future__ import annotations

from neural_arch import nn
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.models.hf import load_safetensors_file

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50", "resnet_small",
           "load_torchvision_safetensors"]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1; no bias, a BatchNorm follows."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs and a shortcut: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample  # 1x1 conv + BN when the shape changes, else identity
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (carries the stride, as torchvision's "ResNet v1.5") -> 1x1 expand x4."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A ResNet: stem, ``len(layers)`` stages of residual blocks, global average pool, linear head.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: blocks per stage, e.g. ``[2, 2, 2, 2]`` for ResNet-18.
        num_classes: outputs of ``fc``.
        zero_init_residual: start each block's last BN at gamma = 0 (the block starts as identity).
        in_channels: image channels (3 for RGB, 1 for Fashion-MNIST).
        widths: channels of each stage before expansion; torchvision's is ``(64, 128, 256, 512)``.
        small_input: stem for small images (28x28, 32x32): a 3x3 stride-1 conv and no max-pool,
            instead of the 7x7 stride-2 conv and 3x3 stride-2 max-pool. The key names stay the same.
    """

    def __init__(self, block, layers, num_classes: int = 1000, zero_init_residual: bool = False,
                 in_channels: int = 3, widths=(64, 128, 256, 512), small_input: bool = False):
        super().__init__()
        if block not in (BasicBlock, Bottleneck):
            raise ConfigError(f"ResNet: block must be BasicBlock or Bottleneck, got {block!r}")
        if len(layers) != len(widths) or len(layers) == 0 or min(layers) < 1:
            raise ConfigError(f"ResNet: layers {list(layers)} and widths {list(widths)} must be non-empty, "
                              f"of equal length, with at least one block per stage")
        self.inplanes = widths[0]
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i, (width, blocks) in enumerate(zip(widths, layers)):
            # Stage 1 keeps the resolution; every later stage halves it in its first block.
            setattr(self, f"layer{i + 1}", self._make_layer(block, width, blocks, stride=1 if i == 0 else 2))
        self.num_stages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1] * block.expansion, num_classes)

        # torchvision's initialisation: He-normal (fan_out) convs, BN gamma 1 / beta 0.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1.0)
                nn.init.constant_(m.bias, 0.0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0.0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0.0)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            # the shortcut must match the block's output shape: a strided 1x1 conv + BN
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x):
        """The pooled feature vector ``(N, widths[-1] * expansion)`` before ``fc``."""
        if len(x.shape) != 4:
            raise ShapeError(f"ResNet: expected images (N, C, H, W), got {shape_str(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.avgpool(x).flatten(1)

    def forward(self, x):
        return self.fc(self.forward_features(x))


def resnet18(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-18, as ``torchvision.models.resnet18(num_classes=...)`` (random weights)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, **kwargs)


def resnet34(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-34, as ``torchvision.models.resnet34``."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, **kwargs)


def resnet50(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-50, as ``torchvision.models.resnet50`` (Bottleneck blocks, stride on the 3x3)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, **kwargs)


def resnet_small(num_classes: int = 10, in_channels: int = 1, widths=(32, 64, 128), layers=(1, 1, 1),
                 **kwargs) -> ResNet:
    """A small BasicBlock ResNet for 28x28 images (Fashion-MNIST): 3x3 stem, no max-pool.

    With the defaults: 28x28 -> 14x14 -> 7x7 through three stages of one
    block each, about 0.7M parameters.
    """
    return ResNet(BasicBlock, list(layers), num_classes=num_classes, in_channels=in_channels,
                  widths=tuple(widths), small_input=True, **kwargs)


def load_torchvision_safetensors(path) -> dict:
    """A torchvision ResNet state dict saved with ``safetensors.torch.save_file`` -> ``{name: ndarray}``.

    The names need no mapping (our module tree is torchvision's); pass the
    result to ``model.load_state_dict``.
    """
    return load_safetensors_file(path)
