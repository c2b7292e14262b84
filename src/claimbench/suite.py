"""Every claim at one scale without DVC (the GPU box has none): ``python -m claimbench suite --scale gpu``.

Runs ``python stages/<claim_id>.py all --scale S [--params P]`` for each claim, `--parallel` at a time
(on one GPU, several small claims share it), each under its own `--timeout` (seconds) so one slow claim
cannot take the others' results with it; each claim's log goes to `--log-dir`. Writes
``results/suite_runs/<scale>-suite.json`` (a subset of claims: ``<scale>-suite-<id>+<id>.json``, so a run of one
claim never overwrites the whole suite's record): per claim its exit status and wall seconds, the whole wall time,
the git commit (`results.git_state`: env CLAIMBENCH_GIT_SHA wins when set) and the machine.
Exit status: 0 if every claim finished, else 1; a bad argument is one line on stderr and status 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from claimbench import claims as claim_registry
from claimbench.atomic import write_text_atomic
from claimbench.errors import ClaimbenchError
from claimbench.numerics import machine_facts
from claimbench.results import git_state
from claimbench.timed_run import OUT_DIR


def record_name(scale: str, chosen: list[str], every: list[str]) -> str:
    """The record's file name: ``<scale>-suite.json`` for every claim, ``<scale>-suite-<id>+<id>.json`` for a
    subset."""
    return f"{scale}-suite.json" if sorted(chosen) == sorted(every) else f"{scale}-suite-{'+'.join(chosen)}.json"


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # each running claim got Ctrl-C too and ends with its own line in its log
        print("interrupted: the claims that finished have their results written and every finished run is cached; "
              "rerun the same command to resume.", file=sys.stderr)
        return 130


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m claimbench suite", description=__doc__.split("\n")[0])
    ap.add_argument("--scale", required=True, help="ci | quick | long | gpu | paper")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--claims", nargs="*", default=None,
                    help=f"claim ids (default: all, in order: {', '.join(claim_registry.claim_ids())})")
    ap.add_argument("--parallel", type=int, default=1, help="claims at a time (default 1)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per claim (default: none)")
    ap.add_argument("--log-dir", default="logs", help="one <claim_id>.log per claim (default ./logs)")
    args = ap.parse_args(argv)
    try:
        chosen = claim_registry.choose(args.claims, "suite: --claims")
        if args.parallel < 1:
            raise ClaimbenchError("suite: --parallel must be ≥ 1.")
        claim_registry.load_params(args.params, args.scale)  # a bad params file stops here, in one line
    except ClaimbenchError as e:
        print(str(e).splitlines()[0], file=sys.stderr)
        return 2
    logs = Path(args.log_dir)
    logs.mkdir(parents=True, exist_ok=True)
    pending, running, done = list(chosen), {}, {}
    t0, start = time.time(), dt.datetime.now(dt.UTC)
    while pending or running:
        while pending and len(running) < args.parallel:
            cid = pending.pop(0)
            cmd = [sys.executable, f"stages/{cid}.py", "all", "--scale", args.scale, "--params", args.params]
            log = open(logs / f"{cid}.log", "w")  # noqa: SIM115 - closed when the claim ends
            running[cid] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), time.time(), log)
            print(f"[suite] started {cid}", file=sys.stderr, flush=True)
        time.sleep(1.0)
        for cid, (proc, t_start, log) in list(running.items()):
            over = args.timeout is not None and time.time() - t_start > args.timeout
            if over and proc.poll() is None:
                proc.kill()
            if proc.poll() is not None:
                log.close()
                rc = proc.returncode
                done[cid] = {"exit_status": rc, "timed_out": bool(over), "wall_s": round(time.time() - t_start, 1)}
                del running[cid]
                print(f"[suite] {cid}: exit {rc}{' (timed out)' if over else ''} after {done[cid]['wall_s']} s "
                      f"[{len(done)}/{len(chosen)}, {time.time() - t0:.0f} s in all]", file=sys.stderr, flush=True)
    record = {"scale": args.scale, "params": args.params, "parallel": args.parallel, "timeout_s": args.timeout,
              "start_utc": start.isoformat(timespec="seconds"), "wall_s": round(time.time() - t0, 1),
              "claims": done, **git_state(),
              "cpu_count": os.cpu_count(), **machine_facts()}
    try:
        import torch

        if torch.cuda.is_available():
            record["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - provenance only
        pass
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write_text_atomic(OUT_DIR / record_name(args.scale, chosen, claim_registry.claim_ids()),
                      json.dumps(record, indent=2) + "\n")
    return 0 if all(d["exit_status"] == 0 for d in done.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
