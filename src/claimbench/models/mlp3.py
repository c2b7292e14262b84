"""MLP3 (784-300-100-10): the small fully connected network of Martin & Hinrichs' SETOL draft (arXiv
2507.17912), whose batch-size sweep on MNIST moves FC1's power-law α. An `adapted:` CPU-scale surrogate
for MiniAlexNet in heavy_tail_phases (card v5 proposal, docs/protocols-v5-proposal.md).

Input (B, C, H, W) or (B, D), flattened to D = C·H·W (784 for 28×28 grey images). Layers fc1 (300×784,
Q ≈ 2.61), fc2 (100×300, Q = 3), fc3 (10×100); the names match MiniAlexNet's so the spectral analysis
reads fc1/fc2 unchanged. Init as MiniAlexNet's (Keras glorot_normal truncated at ±2σ, biases 0.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from claimbench.models.mini_alexnet import glorot_truncated_


class MLP3(nn.Module):
    """in_features → 300 → 100 → num_classes, ReLU between; returns (B, num_classes) logits."""

    def __init__(self, in_features: int = 784, num_classes: int = 10, hidden: tuple[int, int] = (300, 100),
                 bias_init: float = 0.1):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], num_classes)
        for m in (self.fc1, self.fc2, self.fc3):
            glorot_truncated_(m.weight)
            nn.init.constant_(m.bias, bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
