"""The claim contract: what every claim provides, and the `Context` the framework hands it.

A claim is a package ``claims/<id>/`` whose files follow the DVC boundary, so that `<id>_train`
depends only on code that trains:

- ``__init__.py``: ``CLAIM_ID``, ``Config`` (frozen dataclass, its params.yaml section at one scale)
  and the run keys (what makes one run: its hash names the run folder);
- ``train.py``  (`TrainSide`):   ``load_data(ctx)``, ``plan(ctx)``, ``run_one(ctx, run_dir, data, **args)``;
- ``analyse.py`` (`AnalyseSide`): ``analyse(records, ctx) -> ClaimResult``, a pure function of records;
- ``figures.py`` (`FigureSide`):  ``figures(result, ctx)`` draws from the ClaimResult, and ``DVC_PLOTS``.

The layers (`LAYERS`; a module imports only from its own layer or below at run time; imports for
annotations under `if TYPE_CHECKING:` are exempt; tests/test_layers.py checks it):

    0  errors, numerics, atomic
    1  params, data, plotting, tables, intervals, threshold_null
    2  train, engine
    3  models/*, metrics/*, collapse_losses, stack
    4  sweep, cards, provenance, results, power, verdict
    5  contract, lease, design
    6  executor
    7  claims/<id>/*
    8  claims (the registry), stage, audit, report, reference, dvcgen, robustness, bench, timed_run, suite, gpu_probe,
       facts, rejudge, pilot/*, engine_compare
    9  __main__ (the front door: `python -m claimbench <verb>`)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from claimbench.params import Params
from claimbench.sweep import Progress, Record

if TYPE_CHECKING:  # annotations only: the train side must not import the results writer
    from claimbench.results import ClaimResult

LAYERS: dict[str, int] = {
    "errors": 0, "numerics": 0, "atomic": 0,
    "params": 1, "data": 1, "plotting": 1, "tables": 1, "intervals": 1, "threshold_null": 1,
    "train": 2, "engine": 2,
    "models": 3, "metrics": 3, "collapse_losses": 3, "stack": 3,
    "sweep": 4, "cards": 4, "provenance": 4, "results": 4, "power": 4, "verdict": 4,
    "contract": 5, "lease": 5, "design": 5,
    "executor": 6,
    "claims.*": 7,
    "claims": 8, "stage": 8, "audit": 8, "report": 8, "reference": 8, "dvcgen": 8, "robustness": 8, "bench": 8,
    "timed_run": 8, "suite": 8, "gpu_probe": 8, "facts": 8, "rejudge": 8, "pilot": 8, "engine_compare": 8,
    "__main__": 9,
    "executor_bench": 7,
}


def layer_of(module: str) -> int:
    """The layer of a claimbench module name (e.g. 'claimbench.metrics.spectral' -> 3)."""
    parts = module.split(".")[1:]
    if not parts:
        return 0  # the claimbench package itself
    if parts[0] == "claims" and len(parts) > 1:
        return LAYERS["claims.*"]
    if parts[0] not in LAYERS:
        raise KeyError(f"module {module} has no layer: add it to claimbench.contract.LAYERS")
    return LAYERS[parts[0]]


SEED_SET_STRIDE = 1000  # seed set k moves every replicate seed by k · 1000 (claimbench.robustness)


def seed_offset(k: int) -> int:
    """What a claim's `with_seed_set(cfg, k)` adds to each replicate seed: disjoint from set 0 for k ≥ 1
    as long as a claim's seeds stay below SEED_SET_STRIDE."""
    return SEED_SET_STRIDE * k


@dataclass
class Context:
    """Everything a claim's train/analyse needs. Paths are absolute under the repository root.
    Picklable: the executor ships it to worker processes (the device is re-resolved there)."""

    claim_id: str
    scale: str
    cfg: Any  # the claim's Config at this scale
    params: Params
    device: torch.device
    root: Path
    seed_set: int = 0  # 0: the judged seeds; k > 0: the claim's `with_seed_set(cfg, k)` (claimbench.robustness)

    @property
    def _set_dir(self) -> str:
        return f"seedset{self.seed_set}" if self.seed_set else ""

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts" / self.scale / self._set_dir / self.claim_id

    @property
    def runs_dir(self) -> Path:
        """Where run folders live: runs/<hash of the run key>/."""
        return self.artifacts_dir / "runs"

    @property
    def results_dir(self) -> Path:
        return self.root / "results" / self.scale / self._set_dir / self.claim_id

    @property
    def figures_dir(self) -> Path:
        return self.root / "results" / self.scale / self._set_dir / "figures" / self.claim_id

    @property
    def data_root(self) -> str | None:
        return self.params.data.root

    def log(self, msg: str) -> None:
        logging.getLogger(f"claimbench.{self.claim_id}").info(msg)

    def progress(self, total: int) -> Progress:
        """A stage-level progress counter over `total` runs, logging `[k/N] … elapsed, ETA` lines."""
        return Progress(total, self.log)


@dataclass(frozen=True)
class RunSpec:
    """One independent training run of a sweep.

    key: every setting that changes the run's outputs (JSON-able); its hash names the run folder, so
         it must never change for an unchanged run (existing caches stay valid).
    label: short human name for progress lines and errors, e.g. ``bs=32 seed=1``.
    args: keyword arguments of the claim's ``run_one`` (picklable: numbers, strings, lists, tensors).
    threads: torch intra-op threads this run wants on a CPU (None: the executor decides).
    """

    key: dict
    label: str
    args: dict = field(default_factory=dict)
    threads: int | None = None


@dataclass(frozen=True)
class Barrier:
    """A point in a plan where every run before it must be finished. ``then(ctx, records)`` gets the
    records of all runs planned so far (in plan order) and returns the rest of the plan."""

    then: Callable[[Context, list[Record]], Sequence[RunSpec | Barrier]]


Plan = Sequence[RunSpec | Barrier]


class TrainSide(Protocol):
    """``claims/<id>/train.py``. run_one reads nothing captured from elsewhere: only its arguments."""

    def load_data(self, ctx: Context) -> Any: ...

    def plan(self, ctx: Context) -> Plan: ...

    def run_one(self, ctx: Context, run_dir: Path, data: Any, **args: Any) -> dict: ...


class AnalyseSide(Protocol):
    """``claims/<id>/analyse.py``: statistics and tables from finished runs, never training."""

    def analyse(self, records: list[Record], ctx: Context) -> ClaimResult: ...


class FigureSide(Protocol):
    """``claims/<id>/figures.py``: the paper's figures redrawn from a ClaimResult; DVC_PLOTS for dvc.yaml."""

    DVC_PLOTS: list[dict]

    def figures(self, result: ClaimResult, ctx: Context) -> None: ...
