"""Tables written by results.write_table: the .tex is pure ASCII, keeps its columns, compiles with pdflatex
(tables.LATEX_PACKAGES) and fits an article page (no Overfull \\hbox); the .md keeps one cell per column;
no numpy reprs anywhere."""

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from claimbench import tables
from claimbench.results import write_table

NASTY = "Martin & Mahoney: 6.3% of a_b costs $5 #1 {x} ~y ^z \\ ✓ ✗ ± α τ ≤ ≥ × → – — ′ … α̂ ρ² |tau|"


def nasty_frame() -> pd.DataFrame:
    """Every LaTeX special, the project's Unicode, a pipe, a newline, numpy values and NaN, in cells and headers."""
    return pd.DataFrame({
        "claim & id": [NASTY, "two\nlines", "plain"],
        "6.3% | x_1": [0.123456, np.nan, 12345.678],
        "n": np.array([1, 2, 3], dtype=np.int64),
        "depths": [[np.int64(2), np.int64(6)], np.float64(0.5), None],
    })


UNESCAPED = re.compile(r"(?<!\\)[&%#_$]")  # a LaTeX special with no backslash before it
TABULAR = re.compile(r"\\begin\{(?:tabular|longtable)\}\{(.*)\}$")  # a block's opening line (not a nested header)


def n_columns(spec: str) -> int:
    """Columns of a tabular spec: l/r/c/p{..} letters, leaving out >{..} and @{..} and the widths."""
    spec = re.sub(r"[>@]\{[^{}]*(\{[^{}]*\}[^{}]*)*\}", "", spec)
    return len(re.findall(r"[lrcp]", re.sub(r"\{[^{}]*\}", "", spec)))


def blocks(tex: str) -> list[tuple[int, list[str]]]:
    """(columns, header and data rows) of every tabular/longtable block in tex (rows one per line)."""
    out, lines = [], tex.splitlines()
    for i, ln in enumerate(lines):
        m = TABULAR.match(ln.removeprefix(r"\noindent"))
        if m:
            end = next(j for j in range(i, len(lines)) if lines[j] == r"\bottomrule")
            rows = [r for r in lines[i + 2:end] if r not in (r"\midrule", r"\endhead")]
            out.append((n_columns(m.group(1)), rows))
    return out


def body_rows(tex: str) -> list[str]:
    """The header and data rows of every block of a table written by tables.latex_table."""
    return [r for _, rows in blocks(tex) for r in rows]


def check_tex(tex: str, ncols: int | None = None) -> list[str]:
    """Problems of one .tex table: non-ASCII, no block with booktabs rules, a row whose unescaped & do not
    split it into its block's columns (or ncols, when given), or an unescaped % # _ $."""
    problems = [f"non-ASCII {ch!r}" for ch in sorted(set(tex)) if not ch.isascii()]
    found = blocks(tex)
    if not found or not all(rule in tex.splitlines() for rule in (r"\toprule", r"\midrule", r"\bottomrule")):
        return problems + ["no booktabs rules"]
    for n, rows in found:
        for row in rows:
            specials = UNESCAPED.findall(row)
            if specials.count("&") != (ncols or n) - 1 or set(specials) - {"&"} or not row.endswith(r" \\"):
                problems.append(f"row with {specials.count('&') + 1} cells, specials {sorted(set(specials))}: "
                                f"{row[:80]}")
    return problems


def test_latex_escape_known_answers():
    assert tables.latex_escape("Martin & Mahoney") == r"Martin \& Mahoney"
    assert tables.latex_escape("6.3%_#{}") == r"6.3\%\_\#\{\}"
    assert tables.latex_escape("$\\~^") == r"\ensuremath{\$}\textbackslash{}\textasciitilde{}\textasciicircum{}"
    assert tables.latex_escape("✓ ✗ ±") == r"\ensuremath{\checkmark} \ensuremath{\times} \ensuremath{\pm}"
    assert tables.latex_escape("α̂ – …") == r"\ensuremath{\hat{\alpha}} -- \ldots{}"
    assert tables.latex_escape("|tau| ≤ 1") == r"\textbar{}tau\textbar{} \ensuremath{\leq} 1"
    assert tables.latex_escape("Dziugaité") == "Dziugaite"  # accented letter: bare letter


def test_latex_escape_refuses_an_unmapped_character():
    with pytest.raises(tables.TableError, match=r"'☃' \(U\+2603 SNOWMAN\) in 'a ☃'.*add it to claimbench.tables"):
        tables.latex_escape("a ☃")


def test_every_character_the_project_prints_has_a_latex_form():
    """Cards, claim modules and the report: any non-ASCII they hold can reach a table."""
    sources = [*REPO.glob("src/claimbench/cards/*.yaml"), *REPO.glob("src/claimbench/claims/*.py"),
               REPO / "src/claimbench/report.py"]
    text = "".join(p.read_text() for p in sources)
    assert tables.latex_escape(text).isascii()


def test_markdown_and_plain_known_answers():
    assert tables.markdown_escape("within-depth |tau|\nsmall") == r"within-depth \|tau\|<br>small"
    assert tables.plain([np.int64(2), (np.float64(0.5),), {"a": np.bool_(True)}]) == [2, (0.5,), {"a": True}]
    assert tables.cell_text(np.float64(0.123456)) == "0.1235" and tables.cell_text(None) == ""


def test_write_table_tex_is_ascii_with_one_cell_per_column(tmp_path):
    df = nasty_frame()
    write_table(df, tmp_path / "t")
    tex = (tmp_path / "t.tex").read_text()
    assert check_tex(tex, df.shape[1]) == []
    assert len(body_rows(tex)) == 1 + len(df)
    assert r"0.1235 & 1 & [2, 6] \\" in tex  # 4 significant digits, plain numbers
    assert r"\hspace{0pt}Martin \& Mahoney" in tex  # the long text column wraps (a ragged p{} column)


def wide_long_frame(rows: int = 95, cols: int = 60) -> pd.DataFrame:
    """A results-like table far wider and longer than a page: a key column and many numeric columns."""
    rng = np.random.default_rng(0)
    data = {"batch_size": np.arange(rows) * 2 + 2}
    data |= {f"fc{i % 2 + 1}_metric_number_{i}": rng.normal(size=rows) * 10.0 ** (i % 5) for i in range(cols)}
    return pd.DataFrame(data)


def test_latex_layout_known_answers():
    assert tables._header_lines("fc1_mp_softrank", 9) == ["fc1_mp_", "softrank"]
    assert tables._header_lines("n", 9) == ["n"]
    page = tables.BUDGET_PT
    assert tables._wrap_width([50, 60], [True, False]) is None  # fits: nothing wraps
    # numeric 100 pt fixed; text 50 and 400: cap (page - 100 - 50) / 1 for the wide one
    assert tables._wrap_width([100, 50, 400], [True, False, False]) == pytest.approx(page - 150)
    assert tables._wrap_width([page, 400], [True, False]) == tables.MIN_WRAP_PT  # no room: split instead
    assert tables._column_groups([40, 200, 150, 100]) == [[0, 1], [0, 2, 3]]  # each block led by the key


def test_wide_long_table_splits_into_blocks_that_repeat_key_and_header(tmp_path):
    df = wide_long_frame()
    write_table(df, tmp_path / "t")
    tex = (tmp_path / "t.tex").read_text()
    assert check_tex(tex) == []
    found = blocks(tex)
    assert len(found) > 2 and all(len(rows) - 1 <= tables.ROWS_PER_BLOCK for _, rows in found)
    assert all(rows[0].startswith(r"\begin{tabular}[b]{@{}r@{}}batch\_\\size") for _, rows in found)
    # every cell is written once: data cells over all blocks = rows x (columns + one repeated key per extra block)
    n_groups = len(found) // -(-len(df) // tables.ROWS_PER_BLOCK)
    cells = sum(n * (len(rows) - 1) for n, rows in found)
    assert cells == len(df) * (df.shape[1] + n_groups - 1)


def test_write_table_markdown_keeps_its_columns_and_csv_has_plain_numbers(tmp_path):
    df = nasty_frame()
    write_table(df, tmp_path / "t")
    md = (tmp_path / "t.md").read_text().splitlines()
    assert [len(re.findall(r"(?<!\\)\|", ln)) - 1 for ln in md] == [df.shape[1]] * (2 + len(df))
    assert r"\|tau\|" in md[2] and "two<br>lines" in md[3] and "0.1235" in md[2]
    csv = (tmp_path / "t.csv").read_text()
    assert "np." not in csv and "[2, 6]" in csv


def committed_files(suffix: str) -> list[str]:
    """Paths (relative to the repo) of the tracked files under results/ ending in suffix."""
    out = subprocess.run(["git", "ls-files", "results"], cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:  # not a git checkout: every such file under results/
        return sorted(str(p.relative_to(REPO)) for p in REPO.glob(f"results/**/*{suffix}"))
    return sorted(f for f in out.stdout.split() if f.endswith(suffix))


def test_committed_tex_tables_are_escaped():
    problems = []
    for rel in committed_files(".tex"):
        problems += [f"{rel}: {p}" for p in check_tex((REPO / rel).read_text())[:3]]
    assert not problems, "regenerate these tables (`dvc repro`):\n" + "\n".join(problems)


def pdflatex(tmp_path, table_tex: str) -> subprocess.CompletedProcess:
    """Compile a minimal article that \\input's table_tex with the packages tables.LATEX_PACKAGES names."""
    (tmp_path / "table.tex").write_text(table_tex)
    packages = "".join(rf"\usepackage{{{p}}}" + "\n" for p in tables.LATEX_PACKAGES)
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\n" + packages +
                                      "\\begin{document}\n\\input{table.tex}\n\\end{document}\n")
    return subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def latex_problems(tmp_path, table_tex: str) -> tuple[list[str], str]:
    """(errors, missing characters and Overfull \\hbox lines of the log, the log) of one compiled table."""
    run = pdflatex(tmp_path, table_tex)
    log = (tmp_path / "doc.log").read_text(errors="replace") if (tmp_path / "doc.log").exists() else run.stdout
    problems = [ln for ln in log.splitlines()
                if ln.startswith("!") or "Missing character" in ln or ln.startswith("Overfull \\hbox")]
    if run.returncode != 0 or not (tmp_path / "doc.pdf").exists():
        problems.append(f"pdflatex exit {run.returncode}: {log[-1500:]}")
    return problems, log


needs_pdflatex = pytest.mark.skipif(
    shutil.which("pdflatex") is None,
    reason="pdflatex not on PATH (Debian: apt-get install texlive-latex-base texlive-latex-recommended; .ci/run does)")


@needs_pdflatex
def test_the_overfull_check_catches_a_table_wider_than_the_page(tmp_path):
    """The fit check can fail: a bare tabular as wide as the old claims table is reported."""
    wide = "\\begin{tabular}{" + "l" * 40 + "}\n" + " & ".join(["wide cell"] * 40) + " \\\\\n\\end{tabular}\n"
    problems, _ = latex_problems(tmp_path, wide)
    assert any(p.startswith("Overfull \\hbox") for p in problems)


@needs_pdflatex
@pytest.mark.parametrize("source", ["nasty DataFrame", "wide and long DataFrame", "claims table from the report"])
def test_tables_compile_and_fit_the_page(tmp_path, source):
    if source == "claims table from the report":
        from claimbench import report
        _, df, _ = report.render(REPO)
        tex = report.claims_table_tex(df)
    else:
        write_table(nasty_frame() if source == "nasty DataFrame" else wide_long_frame(), tmp_path / "t")
        tex = (tmp_path / "t.tex").read_text()
    problems, log = latex_problems(tmp_path, tex)
    assert not problems, f"pdflatex on {source}:\n" + "\n".join(problems)
    assert "a table block scaled" not in log  # our width estimate held: TeX did not have to shrink a block


@needs_pdflatex
def test_committed_tex_tables_compile_and_fit_the_page(tmp_path):
    """Every committed results/**/*.tex compiles without an Overfull \\hbox (regenerate them if not)."""
    failures = []
    for i, rel in enumerate(committed_files(".tex")):
        (tmp_path / str(i)).mkdir()
        problems, _ = latex_problems(tmp_path / str(i), (REPO / rel).read_text())
        failures += [f"{rel}: {p[:100]}" for p in problems[:2]]
    assert not failures, "regenerate these tables (`dvc repro`; report stage for claims_table.tex):\n" + \
        "\n".join(failures)
