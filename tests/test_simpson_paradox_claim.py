"""Claim simpson_paradox: the VGG family, the grids and run keys per scale, and a small corpus end to end
through the executor: a killed sweep resumed without retraining finished models, runs side by side in
processes bit-identical to one at a time, and the analysis and figures from the records."""

from dataclasses import replace

import pytest
import torch
from conftest import REPO

from claimbench import executor
from claimbench.cards import load_card
from claimbench.claims import load_params
from claimbench.claims import simpson_paradox as sp
from claimbench.claims.simpson_paradox import analyse as A
from claimbench.claims.simpson_paradox import figures as F
from claimbench.claims.simpson_paradox import train as T
from claimbench.errors import CacheError
from claimbench.models.pgdl_vgg import PGDLVGG, VGGSpec
from claimbench.params import ExecutorParams
from claimbench.stage import make_context
from claimbench.sweep import DONE
from claimbench.verdict import judge, null_calibration


@pytest.mark.parametrize("blocks, size", [(1, 14), (3, 14), (3, 28)])
def test_vgg_family_shapes(blocks, size):
    spec = VGGSpec(blocks, 2, 32, 16, 0.5)
    net = PGDLVGG(spec, 1, size, 10)
    assert net(torch.zeros(2, 1, size, size)).shape == (2, 10)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == spec.conv_layers == 2 * blocks and convs[-1].out_channels == 32
    assert spec.block_filters() == [32] if blocks == 1 else [8, 16, 32]


def test_vgg_rejects_too_many_pools():
    with pytest.raises(ValueError, match="at least 16 px"):
        PGDLVGG(VGGSpec(4, 1, 32, 16, 0.0), 1, 14, 10)


@pytest.mark.parametrize("scale, n_models, min_per_depth", [("quick", 108, 54), ("long", 108, 54), ("gpu", 128, 64),
                                                                ("paper", 96, 48)])
def test_grids_are_balanced_over_depths(scale, n_models, min_per_depth):
    cfg = load_params(REPO / "params.yaml", scale).claims["simpson_paradox"]
    points = sp.grid(cfg)
    assert len(points) == n_models
    for b in cfg.blocks:
        assert sum(p["blocks"] == b for p in points) >= min_per_depth


def small_ctx(root, **changes):
    """The ci context in folder `root` on the CPU, with a smaller corpus (and `changes` to the Config), its
    runs in this process (executor workers 1, whatever params.yaml says)."""
    ctx = make_context("simpson_paradox", "ci", str(REPO / "params.yaml"), root)
    cfg = replace(ctx.cfg, train_examples=200, test_examples=200, n_boot=20, **changes)
    params = replace(ctx.params, data=replace(ctx.params.data, device="cpu"), executor=ExecutorParams(workers=1))
    return replace(ctx, cfg=cfg, params=params, device=torch.device("cpu"))


def test_plan_has_one_single_threaded_run_per_grid_point_keyed_without_analysis_settings(tmp_path):
    ctx = small_ctx(tmp_path)
    specs = T.plan(ctx)
    assert [s.args for s in specs] == sp.grid(ctx.cfg) and {s.threads for s in specs} == {1}
    assert all(s.key.items() >= s.args.items() for s in specs)  # the key holds the grid point
    assert not {"n_boot", "min_evals", "pgdl_task", *sp.GRID} & (set(specs[0].key) - set(specs[0].args))
    # analysis settings never retrain a model; a recipe setting does
    same = T.plan(replace(ctx, cfg=replace(ctx.cfg, n_boot=7, min_evals=3)))
    assert [s.key for s in same] == [s.key for s in specs]
    assert T.plan(replace(ctx, cfg=replace(ctx.cfg, epochs=2)))[0].key != specs[0].key


def test_killed_sweep_resumes_without_retraining_and_analyses(tmp_path, monkeypatch):
    ctx = small_ctx(tmp_path)
    with pytest.raises(CacheError, match="not finished"):
        executor.collect(ctx, T)
    real, calls = T.run_one, []

    def dying(ctx, run_dir, data, **hp):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the sweep is killed while the 4th model trains
        calls.append(hp)
        return real(ctx, run_dir, data, **hp)

    monkeypatch.setattr(T, "run_one", dying)
    with pytest.raises(KeyboardInterrupt):
        executor.execute(ctx, T)
    runs = ctx.runs_dir
    assert len(list(runs.glob(f"*/{DONE}"))) == 3
    finished = {p: p.stat().st_mtime_ns for p in runs.glob(f"*/{DONE}")}

    resumed, threads = [], torch.get_num_threads()

    def counting(ctx, run_dir, data, **hp):
        resumed.append((hp, torch.get_num_threads()))
        return real(ctx, run_dir, data, **hp)

    monkeypatch.setattr(T, "run_one", counting)
    report = executor.execute(ctx, T)
    assert torch.get_num_threads() == threads  # the single-thread setting does not leak
    assert report.submitted == 8 - 3 and report.cached == 3
    assert not any(hp in calls for hp, _ in resumed) and {n for _, n in resumed} == {1}
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())
    assert len(list(runs.glob(f"*/{DONE}"))) == 8 and not list(runs.glob("*/checkpoint.pt"))

    records = executor.collect(ctx, T)
    res = A.analyse(records, ctx)
    F.figures(res, ctx)
    card = load_card("simpson_paradox")
    null = null_calibration(res, card)
    verdict = judge(card, res.statistics, {k: s.to_json() for k, s in res.samples.items()}, null)
    assert res.statistics["models"] == 8 and res.statistics["min_models_per_depth"] == 4
    for c in verdict["criteria"]:  # every statistic a criterion names was computed
        assert all(isinstance(ch["value"], (int, float)) for ch in c["checks"]), c
    for c in (c for c in card.criteria if c.gating):  # bootstrap samples and null draws for every gating check
        assert all(len(res.samples[ch.statistic].values) == 20 for ch in c.checks), c.id
        assert null[c.id]["draws"] >= 200 and 0 <= null[c.id]["pass_rate"] <= 1
    for p in verdict["regime"]:
        assert all(isinstance(ch["value"], (int, float)) for ch in p["checks"]), p
    corpus = res.tables["corpus"]
    assert corpus["test_acc"].between(0, 1).all() and corpus[list(A.METRICS)].notna().all().all()
    assert list(corpus["model_id"]) == [r.dir.name for r in records]
    assert res.details["corpus_training"] == {"models": 8, "diverged": 0,
                                              "sum_model_train_s": round(sum(r["train_s"] for r in records), 1)}
    for name in ("simpson_alpha.png", "simpson_log_spectral_norm.png", "tau_pooled_vs_within.png"):
        assert (ctx.figures_dir / name).exists(), name

    (records[0].dir / "weights.pt").unlink()  # a finished run without its weights: one clear error
    with pytest.raises(CacheError, match="weights.pt missing"):
        A.analyse(records, ctx)


def test_runs_side_by_side_match_runs_one_at_a_time(tmp_path):
    """Two worker processes train every grid point once, bit-identical to the in-process loop."""
    serial, parallel = small_ctx(tmp_path / "a", blocks=[1]), small_ctx(tmp_path / "b", blocks=[1])
    one = executor.execute(serial, T).records
    two = executor.execute(parallel, T, ExecutorParams(workers=2)).records
    assert len(one) == len(two) == len(sp.grid(serial.cfg)) == 4
    assert len(list(parallel.runs_dir.glob("*/attempts.jsonl"))) == 4
    for a, b in zip(one, two):
        assert a.dir.name == b.dir.name
        assert {k: v for k, v in a.record.items() if k != "train_s"} == \
               {k: v for k, v in b.record.items() if k != "train_s"}
        wa, wb = a.tensors("weights.pt", "weights"), b.tensors("weights.pt", "weights")
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
        assert executor.run_compute(b.dir)["attempts"] == executor.run_compute(b.dir)["finished"] == 1  # trained once
