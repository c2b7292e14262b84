"""Summarise the card-v5 pilots (docs/protocols-v5-proposal.md) from their finished run records into small
JSON files under results/pilots/<claim>/<id>.json. Reads run folders only (never trains).

  python -m claimbench.pilot.summary heavy_tail_phases /tmp/pilot-ht --id ht1 [--note TEXT]
  python -m claimbench.pilot.summary el2n_pruning /tmp/pilot-el2n16 /tmp/pilot-el2n16b --id el1 \\
      --fit results/pilots/el2n_pruning/fit_check.jsonl

A pilot root is a folder holding the pilot's params.yaml, whose runs were made there with
`python stages/<claim>.py train --scale quick --params params.yaml` (cwd = the root).
Heavy-tail: per run T = lr / batch size, lr-time t = lr · Σ_t lr_t / lr_0, train/test accuracy and the FC1/FC2
metrics and phase label of the claim's own analysis (analyse._spectra). EL2N: per replicate full-data test and
train accuracy (ensemble mean), EL2N/random/GraNd@init @50% test accuracy, E1 = EL2N − random and E2 = full −
EL2N (pp), their mean and SD, and per-statistic decide probabilities (claimbench.power) at several n.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from claimbench import power
from claimbench.stage import make_context
from claimbench.sweep import Record


def records(ctx) -> list[Record]:
    out = []
    for done in sorted(ctx.runs_dir.glob("*/done.json")):
        d = json.loads(done.read_text())
        out.append(Record(key=d["key"], label=done.parent.name, dir=done.parent, record=d["record"]))
    return out


def heavy_tail(ctx) -> dict:
    from claimbench.claims.heavy_tail_phases.analyse import _spectra

    cfg = ctx.cfg
    recs = records(ctx)
    per_run, pooled, _ = _spectra(recs, cfg.lr_decay)
    walls = {(r.key["batch_size"], r.key["seed"]): r["wall_s"] for r in recs}
    keep = ("train_acc", "test_acc", "steps", "lr_steps", "fc1_alpha", "fc1_D", "fc1_mp_softrank",
            "fc1_stable_rank", "fc1_num_spikes", "fc1_phase", "fc2_alpha", "fc2_mp_softrank", "fc2_phase")
    rows = []
    for row in per_run:
        bs = row["batch_size"]
        rows.append({"batch_size": bs, "seed": row["seed"], "T": cfg.lr / bs, "t": cfg.lr * row["lr_steps"],
                     **{k: _num(row[k]) for k in keep}, "wall_s": walls[(bs, row["seed"])]})
    pooled_rows = [{k: _num(v) for k, v in p.items() if k.split("_", 1)[-1] in
                    ("batch_size", "n_seeds", "alpha", "mp_softrank", "stable_rank", "phase", "num_spikes")
                    or k in ("batch_size", "n_seeds")} for p in pooled]
    return {"runs": sorted(rows, key=lambda r: (r["batch_size"], r["seed"])), "pooled": pooled_rows,
            "train_wall_s_summed": round(sum(walls.values()), 1)}


def el2n(ctxs, fit_lines: list[dict]) -> dict:
    """Replicates pooled over the pilot roots (each judged by its own Config's seeds)."""
    from claimbench.claims.el2n_pruning import by_replicate, of_kind, prune_seed

    reps, walls = [], {}
    for ctx in ctxs:
        cfg = ctx.cfg
        recs = records(ctx)
        for r, ensemble in enumerate(by_replicate(cfg, of_kind(recs, "score"))):
            seed = prune_seed(cfg, r)
            acc = {m: of_kind(recs, "prune", method=m, keep=0.5, seed=seed)[0]["test_acc"] for m in cfg.methods}
            full = statistics.fmean(e["test_acc"] for e in ensemble)
            reps.append({"seed_base": cfg.seed_base, "replicate": r, "score_seeds": [e.key["seed"] for e in ensemble],
                         "prune_seed": seed, "full_test_acc": full,
                         "full_train_acc": [e.record.get("train_acc") for e in ensemble],
                         **{f"{m}_pruned50": a for m, a in acc.items()},
                         "E1": acc["el2n"] - acc["random"], "E2": full - acc["el2n"]})
        for rec in recs:
            walls.setdefault(rec.key["kind"], []).append(_wall(rec))
    out = {"configs": [vars(c.cfg) for c in ctxs], "replicates": reps,
           "run_wall_s_min_max_sum": {k: [round(min(v), 1), round(max(v), 1), round(sum(v), 1)]
                                      for k, v in walls.items()},
           "fit_check": fit_lines}
    for name, checks in (("E1", [(">", 0.0)]), ("E2", [("<=", 0.5)])):
        vals = [rep[name] for rep in reps]
        mean = statistics.fmean(vals)
        sd = statistics.stdev(vals) if len(vals) > 1 else float("nan")
        out[name] = {"mean": mean, "sd": sd, "decide_at_n_level_0.9706": {
            n: power.decide_probabilities(mean, sd, n, checks, level=0.9706) for n in (4, 6, 10, 20)}}
    return out


def _wall(rec: Record) -> float:
    attempts = rec.dir / "attempts.jsonl"
    lines = [json.loads(line) for line in attempts.read_text().splitlines() if line.strip()]
    return float(lines[-1].get("wall_s", float("nan")))


def _num(v):
    try:
        return round(float(v), 4)
    except (TypeError, ValueError):
        return v


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("claim", choices=["heavy_tail_phases", "el2n_pruning"])
    ap.add_argument("roots", type=Path, nargs="+", help="pilot roots; el2n pools their replicates")
    ap.add_argument("--id", required=True, help="pilot id: names results/pilots/<claim>/<id>.json")
    ap.add_argument("--fit", type=Path, default=None, help="el2n: JSON lines of claimbench.pilot.el2n_fit")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", type=Path, default=Path("results/pilots"))
    args = ap.parse_args()
    ctxs = [make_context(args.claim, "quick", "params.yaml", root=root) for root in args.roots]
    if args.claim == "heavy_tail_phases":
        body = {"pilots": [{"config": vars(c.cfg), **heavy_tail(c)} for c in ctxs]}
    else:
        fit = [json.loads(line) for line in args.fit.read_text().splitlines()] if args.fit else []
        body = el2n(ctxs, fit)
    summary = {"claim": args.claim, "id": args.id, "note": args.note, **body}
    dest = args.out / args.claim / f"{args.id}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    print(dest)


if __name__ == "__main__":
    main()
