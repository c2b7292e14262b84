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
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from claimbench.cards import load_card
from claimbench.errors import ClaimbenchError
from claimbench.numerics import use_scale_dtype
from claimbench.params import Params, config_dict, load_params
from claimbench.results import provenance, write_result
from claimbench.sweep import Progress
from claimbench.train import resolve_device

TRAIN_INFO = "_train_stage.json"


@dataclass
class Context:
    """Everything a claim's train/analyse needs. Paths are absolute under the repository root."""

    claim_id: str
    scale: str
    cfg: Any  # the claim's Config at this scale
    params: Params
    device: torch.device
    root: Path

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts" / self.scale / self.claim_id

    @property
    def results_dir(self) -> Path:
        return self.root / "results" / self.scale / self.claim_id

    @property
    def figures_dir(self) -> Path:
        return self.root / "results" / self.scale / "figures" / self.claim_id

    @property
    def data_root(self) -> str | None:
        return self.params.data.root

    def log(self, msg: str) -> None:
        logging.getLogger(f"claimbench.{self.claim_id}").info(msg)

    def progress(self, total: int) -> Progress:
        """A stage-level progress counter over `total` runs, logging `[k/N] … elapsed, ETA` lines."""
        return Progress(total, self.log)


def make_context(claim_id: str, scale: str | None = None, params_path: str = "params.yaml",
                 root: Path | None = None) -> Context:
    root = Path(root or Path.cwd()).resolve()
    params = load_params(root / params_path, scale)
    if claim_id not in params.claims:
        raise ClaimbenchError(f"claim {claim_id!r} unknown; known: {', '.join(params.claims)}.")
    use_scale_dtype(params.scale)
    return Context(claim_id, params.scale, params.claims[claim_id], params,
                   resolve_device(params.data.device), root)


def run_train(ctx: Context, module) -> None:
    t0 = time.time()
    ctx.artifacts_dir.mkdir(parents=True, exist_ok=True)
    module.train(ctx)
    info = {"wall_s": round(time.time() - t0, 1), "device": str(ctx.device), "config": config_dict(ctx.cfg)}
    (ctx.artifacts_dir / TRAIN_INFO).write_text(json.dumps(info, indent=2, default=str))


def run_analyse(ctx: Context, module) -> dict:
    card = load_card(ctx.claim_id)
    t0 = time.time()
    result = module.analyse(ctx)
    analyse_wall = time.time() - t0
    info_path = ctx.artifacts_dir / TRAIN_INFO
    train_wall = json.loads(info_path.read_text())["wall_s"] if info_path.exists() else 0.0
    prov = provenance(ctx.device, train_wall + analyse_wall, result.seeds, ctx.scale,
                      {"train_wall_s": train_wall, "analyse_wall_s": round(analyse_wall, 1),
                       "config": config_dict(ctx.cfg)})
    record = write_result(result, card, ctx.results_dir, ctx.scale, prov)
    ctx.log(f"{ctx.claim_id} @ {ctx.scale}: {record['verdict']} "
            + " ".join(f"{c['id']}={'pass' if c['passed'] else 'fail'}" for c in record["criteria"]))
    return record


def main(claim_id: str, argv: list[str] | None = None) -> int:
    from claimbench.claims import claim_modules

    ap = argparse.ArgumentParser(prog=f"stages/{claim_id}.py", description=f"Run claim {claim_id}.")
    ap.add_argument("step", choices=["train", "analyse", "all"])
    ap.add_argument("--scale", default=None, help="override params.yaml's scale (ci|quick|gpu|paper)")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        module = claim_modules()[claim_id]
        ctx = make_context(claim_id, args.scale, args.params)
        ctx.log(f"scale={ctx.scale} device={ctx.device} torch={torch.__version__} "
                f"dtype={str(torch.get_default_dtype()).removeprefix('torch.')}")
        if args.step in ("train", "all"):
            run_train(ctx, module)
        if args.step in ("analyse", "all"):
            run_analyse(ctx, module)
    except ClaimbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
