"""The verdict engine (v4, issue 22): judges a card's criteria on a result's statistics and samples, and
builds the record results.py writes. cards.py only parses cards.

Steps of `judge` (each a function below):

1. `evaluate_precondition` / `evaluate_criterion`: every check is three-valued (pass / fail / undecided) by
   its statistic's Samples kind (claimbench.intervals.decide); without samples, a check marked ``exact``, a
   regime check and every check of a reported-only criterion read their value as a point.
2. `apply_null`: a passing criterion whose null pass rate's Clopper–Pearson 95% upper bound (`pass_upper`)
   exceeds NULL_MAX_PASS_RATE (5%) is undecided (*miscalibrated*).
3. `apply_regime`: a criterion behind an unmet regime precondition (``applies_to``) is undecided (*out of
   regime*); its in-regime outcome is kept (`outcome_in_regime`).
4. `outcome_range`: the outcomes still possible — each undecided deciding criterion may pass or fail.
5. the verdict (rule table in cards.py's docstring) and, new in v4, its range:

   - ``possible_outcomes`` (best first), ``outcome_floor``/``outcome_ceiling`` and ``outcome_range``: the
     range in words when it is narrower than everything ("at least partially reproduced" = reproduced or
     partially; "at most partially reproduced" = partially or not; a single outcome is the verdict);
   - ``outcome_ignoring_regime`` (when a regime precondition is unmet): the same with every criterion at its
     in-regime outcome, so a clear failure is never hidden behind a precondition;
   - ``label`` (written as ``verdict_label``): the verdict when decided; else the range and who leaves it
     open, e.g. "at least partially reproduced — E2 underpowered"; with no narrower range
     "inconclusive — underpowered" as before; out of regime "inconclusive — out of regime (ignoring regime:
     not reproduced)". ``verdict`` keeps its four values (reproduced / partially reproduced / not
     reproduced / inconclusive) for downstream code.

Null calibration (`null_calibration`): per gating criterion its checks' statistics placed on the threshold
(claimbench.threshold_null: centred bootstrap of the replicates, exact permutation/binomial nulls, shifted
bootstrap draws; or a claim's own corpus draws at the threshold, `ClaimResult.threshold_null_draws`); the
claim's effect-absent draws (`null_draws`) and positive controls (`control_draws`) are reported beside it.

`python -m claimbench.rejudge` re-judges committed results with this engine (before/after table).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from claimbench.cards import (
    FAIL,
    INCONCLUSIVE,
    MISCALIBRATED,
    NOT_REPRODUCED,
    NULL_MAX_PASS_RATE,
    OUT_OF_REGIME,
    PARTIAL,
    PASS,
    REASON_ORDER,
    REPRODUCED,
    UNDECIDED,
    UNDEFINED,
    UNDERPOWERED,
    Card,
    Check,
    Criterion,
    Precondition,
)
from claimbench.intervals import (
    LEVEL,
    Decision,
    Interval,
    Samples,
    as_samples,
    decide,
    decide_interval,
    interval,
    point,
)
from claimbench.results import ClaimResult, jsonable, published_digest, statistics_digest, write_record
from claimbench.threshold_null import check_null, upper_bound

OUTCOME_ORDER = (REPRODUCED, PARTIAL, NOT_REPRODUCED)  # best first
ENGINE_VERSION = 5


def _num(v):
    return None if v is None or not math.isfinite(v) else float(v)


def _g(v) -> str:
    return "NaN" if v is None else f"{v:.3g}"


# --- 1. checks, criteria, preconditions ----------------------------------------------------------------

def _decision(check: Check, stats: Mapping[str, Any], samples: Mapping[str, Any], as_point: bool,
              level: float = LEVEL) -> Decision | None:
    """The check's decision from its samples (or a legacy Interval), or as a point; None when it has neither."""
    s = samples.get(check.statistic)
    if isinstance(s, Interval):  # a caller handing ready intervals (v3 API): judged on the interval as given
        if not s.defined:
            return Decision(UNDECIDED, s.estimate, s.lo, s.hi, s.n, s.method, UNDEFINED, s.reason or "NaN")
        outcome = decide_interval(s, check.op, check.threshold)
        return Decision(outcome, s.estimate, s.lo, s.hi, s.n, s.method,
                        UNDERPOWERED if outcome == UNDECIDED else None,
                        "the interval straddles the threshold" if outcome == UNDECIDED else None)
    if s is not None:  # samples decide whenever the analysis gave them (as in v3)
        return decide(s, check.op, check.threshold, level)
    if not (check.exact or as_point):
        return None
    value = stats.get(check.statistic)
    iv = point(value if isinstance(value, (int, float)) else None)
    if not iv.defined:
        reason = "missing" if check.statistic not in stats else (iv.reason or "NaN")
        return Decision(UNDECIDED, iv.estimate, iv.lo, iv.hi, 1, "point", UNDEFINED, reason)
    outcome = decide_interval(iv, check.op, check.threshold)
    return Decision(outcome, iv.estimate, iv.lo, iv.hi, 1, "point")


def evaluate_check(check: Check, stats: Mapping[str, Any], samples: Mapping[str, Any], as_point: bool = False,
                   level: float = LEVEL) -> dict:
    """{'statistic', 'op', 'threshold', 'value', 'lo', 'hi', 'method', 'outcome', 'reason_kind', 'reason',
    'passed'[, 'p']} of one check (three-valued, module docstring)."""
    out = {"statistic": check.statistic, "op": check.op, "threshold": check.threshold}
    d = _decision(check, stats, samples, as_point, level)
    if d is None:
        value = stats.get(check.statistic)
        v = float(value) if isinstance(value, (int, float)) else None
        return {**out, "value": _num(v) if v is not None else None, "lo": None, "hi": None, "method": None,
                "outcome": UNDECIDED, "reason_kind": UNDEFINED,
                "reason": "missing" if value is None else "no interval: the analysis gave no replicates or bootstrap "
                                                          "draws for it", "passed": False}
    res = {**out, "value": _num(d.estimate), "lo": _num(d.lo), "hi": _num(d.hi), "method": d.method,
           "outcome": d.outcome, "reason_kind": d.kind, "reason": d.reason, "passed": d.outcome == PASS}
    if d.p is not None:
        res["p"] = d.p
    return res


def combine(results: list[dict]) -> tuple[str, str | None, str | None]:
    """(outcome, reason_kind, reason) of a conjunction of checks."""
    if any(r["outcome"] == FAIL for r in results):
        return FAIL, None, None
    if all(r["outcome"] == PASS for r in results):
        return PASS, None, None
    und = [r for r in results if r["outcome"] == UNDECIDED]
    kind = min((r["reason_kind"] for r in und), key=REASON_ORDER.index)
    return UNDECIDED, kind, "; ".join(f"{r['statistic']}: {r['reason']}" for r in und)


def _as_samples_map(samples: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: (v if isinstance(v, (Samples, Interval)) else as_samples(v)) for k, v in (samples or {}).items()}


def evaluate_criterion(c: Criterion, stats: Mapping[str, Any], samples: Mapping[str, Any] | None = None,
                       level: float = LEVEL) -> dict:
    samples = _as_samples_map(samples)
    results = [evaluate_check(ch, stats, samples, as_point=not c.gating, level=level) for ch in c.checks]
    outcome, kind, reason = combine(results)
    return {"id": c.id, "text": c.text, "gating": c.gating, "outcome": outcome, "reason_kind": kind,
            "reason": reason, "passed": outcome == PASS, "checks": results}


def evaluate_precondition(p: Precondition, stats: Mapping[str, Any], samples: Mapping[str, Any] | None = None,
                          level: float = LEVEL) -> dict:
    samples = _as_samples_map(samples)
    results = [evaluate_check(ch, stats, samples, as_point=True, level=level) for ch in p.checks]
    outcome, _, reason = combine(results)
    out = {"id": p.id, "text": p.text, "applies_to": list(p.applies_to) if p.applies_to else None,
           "met": outcome == PASS, "outcome": outcome, "reason": reason, "checks": results}
    if p.settled_if and outcome != PASS:
        # one-sided precondition: unmet, it holds nothing back when every settled_if check passes on its interval
        settled = [evaluate_check(ch, stats, samples, level=level) for ch in p.settled_if]
        out.update(settled=combine(settled)[0] == PASS, settled_checks=settled)
    return out


# --- 2, 3. null calibration and regime applied to a criterion -------------------------------------------------

def null_upper(entry: Mapping[str, Any]) -> float | None:
    """The calibration's pass-rate bound: stored `pass_upper`, else the Clopper–Pearson bound of rate × draws."""
    if entry.get("pass_upper") is not None:
        return float(entry["pass_upper"])
    if entry.get("pass_rate") is None:
        return None
    return upper_bound(float(entry["pass_rate"]), int(entry.get("draws") or 1))


def null_ceiling(entry: Mapping[str, Any]) -> float:
    """The bound a calibration may reach (engine v5): 5% (NULL_MAX_PASS_RATE), or the Gaussian reference of a
    small-n centred bootstrap when larger (claimbench.threshold_null: what exactly Gaussian samples of the same
    size reach in 95% of cases, so that clean data are flagged at most 5% of the time)."""
    if entry.get("ceiling") is not None:
        return float(entry["ceiling"])
    return max(NULL_MAX_PASS_RATE, float(entry.get("gaussian_q95") or 0.0))


def apply_null(e: dict, entry: Mapping[str, Any] | None) -> None:
    """Record the criterion's null calibration; a pass whose bound exceeds its ceiling becomes *miscalibrated*."""
    if not entry or entry.get("pass_rate") is None:
        return
    upper, ceiling = null_upper(entry), null_ceiling(entry)
    e.update(null_pass_rate=entry["pass_rate"], null_draws=entry.get("draws"), null_pass_upper=upper,
             null_ceiling=ceiling)
    if e["outcome"] == PASS and upper > ceiling:
        why = ("" if ceiling == NULL_MAX_PASS_RATE else
               ", above both 5% and what Gaussian samples of this size reach in 95% of cases")
        e.update(outcome=UNDECIDED, passed=False, reason_kind=MISCALIBRATED,
                 reason=f"passes up to {upper:.1%} of draws at the threshold (95% upper bound; rate "
                        f"{entry['pass_rate']:.1%} of {entry.get('draws')}) > {ceiling:.1%}{why}")


def apply_regime(e: dict, unmet: list[dict]) -> None:
    """Out of regime when an unmet precondition applies to `e`, unless that precondition is settled (its
    ``settled_if`` checks all pass: a one-sided precondition, cards.py); a settled one is named in
    ``regime_settled``."""
    applying = [p for p in unmet if p["applies_to"] and e["id"] in p["applies_to"]]
    blocking = [p for p in applying if not p.get("settled")]
    e["outcome_in_regime"] = e["outcome"]
    if len(blocking) < len(applying):
        e["regime_settled"] = [p["id"] for p in applying if p.get("settled")]
    if blocking:
        e.update(outcome=UNDECIDED, passed=False, reason_kind=OUT_OF_REGIME,
                 reason="; ".join(f"regime {p['id']} unmet: {p['text']}" for p in blocking))


# --- 4. outcome ranges -----------------------------------------------------------------------------------------

def rule_outcome(passed: Mapping[str, bool], reproduced: tuple[str, ...], partial: tuple[str, ...]) -> str:
    """The verdict when every deciding criterion is decided (True = pass)."""
    if all(passed[c] for c in reproduced):
        return REPRODUCED
    if any(passed[c] for c in partial):
        return PARTIAL
    return NOT_REPRODUCED


def outcome_range(card: Card, outcomes: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(possible outcomes best first, undecided criteria that can change the outcome) given each deciding
    criterion's outcome (pass / fail / undecided)."""
    deciding = list(dict.fromkeys((*card.reproduced, *card.partially_if_any)))
    open_ids = [c for c in deciding if outcomes[c] == UNDECIDED]
    fixed = {c: outcomes[c] == PASS for c in deciding if c not in open_ids}

    def rule(combo, **force):
        return rule_outcome({**fixed, **dict(zip(open_ids, combo)), **force}, card.reproduced, card.partially_if_any)

    combos = list(itertools.product((True, False), repeat=len(open_ids)))
    possible = {rule(combo) for combo in combos}
    mattering = [c for c in open_ids if any(rule(combo, **{c: True}) != rule(combo, **{c: False})
                                            for combo in combos)]
    return [o for o in OUTCOME_ORDER if o in possible], mattering


def range_text(possible: list[str]) -> str | None:
    """The range in words when narrower than every outcome (module docstring), else None."""
    if len(possible) == 1:
        return possible[0]
    if set(possible) == {REPRODUCED, PARTIAL}:
        return f"at least {PARTIAL}"
    if set(possible) == {PARTIAL, NOT_REPRODUCED}:
        return f"at most {PARTIAL}"
    return None


def _range_keys(possible: list[str]) -> dict:
    return {"possible_outcomes": possible, "outcome_floor": possible[-1] if possible else None,
            "outcome_ceiling": possible[0] if possible else None, "outcome_range": range_text(possible)}


def _show(c: dict) -> str:
    """'E1 (underpowered: el2n_minus_random = 0.4 [-0.3, 1.1] vs > 0)' — at most three checks named."""
    parts = []
    for ch in c["checks"]:
        if ch["outcome"] == UNDECIDED or c.get("reason_kind") == OUT_OF_REGIME:
            if ch.get("lo") is not None:
                parts.append(f"{ch['statistic']} = {_g(ch['value'])} [{_g(ch['lo'])}, {_g(ch['hi'])}] "
                             f"vs {ch['op']} {_g(ch['threshold'])}")
            else:
                parts.append(f"{ch['statistic']}: {ch.get('reason') or _g(ch['value'])}")
    if c.get("reason_kind") in (OUT_OF_REGIME, MISCALIBRATED):
        parts = [c["reason"]]
    more = f"; +{len(parts) - 3} more" if len(parts) > 3 else ""
    return f"{c['id']} ({c['reason_kind']}: " + "; ".join(parts[:3]) + more + ")"


def _ignoring_regime(card: Card, by_id: dict[str, dict]) -> dict:
    possible, _ = outcome_range(card, {c: e["outcome_in_regime"] for c, e in by_id.items()})
    verdict = possible[0] if len(possible) == 1 else INCONCLUSIVE
    return {"verdict": verdict, **_range_keys(possible)}


# --- 5. the verdict -----------------------------------------------------------------------------------------------

def judge(card: Card, stats: Mapping[str, Any], samples: Mapping[str, Any] | None = None,
          null: Mapping[str, dict] | None = None, level: float | None = None) -> dict:
    """{'verdict', 'reason_kind', 'reason', 'criteria', 'regime', 'possible_outcomes', 'outcome_floor',
    'outcome_ceiling', 'outcome_range', 'outcome_ignoring_regime', 'label'[, 'open_criteria': the undecided
    criteria that can still change an inconclusive verdict]} (module docstring). Each criterion also carries
    'outcome_in_regime' and, when calibrated, 'null_pass_rate', 'null_draws', 'null_pass_upper'.

    stats: name -> number; samples: name -> Samples (or their JSON); null: criterion id -> calibration
    ({'pass_rate', 'draws'[, 'pass_upper']}, see `null_calibration`); level: the intervals' central level
    (default: look 1's of the card's seed-set design, `Card.look_level`)."""
    level = card.look_level(0) if level is None else level
    samples = _as_samples_map(samples)
    null = dict(null or {})
    regime = [evaluate_precondition(p, stats, samples, level) for p in card.regime]
    unmet = [p for p in regime if not p["met"]]
    criteria = []
    for c in card.criteria:
        e = evaluate_criterion(c, stats, samples, level)
        apply_null(e, null.get(c.id))
        apply_regime(e, unmet)
        criteria.append(e)
    by_id = {e["id"]: e for e in criteria}
    possible, mattering = outcome_range(card, {c: e["outcome"] for c, e in by_id.items()})
    ignoring = _ignoring_regime(card, by_id) if unmet else None
    out = {"criteria": criteria, "regime": regime, **_range_keys(possible), "outcome_ignoring_regime": ignoring}
    claim_wide = [p for p in unmet if not p["applies_to"]]
    if claim_wide:
        why = "; ".join(f"{p['id']} unmet ({p['text']}" + (f": {p['reason']}" if p["reason"] else "") + ")"
                        for p in claim_wide)
        out.update(verdict=INCONCLUSIVE, reason_kind=OUT_OF_REGIME, reason=why)
    elif len(possible) == 1:
        open_ids = [c for c, e in by_id.items() if e["outcome"] == UNDECIDED
                    and c in (*card.reproduced, *card.partially_if_any)]
        out.update(verdict=possible[0], reason_kind=None,
                   reason=f"decided: undecided {', '.join(open_ids)} cannot change it" if open_ids else None)
    else:
        kind = min((by_id[c]["reason_kind"] for c in mattering), key=REASON_ORDER.index)
        reason = "; ".join(_show(by_id[c]) for c in mattering) + f" — could be {' or '.join(possible)}"
        out.update(verdict=INCONCLUSIVE, reason_kind=kind, reason=reason, open_criteria=mattering)
    out["label"] = outcome_label(out)
    return out


def _regime_aside(judged: Mapping[str, Any]) -> str:
    """' (ignoring regime: X)' when the regime hides a known outcome or range X that the label would not show."""
    ignoring = judged.get("outcome_ignoring_regime")
    ignored = (ignoring.get("outcome_range") or ignoring["verdict"]) if ignoring else None
    if ignored in (None, INCONCLUSIVE):
        return ""
    claim_wide = judged.get("reason_kind") == OUT_OF_REGIME and not judged.get("open_criteria")
    return f" (ignoring regime: {ignored})" if claim_wide or ignored != judged.get("outcome_range") else ""


def outcome_label(judged: Mapping[str, Any]) -> str:
    """The printed verdict (module docstring): decided, a range with who leaves it open, or 'inconclusive — why'."""
    verdict, kind = judged["verdict"], judged.get("reason_kind")
    if verdict != INCONCLUSIVE:
        return verdict
    aside = _regime_aside(judged)
    if kind == OUT_OF_REGIME and not judged.get("open_criteria"):  # a whole-claim precondition is unmet
        return f"{INCONCLUSIVE} — {OUT_OF_REGIME}{aside}"
    text = judged.get("outcome_range")
    if not text:
        return f"{INCONCLUSIVE} — {kind}{aside}" if kind else INCONCLUSIVE
    by_id = {c["id"]: c for c in judged["criteria"]}
    who = ", ".join(f"{c} {by_id[c]['reason_kind']}" for c in judged.get("open_criteria", []))
    return f"{text} — {who}{aside}"


# --- null calibration ----------------------------------------------------------------------------------------------

def criterion_pass_rate(c: Criterion, draws: list[Mapping[str, Any]], level: float = LEVEL) -> dict:
    """{'pass_rate', 'draws', 'pass_upper'}: share of draws (each: statistic -> Samples or number) on which the
    criterion passes, judged exactly as the data."""
    if not draws:
        raise ValueError(f"criterion {c.id}: no null draws")
    passes = 0
    for i, draw in enumerate(draws):
        missing = [ch.statistic for ch in c.checks if ch.statistic not in draw]
        if missing:
            raise ValueError(f"criterion {c.id}: null draw #{i} lacks {missing}; a null draw must give every "
                             f"statistic the criterion checks")
        samples = {k: v for k, v in draw.items() if isinstance(v, (Samples, Interval))}
        stats = {k: v for k, v in draw.items() if k not in samples}
        passes += evaluate_criterion(c, stats, samples, level)["outcome"] == PASS
    rate = passes / len(draws)
    return {"pass_rate": rate, "draws": len(draws), "pass_upper": upper_bound(rate, len(draws))}


def threshold_null(c: Criterion, samples: Mapping[str, Any], level: float = LEVEL) -> dict | None:
    """The criterion's pass rate with one check's statistic on its threshold and the others passing (the
    largest over its checks, claimbench.threshold_null); None when no check has samples."""
    rows = []
    for ch in c.checks:
        if ch.exact or ch.statistic not in samples:
            continue
        r = check_null(samples[ch.statistic], ch.op, ch.threshold, ch.statistic, level=level)
        rows.append({"statistic": ch.statistic, "op": ch.op, "threshold": ch.threshold, **r})
    defined = [r for r in rows if r["pass_rate"] is not None]
    if not defined:
        return None
    for r in defined:
        r["ceiling"] = null_ceiling(r)
    worst = max(defined, key=lambda r: (r["pass_upper"] - r["ceiling"], r["pass_rate"]))
    out = {"pass_rate": worst["pass_rate"], "pass_upper": worst["pass_upper"], "ceiling": worst["ceiling"],
           "draws": worst["draws"], "exact": worst["exact"], "method": worst["method"],
           "at": f"{worst['statistic']} {worst['op']} {worst['threshold']:g}", "checks": rows}
    if not any(r.get("informative", True) for r in defined):
        out["informative"] = False  # no check's null could have passed (threshold_null)
    return out


CLAIM_DRAWS = "the claim's resampled corpora moved onto the threshold (double bootstrap"


def _moved(s: Samples, observed: Samples, threshold: float) -> Samples:
    """One resampled-corpus draw `s` (bootstrap Samples) moved so that the observed estimate sits on the
    threshold: estimate, inner draws and (the observed) jackknife shift by threshold − observed estimate."""
    shift = threshold - float(observed.estimate)
    jack = tuple(v + shift + float(s.estimate) - float(observed.estimate) for v in observed.jackknife) \
        if observed.jackknife is not None else None
    return Samples("bootstrap", tuple(v + shift for v in s.values), float(s.estimate) + shift, jackknife=jack)


def resampled_threshold_null(c: Criterion, samples: Mapping[str, Any], draws: list[Mapping[str, Any]],
                             level: float = LEVEL) -> dict:
    """A criterion's null from a claim's resampled corpora (bootstrap statistics, each with its inner
    bootstrap): per check, each draw moved onto the threshold and judged as the data; the criterion's rate is
    the largest of its checks' (intersection–union), with its Clopper–Pearson 95% upper bound."""
    rows = []
    for ch in c.checks:
        observed = samples.get(ch.statistic)
        if ch.exact or observed is None or not all(ch.statistic in d for d in draws):
            continue
        passes = sum(decide(_moved(as_samples(d[ch.statistic]), observed, ch.threshold), ch.op, ch.threshold,
                            level).outcome == PASS for d in draws)
        rate = passes / len(draws)
        rows.append({"statistic": ch.statistic, "op": ch.op, "threshold": ch.threshold, "pass_rate": rate,
                     "pass_upper": upper_bound(rate, len(draws)), "draws": len(draws), "exact": False,
                     "method": f"{CLAIM_DRAWS}, {len(draws)} corpora)"})
    if not rows:
        raise ValueError(f"criterion {c.id}: the claim's draws at the threshold name none of its sampled statistics")
    worst = max(rows, key=lambda r: (r["pass_upper"], r["pass_rate"]))
    return {**{k: worst[k] for k in ("pass_rate", "pass_upper", "draws", "exact", "method")},
            "ceiling": NULL_MAX_PASS_RATE,
            "at": f"{worst['statistic']} {worst['op']} {worst['threshold']:g}", "claim_draws": True, "checks": rows}


def calibrate(card: Card, samples: Mapping[str, Any], effect_absent: Mapping[str, list] | None = None,
              controls: Mapping[str, list] | None = None, at_threshold: Mapping[str, list] | None = None) -> dict:
    """criterion id -> calibration of every gating criterion: the threshold null ('pass_rate', 'pass_upper',
    'draws', 'exact', 'method', ...) from the samples, or from a claim's own draws at the threshold; the
    claim's effect-absent draws ('claim_null_pass_rate', ...) and controls ('control_pass_rate', ...). Judged at
    look 1's interval level (`Card.look_level`), as the data are."""
    samples = _as_samples_map(samples)
    level = card.look_level(0)
    by_id = {c.id: c for c in card.criteria}
    for cid in (*(effect_absent or {}), *(controls or {}), *(at_threshold or {})):
        if cid not in by_id:
            raise ValueError(f"null draws for criterion {cid!r}, which card {card.id} does not define")
    out = {}
    for c in card.criteria:
        if not c.gating:
            continue
        if at_threshold and c.id in at_threshold:
            entry = resampled_threshold_null(c, samples, at_threshold[c.id], level)
        else:
            entry = threshold_null(c, samples, level) or {}
        if effect_absent and c.id in effect_absent:
            r = criterion_pass_rate(c, effect_absent[c.id], level)
            entry.update(claim_null_pass_rate=r["pass_rate"], claim_null_draws=r["draws"])
        if controls and c.id in controls:
            r = criterion_pass_rate(c, controls[c.id], level)
            entry.update(control_pass_rate=r["pass_rate"], control_draws=r["draws"])
        if entry:
            out[c.id] = entry
    return out


def null_calibration(result: ClaimResult, card: Card) -> dict:
    """`calibrate` on a ClaimResult's samples and draws."""
    return calibrate(card, result.samples, result.null_draws, result.control_draws,
                     getattr(result, "threshold_null_draws", None))


# --- the record ------------------------------------------------------------------------------------------------------

def headline(card: Card, stats: Mapping[str, Any], samples: Mapping[str, Any]) -> dict:
    """The report's 'ours' cell, recomputed from the card, statistics and samples (the audit compares)."""
    head = card.raw["headline"]
    out = {"label": head.get("label", head["statistic"]), "value": stats.get(head["statistic"]),
           "uncertainty": stats.get(head["uncertainty"]) if head.get("uncertainty") else None}
    s = samples.get(head["statistic"])
    if s is not None:
        iv = interval(as_samples(s))
        out.update(interval=[_num(iv.lo), _num(iv.hi)], interval_method=iv.method)
    return out


def verdict_keys(judged: Mapping[str, Any]) -> dict:
    """The record's verdict fields from `judge`'s output (what the audit recomputes and compares)."""
    return {"verdict": judged["verdict"], "verdict_reason": judged["reason"],
            "verdict_reason_kind": judged["reason_kind"], "verdict_label": judged["label"],
            "possible_outcomes": judged["possible_outcomes"], "outcome_range": judged["outcome_range"],
            "outcome_ignoring_regime": judged["outcome_ignoring_regime"]}


def build_record(result: ClaimResult, card: Card, scale: str, prov: dict) -> dict:
    """Judge `result` with `card`: the metrics.json record (`write_result` writes it)."""
    stats = dict(result.statistics)
    for name, s in result.samples.items():  # the estimate the checks read is the statistic's value
        stats[name] = interval(s).estimate
    stats = jsonable(stats)
    samples = {name: s.to_json() for name, s in sorted(result.samples.items())}
    null = jsonable(null_calibration(result, card))
    judged = judge(card, stats, samples, null)
    head = jsonable(headline(card, stats, samples))
    setup = jsonable(result.setup)
    prov = {**prov, "card_version": card.version, "engine_version": ENGINE_VERSION,
            "statistics_sha256": statistics_digest(stats, samples, null)}
    prov["published_sha256"] = published_digest(setup, prov)
    return {
        "claim_id": card.id, "title": card.title, "scale": scale, **verdict_keys(judged),
        "regime": judged["regime"], "criteria": jsonable(judged["criteria"]), "null_calibration": null,
        "samples": samples, "headline": head, "statistics": stats, "setup": setup, "provenance": prov,
        "details": jsonable(result.details),
    }


def write_result(result: ClaimResult, card: Card, out_dir: Path, scale: str, prov: dict) -> dict:
    """Judge `result` with `card` (`build_record`) and write metrics.json, headline.json and tables/ under
    out_dir (results.write_record). Returns the record."""
    return write_record(build_record(result, card, scale, prov), result.tables, out_dir)
