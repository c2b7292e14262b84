"""Neural collapse, analyse side: collapse ratios at the largest width and the test-accuracy spread of the
four losses at the largest and smallest widths, from the finished runs' records."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from claimbench.claims.neural_collapse import SECONDARY_LS, Config, nc_epochs
from claimbench.collapse_losses import LOSS_NAMES
from claimbench.contract import Context
from claimbench.results import ClaimResult
from claimbench.sweep import Record


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


def variant_labels(cfg: Config) -> dict[str, str]:
    """variant -> legend label, with the loss's hyper-parameter."""
    return {"ce": "CE", "ls": f"LS α={cfg.ls_alpha:g}", "fl": f"FL γ={cfg.focal_gamma:g}",
            "mse": f"MSE (×{cfg.mse_scale:g})", SECONDARY_LS: f"LS α={cfg.ls_alpha_secondary}"}


def setup(cfg: Config) -> dict[str, str]:
    """The protocol as run, in words."""
    return {"dataset": f"Fashion-MNIST, class-balanced {cfg.train_per_class}/class train subset "
                       f"({10 * cfg.train_per_class} images), test "
                       + ("all 10k" if cfg.test_per_class is None else f"{10 * cfg.test_per_class} balanced"),
            "model": f"torchvision ResNet-18, widths {list(cfg.widths)}, 3x3 stem stride {cfg.stem_stride}",
            "training": f"SGD lr {cfg.lr} mom {cfg.momentum} wd {cfg.weight_decay}, {cfg.epochs} epochs, batch "
                        f"{cfg.batch_size}, x0.1 at 3/7 and 5/7, clip {cfg.grad_clip}, augment {cfg.augment}",
            "losses": f"CE, LS a={cfg.ls_alpha} (also a={cfg.ls_alpha_secondary} at the largest width), "
                      f"FL g={cfg.focal_gamma}, MSE target {cfg.mse_scale}*onehot",
            "nc": "W-centred NC2/NC3 gate (nc_loss convention); uncentred and Papyan variants reported"}


def analyse(records: list[Record], ctx: Context) -> ClaimResult:
    """Statistics the card judges, tables nc_history / nc_final / accuracy / collapse_largest; figure_data:
    the variants' legend labels."""
    cfg: Config = ctx.cfg
    runs = [r.record for r in records]
    hist = history_frame(runs)
    acc = accuracy_frame(runs)
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
    final = hist.loc[hist.groupby(["variant", "width", "seed"])["epoch"].idxmax()].reset_index(drop=True)
    tests = pd.DataFrame([{"variant": r["variant"], "width": r["width"], "seed": r["seed"],
                           "test_acc": 100 * r["test_acc"]} for r in runs])
    final = final.merge(tests, on=["variant", "width", "seed"])
    return ClaimResult(statistics=stats, seeds=list(cfg.seeds), setup=setup(cfg),
                       tables={"nc_history": hist, "nc_final": final, "accuracy": acc, "collapse_largest": nc_table},
                       details={"nc_epochs": nc_epochs(cfg.epochs, cfg.nc_points)},
                       figure_data={"variant_labels": variant_labels(cfg)})
