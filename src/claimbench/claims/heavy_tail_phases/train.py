"""Train side of heavy_tail_phases: one network (MiniAlexNet, or the MLP3 surrogate) per (batch size, seed),
final weights kept.

With params.yaml ``engine.<scale>.heavy_tail_phases.stack_runs`` >= 2 the executor trains the seeds of one batch
size (``stack_key``) as one stacked model (``run_group``, claimbench.stack), each member the run run_one trains,
to round-off (docs/engine.md).

Every run trains with 1 torch thread on a CPU (small batches run faster on 1 thread than on 2, and are
immune to oversubscription when the executor runs several side by side).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from claimbench.claims.heavy_tail_phases import CLAIM_ID, Config, run_key
from claimbench.contract import Context, RunSpec
from claimbench.data import balanced_subset, derive_seed, load_images, random_subset, standardize_per_image
from claimbench.models.mini_alexnet import MiniAlexNet, mse_on_softmax
from claimbench.models.mlp3 import MLP3
from claimbench.numerics import upcast
from claimbench.stack import fit_stacked
from claimbench.sweep import CHECKPOINT
from claimbench.train import TrainConfig, fit, prepare_model, seed_everything

Split = tuple[torch.Tensor, torch.Tensor]


def load_split(cfg: Config, split: str, root: str | None) -> Split:
    """(x (N, C, 28, 28) per-image standardised float32, y (N,) int64) of the configured subset."""
    data = load_images(cfg.dataset, split, root)
    if split == "train" and cfg.train_per_class is not None:
        data = data.subset(balanced_subset(data.y, cfg.train_per_class, derive_seed(CLAIM_ID, "train")))
    if split == "test" and cfg.test_size is not None:
        data = data.subset(random_subset(len(data), cfg.test_size, derive_seed(CLAIM_ID, "test")))
    x = data.x
    if x.shape[-1] == 32:  # CIFAR-10: centre crop 32 → 28 as the authors' [2:-2, 2:-2]
        x = x[..., 2:-2, 2:-2]
    return standardize_per_image(x.contiguous()), data.y


def load_data(ctx: Context) -> tuple[Split, Split]:
    """(train split, test split) on the CPU, as load_split returns them."""
    cfg: Config = ctx.cfg
    train_xy, test_xy = load_split(cfg, "train", ctx.data_root), load_split(cfg, "test", ctx.data_root)
    ctx.log(f"{len(train_xy[1])} training images, {len(test_xy[1])} test images, {cfg.epochs} epochs per run")
    return train_xy, test_xy


def plan(ctx: Context) -> list[RunSpec]:
    """Every (batch size, seed), smallest batch size first: those are the longest runs, so side-by-side
    workers finish them early. One torch thread per run."""
    cfg: Config = ctx.cfg
    return [
        RunSpec(run_key(cfg, bs, seed), f"bs={bs} seed={seed}", {"batch_size": bs, "seed": seed}, threads=1)
        for bs in sorted(set(cfg.batch_sizes))
        for seed in cfg.seeds
    ]


def build_model(name: str, x: torch.Tensor) -> torch.nn.Module:
    """A fresh network for inputs like x (N, C, 28, 28): MiniAlexNet, or MLP3 on the flattened image."""
    if name == "mlp3":
        return MLP3(in_features=x[0].numel(), num_classes=10)
    return MiniAlexNet(in_channels=x.shape[1], num_classes=10)


def _setup(ctx: Context, data: tuple[Split, Split], batch_size: int, seed: int):
    """(initialised model (seeded), recipe, train (x, y), eval sets) of one run, on ctx.device."""
    cfg: Config = ctx.cfg
    train_xy, test_xy = data
    x, y = (t.to(ctx.device) for t in train_xy)
    tx, ty = (t.to(ctx.device) for t in test_xy)
    seed_everything(seed)
    model = prepare_model(build_model(cfg.model, x), ctx.device)
    tc = TrainConfig(epochs=cfg.epochs, batch_size=batch_size, lr=cfg.lr, momentum=cfg.momentum, schedule="exp",
                     gamma=cfg.lr_decay)
    return model, tc, (x, y), {"train": (x, y), "test": (tx, ty)}


def _finish(run_dir: Path, model: torch.nn.Module, state, batch_size: int, seed: int, wall_s: float) -> dict:
    """Keep model.pt (final weights, CPU float32 or wider), drop the checkpoint; the run's record."""
    torch.save({k: upcast(v.detach()).cpu() for k, v in model.state_dict().items()}, run_dir / "model.pt")
    (run_dir / CHECKPOINT).unlink(missing_ok=True)  # the optimiser state is not needed once the run is done
    last = state.history[-1]
    return {
        "batch_size": batch_size,
        "seed": seed,
        "train_acc": last["train_acc"],
        "test_acc": last["test_acc"],
        "train_loss": last["train_loss"],
        "steps": state.step,
        "epochs": state.epoch,
        "wall_s": round(wall_s, 1),
    }


def run_one(ctx: Context, run_dir: Path, data: tuple[Split, Split], batch_size: int, seed: int) -> dict:
    """Train one network (resuming from run_dir/checkpoint.pt); keep model.pt (final weights, CPU float32 or
    wider); return final accuracies, train loss, steps, epochs and wall time (s)."""
    t0 = time.time()
    model, tc, train, evals = _setup(ctx, data, batch_size, seed)
    state = fit(model, train, tc, seed=seed, loss_fn=mse_on_softmax, eval_sets=evals,
                checkpoint=run_dir / CHECKPOINT, desc=f"bs{batch_size}-seed{seed}")
    return _finish(run_dir, model, state, batch_size, seed, time.time() - t0)


# ---------------------------------------------------------------- stacked runs (claimbench.stack, docs/engine.md)


def stack_key(ctx: Context, spec: RunSpec) -> dict:
    """What runs must share to train as one stacked model (engine `stack_runs` >= 2): the batch size (model,
    recipe and data are the context's); the seeds are the members."""
    return {"batch_size": spec.args["batch_size"]}


def run_group(ctx: Context, run_dirs: list[Path], data: tuple[Split, Split], args: list[dict]) -> list[dict]:
    """Train the runs `args` (one batch size, several seeds) as one stacked model (claimbench.stack.fit_stacked),
    each member the run run_one trains (to round-off), with its own folder, checkpoint, seed and data order;
    returns run_one's record per member, in order (wall_s: the group's time split evenly)."""
    t0 = time.time()
    runs = [_setup(ctx, data, a["batch_size"], a["seed"]) for a in args]
    states = fit_stacked([m for m, _, _, _ in runs], [train for _, _, train, _ in runs], runs[0][1],
                         seeds=[a["seed"] for a in args], descs=[f"bs{a['batch_size']}-seed{a['seed']}" for a in args],
                         loss_fn=mse_on_softmax, eval_sets=[evals for _, _, _, evals in runs],
                         checkpoints=[d / CHECKPOINT for d in run_dirs], channels_last=None)
    wall_s = (time.time() - t0) / len(runs)
    return [_finish(d, model, state, a["batch_size"], a["seed"], wall_s)
            for d, (model, _, _, _), state, a in zip(run_dirs, runs, states, args)]
