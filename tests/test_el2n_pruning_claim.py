"""The claim's statistics on a known summary, its config checks, and its ci scale end to end."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from claimbench.claims import el2n_pruning as claim
from claimbench.errors import CacheError, ParamsError
from claimbench.params import build_config
from claimbench.stage import make_context, run_train
from claimbench.sweep import run_dir

REPO = Path(__file__).resolve().parents[1]


def test_pruning_statistics_on_known_accuracies():
    summary = {
        "full": [{"test_acc": a} for a in (90.0, 91.0, 92.0)],
        "pruned": [{"method": m, "keep_fraction": k, "seed": s, "test_acc": a}
                   for m, k, accs in (("el2n", 0.7, (91.0, 91.5, 92.0)), ("random", 0.7, (89.0, 90.0, 91.0)),
                                      ("el2n", 0.5, (88.0, 88.0, 88.0)), ("random", 0.5, (89.0, 89.0, 89.0)),
                                      ("grand_init", 0.7, (85.0, 86.0, 87.0)),
                                      ("grand_init", 0.5, (90.0, 91.0, 92.0)))
                   for s, a in enumerate(accs)],
    }
    stats = claim.pruning_statistics(claim.accuracy_table(summary))
    assert stats["full_data_acc"] == pytest.approx(91.0)
    assert stats["el2n_acc_pruned30"] == pytest.approx(91.5)
    assert stats["el2n_minus_random_pruned30"] == pytest.approx(1.5)
    se = (0.25 / 3 + 1 / 3) ** 0.5  # SE of (91, 91.5, 92) and of (89, 90, 91)
    assert stats["el2n_minus_random_pruned30_se"] == pytest.approx(se)
    assert stats["el2n_minus_random_pruned30_z"] == pytest.approx(1.5 / se)
    assert stats["full_minus_el2n_pruned30"] == pytest.approx(-0.5)
    assert stats["full_minus_el2n_pruned50"] == pytest.approx(3.0)
    assert stats["grand_init_minus_random_pruned50"] == pytest.approx(2.0)
    assert stats["grand_init_minus_random_pruned50_z"] == pytest.approx(2.0 / (1 / 3) ** 0.5)


@pytest.mark.parametrize("bad", [
    {"epochs": 2, "score_epoch": 2},
    {"keep_fractions": [0.9, 0.5]},
    {"keep_fractions": [0.7, 0.5, 1.0]},
    {"methods": ["el2n", "random"]},
    {"prune_seeds": 1},
    {"noise_modes": ["flip"]},
    {"model": "vgg"},
])
def test_bad_config_is_one_params_error(bad):
    with pytest.raises(ParamsError, match="el2n_pruning"):
        build_config(claim.Config, bad, "el2n_pruning.ci")


@pytest.mark.slow
@pytest.mark.needs_data
def test_ci_scale_end_to_end(ci_repo):
    """From the session's `dvc repro` at ci: criteria, statistics, figures; a second train retrains nothing."""
    ctx = make_context(claim.CLAIM_ID, "ci", root=ci_repo)
    ctx = type(ctx)(ctx.claim_id, ctx.scale, ctx.cfg, ctx.params, torch.device("cpu"), ctx.root)
    record = json.loads((ctx.results_dir / "metrics.json").read_text())
    assert {c["id"] for c in record["criteria"]} == {"E1", "E2", "E3", "E4", "E5"}
    stats = record["statistics"]
    for name in ("el2n_minus_random_pruned30", "full_minus_el2n_pruned30", "spearman_el2n_early_grand_early",
                 "grand_init_minus_random_pruned50_z", "auroc_el2n_noise_permute"):
        assert stats[name] is not None, name
    assert 0 <= stats["auroc_el2n_noise_permute"] <= 1
    assert (ctx.figures_dir / "accuracy_vs_pruned.png").exists()
    assert (ctx.figures_dir / "rank_correlation_heatmap.png").exists()
    assert (ctx.results_dir / "tables" / "accuracy.csv").exists()
    summary = json.loads((ctx.artifacts_dir / claim.SUMMARY).read_text())
    assert all(r["steps"] == summary["full_steps"] for r in summary["pruned"])  # equal optimiser steps
    before = (ctx.artifacts_dir / claim.SUMMARY).read_text()
    done = sorted((ctx.artifacts_dir / "runs").glob("*/done.json"))
    stamps = [p.stat().st_mtime_ns for p in done]
    run_train(ctx, claim)  # every run is cached: nothing retrains, same summary
    assert (ctx.artifacts_dir / claim.SUMMARY).read_text() == before
    assert [p.stat().st_mtime_ns for p in done] == stamps


def test_corrupt_artifacts_are_one_line_errors(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    ctx = make_context(claim.CLAIM_ID, "ci", root=tmp_path)
    ctx.artifacts_dir.mkdir(parents=True)
    (ctx.artifacts_dir / claim.SUMMARY).write_text('{"full": [')
    with pytest.raises(CacheError, match=r"summary.json is missing or corrupt .*rerun `python stages/el2n") as e:
        claim.analyse(ctx)
    assert "\n" not in str(e.value)
    (ctx.artifacts_dir / claim.SUMMARY).write_text("{}")
    (ctx.artifacts_dir / claim.SCORES).write_bytes(b"not a torch file")
    with pytest.raises(CacheError, match=r"mean_scores.pt is corrupt or not a plain tensor file .*delete it") as e:
        claim.analyse(ctx)
    assert "\n" not in str(e.value)
    torch.save({"per_seed": []}, ctx.artifacts_dir / claim.SCORES)
    with pytest.raises(CacheError, match="holds no 'mean' scores"):
        claim.analyse(ctx)
    key = {"kind": "score", "seed": 0}
    run = run_dir(tmp_path / "runs", key)
    run.mkdir(parents=True)
    (run / "scores.pt").write_bytes(b"\x80\x04garbage")
    with pytest.raises(CacheError, match=r"scores.pt is corrupt or not a plain tensor file"):
        claim._load_scores(tmp_path / "runs", key)
