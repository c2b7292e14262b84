"""Analyse side of simpson_paradox: per-model spectral metrics, then pooled vs within-depth association.

The corpus is the finished runs' records and weights (rec.tensors), or, with ``pgdl_task`` set, the
trained models of that PGDL task folder (`pgdl_rows`; the plan is then empty and `records` too).
"""

from __future__ import annotations

import pandas as pd
import torch

from claimbench.claims.simpson_paradox import GRID, Config
from claimbench.contract import Context
from claimbench.metrics.simpson import CorpusError, grouped_association, paradox_flags
from claimbench.metrics.spectral import analyze_matrices
from claimbench.models.pgdl_keras import load_pgdl_task
from claimbench.results import ClaimResult
from claimbench.sweep import Record

SCALE_METRICS = ("log_spectral_norm", "log_norm", "alpha_weighted", "log_alpha_norm", "stable_rank",
                 "mp_softrank")
SHAPE_METRICS = ("alpha", "rand_distance")
METRICS = SCALE_METRICS[:3] + SHAPE_METRICS + SCALE_METRICS[3:]
METRIC_CLASS = {"log_spectral_norm": "scale", "log_norm": "scale", "stable_rank": "scale",
                "mp_softrank": "scale", "alpha_weighted": "scale-adjusted shape",
                "log_alpha_norm": "scale-adjusted shape", "alpha": "shape", "rand_distance": "shape"}
PRIMARY_SCALE, PRIMARY_SHAPE = "log_spectral_norm", "alpha"


def conv_slices(kernel: torch.Tensor) -> list[torch.Tensor]:
    """Torch-layout conv kernel (out, in, kh, kw) -> its kh·kw (out, in) slices (as spectral.layer_weights)."""
    return list(kernel.reshape(kernel.shape[0], kernel.shape[1], -1).permute(2, 0, 1).unbind(0))


def kernel_layers(kernels: dict[str, torch.Tensor]) -> list[tuple[str, str, list[torch.Tensor]]]:
    """name -> torch-layout kernel (2-D dense or 4-D conv) as spectral.analyze_matrices' (name, kind, mats)."""
    return [(n, "conv", conv_slices(k)) if k.dim() == 4 else (n, "dense", [k]) for n, k in kernels.items()]


def model_metrics(kernels: dict[str, torch.Tensor], min_evals: int, seed: int = 0) -> dict[str, float]:
    """Layer means of the WeightWatcher metrics over the analysed layers (WW get_summary), plus the count."""
    df = analyze_matrices(kernel_layers(kernels), min_evals=min_evals, seed=seed)
    if df.empty:
        raise CorpusError(f"no layer passes the size filter (min_evals={min_evals}); lower min_evals.")
    out = {m: float(df[m].mean()) for m in METRICS}
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
                     **model_metrics(kernels, cfg.min_evals)})
    return rows


def corpus_table(records: list[Record], cfg: Config) -> pd.DataFrame:
    """One row per model: id, depth (conv_layers), hyperparameters, accuracies, gap and layer-mean metrics."""
    df = pd.DataFrame(pgdl_rows(cfg) if cfg.pgdl_task else run_rows(records, cfg))
    df["gen_gap"] = df["train_acc"] - df["test_acc"]
    return df


def association_table(df: pd.DataFrame, n_boot: int, seed: int, target: str = "test_acc",
                      ) -> tuple[pd.DataFrame, dict]:
    """Rows (metric, statistic) with pooled / per-depth / mean-within values and CIs of each metric vs
    `target`; and the card statistics (named for test accuracy; other targets only fill the table)."""
    rows, stats = [], {}
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
                stats[f"abs_tau_pooled_{metric}"] = abs(a.pooled)
                stats[f"tau_pooled_ci_halfwidth_{metric}"] = (a.pooled_ci[1] - a.pooled_ci[0]) / 2
                stats[f"shape_gap_{metric}"] = a.mean_within_abs - abs(a.pooled)
                stats[f"shape_gap_lo_{metric}"], stats[f"shape_gap_hi_{metric}"] = a.gap_ci
                for k, v in paradox_flags(a.pooled, a.groups, a.mean_within, a.mean_within_abs).items():
                    stats[f"{k}_{metric}"] = v
                for g, v in a.groups.items():
                    stats[f"tau_depth{g}_{metric}"] = v
    return pd.DataFrame(rows), stats


def corpus_training(records: list[Record]) -> dict:
    """Training summary from the run records: models, diverged, summed per-model training seconds."""
    if not records:
        return {}
    return {"models": len(records), "diverged": sum(r["diverged"] for r in records),
            "sum_model_train_s": round(sum(r["train_s"] for r in records), 1)}


def analyse(records: list[Record], ctx: Context) -> ClaimResult:
    cfg: Config = ctx.cfg
    df = corpus_table(records, cfg)
    assoc, stats = association_table(df, cfg.n_boot, cfg.seed)
    gap_assoc, _ = association_table(df, cfg.n_boot, cfg.seed, target="gen_gap")
    stats["models"] = len(df)
    stats["depth_groups"] = int(df["conv_layers"].nunique())
    stats["min_models_per_depth"] = int(df.groupby("conv_layers").size().min())
    source = f"PGDL task {cfg.pgdl_task}" if cfg.pgdl_task else f"{cfg.dataset} VGG grid"
    return ClaimResult(
        statistics=stats,
        tables={"corpus": df, "associations": assoc, "associations_gen_gap": gap_assoc},
        seeds=[cfg.seed],
        setup={"dataset": cfg.dataset if not cfg.pgdl_task else cfg.pgdl_task,
               "model": f"PGDL-task-1-like VGG ({len(df)} models, depths {sorted({int(d) for d in df.conv_layers})})",
               "corpus": source, "target": "test accuracy", "grouping": "number of conv layers"},
        details={"corpus_training": corpus_training(records)},
    )
