"""The disjoint-seed re-run: every claim's `with_seed_set` gives disjoint replicate seeds (k = 0 changes
nothing), the robustness page flags a verdict that differs, and bad input is one line, exit 2."""

import json

import pytest
from conftest import REPO

from claimbench import robustness
from claimbench.claims import registry
from claimbench.contract import RunSpec
from claimbench.stage import make_context

CLAIMS = sorted(registry())


def first_batch_keys(ctx) -> list[dict]:
    """Run keys of the plan's runs before its first Barrier."""
    keys = []
    for item in registry()[ctx.claim_id].train.plan(ctx):
        if not isinstance(item, RunSpec):
            break
        keys.append(item.key)
    return keys


def seeds_in(key: dict) -> set:
    return {(k, json.dumps(v)) for k, v in key.items() if "seed" in k and k != "subset_seed"}


@pytest.mark.parametrize("claim_id", CLAIMS)
def test_seed_set_is_disjoint_and_zero_changes_nothing(claim_id):
    entry = registry()[claim_id]
    base = make_context(claim_id, "ci", root=REPO)
    assert entry.with_seed_set(base.cfg, 0) == base.cfg
    other = make_context(claim_id, "ci", root=REPO, seed_set=1)
    assert other.artifacts_dir != base.artifacts_dir and other.results_dir != base.results_dir
    a = {json.dumps(k, sort_keys=True) for k in first_batch_keys(base)}
    b = {json.dumps(k, sort_keys=True) for k in first_batch_keys(other)}
    shared = [json.loads(k) for k in a & b]
    assert all(not seeds_in(k) for k in shared), f"{claim_id}: runs with the same seeds in both sets: {shared[:2]}"
    assert a != b, f"{claim_id}: seed set 1 plans exactly the runs of seed set 0"


def _write(root, rel, verdict, label=None):
    path = root / "results" / "quick" / rel / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "claim_id": rel.split("/")[-1], "scale": "quick", "verdict": verdict, "verdict_label": label or verdict,
        "criteria": [{"id": "E1", "gating": True, "outcome": "pass"}], "statistics": {},
        "headline": {"label": "h", "value": 1.0, "interval": [0.5, 1.5]},
        "provenance": {"seeds": [0, 1], "git_sha": "abc"}}))


def test_page_flags_a_verdict_that_differs(tmp_path):
    _write(tmp_path, "el2n_pruning", "reproduced")
    _write(tmp_path, "seedset1/el2n_pruning", "not reproduced")
    _write(tmp_path, "neural_collapse", "inconclusive", "inconclusive — underpowered")
    _write(tmp_path, "seedset1/neural_collapse", "inconclusive", "inconclusive — underpowered")
    _write(tmp_path, "simpson_paradox", "inconclusive", "inconclusive — underpowered")
    _write(tmp_path, "seedset1/simpson_paradox", "inconclusive", "inconclusive — out of regime")
    text, differ = robustness.page(tmp_path, "quick", 1)
    assert differ == ["el2n_pruning"]
    assert "| el2n_pruning | reproduced | not reproduced | **no** |" in text
    assert "| neural_collapse | inconclusive — underpowered | inconclusive — underpowered | yes |" in text
    assert "| simpson_paradox | inconclusive — underpowered | inconclusive — out of regime | yes (another reason) |" \
        in text
    assert "| heavy_tail_phases | not run | not run | – |" in text
    assert "h: 1 [0.5, 1.5]" in text


def test_bad_seed_set_and_unknown_claim_are_one_line(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert robustness.main(["--seed-set", "0", "--no-train"]) == 2
    assert robustness.main(["--claims", "nope", "--no-train"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--seed-set 0" in err[0] and "unknown claim 'nope'" in err[1]
