"""Stacked runs for simpson_paradox (issue 23 item 3): the runs of one architecture and batch size (dropout and
weight decay per member) train as one stacked model, each member's record and weights equal to run_one's
(float64, ≤ 1e-12), with card v5's target training accuracy (members stop at different epochs, or at the cap) and a
member that diverges; and through the executor with engine stack_runs: 4, the same records as unstacked."""

import json
from dataclasses import replace

import pytest
import torch
from claim_stacking import executed_alone_and_stacked, group_and_alone
from test_simpson_paradox_claim import small_ctx

from claimbench.claims import simpson_paradox as sp
from claimbench.claims.simpson_paradox import train as T

TOL = 1e-12

pytestmark = pytest.mark.usefixtures("float64_one_thread")


def target_ctx(root, **changes):
    """ci's corpus at one block, trained to a 0.6 training accuracy (cap 8 epochs): at batch size 32 the members
    stop at epochs 5 and 6 or reach the cap; weight decay 1e60 diverges (the loss is NaN in epoch 1)."""
    return small_ctx(root, blocks=[1], weight_decay=[0.0, 0.01, 1e60], epochs=8, lr=0.05, target_train_acc=0.6,
                     **changes)


def weights(run_dir):
    return torch.load(run_dir / "weights.pt", weights_only=True)


def gap(a: dict, b: dict, dir_a, dir_b) -> float:
    """Largest difference of two runs' accuracies and weights (inf where they diverge differently)."""
    if a["diverged"] or b["diverged"]:
        return 0.0 if a["diverged"] == b["diverged"] and not (dir_a / "weights.pt").exists() else float("inf")
    wa, wb = weights(dir_a), weights(dir_b)
    return max([abs(a[k] - b[k]) for k in ("train_acc", "test_acc")] + [(wa[k] - wb[k]).abs().max().item() for k in wa])


def test_stack_key_groups_one_architecture_and_batch_size_with_dropout_and_decay_per_member(tmp_path):
    ctx = small_ctx(tmp_path, weight_decay=[0.0, 0.01])
    groups = {}
    for spec in T.plan(ctx):
        groups.setdefault(json.dumps(T.stack_key(ctx, spec), sort_keys=True), []).append(spec.args)
    assert len(groups) == len(ctx.cfg.blocks) * len(ctx.cfg.batch_size) == 4
    for members in groups.values():
        assert {(m["dropout"], m["weight_decay"]) for m in members} == {(0.0, 0.0), (0.0, 0.01), (0.5, 0.0),
                                                                       (0.5, 0.01)}
    assert T.stack_key(replace(ctx, cfg=replace(ctx.cfg, pgdl_task="x")), T.plan(ctx)[0]) is None


def test_a_stacked_group_gives_each_member_run_ones_record_and_weights(tmp_path):
    ctx = target_ctx(tmp_path)
    data = T.load_data(ctx)
    args = [hp for hp in sp.grid(ctx.cfg) if hp["batch_size"] == 32]
    records, pairs = group_and_alone(T, ctx, data, args, tmp_path)
    assert [r["epochs_run"] for r in records if not r["diverged"]] == [5, 6, 8, 6]
    assert [r["diverged"] for r in records] == [False, False, True, False, False, True]
    for hp, rec, ref, d, alone in pairs:
        assert list(rec) == list(ref)  # same keys, same order
        assert {k: v for k, v in rec.items() if k not in ("train_s", "train_acc", "test_acc")} == \
               {k: v for k, v in ref.items() if k not in ("train_s", "train_acc", "test_acc")}
        assert gap(rec, ref, d, alone) <= TOL, hp
        assert not (d / "checkpoint.pt").exists()
    # the check can fail: the same grid points under another seed set are other runs
    other = replace(ctx, cfg=replace(ctx.cfg, seed_base=1000))
    d = tmp_path / "other"
    d.mkdir()
    moved = T.run_one(other, d, data, **args[0])
    assert moved["seed"] != records[0]["seed"] and gap(moved, records[0], d, pairs[0][3]) > 1e-3


def test_the_executor_trains_groups_of_stack_runs_with_the_records_of_the_runs_alone(tmp_path):
    runs = executed_alone_and_stacked(T, target_ctx(tmp_path / "alone"), target_ctx(tmp_path / "stacked"),
                                      "simpson_paradox", 4)
    assert len(runs) == 12 and sum(b.record["diverged"] for _, b, _ in runs) == 4
    for a, b, ends in runs:
        assert gap(a.record, b.record, a.dir, b.dir) <= TOL, a.label
        assert a.record.get("epochs_run") == b.record.get("epochs_run")
        assert [e["stacked"] for e in ends] in ([4], [2])  # groups of 6 in chunks of stack_runs 4: 4 + 2
        assert ends[0]["engine"]["stacked"] == ends[0]["stacked"]
