"""claimbench.plotting: PNG + PDF written atomically (a symlink replaced, never written through), the same
bytes on a rerun, no text under 7 pt, log-axis labels that never collide, and the cards' paper numbers
parsed and drawn beside ours."""

import os

import numpy as np
import pytest

from claimbench import plotting
from claimbench.cards import all_cards


def small_figure(width: float = plotting.COLUMN_IN):
    fig, ax = plotting.subplots(figsize=plotting.figsize(width))
    ax.plot([1, 2, 3], [3, 1, 2], label="ours")
    ax.set_title("tiny", fontsize=4)
    ax.legend(fontsize=5)
    return fig, ax


def test_save_writes_png_and_pdf_with_the_same_bytes_on_a_rerun(tmp_path):
    out = plotting.save(small_figure()[0], tmp_path / "sub" / "fig.png")
    assert out == tmp_path / "sub" / "fig.png"
    png, pdf = out.read_bytes(), out.with_suffix(".pdf").read_bytes()
    assert png.startswith(b"\x89PNG") and pdf.startswith(b"%PDF")
    assert b"CreationDate" not in pdf
    plotting.save(small_figure()[0], tmp_path / "sub" / "fig.png")
    assert out.read_bytes() == png and out.with_suffix(".pdf").read_bytes() == pdf
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["fig.pdf", "fig.png"]  # no temp files left


def test_save_replaces_a_symlink_and_leaves_its_target_alone(tmp_path):
    target = tmp_path / "elsewhere.png"
    target.write_bytes(b"keep me")
    link = tmp_path / "fig.png"
    link.symlink_to(target)
    plotting.save(small_figure()[0], link)
    assert not link.is_symlink() and link.read_bytes().startswith(b"\x89PNG")
    assert target.read_bytes() == b"keep me"


def test_save_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    fig, _ = small_figure()

    def broken(f, **kwargs):  # savefig into the atomic writer's open temp file, then fail half-way
        f.write(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        plotting.save(fig, tmp_path / "fig.png")
    assert os.listdir(tmp_path) == []


def test_no_text_below_the_minimum_size():
    fig, ax = small_figure()
    assert plotting.enforce_min_font(fig) >= 2  # the 4 pt title and the 5 pt legend text
    sizes = [t.get_fontsize() for t in fig.findobj(plotting.matplotlib.text.Text) if t.get_text()]
    assert min(sizes) >= plotting.MIN_FONT_PT
    plotting.plt.close(fig)


def tick_label_boxes(fig, ax):
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(r)) for t in ax.get_xticklabels() if t.get_text() and t.get_visible()]


PAPER_SIZES = [2, 4, 8, 16, 32, 50, 100, 150, 250, 500, 1000]  # the paper's batch sizes (spec 1)


@pytest.mark.parametrize("ours", [[10, 50], [2, 4, 8, 16], PAPER_SIZES])
def test_log_axis_labels_never_overlap_and_ours_come_first(ours):
    fig, axes = plotting.subplots(1, 3, figsize=(plotting.TWO_COLUMN_IN, 2.4), sharex=True)
    axes[0].plot(PAPER_SIZES, np.linspace(0, 1, len(PAPER_SIZES)))
    plotting.log_axis(axes[0], "x", ticks=ours, extra=PAPER_SIZES)
    boxes = tick_label_boxes(fig, axes[0])
    labels = [t for t, _ in boxes]
    assert {f"{t:g}" for t in ours[:1]} <= set(labels) and len(labels) >= 3
    spans = sorted((b.x0, b.x1) for _, b in boxes)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), f"overlapping tick labels {labels}"
    plotting.plt.close(fig)


def test_log_axis_without_ticks_labels_short_ranges_plainly():
    fig, ax = plotting.subplots(figsize=plotting.figsize(1.7))
    ax.plot([0.6, 2.6], [0, 1])
    plotting.log_axis(ax, "x")
    boxes = tick_label_boxes(fig, ax)
    assert [t for t, _ in boxes] == ["1", "2"]  # not 10^0 and overlapping 2x10^0 3x10^0 ...
    plotting.plt.close(fig)


def test_log_axis_labels_a_range_narrower_than_any_1_2_5_pair():
    fig, ax = plotting.subplots(figsize=plotting.figsize())
    ax.plot([1, 2], [0.2929, 0.2944])
    plotting.log_axis(ax, "y")
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(labels) >= 2 and len(set(labels)) == len(labels)  # distinct labels, none repeated as 0.293
    plotting.plt.close(fig)


PAPER_NUMBERS = [
    {"what": "soft rank", "value": "1.00 ... 0.29", "source": "spec 1 A.5",
     "plot": {"x": "batch_size", "y": "softrank", "points": [[1000, 1.0], [4, 0.29]]}},
    {"what": "acc", "value": "...", "source": "E.3",
     "plot": {"y": "test_acc", "points": {"random": [[30, 94.27]], "el2n": [[30, 95.3]]}, "label": "rerun"}},
    {"what": "level", "value": "6.3%", "source": "abstract",
     "plot": {"y": "nnz", "level": 6.3, "series": ["vit_small", "vit_large"]}},
    {"what": "none", "value": "not obtained", "source": "spec 2", "plot": {"y": "tau", "points": []}},
    {"what": "no plot field", "value": "x", "source": "y"},
]


def test_paper_series_known_answers():
    soft = plotting.paper_series(PAPER_NUMBERS, "softrank", "batch_size")
    assert soft == [plotting.PaperSeries("softrank", "batch_size", None, ((1000.0, 1.0), (4.0, 0.29)), None,
                                         "paper (spec 1 A.5)")]
    assert plotting.paper_series(PAPER_NUMBERS, "softrank", "width") == []  # another x: not this figure's
    acc = plotting.paper_series(PAPER_NUMBERS, "test_acc")
    assert [(s.series, s.points, s.label) for s in acc] == [("random", ((30.0, 94.27),), "rerun"),
                                                             ("el2n", ((30.0, 95.3),), "rerun")]
    assert [(s.series, s.level) for s in plotting.paper_series(PAPER_NUMBERS, "nnz")] == [("vit_small", 6.3),
                                                                                           ("vit_large", 6.3)]
    (note,) = plotting.paper_series(PAPER_NUMBERS, "tau")
    assert note.points == () and note.level is None and note.label == "paper (spec 2): not obtained"


@pytest.mark.parametrize("plot, match", [
    ({"y": "a"}, "exactly one of points or level"),
    ({"y": "a", "points": [[1, 2]], "level": 3}, "exactly one of points or level"),
    ({"y": "a", "points": [[1, "x"]]}, r"\[\[x, y\], \.\.\.\] numbers; got \[\[1, 'x'\]\]"),
    ({"y": "a", "points": [[1, 2, 3]]}, r"\[\[x, y\], \.\.\.\] numbers"),
    ({"y": "a", "level": "high"}, "'high' is not a number"),
])
def test_paper_series_refuses_a_malformed_plot_field(plot, match):
    with pytest.raises(plotting.PlotError, match=match):
        plotting.paper_series([{"what": "w", "plot": plot}], "a")


def test_draw_paper_draws_stars_levels_and_notes():
    fig, ax = plotting.subplots(figsize=plotting.figsize())
    ax.plot([1, 1000], [0, 1])
    assert plotting.draw_paper(ax, plotting.paper_series(PAPER_NUMBERS, "softrank"))
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "paper (spec 1 A.5)"]
    assert line.get_marker() == "*" and line.get_markerfacecolor() == "none"
    np.testing.assert_allclose(line.get_xydata(), [[1000, 1.0], [4, 0.29]])
    ax2 = fig.add_subplot(2, 2, 4)
    assert plotting.draw_paper(ax2, plotting.paper_series(PAPER_NUMBERS, "nnz"), only="vit_small")
    assert [ln.get_ydata()[0] for ln in ax2.get_lines()] == [6.3]  # vit_large's copy left out
    assert plotting.draw_paper(ax2, plotting.paper_series(PAPER_NUMBERS, "tau"))
    assert any("not obtained" in t.get_text().replace("\n", " ") for t in ax2.texts)  # wrapped to the axes
    assert not plotting.draw_paper(ax2, plotting.paper_series(PAPER_NUMBERS, "absent"))
    plotting.plt.close(fig)


KEY_FIGURE_QUANTITIES = {  # claim -> the quantity its key figure plots beside the paper's
    "heavy_tail_phases": "fc1_mp_softrank", "el2n_pruning": "test_acc", "activation_sparsity": "nnz_percent",
    "neural_collapse": "test_acc", "simpson_paradox": "kendall_tau"}


def test_every_card_gives_its_key_figure_paper_numbers():
    cards = all_cards()
    for cid, quantity in KEY_FIGURE_QUANTITIES.items():
        series = plotting.paper_series(cards[cid].raw["paper_numbers"], quantity)
        assert series, f"card {cid}: no paper_numbers entry with plot y: {quantity}"
    for card in cards.values():  # every plot field parses
        ys = {e["plot"]["y"] for e in card.raw["paper_numbers"] if "plot" in e}
        for y in ys:
            plotting.paper_series(card.raw["paper_numbers"], y)
