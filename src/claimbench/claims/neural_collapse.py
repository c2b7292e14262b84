"""Claim 4 — neural collapse across losses (Zhou et al., "Are All Losses Created Equal").

Claim: trained to convergence, a sufficiently large network reaches neural collapse (NC1, NC2, NC3 -> 0
on training features) under cross-entropy (CE), label smoothing (LS), focal loss (FL) and MSE alike, and
the four losses then give largely the same test accuracy; the gap shrinks with width and training length.

Source: Zhou, You, Li, Liu, Liu, Qu, Zhu, NeurIPS 2022, arXiv 2210.02192; reference code jinxinzhou/nc_loss.
Spec: shared/specs/4-neural-collapse.md. Issue #6.

Setup: torchvision ResNet-18 with a width multiplier and a 3x3 stem (models/resnet_width.py) on a
class-balanced Fashion-MNIST subset; SGD (momentum 0.9, wd 5e-4, lr x0.1 at 3/7 and 5/7 of training,
grad-norm clip 2), every (width, seed) trained once per loss with the same initialisation and data order.
NC metrics (metrics/collapse.py) on the un-augmented training subset in eval mode, float64, at
log-spaced epochs; test accuracy of the final model.

Expected cost (train + analyse): ci ~10 s CPU time; quick ~2 min CPU time (measured: 107 s user time with
one thread; 5.4 min wall on a shared, oversubscribed 2-core box); gpu ~4 min on one H100 (estimate, not
yet run); paper (60k images, 4 widths, 350 epochs, 3 seeds): about a day on one GPU.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from claimbench import plotting
from claimbench.collapse_losses import LOSS_NAMES, make_loss
from claimbench.data import balanced_subset, derive_seed, load_fashion_mnist, normalize
from claimbench.errors import CacheError
from claimbench.metrics.collapse import collapse_metrics
from claimbench.models.resnet_width import WideResNet18
from claimbench.numerics import upcast
from claimbench.params import positive
from claimbench.results import ClaimResult
from claimbench.sweep import DONE, load_record, run_cached, run_dir
from claimbench.train import Callback, TrainConfig, TrainState, evaluate, fit, prepare_model, seed_everything

CLAIM_ID = "neural_collapse"
NUM_CLASSES = 10
SECONDARY_LS = "ls_secondary"  # LS at ls_alpha_secondary, run at the largest width only (reported)


def _check(predicate, doc: str) -> dict:
    """Field metadata for claimbench.params: `predicate(value)` must hold; `doc` says what is allowed."""
    return {"check": predicate, "check_doc": doc}


TWO_WIDTHS = _check(lambda v: len(v) >= 2 and all(w > 0 for w in v), "at least 2 widths, all > 0")
SOME_SEEDS = _check(lambda v: len(v) >= 1, "a non-empty list of seeds")
LS_ALPHA = _check(lambda a: a is None or 0 <= a < 1, "in [0, 1)")
NON_NEGATIVE = _check(lambda v: v >= 0, ">= 0")


@dataclass(frozen=True)
class Config:
    """One scale of the claim. Widths multiply ResNet-18's (64, 128, 256, 512) channels."""

    train_per_class: int = field(metadata=positive())      # class-balanced training subset (x10 classes)
    test_per_class: int | None = field(metadata=_check(lambda v: v is None or v > 0, "> 0 or null"))
    widths: list[float] = field(metadata=TWO_WIDTHS)       # the largest is judged, the smallest compared
    epochs: int = field(metadata=positive())
    batch_size: int = field(metadata=positive())
    lr: float = field(metadata=positive())
    seeds: list[int] = field(metadata=SOME_SEEDS)
    stem_stride: Literal[1, 2] = 1                          # 2 halves 28x28 inputs first (CPU scales)
    momentum: float = field(default=0.9, metadata=NON_NEGATIVE)
    weight_decay: float = field(default=5e-4, metadata=NON_NEGATIVE)
    grad_clip: float = field(default=2.0, metadata=positive())
    augment: Literal["none", "crop", "crop_flip"] = "none"  # NC is always measured un-augmented
    ls_alpha: float = field(default=0.1, metadata=LS_ALPHA)
    ls_alpha_secondary: float | None = field(default=0.05, metadata=LS_ALPHA)  # largest width only; null = skip
    focal_gamma: float = field(default=3.0, metadata=NON_NEGATIVE)
    mse_scale: float = field(default=15.0, metadata=positive())
    nc_points: int = field(default=8, metadata=positive())  # log-spaced epochs with NC measurements
    subset_seed: int = 0


def nc_epochs(epochs: int, points: int) -> list[int]:
    """Log-spaced epochs in [1, epochs], always including 1 and `epochs`."""
    grid = np.geomspace(1, epochs, max(points, 2))
    return sorted({1, epochs, *(round(float(e)) for e in grid)})


def variants(cfg: Config, width: float) -> list[str]:
    """Loss variants trained at `width`: the four losses, plus LS at the secondary alpha at the largest width."""
    extra = [SECONDARY_LS] if cfg.ls_alpha_secondary is not None and width == max(cfg.widths) else []
    return [*LOSS_NAMES, *extra]


def loss_fn(cfg: Config, variant: str):
    if variant == SECONDARY_LS:
        return make_loss("ls", ls_alpha=cfg.ls_alpha_secondary)
    return make_loss(variant, ls_alpha=cfg.ls_alpha, focal_gamma=cfg.focal_gamma, mse_scale=cfg.mse_scale)


def run_key(cfg: Config, width: float, seed: int, variant: str) -> dict:
    """Cache key of one run: every setting that changes it (not the lists of widths/seeds swept)."""
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("widths", "seeds", "ls_alpha_secondary")}
    alpha = cfg.ls_alpha_secondary if variant == SECONDARY_LS else cfg.ls_alpha
    return {**settings, "ls_alpha": alpha, "width": width, "seed": seed, "variant": variant}


@torch.no_grad()
def penultimate(model: WideResNet18, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """(N, d) float32 penultimate features in eval mode, full precision (no autocast)."""
    was_training = model.training
    model.eval()
    h = torch.cat([upcast(model.features(x[i : i + batch_size])) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return h


class CollapseProbe(Callback):
    """Measures the collapse metrics and training accuracy on (x, y) after each epoch in `epochs`."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, epochs: list[int]):
        self.x, self.y, self.epochs, self.records = x, y, set(epochs), []

    def measure(self, model: WideResNet18) -> tuple[dict, torch.Tensor]:
        h = penultimate(model, self.x)
        w, b = model.fc.weight.detach(), model.fc.bias.detach()
        rec = collapse_metrics(h, self.y, w, b, NUM_CLASSES)
        rec["train_acc"] = float(((h @ w.T + b).argmax(1) == self.y).float().mean())
        return rec, h

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch in self.epochs:
            rec, _ = self.measure(state.model)
            self.records.append({"epoch": state.epoch, "train_loss": state.last_loss, **rec})

    def state_dict(self) -> dict:
        return {"records": self.records}

    def load_state_dict(self, d: dict) -> None:
        self.records = list(d["records"])


def load_data(ctx) -> dict[str, torch.Tensor]:
    """Normalised balanced subsets on ctx.device: x_train (N, 1, 28, 28), y_train (N,), x_test, y_test."""
    cfg: Config = ctx.cfg
    train = load_fashion_mnist("train", ctx.data_root)
    test = load_fashion_mnist("test", ctx.data_root)
    train = train.subset(balanced_subset(train.y, cfg.train_per_class, cfg.subset_seed))
    if cfg.test_per_class is not None:
        test = test.subset(balanced_subset(test.y, cfg.test_per_class, derive_seed("nc-test", cfg.subset_seed)))
    x_train, mean, std = normalize(train.x)
    x_test, _, _ = normalize(test.x, mean, std)
    d = ctx.device
    return {"x_train": x_train.to(d), "y_train": train.y.to(d), "x_test": x_test.to(d), "y_test": test.y.to(d)}


def train_one(out: Path, ctx, data: dict, width: float, seed: int, variant: str) -> dict:
    """Train one (width, seed, loss) run into `out`; returns its record (NC history, accuracies)."""
    cfg: Config = ctx.cfg
    t0 = time.time()
    seed_everything(seed)  # same init and data order for every loss at a (width, seed)
    model = prepare_model(WideResNet18(width, NUM_CLASSES, 1, cfg.stem_stride), ctx.device)
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, momentum=cfg.momentum,
                       weight_decay=cfg.weight_decay, schedule="step", gamma=0.1, milestones=(3 / 7, 5 / 7),
                       grad_clip=cfg.grad_clip, augment=cfg.augment, checkpoint_every=max(1, cfg.epochs // 7))
    probe = CollapseProbe(data["x_train"], data["y_train"], nc_epochs(cfg.epochs, cfg.nc_points))
    fn = loss_fn(cfg, variant)
    fit(model, (data["x_train"], data["y_train"]), tcfg, seed=seed, loss_fn=fn, callbacks=[probe],
        checkpoint=out / "checkpoint.pt", desc=f"nc {variant} w={width} s={seed}")
    final, h = probe.measure(model)
    test = evaluate(model, data["x_test"], data["y_test"], fn)
    torch.save({"h": h.cpu(), "y": data["y_train"].cpu(), "w": model.fc.weight.detach().cpu(),
                "b": model.fc.bias.detach().cpu()}, out / "features.pt")
    torch.save(model.state_dict(), out / "model.pt")
    (out / "checkpoint.pt").unlink(missing_ok=True)  # optimiser state no longer needed once done
    return {"variant": variant, "width": width, "seed": seed, "history": probe.records, "final": final,
            "test_acc": test["acc"], "test_loss": test["loss"], "wall_s": round(time.time() - t0, 1)}


def all_runs(cfg: Config) -> list[tuple[float, int, str]]:
    return [(w, s, v) for w in sorted(cfg.widths) for s in cfg.seeds for v in variants(cfg, w)]


def train(ctx) -> None:
    cfg: Config = ctx.cfg
    data = load_data(ctx)
    base = ctx.artifacts_dir / "runs"
    runs = all_runs(cfg)
    progress = ctx.progress(len(runs))
    for width, seed, variant in runs:
        rec = run_cached(base, run_key(cfg, width, seed, variant),
                         lambda out, w=width, s=seed, v=variant: train_one(out, ctx, data, w, s, v),
                         progress, f"{variant} w={width:g} seed={seed}")
        ctx.log(f"{variant:>12} w={width:g} seed={seed}: train acc {rec['final']['train_acc']:.4f} "
                f"test acc {rec['test_acc']:.4f} NC1 {rec['final']['nc1']:.3g} NC2 {rec['final']['nc2']:.3g} "
                f"NC3 {rec['final']['nc3']:.3g} ({rec['wall_s']} s)")


# ------------------------------------------------------------------------------------------- analysis


def load_records(ctx) -> list[dict]:
    base = ctx.artifacts_dir / "runs"
    out = []
    for width, seed, variant in all_runs(ctx.cfg):
        path = run_dir(base, run_key(ctx.cfg, width, seed, variant)) / DONE
        if not path.exists():
            raise CacheError(f"no finished run for loss {variant}, width {width}, seed {seed} at scale {ctx.scale} "
                             f"({path} missing); run `python stages/neural_collapse.py train --scale {ctx.scale}`.")
        out.append(load_record(path.parent))
    return out


def history_frame(records: list[dict]) -> pd.DataFrame:
    """One row per (variant, width, seed, measured epoch) with every collapse metric."""
    rows = [{"variant": r["variant"], "width": r["width"], "seed": r["seed"], **h} for r in records
            for h in r["history"]]
    return pd.DataFrame(rows).sort_values(["variant", "width", "seed", "epoch"], ignore_index=True)


def accuracy_frame(records: list[dict]) -> pd.DataFrame:
    """Per (variant, width): seed-mean test accuracy (%), its standard error and seed count."""
    df = pd.DataFrame([{"variant": r["variant"], "width": r["width"], "seed": r["seed"],
                        "test_acc": 100 * r["test_acc"], "train_acc": 100 * r["final"]["train_acc"]}
                       for r in records])
    g = df.groupby(["variant", "width"])
    out = g.agg(test_acc_mean=("test_acc", "mean"), test_acc_sd=("test_acc", "std"), n_seeds=("seed", "count"),
                train_acc_min=("train_acc", "min")).reset_index()
    out["test_acc_se"] = out["test_acc_sd"] / np.sqrt(out["n_seeds"])
    return out.drop(columns="test_acc_sd")


def spread(acc: pd.DataFrame, width: float) -> tuple[float, float]:
    """(max - min of seed-mean test accuracy over the four losses at `width`, in points; its SE from the seed
    SEs of the two extreme losses, sqrt(se_max^2 + se_min^2); NaN with one seed)."""
    a = acc[(acc["width"] == width) & acc["variant"].isin(LOSS_NAMES)].set_index("variant")
    hi, lo = a["test_acc_mean"].idxmax(), a["test_acc_mean"].idxmin()
    se = math.sqrt(a.loc[hi, "test_acc_se"] ** 2 + a.loc[lo, "test_acc_se"] ** 2)
    return float(a.loc[hi, "test_acc_mean"] - a.loc[lo, "test_acc_mean"]), se


def collapse_statistics(hist: pd.DataFrame, width: float) -> tuple[dict, pd.DataFrame]:
    """Per loss at `width`: first-epoch and final NC1-3 (seed means) and final/first ratios (worst seed)."""
    h = hist[(hist["width"] == width) & hist["variant"].isin(LOSS_NAMES)]
    first = h[h["epoch"] == h["epoch"].min()].set_index(["variant", "seed"])
    last = h[h["epoch"] == h["epoch"].max()].set_index(["variant", "seed"])
    stats, rows = {}, []
    for loss in LOSS_NAMES:
        row = {"loss": loss, "width": width}
        for m in ("nc1", "nc2", "nc3"):
            ratio = (last.loc[loss, m] / first.loc[loss, m]).max()
            row |= {f"{m}_first": first.loc[loss, m].mean(), f"{m}_final": last.loc[loss, m].mean(),
                    f"{m}_ratio_worst_seed": ratio}
            stats[f"{m}_first_{loss}"], stats[f"{m}_final_{loss}"] = row[f"{m}_first"], row[f"{m}_final"]
            stats[f"{m}_ratio_{loss}"] = ratio
        for m in ("nc2_uncentred", "nc3_uncentred", "nc3_papyan", "nc4", "equinorm_means", "equinorm_weights",
                  "max_angle_means", "max_angle_weights", "train_acc"):
            row[f"{m}_final"] = last.loc[loss, m].mean()
        rows.append(row)
    for m in ("nc1", "nc2", "nc3"):
        stats[f"{m}_ratio_max"] = max(stats[f"{m}_ratio_{loss}"] for loss in LOSS_NAMES)
    return stats, pd.DataFrame(rows)


VARIANT_ORDER = [*LOSS_NAMES, SECONDARY_LS]


def variant_style(cfg: Config) -> dict[str, tuple[str, tuple]]:
    """variant -> (legend label, colour); the same in every figure."""
    import seaborn as sns

    labels = {"ce": "CE", "ls": f"LS α={cfg.ls_alpha:g}", "fl": f"FL γ={cfg.focal_gamma:g}",
              "mse": f"MSE (×{cfg.mse_scale:g})", SECONDARY_LS: f"LS α={cfg.ls_alpha_secondary}"}
    colours = sns.color_palette("colorblind", len(VARIANT_ORDER))
    return {v: (labels[v], colours[i]) for i, v in enumerate(VARIANT_ORDER)}


def plot_nc_curves(hist: pd.DataFrame, cfg: Config, width: float, path: Path) -> None:
    h = hist[hist["width"] == width].groupby(["variant", "epoch"])[["nc1", "nc2", "nc3"]].mean().reset_index()
    style = variant_style(cfg)
    fig, axes = plotting.subplots(1, 3, figsize=(13, 3.6))
    for ax, m, title in zip(axes, ("nc1", "nc2", "nc3"), ("NC1  tr(Σ_W Σ_B⁺)/K", "NC2  classifier–ETF distance",
                                                          "NC3  self-duality distance")):
        for variant in [v for v in VARIANT_ORDER if v in set(h["variant"])]:
            g = h[h["variant"] == variant]
            label, colour = style[variant]
            ax.plot(g["epoch"], g[m], marker="o", ms=3, color=colour, label=label,
                    ls="--" if variant == SECONDARY_LS else "-")
        ax.set(xscale="log", yscale="log", xlabel="epoch", title=title)
    axes[-1].legend(title=f"width {width:g}, seed mean", loc="upper left", bbox_to_anchor=(1.02, 1))
    plotting.save(fig, path)


def plot_accuracy(acc: pd.DataFrame, cfg: Config, path: Path) -> None:
    style = variant_style(cfg)
    fig, ax = plotting.subplots(figsize=(5.5, 3.6))
    for variant in LOSS_NAMES:
        g = acc[acc["variant"] == variant].sort_values("width")
        label, colour = style[variant]
        ax.errorbar(g["width"], g["test_acc_mean"], yerr=g["test_acc_se"].fillna(0), marker="o", capsize=3,
                    color=colour, label=label)
    widths = sorted(acc["width"].unique())
    ax.set(xscale="log", xlabel="width multiplier", ylabel="test accuracy (%, ± seed SE)",
           title="test accuracy per loss")
    ax.set_xticks(widths, [f"{w:g}" for w in widths])
    ax.minorticks_off()
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    plotting.save(fig, path)


def analyse(ctx) -> ClaimResult:
    cfg: Config = ctx.cfg
    records = load_records(ctx)
    hist = history_frame(records)
    acc = accuracy_frame(records)
    largest, smallest = max(cfg.widths), min(cfg.widths)
    stats, nc_table = collapse_statistics(hist, largest)
    spread_l, se_l = spread(acc, largest)
    spread_s, se_s = spread(acc, smallest)
    stats |= {"largest_width": largest, "smallest_width": smallest,
              "acc_spread_largest_pp": spread_l, "acc_spread_largest_se_pp": se_l,
              "acc_spread_smallest_pp": spread_s, "acc_spread_smallest_se_pp": se_s,
              "acc_spread_shrink_pp": spread_s - spread_l,
              "train_err_max_pp": float(100 - acc["train_acc_min"].min())}
    for _, r in acc.iterrows():
        tag = "largest" if r["width"] == largest else "smallest" if r["width"] == smallest else f"w{r['width']:g}"
        stats[f"test_acc_{r['variant']}_{tag}"] = r["test_acc_mean"]
    plot_nc_curves(hist, cfg, largest, ctx.figures_dir / "nc_vs_epoch.png")
    plot_accuracy(acc, cfg, ctx.figures_dir / "accuracy_vs_width.png")
    final = hist.loc[hist.groupby(["variant", "width", "seed"])["epoch"].idxmax()].reset_index(drop=True)
    tests = pd.DataFrame([{"variant": r["variant"], "width": r["width"], "seed": r["seed"],
                           "test_acc": 100 * r["test_acc"]} for r in records])
    final = final.merge(tests, on=["variant", "width", "seed"])
    setup = {"dataset": f"Fashion-MNIST, class-balanced {cfg.train_per_class}/class train subset "
                        f"({10 * cfg.train_per_class} images), test "
                        + ("all 10k" if cfg.test_per_class is None else f"{10 * cfg.test_per_class} balanced"),
             "model": f"torchvision ResNet-18, widths {list(cfg.widths)}, 3x3 stem stride {cfg.stem_stride}",
             "training": f"SGD lr {cfg.lr} mom {cfg.momentum} wd {cfg.weight_decay}, {cfg.epochs} epochs, batch "
                         f"{cfg.batch_size}, x0.1 at 3/7 and 5/7, clip {cfg.grad_clip}, augment {cfg.augment}",
             "losses": f"CE, LS a={cfg.ls_alpha} (also a={cfg.ls_alpha_secondary} at the largest width), "
                       f"FL g={cfg.focal_gamma}, MSE target {cfg.mse_scale}*onehot",
             "nc": "W-centred NC2/NC3 gate (nc_loss convention); uncentred and Papyan variants reported"}
    return ClaimResult(statistics=stats, seeds=list(cfg.seeds), setup=setup,
                       tables={"nc_history": hist, "nc_final": final, "accuracy": acc, "collapse_largest": nc_table},
                       details={"nc_epochs": nc_epochs(cfg.epochs, cfg.nc_points)})
