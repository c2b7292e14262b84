"""Claim modules. Each module here is one claim and defines:

- ``CLAIM_ID``: the id used in params.yaml, dvc.yaml, the card file and results/<scale>/<id>/;
- ``Config``: a frozen dataclass, the claim's params section at one scale;
- ``train(ctx)``: the expensive part (writes cached artifacts under ``ctx.artifacts_dir``);
- ``analyse(ctx)``: the cheap part (reads artifacts, never trains; returns a ``ClaimResult``).

Modules are discovered by name, so adding a claim needs no edit here.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def claim_modules() -> dict[str, ModuleType]:
    """claim_id -> module, for every module in this package that defines CLAIM_ID."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "CLAIM_ID"):
            found[module.CLAIM_ID] = module
    return found
