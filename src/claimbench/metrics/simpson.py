"""Pooled vs within-group association (Simpson's paradox): Kendall tau-b, Spearman rho, R², bootstrap CIs.

The correlation functions come from claimbench.metrics.correlation (vectorised over leading dims;
NaN for a constant input). Bootstrap resamples models with
replacement *within* each group, so every group keeps its size and the pooled and within-group values
of one resample come from the same models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from claimbench.errors import ClaimbenchError
from claimbench.metrics.correlation import kendall_tau, r_squared, spearman_rho


class CorpusError(ClaimbenchError, ValueError):
    """A model corpus table cannot be analysed (missing column, too few models per group)."""


STATISTICS = {"tau": kendall_tau, "rho": spearman_rho, "r2": r_squared}


@dataclass
class GroupedAssociation:
    """One statistic of one metric vs the target. groups: group label -> value; mean_within: mean over
    groups of the signed value; mean_within_abs: mean of |value|; *_ci: (low, high) 95% percentile
    bootstrap intervals over models."""

    statistic: str
    pooled: float
    groups: dict
    mean_within: float
    mean_within_abs: float
    pooled_ci: tuple[float, float]
    mean_within_abs_ci: tuple[float, float]
    gap_ci: tuple[float, float]


def _grouped_indices(groups: np.ndarray, min_size: int) -> list[tuple[object, np.ndarray]]:
    out = []
    for g in sorted(np.unique(groups).tolist()):
        idx = np.flatnonzero(groups == g)
        if len(idx) < min_size:
            raise CorpusError(f"group {g!r} has {len(idx)} models; within-group correlations need at least "
                              f"{min_size}. Train more models per depth (a larger grid in params.yaml).")
        out.append((g, idx))
    return out


def grouped_association(x: np.ndarray, y: np.ndarray, groups: np.ndarray, statistic: str = "tau",
                        n_boot: int = 1000, seed: int = 0, min_group_size: int = 3) -> GroupedAssociation:
    """Pooled and per-group `statistic` of x (metric, (n,)) vs y (target, (n,)), groups (n,) labels.

    Needs at least two groups of at least `min_group_size` models each and finite x, y.
    """
    if statistic not in STATISTICS:
        raise CorpusError(f"statistic {statistic!r} unknown; use one of {', '.join(STATISTICS)}.")
    fn = STATISTICS[statistic]
    x, y, groups = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), np.asarray(groups)
    if not (x.shape == y.shape == groups.shape) or x.ndim != 1:
        raise CorpusError(f"x, y and groups must be 1-D of one length; got {x.shape}, {y.shape}, {groups.shape}.")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise CorpusError("metric or target has NaN/inf values; drop those models before correlating.")
    parts = _grouped_indices(groups, min_group_size)
    if len(parts) < 2:
        raise CorpusError(f"need at least 2 groups to compare pooled and within-group trends; got {len(parts)}.")
    per_group = {g: float(fn(x[idx], y[idx])) for g, idx in parts}
    within = np.array(list(per_group.values()))

    rng = np.random.default_rng(seed)
    boot_idx = np.concatenate([idx[rng.integers(0, len(idx), (n_boot, len(idx)))] for _, idx in parts], axis=1)
    pooled_b = fn(x[boot_idx], y[boot_idx])
    within_b, start = [], 0
    for _, idx in parts:
        cols = boot_idx[:, start : start + len(idx)]
        within_b.append(np.abs(fn(x[cols], y[cols])))
        start += len(idx)
    within_abs_b = np.nanmean(np.stack(within_b), axis=0)

    def ci(v: np.ndarray) -> tuple[float, float]:
        v = v[np.isfinite(v)]
        return (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) if len(v) else (np.nan, np.nan)

    return GroupedAssociation(statistic, float(fn(x, y)), per_group, float(np.nanmean(within)),
                              float(np.nanmean(np.abs(within))), ci(pooled_b), ci(within_abs_b),
                              ci(within_abs_b - np.abs(pooled_b)))


def paradox_flags(pooled: float, within: dict, mean_within: float, mean_within_abs: float,
                  weak_ratio: float = 0.5) -> dict[str, float]:
    """Simpson's-paradox indicators for one metric (criteria S1/S3 of claim simpson_paradox).

    within_weak_or_reversed: mean within |tau| <= weak_ratio·|pooled| or sign(mean within) != sign(pooled);
    groups_differing_fraction: share of groups whose value is opposite in sign or <= weak_ratio·|pooled|.
    """
    opposite = bool(np.sign(mean_within) != np.sign(pooled)) and mean_within != 0
    weak = mean_within_abs <= weak_ratio * abs(pooled)
    differing = [np.sign(v) != np.sign(pooled) or abs(v) <= weak_ratio * abs(pooled) for v in within.values()]
    return {"within_weak_or_reversed": float(weak or opposite),
            "within_opposite_sign": float(opposite),
            "within_over_pooled": mean_within_abs / abs(pooled) if pooled else float("inf"),
            "groups_differing_fraction": float(np.mean(differing))}
