"""Estimates, 95% intervals and three-valued decisions of gating statistics, in one place for every claim.

A claim's analysis hands the framework, per gating statistic, `Samples` whose *kind* declares the
statistic's form, so the card needs no per-statistic annotation (engine v4, issue 22):

- ``replicates``: one number per independent replicate (a seed). Estimate = the mean; decided on the
  Student-t 95% interval of the mean (method ``student_t``).
- ``ratios``: one positive ratio per replicate. Estimate = the mean; decided on the Student-t interval of
  the mean log ratio, back-transformed (``log_student_t``).
- ``correlations``: one rank correlation (Spearman) per replicate over ``points`` points. Estimate = the
  mean. Against threshold 0 with at most EXACT_MAX_POINTS points: an exact within-replicate permutation
  test of the mean ρ (``exact_permutation``, one-sided p ≤ 2.5% each way); otherwise Fisher z
  (``fisher_z``: tanh of mean atanh ρ ± the larger of the seed-to-seed and within-replicate half-widths).
- ``labels``: one discrete label per replicate. Estimate = the mean; a check is the share of replicates
  whose label satisfies it, k of n, with exact (Clopper–Pearson) 95% bounds against 1/2 (``k_of_n``).
- ``bootstrap``: bootstrap draws of a corpus statistic, its full-data value and, optionally, its
  ``jackknife`` (leave-one-unit-out) values. Decided on the BCa interval when the jackknife is given, else
  (or when the estimate lies at the edge of every draw, where BCa has no bias correction) the percentile
  interval (``bca`` / ``percentile``).

A check passes when the decision lies wholly on the claim's side of the threshold, fails when it lies
wholly on the other side and is otherwise undecided: *underpowered* (straddles; or all of n < 5 replicates
equal, a zero spread that is no evidence of none) or *undefined* (NaN, too few values, a ratio ≤ 0).
No interval ever leaves a bounded statistic's range: correlations stay in [−1, 1], ratios positive.
`interval` gives the check-free estimate and interval (headline, tables); `decide` the check's outcome.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import stats as sps

LEVEL = 0.95
KINDS = ("replicates", "ratios", "correlations", "labels", "bootstrap")
METHODS = {"replicates": "student_t", "ratios": "log_student_t", "correlations": "exact_permutation|fisher_z",
           "labels": "k_of_n", "bootstrap": "bca|percentile"}
MAX_NONFINITE_DRAWS = 0.01
MIN_SPREAD_N = 5        # below it, replicates that are all equal leave the check undecided
EXACT_MAX_POINTS = 8    # a correlation over at most this many points is tested exactly (n! orders per replicate)
LABEL_SHARE = 0.5       # a label check asks whether most replicates satisfy it
PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"
UNDEFINED, UNDERPOWERED = "undefined", "underpowered"


@dataclass(frozen=True)
class Samples:
    """kind: one of KINDS; values: per-replicate values or bootstrap draws; estimate: bootstrap's full-data
    value (None otherwise: the mean is used); points: a correlation's points per replicate; jackknife: the
    bootstrap statistic with each resampling unit left out once (BCa's acceleration)."""

    kind: str
    values: tuple[float, ...]
    estimate: float | None = None
    points: int | None = None
    jackknife: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown samples kind {self.kind!r}; expected one of {', '.join(KINDS)}")

    def to_json(self) -> dict:
        out = {"kind": self.kind, "values": [_num(v) for v in self.values]}
        if self.kind == "bootstrap":
            out["estimate"] = _num(self.estimate)
            if self.jackknife is not None:
                out["jackknife"] = [_num(v) for v in self.jackknife]
        if self.points is not None:
            out["points"] = int(self.points)
        return out

    @classmethod
    def from_json(cls, d: dict) -> Samples:
        jack = d.get("jackknife")
        return cls(d["kind"], tuple(_float(v) for v in d["values"]),
                   _float(d["estimate"]) if d.get("estimate") is not None else None,
                   int(d["points"]) if d.get("points") is not None else None,
                   tuple(_float(v) for v in jack) if jack is not None else None)


def as_samples(s: Samples | dict) -> Samples:
    return s if isinstance(s, Samples) else Samples.from_json(s)


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


@dataclass(frozen=True)
class Decision:
    """One check on one statistic: outcome pass/fail/undecided; kind (undefined/underpowered) and reason
    when undecided; the interval shown [lo, hi] (for labels: the share of replicates satisfying the check;
    NaN for an exact test); p: the exact test's one-sided p-value in the claim's direction, when one decided it."""

    outcome: str
    estimate: float
    lo: float
    hi: float
    n: int
    method: str
    kind: str | None = None
    reason: str | None = None
    p: float | None = None


def _float(v) -> float:
    return float("nan") if v is None else float(v)


def _num(v):
    """JSON-safe: NaN/inf -> None."""
    return None if v is None or not math.isfinite(float(v)) else float(v)


def replicates(values: Iterable[float]) -> Samples:
    """Per-replicate values of one statistic (None counts as NaN)."""
    return Samples("replicates", tuple(_float(v) for v in values))


def ratios(values: Iterable[float]) -> Samples:
    """Per-replicate positive ratios (judged on the log scale)."""
    return Samples("ratios", tuple(_float(v) for v in values))


def correlations(values: Iterable[float], points: int) -> Samples:
    """Per-replicate rank correlations (Spearman), each over `points` points."""
    return Samples("correlations", tuple(_float(v) for v in values), points=int(points))


def labels(values: Iterable[float]) -> Samples:
    """Per-replicate discrete labels (e.g. a phase 0..5)."""
    return Samples("labels", tuple(_float(v) for v in values))


def bootstrap(estimate: float, draws: Iterable[float], jackknife: Iterable[float] | None = None) -> Samples:
    """A bootstrap distribution of one statistic, its full-data estimate and, for BCa, its jackknife values."""
    jack = tuple(_float(v) for v in jackknife) if jackknife is not None else None
    return Samples("bootstrap", tuple(_float(v) for v in draws), _float(estimate), jackknife=jack)


# --- intervals --------------------------------------------------------------------------------------------

def t_bounds(x: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise (mean, lo, hi, sd) of the Student-t `level` interval of the mean; x: (..., n), n ≥ 2."""
    n = x.shape[-1]
    mean, sd = x.mean(axis=-1), x.std(axis=-1, ddof=1)
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, sd


def _replicate_problem(v: np.ndarray, what: str = "replicates") -> str | None:
    n = len(v)
    if n and not np.isfinite(v).all():
        return f"{int((~np.isfinite(v)).sum())} of {n} {what} are NaN"
    if n < 2:
        return f"{n} replicate(s): an interval needs at least 2"
    return None


def _student(v: np.ndarray, level: float) -> Interval:
    problem = _replicate_problem(v)
    if problem:
        return Interval(float(v.mean()) if len(v) and "NaN" not in problem else float("nan"), math.nan, math.nan,
                        len(v), "student_t", problem)
    mean, lo, hi, _ = t_bounds(v, level)
    return Interval(float(mean), float(lo), float(hi), len(v), "student_t")


def _log_student(v: np.ndarray, level: float) -> Interval:
    problem = _replicate_problem(v)
    if problem is None and (v <= 0).any():
        problem = f"{int((v <= 0).sum())} of {len(v)} ratios are ≤ 0 (no log scale)"
    est = float(v.mean()) if len(v) and np.isfinite(v).all() else math.nan
    if problem:
        return Interval(est, math.nan, math.nan, len(v), "log_student_t", problem)
    _, lo, hi, _ = t_bounds(np.log(v), level)
    return Interval(est, float(np.exp(lo)), float(np.exp(hi)), len(v), "log_student_t")


def _fisher(v: np.ndarray, points: int | None, level: float) -> Interval:
    """Mean ρ; interval: tanh of mean atanh(ρ) ± the larger of the seed-to-seed (Student-t) and the
    within-replicate (Bonett–Wright, √(1.06/(points−3)) / √k) half-widths; ρ clipped to ±0.999."""
    k = len(v)
    problem = _replicate_problem(v, "correlations")
    est = float(v.mean()) if k and np.isfinite(v).all() else math.nan
    if problem and not (k == 1 and points and points > 3):
        return Interval(est, math.nan, math.nan, k, "fisher_z", problem)
    if points is None or points <= 3:
        return Interval(est, -1.0, 1.0, k, "fisher_z", None)
    z = np.arctanh(np.clip(v, -0.999, 0.999))
    z_half = float(sps.norm.ppf(0.5 + level / 2)) * math.sqrt(1.06 / (points - 3)) / math.sqrt(k)
    t_half = 0.0
    if k >= 2:
        _, lo, hi, _ = t_bounds(z, level)
        t_half = float(hi - z.mean())
    half = max(z_half, t_half)
    return Interval(est, float(np.tanh(z.mean() - half)), float(np.tanh(z.mean() + half)), k, "fisher_z")


def _bootstrap(s: Samples, level: float) -> Interval:
    v = np.asarray(s.values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    est = _float(s.estimate)
    method = "bca" if s.jackknife is not None else "percentile"
    if len(v) == 0 or len(finite) < (1 - MAX_NONFINITE_DRAWS) * len(v):
        return Interval(est, math.nan, math.nan, len(v), method,
                        f"{len(v) - len(finite)} of {len(v)} bootstrap draws are NaN")
    if not math.isfinite(est):
        return Interval(math.nan, math.nan, math.nan, len(v), method, "the full-data estimate is NaN")
    q = np.array([0.5 - level / 2, 0.5 + level / 2])
    if s.jackknife is not None:
        jack = np.asarray(s.jackknife, dtype=np.float64)
        if not np.isfinite(jack).all() or len(jack) < 2:
            return Interval(est, math.nan, math.nan, len(v), method, "the jackknife values are NaN or too few")
        share = float(np.mean(finite < est))
        if 0 < share < 1:
            q = bca_levels(finite, est, jack, level)
        else:  # the estimate at the edge of its draws (e.g. τ = −1): no bias correction exists; percentile
            method = "percentile"
    lo, hi = np.quantile(finite, q)
    return Interval(est, float(lo), float(hi), len(v), method)


def bca_levels(draws: np.ndarray, estimate: float, jackknife: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """BCa's adjusted quantile levels (Efron 1987; as scipy.stats.bootstrap): bias z0 from the share of draws
    below the estimate, acceleration a from the jackknife's skewness."""
    z0 = sps.norm.ppf(np.mean(draws < estimate))
    d = jackknife.mean() - jackknife
    denom = 6 * (d ** 2).sum() ** 1.5
    a = (d ** 3).sum() / denom if denom > 0 else 0.0
    z = sps.norm.ppf([0.5 - level / 2, 0.5 + level / 2])
    return sps.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))


def interval(s: Samples | dict, level: float = LEVEL) -> Interval:
    """The estimate and central `level` interval of `s` by its kind (module docstring); labels give their
    mean and the range of the values (a label is judged per check, `decide`)."""
    s = as_samples(s)
    v = np.asarray(s.values, dtype=np.float64)
    if s.kind == "replicates":
        return _student(v, level)
    if s.kind == "ratios":
        return _log_student(v, level)
    if s.kind == "correlations":
        return _fisher(v, s.points, level)
    if s.kind == "labels":
        problem = _replicate_problem(v, "labels")
        if problem and "NaN" in problem:
            return Interval(math.nan, math.nan, math.nan, len(v), "k_of_n", problem)
        return Interval(float(v.mean()) if len(v) else math.nan, float(v.min()) if len(v) else math.nan,
                        float(v.max()) if len(v) else math.nan, len(v), "k_of_n", None if len(v) else "no labels")
    return _bootstrap(s, level)


def point(value) -> Interval:
    """A statistic without sampling noise in the question asked (e.g. a property of the runs made)."""
    v = _float(value) if not isinstance(value, bool) else float(value)
    reason = None if math.isfinite(v) else "the value is NaN or missing"
    return Interval(v, v, v, 1, "point", reason)


# --- decisions ---------------------------------------------------------------------------------------------

def holds(op: str, a, b):
    return {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal}[op](a, b)


def decide_interval(iv: Interval, op: str, threshold: float) -> str:
    """pass / fail / undecided of a defined interval against `op threshold` (the whole interval decides)."""
    if op == "==":
        if iv.lo == iv.hi == threshold:
            return PASS
        return FAIL if not (iv.lo <= threshold <= iv.hi) else UNDECIDED
    lo_ok, hi_ok = bool(holds(op, iv.lo, threshold)), bool(holds(op, iv.hi, threshold))
    return PASS if lo_ok and hi_ok else (FAIL if not lo_ok and not hi_ok else UNDECIDED)


def _from_interval(iv: Interval, op: str, threshold: float, values: np.ndarray | None = None) -> Decision:
    if not iv.defined:
        return Decision(UNDECIDED, iv.estimate, iv.lo, iv.hi, iv.n, iv.method, UNDEFINED, iv.reason or "NaN")
    if values is not None and len(values) < MIN_SPREAD_N and np.ptp(values) == 0:
        return Decision(UNDECIDED, iv.estimate, iv.lo, iv.hi, iv.n, iv.method, UNDERPOWERED,
                        f"all {len(values)} replicates are equal: a zero spread at n < {MIN_SPREAD_N} is no "
                        f"evidence of none")
    outcome = decide_interval(iv, op, threshold)
    return Decision(outcome, iv.estimate, iv.lo, iv.hi, iv.n, iv.method,
                    UNDERPOWERED if outcome == UNDECIDED else None,
                    "the interval straddles the threshold" if outcome == UNDECIDED else None)


def clopper_pearson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact two-sided `level` bounds of a binomial share k/n."""
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(sps.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(sps.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def _labels(v: np.ndarray, op: str, threshold: float, level: float) -> Decision:
    n = len(v)
    if n == 0 or not np.isfinite(v).all():
        return Decision(UNDECIDED, math.nan, math.nan, math.nan, n, "k_of_n", UNDEFINED, "labels are NaN or missing")
    k = int(holds(op, v, threshold).sum())
    lo, hi = clopper_pearson(k, n, level)
    outcome = PASS if lo > LABEL_SHARE else (FAIL if hi < LABEL_SHARE else UNDECIDED)
    return Decision(outcome, float(v.mean()), lo, hi, n, "k_of_n", UNDERPOWERED if outcome == UNDECIDED else None,
                    f"{k} of {n} replicates satisfy it; share in [{lo:.2f}, {hi:.2f}] straddles 1/2"
                    if outcome == UNDECIDED else None)


@cache
def spearman_sum_of_squares_null(points: int) -> np.ndarray:
    """P(Σd² = D) for D = 0..D_max over the `points`! equally likely orders (no ties): Spearman's exact null."""
    ranks = np.arange(points)
    d_max = points * (points ** 2 - 1) // 3
    counts = np.zeros(d_max + 1)
    for perm in itertools.permutations(range(points)):
        counts[int(((ranks - np.asarray(perm)) ** 2).sum())] += 1
    return counts / counts.sum()


def mean_rho_null(points: int, replicates_n: int) -> np.ndarray:
    """P(ΣD = D) of k independent replicates' Σd² (exact convolution), D = 0..k·D_max."""
    one = spearman_sum_of_squares_null(points)
    dist = np.array([1.0])
    for _ in range(replicates_n):
        dist = np.convolve(dist, one)
    return dist


def rho_to_d(rho: np.ndarray, points: int) -> np.ndarray:
    """Spearman ρ → Σd² (rounded to the nearest untied value: ρ = 1 − 6 Σd² / (n(n²−1)))."""
    return np.rint((1 - np.asarray(rho)) * points * (points ** 2 - 1) / 6).astype(int)


def exact_rho_pvalues(rho: np.ndarray, points: int) -> tuple[float, float]:
    """(P(mean ρ ≥ observed), P(mean ρ ≤ observed)) under within-replicate permutation (exact)."""
    dist = mean_rho_null(points, len(rho))
    total = int(rho_to_d(rho, points).sum())
    return float(dist[: total + 1].sum()), float(dist[total:].sum())


def exact_applies(s: Samples, op: str, threshold: float) -> bool:
    return (s.kind == "correlations" and threshold == 0 and op != "==" and s.points is not None
            and 2 <= s.points <= EXACT_MAX_POINTS)


def _exact_correlation(s: Samples, op: str, level: float) -> Decision:
    v = np.asarray(s.values, dtype=np.float64)
    iv = _fisher(v, s.points, level)
    if len(v) == 0 or not np.isfinite(v).all():
        return Decision(UNDECIDED, iv.estimate, iv.lo, iv.hi, len(v), "exact_permutation", UNDEFINED,
                        "correlations are NaN or missing")
    p_up, p_down = exact_rho_pvalues(v, s.points)
    p_claim, p_other = (p_up, p_down) if op in (">", ">=") else (p_down, p_up)
    alpha = (1 - level) / 2
    outcome = PASS if p_claim <= alpha else (FAIL if p_other <= alpha else UNDECIDED)
    # no interval is shown for an exact test (a Fisher-z range beside a permutation p would mislead): p is
    return Decision(outcome, iv.estimate, math.nan, math.nan, len(v), "exact_permutation",
                    UNDERPOWERED if outcome == UNDECIDED else None,
                    f"exact permutation p = {p_claim:.3g} (one-sided, {s.points} points × {len(v)} replicates) "
                    f"> {alpha:.3g}" if outcome == UNDECIDED else None, p_claim)


def decide(s: Samples | dict, op: str, threshold: float, level: float = LEVEL) -> Decision:
    """The three-valued outcome of the check `statistic op threshold` on `s` (module docstring)."""
    s = as_samples(s)
    v = np.asarray(s.values, dtype=np.float64)
    if s.kind == "labels":
        return _labels(v, op, threshold, level)
    if exact_applies(s, op, threshold):
        return _exact_correlation(s, op, level)
    spread = v if s.kind in ("replicates", "ratios", "correlations") else None
    return _from_interval(interval(s, level), op, threshold, spread)
