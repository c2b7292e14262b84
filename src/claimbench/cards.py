"""Claim cards (src/claimbench/cards/<claim_id>.yaml) and the verdict they imply for measured statistics.

A card is committed before the run that judges it. Schema::

    id: heavy_tail_phases
    title: ...
    paper: {authors: ..., title: ..., venue: ..., arxiv: "1810.01075"}
    claim: one falsifiable sentence
    setup: {dataset: ..., model: ...}          # what *our* runs use (shown in the report)
    paper_numbers:                             # what the paper reports, with its source
      - {what: ..., value: ..., source: "Table 1"}
    headline: {statistic: ..., uncertainty: ..., label: ..., paper: ...}   # the report's "ours" cell
    criteria:
      - id: C1
        text: the criterion verbatim (as pre-registered in the issue)
        why: why this threshold
        gating: true                           # false = reported only, never changes the verdict
        checks:                                # all must hold for the criterion to pass
          - {statistic: alpha_fc1_smallest_bs, op: "<", threshold: 6}
    verdict:
      reproduced: [C1, C2, C3, C4]             # all pass -> "reproduced"
      partially_if_any: [C1, C3]               # else any of these passes -> "partially reproduced"
                                               # else "not reproduced"

Statistics are plain numbers (bools count as 1/0) computed by the claim's analysis; a missing or
NaN statistic fails its check — it never passes silently.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from claimbench.errors import CardError

CARD_DIR = Path(__file__).parent / "cards"
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
REPRODUCED, PARTIAL, NOT_REPRODUCED, NOT_RUN = "reproduced", "partially reproduced", "not reproduced", "not run"
CARD_KEYS = {"id", "title", "paper", "claim", "setup", "paper_numbers", "headline", "criteria", "verdict"}


@dataclass(frozen=True)
class Check:
    statistic: str
    op: str
    threshold: float

    def evaluate(self, stats: dict[str, Any]) -> dict:
        value = stats.get(self.statistic)
        ok = False
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
            ok = bool(OPS[self.op](value, self.threshold))
        return {"statistic": self.statistic, "value": value, "op": self.op, "threshold": self.threshold,
                "passed": ok}


@dataclass(frozen=True)
class Criterion:
    id: str
    text: str
    why: str
    gating: bool
    checks: tuple[Check, ...]

    def evaluate(self, stats: dict[str, Any]) -> dict:
        results = [c.evaluate(stats) for c in self.checks]
        return {"id": self.id, "text": self.text, "gating": self.gating,
                "passed": all(r["passed"] for r in results), "checks": results}


@dataclass(frozen=True)
class Card:
    id: str
    raw: dict
    criteria: tuple[Criterion, ...]
    reproduced: tuple[str, ...]
    partially_if_any: tuple[str, ...]

    @property
    def title(self) -> str:
        return self.raw["title"]

    def verdict(self, stats: dict[str, Any]) -> dict:
        """{'verdict': str, 'criteria': [per-criterion dicts with values, thresholds, pass flags]}."""
        evaluated = [c.evaluate(stats) for c in self.criteria]
        passed = {e["id"]: e["passed"] for e in evaluated}
        if all(passed[c] for c in self.reproduced):
            verdict = REPRODUCED
        elif any(passed[c] for c in self.partially_if_any):
            verdict = PARTIAL
        else:
            verdict = NOT_REPRODUCED
        return {"verdict": verdict, "criteria": evaluated}


def _need(d: dict, key: str, where: str) -> Any:
    if key not in d:
        raise CardError(f"card {where}: missing key {key!r}.")
    return d[key]


def parse_card(raw: dict, where: str) -> Card:
    if not isinstance(raw, dict):
        raise CardError(f"card {where}: must be a mapping.")
    unknown = sorted(set(raw) - CARD_KEYS)
    if unknown:
        raise CardError(f"card {where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(CARD_KEYS))}.")
    for key in ("id", "title", "paper", "claim", "paper_numbers", "headline"):
        _need(raw, key, where)
    criteria = []
    for i, c in enumerate(_need(raw, "criteria", where)):
        cw = f"{where} criterion #{i + 1}"
        checks = []
        for ch in _need(c, "checks", cw):
            op = _need(ch, "op", cw)
            if op not in OPS:
                raise CardError(f"card {cw}: op {op!r} unknown; allowed: {', '.join(OPS)}.")
            thr = _need(ch, "threshold", cw)
            if isinstance(thr, bool) or not isinstance(thr, (int, float)):
                raise CardError(f"card {cw}: threshold {thr!r} must be a number.")
            checks.append(Check(str(_need(ch, "statistic", cw)), op, float(thr)))
        if not checks:
            raise CardError(f"card {cw}: needs at least one check.")
        criteria.append(Criterion(str(_need(c, "id", cw)), str(_need(c, "text", cw)), str(_need(c, "why", cw)),
                                  bool(c.get("gating", True)), tuple(checks)))
    ids = [c.id for c in criteria]
    if len(set(ids)) != len(ids):
        raise CardError(f"card {where}: duplicate criterion ids {ids}.")
    rule = _need(raw, "verdict", where)
    reproduced = tuple(_need(rule, "reproduced", f"{where} verdict"))
    partial = tuple(rule.get("partially_if_any", ()))
    for cid in (*reproduced, *partial):
        if cid not in ids:
            raise CardError(f"card {where}: verdict rule names criterion {cid!r}, which the card does not define.")
    gating = {c.id for c in criteria if c.gating}
    if not set(reproduced) <= gating:
        raise CardError(f"card {where}: verdict rule uses non-gating criteria {sorted(set(reproduced) - gating)}.")
    return Card(str(raw["id"]), raw, tuple(criteria), reproduced, partial)


def load_card(claim_id: str, card_dir: Path | None = None) -> Card:
    path = Path(card_dir or CARD_DIR) / f"{claim_id}.yaml"
    if not path.exists():
        raise CardError(f"no claim card for {claim_id!r}: expected {path}.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise CardError(f"card {path}: invalid YAML: {e}") from None
    card = parse_card(raw, str(path))
    if card.id != claim_id:
        raise CardError(f"card {path}: id {card.id!r} does not match its file name {claim_id!r}.")
    return card


def all_cards(card_dir: Path | None = None) -> dict[str, Card]:
    card_dir = Path(card_dir or CARD_DIR)
    return {p.stem: load_card(p.stem, card_dir) for p in sorted(card_dir.glob("*.yaml"))}
