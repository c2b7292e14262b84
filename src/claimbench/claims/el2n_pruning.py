"""Claim 5 — EL2N data pruning: scores taken early in training pick the examples that matter.

Paul, Ganguli & Dziugaite, "Deep Learning on a Data Diet", NeurIPS 2021, arXiv 2107.07075; checked
against Kirsch, "Does 'Deep Learning on a Data Diet' reproduce?", arXiv 2303.14753. Spec:
shared/specs/5-el2n-pruning.md. Card: cards/el2n_pruning.yaml.

Protocol (train → score → prune → retrain, every run cached):
1. `score_seeds` full-data runs. Each records GraNd at init (step 0) and, after `score_epoch` epochs,
   EL2N and GraNd (eval mode, un-augmented inputs); its final test accuracy is a full-data baseline.
   Scores are averaged over the runs (data_diet/get_mean_score.py).
2. For each keep fraction, score (EL2N keep-hardest, random, GraNd@init keep-hardest) and seed: retrain
   a fresh network on the kept subset for exactly as many optimiser steps as the full-data run.
3. Label noise: `noise_seeds` runs on labels with `noise_fraction` corrupted (per mode: 'permute' =
   data_diet randomize_labels, 'flip' = forced wrong), trained to `score_epoch`; EL2N flags corruptions.

Expected cost (train + analyse): ci ≈ 10–20 s on a 2-core CPU (3 runs' worth of a 1k subset);
quick ≈ 3 min on a 2-core CPU (measured 3 min 16 s on a loaded CPU, 1 thread; fast CNN, 12k-image
Fashion-MNIST subset, 21 training runs); gpu ≈ 3–5 min on one H100 (not yet measured; ResNet-18
low-res, 10k images, 52 runs); paper = ResNet-18 on all 60k images, 200 epochs, 10 inits: GPU-days.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from claimbench import plotting, sweep
from claimbench.data import (
    balanced_subset,
    derive_seed,
    inject_label_noise,
    load_images,
    normalize,
    random_subset,
)
from claimbench.errors import CacheError, ParamsError
from claimbench.metrics.example_scores import el2n_scores, grand_scores, input_norms, keep_hardest
from claimbench.metrics.ranking import auroc, mean_se, spearman, top_fraction_share
from claimbench.models.data_diet_nets import build_model
from claimbench.params import in_unit_interval, positive
from claimbench.results import ClaimResult
from claimbench.stage import Context
from claimbench.train import Callback, TrainConfig, TrainState, fit, load_tensors, prepare_model, seed_everything

CLAIM_ID = "el2n_pruning"
Method = Literal["el2n", "random", "grand_init", "grand_early", "input_norm"]
SCORE_NAMES = ("el2n_early", "grand_early", "grand_init", "el2n_init", "input_norm")
METHOD_SCORE = {"el2n": "el2n_early", "grand_init": "grand_init", "grand_early": "grand_early",
                "input_norm": "input_norm"}
METHOD_LABEL = {"el2n": "EL2N (early)", "random": "random", "grand_init": "GraNd at init",
                "grand_early": "GraNd (early)", "input_norm": "input norm"}
SUMMARY = "summary.json"
SCORES = "mean_scores.pt"


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
    score_seeds: int = field(default=3, metadata=positive())     # initialisations averaged
    keep_fractions: list[float] = field(default_factory=lambda: [0.7, 0.5], metadata=in_unit_interval())
    methods: list[Method] = field(default_factory=lambda: ["el2n", "random", "grand_init"])
    prune_seeds: int = field(default=3, metadata=positive())
    noise_fraction: float = field(default=0.1, metadata=in_unit_interval())
    noise_modes: list[Literal["permute", "flip"]] = field(default_factory=lambda: ["permute", "flip"])
    noise_seeds: int = field(default=3, metadata=positive())
    grand_batch: int = field(default=256, metadata=positive())   # examples per vmap chunk

    def __post_init__(self):
        where = f"params: {CLAIM_ID}"
        if self.score_epoch >= self.epochs:
            raise ParamsError(f"{where}.score_epoch = {self.score_epoch} must be < epochs = {self.epochs} "
                              f"(scores are taken early in training; the paper uses 20 of 200).")
        if any(not 0 < f < 1 for f in self.keep_fractions) or not self.keep_fractions:
            raise ParamsError(f"{where}.keep_fractions = {self.keep_fractions} must be non-empty, each in (0, 1) "
                              f"(the full-data run is always made).")
        for need in (0.7, 0.5):
            if not any(abs(f - need) < 1e-9 for f in self.keep_fractions):
                raise ParamsError(f"{where}.keep_fractions must include {need} (criteria E1/E2/E4 read it).")
        for need in ("el2n", "random", "grand_init"):
            if need not in self.methods:
                raise ParamsError(f"{where}.methods must include {need!r} (the card's criteria read it).")
        if "permute" not in self.noise_modes:
            raise ParamsError(f"{where}.noise_modes = {self.noise_modes} must include 'permute' (criterion E5).")
        if self.score_seeds < 2 or self.prune_seeds < 2:
            raise ParamsError(f"{where}: score_seeds and prune_seeds must be ≥ 2 (standard errors need them).")

    def train_config(self) -> TrainConfig:
        """The full-data recipe (data_diet: SGD Nesterov, lr × 0.2 at fixed fractions, drop-last)."""
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer="sgd",
                           momentum=self.momentum, nesterov=True, weight_decay=self.weight_decay,
                           schedule="step", gamma=0.2, milestones=tuple(self.milestones), augment=self.augment,
                           drop_last=True, checkpoint_every=max(1, self.epochs // 4))


# ---------------------------------------------------------------- data


@dataclass
class Split:
    """Normalised tensors on the compute device: x (N, C, H, W), y (N,) int64."""

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int


def load_split(ctx: Context) -> Split:
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
    Saves its scores to run_dir/scores.pt; returns its final test accuracy (%) if full."""
    model = new_model(cfg, split, derive_seed(CLAIM_ID, "score-init", seed), device)
    cb = ScoreCallback(split.x, y, cfg.score_epoch, with_grand=full, grand_batch=cfg.grand_batch)
    checkpoint = run_dir / "checkpoint.pt"
    state = fit(model, (split.x, y), cfg.train_config(), seed=derive_seed(CLAIM_ID, "score-data", seed),
                eval_sets={"test": (split.x_test, split.y_test)}, callbacks=[cb], checkpoint=checkpoint,
                desc=f"score seed {seed}", stop_when=None if full else (lambda s: s.epoch >= cfg.score_epoch))
    torch.save(cb.scores, run_dir / "scores.pt")
    checkpoint.unlink(missing_ok=True)
    return {"test_acc": 100 * state.history[-1]["test_acc"], "steps": state.step}


def prune_run(cfg: Config, split: Split, keep: torch.Tensor, seed: int, steps: int, run_dir: Path,
              device: torch.device) -> dict:
    """A fresh network trained on the kept examples for exactly `steps` optimiser steps; test acc in %."""
    model = new_model(cfg, split, derive_seed(CLAIM_ID, "prune-init", seed), device)
    keep = keep.to(split.x.device)
    tcfg = dataclasses.replace(cfg.train_config(), steps=steps)
    checkpoint = run_dir / "checkpoint.pt"
    state = fit(model, (split.x[keep], split.y[keep]), tcfg, seed=derive_seed(CLAIM_ID, "prune-data", seed),
                eval_sets={"test": (split.x_test, split.y_test)}, checkpoint=checkpoint, desc=f"prune {run_dir.name}")
    checkpoint.unlink(missing_ok=True)
    return {"test_acc": 100 * state.history[-1]["test_acc"], "steps": state.step, "n_kept": len(keep)}


def subset_for(method: str, keep_fraction: float, seed: int, scores: dict[str, torch.Tensor], n: int) -> torch.Tensor:
    """Kept indices: random (seeded per fraction and seed), or the highest mean scores (keep-hardest)."""
    if method == "random":
        return random_subset(n, round(keep_fraction * n), derive_seed(CLAIM_ID, "random", keep_fraction, seed))
    return keep_hardest(scores[METHOD_SCORE[method]], keep_fraction)


def train(ctx: Context) -> None:
    cfg: Config = ctx.cfg
    split = load_split(ctx)
    runs = ctx.artifacts_dir / "runs"
    base = {"data": [cfg.dataset, cfg.train_size, cfg.test_size], "model": [cfg.model, cfg.width],
            "recipe": dataclasses.asdict(cfg.train_config()), "score_epoch": cfg.score_epoch}
    n = len(split.y)
    full_steps = cfg.train_config().total_steps(n)

    progress = ctx.progress(cfg.score_seeds + len(cfg.noise_modes) * cfg.noise_seeds
                            + len(cfg.keep_fractions) * len(cfg.methods) * cfg.prune_seeds)
    full, per_seed = [], []
    for seed in range(cfg.score_seeds):
        key = {**base, "kind": "score", "seed": seed}
        rec = sweep.run_cached(runs, key, lambda d, s=seed: score_run(cfg, split, split.y, s, True, d, ctx.device),
                               progress, f"score seed={seed}")
        full.append({"seed": seed, **rec})
        per_seed.append(_load_scores(runs, key))
    scores = {name: torch.stack([s[name] for s in per_seed]).mean(0) for name in per_seed[0]}
    scores["input_norm"] = input_norms(split.x)
    torch.save({"mean": scores, "per_seed": per_seed}, ctx.artifacts_dir / SCORES)

    noise = []
    for mode in cfg.noise_modes:
        noisy_y, corrupted = inject_label_noise(split.y.cpu(), cfg.noise_fraction, split.num_classes,
                                                derive_seed(CLAIM_ID, "noise", mode), mode)
        noisy_y = noisy_y.to(ctx.device)
        el2n = []
        for seed in range(cfg.noise_seeds):
            key = {**base, "kind": "noise", "mode": mode, "fraction": cfg.noise_fraction, "seed": seed}
            sweep.run_cached(runs, key, lambda d, s=seed, labels=noisy_y:
                             score_run(cfg, split, labels, s, False, d, ctx.device),
                             progress, f"noise {mode} seed={seed}")
            el2n.append(_load_scores(runs, key)["el2n_early"])
        noise.append({"mode": mode, "el2n": torch.stack(el2n).mean(0).tolist(), "corrupted": corrupted.tolist()})

    pruned = []
    for keep_fraction in cfg.keep_fractions:
        for method in cfg.methods:
            for seed in range(cfg.prune_seeds):
                keep = subset_for(method, keep_fraction, seed, scores, n)
                key = {**base, "kind": "prune", "method": method, "keep": keep_fraction, "seed": seed,
                       "steps": full_steps, "subset": _digest(keep)}
                rec = sweep.run_cached(runs, key,
                                       lambda d, k=keep, s=seed: prune_run(cfg, split, k, s, full_steps, d, ctx.device),
                                       progress, f"{method} keep={keep_fraction} seed={seed}")
                pruned.append({"method": method, "keep_fraction": keep_fraction, "seed": seed, **rec})
                ctx.log(f"{method} keep={keep_fraction} seed={seed}: test acc {rec['test_acc']:.2f}%")
    summary = {"full": full, "pruned": pruned, "noise": noise, "full_steps": full_steps, "n_train": n,
               "n_test": len(split.y_test)}
    (ctx.artifacts_dir / SUMMARY).write_text(json.dumps(summary))


def _load_scores(runs: Path, key: dict) -> dict[str, torch.Tensor]:
    """The scores.pt of a finished score run: name -> (N,) float32."""
    path = sweep.run_dir(runs, key) / "scores.pt"
    if not path.exists():
        raise CacheError(f"{path} missing although its run is marked done; delete {path.parent} to rerun it.")
    return load_tensors(path, "EL2N/GraNd scores")


def _digest(index: torch.Tensor) -> str:
    """12-hex content hash of an index vector: a changed subset means a new run."""
    return hashlib.sha256(index.cpu().numpy().astype(np.int64).tobytes()).hexdigest()[:12]


# ---------------------------------------------------------------- analysis


def analyse(ctx: Context) -> ClaimResult:
    cfg: Config = ctx.cfg
    path = ctx.artifacts_dir / SUMMARY
    if not path.exists():
        raise CacheError(f"{path} missing: run `python stages/{CLAIM_ID}.py train --scale {ctx.scale}` first.")
    summary = sweep.read_json(path, f"rerun `python stages/{CLAIM_ID}.py train --scale {ctx.scale}`")
    scores = load_tensors(ctx.artifacts_dir / SCORES, "mean EL2N/GraNd scores")
    if not isinstance(scores, dict) or "mean" not in scores:
        raise CacheError(f"{ctx.artifacts_dir / SCORES} holds no 'mean' scores; delete it and rerun the train stage.")
    scores = scores["mean"]

    acc = accuracy_table(summary)
    stats = pruning_statistics(acc)
    corr = correlation_table(scores)
    for a, b in (("el2n_early", "grand_early"), ("grand_init", "input_norm"), ("el2n_early", "grand_init")):
        stats[f"spearman_{a}_{b}"] = spearman(scores[a], scores[b])
    noise = noise_table(summary["noise"])
    for row in noise.to_dict("records"):
        stats[f"auroc_el2n_noise_{row['mode']}"] = row["auroc"]
        stats[f"top10_corrupted_share_{row['mode']}"] = row["top10_corrupted_share"]

    plot_accuracy(acc, ctx.figures_dir / "accuracy_vs_pruned.png", ctx.scale)
    plot_correlations(corr, ctx.figures_dir / "rank_correlation_heatmap.png")
    seeds = sorted({r["seed"] for r in summary["full"]} | {r["seed"] for r in summary["pruned"]})
    setup = {"dataset": f"{cfg.dataset} ({summary['n_train']} train / {summary['n_test']} test, balanced)",
             "model": cfg.model, "score_epoch": cfg.score_epoch, "epochs_full_data": cfg.epochs,
             "optimiser_steps_every_run": summary["full_steps"], "score_inits": cfg.score_seeds,
             "prune_seeds": cfg.prune_seeds}
    return ClaimResult(stats, {"accuracy": acc, "score_rank_correlations": corr.reset_index(names="score"),
                               "label_noise": noise}, seeds, setup,
                       {"full_data_runs": summary["full"], "pruned_runs": summary["pruned"]})


def accuracy_table(summary: dict) -> pd.DataFrame:
    """One row per (method, keep fraction): mean, SE and n of test accuracy (%); full data for every method."""
    full_acc = [r["test_acc"] for r in summary["full"]]
    df = pd.DataFrame(summary["pruned"])
    rows = []
    for method in df["method"].unique():
        m, se = mean_se(full_acc)
        rows.append({"method": method, "keep_fraction": 1.0, "fraction_pruned": 0.0, "test_acc": m, "se": se,
                     "n": len(full_acc)})
        for keep, grp in df[df["method"] == method].groupby("keep_fraction"):
            m, se = mean_se(grp["test_acc"].to_numpy())
            rows.append({"method": method, "keep_fraction": keep, "fraction_pruned": round(1 - keep, 4),
                         "test_acc": m, "se": se, "n": len(grp)})
    return pd.DataFrame(rows).sort_values(["method", "fraction_pruned"]).reset_index(drop=True)


def _cell(acc: pd.DataFrame, method: str, pruned: float) -> tuple[float, float]:
    row = acc[(acc["method"] == method) & (np.isclose(acc["fraction_pruned"], pruned))]
    if row.empty:
        return float("nan"), float("nan")
    return float(row["test_acc"].iloc[0]), float(row["se"].iloc[0])


def pruning_statistics(acc: pd.DataFrame) -> dict[str, float]:
    """The card's accuracy statistics, in percentage points; `_z` = difference / combined SE."""
    stats: dict[str, float] = {}
    full, full_se = _cell(acc, "random", 0.0)
    stats["full_data_acc"], stats["full_data_acc_se"] = full, full_se
    for method in acc["method"].unique():
        for pruned in acc[acc["method"] == method]["fraction_pruned"]:
            if pruned > 0:
                m, se = _cell(acc, method, pruned)
                stats[f"{method}_acc_pruned{round(100 * pruned)}"] = m
                stats[f"{method}_acc_pruned{round(100 * pruned)}_se"] = se
    for method, pruned in (("el2n", 0.3), ("el2n", 0.5), ("grand_init", 0.3), ("grand_init", 0.5)):
        m, se = _cell(acc, method, pruned)
        r, r_se = _cell(acc, "random", pruned)
        tag = f"{method}_minus_random_pruned{round(100 * pruned)}"
        stats[tag] = m - r
        combined = float(np.hypot(se, r_se))
        stats[f"{tag}_se"] = combined
        stats[f"{tag}_z"] = (m - r) / combined if combined > 0 else float("nan")
    for pruned in (0.3, 0.5):
        m, _ = _cell(acc, "el2n", pruned)
        stats[f"full_minus_el2n_pruned{round(100 * pruned)}"] = full - m
    return stats


def correlation_table(scores: dict[str, torch.Tensor]) -> pd.DataFrame:
    names = [s for s in SCORE_NAMES if s in scores]
    mat = [[spearman(scores[a], scores[b]) for b in names] for a in names]
    return pd.DataFrame(mat, index=names, columns=names)


def noise_table(noise: list[dict]) -> pd.DataFrame:
    rows = []
    for rec in noise:
        el2n, corrupted = np.asarray(rec["el2n"]), np.asarray(rec["corrupted"], bool)
        rows.append({"mode": rec["mode"], "n_corrupted": int(corrupted.sum()), "base_rate": float(corrupted.mean()),
                     "auroc": auroc(el2n, corrupted),
                     "top10_corrupted_share": top_fraction_share(el2n, corrupted, 0.1)})
    return pd.DataFrame(rows)


def plot_accuracy(acc: pd.DataFrame, path: Path, scale: str) -> None:
    """Test accuracy vs fraction pruned per score, ± 1 SE (the paper's figure 1 layout)."""
    fig, ax = plotting.subplots(figsize=(5.2, 3.8))
    for method, grp in acc.groupby("method", sort=False):
        ax.errorbar(100 * grp["fraction_pruned"], grp["test_acc"], yerr=grp["se"].fillna(0), marker="o",
                    capsize=3, label=METHOD_LABEL.get(method, method))
    full, se = _cell(acc, "random", 0.0)
    ax.axhspan(full - se, full + se, color="grey", alpha=0.2, lw=0, label="full data ± 1 SE")
    ax.set(xlabel="% of training data pruned", ylabel="test accuracy (%)", title=f"EL2N data pruning ({scale})")
    ax.legend(frameon=False)
    plotting.save(fig, path)


def plot_correlations(corr: pd.DataFrame, path: Path) -> None:
    import seaborn as sns

    fig, ax = plotting.subplots(figsize=(4.8, 4.0))
    sns.heatmap(corr, annot=True, fmt=".2f", vmin=-1, vmax=1, cmap="vlag", ax=ax, square=True)
    ax.set_title("Spearman ρ between mean scores")
    plotting.save(fig, path)
