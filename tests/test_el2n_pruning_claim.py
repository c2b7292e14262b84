"""The claim's statistics on known accuracies, its config checks, its plan and barrier on synthetic
score runs, its one-line cache errors, and its ci scale end to end."""

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from claimbench.claims import el2n_pruning as claim
from claimbench.claims import registry
from claimbench.claims.el2n_pruning import analyse as A
from claimbench.claims.el2n_pruning import train as T
from claimbench.contract import Barrier, RunSpec
from claimbench.errors import CacheError, ParamsError
from claimbench.executor import collect
from claimbench.intervals import interval, replicates
from claimbench.metrics.example_scores import keep_hardest
from claimbench.params import build_config
from claimbench.stage import make_context, run_train
from claimbench.sweep import Record

REPO = Path(__file__).resolve().parents[1]


def test_pruning_statistics_on_known_accuracies():
    full = [{"replicate": r, "seed": r, "test_acc": a} for r, a in enumerate((90.0, 91.0, 92.0))]
    pruned = [{"method": m, "keep_fraction": k, "seed": s, "replicate": s, "test_acc": a}
              for m, k, accs in (("el2n", 0.7, (91.0, 91.5, 92.0)), ("random", 0.7, (89.0, 90.0, 91.0)),
                                 ("el2n", 0.5, (88.0, 88.0, 88.0)), ("random", 0.5, (89.0, 89.0, 89.0)),
                                 ("grand_init", 0.7, (85.0, 86.0, 87.0)),
                                 ("grand_init", 0.5, (90.0, 91.0, 92.0)))
              for s, a in enumerate(accs)]
    stats = A.pruning_statistics(A.accuracy_table(full, pruned))
    assert stats["full_data_acc"] == pytest.approx(91.0)
    assert stats["el2n_acc_pruned30"] == pytest.approx(91.5)
    reps = A.replicate_table(full, pruned)
    assert reps["el2n_minus_random_pruned30"].tolist() == pytest.approx([2.0, 1.5, 1.0])  # paired by replicate
    assert reps["full_minus_el2n_pruned50"].tolist() == pytest.approx([2.0, 3.0, 4.0])
    paired = A.paired_statistics(reps)
    assert paired["el2n_minus_random_pruned30"] == pytest.approx(1.5)
    assert paired["el2n_minus_random_pruned30_se"] == pytest.approx(0.5 / 3**0.5)  # sd of (2, 1.5, 1) / √3
    assert paired["el2n_minus_random_pruned30_z"] == pytest.approx(1.5 / (0.5 / 3**0.5))
    assert paired["full_minus_el2n_pruned30"] == pytest.approx(-0.5)
    assert paired["grand_init_minus_random_pruned50"] == pytest.approx(2.0)


def test_full_data_train_acc_min_on_known_runs():
    """Regime R2 (card v5): the lowest train accuracy of the full-data runs; NaN when a run lacks it (made
    before card v5 recorded it) or is NaN, so an unrecorded fit never counts as a fit."""
    full = [{"replicate": r, "seed": r, "test_acc": 88.0, "train_acc": a} for r, a in enumerate((99.67, 99.37, 99.5))]
    assert A.full_data_train_acc_min(full) == pytest.approx(99.37)
    assert math.isnan(A.full_data_train_acc_min(full + [{"replicate": 3, "seed": 3, "test_acc": 88.0}]))
    assert math.isnan(A.full_data_train_acc_min(full[:2] + [{**full[2], "train_acc": float("nan")}]))
    assert math.isnan(A.full_data_train_acc_min([]))


def test_a_nan_run_makes_its_cells_and_replicate_nan_not_skipped():
    full = [{"replicate": r, "seed": r, "test_acc": a} for r, a in enumerate((90.0, float("nan")))]
    pruned = [{"method": m, "keep_fraction": k, "seed": r, "replicate": r, "test_acc": a}
              for m in ("el2n", "random") for k in (0.7, 0.5) for r, a in enumerate((88.0, 89.0))]
    acc = A.accuracy_table(full, pruned)
    assert math.isnan(A.pruning_statistics(acc)["full_data_acc"])
    reps = A.replicate_table(full, pruned)
    iv = interval(replicates(reps["full_minus_el2n_pruned50"]))
    assert not iv.defined and "1 of 2 replicates are NaN" in iv.reason


@pytest.mark.parametrize("bad", [
    {"epochs": 2, "score_epoch": 2},
    {"keep_fractions": [0.9, 0.7]},
    {"keep_fractions": [0.7, 0.5, 1.0]},
    {"methods": ["el2n", "grand_init"]},
    {"replicates": 1},
    {"replicates": 500, "score_ensemble": 2},
    {"noise_modes": ["flip"]},
    {"model": "vgg"},
])
def test_bad_config_is_one_params_error(bad):
    with pytest.raises(ParamsError, match="el2n_pruning"):
        build_config(claim.Config, bad, "el2n_pruning.ci")


@pytest.fixture
def ctx(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return make_context(claim.CLAIM_ID, "ci", root=tmp_path)


def fake_runs(ctx, n: int, scores: list[dict]) -> list[Record]:
    """Finished score runs with the given scores.pt (one per seed: seed_base + i) and a data_stats run for n
    examples."""
    records = []
    for i, s in enumerate(scores):
        seed = ctx.cfg.seed_base + i
        d = ctx.runs_dir / f"score{seed}"
        d.mkdir(parents=True)
        torch.save(s, d / claim.SCORES)
        records.append(Record(claim.run_key(ctx.cfg, "score", seed=seed), f"score {seed}", d,
                              {"test_acc": 90.0, "steps": 4}))
    d = ctx.runs_dir / "stats"
    d.mkdir()
    torch.save({"input_norm": torch.rand(n)}, d / claim.DATA_STATS)
    return records + [Record(claim.data_stats_key(ctx.cfg), "data stats", d, {"n_train": n, "n_test": n})]


def n_ensemble_runs(cfg) -> int:
    return cfg.replicates * cfg.score_ensemble


def test_plan_puts_score_noise_and_data_stats_runs_before_the_barrier(ctx):
    cfg = ctx.cfg
    plan = T.plan(ctx)
    assert isinstance(plan[-1], Barrier) and all(isinstance(s, RunSpec) for s in plan[:-1])
    kinds = [s.key["kind"] for s in plan[:-1]]
    k = n_ensemble_runs(cfg)
    assert kinds == ["score"] * k + ["noise"] * len(cfg.noise_modes) * k + ["data_stats"]
    keys = [json.dumps(s.key, sort_keys=True) for s in plan[:-1]]
    assert len(set(keys)) == len(keys)
    ensembles = claim.ensemble_seeds(cfg)
    assert sorted(s for e in ensembles for s in e) == list(range(k))  # every seed in exactly one ensemble
    assert [e[0] for e in ensembles] == list(range(cfg.replicates))  # member 0 of replicate r is seed r


def test_barrier_keeps_the_hardest_examples_of_each_replicates_own_mean_scores(ctx):
    cfg, n = ctx.cfg, 40
    g = torch.Generator().manual_seed(0)
    names = ("el2n_init", "grand_init", "el2n_early", "grand_early")
    scores = [{k: torch.rand(n, generator=g) for k in names} for _ in range(n_ensemble_runs(cfg))]
    specs = T.prune_plan(ctx, fake_runs(ctx, n, scores))
    assert len(specs) == len(cfg.keep_fractions) * len(cfg.methods) * cfg.replicates
    steps = cfg.train_config().total_steps(n)
    for spec in specs:
        keep = spec.args["keep"]
        assert spec.key["subset"] == T.digest(keep) and spec.key["steps"] == spec.args["steps"] == steps
        assert len(keep) == round(spec.key["keep"] * n)
        r = spec.key["seed"] - cfg.seed_base
        assert spec.key["seed"] == claim.prune_seed(cfg, r) and spec.args["seed"] == spec.key["seed"]
        if spec.key["method"] != "random":
            own = [scores[seed] for seed in claim.ensemble_seeds(cfg)[r]]
            mean = torch.stack([s[claim.METHOD_SCORE[spec.key["method"]]] for s in own]).mean(0)
            assert torch.equal(keep, keep_hardest(mean, spec.key["keep"]))
    for method in ("el2n", "random"):  # each replicate prunes with its own ensemble / its own random subset
        subsets = {s.key["subset"] for s in specs if s.key["method"] == method and s.key["keep"] == 0.5}
        assert len(subsets) == cfg.replicates
    seeds = {m: sorted(s.key["seed"] for s in specs if s.key["method"] == m and s.key["keep"] == 0.5)
             for m in cfg.methods}
    assert seeds["el2n"] == seeds["random"] == seeds["grand_init"]  # paired by replicate


def test_quick_skips_the_grand_init_arm_and_keeps_every_other_run(ctx):
    """Card v8: quick trains no GraNd@init pruned runs (reported E4 only); the others are the same runs."""
    n = 40
    g = torch.Generator().manual_seed(0)
    scores = [{k: torch.rand(n, generator=g) for k in ("el2n_init", "grand_init", "el2n_early", "grand_early")}
              for _ in range(n_ensemble_runs(ctx.cfg))]
    both = T.prune_plan(ctx, fake_runs(ctx, n, scores))
    shutil.rmtree(ctx.runs_dir)
    lean = dataclasses.replace(ctx, cfg=dataclasses.replace(ctx.cfg, methods=["el2n", "random"]))
    kept = T.prune_plan(lean, fake_runs(lean, n, scores))
    key = lambda s: json.dumps(s.key, sort_keys=True)  # noqa: E731
    assert [key(s) for s in kept] == [key(s) for s in both if s.key["method"] != "grand_init"]
    quick, long = (make_context(claim.CLAIM_ID, scale, root=REPO).cfg for scale in ("quick", "long"))
    assert quick.methods == ["el2n", "random"] and "grand_init" in long.methods


def test_seed_set_k_moves_every_replicate_seed_and_keeps_the_data(ctx):
    cfg = ctx.cfg
    assert claim.with_seed_set(cfg, 0) is cfg
    moved = claim.with_seed_set(cfg, 1)
    assert moved.seed_base == 1000 and dataclasses.replace(moved, seed_base=0) == cfg
    base = {s for e in claim.ensemble_seeds(cfg) for s in e} | {claim.prune_seed(cfg, r) for r in range(cfg.replicates)}
    other = ({s for e in claim.ensemble_seeds(moved) for s in e}
             | {claim.prune_seed(moved, r) for r in range(moved.replicates)})
    assert base.isdisjoint(other) and len(other) == len(base)
    keep = T.subset_for("random", 0.5, claim.prune_seed(moved, 0), {}, 100)
    assert not torch.equal(keep, T.subset_for("random", 0.5, claim.prune_seed(cfg, 0), {}, 100))
    set1 = type(ctx)(ctx.claim_id, ctx.scale, moved, ctx.params, ctx.device, ctx.root, 1)
    keys0 = {json.dumps(s.key, sort_keys=True) for s in T.plan(ctx)[:-1]}
    keys1 = {json.dumps(s.key, sort_keys=True) for s in T.plan(set1)[:-1]}
    assert keys0 & keys1 == {json.dumps(claim.data_stats_key(cfg), sort_keys=True)}  # only the data run is shared
    assert "seed_base" not in json.dumps(sorted(keys0))  # seed set 0 keeps its run keys


def test_corrupt_or_missing_run_files_are_one_line_errors(ctx):
    records = fake_runs(ctx, 10, [{"el2n_early": torch.rand(10)}] * n_ensemble_runs(ctx.cfg))
    (records[0].dir / claim.SCORES).write_bytes(b"\x80\x04garbage")
    with pytest.raises(CacheError, match=r"scores.pt is corrupt or not a plain tensor file .*delete it") as e:
        T.prune_plan(ctx, records)
    assert "\n" not in str(e.value)
    (records[0].dir / claim.SCORES).unlink()
    with pytest.raises(CacheError, match=r"scores.pt missing although its run is marked done"):
        A.analyse(records, ctx)
    with pytest.raises(CacheError, match=r"is not finished; run the train stage first") as e:
        collect(ctx, T)
    assert "\n" not in str(e.value)


@pytest.mark.slow
@pytest.mark.needs_data
def test_ci_scale_end_to_end(ci_repo):
    """From the session's `dvc repro` at ci: criteria, statistics, figures; a second train retrains nothing."""
    ctx = make_context(claim.CLAIM_ID, "ci", root=ci_repo)
    ctx = type(ctx)(ctx.claim_id, ctx.scale, ctx.cfg, ctx.params, torch.device("cpu"), ctx.root)
    record = json.loads((ctx.results_dir / "metrics.json").read_text())
    assert {c["id"] for c in record["criteria"]} == {"E1", "E2", "E3", "E4", "E5", "E1b", "E2b"}
    stats = record["statistics"]
    for name in ("el2n_minus_random_pruned50", "full_minus_el2n_pruned50", "spearman_el2n_early_grand_early",
                 "grand_init_minus_random_pruned50_z", "auroc_el2n_noise_permute", "full_data_acc_min"):
        assert stats[name] is not None, name
    assert 0 <= stats["auroc_el2n_noise_permute"] <= 1
    for c in record["criteria"]:
        if c["gating"]:
            assert all(len(record["samples"][ch["statistic"]]["values"]) == ctx.cfg.replicates for ch in c["checks"])
            null = record["null_calibration"][c["id"]]  # v4: enumerated exactly when small (2 replicates: 4)
            assert null.get("exact") or null["draws"] >= 200
    assert [p["id"] for p in record["regime"]] == ["R1", "R2"]
    assert stats["full_data_train_acc_min"] is not None  # R2: the score runs record their train accuracy
    assert (ctx.results_dir / "tables" / "replicates.csv").exists()
    assert (ctx.figures_dir / "accuracy_vs_pruned.png").exists()
    assert (ctx.figures_dir / "rank_correlation_heatmap.png").exists()
    assert (ctx.results_dir / "tables" / "accuracy.csv").exists()
    records = collect(ctx, T)
    full_steps = {r["steps"] for r in claim.of_kind(records, "score")}
    assert len(full_steps) == 1
    assert {r["steps"] for r in claim.of_kind(records, "prune")} == full_steps  # equal optimiser steps
    stats_run = claim.data_stats(records)
    assert stats_run["corrupted_permute"].dtype == torch.bool and stats_run["corrupted_permute"].any()
    assert stats_run["input_norm"].shape == (ctx.cfg.train_size,)
    done = sorted(ctx.runs_dir.glob("*/done.json"))
    assert len(done) == len(records)
    stamps = [p.stat().st_mtime_ns for p in done]
    run_train(ctx, registry()[claim.CLAIM_ID])  # every run is cached: nothing retrains
    assert [p.stat().st_mtime_ns for p in done] == stamps



def test_full_score_run_reports_its_train_accuracy(tmp_path):
    """The E2 regime of the card v5 proposal reads whether the full-data runs fit: a full score run returns
    its final train accuracy (%) on the labels it trained on (here all class 0, which 15 steps fit: 100%,
    where split.y would give 25%); a noise run (stopped at score_epoch) reports none."""
    torch.manual_seed(0)
    x, y = torch.randn(40, 1, 28, 28), torch.arange(40) % 4
    split = T.Split(x, y, x[:8], y[:8], 4)
    cfg = build_config(claim.Config, {"train_size": 40, "test_size": 8, "width": 4, "epochs": 3, "batch_size": 8,
                                      "lr": 0.05, "augment": "none", "replicates": 2}, "el2n_pruning.x")
    full = T.score_run(cfg, split, torch.zeros_like(y), 0, True, tmp_path, torch.device("cpu"))
    assert full["train_acc"] == 100.0 and full["steps"] == 15
    noise = T.score_run(cfg, split, y, 0, False, tmp_path, torch.device("cpu"))
    assert "train_acc" not in noise and noise["steps"] == 5
