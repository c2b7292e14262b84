"""A minimal claim used by the foundation tests: trains a tiny MLP on a Fashion-MNIST subset."""

from dataclasses import dataclass, field

import pandas as pd
import torch
import torch.nn as nn

from claimbench.data import balanced_subset, load_fashion_mnist
from claimbench.params import positive
from claimbench.plotting import save, subplots
from claimbench.results import ClaimResult
from claimbench.sweep import run_cached
from claimbench.train import TrainConfig, fit, seed_everything

CLAIM_ID = "toy"


@dataclass(frozen=True)
class Config:
    per_class: int = field(metadata=positive())
    epochs: int = field(metadata=positive())
    seeds: list[int] = field(default_factory=lambda: [0])


def train(ctx):
    data = load_fashion_mnist("train", ctx.data_root)
    idx = balanced_subset(data.y, ctx.cfg.per_class, seed=0)
    for seed in ctx.cfg.seeds:
        def one(run_dir, seed=seed):
            seed_everything(seed)
            model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
            cfg = TrainConfig(epochs=ctx.cfg.epochs, batch_size=50, lr=0.1)
            st = fit(model, (data.x[idx], data.y[idx]), cfg, seed=seed, checkpoint=run_dir / "ck.pt",
                     eval_sets={"train": (data.x[idx], data.y[idx])})
            return {"acc": st.history[-1]["train_acc"]}
        run_cached(ctx.artifacts_dir / "runs", {"seed": seed, "per_class": ctx.cfg.per_class,
                                                 "epochs": ctx.cfg.epochs}, one)


def analyse(ctx):
    import json
    accs = [json.loads(p.read_text())["record"]["acc"] for p in sorted(ctx.artifacts_dir.glob("runs/*/done.json"))]
    fig, ax = subplots()
    ax.plot(accs, "o")
    save(fig, ctx.figures_dir / "acc.png")
    acc = float(torch.tensor(accs).mean())
    return ClaimResult({"train_acc": acc, "n_runs": len(accs)}, {"accs": pd.DataFrame({"acc": accs})},
                       list(ctx.cfg.seeds), {"dataset": "fashion-mnist", "model": "MLP-32"})
