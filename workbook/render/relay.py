"""The relay's documents as LaTeX: the cards (two or four to a page, with cut marks), the
poster and the teacher's plan. Numbers come from the printed chain (`printed.Book`) and the
lesson (`relay.Lesson`); prose from templates; names through `name_tex`, words through
`tex_escape`.

A card sets each row of a quantity it computes as a table with a column per entry, in the
order of the work: a product's left factor down the left and each entry's right factor in
its column, its results below; then the element-wise steps that follow (a scaling, GELU's
u and tanh u, a residual sum), a softmax's exponentials and weights (its maximum and sum in
the left column). A mean, a variance or a single value is a line. A value the card copies
from another gets a dashed box at its first use, with the number of the card that makes it
in the corner; an entry of the same column written higher up is marked ↑, another of the
card's values is named; a parameter or a given value is printed. A table too wide for the
card is set in blocks of columns.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from pylatex import NoEscape

from .. import __version__, hand
from ..hand import derived_const, sig
from ..jobs import PACE, Cell, Cost, boxes
from ..names import name_macros, name_tex
from ..printed import single
from ..relay import Card, Lesson, idle, what_n_buys
from ..trace import Contraction, Elementwise, Gather, Index, RowWise, Step
from .base import jinja_env
from .fmt import Fmt, element, tex_escape
from .matrix import column_blocks
from .steps import general

MM = 72.27 / 25.4  # pt per mm
PAPER_MM = {"a4": (210.0, 297.0), "letter": (215.9, 279.4)}
POSTER_MM = {"a4": (297.0, 420.0), "letter": (279.4, 431.8)}  # A3, tabloid (11 × 17 in)
PAD_MM = 7.0  # inside a card: room for a printer's margin and a ragged cut
BOX_W, BOX_H, BOX_DEPTH = 15.0, 5.5, 1.6  # mm, a box to write a value in, below the baseline
ROW_H = 7.0  # mm, a row of a card's table: a box and a gap
PAD_COL = 2 * 2.5 / MM  # \tabcolsep on each side of a column of a card's table
COL_MM = BOX_W + PAD_COL
CUT_TICK = 5.0  # mm, a cut mark at the edge of the page


def mm(x: float) -> str:
    return f"{x:.2f}mm"


# --- constants a formula uses, as the card prints them ------------------------------------
def constants(step: Elementwise, f: Fmt) -> list[str]:
    """The constants of an element-wise formula, each as `symbol = value` (math)."""
    c, name = step.consts, step.formula.name
    out = []
    if "scale" in c:
        out.append(rf"1/\sqrt{{d_k}} = {f.const(derived_const(c['scale']))}")
    if name in ("gelu", "gelu_backward"):
        out.append(rf"\sqrt{{2/\pi}} = {f.const(hand.SQRT_2_OVER_PI)}")
    if "eps" in c:
        eps = r"\epsilon" if "lr" in c else r"\varepsilon"  # AdamW's, else LayerNorm's
        out.append(rf"{eps} = {f.const(c['eps'])}")
    symbols = (("beta1", r"\beta_1"), ("beta2", r"\beta_2"), ("lr", r"\eta"))
    out += [rf"{sym} = {f.const(c[k])}" for k, sym in symbols if k in c]
    if "weight_decay" in c:
        out.append(rf"\lambda = {f.const(c['weight_decay'])}")
    if "t" in c:
        out.append(rf"t = {c['t']}")
    if "count" in c:
        out.append(rf"T - 1 = {c['count']}")
    return out


@dataclass
class Piece:
    """Consecutive entries of one step on a card."""

    step: Step
    idxs: list[Index]


def pieces(plan: Lesson, card: Card) -> list[Piece]:
    out: list[Piece] = []
    for name, idx in card.job.entries:
        if out and out[-1].step.name == name:
            out[-1].idxs.append(idx)
        else:
            out.append(Piece(plan.cut.flow.t.step(name), [idx]))
    return out


def where(idxs: list[Index], row_size: Callable[[int], int] | None = None) -> str:
    """Which entries of a quantity: "row 2", "rows 1–3", "row 2, columns 1–2" (columns only
    when the row has more computed entries than these: `row_size`), "entries 1–4" (of a
    vector), or "" (a scalar)."""
    if not idxs or not idxs[0]:
        return ""
    if len(idxs[0]) == 1:
        return _span("entry", "entries", [i[0] for i in idxs])
    rows = sorted({i[0] for i in idxs})
    text = _span("row", "rows", rows)
    cols = sorted({i[1] for i in idxs})
    if len(rows) == 1 and (row_size is None or row_size(rows[0]) > len(cols)):
        text += ", " + _span("column", "columns", cols)
    return text


def _span(one: str, many: str, xs: list[int]) -> str:
    xs = sorted(set(xs))
    if len(xs) == 1:
        return f"{one} {xs[0] + 1}"
    if xs == list(range(xs[0], xs[-1] + 1)):
        return f"{many} {xs[0] + 1}--{xs[-1] + 1}"
    return f"{many} " + ", ".join(str(x + 1) for x in xs)


def row_size(plan: Lesson, name: str) -> Callable[[int], int]:
    """How many entries of each row of a quantity the relay computes."""
    counts: dict[int, int] = {}
    for n, idx in plan.cut.maker:
        if n == name and idx:
            counts[idx[0]] = counts.get(idx[0], 0) + 1
    return lambda row: counts.get(row, 0)


HEAD = re.compile(r"head (\d+)")


def title(plan: Lesson, card: Card) -> str:
    """What a card computes: the titles of its quantities in order ("Query-key dot
    products · scale and mask · softmax: attention weights, head 1"), a head named once,
    and which entries of the last; cards that pack one kind of quantity of several heads
    say so once ("Queries of heads 1 and 2")."""
    parts = pieces(plan, card)
    titles = list(dict.fromkeys(p.step.desc.title for p in parts))
    heads = list(dict.fromkeys(m.group(1) for t in titles for m in [HEAD.search(t)] if m))
    if len(heads) > 1:  # packed: "Queries of heads 1 and 2"
        titles = list(dict.fromkeys(HEAD.sub("heads", t) for t in titles))
        many = ", ".join(heads[:-1]) + " and " + heads[-1]
        titles = [t.replace("heads", f"heads {many}") for t in titles]
    one = len(heads) == 1 and len(titles) > 1 and all(HEAD.search(t) for t in titles)
    if one:  # "Query-key dot products · scale and mask · softmax, head 2"
        titles = [HEAD.sub("", t).rstrip(", ") for t in titles]
    text = " · ".join(t if k == 0 else _lower(t) for k, t in enumerate(titles))
    if one:
        text += f", head {heads[0]}"
    main = max(reversed(parts), key=lambda p: len(p.idxs))  # the most entries, the last
    idxs = [i for p in parts if p.step.name == main.step.name for i in p.idxs]
    place = where(idxs, row_size(plan, main.step.name))
    return f"{text}, {place}" if place else text


def _lower(title: str) -> str:
    """A title's first letter in lower case, unless it starts an acronym (GELU)."""
    return title if title[1:2].isupper() else title[:1].lower() + title[1:]


@dataclass
class Row:
    """A row of a card's table: its label, the cell left of the columns (a product's left
    factor, a softmax's maximum or sum) and how it shows in a later block of columns
    (copied once: then named), and its cells by column."""

    label: str
    left: str
    cells: dict[int, str]
    again: str = ""
    rule: bool = False  # a rule above it


@dataclass
class Section:
    """Pieces of one row of a card set as one table: a column per entry (the same column
    index in each piece), each piece adding rows: a product its factors and results, an
    element-wise step its operands, its values on the way and results, a softmax its
    exponentials and weights. A table too wide for the card is set in blocks of columns."""

    row: int
    columns: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # before the table (a row's σ̃)
    rows: list[Row] = field(default_factory=list)


class CardText:
    """One card's LaTeX."""

    def __init__(self, plan: Lesson, card: Card, f: Fmt, names: bool, width: float) -> None:
        """`width`: the card's text width in mm."""
        self.plan, self.card, self.f, self.width = plan, card, f, width
        self.flow = plan.cut.flow
        self.t, self.book = self.flow.t, plan.book
        self.mine = set(card.job.entries)
        self.boxed: set[Cell] = set()
        self.names = names

    # --- how a value shows where it is used -------------------------------------------
    def symbol(self, cell: Cell) -> str:
        return element(self.t.symbol(cell[0]), cell[1])

    def number(self, cell: Cell) -> str:
        return plain_number(self.book.values[cell[0]][cell[1]], self.f.digits)

    def source(self, cell: Cell) -> int:
        maker = self.plan.maker(cell)
        assert maker is not None
        return maker.number

    def copied(self, cell: Cell) -> bool:
        return cell in self.plan.cut.maker and cell not in self.mine

    def value(self, cell: Cell, column: Index | None = None) -> str:
        """A read value as a table shows it: printed (a parameter, a given value), a
        dashed box at a copied value's first use, ↑ for the entry of the same column
        written higher up on this card, else its name."""
        cell = self.resolved(cell)
        if cell in self.flow.fixed:
            return fixed(self.flow.fixed[cell])
        if cell in self.mine:
            if column is not None and cell[1][-1:] == column[-1:]:
                return r"\madeabove"
            return f"${self.symbol(cell)}$"
        if cell in self.plan.cut.maker:
            if cell in self.boxed:
                return rf"$\scriptstyle {self.symbol(cell)}$"
            self.boxed.add(cell)
            return rf"\cp{{{self.source(cell)}}}"
        return f"${self.number(cell)}$"

    def resolved(self, cell: Cell) -> Cell:
        """The entry a lookup, slice, concatenation or copy stands for."""
        src = self.flow.resolve(cell)
        return src[0] if len(src) == 1 else cell

    def named(self, cell: Cell) -> str:
        """A value in a line of formula: its name when the card writes or copies it, its
        number when printed."""
        cell = self.resolved(cell)
        if cell in self.flow.fixed:
            return fixed(self.flow.fixed[cell])[len(r"\fixedval{$") : -2]
        if cell in self.mine or cell in self.plan.cut.maker:
            return self.symbol(cell)
        return self.number(cell)

    def rounding(self) -> str:
        return f"round each value you write to {self.f.digits} significant digits"

    # --- the card ----------------------------------------------------------------------
    def tex(self) -> str:
        plan, card = self.plan, self.card
        parts = pieces(plan, card)
        copy = self.copy_in(parts)
        work = self.work(parts)
        who = f"Student {card.student}"
        name = plan.students[card.student - 1].name if self.names else ""
        if name:
            who += rf": {name_tex(name)}"
        head = title(plan, card)
        passed, check = self.pass_on(parts), self.check()
        lines = [
            rf"\cardhead{{{card.number}}}{{Round {card.round} of {plan.rounds}}}{{{who}}}",
            rf"\cardtitle{{{head}}}",
            *copy,
            *work,
            rf"\cardrule{{{self.rounding().capitalize()}.}}",
            passed,
            check,
        ]
        return "\n".join(line for line in lines if line)

    def copy_in(self, parts: list[Piece]) -> list[str]:
        """Copied values no table of the card has a place for (the inputs of a mean, a
        variance or a sum; a row's mean or variance an element-wise step uses), boxed
        first, grouped by the card that makes them."""
        loose: dict[int, list[Cell]] = {}
        for p in parts:
            for idx in p.idxs:
                for cell in self.loose_reads(p.step, idx):
                    if self.copied(cell) and cell not in self.boxed:
                        loose.setdefault(self.source(cell), []).append(cell)
                        self.boxed.add(cell)
        if not loose:
            return []
        items = [
            rf"\mbox{{${self.symbol(c)}$\,\cp{{{number}}}}}"
            for number, cells in loose.items()
            for c in dict.fromkeys(cells)
        ]
        return [r"\cardpart{Copy in}", r"\copyline{" + r"\hspace{2mm plus 1mm} ".join(items) + "}"]

    def loose_reads(self, step: Step, idx: Index) -> list[Cell]:
        """What an entry reads that is not set in a table's column."""
        if isinstance(step, RowWise | Gather) and not _is_softmax(step):
            return self.flow.reads(step, idx)
        if isinstance(step, Elementwise) and len(idx) == 2:
            raw = step.raw_inputs(self.flow.cells, idx)
            out = []
            for x, how in zip(raw, step.align, strict=True):
                if how in ("i", ""):
                    out += self.flow.resolve(x)
            return out
        if isinstance(step, Elementwise):
            return self.flow.reads(step, idx)
        return []

    def work(self, parts: list[Piece]) -> list[str]:
        """Tables for the rows of matrices, lines for vectors and single values, in the
        order the card computes them."""
        out: list[str] = []
        section: Section | None = None
        for p in parts:
            if self.tabular(p):
                row = p.idxs[0][0] if len(p.idxs[0]) == 2 else -1
                if section is None or section.row != row or not self.joins(section, p):
                    if section is not None:
                        out.append(self.table(section))
                    section = Section(row)
                self.add(section, p)
            else:
                if section is not None:
                    out.append(self.table(section))
                    section = None
                out += [self.line(p.step, idx) for idx in p.idxs]
        if section is not None:
            out.append(self.table(section))
        return out

    @staticmethod
    def tabular(p: Piece) -> bool:
        """Set in a table: the rows of a matrix, column sums."""
        step = p.step
        if isinstance(step, Contraction) and step.kind in ("colsum", "coldot"):
            return True
        if len(p.idxs[0]) != 2 or isinstance(step, Gather):
            return False
        return len({i[0] for i in p.idxs}) == 1

    def joins(self, section: Section, p: Piece) -> bool:
        """Does a piece continue a section: the same row, and columns of the same kind
        (the scores' positions, not the values' dimensions)?"""
        if isinstance(p.step, Contraction) and p.step.kind in ("colsum", "coldot"):
            return False
        width = p.step.shape[-1]
        return section.rows != [] and self._width == width

    # --- a section's rows -----------------------------------------------------------------
    def add(self, section: Section, p: Piece) -> None:
        step = p.step
        self._width = step.shape[-1]
        cols = [idx[-1] for idx in p.idxs]
        if _is_softmax(step):
            cols = list(range(step.shape[-1]))
        section.columns = sorted(set(section.columns) | set(cols))
        if isinstance(step, Contraction):
            self.add_product(section, step, p.idxs)
        elif _is_softmax(step):
            self.add_softmax(section, step, p.idxs)
        else:
            self.add_elementwise(section, step, p.idxs)

    def result_row(self, section: Section, step: Step, idxs: list[Index], left: str = "") -> None:
        i = section.row
        label = element(step.desc.symbol, (i, "j") if i >= 0 else ("j",))
        cells = {idx[-1]: r"\bx" for idx in idxs}
        if i >= 0:
            for j in range(step.shape[-1]):
                cell = (step.name, (i, j))
                if j not in cells and cell in self.flow.fixed:
                    cells[j] = fixed(self.flow.fixed[cell])
        section.rows.append(Row(f"${label}$", left, cells, rule=True))

    def add_product(self, section: Section, step: Contraction, idxs: list[Index]) -> None:
        terms = {idx: self.flow.terms(step, idx) for idx in idxs}
        if step.kind in ("colsum", "coldot"):
            depth = max(len(v) for v in terms.values())
            sides = (0, 1) if step.kind == "coldot" else (0,)
            for k in range(depth):
                for side in sides:
                    cells, label = {}, ""
                    for idx in idxs:
                        if k < len(terms[idx]):
                            cell = self.resolved(terms[idx][k][side])
                            cells[idx[-1]] = self.value(cell)
                            label = element(self.t.symbol(cell[0]), (cell[1][0], "j"))
                    section.rows.append(Row(f"${label}$", "", cells, rule=side == 0 and k > 0))
            how = (
                "add down each column"
                if step.kind == "colsum"
                else "multiply the two numbers of each pair of rows, and add the products "
                "down the column"
            )
            section.notes.append(rf"${step.desc.symbol}$: {how}.")
            self.result_row(section, step, idxs)
            return
        lefts = list(dict.fromkeys(a for idx in idxs for a, _ in terms[idx]))
        right = {idx: dict(terms[idx]) for idx in idxs}
        for a in lefts:
            cells = {}
            for idx in idxs:
                j = idx[-1]
                if a not in right[idx]:
                    cells[j] = r"\none"
                elif step.kind == "jacobian":
                    i, k = a[1]
                    given = self.book.jacobian_values(step.name, i)[k, j]
                    cells[j] = f"${plain_number(given, self.f.digits)}$"
                else:
                    cells[j] = self.value(right[idx][a])
            first, shown = self.value(a), self.symbol(self.resolved(a))
            again = first if first.startswith("$") else ""  # boxed in the first block
            section.rows.append(Row(f"${shown}$", first, cells, again))
        if step.bias is not None:
            cells = {idx[-1]: self.value((step.bias, idx[-1:])) for idx in idxs}
            section.rows.append(Row("bias", "", cells))
        how = "the number on the left times the one in its column, added down the column"
        how += " with the bias" if step.bias is not None else ""
        if step.kind == "jacobian":
            how += rf"; the column is $J_{{{idxs[0][0] + 1}}}$ (given)"
        section.notes.append(rf"${step.desc.symbol}$: {how}.")
        self.result_row(section, step, idxs)

    def add_elementwise(self, section: Section, step: Elementwise, idxs: list[Index]) -> None:
        consts = constants(step, self.f)
        note = "$" + general(step, self.t) + "$"
        if consts:
            note += r", with $" + r",\ ".join(consts) + "$"
        for name, how in zip(step.operands, step.align, strict=True):
            if how not in ("ij", "j"):
                continue
            k = step.operands.index(name)
            cells = {}
            for idx in idxs:
                src = self.flow.resolve(step.raw_inputs(self.flow.cells, idx)[k])
                cells[idx[-1]] = self.value(src[0], idx) if src else r"\none"
            if all(c == r"\madeabove" or c.startswith(r"$\scriptstyle") for c in cells.values()):
                continue  # values written higher up on the card
            section.rows.append(Row(f"${self.t.symbol(name)}$", "", cells))
        if "target" in step.consts:
            cells = {idx[-1]: f"${self.f.const(step.constants(idx)['target'])}$" for idx in idxs}
            section.rows.append(Row("$y$", "", cells))
        for _, shown in _entry_parts(self.book, step, idxs):
            section.rows.append(Row(f"${shown}$", "", {idx[-1]: r"\bx" for idx in idxs}))
        if any("sigma" in self.book.parts[step.name].get(idx, {}) for idx in idxs):
            i = idxs[0][0]
            var = self.flow.resolve(step.raw_inputs(self.flow.cells, idxs[0])[2])[0]
            eps = self.f.const(step.consts["eps"])
            sigma = rf"\tilde\sigma_{{{i + 1}}} = \sqrt{{{self.named(var)} + {eps}}}"
            section.lines.append(rf"\workline{{${sigma}$ = \bx}}")
        section.notes.append(note + ".")
        self.result_row(section, step, idxs)

    def add_softmax(self, section: Section, step: RowWise, idxs: list[Index]) -> None:
        i = idxs[0][0]
        src = step.operands[0]
        inputs, es = {}, {}
        for j in range(step.shape[-1]):
            cell = (src, (i, j))
            inputs[j] = self.value(cell, (i, j))
            es[j] = r"\fixedval{$0$}" if cell in self.flow.fixed else r"\bx"
        top = r"\bxtag{$\max$}"
        if section.rows and all(
            c == r"\madeabove" or c.startswith(r"\fixedval") for c in inputs.values()
        ):
            section.rows[-1].left = top
        else:
            section.rows.append(Row(f"${element(self.t.symbol(src), (i, 'j'))}$", top, inputs))
        section.rows.append(Row("$e_j$", r"\bxtag{$\Sigma$}", es, rule=True))
        s = element(self.t.symbol(src), (i, "j"))
        a = element(step.desc.symbol, (i, "j"))
        section.notes.append(
            rf"$\max$ (left): the largest ${s}$; $e_j = \exp({s} - \max)$; $\Sigma$ (left): "
            rf"the sum of the $e_j$; ${a} = e_j/\Sigma$."
        )
        self.result_row(section, step, idxs)

    def table(self, section: Section) -> str:
        """The section's notes, lines and table, in blocks of as many columns as the card
        is wide enough for."""
        left = any(r.left for r in section.rows)
        heads = dict(zip(section.columns, self.column_heads(section), strict=True))
        out = [rf"\worknote{{{n}}}" for n in section.notes] + section.lines
        for b, block in enumerate(self.blocks(section, left)):
            spec = "r" + ("l" if left else "") + "|" + "B" * len(block)
            lead = " & " * (1 + left)
            lines = [lead + " & ".join(heads[j] for j in block) + r" \\ \hline"]
            for k, row in enumerate(section.rows):
                cells = [row.label] + ([row.left if b == 0 else row.again] if left else [])
                cells += [row.cells.get(j, "") for j in block]
                rule = r"\hline " if row.rule and k > 0 else ""
                lines.append(rule + " & ".join(cells) + r" \\")
            out.append(f"\\begin{{worktab}}{{{spec}}}\n" + "\n".join(lines) + "\n\\end{worktab}")
        return "\n".join(out)

    def blocks(self, section: Section, left: bool) -> list[list[int]]:
        """The section's columns in as few blocks as fit the card's width, as even as
        they come: a column with a box is a box wide, one of printed values (a masked
        position's −∞ and 0) narrower."""
        label = max((text_mm(r.label) for r in section.rows), default=0.0) + 1.0
        room = self.width - label - (COL_MM if left else 0.0)
        widths = []
        for j in section.columns:
            cells = [r.cells.get(j, "") for r in section.rows]
            boxed = any(BOX in c for c in cells for BOX in (r"\bx", r"\cp"))
            widths.append(COL_MM if boxed else max(map(text_mm, cells), default=0.0) + PAD_COL)
        cols = section.columns
        return [cols[b.start : b.stop] for b in column_blocks(widths, room)]

    def column_heads(self, section: Section) -> list[str]:
        """Column numbers from 1; a vocabulary's words where the columns stand for them."""
        for name, _ in self.card.job.entries:
            if self.t.desc(name).cols == "vocab":
                words = [_short(w) for w in self.plan.config.vocab]
                return [rf"\colword{{{tex_escape(words[j])}}}" for j in section.columns]
        return [f"${j + 1}$" for j in section.columns]

    # --- vectors and single values: one line each ---------------------------------------
    def line(self, step: Step, idx: Index) -> str:
        lhs = element(step.desc.symbol, idx)
        if isinstance(step, RowWise):
            row = self.flow._row(step, idx)
            names = [self.named(c) for c in row]
            n = len(row)
            along = len(row[0][1]) == 2 and n > 3  # a row of a matrix: Σ over its columns
            x = element(self.t.symbol(row[0][0]), (row[0][1][0], "j")) if along else ""
            if step.kind == "var":
                mu = self.named(self.flow.cells[step.operands[1]][idx[:1]])
                terms = [f"({x} - {mu})^2"] if along else [f"({y} - {mu})^2" for y in names]
                rhs = (rf"\sum_j {terms[0]}" if along else " + ".join(terms)) + f" / {n}"
            elif step.kind == "sum":
                rhs = rf"\sum_j {x}" if along else " + ".join(names)
            else:
                rhs = rf"\sum_j {x} / {n}" if along else rf"\bigl({' + '.join(names)}\bigr)/{n}"
        elif isinstance(step, Gather):
            rhs = " + ".join(self.named(c) for c in self.flow.resolve((step.name, idx)))
        else:
            raw = step.raw_inputs(self.flow.cells, idx)
            args = [self.named(self.flow.resolve(x)[0]) for x in raw]
            rhs = step.formula.general("", *args).split("=", 1)[1]
        return rf"\workline{{${lhs} = {rhs}$ = \bx}}"

    # --- where results go, and the check ----------------------------------------------
    def pass_on(self, parts: list[Piece]) -> str:
        """Where each result goes: its cells on the poster (they carry this card's number),
        and the cards that copy them from there."""
        plan = self.plan
        lines = []
        for p in parts:
            cells = [(p.step.name, idx) for idx in p.idxs]
            poster = plan.on_poster(cells[0])
            numbers = sorted({r.number for c in cells for r in plan.readers.get(c, [])})
            if not poster and not numbers:
                continue  # used on this card only
            what = rf"${p.step.desc.symbol}$ {where(p.idxs, row_size(plan, p.step.name))}"
            to = "the poster" if poster else ""
            if numbers:
                read = ("card " if len(numbers) == 1 else "cards ") + ", ".join(map(str, numbers))
                to += f"; read by {read}" if poster else read
            lines.append(rf"{what.strip()} $\to$ {to}")
        if not lines:
            return ""
        return r"\cardpart{Pass on}" + "\n" + r"\passline{" + r"\\ ".join(lines) + "}"

    def check(self) -> str:
        check = self.plan.check(self.card)
        if check.kind == "total":
            total = f"${exact_text(check.target)}$"
            return (
                rf"\cardcheck{{Add up every number in a solid box: the total is exactly {total}.}}"
            )
        if check.kind == "digits":
            return rf"\cardcheck{{The digits of your result add up to {check.target}.}}"
        ((cell, _),) = boxes(self.book, self.card.job)
        sym = element(self.t.step(cell[0]).desc.symbol, cell[1])
        low, high = exact_text(-check.target), exact_text(check.target)
        bounds = (
            rf"at least ${low}$ and less than ${high}$"
            if check.negative
            else rf"more than ${low}$ and at most ${high}$"
        )
        return (
            rf"\cardcheck{{Multiply back: ${check.n}\times {sym}$ minus the sum of the "
            rf"{check.n} values it divides is {bounds}.}}"
        )


def fixed(value: Decimal | None) -> str:
    """An entry the mask sets (−∞, 0), or one nothing needs (a dash), greyed."""
    if value is None:
        return r"\none"
    return r"\fixedval{$-\infty$}" if value.is_infinite() else r"\fixedval{$0$}"


SCRIPT = re.compile(r"[_^](\{(?:[^{}]|\{[^{}]*\})*\}|.)")
COMMAND = re.compile(r"\\(mathrm|mathit|textit|tilde|hat|bar|scriptstyle|textstyle)\b|\\[,;!]")
CHAR_MM, SCRIPT_MM = 1.75, 1.25  # a character of a card's label, in the line and as a script


STACKED = re.compile(r"\^(\{(?:[^{}]|\{[^{}]*\})*\}|.)_(\{(?:[^{}]|\{[^{}]*\})*\}|.)")


def text_mm(tex: str) -> float:
    """A generous estimate of how wide a card's label (text or math) is set, in mm: a
    superscript and a subscript stand one above the other."""
    tex = STACKED.sub(lambda m: "_" + max(m.group(1), m.group(2), key=len), tex)
    scripts = "".join(m.group(1) for m in SCRIPT.finditer(tex))
    body = SCRIPT.sub("", tex)

    def count(t: str) -> int:
        t = COMMAND.sub("", t)
        t = re.sub(r"\\[A-Za-z]+", "x", t)  # a symbol such as \sigma: one character
        return sum(1 for ch in t if ch not in "{}$ ")

    return CHAR_MM * count(body) + SCRIPT_MM * count(scripts)


CARD_WORD = 9  # characters of a word a card's column heading shows


def _short(word: str) -> str:
    return word if len(word) <= CARD_WORD else word[: CARD_WORD - 1] + "\N{HORIZONTAL ELLIPSIS}"


def _is_softmax(step: Step) -> bool:
    return isinstance(step, RowWise) and step.kind == "softmax"


def _entry_parts(book, step: Step, idxs: list[Index]) -> list[tuple[str, str]]:
    """The values an element-wise step writes per entry (GELU's u and tanh u), by key."""
    symbols = {"u": "u", "tanh": r"\tanh u", "grad": r"\mathrm{GELU}'", "sqrt_v": r"\sqrt{\hat v}"}
    keys = list(
        dict.fromkeys(k for idx in idxs for k in book.parts.get(step.name, {}).get(idx, {}))
    )
    return [(k, symbols.get(k, k)) for k in keys if k not in ("sigma",)]


PLAIN_ZEROS = 5  # a value with more zeros after the point is written with a power of ten


def plain_number(x: Decimal, digits: int) -> str:
    """A value rounded to the digits, as a calculator shows it: 0.005026, not 5.026·10⁻³,
    unless it would start with more than PLAIN_ZEROS zeros (math)."""
    v = sig(x, digits)
    if v != 0 and v.is_finite() and not -PLAIN_ZEROS - 1 <= v.adjusted() < digits + 2:
        return Fmt(digits)(single(v, digits))
    return format(v, "f").replace("-", "{-}")


def exact_text(x: Decimal) -> str:
    """An exact decimal as a learner writes it: no exponent, a true minus."""
    text = format(x, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".") or "0"
    return text.replace("-", "{-}")


# --- the documents --------------------------------------------------------------------------
@dataclass(frozen=True)
class Sheet:
    """How cards sit on a page: four quarters, or two halves side by side (a quarter's
    width, twice its height: a card grows downwards, its tables split into blocks of
    columns); each card's content inset by PAD_MM."""

    paper: str
    per_page: int

    @property
    def size(self) -> tuple[float, float]:
        return PAPER_MM[self.paper]

    @property
    def slot(self) -> tuple[float, float]:
        w, h = self.size
        return w / 2, (h / 2 if self.per_page == 4 else h)

    @property
    def content(self) -> tuple[float, float]:
        w, h = self.slot
        return w - 2 * PAD_MM, h - 2 * PAD_MM

    def corners(self) -> list[tuple[float, float]]:
        """Each slot's top-left corner (mm from the page's lower left), in reading order."""
        _, h = self.size
        sw, sh = self.slot
        rows = round(h / sh)
        return [(c * sw, h - r * sh) for r in range(rows) for c in range(2)]

    def cut_marks(self) -> str:
        """Ticks where the cuts meet the page's edges, a cross where they meet each other,
        and the cuts themselves dotted in grey."""
        w, h = self.size
        sw, sh = self.slot
        t = CUT_TICK
        out = [r"\linethickness{0.3pt}"]
        out += [  # the cut down the middle
            rf"\put({sw:.2f},0){{\line(0,1){{{t}}}}}",
            rf"\put({sw:.2f},{h - t:.2f}){{\line(0,1){{{t}}}}}",
            rf"\multiput({sw:.2f},{t + 2:.2f})(0,2){{{int((h - 2 * t - 4) / 2)}}}"
            r"{\cutdot{0}{1}}",
        ]
        if self.per_page == 4:  # and across
            out += [
                rf"\put(0,{sh:.2f}){{\line(1,0){{{t}}}}}",
                rf"\put({w - t:.2f},{sh:.2f}){{\line(1,0){{{t}}}}}",
                rf"\multiput({t + 2:.2f},{sh:.2f})(2,0){{{int((w - 2 * t - 4) / 2)}}}"
                r"{\cutdot{1}{0}}",
                rf"\put({sw - 3:.2f},{sh:.2f}){{\line(1,0){{6}}}}",
                rf"\put({sw:.2f},{sh - 3:.2f}){{\line(0,1){{6}}}}",
            ]
        return "\n".join(out)


def preamble(title: str, kind: str) -> str:
    """The preamble's macros for the cards, the poster or the plan."""
    w, h = POSTER_CELL
    sizes = {
        "cell_width": f"{w:g}",
        "cell_height": f"{h:g}",
        "cell_tag": f"{h - 2.6:g}",  # the card number near the cell's top
        "cell_middle": f"{h / 2 - 1.2:g}",
        "cell_depth": "1.1",  # below the baseline, \arraystretch 1
        "box_width": BOX_W,
        "box_height": BOX_H,
        "box_depth": BOX_DEPTH,
        "tag_x": round(BOX_W - 0.5, 2),
        "tag_y": round(BOX_H - 0.5, 2),
        "strut_height": ROW_H,  # from the strut's foot, BOX_DEPTH + 0.8 mm below the line
        "strut_depth": round(BOX_DEPTH + 0.8, 2),
    }
    template = jinja_env().get_template("relay_preamble.tex.j2")
    return template.render(title=NoEscape(title), version=__version__, kind=kind, **sizes)


def cards_source(plan: Lesson, sheet: Sheet) -> str:
    """Every card, in round order, `sheet.per_page` to a page, with cut marks."""
    f = Fmt(plan.book.digits)
    names = any(s.name for s in plan.students)
    w, h = sheet.size
    cw, ch = sheet.content
    head = [
        r"\documentclass[10pt]{article}",
        rf"\usepackage[paperwidth={mm(w)},paperheight={mm(h)},margin=0mm]{{geometry}}",
        r"\usepackage{eso-pic}",
        r"\usepackage[hidelinks]{hyperref}",
        preamble("Relay cards", "cards"),
        name_macros([s.name for s in plan.students]) if names else "",
        rf"\setlength{{\cardw}}{{{mm(cw)}}}",
        rf"\setlength{{\cardh}}{{{mm(ch)}}}",
        r"\pagestyle{empty}",
        r"\begin{document}",
    ]
    body = []
    corners = sheet.corners()
    for start in range(0, len(plan.cards), sheet.per_page):
        placed = []
        for (x, y), card in zip(corners, plan.cards[start : start + sheet.per_page], strict=False):
            text = CardText(plan, card, f, names, cw).tex()
            placed.append(
                rf"\placecard{{{x + PAD_MM:.2f}}}{{{y - PAD_MM:.2f}}}{{{card.number}}}{{{text}}}"
            )
        body.append(
            r"\AddToShipoutPictureFG*{\setlength{\unitlength}{1mm}"
            + sheet.cut_marks()
            + "\n"
            + "\n".join(placed)
            + "}\n\\null\\clearpage"
        )
    return "\n".join(head + body + [r"\end{document}", ""])


# --- the poster ---------------------------------------------------------------------------
POSTER_CELL = (17.0, 9.5)  # mm, a cell to write a value in: room for a hand-written number
COLUMN_RULE = 2 * 1.0 / MM + 0.15  # mm, \tabcolsep on either side and a rule
POSTER_MARGIN = 10.0


def poster_source(plan: Lesson, paper: str) -> str:
    """The poster: every quantity the cards hand on or end with, as empty matrices whose
    cells carry the number of the card that fills them, in the order of the step, grouped
    by chapter; the loss at the bottom."""
    t = plan.cut.flow.t
    w, h = POSTER_MM[paper]
    room = w - 2 * POSTER_MARGIN
    head = [
        r"\documentclass[10pt]{article}",
        rf"\usepackage[paperwidth={mm(w)},paperheight={mm(h)},margin={mm(POSTER_MARGIN)}]{{geometry}}",
        r"\usepackage[hidelinks]{hyperref}",
        preamble("Relay poster", "poster"),
        r"\pagestyle{empty}",
        r"\begin{document}",
        r"\raggedright",
        jinja_env()
        .get_template("relay_poster.tex.j2")
        .render(
            scope=plan.scope,
            sentence=NoEscape(tex_escape(plan.config.sentence, breakable=True)),
            cards=len(plan.cards),
            rounds=plan.rounds,
        ),
    ]
    body = []
    scalars = []
    for name in plan.poster_steps:
        step = t.step(name)
        if not step.shape:
            scalars.append(step)
            continue
        body.append(poster_matrix(plan, step, room) + r"\hspace{6mm plus 2mm}\allowbreak")
    for step in scalars:  # the loss, at the bottom
        card = plan.maker((step.name, ()))
        body.append(rf"\plast{{${step.desc.symbol}$ ({step.desc.title})}}{{{card.number}}}")
    return "\n".join(head + body + [r"\end{document}", ""])


def poster_matrix(plan: Lesson, step: Step, room: float) -> str:
    """One quantity as a grid of cells, each with the number of the card that fills it;
    a masked entry shows its value (−∞, 0), one no card computes a dot."""
    t = plan.cut.flow.t
    fixed_ = plan.cut.flow.fixed
    shape = step.shape if len(step.shape) == 2 else (1, step.shape[0])
    rows, cols = shape
    words = t.desc(step.name).cols == "vocab"
    w, _ = POSTER_CELL
    label_w = 5.0
    most = max(1, int((room - label_w - 2) // (w + COLUMN_RULE)))
    blocks = [list(range(s, min(s + most, cols))) for s in range(0, cols, most)]
    out = []
    for block in blocks:
        heads = [
            rf"\phead{{\textit{{{tex_escape(_short(plan.config.vocab[j]))}}}}}"
            if words
            else rf"\phead{{{j + 1}}}"
            for j in block
        ]
        lines = [" & " + " & ".join(heads) + r" \\ \hline"]
        for i in range(rows):
            cells = []
            for j in block:
                idx = (i, j) if len(step.shape) == 2 else (j,)
                cell = (step.name, idx)
                card = plan.maker(cell)
                if card is not None:
                    cells.append(rf"\pcell{{{card.number}}}")
                elif cell in fixed_ and fixed_[cell] is not None:
                    cells.append(
                        r"\pgrey{$-\infty$}" if fixed_[cell].is_infinite() else r"\pgrey{$0$}"
                    )
                else:
                    cells.append(r"\pnone")
            label = str(i + 1) if len(step.shape) == 2 else ""
            lines.append(rf"\scriptsize {label} & " + " & ".join(cells) + r" \\ \hline")
        spec = "r|" + "|".join([f"p{{{w:g}mm}}"] * len(block)) + "|"
        out.append(rf"\begin{{tabular}}[t]{{{spec}}}" + "\n".join(lines) + r"\end{tabular}")
    width = min(room, label_w + min(cols, most) * (w + COLUMN_RULE) + 2)
    caption = rf"\textbf{{{step.chapter}}}\enspace ${step.desc.symbol}$\enspace {step.desc.title}"
    return (
        rf"\begin{{pmatrix*}}{{{width:.1f}mm}}{{{caption}}}"
        + r"\par\smallskip ".join(out)
        + r"\end{pmatrix*}"
    )


def tiles_source(pages: int, paper: str, poster: str) -> str:
    """The poster on sheets of the paper size: each poster page in two halves, landscape,
    a little smaller than life so a printer's margin loses nothing, with marks to trim
    at and a line saying which half it is."""
    w, h = PAPER_MM[paper]
    pw, ph = POSTER_MM[paper]
    scale = 0.94
    head = [
        r"\documentclass[10pt]{article}",
        rf"\usepackage[paperwidth={mm(h)},paperheight={mm(w)},margin=0mm]{{geometry}}",
        r"\usepackage{graphicx}",
        r"\usepackage{eso-pic}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage{lmodern}",
        r"\pdftrailerid{}",
        r"\pagestyle{empty}",
        r"\begin{document}",
    ]
    body = []
    bp = 72 / 25.4
    iw, ih = pw * scale, ph / 2 * scale  # the half as printed
    x0, y0 = (h - iw) / 2, (w - ih) / 2
    for page in range(1, pages + 1):
        for half, (lo, hi) in enumerate(((ph / 2, ph), (0.0, ph / 2))):
            which = "top" if half == 0 else "bottom"
            join = (
                "its bottom edge to the top edge of the bottom half"
                if half == 0
                else ("its top edge to the bottom edge of the top half")
            )
            view = f"0 {lo * bp:.2f} {pw * bp:.2f} {hi * bp:.2f}"
            marks = "".join(
                rf"\put({x:.2f},{y:.2f}){{\line({dx},{dy}){{4}}}}"
                for x, y, dx, dy in (
                    (x0 - 5, y0, 1, 0),
                    (x0 + iw + 1, y0, 1, 0),
                    (x0 - 5, y0 + ih, 1, 0),
                    (x0 + iw + 1, y0 + ih, 1, 0),
                    (x0, y0 - 5, 0, 1),
                    (x0 + iw, y0 - 5, 0, 1),
                    (x0, y0 + ih + 1, 0, 1),
                    (x0 + iw, y0 + ih + 1, 0, 1),
                )
            )
            body.append(
                r"\AddToShipoutPictureFG*{\setlength{\unitlength}{1mm}"
                + rf"\put({x0:.2f},{y0:.2f}){{\includegraphics[page={page},viewport={view},"
                + rf"clip,width={iw:.2f}mm]{{{poster}}}}}"
                + marks
                + rf"\put({x0:.2f},2){{\tiny Poster page {page}, {which} half: trim at the "
                + rf"marks and join {join}.}}"
                + "}\\null\\clearpage"
            )
    return "\n".join(head + body + [r"\end{document}", ""])


# --- the plan -----------------------------------------------------------------------------
SCOPE_WHAT = {
    "forward": "one forward pass",
    "step": "one forward and backward pass",
    "selection": "the selected exercises",
}


def plan_source(plan: Lesson, per_page: int, paper: str) -> str:
    """The teacher's plan (see templates/relay_plan.tex.j2)."""
    c = plan.config
    f = Fmt(plan.book.digits)
    names = any(s.name for s in plan.students)
    n = len(plan.students)
    total = sum((plan.cut.cost(card.job) for card in plan.cards), Cost())
    path = plan.critical_path()
    lengths = [plan.schedule.length(r) / 60 for r in range(plan.rounds)]
    spare = idle(plan)
    sizes = [(str(k), str(r), f"{m:.0f}") for k, r, m in what_n_buys(plan.cut)]
    unlimited = what_n_buys(plan.cut, (len(plan.cards),))[0]
    context = {
        "what": SCOPE_WHAT[plan.scope],
        "students": n,
        "model": NoEscape(model_line(plan)),
        "sentence": NoEscape(tex_escape(c.sentence, breakable=True)),
        "digits": plan.book.digits,
        "cards": len(plan.cards),
        "rounds": plan.rounds,
        "busy": len({card.student for card in plan.cards}),
        "spare": len(spare),
        "products": total.products,
        "operations": total.functions + total.additions,
        "work": f"{sum(plan.seconds(card) for card in plan.cards) / 60:.0f}",
        "path_cards": len(path),
        "path_products": plan.products(path),
        "path_minutes": f"{sum(plan.seconds(card) for card in path) / 60:.0f}",
        "minutes": f"{plan.schedule.minutes():.0f}",
        "round_range": f"{min(lengths):.0f} to {max(lengths):.0f}"
        if round(min(lengths)) != round(max(lengths))
        else f"{max(lengths):.0f}",
        "handoff": f"{PACE.handoff / 60:g} minute" + ("s" if PACE.handoff != 60 else ""),
        "per_page": per_page,
        "sizes": sizes,
        "unlimited": f"{unlimited[2]:.0f}",
        "who": NoEscape(who_table(plan, spare, names)),
        "rounds_key": NoEscape(rounds_key(plan, f, names)),
        "path": NoEscape(path_text(plan, path)),
        "pace": NoEscape(pace_text()),
    }
    body = jinja_env().get_template("relay_plan.tex.j2").render(**context)
    w, h = PAPER_MM[paper]
    head = [
        r"\documentclass[10pt]{article}",
        rf"\usepackage[paperwidth={mm(w)},paperheight={mm(h)},margin=20mm]{{geometry}}",
        r"\usepackage{longtable}",
        r"\usepackage[hidelinks]{hyperref}",
        preamble("Relay plan", "plan"),
        name_macros([s.name for s in plan.students]) if names else "",
        r"\usepackage{fancyhdr}\pagestyle{fancy}\fancyhf{}\renewcommand{\headrulewidth}{0pt}",
        r"\fancyfoot[C]{\small\thepage}",
        r"\setlength{\parskip}{4pt plus 1pt}",
        r"\begin{document}",
    ]
    return "\n".join([*head, body, r"\end{document}", ""])


def model_line(plan: Lesson) -> str:
    c = plan.config
    preset = f"the {c.preset} model, " if c.preset else ""
    return (
        rf"{preset}$d_{{\mathrm{{model}}}} = {c.d_model}$, {c.heads} heads, "
        rf"$d_{{\mathrm{{ff}}}} = {c.d_ff}$, {c.layers} block{'s' * (c.layers > 1)}"
    )


def student_tex(plan: Lesson, s: int, names: bool) -> str:
    name = plan.students[s - 1].name if names else ""
    return f"{s}" + (rf" & {name_tex(name)}" if names else "")


def who_table(plan: Lesson, spare: dict[int, int], names: bool) -> str:
    """Per student: their cards, round by round, and their hand work in minutes."""
    cols = "r" + ("l" if names else "") + ">{\\raggedright\\arraybackslash}p{0.6\\linewidth}r"
    head = (
        "student"
        + (" & name" if names else "")
        + r" & cards (round: card numbers) & minutes \\ \hline"
    )
    lines = [
        rf"{{\small\setlength{{\LTleft}}{{0pt}}\begin{{longtable}}{{@{{}}{cols}@{{}}}}",
        head + r" \endhead",
    ]
    for s in range(1, len(plan.students) + 1):
        mine = plan.of(s)
        if mine:
            by_round: dict[int, list[int]] = {}
            for card in mine:
                by_round.setdefault(card.round, []).append(card.number)
            text = r"\enspace ".join(
                f"{r}: {', '.join(map(str, numbers))}" for r, numbers in by_round.items()
            )
            minutes = f"{sum(plan.seconds(card) for card in mine) / 60:.0f}"
        else:
            text, minutes = f"no card: checks the cards of student {spare[s]}", ""
        lines.append(rf"{student_tex(plan, s, names)} & {text} & {minutes} \\")
    lines.append(r"\end{longtable}}")
    return "\n".join(lines)


def results_text(plan: Lesson, card: Card, f: Fmt) -> str:
    """A card's results as the key gives them: the values it passes on or ends with."""
    out = []
    for name, idx in card.job.entries:
        cell = (name, idx)
        if plan.readers.get(cell) or plan.on_poster(cell):
            sym = element(plan.cut.flow.t.symbol(name), idx)
            out.append(rf"${sym} = {plain_number(plan.book.values[name][idx], f.digits)}$")
    return ", ".join(out)


def rounds_key(plan: Lesson, f: Fmt, names: bool) -> str:
    out = []
    for r in range(1, plan.rounds + 1):
        cards = [c for c in plan.cards if c.round == r]
        length = plan.schedule.length(r - 1) / 60
        out.append(
            rf"\subsection*{{Round {r}: {len(cards)} card{'s' * (len(cards) != 1)}, "
            rf"about {length:.0f} minute{'s' * (round(length) != 1)}}}"
        )
        spec = r"@{}rr>{\raggedright\arraybackslash}p{0.3\linewidth}"
        spec += r">{\raggedright\arraybackslash}p{0.45\linewidth}@{}"
        lines = [
            rf"{{\small\setlength{{\LTleft}}{{0pt}}\begin{{longtable}}{{{spec}}}",
            r"card & student & computes & results; check total \\ \hline \endhead",
        ]
        for card in cards:
            who = str(card.student)
            if names and plan.students[card.student - 1].name:
                who = name_tex(plan.students[card.student - 1].name)
            total = exact_text(plan.checksum(card))
            lines.append(
                rf"{card.number} & {who} & {title(plan, card)} & "
                rf"{results_text(plan, card, f)}; \textit{{check}} ${total}$ \\"
            )
        lines.append(r"\end{longtable}}")
        out += lines
    return "\n".join(out)


def path_text(plan: Lesson, path: list[Card]) -> str:
    steps = r", then ".join(
        rf"card {c.number} ({title(plan, c)}, {plan.seconds(c) / 60:.1f} min)" for c in path
    )
    return f"The longest chain of cards, each reading the one before: {steps}."


def pace_text() -> str:
    p = PACE
    return (
        f"{p.product:g} seconds for a multiplication or division, {p.function:g} for an "
        f"exponential, logarithm, tanh or square root, {p.addition:g} for an addition, "
        f"{p.write:g} to round a value and write it in a box, {p.copy:g} to copy one from the "
        f"poster, {p.card:g} to read a card, {p.check:g} per value added into its check, and "
        f"{p.handoff:g} seconds per round for the results to go up on the poster"
    )
