"""Estimates and 95% intervals of gating statistics, computed in one place for every claim.

A claim's analysis hands the framework, per gating statistic, either

- its **per-replicate values** (`replicates([...])`): one number per independent unit of the
  protocol (a seed, or a seed with its own score ensemble). Estimate = the mean; interval = the
  two-sided Student-t interval of the mean, mean ± t(0.975, n−1) · sd / √n  (method ``student_t``);
- or a **bootstrap distribution** (`bootstrap(estimate, draws)`) for corpus statistics such as a
  rank correlation over models. Estimate = the statistic on the full data; interval = the 2.5th and
  97.5th percentiles of the draws (method ``percentile``).

A card names the method it uses (``interval:`` key, see claimbench.cards); these two are the only ones.
Undefined inputs never become numbers: a NaN replicate, fewer than 2 replicates, or more than 1% of
bootstrap draws non-finite give a NaN interval and a `reason`, which the card's check reads as *undecided*.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

LEVEL = 0.95
METHODS = {"replicates": "student_t", "bootstrap": "percentile"}
MAX_NONFINITE_DRAWS = 0.01


@dataclass(frozen=True)
class Samples:
    """kind: 'replicates' | 'bootstrap'; values: the replicate values or the bootstrap draws;
    estimate: for bootstrap, the statistic on the full data (None for replicates: the mean is used)."""

    kind: str
    values: tuple[float, ...]
    estimate: float | None = None

    def to_json(self) -> dict:
        return {"kind": self.kind, "values": [_num(v) for v in self.values],
                **({"estimate": _num(self.estimate)} if self.kind == "bootstrap" else {})}

    @classmethod
    def from_json(cls, d: dict) -> Samples:
        return cls(d["kind"], tuple(_float(v) for v in d["values"]), _float(d.get("estimate")))


@dataclass(frozen=True)
class Interval:
    """estimate with its 95% interval [lo, hi]; n = replicates or draws; reason is set when undefined."""

    estimate: float
    lo: float
    hi: float
    n: int
    method: str
    reason: str | None = None

    @property
    def defined(self) -> bool:
        return all(math.isfinite(v) for v in (self.estimate, self.lo, self.hi))

    def to_json(self) -> dict:
        return {"estimate": _num(self.estimate), "lo": _num(self.lo), "hi": _num(self.hi), "n": self.n,
                "method": self.method, "reason": self.reason}


def _float(v) -> float:
    return float("nan") if v is None else float(v)


def _num(v):
    """JSON-safe: NaN/inf -> None."""
    return None if v is None or not math.isfinite(float(v)) else float(v)


def replicates(values: Iterable[float]) -> Samples:
    """Per-replicate values of one statistic (None counts as NaN)."""
    return Samples("replicates", tuple(_float(v) for v in values))


def bootstrap(estimate: float, draws: Iterable[float]) -> Samples:
    """A bootstrap distribution of one statistic and its full-data estimate."""
    return Samples("bootstrap", tuple(_float(v) for v in draws), _float(estimate))


def interval(s: Samples, level: float = LEVEL) -> Interval:
    """The estimate and central `level` interval of `s` by its kind's method (module docstring)."""
    v = np.asarray(s.values, dtype=np.float64)
    nan = float("nan")
    if s.kind == "replicates":
        n = len(v)
        if n and not np.isfinite(v).all():
            return Interval(nan, nan, nan, n, "student_t", f"{int((~np.isfinite(v)).sum())} of {n} replicates are NaN")
        if n < 2:
            return Interval(float(v.mean()) if n else nan, nan, nan, n, "student_t",
                            f"{n} replicate(s): an interval needs at least 2")
        mean, sd = float(v.mean()), float(v.std(ddof=1))
        half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
        return Interval(mean, mean - half, mean + half, n, "student_t")
    if s.kind == "bootstrap":
        finite = v[np.isfinite(v)]
        est = _float(s.estimate)
        if len(v) == 0 or len(finite) < (1 - MAX_NONFINITE_DRAWS) * len(v):
            return Interval(est, nan, nan, len(v), "percentile",
                            f"{len(v) - len(finite)} of {len(v)} bootstrap draws are NaN")
        if not math.isfinite(est):
            return Interval(nan, nan, nan, len(v), "percentile", "the full-data estimate is NaN")
        lo, hi = np.quantile(finite, [0.5 - level / 2, 0.5 + level / 2])
        return Interval(est, float(lo), float(hi), len(v), "percentile")
    raise ValueError(f"unknown samples kind {s.kind!r}; expected one of {sorted(METHODS)}")


def point(value) -> Interval:
    """A statistic without sampling noise in the question asked (e.g. a property of the runs made)."""
    v = _float(value) if not isinstance(value, bool) else float(value)
    reason = None if math.isfinite(v) else "the value is NaN or missing"
    return Interval(v, v, v, 1, "point", reason)
