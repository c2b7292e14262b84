"""A data-free claim for the executor tests: runs square their index; a Barrier adds runs that need
the first batch's records; chosen runs fail; every run may hold a little to widen race windows."""

import os
import time
from dataclasses import dataclass, field

from claimbench.contract import Barrier, RunSpec
from claimbench.errors import ClaimbenchError

LOADS = {"n": 0}  # data loads in this process


@dataclass(frozen=True)
class Config:
    n: int = 4
    fail: list[int] = field(default_factory=list)
    barrier: bool = True
    hold_s: float = 0.0
    torch_work: bool = False  # runs and the barrier do multi-threaded torch work (OpenMP)
    die: str = ""  # run 0's worker process dies (os._exit): once if this marker file is absent, always if "always"


def load_data(ctx):
    LOADS["n"] += 1
    return {"offset": 1000}


def _matmul() -> float:
    import torch

    a = torch.ones(400, 400)
    return float((a @ a).sum())  # multi-threaded: starts the process's OpenMP pool


def _second_batch(ctx, records):
    if ctx.cfg.torch_work:
        _matmul()  # the driver's OpenMP pool runs before the next batch's workers start
    total = sum(r["x"] for r in records)
    return [RunSpec({"kind": "after", "total": total, "j": j}, f"after j={j}", {"i": 100 + j}) for j in range(2)]


def plan(ctx):
    specs = [RunSpec({"kind": "first", "i": i}, f"i={i}", {"i": i}) for i in range(ctx.cfg.n)]
    return specs + ([Barrier(_second_batch)] if ctx.cfg.barrier else [])


def run_one(ctx, run_dir, data, i):
    if i == 0 and ctx.cfg.die and (ctx.cfg.die == "always" or not os.path.exists(ctx.cfg.die)):
        if ctx.cfg.die != "always":
            open(ctx.cfg.die, "w").close()
        os._exit(3)  # a worker killed mid-run (OOM killer, kill -9): no exception, no cleanup
    time.sleep(ctx.cfg.hold_s)
    if i in ctx.cfg.fail:
        raise ClaimbenchError(f"run {i} was told to fail")
    if i == -1:
        raise ValueError("a bug\nwith a second line")
    if ctx.cfg.torch_work:
        _matmul()
    return {"i": i, "x": i * i + data["offset"], "pid": os.getpid()}
