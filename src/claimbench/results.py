"""What a claim's analysis returns, and how it is written: results/<scale>/<claim_id>/metrics.json + tables.

metrics.json holds the card-driven verdict, every criterion's value/threshold/pass flag, the
statistics it was computed from, and provenance (git sha, torch/CUDA versions, device, seeds, wall
time). Tables are written as CSV, Markdown and LaTeX from one DataFrame. This module only writes: the
record is built and judged by claimbench.verdict (`build_record`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from claimbench.atomic import write_text_atomic
from claimbench.errors import CacheError
from claimbench.intervals import Samples
from claimbench.provenance import device_name, git_state, provenance  # noqa: F401 (moved; kept importable here)


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
    # Optional, per gating criterion: the claim's own draws with its statistics on the threshold (corpus
    # statistics); they replace the engine's generic threshold null (claimbench.threshold_null).
    threshold_null_draws: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, torch.Tensor):
        return jsonable(o.tolist())
    if hasattr(o, "item") and callable(o.item):  # numpy scalars
        return jsonable(o.item())
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def write_table(df: pd.DataFrame, stem: Path) -> None:
    """stem.csv, stem.md and stem.tex from one DataFrame (floats to 4 significant digits in md/tex).

    Cells are made plain (no numpy reprs) and escaped by claimbench.tables: the .md keeps one cell per
    column, the .tex is pure ASCII and compiles with booktabs, amssymb, array, graphicx and longtable
    (TableError on an unmapped character).
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


COST_KEYS = ("wall_s", "compute", "device")  # what the report's cost column reads from provenance


def published_digest(setup: dict, prov: dict) -> str:
    """sha256 of what is published but not recomputable from the statistics: the setup (dataset, model, ...)
    and the cost column's provenance fields (COST_KEYS)."""
    import hashlib

    published = {"setup": setup, "cost": {k: prov.get(k) for k in COST_KEYS}}
    return hashlib.sha256(json.dumps(jsonable(published), sort_keys=True).encode()).hexdigest()


def write_record(record: dict, tables: dict[str, pd.DataFrame], out_dir: Path) -> dict:
    """metrics.json, headline.json (what `dvc metrics` shows) and tables/ under out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        write_table(df, out_dir / "tables" / name)
    _write_json(dvc_metrics(record), out_dir / DVC_METRICS)
    _write_json(record, out_dir / "metrics.json")
    return record


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
