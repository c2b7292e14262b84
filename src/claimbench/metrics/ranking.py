"""Rank statistics for comparing score vectors: Spearman ρ, AUROC, top-fraction precision, mean ± SE.

Inputs are 1-D arrays/tensors of equal length N; ties get average ranks. All return plain floats.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

from claimbench.metrics.correlation import spearman_rho
from claimbench.metrics.example_scores import ScoreInputError


def _vec(a, name: str) -> np.ndarray:
    arr = np.asarray(a.cpu() if hasattr(a, "cpu") else a, dtype=np.float64)
    if arr.ndim != 1:
        raise ScoreInputError(f"{name} must be a 1-D vector; got shape {arr.shape}.")
    return arr


def spearman(a, b) -> float:
    """Spearman rank correlation of two equal-length vectors (Pearson correlation of average ranks)."""
    x, y = _vec(a, "a"), _vec(b, "b")
    if len(x) != len(y) or len(x) < 2:
        raise ScoreInputError(f"spearman needs two vectors of equal length ≥ 2; got {len(x)} and {len(y)}.")
    return float(spearman_rho(x, y))


def auroc(scores, positive) -> float:
    """Area under the ROC curve of `scores` for flagging `positive` (bool (N,)); Mann–Whitney U / (P·N)."""
    s, pos = _vec(scores, "scores"), np.asarray(positive.cpu() if hasattr(positive, "cpu") else positive, bool)
    if pos.shape != s.shape:
        raise ScoreInputError(f"auroc: scores {s.shape} and positive mask {pos.shape} differ in shape.")
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ScoreInputError(f"auroc needs both classes; got {n_pos} positives and {n_neg} negatives.")
    ranks = rankdata(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def top_fraction_share(scores, positive, fraction: float) -> float:
    """Share of positives among the round(fraction·N) highest scores (stable order for ties)."""
    s, pos = _vec(scores, "scores"), np.asarray(positive.cpu() if hasattr(positive, "cpu") else positive, bool)
    if pos.shape != s.shape:
        raise ScoreInputError(f"top_fraction_share: scores {s.shape} and mask {pos.shape} differ in shape.")
    k = round(fraction * len(s))
    if not 0 < fraction <= 1 or k == 0:
        raise ScoreInputError(f"top fraction {fraction} of {len(s)} examples selects none; use a fraction in (0, 1].")
    top = np.argsort(-s, kind="stable")[:k]
    return float(pos[top].mean())


def mean_se(values) -> tuple[float, float]:
    """(mean, standard error = sample std / √n); SE is NaN for fewer than two values."""
    v = _vec(values, "values")
    if len(v) == 0:
        return float("nan"), float("nan")
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se
