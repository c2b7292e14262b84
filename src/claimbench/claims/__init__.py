"""The claim registry: every package ``claims/<id>/`` whose ``__init__`` defines ``CLAIM_ID`` and
``Config`` is a claim, found by name (adding one needs no edit here). Its sides load lazily, so the
train stage imports only the code that trains:

    entry = registry()["el2n_pruning"]
    entry.Config, entry.train (train.py), entry.analyse (analyse.py), entry.figures (figures.py)

The registry is the one claim list: every page the report writes, `robustness`, `bench` and `suite`
take their claims, in its order, from here. The order is each package's ``ORDER`` (an int: its place;
the five paper claims are 1–5), then packages without one by id; ties break by id.

See ``claimbench.contract`` for what each file provides, and ADDING_A_CLAIM.md.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from claimbench import params as _params
from claimbench.errors import ClaimbenchError


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


UNORDERED = float("inf")  # the place of a claim package without ORDER: after every ordered one


def registry() -> dict[str, ClaimEntry]:
    """claim_id -> ClaimEntry, for every sub-package here that defines CLAIM_ID, in claim order
    (package ``ORDER``, then id)."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or not info.ispkg:
            continue
        package = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(package, "CLAIM_ID"):
            found.append(ClaimEntry(package.CLAIM_ID, package))
    found.sort(key=lambda e: (getattr(e.package, "ORDER", UNORDERED), e.id))
    return {e.id: e for e in found}


def claim_ids() -> list[str]:
    """Every registered claim id, in claim order."""
    return list(registry())


def ordered(ids) -> list[str]:
    """`ids` (e.g. the claims with a card or a result) in claim order: registered ones first, in the
    registry's order, then any others by id."""
    ids, known = set(ids), claim_ids()
    return [c for c in known if c in ids] + sorted(ids - set(known))


def choose(names: list[str] | None, what: str = "--claims") -> list[str]:
    """The claims a command was asked for (all, in claim order, if `names` is empty or None); an
    unknown id raises ClaimbenchError naming it and the known ids."""
    known = claim_ids()
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise ClaimbenchError(f"{what}: unknown claim {unknown[0]!r}; known: {', '.join(known)}.")
    return list(names) if names else known


def load_params(path="params.yaml", scale: str | None = None) -> _params.Params:
    """params.yaml validated against every registered claim's Config (see claimbench.params)."""
    return _params.load_params(path, scale, {cid: e.Config for cid, e in registry().items()})
