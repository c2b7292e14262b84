"""Run a claim's plan: skip finished runs, execute the rest locally or on Ray, collect every failure.

    report = execute(ctx, train_side)     # train stage: runs what is not done yet
    records, compute = collect_with_compute(ctx, train_side)  # analyse stage: reads finished runs once

Both walk the claim's plan (`RunSpec`s, and `Barrier`s whose continuation needs the records so far).
Executors (params.yaml `executor:`):
- local, workers 1: today's loop, in this process.
- local, workers N: N worker processes side by side (spawned; one pool for the whole plan).
- ray: one Ray task per run, on a private local cluster or a running one (`address`).
On every executor: the device is resolved and the scale's dtype set in the process that trains; the
claim's data load once per process; torch's thread count is set per run; a lease file guards each run
folder; one failed run does not stop the others (all failures are reported together at the end, and
the stage fails); a progress line with counts and ETA follows each finished run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import json
import os
import signal
import socket
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from claimbench import engine as engines
from claimbench.contract import Barrier, Context, RunSpec
from claimbench.errors import ClaimbenchError, StorageError
from claimbench.lease import LEASE, Lease
from claimbench.numerics import use_scale_dtype
from claimbench.params import ExecutorParams
from claimbench.sweep import (
    CHECKPOINT,
    DONE,
    Progress,
    Record,
    load_record,
    read_records,
    run_dir,
    write_config,
    write_done,
)
from claimbench.train import cpu_threads, resolve_device

ATTEMPTS = "attempts.jsonl"
POOL_RETRIES = 2  # fresh local pools for the runs of a worker process that died, before those runs fail


class SweepFailed(ClaimbenchError):
    """Some runs failed; the others finished and are cached."""


@dataclass
class Failure:
    label: str
    dir: Path
    error: str


@dataclass
class Report:
    """What one `execute` did: records in plan order; runs submitted (trained) and found finished."""

    records: list[Record] = field(default_factory=list)
    submitted: int = 0
    cached: int = 0
    failures: list[Failure] = field(default_factory=list)


# ---------------------------------------------------------------- plan walking


def walk(ctx: Context, plan: Sequence[RunSpec | Barrier],
         resolve: Callable[[list[RunSpec]], list[Record]]) -> list[Record]:
    """Resolve the plan's runs batch by batch (a batch ends at a Barrier) and return all records."""
    records: list[Record] = []
    pending: list[RunSpec | Barrier] = list(plan)
    batch: list[RunSpec] = []
    while pending or batch:
        item = pending.pop(0) if pending else None
        if isinstance(item, RunSpec):
            batch.append(item)
            continue
        records += resolve(batch) if batch else []
        batch = []
        if isinstance(item, Barrier):
            pending = list(item.then(ctx, list(records))) + pending
    return records


def _read(ctx: Context, specs: list[RunSpec]) -> list[Record]:
    """The finished records of `specs`, through `sweep.read_records` (the one reader)."""
    fix = f"run the train stage first (`python stages/{ctx.claim_id}.py train --scale {ctx.scale}`)"
    return read_records(ctx.runs_dir, specs, fix)


def collect_with_compute(ctx: Context, train_side: Any) -> tuple[list[Record], dict]:
    """One walk of the claim's plan: (every finished run's record, read through `sweep.read_records`, the
    one reader; the claim's compute as its runs recorded it: {'runs', 'runs_recorded' (runs with a finished
    attempt on record), 'wall_s', 'cpu_s' (sums of `run_compute` over the plan's run folders, seconds),
    'engine' (the distinct training-engine records of the runs' last finished attempts, claimbench.engine)}).
    Unlike a stage's wall time the compute does not shrink when a re-invocation finds the runs cached."""
    total = {"runs": 0, "runs_recorded": 0, "wall_s": 0.0, "cpu_s": 0.0}
    engine_seen: list = []

    def read(specs: list[RunSpec]) -> list[Record]:
        for spec in specs:
            c = run_compute(run_dir(ctx.runs_dir, spec.key))
            total["runs"] += 1
            total["runs_recorded"] += int(c["finished"] > 0)
            total["wall_s"] += c["wall_s"]
            total["cpu_s"] += c["cpu_s"]
            used = run_engine(run_dir(ctx.runs_dir, spec.key))
            if used is not None and used not in engine_seen:
                engine_seen.append(used)
        return _read(ctx, specs)

    records = walk(ctx, train_side.plan(ctx), read)
    return records, {**total, "wall_s": round(total["wall_s"], 1), "cpu_s": round(total["cpu_s"], 1),
                     "engine": engine_seen}


def collect(ctx: Context, train_side: Any) -> list[Record]:
    """Every finished run of the claim's plan (`collect_with_compute`'s records)."""
    return collect_with_compute(ctx, train_side)[0]


def plan_compute(ctx: Context, train_side: Any) -> dict:
    """The claim's compute as its runs recorded it (`collect_with_compute`'s compute)."""
    return collect_with_compute(ctx, train_side)[1]


def run_engine(d: Path) -> dict | None:
    """The training-engine record of run folder `d`'s last finished attempt (None: none recorded)."""
    path, found = d / ATTEMPTS, None
    for line in path.read_text().splitlines() if path.exists() else []:
        with contextlib.suppress(json.JSONDecodeError):
            found = json.loads(line).get("engine", found)
    return found


# ---------------------------------------------------------------- one attempt (any process)

_DATA: dict[tuple, Any] = {}  # per process: the claim's data, loaded once


def _prepare(ctx: Context) -> Context:
    """In the process that trains: resolve the device there and set the scale's default dtype."""
    use_scale_dtype(ctx.scale)
    return dataclasses.replace(ctx, device=resolve_device(ctx.params.data.device))


def _data(ctx: Context, train_side: Any) -> Any:
    key = (ctx.claim_id, ctx.scale, repr(ctx.cfg), ctx.data_root, str(ctx.device))
    if key not in _DATA:
        _DATA.clear()
        _DATA[key] = train_side.load_data(ctx)
    return _DATA[key]


def _threads(ex: ExecutorParams, spec: RunSpec) -> int | None:
    if ex.threads_per_run:
        return ex.threads_per_run
    if spec.threads:
        return spec.threads
    if ex.kind == "ray":
        return max(1, int(ex.cpus_per_run))
    if ex.workers > 1:
        return max(1, (os.cpu_count() or 1) // ex.workers)
    return None


def attempt(ctx: Context, module: str, spec: RunSpec, ex: ExecutorParams, base: Path | None = None) -> dict:
    """Train one run in folder `base`/<hash> (default: the context's runs folder) under its lease and
    return its record; an already finished run (or one another attempt finishes meanwhile) is read.
    A StackGroup (several runs as one stacked model) goes to `attempt_group`."""
    if isinstance(spec, StackGroup):
        return attempt_group(ctx, module, spec, ex)
    ctx = _prepare(ctx)
    train_side = importlib.import_module(module)
    d = run_dir(base or ctx.runs_dir, spec.key)
    if (d / DONE).exists():
        return load_record(d, spec.key)
    write_config(d, spec.key)
    with Lease(d) as lease:
        if lease.finished:
            return load_record(d, spec.key)
        with open(d / ATTEMPTS, "a") as f:
            f.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "start": time.time(),
                                "resumed_from_checkpoint": (d / CHECKPOINT).exists()}) + "\n")
        data = _data(ctx, train_side)
        threads = _threads(ex, spec)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            with (contextlib.nullcontext() if threads is None else cpu_threads(threads, ctx.device),
                  engines.use_engine(engines.settings_for(ctx.params, ctx.claim_id)) as fits):
                record = train_side.run_one(ctx, d, data, **spec.args)
        except ClaimbenchError:
            raise
        except Exception as e:
            (d / "error.log").write_text(traceback.format_exc())
            first = (str(e).splitlines() or [""])[0]
            raise ClaimbenchError(f"{type(e).__name__}: {first} (traceback: {d / 'error.log'})") from None
        with open(d / ATTEMPTS, "a") as f:  # this attempt's own compute: what the report's cost column sums
            f.write(json.dumps({"pid": os.getpid(), "end": time.time(), "wall_s": round(time.perf_counter() - t0, 3),
                                "cpu_s": round(time.process_time() - c0, 3), "threads": threads,
                                "device": str(ctx.device), "engine": engines.summarise(fits)}) + "\n")
        write_done(d, spec.key, record)
    return record


def run_compute(d: Path) -> dict:
    """A run folder's own compute: {'wall_s', 'cpu_s' (sums over its finished attempts, seconds),
    'attempts' (started), 'finished' (attempts with a recorded end)}. An attempt killed mid-run leaves no
    end line, so its time is not counted; a run trained before compute was recorded gives finished 0."""
    out = {"wall_s": 0.0, "cpu_s": 0.0, "attempts": 0, "finished": 0}
    path = d / ATTEMPTS
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill: nothing to count
        if "start" in entry:
            out["attempts"] += 1
        if "wall_s" in entry:
            out["finished"] += 1
            out["wall_s"] += float(entry["wall_s"])
            out["cpu_s"] += float(entry.get("cpu_s", 0.0))
    return out


def _attempt_copy(ctx: Context, module: str, spec: RunSpec, ex: ExecutorParams) -> tuple[dict, bytes]:
    """storage: copy — train in this node's scratch (a retry on the same node resumes there) and
    return (record, the finished run folder as a tar archive)."""
    scratch = Path(tempfile.gettempdir()) / "claimbench-scratch" / ctx.scale / ctx.claim_id
    record = attempt(ctx, module, spec, ex, base=scratch)
    d = run_dir(scratch, spec.key)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(d.iterdir()):
            if p.name not in (DONE, LEASE):
                tar.add(p, arcname=p.name)
    return record, buf.getvalue()


def _unpack(d: Path, spec: RunSpec, record: dict, archive: bytes) -> None:
    write_config(d, spec.key)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(d, filter="data")
    write_done(d, spec.key, record)


# ---------------------------------------------------------------- executors


class _Session:
    """What one `execute` holds across its batches (a plan's barriers): the local process pool or the
    Ray connection, started on first use and closed at the end."""

    def __init__(self, ex: ExecutorParams):
        self.ex, self._pool, self._ray, self._started = ex, None, None, False

    def pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: a fork of a process whose OpenMP pool has run (torch ops in the driver, e.g.
        # a Barrier averaging scores) deadlocks in the child, and CUDA cannot be forked at all. Spawned
        # workers re-import the stage script, whose main() is behind a __main__ guard.
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.ex.workers, mp_context=get_context("spawn"),
                                             initializer=_worker_ignores_ctrl_c)
        return self._pool

    def fresh_pool(self) -> ProcessPoolExecutor:
        """A new pool in place of one that broke (a worker process died: killed, out of memory)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)  # a broken pool's workers are gone or going
            self._pool = None
        return self.pool()

    def _terminate_workers(self, grace_s: float = 10.0) -> None:
        """Ctrl-C: stop the workers now. SIGTERM unwinds a worker's run (SystemExit: its lease released, no
        temporary file left); one still alive after `grace_s` is killed. Finished runs stay cached; an
        unfinished one resumes from its checkpoint."""
        procs = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)  # workers that unwound get their exit sentinel
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.terminate()
        deadline = time.monotonic() + grace_s
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.join(max(0.0, deadline - time.monotonic()))
                if proc.is_alive():
                    proc.kill()

    def ray(self):
        if self._ray is None:
            self._ray, self._started = ray_session(self.ex)
        return self._ray

    def close(self, interrupted: bool = False) -> None:
        if self._pool is not None:
            if interrupted:
                self._terminate_workers()
            self._pool.shutdown(cancel_futures=True)
        if self._started:
            self._ray.shutdown()


def execute(ctx: Context, train_side: Any, ex: ExecutorParams | None = None) -> Report:
    """Train every unfinished run of the claim's plan; raise SweepFailed (after all others finished)
    if any run failed. Finished runs are read, never submitted."""
    ex = ex or ctx.params.executor or ExecutorParams()
    report = Report()
    progress = ctx.progress(0)
    module = train_side.__name__
    runner = {"local": _run_local, "ray": _run_ray}[ex.kind]
    session = _Session(ex)

    def resolve(specs: list[RunSpec]) -> list[Record]:
        progress.total += len(specs)
        todo = []
        for spec in specs:
            if (run_dir(ctx.runs_dir, spec.key) / DONE).exists():
                report.cached += 1
                progress.update(spec.label, cached=True)
            else:
                todo.append(spec)
        report.submitted += len(todo)
        todo = group_stacks(ctx, train_side, todo, ex)
        progress.total -= sum(len(t.members) - 1 for t in todo if isinstance(t, StackGroup))
        failures = runner(ctx, module, todo, ex, progress, session) if todo else []
        report.failures += failures
        if failures:
            raise _failed(report, progress.total)
        return read_records(ctx.runs_dir, specs, "rerun the train stage")

    interrupted = False
    try:
        report.records = walk(ctx, train_side.plan(ctx), resolve)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        session.close(interrupted)
    return report


# ---------------------------------------------------------------- stacked groups (claimbench.stack)


@dataclass(frozen=True)
class StackGroup:
    """Runs that train as one stacked model: passed to the runners like a RunSpec (key, label, threads)."""

    members: tuple[RunSpec, ...]
    key: dict
    label: str
    threads: int | None = None


def group_stacks(ctx: Context, train_side: Any, specs: list[RunSpec], ex: ExecutorParams) -> list:
    """`specs` with the runs that share the claim's `stack_key` gathered into StackGroups of at most
    engine.stack_runs members (local executor, claims that provide stack_key and run_group; else unchanged)."""
    k_max = engines.settings_for(ctx.params, ctx.claim_id).stack_runs
    if k_max < 2 or ex.kind != "local" or not hasattr(train_side, "stack_key") or not hasattr(train_side, "run_group"):
        return specs
    buckets: dict[Any, list[RunSpec]] = {}
    out: list = []
    for spec in specs:
        key = train_side.stack_key(ctx, spec)
        if key is None:
            out.append(spec)
        else:
            buckets.setdefault(json.dumps(key, sort_keys=True, default=str), []).append(spec)
    for members in buckets.values():
        for i in range(0, len(members), k_max):
            chunk = tuple(members[i:i + k_max])
            out.append(chunk[0] if len(chunk) == 1 else StackGroup(
                chunk, {"stack": [m.key for m in chunk]}, stack_label([m.label for m in chunk]),
                chunk[0].threads))
    return out


def stack_label(labels: list[str]) -> str:
    """A StackGroup's progress label: 'stack×9 [blocks=1 batch_size=16; dropout∈{0.0, 0.25} weight_decay∈{0.0,
    0.001}]' — the key=value tokens every member shares once, then each varying key's values; labels that are
    not all key=value tokens are joined whole."""
    parsed = [dict(t.split("=", 1) for t in lab.split()) if all("=" in t for t in lab.split()) else None
              for lab in labels]
    if not labels or any(d is None for d in parsed) or len({tuple(d) for d in parsed}) != 1:
        return f"stack×{len(labels)} [{', '.join(labels)}]"
    keys = list(parsed[0])
    common = [f"{k}={parsed[0][k]}" for k in keys if len({d[k] for d in parsed}) == 1]
    varying = [f"{k}∈{{{', '.join(dict.fromkeys(d[k] for d in parsed))}}}" for k in keys
               if len({d[k] for d in parsed}) > 1]
    return f"stack×{len(labels)} [{' '.join(common)}; {' '.join(varying)}]"


def attempt_group(ctx: Context, module: str, group: StackGroup, ex: ExecutorParams) -> dict:
    """Train a StackGroup's unfinished runs as one stacked model (`train_side.run_group(ctx, run_dirs, data,
    [args…]) -> [records]`), each member under its own lease, with its own folder, attempts lines (wall and CPU
    time split evenly, "stacked": K) and done.json. If the claim says they cannot stack (stack.NotStackable),
    each runs alone through `attempt` (resuming its own checkpoint)."""
    from claimbench.stack import NotStackable

    prep = _prepare(ctx)
    train_side = importlib.import_module(module)
    dirs = [run_dir(prep.runs_dir, m.key) for m in group.members]
    todo = [(m, d) for m, d in zip(group.members, dirs) if not (d / DONE).exists()]
    alone: list[RunSpec] = []
    with contextlib.ExitStack() as held:
        leased = []
        for m, d in todo:
            write_config(d, m.key)
            if not held.enter_context(Lease(d)).finished:
                leased.append((m, d))
        for _, d in leased:
            with open(d / ATTEMPTS, "a") as f:
                f.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "start": time.time(),
                                    "resumed_from_checkpoint": (d / CHECKPOINT).exists(),
                                    "stacked": len(leased)}) + "\n")
        if leased:
            data = _data(prep, train_side)
            threads = _threads(ex, group.members[0])
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                with (contextlib.nullcontext() if threads is None else cpu_threads(threads, prep.device),
                      engines.use_engine(engines.settings_for(prep.params, prep.claim_id)) as fits):
                    records = train_side.run_group(prep, [d for _, d in leased], data, [m.args for m, _ in leased])
            except NotStackable:
                alone = [m for m, _ in leased]
                records = []
            except ClaimbenchError:
                raise
            except Exception as e:
                for _, d in leased:
                    (d / "error.log").write_text(traceback.format_exc())
                first = (str(e).splitlines() or [""])[0]
                log = leased[0][1] / "error.log"
                raise ClaimbenchError(f"{type(e).__name__}: {first} (traceback: {log})") from None
            if not alone and len(records) != len(leased):
                raise ClaimbenchError(f"{module}.run_group returned {len(records)} records for {len(leased)} runs; "
                                      f"it must return one per run directory, in order.")
            share = len(leased)
            wall, cpu = (time.perf_counter() - t0) / share, (time.process_time() - c0) / share
            for (m, d), record in zip(leased, records):
                with open(d / ATTEMPTS, "a") as f:
                    f.write(json.dumps({"pid": os.getpid(), "end": time.time(), "wall_s": round(wall, 3),
                                        "cpu_s": round(cpu, 3), "threads": threads,
                                        "device": str(prep.device), "stacked": share,
                                        "engine": engines.summarise(fits)}) + "\n")
                write_done(d, m.key, record)
    for m in alone:
        attempt(ctx, module, m, ex)
    return {"stacked": len(group.members)}


def _failed(report: Report, total: int) -> SweepFailed:
    f = report.failures
    if len(f) == 1:
        return SweepFailed(f"run {f[0].label} failed ({len(f)} of {total}; the others finished and are cached): "
                           f"{f[0].error}")
    lines = "\n".join(f"  {x.label}: {x.error}" for x in f)
    return SweepFailed(f"{len(f)} of {total} runs failed (the others finished and are cached; rerun the stage "
                       f"to retry these):\n{lines}")


def _done_line(spec: RunSpec, record: dict) -> str:
    shown = [f"{k} {v:.4g}" for k, v in record.items() if k.endswith("acc") and isinstance(v, float)][:2]
    return spec.label + (f": {', '.join(shown)}" if shown else "")


def _run_local(ctx: Context, module: str, specs: list[RunSpec], ex: ExecutorParams,
               progress: Progress, session: _Session) -> list[Failure]:
    failures = []
    if ex.workers <= 1:
        for spec in specs:
            try:
                progress.update(_done_line(spec, attempt(ctx, module, spec, ex)))
            except StorageError:  # a full disk or read-only folder fails every run alike: stop at the first
                raise
            except ClaimbenchError as e:
                failures.append(Failure(spec.label, run_dir(ctx.runs_dir, spec.key), str(e)))
                progress.update(f"{spec.label} FAILED")
        return failures
    todo, pool = list(specs), session.pool()
    for retry in range(POOL_RETRIES + 1):
        running = {pool.submit(_pool_attempt, ctx, module, spec, ex): spec for spec in todo}
        todo = []  # the runs a dead worker took with it
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                spec = running.pop(fut)
                try:
                    progress.update(_done_line(spec, fut.result()))
                except BrokenProcessPool:
                    todo.append(spec)
                except StorageError:  # a full disk or read-only folder fails every run alike: stop at the first
                    raise
                except Exception as e:  # a ClaimbenchError, or a bug's one line
                    failures.append(Failure(spec.label, run_dir(ctx.runs_dir, spec.key), str(e) or type(e).__name__))
                    progress.update(f"{spec.label} FAILED")
        if not todo:
            return failures
        labels = ", ".join(s.label for s in todo)
        if retry < POOL_RETRIES:
            ctx.log(f"a worker process died (killed, or out of memory?); resubmitting its {len(todo)} unfinished "
                    f"run(s) on a fresh pool (retry {retry + 1} of {POOL_RETRIES}): {labels}")
            pool = session.fresh_pool()
    for spec in todo:
        failures.append(Failure(spec.label, run_dir(ctx.runs_dir, spec.key),
                                f"a worker process died {POOL_RETRIES + 1} times while it was unfinished (killed, or "
                                f"out of memory? try fewer executor.workers); rerun the stage to resume it"))
        progress.update(f"{spec.label} FAILED")
    return failures


def _worker_ignores_ctrl_c() -> None:
    """Pool initializer: Ctrl-C reaches the whole process group; the driver alone handles it (and stops
    the workers with SIGTERM, which here unwinds the run as SystemExit), so no worker prints a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


_STOPPING = {"signal": 0}  # per worker process: the SIGTERM it got, if any


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    _STOPPING["signal"] = signum
    raise SystemExit(128 + signum)


def _pool_attempt(*args: Any) -> dict:
    """`attempt` in a pool worker; a worker told to stop starts no further run (the pool queues one ahead)."""
    if _STOPPING["signal"]:
        raise SystemExit(128 + _STOPPING["signal"])
    return attempt(*args)


def _ray():
    try:
        import ray
    except ImportError:
        raise ClaimbenchError("executor.kind = 'ray' needs Ray: pip install -e '.[ray]' (or set executor.kind: "
                              "local in params.yaml).") from None
    return ray


def ray_session(ex: ExecutorParams):
    """Connect to Ray (the running session, `address`, or a new private local cluster). Returns
    (ray module, whether we started it and must shut it down)."""
    ray = _ray()
    if ray.is_initialized():
        return ray, False
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": True}
    if ex.address:
        kwargs["address"] = ex.address
    elif ex.num_cpus and not os.environ.get("RAY_ADDRESS"):  # RAY_ADDRESS (Slurm, KubeRay): join that one
        kwargs["num_cpus"] = ex.num_cpus
    try:
        ray.init(**kwargs)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - Ray exits when it cannot reach a cluster
        where = ex.address or os.environ.get("RAY_ADDRESS") or "a private local cluster"
        reason = (str(e).splitlines() or [""])[0] or type(e).__name__
        raise ClaimbenchError(f"could not start or reach Ray ({where}): {reason}; "
                              f"check `ray status`, or set executor.kind: local in params.yaml.") from None
    return ray, True


def _run_ray(ctx: Context, module: str, specs: list[RunSpec], ex: ExecutorParams,
             progress: Progress, session: _Session) -> list[Failure]:
    ray = session.ray()
    fn = _attempt_copy if ex.storage == "copy" else attempt
    opts: dict[str, Any] = {"num_cpus": ex.cpus_per_run, "num_gpus": ex.gpus_per_run, "max_retries": ex.max_retries}
    if ex.gpus_per_run:
        opts["max_calls"] = 0  # keep GPU workers (and their loaded data) across tasks
    task = ray.remote(**opts)(fn)
    leases = {}
    failures = []
    try:
        running = {}
        for spec in specs:
            if ex.storage == "copy":  # the driver guards the real run folder against other drivers
                leases[spec.label] = Lease(run_dir(ctx.runs_dir, spec.key)).acquire()
            running[task.remote(ctx, module, spec, ex)] = spec
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            spec = running.pop(ready[0])
            d = run_dir(ctx.runs_dir, spec.key)
            try:
                out = ray.get(ready[0])
                if ex.storage == "copy":
                    _unpack(d, spec, *out)
                    out = out[0]
                progress.update(_done_line(spec, out))
            except Exception as e:
                cause = getattr(e, "cause", None) or e  # a task's own exception, or Ray's (worker died …)
                msg = str(cause) if isinstance(cause, ClaimbenchError) else f"{type(cause).__name__}: " + (
                    str(cause).splitlines() or [""])[0]
                failures.append(Failure(spec.label, d, msg))
                progress.update(f"{spec.label} FAILED")
    finally:
        for lease in leases.values():
            lease.release()
    return failures

