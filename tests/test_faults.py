"""Issue 21 item 8, "nothing lost, one line each": every fault a user met gives one line (exit 2, or 130
on Ctrl-C), leaves no half-written or temporary file, and keeps every finished run cached."""

import errno
import functools
import json
import os
import stat
import subprocess
import sys
import threading
import time

import fake_claim
import pytest
import toy_claim
import yaml
from conftest import FIXTURES
from test_executor import make_ctx
from test_stage_and_report import make_results

import claimbench.cards
from claimbench import atomic, executor, report
from claimbench.atomic import atomic_file, write_text_atomic
from claimbench.cards import load_card
from claimbench.claims import load_params
from claimbench.errors import CacheError, CardError, ParamsError, StorageError
from claimbench.executor import SweepFailed, execute
from claimbench.lease import LEASE, Lease, LeaseLost, RunLeased
from claimbench.params import ExecutorParams
from claimbench.stage import TRAIN_INFO, main
from claimbench.sweep import DONE, load_record, run_dir, write_done

ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def save_half_then_fail(obj, f):
    """What torch.save does on a full disk: writes part of the file, then its own error around the OSError."""
    f.write(b"\0" * 1000)
    try:
        raise ENOSPC
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from None


def temps(folder):
    """Temporary files left anywhere under `folder`."""
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def fail_with(err):
    def raising(*args, **kwargs):
        raise err
    return raising


# ---------------------------------------------------------------- atomic writes


def test_an_atomic_write_is_whole_has_the_usual_mode_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.json"
    write_text_atomic(path, "old ✓\n")
    write_text_atomic(path, "new ✓\r\n")
    assert path.read_bytes() == "new ✓\r\n".encode() and temps(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("where", ["fsync", "replace", "writer"])
def test_a_full_disk_keeps_the_old_file_removes_the_temp_and_is_one_line(tmp_path, monkeypatch, where):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    if where == "writer":  # the writer itself fails (torch.save into the file object)
        with pytest.raises(StorageError) as err, atomic_file(path) as f:
            f.write(b"half a checkpoint")
            raise ENOSPC
    else:
        monkeypatch.setattr(os, where, fail_with(ENOSPC))
        with pytest.raises(StorageError) as err:
            write_text_atomic(path, "new")
    assert str(err.value) == (f"cannot write in {tmp_path} (no space left on the device); free space on that disk, "
                              f"then rerun the same command (finished runs are cached).")
    assert path.read_text() == "old" and temps(tmp_path) == []


@pytest.mark.parametrize("code, what, fix", [
    (errno.EROFS, "the file system is read-only", "make it writable (or work in a writable copy)"),
    (errno.EACCES, "permission denied", "make it writable for this user (chmod/chown)"),
    (errno.EPERM, "operation not permitted", "make it writable for this user (chmod/chown)"),
])
def test_a_read_only_or_forbidden_folder_is_one_line(tmp_path, monkeypatch, code, what, fix):
    """Tests run as root, whom chmod does not stop: the refusal is simulated where the temp file is made."""
    monkeypatch.setattr(atomic.tempfile, "mkstemp", fail_with(OSError(code, os.strerror(code))))
    with pytest.raises(StorageError) as err:
        write_text_atomic(tmp_path / "claims.md", "x")
    assert str(err.value).startswith(f"cannot write in {tmp_path} ({what}); {fix}, then rerun")
    assert not (tmp_path / "claims.md").exists()


def test_other_os_errors_and_ctrl_c_pass_through_and_still_remove_the_temp(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", fail_with(OSError(errno.EIO, "Input/output error")))
    with pytest.raises(OSError) as err:
        write_text_atomic(tmp_path / "x", "x")
    assert not isinstance(err.value, StorageError) and temps(tmp_path) == []
    monkeypatch.undo()
    with pytest.raises(KeyboardInterrupt), atomic_file(tmp_path / "x") as f:
        f.write(b"partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_link_at_the_target_is_replaced_never_written_through(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours")
    (tmp_path / "repo").mkdir()
    link = tmp_path / "repo" / "claims.md"
    link.symlink_to(outside)
    write_text_atomic(link, "report")
    assert outside.read_text() == "not yours" and not link.is_symlink() and link.read_text() == "report"


def test_report_outputs_replaced_by_links_are_replaced(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    make_results(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("claims.md", "null_calibration.md", "claims_table.csv", "claims_table.tex"):
        (outside / name).write_text("precious")
        (root / "results" / name).symlink_to(outside / name)
    report.build_report(root, FIXTURES)
    assert all(p.read_text() == "precious" for p in outside.iterdir())
    assert not any(p.is_symlink() for p in (root / "results").iterdir())


def test_a_full_disk_during_the_report_is_one_line_and_leaves_readme_whole(tmp_path, monkeypatch, capsys):
    root = tmp_path / "repo"
    make_results(root)
    readme = root / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold block\n{report.README_END}\nthe rest of the README\n")
    monkeypatch.setattr(claimbench.cards, "CARD_DIR", FIXTURES)
    before = readme.read_text()
    monkeypatch.setattr(os, "replace", fail_with(ENOSPC))
    assert report.main(["--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: cannot write in {root / 'results'} (no space left on the device); free space on that "
                   f"disk, then rerun the same command (finished runs are cached).\n")
    assert readme.read_text() == before and temps(root) == []


def test_a_full_disk_during_a_checkpoint_leaves_the_old_one_and_no_temp(tmp_path, monkeypatch):
    import torch

    from claimbench import train

    ck = tmp_path / "checkpoint.pt"
    train._atomic_save({"w": torch.ones(3)}, ck)

    monkeypatch.setattr(train.torch, "save", save_half_then_fail)
    with pytest.raises(StorageError, match="no space left on the device"):
        train._atomic_save({"w": torch.zeros(3)}, ck)
    monkeypatch.undo()
    assert torch.equal(train.load_tensors(ck)["w"], torch.ones(3)) and sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.pt"]


# ---------------------------------------------------------------- stage entries


@pytest.mark.needs_data
def test_a_full_disk_during_analyse_is_one_line_exit_2_and_no_temp(toy_root, monkeypatch, capsys):
    assert main("toy", ["train"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(os, "replace", fail_with(ENOSPC))
    assert main("toy", ["analyse"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write in ") and "no space left on the device" in err
    assert err.count("\n") == 1 and temps(toy_root) == []


@pytest.mark.needs_data
def test_a_full_disk_during_training_stops_at_the_first_run_in_one_line(toy_root, monkeypatch, capsys):
    from claimbench import train

    monkeypatch.setattr(train.torch, "save", save_half_then_fail)
    assert main("toy", ["train"]) == 2
    err = capsys.readouterr().err
    runs = toy_root / "artifacts" / "ci" / "toy" / "runs"
    assert err.startswith(f"error: cannot write in {runs}") and "no space left on the device" in err
    assert err.count("\n") == 1 and temps(toy_root) == [] and not list(runs.glob(f"*/{DONE}"))
    assert len(list(runs.glob("*/attempts.jsonl"))) == 1  # the second run was not tried on a full disk


@pytest.mark.parametrize("code, what", [(errno.EROFS, "read-only"), (errno.EACCES, "permission denied")])
def test_a_read_only_artifacts_folder_is_one_line_exit_2(toy_root, monkeypatch, capsys, code, what):
    """A folder that cannot be created (mkdir is refused): the stage's own catch, not the write helper's."""
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if "artifacts" in str(path):
            raise OSError(code, os.strerror(code), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    assert main("toy", ["train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write in {toy_root}") and what in err and err.count("\n") == 1, err


@pytest.mark.needs_data
@pytest.mark.parametrize("content, reason", [
    ('{"wall_s": 1.5, "dev', "is missing or corrupt (Unterminated string"),
    ("{}", "lacks a valid 'wall_s' (got None)"),
])
def test_a_corrupt_train_stage_file_is_one_line_naming_it(toy_root, capsys, content, reason):
    assert main("toy", ["train"]) == 0
    info = toy_root / "artifacts" / "ci" / "toy" / TRAIN_INFO
    info.write_text(content)
    capsys.readouterr()
    assert main("toy", ["analyse"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {info} {reason}") and err.count("\n") == 1, err
    assert "delete it, or rerun the train stage (`python stages/toy.py train --scale ci`" in err


@pytest.mark.needs_data
def test_a_run_record_without_its_fields_is_one_line_naming_it(toy_root, capsys):
    assert main("toy", ["train"]) == 0
    done = sorted((toy_root / "artifacts" / "ci" / "toy" / "runs").glob(f"*/{DONE}"))[0]
    rec = json.loads(done.read_text())
    done.write_text(json.dumps({"key": rec["key"], "record": {}}))
    capsys.readouterr()
    assert main("toy", ["analyse"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: run record {done} lacks 'acc' (written by another version, or edited); delete "
                   f"{done.parent} to retrain that run.\n")
    done.write_text("{}")
    assert main("toy", ["analyse"]) == 2
    assert capsys.readouterr().err == (f"error: run record {done} lacks its 'record'; delete {done.parent} to "
                                       f"retrain that run.\n")


def test_a_record_missing_a_field_is_a_cache_error_and_still_a_key_error(tmp_path):
    write_done(tmp_path, {"k": 1}, {"acc": 0.5})
    rec = load_record(tmp_path, {"k": 1})
    assert rec == {"acc": 0.5} and rec.get("loss") is None
    for caught in (CacheError, KeyError):
        with pytest.raises(caught, match=rf"run record {tmp_path / DONE} lacks 'loss'"):
            rec["loss"]


@pytest.mark.needs_data
def test_ctrl_c_is_one_line_exit_130_and_keeps_finished_runs(toy_root, monkeypatch, capsys):
    real = toy_claim.run_one

    def interrupted_on_seed_1(ctx, run_dir, data, seed):
        if seed == 1:
            raise KeyboardInterrupt
        return real(ctx, run_dir, data, seed)

    monkeypatch.setattr(toy_claim, "run_one", interrupted_on_seed_1)
    assert main("toy", ["train"]) == 130
    runs = toy_root / "artifacts" / "ci" / "toy" / "runs"
    assert capsys.readouterr().err == (f"interrupted: 1 finished run in {runs} is cached; rerun the same command to "
                                       f"resume.\n")
    assert len(list(runs.glob(f"*/{DONE}"))) == 1 and not list(runs.glob(f"*/{LEASE}"))
    monkeypatch.setattr(toy_claim, "run_one", real)
    assert main("toy", ["train"]) == 0
    assert len(list(runs.glob(f"*/{DONE}"))) == 2


# ---------------------------------------------------------------- params and cards


def test_a_duplicate_key_in_params_is_refused_naming_its_path(toy_root):
    text = (toy_root / "params.yaml").read_text()
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if line.strip() == "epochs: 2")  # the first scale: ci
    lines.insert(i + 1, lines[i].replace("epochs: 2", "epochs: 200"))
    (toy_root / "params.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(ParamsError) as e:
        load_params(toy_root / "params.yaml")
    assert str(e.value) == (f"params: {toy_root / 'params.yaml'} is not valid YAML: duplicate key toy.ci.epochs "
                            f"(lines {i + 1} and {i + 2}); keep one.")


@pytest.mark.parametrize("value, shown", [(".inf", "inf"), ("-.inf", "-inf"), (".nan", "nan")])
def test_a_non_finite_number_in_params_is_refused(toy_root, value, shown):
    p = yaml.safe_load((toy_root / "params.yaml").read_text())
    p["executor"] = {"cpus_per_run": "X"}
    (toy_root / "params.yaml").write_text(yaml.safe_dump(p).replace("cpus_per_run: X", f"cpus_per_run: {value}"))
    with pytest.raises(ParamsError, match=rf"^params: executor.cpus_per_run = {shown} in .* is not a finite number"):
        load_params(toy_root / "params.yaml")


def test_invalid_yaml_in_params_is_one_line(toy_root):
    (toy_root / "params.yaml").write_text("scale: ci\ntoy: [1, 2\n")
    with pytest.raises(ParamsError) as e:
        load_params(toy_root / "params.yaml")
    assert "\n" not in str(e.value) and "(line 3, column 1)" in str(e.value)


def test_a_duplicate_key_in_a_card_is_refused(tmp_path):
    text = (FIXTURES / "toy.yaml").read_text()
    (tmp_path / "toy.yaml").write_text(text + "title: a second title\n")
    with pytest.raises(CardError, match=r"invalid YAML: duplicate key title \(lines \d+ and \d+\); keep one$"):
        load_card("toy", tmp_path)
    assert load_card("toy", FIXTURES).id == "toy"


# ---------------------------------------------------------------- leases


def _holder():
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_waiting_lease_says_which_file_and_holder_every_interval(tmp_path):
    proc = _holder()
    lines = []
    try:
        (tmp_path / LEASE).write_text(f'{{"host": "{os.uname().nodename}", "pid": {proc.pid}, "token": "x"}}')
        with pytest.raises(RunLeased):
            Lease(tmp_path, wait_s=0.45, poll_s=0.02, log_every_s=0.2, log=lines.append).acquire()
    finally:
        proc.kill()
        proc.wait()
    assert 2 <= len(lines) <= 4, lines
    assert lines[0].startswith(f"waiting for run folder {tmp_path}: {tmp_path / LEASE} is held by "
                               f"{os.uname().nodename}:{proc.pid} (heartbeat 0 s ago); it is taken over once")
    assert lines[0].endswith(f"delete {tmp_path / LEASE} if no process trains that run.")


@pytest.mark.parametrize("content, says", [
    ("garbage", "is unreadable (not JSON); it is taken over once untouched for 0 s"),
    ('{"host": "elsewhere", "pid": 7, "token": "y"}', "is held by elsewhere:7 (heartbeat 0 s ago)"),
])
def test_an_unreadable_or_foreign_lease_is_named_then_taken_over_when_stale(tmp_path, content, says):
    (tmp_path / LEASE).write_text(content)
    lines = []
    with Lease(tmp_path, ttl_s=0.3, wait_s=5, poll_s=0.02, log_every_s=10, log=lines.append) as lease:
        assert not lease.finished and lease.holder()["token"] == lease.token
    assert len(lines) == 1 and says in lines[0], lines


class _Paused(Lease):
    """A lease whose take-over waits on `before` (once): makes two takers judge the same stale lease."""

    def __init__(self, *args, before=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.before = before

    def _take_over(self, judged):
        if self.before is not None:
            before, self.before = self.before, None
            before()
        return super()._take_over(judged)


def _stale_lease(folder):
    proc = _holder()
    proc.kill()
    proc.wait()
    (folder / LEASE).write_text(f'{{"host": "{os.uname().nodename}", "pid": {proc.pid}, "token": "dead"}}')


def test_a_second_taker_of_the_same_stale_lease_leaves_the_first_ones_fresh_lease_alone(tmp_path):
    """The race: A and B both judge the dead holder's lease stale; A takes it over and holds; then B takes
    over. B must find the lease is no longer the stale one it judged, and wait, not train too."""
    _stale_lease(tmp_path)
    b_judged, a_holds = threading.Event(), threading.Event()
    a = _Paused(tmp_path, wait_s=5, poll_s=0.01, before=b_judged.wait, log=lambda line: None)
    b = _Paused(tmp_path, wait_s=0.4, poll_s=0.01, before=lambda: (b_judged.set(), a_holds.wait(5)),
                log=lambda line: None)
    outcome = {}

    def take_b():
        try:
            b.acquire()
            outcome["b"] = "holds"
        except RunLeased:
            outcome["b"] = "waited"

    tb = threading.Thread(target=take_b)
    tb.start()
    a.acquire()
    a_holds.set()
    tb.join(10)
    try:
        assert outcome == {"b": "waited"} and a.holder()["token"] == a.token and a._mine() and a.lost is None
    finally:
        a.release()
        b.release()


def test_of_many_takers_of_one_stale_lease_exactly_one_holds_it(tmp_path):
    for trial in range(10):
        d = tmp_path / str(trial)
        d.mkdir()
        _stale_lease(d)
        judged = threading.Barrier(3)
        takers = [_Paused(d, wait_s=0.3, poll_s=0.01, before=functools.partial(judged.wait, 5), log=lambda line: None)
                  for _ in range(3)]
        held = []

        def take(lease, held=held):
            try:
                held.append(lease.acquire())
            except RunLeased:
                pass

        threads = [threading.Thread(target=take, args=(t,)) for t in takers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(held) == 1 and held[0].holder()["token"] == held[0].token, trial
        held[0].release()


def test_a_lost_lease_is_noticed_by_the_heartbeat_and_fences_the_folder(tmp_path):
    lines = []
    lease = Lease(tmp_path, ttl_s=0.2, poll_s=0.01, log=lines.append).acquire()
    try:
        write_text_atomic(tmp_path / "checkpoint.pt", "mine")  # held: writes go through
        (tmp_path / LEASE).write_text('{"host": "elsewhere", "pid": 9, "token": "theirs"}')  # taken over
        deadline = time.monotonic() + 5
        while lease.lost is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lines == [f"lost the lease on {tmp_path} to elsewhere:9 (this attempt paused longer than its 0 s "
                         f"heartbeat allows, or {tmp_path / LEASE} was replaced); this attempt stops without "
                         f"marking the run done."]
        with pytest.raises(LeaseLost, match="lost the lease"):
            write_done(tmp_path, {"k": 1}, {"x": 1})
        assert not (tmp_path / DONE).exists()
    finally:
        lease.release()
    assert '"theirs"' in (tmp_path / LEASE).read_text()  # the new holder's lease is left alone
    write_text_atomic(tmp_path / "other", "x")  # released: the fence is gone


def test_an_attempt_whose_lease_is_taken_over_does_not_mark_the_run_done(tmp_path, monkeypatch):
    monkeypatch.setattr(executor, "Lease", functools.partial(Lease, ttl_s=0.2, poll_s=0.01, log=lambda line: None))

    def taken_over_mid_run(ctx, run_dir, data, i):
        (run_dir / LEASE).write_text('{"host": "elsewhere", "pid": 9, "token": "theirs"}')
        time.sleep(0.4)
        return {"i": i}

    monkeypatch.setattr(fake_claim, "run_one", taken_over_mid_run)
    ctx = make_ctx(tmp_path, n=1, barrier=False)
    with pytest.raises(SweepFailed, match=r"run i=0 failed .*: lost the lease on .* to elsewhere:9"):
        execute(ctx, fake_claim, ExecutorParams(workers=1))
    assert not list(ctx.runs_dir.glob(f"*/{DONE}"))


# ---------------------------------------------------------------- a killed local worker


def test_a_killed_worker_s_runs_are_resubmitted_on_a_fresh_pool(tmp_path, caplog):
    ctx = make_ctx(tmp_path / "repo", n=3, barrier=False, die=str(tmp_path / "died-once"))
    with caplog.at_level("INFO"):
        rep = execute(ctx, fake_claim, ExecutorParams(workers=2))
    assert (tmp_path / "died-once").exists() and [r["x"] for r in rep.records] == [1000, 1001, 1004]
    assert "a worker process died (killed, or out of memory?); resubmitting its" in caplog.text
    assert "(retry 1 of 2): " in caplog.text and "i=0" in caplog.text.split("(retry 1 of 2): ")[1]


def test_a_worker_that_always_dies_fails_its_run_in_one_line_and_the_others_are_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(executor, "POOL_RETRIES", 1)
    ctx = make_ctx(tmp_path, n=3, barrier=False, die="always")
    with pytest.raises(SweepFailed) as err:
        execute(ctx, fake_claim, ExecutorParams(workers=2))
    msg = str(err.value)  # the runs a dying pool took with it may fail too: each is named
    assert ("a worker process died 2 times while it was unfinished (killed, or out of memory? try fewer "
            "executor.workers); rerun the stage to resume it") in msg and "i=0" in msg
    assert not (run_dir(ctx.runs_dir, {"kind": "first", "i": 0}) / DONE).exists()


# ---------------------------------------------------------------- Ctrl-C on local workers

DRIVER = """
import sys, torch
from pathlib import Path
sys.path.insert(0, {tests!r})
import fake_claim
from claimbench.contract import Context
from claimbench.params import DataParams, ExecutorParams, Params
from claimbench.executor import execute
from claimbench.stage import interrupted_line
params = Params("ci", DataParams(device="cpu"), {{}}, {{}}, ExecutorParams())
cfg = fake_claim.Config(n=6, barrier=False, hold_s=1.0)
ctx = Context("fake", "ci", cfg, params, torch.device("cpu"), Path({root!r}))
if __name__ == "__main__":
    try:
        execute(ctx, fake_claim, ExecutorParams(workers=2))
    except KeyboardInterrupt:
        print(interrupted_line(ctx.runs_dir), file=sys.stderr)
        sys.exit(130)
"""


def test_ctrl_c_on_local_workers_stops_them_without_tracebacks(tmp_path):
    import signal
    from pathlib import Path

    (tmp_path / "driver.py").write_text(DRIVER.format(tests=str(Path(__file__).parent), root=str(tmp_path / "repo")))
    env = {**os.environ, "PYTHONPATH": str(Path(executor.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py")], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    runs = tmp_path / "repo" / "artifacts" / "ci" / "fake" / "runs"
    deadline = time.monotonic() + 120
    while not list(runs.glob(f"*/{DONE}")) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err and "leaked" not in err, err
    assert not list(runs.glob(f"*/{LEASE}")) and temps(tmp_path) == []  # the stopped runs unwound: leases released
    finished = len(list(runs.glob(f"*/{DONE}")))
    assert 1 <= finished < 6 and err.strip().splitlines()[-1] == (
        f"interrupted: {finished} finished run{'s' * (finished != 1)} in {runs} {'are' if finished != 1 else 'is'} "
        f"cached; rerun the same command to resume.")


def test_ctrl_c_in_the_front_door_commands_is_one_line_exit_130(tmp_path, monkeypatch, capsys):
    from claimbench import robustness, suite

    ctx = make_ctx(tmp_path)
    monkeypatch.setattr(robustness.claim_registry, "registry", lambda: {"fake": fake_claim})
    monkeypatch.setattr(robustness, "make_context", lambda *args, **kwargs: ctx)
    monkeypatch.setattr(robustness, "run_train", fail_with(KeyboardInterrupt()))
    assert robustness.main(["--claims", "fake"]) == 130
    assert capsys.readouterr().err == (f"interrupted: 0 finished runs in {ctx.runs_dir} are cached; rerun the same "
                                       f"command to resume.\n")
    monkeypatch.setattr(suite, "_main", fail_with(KeyboardInterrupt()))
    assert suite.main(["--scale", "ci"]) == 130
    assert capsys.readouterr().err == ("interrupted: the claims that finished have their results written and every "
                                       "finished run is cached; rerun the same command to resume.\n")


def test_ctrl_c_in_a_timed_run_writes_no_timing(toy_root, monkeypatch, capsys):
    from claimbench import timed_run

    monkeypatch.setattr(timed_run.subprocess, "call", fail_with(KeyboardInterrupt()))
    assert timed_run.main(["t1", "--", "true"]) == 130
    assert capsys.readouterr().err == ("timed_run t1: interrupted; nothing written (rerun the same command to "
                                       "resume).\n")
    assert not (toy_root / timed_run.OUT_DIR).exists()


def test_a_failed_write_that_names_no_file_names_the_working_tree(tmp_path, monkeypatch):
    from claimbench.atomic import storage_error

    monkeypatch.chdir(tmp_path)
    assert str(storage_error(ENOSPC)).startswith(f"cannot write under {tmp_path} (no space left on the device)")
    assert storage_error(OSError(errno.EIO, "Input/output error")) is None
