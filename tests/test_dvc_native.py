"""DVC-native outputs (issue 21 item 6): a stage's params are its own scale's block only, headline.json
carries each gating check's interval, threshold and outcome, figures are image plots and data plots are
coloured by the claim's grouping column through generated templates."""

import json
import os
import shutil
import subprocess

import pytest
import yaml
from conftest import REPO

from claimbench import dvcgen
from claimbench.claims import registry
from claimbench.results import dvc_metrics

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
CLAIMS = sorted(registry())
needs_dvc = pytest.mark.skipif(shutil.which("dvc") is None or shutil.which("git") is None,
                               reason="needs the dvc and git command lines")


# --- params: one scale's block per stage ------------------------------------------------------------------

@pytest.mark.parametrize("claim_id", CLAIMS)
def test_stage_params_name_only_the_scale_block(claim_id):
    for stage in (DVC["stages"][claim_id], DVC["stages"][f"{claim_id}_train"]):
        assert stage["params"] == ["scale", f"{claim_id}.${{scale}}"]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(params[claim_id]) == {"ci", "quick", "long", "gpu", "paper"}, \
        "a claim key outside a scale block is no param"


def test_the_report_stage_reruns_when_any_reported_scales_results_change():
    """Every scale the report shows (long included) is a dep of the report stage, so new results rebuild it."""
    from claimbench.audit import REPORT_SCALES
    deps = DVC["stages"]["report"]["deps"]
    assert [d for d in deps if d.startswith("results/")] == [f"results/{s}" for s in REPORT_SCALES]
    assert "results/long" in deps


def _git(cwd, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=env)


def _dvc(cwd, *args):
    out = subprocess.run(["dvc", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"dvc {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.mark.slow
@needs_dvc
def test_editing_another_scale_leaves_the_stage_up_to_date(tmp_path):
    """A tiny DVC repository whose stage has the params dvcgen gives a claim: editing the gpu block keeps
    `dvc status` clean at scale quick; editing the quick block does not (so the test can fail)."""
    entry = registry()["el2n_pruning"]
    stage = dvcgen.claim_stages(entry)["el2n_pruning"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(
        {"scale": "quick", "el2n_pruning": {"quick": {"epochs": 10}, "gpu": {"epochs": 8}}}))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"el2n_pruning": {
        "cmd": "echo done > out_${scale}.txt", "params": stage["params"],
        "outs": [{"out_${scale}.txt": {"cache": False}}]}}}))
    _git(tmp_path, "init", "-q")
    _dvc(tmp_path, "init", "-q")
    _dvc(tmp_path, "repro", "-q")
    assert "el2n_pruning.quick" in (tmp_path / "dvc.lock").read_text()
    text = (tmp_path / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(text.replace("epochs: 8", "epochs: 9"))
    assert "up to date" in _dvc(tmp_path, "status")
    (tmp_path / "params.yaml").write_text(text.replace("epochs: 10", "epochs: 11"))
    assert "modified:" in _dvc(tmp_path, "status") and "el2n_pruning.quick" in _dvc(tmp_path, "status")


# --- headline.json: intervals and thresholds ---------------------------------------------------------------

def _check(stat, op, thr, value, lo, hi, outcome):
    return {"statistic": stat, "op": op, "threshold": thr, "value": value, "lo": lo, "hi": hi,
            "method": "student_t", "outcome": outcome, "passed": outcome == "pass"}


RECORD = {
    "verdict": "inconclusive", "verdict_label": "inconclusive — underpowered",
    "headline": {"label": "d", "value": 1.0, "uncertainty": 0.2, "interval": [0.6, 1.4], "interval_method": "t"},
    "criteria": [
        {"id": "E1", "gating": True, "outcome": "pass", "checks": [_check("d", ">", 0.0, 1.0, 0.6, 1.4, "pass")]},
        {"id": "E2", "gating": True, "outcome": "undecided", "checks": [
            _check("g", ">", -1.0, 0.5, -2.0, 3.0, "undecided"), _check("g", "<", 1.0, 0.5, -2.0, 3.0, "undecided")]},
        {"id": "E3", "gating": False, "outcome": "fail", "checks": [_check("r", ">", 0.0, -1.0, -2.0, -0.5, "fail")]},
    ],
}


def test_headline_json_has_each_gating_checks_interval_threshold_and_outcome():
    assert dvc_metrics(RECORD) == {
        "verdict": "inconclusive",
        "headline": {"value": 1.0, "uncertainty": 0.2, "lo": 0.6, "hi": 1.4},
        "gating": {"d": 1.0, "g": 0.5},
        "verdict_label": "inconclusive — underpowered",
        "criteria": {"E1": "pass", "E2": "undecided"},
        "checks": {
            "E1": {"d": {"lo": 0.6, "hi": 1.4, "op": ">", "threshold": 0.0, "outcome": "pass"}},
            "E2": {"g >": {"lo": -2.0, "hi": 3.0, "op": ">", "threshold": -1.0, "outcome": "undecided"},
                   "g <": {"lo": -2.0, "hi": 3.0, "op": "<", "threshold": 1.0, "outcome": "undecided"}},
        },
    }


def test_headline_json_without_a_headline_interval_keeps_value_and_uncertainty_only():
    rec = {**RECORD, "headline": {"label": "d", "value": 1.0, "uncertainty": None}}
    assert dvc_metrics(rec)["headline"] == {"value": 1.0, "uncertainty": None}


def test_committed_headline_json_keeps_the_earlier_keys():
    """Keys were only added: verdict, headline value/uncertainty, gating values (and verdict_label)."""
    for path in sorted((REPO / "results").glob("*/*/headline.json")):
        got = json.loads(path.read_text())
        assert {"verdict", "headline", "gating", "criteria", "checks"} <= set(got), path
        assert {"value", "uncertainty"} <= set(got["headline"]), path


# --- plots: images and colour by group ---------------------------------------------------------------------

@pytest.mark.parametrize("claim_id", CLAIMS)
def test_every_claims_figure_folder_is_an_image_plot(claim_id):
    assert f"results/${{scale}}/figures/{claim_id}" in DVC["plots"]


GROUPS = {"el2n_pruning": "method", "simpson_paradox": "conv_layers", "neural_collapse": "variant",
          "heavy_tail_phases": "batch_size", "activation_sparsity": "run"}


@pytest.mark.parametrize("claim_id", CLAIMS)
def test_each_claim_has_a_data_plot_coloured_by_its_grouping_column(claim_id):
    """The template colours by the column the claim's comparison is about, and that column (and x, y) is
    in the committed quick table the plot reads."""
    coloured = []
    for plot in registry()[claim_id].figures.DVC_PLOTS:
        (pid, spec), = plot.items()
        if "colour_by" not in spec:
            continue
        field = spec["colour_by"].partition(":")[0]
        coloured.append(field)
        (csv, y), = spec["y"].items()
        header = (REPO / csv.replace("${scale}", "quick")).read_text().splitlines()[0].split(",")
        assert {field, spec["x"], y} <= set(header), (pid, header)
    assert GROUPS[claim_id] in coloured


def test_grouped_template_colours_by_the_column_and_splits_revisions():
    spec = dvcgen.grouped_template("conv_layers:O", "fits")
    assert spec["facet"] == {"column": {"field": "rev", "type": "nominal", "title": "revision"}}
    points, per_group, pooled = spec["spec"]["layer"]
    assert points["encoding"]["color"] == {"field": "conv_layers", "type": "ordinal", "title": "conv_layers"}
    assert per_group["transform"][0]["groupby"] == ["conv_layers"]
    assert "groupby" not in pooled["transform"][0] and "color" not in pooled["encoding"]
    assert dvcgen.grouped_template("method")["spec"]["layer"][0]["encoding"]["color"]["type"] == "nominal"
    assert len(dvcgen.grouped_template("method", "lines")["spec"]["layer"]) == 2


def test_plot_entries_become_dvc_keys_with_a_generated_template():
    out, templates = dvcgen.plots(registry())
    entries = {k: v for p in out if isinstance(p, dict) for k, v in p.items()}
    el2n = entries["el2n_accuracy_vs_fraction_pruned"]
    assert el2n["template"] == "claimbench_lines_by_method" and "colour_by" not in el2n and "marks" not in el2n
    assert templates["claimbench_lines_by_method.json"] == dvcgen.grouped_template("method", "lines")
    for name in templates:
        assert (REPO / dvcgen.TEMPLATE_DIR / name).read_text() == dvcgen.template_text(templates[name])


@pytest.mark.parametrize("bad", [{"colour_by": "method:Q"}, {"colour_by": "two words"},
                                 {"colour_by": "method", "marks": "bars"}, {"marks": "lines"}])
def test_a_bad_plot_key_is_one_clear_error(bad, monkeypatch):
    class Fig:
        DVC_PLOTS = [{"p": {"x": "a", "y": {"t.csv": "b"}, **bad}}]

    class Entry:
        figures = Fig

    with pytest.raises(dvcgen.PlotSpecError, match="figures.py"):
        dvcgen.plots({"toy": Entry()})


def test_check_reports_a_stale_template(tmp_path):
    assert dvcgen.main(["--root", str(tmp_path)]) == 0
    assert dvcgen.main(["--check", "--root", str(tmp_path)]) == 0
    (tmp_path / dvcgen.TEMPLATE_DIR / "claimbench_lines_by_method.json").write_text("{}\n")
    assert dvcgen.main(["--check", "--root", str(tmp_path)]) == 1
    (tmp_path / dvcgen.TEMPLATE_DIR / "claimbench_old.json").write_text("{}\n")
    assert dvcgen.main(["--root", str(tmp_path)]) == 0
    assert not (tmp_path / dvcgen.TEMPLATE_DIR / "claimbench_old.json").exists()


@pytest.mark.slow
@needs_dvc
def test_dvc_plots_show_colours_by_the_group_and_metrics_diff_shows_bounds(tmp_path):
    """In a tiny DVC repository: `dvc plots show` fills the generated template with the group colour, and
    `dvc metrics diff` lists a check's interval bound and outcome that moved between revisions."""
    _git(tmp_path, "init", "-q")
    _dvc(tmp_path, "init", "-q")
    name = dvcgen.template_name("method", "lines")
    (tmp_path / dvcgen.TEMPLATE_DIR).mkdir(parents=True, exist_ok=True)
    (tmp_path / dvcgen.TEMPLATE_DIR / f"{name}.json").write_text(
        dvcgen.template_text(dvcgen.grouped_template("method", "lines")))
    (tmp_path / "acc.csv").write_text("method,x,y\nel2n,0,1.5\nrandom,0,2\nel2n,0.5,\n")
    (tmp_path / "headline.json").write_text(json.dumps(dvc_metrics(RECORD)))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({
        "metrics": ["headline.json"],
        "plots": [{"acc": {"template": name, "x": "x", "y": {"acc.csv": "y"}}}]}))
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "one")
    shown = json.loads(_dvc(tmp_path, "plots", "show", "--json"))
    (spec,) = [r["content"] for r in shown["data"]["acc"] if r["type"] == "vega"]
    assert spec["spec"]["layer"][0]["encoding"]["color"]["field"] == "method"
    assert {"method": "el2n", "x": "0", "y": "1.5"}.items() <= spec["data"]["values"][0].items()
    moved = json.loads(json.dumps(RECORD))
    moved["criteria"][1]["checks"][0].update(lo=-0.5, outcome="pass")
    (tmp_path / "headline.json").write_text(json.dumps(dvc_metrics(moved)))
    diff = _dvc(tmp_path, "metrics", "diff")
    assert "checks.E2.g >.lo" in diff and "-2.0" in diff and "-0.5" in diff and "undecided" in diff
