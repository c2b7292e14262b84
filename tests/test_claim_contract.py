"""Every registered claim is wired the same way; a half-added claim fails here in seconds, before any
training: card, params at all four scales, the contract's files and functions, stage entry, DVC
stages/outs/metrics/deps (dvc.yaml is what the registry makes), ci reference."""

import inspect
import json
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from claimbench.cards import load_card
from claimbench.claims import load_params, registry
from claimbench.params import SCALES

CLAIMS = sorted(registry())
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
REFERENCE = json.loads((REPO / "tests" / "reference" / "ci_statistics.json").read_text())


def test_the_registry_holds_the_five_claims():
    assert CLAIMS == ["activation_sparsity", "el2n_pruning", "heavy_tail_phases", "neural_collapse", "simpson_paradox"]


@pytest.mark.parametrize("claim_id", CLAIMS)
def test_card_loads_and_its_id_matches(claim_id):
    assert load_card(claim_id).id == claim_id


@pytest.mark.parametrize("claim_id", CLAIMS)
def test_params_validate_at_every_scale(claim_id):
    for scale in SCALES:
        cfg = load_params(REPO / "params.yaml", scale).claims[claim_id]
        assert isinstance(cfg, registry()[claim_id].Config)


@pytest.mark.parametrize("claim_id", CLAIMS)
def test_the_claim_folder_follows_the_contract(claim_id):
    entry = registry()[claim_id]
    assert {p.name for p in entry.folder.glob("*.py")} >= {"__init__.py", "analyse.py", "figures.py", "train.py"}
    train, analyse, figures = entry.train, entry.analyse, entry.figures
    for fn, params in ((train.load_data, ["ctx"]), (train.plan, ["ctx"]), (analyse.analyse, ["records", "ctx"]),
                       (figures.figures, ["result", "ctx"])):
        assert list(inspect.signature(fn).parameters) == params, f"{fn.__module__}.{fn.__name__}"
    assert list(inspect.signature(train.run_one).parameters)[:3] == ["ctx", "run_dir", "data"]
    assert isinstance(figures.DVC_PLOTS, list)


def test_dvc_yaml_is_what_the_registry_makes():
    out = subprocess.run([sys.executable, "-m", "claimbench.dvcgen", "--check", "--root", str(REPO)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("claim_id", CLAIMS)
def test_train_stage_deps_hold_the_train_side_and_not_the_analysis(claim_id):
    deps = DVC["stages"][f"{claim_id}_train"]["deps"]
    folder = f"src/claimbench/claims/{claim_id}"
    assert f"{folder}/train.py" in deps and f"{folder}/__init__.py" in deps
    assert "src/claimbench/executor.py" in deps and "src/claimbench/sweep.py" in deps
    for analysis_only in (f"{folder}/analyse.py", f"{folder}/figures.py", "src/claimbench/plotting.py",
                          "src/claimbench/results.py", "src/claimbench/tables.py"):
        assert analysis_only not in deps, f"{claim_id}_train depends on {analysis_only}"
    analyse = DVC["stages"][claim_id]["deps"]
    assert {f"{folder}/analyse.py", f"{folder}/figures.py", "src/claimbench/results.py"} <= set(analyse)


@pytest.mark.parametrize("claim_id", CLAIMS)
def test_stage_entry_calls_the_shared_runner(claim_id):
    text = (REPO / "stages" / f"{claim_id}.py").read_text()
    assert "from claimbench.stage import main" in text and f'main("{claim_id}")' in text
    assert 'if __name__ == "__main__":' in text  # spawned local workers re-import it


@pytest.mark.parametrize("claim_id", CLAIMS)
def test_dvc_stages_outs_and_metrics_follow_the_convention(claim_id):
    stages = DVC["stages"]
    train, analyse = stages[f"{claim_id}_train"], stages[claim_id]
    assert train["cmd"] == f"python stages/{claim_id}.py train"
    assert analyse["cmd"] == f"python stages/{claim_id}.py analyse"
    for stage in (train, analyse):
        assert set(stage["params"]) == {"scale", f"{claim_id}.${{scale}}"}  # only its scale's block
    assert train["outs"] == [{f"artifacts/${{scale}}/{claim_id}": {"persist": True}}]
    assert f"artifacts/${{scale}}/{claim_id}" in analyse["deps"]
    assert f"src/claimbench/cards/{claim_id}.yaml" in analyse["deps"]
    assert analyse["outs"] == [{f"results/${{scale}}/{claim_id}": {"cache": False}},
                               {f"results/${{scale}}/figures/{claim_id}": {"cache": False}}]
    assert f"results/${{scale}}/{claim_id}/headline.json" in DVC["metrics"]
    assert f"stages/{claim_id}.py" in train["deps"]


@pytest.mark.parametrize("claim_id", CLAIMS)
def test_every_statistic_the_card_names_is_in_the_ci_reference(claim_id):
    card = load_card(claim_id)
    named = {ch.statistic for c in card.criteria for ch in c.checks} | {card.raw["headline"]["statistic"]}
    assert claim_id in REFERENCE, f"{claim_id} has no ci reference: python -m claimbench.reference refresh"
    missing = sorted(named - set(REFERENCE[claim_id]["statistics"]))
    assert not missing, f"{claim_id}: the card names statistics its ci run does not produce: {missing}"
