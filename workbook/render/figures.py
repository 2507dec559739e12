"""Figures drawn from the printed numbers at build time: heat maps of probabilities.

A heat map is a table whose cells are shaded grey by their value (darker for larger) and still
print the value, so nothing is carried by shade alone and black-and-white printing loses
nothing. Every figure has a one-sentence description beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..printed import Num
from .matrix import FOOTNOTE_SCALE, LABEL_WIDTH, TABCOLSEP, Layout, cell_width

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


def heatmap(
    nums: np.ndarray,
    *,
    title: str,
    caption: str,
    layout: Layout,
    masked: Callable[[tuple[int, int]], bool] = lambda idx: False,
    marked: Callable[[tuple[int, int]], bool] = lambda idx: False,
    col_labels: Sequence[str] | None = None,
    legend: str = "",
) -> str:
    """A probability matrix as a shaded table; masked cells blank with a dash, marked cells
    framed. Empty when it would not fit the page width (the numbers are printed anyway)."""
    rows, cols = nums.shape
    # the row labels are numbers; the estimate reserves room for the longest column label
    label = LABEL_WIDTH if col_labels is None else max(LABEL_WIDTH, 5.0 * max(map(len, col_labels)))
    pad = SHADE + 2 * TABCOLSEP
    widths = (max(cell_width(x.cell) for x in nums[:, j]) + pad for j in range(cols))
    if not fits(widths, layout, label):
        return ""
    heads = col_labels or [str(j + 1) for j in range(cols)]
    lines = [
        r"\begin{heatmap}{" + str(cols) + "}",
        rf"\multicolumn{{{cols + 1}}}{{@{{}}l}}{{{title}}} \\",
        " & " + " & ".join(rf"\colhead{{{h}}}" for h in heads) + r" \\",
    ]
    for i in range(rows):
        cells = []
        for j in range(cols):
            x: Num = nums[i, j]
            if masked((i, j)):
                cells.append(r"\masked")
                continue
            text = rf"${x.cell}$"
            if marked((i, j)):
                text = rf"\marked{{{text}}}"
            cells.append(rf"\shade{{{grey(float(x.value))}}}{{{text}}}")
        lines.append(rf"\rowhead{{{i + 1}}} & " + " & ".join(cells) + r" \\")
    lines.append(r"\end{heatmap}")
    scale = r"\ ".join(rf"\shade{{{grey(v)}}}{{${v:g}$}}" for v in SCALE)
    key = rf"\figkey{{shade: {scale}{legend}}}"
    return "\n".join(
        [r"\begin{figblock}", *lines, key, rf"\figcaption{{{caption}}}", r"\end{figblock}"]
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
