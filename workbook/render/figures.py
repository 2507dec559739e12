"""Figures drawn from the printed numbers at build time: heat maps of probabilities.

A heat map is a table whose cells are shaded grey by their value (darker for larger) and still
print the value, so nothing is carried by shade alone and black-and-white printing loses
nothing. Every figure has a one-sentence description beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..printed import Num
from .matrix import LABEL_WIDTH, TABCOLSEP, Layout, cell_width

DARKEST = 0.45  # the grey of the largest value: black digits stay legible on it
SCALE = (0.0, 0.25, 0.5, 0.75, 1.0)


def grey(value: float) -> str:
    """The cell's grey level for a value in [0, 1]: 1 is white, DARKEST is the darkest."""
    v = min(1.0, max(0.0, value))
    return f"{1 - (1 - DARKEST) * v:.3f}"


def fits(n_cols: int, nums: np.ndarray, layout: Layout, labels: Sequence[str] | None) -> bool:
    widest = max(cell_width(x.cell) for x in nums.ravel())
    label = LABEL_WIDTH if labels is None else max(LABEL_WIDTH, 5.0 * max(map(len, labels)))
    return label + n_cols * (widest + 2 * TABCOLSEP + 4) <= layout.text_width


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
    if not fits(cols, nums, layout, col_labels):
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
