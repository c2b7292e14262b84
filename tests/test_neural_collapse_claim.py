"""Claim neural_collapse: analysis statistics on hand-made records, and the `ci` scale end to end."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from claimbench.claims import neural_collapse as nc
from claimbench.errors import CacheError, ParamsError
from claimbench.params import build_config
from claimbench.stage import make_context, run_train

REPO = Path(__file__).resolve().parents[1]


def test_nc_epochs_are_log_spaced_and_include_first_and_last():
    assert nc.nc_epochs(35, 8) == [1, 2, 3, 5, 8, 13, 21, 35]
    assert nc.nc_epochs(1, 4) == [1]


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
    vals = {(loss, s): (1.0, 0.05) for loss in nc.LOSS_NAMES for s in (0, 1)}
    vals[("fl", 1)] = (2.0, 0.8)  # ratio 0.4: fails the NC1 0.1 bound, passes the 0.5 NC2/NC3 bounds
    stats, table = nc.collapse_statistics(history(vals), 1.0)
    assert stats["nc1_ratio_max"] == pytest.approx(0.4) and stats["nc1_ratio_ce"] == pytest.approx(0.05)
    assert stats["nc1_first_fl"] == pytest.approx(1.5) and stats["nc1_final_fl"] == pytest.approx(0.425)
    assert len(table) == 4


def test_accuracy_spread_and_its_standard_error():
    records = [{"variant": loss, "width": w, "seed": s, "test_acc": acc + 0.01 * s,
                "final": {"train_acc": 1.0}}
               for w, accs in ((0.5, (0.80, 0.82, 0.85, 0.81)), (1.0, (0.90, 0.905, 0.90, 0.90)))
               for loss, acc in zip(nc.LOSS_NAMES, accs) for s in (0, 1)]
    acc = nc.accuracy_frame(records)
    spread, se = nc.spread(acc, 0.5)
    assert spread == pytest.approx(5.0) and se == pytest.approx((0.5**2 + 0.5**2) ** 0.5)  # seed SE = 0.5 pt
    assert nc.spread(acc, 1.0)[0] == pytest.approx(0.5)


@pytest.mark.parametrize("key,value,message", [
    ("widths", [0.0, 1.0], r"widths = \[0.0, 1.0\] is not allowed; must be at least 2 widths"),
    ("widths", [1.0], r"widths = \[1.0\] is not allowed; must be at least 2 widths"),
    ("ls_alpha", 1.5, r"ls_alpha = 1.5 is not allowed; must be in \[0, 1\)"),
    ("seeds", [], r"seeds = \[\] is not allowed"),
])
def test_config_rejects_bad_values_with_one_clear_message(key, value, message):
    raw = {"train_per_class": 10, "test_per_class": None, "widths": [0.5, 1.0], "epochs": 2, "batch_size": 8,
           "lr": 0.1, "seeds": [0], key: value}
    with pytest.raises(ParamsError, match=message):
        build_config(nc.Config, raw, "neural_collapse.ci")


@pytest.fixture
def ci_root(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def test_analyse_before_train_is_a_clear_error(ci_root):
    ctx = make_context("neural_collapse", "ci", root=ci_root)
    with pytest.raises(CacheError, match="run `python stages/neural_collapse.py train --scale ci`"):
        nc.analyse(ctx)


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
    # a second train finds every run cached and retrains nothing
    done = sorted((ctx.artifacts_dir / "runs").glob("*/done.json"))
    stamps = [p.stat().st_mtime_ns for p in done]
    run_train(ctx, nc)
    assert [p.stat().st_mtime_ns for p in done] == stamps and len(done) == 9
