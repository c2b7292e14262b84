"""A lease file in a run folder: two live attempts never train the same run.

    with Lease(run_dir) as lease:   # waits while another live attempt holds it
        if lease.finished: ...      # that attempt finished the run meanwhile: read its record
        else: train

The lease (`lease.json`: host, pid, token) appears whole and only if absent (hard link of a written
file), and its mtime is refreshed every `ttl_s / 4` seconds by a heartbeat thread. It is stale, and
taken over, when its process is gone (same host) or its heartbeat is older than `ttl_s` (another host,
e.g. a Ray node that died; an unreadable lease file counts as another host's). A live holder is waited
for up to `wait_s`, with a line every `log_every_s` naming the file and its holder, then the run fails
with a line saying who holds it.

Taking over is safe against a race: under a take-over lock, a taker replaces the lease (one rename)
only if it is still the stale one it judged, so of several takers exactly one holds it. And each
heartbeat checks that lease.json still holds this attempt's token: if another attempt took the lease
over (this one paused past `ttl_s`), the lease is lost — one line is logged, and every atomic write
into the run folder (checkpoint, done.json: claimbench.atomic's fence) raises LeaseLost, so the run
stops without being marked done.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from claimbench.atomic import fence, storage_error
from claimbench.errors import ClaimbenchError
from claimbench.sweep import DONE

LEASE = "lease.json"
TAKEOVER = "lease.json.takeover"  # held for the instant of replacing a stale lease
TAKEOVER_STALE_S = 10.0


class RunLeased(ClaimbenchError):
    """Another live attempt holds the run's lease for longer than we wait."""


class LeaseLost(ClaimbenchError):
    """Another attempt took this attempt's lease over: this one must not finish (mark done) the run."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _log(line: str) -> None:
    # WARNING: a spawned worker has no logging set up, and Python's last-resort handler shows warnings
    logging.getLogger("claimbench.lease").warning(line)


class Lease:
    def __init__(self, run_dir: Path, ttl_s: float = 120.0, wait_s: float = 3600.0, poll_s: float = 0.5,
                 log_every_s: float = 30.0, log: Callable[[str], None] = _log):
        self.dir, self.path = Path(run_dir), Path(run_dir) / LEASE
        self.ttl_s, self.wait_s, self.poll_s, self.log_every_s, self.log = ttl_s, wait_s, poll_s, log_every_s, log
        self.token = uuid.uuid4().hex
        self.finished = False
        self.lost: str | None = None  # the line saying who took the lease over, once the heartbeat finds out
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._fence: contextlib.ExitStack | None = None

    @staticmethod
    def _read(path: Path) -> dict | None:
        """A lease file's content; None if absent; {'unreadable': why} if it cannot be read as a lease."""
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            return {"unreadable": getattr(e, "strerror", None) or type(e).__name__}
        try:
            holder = json.loads(text)
        except ValueError:
            return {"unreadable": "not JSON" if text.strip() else "empty"}
        return holder if isinstance(holder, dict) else {"unreadable": "not a JSON object"}

    def holder(self) -> dict | None:
        """The current lease's content, or None if there is none ({'unreadable': why} counts as another
        host's lease: stale once untouched for ttl_s)."""
        return self._read(self.path)

    def _identity(self, path: Path) -> tuple | None:
        """What tells one lease file from another: inode, mtime and content."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, json.dumps(self._read(path), sort_keys=True)

    def _stale(self, holder: dict) -> bool:
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return False
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            return not _alive(holder["pid"]) or age > self.ttl_s
        return age > self.ttl_s

    def _body(self) -> str:
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": self.token,
                           "since": time.time()})

    def _create(self, path: Path) -> bool:
        """Create `path` holding this attempt's lease, whole and only if absent: write a private file,
        then hard-link it into place. False if `path` exists."""
        body = self._body()
        tmp = self.dir / f".{LEASE}.{self.token}.tmp"
        try:
            tmp.write_text(body)
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as e:
            if e.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP) and tmp.exists():
                return self._create_exclusive(path, body)  # a file system without hard links
            if (err := storage_error(e, path)) is None:
                raise
            raise err from None
        finally:
            tmp.unlink(missing_ok=True)
        return True

    @staticmethod
    def _create_exclusive(path: Path, body: str) -> bool:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(body)
        return True

    def _try_create(self) -> bool:
        return self._create(self.path)

    def _take_over(self, judged: tuple) -> bool:
        """Replace the stale lease `judged` (its `_identity`) by this attempt's, under a take-over lock: of
        several takers that judged the same lease stale only the first replaces it; the others find a
        lease that is no longer the one they judged. The replacement is one rename, so a lease is always
        in place (no moment for a third attempt to create its own). True if this attempt now holds it."""
        lock = self.dir / TAKEOVER
        if not self._create(lock):
            with contextlib.suppress(OSError):  # a taker that died inside the lock (microseconds): clear it
                if time.time() - lock.stat().st_mtime > TAKEOVER_STALE_S:
                    lock.unlink()
            time.sleep(self.poll_s)
            return False
        try:
            if self._identity(self.path) != judged:
                return False
            tmp = self.dir / f".{LEASE}.{self.token}.new"
            try:
                tmp.write_text(self._body())
                os.replace(tmp, self.path)
            except OSError as e:
                tmp.unlink(missing_ok=True)
                if (err := storage_error(e, self.path)) is None:
                    raise
                raise err from None
            return True
        finally:
            lock.unlink(missing_ok=True)

    def _describe(self, holder: dict) -> str:
        if "unreadable" in holder:
            return (f"{self.path} is unreadable ({holder['unreadable']}); it is taken over once untouched for "
                    f"{self.ttl_s:.0f} s")
        try:
            beat = f"heartbeat {time.time() - self.path.stat().st_mtime:.0f} s ago"
        except OSError:
            beat = "heartbeat unknown"
        return (f"{self.path} is held by {holder.get('host')}:{holder.get('pid')} ({beat}); it is taken over once "
                f"that process is gone or its heartbeat is older than {self.ttl_s:.0f} s")

    def acquire(self) -> Lease:
        self.dir.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        deadline, next_log = start + self.wait_s, start
        while True:
            if (self.dir / DONE).exists():
                self.finished = True
                return self
            if self._try_create():
                break
            judged = self._identity(self.path)
            holder = self.holder()
            if holder is None or judged is None:
                continue
            if self._stale(holder):
                if self._take_over(judged):
                    break
                continue
            now = time.monotonic()
            if now > deadline:
                raise RunLeased(f"{self.dir} is being trained by {holder.get('host')}:{holder.get('pid')} "
                                f"({LEASE} heartbeat is live); wait for it, or delete {self.path} if that "
                                f"process is gone.")
            if now >= next_log:
                self.log(f"waiting for run folder {self.dir}: {self._describe(holder)}; waited {now - start:.0f} "
                         f"of at most {self.wait_s:.0f} s — delete {self.path} if no process trains that run.")
                next_log = now + self.log_every_s
            time.sleep(self.poll_s)
        self._fence = contextlib.ExitStack()
        self._fence.enter_context(fence(self.dir, self.check))
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()
        return self

    def check(self) -> None:
        """Raise LeaseLost if another attempt took this lease over."""
        if self.lost:
            raise LeaseLost(self.lost)

    def _mine(self) -> bool:
        holder = self.holder()
        if holder is None or holder.get("token") != self.token:  # a taker may be putting ours back: look again
            time.sleep(min(self.poll_s, self.ttl_s / 8))
            holder = self.holder()
        if holder is not None and holder.get("token") == self.token:
            return True
        who = "nobody (the file is gone)" if holder is None else (
            f"{holder.get('host')}:{holder.get('pid')}" if "unreadable" not in holder else "an unreadable lease")
        self.lost = (f"lost the lease on {self.dir} to {who} (this attempt paused longer than its {self.ttl_s:.0f} s "
                     f"heartbeat allows, or {self.path} was replaced); this attempt stops without marking the run "
                     f"done.")
        self.log(self.lost)
        return False

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            if not self._mine():
                return
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            if (self.holder() or {}).get("token") == self.token:
                self.path.unlink(missing_ok=True)
        if self._fence is not None:
            self._fence.close()
            self._fence = None

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
