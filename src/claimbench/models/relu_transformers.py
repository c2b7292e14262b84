"""ReLU-MLP models for the activation-sparsity claim: timm ViT and MLP-Mixer on 28×28 images, a
nanoGPT-style character Transformer LM, and a 2-layer MLP. Every MLP activation is an ``nn.ReLU`` (or
a ``TopKReLU`` when ``topk`` is set), so ``metrics.activation_sparsity`` finds and hooks it.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from claimbench.metrics.activation_sparsity import TopKReLU


def relu_layer(topk: int | None = None):
    """Activation class/factory for timm's act_layer: nn.ReLU, or TopKReLU(k) when topk is set."""
    return nn.ReLU if topk is None else functools.partial(TopKReLU, k=topk)


def vit(embed_dim: int, depth: int, num_heads: int, mlp_ratio: float, patch_size: int, num_classes: int = 10,
        img_size: int = 28, in_chans: int = 1, topk: int | None = None) -> nn.Module:
    """timm VisionTransformer (pre-LN, CLS token) with ReLU MLPs; input (N, in_chans, img, img)."""
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
                             embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
                             act_layer=relu_layer(topk))


def mixer(embed_dim: int, depth: int, patch_size: int, num_classes: int = 10, img_size: int = 28,
          in_chans: int = 1) -> nn.Module:
    """timm MlpMixer with ReLU in both token- and channel-mixing MLPs; input (N, in_chans, img, img)."""
    from timm.models.mlp_mixer import MlpMixer

    return MlpMixer(num_classes=num_classes, img_size=img_size, in_chans=in_chans, patch_size=patch_size,
                    num_blocks=depth, embed_dim=embed_dim, act_layer=nn.ReLU)


class TwoLayerMLP(nn.Module):
    """Flatten → Linear(d_in, hidden) → ReLU → Linear(hidden, classes). Input (N, ...) → logits (N, classes)."""

    def __init__(self, d_in: int, hidden: int, num_classes: int = 10):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x.flatten(1))))


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.qkv, self.proj = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_head, c // self.n_head).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class ReLUMLP(nn.Module):
    """fc1 → act (hooked) → fc2, hidden width d_ff."""

    def __init__(self, d_model: int, d_ff: int, topk: int | None = None):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(d_model, d_ff), relu_layer(topk)(), nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, d_model: int, n_head: int, d_ff: int, topk: int | None = None):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(d_model), CausalSelfAttention(d_model, n_head)
        self.ln2, self.mlp = nn.LayerNorm(d_model), ReLUMLP(d_model, d_ff, topk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CharTransformer(nn.Module):
    """Pre-LN decoder-only character LM (nanoGPT layout). tokens (N, T) int64 → logits (N, T, vocab)."""

    def __init__(self, vocab: int, block_size: int, d_model: int, n_layer: int, n_head: int, mlp_ratio: float = 4.0,
                 topk: int | None = None):
        super().__init__()
        self.block_size = block_size
        self.tok, self.pos = nn.Embedding(vocab, d_model), nn.Embedding(block_size, d_model)
        d_ff = int(d_model * mlp_ratio)
        self.blocks = nn.ModuleList(Block(d_model, n_head, d_ff, topk) for _ in range(n_layer))
        self.ln_f, self.head = nn.LayerNorm(d_model), nn.Linear(d_model, vocab, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def char_windows(tokens: torch.Tensor, block_size: int,
                 max_windows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping (inputs, next-char targets) windows: two int64 tensors (N, block_size)."""
    n = (len(tokens) - 1) // block_size
    if max_windows is not None:
        n = min(n, max_windows)
    x = tokens[: n * block_size].view(n, block_size)
    y = tokens[1 : n * block_size + 1].view(n, block_size)
    return x, y
