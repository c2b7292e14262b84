"""No module imports one above it in the layers (claimbench.contract.LAYERS); no claim file over 300 lines."""

from pathlib import Path

import pytest

from claimbench.contract import layer_of
from claimbench.dvcgen import SRC, _imports, _module_name

FILES = sorted((SRC / "claimbench").rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_run_down_the_layers(path):
    me = _module_name(path)
    mine = layer_of(me)
    upward = []
    for name in sorted(_imports(path)):
        if not name.startswith("claimbench."):
            continue
        try:
            theirs = layer_of(name)
        except KeyError:
            continue  # `from claimbench import x` also yields claimbench.x.name forms; x itself is checked
        if theirs > mine:
            upward.append(f"{name} (layer {theirs})")
    assert not upward, f"{me} (layer {mine}) imports from above: {', '.join(upward)}"


def test_the_layer_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The check is live: a train-layer module importing the stage runner is flagged."""
    import claimbench.dvcgen as g

    fake = SRC / "claimbench" / "train.py"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: "from claimbench.stage import main\n")
    names = g._imports(fake)
    assert "claimbench.stage" in names and layer_of("claimbench.stage") > layer_of(_module_name(fake))


def test_every_module_has_a_layer():
    for path in FILES:
        layer_of(_module_name(path))


@pytest.mark.parametrize("path", sorted((SRC / "claimbench" / "claims").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(SRC)))
def test_claim_files_stay_small(path):
    n = len(path.read_text().splitlines())
    assert n <= 300, f"{path.relative_to(SRC)} has {n} lines (limit 300): split it by concern"
