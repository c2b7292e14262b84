"""Per-example data-pruning scores (Paul, Ganguli & Dziugaite 2021, "Deep Learning on a Data Diet").

All scores use the model in eval mode (BatchNorm running statistics) on un-augmented inputs, as in
data_diet/scores.py, and return a float32 CPU tensor of shape (N,), one value per example:

- EL2N(x, y) = ‖softmax(f(x)) − onehot(y)‖₂ (L2, not squared; in [0, √2]);
- GraNd(x, y) = ‖∇_θ CE(f(x), y)‖₂ over all trainable parameters, per example via torch.func;
- input norm = ‖x‖₂ over all pixels (Kirsch's "input variance").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from claimbench.errors import ClaimbenchError
from claimbench.numerics import upcast
from claimbench.train import predict


class ScoreInputError(ClaimbenchError, ValueError):
    """Scores asked for with malformed inputs (shape or label mismatch, bad fraction)."""


def _check_xy(x: torch.Tensor, y: torch.Tensor) -> None:
    if y.dim() != 1 or len(x) != len(y):
        raise ScoreInputError(f"example scores need x (N, ...) and integer labels y (N,); got x {tuple(x.shape)} "
                              f"and y {tuple(y.shape)}.")


def el2n_from_logits(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """EL2N from logits (N, K) and labels (N,): ‖softmax − onehot‖₂, float32 (N,)."""
    if logits.dim() != 2 or y.dim() != 1 or len(logits) != len(y):
        raise ScoreInputError(f"el2n needs logits (N, K) and labels (N,); got {tuple(logits.shape)} and "
                              f"{tuple(y.shape)}.")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= logits.shape[1]):
        raise ScoreInputError(f"el2n labels must lie in [0, {logits.shape[1]}); got range "
                              f"[{int(y.min())}, {int(y.max())}].")
    probs = upcast(logits).softmax(-1)
    onehot = F.one_hot(y.to(logits.device), logits.shape[1]).to(probs.dtype)
    return (probs - onehot).norm(dim=1).cpu()


def el2n_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """EL2N of every example (N,), model in eval mode (its train/eval mode is restored)."""
    _check_xy(x, y)
    return el2n_from_logits(predict(model, x, batch_size), y)


def grand_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """GraNd: per-example ‖∇_θ CE‖₂ over all trainable parameters, eval mode, float32 (N,).

    vmap(grad(...)) over chunks of `batch_size` examples; memory ≈ batch_size × #parameters floats.
    """
    _check_xy(x, y)
    was_training = model.training
    model.eval()
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss_one(p, b, xi, yi):
        out = functional_call(model, (p, b), (xi.unsqueeze(0),))
        return F.cross_entropy(upcast(out), yi.unsqueeze(0))

    per_example_grad = vmap(grad(loss_one), in_dims=(None, None, 0, 0))
    device = next(model.parameters()).device
    out = []
    try:
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
            grads = per_example_grad(params, buffers, xb, yb)
            sq = sum(upcast(g).pow(2).flatten(1).sum(1) for g in grads.values())
            out.append(sq.sqrt().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def input_norms(x: torch.Tensor) -> torch.Tensor:
    """‖x_i‖₂ over all of an example's entries, float32 (N,)."""
    return upcast(x).flatten(1).norm(dim=1).cpu()


def keep_hardest(scores: torch.Tensor, keep_fraction: float) -> torch.Tensor:
    """Sorted indices of the round(keep_fraction·N) highest-scoring examples (data_diet keep_max_scores)."""
    if scores.dim() != 1:
        raise ScoreInputError(f"keep_hardest needs a score vector (N,); got shape {tuple(scores.shape)}.")
    if not 0 < keep_fraction <= 1:
        raise ScoreInputError(f"keep fraction {keep_fraction} must be in (0, 1].")
    if torch.isnan(scores).any():
        raise ScoreInputError("keep_hardest got NaN scores; the scoring run diverged — rerun it.")
    k = round(keep_fraction * len(scores))
    order = torch.argsort(scores, descending=True, stable=True)
    return torch.sort(order[:k]).values
