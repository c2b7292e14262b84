"""Analyse side of simpson_paradox: per-model spectral metrics, then pooled vs within-depth association.

The corpus is the finished runs' records and weights (rec.tensors), or, with ``pgdl_task`` set, the
trained models of that PGDL task folder (`pgdl_rows`; the plan is then empty and `records` too).
Gating statistics come with their bootstrap over models (`samples`); the null draws shuffle the depth
labels (S1) or permute test accuracy across models (S2), see `null_draws`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from claimbench.claims.simpson_paradox import GRID, Config, bootstrap_seed
from claimbench.contract import Context
from claimbench.intervals import Samples, bootstrap
from claimbench.metrics.simpson import (
    CorpusError,
    GroupedAssociation,
    grouped_association,
    paradox_flags,
    paradox_statistics,
)
from claimbench.metrics.spectral import analyze_matrices
from claimbench.models.pgdl_keras import load_pgdl_task
from claimbench.results import ClaimResult
from claimbench.sweep import Record

# WeightWatcher's classes (spec B.2). α̂ (alpha_weighted) and log α-norm combine scale and shape (the v2
# abstract splits α̂ into a scale part and a shape part), so they are neither scale nor shape metrics here.
SCALE_METRICS = ("log_spectral_norm", "log_norm", "stable_rank", "mp_softrank")
COMBINED_METRICS = ("alpha_weighted", "log_alpha_norm")
SHAPE_METRICS = ("alpha", "rand_distance")
METRICS = ("log_spectral_norm", "log_norm", "alpha_weighted", "alpha", "rand_distance", "log_alpha_norm",
           "stable_rank", "mp_softrank")  # table order
METRIC_CLASS = {**dict.fromkeys(SCALE_METRICS, "scale"), **dict.fromkeys(COMBINED_METRICS, "scale-adjusted shape"),
                **dict.fromkeys(SHAPE_METRICS, "shape")}
PRIMARY_SCALE, PRIMARY_SHAPE = "log_spectral_norm", "alpha"
# The bootstrap draws kept as samples (what the card's criteria read), per metric.
SAMPLED = {"log_spectral_norm": ("tau_pooled", "abs_tau_pooled", "paradox_margin"),
           "log_norm": ("abs_tau_pooled", "paradox_margin"),
           "alpha": ("tau_mean_within", "shape_gap_signed"),
           "rand_distance": ("shape_gap",)}
NULL_STATS = {"S1": (f"abs_tau_pooled_{PRIMARY_SCALE}", f"paradox_margin_{PRIMARY_SCALE}"),
              "S2": (f"tau_mean_within_{PRIMARY_SHAPE}", f"shape_gap_signed_{PRIMARY_SHAPE}")}
NULL_DRAWS, NULL_BOOT, NULL_SEED = 200, 100, 14  # null draws, inner bootstrap draws per null draw, seed
# resampled corpora behind the threshold null: enough that a true 2.5% rate has a 95% upper bound below 5%
RESAMPLED_DRAWS = 1000
TEST_SET_SIZE = 10_000  # Fashion-MNIST's and CIFAR-10's test sets


def conv_slices(kernel: torch.Tensor) -> list[torch.Tensor]:
    """Torch-layout conv kernel (out, in, kh, kw) -> its kh·kw (out, in) slices (as spectral.layer_weights)."""
    return list(kernel.reshape(kernel.shape[0], kernel.shape[1], -1).permute(2, 0, 1).unbind(0))


def kernel_layers(kernels: dict[str, torch.Tensor]) -> list[tuple[str, str, list[torch.Tensor]]]:
    """name -> torch-layout kernel (2-D dense or 4-D conv) as spectral.analyze_matrices' (name, kind, mats)."""
    return [(n, "conv", conv_slices(k)) if k.dim() == 4 else (n, "dense", [k]) for n, k in kernels.items()]


def model_metrics(kernels: dict[str, torch.Tensor], min_evals: int, seed: int = 0) -> dict[str, float]:
    """Layer means of the WeightWatcher metrics over the analysed layers (WW get_summary), plus the count
    and alpha_se, the standard error of the layer-mean alpha from WW's per-layer fit sigma (α-1)/√n_tail:
    sqrt(Σ sigma²) / layers. A layer whose metric is undefined (e.g. a failed power-law fit) makes the
    model's mean NaN, not a mean over fewer layers."""
    df = analyze_matrices(kernel_layers(kernels), min_evals=min_evals, seed=seed)
    if df.empty:
        raise CorpusError(f"no layer passes the size filter (min_evals={min_evals}); lower min_evals.")
    out = {m: float(df[m].mean(skipna=False)) for m in METRICS}
    out["alpha_se"] = float(np.sqrt((df["sigma"] ** 2).sum(skipna=False)) / len(df))
    out["analysed_layers"] = len(df)
    return out


def pgdl_rows(cfg: Config) -> list[dict]:
    """The corpus rows of the PGDL task folder cfg.pgdl_task (read with claimbench.models.pgdl_keras)."""
    return [{"model_id": m.model_id, "conv_layers": m.conv_layers, **m.hparams, "train_acc": m.train_acc,
             "test_acc": m.test_acc, **model_metrics(m.kernels, cfg.min_evals)}
            for m in load_pgdl_task(cfg.pgdl_task)]


def run_rows(records: list[Record], cfg: Config) -> list[dict]:
    """The corpus rows of the trained runs (diverged ones skipped), metrics from each run's weights.pt."""
    rows = []
    for rec in records:
        if rec["diverged"]:
            continue
        state = rec.tensors("weights.pt", "weights")
        kernels = {k.removesuffix(".weight"): v for k, v in state.items() if k.endswith(".weight")}
        rows.append({"model_id": rec.dir.name,
                     **{k: rec[k] for k in (*GRID, "conv_layers", "train_acc", "test_acc")},
                     "epochs_run": rec.record.get("epochs_run", cfg.epochs),  # card v5: epochs to the target (or cap)
                     **model_metrics(kernels, cfg.min_evals)})
    return rows


def corpus_table(records: list[Record], cfg: Config) -> pd.DataFrame:
    """One row per model that did not diverge: id, depth (conv_layers), hyperparameters, accuracies, gap
    and layer-mean metrics."""
    df = pd.DataFrame(pgdl_rows(cfg) if cfg.pgdl_task else run_rows(records, cfg))
    df["gen_gap"] = df["train_acc"] - df["test_acc"]
    return df


def trained(df: pd.DataFrame, min_acc: float, min_train_acc: float = 0.0) -> pd.Series:
    """Card v3 corpus rule (stated before the judged run): a model is in the analysed corpus when its test
    accuracy is at least `min_acc` (cfg.trained_min_acc; a NaN accuracy is not); diverged models have no
    row at all. Card v5: and its training accuracy is at least `min_train_acc` (cfg.target_train_acc, 0.99
    at long: a model that did not reach it within the epoch cap is excluded; 0 at quick and ci)."""
    keep = df["test_acc"] >= min_acc
    return keep & (df["train_acc"] >= min_train_acc) if min_train_acc > 0 else keep


def grid_per_depth(df: pd.DataFrame, records: list[Record]) -> pd.Series:
    """Models the grid asked for per depth group: every run (diverged included), or the task's models."""
    if records:
        return pd.Series([int(r["conv_layers"]) for r in records]).value_counts()
    return df["conv_layers"].value_counts()


def tau_statistics(a: GroupedAssociation, metric: str) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The card's Kendall-τ statistics of one metric (named `<stat>_<metric>`): full-data values and
    bootstrap draws (metrics.simpson.paradox_statistics)."""
    point = paradox_statistics(a.pooled, list(a.groups.values()))
    draws = paradox_statistics(a.boot_pooled, a.boot_groups)
    names = {"abs_pooled": "abs_tau_pooled", "mean_within": "tau_mean_within",
             "mean_within_abs": "tau_mean_within_abs"}
    est = {f"{names.get(k, k)}_{metric}": float(v) for k, v in point.items()}
    boot = {f"{names.get(k, k)}_{metric}": v for k, v in draws.items()}
    est[f"tau_pooled_{metric}"], boot[f"tau_pooled_{metric}"] = a.pooled, a.boot_pooled
    return est, boot


def association_table(df: pd.DataFrame, n_boot: int, seed: int, target: str = "test_acc",
                      ) -> tuple[pd.DataFrame, dict, dict[str, Samples]]:
    """Rows (metric, statistic) with pooled / per-depth / mean-within values and CIs of each metric vs
    `target`; the card statistics (named for test accuracy; other targets only fill the table); and the
    bootstrap samples of the statistics in SAMPLED."""
    rows, stats, samples = [], {}, {}
    for metric in METRICS:
        for statistic in ("tau", "rho", "r2"):
            a = grouped_association(df[metric].to_numpy(), df[target].to_numpy(), df["conv_layers"].to_numpy(),
                                    statistic, n_boot=n_boot, seed=seed)
            row = {"metric": metric, "class": METRIC_CLASS[metric], "statistic": statistic, "pooled": a.pooled,
                   "pooled_lo": a.pooled_ci[0], "pooled_hi": a.pooled_ci[1],
                   **{f"depth_{g}": v for g, v in a.groups.items()},
                   "mean_within": a.mean_within, "mean_within_abs": a.mean_within_abs,
                   "mean_within_abs_lo": a.mean_within_abs_ci[0], "mean_within_abs_hi": a.mean_within_abs_ci[1],
                   "within_minus_pooled_abs": a.mean_within_abs - abs(a.pooled),
                   "within_minus_pooled_abs_lo": a.gap_ci[0], "within_minus_pooled_abs_hi": a.gap_ci[1]}
            rows.append(row)
            stats[f"{statistic}_pooled_{metric}"] = a.pooled
            stats[f"{statistic}_mean_within_{metric}"] = a.mean_within
            stats[f"{statistic}_mean_within_abs_{metric}"] = a.mean_within_abs
            if statistic == "tau":
                est, boot = tau_statistics(a, metric)
                stats.update(est)
                stats[f"tau_pooled_ci_halfwidth_{metric}"] = (a.pooled_ci[1] - a.pooled_ci[0]) / 2
                stats[f"shape_gap_lo_{metric}"], stats[f"shape_gap_hi_{metric}"] = a.gap_ci
                for k, v in paradox_flags(a.pooled, a.groups, a.mean_within, a.mean_within_abs).items():
                    stats[f"{k}_{metric}"] = v
                for g, v in a.groups.items():
                    stats[f"tau_depth{g}_{metric}"] = v
                keys = [f"{k}_{metric}" for k in SAMPLED.get(metric, ())]
                jack = (jackknife(df, metric, target, keys) if keys else None) or {}
                samples.update({k: bootstrap(est[k], boot[k], jack.get(k)) for k in keys})
    return pd.DataFrame(rows), stats, samples


def jackknife(df: pd.DataFrame, metric: str, target: str, keys: list[str]) -> dict[str, list[float]] | None:
    """Each statistic in `keys` with one model left out, for every model (the bootstrap's resampling unit):
    what BCa's acceleration needs (claimbench.intervals.bca_levels). None when leaving a model out would leave
    a depth group below the 3 models a within-group correlation needs: the interval is then percentile."""
    x, y, g = df[metric].to_numpy(), df[target].to_numpy(), df["conv_layers"].to_numpy()
    if min(np.unique(g, return_counts=True)[1]) <= 3:
        return None
    out: dict[str, list[float]] = {k: [] for k in keys}
    for i in range(len(df)):
        keep = np.arange(len(df)) != i
        est, _ = tau_statistics(grouped_association(x[keep], y[keep], g[keep], "tau", n_boot=1, seed=0), metric)
        for k in keys:
            out[k].append(est[k])
    return out


def null_draws(df: pd.DataFrame, seed: int, seed_base: int = 0) -> dict[str, list[dict[str, Samples]]]:
    """NULL_DRAWS seeded draws per gating criterion, each its statistics as bootstrap Samples (NULL_BOOT
    inner draws): S1 with the depth labels shuffled across models (group sizes kept; every depth group is
    then a random sample of the corpus, so its trend is the pooled one: no paradox); S2 with test accuracy
    permuted across models (α then carries no information about accuracy, within depth or pooled)."""
    rng = np.random.default_rng(NULL_SEED + seed_base)
    acc, depth = df["test_acc"].to_numpy(), df["conv_layers"].to_numpy()
    out = {"S1": [], "S2": []}
    for _ in range(NULL_DRAWS):
        inner = seed + int(rng.integers(1, 2**31))
        for cid, metric, y, g in (("S1", PRIMARY_SCALE, acc, rng.permutation(depth)),
                                  ("S2", PRIMARY_SHAPE, rng.permutation(acc), depth)):
            a = grouped_association(df[metric].to_numpy(), y, g, "tau", n_boot=NULL_BOOT, seed=inner)
            est, boot = tau_statistics(a, metric)
            out[cid].append({k: bootstrap(est[k], boot[k]) for k in NULL_STATS[cid]})
    return out


def resampled_draws(df: pd.DataFrame, seed: int, seed_base: int = 0) -> dict[str, list[dict[str, Samples]]]:
    """The calibration's corpus draws (engine v4): RESAMPLED_DRAWS corpora resampled within depth (models with
    replacement, group sizes kept, as the judged bootstrap), each with its statistics and their NULL_BOOT-draw
    inner bootstrap — a double bootstrap. The verdict engine moves each draw onto its check's threshold
    (claimbench.verdict.calibrate), so a criterion's null is its own interval's behaviour at the pass line."""
    rng = np.random.default_rng(NULL_SEED + 1 + seed_base)
    depth = df["conv_layers"].to_numpy()
    groups = [np.flatnonzero(depth == g) for g in np.unique(depth)]
    out = {"S1": [], "S2": []}
    for _ in range(RESAMPLED_DRAWS):
        idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
        inner = seed + int(rng.integers(1, 2**31))
        part = df.iloc[idx]
        for cid, metric in (("S1", PRIMARY_SCALE), ("S2", PRIMARY_SHAPE)):
            a = grouped_association(part[metric].to_numpy(), part["test_acc"].to_numpy(),
                                    part["conv_layers"].to_numpy(), "tau", n_boot=NULL_BOOT, seed=inner)
            est, boot = tau_statistics(a, metric)
            out[cid].append({k: bootstrap(est[k], boot[k]) for k in NULL_STATS[cid]})
    return out


def regime_statistics(df: pd.DataFrame, records: list[Record], cfg: Config,
                      grid: pd.Series | None = None) -> dict[str, float]:
    """What the card's regime reads, on the analysed corpus `df` (trained models only): the smallest share
    over depth groups of the grid's models that trained (`grid`: models asked for per depth; default: df's
    own counts), the smallest ratio over depth groups of the sd of test accuracy to the test-set sampling
    sd sqrt(p(1-p)/n_test) (n_test = test_examples, at most TEST_SET_SIZE, plus heldout_examples; with a PGDL
    task, test_examples stands for the task's test-set size), and the smallest ratio over depth groups of the sd
    of model alpha to its rms fit standard error (alpha_se). Also reported: diverged models and the lowest test
    accuracy."""
    n_test = min(cfg.test_examples, TEST_SET_SIZE) + cfg.heldout_examples
    grid = df["conv_layers"].value_counts() if grid is None else grid
    by_depth = df.groupby("conv_layers")
    p = by_depth["test_acc"].mean()
    ratio = by_depth["test_acc"].std(ddof=1) / np.sqrt(p * (1 - p) / n_test)
    alpha_ratio = by_depth["alpha"].std(ddof=1) / np.sqrt(by_depth["alpha_se"].apply(lambda s: (s**2).mean()))
    kept = by_depth.size().reindex(grid.index, fill_value=0)
    return {"diverged_models": sum(bool(r["diverged"]) for r in records),
            "trained_fraction_min": float((kept / grid).min()), "excluded_models": int(grid.sum() - len(df)),
            "test_acc_min": float(df["test_acc"].min(skipna=False)),
            "test_acc_spread_over_noise_min": float(ratio.min(skipna=False)), "test_examples_for_noise": n_test,
            "alpha_spread_over_fit_noise_min": float(alpha_ratio.min(skipna=False)),
            "train_acc_min": float(df["train_acc"].min(skipna=False)),  # card v5 regime R4 (>= 0.99)
            "undefined_metric_models": int((~np.isfinite(df[list(METRICS)].to_numpy())).any(axis=1).sum())}


def corpus_training(records: list[Record]) -> dict:
    """Training summary from the run records: models, diverged, summed per-model training seconds."""
    if not records:
        return {}
    return {"models": len(records), "diverged": sum(r["diverged"] for r in records),
            "sum_model_train_s": round(sum(r["train_s"] for r in records), 1)}


def analyse(records: list[Record], ctx: Context) -> ClaimResult:
    cfg: Config = ctx.cfg
    full = corpus_table(records, cfg)
    keep = trained(full, cfg.trained_min_acc, cfg.target_train_acc)
    df = full[keep].reset_index(drop=True)
    excluded = [*full.loc[~keep, ["model_id", "conv_layers", "train_acc", "test_acc"]].to_dict("records"),
                *({"model_id": r.dir.name, "conv_layers": r["conv_layers"], "test_acc": "diverged"}
                  for r in records if r["diverged"])]
    seed = bootstrap_seed(cfg)
    assoc, stats, samples = association_table(df, cfg.n_boot, seed)
    gap_assoc, _, _ = association_table(df, cfg.n_boot, seed, target="gen_gap")
    stats["models"] = len(df)
    stats["depth_groups"] = int(df["conv_layers"].nunique())
    stats["min_models_per_depth"] = int(df.groupby("conv_layers").size().min())
    stats.update(regime_statistics(df, records, cfg, grid_per_depth(full, records)))
    source = f"PGDL task {cfg.pgdl_task}" if cfg.pgdl_task else f"{cfg.dataset} VGG grid"
    return ClaimResult(
        statistics=stats,
        tables={"corpus": df, "associations": assoc, "associations_gen_gap": gap_assoc},
        seeds=[seed],
        setup={"dataset": cfg.dataset if not cfg.pgdl_task else cfg.pgdl_task,
               "model": f"PGDL-task-1-like VGG ({len(df)} models, depths {sorted({int(d) for d in df.conv_layers})})",
               "corpus": source, "target": "test accuracy", "grouping": "number of conv layers"},
        details={"corpus_training": corpus_training(records), "excluded_models": excluded,
                 "null": {"draws": NULL_DRAWS, "inner_bootstrap": NULL_BOOT, "seed": NULL_SEED + cfg.seed_base,
                          "S1": "depth labels shuffled across models", "S2": "test accuracy permuted across models"}},
        samples=samples,
        null_draws=null_draws(df, seed, cfg.seed_base),
        threshold_null_draws=resampled_draws(df, seed, cfg.seed_base),
    )
