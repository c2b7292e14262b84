"""EL2N pruning, analysis: accuracy vs fraction pruned per score, rank correlations between the mean
scores, and how well EL2N flags corrupted labels — all from the finished runs' records and files.

The gating statistics come per replicate (its own score ensemble, label-noise ensemble and paired pruned
runs, see the package docstring): `samples[name]` holds one value per replicate, and `null_draws` /
`control_draws` (claims/el2n_pruning/nulls.py) simulate each gating criterion with the effect absent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from claimbench.claims.el2n_pruning import (
    SCORE_NAMES,
    SCORES,
    Config,
    by_replicate,
    data_stats,
    ensemble_seeds,
    mean_scores,
    of_kind,
    prune_seed,
)
from claimbench.claims.el2n_pruning.nulls import calibration_draws
from claimbench.contract import Context
from claimbench.intervals import correlations, replicates
from claimbench.metrics.ranking import auroc, mean_se, spearman, top_fraction_share
from claimbench.results import ClaimResult
from claimbench.sweep import Record

# Paired per-replicate differences (pp): name -> (minuend column, subtrahend column) of the replicate table.
DIFFERENCES = {f"{a}_minus_{b}_pruned{p}": (f"{a}_acc_pruned{p}" if a != "full" else "full_data_acc",
                                            f"{b}_acc_pruned{p}")
               for p in (30, 50) for a, b in (("el2n", "random"), ("grand_init", "random"), ("full", "el2n"))}


def analyse(records: list[Record], ctx: Context) -> ClaimResult:
    cfg: Config = ctx.cfg
    ensembles = by_replicate(cfg, of_kind(records, "score"))
    full = [{"replicate": r, "seed": run.key["seed"], **run.record} for r, ens in enumerate(ensembles) for run in ens]
    replicate_of = {prune_seed(cfg, r): r for r in range(cfg.replicates)}
    pruned = [{"method": run.key["method"], "keep_fraction": run.key["keep"], "seed": run.key["seed"],
               "replicate": replicate_of[run.key["seed"]], **run.record} for run in of_kind(records, "prune")]
    stats_run = of_kind(records, "data_stats")[0]
    from_data = data_stats(records)
    scores = [mean_scores(ens) for ens in ensembles]  # per replicate: its ensemble's mean scores
    pooled = mean_scores([run for ens in ensembles for run in ens])
    pooled["input_norm"] = from_data["input_norm"]

    acc = accuracy_table(full, pruned)
    reps = replicate_table(full, pruned)
    stats = {**pruning_statistics(acc), **paired_statistics(reps)}
    stats["full_data_acc_min"] = float(np.min([r["test_acc"] for r in full]))  # NaN if any run is NaN
    stats["full_data_train_acc_min"] = full_data_train_acc_min(full)  # regime R2 (card v5): the runs fit
    reps["spearman_el2n_early_grand_early"] = [spearman(s["el2n_early"], s["grand_early"]) for s in scores]
    stats["spearman_el2n_early_grand_early"] = float(reps["spearman_el2n_early_grand_early"].mean())
    corr = correlation_table(pooled)
    for a, b in (("grand_init", "input_norm"), ("el2n_early", "grand_init")):
        stats[f"spearman_{a}_{b}"] = spearman(pooled[a], pooled[b])
    stats["spearman_el2n_early_grand_early_all_runs"] = spearman(pooled["el2n_early"], pooled["grand_early"])
    noise_rows, noise_el2n = [], {}
    for mode in cfg.noise_modes:
        per_rep = [noise_el2n_mean(ens) for ens in by_replicate(cfg, of_kind(records, "noise", mode=mode))]
        corrupted = from_data[f"corrupted_{mode}"]
        reps[f"auroc_el2n_noise_{mode}"] = [auroc(e, corrupted) for e in per_rep]
        noise_el2n[mode] = per_rep
        noise_rows.append({"mode": mode, "el2n": torch.stack(per_rep).mean(0), "corrupted": corrupted,
                           "auroc_per_replicate": reps[f"auroc_el2n_noise_{mode}"].tolist()})
    noise = noise_table(noise_rows)
    for row in noise.to_dict("records"):
        stats[f"auroc_el2n_noise_{row['mode']}"] = row["auroc"]
        stats[f"auroc_el2n_noise_{row['mode']}_all_runs"] = row["auroc_all_runs"]
        stats[f"top10_corrupted_share_{row['mode']}"] = row["top10_corrupted_share"]

    gating = ("el2n_minus_random_pruned50", "full_minus_el2n_pruned50", "spearman_el2n_early_grand_early",
              "auroc_el2n_noise_permute")
    reported = ("el2n_minus_random_pruned30", "full_minus_el2n_pruned30", "grand_init_minus_random_pruned50")
    samples = {name: replicates(reps[name]) for name in (*gating, *reported) if name in reps}  # 30%: optional
    # a rank correlation per replicate over every scored example: judged on Fisher z (claimbench.intervals)
    samples["spearman_el2n_early_grand_early"] = correlations(reps["spearman_el2n_early_grand_early"],
                                                              len(scores[0]["el2n_early"]))
    null, control = calibration_draws(reps, scores, noise_el2n["permute"], from_data["corrupted_permute"])

    seeds = sorted({r["seed"] for r in full} | {r["seed"] for r in pruned})
    setup = {"dataset": f"{cfg.dataset} ({stats_run['n_train']} train / {stats_run['n_test']} test, balanced)",
             "model": cfg.model, "score_epoch": cfg.score_epoch, "epochs_full_data": cfg.epochs,
             "optimiser_steps_every_run": cfg.train_config().total_steps(stats_run["n_train"]),
             "replicates": cfg.replicates, "score_ensemble_per_replicate": cfg.score_ensemble,
             "ensemble_seeds": ensemble_seeds(cfg)}
    tables = {"accuracy": acc, "replicates": reps, "score_rank_correlations": corr.reset_index(names="score"),
              "label_noise": noise}
    return ClaimResult(stats, tables, seeds, setup, {"full_data_runs": full, "pruned_runs": pruned},
                       samples=samples, null_draws=null, control_draws=control)


def full_data_train_acc_min(full: list[dict]) -> float:
    """Regime R2 (card v5): the lowest final train accuracy (%, eval mode, on the labels it trained on) of
    the full-data (score) runs. NaN when any run lacks one (runs made before it was recorded) or is NaN:
    a run not known to fit never counts as fitting."""
    if not full:
        return float("nan")
    return float(np.min([float(r.get("train_acc", float("nan"))) for r in full]))


def noise_el2n_mean(runs: list[Record]) -> torch.Tensor:
    """EL2N at the score epoch on the noisy labels, averaged over the runs (one replicate's ensemble): (N,)."""
    return torch.stack([r.tensors(SCORES, "EL2N scores")["el2n_early"] for r in runs]).mean(0)


def accuracy_table(full: list[dict], pruned: list[dict]) -> pd.DataFrame:
    """One row per (method, keep fraction): mean, SE and n of test accuracy (%); full data for every method.
    full: the full-data runs ({'test_acc'}); pruned: {'method', 'keep_fraction', 'test_acc'} per run.
    Means propagate NaN (a NaN run makes its cell NaN, never a mean over the others)."""
    full_acc = [r["test_acc"] for r in full]
    df = pd.DataFrame(pruned)
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


def replicate_table(full: list[dict], pruned: list[dict]) -> pd.DataFrame:
    """One row per replicate: its full-data accuracy (mean over its ensemble), its pruned runs' accuracies
    (`<method>_acc_pruned<percent>`) and the paired differences of DIFFERENCES, all in %."""
    n = 1 + max(r["replicate"] for r in full)
    rows = [{"replicate": r, "score_seeds": " ".join(str(f["seed"]) for f in full if f["replicate"] == r),
             "full_data_acc": float(np.mean([f["test_acc"] for f in full if f["replicate"] == r]))} for r in range(n)]
    for p in pruned:
        rows[p["replicate"]][f"{p['method']}_acc_pruned{round(100 * (1 - p['keep_fraction']))}"] = p["test_acc"]
    reps = pd.DataFrame(rows)
    for name, (a, b) in DIFFERENCES.items():
        if a in reps and b in reps:
            reps[name] = reps[a] - reps[b]
    return reps


def _cell(acc: pd.DataFrame, method: str, pruned: float) -> tuple[float, float]:
    row = acc[(acc["method"] == method) & (np.isclose(acc["fraction_pruned"], pruned))]
    if row.empty:
        return float("nan"), float("nan")
    return float(row["test_acc"].iloc[0]), float(row["se"].iloc[0])


def pruning_statistics(acc: pd.DataFrame) -> dict[str, float]:
    """Each cell's mean accuracy and SE over runs (pp): full_data_acc[_se], <method>_acc_pruned<p>[_se]."""
    stats: dict[str, float] = {}
    stats["full_data_acc"], stats["full_data_acc_se"] = _cell(acc, "random", 0.0)
    for method in acc["method"].unique():
        for pruned in acc[acc["method"] == method]["fraction_pruned"]:
            if pruned > 0:
                m, se = _cell(acc, method, pruned)
                stats[f"{method}_acc_pruned{round(100 * pruned)}"] = m
                stats[f"{method}_acc_pruned{round(100 * pruned)}_se"] = se
    return stats


def paired_statistics(reps: pd.DataFrame) -> dict[str, float]:
    """Per paired difference: mean over replicates, paired SE (sd / √n) and z = mean / SE (pp)."""
    stats: dict[str, float] = {}
    for name in DIFFERENCES:
        if name in reps:
            m, se = mean_se(reps[name].to_numpy())
            stats[name], stats[f"{name}_se"] = m, se
            stats[f"{name}_z"] = m / se if se > 0 else float("nan")
    return stats


def correlation_table(scores: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Spearman ρ between every pair of the mean scores present (SCORE_NAMES order), square."""
    names = [s for s in SCORE_NAMES if s in scores]
    mat = [[spearman(scores[a], scores[b]) for b in names] for a in names]
    return pd.DataFrame(mat, index=names, columns=names)


def noise_table(noise: list[dict]) -> pd.DataFrame:
    """Per noise mode ({'mode', 'el2n' (N,) over all runs, 'corrupted' (N,) bool, 'auroc_per_replicate'}):
    AUROC of EL2N for the corrupted labels (mean over replicates, and of the all-runs mean EL2N) and
    the corrupted share of the 10 % highest all-runs scores."""
    rows = []
    for rec in noise:
        el2n, corrupted = np.asarray(rec["el2n"], np.float64), np.asarray(rec["corrupted"], bool)
        rows.append({"mode": rec["mode"], "n_corrupted": int(corrupted.sum()), "base_rate": float(corrupted.mean()),
                     "auroc": float(np.mean(rec["auroc_per_replicate"])), "auroc_all_runs": auroc(el2n, corrupted),
                     "top10_corrupted_share": top_fraction_share(el2n, corrupted, 0.1)})
    return pd.DataFrame(rows)
