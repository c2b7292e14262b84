"""EL2N pruning, figures: accuracy vs % pruned per score (the paper's figure 1 layout) and the
Spearman-ρ heatmap between the mean scores, drawn from the ClaimResult's tables; the accuracy figure shows
the card's paper numbers (Kirsch's JAX rerun of the paper's code, CIFAR-10) as hollow stars."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from claimbench import plotting
from claimbench.cards import load_card
from claimbench.claims.el2n_pruning import METHOD_LABEL
from claimbench.contract import Context
from claimbench.results import ClaimResult

DVC_PLOTS = [  # colour_by/marks: claimbench keys, made into a template by claimbench.dvcgen (docs/dvc.md)
    {"el2n_accuracy_vs_fraction_pruned": {
        "colour_by": "method", "marks": "lines", "x": "fraction_pruned",
        "title": "EL2N: test accuracy (%) vs fraction pruned, by scoring method",
        "y": {"results/${scale}/el2n_pruning/tables/accuracy.csv": "test_acc"}}},
]


def figures(result: ClaimResult, ctx: Context) -> None:
    stats = result.statistics
    paper = plotting.paper_series(load_card(ctx.claim_id).raw.get("paper_numbers", []), "test_acc", "percent_pruned")
    plot_accuracy(result.tables["accuracy"], stats["full_data_acc"], stats["full_data_acc_se"],
                  ctx.figures_dir / "accuracy_vs_pruned.png", ctx.scale, paper)
    corr = result.tables["score_rank_correlations"].set_index("score").rename_axis(None)
    plot_correlations(corr, ctx.figures_dir / "rank_correlation_heatmap.png")


def plot_accuracy(acc: pd.DataFrame, full: float, se: float, path: Path, scale: str,
                  paper: list[plotting.PaperSeries] = ()) -> None:
    """Test accuracy (%) vs fraction pruned per score, ± 1 SE, over the full-data mean ± 1 SE band; the
    paper's numbers (`paper`, x in % pruned) as hollow stars in the colour of the same score, dodged
    sideways by 1.5 % pruned per score so that close values stay apart."""
    fig, ax = plotting.subplots(figsize=plotting.figsize(plotting.COLUMN_IN, 0.85))
    colours = {}
    for method, grp in acc.groupby("method", sort=False):
        bars = ax.errorbar(100 * grp["fraction_pruned"], grp["test_acc"], yerr=grp["se"].fillna(0), marker="o",
                           capsize=2, label=METHOD_LABEL.get(method, method))
        colours[method] = bars.lines[0].get_color()
    ax.axhspan(full - se, full + se, color="grey", alpha=0.2, lw=0, label="full data ± 1 SE")
    shown = [m for m in colours if any(s.series == m for s in paper)]  # stars side by side: ±1.5 % pruned
    plotting.draw_paper(ax, [s for s in paper if s.series in colours], colors=colours,
                        dodge={m: 1.5 * (i - (len(shown) - 1) / 2) for i, m in enumerate(shown)})
    ax.set(xlabel="% of training data pruned", ylabel="test accuracy (%)", title=f"EL2N data pruning ({scale})")
    plotting.figure_legend(fig, [ax], ncol=2)
    plotting.save(fig, path)


def plot_correlations(corr: pd.DataFrame, path: Path) -> None:
    """Annotated heatmap of a square Spearman-ρ table (index = columns = score names)."""
    import seaborn as sns

    fig, ax = plotting.subplots(figsize=plotting.figsize(plotting.COLUMN_IN, 0.85))
    sns.heatmap(corr, annot=True, fmt=".2f", vmin=-1, vmax=1, cmap="vlag", ax=ax, square=True)
    ax.set_title("Spearman ρ between mean scores")
    plotting.save(fig, path)
