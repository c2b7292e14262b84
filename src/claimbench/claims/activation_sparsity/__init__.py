"""Claim 3: emergent activation sparsity in ReLU Transformers ("The Lazy Neuron Phenomenon").

Claim: in Transformers whose MLPs use ReLU, the share of nonzero post-ReLU activations per token falls
during training from ≈50% at initialisation to a small value (paper: 3.0% T5-Base, 6.3% ViT-B/16), on
train and held-out data, at every depth; larger models are sparser; it also happens with random labels,
random inputs and never-repeated data. Top-k activations keep accuracy and improve calibration.
Source: Li, You, Bhojanapalli et al., ICLR 2023, arXiv 2210.06313; spec /work/shared/specs/3-activation-sparsity.md.

Ours: timm ViTs (two sizes) on Fashion-MNIST, a nanoGPT-style char LM on Tiny Shakespeare, variants
(random labels; Gaussian inputs + random labels; Top-k; optional 40% label noise), a timm MLP-Mixer and a
2-layer MLP. Nonzero % is measured by forward hooks (fp32, eval mode) at log-spaced steps.
Expected cost (2-core CPU): ci ≈ 7 s wall from scratch; quick ≈ 4.5 min wall (measured at load 1–2;
12 min when the CPU was shared at load 4–9); gpu ≈ 3 min on one H100 (not yet measured); paper = larger
ViT / LM on the same data for 60k steps (hours). The paper's own runs (ViT-B/16 on ImageNet-21k, T5-Base
on C4) are far beyond this suite.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from claimbench.params import in_unit_interval, positive

CLAIM_ID = "activation_sparsity"


@dataclass(frozen=True)
class ViTSize:
    """One timm ViT size: width, depth, heads, MLP ratio (d_ff = embed_dim × mlp_ratio)."""

    embed_dim: int = field(metadata=positive())
    depth: int = field(metadata=positive())
    num_heads: int = field(metadata=positive())
    mlp_ratio: float = field(metadata=positive())


@dataclass(frozen=True)
class Config:
    seed: int
    patch_size: int = field(metadata=positive())          # 28×28 images → (28/patch)² tokens + CLS
    train_examples: int = field(metadata=positive())      # Fashion-MNIST training images used (≤ 60000)
    probe_examples: int = field(metadata=positive())      # train and test images on which nnz% is measured
    eval_examples: int = field(metadata=positive())       # test images for accuracy / ECE / corruption
    batch_size: int = field(metadata=positive())
    lr: float = field(metadata=positive())
    weight_decay: float
    warmup_steps: int
    schedule: Literal["constant", "cosine"]
    steps: int = field(metadata=positive())               # ViT baselines and Top-k
    variant_steps: int = field(metadata=positive())       # random labels / random inputs / label noise
    n_measurements: int = field(metadata=positive())      # log-spaced nnz% measurements per run
    vit_small: ViTSize                                    # reference model (A1, A2, A4, A5)
    vit_large: ViTSize                                    # wider and deeper (A3)
    topk_fraction: float = field(metadata=in_unit_interval())   # k = round(d_ff × fraction)
    corruption_sigma: float                               # Gaussian noise std in [0, 1] pixel space
    label_noise: float = field(metadata=in_unit_interval())     # 0 = skip the label-noise pair
    lm_d_model: int = field(metadata=positive())
    lm_layers: int = field(metadata=positive())
    lm_heads: int = field(metadata=positive())
    lm_block_size: int = field(metadata=positive())
    lm_steps: int = field(metadata=positive())
    lm_batch_size: int = field(metadata=positive())
    lm_lr: float = field(metadata=positive())
    lm_probe_windows: int = field(metadata=positive())
    other_steps: int = field(metadata=positive())         # MLP-Mixer and 2-layer MLP
    mixer_dim: int = field(metadata=positive())
    mixer_depth: int = field(metadata=positive())
    mlp_hidden: int = field(metadata=positive())


def run_key(name: str, cfg: Config) -> dict:
    """Cache key of run `name` (its directory under artifacts/<scale>/activation_sparsity/runs)."""
    return {"run": name, "cfg": asdict(cfg)}


def d_ff(size: ViTSize) -> int:
    """MLP hidden width of a ViT size (units per token)."""
    return int(size.embed_dim * size.mlp_ratio)


def topk_k(cfg: Config) -> int:
    """k of the Top-k ViT: active units kept per token of the small ViT's MLPs."""
    return max(1, round(d_ff(cfg.vit_small) * cfg.topk_fraction))
