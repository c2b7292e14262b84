"""Verdict engine v4 (claimbench.verdict, issue 22): outcome ranges and labels, the outcome ignoring the
regime, nulls at the pass line that keep the data's shape (a heavy lower tail fools the Student-t interval
and is flagged), every published field audited, and the re-judge tool on a copy of a committed result."""

import copy
import json
import shutil

import numpy as np
import pytest
import yaml
from conftest import FIXTURES, REPO
from test_cards import BASE, around
from test_report_audit import toy_repo

import claimbench.cards
from claimbench import audit, rejudge
from claimbench.cards import INCONCLUSIVE, NOT_REPRODUCED, PARTIAL, REPRODUCED, parse_card
from claimbench.intervals import correlations, labels, replicates
from claimbench.results import DVC_METRICS, ClaimResult
from claimbench.threshold_null import check_null
from claimbench.verdict import calibrate, judge

V3_KEYS = {"verdict", "reason_kind", "reason", "criteria", "regime"}


def card(regime=None):
    raw = copy.deepcopy(BASE)
    if regime is not None:
        raw["regime"] = [{"id": "R1", "text": "the runs trained", "why": "w", **regime,
                          "checks": [{"statistic": "train_acc_min", "op": ">=", "threshold": 0.99}]}]
    return parse_card(raw, "t")


# --- 1. outcome ranges ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b, verdict, possible, label", [
    (around(5), around(0.8), REPRODUCED, [REPRODUCED], REPRODUCED),
    (around(5), around(0.52), INCONCLUSIVE, [REPRODUCED, PARTIAL], "at least partially reproduced — C2 underpowered"),
    (around(6.05), around(0.2), INCONCLUSIVE, [PARTIAL, NOT_REPRODUCED],
     "at most partially reproduced — C1 underpowered"),
    (around(6.05), around(0.8), INCONCLUSIVE, [REPRODUCED, NOT_REPRODUCED], "inconclusive — underpowered"),
    (around(7), around(0.52), NOT_REPRODUCED, [NOT_REPRODUCED], NOT_REPRODUCED),
])
def test_every_verdict_carries_its_possible_outcomes_and_prints_a_known_floor_or_ceiling(a, b, verdict, possible,
                                                                                           label):
    judged = judge(card(), {}, {"a": a, "b": b, "c": around(1.0)})
    assert V3_KEYS <= set(judged)  # the v3 verdict keys stay (downstream: power, report)
    assert (judged["verdict"], judged["possible_outcomes"], judged["label"]) == (verdict, possible, label)
    assert (judged["outcome_ceiling"], judged["outcome_floor"]) == (possible[0], possible[-1])
    assert judged["outcome_ignoring_regime"] is None  # no regime unmet


def test_out_of_regime_never_hides_a_clear_failure():
    samples = {"a": around(7), "b": around(0.2), "c": around(1)}  # both criteria fail outright
    judged = judge(card({}), {"train_acc_min": 0.5}, samples)
    assert (judged["verdict"], judged["reason_kind"]) == (INCONCLUSIVE, "out of regime")
    assert judged["outcome_ignoring_regime"]["verdict"] == NOT_REPRODUCED
    assert judged["label"] == "inconclusive — out of regime (ignoring regime: not reproduced)"
    gated = judge(card({"applies_to": ["C2"]}), {"train_acc_min": 0.5}, {**samples, "a": around(5)})
    assert gated["label"] == "at least partially reproduced — C2 out of regime (ignoring regime: partially reproduced)"
    assert gated["outcome_ignoring_regime"]["verdict"] == PARTIAL


def test_an_undecidable_regime_keeps_the_range_of_the_criteria():
    judged = judge(card({}), {"train_acc_min": float("nan")}, {"a": around(5), "b": around(0.52), "c": around(1)})
    assert judged["possible_outcomes"] == [REPRODUCED, PARTIAL]
    assert judged["label"] == "inconclusive — out of regime (ignoring regime: at least partially reproduced)"


def one_sided_card(**regime):
    """card() whose R1 (unmet in the tests) applies to C2 and is settled when c lies decidedly below 0."""
    return card({"applies_to": ["C2"], "settled_if": [{"statistic": "c", "op": "<", "threshold": 0}], **regime})


def test_a_one_sided_precondition_lets_through_only_the_outcome_its_settling_checks_decide():
    unmet = {"train_acc_min": 0.5}
    settled = judge(one_sided_card(), unmet, {"a": around(5), "b": around(0.8), "c": around(-1)})
    assert settled["verdict"] == PARTIAL  # C2 fails on c, which the precondition cannot have produced
    c2 = next(c for c in settled["criteria"] if c["id"] == "C2")
    assert (c2["outcome"], c2["regime_settled"]) == ("fail", ["R1"])
    assert settled["regime"][0]["met"] is False and settled["regime"][0]["settled"] is True
    open_ = judge(one_sided_card(), unmet, {"a": around(5), "b": around(0.8), "c": around(-0.05)})
    assert open_["label"].startswith("at least partially reproduced — C2 out of regime")
    assert open_["regime"][0]["settled"] is False and "regime_settled" not in open_["criteria"][1]
    met = judge(one_sided_card(), {"train_acc_min": 1.0}, {"a": around(5), "b": around(0.8), "c": around(1)})
    assert met["verdict"] == REPRODUCED and "settled" not in met["regime"][0]


def test_a_one_sided_precondition_is_settled_on_the_looks_interval_not_the_point():
    samples = {"a": around(5), "b": around(0.8), "c": around(-0.12)}  # 95%: about [-0.22, -0.02]
    assert judge(one_sided_card(), {"train_acc_min": 0.5}, samples, level=0.95)["verdict"] == PARTIAL
    wide = judge(one_sided_card(), {"train_acc_min": 0.5}, samples, level=0.999)
    assert wide["verdict"] == INCONCLUSIVE and wide["reason_kind"] == "out of regime"


@pytest.mark.parametrize("regime, message", [
    ({"settled_if": [{"statistic": "c", "op": "<", "threshold": 0}]}, "settled_if needs applies_to"),
    ({"applies_to": ["C2"], "settled_if": []}, "needs at least one check"),
    ({"applies_to": ["C2"], "settles": []}, "key 'settles' unknown"),
])
def test_a_malformed_one_sided_precondition_is_refused_with_its_fix(regime, message):
    with pytest.raises(claimbench.cards.CardError, match=message):
        card(regime)


# --- 2. nulls at the pass line ---------------------------------------------------------------------------------

def heavy_lower_tail(n=10, seed=0):
    """Replicates like EL2N's 5-epoch pilot: most differences near +1, an occasional large loss."""
    rng = np.random.default_rng(seed)
    x = rng.normal(1.2, 0.2, n)
    x[0] = -1.5
    return x


def test_a_heavy_tailed_replicate_distribution_flags_the_student_t_criterion_miscalibrated():
    raw = copy.deepcopy(BASE)
    raw["criteria"][0]["checks"] = [{"statistic": "a", "op": ">", "threshold": 0}]
    c = parse_card(raw, "t")
    x = heavy_lower_tail()
    samples = {"a": replicates(x), "b": around(0.8), "c": around(1)}
    null = calibrate(c, samples)
    assert null["C1"]["pass_upper"] > 0.05 and null["C1"]["draws"] == 2000
    judged = judge(c, {}, samples, null)
    c1 = judged["criteria"][0]
    assert c1["checks"][0]["outcome"] == "pass"  # the Student-t interval clears 0 ...
    assert (c1["outcome"], c1["reason_kind"]) == ("undecided", "miscalibrated")  # ... but is not trusted
    # the same spread without the tail is calibrated
    sym = np.random.default_rng(0).normal(1.0, 1.2, 10)
    assert check_null(replicates(sym), ">", 0.0, "a")["pass_upper"] <= 0.05


def test_threshold_nulls_sit_on_the_pass_line_not_at_zero_effect():
    """A far-from-threshold effect-absent null reads 0% whatever the criterion; the threshold null does not."""
    x = np.array([0.95, 0.97, 0.96, 0.99, 0.94, 0.97, 0.98, 0.96, 0.95, 0.97])
    r = check_null(replicates(x), ">=", 0.9, "rho")
    assert 0.0 < r["pass_rate"] < 0.1 and not r["exact"]
    # seeded: the same samples give the same calibration
    assert check_null(replicates(x), ">=", 0.9, "rho") == r


def test_finite_nulls_are_enumerated_exactly():
    lab = check_null(labels([1] * 6), ">=", 1)  # 6 of 6 at a share of ½: 1/64
    assert lab["exact"] and lab["pass_rate"] == pytest.approx(1 / 64) and lab["pass_upper"] == lab["pass_rate"]
    assert check_null(labels([1] * 3), ">=", 1)["pass_rate"] == 0.0  # 3 labels can never pass
    rho = check_null(correlations([0.8, 1.0, 1.0], 4), ">", 0)  # quick C2: 24³ orders
    assert rho["exact"] and rho["draws"] == 24**3 and 0 < rho["pass_rate"] <= 0.025
    small = check_null(replicates([0.1, 0.4, 0.3]), ">", 0.0)  # 3³ resamples
    assert small["exact"] and small["draws"] == 27


# --- 8. everything published is audited ------------------------------------------------------------------------

@pytest.fixture
def published(tmp_path, monkeypatch):
    raw = yaml.safe_load((FIXTURES / "toy.yaml").read_text())
    raw["criteria"][0]["checks"] = [{"statistic": "train_acc", "op": ">", "threshold": 0.5}]
    result = ClaimResult({"n_runs": 2}, samples={"train_acc": replicates([0.8, 0.9, 0.85])},
                         setup={"dataset": "fashion-mnist", "model": "MLP-32"})
    root = toy_repo(tmp_path, monkeypatch, raw, result, "quick")
    return root / "results/quick/toy"


def _edit(folder, edit_record, edit_headline=None):
    rec = json.loads((folder / "metrics.json").read_text())
    edit_record(rec)
    (folder / "metrics.json").write_text(json.dumps(rec))
    head = json.loads((folder / DVC_METRICS).read_text())
    (edit_headline or (lambda h: None))(head)
    (folder / DVC_METRICS).write_text(json.dumps(head))


def _problems(folder):
    return audit.findings(folder / "metrics.json", {"toy": claimbench.cards.load_card("toy")})


def test_an_untouched_result_passes_the_audit(published):
    assert _problems(published) == []


@pytest.mark.parametrize("what, edit, edit_head", [
    ("value", lambda r: r["headline"].update(value=42.0), lambda h: h["headline"].update(value=42.0)),
    ("label", lambda r: r["headline"].update(label="test acc"), None),
    ("interval", lambda r: r["headline"].update(interval=[0.9, 1.0]),
     lambda h: h["headline"].update(interval=[0.9, 1.0])),
    ("setup.dataset", lambda r: r["setup"].update(dataset="cifar-10"), None),
    ("setup.model", lambda r: r["setup"].update(model="ResNet-18"), None),
    ("cost", lambda r: r["provenance"].update(wall_s=1.0), None),
    ("verdict label", lambda r: r.update(verdict_label="reproduced, clearly"), lambda h: h.update(
        verdict_label="reproduced, clearly")),
    ("null", lambda r: r["null_calibration"]["T1"].update(pass_rate=0.5), None),
])
def test_every_published_field_edited_by_hand_fails_the_audit(published, what, edit, edit_head):
    _edit(published, edit, edit_head)
    kinds = {k for k, _ in _problems(published)}
    assert kinds & {"published", "verdict", "digest"}, (what, kinds)


def test_the_refusal_names_an_edited_headline(published):
    _edit(published, lambda r: r["headline"].update(value=42.0), lambda h: h["headline"].update(value=42.0))
    line = audit.refusal(published / "metrics.json", {"toy": claimbench.cards.load_card("toy")})
    assert "what the report publishes was edited after the run (headline value: stored 42.0" in line


# --- 10. re-judge tool -------------------------------------------------------------------------------------------

def test_rejudge_a_copy_of_a_committed_result(tmp_path):
    """gpu Simpson: S2 has the wrong sign, so the claim is at most partially reproduced, and card v5's regime R4
    (every corpus model fits its training set: never measured on this corpus, so unmet) holds the verdict."""
    src = REPO / "results/archive/card-v5/gpu/simpson_paradox/metrics.json"
    dst = tmp_path / "results/gpu/simpson_paradox/metrics.json"
    dst.parent.mkdir(parents=True)
    shutil.copy(src, dst)
    assert rejudge.main(["--root", str(tmp_path)]) == 0
    text = (tmp_path / rejudge.OUT).read_text()
    before = json.loads(src.read_text())["verdict_label"]  # as committed (re-judged under card v5 since)
    assert (f"| gpu/simpson_paradox | {before} | inconclusive | inconclusive — out of regime (ignoring regime: at "
            "most partially reproduced) | partially reproduced or not reproduced | at most partially reproduced |") \
        in text
    r = rejudge.rejudge(dst, claimbench.cards.all_cards())["after"]
    s2 = next(c for c in r["criteria"] if c["id"] == "S2")
    assert s2["outcome"] == "fail" and r["possible_outcomes"] == [PARTIAL, NOT_REPRODUCED]


def test_rejudge_reads_stored_samples_as_the_kinds_the_analysis_declares(tmp_path):
    rec = json.loads((REPO / "results/archive/card-v4/quick/heavy_tail_phases/metrics.json").read_text())
    up = rejudge.upgrade_samples(rec["claim_id"], rec["samples"], rec["setup"])
    assert up["softrank_fc1_rho_per_seed"].kind == "correlations" and up["softrank_fc1_rho_per_seed"].points == 4
    assert up["phase_fc1_smallest_bs_per_seed"].kind == "labels"
    assert up["test_acc_gain_per_seed"].kind == "replicates"


def test_a_claims_resampled_corpora_are_moved_onto_the_threshold():
    """Double bootstrap (Simpson): draws whose estimate spreads N(θ̂, σ²) and whose own percentile interval is
    ± 1.96σ pass a '> t' check once moved onto t exactly when they sit 1.96σ above θ̂: 2.5%."""
    from scipy import stats as sps

    from claimbench.intervals import bootstrap
    from claimbench.verdict import CLAIM_DRAWS, resampled_threshold_null

    sigma, est = 0.1, 0.7
    inner = sigma * sps.norm.ppf(np.linspace(0.0005, 0.9995, 1999))
    z = sps.norm.ppf((np.arange(1000) + 0.5) / 1000)
    draws = [{"a": bootstrap(est + sigma * zi, est + sigma * zi + inner)} for zi in z]
    raw = copy.deepcopy(BASE)
    raw["criteria"][0]["checks"] = [{"statistic": "a", "op": ">", "threshold": 0.3}]
    c = parse_card(raw, "t").criteria[0]
    out = resampled_threshold_null(c, {"a": bootstrap(est, est + inner)}, draws)
    assert out["pass_rate"] == pytest.approx(0.025, abs=0.002) and out["draws"] == 1000
    assert out["claim_draws"] and out["method"].startswith(CLAIM_DRAWS)
    assert out["pass_upper"] == pytest.approx(0.0367, abs=0.003)  # Clopper–Pearson bound of 25/1000


def test_two_replicates_give_an_uninformative_null_not_a_certificate():
    from claimbench.report import _null_cells

    r = check_null(replicates([0.2, 1.4]), ">", 0.0)
    assert r["pass_rate"] == 0.0 and r["informative"] is False
    raw = copy.deepcopy(BASE)
    cal = calibrate(parse_card(raw, "t"), {"a": replicates([5.0, 5.2]), "b": around(0.8), "c": around(1)})
    assert cal["C1"]["informative"] is False and "informative" not in cal["C2"]
    assert _null_cells(cal["C1"])[3].startswith("– (uninformative")


def test_rejudge_write_rewrites_a_stored_result_that_then_passes_the_audit(tmp_path):
    """`rejudge --write` (results made elsewhere, no artifacts here): the rewritten record is v4, keeps the
    stored statistics' values, and the strict v4 audit finds nothing to object to."""
    import shutil

    from claimbench.cards import all_cards

    src = REPO / "results" / "archive" / "card-v5" / "gpu" / "el2n_pruning"  # the 2026-11-26 gpu run (card v3 params)
    dst = tmp_path / "results" / "gpu" / "el2n_pruning"
    shutil.copytree(src, dst)
    before = json.loads((dst / "metrics.json").read_text())
    rec = rejudge.rewrite(dst / "metrics.json", all_cards())
    made_under = (before["provenance"].get("rejudged") or {}).get("card_version_before",
                                                                   before["provenance"]["card_version"])
    assert rec["provenance"]["engine_version"] == rejudge.ENGINE_VERSION and \
        rec["provenance"]["rejudged"]["card_version_before"] == \
        made_under == 3  # the gpu run was made under card v3; a second rewrite keeps saying so
    assert rec["statistics"]["full_data_acc_min"] == before["statistics"]["full_data_acc_min"]
    assert audit.audit_result(dst / "metrics.json", all_cards()) == []
