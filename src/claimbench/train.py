"""One training loop for every claim: seeded, resumable, GPU-friendly, with callbacks.

Data are tensors already on the device (x: (N, ...), y: (N, ...)); minibatches are index slices of
a per-epoch permutation drawn from a seeded generator, and the global RNG (dropout) is reseeded from
the run's seed, so a run is a pure function of (initial weights, seed, config) on CPU — the same seed
gives bit-identical weights. On CUDA the forward pass runs under bf16
autocast and 4-D inputs/models use channels_last.

No host sync inside a step: each epoch's permutation and augmentation draws are taken from the generator
in the same order as one batch at a time (so CPU runs are bit-identical to the per-step loop before
issue 23), moved to the device once per epoch and sliced there; loss sums stay on the device and are read
at the epoch's end. How the loop uses the hardware (fused optimiser, channels_last, CUDA graphs) is the
engine's (claimbench.engine; params.yaml `engine:`, off by default).

Checkpoints (model, optimiser, step, RNG states, callback states, history) are written atomically
every ``checkpoint_every`` epochs; ``fit`` resumes from an existing checkpoint whose config matches.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from claimbench import engine as engines
from claimbench.atomic import atomic_file
from claimbench.errors import CacheError, TrainingDiverged
from claimbench.numerics import upcast
from claimbench.params import EngineSettings

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation recipe. lr schedules: 'constant'; 'exp' (× gamma after every epoch); 'step' (× gamma
    at each fraction of training in milestones, e.g. (3/7, 5/7)); 'cosine' (to 0 over training).
    steps: if set, train exactly this many optimiser steps (epochs then only sets the data order)."""

    epochs: int
    batch_size: int
    lr: float
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: Literal["constant", "exp", "step", "cosine"] = "constant"
    gamma: float = 0.1
    milestones: tuple[float, ...] = ()
    warmup_steps: int = 0
    grad_clip: float | None = None
    steps: int | None = None
    augment: Literal["none", "crop", "crop_flip"] = "none"
    drop_last: bool = False
    checkpoint_every: int = 1

    def steps_per_epoch(self, n: int) -> int:
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def total_steps(self, n: int) -> int:
        return self.steps if self.steps is not None else self.epochs * self.steps_per_epoch(n)


@dataclass
class TrainState:
    """What callbacks see. step counts optimiser steps taken; epoch counts finished epochs."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    step: int = 0
    epoch: int = 0
    total_steps: int = 0
    last_loss: float = float("nan")
    history: list[dict] = field(default_factory=list)
    engine: dict = field(default_factory=dict)  # what the loop used (claimbench.engine.FitEngine.report)


class Callback:
    """Hook points. Subclasses keep their records in `state_dict()` so they survive a resume."""

    def on_start(self, state: TrainState) -> None: ...

    def on_step_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...

    def on_end(self, state: TrainState) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, d: dict) -> None: ...


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from claimbench.errors import ParamsError

        raise ParamsError("params: data.device = 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'.")
    return torch.device(name)


@contextlib.contextmanager
def cpu_threads(n: int, device: torch.device):
    """Run with n torch intra-op threads on CPU (restored afterwards); no-op on CUDA. Tiny models and
    small eigensolves run faster on 1 thread than with the synchronisation of several."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seed_everything(seed: int) -> None:
    """Seed torch's global RNGs (model init, dropout). Data order uses fit()'s own generator."""
    torch.manual_seed(seed)


def autocast(device: torch.device):
    """bf16 autocast on CUDA, no-op on CPU (fp32 there keeps runs deterministic)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def make_optimizer(model: nn.Module, cfg: TrainConfig, fused: bool = False) -> torch.optim.Optimizer:
    """The recipe's optimiser; fused: torch's fused kernel (the caller checked that it exists)."""
    params = [p for p in model.parameters() if p.requires_grad]
    kw = {"fused": True} if fused else {}
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay, **kw)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)


def lr_at(cfg: TrainConfig, step: int, total: int, steps_per_epoch: int) -> float:
    """Learning rate for optimiser step `step` (0-based) of `total`."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "exp":
        return cfg.lr * cfg.gamma ** (step // max(steps_per_epoch, 1))
    if cfg.schedule == "step":
        frac = step / max(total, 1)
        return cfg.lr * cfg.gamma ** sum(frac >= m for m in cfg.milestones)
    frac = (step - cfg.warmup_steps) / max(total - cfg.warmup_steps, 1)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))


def draw_augment(n: int, kind: str, g: torch.Generator, pad: int = 2) -> dict[str, torch.Tensor]:
    """The random draws of `augment_batch` for n examples, on the CPU: {'dy', 'dx' (n,) int64 crop offsets in
    [0, 2·pad], 'flip' (n,) bool if kind is 'crop_flip'}; drawn from g in this order: dy, dx, flip."""
    draws = {"dy": torch.randint(0, 2 * pad + 1, (n,), generator=g),
             "dx": torch.randint(0, 2 * pad + 1, (n,), generator=g)}
    if kind == "crop_flip":
        draws["flip"] = torch.rand(n, generator=g) < 0.5
    return draws


def apply_augment(x: torch.Tensor, draws: dict[str, torch.Tensor], pad: int = 2) -> torch.Tensor:
    """x (n, C, H, W) zero-padded by `pad`, cropped back at the drawn offsets, flipped where drawn; the draws
    are on x's device."""
    n, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    rows = (draws["dy"][:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (draws["dx"][:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch_index = torch.arange(n, device=x.device)[:, None, None, None]
    channel_index = torch.arange(c, device=x.device)[None, :, None, None]
    out = xp[batch_index, channel_index, rows, cols]
    if "flip" in draws:
        out = torch.where(draws["flip"][:, None, None, None], out.flip(-1), out)
    return out


def augment_batch(x: torch.Tensor, kind: str, g: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random crop (zero pad `pad`, then crop back) and optional horizontal flip, per example."""
    if kind == "none" or x.dim() != 4:
        return x
    draws = {k: v.to(x.device) for k, v in draw_augment(len(x), kind, g, pad).items()}
    return apply_augment(x, draws, pad)


def epoch_draws(n: int, cfg: TrainConfig, batches: int, g: torch.Generator, device: torch.device,
                augments: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One epoch's data order and augmentation draws for its first `batches` batches, moved to `device` in
    one copy each: (perm (n,) int64, draws with one entry per example of those batches, batch after batch).
    g is consumed exactly as a loop drawing the permutation, then each batch's dy, dx, flip, would."""
    perm = torch.randperm(n, generator=g)
    draws: dict[str, torch.Tensor] = {}
    if augments and batches:
        per_batch = [draw_augment(len(perm[b * cfg.batch_size: (b + 1) * cfg.batch_size]), cfg.augment, g)
                     for b in range(batches)]
        draws = {k: torch.cat([d[k] for d in per_batch]).to(device) for k in per_batch[0]}
    return perm.to(device), draws


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CE over the last dim; works for (N, K) and sequence (N, T, K) logits."""
    return F.cross_entropy(upcast(logits.reshape(-1, logits.shape[-1])), y.reshape(-1))


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits of `model` on x in eval mode, float32, on x's device. Restores the train/eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outs = []
    for i in range(0, len(x), batch_size):
        with autocast(device):
            outs.append(upcast(model(x[i : i + batch_size].to(device))))
    model.train(was_training)
    return torch.cat(outs)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn = cross_entropy,
             batch_size: int = 1024) -> dict[str, float]:
    """{'loss', 'acc'}: mean loss and argmax accuracy (per token for sequences), eval mode."""
    logits = predict(model, x, batch_size)
    y = y.to(logits.device)
    acc = (logits.argmax(-1) == y).float().mean().item()
    return {"loss": float(loss_fn(logits, y)), "acc": acc}


def config_hash(*parts: object) -> str:
    """12-hex content hash of JSON-able parts (configs, seeds): names run dirs and checkpoints."""
    def norm(o):
        if dataclasses.is_dataclass(o):
            return dataclasses.asdict(o)
        return o

    blob = json.dumps([norm(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _atomic_save(obj: object, path: Path) -> None:
    """torch.save, atomically (claimbench.atomic): a full disk or Ctrl-C leaves the old checkpoint and no
    temporary file; a full disk or read-only folder is one StorageError line."""
    with atomic_file(path, "wb") as f:
        torch.save(obj, f)


def load_tensors(path: Path, what: str = "file") -> Any:
    """torch.load restricted to tensors and plain containers (weights_only=True): a file from a shared
    cache or remote can never run code. Any failure (corrupt, truncated, foreign or malicious pickle) is
    one CacheError line naming the file and the fix."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        text = str(e).strip()
        if "Weights only load failed" in text:
            reason = "it holds Python objects besides tensors and plain containers; refused, loading it could run code"
        else:
            reason = f"{type(e).__name__}: {text.splitlines()[0][:160] if text else 'unreadable'}"
        raise CacheError(f"{what} {path} is corrupt or not a plain tensor file ({reason}); delete it to recompute "
                         f"it.") from None


def _load_checkpoint(path: Path) -> dict:
    return load_tensors(path, "checkpoint")


def fit(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    cfg: TrainConfig,
    *,
    seed: int,
    loss_fn: LossFn = cross_entropy,
    eval_sets: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    eval_every: int = 0,
    callbacks: list[Callback] = (),
    checkpoint: Path | None = None,
    desc: str = "train",
    stop_when: Callable[[TrainState], bool] | None = None,
    engine: EngineSettings | None = None,
) -> TrainState:
    """Train `model` (already on its device, parameters initialised) on `train` = (x, y).

    eval_every: evaluate on eval_sets every this many epochs (and at the end); 0 = only at the end.
    checkpoint: file to save/resume; a checkpoint of a different run (config hash) is an error.
    stop_when: checked after each epoch (e.g. early stopping); the run ends when it returns True, and a
    resume from that checkpoint stays stopped.
    engine: how the loop uses the hardware (claimbench.engine); None = the enclosing `use_engine`'s, else off.
    Returns the final TrainState; state.history has one dict per evaluation, state.engine what was used.
    """
    x, y = train
    device = next(model.parameters()).device
    n = len(x)
    spe = cfg.steps_per_epoch(n)
    total = cfg.total_steps(n)
    g = torch.Generator().manual_seed(int(seed))
    eng = engines.FitEngine(engine or engines.current(), model, device, x, cfg.optimizer)
    eng.prepare_model()
    opt = make_optimizer(model, cfg, fused=eng.fused)
    state = TrainState(model=model, optimizer=opt, total_steps=total)
    run_id = config_hash(cfg, seed, n, desc)
    eval_sets = eval_sets or {}

    if checkpoint is not None and Path(checkpoint).exists():
        ck = _load_checkpoint(Path(checkpoint))
        if ck.get("run_id") != run_id:
            raise CacheError(f"checkpoint {checkpoint} belongs to another run (config changed); delete it to "
                             f"retrain, or restore the config it was made with.")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        state.step, state.epoch, state.history = ck["step"], ck["epoch"], ck["history"]
        stopped = ck.get("stopped", False)
        g.set_state(ck["data_rng"])
        torch.set_rng_state(ck["torch_rng"])
        if device.type == "cuda" and ck.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ck["cuda_rng"])
        for cb, cs in zip(callbacks, ck["callbacks"]):
            cb.load_state_dict(cs)
    else:
        stopped = False
        torch.manual_seed(int(seed) + 1)  # dropout etc.: the run must not depend on what ran before it
        for cb in callbacks:
            cb.on_start(state)

    def save() -> None:
        if checkpoint is None:
            return
        Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
        _atomic_save({
            "run_id": run_id, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "step": state.step, "epoch": state.epoch, "history": state.history,
            "data_rng": g.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
            "callbacks": [cb.state_dict() for cb in callbacks], "stopped": stopped,
        }, Path(checkpoint))

    def run_eval() -> None:
        rec = {"epoch": state.epoch, "step": state.step, "train_loss": state.last_loss}
        for name, (ex, ey) in eval_sets.items():
            for k, v in evaluate(model, ex, ey, loss_fn).items():
                rec[f"{name}_{k}"] = v
        state.history.append(rec)

    augments = cfg.augment != "none" and x.dim() == 4

    def step(forward: Callable, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """One optimiser step on the batch (xb, yb); returns its loss (on the device)."""
        with autocast(device):
            out = forward(xb)
        loss = loss_fn(upcast(out), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        return loss

    bar = tqdm(total=total, initial=state.step, desc=desc, leave=False, file=sys.stderr,
               disable=None, mininterval=2.0 if sys.stderr.isatty() else 30.0)
    model.train()
    done = stopped or state.step >= total
    while not done:
        perm, draws = epoch_draws(n, cfg, min(spe, total - state.step), g, device, augments)
        loss_sum, loss_count = torch.zeros((), device=device), 0
        for b in range(spe):
            lo, hi = b * cfg.batch_size, (b + 1) * cfg.batch_size
            idx = perm[lo:hi]
            xb, yb = x[idx], y[idx]
            if augments:
                xb = apply_augment(xb, {k: v[lo:lo + len(idx)] for k, v in draws.items()})
            xb = eng.prepare_batch(xb)
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, state.step, total, spe)
            loss = eng.run_step(step, xb, yb, opt)
            state.step += 1
            loss_sum += loss.detach()
            loss_count += 1
            for cb in callbacks:
                cb.on_step_end(state)
            bar.update(1)
            if state.step >= total:
                done = True
                break
        state.epoch += 1
        state.last_loss = float(loss_sum / max(loss_count, 1))
        if not math.isfinite(state.last_loss):
            bar.close()
            raise TrainingDiverged(f"{desc}: training loss became {state.last_loss} at epoch {state.epoch}; "
                                   f"lower the learning rate in params.yaml.")
        if eval_sets and (done or (eval_every and state.epoch % eval_every == 0)):
            run_eval()
        for cb in callbacks:
            cb.on_epoch_end(state)
        if stop_when is not None and stop_when(state):
            done = stopped = True
        if done or state.epoch % cfg.checkpoint_every == 0:
            save()
    bar.close()
    state.engine = eng.close()
    if eval_sets and (not state.history or state.history[-1]["step"] != state.step):
        run_eval()
    for cb in callbacks:
        cb.on_end(state)
    model.eval()
    return state
