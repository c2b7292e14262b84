"""Shared by the claims' stacked-run tests (test_<claim>_stack.py): a claim's run_group beside its run_one on the
same runs, and the executor's records without and with engine `stack_runs`."""

import dataclasses
import json
from pathlib import Path

from claimbench import executor
from claimbench.executor import ATTEMPTS
from claimbench.params import EngineSettings


def member_dirs(root: Path, n: int) -> list[Path]:
    """n fresh run folders root/0 … root/n−1."""
    out = [root / str(i) for i in range(n)]
    for d in out:
        d.mkdir(parents=True)
    return out


def group_and_alone(train_side, ctx, data, args: list[dict], root: Path) -> tuple[list[dict], list[tuple]]:
    """Train `args` as one group (train_side.run_group, folders root/stacked/i), then each alone (run_one, folders
    root/alone/i). Returns (the group's records, [(args, member record, alone record, member dir, alone dir)])."""
    stacked = member_dirs(root / "stacked", len(args))
    records = train_side.run_group(ctx, stacked, data, args)
    pairs = []
    for a, rec, d in zip(args, records, stacked):
        alone = root / "alone" / d.name
        alone.mkdir(parents=True)
        pairs.append((a, rec, train_side.run_one(ctx, alone, data, **a), d, alone))
    return records, pairs


def executed_alone_and_stacked(train_side, ctx_alone, ctx_stacked, claim_id: str, stack_runs: int) -> list[tuple]:
    """The executor's records of the claim's plan trained alone (`ctx_alone`) and with engine stack_runs
    (`ctx_stacked`, another folder): per run in plan order (alone Record, stacked Record, the stacked run's
    attempts end lines); both runs of a pair share their folder name."""
    alone = executor.execute(ctx_alone, train_side).records
    ctx = dataclasses.replace(ctx_stacked, params=dataclasses.replace(
        ctx_stacked.params, engine={claim_id: EngineSettings(stack_runs=stack_runs)}))
    stacked = executor.execute(ctx, train_side).records
    assert len(stacked) == len(alone)
    out = []
    for a, b in zip(alone, stacked):
        assert a.dir.name == b.dir.name
        ends = [json.loads(x) for x in (b.dir / ATTEMPTS).read_text().splitlines() if "end" in x]
        out.append((a, b, ends))
    return out
