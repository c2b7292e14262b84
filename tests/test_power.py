"""claimbench.power on known answers (per statistic, per verdict, α-spending levels), and every card's power
rows and per-verdict power recomputed from their own inputs."""

import math

import pytest
from scipy import stats as st

from claimbench.cards import CardError, all_cards, parse_card, power_checks
from claimbench.power import (
    card_verdict_power,
    decide_probabilities,
    false_positive_rate,
    look_levels,
    p_pass,
    replicates_for,
    suite_error,
    verdict_power,
)
from claimbench.power import main as power_main


def noncentral_t_power(expected, sd, n, threshold=0.0, level=0.95):
    """Closed form for a one-sided '>' check: P(mean − t·s/√n > threshold) = P(T' > t), T' ~ nct(n−1, δ)."""
    delta = (expected - threshold) / (sd / math.sqrt(n))
    return float(st.nct.sf(st.t.ppf(0.5 + level / 2, n - 1), n - 1, delta))


@pytest.mark.parametrize("expected,sd,n", [(0.5, 1.0, 10), (0.73, 0.23, 4), (1.0, 2.0, 20)])
def test_one_sided_power_matches_the_noncentral_t(expected, sd, n):
    assert p_pass(expected, sd, n, [(">", 0.0)], draws=40000) == pytest.approx(noncentral_t_power(expected, sd, n),
                                                                             abs=0.01)


def test_at_the_threshold_a_one_sided_check_passes_at_half_the_two_sided_alpha():
    assert p_pass(0.0, 1.0, 6, [(">", 0.0)], draws=40000) == pytest.approx(0.025, abs=0.005)


def test_fail_and_pass_mirror_each_other_across_the_threshold():
    above = decide_probabilities(1.0, 1.0, 8, [(">", 0.0)])
    below = decide_probabilities(-1.0, 1.0, 8, [(">", 0.0)])
    assert above["pass"] == pytest.approx(below["fail"], abs=0.01)
    assert sum(above.values()) == pytest.approx(1.0)


def test_an_equivalence_test_needs_both_sides_and_fails_outside_the_margin():
    inside = decide_probabilities(0.0, 1.0, 30, [(">", -1.0), ("<", 1.0)])
    assert inside["pass"] > 0.95
    outside = decide_probabilities(3.0, 1.0, 8, [(">", -1.0), ("<", 1.0)])
    assert outside["pass"] == 0.0 and outside["fail"] > 0.95


def test_replicates_for_is_the_smallest_n_reaching_the_target():
    n = replicates_for(0.5, 1.0, [(">", 0.0)], target=0.8)
    assert p_pass(0.5, 1.0, n, [(">", 0.0)]) >= 0.8 > p_pass(0.5, 1.0, n - 1, [(">", 0.0)])
    assert replicates_for(0.01, 1.0, [(">", 0.0)], n_max=10) is None


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="at least 2"):
        p_pass(0.0, 1.0, 1, [(">", 0.0)])
    with pytest.raises(ValueError, match="op"):
        p_pass(0.0, 1.0, 5, [("!=", 0.0)])


def test_every_card_power_row_recomputes_from_its_inputs():
    """A card's stated P(pass) for a replicate statistic is what its (sd, expected, replicates) give
    against the checks its gating criteria apply: the card cannot state a power it does not have."""
    rows, cards = 0, all_cards()
    assert all(card.raw.get("power") for card in cards.values()), "every card states its power analysis"
    for card in cards.values():
        for row in card.raw["power"]["statistics"]:
            if row["method"] != "student_t":
                continue
            checks = power_checks(card, row["statistic"])
            assert checks, f"{card.id}: {row['statistic']} has no gating check"
            got = p_pass(float(row["expected"]), float(row["sd"]), int(row["replicates"]), checks)
            assert got == pytest.approx(float(row["p_pass"]), abs=0.03), (card.id, row["statistic"], got)
            rows += 1
    assert rows >= len(cards)


def _card(power):
    return {"id": "x", "title": "t", "paper": {}, "claim": "c", "paper_numbers": [], "headline": {},
            "criteria": [{"id": "A", "text": "a", "why": "w",
                          "checks": [{"statistic": "s", "op": ">", "threshold": 0}]}],
            "verdict": {"reproduced": ["A"]}, "power": power}


def test_the_power_block_is_validated():
    row = {"statistic": "s", "method": "student_t", "sd": 1, "expected": 0.5, "expected_source": "paper",
           "replicates": 10, "p_pass": 0.5}
    parse_card(_card({"pilot": "p", "statistics": [row], "cost": "c"}), "x")
    with pytest.raises(CardError, match="not checked"):
        parse_card(_card({"pilot": "p", "statistics": [{**row, "statistic": "zz"}], "cost": "c"}), "x")
    with pytest.raises(CardError, match="method"):
        parse_card(_card({"pilot": "p", "statistics": [{**row, "method": "guess"}], "cost": "c"}), "x")
    with pytest.raises(CardError, match="unknown key"):
        parse_card(_card({"pilot": "p", "statistics": [row], "cost": "c", "extra": 1}), "x")
    with pytest.raises(CardError, match="pilot"):
        parse_card(_card({"statistics": [row], "cost": "c"}), "x")


# --- per-verdict power (issue 22) ---------------------------------------------------------------------

def _one(op=">", threshold=0.0, **extra):
    raw = {"id": "x", "title": "t", "paper": {}, "claim": "c", "paper_numbers": [], "headline": {},
           "criteria": [{"id": "A", "text": "a", "why": "w",
                         "checks": [{"statistic": "s", "op": op, "threshold": threshold}]}],
           "verdict": {"reproduced": ["A"], "partially_if_any": ["A"]}}
    return parse_card({**raw, **extra}, "x")


def _two():
    raw = {"id": "x", "title": "t", "paper": {}, "claim": "c", "paper_numbers": [], "headline": {},
           "criteria": [{"id": "A", "text": "a", "why": "w",
                         "checks": [{"statistic": "s", "op": ">", "threshold": 0}]},
                        {"id": "B", "text": "b", "why": "w",
                         "checks": [{"statistic": "t", "op": ">", "threshold": 0}]}],
           "verdict": {"reproduced": ["A", "B"], "partially_if_any": ["A"]}}
    return parse_card(raw, "x")


def test_look_levels_known_answers():
    assert look_levels(2, "pocock") == pytest.approx([0.9706, 0.9706], abs=1e-4)  # z = 2.178 at both looks
    assert look_levels(2, "obrien_fleming") == pytest.approx([0.99484, 0.95201], abs=1e-4)  # z = 2.797, 1.977
    assert look_levels(1, "pocock") == pytest.approx([0.95], abs=1e-6)
    with pytest.raises(ValueError, match="boundary"):
        look_levels(2, "haybittle")


def test_verdict_power_of_one_criterion_is_its_pass_probability():
    """One gating statistic, one look: P(reproduced) = P(pass), P(not) = P(fail) (the noncentral t)."""
    card = _one()
    normal = {"method": "replicates", "sd": {"s": 1.0}}
    got = verdict_power(card, None, 8, {"s": 0.8}, normal=normal, draws=4000, seed=1)
    assert got["reproduced"] == pytest.approx(noncentral_t_power(0.8, 1.0, 8), abs=0.025)
    below = decide_probabilities(0.8, 1.0, 8, [(">", 0.0)])
    assert got["not"] == pytest.approx(below["fail"], abs=0.01)
    assert sum(got.values()) == pytest.approx(1.0)


def test_under_the_null_a_one_sided_check_passes_at_half_alpha():
    card = _one(op=">=", threshold=2.0)
    got = verdict_power(card, None, 6, {"s": 5.0}, normal={"method": "replicates", "sd": {"s": 1.0}}, null=True,
                        draws=6000, seed=2)
    assert got["reproduced"] == pytest.approx(0.025, abs=0.008)


def test_resampling_whole_rows_keeps_the_correlation_between_statistics():
    """Identical columns pass together (P(both) = P(one)); opposite columns almost never do."""
    card = _two()
    col = [0.2, 1.6, 0.9, -0.3, 1.1, 0.4, 2.0, 0.7]
    same = {"statistics": ["s", "t"], "values": [[v, v] for v in col]}
    opposite = {"statistics": ["s", "t"], "values": [[v, -v] for v in col]}
    exp = {"s": 0.8, "t": 0.8}
    p_same = verdict_power(card, same, 10, exp, draws=1500, seed=3)
    p_opp = verdict_power(card, opposite, 10, exp, draws=1500, seed=3)
    p_one = verdict_power(_one(), {"statistics": ["s"], "values": [[v] for v in col]}, 10, {"s": 0.8}, draws=1500,
                          seed=3)["reproduced"]
    assert p_same["reproduced"] == pytest.approx(p_one, abs=1e-9)
    assert p_opp["reproduced"] < p_same["reproduced"] - 0.05


def test_a_second_look_raises_power_and_an_unmet_regime_ends_the_design():
    card = _one()
    normal = {"method": "replicates", "sd": {"s": 1.0}}
    one = verdict_power(card, None, 6, {"s": 0.6}, normal=normal, levels=[0.9706], draws=2000, seed=4)
    two = verdict_power(card, None, 6, {"s": 0.6}, normal=normal, levels=[0.9706, 0.9706], draws=2000, seed=4)
    assert two["reproduced"] > one["reproduced"] + 0.1
    regime = [{"id": "R1", "text": "r", "why": "w", "checks": [{"statistic": "acc", "op": ">=", "threshold": 0.75}]}]
    gated = _one(regime=regime)
    out = verdict_power(gated, None, 6, {"s": 3.0}, normal=normal, regime={"R1": "unmet"}, levels=[0.97, 0.97],
                        draws=200)
    assert out["inconclusive"] == 1.0
    assert verdict_power(gated, None, 6, {"s": 3.0}, normal=normal, regime={"R1": "met"}, draws=200)["reproduced"] > 0.9


def test_suite_error_known_answer():
    assert suite_error([0.1, 0.2]) == pytest.approx((0.28, 0.3))
    assert false_positive_rate({"reproduced": 0.01, "partially": 0.02, "not": 0.5, "inconclusive": 0.47}) == 0.03


def test_every_card_pools_at_its_boundary_levels():
    for card in all_cards().values():
        pool = card.raw["pooling"]
        want = look_levels(len(pool["looks"]), pool["boundary"], float(pool["alpha"]))
        assert pool["levels"] == pytest.approx(want, abs=1e-4), card.id


def test_every_card_per_verdict_power_recomputes_from_its_inputs():
    """The card's stated per-verdict power (1000 draws) is what its simulation inputs give (here 150 draws)."""
    for card in all_cards().values():
        for scale, res in card.raw["power"]["simulation"]["result"].items():
            for world in ("expected", "null"):
                got = card_verdict_power(card, scale, null=world == "null", draws=150, seed=7)
                for k, p in res[world].items():
                    tol = 0.04 + 3.5 * math.sqrt(max(p * (1 - p), 0.01) / 150)
                    assert got[k] == pytest.approx(p, abs=tol), (card.id, scale, world, k, got)


def test_power_cli_unknown_card_is_one_line(capsys):
    assert power_main(["--card", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0]


def test_the_report_prints_each_cards_clause_map_and_per_verdict_power_and_the_suite_error():
    from claimbench.claims import claim_ids
    from claimbench.report import power_section, suite_error_lines

    order = claim_ids()

    cards = all_cards()
    for card in cards.values():
        text = "\n".join(power_section(card))
        assert "| clause | judged by |" in text and "Per-verdict power" in text, card.id
        res = card.raw["power"]["simulation"]["result"]["quick"]["expected"]
        assert f"| quick | expected | {card.raw['power']['simulation']['scales']['quick']['n']} |" in text
        cells = " | ".join(f"{res[k]:.3f}" for k in ("reproduced", "partially", "not", "inconclusive"))
        assert cells + " |" in text
    lines = "\n".join(suite_error_lines({c: cards[c] for c in order}))
    rates = [false_positive_rate(cards[c].raw["power"]["simulation"]["result"]["quick"]["null"]) for c in order]
    any_fp, expected = suite_error(rates)
    assert f"1 − Π(1 − p_i) = {any_fp:.3f}" in lines and f"Σ p_i = {expected:.3f}" in lines
