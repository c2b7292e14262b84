"""EL2N pruning, null calibration: seeded draws of each gating criterion's per-replicate statistics in a
world where the claimed effect is absent (and, for E1/E2, positive controls where it is present).

- E1 (EL2N@50% − random@50% > 0): EL2N's ranks permuted make EL2N pruning random pruning, so a
  replicate's difference is one random-pruning run minus another: N(0, 2·s²), s = the replicates'
  sd of random@50% accuracy. Control: Kirsch's smaller effect, +1.2 pp, with the same spread.
- E2 (full − EL2N@50% ≤ 0.5): a real loss of exactly the margin, N(0.5, s²), s = the replicates' sd of
  full − EL2N@50%. Control: no loss, N(0, s²).
- E3 (Spearman(EL2N, GraNd) ≥ 0.9): each replicate's GraNd scores permuted (ρ ≈ 0).
- E5 (AUROC ≥ 0.9): each replicate's corruption mask permuted (AUROC ≈ 0.5).
Every draw has as many replicates as the data; a NaN spread gives NaN draws (undecided, never a pass).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from claimbench.intervals import Samples, correlations, replicates

NULL_SEED = 14
N_DRAWS = 1000            # per criterion: pass rates to about ±0.5 pp at 2.5 %
E2_MARGIN = 0.5           # pp; the card's E2 threshold ("no loss at 50 % pruned")
E1_CONTROL_EFFECT = 1.2   # pp; Kirsch's hlb EL2N − random at 50 % pruned (+1.17; JAX rerun +1.7)


def calibration_draws(reps: pd.DataFrame, scores: list[dict[str, torch.Tensor]], noise_el2n: list[torch.Tensor],
                      corrupted: torch.Tensor) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """(null_draws, control_draws): criterion id -> [{statistic: Samples}] (module docstring).
    reps: the replicate table; scores: per replicate its mean scores; noise_el2n: per replicate the mean
    EL2N (N,) of its 'permute' label-noise ensemble; corrupted: (N,) bool mask of changed labels."""
    rng = np.random.default_rng(NULL_SEED)
    n = len(reps)
    s_random = _sd(reps["random_acc_pruned50"])
    s_loss = _sd(reps["full_minus_el2n_pruned50"])
    e1, e2 = "el2n_minus_random_pruned50", "full_minus_el2n_pruned50"
    null = {
        "E1": _named(e1, normal_draws(rng, n, 0.0, np.sqrt(2) * s_random)),
        "E2": _named(e2, normal_draws(rng, n, E2_MARGIN, s_loss)),
        "E3": _named("spearman_el2n_early_grand_early",
                     permuted_spearman(rng, [(s["el2n_early"], s["grand_early"]) for s in scores])),
        "E5": _named("auroc_el2n_noise_permute", permuted_auroc(rng, noise_el2n, corrupted)),
    }
    control = {
        "E1": _named(e1, normal_draws(rng, n, E1_CONTROL_EFFECT, np.sqrt(2) * s_random)),
        "E2": _named(e2, normal_draws(rng, n, 0.0, s_loss)),
    }
    return null, control


def _sd(values) -> float:
    v = np.asarray(values, np.float64)
    return float(v.std(ddof=1)) if len(v) > 1 else float("nan")


def _named(name: str, draws: list[Samples]) -> list[dict]:
    return [{name: d} for d in draws]


def normal_draws(rng: np.random.Generator, n: int, mean: float, sd: float, draws: int = N_DRAWS) -> list[Samples]:
    """`draws` sets of n replicate values from N(mean, sd²); all NaN if sd is not finite."""
    if not np.isfinite(sd):
        return [replicates([float("nan")] * n) for _ in range(draws)]
    return [replicates(row) for row in rng.normal(mean, sd, size=(draws, n))]


def _standardised_ranks(x) -> np.ndarray:
    r = rankdata(np.asarray(x, np.float64))
    r = r - r.mean()
    return r / np.sqrt((r**2).sum())


def permuted_spearman(rng: np.random.Generator, pairs: list[tuple], draws: int = N_DRAWS) -> list[Samples]:
    """Per draw and replicate: Spearman ρ of (a, b permuted) — the ranks of a permuted vector are its
    permuted ranks, so ρ = the dot product of standardised ranks. pairs: per replicate (a, b), (N,) each."""
    ranked = [(_standardised_ranks(a), _standardised_ranks(b)) for a, b in pairs]
    points = len(ranked[0][1]) if ranked else 0
    return [correlations([float(a @ b[rng.permutation(len(b))]) for a, b in ranked], points) for _ in range(draws)]


def permuted_auroc(rng: np.random.Generator, scores: list, mask, draws: int = N_DRAWS) -> list[Samples]:
    """Per draw and replicate: AUROC of the replicate's scores (N,) for the mask (N,) bool, permuted."""
    pos = np.asarray(mask, bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    ranks = [rankdata(np.asarray(s, np.float64)) for s in scores]

    def one(r: np.ndarray) -> float:
        shuffled = pos[rng.permutation(len(pos))]
        return float((r[shuffled].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))

    return [replicates([one(r) for r in ranks]) for _ in range(draws)]
