"""A lease file in a run folder: two live attempts never train the same run.

    with Lease(run_dir) as lease:   # waits while another live attempt holds it
        if lease.finished: ...      # that attempt finished the run meanwhile: read its record
        else: train

The lease (`lease.json`: host, pid, token) is created atomically (O_EXCL) and its mtime is refreshed
every `ttl_s / 4` seconds by a heartbeat thread. It is stale, and taken over, when its process is gone
(same host) or its heartbeat is older than `ttl_s` (another host, e.g. a Ray node that died). A live
holder is waited for up to `wait_s`, then the run fails with a line saying who holds it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from claimbench.errors import ClaimbenchError
from claimbench.sweep import DONE

LEASE = "lease.json"


class RunLeased(ClaimbenchError):
    """Another live attempt holds the run's lease for longer than we wait."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease:
    def __init__(self, run_dir: Path, ttl_s: float = 120.0, wait_s: float = 3600.0, poll_s: float = 0.5):
        self.dir, self.path = Path(run_dir), Path(run_dir) / LEASE
        self.ttl_s, self.wait_s, self.poll_s = ttl_s, wait_s, poll_s
        self.token = uuid.uuid4().hex
        self.finished = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def holder(self) -> dict | None:
        """The current lease's content, or None if there is none (an unreadable one counts as stale)."""
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def _stale(self, holder: dict) -> bool:
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return False
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            return not _alive(holder["pid"]) or age > self.ttl_s
        return age > self.ttl_s

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "token": self.token,
                       "since": time.time()}, f)
        return True

    def _take_over(self) -> None:
        """Move a stale lease aside; of several takers only one rename succeeds."""
        try:
            os.replace(self.path, self.dir / f"{LEASE}.stale.{self.token}")
            (self.dir / f"{LEASE}.stale.{self.token}").unlink(missing_ok=True)
        except FileNotFoundError:
            pass

    def acquire(self) -> Lease:
        self.dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait_s
        while True:
            if (self.dir / DONE).exists():
                self.finished = True
                return self
            if self._try_create():
                break
            holder = self.holder()
            if holder is None:
                continue
            if self._stale(holder):
                self._take_over()
                continue
            if time.monotonic() > deadline:
                raise RunLeased(f"{self.dir} is being trained by {holder.get('host')}:{holder.get('pid')} "
                                f"(lease.json heartbeat is live); wait for it, or delete {self.path} if that "
                                f"process is gone.")
            time.sleep(self.poll_s)
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()
        return self

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            try:
                os.utime(self.path)
            except OSError:
                return

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            if (self.holder() or {}).get("token") == self.token:
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
