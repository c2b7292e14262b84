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

Members may differ in what is not architecture: dropout probability (StackedDropout, per member), weight decay
(SGD/Adam: added per member to the gradient), stop_when. A member that stops, or diverges (with
diverged="return"), leaves the group at the epoch's end; the others go on restacked from their own states, as a
resume from their checkpoints would.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from claimbench import engine as engines
from claimbench.errors import CacheError, ClaimbenchError, TrainingDiverged
from claimbench.numerics import upcast
from claimbench.train import (
    Callback,
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
    """Dropout with member k's probability ps[k] and its mask drawn from generators[k] over the member's own
    shape, as F.dropout draws it on the CPU (`empty(shape).bernoulli_(1 - p)`, then scaled by 1/(1 - p)); a member
    with p = 0 draws nothing and keeps its activations, one with p = 1 draws nothing and zeroes them (as F.dropout)."""

    def __init__(self, ps: Sequence[float], generators: list[torch.Generator]):
        super().__init__()
        self.ps, self.generators = [float(p) for p in ps], generators

    def _mask(self, p: float, g: torch.Generator, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
        if p == 0 or p == 1:
            return torch.full(shape, 1.0 - p, dtype=dtype)
        return torch.empty(shape, dtype=dtype).bernoulli_(1 - p, generator=g).div_(1 - p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not any(self.ps):
            return x
        shape = (x.shape[0], x.shape[1] // len(self.generators), *x.shape[2:])
        masks = [self._mask(p, g, shape, x.dtype) for p, g in zip(self.ps, self.generators)]
        return x * torch.cat(masks, dim=1).to(x.device)


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
        return StackedDropout([m.p for m in members], generators)
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


def _member_optimizer_state(opt: torch.optim.Optimizer, k: int, K: int, member: nn.Module,
                            weight_decay: float | None = None) -> dict:
    """Member k's optimiser state_dict as a separate run's optimiser would hold it (weight_decay: the member's
    own, where the stacked optimiser applies per-member decays itself and holds 0)."""
    full = opt.state_dict()
    shapes = [p.shape for p in member.parameters() if p.requires_grad]
    state = {}
    for i, entry in full["state"].items():
        state[i] = {name: (v.clone() if v.dim() == 0 or name == "step" else _member_slice(v, k, K, shapes[i]).clone())
                    for name, v in entry.items()}
    groups = copy.deepcopy(full["param_groups"])
    for group in groups if weight_decay is not None else []:
        group["weight_decay"] = weight_decay
    return {"state": state, "param_groups": groups}


def _load_member_optimizer_states(opt: torch.optim.Optimizer, states: list[dict]) -> None:
    """Load K members' optimiser state_dicts (a separate run's format) into the stacked optimiser; the stacked
    optimiser keeps its own weight decay (0 where it applies per-member decays itself)."""
    shapes = [p.shape for g in opt.param_groups for p in g["params"]]
    own_decays = [g["weight_decay"] for g in opt.param_groups]
    merged = copy.deepcopy(states[0])
    for i, entry in states[0]["state"].items():
        for name, v in entry.items():
            if not (v.dim() == 0 or name == "step"):
                merged["state"][i][name] = torch.cat([s["state"][i][name].reshape(-1) for s in states]).reshape(
                    shapes[int(i)])
    opt.load_state_dict(merged)
    for group, decay in zip(opt.param_groups, own_decays):
        group["weight_decay"] = decay


def _per_member(p: torch.Tensor, values: Sequence[float]) -> torch.Tensor:
    """values[k] broadcast over member k's slice of the stacked tensor p (member-major along dim 0)."""
    t = torch.tensor(values, dtype=p.dtype, device=p.device)
    return t.repeat_interleave(p.shape[0] // len(values)).view(-1, *[1] * (p.dim() - 1))


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
    channels_last: bool | None = False,
    weight_decays: Sequence[float] | None = None,
    stop_when: Sequence[Callable[[TrainState], bool] | None] | None = None,
    diverged: Literal["raise", "return"] = "raise",
    callbacks: Sequence[Sequence[Callback]] | None = None,
) -> list[TrainState | TrainingDiverged]:
    """Train K members (same architecture, on one device, initialised) on their own data (equal sizes) with
    one recipe, each as `fit(member, trains[k], cfg_k, seed=seeds[k], desc=descs[k], checkpoint=checkpoints[k],
    stop_when=stop_when[k], callbacks=callbacks[k])` would, to round-off; engine off. Returns one TrainState per
    member (its model is the member, written back; `optimizer` the last stacked one). Raises NotStackable if the members
    cannot stack or the checkpoints of those not yet stopped are at different steps (train those alone with
    `fit`: it resumes their files).

    weight_decays: member k is the run of cfg_k = replace(cfg, weight_decay=weight_decays[k]) (default: all
    cfg). Different decays: SGD and Adam add member k's decay·parameter to its gradient after clipping, as
    torch does inside the step (round-off: torch fuses the multiply-add); AdamW members need one decay.
    stop_when: member k's fit stop_when (None: none), checked after each epoch on its TrainState (its model the
    member, written back). A member that stops leaves the group: its state is final and its checkpoint written
    (stopped, as fit's); the others go on, restacked from their own states (what a resume from their
    checkpoints would do).
    diverged: a member whose epoch loss is not finite "raise"s TrainingDiverged for the group (as fit), or,
    with "return", leaves the group (no checkpoint for that epoch, as fit) and its entry in the returned list
    is the TrainingDiverged; the others go on (parameters are disjoint, so its NaNs never reach them).
    callbacks: member k's fit callbacks (None: none). Called as fit calls them, on member k's TrainState (its
    model the member, written back at each epoch's end): on_start for a fresh run, on_epoch_end after the
    epoch's evaluation and before stop_when, on_end when the member's run is over; their state_dict goes in the
    member's checkpoint (fit's "callbacks") and is restored on resume. on_step_end would need the member's
    weights after every step: a callback that overrides it raises NotStackable (train that run alone).
    channels_last: the stacked model and its 4-D inputs in channels_last (dropout masks are drawn per member in
    logical order, so unlike `fit`'s knob this changes only round-off); None: the enclosing engine's choice
    (`engine.wants_channels_last`), as `fit` makes it."""
    K = len(members)
    decays = list(weight_decays) if weight_decays is not None else [cfg.weight_decay] * K
    stops = list(stop_when) if stop_when is not None else [None] * K
    cbs = [list(c) for c in callbacks] if callbacks is not None else [[] for _ in range(K)]
    if len(cbs) != K:
        raise NotStackable("stack: callbacks need one list per member.")
    if any(type(cb).on_step_end is not Callback.on_step_end for c in cbs for cb in c):
        raise NotStackable("stack: a callback with on_step_end needs the member's weights every step; train it alone.")
    if not (len(trains) == len(seeds) == len(descs) == len(decays) == len(stops) == K) or \
            len({len(t[0]) for t in trains}) != 1:
        raise NotStackable("stack: members need one dataset, seed, desc, weight decay and stop_when each, of equal "
                           "dataset sizes.")
    own_decays = len(set(decays)) > 1  # applied per member by this loop; the stacked optimiser holds 0
    if own_decays and cfg.optimizer == "adamw":
        raise NotStackable("stack: AdamW members need one weight decay (decoupled decay is not applied per member).")
    cfgs = [cfg if weight_decays is None else replace(cfg, weight_decay=w) for w in decays]
    opt_cfg = replace(cfg, weight_decay=0.0) if own_decays else cfgs[0]
    device = next(members[0].parameters()).device
    n = len(trains[0][0])
    spe, total = cfg.steps_per_epoch(n), cfg.total_steps(n)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    drop_gens = [torch.Generator().manual_seed(int(s) + 1) for s in seeds]
    run_ids = [config_hash(c, s, n, d) for c, s, d in zip(cfgs, seeds, descs)]
    states = [TrainState(model=m, optimizer=None, total_steps=total) for m in members]  # type: ignore[arg-type]
    results: list[TrainState | TrainingDiverged] = list(states)
    stopped = [False] * K
    ckpts = [Path(c) for c in checkpoints] if checkpoints is not None else None
    found = [c.exists() for c in ckpts] if ckpts else [False] * K
    if any(found) and not all(found):
        raise NotStackable("stack: only some members have checkpoints; train them alone (each resumes its own).")
    loaded = [_load_checkpoint(c) for c in ckpts] if all(found) and ckpts else None
    if loaded:
        for c, ck, rid in zip(ckpts, loaded, run_ids):
            if ck.get("run_id") != rid:
                raise CacheError(f"checkpoint {c} belongs to another run (config changed); delete it to retrain.")
        stopped = [bool(ck.get("stopped")) for ck in loaded]
        if len({ck["step"] for ck, s in zip(loaded, stopped) if not s}) > 1:
            raise NotStackable("stack: the members' checkpoints are at different steps; train them alone.")
        for k, ck in enumerate(loaded):
            members[k].load_state_dict(ck["model"])
            states[k].step, states[k].epoch, states[k].history = ck["step"], ck["epoch"], ck["history"]
            gens[k].set_state(ck["data_rng"])
            drop_gens[k].set_state(ck["torch_rng"])
            for cb, cs in zip(cbs[k], ck.get("callbacks") or []):
                cb.load_state_dict(cs)
    else:
        for k in range(K):
            for cb in cbs[k]:
                cb.on_start(states[k])
    active = [k for k in range(K) if not stopped[k]]
    if channels_last is None:
        channels_last = engines.wants_channels_last(engines.current(), device)
    channels_last = channels_last and trains[0][0].dim() == 4
    augments = cfg.augment != "none" and trains[0][0].dim() == 4

    def restack(opt_states: list[dict] | None) -> tuple[nn.Module, torch.optim.Optimizer, list, list]:
        """The active members as one model and optimiser (loaded with their own optimiser states, as a resume),
        its trainable parameters, and per parameter the members' decays (none if the optimiser applies them)."""
        model = stack_models([members[k] for k in active], [drop_gens[k] for k in active])
        if channels_last:
            model.to(memory_format=torch.channels_last)
        opt = make_optimizer(model, opt_cfg)
        if opt_states:
            _load_member_optimizer_states(opt, opt_states)
        params = [p for p in model.parameters() if p.requires_grad]
        model.train()
        return model, opt, params, [_per_member(p, [decays[k] for k in active]) for p in params] if own_decays else []

    def member_opt_state(opt: torch.optim.Optimizer, i: int, k: int) -> dict:
        return _member_optimizer_state(opt, i, len(active), members[k], decays[k] if own_decays else None)

    def save(opt: torch.optim.Optimizer, i: int, k: int) -> None:
        if ckpts is None:
            return
        st = states[k]
        ckpts[k].parent.mkdir(parents=True, exist_ok=True)
        _atomic_save({
            "run_id": run_ids[k], "model": members[k].state_dict(), "optimizer": member_opt_state(opt, i, k),
            "step": st.step, "epoch": st.epoch, "history": st.history, "data_rng": gens[k].get_state(),
            "torch_rng": drop_gens[k].get_state(), "cuda_rng": None,
            "callbacks": [cb.state_dict() for cb in cbs[k]], "stopped": stopped[k],
        }, ckpts[k])

    def run_eval(k: int) -> None:
        st = states[k]
        rec = {"epoch": st.epoch, "step": st.step, "train_loss": st.last_loss}
        for name, (ex, ey) in (eval_sets[k] if eval_sets else {}).items():
            for key, v in evaluate(members[k], ex, ey, loss_fn).items():
                rec[f"{name}_{key}"] = v
        st.history.append(rec)

    def finish(k: int) -> None:  # member k's run is over: fit's end (a last evaluation, eval mode)
        if eval_sets and (not states[k].history or states[k].history[-1]["step"] != states[k].step):
            run_eval(k)
        for cb in cbs[k]:
            cb.on_end(states[k])
        members[k].eval()

    for k in range(K):
        if stopped[k]:
            finish(k)
    opt = None
    if active:
        model, opt, params, member_decays = restack([loaded[k]["optimizer"] for k in active] if loaded else None)
    step, epoch = (states[active[0]].step, states[active[0]].epoch) if active else (total, 0)
    bar = tqdm(total=total, initial=step, desc=f"stack×{K}", leave=False, file=sys.stderr, disable=None,
               mininterval=2.0 if sys.stderr.isatty() else 30.0)
    while active and step < total:
        Ka = len(active)
        draws = [epoch_draws(n, cfg, min(spe, total - step), gens[k], device, augments) for k in active]
        loss_sums, loss_count = torch.zeros(Ka, device=device), 0
        for b in range(spe):
            lo, hi = b * cfg.batch_size, (b + 1) * cfg.batch_size
            xs, ys = [], []
            for k, (perm, aug) in zip(active, draws):
                x, y = trains[k]
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
            out = upcast(out).reshape(out.shape[0], Ka, -1)
            losses = torch.stack([loss_fn(out[:, i], ys[i]) for i in range(Ka)])
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            if cfg.grad_clip:
                clip_per_member(params, Ka, cfg.grad_clip)
            for p, decay in zip(params, member_decays):  # per-member weight decay, as torch adds it in the step
                if p.grad is not None:
                    p.grad.addcmul_(p.detach(), decay)
            opt.step()
            step += 1
            loss_sums += losses.detach()
            loss_count += 1
            bar.update(1)
            if step >= total:
                break
        epoch += 1
        means = (loss_sums / max(loss_count, 1)).tolist()
        write_back(model, [members[k] for k in active])
        leaving = []
        for i, k in enumerate(active):
            st = states[k]
            st.step, st.epoch, st.last_loss = step, epoch, float(means[i])
            if not math.isfinite(st.last_loss):
                results[k] = TrainingDiverged(f"{descs[k]}: training loss became {st.last_loss} at epoch {epoch}; "
                                              f"lower the learning rate in params.yaml.")
                if diverged == "raise":
                    bar.close()
                    raise results[k]
                leaving.append(k)
                continue
            if eval_sets and (step >= total or (eval_every and epoch % eval_every == 0)):
                run_eval(k)
            for cb in cbs[k]:
                cb.on_epoch_end(st)
            if stops[k] is not None and stops[k](st):
                stopped[k] = True
                leaving.append(k)
            if stopped[k] or step >= total or epoch % cfg.checkpoint_every == 0:
                save(opt, i, k)
        for k in leaving:
            if stopped[k]:
                finish(k)
        if leaving:  # the others go on as one smaller stack, each from its own state (as a resume would)
            staying = [(i, k) for i, k in enumerate(active) if k not in leaving]
            opt_states = [member_opt_state(opt, i, k) for i, k in staying] if step < total else []
            active = [k for _, k in staying]
            if active and step < total:
                model, opt, params, member_decays = restack(opt_states)
    bar.close()
    for k in active:
        finish(k)
    for st in states:
        st.optimizer = opt
    _report_engine(K, channels_last)
    return results


def _report_engine(K: int, channels_last: bool) -> None:
    """What a stacked fit used, to the enclosing `engine.use_engine` (fit's format): eager, no fused kernel."""
    asked = engines.current()
    entry = {"engine_version": engines.ENGINE_VERSION, "fused_optimizer": False, "channels_last": channels_last,
             "cuda_graphs": "eager: not in stacked runs" if asked.cuda_graphs else "off", "stacked": K}
    if asked.fused_optimizer:
        entry["fused_optimizer_note"] = "not in stacked runs"
    engines.report_fit(entry)
