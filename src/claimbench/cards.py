"""Claim cards (src/claimbench/cards/<claim_id>.yaml) and the verdict they imply for measured statistics.

A card is committed before the run that judges it, and changes only by a new ``version`` with a
``changelog`` entry (date, what, why). Schema::

    id: heavy_tail_phases
    version: 2
    changelog:
      - {version: 2, date: "2026-11-26", what: ..., why: ...}
    title: ...
    paper: {authors: ..., title: ..., venue: ..., arxiv: "1810.01075"}
    claim: one falsifiable sentence
    setup: {dataset: ..., model: ...}          # what *our* runs use (shown in the report)
    adapted: [...]                             # what the `paper` scale changes from the paper ("paper-like")
    paper_numbers:                             # what the paper reports, with its source
      - {what: ..., value: ..., source: "Table 1"}
    headline: {statistic: ..., uncertainty: ..., label: ..., paper: ...}   # the report's "ours" cell
    interval: {replicates: student_t, bootstrap: percentile, level: 0.95}  # claimbench.intervals
    regime:                                    # preconditions taken from the paper's own conditions
      - id: R1
        text: every batch size trains (largest-batch train accuracy >= 0.6)
        why: ...
        applies_to: [C4]                       # absent = the whole claim
        checks: [{statistic: train_acc_largest_bs_min, op: ">=", threshold: 0.6}]
    criteria:
      - id: C2
        text: the criterion
        why: why this threshold
        null: what the statistic does when the effect is absent (how the analysis simulates it)
        gating: true                           # false = reported only, never changes the verdict
        checks:                                # all must hold for the criterion to pass
          - {statistic: soft_rank_slope, op: ">", threshold: 0}
          - {statistic: n_runs, op: ">=", threshold: 3, exact: true}   # no sampling noise: judged as a point
    verdict:
      reproduced: [C2, C3, C4]                 # all pass -> "reproduced"
      partially_if_any: [C2, C3]               # else any of these passes -> "partially reproduced"

**Checks are three-valued.** A gating check reads its statistic's 95% interval (claimbench.intervals;
the analysis gives per-replicate values or a bootstrap distribution) and is

- *pass* when the interval lies wholly on the claim's side of the threshold (``>= t``: lo >= t);
- *fail* when it lies wholly on the other side (``>= t``: hi < t);
- *undecided* when it straddles the threshold (*underpowered*), or the value is NaN, missing or has no
  interval (*undefined*).

A check marked ``exact`` and every regime check without samples is judged on its value as a point
(a property of the runs made, e.g. the lowest final train accuracy). Reported-only criteria are judged
the same way but never change the verdict. A criterion passes when every check passes, fails when any
check fails, and is undecided otherwise. A criterion whose regime precondition (``applies_to``) is unmet
is undecided (*out of regime*). A criterion whose null pass rate (below) exceeds 5% cannot pass: a pass
becomes undecided (*miscalibrated*).

**Null calibration.** For each gating criterion the analysis returns seeded draws of its statistics
in a world where the effect is absent (shuffled labels, a random classifier, ...). The criterion is
evaluated on every draw exactly as on the data; its *null pass rate* is the share of draws it passes.
A criterion whose null pass rate exceeds ``NULL_MAX_PASS_RATE`` (5%) is rewritten before the judging run.

**Outcomes** (rule table; README "Reading the verdicts" repeats it):

| condition (first that applies)                                            | outcome                           |
|---------------------------------------------------------------------------|-----------------------------------|
| a whole-claim regime precondition is unmet (fails, or its value is NaN)    | inconclusive — out of regime      |
| every criterion in ``reproduced`` passes                                   | reproduced                        |
| every deciding criterion is decided: some ``partially_if_any`` passes      | partially reproduced              |
| every deciding criterion is decided: none of ``partially_if_any`` passes   | not reproduced                    |
| undecided criteria, but every pass/fail they could take gives one outcome  | that outcome                      |
| otherwise: the undecided criteria could change the outcome                 | inconclusive — (reason)          |

The reason of an inconclusive verdict is the first of: out of regime, undefined, miscalibrated, underpowered
among the undecided criteria that could change the outcome.

The deciding criteria are those named in ``reproduced`` and ``partially_if_any``. Every inconclusive
verdict carries its reason: which criteria, their interval against their threshold, and the outcomes
they could still give.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from claimbench.errors import CardError
from claimbench.intervals import METHODS, Interval, Samples, interval, point
from claimbench.params import strict_yaml_load

CARD_DIR = Path(__file__).parent / "cards"
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
REPRODUCED, PARTIAL, NOT_REPRODUCED, NOT_RUN = "reproduced", "partially reproduced", "not reproduced", "not run"
INCONCLUSIVE = "inconclusive"
PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"
SYMBOL = {PASS: "✓", FAIL: "✗", UNDECIDED: "?"}
# Why a check or criterion is undecided; a verdict's reason uses the first kind present in this order.
OUT_OF_REGIME, UNDEFINED, MISCALIBRATED, UNDERPOWERED = "out of regime", "undefined", "miscalibrated", "underpowered"
REASON_ORDER = (OUT_OF_REGIME, UNDEFINED, MISCALIBRATED, UNDERPOWERED)
NULL_MAX_PASS_RATE = 0.05
CARD_KEYS = {"id", "title", "paper", "claim", "setup", "paper_numbers", "headline", "criteria", "verdict",
             "version", "changelog", "interval", "regime", "adapted", "power"}
POWER_KEYS = {"pilot", "statistics", "cost", "cpu_limit", "gpu"}
POWER_ROW_KEYS = {"statistic", "method", "sd", "expected", "expected_source", "replicates", "p_pass", "p_fail", "how"}
POWER_METHODS = ("student_t", "bootstrap")
DEFAULT_INTERVAL = {"replicates": METHODS["replicates"], "bootstrap": METHODS["bootstrap"], "level": 0.95}


def as_intervals(samples: Mapping[str, Samples | dict] | None) -> dict[str, Interval]:
    """name -> Interval for every statistic with samples (Samples or their JSON form)."""
    out = {}
    for name, s in (samples or {}).items():
        out[name] = interval(s if isinstance(s, Samples) else Samples.from_json(s))
    return out


def _num(v):
    return None if v is None or not math.isfinite(v) else v


@dataclass(frozen=True)
class Check:
    statistic: str
    op: str
    threshold: float
    exact: bool = False

    def evaluate(self, stats: Mapping[str, Any], intervals: Mapping[str, Interval], *, as_point: bool = False) -> dict:
        """Three-valued: pass / fail / undecided (with `reason` and `reason_kind`), see the module docstring."""
        iv = intervals.get(self.statistic)
        if iv is None and (self.exact or as_point):
            value = stats.get(self.statistic)
            iv = point(value) if isinstance(value, (int, float)) else point(None)
        out = {"statistic": self.statistic, "op": self.op, "threshold": self.threshold}
        if iv is None:
            value = stats.get(self.statistic)
            outcome, kind, reason = UNDECIDED, UNDEFINED, ("missing" if value is None else "no interval: the analysis "
                                                           "gave no replicates or bootstrap draws for it")
            v = value if isinstance(value, (int, float)) else None
            return {**out, "value": _num(float(v)) if v is not None else None, "lo": None, "hi": None, "method": None,
                    "outcome": outcome, "reason_kind": kind, "reason": reason, "passed": False}
        res = {**out, "value": _num(iv.estimate), "lo": _num(iv.lo), "hi": _num(iv.hi), "method": iv.method}
        if not iv.defined:
            missing = self.statistic not in stats and iv.method == "point"
            return {**res, "outcome": UNDECIDED, "reason_kind": UNDEFINED,
                    "reason": "missing" if missing else (iv.reason or "NaN"), "passed": False}
        f = OPS[self.op]
        if self.op == "==":
            outcome = PASS if iv.lo == iv.hi == self.threshold else (
                FAIL if not (iv.lo <= self.threshold <= iv.hi) else UNDECIDED)
        elif f(iv.lo, self.threshold) and f(iv.hi, self.threshold):
            outcome = PASS
        elif not f(iv.lo, self.threshold) and not f(iv.hi, self.threshold):
            outcome = FAIL
        else:
            outcome = UNDECIDED
        kind = UNDERPOWERED if outcome == UNDECIDED else None
        reason = "the interval straddles the threshold" if kind else None
        return {**res, "outcome": outcome, "reason_kind": kind, "reason": reason, "passed": outcome == PASS}


def _combine(results: list[dict]) -> tuple[str, str | None, str | None]:
    """(outcome, reason_kind, reason) of a conjunction of checks."""
    if any(r["outcome"] == FAIL for r in results):
        return FAIL, None, None
    if all(r["outcome"] == PASS for r in results):
        return PASS, None, None
    und = [r for r in results if r["outcome"] == UNDECIDED]
    kind = min((r["reason_kind"] for r in und), key=REASON_ORDER.index)
    return UNDECIDED, kind, "; ".join(f"{r['statistic']}: {r['reason']}" for r in und)


@dataclass(frozen=True)
class Precondition:
    id: str
    text: str
    why: str
    applies_to: tuple[str, ...] | None  # None = the whole claim
    checks: tuple[Check, ...]

    def evaluate(self, stats: Mapping[str, Any], intervals: Mapping[str, Interval]) -> dict:
        results = [c.evaluate(stats, intervals, as_point=True) for c in self.checks]
        outcome, kind, reason = _combine(results)
        return {"id": self.id, "text": self.text, "applies_to": list(self.applies_to) if self.applies_to else None,
                "met": outcome == PASS, "outcome": outcome, "reason": reason, "checks": results}


@dataclass(frozen=True)
class Criterion:
    id: str
    text: str
    why: str
    gating: bool
    checks: tuple[Check, ...]
    null: str | None = None

    def evaluate(self, stats: Mapping[str, Any], intervals: Mapping[str, Interval] | None = None) -> dict:
        results = [c.evaluate(stats, intervals or {}, as_point=not self.gating) for c in self.checks]
        outcome, kind, reason = _combine(results)
        return {"id": self.id, "text": self.text, "gating": self.gating, "outcome": outcome,
                "reason_kind": kind, "reason": reason, "passed": outcome == PASS, "checks": results}

    def null_pass_rate(self, draws: list[Mapping[str, Any]]) -> dict:
        """Share of null draws (each: statistic name -> Samples or number) on which this criterion passes."""
        if not draws:
            raise ValueError(f"criterion {self.id}: no null draws")
        passes = 0
        for i, draw in enumerate(draws):
            missing = [c.statistic for c in self.checks if c.statistic not in draw]
            if missing:
                raise ValueError(f"criterion {self.id}: null draw #{i} lacks {missing}; a null draw must give every "
                                 f"statistic the criterion checks")
            samples = {k: v for k, v in draw.items() if isinstance(v, Samples)}
            stats = {k: v for k, v in draw.items() if k not in samples}
            passes += self.evaluate(stats, as_intervals(samples))["outcome"] == PASS
        return {"pass_rate": passes / len(draws), "draws": len(draws)}


def rule_outcome(passed: Mapping[str, bool], reproduced: tuple[str, ...], partial: tuple[str, ...]) -> str:
    """The verdict when every deciding criterion is decided (True = pass)."""
    if all(passed[c] for c in reproduced):
        return REPRODUCED
    if any(passed[c] for c in partial):
        return PARTIAL
    return NOT_REPRODUCED


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


def _g(v) -> str:
    return "NaN" if v is None else f"{v:.3g}"


@dataclass(frozen=True)
class Card:
    id: str
    raw: dict
    criteria: tuple[Criterion, ...]
    reproduced: tuple[str, ...]
    partially_if_any: tuple[str, ...]
    regime: tuple[Precondition, ...] = ()

    @property
    def title(self) -> str:
        return self.raw["title"]

    @property
    def version(self) -> int:
        return int(self.raw.get("version", 1))

    def verdict(self, stats: Mapping[str, Any], samples: Mapping[str, Samples | dict] | None = None,
                null: Mapping[str, dict] | None = None) -> dict:
        """{'verdict', 'reason_kind', 'reason', 'criteria': [...], 'regime': [...]} — rule table in the module doc.

        stats: name -> number; samples: name -> Samples (or JSON) of the statistics with intervals;
        null: criterion id -> {'pass_rate', 'draws'} from `null_pass_rate`."""
        ivs = as_intervals(samples)
        null = dict(null or {})
        regime = [p.evaluate(stats, ivs) for p in self.regime]
        unmet = {p["id"]: p for p in regime if not p["met"]}
        evaluated = []
        for c in self.criteria:
            e = c.evaluate(stats, ivs)
            if c.id in null:
                e["null_pass_rate"], e["null_draws"] = null[c.id]["pass_rate"], null[c.id]["draws"]
            blocking = [p for p in unmet.values() if p["applies_to"] and c.id in p["applies_to"]]
            if blocking:
                e.update(outcome_in_regime=e["outcome"], outcome=UNDECIDED, passed=False, reason_kind=OUT_OF_REGIME,
                         reason="; ".join(f"regime {p['id']} unmet: {p['text']}" for p in blocking))
            elif e["outcome"] == PASS and e.get("null_pass_rate") is not None \
                    and e["null_pass_rate"] > NULL_MAX_PASS_RATE:
                e.update(outcome=UNDECIDED, passed=False, reason_kind=MISCALIBRATED,
                         reason=f"passes {e['null_pass_rate']:.0%} of null draws (> {NULL_MAX_PASS_RATE:.0%})")
            evaluated.append(e)
        by_id = {e["id"]: e for e in evaluated}
        out = {"criteria": evaluated, "regime": regime}
        claim_wide = [p for p in unmet.values() if not p["applies_to"]]
        if claim_wide:
            why = "; ".join(f"{p['id']} unmet ({p['text']}" + (f": {p['reason']}" if p["reason"] else "") + ")"
                            for p in claim_wide)
            return {**out, "verdict": INCONCLUSIVE, "reason_kind": OUT_OF_REGIME, "reason": why}
        deciding = list(dict.fromkeys((*self.reproduced, *self.partially_if_any)))
        open_ids = [c for c in deciding if by_id[c]["outcome"] == UNDECIDED]
        fixed = {c: by_id[c]["outcome"] == PASS for c in deciding if c not in open_ids}
        possible = set()
        for combo in itertools.product((True, False), repeat=len(open_ids)):
            possible.add(rule_outcome({**fixed, **dict(zip(open_ids, combo))}, self.reproduced, self.partially_if_any))
        if len(possible) == 1:
            verdict = possible.pop()
            reason = (f"decided: undecided {', '.join(open_ids)} cannot change it" if open_ids else None)
            return {**out, "verdict": verdict, "reason_kind": None, "reason": reason}
        # Only the undecided criteria whose outcome can change the verdict are named.
        mattering = [c for c in open_ids if any(
            rule_outcome({**fixed, **dict(zip(open_ids, combo)), c: True}, self.reproduced, self.partially_if_any)
            != rule_outcome({**fixed, **dict(zip(open_ids, combo)), c: False}, self.reproduced, self.partially_if_any)
            for combo in itertools.product((True, False), repeat=len(open_ids)))]
        kind = min((by_id[c]["reason_kind"] for c in mattering), key=REASON_ORDER.index)
        order = [o for o in (REPRODUCED, PARTIAL, NOT_REPRODUCED) if o in possible]
        reason = "; ".join(_show(by_id[c]) for c in mattering) + f" — could be {' or '.join(order)}"
        return {**out, "verdict": INCONCLUSIVE, "reason_kind": kind, "reason": reason}


def verdict_label(verdict: str, reason_kind: str | None) -> str:
    """'inconclusive — underpowered' etc.; other verdicts unchanged."""
    return f"{verdict} — {reason_kind}" if verdict == INCONCLUSIVE and reason_kind else verdict


def _need(d: dict, key: str, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise CardError(f"card {where}: missing key {key!r}.")
    return d[key]


def _checks(raw_checks: Any, where: str) -> tuple[Check, ...]:
    checks = []
    for ch in raw_checks or ():
        op = _need(ch, "op", where)
        if op not in OPS:
            raise CardError(f"card {where}: op {op!r} unknown; allowed: {', '.join(OPS)}.")
        thr = _need(ch, "threshold", where)
        if isinstance(thr, bool) or not isinstance(thr, (int, float)):
            raise CardError(f"card {where}: threshold {thr!r} must be a number.")
        unknown = sorted(set(ch) - {"statistic", "op", "threshold", "exact"})
        if unknown:
            raise CardError(f"card {where}: check key {unknown[0]!r} unknown; allowed: statistic, op, threshold, "
                            f"exact.")
        checks.append(Check(str(_need(ch, "statistic", where)), op, float(thr), bool(ch.get("exact", False))))
    if not checks:
        raise CardError(f"card {where}: needs at least one check.")
    return tuple(checks)


def _changelog(raw: dict, where: str) -> None:
    version = raw.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CardError(f"card {where}: version {version!r} must be a positive integer.")
    log = raw.get("changelog", [])
    if version > 1 and not log:
        raise CardError(f"card {where}: version {version} needs a changelog entry (version, date, what, why).")
    for i, entry in enumerate(log):
        for key in ("version", "date", "what", "why"):
            if not isinstance(entry, dict) or not str(entry.get(key, "")).strip():
                raise CardError(f"card {where}: changelog entry #{i + 1} lacks {key!r} (each needs version, date, "
                                f"what, why).")
    if log and max(int(e["version"]) for e in log) != version:
        raise CardError(f"card {where}: version {version} has no changelog entry of that version.")
    iv = raw.get("interval", DEFAULT_INTERVAL)
    if not isinstance(iv, dict) or {k: iv.get(k) for k in DEFAULT_INTERVAL} != DEFAULT_INTERVAL:
        raise CardError(f"card {where}: interval must be {DEFAULT_INTERVAL} (claimbench.intervals has no other "
                        f"method); got {iv!r}.")


def _keys(block: Any, allowed: set[str], required: tuple[str, ...], where: str) -> None:
    """`block` is a mapping whose keys are all in `allowed` and include every `required` one."""
    if not isinstance(block, dict):
        raise CardError(f"card {where}: must be a mapping with {', '.join(required)}.")
    unknown = sorted(set(block) - allowed)
    if unknown:
        raise CardError(f"card {where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}.")
    for key in required:
        _need(block, key, where)


def _power(power: Any, where: str, criteria: list[Criterion]) -> None:
    """Validate the optional `power:` block (issue 15): the pilot it was sized from, one row per gating
    statistic (pilot SD, expected effect and its source, chosen replicates, P(pass)), the cost, and where a
    CPU cannot decide the claim, `cpu_limit`: what it would need. Rows name statistics the criteria check."""
    if power is None:
        return
    pw = f"{where} power"
    _keys(power, POWER_KEYS, ("pilot", "statistics", "cost"), pw)
    checked = {ch.statistic for c in criteria for ch in c.checks}
    for i, row in enumerate(power["statistics"]):
        rw = f"{pw} row #{i + 1}"
        _keys(row, POWER_ROW_KEYS, ("statistic", "method", "sd", "expected", "expected_source", "replicates",
                                    "p_pass"), rw)
        if row["method"] not in POWER_METHODS:
            raise CardError(f"card {rw}: method {row['method']!r} unknown; allowed: {', '.join(POWER_METHODS)}.")
        if row["statistic"] not in checked:
            raise CardError(f"card {rw}: statistic {row['statistic']!r} is not checked by any criterion.")
        if not 0 <= float(row["p_pass"]) <= 1:
            raise CardError(f"card {rw}: p_pass {row['p_pass']} must lie in [0, 1].")


def power_checks(card: Card, statistic: str) -> list[tuple[str, float]]:
    """Every (op, threshold) the card's gating criteria apply to `statistic` (what a power row must clear)."""
    return [(ch.op, float(ch.threshold)) for c in card.criteria if c.gating for ch in c.checks
            if ch.statistic == statistic]


def parse_card(raw: dict, where: str) -> Card:
    if not isinstance(raw, dict):
        raise CardError(f"card {where}: must be a mapping.")
    unknown = sorted(set(raw) - CARD_KEYS)
    if unknown:
        raise CardError(f"card {where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(CARD_KEYS))}.")
    for key in ("id", "title", "paper", "claim", "paper_numbers", "headline"):
        _need(raw, key, where)
    _changelog(raw, where)
    criteria = []
    for i, c in enumerate(_need(raw, "criteria", where)):
        cw = f"{where} criterion #{i + 1}"
        if isinstance(c, dict) and None in c:  # YAML reads a bare `null:` key as None
            c = {("null" if k is None else k): v for k, v in c.items()}
        unknown = sorted(set(c) - {"id", "text", "why", "gating", "null", "checks"}) if isinstance(c, dict) else []
        if unknown:
            raise CardError(f"card {cw}: criterion key {unknown[0]!r} unknown; allowed: id, text, why, gating, null, "
                            f"checks.")
        checks = _checks(_need(c, "checks", cw), cw)
        null = c.get("null")
        criteria.append(Criterion(str(_need(c, "id", cw)), str(_need(c, "text", cw)), str(_need(c, "why", cw)),
                                  bool(c.get("gating", True)), checks, str(null) if null else None))
    ids = [c.id for c in criteria]
    if len(set(ids)) != len(ids):
        raise CardError(f"card {where}: duplicate criterion ids {ids}.")
    regime = []
    for i, p in enumerate(raw.get("regime", []) or []):
        pw = f"{where} regime #{i + 1}"
        applies = p.get("applies_to")
        if applies is not None:
            bad = [a for a in applies if a not in ids]
            if bad:
                raise CardError(f"card {pw}: applies_to names criterion {bad[0]!r}, which the card does not define.")
        regime.append(Precondition(str(_need(p, "id", pw)), str(_need(p, "text", pw)), str(_need(p, "why", pw)),
                                   tuple(applies) if applies else None, _checks(_need(p, "checks", pw), pw)))
    _power(raw.get("power"), where, criteria)
    rule = _need(raw, "verdict", where)
    reproduced = tuple(_need(rule, "reproduced", f"{where} verdict"))
    partial = tuple(rule.get("partially_if_any", ()))
    for cid in (*reproduced, *partial):
        if cid not in ids:
            raise CardError(f"card {where}: verdict rule names criterion {cid!r}, which the card does not define.")
    gating = {c.id for c in criteria if c.gating}
    if not set(reproduced) <= gating:
        raise CardError(f"card {where}: verdict rule uses non-gating criteria {sorted(set(reproduced) - gating)}.")
    return Card(str(raw["id"]), raw, tuple(criteria), reproduced, partial, tuple(regime))


def load_card(claim_id: str, card_dir: Path | None = None) -> Card:
    path = Path(card_dir or CARD_DIR) / f"{claim_id}.yaml"
    if not path.exists():
        raise CardError(f"no claim card for {claim_id!r}: expected {path}.")
    try:
        raw = strict_yaml_load(path.read_text())
    except yaml.YAMLError as e:
        raise CardError(f"card {path}: invalid YAML: {e}") from None
    card = parse_card(raw, str(path))
    if card.id != claim_id:
        raise CardError(f"card {path}: id {card.id!r} does not match its file name {claim_id!r}.")
    return card


def all_cards(card_dir: Path | None = None) -> dict[str, Card]:
    card_dir = Path(card_dir or CARD_DIR)
    return {p.stem: load_card(p.stem, card_dir) for p in sorted(card_dir.glob("*.yaml"))}
