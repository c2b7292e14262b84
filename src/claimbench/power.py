"""Power of a card's checks: how often a run of a given size decides them (issue 15, layer 1).

A gating statistic judged on replicates (`intervals.replicates`: mean ± Student-t 95% half-width) passes
when its whole interval lies on the claim's side of every check, fails when it lies wholly on the other
side of some check, and is undecided otherwise (cards.py). Given a pilot's per-replicate SD and the effect
the card expects, `decide_probabilities` simulates n replicates ~ N(expected, sd²) and returns how often
each happens; `replicates_for` finds the smallest n reaching a target pass probability.

Seeded Monte Carlo (not a closed form) so that several checks on one statistic (an equivalence test's
two sides, a range) are handled exactly as the card evaluates them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as st

OPS = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}
Check = tuple[str, float]


def _validate(sd: float, n: int, checks: Sequence[Check]) -> None:
    if not checks:
        raise ValueError("power: at least one (op, threshold) check is needed")
    for op, _ in checks:
        if op not in OPS:
            raise ValueError(f"power: op {op!r} unknown; allowed: {', '.join(OPS)}")
    if n < 2:
        raise ValueError(f"power: n={n}: a Student-t interval needs at least 2 replicates")
    if not sd >= 0:
        raise ValueError(f"power: sd={sd} must be a number ≥ 0")


def decide_probabilities(expected: float, sd: float, n: int, checks: Sequence[Check], level: float = 0.95,
                         draws: int = 20000, seed: int = 0) -> dict[str, float]:
    """{"pass", "fail", "undecided"} probabilities of the Student-t `level` interval of n replicates
    ~ N(expected, sd²) against `checks` [(op, threshold), ...] (all must hold on the whole interval)."""
    _validate(sd, n, checks)
    rng = np.random.default_rng(seed)
    x = rng.normal(expected, sd, size=(draws, n))
    mean = x.mean(axis=1)
    half = st.t.ppf(0.5 + level / 2, n - 1) * x.std(axis=1, ddof=1) / np.sqrt(n)
    lo, hi = mean - half, mean + half
    passed = np.ones(draws, bool)
    failed = np.zeros(draws, bool)
    for op, thr in checks:
        if op in (">", ">="):
            passed &= OPS[op](lo, thr)
            failed |= ~OPS[op](hi, thr)
        else:
            passed &= OPS[op](hi, thr)
            failed |= ~OPS[op](lo, thr)
    failed &= ~passed
    p, f = float(passed.mean()), float(failed.mean())
    return {"pass": p, "fail": f, "undecided": 1.0 - p - f}


def p_pass(expected: float, sd: float, n: int, checks: Sequence[Check], **kw) -> float:
    """Probability that the whole interval clears every check (see decide_probabilities)."""
    return decide_probabilities(expected, sd, n, checks, **kw)["pass"]


def replicates_for(expected: float, sd: float, checks: Sequence[Check], target: float = 0.8,
                   n_max: int = 64, **kw) -> int | None:
    """Smallest n in [2, n_max] with p_pass ≥ target, or None if even n_max falls short."""
    for n in range(2, n_max + 1):
        if p_pass(expected, sd, n, checks, **kw) >= target:
            return n
    return None
