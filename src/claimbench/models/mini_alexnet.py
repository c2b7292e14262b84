"""MiniAlexNet of Martin & Mahoney (arXiv 1810.01075), as in their Keras script cifar10_alexnet.py.

conv96 5×5 (same) → ReLU → maxpool 3/3 (same) → BN → conv256 5×5 → ReLU → maxpool 3/3 → BN → flatten
→ FC1 (4096→384) → ReLU → FC2 (384→192) → ReLU → FC3 (192→10; softmax is applied by the loss).
Input (B, C, 28, 28); 28 → 10 → 4 spatially, so FC1's W is 384×4096 (N=4096, M=384, Q≈10.67) and
FC2's is 192×384 (Q=2). BatchNorm follows Keras defaults (momentum 0.99 ≙ torch 0.01, eps 1e-3).
Init (spec §A.1): Keras 2.2 glorot_normal = normal truncated at ±2σ, σ = √(2/(fan_in+fan_out)),
all biases 0.1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from claimbench.numerics import upcast

ANALYSED_LAYERS = {"fc1": "fc1", "fc2": "fc2"}  # paper's FC1 (Keras layer 7) and FC2 (layer 8)


def glorot_truncated_(weight: torch.Tensor) -> None:
    """Keras 2.2 glorot_normal: N(0, σ²) truncated to ±2σ, σ = √(2/(fan_in+fan_out)), fans including the
    receptive field."""
    rf = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    fan_in, fan_out = weight.shape[1] * rf, weight.shape[0] * rf
    std = math.sqrt(2.0 / (fan_in + fan_out))
    nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


class MiniAlexNet(nn.Module):
    """MiniAlexNet for (B, in_channels, 28, 28) images; returns (B, num_classes) logits."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, bias_init: float = 0.1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 96, 5, padding=2)
        self.bn1 = nn.BatchNorm2d(96, eps=1e-3, momentum=0.01)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2)
        self.bn2 = nn.BatchNorm2d(256, eps=1e-3, momentum=0.01)
        self.fc1 = nn.Linear(4 * 4 * 256, 384)
        self.fc2 = nn.Linear(384, 192)
        self.fc3 = nn.Linear(192, num_classes)
        for m in (self.conv1, self.conv2, self.fc1, self.fc2, self.fc3):
            glorot_truncated_(m.weight)
            nn.init.constant_(m.bias, bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (28, 28):
            raise ValueError(
                f"MiniAlexNet expects 28×28 inputs, got {tuple(x.shape[-2:])}; crop CIFAR-10 first."
            )
        x = self.bn1(F.max_pool2d(F.relu(self.conv1(x)), 3, 3, padding=1))
        x = self.bn2(F.max_pool2d(F.relu(self.conv2(x)), 3, 3, padding=1))
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def mse_on_softmax(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Keras loss='mse' on softmax outputs vs one-hot labels: mean over classes and batch. y: (B,) int64."""
    p = upcast(logits).softmax(-1)
    return (p - F.one_hot(y, p.shape[-1]).to(p.dtype)).pow(2).mean()
