"""Claim simpson_paradox, card v3: bootstrap samples and null draws for every gating criterion, the null
code on known answers, the regime (the trained-model corpus rule, alpha fit noise), NaN as undecided, and
disjoint seed sets."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from claimbench.cards import INCONCLUSIVE, OUT_OF_REGIME, PASS, UNDECIDED, UNDEFINED, load_card
from claimbench.claims import load_params
from claimbench.claims import simpson_paradox as sp
from claimbench.claims.simpson_paradox import analyse as A
from claimbench.claims.simpson_paradox import figures as F
from claimbench.claims.simpson_paradox import train as T
from claimbench.intervals import Samples, interval
from claimbench.results import ClaimResult
from claimbench.stage import make_context
from claimbench.verdict import judge as judge_card
from claimbench.verdict import null_calibration

CARD = load_card("simpson_paradox")
GATING = [c for c in CARD.criteria if c.gating]


def corpus(per_depth: int = 16, seed: int = 0, spread: float = 0.01) -> pd.DataFrame:
    """A synthetic corpus with the claimed pattern: deeper models have a larger log spectral norm and a
    higher test accuracy, but within a depth the norm falls slightly as accuracy rises (a scale metric's
    paradox: reversed within depth);
    within a depth alpha falls as accuracy rises, but deeper models have larger alpha, so pooled tau(alpha)
    is about 0 (a shape metric). `spread`: test-accuracy step between models of one depth."""
    rng = np.random.default_rng(seed)
    rows = []
    for depth, acc0, norm0, alpha0 in ((2, 0.6, 0.0, 3.0), (6, 0.8, 2.0, 4.5)):
        for i in range(per_depth):
            acc = acc0 + spread * i
            rows.append({"conv_layers": depth, "test_acc": acc, "train_acc": acc + 0.02,
                         "log_spectral_norm": norm0 + rng.uniform(0, 0.5) - 0.005 * i, "alpha": alpha0 - 0.1 * i,
                         "alpha_se": 0.1,
                         **{m: rng.normal() for m in A.METRICS if m not in ("log_spectral_norm", "alpha")}})
    return pd.DataFrame(rows)


def judge(df: pd.DataFrame, regime: dict | None = None, n_boot: int = 1000) -> dict:
    """The card's verdict on a corpus table, as the framework computes it (with null calibration)."""
    _, stats, samples = A.association_table(df, n_boot, seed=0)
    res = ClaimResult(stats, samples=samples, null_draws=A.null_draws(df, seed=0))
    stats.update({"trained_fraction_min": 1.0, "test_acc_spread_over_noise_min": 5.0,
                  "alpha_spread_over_fit_noise_min": 5.0, "train_acc_min": 0.995, **(regime or {})})
    stats.update({k: interval(s).estimate for k, s in samples.items()})
    null = null_calibration(res, CARD)
    return {**judge_card(CARD, stats, {k: s.to_json() for k, s in samples.items()}, null), "null": null}


def test_the_claimed_pattern_is_reproduced_and_every_gating_criterion_is_calibrated():
    v = judge(corpus())
    by_id = {c["id"]: c for c in v["criteria"]}
    assert by_id["S1"]["outcome"] == PASS and by_id["S2"]["outcome"] == PASS and v["verdict"] == "reproduced"
    for c in GATING:
        # v4: calibrated at the threshold (each bootstrap draw moved onto the pass line keeps its shape) ...
        assert by_id[c.id]["null_draws"] == 1000 and 0 <= by_id[c.id]["null_pass_upper"] <= 0.05
        # ... and the claim's effect-absent worlds are reported beside it: a strong effect, never passed there
        assert v["null"][c.id]["claim_null_draws"] == A.NULL_DRAWS >= 200
        assert v["null"][c.id]["claim_null_pass_rate"] == 0.0


def test_null_draws_on_known_answers():
    df = corpus()
    draws = A.null_draws(df, seed=0)
    assert set(draws) == {c.id for c in GATING} and all(len(d) == A.NULL_DRAWS for d in draws.values())
    for c in GATING:  # every draw gives every statistic the criterion checks, with a bootstrap
        assert all({ch.statistic for ch in c.checks} <= set(d) for d in draws[c.id])
        assert all(isinstance(s, Samples) and len(s.values) == A.NULL_BOOT for d in draws[c.id] for s in d.values())
    est = lambda cid, name: np.array([d[name].estimate for d in draws[cid]])  # noqa: E731
    # S1 (depth labels shuffled): tau_pooled is untouched, and each random "depth" group follows the pooled
    # trend, so the paradox margin is about -1/2 |tau_pooled| (groups of 16 add noise)
    pooled = est("S1", "abs_tau_pooled_log_spectral_norm")
    assert np.allclose(pooled, pooled[0]) and pooled[0] > 0.3
    assert np.median(est("S1", "paradox_margin_log_spectral_norm")) == pytest.approx(-pooled[0] / 2, abs=0.1)
    # S2 (test accuracy permuted): E[tau] = 0 under permutation; the mean of 200 draws is within 3 se of 0
    within = est("S2", "tau_mean_within_alpha")
    assert abs(within.mean()) < 3 * within.std() / np.sqrt(len(within))
    assert (est("S2", "shape_gap_signed_alpha") < 0).mean() > 0.5
    # seeded: the same draws again
    again = A.null_draws(df, seed=0)
    assert again["S2"][7]["tau_mean_within_alpha"] == draws["S2"][7]["tau_mean_within_alpha"]


def test_s2_needs_the_sign_hts_r_predicts():
    df = corpus()
    df["alpha"] = df.groupby("conv_layers")["alpha"].transform(lambda a: a.iloc[::-1].to_numpy())  # within: +1
    by_id = {c["id"]: c for c in judge(df)["criteria"]}
    assert by_id["S2"]["outcome"] == "fail"  # v1's sign-blind gap would have passed it
    assert by_id["S2_rand_distance"]["gating"] is False


def test_regime_unmet_makes_the_verdict_inconclusive():
    v = judge(corpus(), regime={"trained_fraction_min": 14 / 16})  # two of a depth's 16 models did not train
    assert v["verdict"] == INCONCLUSIVE and v["reason_kind"] == OUT_OF_REGIME and "R1" in v["reason"]
    assert judge(corpus(), regime={"trained_fraction_min": 15 / 16})["verdict"] == "reproduced"  # one did not
    v = judge(corpus(), regime={"test_acc_spread_over_noise_min": 1.2})
    assert v["verdict"] == INCONCLUSIVE and "R2" in v["reason"]


def test_alpha_within_fit_noise_puts_s2_out_of_regime_not_failed():
    """What fit noise can do: within depth alpha carries nothing (tau about 0), so S2 fails on its gap."""
    df = corpus(per_depth=24)
    noise = np.random.default_rng(1).normal(0, 0.05, len(df))
    df["alpha"] = df.groupby("conv_layers")["alpha"].transform("mean") + noise
    v = judge(df, regime={"alpha_spread_over_fit_noise_min": 1.5})
    by_id = {c["id"]: c for c in v["criteria"]}
    assert by_id["S2"]["outcome"] == UNDECIDED and by_id["S2"]["reason_kind"] == OUT_OF_REGIME
    assert by_id["S2"]["outcome_in_regime"] == "fail" and by_id["S1"]["outcome"] == PASS
    assert v["regime"][2]["id"] == "R3" and v["regime"][2]["settled"] is False  # the sign is not decided
    assert v["verdict"] == INCONCLUSIVE  # reproduced or partially: S1 alone does not decide


def test_a_decidedly_wrong_signed_alpha_fails_s2_whatever_the_fit_noise():
    """Card v7's one-sided R3: noise attenuates tau toward 0 and cannot make it decidedly positive."""
    df = corpus()
    df["alpha"] = df.groupby("conv_layers")["alpha"].transform(lambda a: a.iloc[::-1].to_numpy())  # within: +1
    v = judge(df, regime={"alpha_spread_over_fit_noise_min": 1.5})
    by_id = {c["id"]: c for c in v["criteria"]}
    assert by_id["S2"]["outcome"] == "fail" and by_id["S2"]["regime_settled"] == ["R3"]
    assert v["verdict"] == "partially reproduced"  # S1 passes, S2 fails


def test_regime_statistics_from_a_corpus():
    df = corpus(spread=0.01)
    cfg = replace(load_params(REPO / "params.yaml", "quick").claims["simpson_paradox"], test_examples=5000,
                  heldout_examples=0)
    st = A.regime_statistics(df, [], cfg)
    sd = df[df.conv_layers == 2].test_acc.std()  # same sd in both groups; p(1-p) larger at depth 2 (p 0.675)
    p = df[df.conv_layers == 2].test_acc.mean()
    assert st["test_acc_spread_over_noise_min"] == pytest.approx(sd / np.sqrt(p * (1 - p) / 5000))
    assert st["alpha_spread_over_fit_noise_min"] == pytest.approx(df[df.conv_layers == 2].alpha.std() / 0.1)
    assert st["diverged_models"] == 0 and st["test_acc_min"] == pytest.approx(0.6)
    assert st["trained_fraction_min"] == 1 and st["excluded_models"] == 0
    assert A.regime_statistics(corpus(spread=0.0), [], cfg)["test_acc_spread_over_noise_min"] == 0


def test_models_that_did_not_train_leave_the_corpus_and_are_counted_by_depth():
    full = corpus()
    full.loc[[3, 20], "test_acc"] = [0.11, 0.19]  # one model of each depth below twice chance
    cfg = load_params(REPO / "params.yaml", "quick").claims["simpson_paradox"]
    assert cfg.trained_min_acc == 0.2  # the card's rule at quick (twice chance)
    df = full[A.trained(full, 0.2)].reset_index(drop=True)
    st = A.regime_statistics(df, [], cfg, A.grid_per_depth(full, []))
    assert st["trained_fraction_min"] == 15 / 16 and st["excluded_models"] == 2 and st["test_acc_min"] >= 0.2
    full.loc[4, "test_acc"] = 0.15  # a second one at depth 2
    df = full[A.trained(full, 0.2)]
    assert A.regime_statistics(df, [], cfg, A.grid_per_depth(full, []))["trained_fraction_min"] == 14 / 16
    # the analysed statistics are those of the corpus without them, whatever their accuracy was
    same = corpus().drop(index=[3, 4, 20]).reset_index(drop=True)
    got, want = (pd.Series(A.association_table(d, 50, 0)[1]) for d in (df.reset_index(drop=True), same))
    assert got.equals(want)  # NaN (undefined group statistics) compare equal here


def test_a_nan_metric_is_undecided_not_a_pass(tmp_path):
    df = corpus()
    df.loc[3, "alpha"] = np.nan  # one model's alpha undefined (e.g. a failed power-law fit)
    by_id = {c["id"]: c for c in judge(df)["criteria"]}
    assert by_id["S2"]["outcome"] == UNDECIDED and by_id["S2"]["reason_kind"] == UNDEFINED
    assert by_id["S1"]["outcome"] == PASS  # the other metric is unaffected
    F.simpson_figure(df, "alpha", tmp_path / "alpha.png")  # the figure leaves the NaN model out
    assert (tmp_path / "alpha.png").exists()


def test_a_nan_layer_makes_the_model_metric_nan(monkeypatch):
    import torch

    layers = pd.DataFrame({m: [1.0, np.nan] if m == "alpha" else [1.0, 2.0] for m in (*A.METRICS, "sigma")})
    monkeypatch.setattr(A, "analyze_matrices", lambda *a, **k: layers)
    got = A.model_metrics({"w": torch.zeros(3, 3)}, min_evals=1)
    assert np.isnan(got["alpha"]) and got["log_norm"] == 1.5  # not the mean over the finite layer
    assert got["alpha_se"] == pytest.approx(np.sqrt(1 + 4) / 2)  # sqrt(sum of the layers' sigma²) / layers


def test_seed_sets_are_disjoint_and_set_0_keeps_its_run_keys(tmp_path):
    ctx = make_context("simpson_paradox", "quick", str(REPO / "params.yaml"), tmp_path)
    cfg = ctx.cfg
    assert sp.with_seed_set(cfg, 0) is cfg
    one, two = sp.with_seed_set(cfg, 1), sp.with_seed_set(cfg, 2)
    seeds = [{sp.model_seed(hp, c) for hp in sp.grid(c)} for c in (cfg, one, two)]
    assert all(len(s) == len(sp.grid(cfg)) for s in seeds)
    assert not (seeds[0] & seeds[1] or seeds[0] & seeds[2] or seeds[1] & seeds[2])
    assert len({sp.bootstrap_seed(c) for c in (cfg, one, two)}) == 3
    assert one.seed == cfg.seed  # data subsets (balanced train subset, test subset) stay the same
    keys0 = [s.key for s in T.plan(ctx)]
    assert keys0[0].get("seed_base", 0) == cfg.seed_base  # card v5: judged set 0 has its own fresh seed_base
    keys1 = [s.key for s in T.plan(replace(ctx, cfg=one))]
    assert not set(map(str, keys0)) & set(map(str, keys1))
