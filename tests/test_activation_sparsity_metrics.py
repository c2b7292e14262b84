"""Known-answer tests for the activation-sparsity and calibration metrics."""

import math

import pandas as pd
import pytest
import torch
from torch import nn

from claimbench.claims.activation_sparsity.analyse import run_statistics
from claimbench.metrics.activation_sparsity import (
    LayerCounts,
    SparsityError,
    TopKReLU,
    activation_modules,
    log_spaced_steps,
    measure_sparsity,
    summarize,
)
from claimbench.metrics.calibration import CalibrationError, expected_calibration_error, reliability_bins


def test_layer_counts_on_hand_built_activations():
    c = LayerCounts()
    c.add(torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, -1.0]]))  # token 1: 2/4 > 0, token 2: 0/4
    c.add(torch.tensor([[[3.0, 1e-30, 0.0, 0.0]]]))                       # leading dims are tokens: 2/4
    assert c.tokens == 3
    assert c.nonzero_percent() == pytest.approx(100 * (0.5 + 0.0 + 0.5) / 3)
    assert c.firing_frequency().tolist() == pytest.approx([2 / 3, 1 / 3, 0, 1 / 3])
    s = summarize({"a": c})
    assert s["dead_fraction"] == pytest.approx(0.25)


def test_hooks_count_relu_outputs_in_eval_mode():
    lin = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
    model = nn.Sequential(lin, nn.ReLU(), nn.Dropout(0.5), nn.Linear(3, 1))
    model.train()
    x = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [-2.0, 1.0]])
    # positives per row: [1,1,0]=2, [1,0,0]=1, [0,0,1]=1, [0,1,1]=2 -> 6 of 12 = 50%
    counts = measure_sparsity(model, x, batch_size=3)
    assert list(counts) == ["1"]
    assert counts["1"].nonzero_percent() == pytest.approx(50.0)
    assert counts["1"].firing_frequency().tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert model.training  # mode restored
    assert not model[1]._forward_hooks  # hooks removed


def test_topk_keeps_k_largest_per_token():
    a = TopKReLU(2)(torch.tensor([[3.0, -1.0, 1.0, 2.0], [-1.0, -2.0, 0.5, -3.0]]))
    assert a.tolist() == [[3.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.5, 0.0]]
    with pytest.raises(SparsityError, match="k >= 1"):
        TopKReLU(0)


def test_bad_inputs_raise_one_clear_error():
    with pytest.raises(SparsityError, match="no nn.ReLU"):
        activation_modules(nn.Sequential(nn.Linear(2, 2), nn.GELU()))
    with pytest.raises(SparsityError, match="empty"):
        measure_sparsity(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), torch.zeros(0, 2))
    with pytest.raises(SparsityError, match="no tokens"):
        LayerCounts().nonzero_percent()
    with pytest.raises(CalibrationError, match="expected logits"):
        expected_calibration_error(torch.zeros(4), torch.zeros(4, dtype=torch.long))


def test_log_spaced_steps():
    steps = log_spaced_steps(1000, 4, always=(7, 5000))
    assert steps == [0, 1, 7, 10, 100, 1000]


def test_ece_known_answers():
    y = torch.tensor([0, 0, 1, 1])
    sure_right = torch.tensor([[20.0, 0.0], [20.0, 0.0], [0.0, 20.0], [0.0, 20.0]])
    assert expected_calibration_error(sure_right, y) == pytest.approx(0.0, abs=1e-6)
    # every prediction class 0 with confidence 0.8, half correct: ECE = |0.5 - 0.8| = 0.3
    logits = torch.log(torch.tensor([[0.8, 0.2]])).repeat(4, 1)
    assert expected_calibration_error(logits, y) == pytest.approx(0.3, abs=1e-6)
    bins = reliability_bins(logits, y, 15)
    assert bins["count"].sum() == 4 and bins["count"][11] == 4  # 0.8 lies in (11/15, 12/15]
    assert math.isnan(bins["accuracy"][0])


def test_run_statistics_on_known_curve():
    rows = []
    for step, nnz in ((0, [50.0, 50.0, 40.0]), (100, [40.0, 20.0, 10.0])):
        for probe, shift in (("train", 0.0), ("test", 2.0)):
            for i, v in enumerate(nnz):
                rows.append({"run": "r", "step": step, "probe": probe, "layer": i,
                             "layer_name": f"blocks.{i}.mlp.act", "nnz_percent": v + (shift if step else 0.0)})
    s = run_statistics(pd.DataFrame(rows), "r")
    assert s["init_nnz_test"] == pytest.approx(140 / 3)
    assert s["end_nnz_train"] == pytest.approx(70 / 3)
    assert s["end_over_init_train"] == pytest.approx(0.5)
    assert s["train_test_gap"] == pytest.approx(2.0)
    assert s["worst_layer_end_over_init"] == pytest.approx(22 / 50)  # layer 0 (40 → 42 on test) is excluded
