"""Stacked runs for neural_collapse (issue 23 item 3): the seeds of one width and loss train as one stacked
ResNet-18 (BatchNorm, residual adds, summed loss, grad-norm clipping, step lr decay), each member's collapse
history, accuracies, features and weights equal to run_one's (float64, ≤ 1e-12), the collapse probe a member's
callback; a group killed mid-run resumes every member from its own checkpoint; and through the executor with
engine stack_runs: 4, the same records as unstacked."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from claim_stacking import executed_alone_and_stacked, group_and_alone, member_dirs

import claimbench.claims.neural_collapse as nc
from claimbench.claims.neural_collapse import train as T
from claimbench.params import ExecutorParams, build_config
from claimbench.stage import make_context
from claimbench.sweep import CHECKPOINT

REPO = Path(__file__).resolve().parents[1]
TOL = 1e-12
RAW = {"train_per_class": 4, "test_per_class": 4, "widths": [0.03125, 0.0625], "stem_stride": 2, "epochs": 7,
       "batch_size": 8, "lr": 0.05, "weight_decay": 0.005, "loss_reduction": "sum", "grad_clip": 2.0,
       "seeds": [0, 1, 2], "other_width_seeds": 1, "nc_points": 3}

pytestmark = pytest.mark.usefixtures("float64_one_thread")


def ctx_for(root, **changes):
    """ci's claim at two widths (three seeds at the largest, one at the other) in folder `root` on the CPU, its
    runs in this process."""
    ctx = make_context("neural_collapse", "ci", str(REPO / "params.yaml"), root)
    return dataclasses.replace(ctx, cfg=build_config(nc.Config, {**RAW, **changes}, "neural_collapse.ci"),
                               params=dataclasses.replace(ctx.params, executor=ExecutorParams(workers=1)),
                               device=torch.device("cpu"))


def gap(a: dict, b: dict, dir_a, dir_b) -> float:
    """Largest difference of two runs' records (history, final metrics, accuracies) and saved tensors."""
    diffs = [abs(a[k] - b[k]) for k in ("test_acc", "test_loss")]
    diffs += [abs(a["final"][k] - b["final"][k]) for k in a["final"]]
    assert [r["epoch"] for r in a["history"]] == [r["epoch"] for r in b["history"]]
    diffs += [abs(ra[k] - rb[k]) for ra, rb in zip(a["history"], b["history"]) for k in ra]
    for name in ("features.pt", "model.pt"):
        ta, tb = (torch.load(d / name, weights_only=True) for d in (dir_a, dir_b))
        diffs += [(ta[k].double() - tb[k].double()).abs().max().item() for k in ta]
    return max(diffs)


def test_stack_key_groups_the_seeds_of_one_width_and_loss(tmp_path):
    ctx = ctx_for(tmp_path)
    groups = {}
    for spec in T.plan(ctx):
        groups.setdefault(json.dumps(T.stack_key(ctx, spec), sort_keys=True), []).append(spec.args["seed"])
    assert len(groups) == 4 + 5  # w 1/32: ce ls fl mse; w 1/16 (the largest) also LS at the secondary alpha
    assert sorted(groups.values()) == [[0]] * 4 + [[0, 1, 2]] * 5


@pytest.mark.parametrize("variant", ["fl", "mse"])
def test_a_stacked_group_gives_each_member_run_ones_record_features_and_weights(tmp_path, variant):
    ctx = ctx_for(tmp_path)
    data = T.load_data(ctx)
    args = [{"width": 0.0625, "seed": s, "variant": variant} for s in (0, 1, 2)]
    records, pairs = group_and_alone(T, ctx, data, args, tmp_path)
    for a, rec, ref, d, alone in pairs:
        assert list(rec) == list(ref) and len(rec["history"]) == len(nc.measure_epochs(ctx.cfg))
        assert gap(rec, ref, d, alone) <= TOL, a
        assert not (d / CHECKPOINT).exists()
    # the check can fail: another seed is another run
    assert gap(records[0], records[1], pairs[0][3], pairs[1][3]) > 1e-3


def test_a_killed_stacked_group_resumes_every_member_from_its_checkpoint(tmp_path, monkeypatch):
    """Kill the group after epoch 3 (checkpoints every epoch at 7 epochs); the rerun resumes every member,
    probe records included, and ends where an uninterrupted group ends."""
    ctx = ctx_for(tmp_path)
    data = T.load_data(ctx)
    args = [{"width": 0.0625, "seed": s, "variant": "ce"} for s in (0, 1, 2)]
    whole = member_dirs(tmp_path / "whole", 3)
    ref = T.run_group(ctx, whole, data, args)

    class Killed(Exception):
        pass

    real = T.CollapseProbe.on_epoch_end

    def kill_at_epoch_4(self, state):
        if state.epoch == 4:
            raise Killed
        real(self, state)

    killed = member_dirs(tmp_path / "killed", 3)
    monkeypatch.setattr(T.CollapseProbe, "on_epoch_end", kill_at_epoch_4)
    with pytest.raises(Killed):
        T.run_group(ctx, killed, data, args)
    monkeypatch.setattr(T.CollapseProbe, "on_epoch_end", real)
    assert all(torch.load(d / CHECKPOINT, weights_only=False)["epoch"] == 3 for d in killed)
    resumed = T.run_group(ctx, killed, data, args)
    for a, b, da, db in zip(ref, resumed, whole, killed):
        assert gap(a, b, da, db) <= TOL


def test_the_executor_trains_groups_of_stack_runs_with_the_records_of_the_runs_alone(tmp_path):
    runs = executed_alone_and_stacked(T, ctx_for(tmp_path / "alone", epochs=3), ctx_for(tmp_path / "stacked", epochs=3),
                                      "neural_collapse", 3)
    assert len(runs) == 4 + 15  # w 1/32: 4 losses x 1 seed; w 1/16: 5 (LS at two alphas) x 3
    for a, b, ends in runs:
        assert gap(a.record, b.record, a.dir, b.dir) <= TOL, a.label
        width = b.record["width"]
        assert [e.get("stacked") for e in ends] == ([3] if width == 0.0625 else [None]), a.label
