"""Rank and linear correlation, vectorised over leading dims: x, y (..., n) -> (...).

A constant x or y (undefined correlation) gives NaN. Shared by every claim that correlates metrics
(Spearman ρ of batch size vs α, Kendall τ of spectral metrics vs accuracy, score rank agreement).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def kendall_tau(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b (tie-corrected) of x and y along the last axis; (..., n) -> (...)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    dx = np.sign(x[..., :, None] - x[..., None, :])
    dy = np.sign(y[..., :, None] - y[..., None, :])
    concord = (dx * dy).sum((-1, -2)) / 2  # each unordered pair counted twice
    pairs_x = (dx != 0).sum((-1, -2)) / 2  # pairs not tied in x
    pairs_y = (dy != 0).sum((-1, -2)) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return concord / np.sqrt(pairs_x * pairs_y)


def pearson_r(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis; (..., n) -> (...)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    xc = x - x.mean(-1, keepdims=True)
    yc = y - y.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(-1) / np.sqrt((xc**2).sum(-1) * (yc**2).sum(-1))


def spearman_rho(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho (Pearson r of average ranks) along the last axis."""
    return pearson_r(rankdata(x, axis=-1), rankdata(y, axis=-1))


def r_squared(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """R² of the least-squares line y ~ a + b·x (= Pearson r²) along the last axis."""
    return pearson_r(x, y) ** 2
