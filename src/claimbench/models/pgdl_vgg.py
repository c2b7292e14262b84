"""PGDL-task-1-like VGG family: [conv-relu-conv-relu-maxpool] x blocks, dense-relu-dropout x dense_layers, head.

Jiang et al. 2020 (PGDL, task1_v4): 1 or 3 conv blocks, 1 or 2 dense layers of 128 units with dropout
after each, the last conv layer's filters varied. Block b (0-based) of `blocks` has
``last_filters / 2**(blocks - 1 - b)`` filters (at least 8), so the last block has `last_filters`.
Convs are 3x3, 'same' padding; input (N, C, H, W), output logits (N, num_classes). Weights use He-normal
init (ours: plain deep VGGs without BN train in few epochs only with it; PGDL's Keras used Glorot).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class VGGSpec:
    """One member of the family. dense_width: units of each hidden dense layer."""

    blocks: int
    dense_layers: int
    last_filters: int
    dense_width: int
    dropout: float

    def block_filters(self) -> list[int]:
        return [max(8, self.last_filters // 2 ** (self.blocks - 1 - b)) for b in range(self.blocks)]

    @property
    def conv_layers(self) -> int:
        """Depth used for grouping: the number of conv layers (2 per block)."""
        return 2 * self.blocks


class PGDLVGG(nn.Module):
    def __init__(self, spec: VGGSpec, in_channels: int, image_size: int, num_classes: int):
        super().__init__()
        if spec.blocks < 1 or spec.dense_layers < 1:
            raise ValueError(f"VGGSpec needs blocks >= 1 and dense_layers >= 1, got {spec}")
        if image_size // 2 ** spec.blocks < 1:
            raise ValueError(f"{spec.blocks} max-pool blocks need images of at least {2 ** spec.blocks} px, "
                             f"got {image_size}")
        layers: list[nn.Module] = []
        c = in_channels
        for f in spec.block_filters():
            layers += [nn.Conv2d(c, f, 3, padding=1), nn.ReLU(inplace=True),
                       nn.Conv2d(f, f, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c = f
        self.features = nn.Sequential(*layers)
        side = image_size // 2 ** spec.blocks
        dense: list[nn.Module] = [nn.Flatten()]
        width = c * side * side
        for _ in range(spec.dense_layers):
            dense += [nn.Linear(width, spec.dense_width), nn.ReLU(inplace=True), nn.Dropout(spec.dropout)]
            width = spec.dense_width
        dense.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*dense)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
