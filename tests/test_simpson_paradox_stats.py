"""Known answers for claimbench.metrics.simpson: tau-b / rho / R², pooled vs within-group, the card's
paradox statistics (point and per bootstrap draw), paradox flags, and NaN never read as a paradox."""

import numpy as np
import pytest
from scipy import stats

from claimbench.metrics.simpson import (
    CorpusError,
    grouped_association,
    kendall_tau,
    paradox_flags,
    paradox_statistics,
    r_squared,
    spearman_rho,
)


def test_kendall_tau_b_matches_scipy_with_ties_and_batches():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, (6, 30)).astype(float)  # many ties
    y = x + rng.integers(0, 3, (6, 30))
    got = kendall_tau(x, y)
    want = [stats.kendalltau(a, b).statistic for a, b in zip(x, y)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_kendall_and_spearman_known_values():
    x = np.arange(10.0)
    assert kendall_tau(x, 2 * x + 1) == pytest.approx(1.0)
    assert kendall_tau(x, -x**3) == pytest.approx(-1.0)
    # one discordant pair of 10 swaps in 5 items: tau = (9 - 1) / 10
    assert kendall_tau(np.arange(5.0), np.array([0, 2, 1, 3, 4.0])) == pytest.approx(0.8)
    assert np.isnan(kendall_tau(np.ones(5), np.arange(5.0)))
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=40), rng.normal(size=40)
    assert spearman_rho(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)


def test_r_squared_known_values():
    x = np.linspace(-1, 1, 21)
    assert r_squared(x, 3 - 2 * x) == pytest.approx(1.0)
    assert r_squared(x, x**2) == pytest.approx(0.0, abs=1e-12)  # symmetric parabola: no linear trend


def simpson_data(n: int = 4):
    """Three groups of n; within each, y falls with x (tau = -1); each group sits at higher x and y.
    For n = 4, pooled tau-b = (48 concordant cross-group pairs - 18 discordant within) / 66 pairs."""
    x0 = np.arange(float(n))
    x = np.concatenate([x0, x0 + 20, x0 + 40])
    y = np.concatenate([10 - 0.1 * x0, 20 - 0.1 * x0, 30 - 0.1 * x0])
    return x, y, np.repeat([2, 4, 6], n)


def test_grouped_association_detects_a_constructed_simpson_paradox():
    x, y, g = simpson_data()
    a = grouped_association(x, y, g, "tau", n_boot=200, seed=0)
    assert a.groups == {2: pytest.approx(-1.0), 4: pytest.approx(-1.0), 6: pytest.approx(-1.0)}
    assert a.pooled == pytest.approx(30 / 66)
    assert a.mean_within == pytest.approx(-1.0) and a.mean_within_abs == pytest.approx(1.0)
    assert 0 < a.pooled_ci[0] < a.pooled_ci[1] <= 1
    flags = paradox_flags(a.pooled, a.groups, a.mean_within, a.mean_within_abs)
    assert flags["within_opposite_sign"] == 1 and flags["within_weak_or_reversed"] == 1
    assert flags["groups_differing_fraction"] == 1
    # a shape-like metric: strong within groups (|tau| = 1) beats the pooled |tau|
    assert a.mean_within_abs > abs(a.pooled)


def test_no_paradox_when_every_group_follows_the_pooled_line():
    x = np.arange(16.0)
    y = 0.5 * x + np.sin(x) * 0.01
    g = np.repeat([1, 3], 8)
    a = grouped_association(x, y, g, "tau", n_boot=50)
    flags = paradox_flags(a.pooled, a.groups, a.mean_within, a.mean_within_abs)
    assert a.pooled == pytest.approx(1.0) and flags["within_weak_or_reversed"] == 0
    assert flags["groups_differing_fraction"] == 0
    # weak-within case: groups uncorrelated (|tau| small) but pooled strong -> weak flag only
    flags = paradox_flags(0.6, {1: 0.1, 3: 0.2}, 0.15, 0.15)
    assert flags["within_weak_or_reversed"] == 1 and flags["within_opposite_sign"] == 0


def test_bootstrap_is_seeded_and_resamples_within_groups():
    x, y, g = simpson_data()
    a = grouped_association(x, y, g, "rho", n_boot=100, seed=3)
    b = grouped_association(x, y, g, "rho", n_boot=100, seed=3)
    assert a.pooled_ci == b.pooled_ci
    # within-group resamples of a perfectly monotone group stay perfectly monotone (or tie-degenerate)
    finite = a.boot_groups[np.isfinite(a.boot_groups)]
    assert np.allclose(np.abs(finite), 1.0)
    # groups of 4: a resample of one model repeated is constant (undefined rho) in ~1.6% of draws per
    # group, more than the 1% claimbench.intervals tolerates, so the interval is undefined, not narrowed
    assert 0.01 < np.isnan(a.boot_groups).any(0).mean() < 0.2 and np.isnan(a.mean_within_abs_ci).all()


@pytest.mark.parametrize("bad, match", [
    (dict(groups=np.repeat([1, 2], [2, 14])), "has 2 models"),
    (dict(groups=np.repeat([1], 16)), "at least 2 groups"),
    (dict(statistic="pearson"), "unknown"),
])
def test_bad_input_gets_one_clear_error(bad, match):
    args = dict(x=np.arange(16.0), y=np.arange(16.0), groups=np.repeat([1, 2], 8), statistic="tau")
    args.update(bad)
    with pytest.raises(CorpusError, match=match):
        grouped_association(args["x"], args["y"], args["groups"], args["statistic"], n_boot=10)


def test_gap_interval_pairs_pooled_and_within_resamples():
    x, y, g = simpson_data(8)  # groups of 8: no resample is constant (an undefined tau)
    a = grouped_association(x, y, g, "tau", n_boot=300, seed=0)
    # within |tau| is 1 in every resample, pooled tau-b in (0, 1): the gap's interval is inside (0, 1)
    assert 0 < a.gap_ci[0] <= a.gap_ci[1] < 1
    assert a.gap_ci[0] == pytest.approx(1 - a.pooled_ci[1]) and a.gap_ci[1] == pytest.approx(1 - a.pooled_ci[0])


def test_paradox_statistics_known_values_and_the_v1_rule():
    # the constructed paradox: pooled tau +30/66, every group -1, so the within-depth trend is reversed
    x, y, g = simpson_data()
    a = grouped_association(x, y, g, "tau", n_boot=100, seed=0)
    st = paradox_statistics(a.pooled, list(a.groups.values()))
    assert st["abs_pooled"] == pytest.approx(30 / 66) and st["mean_within"] == pytest.approx(-1.0)
    assert st["shape_gap"] == pytest.approx(1 - 30 / 66) and st["shape_gap_signed"] == pytest.approx(1 - 30 / 66)
    assert st["paradox_margin"] == pytest.approx(15 / 66 + 1)  # 1/2 |pooled| - (+1)(-1)
    # weak within (same sign): margin = 0.3 - 0.15; strong within (same sign): negative, v1 flag 0
    assert paradox_statistics(0.6, [0.1, 0.2])["paradox_margin"] == pytest.approx(0.15)
    assert paradox_statistics(0.6, [0.5, 0.6])["paradox_margin"] == pytest.approx(-0.25)
    assert paradox_statistics(-0.6, [-0.5, -0.6])["paradox_margin"] == pytest.approx(-0.25)  # sign-symmetric
    # positive within-depth tau (the wrong sign for alpha) never passes the signed gap, the v1 gap did
    wrong = paradox_statistics(0.05, [0.5, 0.6])
    assert wrong["shape_gap"] > 0 > wrong["shape_gap_signed"]
    # margin > 0 exactly when v1's 0/1 flag is 1 when the groups share a sign (they differ only for
    # groups of opposite signs, where v1 read mean |tau| and v2 the signed mean)
    rng = np.random.default_rng(0)
    for _ in range(200):
        pooled, within = rng.uniform(-1, 1), rng.choice([-1, 1]) * rng.uniform(0, 1, 2)
        st = paradox_statistics(pooled, within)
        flag = paradox_flags(pooled, dict(enumerate(within)), within.mean(), np.abs(within).mean())
        assert (st["paradox_margin"] > 0) == (flag["within_weak_or_reversed"] == 1)


def test_paradox_statistics_per_draw_match_the_point_formula():
    x, y, g = simpson_data()
    a = grouped_association(x, y, g, "tau", n_boot=50, seed=1)
    assert a.boot_pooled.shape == (50,) and a.boot_groups.shape == (3, 50)
    draws = paradox_statistics(a.boot_pooled, a.boot_groups)
    for i in (0, 17, 49):
        one = paradox_statistics(a.boot_pooled[i], a.boot_groups[:, i])
        assert all(draws[k][i] == pytest.approx(v, nan_ok=True) for k, v in one.items())


def test_nan_is_undefined_never_a_smaller_corpus_or_a_paradox():
    x, y, g = np.arange(16.0), np.arange(16.0) ** 2, np.repeat([1, 2], 8)
    x[3] = np.nan  # one model's metric undefined
    a = grouped_association(x, y, g, "tau", n_boot=200, seed=0)
    assert np.isnan(a.pooled) and np.isnan(a.groups[1]) and a.groups[2] == pytest.approx(1.0)
    assert np.isnan(a.mean_within) and np.isnan(a.mean_within_abs)  # not the mean of group 2 alone
    assert np.isnan(a.pooled_ci).all() and np.isnan(a.gap_ci).all()  # most draws hold the NaN model
    assert all(np.isnan(v) for v in paradox_statistics(a.pooled, list(a.groups.values())).values())
    # a constant group (undefined tau) makes the mean over groups NaN, not group 2's value
    y2 = np.r_[np.ones(8), np.arange(8.0)]
    b = grouped_association(np.arange(16.0), y2, g, "tau", n_boot=20, seed=0)
    assert np.isnan(b.groups[1]) and np.isnan(b.mean_within)
    # v1 read sign(NaN) != sign(pooled) as "reversed": every flag is NaN now
    flags = paradox_flags(0.5, {1: np.nan, 2: 0.1}, np.nan, np.nan)
    assert all(np.isnan(v) for v in flags.values())
    assert np.isnan(paradox_flags(np.nan, {1: 0.1, 2: 0.1}, 0.1, 0.1)["within_weak_or_reversed"])
