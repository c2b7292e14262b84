"""The four losses compared by Zhou et al. (2022), as in jinxinzhou/nc_loss; each maps (logits (N, K),
labels (N,)) to the batch-mean loss (a scalar).

- CE: cross-entropy.
- LS: (1 - alpha) * NLL + alpha * mean_k(-log p_k), i.e. mass alpha/K on every class (true one included).
- FL: focal loss, -(1 - p_t)^gamma log p_t.
- MSE: mean over all N*K entries of (logit - scale * onehot)^2 (raw logits, target one-hot x 15).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from claimbench.errors import ParamsError
from claimbench.numerics import upcast

LOSS_NAMES = ("ce", "ls", "fl", "mse")
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(upcast(logits), y)


def label_smoothing(logits: torch.Tensor, y: torch.Tensor, alpha: float = 0.1) -> torch.Tensor:
    logp = F.log_softmax(upcast(logits), dim=-1)
    nll = -logp.gather(1, y[:, None]).squeeze(1)
    return ((1 - alpha) * nll - alpha * logp.mean(-1)).mean()


def focal(logits: torch.Tensor, y: torch.Tensor, gamma: float = 3.0) -> torch.Tensor:
    logp_t = F.log_softmax(upcast(logits), dim=-1).gather(1, y[:, None]).squeeze(1)
    return (-(1 - logp_t.exp()).pow(gamma) * logp_t).mean()


def scaled_mse(logits: torch.Tensor, y: torch.Tensor, scale: float = 15.0) -> torch.Tensor:
    logits = upcast(logits)
    target = scale * F.one_hot(y, logits.shape[-1]).to(logits.dtype)
    return F.mse_loss(logits, target)


def make_loss(name: str, ls_alpha: float = 0.1, focal_gamma: float = 3.0, mse_scale: float = 15.0) -> LossFn:
    """The loss called `name` (one of LOSS_NAMES) with its hyper-parameter bound."""
    if name == "ce":
        return cross_entropy
    if name == "ls":
        if not 0 <= ls_alpha < 1:
            raise ParamsError(f"label-smoothing alpha {ls_alpha} must be in [0, 1).")
        return lambda logits, y: label_smoothing(logits, y, ls_alpha)
    if name == "fl":
        if focal_gamma < 0:
            raise ParamsError(f"focal gamma {focal_gamma} must be >= 0.")
        return lambda logits, y: focal(logits, y, focal_gamma)
    if name == "mse":
        if mse_scale <= 0:
            raise ParamsError(f"MSE target scale {mse_scale} must be > 0.")
        return lambda logits, y: scaled_mse(logits, y, mse_scale)
    raise ParamsError(f"loss {name!r} unknown; use one of {', '.join(LOSS_NAMES)}.")
