"""Verdict logic on hand-made cases: three-valued checks on intervals (pass / fail / undecided, NaN),
the outcome rule table, regime preconditions, null calibration; malformed cards rejected clearly."""

import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from claimbench.cards import (
    CARD_DIR,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    PARTIAL,
    REPRODUCED,
    Card,
    all_cards,
    judged_seeds,
    load_card,
    parse_card,
    seed_list,
)
from claimbench.errors import CardError
from claimbench.intervals import bootstrap, interval, replicates
from claimbench.verdict import criterion_pass_rate, judge

BASE = {
    "id": "x", "title": "X", "paper": {}, "claim": "c", "paper_numbers": [], "headline": {"statistic": "a"},
    "criteria": [
        {"id": "C1", "text": "a < 6", "why": "w", "null": "n",
         "checks": [{"statistic": "a", "op": "<", "threshold": 6}]},
        {"id": "C2", "text": "b >= 0.5 and c > 0", "why": "w", "null": "n",
         "checks": [{"statistic": "b", "op": ">=", "threshold": 0.5}, {"statistic": "c", "op": ">", "threshold": 0}]},
        {"id": "C3", "text": "d", "why": "w", "gating": False,
         "checks": [{"statistic": "d", "op": "==", "threshold": 1}]},
    ],
    "verdict": {"reproduced": ["C1", "C2"], "partially_if_any": ["C1"]},
}


def around(center, half=0.1):
    """Replicates whose Student-t 95% interval is about center ± half (n = 3)."""
    sd = half * math.sqrt(3) / 4.303
    return replicates([center - sd, center, center + sd])


def card():
    return parse_card(BASE, "t")


# --- intervals: known answers ------------------------------------------------------------------------

def test_student_t_interval_known_answer():
    iv = interval(replicates([1.0, 2.0, 3.0]))  # mean 2, sd 1, t(0.975, 2) = 4.3027
    assert iv.estimate == 2.0 and iv.method == "student_t" and iv.n == 3
    assert iv.hi - 2.0 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert iv.lo == pytest.approx(2.0 - 4.302653 / math.sqrt(3), rel=1e-6)


def test_percentile_bootstrap_interval_known_answer():
    iv = interval(bootstrap(0.5, np.linspace(0, 1, 1001)))
    assert (iv.estimate, iv.method) == (0.5, "percentile")
    assert iv.lo == pytest.approx(0.025) and iv.hi == pytest.approx(0.975)


@pytest.mark.parametrize("samples, reason", [
    (replicates([1.0, float("nan"), 2.0]), "1 of 3 replicates are NaN"),
    (replicates([1.0]), "at least 2"),
    (bootstrap(0.1, [float("nan")] * 50 + [0.1] * 50), "bootstrap draws are NaN"),
    (bootstrap(float("nan"), [0.1] * 50), "estimate is NaN"),
])
def test_undefined_intervals_say_why(samples, reason):
    iv = interval(samples)
    assert not iv.defined and reason in iv.reason


# --- three-valued checks -------------------------------------------------------------------------------

@pytest.mark.parametrize("b, outcome, kind", [
    (around(0.8), "pass", None),           # wholly above 0.5
    (around(0.2), "fail", None),           # wholly below
    (around(0.52), "undecided", "underpowered"),  # straddles 0.5 although the estimate passes
    (around(0.48), "undecided", "underpowered"),  # straddles although the estimate fails
    (replicates([0.9, float("nan"), 0.8]), "undecided", "undefined"),
    (None, "undecided", "undefined"),       # missing
])
def test_check_is_pass_fail_or_undecided(b, outcome, kind):
    samples = {"a": around(1.0), "c": around(1.0)}
    if b is not None:
        samples["b"] = b
    c2 = next(c for c in judge(card(), {}, samples)["criteria"] if c["id"] == "C2")
    assert c2["outcome"] == outcome and c2["reason_kind"] == kind
    assert c2["passed"] is (outcome == "pass")


def test_a_statistic_without_interval_is_undecided_unless_exact():
    judged = judge(card(), {"a": 1.0, "b": 1.0, "c": 1.0})
    assert {c["id"]: c["outcome"] for c in judged["criteria"]}["C1"] == "undecided"
    assert "no interval" in judged["criteria"][0]["reason"]
    raw = copy.deepcopy(BASE)
    raw["criteria"][0]["checks"][0]["exact"] = True
    assert judge(parse_card(raw, "t"), {"a": 1.0})["criteria"][0]["outcome"] == "pass"
    assert judge(parse_card(raw, "t"), {"a": float("nan")})["criteria"][0]["outcome"] == "undecided"


# --- outcome rule table ---------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b, verdict, kind", [
    (around(5), around(0.8), REPRODUCED, None),
    (around(5), around(0.2), PARTIAL, None),
    (around(7), around(0.8), NOT_REPRODUCED, None),
    (around(6.05), around(0.8), INCONCLUSIVE, "underpowered"),   # C1 straddles: reproduced or not reproduced
    (around(5), around(0.52), INCONCLUSIVE, "underpowered"),     # C2 straddles: reproduced or partially
    (replicates([5, float("nan")]), around(0.8), INCONCLUSIVE, "undefined"),
    (around(7), around(0.52), NOT_REPRODUCED, None),              # C1 fails, so C2 cannot change the outcome
])
def test_outcome_rule(a, b, verdict, kind):
    judged = judge(card(), {}, {"a": a, "b": b, "c": around(1.0)})
    assert (judged["verdict"], judged["reason_kind"]) == (verdict, kind)
    if verdict == INCONCLUSIVE:
        assert "could be" in judged["reason"] and ("C1" in judged["reason"] or "C2" in judged["reason"])


def test_non_gating_criterion_never_changes_verdict():
    judged = judge(card(), {"d": 0}, {"a": around(1), "b": around(1), "c": around(1)})
    assert judged["verdict"] == REPRODUCED and judged["criteria"][2]["outcome"] == "fail"


def regime_card(applies_to=None):
    raw = copy.deepcopy(BASE)
    pre = {"id": "R1", "text": "the runs trained", "why": "the paper's condition",
           "checks": [{"statistic": "train_acc_min", "op": ">=", "threshold": 0.99}]}
    if applies_to:
        pre["applies_to"] = applies_to
    raw["regime"] = [pre]
    return parse_card(raw, "t")


def test_unmet_claim_wide_precondition_makes_the_verdict_inconclusive_out_of_regime():
    samples = {"a": around(5), "b": around(0.8), "c": around(1)}
    assert judge(regime_card(), {"train_acc_min": 1.0}, samples)["verdict"] == REPRODUCED
    for value in (0.9, float("nan")):
        judged = judge(regime_card(), {"train_acc_min": value}, samples)
        assert (judged["verdict"], judged["reason_kind"]) == (INCONCLUSIVE, "out of regime")
        assert "R1" in judged["reason"] and "the runs trained" in judged["reason"]


def test_criterion_precondition_gates_only_its_criterion():
    samples = {"a": around(5), "b": around(0.8), "c": around(1)}
    judged = judge(regime_card(["C2"]), {"train_acc_min": 0.5}, samples)
    c2 = judged["criteria"][1]
    assert (c2["outcome"], c2["reason_kind"], c2["outcome_in_regime"]) == ("undecided", "out of regime", "pass")
    assert (judged["verdict"], judged["reason_kind"]) == (INCONCLUSIVE, "out of regime")  # C2 decides
    judged = judge(regime_card(["C3"]), {"train_acc_min": 0.5, "d": 1}, samples)
    assert judged["verdict"] == REPRODUCED  # a reported-only criterion out of regime changes nothing


# --- null calibration -----------------------------------------------------------------------------------

def test_null_pass_rate_of_a_one_sided_t_check_is_about_2_5_percent():
    crit = card().criteria[0]  # a < 6
    rng = np.random.default_rng(0)
    draws = [{"a": replicates(6 + rng.standard_normal(5))} for _ in range(4000)]
    rate = criterion_pass_rate(crit, draws)["pass_rate"]
    assert 0.015 < rate < 0.035
    with pytest.raises(ValueError, match="lacks"):
        criterion_pass_rate(crit, [{"b": replicates([1, 2])}])


def test_a_criterion_that_passes_the_null_too_often_cannot_pass():
    samples = {"a": around(5), "b": around(0.8), "c": around(1)}
    judged = judge(card(), {}, samples, {"C2": {"pass_rate": 0.2, "draws": 200}})
    c2 = judged["criteria"][1]
    assert (c2["outcome"], c2["reason_kind"]) == ("undecided", "miscalibrated")
    assert judged["verdict"] == INCONCLUSIVE
    # v4: "≤ 5%" is judged on the rate's Clopper–Pearson 95% upper bound, not on the Monte Carlo point
    at_line = judge(card(), {}, samples, {"C2": {"pass_rate": 0.05, "draws": 200}})  # 10/200: bound ≈ 9%
    assert at_line["criteria"][1]["reason_kind"] == "miscalibrated"
    assert at_line["criteria"][1]["null_pass_upper"] == pytest.approx(0.0902, abs=1e-3)
    ok = judge(card(), {}, samples, {"C2": {"pass_rate": 0.005, "draws": 200}})  # 1/200: bound ≈ 2.7%
    assert ok["verdict"] == REPRODUCED and ok["criteria"][1]["null_pass_rate"] == 0.005
    exact = judge(card(), {}, samples, {"C2": {"pass_rate": 0.05, "pass_upper": 0.05, "draws": 20}})
    assert exact["verdict"] == REPRODUCED  # an enumerated (exact) rate is its own bound


# --- malformed cards ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c.update(extra=1), "unknown key 'extra'"),
        (lambda c: c.pop("claim"), "missing key 'claim'"),
        (lambda c: c["criteria"][0]["checks"][0].update(op="<<"), "op '<<' unknown"),
        (lambda c: c["criteria"][0]["checks"][0].update(threshold="six"), "threshold 'six' must be a number"),
        (lambda c: c["criteria"][0]["checks"][0].update(exactly=True), "check key 'exactly' unknown"),
        (lambda c: c["verdict"].update(reproduced=["C9"]), "names criterion 'C9'"),
        (lambda c: c["verdict"].update(reproduced=["C1", "C3"]), "non-gating"),
        (lambda c: c["criteria"].append(copy.deepcopy(c["criteria"][0])), "duplicate criterion ids"),
        (lambda c: c["criteria"][1].update(checks=[]), "at least one check"),
        (lambda c: c.update(version=2), "needs a changelog entry"),
        (lambda c: c.update(version=2, changelog=[{"version": 2, "date": "2026-11-26", "what": "x"}]), "lacks 'why'"),
        (lambda c: c.update(version=2, changelog=[{"version": 2, "date": "d", "what": "w", "why": "y",
                                                   "scales": ["gpu", "tpu"]}]), "scales .* must be a list"),
        (lambda c: c.update(interval={"replicates": "bca", "bootstrap": "percentile", "level": 0.95}), "interval must"),
        (lambda c: c.update(regime=[{"id": "R", "text": "t", "why": "w", "applies_to": ["C7"],
                                     "checks": [{"statistic": "s", "op": ">", "threshold": 0}]}]),
         "names criterion 'C7'"),
    ],
)
def test_malformed_cards_are_rejected(mutate, message):
    raw = copy.deepcopy(BASE)
    mutate(raw)
    with pytest.raises(CardError, match=message):
        parse_card(raw, "t")


def test_a_version_that_names_other_scales_keeps_results_of_this_scale_current():
    """Changelog `scales`: a result judged by v4 stays current under v6 at a scale no later entry names; an entry
    without `scales` (all scales) or one naming the scale makes it stale; a skipped version's entry too."""
    log = [{"version": v, "date": "d", "what": "w", "why": "y"} for v in (2, 3, 4)]
    def card_at(changelog: list) -> SimpleNamespace:  # a v4+ card needs blocks this test has no use for
        ns = SimpleNamespace(version=6, raw={"changelog": changelog})
        ns.current_for = lambda judged, scale: Card.current_for(ns, judged, scale)
        return ns

    card = card_at(log + [{"version": 5, "date": "d", "what": "w", "why": "y", "scales": ["gpu", "paper"]},
                          {"version": 6, "date": "d", "what": "w", "why": "y", "scales": ["gpu"]}])
    assert card.current_for(6, "quick") and card.current_for(6, "gpu")
    assert card.current_for(4, "quick") and card.current_for(5, "quick") and card.current_for(4, "long")
    assert not card.current_for(4, "gpu") and not card.current_for(5, "gpu") and not card.current_for(4, "paper")
    assert not card.current_for(3, "quick") and not card.current_for(None, "quick")  # v4's entry names no scales
    assert not card.current_for(7, "quick")  # judged by a version this card does not have yet
    gap = card_at(log + [{"version": 6, "date": "d", "what": "w", "why": "y", "scales": ["gpu"]}])
    assert not gap.current_for(4, "quick")  # v5 has no entry saying which scales it changed
    text_only = card_at(log + [{"version": 5, "date": "d", "what": "w", "why": "y", "scales": ["long"]},
                               {"version": 6, "date": "d", "what": "w", "why": "y", "scales": []}])
    assert text_only.current_for(5, "long") and text_only.current_for(4, "quick")  # [] changes no scale
    assert not text_only.current_for(4, "long")  # v5 changed long


def test_interval_line_names_the_v4_methods_or_the_v3_ones():
    v4 = {"replicates": "student_t", "ratios": "log_student_t", "correlations": "exact_permutation|fisher_z",
          "labels": "k_of_n", "bootstrap": "bca|percentile", "level": 0.95}
    for line in (v4, {"replicates": "student_t", "bootstrap": "percentile", "level": 0.95}):
        assert parse_card({**copy.deepcopy(BASE), "interval": line}, "t").id == "x"
    with pytest.raises(CardError, match="interval must"):
        parse_card({**copy.deepcopy(BASE), "interval": {**v4, "labels": "student_t"}}, "t")
    assert all(c.raw["interval"] == v4 for c in all_cards().values())  # every committed card reads engine v4


def test_card_id_must_match_file_name(tmp_path):
    (tmp_path / "y.yaml").write_text(yaml.safe_dump(BASE))
    with pytest.raises(CardError, match="does not match its file name"):
        load_card("y", tmp_path)
    with pytest.raises(CardError, match="no claim card"):
        load_card("zzz", tmp_path)


def test_committed_cards_are_v2_with_changelog_nulls_and_intervals():
    for claim_id, card in all_cards().items():
        assert card.id == claim_id
        assert card.version >= 2 and card.raw["changelog"], f"{claim_id}: card v2 needs a changelog"
        assert "interval" in card.raw and "adapted" in card.raw, claim_id
        for c in card.criteria:
            assert c.text.strip() and c.why.strip()
            assert not c.gating or c.null, f"{claim_id} {c.id}: a gating criterion needs its null"


def test_a_bare_yaml_null_key_is_the_criterion_null_and_unknown_keys_are_refused():
    text = yaml.safe_dump(BASE).replace("'null': n", "null: labels shuffled")
    raw = yaml.safe_load(text)
    assert None in raw["criteria"][0]  # YAML reads `null:` as the key None
    assert parse_card(raw, "t").criteria[0].null == "labels shuffled"
    raw["criteria"][0]["nul"] = "typo"
    with pytest.raises(CardError, match="criterion key 'nul' unknown"):
        parse_card(raw, "t")


# --- card v4 blocks (issue 22): seeds, clauses, pooling, power.simulation ----------------------------

def v4_raw(claim="el2n_pruning"):
    return copy.deepcopy(yaml.safe_load((CARD_DIR / f"{claim}.yaml").read_text()))


def refusal(raw) -> str:
    with pytest.raises(CardError) as e:
        parse_card(raw, "t")
    msg = str(e.value)
    assert "\n" not in msg, "a refusal is one line"
    return msg


def test_every_committed_card_is_v4_with_its_blocks():
    for card in all_cards().values():
        assert card.version >= 4  # card v5 (issue 24) keeps every v4 block
        entry = next(e for e in card.raw["changelog"] if e["version"] == 4)
        assert entry["date"] == "2026-12-06" and "issue 22" in entry["why"]
        assert card.raw["seeds"]["judged"]["quick"] and card.raw["clauses"] and card.raw["pooling"]


def test_a_pilot_whose_seeds_overlap_the_judged_seeds_is_refused_in_one_line():
    raw = v4_raw()
    raw["seeds"]["pilots"][0]["seeds"] = ["8000-8007", 61003]  # 61003: quick seed set 1's replicate 3 (card v7)
    msg = refusal(raw)
    assert "pilot 'set8' uses judged seeds [61003] (quick set 1)" in msg and "reused" in msg


def test_judged_seed_ranges_are_expanded():
    card = load_card("el2n_pruning")
    assert judged_seeds(card.raw)[("quick", 1)] == set(range(61000, 61020))  # card v7: 10 replicates × 2
    with pytest.raises(CardError, match="lo-hi"):
        seed_list(["20-3"], "t")


def test_a_pilot_effect_must_come_from_a_disjoint_pilot():
    raw = v4_raw()
    effect = raw["power"]["simulation"]["expected"]["quick"][3]
    effect["pilot"] = "v2-quick"  # a reused judged run
    assert "seeds.pilots id" in refusal(raw)


def test_an_effect_without_source_sits_at_its_threshold():
    raw = v4_raw()
    raw["power"]["simulation"]["expected"]["quick"][0].update(kind="none", value=0.7)
    assert "least favourable" in refusal(raw)
    raw["power"]["simulation"]["expected"]["quick"][0]["value"] = 0  # E1's threshold
    parse_card(raw, "t")


def test_clauses_name_existing_gating_criteria_and_cover_every_gating_one():
    raw = v4_raw()
    raw["clauses"][1]["criteria"] = ["E9"]
    assert "criterion 'E9' does not exist" in refusal(raw)
    raw = v4_raw()
    raw["clauses"] = [c for c in raw["clauses"] if c.get("criteria") != ["E3"]]
    assert "'E3' serves no clause" in refusal(raw)
    raw = v4_raw()
    raw["clauses"][0]["criteria"] = ["E1"]  # both criteria and reported_only
    assert "exactly one" in refusal(raw)
    raw = v4_raw()
    raw["clauses"][1]["criteria"] = ["E4"]  # reported only
    assert "reported only" in refusal(raw)


def test_pooling_and_v4_blocks_are_validated():
    raw = v4_raw()
    raw["pooling"]["boundary"] = "haybittle"
    assert "boundary" in refusal(raw)
    raw = v4_raw()
    raw["pooling"]["levels"] = [0.97]
    assert "one interval level" in refusal(raw)
    raw = v4_raw()
    del raw["seeds"]
    assert "needs a `seeds:` block" in refusal(raw)
    raw = v4_raw()
    del raw["power"]["simulation"]["scales"]["quick"]["regime"]["R1"]
    assert "as met or unmet" in refusal(raw)


def test_verdict_reads_intervals_at_the_level_asked():
    """0.5 ± ~0.3 over 5 replicates: its 95% interval clears 0, its 99.9% interval does not."""
    samples = {"a": replicates([4.9, 5.0, 5.1]), "b": replicates([0.6, 0.9, 0.7, 1.0, 0.8]),  # v4: SD 0 undecided
               "c": replicates([1.0, 1.1, 1.2])}
    c = card()
    assert judge(c, {}, samples)["verdict"] == REPRODUCED
    at = judge(c, {}, samples, level=0.9999)
    assert at["verdict"] == INCONCLUSIVE and at["reason_kind"] == "underpowered"


def _replicate_seeds(claim_id: str, cfg) -> set[int]:
    """The replicate seeds a claim's config trains under (its with_seed_set moves exactly these)."""
    if claim_id == "el2n_pruning":
        from claimbench.claims.el2n_pruning import ensemble_seeds
        return {s for ens in ensemble_seeds(cfg) for s in ens}  # prune seeds are each ensemble's first
    if claim_id == "simpson_paradox":
        return {cfg.seed + cfg.seed_base}  # every model seed derives from it
    return set(cfg.seeds) | set(getattr(cfg, "control_seeds", None) or [])


@pytest.mark.parametrize("claim_id", sorted(all_cards()))
def test_the_seeds_block_lists_the_seeds_the_judged_runs_use(claim_id):
    from conftest import REPO

    from claimbench.stage import make_context
    judged = judged_seeds(load_card(claim_id).raw)
    assert {("quick", 0), ("quick", 1), ("gpu", 0)} <= set(judged)  # card v5 (issue 24) may add long's sets
    for (scale, k), seeds in judged.items():
        cfg = make_context(claim_id, scale, root=REPO, seed_set=k).cfg
        assert seeds == _replicate_seeds(claim_id, cfg), (scale, k)


def test_a_card_with_a_seed_set_design_judges_at_look_one_level_by_default():
    samples = {"a": replicates([4.9, 5.0, 5.1]), "b": replicates([0.6, 0.9, 0.7, 1.0, 0.8]),  # v4: SD 0 undecided
               "c": replicates([1.0, 1.1, 1.2])}
    designed = parse_card({**BASE, "pooling": {"looks": [0, 1], "boundary": "pocock", "alpha": 0.05,
                                               "levels": [0.9999, 0.9999], "second_look_if": "s", "conflict": "c"}},
                          "t")
    assert designed.look_level(0) == 0.9999 and card().look_level(0) == 0.95
    assert judge(designed, {}, samples)["verdict"] == INCONCLUSIVE
    assert judge(designed, {}, samples, level=0.95)["verdict"] == REPRODUCED


def test_a_scale_may_carry_its_own_normal_sds_and_they_are_validated():
    """Card v7 (EL2N quick re-sized): a scale's own `normal` block replaces the card-wide SDs for that scale
    only, so re-sizing one scale leaves the predictions stored for the others where they were."""
    from claimbench.power import card_verdict_power

    raw = v4_raw()
    sim = raw["power"]["simulation"]
    wide = copy.deepcopy(sim["normal"])
    sim["scales"]["quick"].pop("normal", None)
    sim["scales"]["long"]["normal"] = {**copy.deepcopy(wide), "sd": {**wide["sd"], "el2n_minus_random_pruned50": 5.0}}
    card = parse_card(raw, "t")
    gpu_wide = card_verdict_power(parse_card(v4_raw(), "t"), "gpu", draws=200, seed=3)
    assert card_verdict_power(card, "gpu", draws=200, seed=3) == gpu_wide  # other scales untouched
    assert card_verdict_power(card, "long", draws=200, seed=3)["partially"] < 0.5  # E1 sd 5: rarely decided
    del sim["scales"]["long"]["normal"]["sd"]["full_minus_el2n_pruned50"]
    sim["scales"]["long"]["normal"].pop("correlation", None)
    assert "'full_minus_el2n_pruned50' has neither pilot rows nor a normal sd" in refusal(raw)
    sim["scales"]["long"]["normal"]["sd"]["full_minus_el2n_pruned50"] = 0.3
    sim["scales"]["long"]["normal"]["source"] = ["nowhere"]
    assert "'nowhere' is not a seeds.pilots or seeds.reused id" in refusal(raw)
