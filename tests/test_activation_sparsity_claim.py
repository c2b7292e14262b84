"""The activation-sparsity claim's plan and runs: one run per model variant under its old cache key,
the label-noise pair only when asked for, Top-k where the recipe says so, and a run resumed from its
checkpoint gives the same record."""

import dataclasses
import json

import pytest
import torch
from conftest import REPO

from claimbench.claims.activation_sparsity import run_key, topk_k
from claimbench.claims.activation_sparsity import train as T
from claimbench.claims.activation_sparsity.variants import build_model
from claimbench.metrics.activation_sparsity import TopKReLU, log_spaced_steps
from claimbench.stage import make_context

IMAGE = ["vit_small", "vit_large", "vit_topk", "random_labels", "random_inputs", "mixer", "mlp"]


@pytest.fixture
def ctx():
    return make_context("activation_sparsity", "ci", root=REPO)


def test_plan_has_one_run_per_variant_keyed_by_name_and_config(ctx):
    specs = T.plan(ctx)
    names = [s.args["name"] for s in specs]
    assert names == [*IMAGE, "char_lm"]  # the order the analysis tables list them in
    assert [s.key for s in specs] == [run_key(n, ctx.cfg) for n in names]
    by_name = {s.args["name"]: s.args for s in specs}
    cfg = ctx.cfg
    assert by_name["char_lm"] == {"kind": "char_lm", "name": "char_lm", "steps": cfg.lm_steps}
    assert by_name["random_inputs"] == {"kind": "image", "name": "random_inputs", "steps": cfg.variant_steps,
                                        "model": "vit_small", "topk": False, "inputs": "gaussian",
                                        "labels": "random", "classify": False}
    assert by_name["vit_topk"]["topk"] and by_name["vit_topk"]["steps"] == cfg.steps
    assert by_name["mixer"]["steps"] == by_name["mlp"]["steps"] == cfg.other_steps


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
    marks = log_spaced_steps(cfg.other_steps, cfg.n_measurements, always=(cfg.train_examples // cfg.batch_size - 1,))
    assert [p["step"] for p in first["curve"]] == [0, *[m for m in marks if 0 < m <= cfg.other_steps]]
    assert 0 <= first["test_acc"] <= 100 and set(first["reliability"]) >= {"confidence", "accuracy", "count"}
    torch.manual_seed(123)  # a resumed run must not depend on the global RNG state it finds
    again = T.run_one(ctx, tmp_path, data, **spec.args)
    assert json.dumps(again) == json.dumps(first)  # (empty reliability bins are NaN, which != NaN)
