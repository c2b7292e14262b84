"""EL2N, GraNd, input norm, keep-hardest and rank statistics on hand-computed answers."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from claimbench.errors import ClaimbenchError
from claimbench.metrics.example_scores import (
    el2n_from_logits,
    el2n_scores,
    grand_scores,
    input_norms,
    keep_hardest,
)
from claimbench.metrics.ranking import auroc, mean_se, spearman, top_fraction_share
from claimbench.models.data_diet_nets import build_model


def test_el2n_hand_values():
    # logits (0, 0), y=0: p = (.5, .5) -> ||(-.5, .5)|| = sqrt(.5); logits (ln 3, 0), y=1: p = (.75, .25)
    # -> ||(.75, -.75)|| = .75 sqrt 2; a confident correct prediction scores ~0; unsquared, so ≤ sqrt 2.
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [20.0, 0.0], [0.0, 20.0]])
    y = torch.tensor([0, 1, 0, 0])
    got = el2n_from_logits(logits, y)
    want = torch.tensor([math.sqrt(0.5), 0.75 * math.sqrt(2), 0.0, math.sqrt(2)])
    assert torch.allclose(got, want, atol=1e-6)


def test_el2n_scores_uses_eval_mode_and_restores_it():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).train()
    x, y = torch.randn(6, 3), torch.randint(0, 2, (6,))
    got = el2n_scores(net, x, y)
    assert net.training
    net.eval()
    want = (net(x).softmax(-1) - F.one_hot(y, 2)).norm(dim=1)
    assert torch.allclose(got, want.detach(), atol=1e-6)


def test_grand_of_linear_model_matches_closed_form():
    # logits = Wx + b: dCE/dW = (p - y) x^T, dCE/db = p - y, so GraNd = EL2N * sqrt(||x||^2 + 1).
    torch.manual_seed(1)
    net = nn.Linear(5, 3)
    x, y = torch.randn(7, 5), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    want = el2n_scores(net, x, y) * (x.pow(2).sum(1) + 1).sqrt()
    assert torch.allclose(grand_scores(net, x, y, batch_size=3), want, atol=1e-5)


def test_grand_matches_per_example_autograd_on_bn_cnn():
    torch.manual_seed(2)
    net = build_model("fast_cnn", 1, 10, 2)
    net.train()(torch.randn(16, 1, 28, 28))  # move BN running stats off their init
    x, y = torch.randn(5, 1, 28, 28), torch.randint(0, 10, (5,))
    got = grand_scores(net, x, y, batch_size=2)
    assert net.training
    net.eval()
    want = []
    for i in range(len(x)):
        net.zero_grad()
        F.cross_entropy(net(x[i : i + 1]), y[i : i + 1]).backward()
        want.append(torch.cat([p.grad.flatten() for p in net.parameters()]).norm())
    assert torch.allclose(got, torch.stack(want), rtol=1e-4)


def test_input_norm_and_keep_hardest():
    x = torch.tensor([[3.0, 4.0], [0.0, 1.0]]).view(2, 1, 1, 2)
    assert torch.allclose(input_norms(x), torch.tensor([5.0, 1.0]))
    scores = torch.tensor([0.3, 0.9, 0.1, 0.7, 0.5])
    assert keep_hardest(scores, 0.4).tolist() == [1, 3]
    assert keep_hardest(scores, 1.0).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("call", [
    lambda: keep_hardest(torch.rand(5), 0.0),
    lambda: keep_hardest(torch.rand(5, 2), 0.5),
    lambda: el2n_from_logits(torch.zeros(3, 2), torch.tensor([0, 1])),
    lambda: el2n_from_logits(torch.zeros(2, 2), torch.tensor([0, 2])),
    lambda: auroc([0.1, 0.2], [False, False]),
    lambda: spearman([1.0, 2.0], [1.0]),
    lambda: top_fraction_share([1.0, 2.0], [True, False], 0.1),
])
def test_bad_input_raises_one_clear_error(call):
    with pytest.raises(ClaimbenchError):
        call()


def test_spearman_known_answers():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert spearman(a, a**3) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 4, 50).astype(float), rng.normal(size=50)  # with ties
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)


def test_auroc_known_answers():
    assert auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    assert auroc([0.1, 0.2, 0.9], [False, False, True]) == 1.0
    assert auroc([0.9, 0.2, 0.1], [True, False, False]) == 1.0
    assert auroc([0.9, 0.2, 0.1], [False, True, True]) == 0.0
    assert auroc([0.5] * 4, [True, False, True, False]) == 0.5


def test_top_fraction_share_and_mean_se():
    scores = np.arange(10.0)
    corrupted = np.zeros(10, bool)
    corrupted[[9, 7, 0]] = True
    assert top_fraction_share(scores, corrupted, 0.2) == 0.5  # top 2 = {9, 8}
    assert top_fraction_share(scores, corrupted, 0.3) == pytest.approx(2 / 3)
    m, se = mean_se([1.0, 2.0, 3.0])
    assert m == 2.0 and se == pytest.approx(1 / math.sqrt(3))
    assert math.isnan(mean_se([1.0])[1])


def test_models_shapes_and_bad_names():
    x = torch.randn(2, 1, 28, 28)
    assert build_model("fast_cnn", 1, 10, 4)(x).shape == (2, 10)
    assert build_model("resnet18_lowres", 1, 10, 64)(x).shape == (2, 10)
    with pytest.raises(ClaimbenchError, match="width"):
        build_model("resnet18_lowres", 1, 10, 32)
    with pytest.raises(ClaimbenchError, match="unknown"):
        build_model("vgg", 1, 10, 16)
