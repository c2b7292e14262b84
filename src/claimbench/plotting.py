"""One figure style for the whole suite (seaborn 'paper' context), and a saver that closes figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402


def use_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 120, "savefig.dpi": 150, "figure.autolayout": True})


def subplots(*args, **kwargs):
    use_style()
    return plt.subplots(*args, **kwargs)


def save(fig, path: Path) -> Path:
    """Write fig as PNG (parents created; no timestamp metadata, so reruns give the same bytes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path
