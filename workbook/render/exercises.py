"""The exercise version: the same chapters and givens, every computed value left blank."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from pylatex import Document, NoEscape
from pylatex.section import Chapter, Section

from ..hand import ZERO, derived_const
from ..printed import Num, single
from ..trace import Chapter as ChapterInfo
from ..trace import Contraction, Elementwise, RowWise, Step
from . import derivations, steps
from .base import ADAM_COLUMNS, ADAM_LABEL, Renderer, _m, key, softmax_written_heads
from .fmt import element, factor
from .matrix import (
    LABEL_WIDTH,
    TABCOLSEP,
    Falk,
    cell_width,
    falk_picks,
    table,
)

GRID_ROW_PT = 21.3  # one handwriting row of a blank grid: \arraystretch 1.9 × 11 pt, a rule
MIN_CELL_PT = 34.0  # a blank cell is at least this wide, whatever the answer's width
RULE = 0.4  # pt, a grid's rule between columns
# A section heading's height with the space above and below it (\section* at 10 pt: about
# 3.5ex + 2.3ex of glue and a 14 pt line), so the space kept for a heading and its first
# exercise lets the exercise's own \needspace pass on the same page.
HEADING_PT = 50.0
MAX_WORK_LINES = 15  # about half a page of ruled working space; beyond that, scratch paper
ADAM_VECTOR_ROWS = 16  # entries of a vector parameter asked for in its AdamW exercise
ADAM_GIVEN = 2  # an AdamW grid's first columns, θ and g, are given; the rest are to fill in
DERIVATION_NEED = 140.0  # pt a derivation exercise's heading keeps below it: its first lines


@dataclass(frozen=True)
class WrittenGrid:
    """A grid for values written on the way to a result. `fill(idx)` is "" for a blank
    cell; `entry(idx)` says which value a cell holds: the key of the step's parts (a softmax
    row's "max", "e2", "sum"; GELU's "u", "tanh") and the result entry it belongs to."""

    shape: tuple[int, ...]
    fill: Callable[[tuple[int, ...]], str]
    title: str
    heads: list[str] | None
    entry: Callable[[tuple[int, ...]], tuple[str, tuple[int, ...]]]


def grid_place(idx: tuple[int, ...]) -> tuple[int | None, int | None]:
    """Where an entry sits in its grid, 1-based: a vector is one row, a scalar a box."""
    if len(idx) == 2:
        return idx[0] + 1, idx[1] + 1
    return (1, idx[0] + 1) if idx else (None, None)


def spans(cols: list[int]) -> str:
    """0-based column indices as a reader counts them: "column 2", "columns 1 to 3",
    "columns 1 and 3"."""
    n = [j + 1 for j in cols]
    if len(n) == 1:
        return f"column {n[0]}"
    if len(n) > 2 and n == list(range(n[0], n[-1] + 1)):
        return f"columns {n[0]} to {n[-1]}"
    return "columns " + ", ".join(map(str, n[:-1])) + f" and {n[-1]}"


class Exercises(Renderer):
    view = "exercises"
    pdf_title = "One Training Step of a Transformer: exercises"

    self_checks = False  # checks under the grids (the classroom handouts print them)
    cites_workbook = True  # each exercise names the workbook section that works it
    selective = True

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.given_at: dict[str, str] = {}  # name → label where it was last printed
        self.products_seen = 0  # products asked so far: the faded scaffold counts them
        # The cells left blank, by exercise: (quantity, index, grid row, grid column), 1-based
        # as the grid shows them (a vector is one row; a scalar has neither).
        self.blanks: dict[str, list[tuple[str, tuple[int, ...], int | None, int | None]]] = {}
        self.printed_later: set[tuple[str, tuple[int, ...]]] = set()  # blanks a later line prints
        self.sections = self.workbook_sections()

    def document(self) -> Document:
        # each layout from the start
        self.products_seen, self.blanks, self.given_at, self.printed_later = 0, {}, {}, set()
        return super().document()

    def chapter_of(self, name: str) -> int:
        step = self.t.producer(name)
        return step.chapter if step is not None else 0

    # --- givens ------------------------------------------------------------------------
    def inputs(self, number: int) -> list[str]:
        """Results this chapter's exercises read that none of them computes: from earlier
        chapters, or from steps of this one that are not asked."""
        asked = {s.name for s in self.selection.asked(self.t, number)}
        names = []
        for s in self.selection.asked(self.t, number):
            for n in s.operands:
                if self.t.producer(n) is not None and n not in asked:
                    names.append(n)
        return list(dict.fromkeys(names))

    def is_given(self, name: str, number: int) -> bool:
        """Printed in this chapter, or carried forward from the learner's own exercise?"""
        first = number == self.chapters()[0]
        if self.opts.givens == "chapter" or first:
            return True
        # "start": only what no earlier selected exercise produced is printed
        return name not in self.picked

    def givens_section(self, number: int) -> Section | None:
        # only what the asked exercises read: a parameter no exercise uses is noise
        asked = self.selection.asked(self.t, number)
        reads = [n for s in asked for n in s.operands if n in self.param_names]
        params = list(dict.fromkeys(reads))
        if self.opts.givens == "start":
            params = [p for p in params if p not in self.given_at]
        inputs = self.inputs(number)
        printed = [n for n in inputs if self.is_given(n, number)]
        carried = [n for n in inputs if n not in printed]
        if not (params or printed):  # only the learner's own answers: each Uses line names them
            return None
        sec = Section("Given", numbering=False, label=False)
        body = [
            self.prose(
                "givens_intro.tex.j2",
                carried=[(_m(self.symbol(n)), self.numbers[n]) for n in carried],
            )
        ]
        for n in params + printed:
            self.given_at[n] = f"g:{number}:{key(n)}"
            label = rf"\label{{{self.given_at[n]}}}"
            body.append(self.matrix(n, title=self.heading(n) + label))
        body += self.given_written(number)
        sec.append(NoEscape("\n".join(body)))
        return sec

    def given_written(self, number: int) -> list[str]:
        """GELU′ reuses the u and tanh u GELU wrote: given too when GELU's result is."""
        out = []
        for s in self.selection.asked(self.t, number):
            gelu = self.written_by(s)
            mine = gelu is not None and gelu.chapter == number and gelu.name in self.picked
            if gelu is None or mine or not self.is_given(gelu.name, number):
                continue
            label = f"g:{number}:{key(gelu.name)}:written"
            self.given_at[f"{gelu.name}:written"] = label
            out += self.written_tables(gelu, label=label)
        return out

    def source(self, name: str, number: int) -> str:
        """Where the learner finds an input of an exercise."""
        sym = _m(self.symbol(name))
        if name in self.picked and self.chapter_of(name) == number:
            return rf"{sym} (Exercise {self.numbers[name]})"
        if name in self.given_at:
            return rf"{sym} (given, p.~\pageref{{{self.given_at[name]}}})"
        return rf"{sym} (your answer to Exercise {self.numbers[name]})"

    # --- one exercise ------------------------------------------------------------------
    def chapter_body(self, info: ChapterInfo, ch: Chapter) -> None:
        number = info.number
        ch.append(self.intro(info))
        sec = Section("Exercises", numbering=False, label=False)
        if info.part == "optimizer":  # one table per parameter, whose rows carry their givens
            asked = [p for p in self.param_names if self.adam(p)["m"] in self.picked]
            sec.append(NoEscape("\n".join(self.adamw_exercise(p, number) for p in asked)))
            sec.append(NoEscape(self.derivation_exercises(number)))
            ch.append(sec)
            return
        given = self.givens_section(number)
        if given is not None:
            ch.append(given)
        asked = self.selection.asked(self.t, number)
        if asked:  # the heading moves over with the first exercise, never alone
            ch.append(NoEscape(rf"\Needspace{{{self.need(asked[0]) + HEADING_PT:.0f}pt}}"))
        sec.append(NoEscape("\n".join(self.exercise(s, number) for s in asked)))
        sec.append(NoEscape(self.derivation_exercises(number)))
        ch.append(sec)

    def derivation_exercises(self, number: int) -> str:
        """The chapter's derivations asked: each with its key lines left blank."""
        out = []
        for n, topic in self.selection.derivations(number):
            d = self.derived.get(topic)
            where = rf"\quad{{\small\itshape (workbook, start of chapter {number})}}"
            out += [
                rf"\derivexercise{{{n}}}{{{d.title}{where * self.cites_workbook}}}"
                rf"{{{DERIVATION_NEED:.0f}pt}}\label{{x:d:{d.topic}}}",
                d.lead,
                *derivations.lines_tex(d, blanks=True),
                rf"\workspace{{{2 * len(d.keys) + 2}}}{{{n}}}",
            ]
        return "\n".join(out)

    # --- AdamW: a table per parameter -----------------------------------------------------
    def adam_rows(self, p: str) -> list[tuple[int, ...]]:
        """The elements an AdamW exercise asks for: one row of a matrix (the row of the worked
        example, with a non-zero gradient), or the first 16 entries of a vector. Every other
        element follows the same lines; the answer key lists them all."""
        shape = self.t[p].shape
        if len(shape) == 2:
            row = self.adam_example(p)[0]
            return [(row, j) for j in range(shape[1])]
        return [(j,) for j in range(min(shape[0], ADAM_VECTOR_ROWS))]

    def adamw_exercise(self, p: str, number: int) -> str:
        """θ and g given; m, v (and m̂, v̂ unless the first step makes them copies), θ' blank."""
        theta = self.t[p]
        cols = self.adam(p)
        g = cols["g"]
        g_given = self.is_given(g, number)
        repeats = self.adam_repeats()
        blank = [(role, head) for role, head in ADAM_COLUMNS[2:] if role not in repeats]
        names = [cols[role] for role, _ in blank]
        n = self.numbers[cols["m"]]
        rows = self.adam_rows(p)
        example = self.adam_example(p) if self.opts.scaffold == "worked-first" else None
        what = r",\ ".join(head for _, head in blank)
        where = "row" if theta.ndim == 2 else "first entries"
        lines = [
            rf"\exercise{{{n}}}{{AdamW update of {_m(self.symbol(p))}, "
            rf"{_m(steps.shape(theta.shape))}{self.worked_in(cols['m'])}}}{{{what}"
            rf"\text{{ for the elements listed}}}}{{140pt}}\label{{x:{key(p)}}}",
            r"\uses{"
            + rf"$\theta$: {_m(self.symbol(p))} (given below); $g$: "
            + (r"given below" if g_given else self.source(g, number))
            + "}",
            self.prose("adamw_exercise_intro.tex.j2", where=where, repeats=sorted(repeats)),
            self.write_down(None, kind="adamw_exercise"),
        ]
        if example is not None:
            work = (steps.work(self.t.step(x), self.book, example, self.f) for x in names)
            lines += [rf"\example{{{w}}}" for w in work]
        every = [p, g, *names]
        # Each column's power of ten in the heading, repeated on every page the table runs
        # over, so a learner writes plain decimals in the blanks too.
        symbols = [r"\theta", "g", *(head for _, head in blank)]
        heads = [
            f"${sym}\\,{factor(self.book.exps[x])}$" for sym, x in zip(symbols, every, strict=True)
        ]
        grid = []  # each row's cells, a column per quantity of `every`; "" is a blank
        for k, idx in enumerate(rows):
            filled = idx == example or (self.opts.scaffold == "half" and k % 2 == 0)
            if not filled:
                self.blanks.setdefault(n, []).extend(
                    (x, idx, k + 1, 3 + c) for c, x in enumerate(names)
                )
            shown = [True, g_given or filled, *[filled] * len(names)]
            cells = [f"${self.book.nums(x)[idx].cell}$" for x in every]
            grid.append([c if on else "" for c, on in zip(cells, shown, strict=True)])
        widths, blocks = self.adam_blocks(every, rows)
        for block in blocks:  # a grid too wide for the line: blocks of columns, one by one
            # the columns to write in (after θ and g) share what the line leaves over
            blanks = [k for k in block if k >= ADAM_GIVEN]
            spare = self.layout.text_width - ADAM_LABEL - sum(widths[k] + RULE for k in block)
            share = spare / max(1, len(blanks))
            spec = "".join(
                f"W{{{widths[k] + share - 2 * TABCOLSEP:.1f}pt}}|" if k >= ADAM_GIVEN else "r|"
                for k in block
            )
            lines += [
                rf"\begin{{adamgrid}}{{{spec}}}",
                "element & " + " & ".join(heads[k] for k in block) + r" \\ \hline \endhead",
            ]
            for idx, cells in zip(rows, grid, strict=True):
                row = [f"${element(self.symbol(p), idx)}$", *(cells[k] for k in block)]
                lines.append(" & ".join(row) + r" \\ \hline")
            lines.append(r"\end{adamgrid}")
        return "\n".join(lines)

    def example(self, step: Step) -> tuple[str, bool]:
        """A worked element before the grid, and whether its cell is filled in. worked-first:
        the first element of every product, in full. faded: in full in the first product,
        started (the products written, the sum left to do) in the second, then nothing (the
        worked-example fading of Renkl and Atkinson, 2003)."""
        if not isinstance(step, Contraction) or self.opts.scaffold not in ("worked-first", "faded"):
            return "", False
        origin = (0,) * len(step.shape)
        own = self.own_work(step, origin)
        if self.opts.scaffold == "faded":
            self.products_seen += 1
            if self.products_seen == 2:
                lhs = element(step.desc.symbol, origin)
                sub = self.started_sum(step, origin, own)
                return rf"\started{{{lhs} = {sub} = \underline{{\hspace{{16mm}}}}}}", False
            if self.products_seen > 2:
                return "", False
        # A worked line needs its numbers: the earlier answers it prints are no longer the
        # learner's to find, so a grade sheet leaves them out.
        self.printed_later |= own
        line = steps.work(step, self.book, origin, self.f)
        return rf"\example{{{line}}}", True

    def own_work(self, step: Contraction, idx: tuple[int, ...]) -> set[steps.Cell]:
        """The operand elements result[idx] reads that an earlier exercise asks for."""
        asked = {(c[0], c[1]) for cells in self.blanks.values() for c in cells}
        read = [c for part in steps.factor_cells(step, self.book, idx) for c in part]
        return {c for c in read if isinstance(c, tuple) and c in asked}

    def started_sum(self, step: Contraction, idx: tuple[int, ...], own: set) -> str:
        """The products of a started element: as printed, except that a factor the learner
        found in an earlier exercise is named, not given away."""

        def named(cell: steps.Cell) -> str | None:
            return f"({element(self.symbol(cell[0]), cell[1])})" if cell in own else None

        return steps.expansion(step, self.book, idx, self.f, named)

    def self_check(self, step: Step) -> str:
        """A check printed under the grid that does not give the answer away: a softmax's
        rows sum to 1; a product's column sums are the left factor's column sums times the
        right factor (plus the bias, once per row); a scaling's column sums are its input's
        times the scale. Under a causal mask only the entries on and below the diagonal
        count, and a column with a single such entry is left out: its sum is the answer."""
        if not self.self_checks:
            return ""
        if isinstance(step, RowWise) and step.kind == "softmax":
            tol = self.rounding_bound(step.shape[1], 0)  # weights are at most 1
            return rf"\selfcheck{{each row of your result adds up to 1, within ${tol}$.}}"
        rows, cols = step.shape if len(step.shape) == 2 else (0, 0)
        live = [
            [
                i
                for i in range(rows)
                if not (steps.masked_product(step, (i, j)) or steps.is_masked(step, (i, j)))
            ]
            for j in range(cols)
        ]
        checked = [j for j in range(cols) if len(live[j]) > 1]
        if not checked:
            return ""
        cells: str | None = None
        if isinstance(step, Contraction) and step.kind == "matmul":
            want = self.product_column_sums(step, live, checked)
            how = "the column sums of the left factor times the right factor"
            a, b = (self.symbol(n) for n in step.operands[:2])
            row_a = "columns" if step.transpose[0] else "rows"
            col_b = "row" if step.transpose[1] else "column"
            if step.desc.causal:
                how = (
                    rf"for column $j$: {row_a} $j$ to {rows} of ${a}$, added, times {col_b} $j$"
                    rf" of ${b}$; a cell marked -- is not in the sum"
                )
            if any(self.t.producer(n) and n not in self.given_at for n in step.operands):
                # a factor is the learner's own answer: a check from the right one would fail
                # a right product of a wrong factor, so the check is the relation itself
                left, right = (self.source(n, step.chapter) for n in step.operands[:2])
                cells = (
                    rf"the sum of {row_a} $j$ to {rows} of {left} times {col_b} $j$ of "
                    rf"{right} for column $j$ (a cell marked -- is not in the sum)"
                    if step.desc.causal
                    else rf"the column sums of {left} times {right}"
                )
                if step.bias is not None:
                    cells += rf", plus {rows} times ${self.symbol(step.bias)}$"
        elif isinstance(step, Elementwise) and step.formula.name in ("scale", "scale_mask"):
            x = self.book.shown(step.operands[0])
            scale = derived_const(step.consts["scale"])
            want = [
                single(sum((x[i, j] for i in live[j]), ZERO) * scale, self.opts.digits)
                for j in checked
            ]
            src = self.source(step.operands[0], step.chapter)
            how = rf"the column sums of {src} times ${self.f.const(scale)}$"
            if step.operands[0] not in self.given_at:
                # the learner's own answer: a check from the right one would fail a right
                # scaling of a wrong input, so the check is the relation itself
                cells, want = rf"the same sums of {src} times ${self.f.const(scale)}$", []
        else:
            return ""
        # Each entry is rounded on its own, so a right column sums to within that much: the
        # bound uses only the table's largest power of ten, which its heading prints anyway.
        top = max(abs(x) for x in self.book.shown(step.name).ravel() if x.is_finite())
        count = max(len(live[j]) for j in checked)
        tol = self.rounding_bound(count, top.adjusted() if top else 0, want)
        which, many = "the column sums of your result", True
        if len(checked) < cols:  # "the sums of columns 1 to 3 of your result"
            which = f"the sum{'s' * (len(checked) > 1)} of {spans(checked)} of your result"
            many = len(checked) > 1
        each = "each within" if many else "within"
        alone = " (a column with a single entry is not checked)" if len(checked) < cols else ""
        if cells is not None:
            verb = "are" if many else "is"
            return rf"\selfcheck{{{which} {verb} {cells}, {each} ${tol}${alone}.}}"
        verb = "come to" if many else "comes to"
        # plain decimals, as the handout writes every number (no power of ten)
        cells = r",\ ".join(format(x.value, "f") for x in want)
        return rf"\selfcheck{{{which} {verb} ${cells}$ ({how}), {each} ${tol}${alone}.}}"

    def product_column_sums(
        self, step: Contraction, live: list[list[int]], cols: list[int]
    ) -> list[Num]:
        """Σ over the live rows i of result[i, j], from the printed factors, for each column j."""
        a, b = (self.book.shown(n) for n in step.operands[:2])
        a = a.T if step.transpose[0] else a
        b = b.T if step.transpose[1] else b
        want = []
        for j in cols:
            total = sum(
                (sum((a[i, k] for i in live[j]), ZERO) * b[k, j] for k in range(b.shape[0])),
                ZERO,
            )
            if step.bias is not None:
                total += len(live[j]) * self.book.shown(step.bias)[j]
            want.append(single(total, self.opts.digits))
        return want

    def rounding_bound(self, count: int, exp: int, checks: list[Num] | None = None) -> str:
        """How far a sum of `count` entries, each below 10^(exp+1) and rounded to the digits,
        may fall from the exact sum (plus the rounding of the printed check values): half a
        unit of the last digit per entry, rounded up to one significant digit."""
        unit = Decimal(10) ** (exp - self.opts.digits + 1)
        bound = count * unit / 2
        for x in checks or []:  # a check value is itself rounded to the digits
            if x.value:
                own = Decimal(10) ** (x.value.adjusted() - self.opts.digits + 1) / 2
                bound = max(bound, count * unit / 2 + own)
        up = Decimal(10) ** bound.adjusted()
        return format(math.ceil(bound / up) * up, "f")  # plain: 0.0003, as a learner reads it

    def cell(self, step: Step, example: bool):
        """A grid cell: filled when the scaffold or the mask gives it, else blank."""

        softmax = isinstance(step, RowWise) and step.kind == "softmax"
        source = self.t.producer(step.operands[0]) if softmax else None
        # A softmax row with a single unmasked entry has it equal to 1: nothing to compute.
        lone = (
            [
                sum(not steps.is_masked(source, (i, j)) for j in range(step.shape[1])) == 1
                for i in range(step.shape[0])
            ]
            if source is not None
            else []
        )

        def fill(idx: tuple[int, ...]) -> str:
            if steps.masked_product(step, idx) == "unneeded":
                return r"\text{--}"  # masked in the next step: not needed
            given = (
                (example and not any(idx))
                or steps.is_masked(step, idx)  # −∞ by the mask's rule, not computed
                or (source is not None and steps.is_masked(source, idx))  # its weight: 0
                or (source is not None and lone[idx[0]])  # its weight: 1, the row's only one
                or (self.opts.scaffold == "half" and len(step.shape) == 2 and idx[0] % 2 == 0)
            )
            return self.book.nums(step.name)[idx].cell if given else ""

        return fill

    def given_jacobians(self, step: Step) -> list[str]:
        """Forming every Jacobian by hand is a chapter of its own: they are given, with
        their formula, and the exercise is to apply them."""
        tables = self.jacobians(step)
        if not tables:
            return []
        return [self.note(step), *tables]

    def work_lines(self, step: Step, blanks: int) -> int:
        """Ruled lines of working space: about what the blank elements need, at most a page."""
        if isinstance(step, Contraction):
            inner = step.factors(self.t.values, (0,) * len(step.shape))[0].size
            per = math.ceil(inner / 6)
        else:
            per = 1
        return max(3, min(MAX_WORK_LINES, blanks * per))

    @property
    def typical_width(self) -> float:
        """Room for a number of this many digits, with a sign, written by hand."""
        return cell_width("-0.0" + "0" * self.opts.digits) + 8

    def factors(self, step: Step) -> tuple[np.ndarray, np.ndarray]:
        """A product's two factors as printed (Nums), transposed as the product reads them."""
        a, b = (self.book.nums(n) for n in step.operands[:2])
        return (a.T if step.transpose[0] else a), (b.T if step.transpose[1] else b)

    def falk(self, step: Step, widest: float) -> Falk | None:
        """Under --layout falk, a matrix product's grid between its factors, the inner side
        whole or in part, if both factors are printed in this document and the page holds the
        grid in at most two blocks of columns beside the left factor; else None (the plain
        grid)."""
        if self.opts.layout != "falk" or not steps.is_matmul(step):
            return None
        if any(n not in self.given_at for n in step.operands[:2]):
            return None  # a factor is the learner's own answer: printing it would give it away
        a, b = self.factors(step)
        for whole in (True, False):
            picks = falk_picks(a.shape[1], whole)
            inner = [k for k in picks if k is not None]
            width = max(cell_width(x.cell) for x in [*a[:, inner].ravel(), *b[inner, :].ravel()])
            falk = Falk(picks, lambda i, k: a[i, k].cell, lambda k, j: b[k, j].cell, width)
            labels = self.labels(step.name, 0) or [str(len(a))]
            label_w = max(LABEL_WIDTH, max(len(x) for x in labels) * 5.0 + 6)
            room = self.layout.text_width - label_w - falk.left_width - 2 * TABCOLSEP
            fit = math.floor(room / (widest + 2 * TABCOLSEP))
            if fit >= 1 and math.ceil(b.shape[1] / fit) <= 2:
                return falk
        return None

    def falk_title(self, step: Step) -> str:
        left, right = (
            _m(steps.transposed(self.symbol(n), t))
            for n, t in zip(step.operands, step.transpose, strict=False)
        )
        return rf"{left} to the left, {right} above"

    def worked_in(self, name: str) -> str:
        """Where the worked workbook does this exercise: its section (numbered its own way:
        a chapter's parameters come first)."""
        if not self.cites_workbook:
            return ""
        return rf"\quad{{\small\itshape (workbook \S{self.sections[name]})}}"

    def written_grids(self, step: Step) -> str:
        """Blank grids for what a step writes on the way: a softmax's row maximum, its
        exponentials and their sum (a masked position's exponential is 0, printed); GELU's
        u and tanh u. The key prints them, so a learner can find where they went wrong."""
        width = max(MIN_CELL_PT, self.typical_width)
        return "\n".join(
            table(
                g.shape,
                g.fill,
                self.layout,
                widest=width,
                ruled=True,
                title=g.title,
                col_labels=g.heads,
            )
            for g in self.written_shapes(step)
        )

    def written_shapes(self, step: Step) -> list[WrittenGrid]:
        """The grids of written_grids."""
        if isinstance(step, RowWise) and step.kind == "softmax":
            source = self.t.producer(step.operands[0])
            rows, cols = step.shape

            def fill(idx: tuple[int, ...]) -> str:
                i, c = idx
                masked = (
                    1 <= c <= cols and source is not None and steps.is_masked(source, (i, c - 1))
                )
                return "0" if masked else ""

            def entry(idx: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
                i, c = idx
                if c == 0:
                    return "max", (i, 0)
                return ("sum", (i, 0)) if c == cols + 1 else (f"e{c - 1}", (i, c - 1))

            heads = softmax_written_heads(cols)
            title = "write them here, row by row"
            return [WrittenGrid((rows, cols + 2), fill, title, heads, entry)]
        if isinstance(step, Elementwise) and step.formula.name == "gelu":
            return [
                WrittenGrid(step.shape, lambda idx: "", title, None, lambda idx, k=k: (k, idx))
                for k, title in (("u", r"$u$, written here"), ("tanh", r"$\tanh u$, written here"))
            ]
        return []

    def written_count(self, step: Step) -> int:
        """How many values a learner writes on the way to this step's result."""
        return sum(
            g.fill(idx) == "" for g in self.written_shapes(step) for idx in np.ndindex(g.shape)
        )

    def need(self, step: Step) -> float:
        """The height (pt) an exercise's heading needs below it: its lines and grid's top
        (under Falk's layout, with the right factor's rows above the grid)."""
        first_rows = min(step.shape[0] if len(step.shape) == 2 else 1, self.layout.rows(True))
        # the narrowest cells the grid may have: Falk's layout if even they allow it
        falk = self.falk(step, max(MIN_CELL_PT, self.typical_width)) if step.shape else None
        above = len(falk.picks) if falk is not None else 0
        # heading, Compute, Uses, Write down, an example line and the grid's title: ~110 pt
        return 110 + GRID_ROW_PT * (first_rows + 1 + above)

    def exercise(self, step: Step, number: int) -> str:
        n = self.numbers[step.name]
        eq = steps.equation(step, self.t)
        size = steps.shape(step.shape)
        instruction = rf"{self.title(step.name)}, ${size}$" + self.worked_in(step.name)
        refs = [self.source(x, number) for x in dict.fromkeys(step.operands)]
        gelu = self.written_by(step)
        if gelu is not None:
            x = _m(self.symbol(gelu.operands[0]))
            label = self.given_at.get(f"{gelu.name}:written")
            where = (
                rf"given, p.~\pageref{{{label}}}"
                if label
                else f"written as in GELU (chapter {gelu.chapter})"
            )
            refs.append(rf"$u$ and $\tanh u$ of each entry of {x} ({where})")
        uses = "; ".join(refs)
        example, filled = self.example(step)
        fill = self.cell(step, filled)
        empty = [idx for idx in np.ndindex(step.shape) if fill(idx) == ""]
        blanks = len(empty)
        self.blanks[n] = [(step.name, idx, *grid_place(idx)) for idx in empty]
        need = self.need(step)
        written = self.written_grids(step)
        parts = [
            rf"\exercise{{{n}}}{{{instruction}}}{{{eq}}}{{{need:.0f}pt}}\label{{x:{key(step.name)}}}",
            rf"\uses{{{uses}}}",
            self.write_down(step),
            written,
            *self.given_jacobians(step),
            example,
        ]
        if step.shape:
            # Cell width from the number format, not from the answers: widths must not leak.
            shown = [c for c in map(fill, np.ndindex(step.shape)) if c]
            widest = max([MIN_CELL_PT, self.typical_width, *map(cell_width, shown)])
            exp = self.book.exps[step.name]
            falk = self.falk(step, widest)
            title = rf"write the entries ${factor(exp)}$" if exp else ""
            if falk is not None:
                title = self.falk_title(step) + (rf"; {title}" if title else "")
            if written:  # below the grids of what is written on the way: the result's own
                title = rf"${step.desc.symbol}$, the result" + (rf"; {title}" if title else "")
            parts.append(
                table(
                    step.shape,
                    fill,
                    self.layout,
                    widest=widest,
                    ruled=True,
                    title=title,
                    again=rf"Exercise {n}" + (rf", entries ${factor(exp)}$" if exp else ""),
                    falk=falk,
                    **self.label_kw(step.name),
                )
            )
        else:
            parts.append(rf"\answerbox{{${step.desc.symbol} = $}}")
        parts.append(self.self_check(step))
        parts.append(rf"\workspace{{{self.work_lines(step, blanks)}}}{{{n}}}")
        return "\n".join(p for p in parts if p)
