"""Spectral metrics on matrices with known answers (random matrices, exact power laws, planted spikes)."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from torch import nn

from claimbench.metrics import spectral as sp


def gaussian(n, m, seed=0):
    return np.random.default_rng(seed).standard_normal((n, m))


def pareto_matrix(n, m, mu, seed=0):
    """Entries with |W_ij| ~ Pareto tail index mu (P(|w| > x) ~ x^-mu), random signs."""
    rng = np.random.default_rng(seed)
    return (rng.pareto(mu, (n, m)) + 1) * rng.choice([-1.0, 1.0], (n, m))


def wwfit_loop(x):
    """WW's WWFit, transcribed as its Python loop: the reference our vectorised scan must equal."""
    x = np.sort(x[x > sp.EVALS_THRESH])
    logx, n_all = np.log(x), len(x)
    alphas, ds = np.zeros(n_all - 1), np.ones(n_all - 1)
    for i in range(n_all - 1):
        n = n_all - i
        alphas[i] = 1 + n / (logx[i:].sum() - n * logx[i])
        if alphas[i] > 1:
            ds[i] = np.max(np.abs(1 - (x[i:] / x[i]) ** (1 - alphas[i]) - np.arange(n) / n))
    j = int(np.argmin(ds))
    return alphas[j], x[j], ds[j]


def test_esd_is_squared_singular_values_pooled():
    a, b = gaussian(50, 20, 1), gaussian(30, 40, 2)
    got = sp.esd([a, b])
    want = np.sort(
        np.concatenate([np.linalg.svd(a, compute_uv=False), np.linalg.svd(b, compute_uv=False)]) ** 2
    )
    assert got.dtype == np.float64 and got.shape == (50,)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        sp.esd(a, accurate=True), np.sort(np.linalg.svd(a, compute_uv=False) ** 2), rtol=1e-12
    )


def test_power_law_matches_wwfit_loop_and_recovers_exact_exponent():
    rng = np.random.default_rng(3)
    x = (1 - rng.random(4000)) ** (-1 / 1.5)  # continuous power law, density ~ x^-2.5, xmin = 1
    fit = sp.fit_power_law(x)
    alpha, xmin, d = wwfit_loop(x)
    assert fit["alpha"] == pytest.approx(alpha, rel=1e-10)
    assert fit["xmin"] == pytest.approx(xmin) and fit["D"] == pytest.approx(d, rel=1e-9)
    assert fit["alpha"] == pytest.approx(2.5, abs=0.12)
    assert fit["status"] == "success" and fit["warning"] == ""


def test_gaussian_matrix_is_random_like():
    ev = sp.esd(gaussian(2000, 200))
    mp = sp.fit_mp(ev, Q=10.0)
    assert mp["num_spikes"] == 0
    assert mp["mp_softrank"] == pytest.approx(1.0, abs=0.05)
    assert mp["sigma_mp"] == pytest.approx(1.0, abs=0.05)
    pl = sp.fit_power_law(ev)
    assert pl["alpha"] > 6 and pl["warning"] == "under-trained"


@pytest.mark.parametrize("mu", [1.0, 1.5])
def test_pareto_entries_give_calibrated_alpha(mu):
    # Spec §A.7: authors' calibration for mu < 2 is alpha = 0.649 mu + 0.862 (1.51 at mu=1, 1.84 at mu=1.5).
    alpha = sp.fit_power_law(sp.esd(pareto_matrix(2000, 400, mu, seed=4)))["alpha"]
    assert alpha == pytest.approx(0.649 * mu + 0.862, abs=0.2)
    assert alpha < 2.5


def test_planted_rank_k_spikes_are_counted():
    n, m, k = 2000, 200, 5
    rng = np.random.default_rng(5)
    u = np.linalg.qr(rng.standard_normal((n, k)))[0]
    v = np.linalg.qr(rng.standard_normal((m, k)))[0]
    theta = 3 * np.sqrt(n) * np.linspace(1.0, 2.0, k)
    w = gaussian(n, m, 6) + (u * theta) @ v.T
    mp = sp.fit_mp(sp.esd(w), Q=n / m)
    assert mp["num_spikes"] == k
    assert mp["mp_softrank"] < 0.5


def test_rank_deficient_matrix():
    n, m, r = 300, 100, 30
    w = gaussian(n, r, 7) @ gaussian(r, m, 8)
    df = sp.analyze_matrices([("low_rank", "dense", [torch.from_numpy(w)])])
    row = df.iloc[0]
    assert row["weak_rank_loss"] == m - r
    assert row["num_evals"] == m
    assert np.isfinite(row["alpha"]) and row["num_pl_spikes"] <= r
    assert row["stable_rank"] < r
    exact = sp.esd_metrics(sp.esd(w, accurate=True), Q=n / m, M=m)
    assert exact["rank_loss"] == m - r and exact["weak_rank_loss"] == m - r


def test_norm_metrics_known_values():
    eye = sp.norm_metrics(np.ones(50), alpha=2.0)
    assert eye["stable_rank"] == pytest.approx(50) and eye["log_norm"] == pytest.approx(np.log10(50))
    assert eye["log_alpha_norm"] == pytest.approx(np.log10(50)) and eye["alpha_weighted"] == pytest.approx(0)
    spiky = sp.norm_metrics(np.array([0.0, 0.0, 100.0]), alpha=3.0)
    assert spiky["stable_rank"] == pytest.approx(1) and spiky["log_spectral_norm"] == pytest.approx(2)
    assert spiky["alpha_weighted"] == pytest.approx(6) and spiky["log_alpha_norm"] == pytest.approx(6)


def test_rand_distance_separates_structure_from_noise():
    jsd = sp.jensen_shannon_distance([1, 2, 3], [3, 2, 1])
    assert jsd == pytest.approx(jensenshannon([1, 2, 3], [3, 2, 1]))
    rng = np.random.default_rng(9)
    noise = torch.from_numpy(gaussian(400, 100, 10))
    structured = (
        torch.from_numpy(rng.standard_normal((400, 3)) @ rng.standard_normal((3, 100))) + 0.05 * noise
    )
    df = sp.analyze_matrices({"noise": noise, "structured": structured})
    assert df.loc[0, "rand_distance"] < 0.02
    assert df.loc[1, "rand_distance"] > 0.2


def test_layer_weights_and_conv_pooling():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 5), nn.Flatten(), nn.Linear(16, 20), nn.BatchNorm1d(20), nn.Linear(20, 10)
    )
    layers = sp.layer_weights(model)
    assert [(n, k, len(ms)) for n, k, ms in layers] == [
        ("0", "conv", 25),
        ("2", "dense", 1),
        ("4", "dense", 1),
    ]
    w = model[0].weight.detach()
    torch.testing.assert_close(layers[0][2][7], w[:, :, 1, 2])
    df = sp.analyze_model(model)
    assert list(df["name"]) == ["0", "2", "4"]
    conv = df.iloc[0]
    assert (conv["N"], conv["M"], conv["rf"], conv["num_evals"]) == (16, 3, 25, 75)
    raw = sp.esd(layers[0][2])
    assert conv["lambda_max"] == pytest.approx(raw[-1] / 2)  # WW conv2d_norm halves conv eigenvalues
    unnormed = sp.analyze_model(model, conv2d_norm=False)
    assert unnormed.iloc[0]["lambda_max"] == pytest.approx(raw[-1])
    for col in [
        "layer_id",
        "name",
        "N",
        "M",
        "Q",
        "num_evals",
        "lambda_max",
        "alpha",
        "xmin",
        "D",
        "num_spikes",
        "mp_softrank",
        "stable_rank",
        "log_norm",
        "log_spectral_norm",
        "alpha_weighted",
        "log_alpha_norm",
        "rand_distance",
    ]:
        assert col in df.columns


def test_min_evals_filter_skips_tiny_layers():
    df = sp.analyze_matrices({"big": torch.randn(40, 20), "tiny": torch.randn(8, 3)})
    assert list(df["name"]) == ["big"]


def test_bad_input_raises_one_clear_error():
    with pytest.raises(sp.SpectralError, match="NaN"):
        sp.esd(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(sp.SpectralError, match="2-D"):
        sp.esd(torch.zeros(2, 3, 4, 5))
    with pytest.raises(sp.SpectralError, match="Q = N/M"):
        sp.fit_mp(np.arange(1.0, 10.0), Q=0.5)
    with pytest.raises(sp.SpectralError, match="kind"):
        sp.analyze_matrices([("x", "lstm", [torch.randn(20, 20)])])
    assert sp.fit_power_law(np.zeros(10))["status"] == "failed"
