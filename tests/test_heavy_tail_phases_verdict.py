"""heavy_tail_phases card v3-v5: per-seed samples, null draws (batch-size labels shuffled within seed),
the regime gates (R1 on the whole claim, R2 on C3: (T, t) from v5), NaN hardening for diverged runs,
disjoint seed sets."""

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
from conftest import REPO
from scipy import stats

from claimbench import stage
from claimbench.cards import INCONCLUSIVE, OUT_OF_REGIME, PARTIAL, REPRODUCED, UNDECIDED, UNDEFINED, load_card
from claimbench.claims import heavy_tail_phases as claim
from claimbench.claims import load_params
from claimbench.claims.heavy_tail_phases import analyse as A
from claimbench.intervals import correlations, exact_rho_pvalues, interval, labels, replicates
from claimbench.metrics.correlation import spearman_rho
from claimbench.metrics.phases import adjacent_inversions
from claimbench.params import SCALES, build_config
from claimbench.sweep import Record
from claimbench.verdict import criterion_pass_rate, judge, null_calibration

CARD = load_card(claim.CLAIM_ID)
GATING = [c for c in CARD.criteria if c.gating]


def _context(tmp_path, sizes, seeds):
    ctx = stage.make_context(claim.CLAIM_ID, "ci", root=REPO)
    cfg = build_config(claim.Config, {"batch_sizes": list(sizes), "seeds": list(seeds), "epochs": 1}, "x")
    return dataclasses.replace(ctx, cfg=cfg, root=tmp_path)


def _runs(folder, sizes, seeds, acc=lambda bs, seed: (0.9, 0.5 - bs / 1000 + seed / 100), nan_at=()):
    """Finished runs with Gaussian FC weights; (train, test) accuracy from `acc`; NaN weights at `nan_at`."""
    gen = torch.Generator().manual_seed(0)
    records = []
    for bs, seed in itertools.product(sizes, seeds):
        d = folder / f"bs{bs}-{seed}"
        d.mkdir(parents=True)
        w = {"fc1.weight": torch.randn(384, 4096, generator=gen, dtype=torch.float64),
             "fc2.weight": torch.randn(192, 384, generator=gen, dtype=torch.float64)}
        if (bs, seed) in nan_at:
            w["fc1.weight"][0, 0] = float("nan")
        torch.save(w, d / "model.pt")
        train, test = acc(bs, seed)
        rec = {"train_acc": train, "test_acc": test, "steps": 1000 // bs, "epochs": 1}
        records.append(Record({"batch_size": bs, "seed": seed}, f"bs={bs} seed={seed}", d, rec))
    return records


def test_card_v3_rule_c1_reported_claim_behind_regime():
    assert CARD.version >= 3 and any(e["version"] == 3 for e in CARD.raw["changelog"])  # v4 keeps v3's rule
    by_id = {c.id: c for c in CARD.criteria}
    assert not by_id["C1"].gating and all(by_id[c].gating for c in ("C2", "C3", "C4"))
    assert CARD.reproduced == ("C2", "C3", "C4") and CARD.partially_if_any == ("C2", "C3")
    r1, r2 = CARD.regime
    assert r1.applies_to is None and r1.checks[0].statistic == "train_acc_largest_bs"  # gates the whole claim
    assert tuple(r2.applies_to) == ("C3",)
    assert all(c.null for c in GATING)


def test_card_v5_r2_is_the_papers_first_bulk_decay_point_in_temperature_and_lr_time():
    """R2 (v5): the paper's bs-8 run (lr 0.01, 6,250 steps × 100 epochs, ×0.95 per epoch) in (T, t)."""
    assert CARD.version >= 5 and any(e["version"] == 5 for e in CARD.raw["changelog"])
    r2 = CARD.regime[1]
    checks = {ch.statistic: (ch.op, ch.threshold) for ch in r2.checks}
    assert checks == {"temperature_smallest_bs": (">=", 1.25e-3), "lr_time_smallest_bs": (">=", 1243)}
    assert 0.01 / 8 == 1.25e-3 and round(0.01 * A.lr_steps(6_250 * 100, 100, 0.95)) == 1243


def test_regime_point_known_answers():
    # quick (v5): bs 20 on 60,000 images, 10 epochs, lr 0.1: t = 0.1 × 3,000 × Σ_e<10 0.95^e = 2,407.58
    steps = A.lr_steps(3000 * 10, 10, 0.95)
    got = A.regime_point(0.1, [1250, 20, 80], [steps, steps + 5.0])
    assert got["temperature_smallest_bs"] == pytest.approx(5e-3)
    assert got["lr_time_smallest_bs"] == pytest.approx(2407.578, abs=1e-3)  # fewest over seeds
    # long (v5): 35 epochs put every batch size at or past its paper point (60k/50k × Σ_e<35 ≥ Σ_e<100)
    for bs in (20, 40, 80, 160, 320, 1250):
        ours = 0.1 * A.lr_steps(60000 / bs * 35, 35, 0.95)
        paper = 0.01 * A.lr_steps(50000 / (bs / 10) * 100, 100, 0.95)
        assert ours >= paper and 0.1 * A.lr_steps(60000 / bs * 34, 34, 0.95) < paper
    assert math.isnan(A.regime_point(0.1, [20, 40], [steps, float("nan")])["lr_time_smallest_bs"])
    assert math.isnan(A.regime_point(0.1, [20, 40], [])["lr_time_smallest_bs"])


def test_lr_steps_known_values():
    assert A.lr_steps(6_250 * 100, 100, 0.95) == pytest.approx(124_259.93, abs=0.01)
    assert A.lr_steps(3000, 6, 0.95) == pytest.approx(500 * sum(0.95**e for e in range(6)))
    assert A.lr_steps(300, 3, 1.0) == 300


def test_every_gating_check_has_samples_and_null_draws(tmp_path):
    sizes, seeds = (2, 8, 32), (0, 1, 2)
    result = A.analyse(_runs(tmp_path, sizes, seeds), _context(tmp_path, sizes, seeds))
    kinds = {"softrank_fc1_rho_per_seed": "correlations", "stable_rank_fc1_rho_per_seed": "correlations",
             "test_acc_rho_per_seed": "correlations", "test_acc_gain_per_seed": "replicates"}
    for c in GATING:
        for ch in c.checks:  # v4: each statistic declares its form (rank correlations over 3 sizes, labels)
            s = result.samples[ch.statistic]
            assert s.kind == kinds.get(ch.statistic, "labels") and len(s.values) == len(seeds), ch.statistic
            assert s.points == (len(sizes) if s.kind == "correlations" else None)
        draws = result.null_draws[c.id]
        assert len(draws) >= 200 and all({ch.statistic for ch in c.checks} <= set(d) for d in draws)
    null = null_calibration(result, CARD)
    assert set(null) == {c.id for c in GATING} and all(0 <= v["pass_rate"] <= 1 for v in null.values())
    st = result.statistics
    assert st["train_acc_largest_bs"] == pytest.approx(0.9) and st["train_acc_largest_bs_min"] == pytest.approx(0.9)
    assert st["lr_steps_smallest_bs"] == 500  # bs 2: 1000 // 2 steps in one epoch (lr constant within it)
    assert st["temperature_smallest_bs"] == pytest.approx(0.01 / 2)  # Config's default lr 0.01
    assert st["lr_time_smallest_bs"] == pytest.approx(0.01 * 500)
    assert result.tables["per_run"]["lr_steps"].tolist() == [1000 // bs for bs in sizes for _ in seeds]
    gain = result.samples["test_acc_gain_per_seed"].values  # 0.5 − bs/1000 + seed/100: 2 vs 32
    np.testing.assert_allclose(gain, [0.03] * 3)
    np.testing.assert_allclose(result.samples["test_acc_rho_per_seed"].values, [-1.0] * 3)
    assert result.samples["phase_fc1_largest_bs_per_seed"].values == (0.0, 0.0, 0.0)  # Gaussian: Random-like


def test_seed_values_known_answers_and_nan():
    bs = np.array([2.0, 8, 32, 128])
    rising = np.array([[0.2, 0.5, 0.9, 1.0], [0.1, 0.4, 0.3, 1.0]])  # seed 1 has one step down
    grids = {"softrank": rising, "stable_rank": 100 * rising,
             "phase": np.array([[4.0, 3, 1, 0], [3, 2, 2, 1]]),
             "test_acc": np.array([[0.8, 0.7, 0.6, 0.5], [0.7, 0.7, 0.6, np.nan]])}
    v = A.seed_values(bs, grids)
    np.testing.assert_allclose(v["softrank_fc1_rho_per_seed"], [1.0, 0.8])
    np.testing.assert_allclose(v["stable_rank_fc1_rho_per_seed"], [1.0, 0.8])
    assert v["phase_fc1_smallest_bs_per_seed"].tolist() == [4, 3]
    assert v["phase_fc1_largest_bs_per_seed"].tolist() == [0, 1]
    assert v["phase_fc1_inversions_per_seed"].tolist() == [0, 0]
    assert v["test_acc_gain_per_seed"][0] == pytest.approx(0.3) and math.isnan(v["test_acc_gain_per_seed"][1])
    assert v["test_acc_rho_per_seed"][0] == pytest.approx(-1) and math.isnan(v["test_acc_rho_per_seed"][1])
    grids["phase"][1, 2] = np.nan  # a diverged run: its seed's phase values are NaN, never "no inversion"
    v = A.seed_values(bs, grids)
    assert v["phase_fc1_inversions_per_seed"][0] == 0 and math.isnan(v["phase_fc1_inversions_per_seed"][1])
    for seed in range(2):  # agrees with the pooled-table helper
        assert adjacent_inversions(grids["phase"][seed].tolist()) == pytest.approx(
            v["phase_fc1_inversions_per_seed"][seed], nan_ok=True)


def _grids(n_seeds, n_bs, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.random((n_seeds, n_bs)) for k in ("softrank", "stable_rank", "phase", "test_acc")}


def _c2_pass_rate(draws):
    c2 = next(c for c in CARD.criteria if c.id == "C2")
    return criterion_pass_rate(c2, draws)["pass_rate"]


def test_null_c2_known_answers():
    # 2 sizes x 2 seeds: each seed's ρ is ±1 with probability ½. v3's Student-t passed C2 whenever both were
    # +1 (25% of the null); v4's exact permutation test needs P(mean ρ ≥ observed) ≤ 2.5%, and ¼ is not.
    grids = _grids(2, 2)
    grids["stable_rank"] = grids["softrank"]
    draws = A.null_draws(np.array([2.0, 8]), grids, n=2000)["C2"]
    assert _c2_pass_rate(draws) == 0.0
    # 5 sizes x 3 seeds, no ties: each seed's ρ follows Spearman's permutation distribution (120 orders).
    # v3's rate ("Student-t lower end > 0" over the 120³ equally likely triples) was above 2.5% ...
    rhos = spearman_rho(np.arange(5.0)[None], np.array(list(itertools.permutations(range(5))), float))
    tri = np.stack(np.meshgrid(rhos, rhos, rhos, indexing="ij"), -1).reshape(-1, 3)
    lo = tri.mean(1) - stats.t.ppf(0.975, 2) * tri.std(1, ddof=1) / np.sqrt(3)
    assert 0.025 < float(np.mean(lo > 0)) < 0.035
    # ... v4's exact test has size ≤ 2.5% by construction, and the shuffled-label draws reproduce it.
    p_up = np.array([exact_rho_pvalues(t, 5)[0] for t in tri[::97]])  # a thinned grid of the 120³ triples
    size = float(np.mean(p_up <= 0.025))
    assert 0.01 < size <= 0.03
    grids = _grids(3, 5, seed=1)
    grids["stable_rank"] = grids["softrank"]
    rate = _c2_pass_rate(A.null_draws(np.array([2.0, 8, 32, 128, 500]), grids, n=2000)["C2"])
    assert rate == pytest.approx(size, abs=0.012) and rate <= 0.035


def test_null_shuffles_labels_within_each_seed():
    grids = _grids(3, 4, seed=2)
    draws = A.null_draws(np.array([2.0, 8, 32, 128]), grids, n=300)
    for d in draws["C3"]:
        for seed, v in enumerate(d["phase_fc1_smallest_bs_per_seed"].values):
            assert v in grids["phase"][seed]  # one of that seed's own runs
    for d in draws["C4"]:
        for seed, v in enumerate(d["test_acc_gain_per_seed"].values):
            own = grids["test_acc"][seed]
            assert round(v, 12) in {round(a - b, 12) for a in own for b in own if a != b}
    again = A.null_draws(np.array([2.0, 8, 32, 128]), grids, n=300)  # seeded
    assert [d["test_acc_gain_per_seed"] for d in again["C4"]] == [d["test_acc_gain_per_seed"] for d in draws["C4"]]


def test_diverged_run_gives_nan_not_a_phase(tmp_path):
    sizes, seeds = (2, 8), (0, 1)
    records = _runs(tmp_path, sizes, seeds, nan_at={(8, 1)})
    result = A.analyse(records, _context(tmp_path, sizes, seeds))
    runs, table = result.tables["per_run"], result.tables["per_batch_size"]
    bad = runs[(runs.batch_size == 8) & (runs.seed == 1)].iloc[0]
    assert bad["fc1_phase"] == "diverged" and math.isnan(bad["fc1_phase_index"]) and math.isnan(bad["test_acc"])
    assert table.set_index("batch_size").loc[8, "fc1_phase"] == "diverged"
    assert math.isnan(table.set_index("batch_size").loc[8, "test_acc"])  # not the mean of the other seed
    st = result.statistics
    assert math.isnan(st["phase_index_largest_bs"]) and math.isnan(st["phase_adjacent_inversions"])
    assert math.isnan(st["train_acc_largest_bs"])
    assert math.isnan(result.samples["phase_fc1_largest_bs_per_seed"].values[1])
    judged = judge(CARD, st, {k: s.to_json() for k, s in result.samples.items()})
    crit = {c["id"]: c for c in judged["criteria"]}
    checks = {ch["statistic"]: ch for ch in crit["C3"]["checks"]}
    for name in ("phase_fc1_largest_bs_per_seed", "phase_fc1_inversions_per_seed"):  # NaN: neither pass nor fail
        assert checks[name]["outcome"] == UNDECIDED and checks[name]["reason_kind"] == UNDEFINED
    assert crit["C2"]["outcome"] == UNDECIDED and crit["C2"]["reason_kind"] == UNDEFINED
    assert judged["verdict"] == INCONCLUSIVE and judged["reason_kind"] == OUT_OF_REGIME  # R1 is NaN: unmet
    assert ("fc1", 8) not in result.figure_data["esds"] and ("fc1", 2) in result.figure_data["esds"]


def _judge(train_largest, c2_ok=True, c3_ok=True, c4_ok=True, lr_time=2_000.0, temperature=5e-3):
    """Seven seeds of 5 batch sizes (v4 at look 1's 97.06% level: labels need seven agreeing seeds for a
    Clopper–Pearson bound above ½; six give 0.496)."""
    sign = {True: 1.0, False: -1.0}
    samples = {
        "softrank_fc1_rho_per_seed": correlations([0.9 * sign[c2_ok]] * 7, 5),
        "stable_rank_fc1_rho_per_seed": correlations([0.8 * sign[c2_ok]] * 7, 5),
        "phase_fc1_largest_bs_per_seed": labels([1] * 7),
        "phase_fc1_smallest_bs_per_seed": labels([4] * 7 if c3_ok else [0] * 7),
        "phase_fc1_inversions_per_seed": labels([0] * 7),
        "test_acc_gain_per_seed": replicates([v * sign[c4_ok] for v in (0.1, 0.12, 0.11, 0.1, 0.13, 0.09, 0.11)]),
        "test_acc_rho_per_seed": correlations([-0.9 * sign[c4_ok]] * 7, 5),
    }
    stats = {"train_acc_largest_bs": train_largest, "lr_time_smallest_bs": lr_time,
             "temperature_smallest_bs": temperature,
             "alpha_fc1_smallest_bs": 3.0, "alpha_fc1_largest_bs": 9.0,
             "spearman_bs_alpha_fc1": 0.5, **{k: interval(s).estimate for k, s in samples.items()}}
    return judge(CARD, stats, {k: s.to_json() for k, s in samples.items()})


def test_regime_gate_on_the_whole_claim():
    for c3_ok in (True, False):  # an untrained largest batch makes any spectral outcome uninformative
        out = _judge(0.18, c3_ok=c3_ok)  # the quick scale's largest batch: 8 steps
        assert out["verdict"] == INCONCLUSIVE and out["reason_kind"] == OUT_OF_REGIME
        assert "R1" in out["reason"] and not next(p for p in out["regime"] if p["id"] == "R1")["met"]
    assert _judge(0.8)["verdict"] == REPRODUCED
    assert _judge(0.8, c3_ok=False)["verdict"] == PARTIAL
    assert _judge(float("nan"))["verdict"] == INCONCLUSIVE  # an undefined precondition is unmet
    assert _judge(0.8, c4_ok=False)["verdict"] == PARTIAL


def test_regime_r2_holds_c3_to_the_papers_temperature_and_lr_time():
    # too cold or too short a run: C3 is out of regime whatever its phases say
    for kw in ({"lr_time": 602.0}, {"temperature": 6.25e-4}, {"lr_time": float("nan")}):
        for c3_ok in (True, False):
            out = _judge(0.8, c3_ok=c3_ok, **kw)
            crit = {c["id"]: c for c in out["criteria"]}
            assert crit["C3"]["outcome"] == UNDECIDED and crit["C3"]["reason_kind"] == OUT_OF_REGIME, kw
            assert crit["C2"]["outcome"] == "pass" and crit["C4"]["outcome"] == "pass"  # still judged
            assert out["verdict"] == INCONCLUSIVE and out["reason_kind"] == OUT_OF_REGIME  # partial or reproduced
    assert _judge(0.8, lr_time=1243.0, temperature=1.25e-3)["verdict"] == REPRODUCED
    assert _judge(0.8, c2_ok=False, c3_ok=False, lr_time=1243.0)["verdict"] != INCONCLUSIVE


def test_with_seed_set_gives_disjoint_seeds_and_keeps_set_zero():
    for scale in SCALES:
        cfg = load_params(REPO / "params.yaml", scale).claims[claim.CLAIM_ID]
        assert claim.with_seed_set(cfg, 0) is cfg
        one, two = claim.with_seed_set(cfg, 1), claim.with_seed_set(cfg, 2)
        assert not set(one.seeds) & set(cfg.seeds) and not set(two.seeds) & (set(one.seeds) | set(cfg.seeds))
        assert dataclasses.replace(one, seeds=cfg.seeds) == cfg  # nothing else changes (data subsets fixed)
        bs = cfg.batch_sizes[0]
        assert claim.run_key(one, bs, one.seeds[0]) == {**claim.run_key(cfg, bs, cfg.seeds[0]),
                                                         "seed": cfg.seeds[0] + 1000}



def test_quick_and_long_decide_c3_only_at_the_pooled_second_look():
    """v5: 4 seeds per set. The analysis judges phase labels k of n (Clopper–Pearson at look 1's 97.06%):
    4 of 4 cannot clear ½, the 8 of 8 pooled at look 2 can; the card's simulation agrees."""
    from claimbench.intervals import clopper_pearson
    from claimbench.power import verdict_power

    level = CARD.raw["pooling"]["levels"][0]
    assert clopper_pearson(4, 4, level)[0] < 0.5 < clopper_pearson(8, 8, level)[0]
    assert clopper_pearson(6, 6, level)[0] < 0.5 < clopper_pearson(7, 7, level)[0]
    sim = CARD.raw["power"]["simulation"]
    for scale in ("quick", "long"):
        n = sim["scales"][scale]["n"]
        cfg = load_params(REPO / "params.yaml", scale).claims[claim.CLAIM_ID]
        assert n == len(cfg.seeds) == 4
        exp = {e["statistic"]: e["value"] for e in sim["expected"][scale]}
        kw = {"normal": sim["normal"], "regime": {"R1": "met", "R2": "met"}, "draws": 40}
        assert verdict_power(CARD, sim["rows"], n, exp, levels=[level], **kw)["inconclusive"] == 1.0
        assert verdict_power(CARD, sim["rows"], n, exp, levels=[level, level], **kw)["reproduced"] == 1.0
