"""torchvision ResNet-18 (BasicBlock, [2, 2, 2, 2]) with a width multiplier and a small-image stem.

Stage widths are round(w · (64, 128, 256, 512)), at least 1 channel. The stem is a 3×3 stride-1 conv
without max-pooling (the CIFAR stem of the reference code, used for 28×28 Fashion-MNIST); stem_stride 2
halves the input first (cheaper, used at CPU scales). The penultimate feature has 8·round(64·w) dims.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from claimbench.errors import ParamsError


class WideResNet18(ResNet):
    """ResNet-18 whose every stage width is scaled by `width`. `features(x)` gives the (N, d) penultimate
    features (after global average pooling), `fc` the K×d classifier with bias."""

    def __init__(self, width: float = 1.0, num_classes: int = 10, in_channels: int = 1, stem_stride: int = 1):
        if width <= 0:
            raise ParamsError(f"resnet width multiplier {width} must be > 0 (e.g. 0.25, 1).")
        if stem_stride not in (1, 2):
            raise ParamsError(f"resnet stem_stride {stem_stride} must be 1 or 2.")
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
        planes = [max(1, round(p * width)) for p in (64, 128, 256, 512)]
        self.inplanes = planes[0]
        self.conv1 = nn.Conv2d(in_channels, planes[0], 3, stride=stem_stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(BasicBlock, planes[0], 2)
        self.layer2 = self._make_layer(BasicBlock, planes[1], 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, planes[2], 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, planes[3], 2, stride=2)
        self.fc = nn.Linear(planes[3], num_classes)
        for m in self.modules():  # same init as torchvision's ResNet for the replaced layers
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def feature_dim(self) -> int:
        return self.fc.in_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, feature_dim) penultimate features."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
