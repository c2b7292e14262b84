"""Pilot (card v5 proposal): does a full-data EL2N run fit its 12k training subset? Trains the claim's own
full-data recipe (Config.train_config, load_data, new_model) at the given widths and epochs, and prints the
final train/test accuracy (%, eval mode) and wall seconds per run as JSON lines. No scores, no pruning.

  OMP_NUM_THREADS=1 python -m claimbench.pilot.el2n_fit --widths 32 48 --epochs 20 --seed 21000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from claimbench.claims.el2n_pruning import CLAIM_ID
from claimbench.claims.el2n_pruning.train import load_data, new_model
from claimbench.data import derive_seed
from claimbench.stage import make_context
from claimbench.train import fit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", type=int, nargs="+", default=[32])
    ap.add_argument("--epochs", type=int, nargs="+", default=[10])
    ap.add_argument("--seed", type=int, default=21000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ctx = make_context(CLAIM_ID, "quick")
    split = load_data(ctx)
    for epochs in args.epochs:
        for width in args.widths:
            cfg = dataclasses.replace(ctx.cfg, width=width, epochs=epochs)
            t0 = time.time()
            model = new_model(cfg, split, derive_seed(CLAIM_ID, "score-init", args.seed), ctx.device)
            state = fit(model, (split.x, split.y), cfg.train_config(),
                        seed=derive_seed(CLAIM_ID, "score-data", args.seed), desc="fit",
                        eval_sets={"train": (split.x, split.y), "test": (split.x_test, split.y_test)})
            last = state.history[-1]
            print(json.dumps({"width": width, "epochs": epochs, "seed": args.seed, "steps": state.step,
                              "params": sum(p.numel() for p in model.parameters()),
                              "train_acc": round(100 * last["train_acc"], 2),
                              "test_acc": round(100 * last["test_acc"], 2),
                              "train_loss_last_epoch": round(last["train_loss"], 4),
                              "wall_s": round(time.time() - t0, 1)}),
                  flush=True)


if __name__ == "__main__":
    main()
