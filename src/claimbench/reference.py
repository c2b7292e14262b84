"""Reference values of the `ci` scale, compared by the test suite on every change.

    python -m claimbench reference run       # run every claim at ci in this process; compare; exit 1 if moved
    python -m claimbench reference refresh   # the same, then rewrite the reference and print what moved

The reference (tests/reference/ci_statistics.json) holds, per claim, the verdict and every statistic of
its ci run. ci runs in float64 (claimbench.numerics), so its numbers do not depend on the CPU's kernel
path (avx2 / avx512) or thread count; the tolerance policy is in tests/reference/README.md:
continuous statistics (floats) agree to REL_TOL, discrete ones (integers, booleans, strings, verdicts,
missing values) exactly. Refresh deliberately, after a change meant to move numbers, and commit the
printed diff with it. The quick scale's numbers are tracked by DVC instead (`dvc metrics diff`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

REFERENCE = Path("tests") / "reference" / "ci_statistics.json"
# Measured spread between avx2/avx512 kernels and 1/2 threads in float64 is below 1e-9 relative
# (tests/reference/README.md); the tolerance leaves three orders of magnitude of headroom and is still
# six orders below any change a code edit makes.
REL_TOL, ABS_TOL = 1e-6, 1e-9


def collect(results_dir: Path) -> dict:
    """claim_id -> {'verdict', 'statistics'} from results/ci/<claim_id>/metrics.json."""
    out = {}
    for path in sorted(Path(results_dir).glob("*/metrics.json")):
        rec = json.loads(path.read_text())
        out[rec["claim_id"]] = {"verdict": rec["verdict"], "statistics": rec["statistics"]}
    return out


def is_continuous(v) -> bool:
    """Floats are continuous statistics (compared with tolerance); ints, bools, strings, None are discrete."""
    return isinstance(v, float)


def close(a, b) -> bool:
    """Reference value a vs measured b under the tolerance policy."""
    if is_continuous(a) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return type(a) is type(b) and a == b


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
                rule = f"tolerance rel {REL_TOL}, abs {ABS_TOL}" if is_continuous(a) else "discrete: exact"
                problems.append(f"{cid}: statistic {name} = {b!r}, reference {a!r} ({rule})")
    return problems


def run_all(root: Path, claims: list[str] | None = None) -> dict:
    """Run every claim (or `claims`) at ci in this process (one import of torch and the claims), in
    `root`; returns collect() of root/results/ci. Raises SystemExit(2) naming a claim that failed."""
    from claimbench.claims import registry
    from claimbench.stage import main as stage_main

    before = Path.cwd()
    os.chdir(root)
    try:
        for cid in claims or list(registry()):
            print(f"running {cid} at ci …", flush=True)
            if stage_main(cid, ["all", "--scale", "ci"]) != 0:
                raise SystemExit(2)
    finally:
        os.chdir(before)
    return collect(Path(root) / "results" / "ci")


def main(argv: list[str] | None = None) -> int:
    import argparse

    from claimbench.numerics import kernel_path

    ap = argparse.ArgumentParser(prog="python -m claimbench reference", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["run", "refresh"],
                    help="run: rerun ci and compare with the reference; refresh: rerun ci and rewrite it")
    ap.add_argument("--root", default=".", help="repository root to run in (default: the current folder)")
    ap.add_argument("--claims", nargs="+", default=None, help="run and compare only these claims (run only)")
    args = ap.parse_args(argv)
    if args.claims and args.command == "refresh":
        ap.error("refresh rewrites the whole reference: run it without --claims")
    root = Path(args.root).resolve()
    import torch

    print(f"ci on kernels {kernel_path()}, {torch.get_num_threads()} threads", flush=True)
    measured = run_all(root, args.claims)
    path = root / REFERENCE
    old = json.loads(path.read_text()) if path.exists() else {}
    if args.claims:
        old = {cid: old[cid] for cid in args.claims if cid in old}
        measured = {cid: measured[cid] for cid in args.claims if cid in measured}
    changes = compare(old, measured)
    if args.command == "run":
        print("\n".join(changes) if changes else "ci numbers match the reference")
        return 1 if changes else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(measured, indent=2, sort_keys=True) + "\n")
    print("\n".join(changes) if changes else "no change against the previous reference")
    print(f"wrote {path}; commit it together with the change that moved these numbers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
