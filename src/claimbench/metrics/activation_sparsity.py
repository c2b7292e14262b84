"""Activation sparsity of ReLU MLPs: nonzero % per layer and per-neuron firing frequency, via forward hooks.

For an activation output a of shape (..., d_ff) (every leading index is one token), a layer's nonzero
percentage is ``100 * mean_t(||a_t||_0 / d_ff)`` over all tokens seen, counting entries ``> 0`` in fp32.
A neuron's firing frequency is the fraction of tokens on which it is > 0 (0 everywhere = dead neuron).
A non-finite activation (NaN or inf: a diverged layer) is not a zero: it makes its neuron's firing frequency,
its layer's nonzero % and every summary that includes them NaN (undefined), never "sparse".
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from claimbench.errors import ClaimbenchError


class SparsityError(ClaimbenchError, ValueError):
    """A model or tensor handed to the sparsity measurement does not fit it."""


class TopKReLU(nn.Module):
    """ReLU that keeps only the k largest entries per token (last dim) and zeroes the rest."""

    def __init__(self, k: int):
        super().__init__()
        if k < 1:
            raise SparsityError(f"Top-k activation needs k >= 1, got k={k}; set topk_fraction so d_ff*fraction >= 1.")
        self.k = int(k)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = torch.relu(h)
        if self.k >= a.shape[-1]:
            return a
        thr = a.topk(self.k, dim=-1).values[..., -1:]
        return a * (a >= thr)

    def extra_repr(self) -> str:
        return f"k={self.k}"


ACTIVATION_TYPES = (nn.ReLU, TopKReLU)


def activation_modules(model: nn.Module) -> dict[str, nn.Module]:
    """name -> module for every ReLU/Top-k activation in `model`, in forward-definition order."""
    found = {name: m for name, m in model.named_modules() if isinstance(m, ACTIVATION_TYPES)}
    if not found:
        raise SparsityError(f"{type(model).__name__} has no nn.ReLU or TopKReLU module to measure; build it "
                            f"with act_layer=nn.ReLU (timm) or an nn.ReLU module in each MLP.")
    return found


@dataclass
class LayerCounts:
    """Running counts for one activation: positives (scalar), tokens seen, per-neuron positives (d_ff,),
    per-neuron non-finite entries (d_ff,)."""

    positives: float = 0.0
    tokens: int = 0
    neuron_positives: torch.Tensor | None = None
    neuron_nonfinite: torch.Tensor | None = None

    def add(self, a: torch.Tensor) -> None:
        """a: activation output (..., d_ff); every leading index is one token."""
        if a.dim() < 1 or a.shape[-1] == 0:
            raise SparsityError(f"activation of shape {tuple(a.shape)} has no feature dimension to count over.")
        flat = a.detach().float().reshape(-1, a.shape[-1])
        fired = flat > 0
        per_neuron = fired.sum(0, dtype=torch.float64).cpu()
        bad = (~torch.isfinite(flat)).sum(0, dtype=torch.float64).cpu()
        if self.neuron_positives is None:
            self.neuron_positives, self.neuron_nonfinite = per_neuron, bad
        elif self.neuron_positives.shape != per_neuron.shape:
            raise SparsityError(f"activation width changed from {self.neuron_positives.numel()} to "
                                f"{per_neuron.numel()} between batches.")
        else:
            self.neuron_positives += per_neuron
            self.neuron_nonfinite += bad
        self.positives += float(per_neuron.sum())
        self.tokens += fired.shape[0]

    @property
    def width(self) -> int:
        return 0 if self.neuron_positives is None else self.neuron_positives.numel()

    @property
    def nonfinite(self) -> int:
        """Entries seen that were NaN or ±inf."""
        return 0 if self.neuron_nonfinite is None else int(self.neuron_nonfinite.sum())

    def nonzero_percent(self) -> float:
        """100 × mean over tokens of the fraction of the d_ff entries that are > 0; NaN if any entry was not
        finite."""
        if self.tokens == 0:
            raise SparsityError("no tokens were counted: the hooked activation never ran (empty input?).")
        if self.nonfinite:
            return float("nan")
        return 100.0 * self.positives / (self.tokens * self.width)

    def firing_frequency(self) -> torch.Tensor:
        """(d_ff,) fraction of tokens on which each neuron is > 0; NaN for a neuron with a non-finite entry."""
        if self.tokens == 0:
            raise SparsityError("no tokens were counted: the hooked activation never ran (empty input?).")
        freq = (self.neuron_positives / self.tokens).float()
        return freq.masked_fill(self.neuron_nonfinite > 0, float("nan"))


@contextmanager
def count_activations(model: nn.Module):
    """Within the block, every forward pass adds to {layer name: LayerCounts} (yielded)."""
    counts = {name: LayerCounts() for name in activation_modules(model)}
    handles = [m.register_forward_hook(lambda _m, _i, out, c=counts[name]: c.add(out))
               for name, m in activation_modules(model).items()]
    try:
        yield counts
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def measure_sparsity(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> dict[str, LayerCounts]:
    """Counts of every activation over all of x (eval mode, fp32, no autocast); restores train mode."""
    if len(x) == 0:
        raise SparsityError("cannot measure sparsity on an empty evaluation set.")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with count_activations(model) as counts:
        for i in range(0, len(x), batch_size):
            model(x[i : i + batch_size].to(device))
    model.train(was_training)
    return counts


def summarize(counts: dict[str, LayerCounts]) -> dict:
    """{'layers': {name: nnz%}, 'mean': layer-mean nnz%, 'dead_fraction': share of neurons never > 0};
    each NaN when a non-finite activation entered it (the mean and dead fraction if any layer had one)."""
    layers = {name: c.nonzero_percent() for name, c in counts.items()}
    freqs = torch.cat([c.firing_frequency() for c in counts.values()])
    dead = float("nan") if freqs.isnan().any() else float((freqs == 0).float().mean())
    return {"layers": layers, "mean": sum(layers.values()) / len(layers), "dead_fraction": dead}


def log_spaced_steps(total: int, n: int, always: tuple[int, ...] = ()) -> list[int]:
    """Sorted distinct steps in [0, total]: 0, total and ~n log-spaced ones between (plus `always`)."""
    if total < 1:
        raise SparsityError(f"total steps must be >= 1, got {total}.")
    grid = torch.logspace(0, torch.log10(torch.tensor(float(total))), max(n, 2)).round().long().tolist()
    return sorted({0, total, *grid, *(s for s in always if 0 <= s <= total)})


def sparsity_record(model: nn.Module, probes: dict[str, torch.Tensor], batch_size: int = 512) -> dict:
    """{probe name: summarize(...)} for each evaluation set (e.g. {'train': x_tr, 'test': x_te})."""
    return {name: summarize(measure_sparsity(model, x, batch_size)) for name, x in probes.items()}
