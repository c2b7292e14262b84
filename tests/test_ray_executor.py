"""The Ray executor on a real local cluster (2 CPUs, session-scoped; Ray has no local_mode any more):
a claim's ci sweep gives records identical to the local executor's, survives a killed worker (the run
is retried and resumes from its checkpoint), and a re-run submits no task."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import fake_claim
import pytest

from claimbench.executor import SweepFailed, execute
from claimbench.params import DataParams, ExecutorParams
from claimbench.sweep import DONE, run_dir

TESTS = Path(__file__).resolve().parent
CLAIM = "neural_collapse"  # its ci runs checkpoint every epoch: a kill lands between two checkpoints


@pytest.fixture(scope="session")
def ray_cluster():
    if os.environ.get("CI"):
        import ray  # CI installs the ray extra: a missing Ray is a failure there, not a skip
    else:
        ray = pytest.importorskip("ray")
    path = os.pathsep.join([str(TESTS), str(TESTS.parent / "src"), os.environ.get("PYTHONPATH", "")])
    t0 = time.monotonic()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    print(f"ray local cluster (2 CPUs) up in {time.monotonic() - t0:.1f} s")
    yield ray
    ray.shutdown()


RAY = ExecutorParams(kind="ray", cpus_per_run=1, max_retries=2)
TIMINGS = {"wall_s", "train_s"}  # wall-clock fields some records carry: never identical between two runs


def test_fake_sweep_on_ray_collects_failures_and_resubmits_nothing(ray_cluster, tmp_path):
    from test_executor import make_ctx, plain

    ctx = make_ctx(tmp_path, n=4, fail=[2], barrier=False)
    with pytest.raises(SweepFailed, match=r"run i=2 failed \(1 of 4; the others finished"):
        execute(ctx, fake_claim, RAY)
    ok = make_ctx(tmp_path / "ok")
    first = execute(ok, fake_claim, RAY)
    assert first.submitted == 6 and {r["pid"] for r in first.records} - {os.getpid()}
    again = execute(ok, fake_claim, RAY)
    assert again.submitted == 0 and plain(again.records) == plain(first.records)


def test_copy_storage_returns_the_finished_run_folder(ray_cluster, tmp_path):
    from test_executor import make_ctx, plain

    ctx = make_ctx(tmp_path, n=3, barrier=False)
    rep = execute(ctx, fake_claim, dataclasses.replace(RAY, storage="copy"))
    assert rep.submitted == 3 and all((r.dir / "config.json").exists() and (r.dir / DONE).exists() for r in rep.records)
    assert plain(rep.records) == plain(execute(make_ctx(tmp_path / "l", n=3, barrier=False), fake_claim).records)


def claim_ctx(root: Path, data: Path):
    from claimbench.stage import make_context

    ctx = make_context(CLAIM, "ci", root=TESTS.parent)
    params = dataclasses.replace(ctx.params, data=DataParams(root=str(data), device="cpu"))
    return dataclasses.replace(ctx, root=root, params=params)


class KillOneWorker(threading.Thread):
    """Watches the run folders; SIGKILLs the process training the first run seen with a checkpoint
    (mid-run: a later epoch is still to come) and remembers that run folder."""

    def __init__(self, runs: Path):
        super().__init__(daemon=True)
        self.runs, self.killed, self.stop = runs, None, threading.Event()

    def run(self):
        while not self.stop.is_set() and self.killed is None:
            for d in self.runs.glob("*/"):
                try:
                    if (d / "checkpoint.pt").exists() and not (d / DONE).exists():
                        os.kill(json.loads((d / "lease.json").read_text())["pid"], signal.SIGKILL)
                        self.killed = d
                        break
                except (OSError, ValueError, KeyError):
                    continue
            time.sleep(0.005)


LOCAL_SWEEP = """
import sys; sys.path.insert(0, {tests!r})
from pathlib import Path
from claimbench.claims import registry
from claimbench.executor import execute
from claimbench.params import ExecutorParams
from test_ray_executor import CLAIM, claim_ctx
execute(claim_ctx(Path({root!r}), Path({data!r})), registry()[CLAIM].train,
        ExecutorParams(workers=1, threads_per_run=1))
"""


def local_sweep(root: Path, data: Path):
    """The same sweep on the local executor, in a process started as Ray starts its workers: one torch
    thread per run and OMP_NUM_THREADS=1 (OpenMP's start-up thread count changes float64 results in
    the last bits, ~1e-14 relative; with it equal, the records are bit-identical)."""
    from claimbench.executor import collect

    code = LOCAL_SWEEP.format(tests=str(TESTS), root=str(root), data=str(data))
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"},
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    ctx = claim_ctx(root, data)
    from claimbench.claims import registry

    return collect(ctx, registry()[CLAIM].train)


def same(records):
    return [(r.key, {k: v for k, v in r.record.items() if k not in TIMINGS}) for r in records]


@pytest.mark.needs_data
def test_claim_ci_sweep_on_ray_matches_local_survives_a_killed_worker_and_resubmits_nothing(
        ray_cluster, tmp_path, ci_data):
    from claimbench.claims import registry

    train = registry()[CLAIM].train
    local = local_sweep(tmp_path / "local", ci_data)
    ctx = claim_ctx(tmp_path / "ray", ci_data)
    killer = KillOneWorker(ctx.runs_dir)
    killer.start()
    on_ray = execute(ctx, train, RAY)
    killer.stop.set()
    assert killer.killed is not None, "no run was caught mid-run with a checkpoint: nothing was killed"
    lines = [json.loads(x) for x in (killer.killed / "attempts.jsonl").read_text().splitlines()]
    attempts = [a for a in lines if "start" in a]  # the other lines: a finished attempt's own compute
    assert len(attempts) >= 2 and attempts[-1]["resumed_from_checkpoint"], attempts
    assert attempts[0]["pid"] != attempts[-1]["pid"]
    assert [a["pid"] for a in lines if "wall_s" in a] == [attempts[-1]["pid"]]  # the killed attempt never ended
    assert same(on_ray.records) == same(local), "Ray's records differ from the local executor's"
    assert on_ray.submitted == len(local)
    again = execute(ctx, train, RAY)
    assert again.submitted == 0 and again.cached == len(local)
    assert run_dir(ctx.runs_dir, on_ray.records[0].key) == on_ray.records[0].dir
