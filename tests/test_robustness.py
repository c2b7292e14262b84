"""The disjoint-seed re-run: every claim's `with_seed_set` gives disjoint replicate seeds (k = 0 changes
nothing), the robustness page follows the card's sequential design (pooled look 2 when look 1 is
underpowered) and flags only real conflicts, and bad input is one line, exit 2."""

import json

import numpy as np
import pytest
from conftest import REPO
from scipy import stats as st

from claimbench import robustness
from claimbench.cards import parse_card
from claimbench.claims import registry
from claimbench.contract import RunSpec
from claimbench.intervals import Samples
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


POOLING = {"looks": [0, 1], "boundary": "pocock", "alpha": 0.05, "levels": [0.9706, 0.9706],
           "second_look_if": "look 1 underpowered", "conflict": "p < 0.05 or a pass/fail flip"}
TOY = {"id": "el2n_pruning", "title": "t", "paper": {}, "claim": "c", "paper_numbers": [], "headline": {},
       "regime": [{"id": "R1", "text": "trains", "why": "w",
                   "checks": [{"statistic": "acc_min", "op": ">=", "threshold": 80}]}],
       "criteria": [{"id": "E1", "text": "x > 0", "why": "w",
                     "checks": [{"statistic": "x", "op": ">", "threshold": 0}]}],
       "verdict": {"reproduced": ["E1"], "partially_if_any": ["E1"]}, "pooling": POOLING}


def _write(root, rel, values, acc_min=85.0):
    """A seed set's record of the toy card: per-replicate values of x and the regime statistic."""
    path = root / "results" / "quick" / rel / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "claim_id": "el2n_pruning", "scale": "quick", "verdict": "recorded", "verdict_label": "recorded",
        "criteria": [{"id": "E1", "gating": True, "outcome": "pass", "null_pass_rate": 0.0, "null_draws": 1000,
                      "null_pass_upper": 0.0037}],
        "statistics": {"acc_min": acc_min}, "samples": {"x": {"kind": "replicates", "values": values}},
        "headline": {"label": "h", "value": 1.0, "interval": [0.5, 1.5]},
        "provenance": {"seeds": [0, 1], "git_sha": "abc"}}))


def toy_cards():
    return {"el2n_pruning": parse_card(TOY, "toy")}


def row(text, claim):
    return next(line for line in text.splitlines() if line.startswith(f"| {claim} |"))


def test_one_set_decided_and_one_undecided_is_no_conflict_and_the_pooled_look_decides(tmp_path):
    _write(tmp_path, "el2n_pruning", [1.0, -0.2, 0.8, 0.1, 0.6])          # straddles 0: underpowered
    _write(tmp_path, "seedset1/el2n_pruning", [0.7, 0.9, 0.5, 1.1, 0.8])   # wholly above 0: passes
    text, conflicts = robustness.page(tmp_path, "quick", 1, toy_cards())
    assert conflicts == []
    cells = [c.strip() for c in row(text, "el2n_pruning").split("|")[1:-1]]
    assert cells[1:6] == ["inconclusive — underpowered", "reproduced", "reproduced",
                          "reproduced (pooled, look 2)", "no"]
    assert "| heavy_tail_phases | not run | not run | – |" in text


def test_a_pass_in_one_set_and_a_fail_in_the_other_is_a_conflict(tmp_path):
    _write(tmp_path, "el2n_pruning", [0.7, 0.9, 0.5, 1.1, 0.8])
    _write(tmp_path, "seedset1/el2n_pruning", [-0.7, -0.9, -0.5, -1.1, -0.8])
    text, conflicts = robustness.page(tmp_path, "quick", 1, toy_cards())
    assert conflicts == ["el2n_pruning"]
    conflict = row(text, "el2n_pruning").split("|")[6]
    assert "E1 passes in one set, fails in the other" in conflict
    assert "x p = " in conflict  # the values differ too (Welch p far below 0.05)
    assert "reproduced (look 1)" in row(text, "el2n_pruning")  # look 1 decided: no second look


def test_pool_concatenates_replicates_averages_bootstraps_and_takes_the_worse_regime_value():
    card = toy_cards()["el2n_pruning"]
    a = {"statistics": {"acc_min": 85.0}, "criteria": [],
         "samples": {"x": {"kind": "replicates", "values": [1, 2]},
                     "b": {"kind": "bootstrap", "values": [0.0, 1.0], "estimate": 0.5}}}
    b = {"statistics": {"acc_min": 79.0}, "criteria": [],
         "samples": {"x": {"kind": "replicates", "values": [3]},
                     "b": {"kind": "bootstrap", "values": [2.0, 3.0, 9.0], "estimate": 2.5}}}
    stats, samples, _ = robustness.pool(card, a, b)
    assert stats["acc_min"] == 79.0
    assert samples["x"].values == (1.0, 2.0, 3.0)
    assert samples["b"].values == (1.0, 2.0) and samples["b"].estimate == 1.5


def test_heterogeneity_known_answers():
    x, y = Samples("replicates", (1.0, 2.0, 3.0, 4.0)), Samples("replicates", (2.0, 4.0, 6.0, 9.0))
    assert robustness.heterogeneity(x, y) == pytest.approx(st.ttest_ind(x.values, y.values, equal_var=False).pvalue)
    # two bootstraps with SD 1 each and estimates 2·√2 apart: z = 2, p = 0.0455
    q = tuple(st.norm.ppf((np.arange(4000) + 0.5) / 4000))
    a = Samples("bootstrap", q, 0.0)
    b = Samples("bootstrap", tuple(v + 2 * np.sqrt(2) for v in q), 2 * np.sqrt(2))
    assert robustness.heterogeneity(a, b) == pytest.approx(2 * st.norm.sf(2.0), abs=2e-3)
    assert robustness.heterogeneity(Samples("replicates", (1.0,)), y) is None


def test_bad_seed_set_and_unknown_claim_are_one_line(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert robustness.main(["--seed-set", "0", "--no-train"]) == 2
    assert robustness.main(["--claims", "nope", "--no-train"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--seed-set 0" in err[0] and "unknown claim 'nope'" in err[1]


def test_the_claims_table_shows_the_design_verdict_once_seed_set_1_has_run(tmp_path):
    """Issue 24: where look 1 is underpowered and seed set 1 has run, the report's verdict cell is the card's
    pre-registered look 2 (both sets pooled), marked as such; without seed set 1 it stays look 1's."""
    from claimbench import report
    cards = toy_cards()
    for rec in ("el2n_pruning", "seedset1/el2n_pruning"):
        _write(tmp_path, rec, [1.0, -0.2, 0.8, 0.1, 0.6] if "/" not in rec else [0.7, 0.9, 0.5, 1.1, 0.8])
    for rel in ("el2n_pruning", "seedset1/el2n_pruning"):  # judged by the toy card's current version
        path = tmp_path / "results" / "quick" / rel / "metrics.json"
        rec = json.loads(path.read_text())
        rec["provenance"]["card_version"] = cards["el2n_pruning"].version
        path.write_text(json.dumps(rec))
    results = {("el2n_pruning", "quick"): json.loads((tmp_path / "results/quick/el2n_pruning/metrics.json")
                                                      .read_text())}
    designs = report.design_verdicts(cards, results, tmp_path / "results")
    assert report.design_label(designs[("el2n_pruning", "quick")]) == "reproduced (look 2: seed sets 0 and 1 pooled)"
    (tmp_path / "results/quick/seedset1/el2n_pruning/metrics.json").unlink()
    assert report.design_verdicts(cards, results, tmp_path / "results") == {}
