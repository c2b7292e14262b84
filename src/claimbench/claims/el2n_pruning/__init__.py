"""Claim 5 — EL2N data pruning: scores taken early in training pick the examples that matter.

Paul, Ganguli & Dziugaite, "Deep Learning on a Data Diet", NeurIPS 2021, arXiv 2107.07075; checked
against Kirsch, "Does 'Deep Learning on a Data Diet' reproduce?", arXiv 2303.14753. Spec:
shared/specs/5-el2n-pruning.md. Card: cards/el2n_pruning.yaml.

Protocol (train → score → prune → retrain, every run cached). A *replicate* r (of `replicates`) is the
independent unit: its own score ensemble, its own label-noise ensemble and its own pruned runs.
1. Per replicate, `score_ensemble` full-data runs (seeds `ensemble_seeds(cfg)[r]`). Each records GraNd at
   init (step 0) and, after `score_epoch` epochs, EL2N and GraNd (eval mode, un-augmented inputs); its
   final test accuracy is a full-data baseline (the replicate's: the mean over its ensemble). The
   replicate's scores are its ensemble's mean (data_diet/get_mean_score.py).
2. Per replicate, keep fraction and score (EL2N keep-hardest, random, GraNd@init keep-hardest): retrain a
   fresh network (init seed `prune_seed(cfg, r)`, shared by the replicate's methods: paired) on the kept
   subset for exactly as many optimiser steps as the full-data run.
3. Label noise: per replicate and noise mode ('permute' = data_diet randomize_labels, 'flip' = forced
   wrong; one fixed corruption mask per mode), `score_ensemble` runs trained to `score_epoch`; the
   replicate's mean EL2N flags the corruptions.
4. One `data_stats` run (no training) saves what the analysis needs from the data: the input norms
   of the training images and every noise mode's corruption mask.
Steps 1, 3 and 4 come first; a barrier then builds each replicate's step-2 runs from its own scores.

Card v5 (issue 24): regime R2, every full-data run fits its training subset (lowest final train accuracy
≥ 99%, `full_data_train_acc_min`, from the score runs' `train_acc`), so quick and long train 40 epochs' steps
(score_epoch 4, still 10%): the v4 quick network did not fit its data at 10 epochs. The pilots at this
protocol (EL-1, EL-3) predict E1 small and positive and E2 failing (≈ +1.8 pp loss at 50% pruned vs the
0.5 pp margin): at CPU scale the claim is judged for a fitted small network (1.7 parameters per image; the
paper's ResNet-18 ≈ 220).

Expected cost (train + analyse): ci ≈ 10–20 s on a 2-core CPU (300-image subset, 21 runs). quick (card v5:
fast CNN w16, 12k-image Fashion-MNIST subset, 40 epochs, 6 replicates, 50% pruned only, permute noise; 43
runs: 12 score, 12 noise, 1 data_stats, 18 pruned) ≈ 1,100–1,220 single-thread core-s of training (pilot
EL-1, per run on the shared 2-core Xeon: score 34.7–41.8, pruned 31.5–34.5, noise 3.4–3.9 s, 184 core-s per
replicate; pilot EL-3 at load 6–8: 612 core-s of CPU time for 3 replicates, 204 per replicate), ≈ 9–10 min
wall with 2 workers; long (the same protocol, 13 replicates, 92 runs) ≈ 2,390–2,650 core-s, ≈ 20–22 min wall
with 2 workers; analyse ≈ 10 s (1000 null draws per criterion). gpu (card v6:
ResNet-18 low-res, 6k images, 20 epochs, 4 replicates, 29 runs) ≈ 8.3 min on one H100 with 3 workers at the
62 ms/step the v3 gpu run measured (estimate; docs/protocols-v6/el2n_pruning.md); the v3 gpu protocol (8 epochs,
measured 2026-11-26: 333 s) was outside R2; paper =
ResNet-18 on all 60k images, 200 epochs, 4 replicates × 10 inits: GPU-days.
Earlier measurements: card v3 quick (10 epochs, 10 replicates, 71 runs) from clean on the 2-core Xeon,
2026-11-26, executor workers 2: 350 s training wall (677 s summed over its runs) + 8.5 s analysis; card v2
(5 epochs, 3 replicates, 37 runs): 111 s training + 4 s analysis.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import torch

from claimbench.contract import SEED_SET_STRIDE, seed_offset
from claimbench.errors import ParamsError
from claimbench.params import in_unit_interval, positive
from claimbench.sweep import Record
from claimbench.train import TrainConfig

CLAIM_ID = "el2n_pruning"
ORDER = 5  # place in every page and command (claimbench.claims.registry)
Method = Literal["el2n", "random", "grand_init", "grand_early", "input_norm"]
SCORE_NAMES = ("el2n_early", "grand_early", "grand_init", "el2n_init", "input_norm")
METHOD_SCORE = {"el2n": "el2n_early", "grand_init": "grand_init", "grand_early": "grand_early",
                "input_norm": "input_norm"}
METHOD_LABEL = {"el2n": "EL2N (early)", "random": "random", "grand_init": "GraNd at init",
                "grand_early": "GraNd (early)", "input_norm": "input norm"}
SCORES = "scores.pt"           # per run: name -> (N,) float scores of the training examples
DATA_STATS = "data_stats.pt"   # data_stats run: input_norm (N,), corrupted_<mode> (N,) bool


@dataclass(frozen=True)
class Config:
    """One scale. Sizes in examples; accuracies are reported in percentage points."""

    dataset: Literal["fashion-mnist", "cifar10"] = "fashion-mnist"
    train_size: int = field(default=12000, metadata=positive())   # balanced subset of the train split
    test_size: int = field(default=10000, metadata=positive())   # balanced subset of the test split
    model: Literal["fast_cnn", "resnet18_lowres"] = "fast_cnn"
    width: int = field(default=16, metadata=positive())
    epochs: int = field(default=5, metadata=positive())           # full-data run; sets the step budget
    batch_size: int = field(default=128, metadata=positive())
    lr: float = field(default=0.1, metadata=positive())
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: list[float] = field(default_factory=lambda: [0.3, 0.6, 0.8])  # lr × 0.2 at these fractions
    augment: Literal["none", "crop", "crop_flip"] = "crop"
    score_epoch: int = field(default=1, metadata=positive())     # epochs before EL2N/GraNd are taken
    replicates: int = field(default=3, metadata=positive())      # independent replicates (see the docstring)
    score_ensemble: int = field(default=2, metadata=positive())  # initialisations averaged per replicate
    seed_base: int = 0                                           # added to every seed (disjoint seed sets)
    keep_fractions: list[float] = field(default_factory=lambda: [0.7, 0.5], metadata=in_unit_interval())
    methods: list[Method] = field(default_factory=lambda: ["el2n", "random", "grand_init"])
    noise_fraction: float = field(default=0.1, metadata=in_unit_interval())
    noise_modes: list[Literal["permute", "flip"]] = field(default_factory=lambda: ["permute", "flip"])
    grand_batch: int = field(default=256, metadata=positive())   # examples per vmap chunk

    def __post_init__(self):
        where = f"params: {CLAIM_ID}"
        if self.score_epoch >= self.epochs:
            raise ParamsError(f"{where}.score_epoch = {self.score_epoch} must be < epochs = {self.epochs} "
                              f"(scores are taken early in training; the paper uses 20 of 200).")
        if any(not 0 < f < 1 for f in self.keep_fractions) or not self.keep_fractions:
            raise ParamsError(f"{where}.keep_fractions = {self.keep_fractions} must be non-empty, each in (0, 1) "
                              f"(the full-data run is always made).")
        if not any(abs(f - 0.5) < 1e-9 for f in self.keep_fractions):
            raise ParamsError(f"{where}.keep_fractions must include 0.5 (criteria E1/E2/E4 read it; 0.7, read by "
                              f"the reported E1b/E2b, is optional).")
        for need in ("el2n", "random"):  # grand_init feeds only the reported E4: optional (card v8 quick skips it)
            if need not in self.methods:
                raise ParamsError(f"{where}.methods must include {need!r} (the card's gating criteria read it).")
        if "permute" not in self.noise_modes:
            raise ParamsError(f"{where}.noise_modes = {self.noise_modes} must include 'permute' (criterion E5).")
        if self.replicates < 2:
            raise ParamsError(f"{where}.replicates = {self.replicates} must be ≥ 2 (an interval needs two).")
        if self.replicates * self.score_ensemble >= SEED_SET_STRIDE:
            raise ParamsError(f"{where}: replicates × score_ensemble must be < {SEED_SET_STRIDE} (seed sets "
                              f"are {SEED_SET_STRIDE} apart).")

    def train_config(self) -> TrainConfig:
        """The full-data recipe (data_diet: SGD Nesterov, lr × 0.2 at fixed fractions, drop-last)."""
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer="sgd",
                           momentum=self.momentum, nesterov=True, weight_decay=self.weight_decay,
                           schedule="step", gamma=0.2, milestones=tuple(self.milestones), augment=self.augment,
                           drop_last=True, checkpoint_every=max(1, self.epochs // 4))


def with_seed_set(cfg: Config, k: int) -> Config:
    """cfg with every replicate seed (score/noise inits, pruned inits, random subsets) moved by k · 1000:
    disjoint from seed set 0. The data subsets and corruption masks stay. k = 0: cfg itself."""
    return dataclasses.replace(cfg, seed_base=cfg.seed_base + seed_offset(k)) if k else cfg


def ensemble_seeds(cfg: Config) -> list[list[int]]:
    """Replicate r's score (and label-noise) ensemble seeds: seed_base + r + j · replicates, j < score_ensemble
    (replicate r's first member is seed r, as in the one-ensemble protocol's score runs)."""
    return [[cfg.seed_base + r + j * cfg.replicates for j in range(cfg.score_ensemble)]
            for r in range(cfg.replicates)]


def prune_seed(cfg: Config, r: int) -> int:
    """The init/data-order seed of replicate r's pruned runs (one per replicate: the methods are paired)."""
    return cfg.seed_base + r


# ---------------------------------------------------------------- run keys (their hashes name the run folders)


def run_key(cfg: Config, kind: str, **extra) -> dict:
    """A training run's key: data, model, recipe and score epoch, then its kind ('score', 'noise',
    'prune') and that kind's settings (seed; mode and fraction; method, keep, seed, steps, subset)."""
    return {"data": [cfg.dataset, cfg.train_size, cfg.test_size], "model": [cfg.model, cfg.width],
            "recipe": dataclasses.asdict(cfg.train_config()), "score_epoch": cfg.score_epoch,
            "kind": kind, **extra}


def data_stats_key(cfg: Config) -> dict:
    """The data_stats run's key: only what its outputs depend on (the data and the label noise)."""
    return {"kind": "data_stats", "data": [cfg.dataset, cfg.train_size, cfg.test_size],
            "noise_fraction": cfg.noise_fraction, "noise_modes": list(cfg.noise_modes)}


# ---------------------------------------------------------------- reading finished runs


def of_kind(records: list[Record], kind: str, **match) -> list[Record]:
    """The records of one kind (in plan order) whose keys also match `match`."""
    return [r for r in records if r.key["kind"] == kind and all(r.key[k] == v for k, v in match.items())]


def by_replicate(cfg: Config, runs: list[Record]) -> list[list[Record]]:
    """Runs of one kind (and noise mode) grouped into the replicates' ensembles, in `ensemble_seeds` order."""
    by_seed = {r.key["seed"]: r for r in runs}
    return [[by_seed[s] for s in seeds] for seeds in ensemble_seeds(cfg)]


def mean_scores(runs: list[Record]) -> dict[str, torch.Tensor]:
    """The runs' scores.pt averaged over runs (in the given order): name -> (N,)."""
    per_seed = [r.tensors(SCORES, "EL2N/GraNd scores") for r in runs]
    return {name: torch.stack([s[name] for s in per_seed]).mean(0) for name in per_seed[0]}


def data_stats(records: list[Record]) -> dict[str, torch.Tensor]:
    """The data_stats run's tensors: input_norm (N,) float, corrupted_<mode> (N,) bool."""
    (run,) = of_kind(records, "data_stats")
    return run.tensors(DATA_STATS, "input norms / corruption masks")
