"""Audits of committed results, run by the test suite: each returns one message per problem, naming
the claim and the number, so a hand-edited value, a changed criterion or a stale table fails CI clearly.
The report stage runs the same per-result audit and stops with `refusal`'s one line.

The report imports this module and never the reverse: the report-freshness audit (is results/claims.md
what the report renders?) is `claimbench.report.audit_report`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from claimbench.cards import Card
from claimbench.results import DVC_METRICS, dvc_metrics, published_digest, statistics_digest
from claimbench.verdict import headline, judge, threshold_null, verdict_keys

REPORT_SCALES = ["quick", "long", "gpu", "paper"]  # scales whose results are committed, audited and reported
PROVENANCE_KEYS = ("git_sha", "git_dirty", "torch", "torchvision", "device", "scale", "seeds", "wall_s",
                   "command", "statistics_sha256", "published_sha256", "cpu_model", "cpu_kernels", "torch_threads",
                   "float_dtype")


def committed_results(root: Path) -> list[Path]:
    """Every results/<scale>/<claim>/metrics.json of the committed scales, in a fixed order."""
    return [p for s in REPORT_SCALES for p in sorted((root / "results" / s).glob("*/metrics.json"))]


# Kinds of problem, most basic first: the report names the first kind found, since later ones follow from it
# (edited statistics change criterion values and the verdict; a changed card changes thresholds and the verdict).
KINDS = ("folder", "nocard", "provenance", "digest", "published", "card", "null", "verdict", "criteria", "headline")
# What the report prints that findings() recomputes or digests (issue 22 item 8): the headline's value, label
# and interval are recomputed from the card, statistics and samples; setup (dataset, model, ...) and the cost
# column's provenance fields are in provenance.published_sha256; verdict, label and outcome range are re-judged;
# each gating criterion's threshold null is recomputed from the samples.


def findings(path: Path, cards: dict[str, Card]) -> list[tuple[str, str]]:
    """(kind, problem) for one results/<scale>/<claim>/metrics.json, kind from KINDS; [] if it is sound."""
    rec = json.loads(path.read_text())
    found = []
    scale, cid = path.parts[-3], path.parts[-2]
    if rec.get("claim_id") != cid or rec.get("scale") != scale:
        found.append(("folder", f"claim_id/scale {rec.get('claim_id')}/{rec.get('scale')} do not match the folder"))
    prov = rec.get("provenance", {})
    missing = [k for k in PROVENANCE_KEYS if k not in prov]
    if missing:
        found.append(("provenance", f"provenance lacks {', '.join(missing)}"))
    stats, samples, null = rec.get("statistics", {}), rec.get("samples"), rec.get("null_calibration")
    if prov.get("statistics_sha256") and prov["statistics_sha256"] != statistics_digest(stats, samples, null):
        found.append(("digest", "statistics were edited after the run (digest mismatch); rerun the claim"))
    if prov.get("published_sha256") and prov["published_sha256"] != published_digest(rec.get("setup", {}), prov):
        found.append(("published", "the setup (dataset, model, ...) or the cost (provenance wall_s, compute, "
                                   "device) was edited after the run (provenance.published_sha256 mismatch)"))
    card = cards.get(cid)
    if card is None:
        return found + [("nocard", f"no card {cid}.yaml")]
    judged = judge(card, stats, samples, null)
    found += _verdict_findings(judged, rec)
    found += _null_findings(card, samples or {}, null or {})
    if not card.current_for(prov.get("card_version", 1), rec.get("scale", scale)):
        found.append(("card", f"judged by card version {prov.get('card_version', 1)}, the card is now version "
                              f"{card.version} (a version whose changelog `scales` leave out {scale} would keep it)"))
    found += _criteria_findings(judged["criteria"], rec.get("criteria", []))
    found += _published_findings(card, rec)
    headline_json = path.parent / DVC_METRICS
    if not headline_json.exists() or json.loads(headline_json.read_text()) != dvc_metrics(rec):
        found.append(("headline", f"{DVC_METRICS} (what `dvc metrics` shows) is missing or disagrees with "
                                  f"metrics.json"))
    return found


def _verdict_findings(judged: dict, rec: dict) -> list[tuple[str, str]]:
    """Stored verdict, reason, label and outcome range against what the card gives from the stored evidence."""
    found = []
    if judged["verdict"] != rec.get("verdict") or judged["reason"] != rec.get("verdict_reason"):
        why_stored = f" ({rec['verdict_reason']})" if rec.get("verdict_reason") else ""
        why_card = f" ({judged['reason']})" if judged["reason"] else ""
        found.append(("verdict", f"stored verdict {rec.get('verdict')!r}{why_stored} but the card gives "
                                 f"{judged['verdict']!r}{why_card}"))
    for key, value in verdict_keys(judged).items():
        if key not in ("verdict", "verdict_reason") and rec.get(key) != value:
            found.append(("verdict", f"stored {key} {rec.get(key)!r} but the card gives {value!r}"))
    return found


def _null_findings(card: Card, samples: dict, null: dict) -> list[tuple[str, str]]:
    """Each gating criterion's threshold null, recomputed from the stored samples (claim-provided draws at the
    threshold cannot be, and are only digested)."""
    found = []
    for c in card.criteria:
        stored = null.get(c.id, {})
        if not c.gating or stored.get("claim_draws"):
            continue
        fresh = threshold_null(c, samples, card.look_level(0)) or {}
        for key in ("pass_rate", "pass_upper", "ceiling", "draws"):
            if stored.get(key) != fresh.get(key):
                found.append(("null", f"{c.id} null {key}: stored {stored.get(key)!r}, the samples give "
                                      f"{fresh.get(key)!r}"))
    return found


def _published_findings(card: Card, rec: dict) -> list[tuple[str, str]]:
    """The headline (label, value, uncertainty, interval) recomputed from the card, statistics and samples."""
    fresh = headline(card, rec.get("statistics", {}), rec.get("samples") or {})
    stored = rec.get("headline", {})
    return [("published", f"headline {key}: stored {stored.get(key)!r}, the card and statistics give {value!r}")
            for key, value in fresh.items() if stored.get(key) != value]


def _criteria_findings(judged: list[dict], stored_list: list[dict]) -> list[tuple[str, str]]:
    """Card-side differences (statistic, op, threshold, gating, checks, criteria) are kind 'card';
    stored values/pass flags that the statistics do not give are kind 'criteria'."""
    found = []
    stored = {c["id"]: c for c in stored_list}
    for crit in judged:
        old = stored.get(crit["id"])
        if old is None:
            found.append(("card", f"criterion {crit['id']} is in the card but not in the result"))
            continue
        if crit["gating"] != old.get("gating"):
            found.append(("card", f"{crit['id']} gating: stored {old.get('gating')!r}, card gives {crit['gating']!r}"))
        for new_ch, old_ch in zip(crit["checks"], old["checks"]):
            for key in ("statistic", "value", "lo", "hi", "op", "threshold", "outcome", "passed"):
                if new_ch.get(key) != old_ch.get(key):
                    kind = "criteria" if key in ("value", "lo", "hi", "outcome", "passed") else "card"
                    found.append((kind, f"{crit['id']} {key} of {new_ch['statistic']}: stored "
                                        f"{old_ch.get(key)!r}, card/statistics give {new_ch.get(key)!r}"))
        if len(crit["checks"]) != len(old["checks"]):
            found.append(("card", f"{crit['id']} has {len(crit['checks'])} checks in the card, "
                                  f"{len(old['checks'])} in the result"))
    extra = set(stored) - {c["id"] for c in judged}
    if extra:
        found.append(("card", f"result has criteria {sorted(extra)} the card no longer defines"))
    return found


def audit_result(path: Path, cards: dict[str, Card]) -> list[str]:
    """Provenance complete; statistics match their digest; stored verdict and every criterion's
    value/threshold/pass flag equal what the current card computes from the stored statistics."""
    where = "/".join(path.parts[-4:-1])
    return [f"{where}: {problem}" for _, problem in findings(path, cards)]


def refusal(path: Path, cards: dict[str, Card]) -> str | None:
    """One line for a result that fails its audit (None if it passes): the file, the most basic problem
    found, what it means and the fix."""
    found = findings(path, cards)
    if not found:
        return None
    kind = min((k for k, _ in found), key=KINDS.index)
    details = "; ".join(p for k, p in found if k == kind)
    file, cid = "/".join(path.parts[-4:]), path.parts[-2]
    rerun, restore = f"rerun the claim (`dvc repro -f {cid}`)", f"restore the file (`git checkout -- {file}`)"
    evidence = "".join(f"; {p}" for p in [p for k, p in found if k == "criteria"][:2])  # which numbers moved
    why = {
        "folder": f"{details}: the file was moved or edited; {restore} or {rerun}",
        "nocard": f"no card {cid}.yaml judges it; commit the card or remove the result",
        "provenance": f"{details}, so it cannot be audited; {rerun}",
        "published": f"what the report publishes was edited after the run ({details}); {restore} or {rerun}",
        "null": f"the stored null calibration disagrees with the samples ({details}); {rerun}",
        "digest": f"the statistics were edited after the run (they no longer match provenance.statistics_sha256"
                  f"{evidence}); {restore} or {rerun}",
        "card": f"the card changed after the run ({details}); {rerun}, or revert src/claimbench/cards/{cid}.yaml",
        "verdict": f"the verdict was edited by hand ({details} from the stored statistics, and the card's criteria "
                   f"and thresholds equal the stored ones); {restore} or {rerun}",
        "criteria": f"the stored criteria were edited by hand ({details}; the statistics and the card are unchanged); "
                    f"{restore} or {rerun}",
        "headline": f"{details}; {rerun}",
    }[kind]
    return f"{file}: {why}"


def audit_dvc_status(root: Path) -> list[str]:
    """`dvc status` is clean, except for DVC-cached artifacts absent from a fresh clone (no remote)."""
    out = subprocess.run(["dvc", "status", "--json"], cwd=root, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return [f"dvc status failed: {out.stderr.strip()[-500:]}"]
    status = json.loads(out.stdout or "{}")
    problems = []
    for stage, changes in status.items():
        for change in changes:
            if isinstance(change, str):
                problems.append(f"dvc status: {stage}: {change}")
                continue
            for kind, items in change.items():
                entries = items.items() if isinstance(items, dict) else [(items, "")]
                for path, state in entries:
                    if str(path).startswith("artifacts/") and state in ("deleted", "not in cache"):
                        continue
                    problems.append(f"dvc status: {stage}: {kind}: {path} {state}".rstrip())
    return problems
