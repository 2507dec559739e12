"""Figures drawn from the printed numbers at build time: heat maps, Falk schemes, the map of
the model, GELU's curves and a softmax as bars.

A heat map is a table whose cells are shaded grey by their value (darker for larger) and still
print the value, so nothing is carried by shade alone and black-and-white printing loses
nothing; curves differ by line style and are named, bars carry their values. Every figure has
a one-sentence description beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from .. import ops
from ..printed import Num
from .fmt import factor, tex_escape
from .matrix import FOOTNOTE_SCALE, LABEL_WIDTH, TABCOLSEP, Layout, cell_width, even_blocks

DARKEST = 0.45  # the grey of the largest value: black digits stay legible on it
SCALE = (0.0, 0.25, 0.5, 0.75, 1.0)


def grey(value: float) -> str:
    """The cell's grey level for a value in [0, 1]: 1 is white, DARKEST is the darkest."""
    v = min(1.0, max(0.0, value))
    return f"{1 - (1 - DARKEST) * v:.3f}"


SHADE = 2 * 1.5 + 2 * 1.5  # pt a shaded cell adds: \colorbox's margin and \, either side
# A Falk scheme is set in \footnotesize with \tabcolsep 2.5pt; an ellipsis column is about
# 10pt wide.
FALK_SEP, DOTS = 2 * 2.5, 10.0


def fits(widths: Iterable[float], layout: Layout, label: float = 0.0) -> bool:
    """Whether a figure fits the text width: a label column, then columns of these widths
    (pt, their padding included)."""
    return label + sum(widths) <= layout.text_width


def label_width(*labels: Sequence[str] | None) -> float:
    """Room for the row headings (and for wide column headings, as the value cells are
    planned): a generous 5 pt per character of their LaTeX."""
    return max([LABEL_WIDTH] + [5.0 * len(s) for group in labels if group for s in group])


def value_blocks(nums: np.ndarray, room: float) -> list[range]:
    """Column blocks of a heat map that prints its values, each fitting `room` pt."""
    widest = max(cell_width(x.cell) for x in nums.ravel())
    per_col = widest + 2 * TABCOLSEP + SHADE
    return even_blocks(nums.shape[1], max(1, math.floor(room / per_col)))


# A heat map whose values would need more rows of blocks than this is drawn compact: small
# shaded cells without values (which the table above prints), so it stays one picture.
MAX_HEAT_ROWS = 24
# Compact cells: width in pt (at most the first, at least the second), the white gap around
# each, and the most rows that fit a letter page with title, key and caption.
COMPACT_WIDEST, COMPACT_NARROWEST, COMPACT_GAP, MAX_COMPACT_ROWS = 12.0, 5.0, 1.0, 48

Index2 = tuple[int, int]


@dataclass(frozen=True)
class _Map:
    """What a heat map's tables draw: the printed values, their greys, the marks."""

    nums: np.ndarray
    title: str
    grey: Callable[[Index2], str]
    masked: Callable[[Index2], bool]
    marked: Callable[[Index2], bool]
    row_heads: Sequence[str]
    col_heads: Sequence[str]


def heatmap(
    nums: np.ndarray,
    *,
    what: str,
    caption: str,
    layout: Layout,
    masked: Callable[[Index2], bool] = lambda idx: False,
    marked: Callable[[Index2], bool] = lambda idx: False,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    legend: str = "",
    signed: bool = False,
) -> str:
    """A matrix of printed numbers (`Num`) as a table of grey cells: masked cells blank with
    a dash, marked cells framed. Values in [0, 1] are shaded as they are; `signed` values by
    |value| as a share of the largest |value|, the sign printed with the value. The values
    are printed in the cells, in column blocks, where they fit; else the cells are small,
    without values, and a bar marks each negative one. Empty when even those do not fit."""
    rows, cols = nums.shape
    peak = max(
        (x for idx, x in np.ndenumerate(nums) if not masked(idx)), key=lambda x: abs(x.value)
    )
    top = float(abs(peak.value)) if signed and peak.value else 1.0
    units = rf", entries ${factor(peak.exp)}$" if peak.exp else ""
    m = _Map(
        nums,
        title=rf"Heat map of {what}{units}, in shades of grey",
        grey=lambda idx: grey(abs(float(nums[idx].value)) / top),
        masked=masked,
        marked=marked,
        row_heads=row_labels or [str(i + 1) for i in range(rows)],
        col_heads=col_labels or [str(j + 1) for j in range(cols)],
    )
    room = layout.text_width - label_width(row_labels, col_labels)
    blocks = value_blocks(nums, room)
    if len(blocks) * rows <= MAX_HEAT_ROWS:
        body = _value_tables(m, blocks)
        notes = "; the sign is printed with each value" if signed else ""
    else:
        body = _compact_table(m, room)
        if not body:
            return ""
        notes = r"; \negative\ marks a negative value" if signed else ""
        notes += "; the values are printed in the table above"
    scale = r"\ ".join(rf"\shade{{{grey(v)}}}{{${v:g}$}}" for v in SCALE)
    share = rf"|value| as a share of the largest, ${peak.cell.lstrip('-')}$: " if signed else ""
    key = rf"\figkey{{shade: {share}{scale}{notes}{legend}}}"
    return "\n".join(
        [r"\begin{figblock}", *body, key, rf"\figcaption{{{caption}}}", r"\end{figblock}"]
    )


def _value_tables(m: _Map, blocks: list[range]) -> list[str]:
    """One shaded table per column block, each cell printing its value."""
    lines = []
    for cb in blocks:
        span = rf"\multicolumn{{{len(cb) + 1}}}{{@{{}}l}}"
        lines.append(r"\begin{heatmap}{" + str(len(cb)) + "}")
        if cb.start == 0:
            lines.append(rf"{span}{{{m.title}}} \\")
        if len(blocks) > 1:
            lines.append(rf"{span}{{\textit{{columns {_span(cb)}}}}} \\")
        lines.append(" & " + " & ".join(rf"\colhead{{{m.col_heads[j]}}}" for j in cb) + r" \\")
        for i, head in enumerate(m.row_heads):
            cells = []
            for j in cb:
                if m.masked((i, j)):
                    cells.append(r"\masked")
                    continue
                text = rf"${m.nums[i, j].cell}$"
                if m.marked((i, j)):
                    text = rf"\marked{{{text}}}"
                cells.append(rf"\shade{{{m.grey((i, j))}}}{{{text}}}")
            lines.append(rf"\rowhead{{{head}}} & " + " & ".join(cells) + r" \\")
        lines.append(r"\end{heatmap}")
    return lines


def _compact_table(m: _Map, room: float) -> list[str]:
    """Small shaded cells without values in `room` pt, columns numbered in groups where one
    number would not fit a cell; empty when the cells would be too narrow or too many."""
    rows, cols = m.nums.shape
    width = min(COMPACT_WIDEST, room / cols - COMPACT_GAP)
    if width < COMPACT_NARROWEST or rows > MAX_COMPACT_ROWS:
        return []
    pitch = width + COMPACT_GAP
    group = next(g for g in (1, 2, 4, 8, 16, cols) if g * pitch >= _head_width(g, cols))
    heads = [
        rf"\multicolumn{{{len(r)}}}{{c}}{{\colhead{{{_span(r)}}}}}"
        for r in even_blocks(cols, group)
    ]
    lines = [
        rf"\begin{{heatcompact}}{{{cols}}}{{{width:.2f}pt}}",
        rf"\multicolumn{{{cols + 1}}}{{@{{}}l}}{{{m.title}}} \\",
        " & " + " & ".join(heads) + r" \\",
    ]
    for i, head in enumerate(m.row_heads):
        cells = []
        for j in range(cols):
            if m.masked((i, j)):
                cells.append(r"\cshade{1}{\masked}")
                continue
            sign = r"\negative" if m.nums[i, j].value < 0 else ""
            cell = rf"\cshade{{{m.grey((i, j))}}}{{{sign}}}"
            cells.append(rf"\marked{{{cell}}}" if m.marked((i, j)) else cell)
        lines.append(rf"\rowhead{{{head}}} & " + " & ".join(cells) + r" \\")
    lines.append(r"\end{heatcompact}")
    return lines


def _span(r: range) -> str:
    return str(r.stop) if len(r) == 1 else f"{r.start + 1}--{r.stop}"


def _head_width(group: int, cols: int) -> float:
    """Room a column heading needs, with a clear gap to the next: "64" for one column,
    "57–64" for a group (8 pt bold)."""
    digits = len(str(cols))
    return 5.0 * digits + 3 if group == 1 else 5.0 * (2 * digits + 1) + 8


# --- curves and bars (pgfplots) ----------------------------------------------------------------
# Loaded only when figures are drawn; compat is the version Debian's texlive-pictures installs.
PGFPLOTS = r"""\usepackage{pgfplots}
\pgfplotsset{compat=1.18,
  figure/.style={scale only axis, axis lines=left, axis line style={-}, clip mode=individual,
    tick label style={font=\footnotesize},
    title style={font=\footnotesize, inner sep=2pt}, every node/.style={font=\footnotesize}},
  curve/.style={thick, no marks},
  bars/.style={xbar, bar width=7pt, bar shift=0pt, y dir=reverse, axis x line=none,
    axis y line*=left, tick align=outside, point meta=explicit symbolic,
    nodes near coords={$\pgfplotspointmeta$}},
  bar/.style={fill=black!25, draw=black}}
% The samples a figure's key shows: a solid and a dashed curve, a dot and a ring.
\newcommand{\curvesolid}{\tikz[baseline=-0.6ex]\draw[thick] (0,0) -- (1.2em,0);}
\newcommand{\curvedashed}{\tikz[baseline=-0.6ex]\draw[thick, dashed] (0,0) -- (1.6em,0);}
\newcommand{\markdot}{\tikz[baseline=-0.6ex]\fill (0,0) circle (1.1pt);}
\newcommand{\markring}{\tikz[baseline=-0.6ex]\draw (0,0) circle (1.6pt);}"""
PANEL_GAP = 24.0  # pt between two panels side by side
TICKS = 30.0  # pt left of a panel for its y tick labels
NAMES = 30.0  # pt right of a panel for the names of its curves
NAME_GAP = 10.0  # pt at least between the two names' baselines
PLOT_HEIGHT = 110.0  # pt
WHOLE = 3.0  # GELU bends between about -3 and 3: beyond, it is about 0 on the left, x on the right
SAMPLES = 61  # points of a drawn curve
SPOT = 0.5  # pt: points closer than this share one mark (a mark is over 2 pt wide)
BAND = 2.0  # pt: the least width of the band where the inputs lie


def _coords(points: Iterable[tuple[object, object]]) -> str:
    return " ".join(f"({x},{y})" for x, y in points)


def _curve(fn: Callable[[np.ndarray], np.ndarray], lo: float, hi: float) -> str:
    xs = np.linspace(lo, hi, SAMPLES)
    return _coords((f"{x:.5g}", f"{y:.5g}") for x, y in zip(xs, fn(xs), strict=True))


def _spots(
    points: Iterable[tuple[Decimal, Decimal]], box: tuple[float, float, float, float], width: float
) -> list[tuple[Decimal, Decimal]]:
    """The points as marks on a panel `width` × PLOT_HEIGHT pt showing `box` (x0, x1, y0,
    y1): one mark per SPOT-sized square, at the first point in it in order of x. A reader
    sees every point marked, and however many there are, a curve carries a few hundred."""
    x0, x1, y0, y1 = box
    spots: dict[tuple[int, int], tuple[Decimal, Decimal]] = {}
    for x, y in sorted(points):
        spot = (
            round((float(x) - x0) / (x1 - x0) * width / SPOT),
            round((float(y) - y0) / (y1 - y0) * PLOT_HEIGHT / SPOT),
        )
        spots.setdefault(spot, (x, y))
    return list(spots.values())


def _limits(values: Iterable[float], pad: float = 0.08) -> tuple[float, float]:
    """A range holding every value with a margin of `pad` of its span on either side."""
    vs = list(values)
    lo, hi = min(vs), max(vs)
    margin = pad * (hi - lo) or pad * max(abs(lo), 1e-6)
    return lo - margin, hi + margin


def _names(x: float, limits: tuple[float, float]) -> list[str]:
    """GELU and GELU' named beside the right ends of their curves (at x), outside the plot
    where no curve or mark runs, moved apart to NAME_GAP pt when the ends are closer."""
    g, d = (float(fn(np.array([x]))[0]) for fn in (ops.gelu, ops.gelu_grad))
    gap = NAME_GAP * (limits[1] - limits[0]) / PLOT_HEIGHT
    if abs(g - d) < gap:
        mid, up = (g + d) / 2, 1 if g >= d else -1
        g, d = mid + up * gap / 2, mid - up * gap / 2
    return [
        rf"\node[anchor=west] at (axis cs:{x:.6g},{y:.6g}) {{{name}}};"
        for y, name in ((g, "GELU"), (d, "GELU$'$"))
    ]


def gelu_curves(
    marks: Sequence[tuple[Decimal, Decimal, Decimal]],
    ends: tuple[str, str],
    *,
    layout: Layout,
    caption: str,
) -> str:
    """GELU (solid) and its derivative (dashed): on the left the whole bend, the inputs' span
    a grey band; on the right close up over that span, each input marked on both curves.
    `marks`: (x, GELU(x), GELU'(x)) as printed; `ends`: the smallest and largest x as printed,
    which label the close-up's axis."""
    width = (layout.text_width - 2 * (TICKS + NAMES) - PANEL_GAP) / 2
    key = (
        r"\curvesolid\ GELU$(x)$, \curvedashed\ its slope GELU$'(x)$; \markdot\ and "
        rf"\markring: this step's {len(marks)} inputs (those within half a point share a mark); "
        "grey band: where they lie"
    )
    return "\n".join(
        [
            r"\begin{figblock}",
            r"\begin{tikzpicture}",
            *_whole_panel([float(m[0]) for m in marks], width),
            *_close_panel(marks, ends, width),
            r"\end{tikzpicture}",
            rf"\figkey{{{key}}}",
            rf"\figcaption{{{caption}}}",
            r"\end{figblock}",
        ]
    )


def _whole_panel(xs: list[float], width: float) -> list[str]:
    """GELU and GELU' over at least -WHOLE..WHOLE (wider if an input lies outside), the span
    of the inputs `xs` shaded."""
    lo, hi = min(xs), max(xs)
    reach = max(WHOLE, math.ceil(max(abs(lo), abs(hi))))
    grid = np.linspace(-reach, reach, SAMPLES)
    y0, y1 = _limits([*ops.gelu(grid), *ops.gelu_grad(grid)], pad=0.05)
    thin = BAND * reach / width - (hi - lo) / 2  # a narrow band is widened to be seen
    if thin > 0:
        lo, hi = lo - thin, hi + thin
    return [
        rf"\begin{{axis}}[figure, width={width:.1f}pt, height={PLOT_HEIGHT}pt, "
        rf"xmin={-reach}, xmax={reach}, ymin={y0:.3f}, ymax={y1:.3f}, title={{the whole curve}}]",
        rf"\fill[black!15] (axis cs:{lo:.5g},{y0:.3f}) rectangle (axis cs:{hi:.5g},{y1:.3f});",
        rf"\draw[black!40] (axis cs:{-reach},0) -- (axis cs:{reach},0);",
        rf"\addplot[curve] coordinates {{{_curve(ops.gelu, -reach, reach)}}};",
        rf"\addplot[curve, dashed] coordinates {{{_curve(ops.gelu_grad, -reach, reach)}}};",
        *_names(reach, (y0, y1)),
        r"\end{axis}",
    ]


def _close_panel(
    marks: Sequence[tuple[Decimal, Decimal, Decimal]], ends: tuple[str, str], width: float
) -> list[str]:
    """GELU and GELU' over the inputs' span, each input marked on both, the axis running
    from the smallest input to the largest, labelled with them as printed."""
    xs = [float(m[0]) for m in marks]
    lo, hi = min(xs), max(xs)
    x0, x1 = _limits(xs, pad=0.05)
    near = np.linspace(x0, x1, SAMPLES)
    ys = [float(v) for m in marks for v in m[1:]]
    c0, c1 = _limits([*ys, *ops.gelu(near), *ops.gelu_grad(near)])
    ticks = [(lo, ends[0]), (hi, ends[1])]
    if min(-lo, hi) > 0.2 * (x1 - x0):  # 0 is inside, its label clear of the ends'
        ticks.insert(1, (0.0, "0"))

    def plot(style: str, k: int) -> str:
        spots = _spots(((m[0], m[k]) for m in marks), (x0, x1, c0, c1), width)
        points = _coords((format(x, "f"), format(y, "f")) for x, y in spots)
        return rf"\addplot[only marks, {style}] coordinates {{{points}}};"

    return [
        rf"\begin{{axis}}[figure, at={{({width + NAMES + PANEL_GAP + TICKS:.1f}pt,0)}}, "
        rf"width={width:.1f}pt, height={PLOT_HEIGHT}pt, xmin={x0:.6g}, xmax={x1:.6g}, "
        rf"ymin={c0:.6g}, ymax={c1:.6g}, title={{close up: this step's inputs}}, "
        # the ticks are labelled as printed, a power of ten included
        r"scaled x ticks=false, "
        rf"xtick={{{','.join(f'{x:.6g}' for x, _ in ticks)}}}, "
        rf"xticklabels={{{','.join(f'{{${t}$}}' for _, t in ticks)}}}]",
        rf"\addplot[curve] coordinates {{{_curve(ops.gelu, x0, x1)}}};",
        rf"\addplot[curve, dashed] coordinates {{{_curve(ops.gelu_grad, x0, x1)}}};",
        plot("mark=*, mark size=1.1pt", 1),
        plot("mark=o, mark size=1.6pt", 2),
        *_names(x1, (c0, c1)),
        r"\end{axis}",
    ]


MAX_BARS = 16  # words a bar chart labels at most (13 pt a bar)
BAR_PITCH = 13.0  # pt


def _label_room(cell: str) -> float:
    """Width in pt of a value printed beside its bar at 8 pt, the node's padding and a gap."""
    return cell_width(cell) * 8 / 9 + 10


def _bar_panel(
    nums: Sequence[Num], *, at: float, width: float, title: str, words: str | None
) -> list[str]:
    """One horizontal bar chart, a bar per entry labelled with its printed value; the x range
    leaves room for the labels left of negative bars and right of the others."""
    vs = [float(x.cell) for x in nums]
    lo, hi = min(0.0, *vs), max(0.0, *vs)
    left = max((_label_room(x.cell) for x, v in zip(nums, vs, strict=True) if v < 0), default=0)
    right = max((_label_room(x.cell) for x, v in zip(nums, vs, strict=True) if v >= 0), default=0)
    per_pt = ((hi - lo) or 1.0) / (width - left - right)
    count = len(nums)
    ticks = rf"ytick={{0,...,{count - 1}}}, yticklabels={{{words}}}" if words else r"ytick=\empty"
    lines = [
        rf"\begin{{axis}}[figure, bars, at={{({at:.1f}pt,0)}}, width={width:.1f}pt, "
        rf"height={count * BAR_PITCH:.1f}pt, ymin=-0.6, ymax={count - 0.4}, {ticks}, "
        rf"xmin={lo - left * per_pt:.6g}, xmax={hi + right * per_pt:.6g}, title={{{title}}}]",
    ]
    for side, negative in (("right", False), ("left", True)):
        chosen = " ".join(
            f"({x.cell},{j}) [{x.cell}]"
            for j, (x, v) in enumerate(zip(nums, vs, strict=True))
            if (v < 0) == negative
        )
        if chosen:  # labels right of a bar that goes right, left of one that goes left
            lines.append(
                rf"\addplot[bar, nodes near coords align={side}] coordinates {{{chosen}}};"
            )
    lines += [rf"\draw (axis cs:0,-0.6) -- (axis cs:0,{count - 0.4});", r"\end{axis}"]
    return lines


def softmax_bars(
    words: Sequence[str],
    before: Sequence[Num],
    after: Sequence[Num],
    *,
    titles: tuple[str, str],
    layout: Layout,
    caption: str,
) -> str:
    """A row of scores (left) and the probabilities softmax makes of it (right) as horizontal
    bars, one row per word, each bar labelled with its printed value. Empty for more than
    MAX_BARS words."""
    if len(words) > MAX_BARS:
        return ""
    names = ",".join(rf"{{\textit{{{tex_escape(w)}}}}}" for w in words)
    label = 4.6 * max(map(len, words)) + 8
    width = (layout.text_width - label - 2 * PANEL_GAP - 4) / 2
    left = _bar_panel(before, at=0, width=width, title=titles[0], words=names)
    right = _bar_panel(after, at=width + 2 * PANEL_GAP, width=width, title=titles[1], words=None)
    middle = len(words) * BAR_PITCH / 2
    arrow = (
        rf"\draw[->] ({width + 6:.1f}pt,{middle:.1f}pt) -- "
        rf"node[above] {{softmax}} ({width + 2 * PANEL_GAP - 6:.1f}pt,{middle:.1f}pt);"
    )
    return "\n".join(
        [
            r"\begin{figblock}",
            r"\begin{tikzpicture}",
            *left,
            arrow,
            *right,
            r"\end{tikzpicture}",
            rf"\figcaption{{{caption}}}",
            r"\end{figblock}",
        ]
    )


# --- the Falk scheme ------------------------------------------------------------------------
SHOWN = 4  # entries of a long side shown: the first SHOWN − 1, an ellipsis, the last


def _picks(n: int, keep: int) -> list[int | None]:
    """Indices shown along a side of n entries: all of them, or the first keep − 1, None for
    an ellipsis, and the last; `keep` (the worked index) always among them."""
    if n <= SHOWN:
        return list(range(n))
    first = list(range(SHOWN - 1))
    if keep >= SHOWN - 1 and keep != n - 1:
        first = [*range(SHOWN - 2), keep]
    return [*first, None, n - 1]


def falk(
    a: np.ndarray,
    b: np.ndarray,
    result: Num,
    idx: tuple[int, int],
    *,
    names: tuple[str, str, str],
    caption: str,
    layout: Layout,
) -> str:
    """C = A B laid out as Falk did: A to the left, B above, C where they meet. Row i of A and
    column j of B are shaded, and C's entry (i, j) is framed with its value; long sides are
    shown in part with ellipses. `a`, `b` hold the factors' printed cells (Nums). Empty when
    it would not fit the page width (the sum is worked below it anyway)."""
    i, j = idx
    m, k = a.shape
    n = b.shape[1]
    rows, inner, cols = _picks(m, i), _picks(k, 0), _picks(n, j)

    def width(x: Num, shaded: bool) -> float:
        return FOOTNOTE_SCALE * cell_width(x.cell) + SHADE * shaded

    # each column as wide as its widest number, or its ellipsis; the result sits in column j
    widths = [
        DOTS if c is None else max(width(a[r, c], r == i) for r in rows if r is not None)
        for c in inner
    ]
    widths += [
        DOTS
        if c is None
        else max(
            [width(b[r, c], c == j) for r in inner if r is not None]
            + [width(result, True)] * (c == j)
        )
        for c in cols
    ]
    if not fits((w + FALK_SEP for w in widths), layout):
        return ""

    def cell(x: Num | None, on: bool) -> str:
        if x is None:
            return r"\cdots"
        text = rf"${x.cell}$"
        return rf"\shade{{{grey(0.5)}}}{{{text}}}" if on else text

    def dots(vertical: bool) -> str:
        return r"\vellipsis" if vertical else r"$\cdots$"

    lines = []
    # B above, to the right of an empty block as wide as A
    for r in inner:
        left = " & ".join([""] * len(inner))
        if r is None:
            right = " & ".join(dots(True) for _ in cols)
        else:
            right = " & ".join(dots(False) if c is None else cell(b[r, c], c == j) for c in cols)
        lines.append(rf"{left} & {right} \\")
    lines.append(r"\hline")
    # A to the left, C to the right
    for r in rows:
        if r is None:
            lines.append(" & ".join(dots(True) for _ in [*inner, *cols]) + r" \\")
            continue
        left = " & ".join(dots(False) if c is None else cell(a[r, c], r == i) for c in inner)
        right = " & ".join(
            ""
            if c is None
            else (rf"\marked{{${result.cell}$}}" if (r, c) == (i, j) else r"$\cdot$")
            for c in cols
        )
        lines.append(rf"{left} & {right} \\")
    spec = "c" * len(inner) + "|" + "c" * len(cols)
    label = rf"{names[0]} to the left, {names[1]} above, {names[2]} where they meet"
    return "\n".join(
        [
            r"\begin{figblock}",
            rf"\falktitle{{{label}}}",
            rf"\begin{{falk}}{{{spec}}}",
            *lines,
            r"\end{falk}",
            rf"\figcaption{{{caption}}}",
            r"\end{figblock}",
        ]
    )


# --- where a chapter sits in the model ---------------------------------------------------------
# A few words for each kind of chapter (its intro), for the map of the model.
SHORT = {
    "embed": "embed",
    "pre_ln": "LayerNorm",
    "qkv": "Q, K, V",
    "scores": "scores, softmax",
    "mha": "heads, $W_O$",
    "ffn": "FFN",
    "residual_ln": "add, LayerNorm",
    "logits": "logits, loss",
    "loss_grad": "loss",
    "lm_grad": "$W_{\\mathrm{lm}}$",
    "ln_back": "LayerNorm",
    "ln_ffn_back": "LayerNorm, FFN",
    "ffn_back": "FFN",
    "attn_back": "attention",
    "embed_back": "embed",
    "adamw": "AdamW",
}


def model_map(boxes: list[tuple[int, str, str]], here: int | None, caption: str) -> str:
    """The chapters of one part as a chain of boxes, each with its number and a few words,
    the arrows labelled with the shape that flows along them; chapter `here` shaded. The
    boxes break across lines like words. `boxes`: (number, words, shape after it)."""
    parts = []
    for k, (number, words, shape) in enumerate(boxes):
        text = rf"\textbf{{{number}}}\,\ {words}"
        box = rf"\herebox{{{text}}}" if number == here else rf"\chapbox{{{text}}}"
        # one arrow glyph (an extensible arrow is drawn from overlapping pieces)
        arrow = rf"\ ${shape}\!\rightarrow$\ " if k < len(boxes) - 1 else ""
        parts.append(rf"\mbox{{{box}{arrow}}}")
    return "\n".join(
        [
            r"\begin{figblock}",
            r"{\raggedright\footnotesize " + " ".join(parts) + r"\par}",
            rf"\figcaption{{{caption}}}",
            r"\end{figblock}",
        ]
    )


# --- the model as a picture: one part's chapters and what flows between them -------------------
FLOW_STEP = 15  # mm from one box to the next
FLOW_HALF = 32  # mm: half a box's width
FLOW_LANE = 9  # mm between the lanes of arrows that skip chapters


@dataclass(frozen=True)
class Flow:
    """An arrow of a flow diagram: from box `a` to box `b` (indices), labelled."""

    a: int
    b: int
    label: str


def lanes(flows: Sequence[Flow]) -> dict[Flow, int]:
    """A lane (0, 1, …) for each arrow that skips boxes, so arrows whose spans overlap or
    touch never share one: the first lane whose last span ended before this one starts."""
    ends: list[int] = []
    out: dict[Flow, int] = {}
    for f in sorted(flows, key=lambda f: (min(f.a, f.b), max(f.a, f.b))):
        lo, hi = min(f.a, f.b), max(f.a, f.b)
        lane = next((k for k, end in enumerate(ends) if end < lo), len(ends))
        ends[lane : lane + 1] = [hi]
        out[f] = lane
    return out


def flow_diagram(boxes: Sequence[str], flows: Sequence[Flow], into: str, out: str) -> str:
    """Boxes top to bottom (LaTeX text), arrows between them: straight down to the next
    box, on the right to a later box (down) and on the left to an earlier one (a loop).
    `into` labels the arrow into the first box, `out` the arrow out of the last."""
    y = [-k * FLOW_STEP for k in range(len(boxes))]
    lines = [
        r"\begin{tikzpicture}[x=1mm,y=1mm,font=\footnotesize,>=stealth,"
        rf"box/.style={{draw,minimum width={2 * FLOW_HALF}mm,minimum height=7mm,"
        rf"text width={2 * FLOW_HALF - 4}mm,align=center,inner sep=1.5pt}},"
        r"lab/.style={fill=white,inner sep=1pt}]"
    ]
    for k, text in enumerate(boxes):
        lines.append(rf"\node[box] (b{k}) at (0,{y[k]}) {{{text}}};")
    lines.append(rf"\draw[->] (0,{FLOW_STEP * 0.75:g}) -- node[right,lab] {{{into}}} (b0.north);")
    last = len(boxes) - 1
    lines.append(
        rf"\draw[->] (b{last}.south) -- node[right,lab] {{{out}}} ++(0,{-FLOW_STEP * 0.75:g});"
    )
    skips = [f for f in flows if f.b != f.a + 1]
    lane = {**lanes([f for f in skips if f.b > f.a]), **lanes([f for f in skips if f.b < f.a])}
    for f in flows:
        if f.b == f.a + 1:
            lines.append(
                rf"\draw[->] (b{f.a}.south) -- node[right,lab] {{{f.label}}} (b{f.b}.north);"
            )
            continue
        side, sign = ("east", 1) if f.b > f.a else ("west", -1)
        dx = sign * (6 + FLOW_LANE * lane[f])
        # leave a box below its middle and arrive above it, so two arrows never share a stub;
        # the label runs along the lane, so lanes sit close
        lines.append(
            rf"\draw[->] ([yshift=-1.5mm]b{f.a}.{side}) -- ++({dx},0) |- "
            rf"node[pos=0.25,sloped,above,lab] {{{f.label}}} ([yshift=1.5mm]b{f.b}.{side});"
        )
    lines.append(r"\end{tikzpicture}")
    return "\n".join(lines)
