"""Tables written by results.write_table: the .tex is pure ASCII, keeps its columns and compiles with
pdflatex (booktabs + amssymb); the .md keeps one cell per column; no numpy reprs anywhere."""

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


def body_rows(tex: str) -> list[str]:
    """The header and data rows of a tabular written by tables.latex_table (each on one line)."""
    lines = tex.splitlines()
    return [ln for ln in lines[lines.index(r"\toprule") + 1:lines.index(r"\bottomrule")] if ln != r"\midrule"]


def check_tex(tex: str, ncols: int) -> list[str]:
    """Problems of one .tex table: non-ASCII, no booktabs rules, a row whose unescaped & do not split it
    into ncols cells, or an unescaped % # _ $."""
    problems = [f"non-ASCII {ch!r}" for ch in sorted(set(tex)) if not ch.isascii()]
    if not all(rule in tex.splitlines() for rule in (r"\toprule", r"\midrule", r"\bottomrule")):
        return problems + ["no booktabs rules"]
    for row in body_rows(tex):
        specials = UNESCAPED.findall(row)
        if specials.count("&") != ncols - 1 or set(specials) - {"&"} or not row.endswith(r" \\"):
            problems.append(f"row with {specials.count('&') + 1} cells, specials {sorted(set(specials))}: {row[:80]}")
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
        tex = (REPO / rel).read_text()
        ncols = len(re.search(r"\\begin\{tabular\}\{(\w+)\}", tex).group(1))
        problems += [f"{rel}: {p}" for p in check_tex(tex, ncols)[:3]]
    assert not problems, "regenerate these tables (`dvc repro`):\n" + "\n".join(problems)


def pdflatex(tmp_path, table_tex: str) -> subprocess.CompletedProcess:
    """Compile a minimal document that \\input's table_tex with the packages tables.LATEX_PACKAGES names."""
    (tmp_path / "table.tex").write_text(table_tex)
    packages = "".join(rf"\usepackage{{{p}}}" + "\n" for p in tables.LATEX_PACKAGES)
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\n" + packages +
                                      "\\begin{document}\n\\input{table.tex}\n\\end{document}\n")
    return subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


needs_pdflatex = pytest.mark.skipif(
    shutil.which("pdflatex") is None,
    reason="pdflatex not on PATH (Debian: apt-get install texlive-latex-base texlive-latex-recommended; .ci/run does)")


@needs_pdflatex
@pytest.mark.parametrize("source", ["nasty DataFrame", "results/claims_table.tex"])
def test_tables_compile_with_pdflatex(tmp_path, source):
    if source == "nasty DataFrame":
        write_table(nasty_frame(), tmp_path / "nasty")
        tex = (tmp_path / "nasty.tex").read_text()
    else:
        tex = (REPO / source).read_text()
    run = pdflatex(tmp_path, tex)
    log = (tmp_path / "doc.log").read_text(errors="replace") if (tmp_path / "doc.log").exists() else run.stdout
    errors = [ln for ln in log.splitlines() if ln.startswith("!") or "Missing character" in ln]
    assert run.returncode == 0 and not errors, f"pdflatex failed on {source}:\n" + "\n".join(errors or [log[-2000:]])
    assert (tmp_path / "doc.pdf").exists()
