"""Replication of the replication: re-run every claim with a disjoint seed set and compare verdicts.

    python -m claimbench robustness                      # params.yaml's scale, seed set 1, all claims
    python -m claimbench robustness --scale quick --claims el2n_pruning neural_collapse
    python -m claimbench robustness --no-train           # only rewrite the page from existing results

Seed set k swaps each claim's replicate seeds for disjoint ones (the claim's `with_seed_set(cfg, k)`;
convention: +1000·k) and keeps data subsets fixed. Runs go to artifacts/<scale>/seedset<k>/<id>/
(resumable like any sweep), results to results/<scale>/seedset<k>/<id>/metrics.json (no figures), and
the comparison to results/<scale>/robustness.md.

The page follows each card's pre-registered sequential design (`pooling:`, card v4): both sets are
re-judged from their recorded statistics at look 1's interval level; where look 1 (seed set 0) is
inconclusive because a criterion is underpowered, the pooled verdict of both sets (replicates
concatenated; bootstrap statistics averaged draw by draw; regime and exact statistics at the less
favourable of the two; null pass rates the larger) at look 2's level is the claim's verdict. A *conflict*
is a real disagreement between the sets, not "one decided, one undecided": a gating statistic whose
values differ (Welch t-test on replicates, a z-test on bootstrap estimates — Cochran's Q for two sets —
p < 0.05), or a criterion that passes in one set and fails in the other. Conflicts are printed and kept.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats as st

from claimbench import claims as claim_registry
from claimbench.atomic import write_text_atomic
from claimbench.cards import FAIL, INCONCLUSIVE, NULL_MAX_PASS_RATE, PASS, UNDERPOWERED, Card, all_cards, verdict_label
from claimbench.contract import seed_offset
from claimbench.errors import ClaimbenchError
from claimbench.intervals import Samples
from claimbench.report import fmt, md_row, outcome_symbol
from claimbench.results import read_result
from claimbench.stage import make_context, report_failure, run_analyse, run_train
from claimbench.verdict import judge

PAGE = "robustness.md"
HETEROGENEITY_P = 0.05


def _samples(rec: dict) -> dict[str, Samples]:
    return {k: Samples.from_json(v) for k, v in (rec.get("samples") or {}).items()}


def _null(rec: dict) -> dict[str, dict]:
    """criterion id -> the record's stored threshold-null calibration (with its upper bound when recorded)."""
    return {c["id"]: {"pass_rate": c["null_pass_rate"], "draws": c.get("null_draws", 0),
                      **({"pass_upper": c["null_pass_upper"]} if c.get("null_pass_upper") is not None else {}),
                      **({"ceiling": c["null_ceiling"]} if c.get("null_ceiling") is not None else {})}
            for c in rec.get("criteria", []) if c.get("null_pass_rate") is not None}


def _point_directions(card: Card) -> dict[str, str]:
    """statistic -> the first op of a regime or exact check on it (judged as a point)."""
    out: dict[str, str] = {}
    for p in card.regime:
        for ch in p.checks:
            out.setdefault(ch.statistic, ch.op)
    for c in card.criteria:
        for ch in c.checks:
            if ch.exact:
                out.setdefault(ch.statistic, ch.op)
    return out


def pool(card: Card, a: dict, b: dict) -> tuple[dict, dict[str, Samples], dict]:
    """(stats, samples, null) of two seed sets' records judged together (module doc)."""
    stats = dict(a.get("statistics") or {})
    for name, op in _point_directions(card).items():
        va, vb = stats.get(name), (b.get("statistics") or {}).get(name)
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)):
            vals = [float(va), float(vb)]
            stats[name] = (float("nan") if any(math.isnan(v) for v in vals)
                           else min(vals) if op in (">", ">=") else max(vals) if op in ("<", "<=") else va)
    sa, sb = _samples(a), _samples(b)
    samples = {}
    for name in sa.keys() & sb.keys():
        x, y = sa[name], sb[name]
        if x.kind == y.kind and x.kind in ("replicates", "ratios", "labels"):
            samples[name] = Samples(x.kind, x.values + y.values)
        elif x.kind == y.kind == "correlations" and x.points == y.points:
            samples[name] = Samples("correlations", x.values + y.values, points=x.points)
        elif x.kind == y.kind == "bootstrap":
            m = min(len(x.values), len(y.values))
            draws = tuple((u + v) / 2 for u, v in zip(x.values[:m], y.values[:m]))
            samples[name] = Samples("bootstrap", draws, (x.estimate + y.estimate) / 2)
    na, nb = _null(a), _null(b)
    null = {c: max((na.get(c), nb.get(c)), key=lambda d: -1 if d is None else
                   d.get("pass_upper", d["pass_rate"]) - d.get("ceiling", NULL_MAX_PASS_RATE))
            for c in na.keys() | nb.keys()}  # the worse set's calibration, by its margin to its own ceiling
    return stats, samples, null


def heterogeneity(x: Samples, y: Samples) -> float | None:
    """Two-sided p-value that two seed sets' values of one statistic share a mean: Welch's t-test on
    replicates, a z-test on the difference of bootstrap estimates (SE = the draws' SD; Cochran's Q for two
    sets); None when either is undefined."""
    if x.kind == y.kind and x.kind in ("replicates", "ratios", "correlations", "labels"):
        u, v = np.asarray(x.values, dtype=float), np.asarray(y.values, dtype=float)
        if len(u) < 2 or len(v) < 2 or not (np.isfinite(u).all() and np.isfinite(v).all()):
            return None
        if u.std() == 0 and v.std() == 0:
            return 1.0 if u.mean() == v.mean() else 0.0
        return float(st.ttest_ind(u, v, equal_var=False).pvalue)
    if x.kind == y.kind == "bootstrap":
        se = math.hypot(float(np.nanstd(x.values, ddof=1)), float(np.nanstd(y.values, ddof=1)))
        if not (math.isfinite(se) and se > 0 and math.isfinite(x.estimate) and math.isfinite(y.estimate)):
            return None
        return float(2 * st.norm.sf(abs(x.estimate - y.estimate) / se))
    return None


def compare(card: Card, a: dict, b: dict) -> dict:
    """Both sets at look 1's level, their pooled verdict at look 2's, the design's verdict and any conflict."""
    va = judge(card, a.get("statistics") or {}, _samples(a), _null(a), level=card.look_level(0))
    vb = judge(card, b.get("statistics") or {}, _samples(b), _null(b), level=card.look_level(0))
    vp = judge(card, *pool(card, a, b), level=card.look_level(1))
    second = va["verdict"] == INCONCLUSIVE and va["reason_kind"] == UNDERPOWERED
    design = vp if second else va
    gating = {ch.statistic for c in card.criteria if c.gating for ch in c.checks}
    sa, sb = _samples(a), _samples(b)
    pvals = {name: heterogeneity(sa[name], sb[name]) for name in sorted(gating & sa.keys() & sb.keys())}
    oa = {c["id"]: c["outcome"] for c in va["criteria"] if c["gating"]}
    ob = {c["id"]: c["outcome"] for c in vb["criteria"] if c["gating"]}
    flips = [c for c in oa if {oa[c], ob.get(c)} == {PASS, FAIL}]
    hetero = [n for n, p in pvals.items() if p is not None and p < HETEROGENEITY_P]
    return {"a": va, "b": vb, "pooled": vp, "second_look": second, "design": design, "pvalues": pvals,
            "flips": flips, "heterogeneous": hetero, "conflict": bool(flips or hetero)}


def _label(v: dict) -> str:
    """The engine's label (v4: with the outcome range), else the v3 form."""
    return v.get("label") or verdict_label(v["verdict"], v["reason_kind"])


def _checks(v: dict) -> str:
    return " ".join(f"{c['id']}{outcome_symbol(c)}" + ("" if c["gating"] else "*") for c in v["criteria"])


def page(root: Path, scale: str, k: int, cards: dict[str, Card] | None = None) -> tuple[str, list[str]]:
    """(robustness.md text, claims whose seed sets conflict)."""
    cards = all_cards() if cards is None else cards
    results = root / "results" / scale
    lines = [f"<!-- Generated by `python -m claimbench.robustness --scale {scale} --seed-set {k}`; do not edit. -->",
             f"# Robustness at `{scale}`: two disjoint seed sets and their pooled verdict", "",
             f"Seed set 0 is the judged run (results/{scale}/<claim>/); seed set {k} re-runs every claim with "
             f"disjoint replicate seeds (each claim's `with_seed_set`, +{seed_offset(k)}) and the same data, code "
             f"and card (results/{scale}/seedset{k}/<claim>/). Each set is re-judged under the current card at "
             f"look 1's interval level; *pooled* judges both sets' replicates together at look 2's level; "
             f"*design verdict* follows the card's pre-registered rule (`pooling:`): look 1 (set 0) unless it is "
             f"inconclusive as underpowered, then the pooled verdict. *Conflict* flags a real disagreement only: "
             f"a gating statistic whose values differ between the sets (Welch t / Cochran's Q, p < "
             f"{HETEROGENEITY_P}) or a criterion passing in one set and failing in the other; one set decided "
             f"and the other undecided is no conflict. ✓ pass, ✗ fail, ? undecided, * reported only.", "",
             f"| claim | seed set 0 | seed set {k} | pooled | design verdict | conflict | checks (0) | checks ({k}) "
             f"| checks (pooled) |",
             "|---|---|---|---|---|---|---|---|---|"]
    conflicts = []
    detail = ["", "Heterogeneity (two-sided p that both sets share each gating statistic's mean), headlines "
              "(estimate [95% interval]) and seeds:", ""]
    for cid in claim_registry.claim_ids():
        pa, pb = results / cid / "metrics.json", results / f"seedset{k}" / cid / "metrics.json"
        a = read_result(pa) if pa.exists() else None
        b = read_result(pb) if pb.exists() else None
        card = cards.get(cid)
        if a is None or b is None or card is None:
            row = [cid, _recorded(a), _recorded(b), "–", _recorded(a), "–", _rec_checks(a), _rec_checks(b), "–"]
        else:
            cmp = compare(card, a, b)
            conflict = "–"
            if cmp["conflict"]:
                conflicts.append(cid)
                why = [f"{s} p = {cmp['pvalues'][s]:.3g}" for s in cmp["heterogeneous"]]
                why += [f"{c} passes in one set, fails in the other" for c in cmp["flips"]]
                conflict = "**yes**: " + "; ".join(why)
            else:
                conflict = "no"
            design = _label(cmp["design"]) + (" (pooled, look 2)" if cmp["second_look"] else " (look 1)")
            if any(_before_design(rec, card) for rec in (a, b)):
                design += "; post hoc: a set ran before its card registered this design"
            row = [cid, _label(cmp["a"]), _label(cmp["b"]), _label(cmp["pooled"]), design, conflict,
                   _checks(cmp["a"]), _checks(cmp["b"]), _checks(cmp["pooled"])]
            ps = ", ".join(f"`{n}` {p:.3g}" if p is not None else f"`{n}` –" for n, p in cmp["pvalues"].items())
            detail.append(f"- `{cid}` heterogeneity: {ps or 'no statistic with samples in both sets'}")
        lines.append(md_row(row))
        for tag, rec in (("0", a), (str(k), b)):
            if rec:
                s = _summary_of(rec)
                detail.append(f"- `{cid}` seed set {tag} (seeds {s['seeds']}, git {s['git']}): {s['headline']}")
    return "\n".join(lines + detail) + "\n", conflicts


def _before_design(rec: dict, card: Card) -> bool:
    """True when the record's runs were made under a card version before the current one (re-judged later),
    so the current card's seed-set design was not registered when they ran."""
    prov = rec.get("provenance") or {}
    made_under = (prov.get("rejudged") or {}).get("card_version_before", prov.get("card_version"))
    return made_under is not None and int(made_under) < card.version


def _recorded(rec: dict | None) -> str:
    return rec.get("verdict_label", rec["verdict"]) if rec else "not run"


def _rec_checks(rec: dict | None) -> str:
    return " ".join(f"{c['id']}{outcome_symbol(c)}" + ("" if c["gating"] else "*") for c in rec["criteria"]) \
        if rec else "–"


def _summary_of(rec: dict) -> dict:
    head = rec["headline"]
    iv = head.get("interval")
    value = fmt(head["value"]) + (f" [{fmt(iv[0])}, {fmt(iv[1])}]" if iv else "")
    return {"seeds": rec["provenance"]["seeds"], "git": (rec["provenance"].get("git_sha") or "?")[:10],
            "headline": f"{head['label']}: {value}"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m claimbench robustness", description=__doc__.split("\n")[0])
    ap.add_argument("--scale", default=None, help="ci | quick | long | gpu | paper (default: params.yaml's)")
    ap.add_argument("--seed-set", type=int, default=1, help="k ≥ 1: seeds +1000·k (default 1)")
    ap.add_argument("--claims", nargs="*", default=None,
                    help=f"claim ids (default: all, in order: {', '.join(claim_registry.claim_ids())})")
    ap.add_argument("--no-train", action="store_true", help="only rewrite robustness.md from existing results")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    root = Path.cwd().resolve()
    ctx = None
    try:
        if args.seed_set < 1:
            raise ClaimbenchError(f"--seed-set {args.seed_set}: must be ≥ 1 (0 is the judged run, `dvc repro`).")
        ids = claim_registry.choose(args.claims)
        scale, ctx = args.scale, None
        t0 = time.time()
        for cid in ids if not args.no_train else []:
            ctx = make_context(cid, scale, args.params, root, seed_set=args.seed_set)
            scale = ctx.scale
            entry = claim_registry.registry()[cid]
            run_train(ctx, entry)
            run_analyse(ctx, entry, figures=False)
        scale = scale or claim_registry.load_params(root / args.params, None).scale
        text, differ = page(root, scale, args.seed_set)
        out = root / "results" / scale / PAGE
        write_text_atomic(out, text)
    except (ClaimbenchError, OSError, KeyboardInterrupt) as e:
        if (code := report_failure(e, ctx)) is None:
            raise
        return code
    print(f"wrote {out} ({time.time() - t0:.0f} s)"
          + (f"; seed sets conflict for {', '.join(differ)}" if differ else "; no seed sets conflict"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
