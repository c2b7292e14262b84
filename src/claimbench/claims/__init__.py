"""The claim registry: every package ``claims/<id>/`` whose ``__init__`` defines ``CLAIM_ID`` and
``Config`` is a claim, found by name (adding one needs no edit here). Its sides load lazily, so the
train stage imports only the code that trains:

    entry = registry()["el2n_pruning"]
    entry.Config, entry.train (train.py), entry.analyse (analyse.py), entry.figures (figures.py)

See ``claimbench.contract`` for what each file provides, and ADDING_A_CLAIM.md.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from claimbench import params as _params


@dataclass(frozen=True)
class ClaimEntry:
    """One claim: its package; `train`, `analyse`, `figures` import its side modules on first use."""

    id: str
    package: ModuleType

    @property
    def Config(self) -> type:  # noqa: N802 (the claim's dataclass)
        return self.package.Config

    def with_seed_set(self, cfg, k: int):
        """The claim's Config with replicate seeds disjoint from the judged set (k = 0: cfg unchanged)."""
        return self.package.with_seed_set(cfg, k)

    def side(self, name: str) -> ModuleType:
        return importlib.import_module(f"{self.package.__name__}.{name}")

    @property
    def train(self) -> ModuleType:
        return self.side("train")

    @property
    def analyse(self) -> ModuleType:
        return self.side("analyse")

    @property
    def figures(self) -> ModuleType:
        return self.side("figures")

    @property
    def folder(self) -> Path:
        return Path(self.package.__file__).parent


def registry() -> dict[str, ClaimEntry]:
    """claim_id -> ClaimEntry, for every sub-package here that defines CLAIM_ID."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_") or not info.ispkg:
            continue
        package = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(package, "CLAIM_ID"):
            found[package.CLAIM_ID] = ClaimEntry(package.CLAIM_ID, package)
    return found


def load_params(path="params.yaml", scale: str | None = None) -> _params.Params:
    """params.yaml validated against every registered claim's Config (see claimbench.params)."""
    return _params.load_params(path, scale, {cid: e.Config for cid, e in registry().items()})
