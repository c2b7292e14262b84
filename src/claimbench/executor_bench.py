"""Executor overhead on this machine: ``python -m claimbench executor-bench [--runs 60] [--cpus 2]``.

Prints Ray's start-up (a private local cluster) and the per-run overhead of each executor, measured on
runs that do no work (so the time is the executor's own: submission, lease, done marker, progress).
This module is also the no-op claim's train side (load_data / plan / run_one).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from claimbench.contract import Context, RunSpec
from claimbench.executor import execute, ray_session
from claimbench.params import DataParams, ExecutorParams, Params


@dataclasses.dataclass(frozen=True)
class Config:
    runs: int = 60


def load_data(ctx: Context) -> None:
    return None


def plan(ctx: Context) -> list[RunSpec]:
    return [RunSpec({"noop": i}, f"noop {i}", {"i": i}) for i in range(ctx.cfg.runs)]


def run_one(ctx: Context, run_dir: Path, data: None, i: int) -> dict:
    return {"i": i}


def _ctx(root: Path, runs: int) -> Context:
    params = Params("ci", DataParams(device="cpu"), {}, {}, ExecutorParams())
    return Context("executor_bench", "ci", Config(runs), params, torch.device("cpu"), root)


def _sweep(root: Path, runs: int, ex: ExecutorParams) -> float:
    import importlib

    t0 = time.perf_counter()  # by its import name: Ray workers import the train side by name, not __main__
    execute(_ctx(root, runs), importlib.import_module("claimbench.executor_bench"), ex)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    import logging

    ap = argparse.ArgumentParser(prog="python -m claimbench executor-bench", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=60, help="no-op runs per executor (default 60)")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the private Ray cluster")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        local = _sweep(tmp / "local", args.runs, ExecutorParams(workers=1))
        workers = _sweep(tmp / "workers", args.runs, ExecutorParams(workers=2))
        t0 = time.perf_counter()
        ray_ex = ExecutorParams(kind="ray", num_cpus=args.cpus)
        ray, _ = ray_session(ray_ex)
        started = time.perf_counter() - t0
        warm_up = _sweep(tmp / "ray_first", args.cpus, ray_ex)  # first tasks start the worker processes
        on_ray = _sweep(tmp / "ray", args.runs, ray_ex)
        again = _sweep(tmp / "ray", args.runs, ray_ex)  # every run finished: nothing is submitted
        ray.shutdown()
    print(f"ray start-up (private local cluster, {args.cpus} CPUs): {started:.1f} s; first {args.cpus} tasks "
          f"(worker processes start, import torch): {warm_up:.1f} s")
    for name, wall in (("local, workers 1", local), ("local, workers 2", workers), ("ray", on_ray),
                       ("ray, all finished (0 submitted)", again)):
        print(f"{name:34s} {args.runs} no-op runs in {wall:6.2f} s = {1000 * wall / args.runs:6.1f} ms per run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
