"""Re-judge committed results with the v4 verdict engine, from what each metrics.json stores (issue 22).

    python -m claimbench.rejudge [--root .] [--out results/rejudge_v4.md] [--cards-rev REV ...]
    python -m claimbench.rejudge --write results/gpu      # rewrite results that have no artifacts here


For every results/<scale>/[seedset<k>/]<claim>/metrics.json (scale ci excluded) the stored samples are read
as the Samples kind the claim's analysis now declares (`upgrade_samples`: rank correlations with their
points, labels, ratios; a bootstrap without stored jackknife stays percentile), the threshold null is
recomputed from them, the stored (v3) null rates are kept as the claim's own null, and the card judges again.
The table gives, per result, the stored verdict and the v4 verdict, its label, its outcome range and its
outcome ignoring the regime. `--cards-rev REV` adds a section judged by the cards as committed at REV (e.g.
the v3 cards: engine v4 with no criterion, threshold or protocol change), before the current cards' section.
It writes only the table: re-running the analyse stages re-judges the results themselves (`python
stages/<id>.py analyse`). Where no artifacts exist (a gpu run made elsewhere), `--write FOLDER` rewrites each
metrics.json under FOLDER from its stored statistics and samples with the current engine and cards (tables
re-rendered from their CSVs, provenance kept and marked `rejudged`); its figures are left as they were.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from claimbench.atomic import write_text_atomic
from claimbench.cards import all_cards
from claimbench.claims.activation_sparsity.nulls import replicate_samples
from claimbench.claims.heavy_tail_phases.analyse import seed_samples
from claimbench.errors import ClaimbenchError
from claimbench.intervals import Samples, as_samples, correlations, interval, ratios
from claimbench.provenance import git_state
from claimbench.report import md_row
from claimbench.results import jsonable, published_digest, statistics_digest, write_record, write_table
from claimbench.verdict import ENGINE_VERSION, calibrate, headline, judge, verdict_keys

OUT = Path("results") / "rejudge_v4.md"


def upgrade_samples(claim_id: str, samples: dict, setup: dict) -> dict[str, Samples]:
    """The stored samples as the kinds the claim's analysis declares in engine v4."""
    out = {}
    for name, raw in samples.items():
        s = as_samples(raw)
        if s.kind != "replicates":
            out[name] = s
        elif claim_id == "heavy_tail_phases":
            out[name] = seed_samples(name, s.values, len(setup.get("batch_sizes", ())))
        elif claim_id == "activation_sparsity":
            out[name] = replicate_samples(name, s.values)
        elif claim_id == "neural_collapse" and name.startswith("nc"):
            out[name] = ratios(s.values)
        elif claim_id == "el2n_pruning" and name.startswith("spearman"):
            found = re.search(r"(\d+) train", str(setup.get("dataset", "")))
            out[name] = correlations(s.values, int(found.group(1))) if found else s
        else:
            out[name] = s
    return out


def _inputs(rec: dict, card) -> tuple[dict, dict[str, Samples], dict]:
    """(stats, samples, null) of a stored record as engine v4 reads them (module doc)."""
    samples = upgrade_samples(rec["claim_id"], rec.get("samples") or {}, rec.get("setup", {}))
    null = calibrate(card, samples)
    for cid, old in (rec.get("null_calibration") or {}).items():  # v3 rates were the claim's own nulls
        if cid in null and old.get("pass_rate") is not None and "claim_null_pass_rate" not in old:
            null[cid].update(claim_null_pass_rate=old["pass_rate"], claim_null_draws=old.get("draws"))
    return {**rec["statistics"]}, samples, null


def _card(rec: dict, path: Path, cards: dict):
    card = cards.get(rec["claim_id"])
    if card is None:
        raise ClaimbenchError(f"{path}: no card {rec['claim_id']}.yaml to re-judge it with; commit the card.")
    return card


def rejudge(path: Path, cards: dict) -> dict:
    """{'before', 'before_label', 'after': judge's output} for one metrics.json."""
    rec = json.loads(path.read_text())
    stats, samples, null = _inputs(rec, _card(rec, path, cards))
    return {"before": rec["verdict"], "before_label": rec.get("verdict_label", rec["verdict"]),
            "after": judge(_card(rec, path, cards), stats, samples, null)}


def rewrite(path: Path, cards: dict) -> dict:
    """Rewrite one metrics.json (and headline.json, tables) judged by the current engine and cards from its
    stored statistics and samples; provenance kept, with `rejudged` naming the commit and engine."""
    rec = json.loads(path.read_text())
    card = _card(rec, path, cards)
    stats, samples, null = _inputs(rec, card)
    for name, smp in samples.items():  # the estimate the checks read is the statistic's value (build_record)
        stats[name] = interval(smp).estimate
    stats, null = jsonable(stats), jsonable(null)
    samples_json = {name: smp.to_json() for name, smp in sorted(samples.items())}
    judged = judge(card, stats, samples_json, null)
    setup = jsonable(rec.get("setup", {}))
    old = {k: v for k, v in rec["provenance"].items() if k not in ("statistics_sha256", "published_sha256")}
    prov = {**old, "card_version": card.version, "engine_version": ENGINE_VERSION,
            "rejudged": {**git_state(), "from": "stored statistics and samples (python -m claimbench.rejudge "
                                                "--write); no artifacts on this machine",
                         "card_version_before": (rec["provenance"].get("rejudged") or {}).get(
                             "card_version_before", rec["provenance"].get("card_version"))},
            "statistics_sha256": statistics_digest(stats, samples_json, null)}
    prov["published_sha256"] = published_digest(setup, prov)
    record = {"claim_id": card.id, "title": card.title, "scale": rec["scale"], **verdict_keys(judged),
              "regime": judged["regime"], "criteria": jsonable(judged["criteria"]), "null_calibration": null,
              "samples": samples_json, "headline": jsonable(headline(card, stats, samples_json)),
              "statistics": stats, "setup": setup, "provenance": prov, "details": rec.get("details", {})}
    write_record(record, {}, path.parent)
    for csv in sorted((path.parent / "tables").glob("*.csv")):  # the .md/.tex in today's layout
        write_table(pd.read_csv(csv), csv.with_suffix(""))
    return record


def cards_at(rev: str, root: Path) -> dict:
    """The cards as committed at git revision `rev` (read with `git show`, parsed by today's parser)."""
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:src/claimbench/cards"], cwd=root,
                           capture_output=True, text=True)
    if names.returncode != 0:
        raise ClaimbenchError(f"--cards-rev {rev}: not a revision with src/claimbench/cards ({names.stderr.strip()})")
    folder = Path(tempfile.mkdtemp(prefix="cards-"))
    for name in names.stdout.split():
        if name.endswith(".yaml"):
            text = subprocess.run(["git", "show", f"{rev}:src/claimbench/cards/{name}"], cwd=root,
                                  capture_output=True, text=True, check=True).stdout
            (folder / name).write_text(text)
    return all_cards(folder)


def results_to_rejudge(root: Path) -> list[Path]:
    return sorted(p for p in (root / "results").glob("**/metrics.json")
                  if p.relative_to(root / "results").parts[0] != "ci")


def table(root: Path, cards: dict | None = None, title: str = "current cards") -> str:
    cards = cards or all_cards()
    versions = ", ".join(f"{cid} v{c.version}" for cid, c in sorted(cards.items()))
    lines = [f"## Judged by the {title} ({versions})", "",
             "| result | before (as committed) | after: verdict | after: label | possible outcomes | ignoring regime |",
             "|---|---|---|---|---|---|"]
    for path in results_to_rejudge(root):
        r = rejudge(path, cards)
        after = r["after"]
        ign = after["outcome_ignoring_regime"]
        ign_text = "–" if ign is None else (ign.get("outcome_range") or " or ".join(ign["possible_outcomes"]))
        lines.append(md_row(["/".join(path.relative_to(root / "results").parts[:-1]), r["before_label"],
                             after["verdict"], after["label"], " or ".join(after["possible_outcomes"]), ign_text]))
    return "\n".join(lines) + "\n"


def page(root: Path, revs: list[str]) -> str:
    head = ["# Re-judged with verdict engine v4", "",
            "Every committed result re-judged from its stored statistics and samples (`python -m "
            f"claimbench.rejudge{''.join(' --cards-rev ' + r for r in revs)}`): samples read as the kinds the "
            "analyses now declare, threshold nulls recomputed, the stored null rates kept as the claim's own null. "
            "*possible* = the outcomes the undecided criteria still allow; *ignoring regime* = the same with every "
            "criterion at its in-regime outcome.", ""]
    parts = [table(root, cards_at(rev, root), f"cards as committed at {rev}") for rev in revs]
    return "\n".join(head) + "\n" + "\n".join([*parts, table(root)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m claimbench.rejudge", description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=".", help="repository root whose results/ to re-judge")
    ap.add_argument("--out", default=None, help=f"where to write the table (default ROOT/{OUT})")
    ap.add_argument("--cards-rev", action="append", default=[], metavar="REV",
                    help="also judge by the cards committed at this git revision (repeatable)")
    ap.add_argument("--write", default=None, metavar="FOLDER",
                    help="rewrite every metrics.json under FOLDER with the current engine and cards instead")
    args = ap.parse_args(argv)
    root = Path(args.root)
    try:
        if args.write:
            for path in sorted(Path(args.write).glob("**/metrics.json")):
                rec = rewrite(path, all_cards())
                print(f"{path}: {rec['verdict_label']}")
            return 0
        text = page(root, args.cards_rev)
    except ClaimbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else root / OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
