"""EL2N pruning, train side: score runs, label-noise runs and one data_stats run; then a barrier
averages each replicate's scores over its ensemble and plans its pruned retraining runs (one per keep
fraction and method)."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from claimbench.claims.el2n_pruning import (
    CLAIM_ID,
    DATA_STATS,
    METHOD_SCORE,
    SCORES,
    Config,
    by_replicate,
    data_stats,
    data_stats_key,
    ensemble_seeds,
    mean_scores,
    of_kind,
    prune_seed,
    run_key,
)
from claimbench.contract import Barrier, Context, RunSpec
from claimbench.data import balanced_subset, derive_seed, inject_label_noise, load_images, normalize, random_subset
from claimbench.errors import ParamsError
from claimbench.metrics.example_scores import el2n_scores, grand_scores, input_norms, keep_hardest
from claimbench.models.data_diet_nets import build_model
from claimbench.sweep import CHECKPOINT, Record
from claimbench.train import Callback, TrainState, fit, prepare_model, seed_everything

# ---------------------------------------------------------------- data


@dataclass
class Split:
    """Normalised tensors on the compute device: x (N, C, H, W), y (N,) int64."""

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int


def load_data(ctx: Context) -> Split:
    """Balanced subsets of the train and test splits, normalised with the train subset's statistics."""
    cfg: Config = ctx.cfg
    train, test = load_images(cfg.dataset, "train", ctx.data_root), load_images(cfg.dataset, "test", ctx.data_root)
    k = train.num_classes
    for name, data, size in (("train_size", train, cfg.train_size), ("test_size", test, cfg.test_size)):
        if size > len(data) or size % k:
            raise ParamsError(f"params: {CLAIM_ID}.{name} = {size} must be a multiple of {k} and ≤ {len(data)}.")
    if cfg.train_size < len(train):
        train = train.subset(balanced_subset(train.y, cfg.train_size // k, derive_seed(CLAIM_ID, "train")))
    if cfg.test_size < len(test):
        test = test.subset(balanced_subset(test.y, cfg.test_size // k, derive_seed(CLAIM_ID, "test")))
    x, mean, std = normalize(train.x)
    x_test, _, _ = normalize(test.x, mean, std)
    d = ctx.device
    return Split(x.to(d), train.y.to(d), x_test.to(d), test.y.to(d), k)


def noisy_labels(cfg: Config, split: Split, mode: str, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels (N,) with `fraction` corrupted by `mode`, on the CPU; bool (N,) mask of changed labels)."""
    return inject_label_noise(split.y.cpu(), fraction, split.num_classes, derive_seed(CLAIM_ID, "noise", mode), mode)


# ---------------------------------------------------------------- runs


class ScoreCallback(Callback):
    """Records GraNd/EL2N at init (on_start) and EL2N/GraNd after `epoch` finished epochs, on (x, y)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, epoch: int, with_grand: bool, grand_batch: int):
        self.x, self.y, self.epoch, self.with_grand, self.grand_batch = x, y, epoch, with_grand, grand_batch
        self.scores: dict[str, torch.Tensor] = {}

    def _score(self, state: TrainState, when: str) -> None:
        self.scores[f"el2n_{when}"] = el2n_scores(state.model, self.x, self.y)
        if self.with_grand:
            self.scores[f"grand_{when}"] = grand_scores(state.model, self.x, self.y, self.grand_batch)

    def on_start(self, state: TrainState) -> None:
        self._score(state, "init")

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch == self.epoch:
            self._score(state, "early")

    def state_dict(self) -> dict:
        return {"scores": self.scores}

    def load_state_dict(self, d: dict) -> None:
        self.scores = d["scores"]


def new_model(cfg: Config, split: Split, seed: int, device: torch.device) -> torch.nn.Module:
    seed_everything(seed)
    net = build_model(cfg.model, split.x.shape[1], split.num_classes, cfg.width, split.x.shape[-1])
    return prepare_model(net, device)


def score_run(cfg: Config, split: Split, y: torch.Tensor, seed: int, full: bool, run_dir: Path,
              device: torch.device) -> dict:
    """One initialisation trained on (x, y): to the end if `full`, else only to score_epoch.
    Saves its scores to run_dir/scores.pt; returns its final test accuracy (%), steps taken and, for a full
    run, its final train accuracy (%) on (x, y) in eval mode (the E2 regime: does the full-data run fit?)."""
    model = new_model(cfg, split, derive_seed(CLAIM_ID, "score-init", seed), device)
    cb = ScoreCallback(split.x, y, cfg.score_epoch, with_grand=full, grand_batch=cfg.grand_batch)
    checkpoint = run_dir / CHECKPOINT
    state = fit(model, (split.x, y), cfg.train_config(), seed=derive_seed(CLAIM_ID, "score-data", seed),
                eval_sets={"test": (split.x_test, split.y_test), **({"train": (split.x, y)} if full else {})},
                callbacks=[cb], checkpoint=checkpoint,
                desc=f"score seed {seed}", stop_when=None if full else (lambda s: s.epoch >= cfg.score_epoch))
    torch.save(cb.scores, run_dir / SCORES)
    checkpoint.unlink(missing_ok=True)
    out = {"test_acc": 100 * state.history[-1]["test_acc"], "steps": state.step}
    if full:
        out["train_acc"] = 100 * state.history[-1]["train_acc"]
    return out


def prune_run(cfg: Config, split: Split, keep: torch.Tensor, seed: int, steps: int, run_dir: Path,
              device: torch.device) -> dict:
    """A fresh network trained on the kept examples for exactly `steps` optimiser steps; test acc in %."""
    model = new_model(cfg, split, derive_seed(CLAIM_ID, "prune-init", seed), device)
    keep = keep.to(split.x.device)
    tcfg = dataclasses.replace(cfg.train_config(), steps=steps)
    checkpoint = run_dir / CHECKPOINT
    state = fit(model, (split.x[keep], split.y[keep]), tcfg, seed=derive_seed(CLAIM_ID, "prune-data", seed),
                eval_sets={"test": (split.x_test, split.y_test)}, checkpoint=checkpoint, desc=f"prune {run_dir.name}")
    checkpoint.unlink(missing_ok=True)
    return {"test_acc": 100 * state.history[-1]["test_acc"], "steps": state.step, "n_kept": len(keep)}


def data_stats_run(cfg: Config, split: Split, run_dir: Path) -> dict:
    """No training: saves the input norms (N,) and each noise mode's corruption mask (N,) bool."""
    stats = {"input_norm": input_norms(split.x)}
    for mode in cfg.noise_modes:
        stats[f"corrupted_{mode}"] = noisy_labels(cfg, split, mode, cfg.noise_fraction)[1]
    torch.save(stats, run_dir / DATA_STATS)
    return {"n_train": len(split.y), "n_test": len(split.y_test)}


def run_one(ctx: Context, run_dir: Path, data: Split, kind: str, seed: int = 0, mode: str = "",
            fraction: float = 0.0, keep: torch.Tensor | None = None, steps: int = 0) -> dict:
    """One run of `kind`: 'score' (seed), 'noise' (mode, fraction, seed), 'data_stats', or 'prune'
    (keep: kept indices, steps, seed)."""
    cfg: Config = ctx.cfg
    if kind == "score":
        return score_run(cfg, data, data.y, seed, True, run_dir, ctx.device)
    if kind == "noise":
        labels = noisy_labels(cfg, data, mode, fraction)[0].to(ctx.device)
        return score_run(cfg, data, labels, seed, False, run_dir, ctx.device)
    if kind == "data_stats":
        return data_stats_run(cfg, data, run_dir)
    if kind == "prune":
        return prune_run(cfg, data, keep, seed, steps, run_dir, ctx.device)
    raise ValueError(f"unknown run kind {kind!r}")


# ---------------------------------------------------------------- plan


def subset_for(method: str, keep_fraction: float, seed: int, scores: dict[str, torch.Tensor], n: int) -> torch.Tensor:
    """Kept indices: random (seeded per fraction and seed), or the highest mean scores (keep-hardest)."""
    if method == "random":
        return random_subset(n, round(keep_fraction * n), derive_seed(CLAIM_ID, "random", keep_fraction, seed))
    return keep_hardest(scores[METHOD_SCORE[method]], keep_fraction)


def digest(index: torch.Tensor) -> str:
    """12-hex content hash of an index vector: a changed subset means a new run."""
    return hashlib.sha256(index.cpu().numpy().astype(np.int64).tobytes()).hexdigest()[:12]


def plan(ctx: Context) -> list[RunSpec | Barrier]:
    """Every replicate's score runs and label-noise runs, and the data_stats run; then (barrier) the pruned runs."""
    cfg: Config = ctx.cfg
    seeds = sorted(s for ensemble in ensemble_seeds(cfg) for s in ensemble)
    specs: list[RunSpec | Barrier] = [
        RunSpec(run_key(cfg, "score", seed=seed), f"score seed={seed}", {"kind": "score", "seed": seed})
        for seed in seeds]
    specs += [RunSpec(run_key(cfg, "noise", mode=mode, fraction=cfg.noise_fraction, seed=seed),
                      f"noise {mode} seed={seed}",
                      {"kind": "noise", "mode": mode, "fraction": cfg.noise_fraction, "seed": seed})
              for mode in cfg.noise_modes for seed in seeds]
    specs.append(RunSpec(data_stats_key(cfg), "data stats", {"kind": "data_stats"}))
    return [*specs, Barrier(prune_plan)]


def prune_plan(ctx: Context, records: list[Record]) -> list[RunSpec]:
    """The pruned runs: replicate r keeps the hardest examples of its own ensemble's mean scores (or a
    random subset seeded by its prune seed) and retrains for as many optimiser steps as a full-data run."""
    cfg: Config = ctx.cfg
    scores = [mean_scores(ensemble) for ensemble in by_replicate(cfg, of_kind(records, "score"))]
    if "input_norm" in cfg.methods:
        norms = data_stats(records)["input_norm"]
        for s in scores:
            s["input_norm"] = norms
    n = of_kind(records, "data_stats")[0]["n_train"]
    full_steps = cfg.train_config().total_steps(n)
    specs = []
    for keep_fraction in cfg.keep_fractions:
        for method in cfg.methods:
            for r in range(cfg.replicates):
                seed = prune_seed(cfg, r)
                keep = subset_for(method, keep_fraction, seed, scores[r], n)
                key = run_key(cfg, "prune", method=method, keep=keep_fraction, seed=seed, steps=full_steps,
                              subset=digest(keep))
                specs.append(RunSpec(key, f"{method} keep={keep_fraction} replicate={r}",
                                     {"kind": "prune", "keep": keep, "seed": seed, "steps": full_steps}))
    return specs
