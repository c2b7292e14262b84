"""Card v5 (issue 24): train each corpus model to a target training accuracy, exclude those that miss it."""

from dataclasses import replace

import numpy as np
import pandas as pd
from test_simpson_paradox_claim import small_ctx

from claimbench.claims import simpson_paradox as sp
from claimbench.claims.simpson_paradox import analyse as A
from claimbench.claims.simpson_paradox import train as T


def test_a_model_trains_until_its_training_accuracy_reaches_the_target(tmp_path):
    ctx = small_ctx(tmp_path, epochs=30, target_train_acc=0.3, lr=0.01)
    data = T.load_data(ctx)
    hp = {**sp.grid(ctx.cfg)[0], "dropout": 0.0, "batch_size": 32}
    rec = T.run_one(ctx, tmp_path, data, **hp)
    assert rec["train_acc"] >= 0.3 and 1 <= rec["epochs_run"] < 30  # stopped at the target, not the cap
    capped = T.run_one(replace(ctx, cfg=replace(ctx.cfg, epochs=2, target_train_acc=1.0)), tmp_path, data, **hp)
    assert capped["epochs_run"] == 2 and capped["train_acc"] < 1.0  # the cap ends a model that cannot fit


def test_the_corpus_rule_excludes_models_below_the_target_training_accuracy():
    df = pd.DataFrame({"test_acc": [0.8, 0.1, 0.7, 0.75], "train_acc": [0.995, 1.0, 0.97, np.nan]})
    assert list(A.trained(df, 0.2)) == [True, False, True, True]  # quick/ci: test accuracy only
    assert list(A.trained(df, 0.2, 0.99)) == [True, False, False, False]  # long: NaN never passes


def test_regime_statistics_report_the_lowest_training_accuracy_of_the_corpus(tmp_path):
    ctx = small_ctx(tmp_path)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"conv_layers": [2] * 4 + [6] * 4, "test_acc": rng.uniform(0.6, 0.8, 8),
                       "train_acc": [0.99, 1.0, 0.995, 0.999, 0.991, 1.0, 1.0, 0.993],
                       "alpha": rng.uniform(2, 4, 8), "alpha_se": np.full(8, 0.1)})
    for m in A.METRICS:
        df[m] = 1.0
    grid = pd.Series({2: 5, 6: 4})  # one 2-conv model missed the target: 4 of 5 kept
    stats = A.regime_statistics(df, [], ctx.cfg, grid)
    assert stats["train_acc_min"] == 0.99 and stats["trained_fraction_min"] == 0.8 and stats["excluded_models"] == 1


def test_long_gpu_and_quick_train_to_the_target():
    """Card v5's long, card v6's gpu (issue 24 item 6) and card v7's quick train to 0.99 (regime R4)."""
    import math
    from collections import Counter

    from conftest import REPO

    from claimbench.cards import judged_seeds, load_card
    from claimbench.claims import load_params
    from claimbench.stage import make_context

    card = load_card("simpson_paradox")
    r4 = next(r for r in card.regime if r.id == "R4")
    assert [(c.statistic, c.op, c.threshold) for c in r4.checks] == [("train_acc_min", ">=", 0.99)]
    quick = load_params(REPO / "params.yaml", "quick").claims["simpson_paradox"]
    long = load_params(REPO / "params.yaml", "long").claims["simpson_paradox"]
    assert quick.target_train_acc == long.target_train_acc == 0.99 and long.trained_min_acc == 0.2
    assert set(long.weight_decay) <= {0.0, 0.0005, 0.001}  # PGDL task 1's range (spec 2, B.1)
    sim = card.raw["power"]["simulation"]["scales"]
    assert sim["quick"]["regime"]["R4"] == sim["long"]["regime"]["R4"] == "met"
    for (scale, k), seeds in judged_seeds(card.raw).items():  # judged seeds = what the params train under
        cfg = make_context("simpson_paradox", scale, root=REPO, seed_set=k).cfg
        assert seeds == {cfg.seed + cfg.seed_base}, (scale, k)
    assert judged_seeds(card.raw)[("long", 0)] == {66000} and judged_seeds(card.raw)[("quick", 1)] == {65000}
    # card v6: a gpu-only version; gpu trains as long does, in stackable cells of 8 (engine stack_runs 8)
    v6 = next(e for e in card.raw["changelog"] if e["version"] == 6)
    assert card.version >= 6 and v6["scales"] == ["gpu"]
    gpu = load_params(REPO / "params.yaml", "gpu").claims["simpson_paradox"]
    assert gpu.target_train_acc == 0.99 and gpu.trained_min_acc == 0.2 and gpu.test_examples == 10000
    assert set(gpu.weight_decay) <= {0.0, 0.00025, 0.0005, 0.001} and max(gpu.dropout) <= 0.25  # pilots v5m/v5b
    assert min(math.ceil(gpu.train_examples / b) for b in gpu.batch_size) >= 8  # 4 steps/epoch did not fit (v5m)
    cells = Counter(tuple(p[k] for k in ("blocks", "dense_layers", "last_filters", "batch_size")) for p in sp.grid(gpu))
    assert set(cells.values()) == {8}  # train.stack_key's cells: one stacked group each
    assert sim["gpu"]["regime"] == {"R1": "met", "R2": "met", "R3": "met", "R4": "met"}
    assert {e["pilot"] for e in card.raw["power"]["simulation"]["expected"]["gpu"]} == {"v5b"}
    assert judged_seeds(card.raw)[("gpu", 0)] == {50000} and judged_seeds(card.raw)[("gpu", 1)] == {51000}
