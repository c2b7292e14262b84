"""Pooled vs within-group association (Simpson's paradox): Kendall tau-b, Spearman rho, R², bootstrap CIs.

The correlation functions come from claimbench.metrics.correlation (vectorised over leading dims;
NaN for a constant input). Bootstrap resamples models with
replacement *within* each group, so every group keeps its size and the pooled and within-group values
of one resample come from the same models.

Undefined values propagate: a NaN metric or target value, or a group whose correlation is undefined
(constant input), makes the mean over groups NaN (never a mean over the remaining groups), and the
intervals follow claimbench.intervals (NaN when more than 1% of the draws are NaN).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from claimbench.errors import ClaimbenchError
from claimbench.intervals import bootstrap, interval
from claimbench.metrics.correlation import kendall_tau, r_squared, spearman_rho


class CorpusError(ClaimbenchError, ValueError):
    """A model corpus table cannot be analysed (missing column, too few models per group)."""


STATISTICS = {"tau": kendall_tau, "rho": spearman_rho, "r2": r_squared}


@dataclass
class GroupedAssociation:
    """One statistic of one metric vs the target. groups: group label -> value; mean_within: mean over
    groups of the signed value; mean_within_abs: mean of |value|; *_ci: (low, high) 95% percentile
    bootstrap intervals over models; boot_pooled (n_boot,) and boot_groups (groups, n_boot): the draws."""

    statistic: str
    pooled: float
    groups: dict
    mean_within: float
    mean_within_abs: float
    pooled_ci: tuple[float, float]
    mean_within_abs_ci: tuple[float, float]
    gap_ci: tuple[float, float]
    boot_pooled: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    boot_groups: np.ndarray = field(repr=False, default_factory=lambda: np.empty((0, 0)))


def _grouped_indices(groups: np.ndarray, min_size: int) -> list[tuple[object, np.ndarray]]:
    out = []
    for g in sorted(np.unique(groups).tolist()):
        idx = np.flatnonzero(groups == g)
        if len(idx) < min_size:
            raise CorpusError(f"group {g!r} has {len(idx)} models; within-group correlations need at least "
                              f"{min_size}. Train more models per depth (a larger grid in params.yaml).")
        out.append((g, idx))
    return out


def _ci(estimate: float, draws: np.ndarray) -> tuple[float, float]:
    iv = interval(bootstrap(estimate, draws))
    return iv.lo, iv.hi


def grouped_association(x: np.ndarray, y: np.ndarray, groups: np.ndarray, statistic: str = "tau",
                        n_boot: int = 1000, seed: int = 0, min_group_size: int = 3) -> GroupedAssociation:
    """Pooled and per-group `statistic` of x (metric, (n,)) vs y (target, (n,)), groups (n,) labels.

    Needs at least two groups of at least `min_group_size` models each. A NaN in x or y makes every value
    it enters NaN (undefined), not a smaller corpus.
    """
    if statistic not in STATISTICS:
        raise CorpusError(f"statistic {statistic!r} unknown; use one of {', '.join(STATISTICS)}.")
    fn = STATISTICS[statistic]
    x, y, groups = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), np.asarray(groups)
    if not (x.shape == y.shape == groups.shape) or x.ndim != 1:
        raise CorpusError(f"x, y and groups must be 1-D of one length; got {x.shape}, {y.shape}, {groups.shape}.")
    x, y = np.where(np.isfinite(x), x, np.nan), np.where(np.isfinite(y), y, np.nan)  # inf counts as undefined
    parts = _grouped_indices(groups, min_group_size)
    if len(parts) < 2:
        raise CorpusError(f"need at least 2 groups to compare pooled and within-group trends; got {len(parts)}.")
    per_group = {g: float(fn(x[idx], y[idx])) for g, idx in parts}
    within = np.array(list(per_group.values()))

    rng = np.random.default_rng(seed)
    boot_idx = np.concatenate([idx[rng.integers(0, len(idx), (n_boot, len(idx)))] for _, idx in parts], axis=1)
    pooled_b = fn(x[boot_idx], y[boot_idx])
    groups_b, start = [], 0
    for _, idx in parts:
        cols = boot_idx[:, start : start + len(idx)]
        groups_b.append(fn(x[cols], y[cols]))
        start += len(idx)
    groups_b = np.stack(groups_b)
    within_abs_b = np.abs(groups_b).mean(0)
    pooled, within_abs = float(fn(x, y)), float(np.abs(within).mean())
    return GroupedAssociation(statistic, pooled, per_group, float(within.mean()), within_abs,
                              _ci(pooled, pooled_b), _ci(within_abs, within_abs_b),
                              _ci(within_abs - abs(pooled), within_abs_b - np.abs(pooled_b)), pooled_b, groups_b)


def paradox_statistics(pooled, within, weak_ratio: float = 0.5) -> dict[str, np.ndarray]:
    """The card's statistics from a pooled value (...) and per-group values within (groups, ...): one
    set for the full data (scalars) or one per bootstrap draw (arrays). NaN in, NaN out.

    abs_pooled = |pooled|; mean_within = mean signed group value; mean_within_abs = mean |group value|;
    shape_gap = mean_within_abs − |pooled| (v1's S2 statistic, sign-blind);
    shape_gap_signed = −mean_within − |pooled|: > 0 when the within-group trend is *negative* (HT-SR's sign
    for α vs test accuracy) and stronger than the pooled trend's magnitude;
    paradox_margin = weak_ratio·|pooled| − sign(pooled)·mean_within: > 0 when the mean within-group trend,
    signed along the pooled one, is weak (below weak_ratio·|pooled|) or reversed (criterion S1). It reads
    the signed mean, not mean |value|: |tau| of uncorrelated groups is biased upward by sampling noise (about
    0.15 for 16 models, more in bootstrap resamples), so a mean of |tau| cannot show a weak trend.
    """
    pooled, within = np.asarray(pooled, dtype=np.float64), np.asarray(within, dtype=np.float64)
    mean, mean_abs, abs_pooled = within.mean(0), np.abs(within).mean(0), np.abs(pooled)
    return {"abs_pooled": abs_pooled, "mean_within": mean, "mean_within_abs": mean_abs,
            "shape_gap": mean_abs - abs_pooled, "shape_gap_signed": -mean - abs_pooled,
            "paradox_margin": weak_ratio * abs_pooled - np.sign(pooled) * mean}


def paradox_flags(pooled: float, within: dict, mean_within: float, mean_within_abs: float,
                  weak_ratio: float = 0.5) -> dict[str, float]:
    """Simpson's-paradox indicators for one metric (point values; criterion S3 of claim simpson_paradox).

    within_weak_or_reversed: mean within |tau| <= weak_ratio·|pooled| or sign(mean within) != sign(pooled);
    groups_differing_fraction: share of groups whose value is opposite in sign or <= weak_ratio·|pooled|.
    Every flag is NaN when any input is NaN (an undefined correlation never counts as weak or reversed).
    """
    values = [pooled, mean_within, mean_within_abs, *within.values()]
    if not np.isfinite(values).all():
        return dict.fromkeys(("within_weak_or_reversed", "within_opposite_sign", "within_over_pooled",
                              "groups_differing_fraction"), float("nan"))
    opposite = bool(np.sign(mean_within) != np.sign(pooled)) and mean_within != 0
    weak = mean_within_abs <= weak_ratio * abs(pooled)
    differing = [np.sign(v) != np.sign(pooled) or abs(v) <= weak_ratio * abs(pooled) for v in within.values()]
    return {"within_weak_or_reversed": float(weak or opposite),
            "within_opposite_sign": float(opposite),
            "within_over_pooled": mean_within_abs / abs(pooled) if pooled else float("inf"),
            "groups_differing_fraction": float(np.mean(differing))}
