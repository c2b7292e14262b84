"""The executor: plans with barriers, finished runs never resubmitted, failures collected, local
workers, leases, progress lines."""

import concurrent.futures
import logging
import os
import subprocess
import sys
import time

import fake_claim
import pytest

from claimbench.contract import Context
from claimbench.errors import ClaimbenchError
from claimbench.executor import ATTEMPTS, SweepFailed, collect, execute, plan_compute, run_compute
from claimbench.lease import LEASE, Lease, RunLeased
from claimbench.params import DataParams, ExecutorParams, Params
from claimbench.sweep import DONE, run_dir


def make_ctx(root, **cfg):
    import torch

    params = Params("ci", DataParams(device="cpu"), {}, {}, ExecutorParams(workers=1))
    return Context("fake", "ci", fake_claim.Config(**cfg), params, torch.device("cpu"), root)


def plain(records):
    return [(r.label, {k: v for k, v in r.record.items() if k != "pid"}) for r in records]


def test_plan_with_barrier_runs_once_then_submits_nothing(tmp_path, caplog):
    ctx = make_ctx(tmp_path)
    with caplog.at_level(logging.INFO):
        first = execute(ctx, fake_claim, ExecutorParams(workers=1))
    assert first.submitted == 6 and first.cached == 0
    # the barrier's runs were planned from the first batch's records: 4 runs, x = i² + 1000
    assert [r.key.get("total") for r in first.records[4:]] == [sum(i * i + 1000 for i in range(4))] * 2
    assert "[6/6] after j=1" in caplog.text and "ETA" in caplog.text
    again = execute(ctx, fake_claim, ExecutorParams(workers=1))
    assert again.submitted == 0 and again.cached == 6
    assert plain(again.records) == plain(first.records) == plain(collect(ctx, fake_claim))


def test_data_load_once_per_process_and_not_at_all_when_all_done(tmp_path):
    fake_claim.LOADS["n"] = 0
    ctx = make_ctx(tmp_path / "a", n=7)  # a config no other test loads data for
    execute(ctx, fake_claim, ExecutorParams(workers=1))
    assert fake_claim.LOADS["n"] == 1
    execute(ctx, fake_claim, ExecutorParams(workers=1))
    assert fake_claim.LOADS["n"] == 1


def test_failures_are_collected_and_the_others_finish(tmp_path):
    ctx = make_ctx(tmp_path, n=5, fail=[1, 3], barrier=False)
    with pytest.raises(SweepFailed) as err:
        execute(ctx, fake_claim, ExecutorParams(workers=1))
    msg = str(err.value)
    assert msg.startswith("2 of 5 runs failed") and "i=1: run 1 was told to fail" in msg and "i=3:" in msg
    done = [(run_dir(ctx.runs_dir, {"kind": "first", "i": i}) / DONE).exists() for i in range(5)]
    assert done == [True, False, True, False, True]
    with pytest.raises(ClaimbenchError, match="run i=1 .* is not finished; run the train stage"):
        collect(ctx, fake_claim)


def test_a_failure_before_a_barrier_stops_at_the_barrier(tmp_path):
    ctx = make_ctx(tmp_path, n=3, fail=[0])
    with pytest.raises(SweepFailed, match=r"run i=0 failed \(1 of 3; the others finished"):
        execute(ctx, fake_claim, ExecutorParams(workers=1))
    assert not list(ctx.runs_dir.glob("*/done.json"))[3:]  # nothing after the barrier was planned


def test_a_bug_in_a_run_is_one_line_with_its_traceback_kept(tmp_path, monkeypatch):
    ctx = make_ctx(tmp_path, n=0, barrier=False)
    monkeypatch.setattr(fake_claim, "plan", lambda ctx: [fake_claim.RunSpec({"bug": 1}, "bug", {"i": -1})])
    with pytest.raises(SweepFailed) as err:
        execute(ctx, fake_claim, ExecutorParams(workers=1))
    assert "\n" not in str(err.value) and "ValueError: a bug (traceback: " in str(err.value)
    assert "with a second line" in (run_dir(ctx.runs_dir, {"bug": 1}) / "error.log").read_text()


def test_local_workers_give_the_same_records_in_other_processes(tmp_path):
    serial = execute(make_ctx(tmp_path / "serial"), fake_claim, ExecutorParams(workers=1))
    parallel = execute(make_ctx(tmp_path / "parallel"), fake_claim, ExecutorParams(workers=2))
    assert plain(parallel.records) == plain(serial.records)
    assert {r["pid"] for r in parallel.records} - {os.getpid()}, "workers=2 trained in this process"


def test_local_workers_after_a_barrier_that_ran_torch_do_not_hang(tmp_path):
    """Regression: forked workers deadlocked in OpenMP once the driver had run a multi-threaded torch op
    (EL2N's barrier averages scores); spawned workers do not. A hang fails on the timeout."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as t:
            rep = t.submit(execute, make_ctx(tmp_path, n=2, torch_work=True), fake_claim, ExecutorParams(workers=2))
            assert rep.result(timeout=120).submitted == 4
    finally:
        torch.set_num_threads(threads)


def test_executor_is_validated_and_never_a_stage_param():
    from claimbench.params import build_config

    with pytest.raises(ClaimbenchError, match=r"executor.kind = 'slurm' is not valid"):
        build_config(ExecutorParams, {"kind": "slurm"}, "executor")
    with pytest.raises(ClaimbenchError, match="gpus_per_run = 1.5 is not allowed"):
        build_config(ExecutorParams, {"gpus_per_run": 1.5}, "executor")
    import yaml
    from conftest import REPO

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert all("executor" not in s.get("params", []) for s in stages.values())


# ---------------------------------------------------------------- leases


def _holder():
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_live_lease_is_waited_for_then_reported(tmp_path):
    proc = _holder()
    try:
        (tmp_path / LEASE).write_text(f'{{"host": "{os.uname().nodename}", "pid": {proc.pid}, "token": "x"}}')
        t0 = time.monotonic()
        with pytest.raises(RunLeased, match=rf"being trained by .*:{proc.pid}"):
            Lease(tmp_path, wait_s=0.5, poll_s=0.05).acquire()
        assert time.monotonic() - t0 >= 0.5
    finally:
        proc.kill()
        proc.wait()


def test_a_dead_holders_lease_is_taken_over(tmp_path):
    proc = _holder()
    proc.kill()
    proc.wait()
    (tmp_path / LEASE).write_text(f'{{"host": "{os.uname().nodename}", "pid": {proc.pid}, "token": "x"}}')
    with Lease(tmp_path, wait_s=0.5) as lease:
        assert not lease.finished and '"token": "x"' not in (tmp_path / LEASE).read_text()
    assert not (tmp_path / LEASE).exists()


def test_an_old_heartbeat_from_another_host_is_stale(tmp_path):
    (tmp_path / LEASE).write_text('{"host": "elsewhere", "pid": 1, "token": "x"}')
    os.utime(tmp_path / LEASE, (time.time() - 500, time.time() - 500))
    with Lease(tmp_path, ttl_s=120, wait_s=0.5) as lease:
        assert not lease.finished


def test_a_run_finished_by_the_holder_meanwhile_is_not_retrained(tmp_path):
    (tmp_path / LEASE).write_text(f'{{"host": "{os.uname().nodename}", "pid": {os.getppid()}, "token": "x"}}')
    (tmp_path / DONE).write_text("{}")
    with Lease(tmp_path, wait_s=0.5) as lease:
        assert lease.finished


def test_a_ray_that_cannot_start_or_connect_is_one_line(monkeypatch):
    """ray.init raising (or exiting, as it does after minutes of retrying an unreachable address)."""
    ray = pytest.importorskip("ray")
    from claimbench.executor import ray_session

    if ray.is_initialized():
        pytest.skip("a Ray session is already up in this process")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    for failure in (ConnectionError("GCS at 10.0.0.9:6379 unreachable\nretrying"), SystemExit(15)):
        def init(failure=failure, **kwargs):
            raise failure

        monkeypatch.setattr(ray, "init", init)
        with pytest.raises(ClaimbenchError, match=r"could not start or reach Ray \(10.0.0.9:6379\): ") as e:
            ray_session(ExecutorParams(kind="ray", address="10.0.0.9:6379"))
        assert "\n" not in str(e.value) and "check `ray status`" in str(e.value)


def test_each_finished_attempt_records_its_own_compute(tmp_path):
    ctx = make_ctx(tmp_path, n=2, barrier=False)
    report = execute(ctx, fake_claim, ExecutorParams(workers=1))
    for rec in report.records:
        cost = run_compute(rec.dir)
        assert cost["attempts"] == cost["finished"] == 1 and cost["wall_s"] >= 0 and cost["cpu_s"] >= 0
    d = report.records[0].dir
    with open(d / ATTEMPTS, "a") as f:  # a killed attempt (start, no end) and a line cut mid-write
        f.write('{"pid": 1, "start": 0, "resumed_from_checkpoint": true}\n{"pid": 1, "end"')
    (d / ATTEMPTS).write_text((d / ATTEMPTS).read_text() + '\n{"pid": 2, "wall_s": 2.5, "cpu_s": 4.0}\n')
    cost = run_compute(d)
    assert (cost["attempts"], cost["finished"]) == (2, 2)
    assert cost["wall_s"] >= 2.5 and cost["cpu_s"] >= 4.0
    assert run_compute(tmp_path / "nowhere") == {"wall_s": 0.0, "cpu_s": 0.0, "attempts": 0, "finished": 0}


def test_plan_compute_sums_the_runs_own_records_and_does_not_shrink_on_a_cached_rerun(tmp_path):
    """The cost column's source: the plan's run folders, barrier runs included; re-executing a finished plan
    (all cached) leaves it unchanged, where a stage's wall time would fall to ~0."""
    ctx = make_ctx(tmp_path)
    report = execute(ctx, fake_claim, ExecutorParams(workers=1))
    first = plan_compute(ctx, fake_claim)
    expect = sum(run_compute(r.dir)["wall_s"] for r in report.records)
    assert first["runs"] == first["runs_recorded"] == 6
    assert first["wall_s"] == pytest.approx(expect, abs=0.1) and first["cpu_s"] >= 0
    again = execute(ctx, fake_claim, ExecutorParams(workers=1))
    assert again.submitted == 0 and plan_compute(ctx, fake_claim) == first
    (report.records[0].dir / ATTEMPTS).unlink()  # a run trained before compute was recorded
    assert plan_compute(ctx, fake_claim)["runs_recorded"] == 5


def test_the_analyse_stage_walks_the_plan_once(tmp_path, monkeypatch):
    """collect_with_compute reads records and compute in one walk: the plan (and its Barrier) runs once,
    giving what collect and plan_compute give separately."""
    from claimbench.executor import collect_with_compute

    ctx = make_ctx(tmp_path)
    execute(ctx, fake_claim, ExecutorParams(workers=1))
    calls = {"n": 0}
    plan = fake_claim.plan

    def counted(c):
        calls["n"] += 1
        return plan(c)

    monkeypatch.setattr(fake_claim, "plan", counted)
    records, compute = collect_with_compute(ctx, fake_claim)
    assert calls["n"] == 1
    assert plain(records) == plain(collect(ctx, fake_claim)) and compute == plan_compute(ctx, fake_claim)
    assert compute["runs"] == len(records) == 6
