"""Figure side of simpson_paradox: Simpson plots (metric vs test accuracy by depth) and pooled vs
within-depth |τ| bars, drawn from the result's `corpus` and `associations` tables; the bars carry the card's
note that the paper's table values were not obtained (card paper_numbers)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from claimbench import plotting
from claimbench.cards import load_card
from claimbench.claims.simpson_paradox.analyse import METRIC_CLASS, PRIMARY_SCALE, PRIMARY_SHAPE
from claimbench.contract import Context
from claimbench.results import ClaimResult

DVC_PLOTS = [  # colour_by/marks: claimbench keys, made into a template by claimbench.dvcgen (docs/dvc.md)
    {"simpson_log_spectral_norm_vs_test_acc": {
        "colour_by": "conv_layers:O", "marks": "fits", "x": "log_spectral_norm",
        "title": "Simpson: test accuracy vs log spectral norm by depth (lines: per depth; dashed: pooled)",
        "y": {"results/${scale}/simpson_paradox/tables/corpus.csv": "test_acc"}}},
    {"simpson_alpha_vs_test_acc": {
        "colour_by": "conv_layers:O", "marks": "fits", "x": "alpha",
        "title": "Simpson: test accuracy vs alpha by depth (lines: per depth; dashed: pooled)",
        "y": {"results/${scale}/simpson_paradox/tables/corpus.csv": "test_acc"}}},
]


def simpson_figure(df: pd.DataFrame, metric: str, path) -> None:
    """Metric vs test accuracy, points coloured by depth, one least-squares line per depth and one pooled.
    Models whose metric is undefined (NaN) are left out of the plot (the statistics read them as NaN)."""
    df = df[np.isfinite(df[metric])]
    fig, ax = plotting.subplots(figsize=plotting.figsize(plotting.COLUMN_IN, 0.85))
    depths = sorted(df["conv_layers"].unique())
    palette = plotting.sns.color_palette("colorblind", len(depths))
    for colour, d in zip(palette, depths):
        sub = df[df["conv_layers"] == d]
        ax.scatter(sub[metric], sub["test_acc"], color=colour, s=22, label=f"{d} conv layers")
        if sub[metric].nunique() > 1:
            b, a = np.polyfit(sub[metric], sub["test_acc"], 1)
            xs = np.linspace(sub[metric].min(), sub[metric].max(), 20)
            ax.plot(xs, a + b * xs, color=colour)
    if df[metric].nunique() > 1:
        b, a = np.polyfit(df[metric], df["test_acc"], 1)
        xs = np.linspace(df[metric].min(), df[metric].max(), 20)
        ax.plot(xs, a + b * xs, color="black", ls="--", label="pooled")
    ax.set(xlabel=f"mean {metric} ({METRIC_CLASS[metric]})", ylabel="test accuracy",
           title=f"Simpson plot: {metric}")
    ax.legend()
    plotting.save(fig, path)


def tau_figure(assoc: pd.DataFrame, path, paper: list[plotting.PaperSeries] = ()) -> None:
    """|τ| pooled vs mean within-depth |τ| for every metric (bars), with the paper's numbers or the note
    that there are none (`paper`)."""
    t = assoc[assoc["statistic"] == "tau"]
    long = pd.concat([pd.DataFrame({"metric": t["metric"], "which": "pooled |τ|", "value": t["pooled"].abs()}),
                      pd.DataFrame({"metric": t["metric"], "which": "mean within-depth |τ|",
                                    "value": t["mean_within_abs"]})])
    fig, ax = plotting.subplots(figsize=(plotting.TWO_COLUMN_IN, 2.6))
    plotting.sns.barplot(long, x="metric", y="value", hue="which", ax=ax)
    ax.set(xlabel="", ylabel="Kendall |τ| vs test accuracy", title="pooled vs within-depth")
    plotting.draw_paper(ax, list(paper))
    ax.get_legend().remove()
    plt = plotting.plt
    plt.setp(ax.get_xticklabels(), rotation=25, ha="right", rotation_mode="anchor")
    plotting.figure_legend(fig, [ax], ncol=2)
    plotting.save(fig, path)


def figures(result: ClaimResult, ctx: Context) -> None:
    """simpson_<metric>.png for the primary scale and shape metric, and tau_pooled_vs_within.png."""
    df = result.tables["corpus"]
    simpson_figure(df, PRIMARY_SCALE, ctx.figures_dir / f"simpson_{PRIMARY_SCALE}.png")
    simpson_figure(df, PRIMARY_SHAPE, ctx.figures_dir / f"simpson_{PRIMARY_SHAPE}.png")
    paper = plotting.paper_series(load_card(ctx.claim_id).raw.get("paper_numbers", []), "kendall_tau")
    tau_figure(result.tables["associations"], ctx.figures_dir / "tau_pooled_vs_within.png", paper)
