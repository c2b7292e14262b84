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
