"""The stage runner on the toy claim (train -> analyse -> metrics.json with provenance) and the report."""

import json
import shutil

import pytest
from conftest import FIXTURES

from claimbench import report
from claimbench.cards import load_card
from claimbench.stage import main

PROVENANCE_KEYS = {"git_sha", "git_dirty", "torch", "torchvision", "device", "scale", "seeds", "wall_s", "command"}


def test_toy_claim_train_analyse_and_resume(toy_root, capsys):
    assert main("toy", ["train"]) == 0
    done = sorted(toy_root.glob("artifacts/ci/toy/runs/*/done.json"))
    assert len(done) == 2
    mtimes = [p.stat().st_mtime_ns for p in done]
    assert main("toy", ["all"]) == 0  # second train: every run cached, nothing retrained
    assert [p.stat().st_mtime_ns for p in done] == mtimes
    rec = json.loads((toy_root / "results/ci/toy/metrics.json").read_text())
    assert rec["verdict"] == load_card("toy").verdict(rec["statistics"])["verdict"]
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
    """A results tree with one committed toy result at quick (copied fixture)."""
    d = root / "results" / "quick" / "toy"
    d.mkdir(parents=True)
    shutil.copy(FIXTURES / "toy_metrics.json", d / "metrics.json")
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
    with pytest.raises(Exception, match="results/quick/toy/metrics.json says 'reproduced'"):
        report.build_report(tmp_path, FIXTURES)
