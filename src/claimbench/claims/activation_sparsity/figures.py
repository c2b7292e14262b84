"""Figures of activation sparsity, drawn from the ClaimResult: nnz% curves, random labels/inputs, Top-k."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from claimbench import plotting
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
    plot_curves(result.figure_data["layer_curves"], ctx.figures_dir / "nnz_vs_step.png")
    plot_bars(result.statistics, ctx.figures_dir / "random_labels_inputs.png")
    plot_reliability(result.figure_data["reliability"], ctx.figures_dir / "topk_reliability.png")


def plot_curves(d: pd.DataFrame, path: Path) -> None:
    """nnz% vs training step per layer (log y), one panel per model run; test probe solid, train dashed.
    d: per-token MLP layers of the long curve table (run, step, probe, layer, nnz_percent), one seed."""
    panels = [r for r in ("vit_small", "vit_large", "char_lm", "mixer", "mlp") if r in set(d.run)]
    fig, axes = plotting.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), sharey=True)
    for ax, run in zip(axes, panels):
        for probe, style in (("test", "-"), ("train", "--")):
            for layer, g in d[(d.run == run) & (d.probe == probe)].groupby("layer"):
                ax.plot(g.step + 1, g.nnz_percent, style, color=f"C{layer % 10}",
                        label=f"layer {layer}" if probe == "test" else None)
        ax.set(xscale="log", yscale="log", title=LABELS[run], xlabel="training step + 1")
        ax.legend(fontsize=6)
    axes[0].set_ylabel("nonzero % (solid test, dashed train)")
    plotting.save(fig, path)


def plot_bars(stats: dict, path: Path) -> None:
    """Init vs end layer-mean nnz% (own training data) of the ViT with true labels, random labels, random inputs."""
    names = ["normal", "random labels", "random inputs"]
    init = [stats["vit_init_nnz_train"], stats["rand_labels_init_nnz_train"], stats["rand_inputs_init_nnz_train"]]
    end = [stats["vit_end_nnz_train"], stats["rand_labels_end_nnz_train"], stats["rand_inputs_end_nnz_train"]]
    fig, ax = plotting.subplots(figsize=(5, 3.4))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], init, 0.4, label="init")
    ax.bar([x + 0.2 for x in xs], end, 0.4, label="end")
    ax.set(xticks=list(xs), xticklabels=names, ylabel="layer-mean nonzero % (own train data)",
           title="ViT small: sparsity vs data")
    ax.legend()
    plotting.save(fig, path)


def plot_reliability(runs: dict[str, dict], path: Path) -> None:
    """Reliability diagram of the base and (if run) Top-k ViT; runs: name -> {reliability: bins, ece}."""
    fig, ax = plotting.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    for name in runs:
        rel = runs[name]["reliability"]
        pts = [(c, a) for c, a, n in zip(rel["confidence"], rel["accuracy"], rel["count"]) if n > 0]
        ax.plot(*zip(*pts), "o-", label=f"{LABELS[name]} (ECE {runs[name]['ece']:.3f})")
    ax.set(xlabel="confidence (15 bins)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title="Top-k reliability")
    ax.legend(fontsize=7)
    plotting.save(fig, path)
