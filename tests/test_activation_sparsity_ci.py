"""The activation-sparsity claim end to end at the `ci` scale: trains, analyses, judges every criterion."""

import json
from pathlib import Path

import pytest

from claimbench.cards import load_card
from claimbench.stage import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_ci_scale_end_to_end(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main("activation_sparsity", ["all", "--scale", "ci"]) == 0
    record = json.loads((ROOT / "results/ci/activation_sparsity/metrics.json").read_text())
    card = load_card("activation_sparsity")
    named = {ch.statistic for c in card.criteria for ch in c.checks}
    missing = sorted(s for s in named if not isinstance(record["statistics"].get(s), (int, float)))
    assert not missing, f"statistics the card checks but the analysis did not produce: {missing}"
    assert record["verdict"] in ("reproduced", "partially reproduced", "not reproduced")
    for name in ("nnz_vs_step.png", "random_labels_inputs.png", "topk_reliability.png"):
        assert (ROOT / "results/ci/figures/activation_sparsity" / name).stat().st_size > 0
    curves = (ROOT / "results/ci/activation_sparsity/tables/curves.csv").read_text().splitlines()
    assert curves[0] == "run,step,probe,nnz_percent" and len(curves) > 10
