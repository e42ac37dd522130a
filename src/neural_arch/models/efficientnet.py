"""EfficientNet (Tan & Le, 2019), laid out exactly as ``torchvision.models.efficientnet`` (B0-B7).

Every ``state_dict`` key equals torchvision's (``features.0.0.weight``,
``features.2.1.block.1.0.weight`` (a depthwise conv), ``...block.2.fc1.weight``
(squeeze-and-excitation), ``classifier.1.bias``), so a torchvision state
dict loads by name::

    model = efficientnet_b0(num_classes=10)
    model.load_state_dict(load_torchvision_safetensors("efficientnet_b0.safetensors"))

Data flow (B0, 224x224)::

    stem: conv 3x3/2 -> BN -> SiLU                         (N, 32, 112, 112)
    7 stages of MBConv blocks (features.1 .. features.7)    (N, 320, 7, 7)
      MBConv: 1x1 expand (x6) -> depthwise kxk/s -> SE -> 1x1 project (no activation),
              + the input (through stochastic depth) when the shape is kept
    head: conv 1x1 -> BN -> SiLU                            (N, 1280, 7, 7)
    avgpool -> flatten -> dropout -> linear                 (N, num_classes)

Compound scaling: B1-B7 multiply B0's channels by ``width_mult`` (rounded to
multiples of 8) and its blocks per stage by ``depth_mult`` (rounded up), and
are meant for larger images (``resolution``). ``efficientnet_small`` is a
narrow, shallow B0 with a stride-1 stem for 28x28 images (Fashion-MNIST).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from neural_arch import nn, ops
from neural_arch.errors import ConfigError, ShapeError, shape_str
from neural_arch.models.resnet import load_torchvision_safetensors

__all__ = [
    "SCALING",
    "EfficientNet",
    "MBConvConfig",
    "efficientnet",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "efficientnet_recipe",
    "efficientnet_small",
    "load_torchvision_safetensors",
    "stochastic_depth",
]

# (expand_ratio, kernel, stride, input_channels, out_channels, num_layers) of B0's seven stages
B0_STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
             (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]

# name: (width_mult, depth_mult, resolution, dropout), torchvision's table
SCALING = {"b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
           "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
           "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5)}


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10% down (as torchvision)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


@dataclass
class MBConvConfig:
    """One stage: ``num_layers`` MBConv blocks, the first with ``stride`` and ``input_channels``."""

    expand_ratio: float
    kernel: int
    stride: int
    input_channels: int
    out_channels: int
    num_layers: int

    @classmethod
    def scaled(cls, stage: tuple, width_mult: float, depth_mult: float) -> MBConvConfig:
        e, k, s, cin, cout, n = stage
        return cls(e, k, s, make_divisible(cin * width_mult), make_divisible(cout * width_mult),
                   math.ceil(n * depth_mult))


def stochastic_depth(x, p: float, training: bool):
    """Drop each sample's residual branch with probability p, scaling survivors by 1/(1-p) (mode "row")."""
    if not training or p == 0.0:
        return x
    keep = (ops.rand(x.shape[0], 1, 1, 1, dtype=x.dtype) >= p).to(x.dtype)
    return x * keep / (1.0 - p)


class ConvNormActivation(nn.Sequential):
    """conv (no bias) -> BatchNorm -> SiLU (or no activation): torchvision's ``Conv2dNormActivation``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, activation: bool = True,
                 bn_eps: float = 1e-5, bn_momentum: float = 0.1):
        layers = [nn.Conv2d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout, eps=bn_eps, momentum=bn_momentum)]
        if activation:
            layers.append(nn.SiLU())
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Channel attention: x * sigmoid(fc2(silu(fc1(mean over H, W of x)))), fc1/fc2 as 1x1 convs."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.SiLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))  # (N, C, 1, 1)
        return x * scale


class MBConv(nn.Module):
    """Mobile inverted bottleneck: expand -> depthwise -> SE -> project, residual when shapes allow."""

    def __init__(self, cnf: MBConvConfig, stochastic_depth_prob: float, bn: dict):
        super().__init__()
        if cnf.stride not in (1, 2):
            raise ConfigError(f"MBConv: stride must be 1 or 2, got {cnf.stride}")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        expanded = make_divisible(cnf.input_channels * cnf.expand_ratio)
        layers = []
        if expanded != cnf.input_channels:
            layers.append(ConvNormActivation(cnf.input_channels, expanded, 1, **bn))
        layers.append(ConvNormActivation(expanded, expanded, cnf.kernel, cnf.stride, groups=expanded, **bn))
        layers.append(SqueezeExcitation(expanded, max(1, cnf.input_channels // 4)))
        layers.append(ConvNormActivation(expanded, cnf.out_channels, 1, activation=False, **bn))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth_prob = stochastic_depth_prob
        self.out_channels = cnf.out_channels

    def forward(self, x):
        out = self.block(x)
        if self.use_res_connect:
            out = stochastic_depth(out, self.stochastic_depth_prob, self.training) + x
        return out


class EfficientNet(nn.Module):
    """Stem, MBConv stages, head conv, pooling and classifier, with torchvision's module tree.

    ``stages``: the MBConvConfig list (B0's, scaled); ``stochastic_depth_prob`` grows linearly
    over the blocks from 0 to this value; ``in_channels``/``stem_stride`` adapt the stem.
    """

    def __init__(self, stages: list, dropout: float = 0.2, stochastic_depth_prob: float = 0.2,
                 num_classes: int = 1000, last_channel: int | None = None, in_channels: int = 3,
                 stem_stride: int = 2, bn_eps: float = 1e-5, bn_momentum: float = 0.1):
        super().__init__()
        if not stages or not all(isinstance(s, MBConvConfig) for s in stages):
            raise ConfigError("EfficientNet: stages must be a non-empty list of MBConvConfig")
        bn = dict(bn_eps=bn_eps, bn_momentum=bn_momentum)
        layers = [ConvNormActivation(in_channels, stages[0].input_channels, 3, stem_stride, **bn)]
        total = sum(s.num_layers for s in stages)
        block_id = 0
        for cnf in stages:
            blocks = []
            for i in range(cnf.num_layers):
                block_cnf = cnf if i == 0 else MBConvConfig(cnf.expand_ratio, cnf.kernel, 1, cnf.out_channels,
                                                            cnf.out_channels, 1)
                blocks.append(MBConv(block_cnf, stochastic_depth_prob * block_id / total, bn))
                block_id += 1
            layers.append(nn.Sequential(*blocks))
        last_in = stages[-1].out_channels
        last_channel = last_channel if last_channel is not None else 4 * last_in
        layers.append(ConvNormActivation(last_in, last_channel, 1, **bn))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last_channel, num_classes))
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's: He-normal (fan_out) convs, unit/zero BN, uniform(+-1/sqrt(out)) classifier."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        if x.ndim != 4:
            raise ShapeError(f"EfficientNet: input must be (N, C, H, W), got {shape_str(x.shape)}")
        x = self.avgpool(self.features(x))  # (N, last_channel, 1, 1)
        return self.classifier(x.flatten(1))


def efficientnet_recipe(variant: str) -> tuple[list, float, dict]:
    """(stages, dropout, BatchNorm settings) of EfficientNet-B0 .. B7: B0's stages scaled by ``SCALING[variant]``."""
    if variant not in SCALING:
        raise ConfigError(f"efficientnet: variant must be one of {sorted(SCALING)}, got {variant!r}")
    width, depth, _resolution, dropout = SCALING[variant]
    stages = [MBConvConfig.scaled(s, width, depth) for s in B0_STAGES]
    big = variant in ("b5", "b6", "b7")  # torchvision builds the big ones with these BN settings
    return stages, dropout, ({"bn_eps": 1e-3, "bn_momentum": 0.01} if big else {})


def efficientnet(variant: str = "b0", num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B0 .. B7 by compound scaling of B0 (``SCALING[variant]``: width, depth, resolution)."""
    stages, dropout, bn = efficientnet_recipe(variant)
    kwargs = {**bn, **kwargs}
    return EfficientNet(stages, dropout=kwargs.pop("dropout", dropout), num_classes=num_classes, **kwargs)


def efficientnet_b0(num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B0: 7 stages, 16 MBConv blocks, 1280 head channels, 224x224."""
    return efficientnet("b0", num_classes, **kwargs)


def efficientnet_b1(num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B1: width 1.0, depth 1.1, 240x240."""
    return efficientnet("b1", num_classes, **kwargs)


def efficientnet_b2(num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B2: width 1.1, depth 1.2, 260x260."""
    return efficientnet("b2", num_classes, **kwargs)


def efficientnet_b3(num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B3: width 1.2, depth 1.4, 300x300."""
    return efficientnet("b3", num_classes, **kwargs)


def efficientnet_b4(num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B4: width 1.4, depth 1.8, 380x380."""
    return efficientnet("b4", num_classes, **kwargs)


def efficientnet_b5(num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B5: width 1.6, depth 2.2, 456x456."""
    return efficientnet("b5", num_classes, **kwargs)


def efficientnet_b6(num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B6: width 1.8, depth 2.6, 528x528."""
    return efficientnet("b6", num_classes, **kwargs)


def efficientnet_b7(num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B7: width 2.0, depth 3.1, 600x600."""
    return efficientnet("b7", num_classes, **kwargs)


def efficientnet_small(num_classes: int = 10, width_mult: float = 0.5, depth_mult: float = 0.5,
                       in_channels: int = 1, dropout: float = 0.1, stochastic_depth_prob: float = 0.1) -> EfficientNet:
    """A scaled-down B0 for 28x28 images: a stride-1 stem and the first five stages (28 -> 7 pixels)."""
    stages = [MBConvConfig.scaled(s, width_mult, depth_mult) for s in B0_STAGES[:5]]
    return EfficientNet(stages, dropout=dropout, stochastic_depth_prob=stochastic_depth_prob,
                        num_classes=num_classes, in_channels=in_channels, stem_stride=1)

