"""Figures of heavy_tail_phases, redrawn from its ClaimResult (tables + pooled ESDs in figure_data)."""

from __future__ import annotations

import numpy as np

from claimbench import plotting
from claimbench.contract import Context
from claimbench.metrics import spectral
from claimbench.results import ClaimResult

_CSV = "results/${scale}/heavy_tail_phases/tables/per_batch_size.csv"
DVC_PLOTS = [
    {"heavy_tail_alpha_vs_batch_size": {"template": "linear", "x": "batch_size",
                                        "y": {_CSV: ["fc1_alpha", "fc2_alpha"]}}},
    {"heavy_tail_softrank_vs_batch_size": {"template": "linear", "x": "batch_size",
                                           "y": {_CSV: ["fc1_mp_softrank"]}}},
    {"heavy_tail_accuracy_vs_batch_size": {"template": "linear", "x": "batch_size",
                                           "y": {_CSV: ["train_acc", "test_acc"]}}},
    # colour_by: a claimbench key, made into a template by claimbench.dvcgen (docs/dvc.md)
    {"heavy_tail_test_acc_vs_fc1_alpha": {
        "colour_by": "batch_size:O", "x": "fc1_alpha",
        "title": "Heavy tail: test accuracy vs FC1 alpha per run, by batch size",
        "y": {"results/${scale}/heavy_tail_phases/tables/per_run.csv": "test_acc"}}},
]


def figures(result: ClaimResult, ctx: Context) -> None:
    """FC1 ESDs with MP fits; α, soft rank and stable rank vs batch size; accuracies vs batch size."""
    table, runs = result.tables["per_batch_size"], result.tables["per_run"]
    esds = result.figure_data["esds"]  # {(layer, batch size): pooled eigenvalues}; none for a diverged size
    sizes = table["batch_size"].tolist()
    fig, axes = plotting.subplots(1, len(sizes), figsize=(3.0 * len(sizes), 2.8), squeeze=False)
    q = max(4096, 384) / 384
    for ax, (_, row) in zip(axes[0], table.iterrows()):
        ev = esds.get(("fc1", row["batch_size"]))
        if ev is None:  # diverged: no pooled ESD
            ax.set_title(f"bs {row['batch_size']}: {row['fc1_phase']}", fontsize=9)
            continue
        ev = ev[ev > 0]
        bins = np.logspace(np.log10(ev.min()), np.log10(ev.max()), 60)
        ax.hist(ev, bins=bins, density=True, alpha=0.6, label="ESD")
        s2 = row["fc1_W_scale"] ** 2  # MP fitted on λ' = λ·s², so ρ_raw(λ) = ρ'(λ·s²)·s²
        grid = np.logspace(np.log10(ev.min()), np.log10(ev.max()), 400)
        ax.plot(
            grid, spectral.mp_density(grid * s2, q, row["fc1_sigma_mp"] ** 2) * s2, color="C3", label="MP fit"
        )
        ax.set_xscale("log")
        ax.set_title(
            f"bs {row['batch_size']}: {row['fc1_phase']}\nα={row['fc1_alpha']:.2f}, "
            f"R_mp={row['fc1_mp_softrank']:.2f}",
            fontsize=9,
        )
        ax.set_xlabel("eigenvalue λ of WᵀW (FC1)")
    axes[0][0].set_ylabel("density")
    axes[0][0].legend(fontsize=8)
    plotting.save(fig, ctx.figures_dir / "fc1_esd_per_batch_size.png")

    fig, axes = plotting.subplots(1, 3, figsize=(12, 3.3))
    for ax, key, label in zip(
        axes,
        ("alpha", "mp_softrank", "stable_rank"),
        ("power-law α", "MP soft rank", "stable rank (per seed)"),
    ):
        for name, color in (("fc1", "C0"), ("fc2", "C1")):
            ax.scatter(runs["batch_size"], runs[f"{name}_{key}"], color=color, alpha=0.4, s=12)
            pooled = table[f"{name}_{key}"] / (table["n_seeds"] if key == "stable_rank" else 1)
            ax.plot(sizes, pooled, "o-", color=color, label=f"{name.upper()} (pooled over seeds)")
        ax.set_xscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel(label)
    axes[0].axhline(6, color="grey", ls=":", lw=1)
    axes[0].legend(fontsize=8)
    plotting.save(fig, ctx.figures_dir / "spectral_metrics_vs_batch_size.png")

    fig, ax = plotting.subplots(figsize=(4.5, 3.3))
    for split in ("train", "test"):
        ax.errorbar(
            sizes, table[f"{split}_acc"], yerr=table[f"{split}_acc_se"], marker="o", capsize=3, label=split
        )
    ax.set_xscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("accuracy (mean ± seed SE)")
    ax.legend()
    plotting.save(fig, ctx.figures_dir / "accuracy_vs_batch_size.png")
