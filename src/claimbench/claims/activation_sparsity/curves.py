"""One run's nnz% curve as arrays, the per-run statistics read from it, and its step-shuffled null copy;
which statistics the gating criteria read per replicate.

Only per-token MLP activations count (the Mixer's token-mixing MLPs act per channel and are dropped).
Every statistic is NaN when an nnz% it reads is NaN (a diverged layer; metrics.activation_sparsity):
means and maxima here never skip NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

PROBES = ("train", "test")
# Statistic-name prefix of each run's statistics (e.g. vit_end_over_init_test for vit_small).
PREFIX = {"vit_small": "vit", "char_lm": "lm", "vit_large": "vit_large", "random_labels": "rand_labels",
          "random_inputs": "rand_inputs", "vit_topk": "topk", "mixer": "mixer", "mlp": "mlp"}
# The per-run statistics the gating criteria read, each given per replicate (seed): A1, A2, A6, A4.
REPLICATED = {"vit_small": ("init_nnz_train", "init_nnz_test", "end_over_init_train", "end_over_init_test",
                            "train_test_gap", "worst_layer_end_over_init", "first_pass_over_init_test"),
              "random_labels": ("end_over_init_train",), "random_inputs": ("end_over_init_train",)}
REPLICATED["char_lm"] = REPLICATED["vit_small"]


def is_token_mlp(layer_name: str) -> bool:
    return "mlp_tokens" not in layer_name


@dataclass(frozen=True)
class Curve:
    """steps: (P,) measured optimiser steps, ascending, step 0 first; layers: the L per-token MLP layers in
    depth order; nnz: probe -> (P, L) nonzero % per step and layer; first_pass: optimiser steps of the first
    pass over the training data (no example repeated up to it); half_lr_time: the step after which half of
    the run's summed learning rate is spent (NaN in records made before it was stored)."""

    steps: np.ndarray
    layers: tuple[str, ...]
    nnz: dict[str, np.ndarray]
    first_pass: int
    half_lr_time: float = float("nan")

    @classmethod
    def of(cls, rec: dict) -> Curve:
        """From a run record (curve = [{step, train: {layers: {name: nnz%}}, test: ...}, ...]). Records made
        before `first_pass_step` was stored give min(steps_per_epoch, total_steps)."""
        points = sorted(rec["curve"], key=lambda p: p["step"])
        layers = tuple(n for n in points[0]["test"]["layers"] if is_token_mlp(n))
        nnz = {probe: np.array([[_num(p[probe]["layers"][n]) for n in layers] for p in points])
               for probe in PROBES}
        first = rec.get("first_pass_step", min(rec["steps_per_epoch"], rec["total_steps"]))
        return cls(np.array([p["step"] for p in points]), layers, nnz, int(first),
                   float(rec.get("half_lr_time_step", float("nan"))))

    def shuffled(self, rng: np.random.Generator) -> Curve:
        """The same measurements with their step labels permuted (one permutation for both probes): the
        curve of a world in which nnz% does not depend on how long the network has trained."""
        order = rng.permutation(len(self.steps))
        return replace(self, nnz={probe: a[order] for probe, a in self.nnz.items()})


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def run_statistics(c: Curve) -> dict[str, float]:
    """Layer-mean nnz% (%) at init (step 0) and end (last step) on train/test, end/init ratios, |train − test|
    gap at the end (points), the largest end/init ratio of a layer on test data excluding the first layer
    (the only layer if there is one), and test nnz% at the end of the first pass over init."""
    out: dict[str, float] = {}
    for probe in PROBES:
        init, end = c.nnz[probe][0].mean(), c.nnz[probe][-1].mean()
        out[f"init_nnz_{probe}"], out[f"end_nnz_{probe}"] = float(init), float(end)
        out[f"end_over_init_{probe}"] = _ratio(end, init)
    test = c.nnz["test"]
    ratios = np.array([_ratio(e, i) for e, i in zip(test[-1], test[0])])
    out["worst_layer_end_over_init"] = float(ratios[1:].max() if len(ratios) > 1 else ratios[0])
    out["train_test_gap"] = abs(out["end_nnz_train"] - out["end_nnz_test"])
    at = int(np.flatnonzero(c.steps <= c.first_pass).max())
    out["first_pass_step"] = float(c.steps[at])
    out["first_pass_over_init_test"] = _ratio(test[at].mean(), test[0].mean())
    out["late_drop"] = late_drop(c)
    return out


def late_drop(c: Curve) -> float:
    """How much the layer-mean nnz% still falls over the last doubling of optimisation time (summed learning
    rate): 1 − end / value at the half_lr_time step, the larger over the train and test probes; NaN without
    a measurement there (regime R2: the curve has flattened when this is small)."""
    hits = np.flatnonzero(c.steps == c.half_lr_time)
    if not len(hits):
        return float("nan")
    drops = [1 - _ratio(c.nnz[p][-1].mean(), c.nnz[p][hits[0]].mean()) for p in PROBES]
    return float(np.max(drops))  # NaN if either is NaN


def _ratio(a: float, b: float) -> float:
    """a / b, NaN when either is NaN or b is 0 (no ratio to a zero init)."""
    return float(a / b) if b != 0 and np.isfinite(a) and np.isfinite(b) else float("nan")
