"""Figures of activation sparsity, drawn from the ClaimResult: nnz% curves (with the paper's ViT-B/16 and
T5-Base levels from the card), random labels/inputs, Top-k."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from claimbench import plotting
from claimbench.cards import load_card
from claimbench.claims.activation_sparsity.analyse import LABELS
from claimbench.contract import Context
from claimbench.results import ClaimResult

DVC_PLOTS = [  # colour_by: a claimbench key, made into a template by claimbench.dvcgen (docs/dvc.md)
    {"activation_sparsity_nonzero_vs_step": {
        "colour_by": "run", "x": "step",
        "title": "Activation sparsity: nonzero activations (%) vs step, by model/variant (all seeds, probes)",
        "y": {"results/${scale}/activation_sparsity/tables/curves.csv": "nnz_percent"}}},
]


def figures(result: ClaimResult, ctx: Context) -> None:
    """nnz_vs_step.png, random_labels_inputs.png, topk_reliability.png in ctx.figures_dir."""
    paper = plotting.paper_series(load_card(ctx.claim_id).raw.get("paper_numbers", []), "nnz_percent")
    plot_curves(result.figure_data["layer_curves"], ctx.figures_dir / "nnz_vs_step.png", paper)
    plot_bars(result.statistics, ctx.figures_dir / "random_labels_inputs.png")
    plot_reliability(result.figure_data["reliability"], ctx.figures_dir / "topk_reliability.png")


def plot_curves(d: pd.DataFrame, path: Path, paper: list[plotting.PaperSeries] = ()) -> None:
    """nnz% vs training step per layer (log-log), one panel per model run (3 to a row, two-column width);
    test probe solid, train dashed; the paper's level for the matching model (`paper`) black dash-dot.
    d: per-token MLP layers of the long curve table (run, step, probe, layer, nnz_percent), one seed."""
    panels = [r for r in ("vit_small", "vit_large", "char_lm", "mixer", "mlp") if r in set(d.run)]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plotting.subplots(nrows, ncols, figsize=(plotting.TWO_COLUMN_IN, 2.0 * nrows + 0.4), squeeze=False,
                                  sharey=True)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, run in zip(axes.flat, panels):
        for probe, style in (("test", "-"), ("train", "--")):
            for layer, g in d[(d.run == run) & (d.probe == probe)].groupby("layer"):
                ax.plot(g.step + 1, g.nnz_percent, style, color=f"C{layer % 10}",
                        label=f"layer {layer}" if probe == "test" else None)
        plotting.draw_paper(ax, paper, only=run)
        ax.set(title=LABELS[run], xlabel="training step + 1")
        plotting.log_axis(ax, "x")
    for ax in axes[:, 0]:
        plotting.log_axis(ax, "y", plain_below=3)
        ax.set_ylabel("nonzero %")
    ax.plot([], [], "k-", label="test data")
    ax.plot([], [], "k--", label="train data")
    plotting.figure_legend(fig, axes, ncol=4)
    plotting.save(fig, path)


def plot_bars(stats: dict, path: Path) -> None:
    """Init vs end layer-mean nnz% (own training data) of the ViT with true labels, random labels, random inputs."""
    names = ["normal", "random labels", "random inputs"]
    nan = float("nan")  # a random-label run skipped at this scale (card v5 quick): an empty bar
    init = [stats.get(f"{p}_init_nnz_train", nan) for p in ("vit", "rand_labels", "rand_inputs")]
    end = [stats.get(f"{p}_end_nnz_train", nan) for p in ("vit", "rand_labels", "rand_inputs")]
    fig, ax = plotting.subplots(figsize=plotting.figsize(plotting.COLUMN_IN, 0.75))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], init, 0.4, label="init")
    ax.bar([x + 0.2 for x in xs], end, 0.4, label="end")
    ax.set(xticks=list(xs), xticklabels=names, ylabel="layer-mean nonzero %\n(own train data)",
           title="ViT small: sparsity vs data")
    plotting.figure_legend(fig, [ax], ncol=2)
    plotting.save(fig, path)


def plot_reliability(runs: dict[str, dict], path: Path) -> None:
    """Reliability diagram of the base and (if run) Top-k ViT; runs: name -> {reliability: bins, ece}."""
    fig, ax = plotting.subplots(figsize=plotting.figsize(plotting.COLUMN_IN, 0.9))
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    for name in runs:
        rel = runs[name]["reliability"]
        pts = [(c, a) for c, a, n in zip(rel["confidence"], rel["accuracy"], rel["count"]) if n > 0]
        ax.plot(*zip(*pts), "o-", label=f"{LABELS[name]} (ECE {runs[name]['ece']:.3f})")
    ax.set(xlabel="confidence (15 bins)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title="Top-k reliability")
    ax.legend(loc="upper left")
    plotting.save(fig, path)
