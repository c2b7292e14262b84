"""Power of a card's checks and of its whole verdict (issues 15 and 22).

    python -m claimbench.power --card el2n_pruning --scale quick   # per-verdict power table, seeded
    python -m claimbench.power --all                               # every card at quick and gpu

A gating statistic judged on replicates (`intervals.replicates`: mean ± Student-t 95% half-width) passes
when its whole interval lies on the claim's side of every check, fails when it lies wholly on the other
side of some check, and is undecided otherwise (cards.py). Given a pilot's per-replicate SD and the effect
the card expects, `decide_probabilities` simulates n replicates ~ N(expected, sd²) and returns how often
each happens; `replicates_for` finds the smallest n reaching a target pass probability.

Seeded Monte Carlo (not a closed form) so that several checks on one statistic (an equivalence test's
two sides, a range) are handled exactly as the card evaluates them.

**Per verdict** (`verdict_power`, issue 22): a card's verdict joins several criteria, so the power of one
statistic says little about the verdict. `verdict_power` simulates whole judged results: it resamples whole
pilot replicates (rows of per-replicate statistic vectors, so their correlations are kept) to the protocol's
n, or draws them from a normal with the card's SDs and correlations where the card has no rows; centres them
on the expected effect; sets each regime statistic met or unmet as the card says for the scale; and judges
each simulated result with `verdict.judge` under the card's pre-registered sequential design (`pooling`: look
1 on one seed set at `levels[0]`; if the verdict is inconclusive because a criterion is underpowered, a second
seed set is drawn and the pooled replicates judged at `levels[1]`). Under the null each gating statistic sits
at its threshold (the one nearest its expected value) with every regime met: the least favourable world.
`look_levels` gives the per-look interval levels of a Pocock or O'Brien–Fleming boundary. Null calibration
(the *miscalibrated* rule) is not simulated: every criterion is taken as calibrated (null pass rate ≤ 5%).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import stats as st

from claimbench import intervals as intervals_module
from claimbench.cards import INCONCLUSIVE, NOT_REPRODUCED, PARTIAL, REPRODUCED, UNDERPOWERED, Card, all_cards, load_card
from claimbench.errors import CardError, ClaimbenchError
from claimbench.intervals import bootstrap, replicates
from claimbench.verdict import judge

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


# --- sequential design: per-look interval levels ------------------------------------------------------

def _crossing(bounds: Sequence[float]) -> float:
    """P(|Z_k| ≥ bounds[k] at some look k) for the z statistics of K equally spaced looks (corr √(j/k))."""
    k = len(bounds)
    cov = np.array([[np.sqrt(min(i, j) / max(i, j)) for j in range(1, k + 1)] for i in range(1, k + 1)])
    b = np.asarray(bounds, float)
    return float(1 - st.multivariate_normal(np.zeros(k), cov).cdf(b, lower_limit=-b))


def look_levels(looks: int, boundary: str, alpha: float = 0.05) -> list[float]:
    """Central interval level at each of `looks` equally spaced looks whose two-sided error, spent over all
    looks, is `alpha`: Pocock (one constant z at every look) or O'Brien–Fleming (z_k = c·√(K/k)). Two looks,
    α = 0.05: Pocock 0.9706 at both; O'Brien–Fleming 0.9948 then 0.9520."""
    if looks < 1 or not 0 < alpha < 1:
        raise ValueError(f"look_levels: looks={looks}, alpha={alpha}: need looks ≥ 1 and 0 < alpha < 1")
    shape = {"pocock": lambda k: 1.0, "obrien_fleming": lambda k: np.sqrt(looks / k)}
    if boundary not in shape:
        raise ValueError(f"look_levels: boundary {boundary!r} unknown; allowed: {', '.join(shape)}")
    w = [shape[boundary](k) for k in range(1, looks + 1)]
    c = optimize.brentq(lambda c: _crossing([c * x for x in w]) - alpha, 0.5, 10, xtol=1e-10)
    return [1 - 2 * float(st.norm.sf(c * x)) for x in w]


# --- per-verdict power ----------------------------------------------------------------------------------

VERDICTS = {REPRODUCED: "reproduced", PARTIAL: "partially", NOT_REPRODUCED: "not", INCONCLUSIVE: "inconclusive"}
BOOT_DRAWS = 200  # a simulated bootstrap statistic's draws: normal quantiles around its estimate


def gating_checks(card: Card) -> dict[str, list[tuple[str, float]]]:
    """statistic -> every (op, threshold) the card's gating criteria apply to it."""
    out: dict[str, list[tuple[str, float]]] = {}
    for c in card.criteria:
        if c.gating:
            for ch in c.checks:
                out.setdefault(ch.statistic, []).append((ch.op, float(ch.threshold)))
    return out


def null_effect(card: Card, expected: Mapping[str, float]) -> dict[str, float]:
    """Each gating statistic at its threshold, the one nearest its expected value (ties: the first check);
    on the failing side of a non-strict bound (≥ t: just below t)."""
    out = {}
    for name, checks in gating_checks(card).items():
        target = expected.get(name, checks[0][1])
        op, thr = min(checks, key=lambda c: abs(c[1] - target))
        # a non-strict bound holds on the threshold itself: the null sits just past it
        out[name] = thr + {">=": -1e-9, "<=": 1e-9}.get(op, 0.0) * (1 + abs(thr))
    return out


def regime_stats(card: Card, states: Mapping[str, str]) -> dict[str, float]:
    """Point values that meet (or fail) each regime precondition as `states` says: met → on the threshold
    (just inside a strict bound), unmet → well outside."""
    out = {}
    for p in card.regime:
        met = states.get(p.id, "met") == "met"
        for ch in p.checks:
            t, scale = float(ch.threshold), 1.0 + abs(float(ch.threshold))
            inside = {">=": t, "<=": t, "==": t, ">": t + 1e-9 * scale, "<": t - 1e-9 * scale}[ch.op]
            outside = t - scale if ch.op in (">", ">=") else t + scale
            out[ch.statistic] = inside if met else outside
    return out


def _normal_cov(normal: Mapping) -> tuple[list[str], np.ndarray]:
    names = list(normal["sd"])
    sd = np.array([float(normal["sd"][n]) for n in names])
    corr = np.eye(len(names))
    for pair in normal.get("correlation") or []:
        i, j = (names.index(x) for x in pair["between"])
        corr[i, j] = corr[j, i] = float(pair["r"])
    return names, corr * np.outer(sd, sd)


class _MemoT:
    """scipy.stats.t with a memoised ppf: a simulation asks for the same few quantiles ~10⁵ times."""

    def __init__(self) -> None:
        self._memo: dict[tuple[float, float], float] = {}

    def ppf(self, q, df):
        key = (float(q), float(df))
        if key not in self._memo:
            self._memo[key] = float(st.t.ppf(q, df))
        return self._memo[key]

    def __getattr__(self, name):
        return getattr(st.t, name)


class _MemoStats:
    def __init__(self) -> None:
        self.t = _MemoT()

    def __getattr__(self, name):
        return getattr(st, name)


@contextlib.contextmanager
def _memo_quantiles() -> Iterator[None]:
    """Within the block claimbench.intervals reads Student-t quantiles from a memo (same numbers, ~30× faster)."""
    saved = getattr(intervals_module, "sps", None)
    if saved is not st:
        yield
        return
    intervals_module.sps = _MemoStats()
    try:
        yield
    finally:
        intervals_module.sps = saved


@dataclass(frozen=True)
class _Model:
    """What one simulated judged run is drawn from (verdict_power's arguments, prepared)."""

    rows: np.ndarray            # pilot rows, centred on their column means (m × k)
    rows_names: list[str]
    norm_names: list[str]
    cov: np.ndarray             # normal statistics' covariance (per replicate, or of the estimate if boot)
    boot: bool
    centre: dict[str, float]    # the simulated mean of each statistic
    fixed: dict[str, float]     # regime statistics as points
    wanted: list[str]           # the gating statistics simulated
    n: int
    n_of: dict[str, int]

    def draw_set(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One seed set: statistic -> its n replicate values (or its bootstrap estimate, shape ())."""
        vals = {}
        if self.rows_names:
            pick = self.rows[rng.integers(0, len(self.rows), size=self.n)]
            for j, name in enumerate(self.rows_names):
                vals[name] = pick[:, j] + self.centre.get(name, 0.0)
        if self.norm_names:
            x = rng.multivariate_normal(np.zeros(len(self.norm_names)), self.cov, size=None if self.boot else self.n)
            for j, name in enumerate(self.norm_names):
                vals[name] = x[..., j] + self.centre.get(name, 0.0)
        return vals

    def samples(self, sets: list[dict[str, np.ndarray]]) -> dict:
        """The pooled samples of `sets` (replicates concatenated; bootstrap estimates averaged)."""
        out = {}
        for name in self.wanted:
            if self.boot and name in self.norm_names:
                est = float(np.mean([s[name] for s in sets]))
                i = self.norm_names.index(name)
                out[name] = bootstrap(est, est + float(np.sqrt(self.cov[i, i] / len(sets))) * BOOT_QUANTILES)
            else:
                k = self.n_of.get(name, self.n)
                out[name] = replicates(np.concatenate([s[name][:k] for s in sets]))
        return out


BOOT_QUANTILES = st.norm.ppf((np.arange(BOOT_DRAWS) + 0.5) / BOOT_DRAWS)


def verdict_power(card: Card, pilot_rows: Mapping | None, n: int, expected: Mapping[str, float], *,
                  normal: Mapping | None = None, regime: Mapping[str, str] | None = None,
                  n_statistic: Mapping[str, int] | None = None, se_factor: float = 1.0,
                  levels: Sequence[float] = (0.95,), null: bool = False, draws: int = 1000,
                  seed: int = 0) -> dict[str, float]:
    """{"reproduced", "partially", "not", "inconclusive"}: how often `card`'s verdict comes out so when its
    judged run is simulated `draws` times (module doc). pilot_rows: {"statistics": [k names], "values":
    [[k numbers] per pilot replicate]}; n: replicates per seed set; expected: statistic -> expected value
    (the mean of the simulated replicates, or of a bootstrap statistic's estimate); normal: {"method":
    "replicates" | "bootstrap", "sd": {statistic: sd}, "correlation": [{"between": [a, b], "r": r}]} for
    statistics without rows (bootstrap: sd × se_factor is the SE of the estimate); regime: precondition id
    -> "met" | "unmet" (null: all met); n_statistic: per-statistic n overrides; levels: one interval level
    per look (one level: a single look); null: every gating statistic at its threshold."""
    if draws < 1 or n < 1:
        raise ValueError(f"verdict_power: draws={draws}, n={n}: both must be ≥ 1")
    fixed = regime_stats(card, {} if null else (regime or {}))
    rows_names, rows = [], np.zeros((0, 0))
    if pilot_rows:
        rows_names = list(pilot_rows["statistics"])
        rows = np.asarray(pilot_rows["values"], float)
        rows = rows - rows.mean(axis=0)
    norm_names, cov = _normal_cov(normal) if normal else ([], np.zeros((0, 0)))
    boot = bool(normal) and normal.get("method") == "bootstrap"
    wanted = [s for s in gating_checks(card) if s not in fixed]
    lacking = sorted(set(wanted) - set(rows_names) - set(norm_names))
    if lacking:
        raise ValueError(f"verdict_power: no pilot rows or sd for {lacking}")
    model = _Model(rows, rows_names, norm_names, cov * se_factor ** 2 if boot else cov, boot,
                   null_effect(card, expected) if null else dict(expected), fixed, wanted, n, dict(n_statistic or {}))
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(VERDICTS.values(), 0)
    with _memo_quantiles():
        for _ in range(draws):
            sets = [model.draw_set(rng) for _ in levels]
            for look, level in enumerate(levels):
                v = judge(card, fixed, model.samples(sets[:look + 1]), level=level)
                if v["verdict"] != INCONCLUSIVE or v["reason_kind"] != UNDERPOWERED:
                    break  # decided, or inconclusive for a reason more seeds cannot mend: the design stops
            counts[VERDICTS[v["verdict"]]] += 1
    return {k: c / draws for k, c in counts.items()}


def card_verdict_power(card: Card, scale: str, *, null: bool = False, draws: int = 1000,
                       seed: int = 0) -> dict[str, float]:
    """verdict_power with the card's own `power.simulation` inputs for `scale` and its `pooling` levels; a scale's
    own `normal` block (`scales.<scale>.normal`) replaces the card-wide one for that scale only, so that a later
    version can re-size one scale without moving the predictions stored for the others."""
    sim = (card.raw.get("power") or {}).get("simulation")
    if not sim or scale not in sim["scales"]:
        raise CardError(f"card {card.id}: power.simulation has no scale {scale!r}; add scales.{scale} and "
                        f"expected.{scale}.")
    spec = sim["scales"][scale]
    expected = {e["statistic"]: float(e["value"]) for e in sim["expected"][scale]}
    levels = (card.raw.get("pooling") or {}).get("levels") or [card.look_level(0)]
    return verdict_power(card, sim.get("rows"), int(spec["n"]), expected, normal=spec.get("normal", sim.get("normal")),
                         regime=spec.get("regime"), n_statistic=spec.get("n_statistic"),
                         se_factor=float(spec.get("se_factor", 1.0)), levels=levels, null=null, draws=draws,
                         seed=seed)


def false_positive_rate(p_null: Mapping[str, float]) -> float:
    """P(a verdict of at least "partially reproduced") from a per-verdict power under the null."""
    return float(p_null["reproduced"] + p_null["partially"])


def suite_error(rates: Sequence[float]) -> tuple[float, float]:
    """(P(at least one false positive), expected number of false positives) over independent claims."""
    return 1 - float(np.prod([1 - r for r in rates])), float(sum(rates))


def _fmt(p: Mapping[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {p[k]:.3f}" for k in VERDICTS.values()) + "}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m claimbench.power", description="Per-verdict power of a card.")
    ap.add_argument("--card", nargs="*", default=None, help="claim ids (default with --all: every card)")
    ap.add_argument("--scale", nargs="*", default=["quick", "long", "gpu"])
    ap.add_argument("--all", action="store_true", help="every card")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        cards = all_cards() if args.all or not args.card else {c: load_card(c) for c in args.card}
        for cid, card in cards.items():
            print(f"{cid}:")
            for scale in args.scale:
                exp = card_verdict_power(card, scale, draws=args.draws, seed=args.seed)
                nul = card_verdict_power(card, scale, null=True, draws=args.draws, seed=args.seed)
                print(f"  {scale}: {{draws: {args.draws}, seed: {args.seed}, expected: {_fmt(exp)}, "
                      f"\"null\": {_fmt(nul)}}}")
    except ClaimbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
