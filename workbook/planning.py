"""Planning a lesson: every exercise a selection holds, what it asks and about how long it
takes by hand (`workbook exercises`, `handouts --minutes`).

The count is the handout's own: a handout of the selection is laid out (as `handouts` lays
out every student's; every variant asks the same) and its blanks counted, with the products
their sums take and the values written on the way. The time is an estimate at stated rates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import engine
from .config import Config
from .modules import ADAM_TITLES
from .printed import Book
from .render import Options, select
from .render.base import Selection
from .render.exercises import Exercises
from .render.handout import Handout, Reader
from .trace import Contraction

# Seconds by hand with a calculator: a product (key in two numbers, multiply, add to the
# running sum), a value written down (read off, round, write), a value written on the way
# (an exponential, a tanh: a function key besides), a line of a derivation to fill in.
RATES = {"product": 15, "cell": 10, "written": 20, "line": 60}
RATES_TEXT = (
    "15 s a product, 10 s a value written down, 20 s a value written on the way "
    "(an exponential, a tanh), 1 min a line of a derivation"
)


@dataclass(frozen=True)
class Item:
    number: str
    title: str
    cells: int = 0
    products: int = 0
    written: int = 0
    lines: int = 0  # a derivation's lines to fill in

    @property
    def seconds(self) -> int:
        r = RATES
        return (
            r["product"] * self.products
            + r["cell"] * self.cells
            + r["written"] * self.written
            + r["line"] * self.lines
        )


def items(c: Config, chapters: str | None = None, sections: str | None = None) -> list[Item]:
    """The selection's exercises in the book's order, as a handout of it asks them."""
    t = engine.run(c)
    opts = select(Options(scaffold="faded", givens="start"), chapters, sections, t)
    last = max(Selection(t, opts).chapters)
    h = Handout(c, t, opts, Book(t, opts.digits, opts.arithmetic, last), reader=Reader("", "", ""))
    h.document()
    return of_handout(h)


def of_handout(h: Exercises) -> list[Item]:
    """What a laid-out handout asks, exercise by exercise, in the book's order."""
    out = [
        Item(number, exercise_title(h.t.step(h.blanks[number][0][0]).desc.title), *counts)
        for number, *counts in workload(h)
        if h.blanks[number]
    ]
    for number, (_, topic) in h.selection.derived.items():
        d = h.derived.get(topic)
        out.append(Item(number, "Derivation: " + plain_title(d.title), lines=len(d.keys)))
    return sorted(out, key=lambda i: tuple(int(k) for k in i.number.split(".")))


def exercise_title(tex: str) -> str:
    """An exercise's title as its handout prints it: an AdamW exercise, numbered by its
    first moment, asks the whole update (m, v and the new value)."""
    text = plain_title(tex)
    first = ADAM_TITLES["m"] + " of "
    return "AdamW update of " + text[len(first) :] if text.startswith(first) else text


def plain_title(tex: str) -> str:
    """A title the engine wrote in LaTeX, as plain text: First moment of W_Q^(1)."""
    text = re.sub(r"\\(mathrm|text|operatorname)\{([^{}]*)\}", r"\2", tex)
    text = re.sub(r"\^\{\(([^{}]*)\)\}", r"^(\1)", text)
    text = text.replace("\\_", "_").replace("\\", "")
    return re.sub(r"[${}]", "", text)


def table(found: list[Item]) -> str:
    """The exercises as a plain-text table for a terminal, with the total and the rates."""
    width = max([len(i.title) for i in found] + [5])
    counts = f"{'cells':>5} {'products':>8} {'on the way':>10}"
    lines = [f"{'exercise':<9}{'':<{width}}  {counts} {'time':>7}"]
    for i in found:
        asks = (
            f"{i.cells:>5} {i.products:>8} {i.written:>10}"
            if not i.lines
            else (f"{f'{i.lines} lines of a derivation':>25}")
        )
        lines.append(f"{i.number:<9}{i.title:<{width}}  {asks} {clock(i.seconds):>7}")
    total = sum(i.seconds for i in found)
    lines.append(f"{'all':<9}{'':<{width}}  {'':>25} {clock(total):>7}")
    lines.append(f"Times (minutes:seconds) are estimated at {RATES_TEXT}.")
    return "\n".join(lines)


def clock(seconds: int) -> str:
    """Whole seconds as minutes:seconds (a short exercise is 0:30, not 0 minutes), so that
    the lines add up to the total."""
    return f"{seconds // 60}:{seconds % 60:02d}"


def workload(h: Exercises) -> list[tuple[str, int, int, int]]:
    """Per exercise of a laid-out handout: the cells a student fills in, the products their
    sums take, and the values written on the way (a softmax's row maxima, exponentials and
    sums; GELU's u and tanh u). Every variant of a class asks the same."""
    rows = []
    for exercise, cells in h.blanks.items():
        products = 0
        for name, idx, *_ in cells:
            step = h.t.step(name)
            if isinstance(step, Contraction) and step.kind != "colsum":  # a column sum: adds
                products += step.factors(h.t.values, idx)[0].size
        written = h.written_count(h.t.step(cells[0][0])) if cells else 0
        rows.append((exercise, len(cells), products, written))
    return rows
