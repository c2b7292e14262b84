"""The activation-sparsity claim's plan and runs: one run per model variant and seed (seed 0 under its
old cache key), replicated runs under every seed, skipped runs left out, the label-noise pair only when
asked for, Top-k where the recipe says so, seed sets disjoint, and a run resumed from its checkpoint gives
the same record (with its first-pass measurement and train accuracy)."""

import dataclasses
import json

import pytest
import torch
from conftest import REPO

from claimbench.claims.activation_sparsity import (
    IMAGE_RUN_NAMES,
    RUN_NAMES,
    run_key,
    run_seeds,
    topk_k,
    with_seed_set,
)
from claimbench.claims.activation_sparsity import train as T
from claimbench.claims.activation_sparsity.variants import IMAGE_RUNS, build_model
from claimbench.metrics.activation_sparsity import TopKReLU, log_spaced_steps
from claimbench.stage import make_context
from claimbench.train import config_hash

IMAGE = ["vit_small", "vit_large", "vit_topk", "random_labels", "random_inputs", "mixer", "mlp"]


@pytest.fixture
def ctx():
    return make_context("activation_sparsity", "ci", root=REPO)


def test_plan_has_one_run_per_variant_and_seed_keyed_by_name_config_and_seed(ctx):
    specs = T.plan(ctx)
    cfg = ctx.cfg
    assert tuple(IMAGE_RUNS) == IMAGE_RUN_NAMES and RUN_NAMES == (*IMAGE, "char_lm")
    pairs = [(s.args["name"], s.args["seed"]) for s in specs]
    assert pairs == [(n, seed) for n in (*IMAGE, "char_lm") for seed in run_seeds(n, cfg)]  # table order
    assert [s.key for s in specs] == [run_key(n, cfg, seed) for n, seed in pairs]
    assert len({config_hash(s.key) for s in specs}) == len(specs)
    assert {n for n, seed in pairs if seed == cfg.seeds[1]} == set(cfg.replicated)
    by_name = {s.args["name"]: s.args for s in specs if s.args["seed"] == cfg.seeds[0]}
    assert by_name["char_lm"] == {"kind": "char_lm", "name": "char_lm", "steps": cfg.lm_steps, "seed": 0}
    assert by_name["random_inputs"] == {"kind": "image", "name": "random_inputs", "steps": cfg.variant_steps,
                                        "model": "vit_small", "topk": False, "inputs": "gaussian",
                                        "labels": "random", "classify": False, "seed": 0}
    assert by_name["vit_topk"]["topk"] and by_name["vit_topk"]["steps"] == cfg.steps
    assert by_name["mixer"]["steps"] == by_name["mlp"]["steps"] == cfg.other_steps


def test_seed_zero_runs_keep_the_single_seed_key():
    """The key of a seed-0 run is the v1 key ({run, cfg: asdict of the one-seed Config}), so runs made
    before replicates existed are reused; which runs and seeds are made is never part of a key."""
    cfg = make_context("activation_sparsity", "quick", root=REPO).cfg
    v1_cfg = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("seeds", "replicated", "skip")}
    assert run_key("vit_small", cfg, 0) == {"run": "vit_small", "cfg": {"seed": 0, **v1_cfg}}
    other = dataclasses.replace(cfg, replicated=[], skip=[], seeds=[0, 7])
    assert run_key("mlp", other, 0) == run_key("mlp", cfg, 0)


def test_skipped_runs_are_not_planned(ctx):
    skipping = dataclasses.replace(ctx, cfg=dataclasses.replace(ctx.cfg, skip=["vit_topk", "mixer"]))
    names = {s.args["name"] for s in T.plan(skipping)}
    assert names == set(RUN_NAMES) - {"vit_topk", "mixer"}


def test_seed_sets_are_disjoint_and_set_zero_is_unchanged(ctx):
    cfg = ctx.cfg
    assert with_seed_set(cfg, 0) is cfg
    seeds = [{s.args["seed"] for s in T.plan(dataclasses.replace(ctx, cfg=with_seed_set(cfg, k)))} for k in (0, 1, 2)]
    assert seeds[1] == {s + 1000 for s in seeds[0]} and seeds[2] == {s + 2000 for s in seeds[0]}
    assert not (seeds[0] & seeds[1]) and not (seeds[1] & seeds[2])
    keys = [{config_hash(s.key) for s in T.plan(dataclasses.replace(ctx, cfg=with_seed_set(cfg, k)))} for k in (0, 1)]
    assert not keys[0] & keys[1]


def test_label_noise_pair_only_when_label_noise_is_set(ctx):
    noisy = dataclasses.replace(ctx, cfg=dataclasses.replace(ctx.cfg, label_noise=0.4))
    specs = T.plan(noisy)
    assert [s.args["name"] for s in specs][-2:] == ["label_noise_base", "label_noise_topk"]
    assert {s.args["labels"] for s in specs[-2:]} == {"noisy"}
    assert [s.args["topk"] for s in specs[-2:]] == [False, True]
    assert len({s.key["cfg"]["label_noise"] for s in specs}) == 1 and len(T.plan(ctx)) == len(specs) - 2


def test_topk_recipe_puts_topk_relu_with_k_in_every_mlp(ctx):
    cfg = ctx.cfg
    topk = [m for m in build_model(cfg, "vit_small", True).modules() if isinstance(m, TopKReLU)]
    assert len(topk) == cfg.vit_small.depth and {m.k for m in topk} == {topk_k(cfg)}
    assert not any(isinstance(m, TopKReLU) for m in build_model(cfg, "vit_small", False).modules())


@pytest.mark.needs_data
def test_image_run_records_its_curve_and_resumes_from_its_checkpoint(ctx, tmp_path):
    spec = next(s for s in T.plan(ctx) if s.args["name"] == "mlp")
    data = T.load_data(ctx)
    first = T.run_one(ctx, tmp_path, data, **spec.args)
    assert (tmp_path / "checkpoint.pt").exists()
    cfg = ctx.cfg
    first_pass = min(cfg.train_examples // cfg.batch_size, cfg.other_steps)
    assert first["first_pass_step"] == first_pass
    half = first["half_lr_time_step"]
    assert half == T.half_lr_time_step(T.image_train_config(cfg, cfg.other_steps), cfg.other_steps)
    marks = log_spaced_steps(cfg.other_steps, cfg.n_measurements, always=(first_pass, half))
    assert [p["step"] for p in first["curve"]] == [0, *[m for m in marks if 0 < m <= cfg.other_steps]]
    assert {first_pass, half} <= {p["step"] for p in first["curve"]}
    assert 0 <= first["test_acc"] <= 100 and set(first["reliability"]) >= {"confidence", "accuracy", "count"}
    assert "train_acc" not in first  # recorded by the runs on random or noisy labels only (A4's fit gate)
    torch.manual_seed(123)  # a resumed run must not depend on the global RNG state it finds
    again = T.run_one(ctx, tmp_path, data, **spec.args)
    assert json.dumps(again) == json.dumps(first)  # (empty reliability bins are NaN, which != NaN)


def test_half_lr_time_step_splits_the_summed_learning_rate_in_two(ctx):
    """Constant rate: half the steps; warmup pushes it later; cosine to 0 spends half its summed rate by the
    x with x/2 + sin(pi x)/(2 pi) = 1/4, x = 0.265 of the run: the last doubling of optimisation time is 3/4 of it."""
    tc = T.image_train_config(ctx.cfg, 100)
    flat = dataclasses.replace(tc, schedule="constant", warmup_steps=0)
    assert T.half_lr_time_step(flat, 100) == 50
    assert T.half_lr_time_step(dataclasses.replace(flat, warmup_steps=20), 100) == 55  # 10 + 80 lr-steps: 45 at 55
    assert T.half_lr_time_step(dataclasses.replace(flat, schedule="cosine"), 100) == 27


@pytest.mark.needs_data
def test_random_label_runs_train_on_their_subset_and_record_their_fit(ctx, tmp_path):
    """random_label_examples = 64: the run sees 64 images (first pass 64 // batch), measures and fits on them."""
    ctx = dataclasses.replace(ctx, cfg=dataclasses.replace(ctx.cfg, random_label_examples=64))
    spec = next(s for s in T.plan(ctx) if s.args["name"] == "random_labels")
    rec = T.run_one(ctx, tmp_path, T.load_data(ctx), **spec.args)
    assert rec["train_examples"] == 64 and rec["steps_per_epoch"] == 64 // ctx.cfg.batch_size
    assert rec["first_pass_step"] == min(64 // ctx.cfg.batch_size, ctx.cfg.variant_steps)
    assert 0 <= rec["train_acc"] <= 100
