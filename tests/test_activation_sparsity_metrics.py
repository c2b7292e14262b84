"""Known-answer tests for the activation-sparsity and calibration metrics."""

import math

import pytest
import torch
from torch import nn

from claimbench.claims.activation_sparsity.curves import Curve, run_statistics
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


def curve_record(points, first_pass=None, token_mixing=None):
    """A run record from {step: [nnz% per layer]}; test = train + 2 points after step 0."""
    curve = []
    for step, nnz in points.items():
        entry = {"step": step}
        for probe, shift in (("train", 0.0), ("test", 2.0)):
            layers = {f"blocks.{i}.mlp.act": v + (shift if step else 0.0) for i, v in enumerate(nnz)}
            if token_mixing is not None:
                layers["blocks.0.mlp_tokens.act"] = token_mixing
            entry[probe] = {"layers": layers, "mean": sum(layers.values()) / len(layers), "dead_fraction": 0.0}
        curve.append(entry)
    rec = {"curve": curve, "steps_per_epoch": 60, "total_steps": max(points)}
    return rec if first_pass is None else {**rec, "first_pass_step": first_pass}


def test_run_statistics_on_known_curve():
    rec = curve_record({0: [50.0, 50.0, 40.0], 50: [45.0, 30.0, 20.0], 100: [40.0, 20.0, 10.0]},
                       token_mixing=99.0)  # a Mixer token-mixing layer: never counted
    s = run_statistics(Curve.of(rec))
    assert s["init_nnz_test"] == pytest.approx(140 / 3)
    assert s["end_nnz_train"] == pytest.approx(70 / 3)
    assert s["end_over_init_train"] == pytest.approx(0.5)
    assert s["train_test_gap"] == pytest.approx(2.0)
    assert s["worst_layer_end_over_init"] == pytest.approx(22 / 50)  # layer 0 (40 → 42 on test) is excluded
    # old records have no first_pass_step: min(steps_per_epoch 60, total 100) → the measurement at step 50
    assert s["first_pass_step"] == 50 and s["first_pass_over_init_test"] == pytest.approx(101 / 140)
    s = run_statistics(Curve.of({**rec, "first_pass_step": 100}))
    assert s["first_pass_over_init_test"] == pytest.approx(s["end_over_init_test"])


def test_a_nan_layer_makes_every_statistic_built_on_it_nan():
    rec = curve_record({0: [50.0, 50.0, 40.0], 100: [40.0, float("nan"), 10.0]}, first_pass=100)
    s = run_statistics(Curve.of(rec))
    for name in ("end_nnz_train", "end_over_init_test", "worst_layer_end_over_init", "train_test_gap",
                 "first_pass_over_init_test"):
        assert math.isnan(s[name]), name
    assert s["init_nnz_test"] == pytest.approx(140 / 3)  # the init measurement is still defined


def test_nan_and_inf_activations_are_undefined_not_zeros():
    c = LayerCounts()
    c.add(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    assert c.nonzero_percent() == pytest.approx(12.5) and c.nonfinite == 0
    c.add(torch.tensor([[float("nan"), 0.0, 0.0, 0.0]]))  # a diverged token: NaN > 0 is False, not a zero
    assert math.isnan(c.nonzero_percent()) and c.nonfinite == 1
    freq = c.firing_frequency()
    assert math.isnan(freq[0]) and freq[1:].tolist() == [0.0, 0.0, 0.0]
    s = summarize({"a": c, "b": _counts([[1.0, 2.0]])})
    assert math.isnan(s["layers"]["a"]) and s["layers"]["b"] == 100.0
    assert math.isnan(s["mean"]) and math.isnan(s["dead_fraction"])
    inf = _counts([[float("inf"), 1.0]])
    assert math.isnan(inf.nonzero_percent())


def _counts(a):
    c = LayerCounts()
    c.add(torch.tensor(a))
    return c


def test_a_diverged_model_measures_nan_not_sparse():
    lin = nn.Linear(2, 4)
    with torch.no_grad():
        lin.weight.fill_(float("nan"))
    counts = measure_sparsity(nn.Sequential(lin, nn.ReLU()), torch.ones(3, 2))
    assert math.isnan(counts["1"].nonzero_percent())
    assert math.isnan(summarize(counts)["mean"])
