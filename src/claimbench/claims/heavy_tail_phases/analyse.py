"""Analyse side of heavy_tail_phases: FC1/FC2 ESDs per run and pooled over seeds (as the paper),
WW-style metrics (metrics/spectral.py), our phase label (metrics/phases.py), Spearman ρ with a
bootstrap CI over runs (reported), and the gating statistics' per-seed values (a seed = one run per
batch size, the protocol's replicate) with their null draws (batch-size labels shuffled within each
seed). A run whose FC weights are not finite (diverged) gets NaN metrics and accuracies, never numbers.
Never trains."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from claimbench.claims.heavy_tail_phases import CLAIM_ID, LAYERS, Config
from claimbench.contract import Context
from claimbench.data import derive_seed
from claimbench.intervals import Samples, correlations, labels, replicates
from claimbench.metrics import spectral
from claimbench.metrics.correlation import spearman_rho
from claimbench.metrics.phases import PHASE_INDEX, adjacent_inversions, classify_phase
from claimbench.results import ClaimResult
from claimbench.sweep import Record
from claimbench.train import cpu_threads

BOOTSTRAP_REPS = 2000
NULL_DRAWS, NULL_SEED = 2000, 14  # seeded null draws per gating criterion (issue 14)
DIVERGED = "diverged"  # phase label of a run (or pooled ESD) whose weights hold NaN or inf
# Gating statistics of each criterion (card v2), all per seed: see seed_values.
CRITERION_STATS = {
    "C2": ("softrank_fc1_rho_per_seed", "stable_rank_fc1_rho_per_seed"),
    "C3": ("phase_fc1_largest_bs_per_seed", "phase_fc1_smallest_bs_per_seed", "phase_fc1_inversions_per_seed"),
    "C4": ("test_acc_gain_per_seed", "test_acc_rho_per_seed"),
}
POOLED_METRICS = ("alpha", "D", "xmin", "lambda_max", "num_spikes", "mp_softrank", "stable_rank", "sigma_mp",
                  "bulk_max_raw", "W_scale", "log_norm", "log_spectral_norm", "alpha_weighted", "log_alpha_norm",
                  "phase", "phase_index")
RUN_METRICS = ("alpha", "mp_softrank", "stable_rank", "phase_index")  # NaN in a diverged run's row
NAN = float("nan")
MODEL_LABEL = {"mini_alexnet": "MiniAlexNet (conv96-conv256-FC384-FC192-10)", "mlp3": "MLP3 (784-300-100-10)"}


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


def seed_grid(runs: pd.DataFrame, column: str) -> np.ndarray:
    """(seeds ascending, batch sizes ascending) float array of one per-run column; NaN where a run is missing."""
    grid = runs.pivot(index="seed", columns="batch_size", values=column)
    return grid.sort_index().sort_index(axis=1).to_numpy(np.float64)


def seed_values(bs: np.ndarray, grids: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The gating statistics' per-seed values from (..., seeds, batch sizes) grids of per-run FC1 soft rank
    ("softrank"), stable rank ("stable_rank"), phase index ("phase") and test accuracy ("test_acc"), batch
    sizes `bs` ascending along the last axis. Returns name -> (..., seeds): Spearman ρ(batch size, soft rank
    / stable rank) within the seed; phase index at the largest / smallest batch size; adjacent inversions
    (pairs, in increasing batch size, where the larger size has the higher phase index); test accuracy at
    the smallest minus at the largest batch size, and Spearman ρ(batch size, test accuracy). A NaN
    (diverged or missing run) makes its seed's value NaN."""
    x = np.broadcast_to(np.asarray(bs, np.float64), grids["softrank"].shape)
    phase = grids["phase"]
    with np.errstate(invalid="ignore"):
        steps_up = (np.diff(phase, axis=-1) > 0).sum(-1)
    return {
        "softrank_fc1_rho_per_seed": spearman_rho(x, grids["softrank"]),
        "stable_rank_fc1_rho_per_seed": spearman_rho(x, grids["stable_rank"]),
        "phase_fc1_largest_bs_per_seed": phase[..., -1],
        "phase_fc1_smallest_bs_per_seed": phase[..., 0],
        "phase_fc1_inversions_per_seed": np.where(np.isnan(phase).any(-1), NAN, steps_up),
        "test_acc_gain_per_seed": grids["test_acc"][..., 0] - grids["test_acc"][..., -1],
        "test_acc_rho_per_seed": spearman_rho(x, grids["test_acc"]),
    }


def seed_samples(name: str, values: np.ndarray, points: int) -> Samples:
    """A gating statistic's per-seed values as the Samples kind its form needs (claimbench.intervals):
    rank correlations over `points` batch sizes, phase labels and inversion counts as labels, and the
    accuracy gain as plain replicates."""
    if name.endswith("_rho_per_seed"):
        return correlations(values, points)
    if name.startswith("phase_"):
        return labels(values)
    return replicates(values)


def null_draws(bs: np.ndarray, grids: dict[str, np.ndarray], n: int = NULL_DRAWS,
               seed: int = NULL_SEED) -> dict[str, list[dict[str, Samples]]]:
    """Criterion id -> `n` seeded draws of its statistics with the effect absent: within each seed, the
    batch-size labels are shuffled across that seed's runs (one permutation per seed and draw, shared by
    all of a run's metrics), so the per-run values and the seeds are the data's and only their link to
    batch size is broken."""
    rng = np.random.default_rng(seed)
    shape = grids["softrank"].shape
    perm = rng.permuted(np.tile(np.arange(shape[-1]), (n, *shape[:-1], 1)), axis=-1)
    shuffled = {k: np.take_along_axis(np.broadcast_to(g, (n, *shape)), perm, axis=-1) for k, g in grids.items()}
    vals = seed_values(bs, shuffled)
    return {cid: [{name: seed_samples(name, vals[name][i], len(bs)) for name in names} for i in range(n)]
            for cid, names in CRITERION_STATS.items()}


def analyse(records: list[Record], ctx: Context) -> ClaimResult:
    """The claim's statistics from the finished runs (on 1 CPU thread: small eigensolves run faster)."""
    with cpu_threads(1, ctx.device):
        return _analyse(records, ctx.cfg)


def _by_batch_size(records: list[Record]) -> dict[int, list[Record]]:
    """Records grouped by batch size, ascending; seeds in plan order within each."""
    groups: dict[int, list[Record]] = {}
    for rec in sorted(records, key=lambda r: r.key["batch_size"]):
        groups.setdefault(rec.key["batch_size"], []).append(rec)
    return groups


def lr_steps(steps: int, epochs: int, decay: float) -> float:
    """Learning-rate-weighted SGD steps Σ_t lr_t / lr_0 of a run of `steps` steps over `epochs` equal epochs
    with the lr × `decay` after every epoch: the run's training time in steps at the initial lr."""
    per_epoch = steps / epochs
    return float(steps if decay == 1 else per_epoch * (1 - decay**epochs) / (1 - decay))


def regime_point(lr: float, batch_sizes, lr_steps_smallest) -> dict[str, float]:
    """Card v5's regime R2 in the currencies of SGD noise: `temperature_smallest_bs` T = lr_0 / the smallest
    batch size, and `lr_time_smallest_bs` t = Σ_t lr_t = lr_0 × lr_steps of the smallest batch size's runs,
    fewest over seeds (`lr_steps_smallest`: one value per seed). A missing or NaN run makes t NaN (unmet)."""
    steps = np.asarray(lr_steps_smallest, np.float64)
    t = float(lr * steps.min()) if steps.size and np.isfinite(steps).all() else NAN
    return {"temperature_smallest_bs": float(lr / min(batch_sizes)), "lr_time_smallest_bs": t}


def _finite(w: torch.Tensor) -> bool:
    return bool(torch.isfinite(w).all())


def _spectra(records: list[Record], decay: float) -> tuple[list[dict], list[dict], dict]:
    """(per-run rows (lr_steps: see lr_steps; `decay` = the lr factor per epoch), per-batch-size rows of
    the seed-pooled ESDs, {(layer, batch size): pooled eigenvalues (ascending, float64)}). A run with a
    non-finite FC weight is `diverged`: its metrics and accuracies are NaN, and so is every pooled metric of
    its batch size (no pooled ESD)."""
    per_run, pooled, esds = [], [], {}
    for bs, group in _by_batch_size(records).items():
        mats = {name: [] for name in LAYERS}
        for rec in group:
            seed = rec.key["seed"]
            weights = rec.tensors("model.pt", "weights")
            row = {"batch_size": bs, "seed": seed, **{k: rec[k] for k in ("train_acc", "test_acc", "steps")},
                   "lr_steps": lr_steps(rec["steps"], rec["epochs"], decay)}
            diverged = not all(_finite(weights[f"{name}.weight"]) for name in LAYERS)
            if diverged:
                row.update(train_acc=NAN, test_acc=NAN)  # the argmax of NaN logits measures nothing
            for name in LAYERS:
                w = weights[f"{name}.weight"]
                mats[name].append(w)
                if diverged:
                    row.update({f"{name}_{k}": NAN for k in RUN_METRICS}, **{f"{name}_phase": DIVERGED})
                    continue
                ev = spectral.esd(w)
                metrics = layer_row(ev, tuple(w.shape), min(w.shape))
                rand = spectral.esd(spectral.shuffled([w], seed=derive_seed(CLAIM_ID, bs, seed)))
                metrics["rand_distance"] = spectral.jensen_shannon_distance(ev, rand)
                row.update({f"{name}_{k}": v for k, v in metrics.items()})
            per_run.append(row)
        prow = {"batch_size": bs, "n_seeds": len(group)}
        for name in LAYERS:
            if not all(_finite(w) for w in mats[name]):
                prow.update({f"{name}_{k}": NAN for k in POOLED_METRICS}, **{f"{name}_phase": DIVERGED})
                continue
            ev = spectral.esd(mats[name])  # ESD pooled over seeds, as the paper
            esds[(name, bs)] = ev
            metrics = layer_row(ev, tuple(mats[name][0].shape), min(mats[name][0].shape))
            prow.update({f"{name}_{k}": metrics[k] for k in POOLED_METRICS})
        pooled.append(prow)
    return per_run, pooled, esds


def _mean(s: pd.Series) -> float:
    return s.mean(skipna=False)  # a NaN (diverged) run makes its batch size's mean NaN, never skipped


def _sem(s: pd.Series) -> float:
    return s.sem(skipna=False)


def _index(v) -> float | int:
    """A phase index as an int, or NaN (diverged)."""
    return int(v) if np.isfinite(v) else NAN


def _analyse(records: list[Record], cfg: Config) -> ClaimResult:
    per_run, pooled, esds = _spectra(records, cfg.lr_decay)
    runs, table = pd.DataFrame(per_run), pd.DataFrame(pooled)
    acc = runs.groupby("batch_size").agg(
        train_acc=("train_acc", _mean),
        test_acc=("test_acc", _mean),
        test_acc_se=("test_acc", _sem),
        train_acc_se=("train_acc", _sem),
    )
    table = table.merge(acc.reset_index(), on="batch_size")
    table["gap"] = table["train_acc"] - table["test_acc"]
    for name in LAYERS:
        for k in ("alpha", "mp_softrank", "stable_rank"):
            table[f"{name}_{k}_seed_mean"] = runs.groupby("batch_size")[f"{name}_{k}"].agg(_mean).to_numpy()

    small, large = table.iloc[0], table.iloc[-1]
    bs_runs, groups = runs["batch_size"].to_numpy(float), runs["batch_size"].to_numpy()
    boot_seed = derive_seed(CLAIM_ID, "bootstrap")
    rho = {
        k: spearman_with_ci(bs_runs, runs[f"fc1_{k}"].to_numpy(), groups, boot_seed)
        for k in ("alpha", "mp_softrank", "stable_rank")
    }
    acc_diff = float(small["test_acc"] - large["test_acc"])
    acc_se = float(math.hypot(small["test_acc_se"], large["test_acc_se"]))
    statistics = {
        "alpha_fc1_smallest_bs": float(small["fc1_alpha"]),
        "alpha_fc1_largest_bs": float(large["fc1_alpha"]),
    }
    for name, k in (("alpha", "alpha"), ("softrank", "mp_softrank"), ("stable_rank", "stable_rank")):
        point, lo, hi = rho[k]
        statistics[f"spearman_bs_{name}_fc1"] = point
        statistics[f"spearman_bs_{name}_fc1_ci_low"] = lo
        statistics[f"spearman_bs_{name}_fc1_ci_high"] = hi
    statistics.update({
        "phase_index_smallest_bs": _index(small["fc1_phase_index"]),
        "phase_index_largest_bs": _index(large["fc1_phase_index"]),
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
    })
    # Per seed (the replicate): grids (seeds, batch sizes) of the per-run values the gating checks read.
    bs = np.array(sorted(runs["batch_size"].unique()), np.float64)
    grids = {k: seed_grid(runs, col) for k, col in (("softrank", "fc1_mp_softrank"), ("stable_rank", "fc1_stable_rank"),
                                                    ("phase", "fc1_phase_index"), ("test_acc", "test_acc"))}
    train_largest = seed_grid(runs, "train_acc")[:, -1]
    statistics["train_acc_largest_bs"] = float(np.mean(train_largest))  # regime R1: NaN if a run is missing
    statistics["train_acc_largest_bs_min"] = float(np.min(train_largest))
    # the smallest batch size's training time in lr-weighted steps, fewest over seeds (card v3's R2; reported)
    statistics["lr_steps_smallest_bs"] = float(np.min(seed_grid(runs, "lr_steps")[:, 0]))
    # regime R2 (card v5, gates C3): the smallest batch size's SGD temperature and lr-time (see regime_point)
    statistics.update(regime_point(cfg.lr, bs, seed_grid(runs, "lr_steps")[:, 0]))
    return ClaimResult(
        statistics=statistics,
        samples={name: seed_samples(name, v, len(bs)) for name, v in seed_values(bs, grids).items()},
        null_draws=null_draws(bs, grids),
        tables={"per_batch_size": table, "per_run": runs},
        seeds=list(cfg.seeds),
        setup={
            "dataset": cfg.dataset,
            "model": MODEL_LABEL[cfg.model],
            "train_images": int(10 * cfg.train_per_class) if cfg.train_per_class else "full",
            "test_images": cfg.test_size or "full",
            "epochs": cfg.epochs,
            "batch_sizes": sorted(set(cfg.batch_sizes)),
            "seeds": list(cfg.seeds),
            "loss": "MSE on softmax",
            "optimizer": (f"SGD lr {cfg.lr} momentum {cfg.momentum}, lr x{cfg.lr_decay}/epoch"),
        },
        details={
            "phases_fc1": dict(zip(table["batch_size"].tolist(), table["fc1_phase"].tolist())),
            "phases_fc2": dict(zip(table["batch_size"].tolist(), table["fc2_phase"].tolist())),
        },
        figure_data={"esds": esds},
    )
