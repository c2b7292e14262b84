"""Stage entries: ``python stages/<claim_id>.py {train,analyse} [--scale S]``.

DVC calls these; on a machine without DVC (the GPU box) run the same command with PYTHONPATH=src.
``train`` writes cached artifacts under artifacts/<scale>/<claim_id>/; ``analyse`` reads them, judges
the claim with its card and writes results/<scale>/<claim_id>/ and results/<scale>/figures/<claim_id>/.
Any ClaimbenchError is printed as one line (what is wrong, how to fix it) and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import torch

from claimbench import claims as claim_registry
from claimbench.atomic import storage_error, write_text_atomic
from claimbench.cards import load_card
from claimbench.claims import ClaimEntry
from claimbench.contract import Context
from claimbench.data import check_claim_inputs
from claimbench.errors import CacheError, ClaimbenchError
from claimbench.executor import collect_with_compute, execute
from claimbench.numerics import use_scale_dtype
from claimbench.params import config_dict
from claimbench.results import provenance
from claimbench.sweep import finished_runs, read_json
from claimbench.train import resolve_device
from claimbench.verdict import write_result

TRAIN_INFO = "_train_stage.json"


def make_context(claim_id: str, scale: str | None = None, params_path: str = "params.yaml",
                 root: Path | None = None, seed_set: int = 0) -> Context:
    """The claim's Context at `scale` (params.yaml's if None) for the repository at `root` (cwd);
    seed_set k > 0 swaps in the claim's disjoint seeds (`with_seed_set`) and separate folders."""
    root = Path(root or Path.cwd()).resolve()
    params = claim_registry.load_params(root / params_path, scale)
    if claim_id not in params.claims:
        raise ClaimbenchError(f"claim {claim_id!r} unknown; known: {', '.join(params.claims)}.")
    use_scale_dtype(params.scale)
    cfg = params.claims[claim_id]
    if seed_set:
        cfg = claim_registry.registry()[claim_id].with_seed_set(cfg, seed_set)
    return Context(claim_id, params.scale, cfg, params, resolve_device(params.data.device), root, seed_set)


def run_train(ctx: Context, entry: ClaimEntry) -> None:
    """Execute every unfinished run of the claim's plan on the configured executor."""
    t0 = time.time()
    ctx.artifacts_dir.mkdir(parents=True, exist_ok=True)
    ex = ctx.params.executor
    data_files = check_claim_inputs(ctx)  # once, before any worker: a data fault is one line, not one per run
    report = execute(ctx, entry.train, ex)
    ctx.log(f"{len(report.records)} runs: {report.submitted} trained, {report.cached} already finished "
            f"({ex.kind} executor)")
    info = {"wall_s": round(time.time() - t0, 1), "device": str(ctx.device), "config": config_dict(ctx.cfg),
            "executor": ex.kind, "runs": len(report.records), "trained": report.submitted, "data_files": data_files}
    write_text_atomic(ctx.artifacts_dir / TRAIN_INFO, json.dumps(info, indent=2, default=str))


def run_analyse(ctx: Context, entry: ClaimEntry, figures: bool = True) -> dict:
    """Read the finished runs, judge the claim with its card, write results (and figures)."""
    card = load_card(ctx.claim_id)
    t0 = time.time()
    records, compute = collect_with_compute(ctx, entry.train)  # one walk; compute: the runs' own, never shrunk
    result = entry.analyse.analyse(records, ctx)
    if figures:
        entry.figures.figures(result, ctx)
    analyse_wall = time.time() - t0
    train_info = read_train_info(ctx)
    train_wall = float(train_info.get("wall_s", 0.0))
    prov = provenance(ctx.device, train_wall + analyse_wall, result.seeds, ctx.scale,
                      {"train_wall_s": train_wall, "analyse_wall_s": round(analyse_wall, 1),
                       "compute": {**compute, "analyse_wall_s": round(analyse_wall, 1)},
                       "config": config_dict(ctx.cfg), "seed_set": ctx.seed_set,
                       **({"data_files": train_info["data_files"]} if train_info.get("data_files") else {})})
    record = write_result(result, card, ctx.results_dir, ctx.scale, prov)
    ctx.log(f"{ctx.claim_id} @ {ctx.scale}: {record['verdict_label']} "
            + " ".join(f"{c['id']}={c['outcome']}" for c in record["criteria"])
            + (f" — {record['verdict_reason']}" if record["verdict_reason"] else ""))
    return record


def read_train_info(ctx: Context) -> dict:
    """The train stage's _train_stage.json ({} if it has none) with a valid 'wall_s'; a corrupt one is one
    CacheError line naming it and the fix."""
    path = ctx.artifacts_dir / TRAIN_INFO
    if not path.exists():
        return {}
    fix = (f"delete it, or rerun the train stage (`python stages/{ctx.claim_id}.py train --scale {ctx.scale}`: "
           f"finished runs are cached)")
    info = read_json(path, fix)
    wall = info.get("wall_s") if isinstance(info, dict) else None
    if isinstance(wall, bool) or not isinstance(wall, (int, float)) or not math.isfinite(wall) or wall < 0:
        raise CacheError(f"{path} lacks a valid 'wall_s' (got {wall!r}); {fix}.")
    return info


def train_wall_s(ctx: Context) -> float:
    """The train stage's wall seconds (0 if it has no _train_stage.json; `read_train_info`)."""
    return float(read_train_info(ctx).get("wall_s", 0.0))


def main(claim_id: str, argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=f"stages/{claim_id}.py", description=f"Run claim {claim_id}.")
    ap.add_argument("step", choices=["train", "analyse", "all"])
    ap.add_argument("--scale", default=None, help="override params.yaml's scale (ci|quick|gpu|paper)")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    ctx = None
    try:
        ctx = make_context(claim_id, args.scale, args.params)  # names an unknown claim
        entry = claim_registry.registry()[claim_id]
        ctx.log(f"scale={ctx.scale} device={ctx.device} torch={torch.__version__} "
                f"dtype={str(torch.get_default_dtype()).removeprefix('torch.')}")
        if args.step in ("train", "all"):
            run_train(ctx, entry)
        if args.step in ("analyse", "all"):
            run_analyse(ctx, entry)
    except (ClaimbenchError, OSError, KeyboardInterrupt) as e:
        if (code := report_failure(e, ctx)) is None:
            raise
        return code
    return 0


def report_failure(e: BaseException, ctx: Context | None) -> int | None:
    """Print the one line a command ends on and return its exit status: 2 for a ClaimbenchError or a storage
    fault (a folder full, read-only or not writable), 130 for Ctrl-C (`interrupted_line`); None for any
    other error, which the caller re-raises (a bug, not bad input)."""
    if isinstance(e, KeyboardInterrupt):
        print(interrupted_line(ctx.runs_dir if ctx else None), file=sys.stderr)
        return 130
    err = e if isinstance(e, ClaimbenchError) else storage_error(e) if isinstance(e, OSError) else None
    if err is None:
        return None
    print(f"error: {err}", file=sys.stderr)
    return 2


def interrupted_line(runs_dir: Path | None) -> str:
    """What Ctrl-C prints: how many runs are finished and cached, and how to resume."""
    n = finished_runs(runs_dir) if runs_dir is not None else 0
    where = f" in {runs_dir}" if runs_dir is not None else ""
    return (f"interrupted: {n} finished run{'s' * (n != 1)}{where} {'are' if n != 1 else 'is'} cached; rerun the "
            f"same command to resume.")
