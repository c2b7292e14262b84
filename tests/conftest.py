"""Shared fixtures: a throwaway repository root holding params.yaml with only the toy claim."""

from pathlib import Path

import pytest
import toy_claim
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def toy_root(tmp_path, monkeypatch):
    """A repo-like folder with params.yaml for the toy claim; claim discovery and cards point at it."""
    import claimbench.cards
    import claimbench.claims

    params = {"scale": "ci", "data": {"root": None, "device": "cpu"},
              "toy": {s: {"per_class": 20, "epochs": 2, "seeds": [0, 1]} for s in ("ci", "quick", "gpu", "paper")}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setattr(claimbench.claims, "claim_modules", lambda: {"toy": toy_claim})
    monkeypatch.setattr(claimbench.cards, "CARD_DIR", FIXTURES)
    monkeypatch.chdir(tmp_path)
    return tmp_path
