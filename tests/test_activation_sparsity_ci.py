"""The activation-sparsity claim at the `ci` scale (from the session's one `dvc repro` at ci): every
criterion's and regime check's statistic is produced, every gating statistic has its two replicates and
every gating criterion its null calibration, and the figures and curve table are written."""

import json

import pytest

from claimbench.cards import load_card

pytestmark = [pytest.mark.slow, pytest.mark.needs_data, pytest.mark.needs_data("tinyshakespeare")]


def test_ci_scale_end_to_end(ci_repo):
    record = json.loads((ci_repo / "results/ci/activation_sparsity/metrics.json").read_text())
    card = load_card("activation_sparsity")
    named = {ch.statistic for c in (*card.criteria, *card.regime) for ch in c.checks}
    missing = sorted(s for s in named if not isinstance(record["statistics"].get(s), (int, float)))
    assert not missing, f"statistics the card checks but the analysis did not produce: {missing}"
    gating = {ch.statistic for c in card.criteria if c.gating for ch in c.checks}
    assert all(len(record["samples"][s]["values"]) == 2 for s in gating)  # ci: 2 seeds of every gating run
    assert {c.id for c in card.criteria if c.gating} == set(record["null_calibration"])
    assert record["verdict"] in ("reproduced", "partially reproduced", "not reproduced", "inconclusive")
    for name in ("nnz_vs_step.png", "random_labels_inputs.png", "topk_reliability.png"):
        assert (ci_repo / "results/ci/figures/activation_sparsity" / name).stat().st_size > 0
    curves = (ci_repo / "results/ci/activation_sparsity/tables/curves.csv").read_text().splitlines()
    assert curves[0] == "run,seed,step,probe,nnz_percent" and len(curves) > 10
