"""The report's cost column (the runs' own compute) and the whole-suite timer's provenance file."""

import json
import sys

from claimbench import timed_run
from claimbench.report import cost_text


def test_cost_column_sums_run_compute_and_marks_runs_without_a_record():
    prov = {"wall_s": 3.0, "device": "cpu (x86_64, 2 threads)",
            "compute": {"runs": 4, "runs_recorded": 4, "wall_s": 540.0, "cpu_s": 1080.0, "analyse_wall_s": 60.0}}
    assert cost_text(prov) == "10.0 min (18.0 CPU-min) over 4 runs, cpu (x86_64, 2 threads)"
    prov["compute"]["runs_recorded"] = 3
    assert cost_text(prov).startswith("≥ 10.0 min")
    old = {"wall_s": 120.0, "device": "cpu"}  # a result written before runs recorded their compute
    assert cost_text(old) == "2.0 min (stage wall), cpu"


def test_timed_run_writes_its_provenance_and_passes_the_exit_status(toy_root, monkeypatch):
    monkeypatch.chdir(toy_root)
    rc = timed_run.main(["probe", "--", sys.executable, "-c", "import sys; sys.exit(3)"])
    assert rc == 3
    rec = json.loads((toy_root / "results" / "suite_runs" / "probe.json").read_text())
    assert rec["exit_status"] == 3 and rec["wall_s"] >= 0 and rec["from_clean"] is True
    assert rec["scale"] and rec["cpu_model"] and rec["executor"]["kind"] == "local"


def test_timed_run_refuses_a_bad_call(capsys):
    assert timed_run.main(["probe", "dvc", "repro"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "usage" in err


def test_an_explicit_commit_wins_over_a_copied_git(monkeypatch):
    """The GPU box's copy carries a stale .git: CLAIMBENCH_GIT_SHA, when set, is what provenance records."""
    import torch

    from claimbench.results import provenance

    monkeypatch.setenv("CLAIMBENCH_GIT_SHA", "abc123")
    prov = provenance(torch.device("cpu"), 1.0, [0], "ci")
    assert (prov["git_sha"], prov["git_sha_source"], prov["git_dirty"]) == ("abc123", "env CLAIMBENCH_GIT_SHA", None)
    monkeypatch.delenv("CLAIMBENCH_GIT_SHA")
    assert provenance(torch.device("cpu"), 1.0, [0], "ci")["git_sha_source"] == "git"


def test_timed_run_reads_the_scale_the_command_runs_at():
    """`timed-run NAME -- python -m claimbench suite --scale long` counts artifacts/long/, not params.yaml's scale."""
    assert timed_run.command_scale(["python", "-m", "claimbench", "suite", "--scale", "long"]) == "long"
    assert timed_run.command_scale(["x", "--scale=gpu"]) == "gpu"
    assert timed_run.command_scale(["dvc", "repro"]) is None


def test_engine_compare_reads_both_runs_costs_and_refuses_a_missing_one(tmp_path, capsys):
    """Issue 23's before/after record: per-claim CPU seconds and knobs from each run's provenance, suite walls
    from the timed_run records; a missing run is one line, exit 2."""
    import json

    from claimbench import engine_compare
    from claimbench.claims import claim_ids
    for side, cpu, knobs in (("b", 100.0, []), ("a", 80.0, [{"fused_optimizer": True, "channels_last": True}])):
        for cid in claim_ids():
            d = tmp_path / side / "results" / "quick" / cid
            d.mkdir(parents=True)
            prov = {"git_sha": "x", "compute": {"runs": 2, "cpu_s": cpu, "wall_s": cpu, "engine": knobs}}
            (d / "metrics.json").write_text(json.dumps({"provenance": prov}))
        runs = tmp_path / side / "results" / "suite_runs"
        runs.mkdir(parents=True)
        name = "quick-v5-from-clean" if side == "b" else "quick-v5-engine-after"
        (runs / f"{name}.json").write_text(json.dumps({"wall_s": cpu * 6, "from_clean": True, "start_utc": "t",
                                                       "git_sha": "x"}))
    out = tmp_path / "cmp.json"
    assert engine_compare.main([str(tmp_path / "b"), str(tmp_path / "a"), str(out)]) == 0
    rec = json.loads(out.read_text())
    first = rec["claims"][claim_ids()[0]]
    assert first["cpu_ratio"] == 1.25 and first["before"]["engine"].startswith("off")
    assert first["after"]["engine"] == [{"channels_last": True, "fused_optimizer": True}]
    assert rec["suite"]["before"]["wall_s"] == 600.0 and rec["suite"]["after"]["wall_s"] == 480.0
    assert engine_compare.main([str(tmp_path / "b"), str(tmp_path / "nowhere"), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not found" in err


def test_a_suite_of_some_claims_never_overwrites_the_whole_suites_record():
    """A one-claim `suite --claims nc` once replaced results/suite_runs/long-suite.json, the whole long run's."""
    from claimbench.suite import record_name

    every = ["a", "b", "c"]
    assert record_name("long", ["c", "a", "b"], every) == "long-suite.json"
    assert record_name("long", ["b"], every) == "long-suite-b.json"
    assert record_name("gpu", ["a", "c"], every) == "gpu-suite-a+c.json"
