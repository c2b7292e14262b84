"""Claim neural_collapse: run plan and keys, analysis statistics and figures on hand-made records, and
the `ci` scale end to end."""

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import claimbench.claims.neural_collapse as nc
from claimbench.cards import FAIL, INCONCLUSIVE, OUT_OF_REGIME, PASS, UNDECIDED, UNDEFINED, load_card
from claimbench.claims import registry
from claimbench.claims.neural_collapse import analyse as A
from claimbench.claims.neural_collapse import figures as F
from claimbench.claims.neural_collapse import null as N
from claimbench.claims.neural_collapse import train as T
from claimbench.collapse_losses import LOSS_NAMES
from claimbench.errors import CacheError, ParamsError
from claimbench.executor import collect
from claimbench.intervals import interval, replicates
from claimbench.params import build_config
from claimbench.stage import make_context, run_train
from claimbench.sweep import Record
from claimbench.train import TrainConfig, config_hash, lr_at
from claimbench.verdict import criterion_pass_rate, evaluate_criterion, judge, null_calibration

REPO = Path(__file__).resolve().parents[1]
RAW = {"train_per_class": 10, "test_per_class": None, "widths": [1.0, 0.5], "epochs": 2, "batch_size": 8,
       "lr": 0.1, "seeds": [0, 1]}


def test_nc_epochs_are_log_spaced_and_include_first_and_last():
    assert nc.nc_epochs(35, 8) == [1, 2, 3, 5, 8, 13, 21, 35]
    assert nc.nc_epochs(1, 4) == [1]


@pytest.mark.parametrize("epochs,batches", [(35, 8), (100, 8), (7, 3), (220, 4)])
def test_the_decay_epoch_is_the_last_whole_epoch_at_the_full_lr(epochs, batches):
    """phase_epochs()['decay'] agrees with the training schedule (train.lr_at) step by step."""
    tcfg = TrainConfig(epochs=epochs, batch_size=1, lr=1.0, schedule="step", milestones=nc.LR_MILESTONES)
    total = epochs * batches
    full = [lr_at(tcfg, s, total, batches) == 1.0 for s in range(total)]
    last_full_epoch = max(e for e in range(1, epochs + 1) if all(full[: e * batches]))
    ph = nc.phase_epochs(epochs)
    assert ph["decay"] == last_full_epoch and ph["window"] == round(0.75 * last_full_epoch)
    assert ph["end_window"] == round(0.75 * epochs)


def test_measure_epochs_add_the_plateau_window_and_wd_time_matches_the_paper():
    cfg = build_config(nc.Config, {**RAW, "epochs": 35, "train_per_class": 50, "batch_size": 64, "lr": 0.05},
                       "neural_collapse.ci")
    assert nc.measure_epochs(cfg) == [1, 2, 3, 5, 8, 11, 13, 15, 21, 26, 35]
    assert nc.wd_time(cfg) == pytest.approx(0.05 * 5e-4 * 120)  # 8 batches x 35 epochs, 3/7 at the full lr
    paper = dataclasses.replace(cfg, train_per_class=4500, batch_size=128, epochs=100, lr=0.1)
    assert nc.wd_time(paper) == pytest.approx(nc.PAPER_WD_TIME) and nc.PAPER_WD_TIME == pytest.approx(0.7543)
    assert [ch.threshold for r in load_card("neural_collapse").regime for ch in r.checks if r.id == "R3"] == \
        [pytest.approx(nc.PAPER_WD_TIME, abs=5e-4)]


def test_regime_statistics_read_the_plateau_window_and_the_end_of_the_full_lr_phase():
    """E = 35: window epochs 11 -> 15 (full lr), end window 26 -> 35. One FL run still drifts (NC3 -20%) and
    sits at 98% train accuracy at the decay; NC1 is outside the plateau metrics; a missing epoch is NaN."""
    rows = []
    for loss in LOSS_NAMES:
        for seed in (0, 1):
            drift = loss == "fl" and seed == 1
            for e, nc1, nc23, acc in ((11, 2.0, 1.0, 1.0), (15, 1.0, 0.8 if drift else 0.95, 0.98 if drift else 1.0),
                                      (26, 0.5, 0.5, 1.0), (35, 0.45, 0.5, 1.0)):
                rows.append({"variant": loss, "width": 1.0, "seed": seed, "epoch": e, "nc1": nc1, "nc2": nc23,
                             "nc3": nc23 if e != 15 or not drift else 0.8, "train_acc": acc})
    hist = pd.DataFrame(rows)
    s = A.regime_statistics(hist, 1.0, 35)
    assert s["nc_plateau_change_max"] == pytest.approx(0.2)  # NC1's 50% change is not in the window
    assert s["train_acc_at_decay_min_largest_pct"] == pytest.approx(98.0)
    assert s["nc_end_change_max"] == pytest.approx(0.1)  # NC1 0.5 -> 0.45
    gap = A.regime_statistics(hist[~((hist["variant"] == "ce") & (hist["epoch"] == 15))], 1.0, 35)
    assert math.isnan(gap["nc_plateau_change_max"]) and math.isnan(gap["train_acc_at_decay_min_largest_pct"])
    assert math.isnan(A.regime_statistics(hist, 1.0, 3)["nc_plateau_change_max"])  # window = decay = epoch 1


def test_plan_is_one_run_per_width_seed_and_variant_with_stable_keys(ci_root):
    ctx = make_context("neural_collapse", "ci", root=ci_root)
    ctx.cfg = build_config(nc.Config, RAW, "neural_collapse.ci")
    plan = T.plan(ctx)
    got = [(s.args["width"], s.args["seed"], s.args["variant"]) for s in plan]
    assert got == [(0.5, s, v) for s in (0, 1) for v in LOSS_NAMES] + \
                  [(1.0, s, v) for s in (0, 1) for v in [*LOSS_NAMES, nc.SECONDARY_LS]]
    assert len({config_hash(s.key) for s in plan}) == len(plan) == 18
    secondary = plan[-1].key
    assert secondary["ls_alpha"] == 0.05 and "ls_alpha_secondary" not in secondary and "widths" not in secondary
    assert plan[0].label == "ce w=0.5 seed=0"
    # folder names pinned: a changed key silently retrains every run. Card v3 changed them on purpose
    # (probe_epochs: runs measured without the plateau window's epochs must not be reused).
    assert [config_hash(plan[i].key) for i in (0, -1)] == ["0bfcc43e0e05", "66ce0a653f3b"]
    assert plan[0].key["probe_epochs"] == nc.measure_epochs(ctx.cfg)
    fewer = T.plan(dataclasses.replace(ctx, cfg=dataclasses.replace(ctx.cfg, other_width_seeds=1)))
    assert [(s.args["width"], s.args["seed"]) for s in fewer][:4] == [(0.5, 0)] * 4 and len(fewer) == 14
    assert [config_hash(s.key) for s in fewer] == [config_hash(s.key) for s in plan if s.args["width"] == 1.0
                                                   or s.args["seed"] == 0]  # not part of any key


def test_control_runs_are_ce_at_the_largest_width_and_leave_the_other_keys_alone(ci_root):
    ctx = make_context("neural_collapse", "ci", root=ci_root)
    ctx.cfg = build_config(nc.Config, RAW, "neural_collapse.ci")
    before = [config_hash(s.key) for s in T.plan(ctx)]
    ctx.cfg = build_config(nc.Config, {**RAW, "control_seeds": [2, 3]}, "neural_collapse.ci")
    plan = T.plan(ctx)
    assert [config_hash(s.key) for s in plan[:-2]] == before  # control_seeds is not part of any run key
    assert [(s.args["width"], s.args["seed"], s.args["variant"]) for s in plan[-2:]] == [(1.0, 2, "ce"), (1.0, 3, "ce")]
    assert plan[-1].key == nc.run_key(ctx.cfg, 1.0, 3, "ce") and plan[-1].label == "ce w=1 seed=3 (control)"
    with pytest.raises(ParamsError, match=r"control_seeds \[1, 2\] share seed\(s\) \[1\] with seeds"):
        build_config(nc.Config, {**RAW, "control_seeds": [1, 2]}, "neural_collapse.ci")


def test_with_seed_set_moves_every_replicate_seed_and_keeps_the_data():
    cfg = build_config(nc.Config, {**RAW, "control_seeds": [2, 3]}, "neural_collapse.ci")
    assert nc.with_seed_set(cfg, 0) is cfg
    other = nc.with_seed_set(cfg, 1)
    assert other.seeds == [1000, 1001] and other.control_seeds == [1002, 1003]
    assert not set(other.seeds + other.control_seeds) & set(cfg.seeds + cfg.control_seeds)
    assert set(nc.with_seed_set(cfg, 2).seeds).isdisjoint(other.seeds)
    assert dataclasses.replace(other, seeds=cfg.seeds, control_seeds=cfg.control_seeds) == cfg  # only seeds moved
    assert other.subset_seed == cfg.subset_seed


def test_summed_loss_is_the_mean_times_the_terms_it_averages_and_keys_keep_the_mean_runs(ci_root):
    """Card v5: loss_reduction "sum" (the reference code's May-2022 runs) multiplies the batch-mean loss by the
    batch size (MSE: batch size x classes, F.mse_loss(reduction='sum')); test losses stay batch-mean; the
    mean-reduced runs keep their v3/v4 keys."""
    mean = build_config(nc.Config, RAW, "neural_collapse.ci")
    summed = dataclasses.replace(mean, loss_reduction="sum")
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(7, 10, generator=g), torch.randint(0, 10, (7,), generator=g)
    for v in LOSS_NAMES:
        m = T.training_loss(mean, v)(logits, y)
        assert float(m) == pytest.approx(float(T.loss_fn(mean, v)(logits, y)))
        assert float(T.training_loss(summed, v)(logits, y)) == pytest.approx(float(m) * 7 * (10 if v == "mse" else 1))
    ce_sum = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
    assert float(T.training_loss(summed, "ce")(logits, y)) == pytest.approx(float(ce_sum))
    mse_sum = torch.nn.functional.mse_loss(logits, 15 * torch.nn.functional.one_hot(y, 10).float(), reduction="sum")
    assert float(T.training_loss(summed, "mse")(logits, y)) == pytest.approx(float(mse_sum), rel=1e-5)
    assert "loss_reduction" not in nc.run_key(mean, 1.0, 0, "ce")
    assert nc.run_key(summed, 1.0, 0, "ce")["loss_reduction"] == "sum"
    with pytest.raises(ParamsError, match="loss_reduction"):
        build_config(nc.Config, {**RAW, "loss_reduction": "median"}, "neural_collapse.ci")


def test_v5_long_protocol_meets_r3_and_its_judged_seeds_are_fresh():
    """params long/quick (card v5; card v7: 24 long seeds): R3 at long, out of regime at quick by design, seed sets
    as the card lists."""
    from claimbench.cards import judged_seeds
    from claimbench.claims import load_params
    card = load_card("neural_collapse")
    long_cfg = load_params(REPO / "params.yaml", "long").claims["neural_collapse"]
    quick = load_params(REPO / "params.yaml", "quick").claims["neural_collapse"]
    assert nc.wd_time(long_cfg) >= nc.PAPER_WD_TIME > nc.wd_time(quick)
    assert long_cfg.loss_reduction == quick.loss_reduction == "sum"
    judged = judged_seeds(card.raw)
    for scale, cfg in (("quick", quick), ("long", long_cfg)):
        for k in (0, 1):
            c = nc.with_seed_set(cfg, k)
            assert set(c.seeds + c.control_seeds) == judged[(scale, k)]
    assert judged[("long", 0)] == set(range(62000, 62024)) and not judged[("long", 0)] & judged[("quick", 0)]
    assert card.raw["power"]["simulation"]["scales"]["long"]["n"] == len(long_cfg.seeds) == 24


def test_v6_gpu_protocol_meets_r3_and_its_judged_seeds_are_fresh():
    """params gpu (card v6, gpu only): v5's summed recipe at lr x wd 1e-3 meets R3 with half long's steps; its
    seed sets are the card's and disjoint from every other scale's and pilot's."""
    from claimbench.cards import judged_seeds, seed_list
    from claimbench.claims import load_params
    card = load_card("neural_collapse")
    gpu = load_params(REPO / "params.yaml", "gpu").claims["neural_collapse"]
    long_cfg = load_params(REPO / "params.yaml", "long").claims["neural_collapse"]
    assert card.version >= 6 and next(e for e in card.raw["changelog"] if e["version"] == 6)["scales"] == ["gpu"]
    assert nc.wd_time(gpu) >= nc.PAPER_WD_TIME and gpu.loss_reduction == "sum" and gpu.lr == long_cfg.lr
    assert gpu.epochs * 8 == 1760 and card.raw["power"]["simulation"]["scales"]["gpu"]["n"] == len(gpu.seeds)
    judged = judged_seeds(card.raw)
    for k in (0, 1):
        fresh = list(range(50000 + 1000 * k, 50008 + 1000 * k))
        assert sorted(nc.with_seed_set(gpu, k).seeds) == sorted(judged[("gpu", k)]) == fresh
    others = set().union(*(s for (scale, _), s in judged.items() if scale != "gpu"),
                         *(seed_list(p["seeds"], "") for p in card.raw["seeds"]["pilots"]))
    assert not others & (judged[("gpu", 0)] | judged[("gpu", 1)])


def test_pilot_summary_takes_the_worst_loss_and_differences_from_ce():
    from claimbench.pilot import neural_collapse as P
    rows = [{"variant": v, "width": 0.5, "seed": 1, "nc1_ratio": r1, "nc2_over_random": r2, "nc3_ratio": 0.1,
             "test_acc_pct": acc, "train_acc_final_pct": 100.0, "train_acc_at_decay_pct": dec}
            for v, r1, r2, acc, dec in (("ce", 0.01, 0.2, 80.0, 90.0), ("ls", 0.02, 0.1, 81.0, 95.0),
                                        ("fl", 0.005, 0.7, 79.5, 85.0), ("mse", 0.001, 0.3, 78.0, 99.0))]
    (row,) = P.per_seed(rows + [{**rows[0], "seed": 2}])  # seed 2 lacks three losses: skipped
    assert row["nc1_ratio_worst_loss"] == 0.02 and row["nc2_over_random_worst_loss"] == 0.7
    assert (row["acc_diff_ls_ce_pp"], row["acc_diff_fl_ce_pp"], row["acc_diff_mse_ce_pp"]) == (1.0, -0.5, -2.0)
    assert row["train_acc_at_decay_min_pct"] == 85.0


def test_no_secondary_label_smoothing_when_its_alpha_is_null():
    cfg = build_config(nc.Config, {**RAW, "ls_alpha_secondary": None}, "neural_collapse.ci")
    assert nc.variants(cfg, 1.0) == nc.variants(cfg, 0.5) == list(LOSS_NAMES)


def history(values: dict[tuple[str, int], tuple[float, float]]) -> pd.DataFrame:
    """(loss, seed) -> (NC at epoch 1, NC at the last epoch), same value for nc1/nc2/nc3."""
    rows = []
    for (loss, seed), (first, last) in values.items():
        for epoch, v in ((1, first), (10, last)):
            rows.append({"variant": loss, "width": 1.0, "seed": seed, "epoch": epoch, "nc1": v, "nc2": v,
                         "nc3": v, **{m: 0.0 for m in ("nc2_uncentred", "nc3_uncentred", "nc3_papyan", "nc4",
                                                        "equinorm_means", "equinorm_weights", "max_angle_means",
                                                        "max_angle_weights", "train_acc")}})
    return pd.DataFrame(rows)


def test_collapse_statistics_take_the_worst_seed_and_loss():
    vals = {(loss, s): (1.0, 0.05) for loss in LOSS_NAMES for s in (0, 1)}
    vals[("fl", 1)] = (2.0, 0.8)  # ratio 0.4: fails the NC1 0.1 bound, passes the 0.5 NC2/NC3 bounds
    stats, table = A.collapse_statistics(history(vals), 1.0)
    assert stats["nc1_ratio_max"] == pytest.approx(0.4) and stats["nc1_ratio_ce"] == pytest.approx(0.05)
    assert stats["nc1_first_fl"] == pytest.approx(1.5) and stats["nc1_final_fl"] == pytest.approx(0.425)
    assert len(table) == 4


@pytest.mark.parametrize("nan_loss", LOSS_NAMES)
def test_a_nan_ratio_makes_the_worst_loss_nan_wherever_it_sits(nan_loss):
    """v1 took max() in ways that skipped NaN (Python's max drops a NaN that is not first; pandas skips it),
    so N1 could pass on an undefined ratio. Now a NaN NC value leaves the worst-loss statistic NaN and N1
    undecided (undefined)."""
    vals = {(loss, s): (1.0, 0.01) for loss in LOSS_NAMES for s in (0, 1)}
    vals[(nan_loss, 1)] = (1.0, float("nan"))
    hist = history(vals)
    stats, _ = A.collapse_statistics(hist, 1.0)
    assert math.isnan(stats["nc1_ratio_max"]) and math.isnan(stats[f"nc1_ratio_{nan_loss}"])
    values, _, _ = A.per_seed_collapse(hist, 1.0, [0, 1], 0.37)
    assert values["nc1_ratio_worst_loss"][0] == pytest.approx(0.01) and math.isnan(values["nc1_ratio_worst_loss"][1])
    judged = evaluate_criterion(load_card("neural_collapse").criteria[0], {}, {k: interval(replicates(v))
                                                                    for k, v in values.items()})
    assert judged["outcome"] == UNDECIDED and judged["reason_kind"] == UNDEFINED


def test_per_seed_collapse_divides_nc2_by_the_random_classifier_value():
    vals = {(loss, s): (1.0, 0.01) for loss in LOSS_NAMES for s in (0, 1)}
    vals[("mse", 0)] = (1.0, 0.2)  # NC2 0.2 against a random-classifier 0.4: ratio 0.5
    values, table, firsts = A.per_seed_collapse(history(vals), 1.0, [0, 1], 0.4)
    assert values["nc2_over_random_worst_loss"] == pytest.approx([0.5, 0.025])
    assert values["nc1_ratio_worst_loss"] == pytest.approx([0.2, 0.01])  # NC1 keeps its first-epoch baseline
    assert len(table) == 8 and firsts[("ce", 1)] == {"nc1": 1.0, "nc3": 1.0}


def test_accuracy_spread_and_its_standard_error():
    records = [{"variant": loss, "width": w, "seed": s, "test_acc": acc + 0.01 * s,
                "final": {"train_acc": 1.0}}
               for w, accs in ((0.5, (0.80, 0.82, 0.85, 0.81)), (1.0, (0.90, 0.905, 0.90, 0.90)))
               for loss, acc in zip(LOSS_NAMES, accs) for s in (0, 1)]
    acc = A.accuracy_frame(records)
    spread, se = A.spread(acc, 0.5)
    assert spread == pytest.approx(5.0) and se == pytest.approx((0.5**2 + 0.5**2) ** 0.5)  # seed SE = 0.5 pt
    assert A.spread(acc, 1.0)[0] == pytest.approx(0.5)
    diffs = A.per_seed_differences(records, 1.0, [0, 1])  # paired by seed: the seed offset cancels
    assert diffs == {"acc_diff_ls_ce_pp": pytest.approx([0.5, 0.5]), "acc_diff_fl_ce_pp": pytest.approx([0.0, 0.0]),
                     "acc_diff_mse_ce_pp": pytest.approx([0.0, 0.0])}


def collapsed(seed: int, spread: float, k: int = 10, d: int = 8, n: int = 6) -> dict:
    """features.pt content: class means at k random points in R^d, within-class noise `spread`."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(k).repeat(n)
    means = 3 * torch.randn(k, d, generator=g)
    return {"h": means[y] + spread * torch.randn(k * n, d, generator=g), "y": y,
            "w": torch.randn(k, d, generator=g), "b": torch.zeros(k)}


def fake_records(ctx, root: Path, acc_gap: float = 0.1) -> list[Record]:
    """One made-up finished run per planned spec, with its features.pt under `root`: NC falls 10x (100x for
    CE) over training; CE tests `acc_gap` better than the others; every run fits its training set."""
    metrics = ("nc1", "nc2", "nc3", "nc2_uncentred", "nc3_uncentred", "nc3_papyan", "nc4", "equinorm_means",
               "equinorm_weights", "max_angle_means", "max_angle_weights")
    out = []
    for i, spec in enumerate(T.plan(ctx)):
        a = spec.args
        drop = 100.0 if a["variant"] == "ce" else 10.0
        hist = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 1.0, **{m: 1.0 / drop ** (e > 1) for m in metrics}}
                for e in (1, 2)]
        rec = {**a, "history": hist, "final": hist[-1], "test_acc": 0.8 + acc_gap * (a["variant"] == "ce") +
               0.001 * a["seed"], "test_loss": 0.5, "wall_s": 0.0}
        run = root / f"run{i}"
        run.mkdir(parents=True)
        torch.save(collapsed(i, 0.5), run / "features.pt")
        out.append(Record(spec.key, spec.label, run, rec))
    return out


def test_analyse_and_figures_from_records_only(ci_root, tmp_path):
    ctx = make_context("neural_collapse", "ci", root=ci_root)
    result = A.analyse(fake_records(ctx, tmp_path / "runs"), ctx)
    s = result.statistics
    assert s["nc1_ratio_ce"] == pytest.approx(0.01) and s["nc1_ratio_max"] == pytest.approx(0.1)
    assert s["acc_spread_largest_pp"] == pytest.approx(10.0) and s["acc_spread_shrink_pp"] == pytest.approx(0.0)
    assert s["largest_width"] == max(ctx.cfg.widths) and s["train_err_max_pp"] == pytest.approx(0.0)
    assert s["train_acc_min_largest_pct"] == pytest.approx(100.0) and s["feature_dim_largest"] == 8
    assert result.samples["acc_diff_mse_ce_pp"].values == pytest.approx((-10.0,))  # one seed at ci
    assert set(result.tables["nc_history"]["variant"]) == {*LOSS_NAMES, nc.SECONDARY_LS}
    assert result.figure_data["variant_labels"]["ls"] == f"LS α={ctx.cfg.ls_alpha:g}"
    F.figures(result, ctx)
    assert sorted(p.name for p in ctx.figures_dir.iterdir()) == [
        "accuracy_vs_width.pdf", "accuracy_vs_width.png", "nc_vs_epoch.pdf", "nc_vs_epoch.png"]


@pytest.fixture
def two_seed_ctx(ci_root):
    """The ci context with two seeds and two control seeds (CE under four seeds at the largest width)."""
    ctx = make_context("neural_collapse", "ci", root=ci_root)
    ctx.cfg = dataclasses.replace(ctx.cfg, seeds=[0, 1], control_seeds=[2, 3])
    return ctx


def test_every_gating_check_has_samples_and_every_gating_criterion_null_draws(two_seed_ctx, tmp_path):
    result = A.analyse(fake_records(two_seed_ctx, tmp_path / "runs"), two_seed_ctx)
    card = load_card("neural_collapse")
    for c in card.criteria:
        if c.gating:
            assert all(len(result.samples[ch.statistic].values) == 2 for ch in c.checks), c.id  # one per seed
            draws = result.null_draws[c.id]
            assert len(draws) >= 200 and all({ch.statistic for ch in c.checks} <= set(d) for d in draws)
    assert set(result.control_draws) == {"N2"} and len(result.control_draws["N2"]) >= 200
    assert list(result.tables["ce_seeds"]["role"]) == ["main", "main", "control", "control"]
    assert result.statistics["n2_seed_noise_sd_pp"] == pytest.approx(np.std([0, 0.1, 0.2, 0.3], ddof=1))
    cal = null_calibration(result, card)
    assert cal["N1"]["pass_rate"] == 0.0 and cal["N2"]["pass_rate"] <= 0.05
    again = A.analyse(fake_records(two_seed_ctx, tmp_path / "again"), two_seed_ctx)
    assert null_calibration(again, card) == cal  # seeded


def test_equivalence_null_passes_at_most_5_percent_and_the_control_shows_the_power():
    """N2's null (one loss truly off CE by the margin) passes <= 5% whatever the seed noise and seed count;
    with many seeds and small noise the control (all equal) passes, with two seeds it cannot."""
    n2 = load_card("neural_collapse").criteria[1]
    names = A.DIFF_STATS
    for sigma, seeds in ((0.5, 2), (0.5, 5), (0.2, 20)):
        null = N.equivalence_draws(sigma, seeds, names, nc.EQUIVALENCE_MARGIN_PP, draws=400)
        assert criterion_pass_rate(n2, null)["pass_rate"] <= 0.05, (sigma, seeds)
    assert criterion_pass_rate(n2, N.equivalence_draws(0.2, 20, names, None, draws=400))["pass_rate"] > 0.9
    assert criterion_pass_rate(n2, N.equivalence_draws(0.5, 2, names, None, draws=400))["pass_rate"] < 0.05


def test_card_margin_and_thresholds_match_the_code():
    card = load_card("neural_collapse")
    n1, n2 = card.criteria[0], card.criteria[1]
    assert {ch.statistic for ch in n1.checks} == set(A.COLLAPSE_STATS.values())
    assert {ch.statistic for ch in n2.checks} == set(A.DIFF_STATS.values())
    assert sorted({abs(ch.threshold) for ch in n2.checks}) == [nc.EQUIVALENCE_MARGIN_PP]
    assert [c.id for c in card.criteria if c.gating] == ["N1", "N2"] and card.version >= 3


def test_verdict_pass_fail_nan_and_out_of_regime():
    card = load_card("neural_collapse")
    good = {"nc1_ratio_worst_loss": [0.01, 0.012], "nc2_over_random_worst_loss": [0.1, 0.11],
            "nc3_ratio_worst_loss": [0.1, 0.12], "acc_diff_ls_ce_pp": [0.1, 0.12],
            "acc_diff_fl_ce_pp": [-0.1, -0.11], "acc_diff_mse_ce_pp": [0.0, 0.02]}
    samples = {k: replicates(v) for k, v in good.items()}
    in_regime = {"train_acc_min_largest_pct": 100.0, "train_acc_at_decay_min_largest_pct": 99.5,
                 "nc_plateau_change_max": 0.02, "wd_time_full_lr": 1.0}
    assert judge(card, in_regime, samples)["verdict"] == "reproduced"
    far = {**samples, "acc_diff_mse_ce_pp": replicates([4.0, 4.1])}  # MSE 4 points off CE: N2 fails
    v = judge(card, in_regime, far)
    assert v["verdict"] == "partially reproduced" and v["criteria"][1]["outcome"] == FAIL
    assert v["criteria"][0]["outcome"] == PASS
    nan = {**samples, "nc1_ratio_worst_loss": replicates([0.01, float("nan")])}
    v = judge(card, in_regime, nan)
    assert v["criteria"][0]["outcome"] == UNDECIDED and v["criteria"][0]["reason_kind"] == UNDEFINED
    for rid, key, bad in (("R1", "train_acc_min_largest_pct", 97.0), ("R1", "train_acc_min_largest_pct", math.nan),
                          ("R3", "wd_time_full_lr", 0.003)):
        v = judge(card, {**in_regime, key: bad}, samples)
        assert v["verdict"] == INCONCLUSIVE and v["reason_kind"] == OUT_OF_REGIME and rid in v["reason"], (rid, bad)
    # card v5: fitting before the first decay and the full-lr plateau are reported (TP), not conditions
    late = {**in_regime, "train_acc_at_decay_min_largest_pct": 66.0, "nc_plateau_change_max": 0.2}
    v = judge(card, late, samples)
    assert v["verdict"] == "reproduced" and [c for c in v["criteria"] if c["id"] == "TP"][0]["outcome"] == FAIL
    assert judge(card, {}, samples)["verdict"] == INCONCLUSIVE


@pytest.mark.parametrize("key,value,message", [
    ("widths", [0.0, 1.0], r"widths = \[0.0, 1.0\] is not allowed; must be at least 2 widths"),
    ("widths", [1.0], r"widths = \[1.0\] is not allowed; must be at least 2 widths"),
    ("ls_alpha", 1.5, r"ls_alpha = 1.5 is not allowed; must be in \[0, 1\)"),
    ("seeds", [], r"seeds = \[\] is not allowed"),
])
def test_config_rejects_bad_values_with_one_clear_message(key, value, message):
    with pytest.raises(ParamsError, match=message):
        build_config(nc.Config, {**RAW, key: value}, "neural_collapse.ci")


@pytest.fixture
def ci_root(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def test_analyse_before_train_is_a_clear_error(ci_root):
    ctx = make_context("neural_collapse", "ci", root=ci_root)
    with pytest.raises(CacheError, match=r"ce w=0.0625 seed=0 .*`python stages/neural_collapse.py train --scale ci`"):
        collect(ctx, T)


@pytest.mark.slow
@pytest.mark.needs_data
def test_ci_scale_end_to_end_writes_verdict_tables_and_figures(ci_repo):
    """From the session's `dvc repro` at ci: verdict, statistics, tables, figures; nothing retrains."""
    ctx = make_context("neural_collapse", "ci", root=ci_repo)
    record = json.loads((ctx.results_dir / "metrics.json").read_text())
    assert record["verdict"] in {"reproduced", "partially reproduced", "not reproduced", "inconclusive"}
    assert [c["id"] for c in record["criteria"]] == ["N1", "N2", "N2_spread", "N3", "TP"]  # TP: card v5, reported
    stats = record["statistics"]
    for key in ("nc1_ratio_max", "nc2_ratio_max", "nc3_ratio_max", "acc_spread_largest_pp", "nc2_random_largest",
                "nc1_ratio_worst_loss", "nc2_over_random_worst_loss", "train_acc_min_largest_pct"):
        assert stats[key] is not None and stats[key] >= 0, key
    gating = {ch["statistic"] for c in record["criteria"] if c["gating"] for ch in c["checks"]}
    assert gating <= set(record["samples"])  # one value per seed (ci: one seed, so every interval is undefined)
    # v4: the threshold null needs 2+ seeds (ci has one: none); the claim's own nulls are still drawn 200 times
    assert {cid: cal["claim_null_draws"] for cid, cal in record["null_calibration"].items()} == {"N1": 200, "N2": 200}
    for table in ("nc_history", "nc_final", "accuracy", "collapse_largest"):
        assert (ctx.results_dir / "tables" / f"{table}.csv").exists()
    hist = pd.read_csv(ctx.results_dir / "tables" / "nc_history.csv")
    assert set(hist["variant"]) == {"ce", "ls", "fl", "mse", nc.SECONDARY_LS}
    assert (ctx.figures_dir / "nc_vs_epoch.png").exists() and (ctx.figures_dir / "accuracy_vs_width.png").exists()
    records = collect(ctx, T)
    assert all((r.dir / "features.pt").exists() and not (r.dir / "checkpoint.pt").exists() for r in records)
    # a second train finds every run cached and retrains nothing
    done = sorted(ctx.runs_dir.glob("*/done.json"))
    stamps = [p.stat().st_mtime_ns for p in done]
    run_train(ctx, registry()["neural_collapse"])
    assert [p.stat().st_mtime_ns for p in done] == stamps and len(done) == 9
