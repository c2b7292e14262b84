"""Known answers for claimbench.metrics.simpson: tau-b / rho / R², pooled vs within-group, paradox flags."""

import numpy as np
import pytest
from scipy import stats

from claimbench.metrics.simpson import (
    CorpusError,
    grouped_association,
    kendall_tau,
    paradox_flags,
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


def simpson_data():
    """Three groups of 4; within each, y falls with x (tau = -1); each group sits at higher x and y.
    Pooled tau-b = (48 concordant cross-group pairs - 18 discordant within) / 66 pairs."""
    x0 = np.arange(4.0)
    x = np.concatenate([x0, x0 + 20, x0 + 40])
    y = np.concatenate([10 - 0.1 * x0, 20 - 0.1 * x0, 30 - 0.1 * x0])
    return x, y, np.repeat([2, 4, 6], 4)


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
    assert a.mean_within_abs_ci[1] == pytest.approx(1.0)


@pytest.mark.parametrize("bad, match", [
    (dict(groups=np.repeat([1, 2], [2, 14])), "has 2 models"),
    (dict(groups=np.repeat([1], 16)), "at least 2 groups"),
    (dict(x=np.r_[np.nan, np.arange(15.0)]), "NaN"),
    (dict(statistic="pearson"), "unknown"),
])
def test_bad_input_gets_one_clear_error(bad, match):
    args = dict(x=np.arange(16.0), y=np.arange(16.0), groups=np.repeat([1, 2], 8), statistic="tau")
    args.update(bad)
    with pytest.raises(CorpusError, match=match):
        grouped_association(args["x"], args["y"], args["groups"], args["statistic"], n_boot=10)


def test_gap_interval_pairs_pooled_and_within_resamples():
    x, y, g = simpson_data()
    a = grouped_association(x, y, g, "tau", n_boot=300, seed=0)
    # within |tau| is 1 in every resample, pooled tau-b in (0, 1): the gap's interval is inside (0, 1)
    assert 0 < a.gap_ci[0] <= a.gap_ci[1] < 1
    assert a.gap_ci[0] == pytest.approx(1 - a.pooled_ci[1]) and a.gap_ci[1] == pytest.approx(1 - a.pooled_ci[0])
