"""Neural collapse: summarise a card-v5 pilot root (issue 24) into a small JSON under results/pilots/.

    PYTHONPATH=src python -m claimbench.pilot.neural_collapse /tmp/pilot-neural_collapse-v5b --id nc_b \\
        [--note TEXT] [--out results/pilots/neural_collapse]

A pilot root holds the pilot's params.yaml (the claim's quick block set to the pilot's protocol) whose runs
were made there with `python stages/neural_collapse.py train --scale quick --params params.yaml`. Reads the
finished run folders only (never trains). Per run: the regime statistics of the card (train accuracy at the
end of the full-lr phase and at the end, lr x wd x full-lr steps), N1's per-run ratios (NC1 and NC3 over
their first-epoch values, NC2 over a random classifier's at the run's feature dimension), test accuracy and
the run's wall time; per seed at each width, N1's worst-loss ratios and N2's differences from CE.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from claimbench.claims.neural_collapse import REFERENCE_LOSS, phase_epochs, wd_time
from claimbench.claims.neural_collapse.null import random_nc2_mean
from claimbench.collapse_losses import LOSS_NAMES
from claimbench.stage import make_context

NUM_CLASSES = 10
BASE_WIDTH_DIM = 512  # ResNet-18's feature dimension at width 1


def _num(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else round(x, 5)


def run_row(rec: dict, epochs: int, nc2_random: float) -> dict:
    """One run's pilot row from its record (train.run_one's return value)."""
    hist = {h["epoch"]: h for h in rec["history"]}
    first, decay = hist[min(hist)], hist.get(phase_epochs(epochs)["decay"], {})
    final = rec["final"]
    return {"variant": rec["variant"], "width": rec["width"], "seed": rec["seed"],
            "train_acc_at_decay_pct": _num(100 * decay.get("train_acc", math.nan)),
            "train_acc_final_pct": _num(100 * final["train_acc"]),
            "nc1": _num(final["nc1"]), "nc2": _num(final["nc2"]), "nc3": _num(final["nc3"]),
            "nc1_ratio": _num(final["nc1"] / first["nc1"]), "nc2_over_random": _num(final["nc2"] / nc2_random),
            "nc3_ratio": _num(final["nc3"] / first["nc3"]), "test_acc_pct": _num(100 * rec["test_acc"]),
            "wall_s": rec["wall_s"]}


def per_seed(rows: list[dict]) -> list[dict]:
    """Per (width, seed) with all four losses: N1's worst-loss ratios and N2's differences (points)."""
    out = []
    for w, s in sorted({(r["width"], r["seed"]) for r in rows}):
        by = {r["variant"]: r for r in rows if r["width"] == w and r["seed"] == s}
        if not set(LOSS_NAMES) <= set(by):
            continue
        row = {"width": w, "seed": s}
        for m in ("nc1_ratio", "nc2_over_random", "nc3_ratio"):
            row[f"{m}_worst_loss"] = max(by[v][m] for v in LOSS_NAMES)
        for v in LOSS_NAMES:
            if v != REFERENCE_LOSS:
                diff = by[v]["test_acc_pct"] - by[REFERENCE_LOSS]["test_acc_pct"]
                row[f"acc_diff_{v}_{REFERENCE_LOSS}_pp"] = round(diff, 3)
        row["train_acc_final_min_pct"] = min(by[v]["train_acc_final_pct"] for v in LOSS_NAMES)
        row["train_acc_at_decay_min_pct"] = min(by[v]["train_acc_at_decay_pct"] for v in LOSS_NAMES)
        out.append(row)
    return out


def summarise(root: Path) -> dict:
    ctx = make_context("neural_collapse", "quick", "params.yaml", root=root)
    cfg = ctx.cfg
    rows = []
    for done in sorted(ctx.runs_dir.glob("*/done.json")):
        rec = json.loads(done.read_text())["record"]
        d = round(BASE_WIDTH_DIM * rec["width"])
        rows.append(run_row(rec, cfg.epochs, random_nc2_mean(NUM_CLASSES, d)))
    order = {v: i for i, v in enumerate(LOSS_NAMES)}
    rows.sort(key=lambda r: (r["width"], r["seed"], order.get(r["variant"], len(order))))
    protocol = {k: getattr(cfg, k) for k in ("train_per_class", "widths", "stem_stride", "epochs", "batch_size", "lr",
                                             "weight_decay", "loss_reduction", "grad_clip", "seeds")}
    return {"protocol": protocol, "wd_time_full_lr": round(wd_time(cfg), 4), "runs": rows, "per_seed": per_seed(rows),
            "train_wall_s_summed": round(sum(r["wall_s"] for r in rows), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--id", required=True)
    ap.add_argument("--note", default="")
    ap.add_argument("--out", type=Path, default=Path("results/pilots/neural_collapse"))
    args = ap.parse_args(argv)
    out = {"id": args.id, "note": args.note, **summarise(args.root.resolve())}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.id}.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["per_seed"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
