"""Neural collapse, figure side: NC1-3 against epoch at the largest width with the plateau window and lr
decays marked (nc_vs_epoch.png) and test accuracy against width per loss (accuracy_vs_width.png), drawn
from the ClaimResult's tables and figure_data, with the card's paper numbers (the early-training NC1 level;
the note that per-loss accuracies were not retrieved)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from claimbench import plotting
from claimbench.cards import load_card
from claimbench.claims.neural_collapse import LR_MILESTONES, SECONDARY_LS, VARIANT_ORDER
from claimbench.collapse_losses import LOSS_NAMES
from claimbench.contract import Context
from claimbench.results import ClaimResult

_HISTORY = "results/${scale}/neural_collapse/tables/nc_history.csv"
DVC_PLOTS = [  # colour_by/marks: claimbench keys, made into a template by claimbench.dvcgen (docs/dvc.md)
    *({f"neural_collapse_{nc}_vs_epoch": {
        "colour_by": "variant", "x": "epoch", "y": {_HISTORY: nc},
        "title": f"Neural collapse: {nc.upper()} vs epoch, by loss (all widths, seeds)"}}
      for nc in ("nc1", "nc2", "nc3")),
    {"neural_collapse_accuracy_vs_width": {
        "colour_by": "variant", "marks": "lines", "x": "width",
        "title": "Neural collapse: test accuracy (%, seed mean) vs width, by loss",
        "y": {"results/${scale}/neural_collapse/tables/accuracy.csv": "test_acc_mean"}}},
]


def variant_style(labels: dict[str, str]) -> dict[str, tuple[str, tuple]]:
    """variant -> (legend label, colour); the same in every figure."""
    import seaborn as sns

    colours = sns.color_palette("colorblind", len(VARIANT_ORDER))
    return {v: (labels[v], colours[i]) for i, v in enumerate(VARIANT_ORDER)}


def plot_nc_curves(hist: pd.DataFrame, style: dict, width: float, phases: dict[str, int], epochs: int,
                   path: Path, paper: list[plotting.PaperSeries] = ()) -> None:
    """Seed-mean NC1, NC2, NC3 (log) against epoch (log) per loss variant at `width`; shaded: regime R2's
    plateau window (the last quarter of the full-lr phase), dotted: the lr decays; the paper's numbers for
    nc1/nc2/nc3 (`paper`) black dash-dot."""
    h = hist[hist["width"] == width].groupby(["variant", "epoch"])[["nc1", "nc2", "nc3"]].mean().reset_index()
    fig, axes = plotting.subplots(1, 3, figsize=(plotting.TWO_COLUMN_IN, 2.5))
    for ax, m, title in zip(axes, ("nc1", "nc2", "nc3"), ("NC1  tr(Σ_W Σ_B⁺)/K", "NC2  classifier–ETF distance",
                                                          "NC3  self-duality distance")):
        for variant in [v for v in VARIANT_ORDER if v in set(h["variant"])]:
            g = h[h["variant"] == variant]
            label, colour = style[variant]
            ax.plot(g["epoch"], g[m], marker="o", ms=2.5, color=colour, label=label,
                    ls="--" if variant == SECONDARY_LS else "-")
        ax.axvspan(phases["window"], phases["decay"], color="0.9", zorder=0, label="R2 plateau window")
        for frac in LR_MILESTONES:
            ax.axvline(frac * epochs, color="0.5", ls=":", lw=1)
        plotting.draw_paper(ax, [s for s in paper if s.y == m])
        ax.set(xlabel="epoch", title=title)
        plotting.log_axis(ax, "x")
        plotting.log_axis(ax, "y")
    axes[-1].plot([], [], color="0.5", ls=":", lw=1, label="lr decay")
    plotting.figure_legend(fig, axes, ncol=4, title=f"width {width:g}, seed mean")
    plotting.save(fig, path)


def plot_accuracy(acc: pd.DataFrame, style: dict, path: Path, paper: list[plotting.PaperSeries] = ()) -> None:
    """Seed-mean test accuracy (%, ± seed SE) against width multiplier (log) for the four losses, with the
    paper's numbers or the note that there are none (`paper`)."""
    fig, ax = plotting.subplots(figsize=plotting.figsize(plotting.COLUMN_IN, 0.85))
    for variant in LOSS_NAMES:
        g = acc[acc["variant"] == variant].sort_values("width")
        label, colour = style[variant]
        ax.errorbar(g["width"], g["test_acc_mean"], yerr=g["test_acc_se"].fillna(0), marker="o", capsize=2,
                    color=colour, label=label)
    plotting.draw_paper(ax, list(paper))
    ax.set(xlabel="width multiplier", ylabel="test accuracy (%, ± seed SE)", title="test accuracy per loss")
    plotting.log_axis(ax, "x", ticks=sorted(acc["width"].unique()))
    plotting.figure_legend(fig, [ax], ncol=2)
    plotting.save(fig, path)


def figures(result: ClaimResult, ctx: Context) -> None:
    """Draw both figures into ctx.figures_dir."""
    style = variant_style(result.figure_data["variant_labels"])
    paper = load_card(ctx.claim_id).raw.get("paper_numbers", [])
    nc_paper = [s for m in ("nc1", "nc2", "nc3") for s in plotting.paper_series(paper, m)]
    plot_nc_curves(result.tables["nc_history"], style, result.statistics["largest_width"],
                   result.figure_data["phases"], result.figure_data["epochs"], ctx.figures_dir / "nc_vs_epoch.png",
                   nc_paper)
    plot_accuracy(result.tables["accuracy"], style, ctx.figures_dir / "accuracy_vs_width.png",
                  plotting.paper_series(paper, "test_acc"))
