"""Issue 23's before/after at one scale: per-claim cost of two from-clean runs (engine knobs off and on), read from
their metrics.json provenance and timed_run records, written as one JSON record (what the docs quote).

    python -m claimbench.engine_compare BEFORE_ROOT AFTER_ROOT OUT.json [--scale quick]
        [--before-run quick-v5-from-clean] [--after-run quick-v5-engine-after]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from claimbench.atomic import write_text_atomic
from claimbench.claims import claim_ids
from claimbench.errors import ClaimbenchError

KNOBS = ("fused_optimizer", "channels_last")


def _side(root: Path, scale: str, cid: str) -> dict:
    path = root / "results" / scale / cid / "metrics.json"
    if not path.exists():
        raise ClaimbenchError(f"engine_compare: {path} not found; run the claim there first (dvc repro).")
    prov = json.loads(path.read_text())["provenance"]
    knobs = sorted({json.dumps({k: e.get(k) for k in KNOBS}, sort_keys=True) for e in prov["compute"].get("engine")
                    or []})
    return {"runs": prov["compute"]["runs"], "cpu_s": prov["compute"]["cpu_s"], "run_wall_s": prov["compute"]["wall_s"],
            "git_sha": prov["git_sha"], "engine": [json.loads(k) for k in knobs] or "off (engine block empty)"}


def compare(before: Path, after: Path, scale: str, before_run: str, after_run: str) -> dict:
    """{claims: {id: {before, after, cpu_ratio}}, suite wall seconds of both timed runs}."""
    claims = {}
    for cid in claim_ids():
        b, a = _side(before, scale, cid), _side(after, scale, cid)
        claims[cid] = {"before": b, "after": a, "cpu_ratio": round(b["cpu_s"] / a["cpu_s"], 3) if a["cpu_s"] else None}
    walls = {}
    for side, root, name in (("before", before, before_run), ("after", after, after_run)):
        rec = root / "results" / "suite_runs" / f"{name}.json"
        if not rec.exists():
            raise ClaimbenchError(f"engine_compare: {rec} not found; time the run with "
                                  f"`python -m claimbench timed-run`.")
        r = json.loads(rec.read_text())
        walls[side] = {"record": name, "wall_s": r["wall_s"], "from_clean": r["from_clean"],
                       "start_utc": r["start_utc"], "git_sha": r["git_sha"]}
    return {"scale": scale, "suite": walls, "claims": claims}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m claimbench.engine_compare", description=__doc__.split("\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--scale", default="quick")
    ap.add_argument("--before-run", default="quick-v5-from-clean")
    ap.add_argument("--after-run", default="quick-v5-engine-after")
    args = ap.parse_args(argv)
    try:
        out = compare(args.before, args.after, args.scale, args.before_run, args.after_run)
    except ClaimbenchError as e:
        print(str(e), file=sys.stderr)
        return 2
    write_text_atomic(args.out, json.dumps(out, indent=1) + "\n")
    s = out["suite"]
    print(f"suite wall {s['before']['wall_s']} s -> {s['after']['wall_s']} s; "
          + "; ".join(f"{cid} cpu ×{c['cpu_ratio']}" for cid, c in out["claims"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
