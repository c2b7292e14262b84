"""Neural-collapse measurements (Papyan, Han & Donoho 2020; Zhu et al. 2021; Zhou et al. 2022), float64.

Inputs: penultimate features h (N, d), integer labels y (N,) in [0, K), classifier weight W (K, d) and
bias b (K,). Class means mu (K, d), global mean mu_G = mean of all N features, centred means
M = mu - mu_G (K, d). Conventions (fixed here, used everywhere):

- NC1 = tr(Sigma_W Sigma_B^+) / K, Sigma_W = (1/N) sum_i (h_i - mu_{y_i})(.)^T, Sigma_B = (1/K) M^T M,
  with the Moore-Penrose pseudo-inverse (as scipy.linalg.pinv in the reference code; the 1/K factor as in
  the paper and `rhubarbwu/neural-collapse`, unlike Papyan's Colab, which omits it).
- ETF distance of a K x K matrix G: || G/||G||_F - (I - 11^T/K)/sqrt(K-1) ||_F (0 = simplex ETF).
- NC2 = ETF distance of W W^T; NC3 = ETF distance of W M^T. `centred` uses W - mean over classes
  (jinxinzhou/nc_loss `evaluate.py`); uncentred uses W as is (tDing1/Neural-Collapse).
- NC3 (Papyan) = || W/||W||_F - M/||M||_F ||_F^2.
- NC4 = fraction of samples where argmax_c (W h + b)_c differs from argmin_c ||h - mu_c|| (Papyan).
- Equinorm = std_c ||v_c|| / mean_c ||v_c|| (Bessel-corrected std, as Papyan's code), for M and W rows.
- Max-angle = mean over c != c' of |cos(v_c, v_c') + 1/(K-1)| (Papyan's Fig. 4), for M and W rows.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from claimbench.errors import ClaimbenchError

# Between-class scatter below this share of the features' second moment means the class means coincide
# up to rounding (e.g. every feature identical): NC1 is then NaN rather than the 0 a pseudo-inverse of ~0 gives.
DEGENERATE_RTOL = 1e-12


class CollapseInputError(ClaimbenchError, ValueError):
    """Features, labels or classifier passed to a collapse metric have wrong shapes or content."""


def _check(h: torch.Tensor, y: torch.Tensor, num_classes: int) -> None:
    if h.dim() != 2 or y.dim() != 1 or len(h) != len(y):
        raise CollapseInputError(f"collapse metrics need features (N, d) and labels (N,); got {tuple(h.shape)} "
                                 f"and {tuple(y.shape)}. Flatten features to one row per sample.")
    if num_classes < 2:
        raise CollapseInputError(f"collapse metrics need at least 2 classes, got num_classes={num_classes}.")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise CollapseInputError(f"labels must lie in [0, {num_classes}); got range [{int(y.min())}, "
                                 f"{int(y.max())}]. Pass the right num_classes.")
    counts = torch.bincount(y, minlength=num_classes)
    if bool((counts == 0).any()):
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise CollapseInputError(f"classes {missing} have no samples; every class needs at least one to have a "
                                 f"class mean. Use a class-balanced subset.")


def class_means(h: torch.Tensor, y: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu (K, d), mu_G (d,)) in float64: per-class means and the mean of all samples."""
    _check(h, y, num_classes)
    h = h.double()
    counts = torch.bincount(y, minlength=num_classes).to(h)
    mu = torch.zeros(num_classes, h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, y, h)
    return mu / counts[:, None], h.mean(0)


def _no_class_structure(centred_means: torch.Tensor, h: torch.Tensor) -> bool:
    """True when the class means coincide (between-class scatter below DEGENERATE_RTOL of the features'
    second moment, or all-zero features): NC1 is then undefined, not 0 (a dead network is not collapsed)."""
    between = float((centred_means.double() ** 2).sum(1).mean())
    second_moment = float((h.double() ** 2).sum(1).mean())
    return not between > DEGENERATE_RTOL * second_moment


def nc1(h: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """Within-class variability relative to between-class spread: tr(Sigma_W Sigma_B^+)/K (0 = collapsed);
    NaN when the class means coincide (identical or all-zero features), where the ratio is undefined."""
    mu, mu_g = class_means(h, y, num_classes)
    if _no_class_structure(mu - mu_g, h):
        return float("nan")
    within = h.double() - mu[y]
    sigma_w = within.T @ within / len(h)
    centred = mu - mu_g
    sigma_b_pinv = torch.linalg.pinv(centred.T @ centred / num_classes, hermitian=True)
    return float((sigma_w * sigma_b_pinv).sum() / num_classes)


def etf_distance(g: torch.Tensor) -> float:
    """|| g/||g||_F - (I - 11^T/K)/sqrt(K-1) ||_F for a K x K matrix g (0 iff g is a positive multiple
    of the simplex-ETF Gram matrix)."""
    if g.dim() != 2 or g.shape[0] != g.shape[1] or g.shape[0] < 2:
        raise CollapseInputError(f"etf_distance needs a square K x K matrix with K >= 2; got {tuple(g.shape)}.")
    g = g.double()
    k = g.shape[0]
    target = (torch.eye(k, dtype=g.dtype, device=g.device) - 1.0 / k) / math.sqrt(k - 1)
    return float(torch.linalg.norm(g / torch.linalg.norm(g) - target))


def _centre(w: torch.Tensor, centred: bool) -> torch.Tensor:
    w = w.double()
    return w - w.mean(0, keepdim=True) if centred else w


def nc2(w: torch.Tensor, centred: bool = True) -> float:
    """Classifier-to-simplex-ETF distance of W (K, d)."""
    wc = _centre(w, centred)
    return etf_distance(wc @ wc.T)


def nc3(w: torch.Tensor, centred_means: torch.Tensor, centred: bool = True) -> float:
    """Self-duality: ETF distance of W M^T, W (K, d), M = mu - mu_G (K, d)."""
    return etf_distance(_centre(w, centred) @ centred_means.double().T)


def nc3_papyan(w: torch.Tensor, centred_means: torch.Tensor) -> float:
    """|| W/||W||_F - M/||M||_F ||_F^2 (Papyan's NC3; W uncentred)."""
    w, m = w.double(), centred_means.double()
    return float(torch.linalg.norm(w / torch.linalg.norm(w) - m / torch.linalg.norm(m)) ** 2)


def nc4_mismatch(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, mu: torch.Tensor) -> float:
    """Fraction of samples whose classifier decision differs from the nearest class mean (0 = agree)."""
    h, w, mu = h.double(), w.double(), mu.double()
    logits = h @ w.T + (0.0 if b is None else b.double())
    # argmin_c ||h - mu_c||^2 = argmin_c (||mu_c||^2 - 2 h.mu_c)
    ncc = ((mu * mu).sum(1) - 2.0 * h @ mu.T).argmin(1)
    return float((logits.argmax(1) != ncc).double().mean())


def equinorm(v: torch.Tensor) -> float:
    """Coefficient of variation of the row norms of v (K, d)."""
    norms = torch.linalg.norm(v.double(), dim=1)
    return float(norms.std() / norms.mean())


def max_angle(v: torch.Tensor) -> float:
    """Mean over c != c' of |cos(v_c, v_c') + 1/(K-1)| for the rows of v (K, d)."""
    v = v.double()
    k = v.shape[0]
    unit = v / torch.linalg.norm(v, dim=1, keepdim=True)
    cos = unit @ unit.T
    off = ~torch.eye(k, dtype=torch.bool, device=v.device)
    return float((cos[off] + 1.0 / (k - 1)).abs().mean())


# --- null worlds (no collapse), for calibrating criteria on collapse metrics; seeded numpy Generators ---


def _etf_distances(g: torch.Tensor) -> torch.Tensor:
    """etf_distance of each K x K matrix in g (n, K, K), float64 (n,)."""
    k = g.shape[-1]
    target = (torch.eye(k, dtype=torch.float64) - 1.0 / k) / math.sqrt(k - 1)
    g = g / torch.linalg.norm(g, dim=(-2, -1), keepdim=True)
    return torch.linalg.norm(g - target, dim=(-2, -1))


def _random_classifiers(rng: np.random.Generator, draws: int, num_classes: int, d: int) -> torch.Tensor:
    """(draws, K, d) i.i.d. standard-normal classifiers, W-centred over classes (the gating convention)."""
    w = torch.from_numpy(rng.standard_normal((draws, num_classes, d)))
    return w - w.mean(1, keepdim=True)


def random_nc2(num_classes: int, d: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """NC2 (W-centred) of `draws` random Gaussian classifiers K x d: what an untrained classifier gives.
    Its mean falls with d (about 0.49 at K=10, d=32; 0.37 at d=64; 0.14 at d=512), because a wide random
    W is already nearly orthogonal; the scale of W does not matter."""
    w = _random_classifiers(rng, draws, num_classes, d)
    return _etf_distances(w @ w.transpose(1, 2)).numpy()


def random_nc3(centred_means: torch.Tensor, draws: int, rng: np.random.Generator) -> np.ndarray:
    """NC3 (W-centred) of `draws` random Gaussian classifiers against fixed centred class means M (K, d):
    self-duality with a classifier unrelated to the features."""
    m = centred_means.double()
    w = _random_classifiers(rng, draws, m.shape[0], m.shape[1])
    return _etf_distances(w @ m.T).numpy()


def nc1_shuffled(h: torch.Tensor, y: torch.Tensor, num_classes: int, draws: int,
                 rng: np.random.Generator) -> np.ndarray:
    """NC1 of the features h (N, d) with their labels y permuted at random, `draws` times: the same
    features without class structure. Each value equals nc1(h, y[perm], K) (same pseudo-inverse cut-off;
    NaN where the class means coincide), computed through the K x K Gram G = M M^T = U diag(lam) U^T of
    the centred class means: Sigma_B^+ = K M^T U diag(1/lam^2) U^T M, so with the within-class deviations
    Z (N, d), NC1 = sum_j ||Z M^T u_j||^2 / (N lam_j^2) over kept lam_j. O(N d K) per draw instead of
    O(N d^2), batched over draws (a K x K eigh, not a d x d pseudo-inverse)."""
    _check(h, y, num_classes)
    hc = h.double() - h.double().mean(0)
    n, d = hc.shape
    counts = torch.bincount(y, minlength=num_classes).to(hc)
    rtol = torch.finfo(torch.float64).eps * d  # torch.linalg.pinv's default for the d x d Sigma_B
    second_moment = float((h.double() ** 2).sum(1).mean())
    perms = [torch.from_numpy(rng.permutation(n)) for _ in range(draws)]
    out = []
    chunk = max(1, 2_000_000 // (n * num_classes))  # bounds the (chunk, N, K) one-hot block
    for start in range(0, draws, chunk):
        yp = torch.stack([y[p] for p in perms[start:start + chunk]])  # (B, N)
        onehot = torch.nn.functional.one_hot(yp, num_classes).to(hc)  # (B, N, K)
        m = onehot.transpose(1, 2) @ hc / counts[:, None]  # centred class means (B, K, d)
        gram = m @ m.transpose(1, 2)  # (B, K, K)
        lam, u = torch.linalg.eigh(gram)  # ascending; lam = squared singular values of M
        weight = torch.where(lam > rtol * lam[:, -1:], 1.0 / (n * lam.clamp_min(1e-300) ** 2), torch.zeros_like(lam))
        proj = (hc @ m.transpose(1, 2) - onehot @ gram) @ u  # Z M^T u_j for every j (B, N, K)
        value = ((proj**2).sum(1) * weight).sum(1)
        degenerate = ~((m**2).sum(2).mean(1) > DEGENERATE_RTOL * second_moment)
        out.append(torch.where(degenerate, torch.full_like(value, float("nan")), value))
    return torch.cat(out).numpy()


def collapse_metrics(h: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                     num_classes: int) -> dict[str, float]:
    """Every collapse measure above for one model: features h (N, d), labels y (N,), classifier W (K, d), b (K,).

    Keys: nc1, nc2 / nc3 (W-centred, the gating variant), nc2_uncentred, nc3_uncentred, nc3_papyan, nc4,
    equinorm_means, equinorm_weights, max_angle_means, max_angle_weights.
    """
    if w.dim() != 2 or w.shape != (num_classes, h.shape[-1]):
        raise CollapseInputError(f"classifier weight must be (K, d) = ({num_classes}, {h.shape[-1]}); got "
                                 f"{tuple(w.shape)}.")
    y = y.to(h.device)
    mu, mu_g = class_means(h, y, num_classes)
    m = mu - mu_g
    return {
        "nc1": nc1(h, y, num_classes),
        "nc2": nc2(w, centred=True),
        "nc3": nc3(w, m, centred=True),
        "nc2_uncentred": nc2(w, centred=False),
        "nc3_uncentred": nc3(w, m, centred=False),
        "nc3_papyan": nc3_papyan(w, m),
        "nc4": nc4_mismatch(h, w, b, mu),
        "equinorm_means": equinorm(m),
        "equinorm_weights": equinorm(w),
        "max_angle_means": max_angle(m),
        "max_angle_weights": max_angle(w),
    }
