"""Claim 1 — heavy-tailed phases vs batch size (Martin & Mahoney).

Claim: changing only the batch size moves MiniAlexNet's FC1 spectrum through the 5+1 phases — large
batches leave the ESD random-like (Marchenko–Pastur, soft rank ≈ 1), smaller batches give bleeding-out
→ bulk+spikes → bulk-decay → heavy-tailed — while test accuracy rises.
Source: Martin & Mahoney, "Implicit Self-Regularization in Deep Neural Networks", arXiv 1810.01075
(JMLR 2021) and ICML 2019 (arXiv 1901.08276); spec ../shared/specs/1-heavy-tail-phases.md.

Protocol: MiniAlexNet (models/mini_alexnet.py), MSE on softmax, SGD lr 0.01 momentum 0.9, lr × 0.95
per epoch, per-image standardisation (CIFAR-10 centre-cropped to 28×28). One run per (batch size,
seed); final weights and final train/test accuracy kept. Analysis (never trains): FC1/FC2 ESDs per run
and pooled over seeds (as the paper), WW-style metrics (metrics/spectral.py), our automated phase label
(metrics/phases.py). Gating statistics are per seed (the replicate: one run per batch size), with
Student-t intervals over seeds and null draws that shuffle batch-size labels within each seed (card v2).

Cost (train + analyse), measured on a 2-core Intel Xeon (2026-11-26): ci ≈ 15 CPU-s; quick (1000
Fashion-MNIST images, bs 2…500 × 3 seeds × 4 epochs, 15 runs of 1 thread each) = 467 s wall of training
one run at a time (the default executor), 248 s with `executor: {workers: 2}` or 254 s on Ray with 2
CPUs, + ≈ 10–20 s of analysis (of which ≈ 4 s judge the 3 × 2000 null draws); gpu ≈ 3–4 min on
one H100 (an estimate: never run); paper = 11 batch sizes × 10 seeds × 100 epochs of CIFAR-10 (days on a CPU).
Small batches dominate: at bs 2 one CPU step costs ~10–30 ms, so `quick` reaches only 2000 SGD steps at
bs 2, versus 2.5 M in the paper — phases depend on training length.
Measured (card v2 judging run from clean, 2-core Xeon, 2026-11-26, default executor): quick = 445 s
training + 7.5 s analysis (seed set 1: 427 s + 3 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from claimbench.contract import seed_offset
from claimbench.errors import ParamsError
from claimbench.params import positive

CLAIM_ID = "heavy_tail_phases"
LAYERS = ("fc1", "fc2")  # the MiniAlexNet layers whose spectra are analysed


@dataclass(frozen=True)
class Config:
    """One scale of the sweep. train_per_class / test_size: None = the full split."""

    batch_sizes: list[int] = field(metadata=positive())
    seeds: list[int]
    epochs: int = field(metadata=positive())
    dataset: Literal["fashion-mnist", "cifar10"] = "fashion-mnist"
    train_per_class: int | None = None
    test_size: int | None = None
    lr: float = field(default=0.01, metadata=positive())
    momentum: float = 0.9
    lr_decay: float = field(default=0.95, metadata=positive())  # lr × this after every epoch

    def __post_init__(self):
        if len(set(self.batch_sizes)) < 2 or len(set(self.seeds)) < 2:
            raise ParamsError(
                f"params: {CLAIM_ID} needs ≥ 2 distinct batch_sizes and ≥ 2 distinct seeds "
                f"(got {self.batch_sizes}, {self.seeds}); the criteria compare sizes and use seed SEs."
            )


def with_seed_set(cfg: Config, k: int) -> Config:
    """cfg with replicate seeds disjoint from seed set 0 (each seed + 1000·k; k = 0: cfg itself). The data
    subsets (derive_seed of the claim) stay fixed."""
    return cfg if k == 0 else replace(cfg, seeds=[s + seed_offset(k) for s in cfg.seeds])


def run_key(cfg: Config, batch_size: int, seed: int) -> dict:
    """What makes one run: every setting that changes its weights (not the sweep lists)."""
    return {
        "claim": CLAIM_ID,
        "dataset": cfg.dataset,
        "train_per_class": cfg.train_per_class,
        "test_size": cfg.test_size,
        "epochs": cfg.epochs,
        "lr": cfg.lr,
        "momentum": cfg.momentum,
        "lr_decay": cfg.lr_decay,
        "batch_size": batch_size,
        "seed": seed,
    }
