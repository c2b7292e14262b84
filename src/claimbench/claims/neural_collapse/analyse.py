"""Neural collapse, analyse side, from the finished runs' records and final features: collapse ratios at
the largest width, each loss's test accuracy minus CE's (N2's equivalence test) and the spread of the four
losses at the largest and smallest widths. The gating statistics come as per-seed values (a seed = one run
of every loss from one initialisation and data order, the protocol's replicate), with seeded null draws
(null.py). NaN never turns into a number: a NaN ratio or accuracy makes its seed's value NaN."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from claimbench.claims.neural_collapse import (
    EQUIVALENCE_MARGIN_PP,
    PAPER_WD_TIME,
    REFERENCE_LOSS,
    SECONDARY_LS,
    Config,
    measure_epochs,
    phase_epochs,
    wd_time,
)
from claimbench.claims.neural_collapse import null as N
from claimbench.collapse_losses import LOSS_NAMES
from claimbench.contract import Context
from claimbench.intervals import interval, ratios, replicates
from claimbench.results import ClaimResult
from claimbench.sweep import Record

NUM_CLASSES = 10
# N1's per-seed statistics: the worst loss's final NC relative to its baseline (NC2: the random classifier)
COLLAPSE_STATS = {"nc1": "nc1_ratio_worst_loss", "nc2": "nc2_over_random_worst_loss", "nc3": "nc3_ratio_worst_loss"}
PER_SEED_COLUMNS = {"nc1": "nc1_ratio", "nc2": "nc2_over_random", "nc3": "nc3_ratio"}  # collapse_per_seed
# N2's per-seed statistics: test accuracy of each loss minus CE's, same seed (points)
# Regime R2's plateau metrics (card v3): the W-centred classifier geometry N1 gates; see the card for NC1.
PLATEAU_METRICS = ("nc2", "nc3")
DIFF_STATS = {loss: f"acc_diff_{loss}_ce_pp" for loss in LOSS_NAMES if loss != REFERENCE_LOSS}


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
                train_acc_min=("train_acc", lambda a: a.min(skipna=False))).reset_index()
    out["test_acc_se"] = out["test_acc_sd"] / np.sqrt(out["n_seeds"])
    return out.drop(columns="test_acc_sd")


def spread(acc: pd.DataFrame, width: float) -> tuple[float, float]:
    """(max - min of seed-mean test accuracy over the four losses at `width`, in points; its SE from the seed
    SEs of the two extreme losses, sqrt(se_max^2 + se_min^2); NaN with one seed; both NaN if a loss is NaN)."""
    a = acc[(acc["width"] == width) & acc["variant"].isin(LOSS_NAMES)].set_index("variant")
    if a["test_acc_mean"].isna().any():  # idxmax/idxmin would skip a NaN loss
        return math.nan, math.nan
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
            ratio = (last.loc[loss, m] / first.loc[loss, m]).max(skipna=False)  # NaN stays NaN
            row |= {f"{m}_first": first.loc[loss, m].mean(), f"{m}_final": last.loc[loss, m].mean(),
                    f"{m}_ratio_worst_seed": ratio}
            stats[f"{m}_first_{loss}"], stats[f"{m}_final_{loss}"] = row[f"{m}_first"], row[f"{m}_final"]
            stats[f"{m}_ratio_{loss}"] = ratio
        for m in ("nc2_uncentred", "nc3_uncentred", "nc3_papyan", "nc4", "equinorm_means", "equinorm_weights",
                  "max_angle_means", "max_angle_weights", "train_acc"):
            row[f"{m}_final"] = last.loc[loss, m].mean()
        rows.append(row)
    for m in ("nc1", "nc2", "nc3"):
        stats[f"{m}_ratio_max"] = float(np.max([stats[f"{m}_ratio_{loss}"] for loss in LOSS_NAMES]))
    return stats, pd.DataFrame(rows)


def per_seed_collapse(hist: pd.DataFrame, width: float, seeds: list[int], nc2_random: float
                      ) -> tuple[dict[str, list[float]], pd.DataFrame, dict]:
    """N1's per-seed values at `width`: for each seed the largest over the four losses of final/first NC1,
    final NC2 / the random-classifier NC2 at this feature dimension, and final/first NC3 (NaN if any is).
    Also the per-(loss, seed) table and the first-epoch NC1/NC3 per (loss, seed) the null draws divide by."""
    h = hist[(hist["width"] == width) & hist["variant"].isin(LOSS_NAMES)]
    first = h[h["epoch"] == h["epoch"].min()].set_index(["variant", "seed"])
    last = h[h["epoch"] == h["epoch"].max()].set_index(["variant", "seed"])
    baseline = {"nc1": first["nc1"], "nc2": pd.Series(nc2_random, index=first.index), "nc3": first["nc3"]}
    table = pd.DataFrame([{"seed": s, "loss": loss, **{col: last.loc[(loss, s), m] / baseline[m].loc[(loss, s)]
                                                        for m, col in PER_SEED_COLUMNS.items()}}
                          for s in seeds for loss in LOSS_NAMES])
    values = {COLLAPSE_STATS[m]: [float(np.max(table.loc[table["seed"] == s, col].to_numpy())) for s in seeds]
              for m, col in PER_SEED_COLUMNS.items()}
    firsts = {key: {m: float(first.loc[key, m]) for m in ("nc1", "nc3")} for key in first.index}
    return values, table, firsts


def regime_statistics(hist: pd.DataFrame, width: float, epochs: int) -> dict[str, float]:
    """Terminal phase and plateau over the four losses and all seeds at `width` (NaN propagates):
    train_acc_at_decay_min_largest_pct = the lowest train accuracy (%) at the end of the full-lr phase;
    nc_plateau_change_max = the largest |NC(decay) / NC(window) - 1| over PLATEAU_METRICS across the last
    PLATEAU_FRACTION of the full-lr phase (regime R2); nc_end_change_max = the same for NC1-3 across the
    last PLATEAU_FRACTION of training (reported: the decayed lr makes it small by construction). A window
    of one epoch (very short runs) gives NaN: no plateau can be read."""
    h = hist[(hist["width"] == width) & hist["variant"].isin(LOSS_NAMES)]
    runs = h[["variant", "seed"]].drop_duplicates()
    ph = phase_epochs(epochs)

    def at(epoch: int) -> pd.DataFrame:  # one row per (loss, seed); NaN where that epoch was not measured
        return runs.merge(h[h["epoch"] == epoch], on=["variant", "seed"], how="left")

    def change(metrics: tuple[str, ...], a: int, b: int) -> float:  # NaN for an empty window (a == b)
        if a >= b:
            return math.nan
        first, last = at(a), at(b)
        return float(np.max([(last[m] / first[m] - 1).abs().max(skipna=False) for m in metrics]))

    return {"train_acc_at_decay_min_largest_pct": 100 * float(at(ph["decay"])["train_acc"].min(skipna=False)),
            "nc_plateau_change_max": change(PLATEAU_METRICS, ph["window"], ph["decay"]),
            "nc_end_change_max": change(("nc1", "nc2", "nc3"), ph["end_window"], epochs)}


def per_seed_differences(runs: list[dict], width: float, seeds: list[int]) -> dict[str, list[float]]:
    """N2's per-seed values: test accuracy (points) of each non-CE loss minus CE's at `width`, same seed."""
    acc = {(r["variant"], r["seed"]): 100 * r["test_acc"] for r in runs if r["width"] == width}
    return {name: [acc[loss, s] - acc[REFERENCE_LOSS, s] for s in seeds] for loss, name in DIFF_STATS.items()}


def equivalence_table(diffs: dict[str, list[float]]) -> pd.DataFrame:
    """Per loss: seed-mean difference from CE with its 95% interval (claimbench.intervals) and the margin."""
    rows = []
    for loss, name in DIFF_STATS.items():
        iv = interval(replicates(diffs[name]))
        rows.append({"loss": loss, "minus": REFERENCE_LOSS, "diff_pp": iv.estimate, "lo_pp": iv.lo, "hi_pp": iv.hi,
                     "n_seeds": iv.n, "margin_pp": EQUIVALENCE_MARGIN_PP})
    return pd.DataFrame(rows)


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
                        f"{cfg.batch_size}, x0.1 at 3/7 and 5/7, clip {cfg.grad_clip}, augment {cfg.augment}, "
                        f"loss {cfg.loss_reduction}-reduced over the batch",
            "losses": f"CE, LS a={cfg.ls_alpha} (also a={cfg.ls_alpha_secondary} at the largest width), "
                      f"FL g={cfg.focal_gamma}, MSE target {cfg.mse_scale}*onehot",
            "nc": "W-centred NC2/NC3 gate (nc_loss convention); uncentred and Papyan variants reported",
            "replicates": f"seeds {list(cfg.seeds)} (each: every loss from one init and data order; widths below "
                          f"the largest: the first {cfg.other_width_seeds or len(cfg.seeds)}); N2 control: CE "
                          f"at width {max(cfg.widths)} under seeds {list(cfg.control_seeds) or 'none'}"}


def analyse(records: list[Record], ctx: Context) -> ClaimResult:
    """Statistics the card judges (per-seed samples for N1 and N2, null and control draws), tables
    nc_history / nc_final / accuracy / collapse_largest / collapse_per_seed / equivalence / ce_seeds;
    figure_data: the variants' legend labels. Control runs (CE under control_seeds) feed N2's control only."""
    cfg: Config = ctx.cfg
    main = [r for r in records if r.record["seed"] in cfg.seeds]
    runs = [r.record for r in main]
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
              "train_err_max_pp": float(100 - np.min(acc["train_acc_min"].to_numpy()))}
    for _, r in acc.iterrows():
        tag = "largest" if r["width"] == largest else "smallest" if r["width"] == smallest else f"w{r['width']:g}"
        stats[f"test_acc_{r['variant']}_{tag}"] = r["test_acc_mean"]
    final = hist.loc[hist.groupby(["variant", "width", "seed"])["epoch"].idxmax()].reset_index(drop=True)
    tests = pd.DataFrame([{"variant": r["variant"], "width": r["width"], "seed": r["seed"],
                           "test_acc": 100 * r["test_acc"]} for r in runs])
    final = final.merge(tests, on=["variant", "width", "seed"])

    # Regime: every loss at the largest width in the terminal phase (final train accuracy, NaN propagates).
    judged = [r for r in runs if r["width"] == largest and r["variant"] in LOSS_NAMES]
    stats["train_acc_min_largest_pct"] = float(np.min([100 * r["final"]["train_acc"] for r in judged]))
    stats |= regime_statistics(hist, largest, cfg.epochs) | {"wd_time_full_lr": wd_time(cfg),
                                                             "wd_time_paper_shortest": PAPER_WD_TIME}

    # N1: per seed, the worst loss; NC2 against a random classifier of the same feature dimension d.
    features = {(r.record["variant"], r.record["seed"]): r.tensors("features.pt", "final features")
                for r in main if r.record["width"] == largest and r.record["variant"] in LOSS_NAMES}
    d = int(next(iter(features.values()))["h"].shape[1])
    nc2_random = N.random_nc2_mean(NUM_CLASSES, d)
    collapse, per_seed, firsts = per_seed_collapse(hist, largest, list(cfg.seeds), nc2_random)
    stats |= {"feature_dim_largest": d, "nc2_random_largest": nc2_random}

    # N2: each loss minus CE per seed; null (one loss off by the margin) and control (all equal) draws with
    # the seed noise of CE at the largest width over its main and control seeds.
    diffs = per_seed_differences(runs, largest, list(cfg.seeds))
    ce = [{"seed": r.record["seed"], "role": "main" if r.record["seed"] in cfg.seeds else "control",
           "test_acc": 100 * r.record["test_acc"], "train_acc": 100 * r.record["final"]["train_acc"]}
          for r in records if r.record["variant"] == REFERENCE_LOSS and r.record["width"] == largest]
    n_test = 10 * cfg.test_per_class if cfg.test_per_class is not None else 10_000
    sigma, source = N.run_noise_pp([c["test_acc"] for c in ce], n_test)
    stats |= {"n2_seed_noise_sd_pp": sigma, "n2_margin_pp": EQUIVALENCE_MARGIN_PP}
    null_draws = {"N1": N.collapse_null_draws(features, firsts, nc2_random, list(cfg.seeds), COLLAPSE_STATS,
                                              NUM_CLASSES),
                  "N2": N.equivalence_draws(sigma, len(cfg.seeds), DIFF_STATS, EQUIVALENCE_MARGIN_PP)}
    control = ({"N2": N.equivalence_draws(sigma, len(cfg.seeds), DIFF_STATS, None, seed=N.NULL_SEED + 1)}
               if cfg.control_seeds else {})
    # NC ratios are positive and skewed: judged on the log scale; accuracy differences as replicates
    samples = {**{name: ratios(v) for name, v in collapse.items()},
               **{name: replicates(v) for name, v in diffs.items()}}
    return ClaimResult(statistics=stats, seeds=list(cfg.seeds), setup=setup(cfg), samples=samples,
                       null_draws=null_draws, control_draws=control,
                       tables={"nc_history": hist, "nc_final": final, "accuracy": acc, "collapse_largest": nc_table,
                               "collapse_per_seed": per_seed, "equivalence": equivalence_table(diffs),
                               "ce_seeds": pd.DataFrame(ce)},
                       details={"nc_epochs": measure_epochs(cfg), "plateau_epochs": phase_epochs(cfg.epochs),
                                "null": {"seed": N.NULL_SEED, "draws": N.NULL_DRAWS,
                                         "N1": "final features with labels permuted (NC1); random Gaussian "
                                               "classifier of the same shape (NC2, NC3)",
                                         "N2": f"one non-CE loss off CE by ±{EQUIVALENCE_MARGIN_PP} pt, others equal; "
                                               f"control: all equal; seed noise {sigma:.3g} pt ({source})"}},
                       figure_data={"variant_labels": variant_labels(cfg), "phases": phase_epochs(cfg.epochs),
                                    "epochs": cfg.epochs})
