"""Reference values of the `ci` scale, compared by the test suite on every change.

    python -m claimbench.reference refresh   # rerun every claim at ci, rewrite the reference, show the diff

The reference (tests/reference/ci_statistics.json) holds, per claim, the verdict and every statistic
of its ci run. The ci runs are deterministic on CPU, so tolerances are tight. Refresh deliberately,
after a change that is meant to move numbers, and commit the printed diff with it. The quick scale's
numbers are tracked by DVC instead: `dvc repro && dvc metrics diff` shows what moved.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REFERENCE = Path("tests") / "reference" / "ci_statistics.json"
REL_TOL, ABS_TOL = 1e-4, 1e-6


def collect(results_dir: Path) -> dict:
    """claim_id -> {'verdict', 'statistics'} from results/ci/<claim_id>/metrics.json."""
    out = {}
    for path in sorted(results_dir.glob("*/metrics.json")):
        rec = json.loads(path.read_text())
        out[rec["claim_id"]] = {"verdict": rec["verdict"], "statistics": rec["statistics"]}
    return out


def close(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return a == b


def compare(reference: dict, measured: dict) -> list[str]:
    """One line per disagreement: which claim, which number, reference vs measured."""
    problems = []
    for cid in sorted(set(reference) | set(measured)):
        if cid not in measured:
            problems.append(f"{cid}: in the reference but produced no ci result")
            continue
        if cid not in reference:
            problems.append(f"{cid}: ci result has no reference; run `python -m claimbench.reference refresh`")
            continue
        ref, got = reference[cid], measured[cid]
        if ref["verdict"] != got["verdict"]:
            problems.append(f"{cid}: verdict {got['verdict']!r} != reference {ref['verdict']!r}")
        for name in sorted(set(ref["statistics"]) | set(got["statistics"])):
            a, b = ref["statistics"].get(name, "<absent>"), got["statistics"].get(name, "<absent>")
            if not close(a, b):
                problems.append(f"{cid}: statistic {name} = {b!r}, reference {a!r} "
                                f"(tolerance rel {REL_TOL}, abs {ABS_TOL})")
    return problems


def refresh(root: Path) -> int:
    from claimbench.claims import claim_modules

    for cid in claim_modules():
        print(f"running {cid} at ci …", flush=True)
        subprocess.run([sys.executable, f"stages/{cid}.py", "all", "--scale", "ci"], cwd=root, check=True)
    measured = collect(root / "results" / "ci")
    path = root / REFERENCE
    old = json.loads(path.read_text()) if path.exists() else {}
    changes = compare(old, measured)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(measured, indent=2, sort_keys=True) + "\n")
    print("\n".join(changes) if changes else "no change against the previous reference")
    print(f"wrote {path}; commit it together with the change that moved these numbers")
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m claimbench.reference")
    ap.add_argument("command", choices=["refresh"])
    ap.parse_args(argv)
    return refresh(Path.cwd())


if __name__ == "__main__":
    raise SystemExit(main())
