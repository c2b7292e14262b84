"""A minimal claim used by the foundation tests: trains a tiny MLP on a Fashion-MNIST subset.

It follows the claim contract in one module (train side, analyse side and figure side at once):
`ToyEntry` stands in for the registry's ClaimEntry.
"""

from dataclasses import dataclass, field

import pandas as pd
import torch
import torch.nn as nn

from claimbench.contract import RunSpec
from claimbench.data import balanced_subset, load_fashion_mnist
from claimbench.params import positive
from claimbench.plotting import save, subplots
from claimbench.results import ClaimResult
from claimbench.train import TrainConfig, fit, seed_everything

CLAIM_ID = "toy"
DVC_PLOTS: list[dict] = []


@dataclass(frozen=True)
class Config:
    per_class: int = field(metadata=positive())
    epochs: int = field(metadata=positive())
    seeds: list[int] = field(default_factory=lambda: [0])


def load_data(ctx):
    data = load_fashion_mnist("train", ctx.data_root)
    idx = balanced_subset(data.y, ctx.cfg.per_class, seed=0)
    return data.x[idx], data.y[idx]


def plan(ctx):
    return [RunSpec({"seed": s, "per_class": ctx.cfg.per_class, "epochs": ctx.cfg.epochs}, f"seed={s}", {"seed": s})
            for s in ctx.cfg.seeds]


def run_one(ctx, run_dir, data, seed):
    seed_everything(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    cfg = TrainConfig(epochs=ctx.cfg.epochs, batch_size=50, lr=0.1)
    st = fit(model, data, cfg, seed=seed, checkpoint=run_dir / "checkpoint.pt", eval_sets={"train": data})
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    return {"acc": st.history[-1]["train_acc"]}


def analyse(records, ctx):
    accs = [r["acc"] for r in records]
    acc = float(torch.tensor(accs).mean())
    return ClaimResult({"train_acc": acc, "n_runs": len(accs)}, {"accs": pd.DataFrame({"acc": accs})},
                       list(ctx.cfg.seeds), {"dataset": "fashion-mnist", "model": "MLP-32"})


def figures(result, ctx):
    fig, ax = subplots()
    ax.plot(result.tables["accs"]["acc"], "o")
    save(fig, ctx.figures_dir / "acc.png")


@dataclass(frozen=True)
class ToyEntry:
    """The registry's view of this module (one module plays train, analyse and figure side)."""

    id: str = CLAIM_ID

    @property
    def Config(self):  # noqa: N802
        return Config

    @property
    def train(self):
        import toy_claim

        return toy_claim

    analyse = figures = train
