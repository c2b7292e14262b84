"""5+1 phases of training (Martin & Mahoney, JMLR 2021, Table 1) from an ESD's MP and power-law fits.

The authors identify phases by eye; this automated classifier is OURS (spec §A.7, "proposed automated
phase classifier"). Its thresholds are ours, anchored to the soft ranks the authors' notebook shows
per phase (Random-like 1.0, Bleeding-out 0.92, Bulk+Spikes 0.60–0.80, Bulk-decay 0.29–0.44, Heavy-Tailed
"cannot fit MP"). Order of the checks:

1. Rank-collapse: more than 20% of eigenvalues below 1e-3 × the mean eigenvalue;
2. Random-like: no spikes above the MP edge (+ Tracy–Widom margin), or soft rank R_mp ≥ 0.98;
3. Bleeding-out: 0.85 ≤ R_mp < 0.98;
4. Bulk+Spikes: 0.55 ≤ R_mp < 0.85;
5. Heavy-Tailed: R_mp < 0.2 with a power-law tail (α ≤ 4 and KS D ≤ 0.1);
6. Bulk-decay: every other ESD with R_mp < 0.55.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from claimbench.errors import ClaimbenchError

PHASES = ("Random-like", "Bleeding-out", "Bulk+Spikes", "Bulk-decay", "Heavy-Tailed", "Rank-collapse")
PHASE_INDEX = {name: i for i, name in enumerate(PHASES)}

# Our thresholds (not the authors'): see the module docstring.
COLLAPSE_FRACTION, COLLAPSE_REL = 0.2, 1e-3
RANDOM_SOFTRANK, BLEEDING_SOFTRANK, SPIKES_SOFTRANK, HT_SOFTRANK = 0.98, 0.85, 0.55, 0.2
HT_MAX_ALPHA, HT_MAX_D = 4.0, 0.1


def classify_phase(evals: np.ndarray, num_spikes: int, mp_softrank: float, alpha: float, D: float) -> str:
    """Phase name of one ESD (raw eigenvalues) given its WW-style MP fit (spikes, soft rank) and PL fit."""
    ev = np.asarray(evals, dtype=np.float64)
    if ev.size == 0 or not np.isfinite(mp_softrank):
        raise ClaimbenchError(
            f"classify_phase: need a non-empty ESD and a finite soft rank (got {ev.size} "
            f"eigenvalues, soft rank {mp_softrank}); run spectral.fit_mp on the ESD first."
        )
    if np.mean(ev < COLLAPSE_REL * ev.mean()) > COLLAPSE_FRACTION:
        return "Rank-collapse"
    if num_spikes == 0 or mp_softrank >= RANDOM_SOFTRANK:
        return "Random-like"
    if mp_softrank >= BLEEDING_SOFTRANK:
        return "Bleeding-out"
    if mp_softrank >= SPIKES_SOFTRANK:
        return "Bulk+Spikes"
    if mp_softrank < HT_SOFTRANK and alpha <= HT_MAX_ALPHA and D <= HT_MAX_D:
        return "Heavy-Tailed"
    return "Bulk-decay"


def adjacent_inversions(phase_index_by_size: list[float]) -> int | float:
    """Number of adjacent pairs, ordered by increasing batch size, where the larger size has a HIGHER
    phase index (a step against the claimed progression: larger batches should be less trained).
    NaN if any index is NaN (a diverged ESD): a comparison with NaN must not count as "no inversion"."""
    p = [float(v) for v in phase_index_by_size]
    if not all(np.isfinite(p)):
        return float("nan")
    return sum(b > a for a, b in pairwise(p))
