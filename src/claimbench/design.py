"""The pre-registered seed-set design (card `pooling:`, issue 22): two seed sets' records judged each at look 1's
interval level, pooled at look 2's, the design's verdict (look 2 when look 1 is inconclusive because a criterion
is underpowered) and whether the sets conflict. Used by the robustness page and by the report, whose claims table
shows the design's verdict once seed set 1 has run."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as st

from claimbench.cards import FAIL, INCONCLUSIVE, PASS, UNDERPOWERED, Card
from claimbench.intervals import Samples
from claimbench.verdict import judge, null_ceiling

HETEROGENEITY_P = 0.05


def _samples(rec: dict) -> dict[str, Samples]:
    return {k: Samples.from_json(v) for k, v in (rec.get("samples") or {}).items()}


def _null(rec: dict) -> dict[str, dict]:
    """criterion id -> the record's stored threshold-null calibration (with its upper bound when recorded)."""
    return {c["id"]: {"pass_rate": c["null_pass_rate"], "draws": c.get("null_draws", 0),
                      **({"pass_upper": c["null_pass_upper"]} if c.get("null_pass_upper") is not None else {}),
                      **({"ceiling": c["null_ceiling"]} if c.get("null_ceiling") is not None else {})}
            for c in rec.get("criteria", []) if c.get("null_pass_rate") is not None}


def _point_directions(card: Card) -> dict[str, str]:
    """statistic -> the first op of a regime or exact check on it (judged as a point)."""
    out: dict[str, str] = {}
    for p in card.regime:
        for ch in p.checks:
            out.setdefault(ch.statistic, ch.op)
    for c in card.criteria:
        for ch in c.checks:
            if ch.exact:
                out.setdefault(ch.statistic, ch.op)
    return out


def pool(card: Card, a: dict, b: dict) -> tuple[dict, dict[str, Samples], dict]:
    """(stats, samples, null) of two seed sets' records judged together (module doc)."""
    stats = dict(a.get("statistics") or {})
    for name, op in _point_directions(card).items():
        va, vb = stats.get(name), (b.get("statistics") or {}).get(name)
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)):
            vals = [float(va), float(vb)]
            stats[name] = (float("nan") if any(math.isnan(v) for v in vals)
                           else min(vals) if op in (">", ">=") else max(vals) if op in ("<", "<=") else va)
    sa, sb = _samples(a), _samples(b)
    samples = {}
    for name in sa.keys() & sb.keys():
        x, y = sa[name], sb[name]
        if x.kind == y.kind and x.kind in ("replicates", "ratios", "labels"):
            samples[name] = Samples(x.kind, x.values + y.values)
        elif x.kind == y.kind == "correlations" and x.points == y.points:
            samples[name] = Samples("correlations", x.values + y.values, points=x.points)
        elif x.kind == y.kind == "bootstrap":
            m = min(len(x.values), len(y.values))
            draws = tuple((u + v) / 2 for u, v in zip(x.values[:m], y.values[:m]))
            samples[name] = Samples("bootstrap", draws, (x.estimate + y.estimate) / 2)
    na, nb = _null(a), _null(b)
    null = {c: max((na.get(c), nb.get(c)), key=lambda d: -1 if d is None else
                   d.get("pass_upper", d["pass_rate"]) - null_ceiling(d))
            for c in na.keys() | nb.keys()}  # the worse set's calibration, by its margin to its own ceiling
    return stats, samples, null


def heterogeneity(x: Samples, y: Samples) -> float | None:
    """Two-sided p-value that two seed sets' values of one statistic share a mean: Welch's t-test on
    replicates, a z-test on the difference of bootstrap estimates (SE = the draws' SD; Cochran's Q for two
    sets); None when either is undefined."""
    if x.kind == y.kind and x.kind in ("replicates", "ratios", "correlations", "labels"):
        u, v = np.asarray(x.values, dtype=float), np.asarray(y.values, dtype=float)
        if len(u) < 2 or len(v) < 2 or not (np.isfinite(u).all() and np.isfinite(v).all()):
            return None
        if u.std() == 0 and v.std() == 0:
            return 1.0 if u.mean() == v.mean() else 0.0
        return float(st.ttest_ind(u, v, equal_var=False).pvalue)
    if x.kind == y.kind == "bootstrap":
        se = math.hypot(float(np.nanstd(x.values, ddof=1)), float(np.nanstd(y.values, ddof=1)))
        if not (math.isfinite(se) and se > 0 and math.isfinite(x.estimate) and math.isfinite(y.estimate)):
            return None
        return float(2 * st.norm.sf(abs(x.estimate - y.estimate) / se))
    return None


def compare(card: Card, a: dict, b: dict) -> dict:
    """Both sets at look 1's level, their pooled verdict at look 2's, the design's verdict and any conflict."""
    va = judge(card, a.get("statistics") or {}, _samples(a), _null(a), level=card.look_level(0))
    vb = judge(card, b.get("statistics") or {}, _samples(b), _null(b), level=card.look_level(0))
    vp = judge(card, *pool(card, a, b), level=card.look_level(1))
    second = va["verdict"] == INCONCLUSIVE and va["reason_kind"] == UNDERPOWERED
    design = vp if second else va
    gating = {ch.statistic for c in card.criteria if c.gating for ch in c.checks}
    sa, sb = _samples(a), _samples(b)
    pvals = {name: heterogeneity(sa[name], sb[name]) for name in sorted(gating & sa.keys() & sb.keys())}
    oa = {c["id"]: c["outcome"] for c in va["criteria"] if c["gating"]}
    ob = {c["id"]: c["outcome"] for c in vb["criteria"] if c["gating"]}
    flips = [c for c in oa if {oa[c], ob.get(c)} == {PASS, FAIL}]
    hetero = [n for n, p in pvals.items() if p is not None and p < HETEROGENEITY_P]
    return {"a": va, "b": vb, "pooled": vp, "second_look": second, "design": design, "pvalues": pvals,
            "flips": flips, "heterogeneous": hetero, "conflict": bool(flips or hetero)}
