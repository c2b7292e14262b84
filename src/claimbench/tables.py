"""Escaped table output: Markdown that keeps its columns and LaTeX that compiles and fits a page, from one
DataFrame.

LaTeX (`latex_table`): pure-ASCII booktabs ``tabular`` blocks in ``\\small`` that fit the text width
(`TEXT_WIDTH_PT`, an article page): long text columns wrap (ragged ``p{}`` columns, breakable after ``_ / -``),
long headers stack on several lines, a table still too wide is split into column blocks that each repeat
the key (first) column, and one longer than `ROWS_PER_BLOCK` rows into row blocks that repeat the header.
Each block is measured by TeX and scaled to ``\\linewidth`` if it is still wider (a narrower page than
ours), so no table overflows its page. `latex_longtable` writes a wrapped ``longtable`` with set column
widths (the report's detail table). Every cell and header is escaped: the LaTeX specials
``\\ & % $ # _ { } ~ ^`` (and ``< > |``, which the default OT1 font encoding would print as other glyphs),
the Unicode the project prints (✓ ✗ ± α τ ρ ≤ ≥ × → – — ′ … and the Greek alphabet) as LaTeX commands, and
accented Latin letters as the bare letter. Any other non-ASCII character raises `TableError` naming it: add
it to `TEXT_SYMBOLS` or `MATH_SYMBOLS`. A document that ``\\input``'s a table needs only::

    \\usepackage{booktabs}  % \\toprule \\midrule \\bottomrule   (Debian: texlive-latex-recommended)
    \\usepackage{amssymb}   % \\checkmark for ✓                  (Debian: texlive-base)
    \\usepackage{array}     % >{\\raggedright} before p{} columns (texlive-latex-base)
    \\usepackage{graphicx}  % \\resizebox, the too-wide fallback  (texlive-latex-base)
    \\usepackage{longtable} % the report's detail table           (texlive-latex-base)

Markdown (`markdown_table`): ``|`` inside a cell becomes ``\\|`` and a newline ``<br>``, so every row has
as many cells as the header. Both first turn numpy scalars and arrays (also inside lists) into plain
Python numbers, so no ``np.int64(2)`` repr reaches a table.
"""

from __future__ import annotations

import math
import re
import unicodedata

import pandas as pd

from claimbench.errors import ClaimbenchError

LATEX_PACKAGES = ("booktabs", "amssymb", "array", "graphicx", "longtable")

# Layout estimates for \small (9 pt Computer Modern) in an article page; TeX's own measure scales the rest.
TEXT_WIDTH_PT = 345.0     # \textwidth of a 10 pt article (the page a table must fit)
CHAR_PT = 4.5             # mean width of one character at \small (digits 4.5 pt, capitals up to 7 pt)
COLSEP_PT = 4.0           # \tabcolsep the tables set (each column has this on both sides)
MIN_WRAP_PT = 70.0        # narrowest width a wrapped text column is squeezed to before splitting columns
ROWS_PER_BLOCK = 40       # rows per block: a block fits one page with its header
BUDGET_PT = 0.93 * TEXT_WIDTH_PT  # what the estimated widths may add up to (the estimate is rough)

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
    """The DataFrame as escaped, pure-ASCII booktabs tabular blocks that fit a page (numeric columns
    right-aligned; long text wrapped; wide tables split into column blocks that repeat the first column,
    long ones into row blocks of ROWS_PER_BLOCK; each block scaled down by TeX only if still too wide)."""
    cols = list(df.columns)
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in cols]
    texts = [[cell_text(v, floatfmt) for v in df[c]] for c in cols]
    headers = [cell_text(c, floatfmt) for c in cols]
    data_chars = [max([len(t) for t in col] or [1]) for col in texts]
    head_lines = [_header_lines(h, max(data_chars[i], 9)) for i, h in enumerate(headers)]
    natural = [CHAR_PT * max(data_chars[i], *(len(ln) for ln in head_lines[i])) + 2 * COLSEP_PT
               for i in range(len(cols))]
    wrap_at = _wrap_width(natural, numeric)  # None: nothing wraps
    widths = [w if numeric[i] or wrap_at is None else min(w, wrap_at) for i, w in enumerate(natural)]
    wrapped = [not numeric[i] and wrap_at is not None and natural[i] > wrap_at for i in range(len(cols))]
    groups = _column_groups(widths)
    row_blocks = [range(a, min(a + ROWS_PER_BLOCK, len(df))) for a in range(0, max(len(df), 1), ROWS_PER_BLOCK)]
    blocks = []
    for group in groups:
        for rows in row_blocks:
            blocks.append(_block(group, rows, texts, headers, head_lines, numeric, wrapped, widths))
    note = (f"% claimbench.tables.latex_table: {len(df)} rows x {len(cols)} columns in {len(groups)} column "
            f"block(s) x {len(row_blocks)} row block(s); needs \\usepackage{{{','.join(LATEX_PACKAGES)}}}")
    return "\n".join([note, r"\begingroup\small\setlength{\tabcolsep}{4pt}", *blocks, r"\endgroup"]) + "\n"


def _header_lines(header: str, width: int) -> list[str]:
    """A header cut into lines of about `width` characters at spaces and after underscores."""
    words = [w for w in re.split(r"(?<=_)|(?<= )", header) if w]
    lines = [""]
    for w in words:
        if lines[-1] and len(lines[-1]) + len(w.rstrip()) > width:
            lines.append("")
        lines[-1] += w
    return [ln.strip() for ln in lines if ln.strip()] or [""]


def _wrap_width(natural: list[float], numeric: list[bool]) -> float | None:
    """The widest cap on text columns that fits the page (None if the table fits unwrapped); MIN_WRAP_PT
    if even that does not (the columns are then split into blocks)."""
    if sum(natural) <= BUDGET_PT:
        return None
    fixed = sum(w for w, n in zip(natural, numeric) if n)
    text = sorted(w for w, n in zip(natural, numeric) if not n)
    if not text:
        return None
    for k, w in enumerate(text):  # caps between the k-th and the next widest text column
        room = BUDGET_PT - fixed - sum(text[:k])
        cap = room / (len(text) - k)
        if cap <= w:
            return max(cap, MIN_WRAP_PT)
    return MIN_WRAP_PT


def _column_groups(widths: list[float]) -> list[list[int]]:
    """Column indices per block: as many columns as fit BUDGET_PT, each block after the first
    led by column 0 (the key); one column always goes in even if it alone is too wide."""
    groups, current, used = [], [0], widths[0]
    for i in range(1, len(widths)):
        if used + widths[i] > BUDGET_PT and len(current) > 1:
            groups.append(current)
            current, used = [0], widths[0]
        current.append(i)
        used += widths[i]
    groups.append(current)
    return groups


def _block(group, rows, texts, headers, head_lines, numeric, wrapped, widths) -> str:
    """One tabular (columns `group`, rows `rows`) inside a box that TeX scales to \\linewidth if too wide."""
    spec = "".join((rf">{{\raggedright\arraybackslash}}p{{{widths[i] - 2 * COLSEP_PT:.0f}pt}}" if wrapped[i]
                    else "r" if numeric[i] else "l") for i in group)

    def head(i: int) -> str:
        if wrapped[i] or len(head_lines[i]) == 1:
            return _cell(headers[i], wrapped[i])
        align = "r" if numeric[i] else "l"
        return (rf"\begin{{tabular}}[b]{{@{{}}{align}@{{}}}}" + r"\\".join(latex_escape(ln) for ln in head_lines[i])
                + r"\end{tabular}")

    def row(cells) -> str:
        return " & ".join(cells) + r" \\"

    lines = [r"\par\noindent\setbox0=\hbox{%", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             row(head(i) for i in group), r"\midrule",
             *(row(_cell(texts[i][r], wrapped[i]) for i in group) for r in rows),
             r"\bottomrule", r"\end{tabular}}%",
             r"\ifdim\wd0>\linewidth\typeout{claimbench.tables: a table block scaled to \string\linewidth}"
             r"\resizebox{\linewidth}{!}{\box0}\else\box0\fi\par\medskip"]
    return "\n".join(lines)


def _cell(text: str, wrapped: bool) -> str:
    """Escaped cell text; in a wrapped column a line may also break after _ / and - and in its first word."""
    out = latex_escape(text)
    if wrapped and out:  # \hspace{0pt}: TeX may then hyphenate a cell's first word too
        out = r"\hspace{0pt}" + re.sub(r"(\\_|/|(?<!-)-(?!-))", r"\1\\allowbreak{}", out)
    return out


def latex_longtable(df: pd.DataFrame, widths: dict[str, float], floatfmt: str = ".4g", long: bool = True) -> str:
    r"""The DataFrame as an escaped booktabs table in \small whose columns are ragged p{} of their `widths`
    share of \linewidth (shares plus the column gaps <= 1, so it fits any page): a longtable (page breaks
    between rows, the header repeated) or, with long=False, a tabular (a few rows; can go in a float)."""
    cols = list(df.columns)
    spec = "".join(rf">{{\raggedright\arraybackslash}}p{{{widths[c]:.3f}\linewidth}}" for c in cols)
    head = " & ".join(_cell(cell_text(c, floatfmt), True) for c in cols) + r" \\"
    body = [" & ".join(_cell(cell_text(v, floatfmt), True) for v in r) + r" \\"
            for r in df.itertuples(index=False, name=None)]
    env = "longtable" if long else "tabular"
    frame = [r"\toprule", head, r"\midrule", r"\endhead", r"\bottomrule", r"\endfoot", *body] if long else \
        [r"\toprule", head, r"\midrule", *body, r"\bottomrule"]
    return "\n".join([rf"\begingroup\small\setlength{{\tabcolsep}}{{{COLSEP_PT:g}pt}}",
                      rf"\noindent\begin{{{env}}}{{@{{}}{spec}@{{}}}}", *frame, rf"\end{{{env}}}", r"\endgroup"]) + "\n"


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
