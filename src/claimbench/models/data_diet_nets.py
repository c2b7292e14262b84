"""Networks for the data-diet (EL2N pruning) claim: a fast BN-CNN for CPU scales and the paper's
low-resolution ResNet-18 (3×3 stride-1 stem, no max-pool), adapted to 1-channel 28×28 images.

Both take x: (N, C, H, W) float and return logits (N, num_classes).
"""

from __future__ import annotations

import torchvision
from torch import nn

from claimbench.errors import ParamsError

MODELS = ("fast_cnn", "resnet18_lowres")


def conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU())


class FastCNN(nn.Module):
    """Two stride-2 conv-BN-ReLU layers at widths (w, 2w) — 28×28 → 14×14 → 7×7 — then a linear head on
    the flattened (2w, 7, 7) map. w=16: ~20k parameters, ~0.5 MMAC per 28×28 image (CPU-friendly)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16, image_size: int = 28):
        super().__init__()
        side = (image_size + 3) // 4
        self.features = nn.Sequential(
            conv_bn(in_channels, width, stride=2), conv_bn(width, 2 * width, stride=2), nn.Flatten(),
        )
        self.head = nn.Linear(2 * width * side * side, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


def resnet18_lowres(in_channels: int = 1, num_classes: int = 10, width: int = 64) -> nn.Module:
    """ResNet-18 v1 with the CIFAR stem of data_diet/models.py (3×3 stride 1, no max-pool).
    width must be 64 (the torchvision block widths); it is accepted only for a uniform signature."""
    if width != 64:
        raise ParamsError(f"params: el2n_pruning.width = {width} but resnet18_lowres has fixed width 64; "
                          f"set width: 64 or use model: fast_cnn.")
    net = torchvision.models.resnet18(num_classes=num_classes)
    net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


def build_model(name: str, in_channels: int, num_classes: int, width: int, image_size: int = 28) -> nn.Module:
    """A freshly initialised network `name` (one of MODELS); seed torch before calling."""
    if name == "fast_cnn":
        return FastCNN(in_channels, num_classes, width, image_size)
    if name == "resnet18_lowres":
        return resnet18_lowres(in_channels, num_classes, width)
    raise ParamsError(f"params: el2n_pruning.model = {name!r} unknown; use one of {', '.join(MODELS)}.")
