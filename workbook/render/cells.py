"""How a value a student writes is named on the page: an entry of a quantity, or a value
written on the way (a softmax row's maximum, exponential or sum; GELU's u or tanh u)."""

from __future__ import annotations

from ..grading import Asked, part_kind
from .fmt import element

# The written values' symbols: of the kind (the answer page's grids), and of one entry.
WRITTEN = {
    "max": (r"s^{\max}", lambda i, j: rf"s^{{\max}}_{{{i}}}"),
    "e": ("e_j", lambda i, j: rf"e_{{{i},{j}}}"),
    "sum": (r"\textstyle\sum_j e_j", lambda i, j: rf"\textstyle\sum_j e_{{{i},j}}"),
    "u": ("u", lambda i, j: rf"u_{{{i},{j}}}"),
    "tanh": (r"\tanh u", lambda i, j: rf"\tanh u_{{{i},{j}}}"),
}


def quantity_tex(a: Asked) -> str:
    """What a grid of such values holds (math): A^{(1)}, e_j, m[W_Q^{(1)}] ..."""
    kind = part_kind(a.entry.part)
    return WRITTEN[kind][0] if kind else a.step.desc.symbol


def value_tex(a: Asked) -> str:
    """One value (math): (A^{(1)})_{2,1}, e_{2,1}, s^{max}_2 ..."""
    e = a.entry
    kind = part_kind(e.part)
    if kind:
        i, j = (*e.idx, 0, 0)[:2]
        return WRITTEN[kind][1](i + 1, j + 1)
    return element(e.step.desc.symbol, e.idx)
