"""Figures of heavy_tail_phases, redrawn from its ClaimResult (tables + pooled ESDs in figure_data); the
soft-rank panel and the accuracy figure show the paper's digitised numbers (card paper_numbers) beside ours."""

from __future__ import annotations

import math

import numpy as np

from claimbench import plotting
from claimbench.cards import load_card
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
    paper = load_card(ctx.claim_id).raw.get("paper_numbers", [])
    plot_esds(table, result.figure_data["esds"], ctx.figures_dir / "fc1_esd_per_batch_size.png")
    plot_spectral(table, runs, paper, ctx.figures_dir / "spectral_metrics_vs_batch_size.png")
    plot_accuracy(table, paper, ctx.figures_dir / "accuracy_vs_batch_size.png")


def plot_esds(table, esds: dict, path) -> None:
    """One panel per batch size (4 to a row, two-column width): the pooled FC1 ESD (log-binned) and its MP fit.
    esds: {(layer, batch size): pooled eigenvalues}; none for a diverged size."""
    sizes = table["batch_size"].tolist()
    ncols = min(4, len(sizes))
    nrows = math.ceil(len(sizes) / ncols)
    fig, axes = plotting.subplots(nrows, ncols, figsize=(plotting.TWO_COLUMN_IN, 1.75 * nrows), squeeze=False)
    q = max(4096, 384) / 384
    for ax in axes.flat[len(sizes):]:
        ax.set_visible(False)
    for ax, (_, row) in zip(axes.flat, table.iterrows()):
        ev = esds.get(("fc1", row["batch_size"]))
        if ev is None:  # diverged: no pooled ESD
            ax.set_title(f"bs {row['batch_size']}: {row['fc1_phase']}")
            continue
        ev = ev[ev > 0]
        bins = np.logspace(np.log10(ev.min()), np.log10(ev.max()), 60)
        ax.hist(ev, bins=bins, density=True, alpha=0.6, label="ESD")
        s2 = row["fc1_W_scale"] ** 2  # MP fitted on λ' = λ·s², so ρ_raw(λ) = ρ'(λ·s²)·s²
        grid = np.logspace(np.log10(ev.min()), np.log10(ev.max()), 400)
        ax.plot(grid, spectral.mp_density(grid * s2, q, row["fc1_sigma_mp"] ** 2) * s2, color="C3", label="MP fit")
        plotting.log_axis(ax, "x")
        ax.set_title(f"bs {row['batch_size']}: {row['fc1_phase']}\n"
                     f"α={row['fc1_alpha']:.2f}, R_mp={row['fc1_mp_softrank']:.2f}")
    for ax in axes[-1]:
        ax.set_xlabel("eigenvalue λ of WᵀW (FC1)")
    for ax in axes[:, 0]:
        ax.set_ylabel("density")
    axes[0][0].legend()
    plotting.save(fig, path)


def plot_spectral(table, runs, paper: list[dict], path) -> None:
    """α, MP soft rank and stable rank vs batch size (log x): seeds as dots, pooled as lines; the soft-rank
    panel adds the paper's FC1 values (hollow stars)."""
    sizes = table["batch_size"].tolist()
    ours_paper = plotting.paper_series(paper, "fc1_mp_softrank", "batch_size")
    fig, axes = plotting.subplots(1, 3, figsize=(plotting.TWO_COLUMN_IN, 2.5), sharex=True)
    for ax, key, label in zip(
        axes,
        ("alpha", "mp_softrank", "stable_rank"),
        ("power-law α", "MP soft rank", "stable rank (per seed)"),
    ):
        for name, color in (("fc1", "C0"), ("fc2", "C1")):
            ax.scatter(runs["batch_size"], runs[f"{name}_{key}"], color=color, alpha=0.4, s=8)
            pooled = table[f"{name}_{key}"] / (table["n_seeds"] if key == "stable_rank" else 1)
            ax.plot(sizes, pooled, "o-", color=color, label=f"{name.upper()} (pooled over seeds; dots: seeds)")
        if key == "mp_softrank":
            plotting.draw_paper(ax, ours_paper, clip_on=False)
        ax.set_xlabel("batch size")
        ax.set_ylabel(label)
    axes[0].axhline(6, color="grey", ls=":", lw=1, label="α = 6 (random-like above)")
    plotting.log_axis(axes[0], "x", ticks=sizes, extra=[x for s in ours_paper for x, _ in s.points])
    plotting.figure_legend(fig, axes)
    plotting.save(fig, path)


def plot_accuracy(table, paper: list[dict], path) -> None:
    """Train and test accuracy (mean ± seed SE) vs batch size, with the paper's test accuracy (hollow stars;
    CIFAR-10, so its level is not ours to match: the trend is)."""
    sizes = table["batch_size"].tolist()
    fig, ax = plotting.subplots(figsize=plotting.figsize(plotting.COLUMN_IN, 0.72))
    for split in ("train", "test"):
        ax.errorbar(sizes, table[f"{split}_acc"], yerr=table[f"{split}_acc_se"], marker="o", capsize=2, label=split)
    ours_paper = plotting.paper_series(paper, "test_acc", "batch_size")
    plotting.draw_paper(ax, ours_paper, clip_on=False)
    plotting.log_axis(ax, "x", ticks=sizes, extra=[x for s in ours_paper for x, _ in s.points])
    ax.set_xlabel("batch size")
    ax.set_ylabel("accuracy (mean ± seed SE)")
    plotting.figure_legend(fig, [ax])
    plotting.save(fig, path)
