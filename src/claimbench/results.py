"""What a claim's analysis returns, and how it is written: results/<scale>/<claim_id>/metrics.json + tables.

metrics.json holds the card-driven verdict, every criterion's value/threshold/pass flag, the
statistics it was computed from, and provenance (git sha, torch/CUDA versions, device, seeds, wall
time). Tables are written as CSV, Markdown and LaTeX from one DataFrame.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from claimbench.atomic import write_text_atomic
from claimbench.cards import Card, verdict_label
from claimbench.errors import CacheError
from claimbench.intervals import Samples, interval
from claimbench.numerics import machine_facts


@dataclass
class ClaimResult:
    """statistics: name -> number read by the card's checks; tables: name -> DataFrame;
    setup: {'dataset', 'model', ...} as actually run; details: any further JSON-able record;
    figure_data: what the figures need beyond the tables (e.g. eigenvalues), not written."""

    statistics: dict[str, float | int | bool | None]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    setup: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    figure_data: dict[str, Any] = field(default_factory=dict)  # for figures only; never written
    # Per gating statistic: its per-replicate values or bootstrap draws (claimbench.intervals); the
    # framework turns them into the estimate and 95% interval the card's checks read.
    samples: dict[str, Samples] = field(default_factory=dict)
    # Per gating criterion id: seeded draws of its statistics with the effect absent (each draw:
    # statistic -> Samples or number); the card turns them into the criterion's null pass rate.
    null_draws: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Optional positive controls (e.g. one loss under four seeds for an equivalence test): same form;
    # their pass rate is reported, never gating.
    control_draws: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def git_state() -> dict:
    """{'git_sha', 'git_sha_source', 'git_dirty'} of the code being run. A machine given a copy of the working
    tree (the GPU box: its .git, if any, is a stale snapshot) is told the commit it runs through env
    CLAIMBENCH_GIT_SHA, which then wins over git; git_dirty is then unknown (None). What the pipeline itself
    rewrites mid-run (lock, results, README table) does not make the code dirty."""
    env_sha = os.environ.get("CLAIMBENCH_GIT_SHA")
    if env_sha:
        return {"git_sha": env_sha, "git_sha_source": "env CLAIMBENCH_GIT_SHA", "git_dirty": None}
    sha = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!dvc.lock", ":!results",
                  ":!README.md")
    return {"git_sha": sha or None, "git_sha_source": "git" if sha else None,
            "git_dirty": bool(status) if status is not None else None}


def provenance(device: torch.device, wall_s: float, seeds: list[int], scale: str, extra: dict | None = None) -> dict:
    """Where and how a number was made. git_dirty: the tracked code/config had uncommitted changes."""
    import torchvision

    return {
        **git_state(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "python": platform.python_version(),
        "device": device_name(device),
        **machine_facts(),
        "scale": scale,
        "seeds": list(seeds),
        "wall_s": round(float(wall_s), 1),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        **(extra or {}),
    }


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, torch.Tensor):
        return _jsonable(o.tolist())
    if hasattr(o, "item") and callable(o.item):  # numpy scalars
        return _jsonable(o.item())
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def write_table(df: pd.DataFrame, stem: Path) -> None:
    """stem.csv, stem.md and stem.tex from one DataFrame (floats to 4 significant digits in md/tex).

    Cells are made plain (no numpy reprs) and escaped by claimbench.tables: the .md keeps one cell per
    column, the .tex is pure ASCII and compiles with booktabs + amssymb (TableError on an unmapped character).
    """
    from claimbench import tables

    tex = tables.latex_table(df, floatfmt=".4g")  # first: an unwritable character leaves no partial table
    stem.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(stem.with_suffix(".csv"), tables.plain_frame(df).to_csv(index=False))
    write_text_atomic(stem.with_suffix(".md"), tables.markdown_table(df, floatfmt=".4g") + "\n")
    write_text_atomic(stem.with_suffix(".tex"), tex)


def statistics_digest(stats: dict, samples: dict | None = None, null: dict | None = None) -> str:
    """sha256 of the canonical JSON of a result's evidence (statistics, and when present the samples and
    null calibration the verdict reads): CI recomputes it to catch hand edits."""
    import hashlib

    evidence = stats if not (samples or null) else {"statistics": stats, "samples": samples or {}, "null": null or {}}
    return hashlib.sha256(json.dumps(evidence, sort_keys=True).encode()).hexdigest()


def null_calibration(result: ClaimResult, card: Card) -> dict:
    """criterion id -> {'pass_rate', 'draws'[, 'control_pass_rate', 'control_draws']} from the result's draws."""
    by_id = {c.id: c for c in card.criteria}
    out = {}
    for cid, draws in result.null_draws.items():
        if cid not in by_id:
            raise ValueError(f"null draws for criterion {cid!r}, which card {card.id} does not define")
        out[cid] = by_id[cid].null_pass_rate(draws)
    for cid, draws in result.control_draws.items():
        ctrl = by_id[cid].null_pass_rate(draws)
        out.setdefault(cid, {}).update(control_pass_rate=ctrl["pass_rate"], control_draws=ctrl["draws"])
    return out


def write_result(result: ClaimResult, card: Card, out_dir: Path, scale: str, prov: dict) -> dict:
    """Judge `result` with `card` and write metrics.json + tables/ under out_dir. Returns the record."""
    stats = dict(result.statistics)
    for name, s in result.samples.items():  # the estimate the checks read is the statistic's value
        stats[name] = interval(s).estimate
    stats = _jsonable(stats)
    samples = {name: s.to_json() for name, s in sorted(result.samples.items())}
    null = _jsonable(null_calibration(result, card))
    prov = {**prov, "card_version": card.version, "statistics_sha256": statistics_digest(stats, samples, null)}
    judged = card.verdict(stats, samples, null)
    head = card.raw["headline"]
    record = {
        "claim_id": card.id,
        "title": card.title,
        "scale": scale,
        "verdict": judged["verdict"],
        "verdict_reason": judged["reason"],
        "verdict_reason_kind": judged["reason_kind"],
        "verdict_label": verdict_label(judged["verdict"], judged["reason_kind"]),
        "regime": judged["regime"],
        "criteria": judged["criteria"],
        "null_calibration": null,
        "samples": samples,
        "headline": {"label": head.get("label", head["statistic"]), "value": stats.get(head["statistic"]),
                     "uncertainty": stats.get(head["uncertainty"]) if head.get("uncertainty") else None,
                     **_headline_interval(result, head["statistic"])},
        "statistics": stats,
        "setup": _jsonable(result.setup),
        "provenance": prov,
        "details": _jsonable(result.details),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, df in result.tables.items():
        write_table(df, out_dir / "tables" / name)
    _write_json(dvc_metrics(record), out_dir / DVC_METRICS)
    _write_json(record, out_dir / "metrics.json")
    return record


def _headline_interval(result: ClaimResult, name: str) -> dict:
    if name not in result.samples:
        return {}
    iv = interval(result.samples[name])
    return {"interval": _jsonable([iv.lo, iv.hi]), "interval_method": iv.method}


DVC_METRICS = "headline.json"


def dvc_metrics(record: dict) -> dict:
    """What `dvc metrics show/diff` lists for a claim (results/<scale>/<id>/headline.json): the verdict,
    the headline value ± uncertainty (and its interval lo/hi), every gating statistic, each gating
    criterion's outcome and each gating check's interval, rule and outcome — so `dvc metrics diff` shows
    an interval crossing its threshold — not provenance (wall times, shas).

    checks: {criterion id: {statistic: {lo, hi, op, threshold, outcome}}}; a statistic checked twice in
    one criterion (a two-sided rule) is keyed "<statistic> <op>" for each side."""
    gating = [c for c in record["criteria"] if c["gating"]]
    head = record["headline"]
    out = {"verdict": record["verdict"], "headline": {"value": head["value"], "uncertainty": head["uncertainty"]},
           "gating": {ch["statistic"]: ch["value"] for c in gating for ch in c["checks"]}}
    if record.get("verdict_label"):
        out["verdict_label"] = record["verdict_label"]
    if head.get("interval"):
        out["headline"]["lo"], out["headline"]["hi"] = head["interval"]
    out["criteria"] = {c["id"]: c["outcome"] for c in gating}
    out["checks"] = {}
    for c in gating:
        names = [ch["statistic"] for ch in c["checks"]]
        out["checks"][c["id"]] = {
            (ch["statistic"] if names.count(ch["statistic"]) == 1 else f"{ch['statistic']} {ch['op']}"):
                {key: ch.get(key) for key in ("lo", "hi", "op", "threshold", "outcome")}
            for ch in c["checks"]}
    return out


def _write_json(obj: dict, path: Path) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_result(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CacheError(f"result {path} is unreadable ({e}); rerun its stage (`dvc repro -f <claim_id>`).") from None
    for key in ("claim_id", "scale", "verdict", "criteria", "statistics", "provenance"):
        if key not in record:
            raise CacheError(f"result {path} lacks {key!r}; it was not written by the pipeline — rerun its stage.")
    return record
