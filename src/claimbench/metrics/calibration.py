"""Calibration: expected calibration error (ECE) and reliability-diagram bins from softmax confidences."""

from __future__ import annotations

import torch

from claimbench.errors import ClaimbenchError
from claimbench.numerics import upcast


class CalibrationError(ClaimbenchError, ValueError):
    """Inputs to the calibration metrics have the wrong shape or values."""


def reliability_bins(logits: torch.Tensor, y: torch.Tensor, n_bins: int = 15) -> dict[str, torch.Tensor]:
    """Equal-width bins on max-softmax confidence in (0, 1]. logits (N, K), y (N,).

    Returns {'count', 'confidence', 'accuracy'}, each (n_bins,) (mean confidence/accuracy per bin; NaN
    where empty). Bin b holds confidences in (b/n, (b+1)/n], as torchmetrics does.
    """
    if logits.dim() != 2 or y.shape != logits.shape[:1]:
        raise CalibrationError(f"expected logits (N, K) and labels (N,), got {tuple(logits.shape)} and "
                               f"{tuple(y.shape)}.")
    if n_bins < 1:
        raise CalibrationError(f"n_bins must be >= 1, got {n_bins}.")
    conf, pred = upcast(logits).softmax(-1).max(-1)
    correct = (pred == y.to(pred.device)).to(conf.dtype)
    idx = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)
    count = torch.zeros(n_bins, dtype=conf.dtype).index_add_(0, idx.cpu(), torch.ones_like(conf).cpu())
    conf_sum = torch.zeros(n_bins, dtype=conf.dtype).index_add_(0, idx.cpu(), conf.cpu())
    acc_sum = torch.zeros(n_bins, dtype=conf.dtype).index_add_(0, idx.cpu(), correct.cpu())
    return {"count": count, "confidence": conf_sum / count, "accuracy": acc_sum / count}


def expected_calibration_error(logits: torch.Tensor, y: torch.Tensor, n_bins: int = 15) -> float:
    """ECE = Σ_b (n_b / N) |acc_b − conf_b| over equal-width confidence bins (L1, in [0, 1])."""
    bins = reliability_bins(logits, y, n_bins)
    used = bins["count"] > 0
    if not used.any():
        raise CalibrationError("cannot compute ECE of an empty set.")
    gap = (bins["accuracy"][used] - bins["confidence"][used]).abs()
    return float((bins["count"][used] * gap).sum() / bins["count"].sum())
