"""Neural collapse, train side: one run per (width, seed, loss variant), each a width-ResNet-18 trained
with SGD while a probe measures the collapse metrics at log-spaced epochs; plus N2's control runs (CE at
the largest width under `control_seeds`), ordinary CE runs with seeds of their own.

A run folder holds features.pt (final penultimate features h (N, d), labels y (N,), classifier w (K, d)
and b (K,)), model.pt (the weights) and, while training, checkpoint.pt.

With params.yaml ``engine.<scale>.neural_collapse.stack_runs`` ≥ 2 the executor trains the seeds of one width
and loss (``stack_key``) as one stacked model (``run_group``, claimbench.stack), each member's collapse probe a
callback of its own: each member is the run run_one trains, to round-off (docs/engine.md).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from claimbench.claims.neural_collapse import (
    LR_MILESTONES,
    REFERENCE_LOSS,
    SECONDARY_LS,
    Config,
    measure_epochs,
    run_key,
    seeds_at,
    variants,
)
from claimbench.collapse_losses import make_loss
from claimbench.contract import Context, RunSpec
from claimbench.data import balanced_subset, derive_seed, load_fashion_mnist, normalize
from claimbench.metrics.collapse import collapse_metrics
from claimbench.models.resnet_width import WideResNet18
from claimbench.numerics import upcast
from claimbench.stack import fit_stacked
from claimbench.sweep import CHECKPOINT
from claimbench.train import Callback, TrainConfig, TrainState, evaluate, fit, prepare_model, seed_everything

NUM_CLASSES = 10


def loss_fn(cfg: Config, variant: str):
    """The training loss of a variant (ce, ls, fl, mse, or LS at the secondary alpha)."""
    if variant == SECONDARY_LS:
        return make_loss("ls", ls_alpha=cfg.ls_alpha_secondary)
    return make_loss(variant, ls_alpha=cfg.ls_alpha, focal_gamma=cfg.focal_gamma, mse_scale=cfg.mse_scale)


def training_loss(cfg: Config, variant: str):
    """The loss that is minimised: loss_fn, times the number of terms it averages when cfg.loss_reduction is
    "sum" (the batch size; MSE: batch size × classes, as F.mse_loss(reduction='sum') in jinxinzhou/nc_loss).
    Test losses are always reported batch-mean (loss_fn)."""
    fn = loss_fn(cfg, variant)
    if cfg.loss_reduction == "mean":
        return fn
    per_row = NUM_CLASSES if variant == "mse" else 1
    return lambda logits, y: fn(logits, y) * (len(y) * per_row)


@torch.no_grad()
def penultimate(model: WideResNet18, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """(N, d) float32 penultimate features in eval mode, full precision (no autocast)."""
    was_training = model.training
    model.eval()
    h = torch.cat([upcast(model.features(x[i : i + batch_size])) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return h


class CollapseProbe(Callback):
    """Measures the collapse metrics and training accuracy on (x, y) after each epoch in `epochs`."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, epochs: list[int]):
        self.x, self.y, self.epochs, self.records = x, y, set(epochs), []

    def measure(self, model: WideResNet18) -> tuple[dict, torch.Tensor]:
        h = penultimate(model, self.x)
        w, b = model.fc.weight.detach(), model.fc.bias.detach()
        rec = collapse_metrics(h, self.y, w, b, NUM_CLASSES)
        rec["train_acc"] = float(((h @ w.T + b).argmax(1) == self.y).float().mean())
        return rec, h

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch in self.epochs:
            rec, _ = self.measure(state.model)
            self.records.append({"epoch": state.epoch, "train_loss": state.last_loss, **rec})

    def state_dict(self) -> dict:
        return {"records": self.records}

    def load_state_dict(self, d: dict) -> None:
        self.records = list(d["records"])


def load_data(ctx: Context) -> dict[str, torch.Tensor]:
    """Normalised balanced subsets on ctx.device: x_train (N, 1, 28, 28), y_train (N,), x_test, y_test."""
    cfg: Config = ctx.cfg
    train = load_fashion_mnist("train", ctx.data_root)
    test = load_fashion_mnist("test", ctx.data_root)
    train = train.subset(balanced_subset(train.y, cfg.train_per_class, cfg.subset_seed))
    if cfg.test_per_class is not None:
        test = test.subset(balanced_subset(test.y, cfg.test_per_class, derive_seed("nc-test", cfg.subset_seed)))
    x_train, mean, std = normalize(train.x)
    x_test, _, _ = normalize(test.x, mean, std)
    d = ctx.device
    return {"x_train": x_train.to(d), "y_train": train.y.to(d), "x_test": x_test.to(d), "y_test": test.y.to(d)}


def plan(ctx: Context) -> list[RunSpec]:
    """Every (width, seed at that width, loss variant), widths ascending, then seeds, then variants in
    VARIANT_ORDER; then N2's control runs: CE at the largest width under each control seed (an ordinary CE
    run's key)."""
    cfg: Config = ctx.cfg
    main = [RunSpec(run_key(cfg, w, s, v), f"{v} w={w:g} seed={s}", {"width": w, "seed": s, "variant": v})
            for w in sorted(cfg.widths) for s in seeds_at(cfg, w) for v in variants(cfg, w)]
    w = max(cfg.widths)
    control = [RunSpec(run_key(cfg, w, s, REFERENCE_LOSS), f"{REFERENCE_LOSS} w={w:g} seed={s} (control)",
                       {"width": w, "seed": s, "variant": REFERENCE_LOSS}) for s in cfg.control_seeds]
    return main + control


def _setup(ctx: Context, data: dict, width: float, seed: int, variant: str) -> tuple[WideResNet18, TrainConfig,
                                                                                   CollapseProbe]:
    """The initialised model (seeded: same init and data order for every loss at a (width, seed)), recipe and
    probe of one run."""
    cfg: Config = ctx.cfg
    seed_everything(seed)
    model = prepare_model(WideResNet18(width, NUM_CLASSES, 1, cfg.stem_stride), ctx.device)
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, momentum=cfg.momentum,
                       weight_decay=cfg.weight_decay, schedule="step", gamma=0.1, milestones=LR_MILESTONES,
                       grad_clip=cfg.grad_clip, augment=cfg.augment, checkpoint_every=max(1, cfg.epochs // 7))
    return model, tcfg, CollapseProbe(data["x_train"], data["y_train"], measure_epochs(cfg))


def _desc(width: float, seed: int, variant: str) -> str:
    return f"nc {variant} w={width} s={seed}"


def _finish(ctx: Context, run_dir: Path, data: dict, model: WideResNet18, probe: CollapseProbe, width: float,
            seed: int, variant: str, wall_s: float) -> dict:
    """A trained run's files (features.pt, model.pt; the checkpoint removed) and record."""
    cfg: Config = ctx.cfg
    final, h = probe.measure(model)
    test = evaluate(model, data["x_test"], data["y_test"], loss_fn(cfg, variant))
    torch.save({"h": h.cpu(), "y": data["y_train"].cpu(), "w": model.fc.weight.detach().cpu(),
                "b": model.fc.bias.detach().cpu()}, run_dir / "features.pt")
    torch.save(model.state_dict(), run_dir / "model.pt")
    (run_dir / CHECKPOINT).unlink(missing_ok=True)  # optimiser state no longer needed once done
    ctx.log(f"{variant:>12} w={width:g} seed={seed}: train acc {final['train_acc']:.4f} test acc {test['acc']:.4f} "
            f"NC1 {final['nc1']:.3g} NC2 {final['nc2']:.3g} NC3 {final['nc3']:.3g} ({wall_s:.1f} s)")
    return {"variant": variant, "width": width, "seed": seed, "history": probe.records, "final": final,
            "test_acc": test["acc"], "test_loss": test["loss"], "wall_s": round(wall_s, 1)}


def run_one(ctx: Context, run_dir: Path, data: dict, width: float, seed: int, variant: str) -> dict:
    """Train one (width, seed, loss) run into `run_dir`; returns its record (NC history, accuracies)."""
    t0 = time.time()
    model, tcfg, probe = _setup(ctx, data, width, seed, variant)
    fit(model, (data["x_train"], data["y_train"]), tcfg, seed=seed, loss_fn=training_loss(ctx.cfg, variant),
        callbacks=[probe], checkpoint=run_dir / CHECKPOINT, desc=_desc(width, seed, variant))
    return _finish(ctx, run_dir, data, model, probe, width, seed, variant, time.time() - t0)


# ---------------------------------------------------------------- stacked runs (claimbench.stack, docs/engine.md)


def stack_key(ctx: Context, spec: RunSpec) -> dict:
    """What runs must share to train as one stacked model (engine `stack_runs` >= 2): the width and the loss;
    seeds (init, data order) are per member, the recipe and data the context's."""
    return {k: spec.args[k] for k in ("width", "variant")}


def run_group(ctx: Context, run_dirs: list[Path], data: dict, args: list[dict]) -> list[dict]:
    """Train the runs `args` (one stack_key: a width and a loss, several seeds) as one stacked model
    (claimbench.stack.fit_stacked), each member the run run_one trains (to round-off), with its own folder,
    checkpoint, seed and collapse probe; returns run_one's record per member, in order (wall_s: the group's
    time split evenly). Raises NotStackable where the runs cannot stack (the executor trains them alone)."""
    t0 = time.time()
    runs = [_setup(ctx, data, a["width"], a["seed"], a["variant"]) for a in args]
    variant = args[0]["variant"]
    fit_stacked([m for m, _, _ in runs], [(data["x_train"], data["y_train"])] * len(runs), runs[0][1],
                seeds=[a["seed"] for a in args], descs=[_desc(a["width"], a["seed"], a["variant"]) for a in args],
                loss_fn=training_loss(ctx.cfg, variant), callbacks=[[probe] for _, _, probe in runs],
                checkpoints=[d / CHECKPOINT for d in run_dirs], channels_last=None)
    wall_s = (time.time() - t0) / len(runs)
    return [_finish(ctx, d, data, model, probe, a["width"], a["seed"], a["variant"], wall_s)
            for d, (model, _, probe), a in zip(run_dirs, runs, args)]
