"""One paper-ready figure style for the whole suite, an atomic PNG + PDF saver, readable log axes, and the
paper's own numbers (a card's ``paper_numbers`` entries with a ``plot`` field) drawn beside ours.

Sizes: `COLUMN_IN` (3.5 in, one column) for one panel, `TWO_COLUMN_IN` (7.1 in) for a row of panels; text
is never below `MIN_FONT_PT` (7 pt) at that size, so a figure placed at its natural width is readable.

A card's paper number becomes a plot overlay through an optional ``plot`` mapping in its entry::

    - what: FC1 MP soft rank (pooled over 10 seeds)
      value: 1.00 (bs 1000) ... 0.29 (4)
      source: digitised notebook figure, spec 1 §A.5 [D]
      plot: {x: batch_size, y: fc1_mp_softrank, points: [[1000, 1.0], [4, 0.29]]}   # or level: 6.3
            # points may also map our series name -> [[x, y], ...]; series: the series (or a list of them)
            # that a points list or a level belongs to; points: [] = the paper gives no number (the figure
            # writes the label as a note, so a reader sees that it was looked for);
            # label: the legend text (default "paper (<source>)")

Figures draw them as hollow stars (points) or a black dash-dot line (level), labelled as the paper's.
"""

from __future__ import annotations

import logging
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np

from claimbench.atomic import atomic_file

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib import ticker  # noqa: E402

from claimbench.errors import ClaimbenchError  # noqa: E402

logging.getLogger("fontTools").setLevel(logging.WARNING)  # its PDF font subsetting logs every table at INFO

COLUMN_IN = 3.5         # single-column figure width (inches)
TWO_COLUMN_IN = 7.1     # two-column (full text width) figure width (inches)
MIN_FONT_PT = 7.0       # no text smaller than this
FORMATS = ("png", "pdf")
PAPER_STYLE = {"marker": "*", "ms": 8, "mfc": "none", "mew": 1.1, "ls": "none", "color": "black", "zorder": 5}
PAPER_LEVEL_STYLE = {"ls": "-.", "lw": 1.1, "color": "black", "zorder": 5}


class PlotError(ClaimbenchError, ValueError):
    """A card's paper_numbers `plot` field that cannot be drawn."""


def use_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind")
    plt.rcParams.update({
        "figure.dpi": 120, "savefig.dpi": 300, "figure.autolayout": False, "figure.constrained_layout.use": True,
        "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
        "legend.fontsize": 7, "legend.title_fontsize": 7, "lines.linewidth": 1.2, "lines.markersize": 4,
        "pdf.fonttype": 42, "ps.fonttype": 42,  # TrueType in the PDF: journals reject Type 3 fonts
    })


def subplots(*args, **kwargs):
    use_style()
    return plt.subplots(*args, **kwargs)


def figsize(width: float = COLUMN_IN, aspect: float = 0.75) -> tuple[float, float]:
    """(width, height) in inches: height = aspect · width."""
    return width, round(width * aspect, 2)


def enforce_min_font(fig, min_pt: float = MIN_FONT_PT) -> int:
    """Raise every text of fig below min_pt to min_pt; returns how many were raised."""
    raised = 0
    for text in fig.findobj(matplotlib.text.Text):
        if text.get_text() and text.get_fontsize() < min_pt:
            text.set_fontsize(min_pt)
            raised += 1
    return raised


def _write_atomic(fig, target: Path, fmt: str) -> None:
    """savefig through claimbench.atomic: a reader never sees half a file, a symlink at target is replaced by
    the file (its old target is left alone), and a full or read-only disk is one StorageError line."""
    metadata = {"Software": None} if fmt == "png" else {"Creator": None, "Producer": None, "CreationDate": None}
    with atomic_file(target, "wb") as f:
        fig.savefig(f, format=fmt, bbox_inches="tight", pad_inches=0.02, metadata=metadata)


def save(fig, path: Path) -> Path:
    """Write fig as path.png and path.pdf (any suffix of path is replaced; parents created), each atomically,
    without timestamp metadata (reruns give the same bytes); closes fig. Returns the PNG's path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    enforce_min_font(fig)
    try:
        for fmt in FORMATS:
            _write_atomic(fig, path.with_suffix(f".{fmt}"), fmt)
    finally:
        plt.close(fig)
    return path.with_suffix(".png")


def log_axis(ax, axis: str = "x", ticks=None, extra=(), label_in: float = 0.3, plain_below: float = 1.5) -> None:
    """Log scale on `axis` whose tick labels cannot collide. With `ticks` (e.g. our batch sizes): labels
    '{:g}' at those ticks, then at the `extra` ones (e.g. the paper's sizes), skipping any label closer than
    label_in inches to one already placed (skipped ones stay as unlabelled ticks). Without: decades labelled
    10^k; a range under `plain_below` decades labels 1, 2 and 5 x 10^k as plain numbers (or, if fewer than
    two fall in it, about 3 evenly spaced plain numbers); other minor ticks unlabelled.
    Call after the data are drawn (reads the limits)."""
    getattr(ax, f"set_{axis}scale")("log")
    a = getattr(ax, f"{axis}axis")
    lo, hi = sorted(getattr(ax, f"get_{axis}lim")())
    if ticks is not None:
        first = sorted({float(t) for t in ticks if t > 0})
        every = sorted(set(first) | {float(t) for t in extra if t > 0})
        fig_w, fig_h = ax.figure.get_size_inches()
        pos = ax.get_position()
        length_in = pos.width * fig_w if axis == "x" else pos.height * fig_h
        per_decade = length_in / max(np.log10(max(hi, every[-1]) / min(lo, every[0])), 1e-9)
        kept: list[float] = []
        for t in [*first, *sorted(set(every) - set(first), reverse=True)]:
            if all(abs(np.log10(t / k)) * per_decade >= label_in for k in kept):
                kept.append(t)
        kept.sort()
        ticks = every
        a.set_major_locator(ticker.FixedLocator(kept))
        a.set_major_formatter(ticker.FixedFormatter([f"{t:g}" for t in kept]))
        a.set_minor_locator(ticker.FixedLocator([t for t in ticks if t not in kept]))
        a.set_minor_formatter(ticker.NullFormatter())
        return
    if 0 < lo < hi and np.log10(hi / lo) < plain_below:  # 1, 2, 5 x 10^k as major ticks
        nice = [m * 10.0 ** k for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
                for m in (1, 2, 5) if lo <= m * 10.0 ** k <= hi]
        a.set_major_locator(ticker.FixedLocator(nice))
        a.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        if len(nice) < 2:  # a range too narrow for any 1-2-5 pair: evenly spaced plain numbers
            a.set_major_locator(ticker.MaxNLocator(nbins=3))
            a.set_major_formatter(ticker.ScalarFormatter(useOffset=False))
    else:
        a.set_major_locator(ticker.LogLocator(base=10, numticks=6))
        a.set_major_formatter(ticker.LogFormatterSciNotation(labelOnlyBase=True))
    a.set_minor_locator(ticker.LogLocator(base=10, subs="auto", numticks=12))
    a.set_minor_formatter(ticker.NullFormatter())


@dataclass(frozen=True)
class PaperSeries:
    """The paper's numbers for one quantity: points [(x, y), ...] or a horizontal level, with its legend text."""
    y: str
    x: str | None
    series: str | None
    points: tuple[tuple[float, float], ...]
    level: float | None
    label: str


def paper_series(paper_numbers: list[dict], y: str, x: str | None = None) -> list[PaperSeries]:
    """The card's paper numbers that plot quantity y (and x, if given): one PaperSeries per series.
    PlotError naming the entry for a malformed `plot` field."""
    out = []
    for i, entry in enumerate(paper_numbers or []):
        spec = entry.get("plot") if isinstance(entry, dict) else None
        if spec is None:
            continue
        where = f"paper_numbers #{i + 1} ({entry.get('what', '?')!s:.40})"
        if not isinstance(spec, dict) or "y" not in spec or ("points" in spec) == ("level" in spec):
            raise PlotError(f"{where}: plot must be a mapping with y and exactly one of points or level; "
                            "see claimbench.plotting's docstring.")
        if spec["y"] != y or (x is not None and spec.get("x") not in (None, x)):
            continue
        label = str(spec.get("label") or f"paper ({entry.get('source', 'card')})")
        names = spec.get("series")
        names = names if isinstance(names, list) else [names]  # one series, several, or None (any)
        if "level" in spec:
            out += [PaperSeries(y, spec.get("x"), n, (), _number(spec["level"], where), label) for n in names]
            continue
        pts = spec["points"]
        if isinstance(pts, list) and not pts:  # the paper gives no number: the figure says so
            out.append(PaperSeries(y, spec.get("x"), None, (), None, str(spec.get("label") or
                                   f"paper ({entry.get('source', 'card')}): {entry.get('value', 'no number')}")))
            continue
        groups = pts.items() if isinstance(pts, dict) else [(n, pts) for n in names]
        for series, rows in groups:
            try:
                points = tuple((_number(a, where), _number(b, where)) for a, b in rows)
            except (TypeError, ValueError):
                raise PlotError(f"{where}: plot points must be [[x, y], ...] numbers; got {rows!r}.") from None
            out.append(PaperSeries(y, spec.get("x"), None if series is None else str(series), points, None, label))
    return out


def _number(v, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PlotError(f"{where}: plot value {v!r} is not a number.")
    return float(v)


def draw_paper(ax, series: list[PaperSeries], only: str | None = None, x_scale: float = 1.0,
               colors: dict | None = None, dodge: dict | None = None, **style) -> bool:
    """Draw the paper's points (hollow stars) and levels (dash-dot line) on ax, black unless `colors` maps
    their series to our series' colour (then one black legend entry stands for them all); `only` keeps one
    series (and those without one); x_scale multiplies x (e.g. 100 for fractions -> %); dodge: series -> x
    shift (data units) so stacked stars stay apart. True if any drawn."""
    drawn = set()
    for s in series:
        if only is not None and s.series not in (None, only):
            continue
        colour = (colors or {}).get(s.series)
        label = s.label if colour is None else "_nolegend_"
        if s.level is None and not s.points:  # no number: a note in the axes' top-left corner, above the data
            width_in = ax.get_position().width * ax.figure.get_size_inches()[0]
            note = textwrap.fill(s.label, max(20, int(width_in * 72 / (0.55 * MIN_FONT_PT))))  # ~0.55 em a char
            if ax.get_yscale() == "linear":  # headroom: the data's top stays below the note
                lo, hi = ax.get_ylim()
                ax.set_ylim(lo, lo + (hi - lo) / (1 - 0.09 * (note.count("\n") + 1) - 0.02))
            ax.text(0.01, 0.98, note, transform=ax.transAxes, va="top", ha="left", style="italic",
                    fontsize=MIN_FONT_PT, bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1})
        elif s.level is not None:
            ax.axhline(s.level, label=label, **{**PAPER_LEVEL_STYLE, **style, **({"color": colour} if colour else {})})
        else:
            xs, ys = zip(*s.points)
            shift = (dodge or {}).get(s.series, 0.0)
            ax.plot([x_scale * v + shift for v in xs], ys, label=label,
                    **{**PAPER_STYLE, **style, **({"color": colour} if colour else {})})
        if colour is not None and s.label not in drawn and (s.points or s.level is not None):  # black legend proxy
            proxy = PAPER_LEVEL_STYLE if s.level is not None else PAPER_STYLE
            ax.plot([], [], label=s.label, **{**proxy, **{k: v for k, v in style.items() if k != "clip_on"}})
        drawn.add(s.label)
    return bool(drawn)


def dedupe_legend(ax, **kwargs):
    """A legend with each label once (the paper's markers repeat their label per series)."""
    handles, labels = ax.get_legend_handles_labels()
    seen = {}
    for h, lab in zip(handles, labels):
        seen.setdefault(lab, h)
    return ax.legend(list(seen.values()), list(seen), **kwargs)


def figure_legend(fig, axes, ncol: int | None = None, **kwargs):
    """One legend below all panels (each label once, in the order first drawn, the paper's last), outside
    the axes so it hides no data; fewer columns than `ncol` (default up to 3) where it would be wider than
    the figure."""
    seen = {}
    for ax in getattr(axes, "flat", axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    seen = dict(sorted(seen.items(), key=lambda kv: kv[0].startswith("paper")))  # the paper's entries last
    ncol = ncol or min(len(seen), 3)
    renderer = fig.canvas.get_renderer()
    while True:
        legend = fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncol=ncol, frameon=False,
                            **kwargs)
        if ncol == 1 or legend.get_window_extent(renderer).width <= fig.bbox.width:
            return legend
        legend.remove()
        ncol -= 1
