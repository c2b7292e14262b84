"""Stacked runs: K runs of one convolutional architecture and recipe trained as one model, each member the
same run as if trained alone by `train.fit` (to round-off), with its own seed, data order, augmentation draws,
dropout masks, BatchNorm statistics, grad-norm clipping, history and checkpoint.

Layout ("channel-stacked"): member inputs are concatenated on dim 1, so activations are (N, K·C, H, W) and
features (N, K·F), member-major. Conv2d(C→D, groups g) becomes Conv2d(K·C→K·D, groups K·g); Linear a batched
matmul over (N, K, F); BatchNorm covers K·C channels (disjoint per member); Dropout draws member k's mask
from member k's generator exactly as F.dropout draws from the global RNG, which `fit` seeds with seed + 1.
ReLU, pooling, residual adds and flatten (N, K·C·H·W) need no change. Only models built from `STACKABLE`
leaves stack (`stackable`); others (LayerNorm, attention, LocalResponseNorm) run alone.

Each member's checkpoint is `fit`'s format in its own file (its run folder), so a member resumes stacked or
alone; a group whose members' checkpoints are at different steps is not resumed stacked (`fit_stacked`
raises `NotStackable`; the caller trains those members alone with `fit`, which resumes each from its own file).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from claimbench.errors import CacheError, ClaimbenchError, TrainingDiverged
from claimbench.numerics import upcast
from claimbench.train import (
    LossFn,
    TrainConfig,
    TrainState,
    _atomic_save,
    _load_checkpoint,
    apply_augment,
    autocast,
    config_hash,
    cross_entropy,
    epoch_draws,
    evaluate,
    lr_at,
    make_optimizer,
)

PARAM_FREE = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Identity)
STACKABLE = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout, *PARAM_FREE)


class NotStackable(ClaimbenchError):
    """These runs cannot train as one stacked model (architecture, recipe or checkpoints differ)."""


def stackable(model: nn.Module) -> bool:
    """True if every leaf module of `model` is one `stack_models` knows (STACKABLE)."""
    return all(isinstance(m, STACKABLE) for m in model.modules() if not list(m.children()))


class StackedLinear(nn.Module):
    """K Linear(in → out) on (N, K·in) → (N, K·out); weight (K, out, in), bias (K, out)."""

    def __init__(self, members: Sequence[nn.Linear]):
        super().__init__()
        self.k = len(members)
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in members]).clone())
        has_bias = members[0].bias is not None
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in members]).clone()) if has_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        out = torch.einsum("nki,koi->nko", x.reshape(n, self.k, -1), self.weight)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(n, -1)


class StackedDropout(nn.Module):
    """Dropout(p) with member k's mask drawn from generators[k] over the member's own shape, as F.dropout
    draws it (`empty(shape).bernoulli_(1 - p)`, then scaled by 1/(1 - p))."""

    def __init__(self, p: float, generators: list[torch.Generator]):
        super().__init__()
        self.p, self.generators = p, generators

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        k = len(self.generators)
        shape = (x.shape[0], x.shape[1] // k, *x.shape[2:])
        masks = [torch.empty(shape, dtype=x.dtype).bernoulli_(1 - self.p, generator=g) for g in self.generators]
        return x * torch.cat(masks, dim=1).to(x.device).div_(1 - self.p)


def _stack_leaf(members: list[nn.Module], generators: list[torch.Generator]) -> nn.Module:
    first, k = members[0], len(members)
    if isinstance(first, nn.Conv2d):
        conv = nn.Conv2d(k * first.in_channels, k * first.out_channels, first.kernel_size, first.stride,
                         first.padding, first.dilation, k * first.groups, first.bias is not None, first.padding_mode,
                         device=first.weight.device, dtype=first.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(torch.cat([m.weight for m in members]))
            if first.bias is not None:
                conv.bias.copy_(torch.cat([m.bias for m in members]))
        return conv
    if isinstance(first, nn.Linear):
        return StackedLinear(members)
    if isinstance(first, (nn.BatchNorm1d, nn.BatchNorm2d)):
        like = first.running_mean if first.running_mean is not None else first.weight
        bn = type(first)(k * first.num_features, first.eps, first.momentum, first.affine, first.track_running_stats,
                         device=like.device, dtype=like.dtype)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                if getattr(first, name) is not None:
                    getattr(bn, name).copy_(torch.cat([getattr(m, name) for m in members]))
            if first.num_batches_tracked is not None:
                bn.num_batches_tracked.copy_(first.num_batches_tracked)
        return bn
    if isinstance(first, nn.Dropout):
        return StackedDropout(first.p, generators)
    return copy.deepcopy(first)  # parameter-free


def stack_models(members: Sequence[nn.Module], generators: list[torch.Generator]) -> nn.Module:
    """One model computing the K members side by side in the channel-stacked layout (module docstring);
    generators[k] draws member k's dropout masks. The members' parameter order is kept (parameter i of the
    stacked model holds parameter i of every member)."""
    if not all(stackable(m) for m in members):
        raise NotStackable("stack: a member has a layer that does not stack (see claimbench.stack.STACKABLE).")
    shapes = {tuple((n, tuple(p.shape)) for n, p in m.state_dict().items()) for m in members}
    if len(shapes) != 1:
        raise NotStackable("stack: the members' architectures differ.")
    stacked = copy.deepcopy(members[0])
    names = [n for n, m in stacked.named_modules() if not list(m.children())]
    for name in names:
        leaves = [m.get_submodule(name) for m in members]
        new = _stack_leaf(leaves, generators)
        parent, _, attr = name.rpartition(".")
        setattr(stacked.get_submodule(parent) if parent else stacked, attr, new)
    return stacked


def _member_slice(t: torch.Tensor, k: int, K: int, shape: torch.Size) -> torch.Tensor:
    """Member k's part of a stacked tensor (member-major along dim 0) in the member's shape."""
    return t.reshape(K, -1)[k].reshape(shape)


def write_back(stacked: nn.Module, members: Sequence[nn.Module]) -> None:
    """Copy the stacked model's parameters and buffers into each member module (for evaluation, saving)."""
    K = len(members)
    stacked_state = stacked.state_dict()
    for k, m in enumerate(members):
        with torch.no_grad():
            for name, t in m.state_dict().items():
                s = stacked_state[name]
                t.copy_(s if name.endswith("num_batches_tracked") else _member_slice(s, k, K, t.shape))


def _member_optimizer_state(opt: torch.optim.Optimizer, k: int, K: int, member: nn.Module) -> dict:
    """Member k's optimiser state_dict as a separate run's optimiser would hold it."""
    full = opt.state_dict()
    shapes = [p.shape for p in member.parameters() if p.requires_grad]
    state = {}
    for i, entry in full["state"].items():
        state[i] = {name: (v.clone() if v.dim() == 0 or name == "step" else _member_slice(v, k, K, shapes[i]).clone())
                    for name, v in entry.items()}
    return {"state": state, "param_groups": copy.deepcopy(full["param_groups"])}


def _load_member_optimizer_states(opt: torch.optim.Optimizer, states: list[dict]) -> None:
    """Load K members' optimiser state_dicts (a separate run's format) into the stacked optimiser."""
    shapes = [p.shape for g in opt.param_groups for p in g["params"]]
    merged = copy.deepcopy(states[0])
    for i, entry in states[0]["state"].items():
        for name, v in entry.items():
            if not (v.dim() == 0 or name == "step"):
                merged["state"][i][name] = torch.cat([s["state"][i][name].reshape(-1) for s in states]).reshape(
                    shapes[int(i)])
    opt.load_state_dict(merged)


def clip_per_member(params: list[nn.Parameter], K: int, max_norm: float) -> None:
    """`nn.utils.clip_grad_norm_` for each member separately: member k's total grad norm over its slices."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    norms = torch.stack([g.reshape(K, -1).norm(2, dim=1) for g in grads])  # (P, K)
    total = norms.norm(2, dim=0)  # (K,)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:  # in place, in the grad's own shape (a reshape of a channels_last grad would be a copy)
        g.mul_(coef.to(g.dtype).repeat_interleave(g.shape[0] // K).view(-1, *[1] * (g.dim() - 1)))


def fit_stacked(
    members: Sequence[nn.Module],
    trains: Sequence[tuple[torch.Tensor, torch.Tensor]],
    cfg: TrainConfig,
    *,
    seeds: Sequence[int],
    descs: Sequence[str],
    loss_fn: LossFn = cross_entropy,
    eval_sets: Sequence[dict[str, tuple[torch.Tensor, torch.Tensor]]] | None = None,
    eval_every: int = 0,
    checkpoints: Sequence[Path] | None = None,
    channels_last: bool = False,
) -> list[TrainState]:
    """Train K members (same architecture, on one device, initialised) on their own data (equal sizes) with
    one recipe, each as `fit(member, trains[k], cfg, seed=seeds[k], desc=descs[k], checkpoint=checkpoints[k])`
    would, to round-off; no callbacks, no stop_when, engine off. Returns one TrainState per member (its model is
    the member, written back; `optimizer` is the stacked one). Raises NotStackable if the members cannot stack
    or their checkpoints are at different steps (train those alone with `fit`: it resumes their files).
    channels_last: the stacked model and its 4-D inputs in channels_last (dropout masks are drawn per member in
    logical order, so unlike `fit`'s knob this changes only round-off)."""
    K = len(members)
    if not (len(trains) == len(seeds) == len(descs) == K) or len({len(t[0]) for t in trains}) != 1:
        raise NotStackable("stack: members need one dataset, seed and desc each, of equal dataset sizes.")
    device = next(members[0].parameters()).device
    n = len(trains[0][0])
    spe, total = cfg.steps_per_epoch(n), cfg.total_steps(n)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    drop_gens = [torch.Generator().manual_seed(int(s) + 1) for s in seeds]
    run_ids = [config_hash(cfg, s, n, d) for s, d in zip(seeds, descs)]
    states = [TrainState(model=m, optimizer=None, total_steps=total) for m in members]  # type: ignore[arg-type]
    ckpts = [Path(c) for c in checkpoints] if checkpoints is not None else None
    found = [c.exists() for c in ckpts] if ckpts else [False] * K
    if any(found) and not all(found):
        raise NotStackable("stack: only some members have checkpoints; train them alone (each resumes its own).")
    loaded = [_load_checkpoint(c) for c in ckpts] if all(found) and ckpts else None
    if loaded:
        for c, ck, rid in zip(ckpts, loaded, run_ids):
            if ck.get("run_id") != rid:
                raise CacheError(f"checkpoint {c} belongs to another run (config changed); delete it to retrain.")
        if len({ck["step"] for ck in loaded}) != 1 or any(ck.get("stopped") for ck in loaded):
            raise NotStackable("stack: the members' checkpoints are at different steps; train them alone.")
        for m, ck in zip(members, loaded):
            m.load_state_dict(ck["model"])
    model = stack_models(members, drop_gens)
    channels_last = channels_last and trains[0][0].dim() == 4
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, cfg)
    if loaded:
        _load_member_optimizer_states(opt, [ck["optimizer"] for ck in loaded])
        for k, ck in enumerate(loaded):
            states[k].step, states[k].epoch, states[k].history = ck["step"], ck["epoch"], ck["history"]
            gens[k].set_state(ck["data_rng"])
            drop_gens[k].set_state(ck["torch_rng"])
    step, epoch = states[0].step, states[0].epoch
    params = [p for p in model.parameters() if p.requires_grad]
    augments = cfg.augment != "none" and trains[0][0].dim() == 4

    def save() -> None:
        if ckpts is None:
            return
        write_back(model, members)
        for k, (c, m) in enumerate(zip(ckpts, members)):
            c.parent.mkdir(parents=True, exist_ok=True)
            _atomic_save({
                "run_id": run_ids[k], "model": m.state_dict(), "optimizer": _member_optimizer_state(opt, k, K, m),
                "step": step, "epoch": epoch, "history": states[k].history, "data_rng": gens[k].get_state(),
                "torch_rng": drop_gens[k].get_state(), "cuda_rng": None, "callbacks": [], "stopped": False,
            }, c)

    def run_eval(k: int) -> None:
        rec = {"epoch": epoch, "step": step, "train_loss": states[k].last_loss}
        for name, (ex, ey) in (eval_sets[k] if eval_sets else {}).items():
            for key, v in evaluate(members[k], ex, ey, loss_fn).items():
                rec[f"{name}_{key}"] = v
        states[k].history.append(rec)

    bar = tqdm(total=total, initial=step, desc=f"stack×{K}", leave=False, file=sys.stderr, disable=None,
               mininterval=2.0 if sys.stderr.isatty() else 30.0)
    model.train()
    done = step >= total
    while not done:
        draws = [epoch_draws(n, cfg, min(spe, total - step), g, device, augments) for g in gens]
        loss_sums, loss_count = torch.zeros(K, device=device), 0
        for b in range(spe):
            lo, hi = b * cfg.batch_size, (b + 1) * cfg.batch_size
            xs, ys = [], []
            for (x, y), (perm, aug) in zip(trains, draws):
                idx = perm[lo:hi]
                xb = x[idx]
                if augments:
                    xb = apply_augment(xb, {key: v[lo:lo + len(idx)] for key, v in aug.items()})
                xs.append(xb)
                ys.append(y[idx])
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, step, total, spe)
            xb = torch.cat(xs, dim=1)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast(device):
                out = model(xb)
            out = upcast(out).reshape(out.shape[0], K, -1)
            losses = torch.stack([loss_fn(out[:, k], ys[k]) for k in range(K)])
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            if cfg.grad_clip:
                clip_per_member(params, K, cfg.grad_clip)
            opt.step()
            step += 1
            loss_sums += losses.detach()
            loss_count += 1
            bar.update(1)
            if step >= total:
                done = True
                break
        epoch += 1
        means = (loss_sums / max(loss_count, 1)).tolist()
        write_back(model, members)
        for k, st in enumerate(states):
            st.step, st.epoch, st.last_loss = step, epoch, float(means[k])
            if not torch.isfinite(torch.tensor(st.last_loss)):
                bar.close()
                raise TrainingDiverged(f"{descs[k]}: training loss became {st.last_loss} at epoch {epoch}; "
                                       f"lower the learning rate in params.yaml.")
            if eval_sets and (done or (eval_every and epoch % eval_every == 0)):
                run_eval(k)
        if done or epoch % cfg.checkpoint_every == 0:
            save()
    bar.close()
    write_back(model, members)
    for k, st in enumerate(states):
        st.optimizer = opt
        if eval_sets and (not st.history or st.history[-1]["step"] != st.step):
            run_eval(k)
        members[k].eval()
    return states
