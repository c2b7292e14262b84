"""CI regression of what the suite reports: every committed result is consistent with its card, its
own statistics and provenance; the report and README are exactly what the report stage regenerates;
`dvc status` agrees with the committed lock. The tamper tests show each audit can fail."""

import copy
import json
import shutil

import pytest
import yaml
from conftest import FIXTURES, REPO

from claimbench import audit, report
from claimbench.cards import all_cards, parse_card
from claimbench.results import DVC_METRICS, dvc_metrics


def test_every_committed_result_matches_its_card_statistics_and_provenance():
    cards = all_cards()
    problems = [p for path in audit.committed_results(REPO) for p in audit.audit_result(path, cards)]
    assert not problems, "\n".join(problems)


def test_committed_verdicts_rest_on_intervals_and_calibrated_nulls():
    """Issue 14's bar, engine v4 (issue 22): every gating check of a committed result is judged on a 95%
    interval or an exact test (or is an `exact` check); every gating criterion with samples has a null at its
    threshold, and none whose null's 95% upper bound exceeds its ceiling (5%, or engine v5's Gaussian
    reference at small n) passes; an inconclusive verdict states its
    reason and its possible outcomes."""
    cards = all_cards()
    problems = []
    for path in audit.committed_results(REPO):
        rec, where = json.loads(path.read_text()), "/".join(path.parts[-3:-1])
        card = cards[rec["claim_id"]]
        exact = {(c.id, ch.statistic) for c in card.criteria for ch in c.checks if ch.exact}
        for c in (c for c in rec["criteria"] if c["gating"]):
            upper = c.get("null_pass_upper")
            measurable = any(len(rec["samples"].get(ch["statistic"], {}).get("values", [])) >= 2
                             for ch in c["checks"])
            if upper is None and measurable:
                problems.append(f"{where} {c['id']}: no null at the threshold (its samples allow one)")
            ceiling = c.get("null_ceiling", 0.05)  # engine v5: max(5%, the Gaussian reference at this n)
            if upper is not None and upper > ceiling and c["outcome"] == "pass":
                problems.append(f"{where} {c['id']}: passes although its null passes up to {upper:.1%} "
                                f"(> {ceiling:.1%})")
            problems += [f"{where} {c['id']} {ch['statistic']}: judged without an interval"
                         for ch in c["checks"] if ch.get("method") in (None, "point")
                         and (c["id"], ch["statistic"]) not in exact]
        if rec["verdict"] == "inconclusive" and not (rec.get("verdict_reason") and rec.get("possible_outcomes")):
            problems.append(f"{where}: inconclusive without a reason and its possible outcomes")
    assert not problems, "\n".join(problems)


def test_report_and_readme_are_exactly_what_the_report_stage_regenerates():
    problems = report.audit_report(REPO)
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_dvc_status_is_clean_except_uncached_artifacts():
    problems = audit.audit_dvc_status(REPO)
    assert not problems, "\n".join(problems)


@pytest.fixture
def toy_result(tmp_path):
    d = tmp_path / "results" / "quick" / "toy"
    d.mkdir(parents=True)
    shutil.copy(FIXTURES / "toy_metrics.json", d / "metrics.json")
    rec = json.loads((d / "metrics.json").read_text())
    rec["provenance"]["statistics_sha256"] = audit.statistics_digest(rec["statistics"])
    (d / "metrics.json").write_text(json.dumps(rec))
    (d / DVC_METRICS).write_text(json.dumps(dvc_metrics(rec)))
    card = yaml.safe_load((FIXTURES / "toy.yaml").read_text())
    return d / "metrics.json", card


def test_audit_passes_on_an_untouched_result(toy_result):
    path, card = toy_result
    assert audit.audit_result(path, {"toy": parse_card(card, "toy")}) == []


def test_audit_catches_a_hand_edited_number(toy_result):
    path, card = toy_result
    rec = json.loads(path.read_text())
    rec["statistics"]["train_acc"] = 0.99
    path.write_text(json.dumps(rec))
    problems = audit.audit_result(path, {"toy": parse_card(card, "toy")})
    assert any("quick/toy: statistics were edited" in p for p in problems)
    assert any("T1 value of train_acc: stored" in p for p in problems)


def test_audit_catches_a_changed_threshold(toy_result):
    path, card = toy_result
    loosened = copy.deepcopy(card)
    loosened["criteria"][0]["checks"][0]["threshold"] = 0.9
    problems = audit.audit_result(path, {"toy": parse_card(loosened, "toy")})
    assert any("stored verdict 'reproduced' but the card gives 'not reproduced'" in p for p in problems)
    assert any("T1 threshold of train_acc: stored 0.5, card/statistics give 0.9" in p for p in problems)


def test_audit_catches_missing_provenance(toy_result):
    path, card = toy_result
    rec = json.loads(path.read_text())
    del rec["provenance"]["device"]
    path.write_text(json.dumps(rec))
    assert any("provenance lacks device" in p for p in audit.audit_result(path, {"toy": parse_card(card, "toy")}))
