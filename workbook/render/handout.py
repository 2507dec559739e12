"""A student's handout: the selected exercises of their own variant, with their name, id and
variant code on every page, faded worked examples and self-checks; compact, for printing."""

from __future__ import annotations

from dataclasses import dataclass

from pylatex import Document, NoEscape

from ..grading import Asked, asked
from ..names import name_macros, name_tex
from ..trace import Trace
from .base import softmax_written_heads
from .cells import quantity_tex
from .exercises import Exercises


@dataclass(frozen=True)
class Reader:
    """Who a handout (or a key's part) is for: a student, or only a variant code."""

    name: str
    id: str
    code: str


class Handout(Exercises):
    view = "handout"
    pdf_title = "One Training Step of a Transformer: handout"
    contents = False
    parts = False
    self_checks = True
    cites_workbook = False  # a student has only the handout

    def __init__(self, *args, reader: Reader, **kw) -> None:
        self.reader = reader
        super().__init__(*args, **kw)

    def make_context(self) -> dict[str, object]:
        r = self.reader
        return super().make_context() | {
            "student": NoEscape(name_tex(r.name)) if r.name else "",
            "student_id": r.id,
            "code": r.code,
        }

    def document(self) -> Document:
        doc = super().document()
        doc.preamble.append(NoEscape(name_macros([self.reader.name])))
        doc.preamble.append(self.prose("handout_preamble.tex.j2"))
        asks = asked(self)  # the chapters are laid out: the cells they ask are known
        if asks:
            doc.append(self.prose("answer_boxes.tex.j2"))
            doc.append(NoEscape(answer_boxes(asks, self.t)))
        return doc


ANSWER_BOX_MM = 15  # a box holds a signed number of 4 to 8 digits (−0.001484), written small
SOFTMAX_WRITTEN = ("s_max", "e", "sum_e")


def _box_place(a: Asked) -> tuple[str, int | None, int, str]:
    """Which grid of the answer page a value goes in, its row and column there, and that
    column's heading. A softmax's written values share one grid, as in the exercise."""
    if a.quantity in SOFTMAX_WRITTEN:
        cols = a.step.shape[1]
        col = {"s_max": 1, "sum_e": cols + 2}.get(a.quantity, (a.col or 0) + 1)
        heads = softmax_written_heads(cols)
        return "written", a.row, col, heads[col - 1]
    col = a.col or 1
    return a.quantity, a.row, col, "" if a.col is None else str(a.col)


def _given_zeros(a: Asked, t: Trace) -> set[tuple[int, int]]:
    """A softmax's masked exponentials, printed 0 in its grid: (row, column) of the answer
    page's grid for them (its columns: the maximum, each e_j, the sum)."""
    masked = getattr(t.producer(a.step.operands[0]), "consts", {}).get("masked")
    if masked is None:
        return set()
    rows, cols = a.step.shape
    return {(i + 1, j + 2) for i in range(rows) for j in range(cols) if masked[i, j]}


def answer_boxes(asks: list[Asked], t: Trace) -> str:
    """The grids of the answer page: one small grid per grid of the handout, its boxes at
    the rows and columns the handout's grid has them, in the order the values are asked."""
    groups: dict[tuple[str, str], list[tuple[Asked, tuple]]] = {}
    for a in asks:
        place = _box_place(a)
        groups.setdefault((a.exercise, place[0]), []).append((a, place))
    out = []
    for (exercise, grid), items in groups.items():
        first = items[0][0]
        # every row and column the grid has between its first and last asked: a row with
        # nothing asked stays, marked, so copying row by row cannot slip by one
        known = [p[1] for _, p in items if p[1] is not None]
        rows = list(range(1, max(known) + 1)) if known else [None]
        named = {p[2]: p[3] for _, p in items}
        if grid == "written":  # a softmax's: every column, a masked exponential's 0 given
            heads = dict(enumerate(softmax_written_heads(first.step.shape[1]), start=1))
        else:
            heads = {c: named.get(c, str(c)) for c in range(min(named), max(named) + 1)}
        asked_at = {(p[1], p[2]) for _, p in items}
        given = _given_zeros(first, t) if grid == "written" else set()
        what = r"written on the way" if grid == "written" else f"${quantity_tex(first)}$"
        label = rf"{exercise}\enspace {what}"
        if first.exp:
            label += rf"\enspace $\times 10^{{{first.exp}}}$"
        spec = "@{}r|" + f"p{{{ANSWER_BOX_MM}mm}}|" * len(heads) + "@{}"
        lines = [
            rf"\multicolumn{{{len(heads) + 1}}}{{@{{}}l}}{{{label}}} \\",
            " & " + " & ".join(rf"\hfil {h}" for h in heads.values()) + r" \\ \hline",
        ]
        for r in rows:
            cells = [
                "" if (r, c) in asked_at else r"\hfil 0" if (r, c) in given else r"\hfil--"
                for c in heads
            ]
            head = "" if r is None else str(r)
            lines.append(rf"{head}\rule{{0pt}}{{4.2mm}} & " + " & ".join(cells) + r" \\ \hline")
        body = "\n".join(lines)
        out.append(rf"\mbox{{\begin{{tabular}}[t]{{{spec}}}{body}\end{{tabular}}}}")
    gap = "\\hspace{5mm plus 2mm}\\allowbreak\n"
    start = "{\\footnotesize\\raggedright\\lineskiplimit=3mm\\lineskip=2.5mm\n"
    return start + gap.join(out) + "\\par}"
