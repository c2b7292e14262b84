"""Null calibration at the pass line (engine v4, issue 22): how often a check would pass if the statistic's
true value sat exactly on its threshold — the least favourable point of the null — keeping the data's shape.

Per kind of `intervals.Samples`:

- ``replicates`` / ``ratios`` / ``correlations`` judged by an interval: a **centred bootstrap** of the
  replicate values on the scale the interval uses (identity / log / Fisher z): threshold + a resample of
  (x − mean), judged exactly as the data. Skew and heavy tails are kept, so a Student-t interval that is
  fooled by them shows up. Enumerated exactly when nⁿ ≤ EXACT_MAX_RESAMPLES, else DRAWS seeded draws.
- ``correlations`` judged by the exact permutation test: the test's exact size (enumerated, no draws).
- ``labels``: the share of replicates satisfying the check at exactly 1/2 (binomial, enumerated exactly).
- ``bootstrap``: each bootstrap draw moved to the threshold (t + θ* − θ̂) carries the observed interval's
  shape (a translation pivot); a claim may instead hand the criterion's own corpus draws at the threshold.

With 2 replicates every centred resample is symmetric about the threshold or constant, so it can never
pass: such a rate is marked ``informative: False`` (the null page says so instead of certifying it).

A criterion passes only if all its checks do, so its least favourable point puts one check on its threshold
with the others passing (intersection–union): its null pass rate is the largest of its checks' rates.
`pass_upper` is the Clopper–Pearson 95% upper bound of the rate (the rate itself when enumerated exactly);
the card's "≤ 5%" is judged on it.
"""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np
from scipy import stats as sps

from claimbench.intervals import (
    LEVEL,
    MIN_SPREAD_N,
    Samples,
    as_samples,
    clopper_pearson,
    exact_applies,
    holds,
    interval,
    mean_rho_null,
    t_bounds,
)

DRAWS = 2000
EXACT_MAX_RESAMPLES = 50000
SEED = 22


def _rng(statistic: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(statistic.encode())])


def _passes(lo: np.ndarray, hi: np.ndarray, op: str, threshold: float) -> np.ndarray:
    if op == "==":
        return (lo == threshold) & (hi == threshold)
    return holds(op, lo, threshold) & holds(op, hi, threshold)


def _resamples(centred: np.ndarray, rng: np.random.Generator, draws: int) -> tuple[np.ndarray, bool]:
    n = len(centred)
    if n ** n <= EXACT_MAX_RESAMPLES:
        idx = np.array(list(itertools.product(range(n), repeat=n)))
        return centred[idx], True
    return centred[rng.integers(0, n, size=(draws, n))], False


def _scale(s: Samples, threshold: float):
    """(values, threshold) on the scale the interval is computed on, or None when undefined there."""
    v = np.asarray(s.values, dtype=np.float64)
    if s.kind == "ratios":
        return (np.log(v), math.log(threshold)) if threshold > 0 and (v > 0).all() else None
    if s.kind == "correlations":
        return np.arctanh(np.clip(v, -0.999, 0.999)), math.atanh(max(-0.999, min(0.999, threshold)))
    return v, threshold


def _centred_bootstrap(s: Samples, op: str, threshold: float, rng, draws: int, level: float) -> dict:
    v = np.asarray(s.values, dtype=np.float64)
    scaled = _scale(s, threshold) if len(v) >= 2 and np.isfinite(v).all() else None
    if scaled is None:
        return {"pass_rate": None, "draws": 0, "exact": False, "method": "undefined (values NaN, too few or ≤ 0)"}
    x, thr = scaled
    rows, exact = _resamples(x - x.mean(), rng, draws)  # (a variance correction would cancel in t)
    rows = thr + rows
    mean, lo, hi, _ = t_bounds(rows, level)
    if s.kind == "correlations" and s.points and s.points > 3:  # the Fisher-z half-width floor (intervals._fisher)
        floor = float(sps.norm.ppf(0.5 + level / 2)) * math.sqrt(1.06 / (s.points - 3)) / math.sqrt(len(v))
        half = np.maximum(hi - mean, floor)
        lo, hi = mean - half, mean + half
    ok = _passes(lo, hi, op, thr)
    if len(v) < MIN_SPREAD_N:
        ok &= np.ptp(rows, axis=1) > 0
    out = {"pass_rate": float(ok.mean()), "draws": int(len(rows)), "exact": exact,
           "method": f"centred bootstrap at the threshold ({'exact, ' if exact else ''}{len(v)} replicates)"}
    if len(v) < 3:  # two values resample to a pair symmetric about the threshold or a constant: never a pass
        out["informative"] = False
    return out


def _exact_correlation(s: Samples, level: float) -> dict:
    dist = mean_rho_null(s.points, len(s.values))
    cdf = np.cumsum(dist)
    size = float(dist[cdf <= (1 - level) / 2].sum())
    orders = math.factorial(s.points) ** len(s.values)
    return {"pass_rate": size, "draws": orders, "exact": True,
            "method": f"exact permutation null ({s.points}! orders per replicate, {len(s.values)} replicates)"}


def _labels(s: Samples, level: float) -> dict:
    n = len(s.values)
    rate = sum(sps.binom.pmf(k, n, 0.5) for k in range(n + 1) if clopper_pearson(k, n, level)[0] > 0.5)
    return {"pass_rate": float(rate), "draws": 2 ** n, "exact": True,
            "method": f"binomial at a share of 1/2 (exact, {n} replicates)"}


def _shifted_bootstrap(s: Samples, op: str, threshold: float, level: float) -> dict:
    iv = interval(s, level)
    draws = np.asarray(s.values, dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    if not iv.defined or len(draws) == 0:
        return {"pass_rate": None, "draws": 0, "exact": False, "method": "undefined (interval NaN)"}
    est = threshold + draws - iv.estimate
    ok = _passes(est - (iv.estimate - iv.lo), est + (iv.hi - iv.estimate), op, threshold)
    return {"pass_rate": float(ok.mean()), "draws": int(len(draws)), "exact": False,
            "method": f"bootstrap draws moved to the threshold ({iv.method} interval shape)"}


def check_null(s: Samples | dict, op: str, threshold: float, statistic: str = "", seed: int = SEED,
               draws: int = DRAWS, level: float = LEVEL) -> dict:
    """{'pass_rate', 'pass_upper', 'draws', 'exact', 'method'} of one check with its statistic's true value
    on the threshold (module docstring); pass_rate None when the samples are undefined."""
    s = as_samples(s)
    if s.kind == "labels":
        out = _labels(s, level)
    elif exact_applies(s, op, threshold):
        out = _exact_correlation(s, level)
    elif s.kind == "bootstrap":
        out = _shifted_bootstrap(s, op, threshold, level)
    else:
        out = _centred_bootstrap(s, op, threshold, _rng(statistic, seed), draws, level)
    rate = out["pass_rate"]
    if rate is None:
        upper = None
    elif out["exact"]:
        upper = rate
    else:
        upper = clopper_pearson(round(rate * out["draws"]), out["draws"])[1]
    return {**out, "pass_upper": upper}


def upper_bound(rate: float, draws: int) -> float:
    """Clopper–Pearson 95% upper bound of a Monte Carlo pass rate over `draws` draws."""
    return clopper_pearson(round(rate * draws), draws)[1]
