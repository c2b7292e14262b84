"""Neural collapse: null and control draws for the gating criteria, computed from the finished runs only.

N1 (collapse) with the effect absent: the final features of every run at the largest width keep their
values but lose their class structure (labels permuted: NC1), and the classifier is a random Gaussian
matrix of the same shape (NC2 against the random-classifier mean, NC3 against the final class means).
N2 (equivalence within ±margin) with the claim false: one loss's true test accuracy differs from CE's by
exactly the margin (the least favourable case), the others equal CE; the control draws have all four
losses equal ("one loss under four seeds"). Both simulate every run's accuracy as a common mean plus seed
noise of one loss's seed-to-seed spread (CE at the largest width under its main and control seeds).
Every draw is a dict statistic -> Samples, one value per seed, exactly as the data's.
"""

from __future__ import annotations

import math

import numpy as np

from claimbench.collapse_losses import LOSS_NAMES
from claimbench.intervals import Samples, replicates
from claimbench.intervals import ratios as ratio_samples
from claimbench.metrics.collapse import class_means, nc1_shuffled, random_nc2, random_nc3

NULL_SEED = 14
NULL_DRAWS = 200
RANDOM_NC2_DRAWS = 4000  # Monte-Carlo draws behind the random-classifier NC2 mean (SE about 0.0005)


def random_nc2_mean(num_classes: int, d: int) -> float:
    """Expected NC2 (W-centred) of a random Gaussian K x d classifier, by seeded Monte Carlo."""
    return float(random_nc2(num_classes, d, RANDOM_NC2_DRAWS, np.random.default_rng(NULL_SEED)).mean())


def collapse_null_draws(features: dict[tuple[str, int], dict], first: dict[tuple[str, int], dict],
                        nc2_random: float, seeds: list[int], names: dict[str, str], k: int,
                        draws: int = NULL_DRAWS) -> list[dict[str, Samples]]:
    """N1's null draws. features: (loss, seed) -> {'h' (N, d), 'y' (N,)} final features at the largest width;
    first: (loss, seed) -> {'nc1', 'nc3'} at the first measured epoch; names: 'nc1'/'nc2'/'nc3' -> the
    statistic each check reads; k classes. Per draw and seed: the worst loss's ratio, as in the data."""
    rng = np.random.default_rng(NULL_SEED)
    ratios = {m: {} for m in ("nc1", "nc2", "nc3")}
    for (loss, seed), f in sorted(features.items()):
        h, y = f["h"], f["y"].long()
        mu, mu_g = class_means(h, y, k)
        ratios["nc1"][loss, seed] = nc1_shuffled(h, y, k, draws, rng) / first[loss, seed]["nc1"]
        ratios["nc2"][loss, seed] = random_nc2(k, h.shape[1], draws, rng) / nc2_random
        ratios["nc3"][loss, seed] = random_nc3(mu - mu_g, draws, rng) / first[loss, seed]["nc3"]
    out = []
    for i in range(draws):
        out.append({names[m]: ratio_samples([np.max([ratios[m][loss, s][i] for loss in LOSS_NAMES]) for s in seeds])
                    for m in ratios})
    return out


def run_noise_pp(accs_pp: list[float], n_test: int) -> tuple[float, str]:
    """(seed-to-seed SD of one loss's test accuracy in points, where it came from): the sample SD of its
    runs when there are at least 2, all finite and not all equal; else the binomial SD of one accuracy on
    n_test images (NaN if no accuracy is finite)."""
    a = np.asarray(accs_pp, dtype=float)
    if len(a) >= 2 and np.isfinite(a).all() and a.std(ddof=1) > 0:
        return float(a.std(ddof=1)), f"SD of {len(a)} seeds of one loss"
    p = float(np.clip(np.nanmean(a) / 100 if len(a) else 0.5, 0.01, 0.99))
    return 100 * math.sqrt(p * (1 - p) / n_test), f"binomial test-set SD ({n_test} images)"


def equivalence_draws(sigma_pp: float, n_seeds: int, names: dict[str, str], margin: float | None,
                      draws: int = NULL_DRAWS, seed: int = NULL_SEED) -> list[dict[str, Samples]]:
    """N2's draws: per seed, four accuracies sigma·z (z ~ N(0, 1)), plus ±margin on one random non-CE loss
    when margin is given (null); margin None = all four equal (control). names: loss -> the statistic of
    its difference from CE (points), one value per seed."""
    rng = np.random.default_rng(seed)
    others = list(names)
    out = []
    for _ in range(draws):
        acc = sigma_pp * rng.standard_normal((1 + len(others), n_seeds))
        if margin is not None:
            acc[1 + rng.integers(len(others))] += margin * rng.choice([-1.0, 1.0])
        out.append({names[loss]: replicates(acc[1 + j] - acc[0]) for j, loss in enumerate(others)})
    return out
