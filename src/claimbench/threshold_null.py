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

**Gaussian reference (engine v5, issue 24).** At n = 3–10 replicates the centred bootstrap is itself noisy:
resamples that repeat one value have a tiny spread, so even exactly Gaussian samples, for which the
Student-t interval is exact, give a pass-rate bound above 5% in 15–45% of cases (measured: 400 samples per
n, `level` 97.06%). A verdict would then flip with the seed set on luck, not on the data's shape. So each
centred-bootstrap check also carries ``gaussian_q95``: the 95th percentile of the same bound over Gaussian
samples of the same size and level (`gaussian_reference`; committed table, seeded, recomputable), and the
verdict engine flags a check only when its bound exceeds both 5% and that reference: a test of size 5% on
clean data that still flags the shapes that fool the interval (a 6-SD outlier against the check's
direction: 61–85% flagged at n = 4–10; reflected log-normal: 25–57%). Correlations with the Fisher-z floor
keep the 5% ceiling (their floor already widens the interval).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import zlib
from pathlib import Path

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


def _centred_bootstrap(s: Samples, op: str, threshold: float, rng, draws: int, level: float,
                       reference: bool = True) -> dict:
    v = np.asarray(s.values, dtype=np.float64)
    scaled = _scale(s, threshold) if len(v) >= 2 and np.isfinite(v).all() else None
    if scaled is None:
        return {"pass_rate": None, "draws": 0, "exact": False, "method": "undefined (values NaN, too few or ≤ 0)"}
    x, thr = scaled
    rows, exact = _resamples(x - x.mean(), rng, draws)  # (a variance correction would cancel in t)
    rows = thr + rows
    mean, lo, hi, _ = t_bounds(rows, level)
    if s.kind == "correlations" and s.points and s.points > 3:  # the Fisher-z half-width floor (intervals._fisher)
        reference = False  # the floor already widens the interval: the 5% ceiling stays
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
    elif reference:
        out["gaussian_q95"] = gaussian_reference(len(v), level)
    return out


REFERENCE_FILE = Path(__file__).with_name("threshold_null_reference.json")
REFERENCE_SAMPLES = 400
REFERENCE_N = range(3, 41)
REFERENCE_LEVELS = (0.95, 0.9706)


def _reference_bound(n: int, level: float) -> float:
    """95th percentile of a centred-bootstrap check's pass-rate bound over REFERENCE_SAMPLES Gaussian samples
    of size n (op '>' at threshold 0; t is location-scale invariant and the interval symmetric, so this holds
    for every op and threshold), seeded by (n, level)."""
    rng = np.random.default_rng([7, n, round(level * 10000)])
    bounds = []
    for _ in range(REFERENCE_SAMPLES):
        x = rng.normal(size=n)
        r = _centred_bootstrap(Samples("replicates", tuple(float(v) for v in x)), ">", 0.0,
                               _rng("reference", SEED), DRAWS, level, reference=False)
        bounds.append(r["pass_rate"] if r["exact"] else upper_bound(r["pass_rate"], r["draws"]))
    return float(np.quantile(bounds, 0.95, method="higher"))


@functools.cache
def _reference_table() -> dict[str, dict[str, float]]:
    return json.loads(REFERENCE_FILE.read_text()) if REFERENCE_FILE.exists() else {}


@functools.cache
def gaussian_reference(n: int, level: float) -> float:
    """The Gaussian reference bound for n replicates at interval level `level` (module docstring): from the
    committed table when it holds (n, level), else computed (a few seconds; exact enumeration at n ≤ 6)."""
    table = _reference_table().get(f"{level:.4f}", {})
    if str(n) in table:
        return float(table[str(n)])
    return _reference_bound(n, level)


def write_reference_table(path: Path = REFERENCE_FILE) -> dict:
    """Recompute the committed table (python -m claimbench.threshold_null): REFERENCE_N × REFERENCE_LEVELS."""
    table = {f"{lv:.4f}": {str(n): _reference_bound(n, lv) for n in REFERENCE_N} for lv in REFERENCE_LEVELS}
    path.write_text(json.dumps({"_what": "claimbench.threshold_null.gaussian_reference: 95th percentile of a "
                                         "centred-bootstrap check's pass-rate bound over 400 Gaussian samples of "
                                         "size n, per interval level; regenerate with python -m "
                                         "claimbench.threshold_null", **table}, indent=1) + "\n")
    _reference_table.cache_clear()
    gaussian_reference.cache_clear()
    return table


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


if __name__ == "__main__":
    write_reference_table()
    print(f"wrote {REFERENCE_FILE}")
