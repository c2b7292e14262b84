"""Resumable sweeps: a finished run is never recomputed; corrupt records are a clear error."""

import pytest

from claimbench.errors import CacheError
from claimbench.sweep import is_done, run_cached, run_dir


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
