"""Per-verdict power of a proposed EL2N protocol from a pilot's own replicates (card v5 proposal,
docs/protocols-v5-proposal.md): claimbench.power.verdict_power under the current card (v4 criteria and
pooling levels), regime R1 met, each gating statistic drawn from a normal (independent) with an SD: the
pilot's replicate SD, or the larger of it and the card's `power.statistics` SD (conservative). Resampling a
3-replicate pilot's rows would understate the spread, so rows are not used. Two expectations: the pilot's
own means, and the paper's "no loss" (E2 = 0) with the rest at the pilot's means.

  python -m claimbench.pilot.power /tmp/pilot-el2n16 --id el1 --n 4 6 10
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from claimbench import power
from claimbench.cards import load_card
from claimbench.stage import make_context

CLAIM = "el2n_pruning"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path, help="pilot root after `stages/el2n_pruning.py analyse` ran there")
    ap.add_argument("--id", required=True)
    ap.add_argument("--n", type=int, nargs="+", default=[4, 6, 10])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("results/pilots"))
    args = ap.parse_args()
    ctx = make_context(CLAIM, "quick", "params.yaml", root=args.root)
    samples = json.loads((ctx.results_dir / "metrics.json").read_text())["samples"]
    card = load_card(CLAIM)
    names = sorted(power.gating_checks(card))
    rows = {"statistics": names, "values": [list(v) for v in zip(*(samples[s]["values"] for s in names))]}
    means = {s: statistics.fmean(samples[s]["values"]) for s in names}
    levels = (card.raw.get("pooling") or {}).get("levels") or [card.look_level(0)]
    pilot_sd = {s: statistics.stdev(samples[s]["values"]) for s in names}
    card_sd = {e["statistic"]: float(e["sd"]) for e in (card.raw.get("power") or {}).get("statistics", [])
               if "sd" in e}
    sds = {"pilot_sd": pilot_sd, "max_pilot_card_sd": {s: max(pilot_sd[s], card_sd.get(s, 0.0)) for s in names}}
    out = {"claim": CLAIM, "id": args.id, "card_version": card.raw.get("version"), "levels": levels,
           "rows": rows, "pilot_means": means, "sds": sds, "power": {}}
    for sd_label, sd in sds.items():
        normal = {"method": "replicates", "sd": sd, "correlation": []}
        for label, expected in (("pilot_means", means),
                                ("paper_E2_no_loss", {**means, "full_minus_el2n_pruned50": 0.0})):
            out["power"][f"{sd_label}/{label}"] = {
                n: power.verdict_power(card, None, n, expected, normal=normal, regime={"R1": "met"}, levels=levels,
                                       draws=args.draws, seed=0) for n in args.n}
    dest = args.out / CLAIM / f"{args.id}_power.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(dest)
    print(json.dumps(out["power"], indent=1))


if __name__ == "__main__":
    main()
