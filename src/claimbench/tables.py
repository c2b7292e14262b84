"""Escaped table output: Markdown that keeps its columns and LaTeX that compiles, from one DataFrame.

LaTeX (`latex_table`): a pure-ASCII booktabs ``tabular``. Every cell and header is escaped: the LaTeX
specials ``\\ & % $ # _ { } ~ ^`` (and ``< > |``, which the default OT1 font encoding would print as other
glyphs), the Unicode the project prints (✓ ✗ ± α τ ρ ≤ ≥ × → – — ′ … and the Greek alphabet) as LaTeX
commands, and accented Latin letters as the bare letter. Any other non-ASCII character raises
`TableError` naming it: add it to `TEXT_SYMBOLS` or `MATH_SYMBOLS`. A document that ``\\input``'s a table
needs only::

    \\usepackage{booktabs}  % \\toprule \\midrule \\bottomrule  (Debian: texlive-latex-recommended)
    \\usepackage{amssymb}   % \\checkmark for ✓                 (Debian: texlive-base)

Markdown (`markdown_table`): ``|`` inside a cell becomes ``\\|`` and a newline ``<br>``, so every row has
as many cells as the header. Both first turn numpy scalars and arrays (also inside lists) into plain
Python numbers, so no ``np.int64(2)`` repr reaches a table.
"""

from __future__ import annotations

import math
import unicodedata

import pandas as pd

from claimbench.errors import ClaimbenchError

LATEX_PACKAGES = ("booktabs", "amssymb")

LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\ensuremath{\$}", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}

TEXT_SYMBOLS = {"–": "--", "—": "---", "…": r"\ldots{}", "§": r"\S{}", "‘": "`", "’": "'", "“": "``",
                "”": "''", "\u00a0": "~", "\u2009": r"\,", "\u202f": r"\,"}

MATH_SYMBOLS = {  # written as \ensuremath{...}, so they work in text and math; ✗ prints as × (no ballot x in amssymb)
    "✓": r"\checkmark", "✗": r"\times", "±": r"\pm", "×": r"\times", "·": r"\cdot", "−": "-",
    "≤": r"\leq", "≥": r"\geq", "≈": r"\approx", "≠": r"\neq", "∼": r"\sim", "≪": r"\ll", "≫": r"\gg",
    "→": r"\rightarrow", "←": r"\leftarrow", "↔": r"\leftrightarrow", "⇒": r"\Rightarrow",
    "′": "'", "″": "''", "°": r"^{\circ}", "²": "^{2}", "³": "^{3}", "⁺": "^{+}", "⁻": "^{-}", "ᵀ": "^{T}",
    "½": r"\frac{1}{2}", "√": r"\surd", "∞": r"\infty", "∈": r"\in", "∑": r"\sum", "∝": r"\propto",
}


def _greek(first: int, names: str) -> dict[str, str]:
    """Consecutive Greek letters from code point `first`: LaTeX name, Latin look-alike letter, or - (unassigned)."""
    return {chr(first + i): (f"\\{n}" if len(n) > 1 else f"\\mathrm{{{n}}}") for i, n in enumerate(names.split())
            if n != "-"}


MATH_SYMBOLS |= _greek(0x3B1, "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi o pi rho "
                              "varsigma sigma tau upsilon phi chi psi omega")
MATH_SYMBOLS |= _greek(0x391, "A B Gamma Delta E Z H Theta I K Lambda M N Xi O Pi P - Sigma T Upsilon Phi X Psi Omega")

COMBINING = {"\u0302": (r"\hat", r"\^"), "\u0304": (r"\bar", r"\="), "\u0303": (r"\tilde", r"\~")}  # (math, text)


class TableError(ClaimbenchError, ValueError):
    """A table cell holds a character that cannot be written as LaTeX."""


def plain(value):
    """numpy scalars/arrays -> Python numbers/lists, recursively through lists, tuples and dicts."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalar or array, torch tensor
        return plain(value.tolist())
    return value


def latex_escape(text) -> str:
    """Any value's text -> pure-ASCII LaTeX that prints it on one line; TableError on an unmapped character."""
    text = " ".join(unicodedata.normalize("NFC", str(text)).splitlines())  # a blank line would end the row
    out = []
    for i, ch in enumerate(text):
        if ch in COMBINING and i > 0:
            continue  # written with the character it modifies
        accent = COMBINING.get(text[i + 1]) if i + 1 < len(text) else None
        out.append(_latex_char(ch, accent, text))
    return "".join(out)


def _latex_char(ch: str, accent: tuple[str, str] | None, text: str) -> str:
    if ch in MATH_SYMBOLS:
        body = MATH_SYMBOLS[ch]
        return r"\ensuremath{" + (f"{accent[0]}{{{body}}}" if accent else body) + "}"
    if ch in LATEX_SPECIALS or ch in TEXT_SYMBOLS:
        s = LATEX_SPECIALS.get(ch) or TEXT_SYMBOLS[ch]
    elif ch.isascii():
        s = ch
    else:
        s = _bare_letter(ch, text)
    return f"{accent[1]}{{{s}}}" if accent else s


def _bare_letter(ch: str, text: str) -> str:
    """An accented Latin letter without its accent (é -> e); TableError for anything else."""
    base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
    if unicodedata.category(ch).startswith("L") and len(base) == 1:
        return base
    snippet = text if len(text) <= 60 else text[:57] + "..."
    raise TableError(f"cannot write {ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')}) in {snippet!r} as "
                     "LaTeX; add it to claimbench.tables.TEXT_SYMBOLS or MATH_SYMBOLS")


def cell_text(value, floatfmt: str = ".4g") -> str:
    """One cell as text: floats with `floatfmt`, None/NaN as empty/nan, numpy values as plain Python."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else format(value, floatfmt)
    return str(value)


def latex_table(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """The DataFrame as an escaped, pure-ASCII booktabs tabular (numeric columns right-aligned)."""
    align = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) else "l"
                    for c in df.columns)

    def row(cells) -> str:
        return " & ".join(latex_escape(cell_text(v, floatfmt)) for v in cells) + r" \\"

    lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule", row(df.columns), r"\midrule",
             *(row(r) for r in df.itertuples(index=False, name=None)), r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def markdown_escape(text) -> str:
    """Text for one Markdown table cell: | -> \\|, newlines -> <br>."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("|", r"\|").replace("\n", "<br>")


def plain_frame(df: pd.DataFrame, fn=plain) -> pd.DataFrame:
    """A copy of df with `fn` (default: plain) applied to every cell of its non-numeric columns."""
    out = df.copy()
    for i, (_, col) in enumerate(df.items()):
        if not pd.api.types.is_numeric_dtype(col):
            out.isetitem(i, col.map(fn))
    return out


def markdown_table(df: pd.DataFrame, floatfmt: str = "g") -> str:
    """The DataFrame as a pipe table (pandas/tabulate) whose text cells and headers are escaped."""
    def clean(v):
        v = plain(v)
        return markdown_escape(v) if isinstance(v, (str, list, tuple, dict)) else v

    out = plain_frame(df, clean).rename(columns=lambda c: markdown_escape(cell_text(c)))
    return out.to_markdown(index=False, floatfmt=floatfmt)
