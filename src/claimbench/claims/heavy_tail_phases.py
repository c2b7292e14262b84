"""Claim 1 — heavy-tailed phases vs batch size (Martin & Mahoney).

Claim: changing only the batch size moves MiniAlexNet's FC1 spectrum through the 5+1 phases — large
batches leave the ESD random-like (Marchenko–Pastur, soft rank ≈ 1), smaller batches give bleeding-out
→ bulk+spikes → bulk-decay → heavy-tailed — while test accuracy rises.
Source: Martin & Mahoney, "Implicit Self-Regularization in Deep Neural Networks", arXiv 1810.01075
(JMLR 2021) and ICML 2019 (arXiv 1901.08276); spec ../shared/specs/1-heavy-tail-phases.md.

Protocol: MiniAlexNet (models/mini_alexnet.py), MSE on softmax, SGD lr 0.01 momentum 0.9, lr × 0.95
per epoch, per-image standardisation (CIFAR-10 centre-cropped to 28×28). One run per (batch size,
seed); final weights cached. Analysis (never trains): FC1/FC2 ESDs per run and pooled over seeds (as
the paper), WW-style metrics (metrics/spectral.py), our automated phase label (metrics/phases.py).

Cost (train + analyse), measured on the shared 2-core CPU (wall times there were ~2.5–4× inflated by
other jobs; CPU seconds give the uncontended estimate): ci ≈ 15 CPU-s (28 s wall shared); quick (1000
Fashion-MNIST images, bs 2…500 × 3 seeds × 4 epochs, 2 worker processes) = 310 CPU-s of training over
2 processes + ≈ 9 CPU-s of analysis, i.e. ≈ 3 min uncontended (13 min wall shared); gpu ≈ 3–4 min on one
H100 (an estimate: never run); paper = 11 batch sizes × 10 seeds × 100 epochs of CIFAR-10 (days on a CPU).
Small batches dominate: at bs 2 one CPU step costs ~10–30 ms, so `quick` reaches only 2000 SGD steps at
bs 2, versus 2.5 M in the paper — phases depend on training length.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from claimbench import plotting
from claimbench.data import balanced_subset, derive_seed, load_images, random_subset, standardize_per_image
from claimbench.errors import CacheError, ParamsError
from claimbench.metrics import spectral
from claimbench.metrics.correlation import spearman_rho
from claimbench.metrics.phases import PHASE_INDEX, adjacent_inversions, classify_phase
from claimbench.models.mini_alexnet import MiniAlexNet, mse_on_softmax
from claimbench.numerics import upcast
from claimbench.params import positive
from claimbench.results import ClaimResult
from claimbench.stage import Context
from claimbench.sweep import DONE, is_done, load_record, run_cached, run_dir
from claimbench.train import TrainConfig, cpu_threads, fit, load_tensors, prepare_model, seed_everything

CLAIM_ID = "heavy_tail_phases"
LAYERS = ("fc1", "fc2")
BOOTSTRAP_REPS = 2000


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
    workers: int = field(default=1, metadata=positive())  # CPU: runs trained side by side, 1 thread each

    def __post_init__(self):
        if len(set(self.batch_sizes)) < 2 or len(set(self.seeds)) < 2:
            raise ParamsError(
                f"params: {CLAIM_ID} needs ≥ 2 distinct batch_sizes and ≥ 2 distinct seeds "
                f"(got {self.batch_sizes}, {self.seeds}); the criteria compare sizes and use seed SEs."
            )


# ---------------------------------------------------------------- data


def load_split(cfg: Config, split: str, root: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (N, C, 28, 28) per-image standardised float32, y (N,) int64) of the configured subset."""
    data = load_images(cfg.dataset, split, root)
    if split == "train" and cfg.train_per_class is not None:
        data = data.subset(balanced_subset(data.y, cfg.train_per_class, derive_seed(CLAIM_ID, "train")))
    if split == "test" and cfg.test_size is not None:
        data = data.subset(random_subset(len(data), cfg.test_size, derive_seed(CLAIM_ID, "test")))
    x = data.x
    if x.shape[-1] == 32:  # CIFAR-10: centre crop 32 → 28 as the authors' [2:-2, 2:-2]
        x = x[..., 2:-2, 2:-2]
    return standardize_per_image(x.contiguous()), data.y


# ---------------------------------------------------------------- train


def run_key(cfg: Config, batch_size: int, seed: int) -> dict:
    """What makes one run: every setting that changes its weights (not the sweep lists or workers)."""
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


def train_one(
    run_path: Path, cfg: Config, batch_size: int, seed: int, train_xy, test_xy, device: torch.device
) -> dict:
    """Train one MiniAlexNet; keep model.pt (final weights, CPU float32); return accuracies and cost."""
    t0 = time.time()
    x, y = (t.to(device) for t in train_xy)
    tx, ty = (t.to(device) for t in test_xy)
    seed_everything(seed)
    model = prepare_model(MiniAlexNet(in_channels=x.shape[1], num_classes=10), device)
    tc = TrainConfig(
        epochs=cfg.epochs,
        batch_size=batch_size,
        lr=cfg.lr,
        momentum=cfg.momentum,
        schedule="exp",
        gamma=cfg.lr_decay,
    )
    ckpt = run_path / "checkpoint.pt"
    state = fit(
        model,
        (x, y),
        tc,
        seed=seed,
        loss_fn=mse_on_softmax,
        eval_sets={"train": (x, y), "test": (tx, ty)},
        checkpoint=ckpt,
        desc=f"bs{batch_size}-seed{seed}",
    )
    torch.save({k: upcast(v.detach()).cpu() for k, v in model.state_dict().items()}, run_path / "model.pt")
    ckpt.unlink(missing_ok=True)  # the optimiser state is not needed once the run is done
    last = state.history[-1]
    return {
        "batch_size": batch_size,
        "seed": seed,
        "train_acc": last["train_acc"],
        "test_acc": last["test_acc"],
        "train_loss": last["train_loss"],
        "steps": state.step,
        "epochs": state.epoch,
        "wall_s": round(time.time() - t0, 1),
    }


def _worker(args) -> dict:
    """Process-pool entry: one thread per process (small batches scale better over processes)."""
    base, key, cfg, bs, seed, train_xy, test_xy = args
    torch.set_num_threads(1)
    return run_cached(
        base, key, lambda d: train_one(d, cfg, bs, seed, train_xy, test_xy, torch.device("cpu"))
    )


def train(ctx: Context) -> None:
    cfg: Config = ctx.cfg
    train_xy, test_xy = load_split(cfg, "train", ctx.data_root), load_split(cfg, "test", ctx.data_root)
    base = ctx.artifacts_dir / "runs"
    # Smallest batch sizes first: they are the longest runs, so a pool finishes them early.
    jobs = [(bs, s) for bs in sorted(cfg.batch_sizes) for s in cfg.seeds]
    ctx.log(f"{len(jobs)} runs on {len(train_xy[1])} training images, {cfg.epochs} epochs each")
    progress = ctx.progress(len(jobs))
    if ctx.device.type == "cpu" and cfg.workers > 1:
        args = [(base, run_key(cfg, bs, s), cfg, bs, s, train_xy, test_xy) for bs, s in jobs]
        cached = [is_done(base, run_key(cfg, bs, s)) for bs, s in jobs]
        # fork, not spawn: spawn re-runs the stage script (which has no __main__ guard) in every worker.
        with ProcessPoolExecutor(
            min(cfg.workers, os.cpu_count() or 1), mp_context=get_context("fork")
        ) as pool:
            for rec, was_cached in zip(pool.map(_worker, args), cached):
                progress.update(f"bs={rec['batch_size']} seed={rec['seed']}: test acc {rec['test_acc']:.3f} "
                                f"({rec['wall_s']} s)", cached=was_cached)
        return
    # CPU: small batches run faster on 1 thread than on 2, and are immune to oversubscription.
    with cpu_threads(1, ctx.device):
        for bs, s in jobs:
            rec = run_cached(
                base,
                run_key(cfg, bs, s),
                lambda d, bs=bs, s=s: train_one(d, cfg, bs, s, train_xy, test_xy, ctx.device),
                progress,
                f"bs={bs} seed={s}",
            )
            ctx.log(f"bs={bs} seed={s}: test acc {rec['test_acc']:.3f} ({rec['wall_s']} s)")


# ---------------------------------------------------------------- analyse


def load_run(ctx: Context, batch_size: int, seed: int) -> tuple[dict, dict[str, torch.Tensor]]:
    """(run record, {'fc1': W, 'fc2': W}) of a finished run; CacheError if it was not trained."""
    d = run_dir(ctx.artifacts_dir / "runs", run_key(ctx.cfg, batch_size, seed))
    if not (d / DONE).exists() or not (d / "model.pt").exists():
        raise CacheError(
            f"{CLAIM_ID}: run bs={batch_size} seed={seed} is missing from {d.parent}; run the train "
            f"stage first (`python stages/{CLAIM_ID}.py train --scale {ctx.scale}`)."
        )
    rec = load_record(d)
    weights = load_tensors(d / "model.pt", "weights")
    return rec, {name: weights[f"{name}.weight"] for name in LAYERS}


def layer_row(evals: np.ndarray, shape: tuple[int, int], spikes_m: int) -> dict:
    """WW metrics + our phase label for one ESD of a layer whose matrices are `shape` (out, in)."""
    n, m = max(shape), min(shape)
    row = spectral.esd_metrics(evals, Q=n / m, M=spikes_m)
    row["phase"] = classify_phase(evals, row["num_spikes"], row["mp_softrank"], row["alpha"], row["D"])
    row["phase_index"] = PHASE_INDEX[row["phase"]]
    return row


def spearman_with_ci(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int
) -> tuple[float, float, float]:
    """Spearman ρ(x, y) over runs and a 95% percentile CI from a bootstrap that resamples runs (seeds)
    within each batch size (BOOTSTRAP_REPS resamples). CI is NaN if ρ is, or if most resamples are
    constant."""
    point = float(spearman_rho(x[None], y[None])[0])
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    idx = np.concatenate([m[rng.integers(0, len(m), (BOOTSTRAP_REPS, len(m)))] for m in members], axis=1)
    boots = spearman_rho(x[idx], y[idx])
    boots = boots[np.isfinite(boots)]
    if not np.isfinite(point) or len(boots) < BOOTSTRAP_REPS // 2:
        return point, float("nan"), float("nan")
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return point, float(lo), float(hi)


def analyse(ctx: Context) -> ClaimResult:
    with cpu_threads(1, ctx.device):
        return _analyse(ctx)


def _analyse(ctx: Context) -> ClaimResult:
    cfg: Config = ctx.cfg
    sizes = sorted(set(cfg.batch_sizes))
    per_run, pooled, esds = [], [], {}
    for bs in sizes:
        mats = {name: [] for name in LAYERS}
        for seed in cfg.seeds:
            rec, weights = load_run(ctx, bs, seed)
            row = {"batch_size": bs, "seed": seed, **{k: rec[k] for k in ("train_acc", "test_acc", "steps")}}
            for name, w in weights.items():
                mats[name].append(w)
                ev = spectral.esd(w)
                metrics = layer_row(ev, tuple(w.shape), min(w.shape))
                rand = spectral.esd(spectral.shuffled([w], seed=derive_seed(CLAIM_ID, bs, seed)))
                metrics["rand_distance"] = spectral.jensen_shannon_distance(ev, rand)
                row.update({f"{name}_{k}": v for k, v in metrics.items()})
            per_run.append(row)
        prow = {"batch_size": bs, "n_seeds": len(cfg.seeds)}
        for name in LAYERS:
            ev = spectral.esd(mats[name])  # ESD pooled over seeds, as the paper
            esds[(name, bs)] = ev
            metrics = layer_row(ev, tuple(mats[name][0].shape), min(mats[name][0].shape))
            prow.update(
                {
                    f"{name}_{k}": metrics[k]
                    for k in (
                        "alpha",
                        "D",
                        "xmin",
                        "lambda_max",
                        "num_spikes",
                        "mp_softrank",
                        "stable_rank",
                        "sigma_mp",
                        "bulk_max_raw",
                        "W_scale",
                        "log_norm",
                        "log_spectral_norm",
                        "alpha_weighted",
                        "log_alpha_norm",
                        "phase",
                        "phase_index",
                    )
                }
            )
        pooled.append(prow)
    runs, table = pd.DataFrame(per_run), pd.DataFrame(pooled)
    acc = runs.groupby("batch_size").agg(
        train_acc=("train_acc", "mean"),
        test_acc=("test_acc", "mean"),
        test_acc_se=("test_acc", "sem"),
        train_acc_se=("train_acc", "sem"),
    )
    table = table.merge(acc.reset_index(), on="batch_size")
    table["gap"] = table["train_acc"] - table["test_acc"]
    for name in LAYERS:
        for k in ("alpha", "mp_softrank", "stable_rank"):
            table[f"{name}_{k}_seed_mean"] = runs.groupby("batch_size")[f"{name}_{k}"].mean().to_numpy()

    small, large = table.iloc[0], table.iloc[-1]
    bs_runs, groups = runs["batch_size"].to_numpy(float), runs["batch_size"].to_numpy()
    boot_seed = derive_seed(CLAIM_ID, "bootstrap")
    rho_alpha, rho_alpha_lo, rho_alpha_hi = spearman_with_ci(
        bs_runs, runs["fc1_alpha"].to_numpy(), groups, boot_seed
    )
    rho_soft, rho_soft_lo, rho_soft_hi = spearman_with_ci(
        bs_runs, runs["fc1_mp_softrank"].to_numpy(), groups, boot_seed
    )
    rho_sr, rho_sr_lo, rho_sr_hi = spearman_with_ci(
        bs_runs, runs["fc1_stable_rank"].to_numpy(), groups, boot_seed
    )
    acc_diff = float(small["test_acc"] - large["test_acc"])
    acc_se = float(math.hypot(small["test_acc_se"], large["test_acc_se"]))
    statistics = {
        "alpha_fc1_smallest_bs": float(small["fc1_alpha"]),
        "alpha_fc1_largest_bs": float(large["fc1_alpha"]),
        "spearman_bs_alpha_fc1": rho_alpha,
        "spearman_bs_alpha_fc1_ci_low": rho_alpha_lo,
        "spearman_bs_alpha_fc1_ci_high": rho_alpha_hi,
        "spearman_bs_softrank_fc1": rho_soft,
        "spearman_bs_softrank_fc1_ci_low": rho_soft_lo,
        "spearman_bs_softrank_fc1_ci_high": rho_soft_hi,
        "spearman_bs_stable_rank_fc1": rho_sr,
        "spearman_bs_stable_rank_fc1_ci_low": rho_sr_lo,
        "spearman_bs_stable_rank_fc1_ci_high": rho_sr_hi,
        "phase_index_smallest_bs": int(small["fc1_phase_index"]),
        "phase_index_largest_bs": int(large["fc1_phase_index"]),
        "phase_adjacent_inversions": adjacent_inversions(table["fc1_phase_index"].tolist()),
        "test_acc_smallest_bs": float(small["test_acc"]),
        "test_acc_largest_bs": float(large["test_acc"]),
        "test_acc_diff": acc_diff,
        "test_acc_diff_se": acc_se,
        "test_acc_diff_in_se": acc_diff / acc_se if acc_se > 0 else float("nan"),
        "softrank_fc1_smallest_bs": float(small["fc1_mp_softrank"]),
        "softrank_fc1_largest_bs": float(large["fc1_mp_softrank"]),
        "smallest_bs": int(small["batch_size"]),
        "largest_bs": int(large["batch_size"]),
    }
    make_figures(ctx, table, runs, esds)
    return ClaimResult(
        statistics=statistics,
        tables={"per_batch_size": table, "per_run": runs},
        seeds=list(cfg.seeds),
        setup={
            "dataset": cfg.dataset,
            "model": "MiniAlexNet (conv96-conv256-FC384-FC192-10)",
            "train_images": int(10 * cfg.train_per_class) if cfg.train_per_class else "full",
            "test_images": cfg.test_size or "full",
            "epochs": cfg.epochs,
            "batch_sizes": sizes,
            "seeds": list(cfg.seeds),
            "loss": "MSE on softmax",
            "optimizer": (f"SGD lr {cfg.lr} momentum {cfg.momentum}, lr x{cfg.lr_decay}/epoch"),
        },
        details={
            "phases_fc1": dict(zip(table["batch_size"].tolist(), table["fc1_phase"].tolist())),
            "phases_fc2": dict(zip(table["batch_size"].tolist(), table["fc2_phase"].tolist())),
        },
    )


# ---------------------------------------------------------------- figures


def make_figures(ctx: Context, table: pd.DataFrame, runs: pd.DataFrame, esds: dict) -> None:
    """FC1 ESDs with MP fits; α, soft rank and stable rank vs batch size; accuracies vs batch size."""
    sizes = table["batch_size"].tolist()
    fig, axes = plotting.subplots(1, len(sizes), figsize=(3.0 * len(sizes), 2.8), squeeze=False)
    q = max(4096, 384) / 384
    for ax, (_, row) in zip(axes[0], table.iterrows()):
        ev = esds[("fc1", row["batch_size"])]
        ev = ev[ev > 0]
        bins = np.logspace(np.log10(ev.min()), np.log10(ev.max()), 60)
        ax.hist(ev, bins=bins, density=True, alpha=0.6, label="ESD")
        s2 = row["fc1_W_scale"] ** 2  # MP fitted on λ' = λ·s², so ρ_raw(λ) = ρ'(λ·s²)·s²
        grid = np.logspace(np.log10(ev.min()), np.log10(ev.max()), 400)
        ax.plot(
            grid, spectral.mp_density(grid * s2, q, row["fc1_sigma_mp"] ** 2) * s2, color="C3", label="MP fit"
        )
        ax.set_xscale("log")
        ax.set_title(
            f"bs {row['batch_size']}: {row['fc1_phase']}\nα={row['fc1_alpha']:.2f}, "
            f"R_mp={row['fc1_mp_softrank']:.2f}",
            fontsize=9,
        )
        ax.set_xlabel("eigenvalue λ of WᵀW (FC1)")
    axes[0][0].set_ylabel("density")
    axes[0][0].legend(fontsize=8)
    plotting.save(fig, ctx.figures_dir / "fc1_esd_per_batch_size.png")

    fig, axes = plotting.subplots(1, 3, figsize=(12, 3.3))
    for ax, key, label in zip(
        axes,
        ("alpha", "mp_softrank", "stable_rank"),
        ("power-law α", "MP soft rank", "stable rank (per seed)"),
    ):
        for name, color in (("fc1", "C0"), ("fc2", "C1")):
            ax.scatter(runs["batch_size"], runs[f"{name}_{key}"], color=color, alpha=0.4, s=12)
            pooled = table[f"{name}_{key}"] / (table["n_seeds"] if key == "stable_rank" else 1)
            ax.plot(sizes, pooled, "o-", color=color, label=f"{name.upper()} (pooled over seeds)")
        ax.set_xscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel(label)
    axes[0].axhline(6, color="grey", ls=":", lw=1)
    axes[0].legend(fontsize=8)
    plotting.save(fig, ctx.figures_dir / "spectral_metrics_vs_batch_size.png")

    fig, ax = plotting.subplots(figsize=(4.5, 3.3))
    for split in ("train", "test"):
        ax.errorbar(
            sizes, table[f"{split}_acc"], yerr=table[f"{split}_acc_se"], marker="o", capsize=3, label=split
        )
    ax.set_xscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("accuracy (mean ± seed SE)")
    ax.legend()
    plotting.save(fig, ctx.figures_dir / "accuracy_vs_batch_size.png")
