"""MiniAlexNet, the loss, the 5+1 phase classifier, the claim's plan and its statistics on known answers."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import REPO
from scipy import stats

from claimbench import stage
from claimbench.claims import heavy_tail_phases as claim
from claimbench.claims.heavy_tail_phases import analyse as A
from claimbench.claims.heavy_tail_phases import figures as F
from claimbench.claims.heavy_tail_phases import train as T
from claimbench.errors import ClaimbenchError, ParamsError
from claimbench.metrics import spectral as sp
from claimbench.metrics.correlation import spearman_rho
from claimbench.metrics.phases import PHASE_INDEX, adjacent_inversions, classify_phase
from claimbench.models.mini_alexnet import MiniAlexNet, mse_on_softmax
from claimbench.params import build_config
from claimbench.sweep import Record


@pytest.mark.parametrize("channels", [1, 3])
def test_mini_alexnet_shapes_and_init(channels):
    torch.manual_seed(0)
    model = MiniAlexNet(in_channels=channels)
    assert model(torch.randn(2, channels, 28, 28)).shape == (2, 10)
    assert tuple(model.fc1.weight.shape) == (384, 4096) and tuple(model.fc2.weight.shape) == (192, 384)
    w = model.fc1.weight
    sigma = math.sqrt(2 / (4096 + 384))
    assert w.abs().max() <= 2 * sigma + 1e-7  # truncated at ±2σ
    assert w.std().item() == pytest.approx(0.8796 * sigma, rel=0.02)  # std of a ±2σ-truncated normal
    assert torch.all(model.fc1.bias == 0.1) and torch.all(model.conv1.bias == 0.1)
    with pytest.raises(ValueError, match="28×28"):
        model(torch.randn(1, channels, 32, 32))


def test_fc1_esd_at_init_matches_paper_scale():
    # Spec §A.1: the authors' epoch-0 MP fit has σ ≈ 1.19–1.20 and λ_max ≈ 2.45 in raw units.
    torch.manual_seed(1)
    w = MiniAlexNet(3).fc1.weight.detach()
    ev = sp.esd(w)
    assert ev[-1] == pytest.approx(2.4, abs=0.15)
    assert classify_phase(ev, **_fits(ev, w.shape)) == "Random-like"


def test_mse_on_softmax_known_value():
    loss = mse_on_softmax(torch.zeros(4, 10), torch.tensor([0, 1, 2, 3]))
    assert loss.item() == pytest.approx((0.9**2 + 9 * 0.1**2) / 10)


def _fits(ev, shape):
    n, m = max(shape), min(shape)
    mp, pl = sp.fit_mp(ev, n / m), sp.fit_power_law(ev)
    return {
        "num_spikes": mp["num_spikes"],
        "mp_softrank": mp["mp_softrank"],
        "alpha": pl["alpha"],
        "D": pl["D"],
    }


def test_phase_classifier_on_known_matrices():
    rng = np.random.default_rng(0)
    gauss = rng.standard_normal((2000, 200))
    pareto = (rng.pareto(1.5, (2000, 200)) + 1) * rng.choice([-1.0, 1.0], (2000, 200))
    low_rank = rng.standard_normal((2000, 20)) @ rng.standard_normal((20, 200))
    for w, want in ((gauss, "Random-like"), (pareto, "Heavy-Tailed"), (low_rank, "Rank-collapse")):
        ev = sp.esd(w)
        assert classify_phase(ev, **_fits(ev, w.shape)) == want


@pytest.mark.parametrize(
    ("spikes", "softrank", "alpha", "want"),
    [
        (0, 0.5, 3.0, "Random-like"),
        (3, 0.99, 8.0, "Random-like"),
        (3, 0.9, 8.0, "Bleeding-out"),
        (9, 0.7, 7.0, "Bulk+Spikes"),
        (40, 0.4, 5.0, "Bulk-decay"),
        (80, 0.1, 5.0, "Bulk-decay"),
        (80, 0.1, 3.0, "Heavy-Tailed"),
    ],
)
def test_phase_thresholds(spikes, softrank, alpha, want):
    ev = np.linspace(0.5, 2.0, 100)
    assert classify_phase(ev, spikes, softrank, alpha, D=0.05) == want


def test_phase_errors_and_inversions():
    with pytest.raises(ClaimbenchError, match="soft rank"):
        classify_phase(np.ones(3), 0, float("nan"), 2.0, 0.1)
    assert adjacent_inversions([4, 3, 2, 1, 0]) == 0
    assert adjacent_inversions([4, 2, 3, 1, 0]) == 1
    assert adjacent_inversions([0, 1, 2]) == 2
    assert PHASE_INDEX["Heavy-Tailed"] == 4


def test_spearman_with_bootstrap_ci():
    bs = np.repeat([2.0, 8, 32, 128], 3)
    rising = bs + np.tile([0.1, 0.2, 0.3], 4)
    rho, lo, hi = A.spearman_with_ci(bs, rising, bs, seed=0)
    assert rho == pytest.approx(stats.spearmanr(bs, rising).statistic) and rho > 0.97  # < 1: ties in bs
    assert 0 < lo <= hi <= 1
    rho, lo, _ = A.spearman_with_ci(bs, -rising, bs, seed=0)
    assert rho < -0.97 and lo < 0
    rho, lo, _ = A.spearman_with_ci(bs, np.ones_like(bs), bs, seed=0)
    assert math.isnan(rho) and math.isnan(lo)
    assert spearman_rho(np.array([[1.0, 2, 3, 4]]), np.array([[1.0, 3, 2, 4]]))[0] == pytest.approx(
        0.8
    )


def test_config_rejects_a_sweep_without_two_sizes_or_seeds():
    with pytest.raises(ParamsError, match="batch_sizes"):
        build_config(claim.Config, {"batch_sizes": [8], "seeds": [0, 1], "epochs": 1}, "heavy_tail_phases.ci")
    with pytest.raises(ParamsError, match="batch_sizes"):
        build_config(
            claim.Config, {"batch_sizes": [0, 8], "seeds": [0, 1], "epochs": 1}, "heavy_tail_phases.ci"
        )


def test_run_key_ignores_sweep_lists_and_workers_are_gone():
    a = build_config(claim.Config, {"batch_sizes": [2, 8], "seeds": [0, 1], "epochs": 2}, "x")
    b = build_config(claim.Config, {"batch_sizes": [2, 8, 32], "seeds": [0, 1, 2], "epochs": 2}, "x")
    assert claim.run_key(a, 8, 1) == claim.run_key(b, 8, 1)
    assert claim.run_key(a, 8, 1) != claim.run_key(a, 2, 1)
    with pytest.raises(ParamsError, match="workers"):  # runs side by side: params.yaml `executor.workers`
        build_config(claim.Config, {"batch_sizes": [2, 8], "seeds": [0, 1], "epochs": 2, "workers": 2}, "x")


def _context(tmp_path, **cfg):
    """The ci context, with root `tmp_path` and the Config built from `cfg` (if given)."""
    ctx = stage.make_context(claim.CLAIM_ID, "ci", root=REPO)
    if cfg:
        ctx = dataclasses.replace(ctx, cfg=build_config(claim.Config, cfg, "x"))
    return dataclasses.replace(ctx, root=tmp_path)


def test_plan_runs_smallest_batch_first_on_one_thread(tmp_path):
    ctx = _context(tmp_path, batch_sizes=[32, 2, 8], seeds=[1, 0], epochs=2)
    specs = T.plan(ctx)
    assert [s.label for s in specs] == [f"bs={bs} seed={s}" for bs in (2, 8, 32) for s in (1, 0)]
    assert all(s.threads == 1 for s in specs)
    assert all(s.key == claim.run_key(ctx.cfg, s.args["batch_size"], s.args["seed"]) for s in specs)


def _fake_runs(folder, sizes, seeds, width):
    """Finished runs with Gaussian FC weights (entry std `width[bs]`) and test acc 0.5 − bs/1000 + seed/100."""
    gen = torch.Generator().manual_seed(0)
    records = []
    for bs in sizes:
        for seed in seeds:
            d = folder / f"bs{bs}-{seed}"
            d.mkdir(parents=True)
            w = {"fc1.weight": width[bs] * torch.randn(384, 4096, generator=gen, dtype=torch.float64),
                 "fc2.weight": width[bs] * torch.randn(192, 384, generator=gen, dtype=torch.float64)}
            torch.save(w, d / "model.pt")
            rec = {"train_acc": 0.9, "test_acc": 0.5 - bs / 1000 + seed / 100, "steps": 2 * (1000 // bs),
                   "epochs": 2}
            records.append(Record({"batch_size": bs, "seed": seed}, f"bs={bs} seed={seed}", d, rec))
    return records


def test_analyse_and_figures_from_finished_runs(tmp_path):
    ctx = _context(tmp_path, batch_sizes=[4, 64], seeds=[0, 1], epochs=1)
    records = _fake_runs(tmp_path / "elsewhere", (4, 64), (0, 1), {4: 1.0, 64: 0.1})
    result = A.analyse(records[2:] + records[:2], ctx)  # plan order is not assumed
    runs, table = result.tables["per_run"], result.tables["per_batch_size"]
    assert runs[["batch_size", "seed"]].values.tolist() == [[4, 0], [4, 1], [64, 0], [64, 1]]
    assert table["batch_size"].tolist() == [4, 64] and table["n_seeds"].tolist() == [2, 2]
    assert set(table["fc1_phase"]) == {"Random-like"}  # Gaussian weights at any scale
    st = result.statistics
    assert (st["smallest_bs"], st["largest_bs"]) == (4, 64)
    assert st["test_acc_diff"] == pytest.approx(0.06)
    assert st["lr_steps_smallest_bs"] == pytest.approx(250 * (1 + 0.95))  # bs 4: 2 epochs of 250 steps
    assert st["test_acc_diff_se"] == pytest.approx(math.hypot(0.005, 0.005))  # seed SE 0.005 at each size
    assert st["spearman_bs_alpha_fc1"] == pytest.approx(stats.spearmanr(runs["batch_size"], runs["fc1_alpha"])[0])
    esds = result.figure_data["esds"]
    assert set(esds) == {(name, bs) for name in claim.LAYERS for bs in (4, 64)}
    pooled = sp.esd([r.tensors("model.pt", "w")["fc1.weight"] for r in records[:2]])
    np.testing.assert_allclose(esds[("fc1", 4)], pooled, rtol=1e-9)  # analyse ran on 1 thread
    assert len(pooled) == 2 * 384  # pooled over both seeds; entries 10× wider: eigenvalues 100× larger
    assert esds[("fc1", 4)].mean() == pytest.approx(100 * esds[("fc1", 64)].mean(), rel=0.05)
    F.figures(result, ctx)
    assert sorted(p.name for p in ctx.figures_dir.iterdir()) == [f"{n}.{ext}" for n in (
        "accuracy_vs_batch_size", "fc1_esd_per_batch_size", "spectral_metrics_vs_batch_size") for ext in ("pdf", "png")]


def test_cifar10_split_is_centre_cropped_and_standardised(tmp_path, monkeypatch):
    import pickle

    from claimbench import data

    monkeypatch.setattr(data, "expected_checksums", lambda: {})  # generated stand-ins with the real names

    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (20, 3 * 32 * 32), dtype=np.uint8)
        batch = {"data": images, "labels": list(range(10)) * 2}
        (folder / name).write_bytes(pickle.dumps(batch))
    cfg = build_config(
        claim.Config,
        {"dataset": "cifar10", "batch_sizes": [2, 8], "seeds": [0, 1], "epochs": 1, "train_per_class": 3},
        "x",
    )
    x, y = T.load_split(cfg, "train", str(tmp_path))
    assert x.shape == (30, 3, 28, 28) and torch.bincount(y).tolist() == [3] * 10
    flat = x.flatten(1)
    assert flat.mean(1).abs().max() < 1e-5 and (flat.std(1, unbiased=False) - 1).abs().max() < 1e-4
    tx, _ = T.load_split(cfg, "test", str(tmp_path))
    assert tx.shape == (20, 3, 28, 28)


def test_mlp3_surrogate_shapes_init_and_run_key():
    """model: mlp3 (card v5 proposal) builds the SETOL MLP with fc1/fc2 named as MiniAlexNet's; the default
    model keeps every earlier run key (cached runs stay valid), mlp3 gets its own."""
    from claimbench.models.mlp3 import MLP3

    torch.manual_seed(0)
    net = T.build_model("mlp3", torch.zeros(4, 1, 28, 28))
    assert isinstance(net, MLP3) and net(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert tuple(net.fc1.weight.shape) == (300, 784) and tuple(net.fc2.weight.shape) == (100, 300)
    sigma = math.sqrt(2 / (784 + 300))
    assert net.fc1.weight.abs().max() <= 2 * sigma + 1e-7 and torch.all(net.fc1.bias == 0.1)
    assert isinstance(T.build_model("mini_alexnet", torch.zeros(4, 1, 28, 28)), MiniAlexNet)
    base = {"batch_sizes": [2, 8], "seeds": [0, 1], "epochs": 2}
    old = build_config(claim.Config, base, "x")
    mlp = build_config(claim.Config, {**base, "model": "mlp3"}, "x")
    assert "model" not in claim.run_key(old, 8, 1)
    assert claim.run_key(mlp, 8, 1) == {**claim.run_key(old, 8, 1), "model": "mlp3"}
    with pytest.raises(ParamsError, match="model"):
        build_config(claim.Config, {**base, "model": "mlp4"}, "x")
