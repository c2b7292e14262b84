"""Claim neural_collapse: run plan and keys, analysis statistics and figures on hand-made records, and
the `ci` scale end to end."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import claimbench.claims.neural_collapse as nc
from claimbench.claims import registry
from claimbench.claims.neural_collapse import analyse as A
from claimbench.claims.neural_collapse import figures as F
from claimbench.claims.neural_collapse import train as T
from claimbench.collapse_losses import LOSS_NAMES
from claimbench.errors import CacheError, ParamsError
from claimbench.executor import collect
from claimbench.params import build_config
from claimbench.stage import make_context, run_train
from claimbench.sweep import Record
from claimbench.train import config_hash

REPO = Path(__file__).resolve().parents[1]
RAW = {"train_per_class": 10, "test_per_class": None, "widths": [1.0, 0.5], "epochs": 2, "batch_size": 8,
       "lr": 0.1, "seeds": [0, 1]}


def test_nc_epochs_are_log_spaced_and_include_first_and_last():
    assert nc.nc_epochs(35, 8) == [1, 2, 3, 5, 8, 13, 21, 35]
    assert nc.nc_epochs(1, 4) == [1]


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
    # folder names as the pre-contract code made them: a changed key would silently retrain every run
    assert [config_hash(plan[i].key) for i in (0, -1)] == ["c4502a0651e9", "3b0a5d7897c2"]


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


def test_accuracy_spread_and_its_standard_error():
    records = [{"variant": loss, "width": w, "seed": s, "test_acc": acc + 0.01 * s,
                "final": {"train_acc": 1.0}}
               for w, accs in ((0.5, (0.80, 0.82, 0.85, 0.81)), (1.0, (0.90, 0.905, 0.90, 0.90)))
               for loss, acc in zip(LOSS_NAMES, accs) for s in (0, 1)]
    acc = A.accuracy_frame(records)
    spread, se = A.spread(acc, 0.5)
    assert spread == pytest.approx(5.0) and se == pytest.approx((0.5**2 + 0.5**2) ** 0.5)  # seed SE = 0.5 pt
    assert A.spread(acc, 1.0)[0] == pytest.approx(0.5)


def fake_records(ctx) -> list[Record]:
    """One made-up finished run per planned spec: NC falls 10x (100x for CE) over training; CE tests best."""
    metrics = ("nc1", "nc2", "nc3", "nc2_uncentred", "nc3_uncentred", "nc3_papyan", "nc4", "equinorm_means",
               "equinorm_weights", "max_angle_means", "max_angle_weights")
    out = []
    for spec in T.plan(ctx):
        a = spec.args
        drop = 100.0 if a["variant"] == "ce" else 10.0
        hist = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 1.0, **{m: 1.0 / drop ** (e > 1) for m in metrics}}
                for e in (1, 2)]
        rec = {**a, "history": hist, "final": hist[-1], "test_acc": 0.8 + 0.1 * (a["variant"] == "ce"),
               "test_loss": 0.5, "wall_s": 0.0}
        out.append(Record(spec.key, spec.label, Path("/nonexistent"), rec))
    return out


def test_analyse_and_figures_from_records_only(ci_root):
    ctx = make_context("neural_collapse", "ci", root=ci_root)
    result = A.analyse(fake_records(ctx), ctx)
    s = result.statistics
    assert s["nc1_ratio_ce"] == pytest.approx(0.01) and s["nc1_ratio_max"] == pytest.approx(0.1)
    assert s["acc_spread_largest_pp"] == pytest.approx(10.0) and s["acc_spread_shrink_pp"] == pytest.approx(0.0)
    assert s["largest_width"] == max(ctx.cfg.widths) and s["train_err_max_pp"] == pytest.approx(0.0)
    assert set(result.tables["nc_history"]["variant"]) == {*LOSS_NAMES, nc.SECONDARY_LS}
    assert result.figure_data["variant_labels"]["ls"] == f"LS α={ctx.cfg.ls_alpha:g}"
    F.figures(result, ctx)
    assert sorted(p.name for p in ctx.figures_dir.iterdir()) == ["accuracy_vs_width.png", "nc_vs_epoch.png"]


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
    assert record["verdict"] in {"reproduced", "partially reproduced", "not reproduced"}
    assert [c["id"] for c in record["criteria"]] == ["N1", "N2", "N3"]
    stats = record["statistics"]
    for key in ("nc1_ratio_max", "nc2_ratio_max", "nc3_ratio_max", "acc_spread_largest_pp"):
        assert stats[key] is not None and stats[key] >= 0, key
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
