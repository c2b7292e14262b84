"""Train side of simpson_paradox: one run per grid point (a VGG of the PGDL-task-1-like family).

Each run leaves ``weights.pt`` (its state dict, float64/float32 as trained, on CPU) unless it diverged;
its record holds the grid point, depth (conv_layers), seed, accuracies and training time. With
``pgdl_task`` set the plan is empty: the task's models are already trained and analyse.py reads them.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F

from claimbench.claims.simpson_paradox import CLAIM_ID, Config, grid, model_seed, sweep_key
from claimbench.contract import Context, RunSpec
from claimbench.data import balanced_subset, load_images, random_subset
from claimbench.models.pgdl_vgg import PGDLVGG, VGGSpec
from claimbench.numerics import upcast
from claimbench.sweep import CHECKPOINT
from claimbench.train import TrainConfig, evaluate, fit, prepare_model, seed_everything

THREADS = 1  # torch CPU threads per run: tiny models train faster without thread synchronisation


def load_data(ctx: Context):
    """(train x, train y, test x, test y, classes), resident on ctx.device; x (n, c, h, w) after the
    downsample pool; balanced train subset, random test subset."""
    cfg: Config = ctx.cfg
    train, test = load_images(cfg.dataset, "train", ctx.data_root), load_images(cfg.dataset, "test", ctx.data_root)
    train = train.subset(balanced_subset(train.y, cfg.train_examples // train.num_classes, cfg.seed))
    test = test.subset(random_subset(len(test), min(cfg.test_examples, len(test)), cfg.seed))

    def prep(x: torch.Tensor) -> torch.Tensor:
        return (F.avg_pool2d(x, cfg.downsample) if cfg.downsample > 1 else x).to(ctx.device)

    return prep(train.x), train.y.to(ctx.device), prep(test.x), test.y.to(ctx.device), train.num_classes


def plan(ctx: Context) -> list[RunSpec]:
    """One run per grid point, in grid order; none with a PGDL task folder (nothing to train)."""
    cfg: Config = ctx.cfg
    if cfg.pgdl_task:
        return []
    return [RunSpec(sweep_key(hp, cfg), " ".join(f"{k}={v}" for k, v in hp.items()), hp, threads=THREADS)
            for hp in grid(cfg)]


def run_one(ctx: Context, run_dir: Path, data, *, blocks: int, dense_layers: int, last_filters: int,
            dropout: float, weight_decay: float, batch_size: int) -> dict:
    """Train one grid point (resuming from run_dir/checkpoint.pt); save run_dir/weights.pt unless it
    diverged; return the grid point, conv_layers, seed, diverged, train_s and (if not diverged) accuracies."""
    cfg: Config = ctx.cfg
    x, y, xt, yt, num_classes = data
    hp = {"blocks": blocks, "dense_layers": dense_layers, "last_filters": last_filters, "dropout": dropout,
          "weight_decay": weight_decay, "batch_size": batch_size}
    spec = VGGSpec(blocks, dense_layers, last_filters, cfg.dense_width, dropout)
    seed = model_seed(hp, cfg)
    seed_everything(seed)
    model = prepare_model(PGDLVGG(spec, x.shape[1], x.shape[-1], num_classes), ctx.device)
    tc = TrainConfig(epochs=cfg.epochs, batch_size=batch_size, lr=cfg.lr, momentum=cfg.momentum,
                     weight_decay=weight_decay, schedule="step" if cfg.lr_milestones else "constant",
                     milestones=tuple(cfg.lr_milestones), gamma=cfg.lr_gamma)
    t0 = time.time()
    record = {**hp, "conv_layers": spec.conv_layers, "seed": seed, "diverged": False}
    stop = None
    if cfg.target_train_acc > 0:  # card v5: train to the target training accuracy, `epochs` is the cap
        def stop(state) -> bool:
            return evaluate(model, x, y)["acc"] >= cfg.target_train_acc
    try:
        state = fit(model, (x, y), tc, seed=seed, checkpoint=run_dir / CHECKPOINT,
                    desc=f"{CLAIM_ID}/{run_dir.name}", stop_when=stop)
        record["epochs_run"] = state.epoch
    except FloatingPointError:
        record["diverged"] = True
    record["train_s"] = round(time.time() - t0, 2)
    if not record["diverged"]:
        record["train_acc"] = evaluate(model, x, y)["acc"]
        record["test_acc"] = evaluate(model, xt, yt)["acc"]
        torch.save({k: upcast(v).cpu() for k, v in model.state_dict().items()}, run_dir / "weights.pt")
    (run_dir / CHECKPOINT).unlink(missing_ok=True)
    return record
