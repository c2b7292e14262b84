"""Stacked runs for heavy_tail_phases (issue 23 item 3): the seeds of one batch size train as one stacked MLP3
(exp lr decay, MSE on softmax, the train/test evaluation at the end), each member's record and weights equal
to run_one's (float64, ≤ 1e-12), MiniAlexNet's too; a killed group resumes every member; with engine
stack_runs: 3 the executor's records equal the unstacked ones."""

import dataclasses
from pathlib import Path

import pytest
import torch
from claim_stacking import executed_alone_and_stacked, group_and_alone, member_dirs

from claimbench import stage
from claimbench.claims import heavy_tail_phases as claim
from claimbench.claims.heavy_tail_phases import train as T
from claimbench.params import ExecutorParams, build_config
from claimbench.sweep import CHECKPOINT

REPO = Path(__file__).resolve().parents[1]
TOL = 1e-12
RAW = {"dataset": "fashion-mnist", "train_per_class": 4, "test_size": 30, "batch_sizes": [8, 20],
       "seeds": [0, 1, 2], "epochs": 3, "lr": 0.1, "model": "mlp3"}

pytestmark = pytest.mark.usefixtures("float64_one_thread")


def ctx_for(root, **changes):
    """The ci context in folder `root`, MLP3 on 40 images, its runs in this process."""
    ctx = stage.make_context(claim.CLAIM_ID, "ci", root=REPO)
    return dataclasses.replace(ctx, root=root, cfg=build_config(claim.Config, {**RAW, **changes}, "x"),
                               params=dataclasses.replace(ctx.params, executor=ExecutorParams(workers=1)))


def gap(a: dict, b: dict, dir_a, dir_b) -> float:
    wa, wb = (torch.load(d / "model.pt", weights_only=True) for d in (dir_a, dir_b))
    assert (a["steps"], a["epochs"]) == (b["steps"], b["epochs"])
    return max([abs(a[k] - b[k]) for k in ("train_acc", "test_acc", "train_loss")] +
               [(wa[k] - wb[k]).abs().max().item() for k in wa])


def test_a_stacked_group_gives_each_member_run_ones_record_and_weights(tmp_path):
    ctx = ctx_for(tmp_path)
    data = T.load_data(ctx)
    args = [{"batch_size": 8, "seed": s} for s in (0, 1, 2)]
    records, pairs = group_and_alone(T, ctx, data, args, tmp_path)
    for a, rec, ref, d, alone in pairs:
        assert list(rec) == list(ref)
        assert gap(rec, ref, d, alone) <= TOL, a
        assert not (d / CHECKPOINT).exists()
    assert gap(records[0], records[1], pairs[0][3], pairs[1][3]) > 1e-3  # the check can fail: another seed


def test_a_killed_stacked_group_resumes_every_member(tmp_path, monkeypatch):
    """Checkpoints every epoch; the group is killed in epoch 3 (after epoch 2's checkpoints) and rerun."""
    ctx = ctx_for(tmp_path)
    data = T.load_data(ctx)
    args = [{"batch_size": 8, "seed": s} for s in (0, 1, 2)]
    whole = member_dirs(tmp_path / "whole", 3)
    ref = T.run_group(ctx, whole, data, args)

    class Killed(Exception):
        pass

    import claimbench.stack as S

    real = S.lr_at
    steps_per_epoch = 40 // 8

    def kill_in_epoch_3(cfg, step, total, spe):
        if step == 2 * steps_per_epoch + 1:
            raise Killed
        return real(cfg, step, total, spe)

    killed = member_dirs(tmp_path / "killed", 3)
    monkeypatch.setattr(S, "lr_at", kill_in_epoch_3)
    with pytest.raises(Killed):
        T.run_group(ctx, killed, data, args)
    monkeypatch.setattr(S, "lr_at", real)
    assert all(torch.load(d / CHECKPOINT, weights_only=False)["epoch"] == 2 for d in killed)
    resumed = T.run_group(ctx, killed, data, args)
    for a, b, da, db in zip(ref, resumed, whole, killed):
        assert gap(a, b, da, db) <= TOL


def test_minialexnet_stacks_too_each_member_its_run_alone(tmp_path):
    ctx = ctx_for(tmp_path, model="mini_alexnet", epochs=1, batch_sizes=[20, 40], seeds=[0, 1])
    data = T.load_data(ctx)
    args = [{"batch_size": 20, "seed": s} for s in (0, 1)]
    for a, rec, ref, d, alone in group_and_alone(T, ctx, data, args, tmp_path)[1]:
        assert gap(rec, ref, d, alone) <= TOL, a


def test_the_executor_trains_groups_of_stack_runs_with_the_records_of_the_runs_alone(tmp_path):
    runs = executed_alone_and_stacked(T, ctx_for(tmp_path / "alone"), ctx_for(tmp_path / "stacked"), claim.CLAIM_ID, 3)
    assert len(runs) == 6
    for a, b, ends in runs:
        assert gap(a.record, b.record, a.dir, b.dir) <= TOL, a.label
        assert [e["stacked"] for e in ends] == [3]
