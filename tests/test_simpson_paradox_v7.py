"""Card v7 (issue 24): held-out training-split images join the test set (regime R2's noise), and R3 is one-sided."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from test_simpson_paradox_claim import small_ctx

from claimbench.claims import simpson_paradox as sp
from claimbench.claims.simpson_paradox import analyse as A
from claimbench.claims.simpson_paradox import train as T
from claimbench.errors import DataError


def _rows(x):
    return {hash(r.numpy().tobytes()) for r in x.reshape(len(x), -1)}


def test_heldout_images_join_the_test_set_and_are_never_trained_on(tmp_path):
    ctx = small_ctx(tmp_path, heldout_examples=300)
    x, y, x_test, y_test, _ = T.load_data(ctx)
    plain = T.load_data(small_ctx(tmp_path))
    assert len(x_test) == len(y_test) == 200 + 300 and len(plain[2]) == 200
    assert (x_test[:200] == plain[2]).all() and (x == plain[0]).all()  # the test subset and training set unchanged
    assert not _rows(x_test[200:]) & _rows(x)  # the held-out images are outside the training subset
    assert len(_rows(x_test[200:])) == 300  # drawn without replacement


def test_asking_for_more_heldout_images_than_the_train_split_has_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="lower heldout_examples"):
        T.load_data(small_ctx(tmp_path, heldout_examples=10**6))


@pytest.mark.parametrize("key, value", [("target_train_acc", 0.99), ("heldout_examples", 20000), ("seed_base", 64000)])
def test_a_zero_keeps_key_is_a_recipe_key_only_when_set(tmp_path, key, value):
    """Card v5's target and v7's held-out images: at 0 absent from a run's key, so older runs keep theirs."""
    ctx = small_ctx(tmp_path)
    hp = sp.grid(ctx.cfg)[0]
    assert key in sp.ZERO_KEEPS_KEY and key not in sp.sweep_key(hp, replace(ctx.cfg, **{key: 0}))
    assert sp.sweep_key(hp, replace(ctx.cfg, **{key: value}))[key] == value


def test_regime_r2_reads_the_noise_of_the_whole_evaluation_set(tmp_path):
    ctx = small_ctx(tmp_path)
    ctx = replace(ctx, cfg=replace(ctx.cfg, test_examples=10000, heldout_examples=20000))
    df = pd.DataFrame({"conv_layers": [2] * 4, "test_acc": [0.78, 0.79, 0.80, 0.81], "train_acc": 1.0,
                       "alpha": [3.0, 3.5, 4.0, 4.5], "alpha_se": 0.1})
    for m in A.METRICS:
        df[m] = 1.0
    stats = A.regime_statistics(df, [], ctx.cfg)
    p = df["test_acc"].mean()
    assert stats["test_examples_for_noise"] == 30000
    assert stats["test_acc_spread_over_noise_min"] == pytest.approx(df["test_acc"].std() / np.sqrt(p * (1 - p) / 30000))


def test_v5s_long_corpus_reads_not_reproduced_under_the_one_sided_r3():
    """Known answer on a committed corpus: v5's long result (seed 40000, R3 1.73 unmet) failed S2 with a wrong-signed
    within-depth tau, +0.294 [0.147, 0.432]; card v7 settles R3 there, so S2's fail stands and, with S1 failing,
    the claim is not reproduced (under v5/v6: at most partially reproduced)."""
    from conftest import REPO

    from claimbench import rejudge
    from claimbench.cards import NOT_REPRODUCED, all_cards

    path = REPO / "results/archive/card-v6/long/simpson_paradox/metrics.json"
    after = rejudge.rejudge(path, all_cards())["after"]
    r3 = next(r for r in after["regime"] if r["id"] == "R3")
    s2 = next(c for c in after["criteria"] if c["id"] == "S2")
    assert (r3["met"], r3["settled"], s2["outcome"], s2["regime_settled"]) == (False, True, "fail", ["R3"])
    assert after["verdict"] == NOT_REPRODUCED


def test_card_v7_judges_quick_and_long_on_one_protocol_with_fresh_seeds():
    from conftest import REPO

    from claimbench.cards import judged_seeds, load_card
    from claimbench.claims import load_params
    from claimbench.engine import settings_for

    card = load_card("simpson_paradox")
    r3 = next(r for r in card.regime if r.id == "R3")
    assert [(c.statistic, c.op, c.threshold) for c in r3.settled_if] == [("tau_mean_within_alpha", ">", 0.0)]
    v7 = next(e for e in card.raw["changelog"] if e["version"] == 7)
    assert v7["scales"] == ["quick", "long"]
    quick, long = (load_params(REPO / "params.yaml", s) for s in ("quick", "long"))
    q, lg = quick.claims["simpson_paradox"], long.claims["simpson_paradox"]
    assert replace(q, seed_base=0) == replace(lg, seed_base=0)  # one protocol, two seed sets
    assert q.heldout_examples == 20000 and q.target_train_acc == 0.99
    assert settings_for(quick, "simpson_paradox").stack_runs == settings_for(long, "simpson_paradox").stack_runs == 9
    seeds = judged_seeds(card.raw)
    assert (seeds[("quick", 0)], seeds[("quick", 1)], seeds[("long", 0)], seeds[("long", 1)]) == \
        ({64000}, {65000}, {66000}, {67000})
