"""Resumable sweeps: a finished run is never recomputed; corrupt records are a clear error."""

import pytest

from claimbench.errors import CacheError
from claimbench.sweep import DONE, Progress, is_done, load_record, read_json, run_cached, run_dir


def test_run_cached_computes_once(tmp_path):
    calls = []

    def fn(d):
        calls.append(d)
        return {"acc": 0.5}

    key = {"bs": 4, "seed": 1}
    assert run_cached(tmp_path, key, fn) == {"acc": 0.5}
    assert run_cached(tmp_path, key, fn) == {"acc": 0.5}
    assert len(calls) == 1 and is_done(tmp_path, key)
    run_cached(tmp_path, {"bs": 8, "seed": 1}, fn)
    assert len(calls) == 2


def test_killed_run_is_redone_and_corrupt_record_is_reported(tmp_path):
    key = {"k": 1}

    def killed(d):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_cached(tmp_path, key, killed)
    assert not is_done(tmp_path, key)
    assert run_cached(tmp_path, key, lambda d: {"ok": True}) == {"ok": True}
    (run_dir(tmp_path, key) / "done.json").write_text("{half")
    with pytest.raises(CacheError, match="corrupt.*delete"):
        run_cached(tmp_path, key, lambda d: {})


def test_progress_lines_count_runs_and_extrapolate_eta():
    lines, now = [], [0.0]
    p = Progress(4, lines.append, clock=lambda: now[0])
    p.update("a", cached=True)  # cached: counts, takes no time, no ETA yet
    now[0] = 10.0
    p.update("b")
    now[0] = 30.0
    p.update("c")  # 2 computed runs took 30 s: 15 s each, 1 left
    now[0] = 45.0
    p.update("d")
    assert lines == ["[1/4] a (cached) — elapsed 0m00s, ETA –", "[2/4] b — elapsed 0m10s, ETA 0m20s",
                     "[3/4] c — elapsed 0m30s, ETA 0m15s", "[4/4] d — elapsed 0m45s, ETA 0m00s"]


def test_run_cached_reports_progress_for_computed_and_cached_runs(tmp_path):
    lines = []
    p = Progress(2, lines.append)
    run_cached(tmp_path, {"a": 1}, lambda d: {"x": 1}, p, "first")
    run_cached(tmp_path, {"a": 1}, lambda d: {"x": 2}, p, "again")
    assert lines[0].startswith("[1/2] first — elapsed") and lines[1].startswith("[2/2] again (cached)")


def test_corrupt_or_foreign_run_files_are_one_line_errors(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / DONE).write_text('{"key": {"a": 1}, "rec')
    with pytest.raises(CacheError, match=r"done.json is missing or corrupt .*; delete .* to retrain") as err:
        load_record(d)
    assert "\n" not in str(err.value)
    (d / DONE).write_text('{"key": {"a": 1}}')
    with pytest.raises(CacheError, match="lacks its 'record'"):
        load_record(d)
    with pytest.raises(CacheError, match=r"summary.json is missing or corrupt .*; rerun it"):
        read_json(tmp_path / "summary.json", "rerun it")
