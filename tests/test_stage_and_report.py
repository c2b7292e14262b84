"""The stage runner on the toy claim (train -> analyse -> metrics.json with provenance) and the report,
which refuses (one line, exit 2) a result whose statistics, verdict or card changed after the run."""

import json
import shutil

import pytest
import yaml
from conftest import FIXTURES

import claimbench.cards
from claimbench import report
from claimbench.cards import load_card
from claimbench.errors import ClaimbenchError
from claimbench.results import DVC_METRICS, dvc_metrics, statistics_digest
from claimbench.stage import main
from claimbench.verdict import judge

PROVENANCE_KEYS = {"git_sha", "git_dirty", "torch", "torchvision", "device", "scale", "seeds", "wall_s", "command"}


def test_toy_claim_train_analyse_and_resume(toy_root, capsys):
    assert main("toy", ["train"]) == 0
    done = sorted(toy_root.glob("artifacts/ci/toy/runs/*/done.json"))
    assert len(done) == 2
    mtimes = [p.stat().st_mtime_ns for p in done]
    assert main("toy", ["all"]) == 0  # second train: every run cached, nothing retrained
    assert [p.stat().st_mtime_ns for p in done] == mtimes
    rec = json.loads((toy_root / "results/ci/toy/metrics.json").read_text())
    assert rec["verdict"] == judge(load_card("toy"), rec["statistics"])["verdict"]
    assert PROVENANCE_KEYS <= set(rec["provenance"]) and rec["provenance"]["seeds"] == [0, 1]
    assert (toy_root / "results/ci/toy/tables/accs.csv").exists()
    assert (toy_root / "results/ci/toy/tables/accs.tex").exists()
    assert (toy_root / "results/ci/figures/toy/acc.png").exists()


def test_stage_prints_one_clear_error_and_exits_2(toy_root, capsys):
    (toy_root / "params.yaml").write_text((toy_root / "params.yaml").read_text().replace("epochs: 2", "epochs: -1", 1))
    assert main("toy", ["train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: params: toy.") and "epochs = -1" in err and "> 0" in err


def make_results(root):
    """A results tree with one committed toy result at quick (the fixture, with its statistics' digest as
    the pipeline writes it)."""
    d = root / "results" / "quick" / "toy"
    d.mkdir(parents=True)
    rec = json.loads((FIXTURES / "toy_metrics.json").read_text())
    rec["provenance"]["statistics_sha256"] = statistics_digest(rec["statistics"])
    (d / "metrics.json").write_text(json.dumps(rec, indent=2) + "\n")
    (d / DVC_METRICS).write_text(json.dumps(dvc_metrics(rec)))
    (root / "results" / "gpu").mkdir(parents=True)
    return d


def test_report_matches_golden(tmp_path):
    make_results(tmp_path)
    text = report.build_report(tmp_path, FIXTURES)
    assert text == (FIXTURES / "golden_claims.md").read_text()
    assert "not run" in text  # other scales / claims
    assert (tmp_path / "results" / "claims_table.tex").exists()


def test_report_refuses_a_result_its_card_no_longer_supports(tmp_path):
    d = make_results(tmp_path)
    rec = json.loads((d / "metrics.json").read_text())
    rec["statistics"]["train_acc"] = 0.1  # hand-edited number: card now says "not reproduced"
    (d / "metrics.json").write_text(json.dumps(rec))
    with pytest.raises(ClaimbenchError, match="results/quick/toy/metrics.json: the statistics were edited after"):
        report.build_report(tmp_path, FIXTURES)
    assert not (tmp_path / "results" / "claims.md").exists()


def edit_statistic(d, cards):
    rec = json.loads((d / "metrics.json").read_text())
    rec["statistics"]["train_acc"] = 0.99  # verdict unchanged, so only the digest can tell
    (d / "metrics.json").write_text(json.dumps(rec))


def edit_verdict(d, cards):
    rec = json.loads((d / "metrics.json").read_text())
    rec["verdict"] = "not reproduced"
    (d / "metrics.json").write_text(json.dumps(rec))


def raise_threshold(d, cards):
    card = yaml.safe_load((cards / "toy.yaml").read_text())
    card["criteria"][0]["checks"][0]["threshold"] = 0.9
    (cards / "toy.yaml").write_text(yaml.safe_dump(card))


def drop_headline(d, cards):
    (d / DVC_METRICS).unlink()


@pytest.mark.parametrize("edit, message", [
    (edit_statistic, "results/quick/toy/metrics.json: the statistics were edited after the run (they no longer "
                     "match provenance.statistics_sha256; T1 value of train_acc: stored 0.512499988079071, "
                     "card/statistics give 0.99; T1 lo of train_acc: stored 0.512499988079071, card/statistics give "
                     "0.99); restore the file (`git checkout -- results/quick/toy/metrics.json`) "
                     "or rerun the claim (`dvc repro -f toy`)"),
    (edit_verdict, "results/quick/toy/metrics.json: the verdict was edited by hand (stored verdict 'not reproduced' "
                   "but the card gives 'reproduced' from the stored statistics, and the card's criteria and "
                   "thresholds equal the stored ones); restore the file"),
    (raise_threshold, "results/quick/toy/metrics.json: the card changed after the run (T1 threshold of train_acc: "
                      "stored 0.5, card/statistics give 0.9); rerun the claim (`dvc repro -f toy`), or revert "
                      "src/claimbench/cards/toy.yaml"),
    (drop_headline, "results/quick/toy/metrics.json: headline.json (what `dvc metrics` shows) is missing or "
                    "disagrees with metrics.json; rerun the claim (`dvc repro -f toy`)"),
], ids=["edited-statistic", "edited-verdict", "changed-threshold", "missing-headline"])
def test_report_stage_refuses_an_edited_result_in_one_line(tmp_path, monkeypatch, capsys, edit, message):
    root, cards = tmp_path / "repo", tmp_path / "cards"
    d = make_results(root)
    shutil.copytree(FIXTURES, cards)
    monkeypatch.setattr(claimbench.cards, "CARD_DIR", cards)
    assert report.main(["--root", str(root)]) == 0  # untouched: renders
    capsys.readouterr()
    edit(d, cards)
    assert report.main(["--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: " + message) and err.count("\n") == 1, err
