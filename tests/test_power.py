"""claimbench.power on known answers, and every card's power rows recomputed from their own inputs."""

import math

import pytest
from scipy import stats as st

from claimbench.cards import CardError, all_cards, parse_card, power_checks
from claimbench.power import decide_probabilities, p_pass, replicates_for


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
