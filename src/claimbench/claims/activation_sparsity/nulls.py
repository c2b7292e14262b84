"""Null draws of the gating criteria: what their statistics do when the effect is absent, from the finished
runs only (no training). N_DRAWS seeded draws per criterion, each a dict statistic -> Samples.

- A1, A2, A4, A6 (sparsity *emerges with training*): the step labels of every run's measurements are
  permuted (independently per run and seed), so "init", "end" and "end of the first pass" are measurements
  taken at unrelated points of training; the statistics are recomputed per replicate exactly as on the data.
- A3 (the larger model ends sparser): both sizes end at the smaller model's mean end nnz% (test), each
  replicate drawn from a normal with the seed-to-seed sd pooled over the two sizes (NaN when no size has
  two seeds: no interval, as on the data); one draw per replicate pair of the data.
"""

from __future__ import annotations

import numpy as np

from claimbench.claims.activation_sparsity.curves import PREFIX, REPLICATED, Curve, run_statistics
from claimbench.intervals import Samples, ratios, replicates

N_DRAWS = 500
_BOTH = ("vit", "lm")
# The statistics each step-shuffled criterion reads (the card's checks; a test holds them equal).
SHUFFLED = {"A1": [f"{m}_{k}" for m in _BOTH for k in ("init_nnz_train", "init_nnz_test", "end_over_init_train",
                                                     "end_over_init_test", "train_test_gap")],
            "A2": [f"{m}_worst_layer_end_over_init" for m in _BOTH],
            "A4": ["rand_labels_end_over_init_train", "rand_inputs_end_over_init_train"],
            "A6": [f"{m}_first_pass_over_init_test" for m in _BOTH]}


def replicate_samples(name: str, values) -> Samples:
    """Per-seed values as the Samples kind their form needs: `*_over_init*` are positive ratios (judged on the
    log scale, claimbench.intervals); nnz%, gaps and the relative reduction are plain replicates."""
    return ratios(values) if "_over_init" in name else replicates(values)


def null_draws(runs: dict[str, dict[int, dict]], rng: np.random.Generator) -> dict[str, list[dict]]:
    """criterion id -> N_DRAWS draws (statistic -> Samples) for A1–A4 and A6 (module docstring). One shuffle
    of every run per draw serves the four step-shuffled criteria."""
    curves = {run: [Curve.of(rec) for rec in runs.get(run, {}).values()] for run in REPLICATED}
    out: dict[str, list[dict]] = {cid: [] for cid in SHUFFLED}
    for _ in range(N_DRAWS):
        draw = {}
        for run, names in REPLICATED.items():
            per_seed = [run_statistics(c.shuffled(rng)) for c in curves[run]]  # none: a skipped run (NaN)
            draw.update({f"{PREFIX[run]}_{k}": replicate_samples(k, [s[k] for s in per_seed] or [float("nan")])
                         for k in names})
        for cid, names in SHUFFLED.items():
            out[cid].append({k: draw[k] for k in names})
    out["A3"] = [{"vit_scaling_rel_reduction": s} for s in scaling_null(runs, rng, N_DRAWS)]
    return out


def end_nnz(runs: dict[str, dict[int, dict]], run: str) -> np.ndarray:
    """(seeds,) end layer-mean nnz% on test data of `run`, one per seed."""
    return np.array([run_statistics(Curve.of(rec))["end_nnz_test"] for rec in runs[run].values()])


def pooled_sd(groups: list[np.ndarray]) -> float:
    """Within-group sd pooled over the groups (NaN without any group of two)."""
    dof = sum(len(g) - 1 for g in groups)
    ss = sum(float(((g - g.mean()) ** 2).sum()) for g in groups if len(g))
    return float(np.sqrt(ss / dof)) if dof > 0 else float("nan")


def scaling_null(runs: dict[str, dict[int, dict]], rng: np.random.Generator, n_draws: int) -> list[Samples]:
    """Draws of A3's relative reduction 1 − L/S with L and S from one normal (no size effect)."""
    if "vit_large" not in runs:  # skipped at this scale: A3 undefined, as on the data
        return [replicates([float("nan")]) for _ in range(n_draws)]
    small, large = end_nnz(runs, "vit_small"), end_nnz(runs, "vit_large")
    pairs = len(set(runs["vit_small"]) & set(runs["vit_large"]))
    mu, sd = float(small.mean()), pooled_sd([small, large])
    if not np.isfinite(sd):
        return [replicates([float("nan")] * pairs) for _ in range(n_draws)]
    return [replicates(1 - rng.normal(mu, sd, pairs) / rng.normal(mu, sd, pairs)) for _ in range(n_draws)]
