"""Stacked runs (claimbench.stack): each member of a stacked group is the run `fit` trains alone, to float64
round-off (≤ 1e-12), with lr decay, BatchNorm, clipping, dropout under per-member generators, augmentation, a
resume mid-run and a killed group; members keep their own checkpoints in fit's format. Members may have their own
dropout probability, weight decay and stop_when (a stopped member leaves, the rest restack), and a member that
diverges leaves without harming the others."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn as nn

from claimbench.errors import CacheError, TrainingDiverged
from claimbench.stack import NotStackable, fit_stacked, stack_models, stackable
from claimbench.train import TrainConfig, evaluate, fit, seed_everything

TOL = 1e-12


pytestmark = pytest.mark.usefixtures("float64_one_thread")  # conftest: exact comparisons


class Net(nn.Module):
    """Conv → BN → ReLU → pool → (residual conv) → flatten → Linear → Dropout → Linear: every stacked layer kind,
    with a custom forward (a residual add, torch.flatten)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3, momentum=0.2)
        self.res = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(3 * 4 * 4, 12)
        self.bn1 = nn.BatchNorm1d(12)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(12, 4)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))
        h = self.pool(h + self.res(h))
        h = self.drop(torch.relu(self.bn1(self.fc(torch.flatten(h, 1)))))
        return self.head(h)


def net(seed):
    seed_everything(seed)
    return Net()


def data(seed, n=70):
    g = torch.Generator().manual_seed(100 + seed)
    x = torch.randn(n, 2, 8, 8, generator=g)
    return x, (x[:, 0].mean((1, 2)) > 0).long() + 2 * (x[:, 1].mean((1, 2)) > 0).long()


CFG = TrainConfig(epochs=3, batch_size=16, lr=0.05, momentum=0.9, weight_decay=1e-3, schedule="exp", gamma=0.8,
                  augment="crop_flip", grad_clip=0.3)
SEEDS = [3, 11, 5]


def flat(m):
    return torch.cat([v.detach().double().flatten() for v in m.state_dict().values()])


def alone(k, cfg=CFG, **kw):
    m = net(k)
    state = fit(m, data(k), cfg, seed=SEEDS[k], desc=f"m{k}", eval_sets={"train": data(k)}, **kw)
    return m, state


def stacked(cfg=CFG, checkpoints=None, members=None):
    members = members or [net(k) for k in range(3)]
    states = fit_stacked(members, [data(k) for k in range(3)], cfg, seeds=SEEDS, descs=[f"m{k}" for k in range(3)],
                         eval_sets=[{"train": data(k)} for k in range(3)], checkpoints=checkpoints)
    return members, states


@pytest.mark.parametrize("cfg", [CFG, TrainConfig(epochs=99, steps=8, batch_size=32, lr=0.003, optimizer="adamw",
                                                  weight_decay=0.05, schedule="cosine", warmup_steps=2,
                                                  augment="crop", grad_clip=1.0)], ids=["sgd", "adamw"])
def test_each_stacked_member_equals_its_run_trained_alone(cfg):
    """≤ 1e-12 everywhere, except under Adam for a bias feeding straight into BatchNorm (conv.bias, fc.bias) and
    the BN mean it shifts: its gradient is zero analytically, so both runs hold round-off noise (~1e-17) that
    Adam's g/(√v + eps) scales by lr/eps to ~1e-11; SGD leaves it at round-off."""
    members, states = stacked(cfg)
    noisy = {"conv.bias", "fc.bias", "bn.running_mean", "bn1.running_mean"} if cfg.optimizer == "adamw" else set()
    for k in range(3):
        ref, ref_state = alone(k, cfg)
        a, b = ref.state_dict(), members[k].state_dict()
        for name in a:  # weights and BN statistics
            assert (a[name].double() - b[name].double()).abs().max() <= (1e-9 if name in noisy else TOL), name
        assert states[k].step == ref_state.step and states[k].epoch == ref_state.epoch
        assert states[k].history[-1]["train_acc"] == ref_state.history[-1]["train_acc"]
        assert states[k].last_loss == pytest.approx(ref_state.last_loss, abs=TOL)


def test_channels_last_stacking_still_equals_the_runs_alone():
    """Stacked in channels_last, dropout masks are still drawn per member in logical order: round-off only."""
    members = [net(k) for k in range(3)]
    fit_stacked(members, [data(k) for k in range(3)], CFG, seeds=SEEDS, descs=[f"m{k}" for k in range(3)],
                channels_last=True)
    for k in range(3):
        assert (flat(alone(k)[0]) - flat(members[k])).abs().max() <= TOL


def test_members_differ_from_each_other_and_the_check_can_fail():
    """The members really are different runs (own seeds, data, masks), and a run one step short is caught."""
    members, _ = stacked()
    assert (flat(members[0]) - flat(members[1])).abs().max() > 1e-3
    short, _ = alone(0, TrainConfig(**{**CFG.__dict__, "steps": CFG.total_steps(70) - 1}))
    assert (flat(short) - flat(members[0])).abs().max() > 1e-6


class Kill(Exception):
    pass


def test_a_killed_group_resumes_every_member_to_the_uninterrupted_runs(tmp_path, monkeypatch):
    """Kill the group after epoch 1's checkpoints: a stacked resume of all three from their own files gives the
    runs trained alone without interruption; and one member resumed alone by `fit` from its stacked checkpoint
    gives the same (the files are fit's format)."""
    import claimbench.stack as stack

    cks = [tmp_path / f"run{k}" / "checkpoint.pt" for k in range(3)]
    real_save, calls = stack._atomic_save, []

    def save_then_kill(obj, path):
        real_save(obj, path)
        calls.append(path)
        if len(calls) == 3:  # epoch 1's three member checkpoints are written
            raise Kill

    monkeypatch.setattr(stack, "_atomic_save", save_then_kill)
    with pytest.raises(Kill):
        stacked(checkpoints=cks)
    monkeypatch.setattr(stack, "_atomic_save", real_save)
    assert all(torch.load(c, weights_only=True)["epoch"] == 1 for c in cks)
    solo_ck = tmp_path / "solo.pt"
    solo_ck.write_bytes(cks[2].read_bytes())
    members, states = stacked(checkpoints=cks, members=[net(50 + k) for k in range(3)])  # init from the files
    for k in range(3):
        ref, _ = alone(k)
        assert (flat(ref) - flat(members[k])).abs().max() <= TOL
        assert [h["epoch"] for h in states[k].history] == [3]
    solo = net(77)
    fit(solo, data(2), CFG, seed=SEEDS[2], desc="m2", eval_sets={"train": data(2)}, checkpoint=solo_ck)
    assert (flat(solo) - flat(alone(2)[0])).abs().max() <= TOL


def test_foreign_or_partial_checkpoints_are_not_resumed_stacked(tmp_path):
    cks = [tmp_path / f"c{k}.pt" for k in range(3)]
    _, _ = stacked(TrainConfig(**{**CFG.__dict__, "epochs": 1}), checkpoints=cks[:3])
    with pytest.raises(CacheError):  # a 1-epoch run's checkpoint is another run's (config hash)
        stacked(checkpoints=cks)
    cks[0].unlink()
    with pytest.raises(NotStackable):
        stacked(checkpoints=cks)


# ---------------------------------------------------------------- members with their own dropout, weight decay,
# stopping rule; a member that diverges (Simpson's grid: one architecture and batch size, dropout × decay inside)

PS, DECAYS = [0.0, 0.6, 0.3], [0.0, 0.05, 1e-3]
CAP = TrainConfig(**{**CFG.__dict__, "epochs": 4})


def stop_rule(k):
    """Member 0 stops after epoch 1, member 1 when its training accuracy reaches 0.38 (epoch 3), member 2 never."""
    return [lambda st: st.epoch >= 1, lambda st: evaluate(st.model, *data(1))["acc"] >= 0.38, None][k]


def own(k, init=None):
    m = net(k if init is None else init)
    m.drop.p = PS[k]
    return m


def own_alone(k, **kw):
    m = own(k)
    state = fit(m, data(k), replace(CAP, weight_decay=DECAYS[k]), seed=SEEDS[k], desc=f"m{k}",
                eval_sets={"train": data(k)}, stop_when=stop_rule(k), **kw)
    return m, state


def nan_data():
    x, y = data(0)
    x = x.clone()
    x[0, 1, 2, 3] = float("nan")
    return x, y


def own_stacked(members=None, checkpoints=None, diverging=False, **kw):
    members = members or [own(k) for k in range(3)]
    trains, seeds = [data(k) for k in range(3)], list(SEEDS)
    decays, stops = list(DECAYS), [stop_rule(k) for k in range(3)]
    if diverging:  # a fourth member whose data hold a NaN: its loss is NaN from the first step
        members, trains, seeds = [*members, net(9)], [*trains, nan_data()], [*seeds, 13]
        decays, stops = [*decays, 0.0], [*stops, None]
    states = fit_stacked(members, trains, CAP, seeds=seeds, descs=[f"m{k}" for k in range(len(members))],
                         eval_sets=[{"train": t} for t in trains], checkpoints=checkpoints, weight_decays=decays,
                         stop_when=stops, **kw)
    return members, states


def test_members_with_their_own_dropout_decay_and_stopping_equal_their_runs_alone_and_one_may_diverge(tmp_path):
    cks = [tmp_path / f"run{k}" / "checkpoint.pt" for k in range(4)]
    members, states = own_stacked(checkpoints=cks, diverging=True, diverged="return")
    for k in range(3):
        ref, ref_state = own_alone(k)
        assert (flat(ref) - flat(members[k])).abs().max() <= TOL, k
        assert states[k].epoch == ref_state.epoch == [1, 3, 4][k] and states[k].step == ref_state.step
        assert [h["train_acc"] for h in states[k].history] == [h["train_acc"] for h in ref_state.history]
        assert torch.load(cks[k], weights_only=True)["stopped"] == (k < 2)  # stopped runs' files say so, as fit's
    with pytest.raises(TrainingDiverged, match="epoch 1") as alone_err:
        fit(net(9), nan_data(), CAP, seed=13, desc="m3")
    assert isinstance(states[3], TrainingDiverged) and str(states[3]) == str(alone_err.value)
    assert not cks[3].exists()  # no checkpoint of the diverged epoch (fit writes none either)
    with pytest.raises(TrainingDiverged):  # the default: a diverged member stops the group, as fit
        own_stacked(diverging=True)
    m = own(1)  # the check can fail: member 1 trained alone with the group's first decay is another run
    fit(m, data(1), CAP, seed=SEEDS[1], desc="m1", stop_when=stop_rule(1))
    assert (flat(m) - flat(members[1])).abs().max() > 1e-6


def test_a_group_killed_after_a_member_stopped_resumes_to_the_runs_alone(tmp_path, monkeypatch):
    """Killed after epoch 2's checkpoints (member 0 stopped at epoch 1): the stopped member finishes from its
    file, the other two resume stacked; member 1's file, resumed alone by fit, keeps its own weight decay."""
    import claimbench.stack as stack

    cks = [tmp_path / f"run{k}" / "checkpoint.pt" for k in range(3)]
    real_save, calls = stack._atomic_save, []

    def save_then_kill(obj, path):
        real_save(obj, path)
        calls.append(path)
        if len(calls) == 5:  # epoch 1: members 0 (stopped), 1, 2; epoch 2: members 1, 2
            raise Kill

    monkeypatch.setattr(stack, "_atomic_save", save_then_kill)
    with pytest.raises(Kill):
        own_stacked(checkpoints=cks)
    monkeypatch.setattr(stack, "_atomic_save", real_save)
    assert [torch.load(c, weights_only=True)["epoch"] for c in cks] == [1, 2, 2]
    solo_ck = tmp_path / "solo.pt"
    solo_ck.write_bytes(cks[1].read_bytes())
    members, states = own_stacked(checkpoints=cks, members=[own(k, init=50 + k) for k in range(3)])
    for k in range(3):
        ref, ref_state = own_alone(k)
        assert (flat(ref) - flat(members[k])).abs().max() <= TOL, k
        assert states[k].epoch == ref_state.epoch
    solo, _ = own_alone(1, checkpoint=solo_ck)
    assert (flat(solo) - flat(own_alone(1)[0])).abs().max() <= TOL


def test_what_does_not_stack():
    assert stackable(Net()) and not stackable(nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3)))
    with pytest.raises(NotStackable):
        stack_models([nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))] * 2, [torch.Generator()] * 2)
    with pytest.raises(NotStackable):
        stack_models([nn.Sequential(nn.Linear(3, 3)), nn.Sequential(nn.Linear(3, 4))], [torch.Generator()] * 2)


# ---------------------------------------------------------------- the executor trains stacked groups
# (this module doubles as a claim train side: load_data, plan, run_one, stack_key, run_group)


def load_data(ctx):
    return data(0)


def plan(ctx):
    from claimbench.contract import RunSpec

    runs = [RunSpec({"seed": s, "width": 3}, f"seed={s}", {"seed": s}) for s in SEEDS]
    return runs + [RunSpec({"seed": 7, "width": 3, "solo": True}, "solo", {"seed": 7})]


def stack_key(ctx, spec):
    return None if spec.key.get("solo") else {"width": spec.key["width"]}


def run_one(ctx, run_dir, train, seed):
    m = net(seed)
    fit(m, train, CFG, seed=seed, desc=f"s{seed}", checkpoint=run_dir / "checkpoint.pt")
    return {"w": flat(m).tolist()}


def run_group(ctx, run_dirs, train, args):
    members = [net(a["seed"]) for a in args]
    fit_stacked(members, [train] * len(args), CFG, seeds=[a["seed"] for a in args],
                descs=[f"s{a['seed']}" for a in args], checkpoints=[d / "checkpoint.pt" for d in run_dirs])
    return [{"w": flat(m).tolist()} for m in members]


def _ctx(root, stack_runs):
    from claimbench.contract import Context
    from claimbench.params import DataParams, EngineSettings, ExecutorParams, Params

    params = Params("ci", DataParams(device="cpu"), {}, {}, ExecutorParams(workers=1),  # in process: patched
                    engine={"fake": EngineSettings(stack_runs=stack_runs)})
    return Context("fake", "ci", None, params, torch.device("cpu"), root)


def test_executor_trains_a_stacked_group_whose_members_equal_the_runs_alone_and_resumes_a_killed_group(
        tmp_path, monkeypatch):
    import json
    import sys

    import claimbench.stack as stack
    from claimbench.executor import ATTEMPTS, SweepFailed, execute

    me = sys.modules[__name__]
    ref = {r.label: torch.tensor(r["w"]) for r in execute(_ctx(tmp_path / "alone", 0), me).records}
    real_save = stack._atomic_save
    saved = []

    def save_then_kill(obj, path):
        real_save(obj, path)
        saved.append(path)
        if len(saved) == 3:
            raise Kill("killed after epoch 1's checkpoints")

    monkeypatch.setattr(stack, "_atomic_save", save_then_kill)
    with pytest.raises(SweepFailed, match="stack×3"):
        execute(_ctx(tmp_path / "stacked", 3), me)
    monkeypatch.setattr(stack, "_atomic_save", real_save)
    report = execute(_ctx(tmp_path / "stacked", 3), me)
    assert report.submitted == 3  # the solo run finished in the first call; the group's three are resumed
    for r in report.records:
        assert (torch.tensor(r["w"]) - ref[r.label]).abs().max() <= TOL, r.label
        if r.label != "solo":
            lines = [json.loads(x) for x in (r.dir / ATTEMPTS).read_text().splitlines()]
            assert [x.get("stacked") for x in lines] == [3, 3, 3]  # killed start, resumed start, end
            assert lines[1]["resumed_from_checkpoint"] is True


def test_a_stacked_groups_progress_label_names_what_its_members_share_once():
    from claimbench.executor import stack_label

    labels = [f"blocks=1 dropout={p} weight_decay={w} batch_size=16" for p in ("0.0", "0.25") for w in ("0.0", "0.001")]
    assert stack_label(labels) == "stack×4 [blocks=1 batch_size=16; dropout∈{0.0, 0.25} weight_decay∈{0.0, 0.001}]"
    assert stack_label(["seed 1", "seed 2"]) == "stack×2 [seed 1, seed 2]"  # not key=value: joined whole
    assert stack_label(["a=1 b=2", "a=1 c=2"]) == "stack×2 [a=1 b=2, a=1 c=2]"  # different keys: joined whole
