"""Resumable sweeps: one content-hashed run folder per run key, with a done marker; the one reader.

    runs/<config_hash(key)>/config.json   the key
                            done.json     {"key": key, "record": record}, written last, atomically
                            lease.json    held while an attempt trains it (claimbench.lease)
                            attempts.jsonl one line per attempt (host, pid, resumed from a checkpoint?)

A finished run (done.json present) is never retrained; an unfinished one is resumed by its own
checkpoint inside the run folder. `read_records` is the only code that reads finished runs: claims
get `Record`s from it (through the executor) and never parse done.json themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claimbench.atomic import write_text_atomic
from claimbench.errors import CacheError
from claimbench.train import config_hash, load_tensors

DONE = "done.json"
CHECKPOINT = "checkpoint.pt"  # a run's resumable state; its presence at start means the attempt resumes


def run_dir(base: Path, key: dict) -> Path:
    return Path(base) / config_hash(key)


def read_json(path: Path, fix: str) -> Any:
    """JSON from `path`; a missing, unreadable or corrupt file is one CacheError naming it and `fix`."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        reason = getattr(e, "strerror", None) or str(e).splitlines()[0]
        raise CacheError(f"{path} is missing or corrupt ({reason}); {fix}.") from None


def load_record(d: Path, key: dict | None = None) -> dict[str, Any]:
    """The record of the finished run in folder `d` (its done.json); if `key` is given, the record must
    have been made for it. CacheError (one line, with the fix) if it is missing, corrupt or foreign."""
    d = Path(d)
    rec = read_json(d / DONE, f"delete {d} to retrain that run")
    if not isinstance(rec, dict) or not isinstance(rec.get("record"), dict):
        raise CacheError(f"run record {d / DONE} lacks its 'record'; delete {d} to retrain that run.")
    if key is not None and rec.get("key") != json.loads(json.dumps(key, default=str)):
        raise CacheError(f"run record {d / DONE} does not match its config; delete {d} to retrain that run.")
    return RunRecord(rec["record"], path=d / DONE)


class MissingField(CacheError, KeyError):
    """A finished run's record lacks a field its claim reads (e.g. a record `{}` written by hand)."""

    def __str__(self) -> str:  # KeyError's str would quote the line
        return str(self.args[0]) if self.args else ""


class RunRecord(dict):
    """A run's record (a plain dict) that names its done.json when a field the claim reads is missing."""

    def __init__(self, *args: Any, path: Path | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.path = path

    def __missing__(self, name: str) -> Any:
        where = f"run record {self.path}" if self.path else "a run record"
        folder = f"delete {self.path.parent}" if self.path else "delete its run folder"
        raise MissingField(f"{where} lacks {name!r} (written by another version, or edited); {folder} to retrain "
                           f"that run.")


@dataclass(frozen=True)
class Record:
    """A finished run: its key, label, folder and record (the dict its run function returned)."""

    key: dict
    label: str
    dir: Path
    record: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.record[name]

    def tensors(self, name: str, what: str) -> Any:
        """A tensor file the run left in its folder (weights only: never unpickles code)."""
        path = self.dir / name
        if not path.exists():
            raise CacheError(f"{path} missing although its run is marked done; delete {self.dir} to rerun it.")
        return load_tensors(path, what)


def read_records(base: Path, specs: Sequence[Any], fix: str) -> list[Record]:
    """The records of the finished runs `specs` (anything with .key and .label) under `base`, in order.
    A run that is not finished is one CacheError naming it and `fix` (e.g. which stage to run)."""
    out = []
    for spec in specs:
        d = run_dir(base, spec.key)
        if not (d / DONE).exists():
            raise CacheError(f"run {spec.label} ({d}) is not finished; {fix}.")
        out.append(Record(spec.key, spec.label, d, load_record(d, spec.key)))
    return out


def write_done(d: Path, key: dict, record: dict[str, Any]) -> None:
    """Mark run folder `d` finished with `record` (atomic: a crash leaves no half-written done.json)."""
    write_text_atomic(d / DONE, json.dumps({"key": key, "record": record}, default=str))


def write_config(d: Path, key: dict) -> None:
    d.mkdir(parents=True, exist_ok=True)
    write_text_atomic(d / "config.json", json.dumps(key, indent=2, default=str))


def finished_runs(base: Path) -> int:
    """How many run folders under `base` are finished (hold done.json)."""
    return sum(1 for _ in Path(base).glob(f"*/{DONE}")) if Path(base).is_dir() else 0


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:
    """Stage-level progress: one log line per finished run, `[k/N] what — elapsed 1m05s, ETA 2m10s`.

    Written through `log` (the stage's logger, so it lands in CI and nohup logs, not only on a TTY).
    The ETA extrapolates the mean wall time of the runs computed in this invocation; cached runs count
    as done but take no time, so a resumed sweep's ETA covers only what is left to compute.
    """

    def __init__(self, total: int, log: Callable[[str], None], clock: Callable[[], float] | None = None):
        import threading
        import time

        self.total, self.log, self.done, self.computed = total, log, 0, 0
        self.lock = threading.Lock()
        self.clock = clock or time.monotonic
        self.start = self.last = self.clock()
        self.compute_s = 0.0

    def update(self, what: str, cached: bool = False) -> str:
        """Count one finished run (`cached`: it was already done) and log its line; returns the line."""
        with self.lock:
            return self._update(what, cached)

    def _update(self, what: str, cached: bool) -> str:
        now = self.clock()
        self.done += 1
        if not cached:
            self.computed += 1
            self.compute_s += now - self.last
        self.last = now
        left = self.total - self.done
        eta = "–" if not self.computed else _clock(left * self.compute_s / self.computed)
        line = (f"[{self.done}/{self.total}] {what}{' (cached)' if cached else ''} — elapsed "
                f"{_clock(now - self.start)}, ETA {eta if left else '0m00s'}")
        self.log(line)
        return line
