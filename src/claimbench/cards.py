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
    interval: {replicates: student_t, ratios: log_student_t, correlations: "exact_permutation|fisher_z",
               labels: k_of_n, bootstrap: "bca|percentile", level: 0.95}  # engine v4 (claimbench.intervals);
                                                          # cards before v4 read {replicates: student_t,
                                                          # bootstrap: percentile, level: 0.95}
    regime:                                    # preconditions taken from the paper's own conditions
      - id: R1
        text: every batch size trains (largest-batch train accuracy >= 0.6)
        why: ...
        applies_to: [C4]                       # absent = the whole claim
        checks: [{statistic: train_acc_largest_bs_min, op: ">=", threshold: 0.6}]
        settled_if: [{statistic: ..., op: ">", threshold: 0}]   # optional (one-sided regime): see below
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

**Checks are three-valued** (the engine is claimbench.verdict; this module parses). A gating check reads its
statistic's Samples, whose kind (claimbench.intervals: replicates, ratios, correlations, labels, bootstrap)
fixes how it is decided, and is

- *pass* when the decision lies wholly on the claim's side of the threshold (``>= t``: lo >= t);
- *fail* when it lies wholly on the other side (``>= t``: hi < t);
- *undecided* when it straddles the threshold or n < 5 replicates are all equal (*underpowered*), or the
  value is NaN, missing or has no interval (*undefined*).

A check marked ``exact`` and every regime check without samples is judged on its value as a point
(a property of the runs made, e.g. the lowest final train accuracy). Reported-only criteria are judged
the same way but never change the verdict. A criterion passes when every check passes, fails when any
check fails, and is undecided otherwise. A criterion whose regime precondition (``applies_to``) is unmet
is undecided (*out of regime*), unless the precondition names ``settled_if`` checks and every one of them
passes on its interval at the look's level: then the precondition does not hold that criterion back (a
*one-sided* precondition; card text must say which outcome the precondition protects against and why the
settled reading cannot be that artefact, e.g. noise that attenuates a correlation toward 0 cannot produce
one decidedly of the opposite sign). A criterion whose null pass rate's 95% upper bound exceeds 5% cannot
pass: a pass becomes undecided (*miscalibrated*).

**Null calibration** (engine v4). For each gating criterion the engine places each checked statistic on its
threshold — the least favourable point of the null — keeping the data's shape (claimbench.threshold_null:
centred bootstrap of the replicates, exact permutation and binomial nulls, shifted bootstrap draws, or the
claim's own corpus draws at the threshold) and evaluates the criterion exactly as on the data. Its *null pass
rate* is the share of draws it passes, and ``NULL_MAX_PASS_RATE`` (5%) is judged on the rate's
Clopper–Pearson 95% upper bound. The claim's effect-absent draws (the card's ``null:``) are reported beside it.

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
they could still give. Every verdict carries ``possible_outcomes`` and, where a regime precondition is unmet,
``outcome_ignoring_regime``; its label states a narrower range ("at least partially reproduced — E2
underpowered", "inconclusive — out of regime (ignoring regime: not reproduced)"), see claimbench.verdict.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from claimbench.errors import CardError
from claimbench.intervals import LEVEL, METHODS
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
             "version", "changelog", "interval", "regime", "adapted", "power", "seeds", "clauses", "pooling"}
POWER_KEYS = {"pilot", "statistics", "cost", "cpu_limit", "gpu", "simulation"}
POWER_ROW_KEYS = {"statistic", "method", "sd", "expected", "expected_source", "replicates", "p_pass", "p_fail", "how"}
POWER_METHODS = ("student_t", "bootstrap")
DEFAULT_INTERVAL = {**METHODS, "level": 0.95}  # engine v4: the method per Samples kind (claimbench.intervals)
V3_INTERVAL = {"replicates": "student_t", "bootstrap": "percentile", "level": 0.95}  # cards before v4


@dataclass(frozen=True)
class Check:
    statistic: str
    op: str
    threshold: float
    exact: bool = False


@dataclass(frozen=True)
class Precondition:
    id: str
    text: str
    why: str
    applies_to: tuple[str, ...] | None  # None = the whole claim
    checks: tuple[Check, ...]
    settled_if: tuple[Check, ...] = ()  # all pass on their intervals: an unmet precondition holds nothing back


@dataclass(frozen=True)
class Criterion:
    id: str
    text: str
    why: str
    gating: bool
    checks: tuple[Check, ...]
    null: str | None = None


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

    def current_for(self, judged_version: int | None, scale: str) -> bool:
        """True when a `scale` result judged by card version `judged_version` (None: 1) is judged by this version's
        rules: the same version, or every later changelog entry lists `scales` without `scale` (a version that
        changed other scales' protocols only, e.g. v6's gpu re-derivation). The audit still re-judges the stored
        evidence with this version and flags any verdict that moved."""
        judged = int(judged_version or 1)
        if judged == self.version:
            return True
        later = [e for e in self.raw.get("changelog", []) if judged < int(e["version"]) <= self.version]
        return judged < self.version and len(later) == self.version - judged and all(
            e.get("scales") is not None and scale not in e["scales"] for e in later)

    def look_level(self, look: int = 0) -> float:
        """Central interval level of a look of the card's seed-set design (`pooling.levels`; 95% without one)."""
        levels = (self.raw.get("pooling") or {}).get("levels") or [LEVEL]
        return float(levels[min(look, len(levels) - 1)])


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
        scales = entry.get("scales")
        if scales is not None and (not isinstance(scales, list) or set(scales) - set(SCALES)):
            raise CardError(f"card {where}: changelog entry #{i + 1} scales {scales!r} must be a list of "
                            f"{', '.join(SCALES)} (the scales whose protocol the version changes; [] for a text-only "
                            f"version; leave it out for all).")
    if log and max(int(e["version"]) for e in log) != version:
        raise CardError(f"card {where}: version {version} has no changelog entry of that version.")
    iv = raw.get("interval", DEFAULT_INTERVAL)
    if iv != V3_INTERVAL and (not isinstance(iv, dict) or {k: iv.get(k) for k in DEFAULT_INTERVAL} != DEFAULT_INTERVAL):
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
        unknown = sorted(set(p) - {"id", "text", "why", "applies_to", "checks", "settled_if"})
        if unknown:
            raise CardError(f"card {pw}: key {unknown[0]!r} unknown; allowed: id, text, why, applies_to, checks, "
                            f"settled_if.")
        settled = p.get("settled_if")
        if settled is not None and not applies:
            raise CardError(f"card {pw}: settled_if needs applies_to (a whole-claim precondition is never "
                            f"one-sided); name the criteria it holds back.")
        regime.append(Precondition(str(_need(p, "id", pw)), str(_need(p, "text", pw)), str(_need(p, "why", pw)),
                                   tuple(applies) if applies else None, _checks(_need(p, "checks", pw), pw),
                                   _checks(settled, f"{pw} settled_if") if settled is not None else ()))
    _power(raw.get("power"), where, criteria)
    validate_v4_blocks(raw, where, criteria, regime)
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


# --- card v4 blocks (issue 22): seeds, clauses, pooling, power.simulation ---------------------------------

SCALES = ("ci", "quick", "long", "gpu", "paper")
BOUNDARIES = ("pocock", "obrien_fleming")
EFFECT_KINDS = ("paper", "replication", "pilot", "none")
REGIME_STATES = ("met", "unmet")
SIMULATION_KEYS = {"rows", "normal", "expected", "scales", "result"}
VERDICT_KEYS = ("reproduced", "partially", "not", "inconclusive")


def seed_list(items: Any, where: str) -> set[int]:
    """Seeds from a list of integers and inclusive ranges written "lo-hi" (e.g. [0, 1, "8000-8007"])."""
    if not isinstance(items, list) or not items:
        raise CardError(f"card {where}: must be a non-empty list of seeds (integers or \"lo-hi\" ranges).")
    out: set[int] = set()
    for it in items:
        if isinstance(it, int) and not isinstance(it, bool):
            out.add(it)
            continue
        lo, _, hi = str(it).partition("-")
        if not (lo.isdigit() and hi.isdigit() and int(lo) <= int(hi)):
            raise CardError(f"card {where}: seed {it!r} is neither an integer nor a \"lo-hi\" range.")
        out |= set(range(int(lo), int(hi) + 1))
    return out


def judged_seeds(raw: dict) -> dict[tuple[str, int], set[int]]:
    """(scale, seed set) -> its replicate seeds, from the card's `seeds.judged` block ({} if absent)."""
    judged = (raw.get("seeds") or {}).get("judged") or {}
    return {(scale, int(k)): seed_list(v, f"{raw.get('id')} seeds.judged.{scale}.{k}")
            for scale, sets in judged.items() for k, v in sets.items()}


def _seeds(block: Any, where: str) -> tuple[set[str], set[str]]:
    """Validate `seeds:`: judged seed sets per scale, pilots disjoint from every judged seed, reused judged
    runs declared. Returns (pilot ids, reused ids)."""
    sw = f"{where} seeds"
    _keys(block, {"judged", "pilots", "reused"}, ("judged", "pilots"), sw)
    judged = block["judged"]
    if not isinstance(judged, dict) or not judged:
        raise CardError(f"card {sw}: judged must map a scale to {{seed set: [seeds]}}.")
    all_judged: dict[int, str] = {}
    for scale, sets in judged.items():
        if scale not in SCALES or not isinstance(sets, dict) or not sets:
            raise CardError(f"card {sw}: judged.{scale} must be a scale ({', '.join(SCALES)}) mapping seed sets "
                            f"to seeds.")
        for k, v in sets.items():
            for s in seed_list(v, f"{sw}.judged.{scale}.{k}"):
                all_judged.setdefault(s, f"{scale} set {k}")
    ids: dict[str, set[str]] = {"pilots": set(), "reused": set()}
    for kind in ("pilots", "reused"):
        for i, p in enumerate(block.get(kind) or []):
            pw = f"{sw}.{kind} #{i + 1}"
            _keys(p, {"id", "seeds", "what"}, ("id", "seeds", "what"), pw)
            seeds = seed_list(p["seeds"], pw)
            overlap = sorted(seeds & set(all_judged))
            if kind == "pilots" and overlap:
                raise CardError(f"card {sw}: pilot {p['id']!r} uses judged seeds {overlap[:4]} "
                                f"({all_judged[overlap[0]]}); a pilot needs seeds disjoint from every judged seed "
                                f"set: re-run it on fresh seeds or list it under `reused:` (then it sources no "
                                f"expected effect).")
            ids[kind].add(str(p["id"]))
    return ids["pilots"], ids["reused"]


def _clauses(block: Any, where: str, criteria: list[Criterion]) -> None:
    """Validate `clauses:`: each clause of the claim names gating criteria or says why it is reported only;
    every gating criterion serves some clause."""
    cw = f"{where} clauses"
    if not isinstance(block, list) or not block:
        raise CardError(f"card {cw}: must list the claim's clauses as {{text, criteria: [...]}} or "
                        f"{{text, reported_only: why}}.")
    known = {c.id: c for c in criteria}
    served: set[str] = set()
    for i, cl in enumerate(block):
        iw = f"{cw} #{i + 1}"
        _keys(cl, {"text", "criteria", "reported_only"}, ("text",), iw)
        if ("criteria" in cl) == ("reported_only" in cl):
            raise CardError(f"card {iw}: give exactly one of criteria (ids) or reported_only (why).")
        if "reported_only" in cl:
            if not str(cl["reported_only"]).strip():
                raise CardError(f"card {iw}: reported_only must say why the clause has no gating criterion.")
            continue
        if not isinstance(cl["criteria"], list) or not cl["criteria"]:
            raise CardError(f"card {iw}: criteria must be a non-empty list of criterion ids.")
        for cid in cl["criteria"]:
            if cid not in known:
                raise CardError(f"card {iw}: criterion {cid!r} does not exist; the card defines "
                                f"{', '.join(known)}.")
            if not known[cid].gating:
                raise CardError(f"card {iw}: criterion {cid!r} is reported only; name a gating criterion or "
                                f"say reported_only: why.")
        served |= set(cl["criteria"])
    unserved = [c.id for c in criteria if c.gating and c.id not in served]
    if unserved:
        raise CardError(f"card {cw}: gating criterion {unserved[0]!r} serves no clause; map it to the clause it "
                        f"tests.")


def _pooling(block: Any, where: str) -> None:
    """Validate `pooling:`: the seed sets of each look, the α-spending boundary and each look's interval level."""
    pw = f"{where} pooling"
    _keys(block, {"looks", "boundary", "alpha", "levels", "second_look_if", "conflict"},
          ("looks", "boundary", "alpha", "levels", "second_look_if", "conflict"), pw)
    looks, levels = block["looks"], block["levels"]
    if not isinstance(looks, list) or len(looks) < 2 or len(set(looks)) != len(looks):
        raise CardError(f"card {pw}: looks must list at least two distinct seed sets (e.g. [0, 1]).")
    if block["boundary"] not in BOUNDARIES:
        raise CardError(f"card {pw}: boundary {block['boundary']!r} unknown; allowed: {', '.join(BOUNDARIES)}.")
    if not isinstance(levels, list) or len(levels) != len(looks) or not all(
            isinstance(v, float) and 0.5 < v < 1 for v in levels):
        raise CardError(f"card {pw}: levels must give one interval level in (0.5, 1) per look.")
    if not 0 < float(block["alpha"]) < 0.5:
        raise CardError(f"card {pw}: alpha {block['alpha']} must lie in (0, 0.5).")


def _sources(source: Any, known: set[str], where: str) -> None:
    """`source` is one seeds.pilots / seeds.reused id or a list of them."""
    for sid in source if isinstance(source, list) else [source]:
        if sid not in known:
            raise CardError(f"card {where}: source {sid!r} is not a seeds.pilots or seeds.reused id "
                            f"({', '.join(sorted(known)) or 'none declared'}).")


def _normal(normal: Any, nw: str, sources: set[str]) -> set[str]:
    """Validate one `normal:` block (card-wide, or a scale's own); return the statistics its SDs cover."""
    _keys(normal, {"source", "method", "sd", "correlation", "note"}, ("source", "method", "sd"), nw)
    if normal["method"] not in ("replicates", "bootstrap"):
        raise CardError(f"card {nw}: method must be replicates or bootstrap.")
    _sources(normal["source"], sources, nw)
    for pair in normal.get("correlation") or []:
        _keys(pair, {"between", "r", "source"}, ("between", "r", "source"), f"{nw}.correlation")
        if not set(pair["between"]) <= set(normal["sd"]) or not -1 < float(pair["r"]) < 1:
            raise CardError(f"card {nw}.correlation: {pair['between']} must be two sd statistics with r in "
                            f"(-1, 1).")
    return set(normal["sd"])


def _simulation(sim: Any, where: str, criteria: list[Criterion], regime: list[Precondition],
                pilots: set[str], reused: set[str]) -> None:
    """Validate `power.simulation:` (claimbench.power.verdict_power's inputs): pilot replicate rows and/or
    normal SDs covering every gating statistic, each scale's expected effects with their source, replicates
    and regime states, and the stated result."""
    sw = f"{where} power.simulation"
    _keys(sim, SIMULATION_KEYS, ("expected", "scales"), sw)
    gating = {ch.statistic: [] for c in criteria if c.gating for ch in c.checks}
    for c in criteria:
        for ch in c.checks:
            if c.gating:
                gating[ch.statistic].append(ch.threshold)
    sources = pilots | reused
    rows_cover: set[str] = set()
    if "rows" in sim:
        rw = f"{sw}.rows"
        _keys(sim["rows"], {"source", "statistics", "values"}, ("source", "statistics", "values"), rw)
        names, values = sim["rows"]["statistics"], sim["rows"]["values"]
        if not isinstance(values, list) or len(values) < 2 or any(
                not isinstance(r, list) or len(r) != len(names) for r in values):
            raise CardError(f"card {rw}: values must be at least 2 rows of {len(names)} numbers (one per statistic).")
        rows_cover |= set(names)
        _sources(sim["rows"]["source"], sources, rw)
    normal_cover = _normal(sim["normal"], f"{sw}.normal", sources) if "normal" in sim else set()
    regime_ids = {p.id for p in regime}
    for scale, spec in sim["scales"].items():
        cw = f"{sw}.scales.{scale}"
        _keys(spec, {"n", "n_statistic", "regime", "se_factor", "normal"}, ("n",), cw)
        own = _normal(spec["normal"], f"{cw}.normal", sources) if "normal" in spec else normal_cover
        lacking_sd = sorted(set(gating) - rows_cover - own)
        if lacking_sd:
            raise CardError(f"card {cw}: gating statistic {lacking_sd[0]!r} has neither pilot rows nor a normal sd.")
        states = spec.get("regime") or {}
        if set(states) != regime_ids or any(v not in REGIME_STATES for v in states.values()):
            raise CardError(f"card {cw}: regime must give every precondition ({', '.join(sorted(regime_ids))}) "
                            f"as met or unmet.")
        effects = {e.get("statistic"): e for e in sim["expected"].get(scale) or []}
        lacking = sorted(set(gating) - set(effects))
        if lacking:
            raise CardError(f"card {sw}.expected.{scale}: no expected effect for {lacking[0]!r}.")
        for name, e in effects.items():
            ew = f"{sw}.expected.{scale} {name}"
            _keys(e, {"statistic", "value", "kind", "source", "pilot"}, ("statistic", "value", "kind", "source"), ew)
            if e["kind"] not in EFFECT_KINDS:
                raise CardError(f"card {ew}: kind {e['kind']!r} unknown; allowed: {', '.join(EFFECT_KINDS)}.")
            if e["kind"] == "pilot" and e.get("pilot") not in pilots:
                raise CardError(f"card {ew}: a pilot effect names a seeds.pilots id (seeds disjoint from every "
                                f"judged set); got {e.get('pilot')!r}.")
            if e["kind"] == "none" and float(e["value"]) not in gating.get(name, []):
                raise CardError(f"card {ew}: an effect with no source sits at a threshold of its statistic "
                                f"({gating.get(name)}), the least favourable value.")
    for scale, res in (sim.get("result") or {}).items():
        rw = f"{sw}.result.{scale}"
        _keys(res, {"draws", "seed", "expected", "null"}, ("draws", "seed", "expected", "null"), rw)
        if scale not in sim["scales"]:
            raise CardError(f"card {rw}: no scales.{scale} to have simulated.")
        for world in ("expected", "null"):
            p = res[world]
            if not isinstance(p, dict) or set(p) != set(VERDICT_KEYS) or abs(sum(p.values()) - 1) > 0.005:
                raise CardError(f"card {rw}.{world}: must give {', '.join(VERDICT_KEYS)} summing to 1 (python -m "
                                f"claimbench.power --card <id> prints it).")


def validate_v4_blocks(raw: dict, where: str, criteria: list[Criterion], regime: list[Precondition]) -> None:
    """Card v4 blocks (issue 22), each optional for older versions and required from version 4 on.

    From version 4 a card also states, before its judged run::

        seeds:                                     # judged seeds per scale and seed set; pilots' seeds
          judged: {quick: {0: [0, 1, 2], 1: [1000, 1001, 1002]}, gpu: {0: ["0-4"]}}
          pilots: [{id: set5, seeds: ["5000-5003"], what: ...}]   # refused if they overlap a judged seed
          reused: [{id: v2-quick, seeds: [...], what: ...}]        # judged runs reused: spread only, no effect
        pooling:                                   # sequential design across seed sets (claimbench.robustness)
          {looks: [0, 1], boundary: pocock, alpha: 0.05, levels: [0.9706, 0.9706], second_look_if: ..., conflict: ...}
        clauses:                                   # each clause of `claim` -> gating criteria, or why reported only
          - {text: ..., criteria: [C2]}
          - {text: ..., reported_only: why}
        power:
          simulation:                              # claimbench.power.verdict_power inputs and its stated result
            rows: {source: set5, statistics: [...], values: [[...], ...]}    # whole pilot replicates
            normal: {source: ..., method: replicates | bootstrap, sd: {...}, correlation: [...], note: ...}
            expected: {quick: [{statistic, value, kind: paper | replication | pilot | none, source, pilot}], gpu: ...}
            scales: {quick: {n: 3, regime: {R1: met, R2: unmet}, n_statistic: {...}, se_factor: 1.0,
                             normal: {...}}}              # a scale's own normal replaces the card-wide one
            result: {quick: {draws, seed, expected: {reproduced, partially, not, inconclusive}, "null": {...}}}

    An expected effect of kind ``pilot`` names a `seeds.pilots` id; one of kind ``none`` sits at a threshold of
    its statistic. `verdict.judge` reads intervals at look 1's level unless given `level=` (`Card.look_level`).
    """
    needed = raw.get("version", 1) >= 4
    for key in ("seeds", "clauses", "pooling"):
        if needed and key not in raw:
            raise CardError(f"card {where}: version 4 needs a `{key}:` block (claimbench.cards module doc).")
    pilots, reused = _seeds(raw["seeds"], where) if "seeds" in raw else (set(), set())
    if "clauses" in raw:
        _clauses(raw["clauses"], where, criteria)
    if "pooling" in raw:
        _pooling(raw["pooling"], where)
    sim = (raw.get("power") or {}).get("simulation")
    if needed and sim is None:
        raise CardError(f"card {where}: version 4 needs power.simulation (per-verdict power).")
    if sim is not None:
        _simulation(sim, where, criteria, regime, pilots, reused)


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
