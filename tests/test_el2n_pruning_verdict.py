"""Card v2 of the EL2N claim: per-replicate samples for every gating check, null draws for every gating
criterion (calibrated: ≤ 5% pass), the null code on known answers, NaN hardening and the regime gate."""

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from claimbench.cards import INCONCLUSIVE, OUT_OF_REGIME, PARTIAL, REPRODUCED, UNDECIDED, UNDEFINED, load_card
from claimbench.claims import el2n_pruning as claim
from claimbench.claims.el2n_pruning import analyse as A
from claimbench.claims.el2n_pruning import nulls as N
from claimbench.intervals import interval, replicates
from claimbench.metrics.ranking import spearman
from claimbench.stage import make_context
from claimbench.sweep import Record
from claimbench.verdict import criterion_pass_rate, judge, null_calibration

REPO = Path(__file__).resolve().parents[1]
CARD = load_card(claim.CLAIM_ID)
GATING = [c for c in CARD.criteria if c.gating]


@pytest.fixture
def ctx(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return make_context(claim.CLAIM_ID, "ci", root=tmp_path)


def fake_claim(ctx, n: int = 400, el2n_gain: float = 1.0) -> list[Record]:
    """Finished records of every run kind at ctx's config: EL2N ≈ GraNd, EL2N flags the corrupted labels,
    EL2N pruning beats random by `el2n_gain` pp (plus seed noise)."""
    cfg, g = ctx.cfg, torch.Generator().manual_seed(0)
    corrupted = torch.rand(n, generator=g) < 0.1
    records = []

    def run(key: dict, record: dict, tensors: dict | None = None, name: str = claim.SCORES) -> None:
        d = ctx.runs_dir / f"run{len(records)}"
        d.mkdir(parents=True)
        if tensors is not None:
            torch.save(tensors, d / name)
        records.append(Record(key, str(key["kind"]), d, record))

    for seed in sorted(s for e in claim.ensemble_seeds(cfg) for s in e):
        el2n = torch.rand(n, generator=g)
        scores = {"el2n_early": el2n, "grand_early": el2n + 0.01 * torch.rand(n, generator=g),
                  "grand_init": torch.rand(n, generator=g), "el2n_init": torch.rand(n, generator=g)}
        run(claim.run_key(cfg, "score", seed=seed), {"test_acc": 90 + float(torch.rand(1, generator=g)),
                                                      "train_acc": 99.5}, scores)
        for mode in cfg.noise_modes:
            noisy = corrupted.double() + 0.5 * torch.rand(n, generator=g, dtype=torch.float64)
            run(claim.run_key(cfg, "noise", mode=mode, fraction=cfg.noise_fraction, seed=seed), {"test_acc": 80.0},
                {"el2n_early": noisy})
    run(claim.data_stats_key(cfg), {"n_train": n, "n_test": n},
        {"input_norm": torch.rand(n, generator=g), **{f"corrupted_{m}": corrupted for m in cfg.noise_modes}},
        claim.DATA_STATS)
    for keep in cfg.keep_fractions:
        for method in cfg.methods:
            for r in range(cfg.replicates):
                acc = 88 + float(torch.rand(1, generator=g)) + (el2n_gain if method == "el2n" else 0.0)
                run(claim.run_key(cfg, "prune", method=method, keep=keep, seed=claim.prune_seed(cfg, r), steps=4,
                                  subset="x"), {"test_acc": acc, "steps": 4, "n_kept": round(keep * n)})
    return records


def test_every_gating_check_has_per_replicate_samples_and_every_gating_criterion_null_draws(ctx):
    result = A.analyse(fake_claim(ctx), ctx)
    for c in GATING:
        for ch in c.checks:
            s = result.samples[ch.statistic]  # v4: a rank correlation over every scored example declares its form
            kind = "correlations" if ch.statistic.startswith("spearman") else "replicates"
            assert s.kind == kind and len(s.values) == ctx.cfg.replicates, ch.statistic
            assert all(math.isfinite(v) for v in s.values)
        draws = result.null_draws[c.id]
        assert len(draws) >= 200 and all({ch.statistic for ch in c.checks} <= set(d) for d in draws)
    assert result.statistics["full_data_acc_min"] >= 90
    assert result.tables["replicates"]["replicate"].tolist() == list(range(ctx.cfg.replicates))
    calibration = null_calibration(result, CARD)
    assert set(calibration) == {c.id for c in GATING}
    # v4: calibrated at the threshold from the ci scale's 2 replicates (2² resamples, enumerated exactly) ...
    assert all(calibration[c.id]["draws"] == 4 and calibration[c.id]["exact"] for c in GATING), calibration
    assert all(calibration[c.id]["pass_upper"] <= 0.05 for c in GATING), calibration
    # ... and the claim's effect-absent draws are reported beside it (permuted scores and masks never pass)
    assert calibration["E3"]["claim_null_pass_rate"] == calibration["E5"]["claim_null_pass_rate"] == 0.0
    assert calibration["E1"]["claim_null_draws"] == 1000 and "control_pass_rate" in calibration["E1"]


def test_null_draws_are_seeded(ctx):
    records = fake_claim(ctx)
    a, b = A.analyse(records, ctx), A.analyse(records, ctx)
    assert a.null_draws["E1"][:5] == b.null_draws["E1"][:5] and a.null_draws["E3"][:5] == b.null_draws["E3"][:5]


def test_permuted_scores_give_spearman_zero_and_permuted_masks_auroc_one_half():
    rng, n = np.random.default_rng(0), 5000
    x = rng.normal(size=n)
    assert spearman(x, x) == pytest.approx(1.0)
    rho = np.array([d.values for d in N.permuted_spearman(rng, [(x, x), (x, -x)], draws=300)])
    assert abs(rho.mean()) < 0.01 and rho.std() == pytest.approx(1 / math.sqrt(n), rel=0.2)
    mask = np.zeros(n, bool)
    mask[:500] = True
    au = np.array([d.values for d in N.permuted_auroc(rng, [np.where(mask, 2.0, 0.0) + rng.random(n)], mask, 300)])
    assert abs(au.mean() - 0.5) < 0.01 and au.max() < 0.6  # the unpermuted mask gives AUROC 1


@pytest.mark.parametrize("cid, shift", [("E1", 0.0), ("E2", N.E2_MARGIN)])
def test_the_normal_nulls_pass_about_the_t_tests_one_sided_2_5_percent(cid, shift):
    crit = next(c for c in CARD.criteria if c.id == cid)
    name = crit.checks[0].statistic
    draws = [{name: s} for s in N.normal_draws(np.random.default_rng(1), 3, shift, 2.0, draws=4000)]
    assert 0.015 < criterion_pass_rate(crit, draws)["pass_rate"] < 0.035
    strong = [{name: s} for s in N.normal_draws(np.random.default_rng(1), 3, 5.0 if cid == "E1" else -4.5, 0.5)]
    assert criterion_pass_rate(crit, strong)["pass_rate"] > 0.9  # the criterion can pass at all


def test_e2_null_sits_on_the_cards_margin():
    (check,) = next(c for c in CARD.criteria if c.id == "E2").checks
    assert (check.op, check.threshold) == ("<=", N.E2_MARGIN)


def test_a_nan_spread_gives_undefined_draws_that_never_pass():
    draws = N.normal_draws(np.random.default_rng(0), 3, 0.0, float("nan"), draws=10)
    assert all(not interval(d).defined for d in draws)
    e1 = next(c for c in CARD.criteria if c.id == "E1")
    assert criterion_pass_rate(e1, [{"el2n_minus_random_pruned50": d} for d in draws])["pass_rate"] == 0.0


def test_dead_scores_give_nan_spearman_and_an_undecided_e3():
    assert math.isnan(spearman(np.ones(50), np.arange(50.0)))  # a constant score vector ranks nothing
    samples = {"spearman_el2n_early_grand_early": replicates([0.95, float("nan"), 0.97])}
    e3 = next(c for c in judge(CARD, {}, samples)["criteria"] if c["id"] == "E3")
    assert e3["outcome"] == UNDECIDED and e3["reason_kind"] == UNDEFINED


def passing_samples() -> dict:
    return {"el2n_minus_random_pruned50": replicates([1.0, 1.2, 1.1]),
            "full_minus_el2n_pruned50": replicates([-0.2, 0.0, -0.1]),
            "spearman_el2n_early_grand_early": replicates([0.95, 0.96, 0.97]),
            "auroc_el2n_noise_permute": replicates([0.95, 0.96, 0.97])}


FITS = {"full_data_train_acc_min": 99.4}  # regime R2 (card v5) met


@pytest.mark.parametrize("acc_min", [float("nan"), 50.0, 79.9])
def test_untrained_or_nan_full_data_runs_make_the_verdict_out_of_regime(acc_min):
    judged = judge(CARD, {"full_data_acc_min": acc_min, **FITS}, passing_samples())
    assert judged["verdict"] == INCONCLUSIVE and judged["reason_kind"] == OUT_OF_REGIME and "R1" in judged["reason"]
    assert judge(CARD, {"full_data_acc_min": 86.0, **FITS}, passing_samples())["verdict"] == REPRODUCED


@pytest.mark.parametrize("train_min", [float("nan"), 98.99, 90.0])
def test_full_data_runs_that_do_not_fit_put_e2_out_of_regime(train_min):
    """Card v5, R2 (applies to E2, E2b): a full-data run under 99% train accuracy, or one that never recorded
    it (NaN), leaves E2 undecided out of regime: with E1, E3, E5 passing the verdict is inconclusive (it could
    be reproduced or partially), never reproduced on a loss measured against an unfitted baseline."""
    judged = judge(CARD, {"full_data_acc_min": 86.0, "full_data_train_acc_min": train_min}, passing_samples())
    e2 = next(c for c in judged["criteria"] if c["id"] == "E2")
    assert e2["outcome"] == UNDECIDED and e2["reason_kind"] == OUT_OF_REGIME
    assert judged["verdict"] == INCONCLUSIVE and judged["reason_kind"] == OUT_OF_REGIME
    failing = {**passing_samples(), "full_minus_el2n_pruned50": replicates([1.7, 1.9, 1.8])}
    assert judge(CARD, {"full_data_acc_min": 86.0, **FITS}, failing)["verdict"] == PARTIAL  # the pilots' world


def test_a_nan_pruned_run_leaves_e1_undecided_not_passed(ctx):
    records = fake_claim(ctx, el2n_gain=5.0)
    bad = next(r for r in records if r.key["kind"] == "prune" and r.key["method"] == "el2n" and r.key["keep"] == 0.5)
    bad.record["test_acc"] = float("nan")
    result = A.analyse(records, ctx)
    iv = interval(result.samples["el2n_minus_random_pruned50"])
    assert not iv.defined and "NaN" in iv.reason
    assert math.isnan(result.statistics["el2n_acc_pruned50"])
