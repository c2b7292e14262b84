"""Neural-collapse metrics, losses and the width-ResNet on known answers."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from claimbench.collapse_losses import cross_entropy, focal, label_smoothing, make_loss, scaled_mse
from claimbench.errors import ClaimbenchError
from claimbench.metrics.collapse import (
    CollapseInputError,
    class_means,
    collapse_metrics,
    etf_distance,
    nc1,
    nc1_shuffled,
    nc2,
    nc3,
    nc4_mismatch,
    random_nc2,
    random_nc3,
)
from claimbench.models.resnet_width import WideResNet18


def simplex_etf(k: int, d: int, seed: int = 0) -> torch.Tensor:
    """(k, d) rows of a simplex ETF (unit norm, pairwise cos -1/(k-1)), randomly rotated into R^d."""
    etf = math.sqrt(k / (k - 1)) * (torch.eye(k, dtype=torch.float64) - 1.0 / k)
    q, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))
    return etf @ q[:k]


def collapsed_features(k=5, d=12, n=7, scale=3.0):
    means = scale * simplex_etf(k, d)
    y = torch.arange(k).repeat_interleave(n)
    return means[y], y, means


def test_exact_simplex_etf_with_zero_spread_gives_zero_for_nc1_to_nc4():
    h, y, means = collapsed_features()
    w = 0.7 * means  # self-dual classifier
    m = collapse_metrics(h, y, w, torch.zeros(5, dtype=torch.float64), 5)
    for key in ("nc1", "nc2", "nc3", "nc2_uncentred", "nc3_uncentred", "nc3_papyan", "nc4",
                "equinorm_means", "equinorm_weights", "max_angle_means", "max_angle_weights"):
        assert abs(m[key]) < 1e-8, (key, m[key])


def test_nc1_hand_computed_two_classes_in_one_dimension():
    # class 0 at -1.5, -0.5 (mean -1); class 1 at 0.5, 1.5 (mean 1): Sigma_W = 0.25, Sigma_B = 1, NC1 = 0.25/2
    h = torch.tensor([[-1.5], [-0.5], [0.5], [1.5]])
    y = torch.tensor([0, 0, 1, 1])
    assert nc1(h, y, 2) == pytest.approx(0.125, abs=1e-12)


def test_nc1_matches_scipy_pinv_on_random_unbalanced_features():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(60, 8, generator=g, dtype=torch.float64) + torch.randn(60, 1, generator=g, dtype=torch.float64)
    y = torch.cat([torch.arange(4), torch.randint(0, 4, (56,), generator=g)])
    mu, mu_g = class_means(h, y, 4)
    sw = ((h - mu[y]).T @ (h - mu[y])).numpy() / 60
    sb = ((mu - mu_g).T @ (mu - mu_g)).numpy() / 4
    assert nc1(h, y, 4) == pytest.approx(np.trace(sw @ scipy.linalg.pinv(sb)) / 4, rel=1e-9)


def test_nc2_hand_computed_orthogonal_classifier_centred_and_uncentred():
    w = torch.eye(2)
    assert nc2(w, centred=False) == pytest.approx(math.sqrt(2 - math.sqrt(2)), abs=1e-12)
    assert nc2(w, centred=True) == pytest.approx(0.0, abs=1e-12)  # centred rows form the 2-class ETF


def test_nc3_hand_computed_dual_and_anti_dual():
    w = torch.eye(2)
    m = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    assert nc3(w, m, centred=False) == pytest.approx(math.sqrt(2 + math.sqrt(2)), abs=1e-12)
    assert nc3(w, m, centred=True) == pytest.approx(2.0, abs=1e-12)  # W~ M^T = -ETF: maximally wrong
    assert nc3(-w, m, centred=True) == pytest.approx(0.0, abs=1e-12)


def test_etf_distance_of_identity_for_k_classes():
    k = 4  # ||I/2 - (I - J/4)/sqrt(3)||_F computed entry by entry
    diag, off = 0.5 - 0.75 / math.sqrt(3), 0.25 / math.sqrt(3)
    assert etf_distance(torch.eye(k)) == pytest.approx(math.sqrt(k * diag**2 + k * (k - 1) * off**2), abs=1e-12)


def test_nc4_counts_classifier_vs_nearest_mean_disagreements():
    mu = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    h = torch.tensor([[1.0, 0.0], [3.0, 0.0], [1.5, 0.0], [0.0, 0.0]])
    w = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])  # decides class 1 when x > 1 (with b = (1, -1): x > 1)
    b = torch.tensor([1.0, -1.0])
    # NCC: 0, 1, 0, 0; classifier: 0 (tie -> first), 1, 1, 0 -> one disagreement of four
    assert nc4_mismatch(h, w, b, mu) == pytest.approx(0.25)


def test_metrics_are_invariant_to_feature_scaling():
    g = torch.Generator().manual_seed(2)
    h = torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = torch.arange(40) % 4
    w = torch.randn(4, 6, generator=g, dtype=torch.float64)
    a = collapse_metrics(h, y, w, None, 4)
    b = collapse_metrics(1e3 * h, y, w, None, 4)
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12), key


def test_metrics_are_not_trivially_zero_on_random_features():
    g = torch.Generator().manual_seed(3)
    m = collapse_metrics(torch.randn(50, 6, generator=g), torch.arange(50) % 5, torch.randn(5, 6, generator=g),
                         None, 5)
    assert m["nc1"] > 0.5 and m["nc2"] > 0.05 and m["nc3"] > 0.3


def test_bad_inputs_raise_one_clear_error():
    h, y = torch.randn(6, 3), torch.tensor([0, 0, 1, 1, 1, 1])
    with pytest.raises(CollapseInputError, match="classes \\[2\\] have no samples"):
        nc1(h, y, 3)
    with pytest.raises(CollapseInputError, match="labels must lie in"):
        nc1(h, y + 5, 3)
    with pytest.raises(CollapseInputError, match="features \\(N, d\\)"):
        nc1(h[:, :, None], y, 2)
    with pytest.raises(CollapseInputError, match="classifier weight must be"):
        collapse_metrics(h, y, torch.randn(2, 4), None, 2)
    assert issubclass(CollapseInputError, ClaimbenchError)


@pytest.mark.parametrize("h", [torch.full((30, 4), 2.5), torch.zeros(30, 4), torch.ones(30, 4).double() / 3])
def test_identical_or_dead_features_give_nc1_nan_not_zero(h):
    """A dead network (every feature identical, or all zero) has no class means to compare: NC1 is
    undefined, whereas the pseudo-inverse of a zero between-class scatter would report 0 (perfect collapse)."""
    y = torch.arange(30) % 3
    assert math.isnan(nc1(h, y, 3))
    assert math.isnan(collapse_metrics(h, y, torch.randn(3, 4), None, 3)["nc1"])
    assert np.isnan(nc1_shuffled(h, y, 3, 2, np.random.default_rng(0))).all()
    h2 = h.clone().double()
    h2[y == 0] += 1.0  # one class moves: class structure, NC1 = 0 (no within-class spread)
    assert nc1(h2, y, 3) == pytest.approx(0.0, abs=1e-12)


def test_random_10_by_64_classifier_nc2_is_about_0_37():
    """Known answer for the null (issue 14): a random Gaussian 10 x 64 classifier's NC2 ≈ 0.37, and the
    value falls with the feature dimension (0.49 at d = 32, 0.14 at d = 512)."""
    rng = np.random.default_rng(14)
    v64 = random_nc2(10, 64, 4000, rng)
    assert v64.mean() == pytest.approx(0.37, abs=0.01) and 0.02 < v64.std() < 0.05
    assert random_nc2(10, 32, 2000, rng).mean() == pytest.approx(0.49, abs=0.01)
    assert random_nc2(10, 512, 1000, rng).mean() == pytest.approx(0.135, abs=0.01)
    # one draw equals nc2() of the same centred Gaussian matrix
    w = torch.from_numpy(np.random.default_rng(5).standard_normal((1, 10, 64)))
    assert random_nc2(10, 64, 1, np.random.default_rng(5))[0] == pytest.approx(nc2(w[0]), rel=1e-12)


def test_random_classifier_nc3_is_far_from_self_dual():
    m = torch.from_numpy(np.random.default_rng(1).standard_normal((10, 64)))
    m = m - m.mean(0)
    v = random_nc3(m, 500, np.random.default_rng(2))
    assert v.mean() == pytest.approx(math.sqrt(2), abs=0.05)  # a random direction is ~orthogonal to the ETF
    assert nc3(m, m) < 0.5 < v.min()  # W = M is self-dual up to the ETF shape; random W never is


def test_nc1_shuffled_equals_nc1_of_permuted_labels():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(10).repeat(30)
    h = torch.randn(300, 16, generator=g) + 3 * torch.randn(10, 16, generator=g)[y]
    got = nc1_shuffled(h, y, 10, 4, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    want = [nc1(h, y[torch.from_numpy(rng.permutation(300))], 10) for _ in range(4)]
    assert got == pytest.approx(want, rel=1e-9)
    assert nc1(h, y, 10) < 0.5 < 10 < got.min()  # shuffling destroys the class structure


# ------------------------------------------------------------------------------------------- losses

LOGITS = torch.log(torch.tensor([[1.0, 3.0]]))  # p = (0.25, 0.75)
TRUE = torch.tensor([1])


def test_cross_entropy_hand_computed():
    assert float(cross_entropy(LOGITS, TRUE)) == pytest.approx(-math.log(0.75), rel=1e-6)


def test_label_smoothing_hand_computed_and_matches_torch():
    want = 0.9 * -math.log(0.75) + 0.1 * 0.5 * (-math.log(0.25) - math.log(0.75))
    assert float(label_smoothing(LOGITS, TRUE, 0.1)) == pytest.approx(want, rel=1e-6)
    x, y = torch.randn(8, 5, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 5
    ref = torch.nn.functional.cross_entropy(x, y, label_smoothing=0.05)
    assert float(make_loss("ls", ls_alpha=0.05)(x, y)) == pytest.approx(float(ref), rel=1e-6)


def test_focal_hand_computed():
    assert float(focal(LOGITS, TRUE, 3.0)) == pytest.approx(-(0.25**3) * math.log(0.75), rel=1e-6)
    assert float(focal(LOGITS, TRUE, 0.0)) == pytest.approx(-math.log(0.75), rel=1e-6)  # gamma 0 = CE


def test_scaled_mse_hand_computed():
    # logits (1, 2), class 0, target (15, 0): ((1 - 15)^2 + 2^2) / 2 = 100
    assert float(scaled_mse(torch.tensor([[1.0, 2.0]]), torch.tensor([0]), 15.0)) == pytest.approx(100.0)


def test_unknown_loss_is_a_clear_error():
    with pytest.raises(ClaimbenchError, match="loss 'hinge' unknown"):
        make_loss("hinge")


# ------------------------------------------------------------------------------------------- model


@pytest.mark.parametrize("width,dim", [(0.0625, 32), (0.25, 128)])
def test_width_resnet_feature_dim_and_forward_shape(width, dim):
    model = WideResNet18(width, num_classes=10, stem_stride=2).eval()
    x = torch.randn(3, 1, 28, 28)
    assert model.feature_dim == dim and model.features(x).shape == (3, dim)
    assert torch.allclose(model(x), model.fc(model.features(x)))


def test_width_resnet_rejects_bad_width():
    with pytest.raises(ClaimbenchError, match="width multiplier"):
        WideResNet18(0.0)
