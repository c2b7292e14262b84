"""Claim simpson_paradox: the VGG family, the grids per scale, and a small corpus end to end with a killed
sweep resumed without retraining finished models."""

import json
from dataclasses import replace

import pytest
import torch
from conftest import REPO

from claimbench.cards import load_card
from claimbench.claims import simpson_paradox as sp
from claimbench.metrics.simpson import CorpusError
from claimbench.models.pgdl_vgg import PGDLVGG, VGGSpec
from claimbench.params import load_params
from claimbench.stage import Context
from claimbench.sweep import DONE


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


@pytest.mark.parametrize("scale, n_models, min_per_depth", [("quick", 32, 12), ("gpu", 96, 48), ("paper", 96, 48)])
def test_grids_are_balanced_over_depths(scale, n_models, min_per_depth):
    cfg = load_params(REPO / "params.yaml", scale).claims["simpson_paradox"]
    points = sp.grid(cfg)
    assert len(points) == n_models
    for b in cfg.blocks:
        assert sum(p["blocks"] == b for p in points) >= min_per_depth


def small_ctx(root) -> Context:
    params = load_params(REPO / "params.yaml", "ci")
    cfg = replace(params.claims["simpson_paradox"], train_examples=200, test_examples=200, n_boot=20)
    return Context("simpson_paradox", "ci", cfg, params, torch.device("cpu"), root)


def test_killed_sweep_resumes_without_retraining_and_analyses(tmp_path, monkeypatch):
    ctx = small_ctx(tmp_path)
    with pytest.raises(CorpusError, match="not trained"):
        sp.analyse(ctx)
    real, calls = sp.train_one, []

    def dying(run_dir, hp, *args):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the sweep is killed while the 4th model trains
        calls.append(hp)
        return real(run_dir, hp, *args)

    monkeypatch.setattr(sp, "train_one", dying)
    with pytest.raises(KeyboardInterrupt):
        sp.train(ctx)
    runs = ctx.artifacts_dir / "runs"
    assert len(list(runs.glob(f"*/{DONE}"))) == 3
    finished = {p: p.stat().st_mtime_ns for p in runs.glob(f"*/{DONE}")}

    resumed, threads = [], torch.get_num_threads()
    monkeypatch.setattr(sp, "train_one", lambda run_dir, hp, *a: resumed.append(hp) or real(run_dir, hp, *a))
    sp.train(ctx)
    assert torch.get_num_threads() == threads  # the single-thread setting does not leak
    assert len(resumed) == 8 - 3 and not any(hp in calls for hp in resumed)
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())
    assert len(list(runs.glob(f"*/{DONE}"))) == 8 and not list(runs.glob("*/checkpoint.pt"))

    res = sp.analyse(ctx)
    verdict = load_card("simpson_paradox").verdict(res.statistics)
    assert res.statistics["models"] == 8 and res.statistics["min_models_per_depth"] == 4
    for c in verdict["criteria"]:  # every statistic a criterion names was computed
        assert all(isinstance(ch["value"], (int, float)) for ch in c["checks"]), c
    corpus = res.tables["corpus"]
    assert corpus["test_acc"].between(0, 1).all() and corpus[list(sp.METRICS)].notna().all().all()
    assert (ctx.figures_dir / "simpson_alpha.png").exists() and (ctx.figures_dir / "tau_pooled_vs_within.png").exists()


def test_parallel_sweep_trains_every_model_once(tmp_path):
    """The concurrent path (threads; CUDA streams on a GPU) on CPU: every grid point done, none twice."""
    ctx = small_ctx(tmp_path)
    ctx.cfg = replace(ctx.cfg, parallel_models=3, blocks=[1], train_examples=100, test_examples=100)
    sp.train(ctx)
    runs = ctx.artifacts_dir / "runs"
    assert len(list(runs.glob(f"*/{DONE}"))) == len(sp.grid(ctx.cfg)) == 4
    assert len(list(runs.glob("*/weights.pt"))) == 4
    timing = json.loads((ctx.artifacts_dir / "corpus.json").read_text())
    assert timing["models"] == 4 and timing["models_per_hour"] > 0
