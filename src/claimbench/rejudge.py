"""Re-judge committed results with the v4 verdict engine, from what each metrics.json stores (issue 22).

    python -m claimbench.rejudge [--root .] [--out results/rejudge_v4.md]

For every results/<scale>/[seedset<k>/]<claim>/metrics.json (scale ci excluded) the stored samples are read
as the Samples kind the claim's analysis now declares (`upgrade_samples`: rank correlations with their
points, labels, ratios; a bootstrap without stored jackknife stays percentile), the threshold null is
recomputed from them, the stored (v3) null rates are kept as the claim's own null, and the card judges again.
The table gives, per result, the stored verdict and the v4 verdict, its label, its outcome range and its
outcome ignoring the regime. It writes only the table: re-running the analyse stages re-judges the results
themselves (`python stages/<id>.py analyse`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from claimbench.cards import all_cards
from claimbench.claims.activation_sparsity.nulls import replicate_samples
from claimbench.claims.heavy_tail_phases.analyse import seed_samples
from claimbench.errors import ClaimbenchError
from claimbench.intervals import Samples, as_samples, correlations, ratios
from claimbench.report import md_row
from claimbench.verdict import calibrate, judge

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


def rejudge(path: Path, cards: dict) -> dict:
    """{'before', 'before_label', 'after': judge's output} for one metrics.json."""
    rec = json.loads(path.read_text())
    card = cards.get(rec["claim_id"])
    if card is None:
        raise ClaimbenchError(f"{path}: no card {rec['claim_id']}.yaml to re-judge it with; commit the card.")
    samples = upgrade_samples(rec["claim_id"], rec.get("samples") or {}, rec.get("setup", {}))
    null = calibrate(card, samples)
    for cid, old in (rec.get("null_calibration") or {}).items():  # v3 rates were the claim's own nulls
        if cid in null and old.get("pass_rate") is not None and "claim_null_pass_rate" not in old:
            null[cid].update(claim_null_pass_rate=old["pass_rate"], claim_null_draws=old.get("draws"))
    stats = {**rec["statistics"]}
    return {"before": rec["verdict"], "before_label": rec.get("verdict_label", rec["verdict"]),
            "after": judge(card, stats, {k: s for k, s in samples.items()}, null)}


def results_to_rejudge(root: Path) -> list[Path]:
    return sorted(p for p in (root / "results").glob("**/metrics.json")
                  if p.relative_to(root / "results").parts[0] != "ci")


def table(root: Path, cards: dict | None = None) -> str:
    cards = cards or all_cards()
    lines = ["# Re-judged with verdict engine v4", "",
             "Every committed result re-judged from its stored statistics and samples (`python -m "
             "claimbench.rejudge`): samples read as the kinds the analyses now declare, threshold nulls "
             "recomputed, the stored null rates kept as the claim's own null. *possible* = the outcomes the "
             "undecided criteria still allow; *ignoring regime* = the same with every criterion at its in-regime "
             "outcome.", "",
             "| result | before (v3) | after: verdict | after: label | possible outcomes | ignoring regime |",
             "|---|---|---|---|---|---|"]
    for path in results_to_rejudge(root):
        r = rejudge(path, cards)
        after = r["after"]
        ign = after["outcome_ignoring_regime"]
        ign_text = "–" if ign is None else (ign.get("outcome_range") or " or ".join(ign["possible_outcomes"]))
        lines.append(md_row(["/".join(path.relative_to(root / "results").parts[:-1]), r["before_label"],
                             after["verdict"], after["label"], " or ".join(after["possible_outcomes"]), ign_text]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m claimbench.rejudge", description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=".", help="repository root whose results/ to re-judge")
    ap.add_argument("--out", default=None, help=f"where to write the table (default ROOT/{OUT})")
    args = ap.parse_args(argv)
    root = Path(args.root)
    try:
        text = table(root)
    except ClaimbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else root / OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
