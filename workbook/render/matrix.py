"""Matrices as tables: labelled rows and columns, split into column blocks that fit the page."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .fmt import factor

# Widths in pt of \small (9 pt) Latin Modern glyphs, for planning column blocks. A
# generous estimate: the LaTeX log is checked for overfull boxes, never the other way round.
_DIGIT, _POINT, _MINUS = 4.6, 2.6, 7.2
TABCOLSEP = 3.0  # pt, set in the preamble
LABEL_WIDTH = 30.0  # pt, the row-label column
MAX_ROWS = 32  # taller matrices are split into row blocks, so no table outgrows a page
# A ruled grid's rows are 19 pt high (room to write): 24 of them and their headings fit a
# letter page (681 pt of text) with room to spare.
MAX_RULED_ROWS = 24
LETTER_TEXT_HEIGHT = 681.0  # pt: the page those two counts are for


# Measured with the preamble's fonts at \small, as a worked line (\ex) is set: a continued line
# is indented 2em, and the widest term a line never breaks, a variance's square
# {(x·10^e − (μ·10^e))^2}, puts four brackets, a minus, two powers of ten and the square
# around its two cells.
HANG = 18.5
WIDEST_TERM_EXTRA = 93.5
FOOTNOTE_SCALE = 0.92  # numbers in \footnotesize are 0.92 as wide as in \small (measured)


PAPER_MM = {"a4": (210.0, 297.0), "letter": (215.9, 279.4)}


def text_width_pt(paper: str, landscape: bool = False) -> float:
    """Text width for 20 mm margins on either side."""
    width_mm = PAPER_MM[paper][landscape] - 40.0
    return width_mm * 72.27 / 25.4


# Widths (pt) of the bold italic of table headings (\small): the wide letters, then any other
# capital, a digit, and anything else (lowercase letters, punctuation), measured with the
# preamble's fonts. A figure's plain italic labels at \footnotesize are FIGURE_LABEL of it.
_LABEL_PT = {"W": 11.8, "M": 10.9, "m": 9.1, "w": 7.4, "…": 14.4, "_": 8.1, "<": 8.7, ">": 8.7}
FIGURE_LABEL = 0.84


def label_pt(tex: str, scale: float = 1.0) -> float:
    """Estimated width of a heading or label (LaTeX markup such as \textit{} costs nothing):
    conservative, since TeX does not warn when a heading outgrows its fixed-width column."""
    text = re.sub(r"\\[A-Za-z]+\s*|[{}]", "", tex).replace("\\", "")
    widths = (
        _LABEL_PT.get(ch, 8.3 if ch.isupper() else 6.6 if ch.isdigit() else 6.0) for ch in text
    )
    return scale * sum(widths)


@functools.lru_cache(maxsize=1 << 16)
def cell_width(tex: str) -> float:
    """Estimated printed width of one formatted number."""
    if tex in (r"-\infty", r"\infty"):
        return 14.0
    minus = _MINUS if tex.startswith("-") else 0.0
    body = tex.lstrip("-")
    return minus + _DIGIT * sum(ch.isdigit() for ch in body) + _POINT * body.count(".")


def digits_within(width: float) -> int:
    """How many digits a negative decimal cell of at most `width` pt holds."""
    return math.floor((width - _MINUS - _POINT) / _DIGIT)


def column_blocks(widths: Sequence[float], room: float) -> list[range]:
    """Consecutive columns of these widths in as few blocks as fit `room` each (a column
    wider than the room alone in its block), as even in count as fits."""
    blocks, start, used = [], 0, 0.0
    for k, w in enumerate(widths):
        if k > start and used + w > room:
            blocks.append(range(start, k))
            start, used = k, 0.0
        used += w
    blocks.append(range(start, len(widths)))
    even = even_blocks(len(widths), math.ceil(len(widths) / len(blocks)))
    fit = len(even) == len(blocks) and all(sum(widths[k] for k in b) <= room for b in even)
    return even if fit else blocks


@dataclass(frozen=True)
class Layout:
    """The page a document is planned for. `scale`: the print is magnified that much (large
    print: TeX's \\mag), so the page is planned as a smaller one in 10 pt type."""

    paper: str = "a4"
    scale: float = 1.0

    @property
    def landscape(self) -> bool:
        """Magnified print turns the paper: its width is then about the portrait page's
        at 10 pt, and every table and formula keeps its room."""
        return self.scale > 1

    @property
    def text_width(self) -> float:
        return text_width_pt(self.paper, self.landscape) / self.scale

    @property
    def text_height(self) -> float:
        """Text height for 20 mm margins above and below (the running head's within)."""
        height_mm = PAPER_MM[self.paper][not self.landscape] - 40.0
        return height_mm * 72.27 / 25.4 / self.scale

    def rows(self, ruled: bool) -> int:
        """The rows a table (a ruled grid) may have on this page."""
        return self.on_page(MAX_RULED_ROWS if ruled else MAX_ROWS)

    def on_page(self, most: int) -> int:
        """`most` rows of something that fit a letter page: on a shorter page, in proportion."""
        return min(most, math.floor(most * self.text_height / LETTER_TEXT_HEIGHT))

    @property
    def widest_cell(self) -> float:
        """The widest a printed cell may be, in pt: a worked line breaks only between
        terms, and its widest term holds two cells, so two must fit on one line."""
        return (self.text_width - HANG - WIDEST_TERM_EXTRA) / 2

    def blocks(self, n_cols: int, widest: float, label_width: float = LABEL_WIDTH) -> list[range]:
        """Column blocks, as even as possible, each fitting the text width."""
        per_col = widest + 2 * TABCOLSEP
        fit = max(1, math.floor((self.text_width - label_width - 2 * TABCOLSEP) / per_col))
        return even_blocks(n_cols, fit)


Cell = Callable[[tuple[int, ...]], str]
FALK_SHOWN = (0, 1, 2, None)  # a long inner side: these, an ellipsis (None) and the last


def falk_picks(inner: int, whole: bool) -> tuple[int | None, ...]:
    """The inner indices a Falk grid shows: all, or a few, None for the ellipsis, the last."""
    return (
        tuple(range(inner)) if whole or inner <= len(FALK_SHOWN) + 1 else (*FALK_SHOWN, inner - 1)
    )


@dataclass(frozen=True)
class Falk:
    """The factors around a product's grid, as Falk laid it out: `left(i, k)` is the left
    factor's entry beside row i, `above(k, j)` the right factor's above column j (LaTeX
    math), for the inner indices `picks` (None: an ellipsis)."""

    picks: tuple[int | None, ...]
    left: Callable[[int, int], str]
    above: Callable[[int, int], str]
    width: float  # pt, the widest factor entry

    @property
    def left_width(self) -> float:
        return len(self.picks) * (self.width + 2 * TABCOLSEP)


def math_cell(tex: str) -> str:
    """A cell's math, or nothing for a blank ("$$" would open display math)."""
    return f"${tex}$" if tex else ""


def falk_rows(falk: Falk, cb: range, labels: Sequence[str]) -> list[str]:
    """The header and the right factor's rows of one column block of a Falk grid."""
    empty = [""] * len(falk.picks)  # the corner left of the right factor
    inner = " & ".join(
        r"$\cdots$" if k is None else rf"\colhead{{$k{{=}}{k + 1}$}}" for k in falk.picks
    )
    heads = " & ".join(rf"\colhead{{{labels[j]}}}" for j in cb)
    lines = [rf" & {inner} & {heads} \\ \hline"]
    for k in falk.picks:
        if k is None:
            row = [r"\vellipsis"] * len(cb)
            lines.append(" & ".join(["", *empty, *row]) + r" \\")
            continue
        row = [math_cell(falk.above(k, j)) for j in cb]
        lines.append(" & ".join([rf"\rowhead{{$k{{=}}{k + 1}$}}", *empty, *row]) + r" \\")
    lines[-1] += r" \hline"
    return lines


def even_blocks(n: int, most: int) -> list[range]:
    """0..n split into as few blocks of at most `most` as possible, as even as possible."""
    size = math.ceil(n / max(1, math.ceil(n / most))) if n else 1
    return [range(s, min(s + size, n)) for s in range(0, n, size)]


def table(
    shape: tuple[int, ...],
    cell: Cell,
    layout: Layout,
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    widest: float | None = None,
    ruled: bool = False,
    title: str = "",
    again: str = "",
    falk: Falk | None = None,
) -> str:
    """A matrix (or vector, as one row) as tabulars of row and column blocks.

    `cell(idx)` gives each entry's LaTeX (math content, or text for blanks). The title and
    each block's label ("columns 9–16") are rows of the tabular itself, so no page break
    can separate them from their numbers. `again` heads every later block ("dW_1, entries
    ×10⁻³"), so a block that starts a page still says what it is and in what units.
    With `falk`, each block of a product is a Falk scheme: the left factor's rows to the left
    of the grid's rows, the right factor's columns above its columns.
    """
    vector = len(shape) == 1
    rows, cols = (1, shape[0]) if vector else shape
    cells = [[cell((j,) if vector else (i, j)) for j in range(cols)] for i in range(rows)]
    if widest is None:
        widest = max((cell_width(c) for row in cells for c in row), default=10.0)
    r_labels = list(row_labels) if row_labels is not None else [str(i + 1) for i in range(rows)]
    c_labels = list(col_labels) if col_labels is not None else [str(j + 1) for j in range(cols)]
    label_w = max(LABEL_WIDTH, max(max(len(s) * 5.0, label_pt(s)) for s in r_labels) + 6)
    widest = max(widest, max(max(len(s) * 4.6, label_pt(s)) for s in c_labels))
    parts = []
    side = falk.left_width if falk else 0.0
    col_blocks = layout.blocks(cols, widest, label_w + side)
    above = len(falk.picks) if falk else 0
    row_blocks = even_blocks(rows, max(1, layout.rows(ruled) - above))
    for rb in row_blocks:
        for cb in col_blocks:
            where = []
            if len(row_blocks) > 1:
                rows_text = f"rows {rb.start + 1}--{rb.stop}" if len(rb) > 1 else f"row {rb.stop}"
                where.append(rows_text)
            if len(col_blocks) > 1:
                cols_text = (
                    f"columns {cb.start + 1}--{cb.stop}" if len(cb) > 1 else f"column {cb.stop}"
                )
                where.append(cols_text)
            span = rf"\multicolumn{{{len(cb) + 1 + above}}}{{@{{}}l}}"
            first = rb.start == 0 and cb.start == 0
            heads = [title] if title and first else []
            label = rf"\textit{{{', '.join(where)}}}" if where else ""
            if again and not first:
                label = rf"{again}\enspace {label}"
            heads += [label] if label else []
            # Fixed-width columns: every block of a matrix lines up the same way. A ruled grid
            # (an exercise's blank answer) gets cell borders and room to write.
            col = f"w{{r}}{{{widest:.1f}pt}}"
            spec = "@{}r|" + (f"{col}|" * len(cb) if ruled else col * len(cb)) + "@{}"
            env, rule = ("gridtab", r" \\ \hline") if ruled else ("mtab", r" \\")
            lines = [rf"{span}{{{h}}} \\" for h in heads]
            if falk is None:
                header = " & ".join(rf"\colhead{{{c_labels[j]}}}" for j in cb)
                lines.append(rf" & {header} \\ \hline")
            else:
                spec = spec.replace("r|", "r|" + f"w{{r}}{{{falk.width:.1f}pt}}" * above + "|", 1)
                lines += falk_rows(falk, cb, c_labels)
            for i in rb:
                entries = " & ".join(math_cell(cells[i][j]) for j in cb)
                if falk is not None:
                    shown = [r"\cdots" if k is None else falk.left(i, k) for k in falk.picks]
                    entries = " & ".join(map(math_cell, shown)) + " & " + entries
                lines.append(rf"\rowhead{{{r_labels[i]}}} & {entries}{rule}")
            body = "\n".join(lines)
            parts.append(f"\\begin{{{env}}}{{{spec}}}\n{body}\n\\end{{{env}}}")
    return "\n".join(parts)


def number_table(
    nums: np.ndarray,
    layout: Layout,
    *,
    title: str = "",
    unneeded: Callable[[tuple[int, ...]], bool] | None = None,
    faint: Callable[[tuple[int, ...]], bool] | None = None,
    **kw,
) -> str:
    """A matrix of printed numbers (`Num`), its power-of-ten factor stated in the title;
    masked (−∞) entries print as −∞; entries `unneeded` by the next step, or None, as a dash;
    `faint` ones in grey."""
    exps = {n.exp for n in nums.ravel() if n is not None}
    exp = exps.pop() if len(exps) == 1 else 0
    units = rf"entries ${factor(exp)}$" if exp else ""
    if units:
        title = rf"{title}\enspace {units}" if title else units
    if units and kw.get("again"):
        kw["again"] = rf"{kw['again']}\enspace {units}"

    def cell(idx: tuple[int, ...]) -> str:
        if nums[idx] is None or (unneeded and unneeded(idx)):
            return r"\text{--}"
        if faint and faint(idx):
            return rf"\textcolor{{gray}}{{{nums[idx].cell}}}"
        return nums[idx].cell

    return table(nums.shape, cell, layout, title=title, **kw)


def side_by_side(tables: list[str]) -> str:
    """Tables that follow one another, set side by side as many as fit a line (the
    `tablerun` environment): a small model's 4-column matrices stacked one under another
    leave most of the page empty. A table split into blocks keeps its blocks stacked, so
    such a run stays as it was."""
    if len(tables) < 2 or any(t.count(r"\begin{mtab}") != 1 for t in tables):
        return "\n".join(tables)
    return "\n".join([r"\begin{tablerun}", *tables, r"\end{tablerun}"])
