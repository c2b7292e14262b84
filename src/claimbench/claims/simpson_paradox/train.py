"""Train side of simpson_paradox: one run per grid point (a VGG of the PGDL-task-1-like family).

Each run leaves ``weights.pt`` (its state dict, float64/float32 as trained, on CPU) unless it diverged;
its record holds the grid point, depth (conv_layers), seed, accuracies and training time. With
``pgdl_task`` set the plan is empty: the task's models are already trained and analyse.py reads them.
With params.yaml ``engine.<scale>.simpson_paradox.stack_runs`` ≥ 2 the executor trains the runs of one
architecture and batch size (``stack_key``; dropout and weight decay per member) as one stacked model
(``run_group``, claimbench.stack): each member is the run run_one trains, to round-off (docs/engine.md).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from claimbench.claims.simpson_paradox import CLAIM_ID, Config, grid, model_seed, sweep_key
from claimbench.contract import Context, RunSpec
from claimbench.data import balanced_subset, load_images, random_subset
from claimbench.errors import DataError
from claimbench.models.pgdl_vgg import PGDLVGG, VGGSpec
from claimbench.numerics import upcast
from claimbench.stack import NotStackable, fit_stacked
from claimbench.sweep import CHECKPOINT
from claimbench.train import TrainConfig, evaluate, fit, prepare_model, seed_everything

THREADS = 1  # torch CPU threads per run: tiny models train faster without thread synchronisation


def load_data(ctx: Context):
    """(train x, train y, test x, test y, classes), resident on ctx.device; x (n, c, h, w) after the
    downsample pool; balanced train subset, random test subset, plus (card v7) `heldout_examples` random
    images of the train split outside the training subset, appended to the test set."""
    cfg: Config = ctx.cfg
    full, test = load_images(cfg.dataset, "train", ctx.data_root), load_images(cfg.dataset, "test", ctx.data_root)
    picked = balanced_subset(full.y, cfg.train_examples // full.num_classes, cfg.seed)
    train = full.subset(picked)
    test = test.subset(random_subset(len(test), min(cfg.test_examples, len(test)), cfg.seed))
    x_test, y_test = test.x, test.y
    if cfg.heldout_examples:
        unused = torch.ones(len(full), dtype=torch.bool)
        unused[picked] = False
        rest = torch.nonzero(unused).flatten()
        if cfg.heldout_examples > len(rest):
            raise DataError(f"params heldout_examples {cfg.heldout_examples}: the train split has only {len(rest)} "
                            f"images outside the {len(picked)} trained on; lower heldout_examples.")
        extra = full.subset(rest[random_subset(len(rest), cfg.heldout_examples, cfg.seed)])
        x_test, y_test = torch.cat([x_test, extra.x]), torch.cat([y_test, extra.y])

    def prep(x: torch.Tensor) -> torch.Tensor:
        return (F.avg_pool2d(x, cfg.downsample) if cfg.downsample > 1 else x).to(ctx.device)

    return prep(train.x), train.y.to(ctx.device), prep(x_test), y_test.to(ctx.device), train.num_classes


def plan(ctx: Context) -> list[RunSpec]:
    """One run per grid point, in grid order; none with a PGDL task folder (nothing to train)."""
    cfg: Config = ctx.cfg
    if cfg.pgdl_task:
        return []
    return [RunSpec(sweep_key(hp, cfg), " ".join(f"{k}={v}" for k, v in hp.items()), hp, threads=THREADS)
            for hp in grid(cfg)]


def _setup(ctx: Context, data, hp: dict) -> tuple[torch.nn.Module, TrainConfig, dict]:
    """Grid point `hp`'s model (seeded, on ctx.device), recipe and record so far (grid point, conv_layers, seed)."""
    cfg: Config = ctx.cfg
    x, num_classes = data[0], data[4]
    spec = VGGSpec(hp["blocks"], hp["dense_layers"], hp["last_filters"], cfg.dense_width, hp["dropout"])
    seed = model_seed(hp, cfg)
    seed_everything(seed)
    model = prepare_model(PGDLVGG(spec, x.shape[1], x.shape[-1], num_classes), ctx.device)
    tc = TrainConfig(epochs=cfg.epochs, batch_size=hp["batch_size"], lr=cfg.lr, momentum=cfg.momentum,
                     weight_decay=hp["weight_decay"], schedule="step" if cfg.lr_milestones else "constant",
                     milestones=tuple(cfg.lr_milestones), gamma=cfg.lr_gamma)
    return model, tc, {**hp, "conv_layers": spec.conv_layers, "seed": seed, "diverged": False}


def _stop_rule(ctx: Context, data):
    """fit's stop_when for card v5's target training accuracy (None without one): the model's training accuracy
    (eval mode, whole training subset) after each epoch reaches cfg.target_train_acc; `epochs` is the cap."""
    cfg: Config = ctx.cfg
    if cfg.target_train_acc <= 0:
        return None
    x, y = data[0], data[1]

    def stop(state) -> bool:
        return evaluate(state.model, x, y)["acc"] >= cfg.target_train_acc

    return stop


def _desc(run_dir: Path) -> str:
    return f"{CLAIM_ID}/{run_dir.name}"


def _finish(run_dir: Path, data, model: torch.nn.Module, record: dict, state, train_s: float) -> dict:
    """The run's record once training ended (`state`: fit's TrainState, or the FloatingPointError of a run that
    diverged); weights.pt saved unless it diverged, the checkpoint removed."""
    x, y, xt, yt, _ = data
    if isinstance(state, FloatingPointError):
        record["diverged"] = True
    else:
        record["epochs_run"] = state.epoch
    record["train_s"] = round(train_s, 2)
    if not record["diverged"]:
        record["train_acc"] = evaluate(model, x, y)["acc"]
        record["test_acc"] = evaluate(model, xt, yt)["acc"]
        torch.save({k: upcast(v).cpu() for k, v in model.state_dict().items()}, run_dir / "weights.pt")
    (run_dir / CHECKPOINT).unlink(missing_ok=True)
    return record


def run_one(ctx: Context, run_dir: Path, data, *, blocks: int, dense_layers: int, last_filters: int,
            dropout: float, weight_decay: float, batch_size: int) -> dict:
    """Train one grid point (resuming from run_dir/checkpoint.pt); save run_dir/weights.pt unless it
    diverged; return the grid point, conv_layers, seed, diverged, train_s and (if not diverged) epochs_run and
    accuracies. With target_train_acc set (card v5), train until the training accuracy reaches it."""
    hp = {"blocks": blocks, "dense_layers": dense_layers, "last_filters": last_filters, "dropout": dropout,
          "weight_decay": weight_decay, "batch_size": batch_size}
    model, tc, record = _setup(ctx, data, hp)
    t0 = time.time()
    try:
        state = fit(model, (data[0], data[1]), tc, seed=record["seed"], checkpoint=run_dir / CHECKPOINT,
                    desc=_desc(run_dir), stop_when=_stop_rule(ctx, data))
    except FloatingPointError as e:
        state = e
    return _finish(run_dir, data, model, record, state, time.time() - t0)


# ---------------------------------------------------------------- stacked runs (claimbench.stack, docs/engine.md)


def stack_key(ctx: Context, spec: RunSpec) -> dict | None:
    """What runs must share to train as one stacked model (engine `stack_runs` ≥ 2): the architecture but for
    dropout (a per-member probability) and the batch size. The recipe (lr, epochs, schedule, target accuracy)
    and the data are the context's, shared by every run of the plan; weight decay is per member (SGD). None (train
    alone): a PGDL task folder, where nothing trains."""
    if ctx.cfg.pgdl_task:
        return None
    return {k: spec.args[k] for k in ("blocks", "dense_layers", "last_filters", "batch_size")}


def run_group(ctx: Context, run_dirs: list[Path], data, args: list[dict]) -> list[dict]:
    """Train the grid points `args` (one stack_key) as one stacked model (claimbench.stack.fit_stacked), each
    member the run run_one trains (to round-off), with its own folder, checkpoint, seed, dropout, weight decay and
    stopping; returns run_one's record per member, in order (train_s: the group's time split evenly). A member
    that diverges is recorded as diverged and the others go on. Raises NotStackable where the runs cannot stack
    (the executor then trains them alone)."""
    runs = [_setup(ctx, data, hp) for hp in args]
    recipes = {replace(tc, weight_decay=0.0) for _, tc, _ in runs}
    if len(recipes) != 1:
        raise NotStackable(f"{CLAIM_ID}: the runs' recipes differ beyond weight decay: {recipes}")
    stop = _stop_rule(ctx, data)
    t0 = time.time()
    states = fit_stacked([m for m, _, _ in runs], [(data[0], data[1])] * len(runs), runs[0][1],
                         seeds=[r["seed"] for _, _, r in runs], descs=[_desc(d) for d in run_dirs],
                         checkpoints=[d / CHECKPOINT for d in run_dirs],
                         weight_decays=[tc.weight_decay for _, tc, _ in runs], stop_when=[stop] * len(runs),
                         diverged="return", channels_last=None)
    train_s = (time.time() - t0) / len(runs)
    return [_finish(d, data, model, record, state, train_s)
            for d, (model, _, record), state in zip(run_dirs, runs, states)]
