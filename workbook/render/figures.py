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
from .matrix import (
    FIGURE_LABEL,
    FOOTNOTE_SCALE,
    LABEL_WIDTH,
    TABCOLSEP,
    Layout,
    cell_width,
    even_blocks,
    label_pt,
)

DARKEST = 0.6  # the grey of the largest value: black digits stay legible on it, photocopied too
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
    planned): a generous 5 pt per character of their LaTeX, or more for wide letters."""
    widths = [max(5.0 * len(s), label_pt(s)) for group in labels if group for s in group]
    return max([LABEL_WIDTH, *widths])


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
    if len(blocks) * rows <= layout.on_page(MAX_HEAT_ROWS):
        body = _value_tables(m, blocks)
        notes = "; the sign is printed with each value" if signed else ""
    else:
        body = _compact_table(m, room, layout.on_page(MAX_COMPACT_ROWS))
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


def _compact_table(m: _Map, room: float, most_rows: int) -> list[str]:
    """Small shaded cells without values in `room` pt, columns numbered in groups where one
    number would not fit a cell; empty when the cells would be too narrow or too many."""
    rows, cols = m.nums.shape
    width = min(COMPACT_WIDEST, room / cols - COMPACT_GAP)
    if width < COMPACT_NARROWEST or rows > most_rows:
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


# --- curves and bars (plain TikZ) --------------------------------------------------------------
# TikZ alone, positions computed here in pt: pgfplots cost about 0.75 s a TeX pass (loading it
# and its axes) for two figures, over a fifth of the default build.
TIKZ = r"""\usepackage{tikz}
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
TICK = 3.0  # pt, a tick's length


@dataclass(frozen=True)
class Panel:
    """A plot's frame: data range (x0, x1) × (y0, y1) drawn `width` × `height` pt, its
    lower left corner `at` pt right of the picture's origin."""

    x0: float
    x1: float
    y0: float
    y1: float
    width: float
    height: float = PLOT_HEIGHT
    at: float = 0.0

    def x(self, v: float) -> float:
        return self.at + (v - self.x0) / (self.x1 - self.x0) * self.width

    def y(self, v: float) -> float:
        return (v - self.y0) / (self.y1 - self.y0) * self.height

    def pt(self, x: float, y: float) -> str:
        return f"({self.x(x):.2f}pt,{self.y(y):.2f}pt)"

    def frame(self, title: str, xticks: Sequence[tuple[float, str]]) -> list[str]:
        """The left and bottom axes, ticks labelled, y ticks at round values, the title."""
        left, right, top = self.at, self.at + self.width, self.height
        lines = [
            rf"\draw ({left:.2f}pt,{top:.2f}pt) -- ({left:.2f}pt,0pt) -- ({right:.2f}pt,0pt);",
            rf"\node[above, inner sep=2pt] at ({(left + right) / 2:.2f}pt,{top:.2f}pt) "
            rf"{{{title}}};",
        ]
        for v, label in xticks:
            x = self.x(v)
            lines.append(
                rf"\draw ({x:.2f}pt,0pt) -- ({x:.2f}pt,{-TICK}pt) node[below] {{{label}}};"
            )
        for v in round_ticks(self.y0, self.y1):
            y = self.y(v)
            lines.append(
                rf"\draw ({left:.2f}pt,{y:.2f}pt) -- ({left - TICK:.2f}pt,{y:.2f}pt) "
                rf"node[left] {{${tick_label(v)}$}};"
            )
        return lines

    def clip(self) -> str:
        right = self.at + self.width
        return rf"\clip ({self.at:.2f}pt,0pt) rectangle ({right:.2f}pt,{self.height:.2f}pt);"


def tick_label(v: float) -> str:
    r"""A round value as math: 0.25, or 5\cdot 10^{-5} where Python would write 5e-05."""
    text = f"{v:g}"
    if "e" not in text:
        return text
    mantissa, exp = text.split("e")
    return rf"{mantissa}\cdot 10^{{{int(exp)}}}"


def round_ticks(lo: float, hi: float, most: int = 5) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart) inside [lo, hi], at most `most`."""
    span = hi - lo
    for unit in (10.0 ** math.floor(math.log10(span / most)) * f for f in (1, 2, 5, 10, 20)):
        first = math.ceil(lo / unit)
        ticks = [k * unit for k in range(first, math.floor(hi / unit) + 1)]
        if len(ticks) <= most:
            return [0.0 if abs(t) < unit / 2 else float(f"{t:.6g}") for t in ticks]
    return []


def _curve(panel: Panel, fn: Callable[[np.ndarray], np.ndarray], style: str = "") -> str:
    xs = np.linspace(panel.x0, panel.x1, SAMPLES)
    points = " ".join(panel.pt(x, y) for x, y in zip(xs, fn(xs), strict=True))
    return rf"\draw[thick{style}] plot coordinates {{{points}}};"


def _spots(
    points: Iterable[tuple[Decimal, Decimal]], panel: Panel
) -> list[tuple[Decimal, Decimal]]:
    """The points as marks on a panel: one mark per SPOT-sized square, at the first point in
    it in order of x. A reader sees every point marked, and however many there are, a curve
    carries a few hundred."""
    spots: dict[tuple[int, int], tuple[Decimal, Decimal]] = {}
    for x, y in sorted(points):
        spots.setdefault((round(panel.x(float(x)) / SPOT), round(panel.y(float(y)) / SPOT)), (x, y))
    return list(spots.values())


def _limits(values: Iterable[float], pad: float = 0.08) -> tuple[float, float]:
    """A range holding every value with a margin of `pad` of its span on either side."""
    vs = list(values)
    lo, hi = min(vs), max(vs)
    margin = pad * (hi - lo) or pad * max(abs(lo), 1e-6)
    return lo - margin, hi + margin


def _names(panel: Panel) -> list[str]:
    """GELU and GELU' named beside the right ends of their curves, outside the plot where no
    curve or mark runs, moved apart to NAME_GAP pt when the ends are closer."""
    x = panel.x1
    g, d = (panel.y(float(fn(np.array([x]))[0])) for fn in (ops.gelu, ops.gelu_grad))
    if abs(g - d) < NAME_GAP:
        mid, up = (g + d) / 2, 1 if g >= d else -1
        g, d = mid + up * NAME_GAP / 2, mid - up * NAME_GAP / 2
    right = panel.at + panel.width
    return [
        rf"\node[anchor=west] at ({right:.2f}pt,{y:.2f}pt) {{{name}}};"
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
    drawn = [
        *_whole_panel([float(m[0]) for m in marks], width),
        *_close_panel(marks, ends, width, at=width + NAMES + PANEL_GAP + TICKS),
    ]
    return tikz_figure(drawn, key, caption)


def tikz_figure(drawn: list[str], key: str, caption: str) -> str:
    """A TikZ picture in a figure block, with its key and its caption."""
    return "\n".join(
        [
            r"\begin{figblock}",
            r"\begin{tikzpicture}[font=\footnotesize]",
            *drawn,
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
    panel = Panel(-reach, reach, y0, y1, width)
    thin = BAND * reach / width - (hi - lo) / 2  # a narrow band is widened to be seen
    if thin > 0:
        lo, hi = lo - thin, hi + thin
    ticks = [(float(v), f"${tick_label(v)}$") for v in round_ticks(-reach, reach)]
    return [
        rf"\fill[black!15] {panel.pt(lo, y0)} rectangle {panel.pt(hi, y1)};",
        rf"\draw[black!40] {panel.pt(-reach, 0)} -- {panel.pt(reach, 0)};",
        r"\begin{scope}",
        panel.clip(),
        _curve(panel, ops.gelu),
        _curve(panel, ops.gelu_grad, ", dashed"),
        r"\end{scope}",
        *panel.frame("the whole curve", ticks),
        *_names(panel),
    ]


def _close_panel(
    marks: Sequence[tuple[Decimal, Decimal, Decimal]],
    ends: tuple[str, str],
    width: float,
    at: float,
) -> list[str]:
    """GELU and GELU' over the inputs' span, each input marked on both, the axis running
    from the smallest input to the largest, labelled with them as printed."""
    xs = [float(m[0]) for m in marks]
    lo, hi = min(xs), max(xs)
    x0, x1 = _limits(xs, pad=0.05)
    near = np.linspace(x0, x1, SAMPLES)
    ys = [float(v) for m in marks for v in m[1:]]
    c0, c1 = _limits([*ys, *ops.gelu(near), *ops.gelu_grad(near)])
    panel = Panel(x0, x1, c0, c1, width, at=at)
    # the ticks are labelled as printed, a power of ten included
    ticks = [(lo, f"${ends[0]}$"), (hi, f"${ends[1]}$")]
    if min(-lo, hi) > 0.2 * (x1 - x0):  # 0 is inside, its label clear of the ends'
        ticks.insert(1, (0.0, "$0$"))

    def plot(draw: str, k: int) -> list[str]:
        # each mark at a printed (x, y), which the comment gives for a reader of the source
        return [
            rf"{draw.format(panel.pt(float(x), float(y)))} % {x} {y}"
            for x, y in _spots(((m[0], m[k]) for m in marks), panel)
        ]

    return [
        r"\begin{scope}",
        panel.clip(),
        _curve(panel, ops.gelu),
        _curve(panel, ops.gelu_grad, ", dashed"),
        r"\end{scope}",
        *plot(r"\fill {} circle (1.1pt); % GELU", 1),
        *plot(r"\draw {} circle (1.6pt); % GELU'", 2),
        *panel.frame("close up: this step's inputs", ticks),
        *_names(panel),
    ]


MAX_BARS = 16  # words a bar chart labels at most (13 pt a bar)
BAR_PITCH = 13.0  # pt
BAR_WIDTH = 7.0  # pt


def _label_room(cell: str) -> float:
    """Width in pt of a value printed beside its bar at 8 pt, the node's padding and a gap."""
    return cell_width(cell) * 8 / 9 + 10


def _bar_panel(
    nums: Sequence[Num], *, at: float, width: float, title: str, words: Sequence[str] | None
) -> list[str]:
    """One horizontal bar chart, a bar per entry (the first on top) labelled with its printed
    value; the x range leaves room for the labels left of negative bars and right of the
    others."""
    vs = [float(x.cell) for x in nums]
    lo, hi = min(0.0, *vs), max(0.0, *vs)
    left = max((_label_room(x.cell) for x, v in zip(nums, vs, strict=True) if v < 0), default=0)
    right = max((_label_room(x.cell) for x, v in zip(nums, vs, strict=True) if v >= 0), default=0)
    per_pt = ((hi - lo) or 1.0) / (width - left - right)
    count = len(nums)
    panel = Panel(lo - left * per_pt, hi + right * per_pt, 0, count, width, count * BAR_PITCH, at)
    top = panel.height
    lines = [
        rf"\node[above, inner sep=2pt] at ({at + width / 2:.2f}pt,{top:.2f}pt) {{{title}}};",
        rf"\draw {panel.pt(0, 0)} -- {panel.pt(0, count)};",
    ]
    for j, (x, v) in enumerate(zip(nums, vs, strict=True)):
        mid = (count - j - 0.5) * BAR_PITCH
        lo_y, hi_y = mid - BAR_WIDTH / 2, mid + BAR_WIDTH / 2
        zero, end = panel.x(0), panel.x(v)
        side = "west" if v >= 0 else "east"
        # the bar of row j has the length of its printed value, which labels it
        lines.append(
            rf"\filldraw[fill=black!25] ({zero:.2f}pt,{lo_y:.2f}pt) rectangle "
            rf"({end:.2f}pt,{hi_y:.2f}pt); \node[anchor={side}] at ({end:.2f}pt,{mid:.2f}pt) "
            rf"{{${x.cell}$}}; % bar {j} {x.cell}"
        )
        if words is not None:
            lines.append(rf"\node[left] at ({at:.2f}pt,{mid:.2f}pt) {{{words[j]}}};")
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
    names = [rf"\textit{{{tex_escape(w)}}}" for w in words]
    label = max(label_pt(w, FIGURE_LABEL) for w in words) + 8
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
            r"\begin{tikzpicture}[font=\footnotesize, >=stealth]",
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


# --- AdamW's first step -----------------------------------------------------------------------
ZERO_BAND = 0.8  # decades of width the signed logarithmic axis leaves around g = 0
UPDATE_HEIGHT = 120.0  # pt
MAX_DECADE_TICKS = 5  # labelled powers of ten on each side of 0
EDGE_LABEL = 16.0  # pt right of the plot for half its last tick label, 10^{0}


def update_scatter(
    points: Sequence[tuple[float, float]],
    *,
    lr: float,
    eps: float,
    layout: Layout,
    caption: str,
) -> str:
    """Each parameter's step θ' − θ (up, linear) against its gradient g (across, on a
    logarithmic scale each way from 0, so that 10⁻⁹ and 10⁻¹ both show): the curve
    −η g/(|g| + ε) that the first step follows, and dashed lines at ±η."""
    sizes = [abs(g) for g, _ in points if g != 0]
    if not sizes:
        return ""
    lo, hi = math.floor(math.log10(min(sizes))), math.ceil(math.log10(max(sizes)))
    reach = hi - lo + ZERO_BAND

    def across(g: float) -> float:
        return 0.0 if g == 0 else math.copysign(math.log10(abs(g)) - lo + ZERO_BAND, g)

    def gradient(x: float) -> float:
        return math.copysign(10 ** (abs(x) - ZERO_BAND + lo), x)

    width = layout.text_width - TICKS - EDGE_LABEL
    panel = Panel(-reach, reach, -1.3 * lr, 1.3 * lr, width, UPDATE_HEIGHT, at=TICKS)
    left, right, top = panel.at, panel.at + panel.width, panel.height
    lines = [
        rf"\draw ({left:.2f}pt,{top:.2f}pt) -- ({left:.2f}pt,0pt) -- ({right:.2f}pt,0pt);",
        rf"\draw[black!40] {panel.pt(-reach, 0)} -- {panel.pt(reach, 0)};",
    ]
    for v, label in ((lr, r"\eta"), (0.0, "0"), (-lr, r"-\eta")):
        y = panel.y(v)
        lines.append(
            rf"\draw ({left:.2f}pt,{y:.2f}pt) -- ({left - TICK:.2f}pt,{y:.2f}pt) "
            rf"node[left] {{${label}$}};"
        )
        if v:
            lines.append(rf"\draw[dashed] {panel.pt(-reach, v)} -- {panel.pt(reach, v)};")
    step = max(1, math.ceil((hi - lo + 1) / MAX_DECADE_TICKS))
    ticks = [(0.0, "$0$")]
    for k in range(hi, lo - 1, -step):
        x = k - lo + ZERO_BAND
        ticks += [(x, f"$10^{{{k}}}$"), (-x, f"$-10^{{{k}}}$")]
    for x, label in ticks:
        px = panel.x(x)
        lines.append(rf"\draw ({px:.2f}pt,0pt) -- ({px:.2f}pt,{-TICK}pt) node[below] {{{label}}};")
    for sign in (1, -1):  # the curve, each side of the band around 0
        xs = np.linspace(ZERO_BAND, reach, SAMPLES) * sign
        ys = [-lr * gradient(x) / (abs(gradient(x)) + eps) for x in xs]
        coords = " ".join(panel.pt(x, y) for x, y in zip(xs, ys, strict=True))
        lines.append(rf"\draw[thick] plot coordinates {{{coords}}};")
    spots: dict[tuple[int, int], tuple[float, float]] = {}
    for g, moved in sorted(points):
        x, y = across(g), max(-1.3 * lr, min(1.3 * lr, moved))
        spots.setdefault((round(panel.x(x) / SPOT), round(panel.y(y) / SPOT)), (x, y))
    lines += [rf"\fill {panel.pt(x, y)} circle (0.9pt);" for x, y in spots.values()]
    zero = sum(1 for g, _ in points if g == 0)
    key = (
        r"\markdot\ a parameter (those within half a point share a dot); \curvesolid\ "
        r"$-\eta\,g/(|g| + \epsilon)$; dashed: $\pm\eta$"
        + (f"; the {zero} dots at 0 have no gradient" if zero else "")
    )
    return tikz_figure(lines, key, caption)
