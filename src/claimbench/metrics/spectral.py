"""Spectral (HTSR) metrics of weight matrices, as defined by WeightWatcher v0.7.5.5.

Spec: ../shared/specs/1-heavy-tail-phases.md §W. Eigenvalues are those of X = WᵀW, i.e. the squared
singular values of the raw W, with no 1/N normalisation (raw units). Layers:

- dense (nn.Linear, nn.Embedding): one matrix W;
- conv (nn.Conv1d/2d, torch layout (out, in, k...)): one matrix W[:, :, i, j] per kernel position, whose
  ESDs are pooled into one ESD (WW ``pool=True``); ``conv2d_norm`` scales every slice by 1/√2 as WW does
  in pooled mode, which halves conv eigenvalues (affects the norm metrics, not α).

Public API (stable; claim 2 reuses it):
    layer_weights(model) -> [(name, kind, [2-D tensors])]
    esd(mats) -> ascending float64 eigenvalues, pooled over the list
    fit_power_law(evals) -> {alpha, xmin, xmax, D, sigma, num_pl_spikes, status, warning}
    fit_mp(evals, Q, M=None) -> {sigma_mp, bulk_max, bulk_min, num_spikes, mp_softrank, W_scale, ...}
    esd_metrics(evals, Q, M) -> every per-layer metric from an ESD (e.g. one pooled over seeds)
    analyze_matrices(named_mats) / analyze_model(model) -> DataFrame, one row per layer

Deviations from WW, deliberate: the CSN scan over xmin is vectorised (chunked, O(n²) flops but no
Python loop); the MP σ search is a vectorised grid followed by a bounded 1-D refinement (WW: scipy
``brute`` + ``fmin``); Q = 1 uses the MP law at Q = 1 instead of WW's quarter-circle fit; the
element shuffle behind ``rand_distance`` is seeded (WW's is not). SVDs run batched on the matrices'
device: float64 on CPU (Gram eigenvalues), float32 SVD on CUDA (as WW's "fast" path).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import optimize, stats
from torch import nn

from claimbench.errors import ClaimbenchError

EVALS_THRESH = 1e-5  # WW: eigenvalues at or below this are dropped before the power-law fit
OVER_TRAINED_THRESH = 2.0  # WW warnings: alpha < 2 'over-trained', alpha > 6 'under-trained'
UNDER_TRAINED_THRESH = 6.0
DEFAULT_MIN_EVALS, DEFAULT_MAX_EVALS, DEFAULT_MAX_N = 10, 15000, 50000
KDE_BANDWIDTH = 0.1  # WW resid_mp: linear-kernel KDE on 1000 points of [0, max + 0.5]
KDE_THRESH = 0.01  # WW: grid points with density below this are ignored by the MP fit
RANK_TOL = 1e-6  # WW `tolerance` for weak_rank_loss


class SpectralError(ClaimbenchError, ValueError):
    """A matrix or ESD handed to the spectral metrics is unusable (wrong shape, NaN, too small)."""


# ---------------------------------------------------------------- layers and ESDs


def layer_weights(model: nn.Module) -> list[tuple[str, str, list[torch.Tensor]]]:
    """[(module name, kind, matrices)] for every Linear/Embedding ('dense') and Conv1d/2d ('conv') layer.

    Dense: [W] as stored (out, in). Conv: the kh·kw per-position slices W[:, :, i, j], each (out, in).
    Tensors are detached views on the parameters' device; biases are ignored.
    """
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Linear, nn.Embedding)):
            out.append((name, "dense", [mod.weight.detach()]))
        elif isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            w = mod.weight.detach()
            slices = w.reshape(w.shape[0], w.shape[1], -1).permute(2, 0, 1)
            out.append((name, "conv", list(slices.unbind(0))))
    return out


def _as_matrix(m, where: str) -> torch.Tensor:
    t = torch.as_tensor(m)
    if t.dim() != 2 or min(t.shape) < 1:
        raise SpectralError(
            f"{where}: expected a non-empty 2-D matrix, got shape {tuple(t.shape)}; "
            f"pass conv kernels through layer_weights() to split them into 2-D slices."
        )
    if not torch.is_floating_point(t):
        t = t.double()
    if not bool(torch.isfinite(t).all()):
        raise SpectralError(
            f"{where}: matrix of shape {tuple(t.shape)} holds NaN or inf; fix the weights first."
        )
    return t


def esd(mats: Sequence | torch.Tensor | np.ndarray, where: str = "esd", accurate: bool = False) -> np.ndarray:
    """Ascending eigenvalues of WᵀW (= squared singular values, min(N, M) per matrix), pooled, float64.

    mats: one 2-D matrix or a list of them (tensor or ndarray). Same-shape matrices are batched.
    CPU: float64 eigenvalues of the M×M Gram matrix (≈10× faster than an SVD; absolute error ~1e-15·λ_max,
    clipped at 0), or float64 singular values with accurate=True. CUDA: batched float32 svdvals (WW "fast").
    """
    if isinstance(mats, (torch.Tensor, np.ndarray)) and np.ndim(mats) == 2:
        mats = [mats]
    mats = [_as_matrix(m, f"{where}[{i}]") for i, m in enumerate(mats)]
    if not mats:
        raise SpectralError(f"{where}: no matrices given.")
    groups: dict[tuple, list[torch.Tensor]] = {}
    for m in mats:
        groups.setdefault((tuple(m.shape), m.device), []).append(m)
    parts = []
    for (shape, device), group in groups.items():
        batch = torch.stack(group)
        if device.type == "cuda" or accurate:
            dtype = torch.float32 if device.type == "cuda" else torch.float64
            evals = torch.linalg.svdvals(batch.to(dtype)).double() ** 2
        else:
            batch = batch.double()
            if shape[0] < shape[1]:
                batch = batch.transpose(1, 2)
            evals = torch.linalg.eigvalsh(batch.transpose(1, 2) @ batch).clamp_min(0.0)
        parts.append(evals.flatten().cpu().numpy())
    return np.sort(np.concatenate(parts))


# ---------------------------------------------------------------- power law (CSN / WWFit)


def fit_power_law(evals: np.ndarray, chunk: int = 512) -> dict:
    """Continuous power-law fit of the ESD tail by Clauset–Shalizi–Newman, exactly as WW's WWFit.

    For every candidate xmin (each eigenvalue above 1e-5 except the largest): α̂ = 1 + n / Σ ln(x/xmin)
    over the n eigenvalues ≥ xmin, D = max |1 − (x/xmin)^(1−α̂) − i/n| (KS distance); xmin = argmin D.
    Returns alpha, xmin, xmax (largest eigenvalue), D, sigma = (α−1)/√n, num_pl_spikes = n, status,
    warning ('over-trained' α < 2, 'under-trained' α > 6). Fewer than 2 usable eigenvalues → status 'failed'.
    """
    x = np.sort(np.asarray(evals, dtype=np.float64).ravel())
    x = x[x > EVALS_THRESH]
    n_all = len(x)
    if n_all < 2 or x[0] == x[-1]:
        return {
            "alpha": float("nan"),
            "xmin": float("nan"),
            "xmax": float(x[-1]) if n_all else float("nan"),
            "D": float("nan"),
            "sigma": float("nan"),
            "num_pl_spikes": 0,
            "status": "failed",
            "warning": "too few distinct eigenvalues",
        }
    logx = np.log(x)
    k = n_all - 1  # candidate xmins: all but the last point
    n_tail = (n_all - np.arange(k)).astype(np.float64)
    suffix = np.cumsum(logx[::-1])[::-1][:k]
    with np.errstate(divide="ignore", invalid="ignore"):
        alphas = 1.0 + n_tail / (suffix - n_tail * logx[:k])
    ds = np.ones(k)
    cols = np.arange(n_all)
    for a in range(0, k, chunk):
        rows = np.arange(a, min(a + chunk, k))
        alpha = alphas[rows, None]
        offset = cols[None, :] - rows[:, None]  # position within the tail, valid where >= 0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            theory = 1.0 - np.exp((1.0 - alpha) * (logx[None, :] - logx[rows, None]))
            gap = np.abs(theory - offset / n_tail[rows, None])
        gap = np.where(offset >= 0, gap, 0.0)
        d = gap.max(axis=1)
        ok = np.isfinite(alphas[rows]) & (alphas[rows] > 1) & np.isfinite(d)
        ds[rows] = np.where(ok, d, 1.0)
    i = int(np.argmin(ds))
    alpha = float(alphas[i])
    warning = (
        "over-trained"
        if alpha < OVER_TRAINED_THRESH
        else ("under-trained" if alpha > UNDER_TRAINED_THRESH else "")
    )
    return {
        "alpha": alpha,
        "xmin": float(x[i]),
        "xmax": float(x[-1]),
        "D": float(ds[i]),
        "sigma": float((alpha - 1) / np.sqrt(n_tail[i])),
        "num_pl_spikes": int(n_tail[i]),
        "status": "success",
        "warning": warning,
    }


# ---------------------------------------------------------------- Marchenko–Pastur fit


def mp_density(x: np.ndarray, Q: float, sigma: np.ndarray | float) -> np.ndarray:
    """MP density of eigenvalues of WᵀW/N for i.i.d. entries of variance σ², aspect ratio Q = N/M ≥ 1.

    x: (P,) points; sigma: scalar or (S,) → returns (P,) or (S, P). Zero outside [λ₋, λ₊].
    """
    s2 = np.asarray(sigma, dtype=np.float64)[..., None]
    lo, hi = s2 * (1 - Q**-0.5) ** 2, s2 * (1 + Q**-0.5) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        val = Q / (2 * np.pi * s2 * x) * np.sqrt(np.clip((hi - x) * (x - lo), 0, None))
    out = np.nan_to_num(val, nan=0.0, posinf=0.0)
    return out


def linear_kde(
    samples: np.ndarray, grid: np.ndarray, bandwidth: float = KDE_BANDWIDTH, chunk: int = 4096
) -> np.ndarray:
    """Linear-kernel density estimate (sklearn's 'linear' kernel): mean of max(0, 1 − |g − s|/h)/h."""
    dens = np.zeros(len(grid))
    for a in range(0, len(samples), chunk):
        s = samples[a : a + chunk]
        dens += np.clip(1.0 - np.abs(grid[:, None] - s[None, :]) / bandwidth, 0, None).sum(axis=1)
    return dens / (len(samples) * bandwidth)


def fit_mp(evals: np.ndarray, Q: float, M: int | None = None) -> dict:
    """WW's MP bulk fit: rescale the ESD to mean 1, fit σ of the MP law to a KDE, count spikes.

    evals: ESD (raw units); Q = N/M ≥ 1 of the matrix (slices for conv); M: eigenvalues per matrix, for
    the Tracy–Widom margin (default len(evals); pass the per-matrix M for ESDs pooled over matrices).
    Returns sigma_mp, bulk_max = λ₊ = (σ(1+1/√Q))² and bulk_min (rescaled units), bulk_max_raw (raw
    units), num_spikes = #{λ' > λ₊ + √TW} with TW = Q^-½ λ₊^⅔ M^-⅔, mp_softrank = λ₊/λ'_max, W_scale.
    """
    ev = np.sort(np.asarray(evals, dtype=np.float64).ravel())
    if len(ev) < 2 or not np.all(np.isfinite(ev)) or ev.sum() <= 0:
        raise SpectralError(f"fit_mp: need ≥ 2 finite eigenvalues with a positive sum, got {len(ev)}.")
    if not Q >= 1:
        raise SpectralError(f"fit_mp: Q = N/M must be ≥ 1 (got {Q}); use N = max(shape), M = min(shape).")
    M = int(M or len(ev))
    w_scale2 = len(ev) / ev.sum()
    lam = ev * w_scale2
    lam_max = lam[-1]
    edge = (1 + Q**-0.5) ** 2
    s0 = np.sqrt(lam_max / edge)
    grid = np.linspace(0, lam_max + 0.5, 1000)
    kde = linear_kde(lam, grid)
    good = kde > KDE_THRESH
    xg, yg = grid[good], kde[good]
    mode = xg[np.argmax(yg)]

    def loss(sig: np.ndarray) -> np.ndarray:
        sig = np.atleast_1d(sig)
        res = ((mp_density(xg, Q, sig**2) - yg) ** 2).sum(axis=-1)
        b, a = (sig * (1 + Q**-0.5)) ** 2, (sig * (1 - Q**-0.5)) ** 2
        bad = (b < mode) | (b > xg.max()) | (a > mode)
        return np.where(bad, 1000.0**2 * len(yg), res)

    sigmas = s0 * np.arange(0.05, 2.0, 0.01)
    best = sigmas[int(np.argmin(loss(sigmas)))]
    step = 0.01 * s0
    refined = optimize.minimize_scalar(
        lambda s: float(loss(s)[0]),
        bounds=(best - step, best + step),
        method="bounded",
        options={"xatol": 1e-6 * s0},
    )
    sigma = float(refined.x) if refined.fun <= loss(best)[0] else float(best)
    bulk_max = (sigma * (1 + Q**-0.5)) ** 2
    bulk_min = (sigma * (1 - Q**-0.5)) ** 2
    tw = Q**-0.5 * bulk_max ** (2 / 3) * M ** (-2 / 3)
    return {
        "sigma_mp": sigma,
        "bulk_max": float(bulk_max),
        "bulk_min": float(bulk_min),
        "bulk_max_raw": float(bulk_max / w_scale2),
        "num_spikes": int((lam > bulk_max + np.sqrt(tw)).sum()),
        "mp_softrank": float(bulk_max / lam_max),
        "W_scale": float(np.sqrt(w_scale2)),
    }


# ---------------------------------------------------------------- norms, randomisation, all metrics


def norm_metrics(evals: np.ndarray, alpha: float) -> dict:
    """WW norm metrics of an ESD: norm = Σλ = ‖W‖_F², spectral_norm = λ_max = ‖W‖₂², stable_rank = Σλ/λ_max,
    log10 of both, alpha_weighted = α·log10 λ_max, log_alpha_norm = log10 Σλ^α, entropy (matrix)."""
    ev = np.asarray(evals, dtype=np.float64)
    total, lmax = float(ev.sum()), float(ev.max())
    pos = ev[ev > 0]
    p = pos / pos.sum()
    rank = max(len(pos), 2)
    with np.errstate(over="ignore"):
        alpha_norm = float(np.sum(pos**alpha)) if np.isfinite(alpha) else float("nan")
    return {
        "norm": total,
        "log_norm": float(np.log10(total)),
        "spectral_norm": lmax,
        "log_spectral_norm": float(np.log10(lmax)),
        "stable_rank": total / lmax,
        "alpha_weighted": float(alpha * np.log10(lmax)),
        "log_alpha_norm": float(np.log10(alpha_norm)) if alpha_norm > 0 else float("nan"),
        "entropy": float(-(p * np.log(p)).sum() / np.log(rank)),
    }


def shuffled(mats: Sequence[torch.Tensor], seed: int = 0) -> list[torch.Tensor]:
    """Each matrix with its entries permuted uniformly at random (seeded), shape kept."""
    g = torch.Generator().manual_seed(int(seed))
    out = []
    for m in mats:
        flat = m.reshape(-1)
        perm = torch.randperm(flat.numel(), generator=g).to(flat.device)
        out.append(flat[perm].reshape(m.shape))
    return out


def jensen_shannon_distance(p: np.ndarray, q: np.ndarray) -> float:
    """WW's JSD between two non-negative vectors, each normalised to sum 1 (natural log; ≤ √ln2)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    return float(np.sqrt((stats.entropy(p, m) + stats.entropy(q, m)) / 2))


def esd_metrics(evals: np.ndarray, Q: float, M: int, mp_fit: bool = True) -> dict:
    """Every per-ESD metric (power law, norms, MP fit, rank loss) from one ESD, raw units.

    Use it directly for an ESD pooled over several matrices (e.g. the same layer over seeds).
    rank_loss: #singular values ≤ σ_max·N·eps (numpy's matrix_rank rule, as WW); meaningful only for
    ESDs from esd(..., accurate=True) — Gram eigenvalues resolve λ only to ~1e-16·λ_max. weak_rank_loss:
    #eigenvalues < 1e-6 (WW's tolerance), robust either way.
    """
    ev = np.sort(np.asarray(evals, dtype=np.float64).ravel())
    if len(ev) < 2 or ev[-1] <= 0:
        raise SpectralError(
            f"esd_metrics: need ≥ 2 eigenvalues and a non-zero matrix (got {len(ev)} "
            f"eigenvalues, max {ev[-1] if len(ev) else None})."
        )
    pl = fit_power_law(ev)
    row = {
        "num_evals": len(ev),
        "lambda_max": float(ev[-1]),
        "sv_max": float(np.sqrt(ev[-1])),
        "rank_loss": int((np.sqrt(ev) <= np.sqrt(ev[-1]) * Q * M * np.finfo(np.float64).eps).sum()),
        "weak_rank_loss": int((ev < RANK_TOL).sum()),
        **pl,
        **norm_metrics(ev, pl["alpha"]),
    }
    if mp_fit:
        row.update(fit_mp(ev, Q, M))
    return row


NamedMats = Iterable[tuple[str, str, Sequence]] | dict


def analyze_matrices(
    named_mats: NamedMats,
    *,
    conv2d_norm: bool = True,
    mp_fit: bool = True,
    randomize: bool = True,
    min_evals: int = DEFAULT_MIN_EVALS,
    max_evals: int = DEFAULT_MAX_EVALS,
    max_N: int = DEFAULT_MAX_N,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per layer with WW's column names (layer_id, name, N, M, Q, num_evals, lambda_max, alpha,
    xmin, D, num_spikes, mp_softrank, stable_rank, log_norm, log_spectral_norm, alpha_weighted,
    log_alpha_norm, rand_distance, …).

    named_mats: [(name, kind, [2-D matrices])] as from layer_weights (kind 'dense' | 'conv'), or a dict
    name -> matrix / list of matrices (kind 'dense'). Layers with M·rf < min_evals, M·rf > max_evals or
    N > max_N are skipped, as in WW. randomize adds rand_distance / ww_softrank / ww_maxdist from an
    element-shuffled copy (seeded by `seed`).
    """
    items = (
        [(k, "dense", v) for k, v in named_mats.items()] if isinstance(named_mats, dict) else list(named_mats)
    )
    rows = []
    for layer_id, item in enumerate(items):
        if len(item) != 3:
            raise SpectralError(
                f"analyze_matrices: item #{layer_id} must be (name, kind, matrices), got {item!r:.80}."
            )
        name, kind, mats = item
        if kind not in ("dense", "conv"):
            raise SpectralError(f"analyze_matrices: layer {name!r} has kind {kind!r}; use 'dense' or 'conv'.")
        mats = [mats] if isinstance(mats, (torch.Tensor, np.ndarray)) else list(mats)
        mats = [_as_matrix(m, f"layer {name!r}") for m in mats]
        shapes = {tuple(m.shape) for m in mats}
        if len(shapes) != 1:
            raise SpectralError(f"layer {name!r}: its matrices have different shapes {sorted(shapes)}.")
        (shape,) = shapes
        n_dim, m_dim = max(shape), min(shape)
        rf = len(mats)
        if m_dim * rf < min_evals or m_dim * rf > max_evals or n_dim > max_N:
            continue
        if kind == "conv" and conv2d_norm:
            mats = [m / np.sqrt(2.0) for m in mats]
        ev = esd(mats, where=f"layer {name!r}")
        row = {
            "layer_id": layer_id,
            "name": name,
            "kind": kind,
            "N": n_dim,
            "M": m_dim,
            "rf": rf,
            "Q": n_dim / m_dim,
            **esd_metrics(ev, n_dim / m_dim, m_dim, mp_fit=mp_fit and ev[-1] > 0),
        }
        if randomize:
            rand = esd(shuffled(mats, seed), where=f"layer {name!r} (shuffled)")
            row.update(
                {
                    "rand_distance": jensen_shannon_distance(ev, rand),
                    "max_rand_eval": float(rand[-1]),
                    "ww_softrank": float(rand[-1] / ev[-1]),
                    "ww_maxdist": float(ev[-1] - rand[-1]),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def analyze_model(model: nn.Module, **kwargs) -> pd.DataFrame:
    """analyze_matrices(layer_weights(model), **kwargs): one row per Linear/Embedding/Conv layer."""
    return analyze_matrices(layer_weights(model), **kwargs)
