"""Claim 1 — heavy-tailed phases vs batch size (Martin & Mahoney).

Claim: changing only the batch size moves MiniAlexNet's FC1 spectrum through the 5+1 phases — large
batches leave the ESD random-like (Marchenko–Pastur, soft rank ≈ 1), smaller batches give bleeding-out
→ bulk+spikes → bulk-decay → heavy-tailed — while test accuracy rises.
Source: Martin & Mahoney, "Implicit Self-Regularization in Deep Neural Networks", arXiv 1810.01075
(JMLR 2021) and ICML 2019 (arXiv 1901.08276); spec ../shared/specs/1-heavy-tail-phases.md. quick and long
(card v5) judge an adapted surrogate at the paper's temperatures: MLP3 784-300-100-10 (Martin & Hinrichs,
SETOL, arXiv 2507.17912; github.com/CalculatedContent/setol_paper, models/mlp3.py).

Protocol: MiniAlexNet (models/mini_alexnet.py; paper) or MLP3 (quick, long, gpu since card v6), MSE on softmax,
SGD momentum 0.9, lr × 0.95 per epoch, per-image standardisation (CIFAR-10 centre-cropped to 28×28). paper
lr 0.01 (the paper's); quick/long/gpu lr 0.1 with batch sizes 20 … 1250, i.e. the paper's temperatures
T = lr/bs at its bs 2 … 125. One run per (batch size, seed); final weights and final train/test accuracy
kept. Analysis (never trains): FC1/FC2 ESDs per run and pooled over seeds (as the paper), WW-style metrics
(metrics/spectral.py), our automated phase label (metrics/phases.py). Gating statistics are per seed (the
replicate: one run per batch size), with intervals over seeds and null draws that shuffle batch-size
labels within each seed (card v2). Regime R2 (card v5) reads the smallest batch size's temperature
T = lr/bs and lr-time t = Σ lr_t against the paper's first Bulk-decay point (1.25e-3, 1,243).

Cost (training, summed per-run CPU seconds from the runs' `cpu_s`, 1 thread per run, 2-core Xeon shared
with other jobs, so wall times are inflated and CPU times are not): ci ≈ 15 CPU-s. quick (card v5: MLP3,
60,000 Fashion-MNIST images, bs 20/40/80/160/320/1250 × 4 seeds × 10 epochs) ≈ 455 core-s per seed set
(pilot HT-2, 2026-12-06: 111-116 per seed; bs 20 41-47 s, bs 1250 8 s), ≈ 4 min wall with
`executor: {workers: 2}`; long (the same × 35 epochs) ≤ 1,660 core-s per seed set (pilot HT-L: bs 20 120-166 s,
bs 1250 26-27 s; results/pilots/heavy_tail_phases/ht_l.json). At 4 seeds C3 is decided at the pooled second
look (seed set 1, the same cost again). gpu (card v6: MLP3, bs 20…1250 × 7 seeds × 10 epochs, ≈ 279k SGD steps)
≈ 8 min on one H100 with 3 workers at an assumed 5 ms per launch-bound step (estimate, never run;
docs/protocols-v6/heavy_tail_phases.md); paper = 11 batch
sizes × 10 seeds × 100 epochs of CIFAR-10 (days on a CPU).
History: card v3/v4 quick (MiniAlexNet, 1000 images, bs 2/4/8/16 × 3 seeds × 6 epochs, 516-551 core-s)
kept C3 out of regime (lr-weighted steps 2,649 < 124,260); v5 counts the clock in (T, t) instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from claimbench.contract import seed_offset
from claimbench.errors import ParamsError
from claimbench.params import positive

CLAIM_ID = "heavy_tail_phases"
ORDER = 1  # place in every page and command (claimbench.claims.registry)
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
    # mlp3: the SETOL MLP (784-300-100-10, models/mlp3.py), an `adapted:` CPU-scale surrogate (card v5 proposal)
    model: Literal["mini_alexnet", "mlp3"] = "mini_alexnet"

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
        **({"model": cfg.model} if cfg.model != "mini_alexnet" else {}),  # MiniAlexNet keys stay as before
    }
