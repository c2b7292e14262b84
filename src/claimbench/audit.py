"""Audits of committed results, run by the test suite: each returns one message per problem, naming
the claim and the number, so a hand-edited value, a changed criterion or a stale table fails CI clearly.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from claimbench.cards import Card, all_cards
from claimbench.report import README_END, README_START, REPORT_SCALES, render
from claimbench.results import statistics_digest

PROVENANCE_KEYS = ("git_sha", "git_dirty", "torch", "torchvision", "device", "scale", "seeds", "wall_s",
                   "command", "statistics_sha256")


def committed_results(root: Path) -> list[Path]:
    return [p for s in REPORT_SCALES for p in sorted((root / "results" / s).glob("*/metrics.json"))]


def audit_result(path: Path, cards: dict[str, Card]) -> list[str]:
    """Provenance complete; statistics match their digest; stored verdict and every criterion's
    value/threshold/pass flag equal what the current card computes from the stored statistics."""
    where = "/".join(path.parts[-4:-1])
    rec = json.loads(path.read_text())
    problems = []
    scale, cid = path.parts[-3], path.parts[-2]
    if rec.get("claim_id") != cid or rec.get("scale") != scale:
        problems.append(f"{where}: claim_id/scale {rec.get('claim_id')}/{rec.get('scale')} do not match the folder")
    prov = rec.get("provenance", {})
    missing = [k for k in PROVENANCE_KEYS if k not in prov]
    if missing:
        problems.append(f"{where}: provenance lacks {', '.join(missing)}")
    stats = rec.get("statistics", {})
    if prov.get("statistics_sha256") and prov["statistics_sha256"] != statistics_digest(stats):
        problems.append(f"{where}: statistics were edited after the run (digest mismatch); rerun the claim")
    card = cards.get(cid)
    if card is None:
        return problems + [f"{where}: no card {cid}.yaml"]
    judged = card.verdict(stats)
    if judged["verdict"] != rec.get("verdict"):
        problems.append(f"{where}: stored verdict {rec.get('verdict')!r} but the card gives {judged['verdict']!r}")
    stored = {c["id"]: c for c in rec.get("criteria", [])}
    for crit in judged["criteria"]:
        old = stored.get(crit["id"])
        if old is None:
            problems.append(f"{where}: criterion {crit['id']} is in the card but not in the result")
            continue
        for new_ch, old_ch in zip(crit["checks"], old["checks"]):
            for key in ("statistic", "value", "op", "threshold", "passed"):
                if new_ch[key] != old_ch.get(key):
                    problems.append(f"{where}: {crit['id']} {key} of {new_ch['statistic']}: stored "
                                    f"{old_ch.get(key)!r}, card/statistics give {new_ch[key]!r}")
        if len(crit["checks"]) != len(old["checks"]):
            problems.append(f"{where}: {crit['id']} has {len(crit['checks'])} checks in the card, "
                            f"{len(old['checks'])} in the result")
    extra = set(stored) - {c["id"] for c in judged["criteria"]}
    if extra:
        problems.append(f"{where}: result has criteria {sorted(extra)} the card no longer defines")
    return problems


def audit_report(root: Path) -> list[str]:
    """results/claims.md, results/claims_table.csv and README's block equal a fresh render."""
    import io

    text, df, block = render(root)
    problems = []
    if (root / "results" / "claims.md").read_text() != text:
        problems.append("results/claims.md is not what the report stage generates from the committed results; "
                        "run `dvc repro report` and commit")
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    if (root / "results" / "claims_table.csv").read_text() != buf.getvalue():
        problems.append("results/claims_table.csv is stale; run `dvc repro report` and commit")
    readme = (root / "README.md").read_text()
    if README_START not in readme or block not in readme:
        problems.append(f"README.md's claims table ({README_START} … {README_END}) is stale; run `dvc repro report`")
    return problems


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


def audit_all(root: Path) -> list[str]:
    cards = all_cards()
    problems = []
    for path in committed_results(root):
        problems += audit_result(path, cards)
    return problems + audit_report(root)
