"""Atomic writes for every generated file: whole or untouched, never half-written, never through a link.

    write_text_atomic(path, text)          # claims.md, metrics.json, done.json, …
    write_bytes_atomic(path, data)
    with atomic_file(path, "wb") as f:     # writers that need a file object: torch.save(obj, f)
        torch.save(obj, f)

Each writes a temporary file in the target's own folder (same file system), fsyncs it and renames it
over the target with os.replace. A target that is a symbolic link has the link itself replaced by the
new file: a link pointing outside the repository is never written through. On any error (or Ctrl-C)
the temporary file is removed. A full disk, a read-only folder or a folder this user may not write
become one StorageError line naming the folder and the fix (`storage_error`; stage entries print it and
exit 2).

A process that no longer owns a folder (its run's lease was taken over: claimbench.lease) fences it
(`fence`); an atomic write under a fenced folder raises its error instead of writing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from claimbench.errors import StorageError

_FIX = {
    errno.ENOSPC: ("no space left on the device", "free space on that disk"),
    errno.EDQUOT: ("disk quota exceeded", "free space within your quota"),
    errno.EROFS: ("the file system is read-only", "make it writable (or work in a writable copy)"),
    errno.EACCES: ("permission denied", "make it writable for this user (chmod/chown)"),
    errno.EPERM: ("operation not permitted", "make it writable for this user (chmod/chown)"),
}
STORAGE_ERRNOS = frozenset(_FIX)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()  # what open() would give a new file here
_FENCES: dict[Path, Callable[[], None]] = {}
_FENCE_LOCK = threading.Lock()


def storage_error(e: OSError, path: Path | str | None = None) -> StorageError | None:
    """The one-line StorageError for a write that failed for lack of space or permission (else None):
    it names the folder, what the system said and the fix; rerunning the same command resumes."""
    if e.errno not in STORAGE_ERRNOS:
        return None
    target = path or e.filename  # a failed write() names no file: then the working tree is all we know
    if target is None:
        where = f"under {Path.cwd()}"
    else:
        target = Path(target)
        where = f"in {target if target.is_dir() else target.parent}"
    what, fix = _FIX[e.errno]
    return StorageError(f"cannot write {where} ({what}); {fix}, then rerun the same command "
                        f"(finished runs are cached).")


@contextlib.contextmanager
def fence(folder: Path, check: Callable[[], None]) -> Iterator[None]:
    """While active, every atomic write under `folder` first calls `check`, which raises to refuse it."""
    key = Path(os.path.abspath(folder))
    with _FENCE_LOCK:
        _FENCES[key] = check
    try:
        yield
    finally:
        with _FENCE_LOCK:
            if _FENCES.get(key) is check:
                del _FENCES[key]


def _check_fences(path: Path) -> None:
    if not _FENCES:
        return
    with _FENCE_LOCK:
        checks = [c for p, c in _FENCES.items() if path == p or p in path.parents]
    for check in checks:
        check()


@contextlib.contextmanager
def atomic_file(path: Path | str, mode: str = "wb") -> Iterator[IO]:
    """A file object (mode 'wb' or 'w', UTF-8) whose content becomes `path` when the block ends
    without error; otherwise `path` is untouched and the temporary file removed."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_file: mode {mode!r}; use 'wb' or 'w'")
    path = Path(path)
    _check_fences(Path(os.path.abspath(path)))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, _MODE)
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": ""} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # a link at `path` is itself replaced, never followed
        tmp = None
        _sync_folder(path.parent)
    except Exception as e:  # an OSError, or a writer's own error around one (torch.save: RuntimeError)
        cause = _storage_cause(e)
        if cause is None:
            raise
        raise storage_error(cause, path) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _storage_cause(e: BaseException) -> OSError | None:
    """The disk-full or permission OSError that `e` is, or that it was raised while handling."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS and not isinstance(e, StorageError):
            return e
        e = e.__cause__ or e.__context__
    return None


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (best effort: some file systems refuse to open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    """`path` holds `data` (whole) or is unchanged; see the module docstring."""
    with atomic_file(path, "wb") as f:
        f.write(data)


def write_text_atomic(path: Path | str, text: str) -> None:
    """`path` holds `text` encoded as UTF-8 (newlines untranslated) or is unchanged."""
    write_bytes_atomic(path, text.encode("utf-8"))
