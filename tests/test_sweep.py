"""Run folders and the one reader of finished runs; corrupt or foreign records are a clear error."""

import pytest

from claimbench.contract import RunSpec
from claimbench.errors import CacheError
from claimbench.sweep import DONE, Progress, load_record, read_json, read_records, run_dir, write_config, write_done


def test_read_records_reads_finished_runs_in_plan_order_and_names_an_unfinished_one(tmp_path):
    specs = [RunSpec({"bs": 4, "seed": s}, f"bs=4 seed={s}") for s in (1, 0)]
    for i, spec in enumerate(specs):
        write_config(run_dir(tmp_path, spec.key), spec.key)
        write_done(run_dir(tmp_path, spec.key), spec.key, {"acc": 0.5 + i})
    recs = read_records(tmp_path, specs, "run the train stage")
    dirs = [run_dir(tmp_path, s.key).name for s in specs]
    got = [(r.label, r["acc"], r.dir.name) for r in recs]
    assert got == [("bs=4 seed=1", 0.5, dirs[0]), ("bs=4 seed=0", 1.5, dirs[1])]
    missing = RunSpec({"bs": 8, "seed": 0}, "bs=8 seed=0")
    with pytest.raises(CacheError, match=r"run bs=8 seed=0 \(.*\) is not finished; run the train stage") as err:
        read_records(tmp_path, [*specs, missing], "run the train stage")
    assert "\n" not in str(err.value)


def test_a_record_made_for_another_key_is_refused(tmp_path):
    spec = RunSpec({"k": 1}, "k=1")
    write_config(run_dir(tmp_path, spec.key), spec.key)
    write_done(run_dir(tmp_path, spec.key), {"k": 2}, {"x": 1})
    with pytest.raises(CacheError, match="does not match its config; delete"):
        read_records(tmp_path, [spec], "rerun")
    (run_dir(tmp_path, spec.key) / DONE).write_text("{half")
    with pytest.raises(CacheError, match="corrupt.*delete"):
        read_records(tmp_path, [spec], "rerun")


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
