"""Resumable sweeps: one content-hashed run dir per configuration, with a done marker.

    rec = run_cached(ctx.artifacts_dir / "runs", {"bs": 16, "seed": 3, **cfg}, lambda d: train_one(d))

A finished run (done.json present) is never retrained; an unfinished one is resumed by its own
checkpoint inside the run dir (pass ``run_dir / "checkpoint.pt"`` to ``train.fit``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from claimbench.errors import CacheError
from claimbench.train import config_hash

DONE = "done.json"


def run_dir(base: Path, key: dict) -> Path:
    return Path(base) / config_hash(key)


def is_done(base: Path, key: dict) -> bool:
    return (run_dir(base, key) / DONE).exists()


def run_cached(base: Path, key: dict, fn: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Return fn(run_dir)'s record, computing it only if the run dir has no done marker."""
    d = run_dir(base, key)
    done = d / DONE
    if done.exists():
        try:
            rec = json.loads(done.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise CacheError(f"run record {done} is corrupt ({e}); delete {d} to retrain that run.") from None
        if rec.get("key") != json.loads(json.dumps(key, default=str)):
            raise CacheError(f"run record {done} does not match its config; delete {d} to retrain that run.")
        return rec["record"]
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(key, indent=2, default=str))
    record = fn(d)
    tmp = d / (DONE + ".tmp")
    tmp.write_text(json.dumps({"key": key, "record": record}, default=str))
    tmp.replace(done)
    return record
