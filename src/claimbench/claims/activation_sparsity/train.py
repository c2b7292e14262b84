"""Train side of activation sparsity: one run per model variant, nnz% tracked at log-spaced steps.

Runs (in plan order): the image runs of `variants.IMAGE_RUNS` (ViT small / large / Top-k, random labels,
Gaussian inputs + random labels, MLP-Mixer, 2-layer MLP) less cfg.skip, the char LM on Tiny Shakespeare,
and, if cfg.label_noise > 0, the label-noise pair (ViT small with and without Top-k). Each run is trained
under each of its seeds (`run_seeds`: every replicate seed for cfg.replicated, else seeds[0]). Every run
also measures nnz% at the end of its first pass over the data (`first_pass_step`), before any repeat.
"""

from __future__ import annotations

from pathlib import Path

import torch

from claimbench.claims.activation_sparsity import Config, run_key, run_seeds
from claimbench.claims.activation_sparsity.variants import (
    IMAGE_RUNS,
    LABEL_NOISE_RUNS,
    Data,
    ImageRun,
    ImageTask,
    build_model,
)
from claimbench.contract import Context, RunSpec
from claimbench.data import derive_seed, generator
from claimbench.metrics.activation_sparsity import log_spaced_steps, sparsity_record
from claimbench.metrics.calibration import expected_calibration_error, reliability_bins
from claimbench.models.relu_transformers import CharTransformer, char_windows
from claimbench.sweep import CHECKPOINT
from claimbench.train import (
    Callback,
    TrainConfig,
    TrainState,
    fit,
    lr_at,
    predict,
    prepare_model,
    seed_everything,
)


class SparsityTracker(Callback):
    """Records nnz% (per layer, per probe set) at the given optimiser steps, step 0 included."""

    def __init__(self, probes: dict[str, torch.Tensor], steps: list[int]):
        self.probes, self.steps, self.records = probes, set(steps), []

    def _measure(self, state: TrainState) -> None:
        rec = sparsity_record(state.model, self.probes)
        self.records.append({"step": state.step, **rec})

    def on_start(self, state: TrainState) -> None:
        self._measure(state)

    def on_step_end(self, state: TrainState) -> None:
        if state.step in self.steps:
            self._measure(state)

    def state_dict(self) -> dict:
        return {"records": self.records}

    def load_state_dict(self, d: dict) -> None:
        self.records = d["records"]


# ----------------------------------------------------------------------------- the plan


def load_data(ctx: Context) -> Data:
    """Fashion-MNIST, Tiny Shakespeare and the random inputs/labels, each loaded when a run first needs it."""
    return Data(ctx.cfg, ctx.data_root, ctx.device)


def plan(ctx: Context) -> list[RunSpec]:
    """Every run of the claim at ctx.cfg, each under each of its seeds: image runs (less cfg.skip), the
    char LM, then the optional label-noise pair."""
    cfg: Config = ctx.cfg

    def specs(name: str, args: dict, steps: int) -> list[RunSpec]:
        return [RunSpec(run_key(name, cfg, seed), f"{name} seed {seed} ({steps} steps)",
                        {**args, "name": name, "steps": steps, "seed": seed}) for seed in run_seeds(name, cfg)]

    def image(name: str, r: ImageRun) -> list[RunSpec]:
        return specs(name, {"kind": "image", "model": r.model, "topk": r.topk, "inputs": r.inputs,
                            "labels": r.labels, "classify": r.classify}, getattr(cfg, r.steps_field))

    out = [s for name, recipe in IMAGE_RUNS.items() if name not in cfg.skip for s in image(name, recipe)]
    out += specs("char_lm", {"kind": "char_lm"}, cfg.lm_steps)
    if cfg.label_noise > 0:
        out += [s for name, recipe in LABEL_NOISE_RUNS.items() for s in image(name, recipe)]
    return out


def run_one(ctx: Context, run_dir: Path, data: Data, kind: str, name: str, steps: int, seed: int,
            **image) -> dict:
    """Train run `name` under `seed` for `steps` optimiser steps: kind 'image' (keywords model, topk,
    inputs, labels, classify of its ImageRun) or 'char_lm'. Resumes from run_dir/checkpoint.pt (kept
    afterwards, as before the split: it holds the trained model)."""
    if kind == "char_lm":
        return train_char_lm(ctx, run_dir, data, steps, seed)
    return train_image(ctx, run_dir, data, name, steps, seed, **image)


def first_pass_step(n: int, batch_size: int, steps: int) -> int:
    """Optimiser steps after which each of n examples has been seen once and none twice (drop_last
    batches of a fresh permutation each epoch), or the whole run if it is shorter."""
    return min(n // batch_size, steps)


def half_lr_time_step(tc: TrainConfig, steps: int) -> int:
    """The step after which half of the run's optimisation time (the sum of its learning rates over the
    `steps` optimiser steps) is spent: the start of the last doubling of optimisation time, over which
    the flattening regime (R2) measures the late drop of nnz%."""
    lrs = [lr_at(tc, s, steps, 1) for s in range(steps)]
    total, acc = sum(lrs), 0.0
    for s, lr in enumerate(lrs):
        if acc >= total / 2:
            return s
        acc += lr
    return steps


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in %; NaN if any logit is not finite (a diverged model has no accuracy)."""
    if not torch.isfinite(logits).all():
        return float("nan")
    return 100 * float((logits.argmax(-1) == y).float().mean())


# ----------------------------------------------------------------------------- image runs


def image_train_config(cfg: Config, steps: int) -> TrainConfig:
    return TrainConfig(epochs=10**6, steps=steps, batch_size=cfg.batch_size, lr=cfg.lr, optimizer="adamw",
                       weight_decay=cfg.weight_decay, schedule=cfg.schedule, warmup_steps=cfg.warmup_steps,
                       drop_last=True)


def classifier_metrics(model: torch.nn.Module, task: ImageTask, cfg: Config, seed: int) -> dict:
    """Test accuracy (%), ECE (15 bins), reliability bins, accuracy (%) under Gaussian-noise corruption."""
    logits = predict(model, task.x_test)
    g = generator(derive_seed("corruption", seed))
    noise = torch.randn(task.x_test_raw.shape, generator=g).to(task.x_test_raw.device) * cfg.corruption_sigma
    x_noisy = ((task.x_test_raw + noise).clamp(0, 1) - task.mean) / task.std
    noisy_logits = predict(model, x_noisy)
    bins = reliability_bins(logits, task.y_test)
    return {"test_acc": accuracy(logits, task.y_test),
            "ece": expected_calibration_error(logits, task.y_test),
            "corrupted_acc": accuracy(noisy_logits, task.y_test),
            "reliability": {k: v.tolist() for k, v in bins.items()}}


def train_image(ctx: Context, run_dir: Path, data: Data, name: str, steps: int, seed: int, model: str,
                topk: bool, inputs: str, labels: str, classify: bool) -> dict:
    """Train one image model, tracking nnz% on a train probe (its own inputs) and the test probe.
    Record: curve (list of {step, train, test}), device, steps_per_epoch, first_pass_step, total_steps;
    unless trained on the true labels, train_acc (% of the first cfg.eval_examples training inputs whose
    random/noisy label it predicts: A4's fit gate); if `classify` test_acc (%), ece, corrupted_acc (%),
    reliability."""
    cfg: Config = ctx.cfg
    task = data.images
    x, y = data.inputs(inputs, seed), data.labels(labels, seed)
    if labels == "random" and cfg.random_label_examples:  # small enough to be memorised (A4's regime R1)
        x, y = x[: cfg.random_label_examples], y[: cfg.random_label_examples]
    seed_everything(derive_seed(name, seed))
    net = prepare_model(build_model(cfg, model, topk), ctx.device)
    probes = {"train": x[: cfg.probe_examples], "test": task.x_test[: cfg.probe_examples]}
    first_pass = first_pass_step(len(x), cfg.batch_size, steps)
    tc = image_train_config(cfg, steps)
    half = half_lr_time_step(tc, steps)
    tracker = SparsityTracker(probes, log_spaced_steps(steps, cfg.n_measurements, always=(first_pass, half)))
    fit(net, (x, y), tc, seed=derive_seed(name, seed, "data"),
        callbacks=[tracker], checkpoint=run_dir / CHECKPOINT, desc=name)
    rec = {"curve": tracker.records, "device": str(ctx.device), "steps_per_epoch": len(x) // cfg.batch_size,
           "first_pass_step": first_pass, "half_lr_time_step": half, "total_steps": steps,
           "train_examples": len(x)}
    if labels != "true":
        n_fit = min(cfg.eval_examples, len(x))
        rec["train_acc"] = accuracy(predict(net, x[:n_fit]), y[:n_fit])
    if classify:
        rec.update(classifier_metrics(net, task, cfg, seed))
    return rec


# ----------------------------------------------------------------------------- char LM


def train_char_lm(ctx: Context, run_dir: Path, data: Data, steps: int, seed: int) -> dict:
    """nanoGPT-style char LM on 90% of Tiny Shakespeare; nnz% on training windows and held-out windows.
    Record: curve, final_train_loss (nats per char), total_steps, steps_per_epoch, first_pass_step."""
    cfg: Config = ctx.cfg
    corpus = data.corpus
    train_tok, val_tok = corpus.split(0.9)
    x, y = (t.to(ctx.device) for t in char_windows(train_tok, cfg.lm_block_size))
    xv, _ = char_windows(val_tok, cfg.lm_block_size, cfg.lm_probe_windows)
    seed_everything(derive_seed("char_lm", seed))
    model = prepare_model(CharTransformer(len(corpus.vocab), cfg.lm_block_size, cfg.lm_d_model,
                                          cfg.lm_layers, cfg.lm_heads), ctx.device)
    probes = {"train": x[: cfg.lm_probe_windows], "test": xv.to(ctx.device)}
    first_pass = first_pass_step(len(x), cfg.lm_batch_size, steps)
    tc = TrainConfig(epochs=10**6, steps=steps, batch_size=cfg.lm_batch_size, lr=cfg.lm_lr,
                     optimizer="adamw", weight_decay=cfg.weight_decay, schedule=cfg.schedule,
                     warmup_steps=cfg.warmup_steps, grad_clip=1.0, drop_last=True)
    half = half_lr_time_step(tc, steps)
    tracker = SparsityTracker(probes, log_spaced_steps(steps, cfg.n_measurements, always=(first_pass, half)))
    state = fit(model, (x, y), tc, seed=derive_seed("char_lm", seed, "data"), callbacks=[tracker],
                checkpoint=run_dir / CHECKPOINT, desc="char_lm")
    return {"curve": tracker.records, "final_train_loss": state.last_loss, "total_steps": steps,
            "steps_per_epoch": len(x) // cfg.lm_batch_size, "first_pass_step": first_pass,
            "half_lr_time_step": half}
