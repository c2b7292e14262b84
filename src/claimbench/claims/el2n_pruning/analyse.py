"""EL2N pruning, analysis: accuracy vs fraction pruned per score, rank correlations between the mean
scores, and how well EL2N flags corrupted labels — all from the finished runs' records and files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from claimbench.claims.el2n_pruning import SCORE_NAMES, SCORES, Config, data_stats, mean_scores, of_kind
from claimbench.contract import Context
from claimbench.metrics.ranking import auroc, mean_se, spearman, top_fraction_share
from claimbench.results import ClaimResult
from claimbench.sweep import Record


def analyse(records: list[Record], ctx: Context) -> ClaimResult:
    cfg: Config = ctx.cfg
    full = [{"seed": r.key["seed"], **r.record} for r in of_kind(records, "score")]
    pruned = [{"method": r.key["method"], "keep_fraction": r.key["keep"], "seed": r.key["seed"], **r.record}
              for r in of_kind(records, "prune")]
    stats_run = of_kind(records, "data_stats")[0]
    from_data = data_stats(records)
    scores = mean_scores(of_kind(records, "score"))
    scores["input_norm"] = from_data["input_norm"]

    acc = accuracy_table(full, pruned)
    stats = pruning_statistics(acc)
    corr = correlation_table(scores)
    for a, b in (("el2n_early", "grand_early"), ("grand_init", "input_norm"), ("el2n_early", "grand_init")):
        stats[f"spearman_{a}_{b}"] = spearman(scores[a], scores[b])
    noise = noise_table([{"mode": mode, "el2n": noise_el2n(of_kind(records, "noise", mode=mode)),
                          "corrupted": from_data[f"corrupted_{mode}"]} for mode in cfg.noise_modes])
    for row in noise.to_dict("records"):
        stats[f"auroc_el2n_noise_{row['mode']}"] = row["auroc"]
        stats[f"top10_corrupted_share_{row['mode']}"] = row["top10_corrupted_share"]

    seeds = sorted({r["seed"] for r in full} | {r["seed"] for r in pruned})
    setup = {"dataset": f"{cfg.dataset} ({stats_run['n_train']} train / {stats_run['n_test']} test, balanced)",
             "model": cfg.model, "score_epoch": cfg.score_epoch, "epochs_full_data": cfg.epochs,
             "optimiser_steps_every_run": cfg.train_config().total_steps(stats_run["n_train"]),
             "score_inits": cfg.score_seeds, "prune_seeds": cfg.prune_seeds}
    return ClaimResult(stats, {"accuracy": acc, "score_rank_correlations": corr.reset_index(names="score"),
                               "label_noise": noise}, seeds, setup,
                       {"full_data_runs": full, "pruned_runs": pruned})


def noise_el2n(runs: list[Record]) -> torch.Tensor:
    """EL2N at the score epoch on the noisy labels, averaged over the runs (seeds): (N,)."""
    return torch.stack([r.tensors(SCORES, "EL2N scores")["el2n_early"] for r in runs]).mean(0)


def accuracy_table(full: list[dict], pruned: list[dict]) -> pd.DataFrame:
    """One row per (method, keep fraction): mean, SE and n of test accuracy (%); full data for every method.
    full: the full-data runs ({'test_acc'}); pruned: {'method', 'keep_fraction', 'test_acc'} per run."""
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
    """Spearman ρ between every pair of the mean scores present (SCORE_NAMES order), square."""
    names = [s for s in SCORE_NAMES if s in scores]
    mat = [[spearman(scores[a], scores[b]) for b in names] for a in names]
    return pd.DataFrame(mat, index=names, columns=names)


def noise_table(noise: list[dict]) -> pd.DataFrame:
    """Per noise mode ({'mode', 'el2n' (N,), 'corrupted' (N,) bool}): AUROC of EL2N for the corrupted
    labels and the corrupted share of the 10 % highest scores."""
    rows = []
    for rec in noise:
        el2n, corrupted = np.asarray(rec["el2n"], np.float64), np.asarray(rec["corrupted"], bool)
        rows.append({"mode": rec["mode"], "n_corrupted": int(corrupted.sum()), "base_rate": float(corrupted.mean()),
                     "auroc": auroc(el2n, corrupted),
                     "top10_corrupted_share": top_fraction_share(el2n, corrupted, 0.1)})
    return pd.DataFrame(rows)
