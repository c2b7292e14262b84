"""Claim 4 — neural collapse across losses (Zhou et al., "Are All Losses Created Equal").

Claim: trained to convergence, a sufficiently large network reaches neural collapse (NC1, NC2, NC3 -> 0
on training features) under cross-entropy (CE), label smoothing (LS), focal loss (FL) and MSE alike, and
the four losses then give largely the same test accuracy; the gap shrinks with width and training length.

Source: Zhou, You, Li, Liu, Liu, Qu, Zhu, NeurIPS 2022, arXiv 2210.02192; reference code jinxinzhou/nc_loss.
Spec: shared/specs/4-neural-collapse.md. Issue #6.

Setup: torchvision ResNet-18 with a width multiplier and a 3x3 stem (models/resnet_width.py) on a
class-balanced Fashion-MNIST subset; SGD (momentum 0.9, wd 5e-4, lr x0.1 at 3/7 and 5/7 of training,
grad-norm clip 2), every (width, seed) trained once per loss with the same initialisation and data order.
NC metrics (metrics/collapse.py) on the un-augmented training subset in eval mode, float64, at
log-spaced epochs; test accuracy of the final model. Card v2: a seed is the replicate; N1 judges the
worst loss per seed (NC2 against a random classifier of the same shape), N2 each loss minus CE per seed
within ±EQUIVALENCE_MARGIN_PP; CE also runs under `control_seeds` at the largest width (N2's control).
Card v3: regime R2 (NC2/NC3 plateau over the last quarter of the full-lr phase, measured at
phase_epochs) and R3 (lr x weight decay x full-lr steps, wd_time, at least the paper's shortest schedule).

Expected cost (train + analyse): ci ~10 s CPU time; quick ~2 min CPU time (measured before card v2: 107 s
user time with one thread; 5.4 min wall on a shared, oversubscribed 2-core box), plus the 2 control runs
of card v2, each like a CE run at w=1/8 (9.5-10.4 s of the 149 s run time of the quick suite on the quiet
2-core box: about +13%); analyse ~5 s at quick (null draws included); gpu: see below (estimate,
not yet run); paper (60k images, 4 widths, 350 epochs, 3 seeds + 1 control): about a day on one GPU.
Measured (card v2 judging run from clean, 2-core Xeon, 2026-11-26, default executor): quick = 179 s
training + 4.6 s analysis (seed set 1: 179 s + 0.3 s). Card v3: quick unchanged (~180 core-s; out of regime
R3 by design, see the card's power block); gpu (card v6): 36 runs x 1,760 steps (w=1/2 x 8 seeds x 4 losses,
w=1/16 x 1 seed), ~7.5 min on one H100 with 3 workers at an assumed 20 ms per eager step (estimate, not yet
run; docs/protocols-v6/neural_collapse.md). Pilots: ~30 core-s per 100 epochs at w=1/8.

Card v5 (issue 24): the training loss may be summed over the batch (`loss_reduction: sum`, the reference
code's May-2022 runs: jinxinzhou/nc_loss train.py @bf87f5d loss_mean False, Losses/loss.py @e76f1b0
reduction 'sum'; the grad-norm clip at 2 acts on the summed gradient); quick, long and paper sum it. R1 is
the terminal phase at the end of training only; the at-decay fit and the full-lr plateau are reported (TP).
New scale long: w in {1/32, 1/16}, 500 images, full 10k test set, lr 0.1, wd 5e-3 (lr x wd 5e-4, 10x the
paper's intrinsic lr), 440 epochs (3,520 steps; R3 0.7545), 6 seeds at w=1/16 and 1 at w=1/32: 28 runs,
~2,400 core-s per seed set (pilot nc_b: ~90 s process CPU per w=1/16 run on the shared 2-core box, 25.6 ms
per step; pilot nc_c: 50 s per w=1/32 run). quick: the same recipe at 44 epochs (R3 0.0755, out of regime by
design), 19 runs x 352 steps, ~145 core-s (estimate from nc_b and nc_c). pilot.py summarises a pilot root
into results/pilots/neural_collapse/.

Files: train.py (one run per width, seed and loss variant, plus the control runs), analyse.py
(statistics, per-seed samples, tables), null.py (null and control draws), figures.py (NC curves,
accuracy vs width), pilot.py (card-v5 pilot summaries).
Measured (card v3 judging run from clean, 2-core Xeon, 2026-11-26, executor workers 2): quick = 113 s training
wall (206 s summed over its 20 runs) + 3.5 s analysis; seed set 1: 110 s (197 s) + 0.4 s. gpu (one H100,
shared by five claims, then alone with 7 workers): 16 runs, 1,970 s summed run wall (≈ 17 ms per step).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import numpy as np

from claimbench.collapse_losses import LOSS_NAMES
from claimbench.contract import seed_offset
from claimbench.errors import ParamsError
from claimbench.params import positive

CLAIM_ID = "neural_collapse"
ORDER = 4  # place in every page and command (claimbench.claims.registry)
SECONDARY_LS = "ls_secondary"  # LS at ls_alpha_secondary, run at the largest width only (reported)
VARIANT_ORDER = [*LOSS_NAMES, SECONDARY_LS]  # the order of variants in runs, legends and colours
REFERENCE_LOSS = "ce"  # N2 compares every other loss with CE, as the paper's heatmaps (loss minus CE)
# N2's equivalence margin (points of test accuracy) for each loss minus CE; the card's N2 thresholds are
# -/+ this value (tests check they agree). Why 1.0: see the card (the paper says "largely identical").
EQUIVALENCE_MARGIN_PP = 1.0


def _check(predicate, doc: str) -> dict:
    """Field metadata for claimbench.params: `predicate(value)` must hold; `doc` says what is allowed."""
    return {"check": predicate, "check_doc": doc}


TWO_WIDTHS = _check(lambda v: len(v) >= 2 and all(w > 0 for w in v), "at least 2 widths, all > 0")
SOME_SEEDS = _check(lambda v: len(v) >= 1, "a non-empty list of seeds")
LS_ALPHA = _check(lambda a: a is None or 0 <= a < 1, "in [0, 1)")
NON_NEGATIVE = _check(lambda v: v >= 0, ">= 0")


@dataclass(frozen=True)
class Config:
    """One scale of the claim. Widths multiply ResNet-18's (64, 128, 256, 512) channels."""

    train_per_class: int = field(metadata=positive())      # class-balanced training subset (x10 classes)
    test_per_class: int | None = field(metadata=_check(lambda v: v is None or v > 0, "> 0 or null"))
    widths: list[float] = field(metadata=TWO_WIDTHS)       # the largest is judged, the smallest compared
    epochs: int = field(metadata=positive())
    batch_size: int = field(metadata=positive())
    lr: float = field(metadata=positive())
    seeds: list[int] = field(metadata=SOME_SEEDS)
    stem_stride: Literal[1, 2] = 1                          # 2 halves 28x28 inputs first (CPU scales)
    momentum: float = field(default=0.9, metadata=NON_NEGATIVE)
    weight_decay: float = field(default=5e-4, metadata=NON_NEGATIVE)
    grad_clip: float = field(default=2.0, metadata=positive())
    # Training-loss reduction over the batch: "mean", or "sum" as the reference code's May-2022 run scripts
    # (jinxinzhou/nc_loss bf87f5d train.py: loss_mean defaults to False; e76f1b0 Losses/loss.py: reduction
    # 'sum', MSE summed over all N·K entries), with the gradient-norm clip applied to the summed gradient.
    loss_reduction: Literal["mean", "sum"] = "mean"
    augment: Literal["none", "crop", "crop_flip"] = "none"  # NC is always measured un-augmented
    ls_alpha: float = field(default=0.1, metadata=LS_ALPHA)
    ls_alpha_secondary: float | None = field(default=0.05, metadata=LS_ALPHA)  # largest width only; null = skip
    focal_gamma: float = field(default=3.0, metadata=NON_NEGATIVE)
    mse_scale: float = field(default=15.0, metadata=positive())
    nc_points: int = field(default=8, metadata=positive())  # log-spaced epochs with NC measurements
    subset_seed: int = 0
    # N2's positive control: CE at the largest width under these extra seeds, so that one loss is seen
    # under len(seeds) + len(control_seeds) seeds (reported, never gating); [] = no control runs.
    control_seeds: list[int] = field(default_factory=list)
    # The first `other_width_seeds` of `seeds` also run at the widths below the largest (N3, reported only,
    # compares widths); null = every seed. Lets a scale spend its budget on the judged (largest) width.
    other_width_seeds: int | None = field(default=None, metadata=_check(lambda v: v is None or v >= 1,
                                                                        "null or >= 1"))

    def __post_init__(self):
        shared = sorted(set(self.seeds) & set(self.control_seeds))
        if shared:
            raise ParamsError(f"params: control_seeds {list(self.control_seeds)} share seed(s) {shared} with seeds "
                              f"{list(self.seeds)}; control runs need seeds of their own.")


def with_seed_set(cfg: Config, k: int) -> Config:
    """cfg with every replicate seed (seeds, control_seeds) moved by 1000·k: disjoint from set 0 for k >= 1;
    the data subsets (subset_seed) stay. k = 0 returns cfg itself."""
    if k == 0:
        return cfg
    return replace(cfg, seeds=[s + seed_offset(k) for s in cfg.seeds],
                   control_seeds=[s + seed_offset(k) for s in cfg.control_seeds])


def nc_epochs(epochs: int, points: int) -> list[int]:
    """Log-spaced epochs in [1, epochs], always including 1 and `epochs`."""
    grid = np.geomspace(1, epochs, max(points, 2))
    return sorted({1, epochs, *(round(float(e)) for e in grid)})


NUM_CLASSES = 10
# Regime R3's bound: the paper's shortest schedule (CIFAR-10, 45k images, batch 128 = 352 steps/epoch, 100
# epochs, lr 0.1, weight decay 5e-4): 0.1 × 5e-4 × ceil(3/7 × 35,200) = 0.754 at the full learning rate.
PAPER_WD_TIME = 0.1 * 5e-4 * math.ceil(3 / 7 * 100 * 352)
# The step schedule's milestones (fractions of training, as the reference code) and the plateau window:
# the last PLATEAU_FRACTION of the full-learning-rate phase (card v3, regime R2).
LR_MILESTONES = (3 / 7, 5 / 7)
PLATEAU_FRACTION = 0.25


def phase_epochs(epochs: int) -> dict[str, int]:
    """Epochs that bound the plateau window: 'decay' = the last epoch wholly at the full learning rate
    (floor(3/7 · epochs); lr_at decays at step/total >= 3/7), 'window' = the window's first epoch
    (the last PLATEAU_FRACTION of the full-lr phase), 'end_window' = the first epoch of the last
    PLATEAU_FRACTION of training (reported); all >= 1."""
    decay = max(1, math.floor(LR_MILESTONES[0] * epochs))
    return {"window": max(1, round((1 - PLATEAU_FRACTION) * decay)), "decay": decay,
            "end_window": max(1, round((1 - PLATEAU_FRACTION) * epochs))}


def wd_time(cfg: Config) -> float:
    """lr × weight decay × optimiser steps at the full learning rate (steps s of `total` with s/total < 3/7;
    batches of ceil(N / batch_size) per epoch): the full-lr phase in weight-decay relaxation times (regime R3)."""
    total = cfg.epochs * math.ceil(NUM_CLASSES * cfg.train_per_class / cfg.batch_size)
    return cfg.lr * cfg.weight_decay * math.ceil(LR_MILESTONES[0] * total)


def measure_epochs(cfg: Config) -> list[int]:
    """Epochs at which the probe measures NC: the log-spaced grid plus the plateau window's ends."""
    return sorted({*nc_epochs(cfg.epochs, cfg.nc_points), *phase_epochs(cfg.epochs).values()})


def seeds_at(cfg: Config, width: float) -> list[int]:
    """Seeds trained at `width`: all of `seeds` at the largest width, the first `other_width_seeds` elsewhere."""
    return list(cfg.seeds) if width == max(cfg.widths) else list(cfg.seeds)[: cfg.other_width_seeds]


def variants(cfg: Config, width: float) -> list[str]:
    """Loss variants trained at `width`: the four losses, plus LS at the secondary alpha at the largest width."""
    extra = [SECONDARY_LS] if cfg.ls_alpha_secondary is not None and width == max(cfg.widths) else []
    return [*LOSS_NAMES, *extra]


def run_key(cfg: Config, width: float, seed: int, variant: str) -> dict:
    """Cache key of one run: every setting that changes it (not the lists of widths/seeds swept)."""
    settings = {k: v for k, v in asdict(cfg).items()
                if k not in ("widths", "seeds", "ls_alpha_secondary", "control_seeds", "other_width_seeds")}
    if cfg.loss_reduction == "mean":  # card v5 added the field: mean-reduced runs keep their v3/v4 keys
        del settings["loss_reduction"]
    alpha = cfg.ls_alpha_secondary if variant == SECONDARY_LS else cfg.ls_alpha
    # probe_epochs (card v3): a run measured at other epochs lacks the plateau window's NC values
    return {**settings, "ls_alpha": alpha, "width": width, "seed": seed, "variant": variant,
            "probe_epochs": measure_epochs(cfg)}
