"""Verdict logic on hand-made cases, and malformed cards rejected with a clear message."""

import copy

import pytest
import yaml

from claimbench.cards import NOT_REPRODUCED, PARTIAL, REPRODUCED, all_cards, load_card, parse_card
from claimbench.errors import CardError

BASE = {
    "id": "x", "title": "X", "paper": {}, "claim": "c", "paper_numbers": [], "headline": {"statistic": "a"},
    "criteria": [
        {"id": "C1", "text": "a < 6", "why": "w",
         "checks": [{"statistic": "a", "op": "<", "threshold": 6}]},
        {"id": "C2", "text": "b >= 0.5 and c > 0", "why": "w",
         "checks": [{"statistic": "b", "op": ">=", "threshold": 0.5}, {"statistic": "c", "op": ">", "threshold": 0}]},
        {"id": "C3", "text": "d", "why": "w", "gating": False,
         "checks": [{"statistic": "d", "op": "==", "threshold": 1}]},
    ],
    "verdict": {"reproduced": ["C1", "C2"], "partially_if_any": ["C1"]},
}


@pytest.mark.parametrize(
    "stats, verdict, passed",
    [
        ({"a": 5, "b": 0.5, "c": 1, "d": 0}, REPRODUCED, [True, True, False]),
        ({"a": 5, "b": 0.4, "c": 1, "d": 1}, PARTIAL, [True, False, True]),
        ({"a": 6, "b": 0.9, "c": 1, "d": 1}, NOT_REPRODUCED, [False, True, True]),  # boundary: 6 < 6 is false
        ({"a": 5, "b": 0.9, "c": True, "d": 1}, REPRODUCED, [True, True, True]),  # bools count as 1/0
        ({"a": float("nan"), "b": 0.9, "c": 1}, NOT_REPRODUCED, [False, True, False]),  # NaN never passes
        ({"b": 0.9, "c": 1}, NOT_REPRODUCED, [False, True, False]),  # missing never passes
        ({"a": None, "b": 0.9, "c": 1}, NOT_REPRODUCED, [False, True, False]),
    ],
)
def test_verdict_hand_made_cases(stats, verdict, passed):
    judged = parse_card(BASE, "t").verdict(stats)
    assert judged["verdict"] == verdict
    assert [c["passed"] for c in judged["criteria"]] == passed


def test_non_gating_criterion_never_changes_verdict():
    card = parse_card(BASE, "t")
    assert card.verdict({"a": 1, "b": 1, "c": 1, "d": 0})["verdict"] == REPRODUCED


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c.update(extra=1), "unknown key 'extra'"),
        (lambda c: c.pop("claim"), "missing key 'claim'"),
        (lambda c: c["criteria"][0]["checks"][0].update(op="<<"), "op '<<' unknown"),
        (lambda c: c["criteria"][0]["checks"][0].update(threshold="six"), "threshold 'six' must be a number"),
        (lambda c: c["verdict"].update(reproduced=["C9"]), "names criterion 'C9'"),
        (lambda c: c["verdict"].update(reproduced=["C1", "C3"]), "non-gating"),
        (lambda c: c["criteria"].append(copy.deepcopy(c["criteria"][0])), "duplicate criterion ids"),
        (lambda c: c["criteria"][1].update(checks=[]), "at least one check"),
    ],
)
def test_malformed_cards_are_rejected(mutate, message):
    raw = copy.deepcopy(BASE)
    mutate(raw)
    with pytest.raises(CardError, match=message):
        parse_card(raw, "t")


def test_card_id_must_match_file_name(tmp_path):
    (tmp_path / "y.yaml").write_text(yaml.safe_dump(BASE))
    with pytest.raises(CardError, match="does not match its file name"):
        load_card("y", tmp_path)
    with pytest.raises(CardError, match="no claim card"):
        load_card("zzz", tmp_path)


def test_committed_cards_parse():
    for claim_id, card in all_cards().items():
        assert card.id == claim_id
        for c in card.criteria:
            assert c.text.strip() and c.why.strip()
