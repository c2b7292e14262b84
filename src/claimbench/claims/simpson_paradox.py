"""Claim 2 — Simpson's paradox between scale and shape spectral metrics over a model corpus.

Claim (Martin & Mahoney, "Post-mortem on a deep learning contest: a Simpson's paradox and the complementary
roles of scale metrics versus shape metrics", arXiv 2106.00734): over a corpus of trained models of several
depths and regularisation hyperparameters, *scale* metrics (log spectral norm, log Frobenius norm, α̂)
correlate with test accuracy over the whole corpus but poorly within each fixed-depth group, while *shape*
metrics (α, rand_distance) correlate within fixed-depth groups but poorly over the whole corpus.
Spec: shared/specs/2-simpson-paradox.md (PGDL task-1 grid, WeightWatcher metric definitions).

Corpus: a PGDL-task-1-like VGG family (claimbench.models.pgdl_vgg) on Fashion-MNIST, one resumable run
per grid point (claimbench.sweep.run_cached); or, with ``pgdl_task`` set, the models of a real PGDL task
folder (claimbench.models.pgdl_keras). Depth group = number of conv layers. Per model: layer means of the
WeightWatcher metrics (claimbench.metrics.spectral); Kendall τ / Spearman ρ / R² vs test accuracy, pooled
and per depth, with bootstrap CIs over models (claimbench.metrics.simpson).

Expected cost (2-core CPU; measured on a shared, ~3.5x oversubscribed one, so uncontended is lower):
ci ≈ 19 s wall (8 models, 7 s CPU); quick ≈ 50 s wall (32 models, 16 per depth, 14 px images, 33 s CPU);
gpu: the full 96-model grid at 28 px, trained 12 at a time (threads + CUDA streams), aimed at 2–4 min on
one H100 but never run (no GPU was available); paper: PGDL's protocol on CIFAR-10, 1200 epochs (days).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from claimbench import plotting
from claimbench.data import balanced_subset, derive_seed, load_images, random_subset
from claimbench.metrics.simpson import CorpusError, grouped_association, paradox_flags
from claimbench.metrics.spectral import analyze_matrices
from claimbench.models.pgdl_keras import load_pgdl_task
from claimbench.models.pgdl_vgg import PGDLVGG, VGGSpec
from claimbench.numerics import upcast
from claimbench.params import in_unit_interval, positive
from claimbench.results import ClaimResult
from claimbench.stage import Context
from claimbench.sweep import is_done, load_record, read_json, run_cached, run_dir
from claimbench.train import TrainConfig, cpu_threads, evaluate, fit, load_tensors, prepare_model, seed_everything

CLAIM_ID = "simpson_paradox"

SCALE_METRICS = ("log_spectral_norm", "log_norm", "alpha_weighted", "log_alpha_norm", "stable_rank",
                 "mp_softrank")
SHAPE_METRICS = ("alpha", "rand_distance")
METRICS = SCALE_METRICS[:3] + SHAPE_METRICS + SCALE_METRICS[3:]
METRIC_CLASS = {"log_spectral_norm": "scale", "log_norm": "scale", "stable_rank": "scale",
                "mp_softrank": "scale", "alpha_weighted": "scale-adjusted shape",
                "log_alpha_norm": "scale-adjusted shape", "alpha": "shape", "rand_distance": "shape"}
PRIMARY_SCALE, PRIMARY_SHAPE = "log_spectral_norm", "alpha"


@dataclass(frozen=True)
class Config:
    """Corpus grid (every combination is one model), training recipe and analysis settings.

    downsample: average-pool factor applied to the images (2: 28 px -> 14 px). lr_milestones: fractions of
    training where lr is multiplied by lr_gamma (PGDL: x0.2 at epochs 300/600/900 of 1200); empty = constant.
    parallel_models: models trained at once by threads (on CUDA each with its own stream); with > 1 the
    dropout RNG streams interleave, so runs are not bit-reproducible (keep 1 on CPU scales).
    cpu_threads: torch intra-op threads on CPU (1: tiny models run faster without thread sync, and a
    shared CPU is not oversubscribed).
    pgdl_task: a PGDL task folder (…/task1_v4); when set, its models are analysed instead of training.
    """

    blocks: list[int] = field(metadata=positive())
    dense_layers: list[int] = field(metadata=positive())
    last_filters: list[int] = field(metadata=positive())
    dropout: list[float] = field(metadata=in_unit_interval())
    weight_decay: list[float]
    batch_size: list[int] = field(metadata=positive())
    dense_width: int = field(metadata=positive())
    epochs: int = field(metadata=positive())
    lr: float = field(metadata=positive())
    train_examples: int = field(metadata=positive())
    test_examples: int = field(metadata=positive())
    dataset: Literal["fashion-mnist", "cifar10"] = "fashion-mnist"
    downsample: int = field(default=1, metadata=positive())
    momentum: float = 0.9
    lr_milestones: list[float] = field(default_factory=list, metadata=in_unit_interval())
    lr_gamma: float = field(default=0.2, metadata=positive())
    seed: int = 0
    parallel_models: int = field(default=1, metadata=positive())
    cpu_threads: int = field(default=1, metadata=positive())
    n_boot: int = field(default=1000, metadata=positive())
    min_evals: int = field(default=10, metadata=positive())
    pgdl_task: str | None = None


# ---------------------------------------------------------------- corpus


def grid(cfg: Config) -> list[dict]:
    """Every hyperparameter combination of the grid, as dicts (the sweep keys, without data settings)."""
    names = ("blocks", "dense_layers", "last_filters", "dropout", "weight_decay", "batch_size")
    return [dict(zip(names, combo)) for combo in itertools.product(*(getattr(cfg, n) for n in names))]


def load_corpus_data(cfg: Config, root: str | None, device: torch.device):
    """(train x, train y, test x, test y) resident on `device`; balanced train subset, random test subset."""
    train, test = load_images(cfg.dataset, "train", root), load_images(cfg.dataset, "test", root)
    train = train.subset(balanced_subset(train.y, cfg.train_examples // train.num_classes, cfg.seed))
    test = test.subset(random_subset(len(test), min(cfg.test_examples, len(test)), cfg.seed))

    def prep(x: torch.Tensor) -> torch.Tensor:
        return (F.avg_pool2d(x, cfg.downsample) if cfg.downsample > 1 else x).to(device)

    return prep(train.x), train.y.to(device), prep(test.x), test.y.to(device), train.num_classes


_init_lock = threading.Lock()


def train_one(run_dir, hp: dict, cfg: Config, data, device: torch.device) -> dict:
    """Train one grid point; save its weights (run_dir/weights.pt) and return accuracies and timing."""
    x, y, xt, yt, num_classes = data
    spec = VGGSpec(hp["blocks"], hp["dense_layers"], hp["last_filters"], cfg.dense_width, hp["dropout"])
    seed = derive_seed(CLAIM_ID, cfg.seed, sorted(hp.items()))
    with _init_lock:  # the global RNG seeds the init; threads must not interleave here
        seed_everything(seed)
        model = prepare_model(PGDLVGG(spec, x.shape[1], x.shape[-1], num_classes), device)
    tc = TrainConfig(epochs=cfg.epochs, batch_size=hp["batch_size"], lr=cfg.lr, momentum=cfg.momentum,
                     weight_decay=hp["weight_decay"], schedule="step" if cfg.lr_milestones else "constant",
                     milestones=tuple(cfg.lr_milestones), gamma=cfg.lr_gamma)
    t0 = time.time()
    record = {**hp, "conv_layers": spec.conv_layers, "seed": seed, "diverged": False}
    try:
        fit(model, (x, y), tc, seed=seed, checkpoint=run_dir / "checkpoint.pt", desc=f"{CLAIM_ID}/{run_dir.name}")
    except FloatingPointError:
        record["diverged"] = True
    record["train_s"] = round(time.time() - t0, 2)
    if not record["diverged"]:
        record["train_acc"] = evaluate(model, x, y)["acc"]
        record["test_acc"] = evaluate(model, xt, yt)["acc"]
        torch.save({k: upcast(v).cpu() for k, v in model.state_dict().items()}, run_dir / "weights.pt")
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    return record


def sweep_key(hp: dict, cfg: Config) -> dict:
    """What identifies one trained model: its grid point plus every data/recipe setting."""
    recipe = {k: v for k, v in asdict(cfg).items()
              if k not in ("parallel_models", "cpu_threads", "n_boot", "min_evals", "pgdl_task", *hp)}
    return {**hp, **recipe}


def train(ctx: Context) -> None:
    cfg: Config = ctx.cfg
    if cfg.pgdl_task:
        ctx.log(f"pgdl_task = {cfg.pgdl_task}: analysing its trained models, nothing to train.")
        return
    with cpu_threads(cfg.cpu_threads, ctx.device):
        train_corpus(ctx)


def train_corpus(ctx: Context) -> None:
    """Train every grid point (resumable), then write corpus.json (counts, wall time, models/hour)."""
    cfg: Config = ctx.cfg
    data = load_corpus_data(cfg, ctx.data_root, ctx.device)
    runs = ctx.artifacts_dir / "runs"
    points = grid(cfg)
    t0 = time.time()
    progress = ctx.progress(len(points))

    def one(hp: dict) -> dict:
        what = " ".join(f"{k}={v}" for k, v in hp.items())
        if ctx.device.type == "cuda":
            with torch.cuda.stream(torch.cuda.Stream()):
                return run_cached(runs, sweep_key(hp, cfg), lambda d: train_one(d, hp, cfg, data, ctx.device),
                                  progress, what)
        return run_cached(runs, sweep_key(hp, cfg), lambda d: train_one(d, hp, cfg, data, ctx.device), progress, what)

    workers = cfg.parallel_models
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            records = list(pool.map(one, points))
    else:
        records = [one(hp) for hp in points]
    wall = time.time() - t0
    trained = sum(r["train_s"] for r in records)
    (ctx.artifacts_dir / "corpus.json").write_text(json.dumps({
        "models": len(records), "diverged": sum(r["diverged"] for r in records), "wall_s": round(wall, 1),
        "sum_model_train_s": round(trained, 1),
        "models_per_hour": round(3600 * len(records) / max(trained / workers, wall, 1e-9), 1)}, indent=2))
    ctx.log(f"corpus: {len(records)} models in {wall:.0f} s")


# ---------------------------------------------------------------- analysis


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


def corpus_table(ctx: Context) -> pd.DataFrame:
    """One row per model: id, depth (conv_layers), hyperparameters, accuracies, gap and layer-mean metrics."""
    cfg: Config = ctx.cfg
    rows = []
    if cfg.pgdl_task:
        for m in load_pgdl_task(cfg.pgdl_task):
            rows.append({"model_id": m.model_id, "conv_layers": m.conv_layers, **m.hparams,
                         "train_acc": m.train_acc, "test_acc": m.test_acc,
                         **model_metrics(m.kernels, cfg.min_evals)})
    else:
        runs = ctx.artifacts_dir / "runs"
        for hp in grid(cfg):
            key = sweep_key(hp, cfg)
            if not is_done(runs, key):
                raise CorpusError(f"model {hp} of the {ctx.scale} corpus is not trained; run "
                                  f"`python stages/{CLAIM_ID}.py train --scale {ctx.scale}` (or dvc repro) first.")
            d = run_dir(runs, key)
            rec = load_record(d)
            if rec["diverged"]:
                continue
            state = load_tensors(d / "weights.pt", "weights")
            kernels = {k.removesuffix(".weight"): v for k, v in state.items() if k.endswith(".weight")}
            rows.append({"model_id": d.name, **{k: rec[k] for k in (*hp, "conv_layers", "train_acc", "test_acc")},
                         **model_metrics(kernels, cfg.min_evals)})
    df = pd.DataFrame(rows)
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


def simpson_figure(df: pd.DataFrame, metric: str, path) -> None:
    """Metric vs test accuracy, points coloured by depth, one least-squares line per depth and one pooled."""
    fig, ax = plotting.subplots(figsize=(5, 4))
    depths = sorted(df["conv_layers"].unique())
    palette = plotting.sns.color_palette("colorblind", len(depths))
    for colour, d in zip(palette, depths):
        sub = df[df["conv_layers"] == d]
        ax.scatter(sub[metric], sub["test_acc"], color=colour, s=22, label=f"{d} conv layers")
        if sub[metric].nunique() > 1:
            b, a = np.polyfit(sub[metric], sub["test_acc"], 1)
            xs = np.linspace(sub[metric].min(), sub[metric].max(), 20)
            ax.plot(xs, a + b * xs, color=colour)
    b, a = np.polyfit(df[metric], df["test_acc"], 1)
    xs = np.linspace(df[metric].min(), df[metric].max(), 20)
    ax.plot(xs, a + b * xs, color="black", ls="--", label="pooled")
    ax.set(xlabel=f"mean {metric} ({METRIC_CLASS[metric]})", ylabel="test accuracy",
           title=f"Simpson plot: {metric}")
    ax.legend(fontsize=8)
    plotting.save(fig, path)


def tau_figure(assoc: pd.DataFrame, path) -> None:
    """|τ| pooled vs mean within-depth |τ| for every metric (bars)."""
    t = assoc[assoc["statistic"] == "tau"]
    long = pd.concat([pd.DataFrame({"metric": t["metric"], "which": "pooled |τ|", "value": t["pooled"].abs()}),
                      pd.DataFrame({"metric": t["metric"], "which": "mean within-depth |τ|",
                                    "value": t["mean_within_abs"]})])
    fig, ax = plotting.subplots(figsize=(7, 3.5))
    plotting.sns.barplot(long, x="metric", y="value", hue="which", ax=ax)
    ax.set(xlabel="", ylabel="Kendall |τ| vs test accuracy", title="pooled vs within-depth")
    ax.legend(title=None, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=2)
    ax.tick_params(axis="x", rotation=30)
    plotting.save(fig, path)


def analyse(ctx: Context) -> ClaimResult:
    cfg: Config = ctx.cfg
    df = corpus_table(ctx)
    assoc, stats = association_table(df, cfg.n_boot, cfg.seed)
    gap_assoc, _ = association_table(df, cfg.n_boot, cfg.seed, target="gen_gap")
    stats["models"] = len(df)
    stats["depth_groups"] = int(df["conv_layers"].nunique())
    stats["min_models_per_depth"] = int(df.groupby("conv_layers").size().min())
    simpson_figure(df, PRIMARY_SCALE, ctx.figures_dir / f"simpson_{PRIMARY_SCALE}.png")
    simpson_figure(df, PRIMARY_SHAPE, ctx.figures_dir / f"simpson_{PRIMARY_SHAPE}.png")
    tau_figure(assoc, ctx.figures_dir / "tau_pooled_vs_within.png")
    timing_path = ctx.artifacts_dir / "corpus.json"
    timing = read_json(timing_path, f"rerun `python stages/{CLAIM_ID}.py train`") if timing_path.exists() else {}
    source = f"PGDL task {cfg.pgdl_task}" if cfg.pgdl_task else f"{cfg.dataset} VGG grid"
    return ClaimResult(
        statistics=stats,
        tables={"corpus": df, "associations": assoc, "associations_gen_gap": gap_assoc},
        seeds=[cfg.seed],
        setup={"dataset": cfg.dataset if not cfg.pgdl_task else cfg.pgdl_task,
               "model": f"PGDL-task-1-like VGG ({len(df)} models, depths {sorted({int(d) for d in df.conv_layers})})",
               "corpus": source, "target": "test accuracy", "grouping": "number of conv layers"},
        details={"corpus_training": timing},
    )
