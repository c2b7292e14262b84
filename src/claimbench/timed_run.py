"""Wall time of a whole-suite command, with provenance: ``python -m claimbench timed-run NAME -- CMD ...``.

Runs CMD (e.g. ``dvc repro``, ``python -m pytest -q`` or ``python -m claimbench robustness``) in the
repository root and writes ``results/suite_runs/NAME.json``: the command, its exit status, start/end (UTC),
wall seconds, the finished runs each folder of artifacts/<scale>/ held at start and end (``from_clean``:
none at start), the git commit and whether tracked code was dirty, the executor settings, and the machine
(CPU model, kernels, cores). ``python -m claimbench docs`` puts every such record in docs/measurements.md.
Issue 15's budget (`quick` ≤ 30 min from clean on a 2-core CPU) is read from these files, not typed in.
Exit status: CMD's; a bad call is one line on stderr and status 2.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from claimbench.atomic import write_text_atomic
from claimbench.claims import load_params
from claimbench.numerics import machine_facts
from claimbench.results import git_state
from claimbench.sweep import DONE

OUT_DIR = Path("results") / "suite_runs"


def finished_runs(artifacts: Path) -> dict[str, int]:
    """Finished runs (DONE markers) under each sub-folder of `artifacts`: a claim, or a seed set's folder."""
    if not artifacts.exists():
        return {}
    return {d.name: sum(1 for _ in d.rglob(DONE)) for d in sorted(artifacts.iterdir()) if d.is_dir()}


def command_scale(cmd: list[str]) -> str | None:
    """The scale CMD runs at when it says (`--scale S` or `--scale=S`, e.g. `suite --scale long`), else None:
    params.yaml's (or $CLAIMBENCH_SCALE), which is what `dvc repro` runs."""
    for i, arg in enumerate(cmd):
        if arg == "--scale" and i + 1 < len(cmd):
            return cmd[i + 1]
        if arg.startswith("--scale="):
            return arg.split("=", 1)[1]
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print("usage: python -m claimbench timed-run NAME -- CMD [ARGS...]\n\n" + __doc__.split("\n", 2)[2].strip())
        return 0
    if len(argv) < 3 or argv[1] != "--" or not argv[0].replace("-", "").replace("_", "").isalnum():
        print("timed-run: usage: python -m claimbench timed-run NAME -- CMD [ARGS...] (NAME: letters, digits, - _)",
              file=sys.stderr)
        return 2
    name, cmd = argv[0], argv[2:]
    scale = command_scale(cmd)
    params = load_params("params.yaml", scale)
    artifacts = Path("artifacts") / params.scale
    before = finished_runs(artifacts)
    start, t0 = dt.datetime.now(dt.UTC), time.time()
    try:
        rc = subprocess.call(cmd)
    except KeyboardInterrupt:  # CMD got Ctrl-C too and said its own line; an interrupted run is no timing
        print(f"timed_run {name}: interrupted; nothing written (rerun the same command to resume).", file=sys.stderr)
        return 130
    wall = time.time() - t0
    record = {
        "name": name, "command": " ".join(cmd), "exit_status": rc, "scale": params.scale,
        "start_utc": start.isoformat(timespec="seconds"),
        "end_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "wall_s": round(wall, 1), "wall_min": round(wall / 60, 2),
        "from_clean": not any(before.values()), "finished_runs_at_start": before,
        "finished_runs_at_end": finished_runs(artifacts),
        **git_state(),
        "executor": {"kind": params.executor.kind, "workers": params.executor.workers,
                     "env": os.environ.get("CLAIMBENCH_EXECUTOR")},
        "cpu_count": os.cpu_count(), **machine_facts(),
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write_text_atomic(OUT_DIR / f"{name}.json", json.dumps(record, indent=2) + "\n")
    print(f"timed_run {name}: {record['wall_min']} min, exit {rc}, from clean: {record['from_clean']} "
          f"-> {OUT_DIR / (name + '.json')}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
