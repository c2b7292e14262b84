"""The front door: ``python -m claimbench <verb> [args]``; ``python -m claimbench --help`` lists the verbs.

Each verb is a module's ``main(argv) -> exit status``, loaded only when called (VERBS). The modules stay
runnable on their own (``python -m claimbench.report``), and DVC keeps calling ``stages/*.py``.
An unknown verb, or a verb whose module is not in this install, is one line on stderr and exit 2.
"""

from __future__ import annotations

import importlib
import sys

# verb -> (module:function called with the remaining arguments, one line of help)
VERBS: dict[str, tuple[str, str]] = {
    "run": ("claimbench.__main__:run_claim", "one claim's stage: run CLAIM {train,analyse,all} [--scale S]"),
    "report": ("claimbench.report:main", "results/claims.md, the claims tables and README's table (dvc repro report)"),
    "robustness": ("claimbench.robustness:main", "re-run every claim with a disjoint seed set, compare verdicts"),
    "suite": ("claimbench.suite:main", "every claim at one scale without DVC, several at a time, each timed"),
    "bench": ("claimbench.bench:main", "CPU training speed of every claim's model against the matmul ceiling"),
    "executor-bench": ("claimbench.executor_bench:main", "per-run overhead of the local and Ray executors"),
    "timed-run": ("claimbench.timed_run:main", "wall time of a whole-suite command, written with provenance"),
    "reference": ("claimbench.reference:main", "rerun ci and compare with (or refresh) the reference numbers"),
    "data": ("claimbench.data:main", "find or download the datasets (fetch [--offline] [--allow-missing])"),
    "dvcgen": ("claimbench.dvcgen:main", "write dvc.yaml from the claim registry (--check: is it current?)"),
    "docs": ("claimbench.facts:main", "write docs/measurements.md's measured facts (--check: are they current?)"),
    "probe": ("claimbench.gpu_probe:main", "what this machine's accelerator can do"),
}
PROG = "python -m claimbench"


def usage() -> str:
    width = max(map(len, VERBS))
    lines = [f"usage: {PROG} <verb> [args]   ({PROG} <verb> --help: the verb's options)", "",
             "Re-run published deep-learning claims and judge them against pre-registered cards.", "", "verbs:"]
    lines += [f"  {verb:<{width}}  {summary}" for verb, (_, summary) in VERBS.items()]
    return "\n".join(lines)


def load(verb: str):
    """The verb's function; ModuleNotFoundError if its module (or one it needs) is absent."""
    module, _, function = VERBS[verb][0].partition(":")
    return getattr(importlib.import_module(module), function)


def run_claim(argv: list[str]) -> int:
    """``run CLAIM {train,analyse,all} [--scale S] [--params P]``: claimbench.stage.main for that claim,
    what DVC runs as ``python stages/CLAIM.py``."""
    from claimbench.claims import claim_ids

    known = claim_ids()
    if argv and argv[0] in known:
        from claimbench.stage import main

        return main(argv[0], argv[1:])
    text = (f"usage: {PROG} run CLAIM {{train,analyse,all}} [--scale ci|quick|gpu|paper] [--params P]\n\n"
            "Train a claim's runs (resumable), analyse them (judge with the card, write results/<scale>/CLAIM/), "
            f"or both.\nCLAIM: {', '.join(known)}\n`{PROG} run CLAIM --help` gives the stage's options.")
    if argv and argv[0] in ("-h", "--help"):
        print(text)
        return 0
    what = f"unknown claim {argv[0]!r}" if argv else "no claim given"
    print(f"{PROG} run: {what}; known: {', '.join(known)}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"{PROG}: unknown verb {verb!r}; verbs: {', '.join(VERBS)} ({PROG} --help)", file=sys.stderr)
        return 2
    try:
        fn = load(verb)
    except ModuleNotFoundError as e:
        module = VERBS[verb][0].partition(":")[0]
        why = "is not in this install" if e.name == module else f"needs {e.name}, which is not installed"
        print(f"{PROG} {verb}: {module} {why}; see {PROG} --help", file=sys.stderr)
        return 2
    sys.argv = [f"{PROG} {verb}", *rest]  # modules that read sys.argv (timed-run) see their own arguments
    return fn(rest)


if __name__ == "__main__":  # spawned worker processes import this file as __mp_main__: they must not run it
    sys.exit(main())
