"""The training engine (issue 23): the sync-free loop equals the loop it replaced bit for bit on CPU; the knobs
(fused optimiser, channels_last, CUDA graphs with its eager fallback) are switched by params.yaml `engine:` and
recorded; bad engine settings are one ParamsError line."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import yaml

from claimbench import engine as engines
from claimbench.errors import ParamsError
from claimbench.numerics import upcast
from claimbench.params import EngineSettings, build_engine, load_params
from claimbench.train import (
    Callback,
    TrainConfig,
    augment_batch,
    autocast,
    cross_entropy,
    fit,
    lr_at,
    make_optimizer,
    seed_everything,
)

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("float64_one_thread")  # conftest: exact comparisons


def legacy_fit(model: nn.Module, train, cfg: TrainConfig, seed: int, loss_fn=cross_entropy) -> list[float]:
    """The step loop of train.fit before issue 23, copied verbatim (an index copy and augmentation draws per
    step); returns the per-epoch mean losses."""
    x, y = train
    device = next(model.parameters()).device
    n = len(x)
    spe, total = cfg.steps_per_epoch(n), cfg.total_steps(n)
    g = torch.Generator().manual_seed(int(seed))
    opt = make_optimizer(model, cfg)
    torch.manual_seed(int(seed) + 1)
    model.train()
    step, losses, done = 0, [], False
    while not done:
        perm = torch.randperm(n, generator=g)
        loss_sum, loss_count = torch.zeros((), device=device), 0
        for b in range(spe):
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size].to(device)
            xb, yb = x[idx], y[idx]
            xb = augment_batch(xb, cfg.augment, g)
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, step, total, spe)
            with autocast(device):
                out = model(xb)
            loss = loss_fn(upcast(out), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            loss_sum += loss.detach()
            loss_count += 1
            if step >= total:
                done = True
                break
        losses.append(float(loss_sum / max(loss_count, 1)))
    model.eval()
    return losses


def data(n=90):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, 8, 8, generator=g)
    return x, (x.mean((1, 2, 3)) > 0).long() + 2 * (x[:, 0].mean((1, 2)) > 0).long()


def convnet(seed=0):
    """Conv, BatchNorm, dropout and a linear head: every state the loop must carry (float64)."""
    seed_everything(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3),
                         nn.Flatten(), nn.Linear(4 * 64, 4))


def weights(m):
    return torch.cat([v.detach().double().flatten() for v in m.state_dict().values()])


# exp decay per epoch, crop+flip augmentation, clipping, a short last batch, and a stop in mid-epoch (steps)
RECIPES = {
    "sgd-exp-crop_flip-clip": TrainConfig(epochs=3, batch_size=16, lr=0.05, schedule="exp", gamma=0.7,
                                          augment="crop_flip", grad_clip=0.5, weight_decay=1e-3),
    "adamw-cosine-crop-steps": TrainConfig(epochs=99, steps=13, batch_size=32, lr=0.01, optimizer="adamw",
                                           schedule="cosine", warmup_steps=3, augment="crop"),
    "sgd-step-droplast": TrainConfig(epochs=4, batch_size=20, lr=0.05, nesterov=True, schedule="step",
                                     milestones=(0.5,), drop_last=True),
}


@pytest.mark.parametrize("name", RECIPES)
def test_new_loop_equals_the_old_one_bit_for_bit_on_cpu(name):
    cfg = RECIPES[name]
    old, new = convnet(), convnet()
    old_losses = legacy_fit(old, data(), cfg, seed=3)
    state = fit(new, data(), cfg, seed=3)
    assert torch.equal(weights(old), weights(new))  # BN running stats included
    assert state.last_loss == old_losses[-1]
    assert state.engine == {"engine_version": engines.ENGINE_VERSION, "fused_optimizer": False,
                            "channels_last": False, "cuda_graphs": "off"}


def test_the_equality_check_can_fail():
    """The comparison above sees a one-step difference (a test that cannot fail is a defect)."""
    cfg = RECIPES["sgd-exp-crop_flip-clip"]
    old, new = convnet(), convnet()
    legacy_fit(old, data(), cfg, seed=3)
    fit(new, data(), dataclasses.replace(cfg, steps=cfg.total_steps(90) - 1), seed=3)
    assert not torch.equal(weights(old), weights(new))


class Kill(Callback):
    def on_epoch_end(self, state):
        if state.epoch == 2:
            raise KeyboardInterrupt


def test_resume_with_knobs_on_equals_an_uninterrupted_run(tmp_path):
    on = EngineSettings(fused_optimizer=True, channels_last=True)
    cfg = RECIPES["sgd-exp-crop_flip-clip"]
    ref = convnet()
    fit(ref, data(), cfg, seed=1, engine=on)
    ck = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(convnet(), data(), cfg, seed=1, engine=on, checkpoint=ck, callbacks=[Kill()])
    resumed = convnet(seed=9)
    fit(resumed, data(), cfg, seed=1, engine=on, checkpoint=ck)
    assert torch.equal(weights(ref), weights(resumed))


def test_fused_optimizer_trains_the_same_run_to_round_off():
    cfg = RECIPES["adamw-cosine-crop-steps"]
    plain, fused = convnet(), convnet()
    fit(plain, data(), cfg, seed=2)
    state = fit(fused, data(), cfg, seed=2, engine=EngineSettings(fused_optimizer=True))
    assert state.engine["fused_optimizer"] is True
    torch.testing.assert_close(weights(plain), weights(fused), rtol=1e-6, atol=1e-8)  # Adam: eps-sized v


def test_channels_last_is_round_off_without_dropout_and_redraws_dropout_masks():
    """channels_last changes the kernels (round-off) and, with dropout, the masks: a Bernoulli mask is drawn
    in memory order, so the same seed gives a different (equally valid) run."""
    cfg = RECIPES["sgd-exp-crop_flip-clip"]
    on = EngineSettings(channels_last=True)
    seed_everything(0)
    plain = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(256, 4))
    seed_everything(0)
    knobs = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(256, 4))
    fit(plain, data(), cfg, seed=2)
    state = fit(knobs, data(), cfg, seed=2, engine=on)
    assert state.engine["channels_last"] is True and knobs[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(weights(plain), weights(knobs), rtol=1e-9, atol=1e-12)
    with_dropout, with_dropout_cl = convnet(), convnet()
    fit(with_dropout, data(), cfg, seed=2)
    fit(with_dropout_cl, data(), cfg, seed=2, engine=on)
    assert (weights(with_dropout) - weights(with_dropout_cl)).abs().max() > 1e-6


def test_channels_last_is_ignored_for_inputs_that_are_not_images():
    seed_everything(0)
    net = nn.Sequential(nn.Linear(5, 3))
    x = torch.randn(40, 5)
    state = fit(net, (x, (x[:, 0] > 0).long()), TrainConfig(epochs=1, batch_size=8, lr=0.1), seed=0,
                engine=EngineSettings(channels_last=True))
    assert state.engine["channels_last"] is False


def test_cuda_graphs_on_cpu_runs_eager_and_says_why():
    plain, asked = convnet(), convnet()
    cfg = RECIPES["sgd-step-droplast"]
    fit(plain, data(), cfg, seed=0)
    state = fit(asked, data(), cfg, seed=0, engine=EngineSettings(cuda_graphs=True))
    assert state.engine["cuda_graphs"] == "eager: cuda_graphs needs a CUDA device"
    assert torch.equal(weights(plain), weights(asked))


class _Broken:
    """A 'compiled' forward that fails on its first call, as a failed CUDA-graph capture would, after
    disturbing the states the fallback must restore (the model's BN statistics, the global RNG)."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, xb):
        self.calls += 1
        self.model(xb)  # updates BN running stats and draws dropout masks
        torch.rand(3)
        raise RuntimeError("CUDA graph capture failed (simulated)")


def test_failed_capture_falls_back_to_eager_with_the_states_restored():
    """The fallback logic, on CPU: the engine is told it has a graphed forward that fails at the first step;
    the run must equal a plain eager run bit for bit and record why it fell back."""
    cfg = RECIPES["sgd-exp-crop_flip-clip"]
    plain, model = convnet(), convnet()
    fit(plain, data(), cfg, seed=4)
    torch.manual_seed(5)  # fit reseeds the global RNG itself
    fe = engines.FitEngine(EngineSettings(cuda_graphs=True), model, torch.device("cpu"), data()[0], "sgd",
                           compiler=_Broken)
    assert fe.graphs == "eager: cuda_graphs needs a CUDA device"  # on CPU the compiler is never asked
    fe.graphs, fe.forward = "on", _Broken(model)  # as on CUDA: the graphed forward is in place
    opt = make_optimizer(model, cfg)
    torch.manual_seed(4 + 1)
    xb, yb = data()[0][:16], data()[1][:16]
    model.train()

    def step(forward, xb, yb):
        loss = cross_entropy(forward(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    ref = convnet()
    ref_opt = make_optimizer(ref, cfg)
    torch.manual_seed(5)
    ref.train()
    loss_ref = cross_entropy(ref(xb), yb)
    ref_opt.zero_grad()
    loss_ref.backward()
    ref_opt.step()
    torch.manual_seed(5)
    loss = fe.run_step(step, xb, yb, opt)
    assert fe.graphs.startswith("fallback to eager: RuntimeError: CUDA graph capture failed")
    assert fe.forward is model and loss.item() == loss_ref.item()
    assert torch.equal(weights(ref), weights(model))  # BN stats and dropout draws as if no capture was tried
    assert fe.close()["cuda_graphs"] == fe.graphs


class _FailsAtCall:
    """A stand-in 'graphed forward' that runs the model eagerly but raises at its n-th call (after disturbing
    BN statistics and the global RNG, as a half-done capture would)."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self, model):
        def forward(xb):
            self.calls += 1
            if self.calls == self.n:
                model(xb)
                torch.rand(3)
                raise RuntimeError(f"capture failed at call {self.n} (simulated)")
            return model(xb)
        return forward


@pytest.mark.parametrize("fail_at, outcome", [(None, "on"), (1, "fallback"), (3, "fallback"), (99, "on")])
def test_fit_with_graphs_equals_eager_and_falls_back_inside_probation(monkeypatch, fail_at, outcome):
    """fit with cuda_graphs on (made to run on the CPU with a stand-in compiler): a forward that works gives the
    eager run bit for bit; one failing within a shape's first PROBATION steps is rolled back and the run goes on
    eager, again bit for bit; the record says which happened."""
    monkeypatch.setattr(engines.FitEngine, "GRAPH_DEVICES", ("cuda", "cpu"))
    fake = _FailsAtCall(fail_at or 10**9)
    monkeypatch.setattr(engines, "compile_reduce_overhead", fake)
    cfg = RECIPES["sgd-exp-crop_flip-clip"]  # 90 examples, batch 16: a short last batch (a second shape)
    plain, graphed = convnet(), convnet()
    fit(plain, data(), cfg, seed=6)
    state = fit(graphed, data(), cfg, seed=6, engine=EngineSettings(cuda_graphs=True))
    assert torch.equal(weights(plain), weights(graphed))
    assert state.engine["cuda_graphs"].startswith(outcome)
    if outcome == "fallback":
        assert f"capture failed at call {fail_at}" in state.engine["cuda_graphs"]


def test_a_failure_after_probation_is_not_swallowed(monkeypatch):
    monkeypatch.setattr(engines.FitEngine, "GRAPH_DEVICES", ("cuda", "cpu"))
    monkeypatch.setattr(engines, "compile_reduce_overhead", _FailsAtCall(engines.PROBATION + 2))
    with pytest.raises(RuntimeError, match="simulated"):
        fit(convnet(), data(), TrainConfig(epochs=1, batch_size=10, lr=0.05), seed=0,
            engine=EngineSettings(cuda_graphs=True))


def test_use_engine_sets_the_default_and_collects_each_fits_report():
    cfg = TrainConfig(epochs=1, batch_size=30, lr=0.05)
    with engines.use_engine(EngineSettings(fused_optimizer=True)) as reports:
        fit(convnet(), data(), cfg, seed=0)
        fit(convnet(), data(), cfg, seed=1, engine=EngineSettings())  # an explicit engine wins
    assert [r["fused_optimizer"] for r in reports] == [True, False]
    assert engines.current() == engines.OFF
    summary = engines.summarise(reports)
    assert summary["fits"] == 2 and summary["cuda_graphs"] == "off" and summary["engine_version"] == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device; none here")
def test_cuda_graphs_train_on_cuda():
    dev = torch.device("cuda")
    x, y = (t.to(dev) for t in data())
    torch.set_default_dtype(torch.float32)
    m = convnet().float().to(dev)
    state = fit(m, (x.float(), y), RECIPES["sgd-exp-crop_flip-clip"], seed=0, engine=EngineSettings(cuda_graphs=True))
    assert state.engine["cuda_graphs"] in ("on",) or state.engine["cuda_graphs"].startswith("fallback")
    assert math.isfinite(state.last_loss)


# ---------------------------------------------------------------- params.yaml `engine:`


CLAIMS = ["heavy_tail_phases", "simpson_paradox"]


def test_engine_block_resolves_all_and_per_claim_overrides_per_scale():
    raw = {"gpu": {"all": {"fused_optimizer": True}, "simpson_paradox": {"channels_last": True}}}
    gpu = build_engine(raw, CLAIMS, "gpu")
    assert gpu["heavy_tail_phases"] == EngineSettings(fused_optimizer=True)
    assert gpu["simpson_paradox"] == EngineSettings(fused_optimizer=True, channels_last=True)
    assert build_engine(raw, CLAIMS, "quick") == {c: EngineSettings() for c in CLAIMS}
    assert build_engine(None, CLAIMS, "ci") == {c: EngineSettings() for c in CLAIMS}


@pytest.mark.parametrize("raw, expect", [
    ({"huge": {}}, "unknown key engine.huge"),
    ({"gpu": {"nosuch_claim": {}}}, "unknown key engine.gpu.nosuch_claim"),
    ({"gpu": {"all": {"fused": True}}}, "unknown key engine.gpu.all.fused"),
    ({"quick": {"heavy_tail_phases": {"cuda_graphs": "yes"}}}, "engine.quick.heavy_tail_phases.cuda_graphs = 'yes'"),
    ([1], "engine must be a mapping"),
])
def test_bad_engine_settings_are_one_line(raw, expect):
    with pytest.raises(ParamsError) as e:
        build_engine(raw, CLAIMS, "quick")
    assert expect in str(e.value) and "\n" not in str(e.value)


def test_committed_params_keep_the_engine_off_except_where_a_card_stacks():
    """The committed numbers are what their runs used: the engine is off at ci and paper, and at quick and long
    but for the stacked runs cards named before their judged runs (Simpson v7: quick and long, 9 per cell; NC v7:
    long, 8 per group)."""
    from claimbench.claims import load_params as load_claim_params

    for scale in ("ci", "paper"):
        p = load_claim_params(ROOT / "params.yaml", scale)
        assert set(p.engine.values()) == {EngineSettings()}, scale
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(raw.get("engine", {})) <= {"gpu", "long", "quick"}
    stacked = {"quick": {"simpson_paradox": 9}, "long": {"simpson_paradox": 9, "neural_collapse": 8}}
    for scale, runs in stacked.items():
        engine = load_claim_params(ROOT / "params.yaml", scale).engine
        assert {k: v for k, v in engine.items() if v != EngineSettings()} == \
            {k: EngineSettings(stack_runs=n) for k, n in runs.items()}, scale


def test_load_params_rejects_a_bad_engine_block(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["engine"] = {"gpu": {"all": {"cuda_graphs": 1}}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    from claimbench.claims import registry

    with pytest.raises(ParamsError, match="engine.gpu.all.cuda_graphs"):
        load_params(path, "quick", {cid: e.Config for cid, e in registry().items()})


# ---------------------------------------------------------------- the executor records what each run used
# (this module doubles as a one-run claim train side: load_data, plan, run_one)


def load_data(ctx):
    return data()


def plan(ctx):
    from claimbench.contract import RunSpec

    return [RunSpec({"seed": 0}, "seed=0", {"seed": 0})]


def run_one(ctx, run_dir, train, seed):
    state = fit(convnet(), train, TrainConfig(epochs=1, batch_size=30, lr=0.05), seed=seed)
    return {"loss": state.last_loss}


def test_executor_runs_with_the_claims_engine_and_records_it(tmp_path):
    import sys

    from claimbench.contract import Context
    from claimbench.executor import execute, plan_compute, run_engine
    from claimbench.params import DataParams, ExecutorParams, Params

    params = Params("ci", DataParams(device="cpu"), {}, {}, ExecutorParams(),
                    engine={"fake": EngineSettings(fused_optimizer=True)})
    ctx = Context("fake", "ci", None, params, torch.device("cpu"), tmp_path)
    report = execute(ctx, sys.modules[__name__])
    used = run_engine(report.records[0].dir)
    assert used == {"engine_version": engines.ENGINE_VERSION, "fused_optimizer": True, "channels_last": False,
                    "cuda_graphs": "off", "fits": 1}
    assert plan_compute(ctx, sys.modules[__name__])["engine"] == [used]  # what provenance's compute carries
