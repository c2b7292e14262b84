"""The report's text: every Markdown table keeps one cell per column (an escaped \\| does not split a cell),
no numpy repr such as np.int64(2) reaches a result or the report, and the report stage refuses results
that fail the audit (hand-edited criteria, no card) with one line."""

import json
import re
import shutil

import pytest
import yaml
from conftest import FIXTURES, REPO
from test_tables import check_tex, committed_files

import claimbench.cards
from claimbench import audit, report
from claimbench.cards import parse_card
from claimbench.results import ClaimResult
from claimbench.verdict import write_result

PIPE = re.compile(r"(?<!\\)\|")  # a cell border: a pipe with no backslash before it
NUMPY_REPR = re.compile(r"\b(?:np|numpy)\.[a-z_]+\d*\(")  # np.int64(2), np.float64(0.5), np.str_('a')


def markdown_tables(text: str) -> list[list[str]]:
    """Each pipe table (consecutive lines starting with |) outside fenced code blocks, as its lines."""
    tables, current, fenced = [], [], False
    for line in [*text.splitlines(), ""]:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and line.lstrip().startswith("|"):
            current.append(line.strip())
            continue
        if current:
            tables.append(current)
        current = []
    return tables


def ragged_rows(text: str) -> list[str]:
    """Rows whose cell count differs from their table's header, as 'cells vs header: row'."""
    out = []
    for table in markdown_tables(text):
        header = len(PIPE.findall(table[0])) - 1
        out += [f"{len(PIPE.findall(r)) - 1} cells vs {header}: {r[:100]}" for r in table
                if len(PIPE.findall(r)) - 1 != header]
    return out


def test_ragged_rows_known_answers():
    good = "| a | b |\n|---|---|\n| x \\| y | z |\n"
    assert ragged_rows(good) == []
    assert ragged_rows("| a | b |\n|---|---|\n| |tau| | z |\n") == ["4 cells vs 2: | |tau| | z |"]
    assert ragged_rows("```\n| a | b |\n| c |\n```\n") == []  # code, not a table


def committed_markdown() -> list[str]:
    return [*committed_files(".md"), "README.md"]


@pytest.mark.parametrize("rel", committed_markdown())
def test_committed_markdown_tables_keep_their_columns(rel):
    rows = ragged_rows((REPO / rel).read_text())
    assert not rows, f"{rel}: rows split by an unescaped | (regenerate: `dvc repro`):\n" + "\n".join(rows[:5])


def test_no_numpy_reprs_in_committed_results_or_report():
    hits = []
    for rel in [*committed_files(".json"), *committed_files(".md"), *committed_files(".csv"),
                *committed_files(".tex"), "README.md"]:
        for n, line in enumerate((REPO / rel).read_text().splitlines(), 1):
            hits += [f"{rel}:{n}: {m.group(0)}" for m in NUMPY_REPR.finditer(line)]
    assert not hits, "numpy reprs (convert to int/float before formatting, then rerun):\n" + "\n".join(hits[:10])


@pytest.fixture
def nasty_root(tmp_path, monkeypatch):
    """A repo with one result whose card and result are full of | & % _ and a newline, written by the pipeline."""
    raw = yaml.safe_load((FIXTURES / "toy.yaml").read_text())
    raw["title"] = "Toy | pipes & 6.3% of a_b"
    raw["headline"].update(label="within-depth |tau| small", paper="|x| < 1")
    raw["criteria"][0]["id"] = "T|1"
    raw["criteria"][0]["checks"][0]["statistic"] = "acc|train"
    raw["headline"]["statistic"] = "acc|train"
    raw["verdict"]["reproduced"] = ["T|1"]
    result = ClaimResult({"acc|train": 0.75, "n_runs": 2}, setup={"dataset": "a|b", "model": "two\nlines"})
    return toy_repo(tmp_path, monkeypatch, raw, result, "quick")


def toy_repo(tmp_path, monkeypatch, raw: dict, result: ClaimResult, scale: str):
    """A repo whose only card is `raw` (the card folder patched in) and whose one result is `result`
    judged by it and written by the pipeline at `scale`; README with empty claims-table markers."""
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "toy.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    monkeypatch.setattr(claimbench.cards, "CARD_DIR", cards)
    prov = json.loads((FIXTURES / "toy_metrics.json").read_text())["provenance"]
    root = tmp_path / "repo"
    write_result(result, parse_card(raw, "toy"), root / "results" / scale / "toy", scale, prov)
    (root / "README.md").write_text(f"# x\n\n{report.README_START}\n{report.README_END}\n")
    return root


def test_report_tables_keep_their_columns_with_pipes_in_labels_and_ids(nasty_root):
    assert report.main(["--root", str(nasty_root)]) == 0
    for rel in ("results/claims.md", "results/claims_table.md", "README.md"):
        text = (nasty_root / rel).read_text()
        assert markdown_tables(text) and ragged_rows(text) == [], rel
    claims = (nasty_root / "results/claims.md").read_text()
    assert r"| T\|1 | `acc\|train` | 0.75 | > 0.5 | ✓ |" in claims  # a hand-assembled per-criterion row
    assert check_tex((nasty_root / "results/claims_table.tex").read_text()) == []  # each block its own width


def test_report_refuses_hand_edited_criteria(nasty_root, capsys):
    path = nasty_root / "results/quick/toy/metrics.json"
    rec = json.loads(path.read_text())
    rec["criteria"][0]["checks"][0]["value"] = 0.9  # statistics, verdict and card untouched
    path.write_text(json.dumps(rec))
    assert report.main(["--root", str(nasty_root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: results/quick/toy/metrics.json: the stored criteria were edited by hand "
                          "(T|1 value of acc|train: stored 0.9, card/statistics give 0.75; the statistics and "
                          "the card are unchanged)") and err.count("\n") == 1, err


def test_report_refuses_a_result_without_a_card_or_in_the_wrong_folder(nasty_root, capsys):
    (claimbench.cards.CARD_DIR / "toy.yaml").unlink()
    assert report.main(["--root", str(nasty_root)]) == 2
    assert capsys.readouterr().err == ("error: results/quick/toy/metrics.json: no card toy.yaml judges it; "
                                       "commit the card or remove the result\n")
    shutil.move(nasty_root / "results/quick/toy", nasty_root / "results/quick/gone")
    assert report.main(["--root", str(nasty_root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: results/quick/gone/metrics.json: claim_id/scale toy/quick do not match the folder")
    assert report.audit_report(nasty_root)[0].startswith("the report stage refuses to render: results/quick/gone/")


@pytest.fixture
def v2_root(tmp_path, monkeypatch):
    """A repo with one paper-scale result of a v2 toy card: intervals, a regime, null draws, adaptations."""
    from claimbench.intervals import replicates

    raw = yaml.safe_load((FIXTURES / "toy.yaml").read_text())
    raw.update(version=2, changelog=[{"version": 2, "date": "2026-11-26", "what": "intervals", "why": "validity"}],
               adapted=["Fashion-MNIST instead of CIFAR-10"],
               regime=[{"id": "R1", "text": "runs trained", "why": "w",
                        "checks": [{"statistic": "n_runs", "op": ">=", "threshold": 1}]}])
    raw["criteria"][0].update(null="labels shuffled", checks=[{"statistic": "train_acc", "op": ">", "threshold": 0.5}])
    result = ClaimResult({"n_runs": 2}, samples={"train_acc": replicates([0.45, 0.6, 0.75])},
                         null_draws={"T1": [{"train_acc": replicates([0.9, 0.95, 1.0] if i == 0 else [0.1, 0.2, 0.3])}
                                             for i in range(20)]})  # 1 of 20 passes
    return toy_repo(tmp_path, monkeypatch, raw, result, "paper")


def test_report_shows_intervals_undecided_checks_nulls_and_paper_like(v2_root):
    assert report.main(["--root", str(v2_root)]) == 0
    claims = (v2_root / "results/claims.md").read_text()
    assert "**paper-like**: **inconclusive — underpowered**" in claims
    assert "Adapted from the paper: Fashion-MNIST instead of CIFAR-10." in claims
    # v4: the criterion's null is at its threshold (3 replicates: 3³ resamples, enumerated exactly)
    assert "| T1 | `train_acc` | 0.6 [0.227, 0.973] | > 0.5 | ? (underpowered) | 0.0% of 27 |" in claims
    assert "Reason: T1 (underpowered: train_acc = 0.6 [0.227, 0.973] vs > 0.5) — could be reproduced or not " \
           "reproduced." in claims
    assert "| R1 | `n_runs` | 2 | >= 1 | ✓ |" in claims
    null = (v2_root / "results/null_calibration.md").read_text()
    assert ("| toy | paper-like | T1 | centred bootstrap at the threshold (exact, 3 replicates); at train_acc > 0.5 "
            "| 0.00% (exact) | all 27 | ✓ | labels shuffled — passes 5.0% of 20 | – |") in null
    assert report.audit_report(v2_root) == []


def test_audit_catches_edited_samples_and_null_rates(v2_root):
    path = v2_root / "results/paper/toy/metrics.json"
    rec = json.loads(path.read_text())
    rec["samples"]["train_acc"]["values"] = [0.7, 0.75, 0.8]  # would make T1 pass
    path.write_text(json.dumps(rec))
    assert any("digest" in p for p in audit.audit_result(path, {"toy": claimbench.cards.load_card("toy")}))


def test_audit_keeps_a_result_current_under_a_version_that_changed_other_scales_only(v2_root):
    """Card v3 re-derives gpu only (changelog `scales: [gpu]`): the paper result judged by v2 has no `card`
    finding; a v3 that names the paper scale makes it stale."""
    import dataclasses

    path = v2_root / "results/paper/toy/metrics.json"
    card = claimbench.cards.load_card("toy")
    assert not [k for k, _ in audit.findings(path, {"toy": card}) if k == "card"]

    def v3(scales: list[str]):
        entry = {"version": 3, "date": "2026-12-06", "what": "gpu protocol", "why": "regime", "scales": scales}
        return dataclasses.replace(card, raw={**card.raw, "version": 3, "changelog": [*card.raw["changelog"], entry]})

    assert not [k for k, _ in audit.findings(path, {"toy": v3(["gpu"])}) if k == "card"]
    assert [k for k, _ in audit.findings(path, {"toy": v3(["gpu", "paper"])}) if k == "card"] == ["card"]


def test_predicted_vs_outcome_puts_the_cards_power_beside_the_verdict():
    """Issue 24: the per-verdict power the card predicted sits beside the outcome, only for results judged by the
    card's current version (an older version's prediction is not this card's)."""
    from types import SimpleNamespace

    from claimbench.report import predicted_vs_outcome_lines
    sim = {"scales": {"quick": {"n": 4}},
           "result": {"quick": {"expected": {"reproduced": 0.91, "partially": 0.05, "not": 0.0, "inconclusive": 0.04},
                                "null": {"reproduced": 0.0, "partially": 0.01, "not": 0.5, "inconclusive": 0.49}}}}
    from claimbench.cards import Card

    def card_at(version: int, changelog: list) -> SimpleNamespace:
        ns = SimpleNamespace(version=version, raw={"power": {"simulation": sim}, "changelog": changelog})
        ns.current_for = lambda judged, scale: Card.current_for(ns, judged, scale)
        return ns

    v5 = [{"version": 5, "date": "d", "what": "w", "why": "y"}]
    card = card_at(5, v5)
    rec = {"verdict": "reproduced", "verdict_label": "reproduced", "provenance": {"card_version": 5}}
    lines = predicted_vs_outcome_lines({"x": card}, {("x", "quick"): rec})
    row = [ln for ln in lines if ln.startswith("| x |")]
    assert row == ["| x | quick | v5 | 4 | 0.91 | 0.05 | 0.00 | 0.04 | **reproduced** |"]
    stale = {("x", "quick"): {**rec, "provenance": {"card_version": 4}}}
    assert predicted_vs_outcome_lines({"x": card}, stale) == []
    gpu_only = card_at(6, v5 + [{"version": 6, "date": "d", "what": "w", "why": "y", "scales": ["gpu"]}])
    assert [ln for ln in predicted_vs_outcome_lines({"x": gpu_only}, {("x", "quick"): rec})
            if ln.startswith("| x |")] == row  # v6 changed gpu only: v5's quick prediction is still the card's
    quick_too = card_at(6, v5 + [{"version": 6, "date": "d", "what": "w", "why": "y", "scales": ["gpu", "quick"]}])
    assert predicted_vs_outcome_lines({"x": quick_too}, {("x", "quick"): rec}) == []


def test_a_superseded_result_is_linked_from_its_archive_not_audited(tmp_path):
    """A result judged by an earlier card version under that version's protocol moves to results/archive/<label>/;
    the claim's section says where it is and what it read, and the audit (today's card) never sees it."""
    from claimbench.report import archived_note
    src = FIXTURES / "toy_metrics.json"
    rec = json.loads(src.read_text())
    assert archived_note(tmp_path, rec["claim_id"], "gpu") == ""
    d = tmp_path / "archive" / "card-v4" / "gpu" / rec["claim_id"]
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(src.read_text())
    note = archived_note(tmp_path, rec["claim_id"], "gpu")
    version = rec["provenance"].get("card_version", 1)
    assert note.startswith(f" Superseded earlier result: [archive/card-v4/gpu/{rec['claim_id']}]")
    assert f"(card v{version}: {rec.get('verdict_label', rec['verdict'])})" in note
