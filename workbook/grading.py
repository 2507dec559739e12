"""Grading what a student wrote: each value right, right from their own earlier numbers
(follow-through), a named mistake (slip), wrong, or blank.

A handout asks for values (`Asked`): its grids' cells and the values written on the way (a
softmax row's maximum, exponentials and sum; GELU's u and tanh u). A value is checked against
the key; failing that, against the hand chain started from the student's own numbers (the
earlier answers the handout tells them to use, and what they wrote on the way), by the same
rules the key follows; failing that, against every mistake of the catalogue that applies,
from their own inputs and from the right ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

import numpy as np

from . import hand
from .hand import Rounder, sig
from .mistakes import BY_KEY, Entry, Inputs, Mistake, applicable
from .printed import Book, evaluate
from .render.exercises import Exercises
from .trace import Index, RowWise, Step, cell_names, cells_read

VERDICTS = ("right", "follow-through", "slip", "wrong", "blank")
FOLLOW_THROUGH = {"full": 1.0, "half": 0.5, "none": 0.0}
ROUNDING_CREDIT = 0.5  # a slip of rounding alone: the method right, a last digit off
# An AdamW table's columns, as a grade sheet names them.
ADAM_QUANTITIES = {
    "m": "m",
    "v": "v",
    "m_hat": "m_hat",
    "v_hat": "v_hat",
    "updated": "theta_new",
}
# Values written on the way, as a grade sheet names them, by the key of the step's parts.
WRITTEN_QUANTITIES = {"max": "s_max", "e": "e", "sum": "sum_e", "u": "u", "tanh": "tanh_u"}
# The order in which a line writes them: a value may use those before it.
CHAIN = {"max": 0, "e": 1, "sum": 2, "u": 0, "tanh": 1, "": 9}


def part_kind(part: str) -> str:
    """ "e2" → "e": the kind of a written value."""
    return part.rstrip("0123456789")


def parts_at(e: Entry) -> Index:
    """Where the step keeps the values an entry's line writes: a softmax per row, GELU per
    entry."""
    return e.idx[:1] if isinstance(e.step, RowWise) else e.idx


@dataclass(frozen=True)
class Asked:
    """One value a student writes, where they write it and which entry it is."""

    exercise: str
    quantity: str  # "result", an AdamW column (m, v, theta_new ...) or a written value
    row: int | None  # 1-based, as the grid shows it
    col: int | None
    entry: Entry
    exp: int = 0  # the power of ten the grid's entries are written in

    @property
    def cell(self) -> tuple[str, str, int | None, int | None]:
        return (self.exercise, self.quantity, self.row, self.col)

    @property
    def step(self) -> Step:
        return self.entry.step


def asked(h: Exercises) -> list[Asked]:
    """Every value a laid-out handout asks for, in its order: per exercise the values written
    on the way, then the grid's cells row by row. Cells a later worked line prints are left
    out: the handout gives them away."""
    out: list[Asked] = []
    for exercise, cells in h.blanks.items():
        if not cells:
            continue
        step = h.t.step(cells[0][0])
        for grid in h.written_shapes(step):
            for idx in np.ndindex(grid.shape):
                if grid.fill(idx) != "":
                    continue
                part, entry = grid.entry(idx)
                per_row = part in ("max", "sum")
                out.append(
                    Asked(
                        exercise,
                        WRITTEN_QUANTITIES[part_kind(part)],
                        entry[0] + 1,
                        None if per_row else entry[1] + 1,
                        Entry(step, entry, part),
                    )
                )
        for name, idx, row, col in cells:
            if (name, idx) in h.printed_later:
                continue
            s = h.t.step(name)
            quantity = ADAM_QUANTITIES[s.desc.role] if s.desc.of else "result"
            out.append(Asked(exercise, quantity, row, col, Entry(s, idx), h.book.exps[name]))
    return out


def key_value(book: Book, e: Entry) -> Decimal:
    """What the key prints for an entry (rounded to the digits)."""
    if e.part:
        return sig(book.parts[e.step.name][parts_at(e)][e.part], book.digits)
    return sig(book.values[e.step.name][e.idx], book.digits)


def unit(x: Decimal, digits: int) -> Decimal:
    """One unit of the last printed digit of x."""
    return Decimal(1).scaleb(x.adjusted() - digits + 1) if x.is_finite() and x else Decimal(0)


def close(answer: Decimal, value: Decimal | None, digits: int, units: int) -> bool:
    """Is the answer the value, within `units` of the value's last digit? An answer written
    with more digits is read as it rounds; one written with fewer must be the value exactly
    (0.45 for 0.4500), or its digits would hide a difference."""
    if value is None:
        return False
    if not (answer.is_finite() and value.is_finite()):
        return answer == value
    want = sig(value, digits)
    written = len(answer.as_tuple().digits)
    if written > digits:
        answer = sig(answer, digits)
    return abs(answer - want) <= (units if written >= digits else 0) * unit(want, digits)


@dataclass(frozen=True)
class Graded:
    """One asked value, graded."""

    asked: Asked
    typed: str  # the answer as the file has it ("" for none)
    answer: Decimal | None  # in true units (a grid's power of ten applied)
    key: Decimal
    verdict: str
    points: float
    from_own: Decimal | None = None  # what the student's own earlier numbers give
    mistakes: tuple[str, ...] = ()  # keys of the catalogue
    uses: tuple[str, ...] = ()  # the earlier exercises the follow-through started from
    note: str = ""


@dataclass
class Sheet:
    """What one student wrote: the typed text of each asked value they answered."""

    typed: dict[tuple, str] = field(default_factory=dict)
    values: dict[tuple, Decimal] = field(default_factory=dict)


def readings(value: Decimal, exp: int) -> list[Decimal]:
    """The true values a typed number may stand for in a grid written ×10^exp: as written
    there, or as the true value (a grade sheet's, or a teacher typing it so)."""
    if exp == 0 or not value.is_finite() or value == 0:
        return [value]
    return [value.scaleb(exp), value]


class Grader:
    """Grades one student's sheet against their variant's key and their own numbers."""

    def __init__(
        self,
        h: Exercises,
        asks: list[Asked],
        follow_through: str = "full",
        rounding_credit: float = ROUNDING_CREDIT,
    ) -> None:
        self.h, self.asks = h, asks
        self.t, self.book = h.t, h.book
        self.digits = h.book.digits
        self.r = Rounder(self.digits)
        self.credit = FOLLOW_THROUGH[follow_through]
        self.rounding_credit = rounding_credit
        self.by_cell = {(a.step.name, a.entry.idx): a for a in asks if not a.entry.part}
        self.cells = cell_names({n: np.shape(v) for n, v in self.book.values.items()})
        self._tolerance: dict[str, int] = {}
        self.numbers = h.numbers

    def tolerance(self, step: Step) -> int:
        if step.name not in self._tolerance:
            self._tolerance[step.name] = self.book.tolerance(step)
        return self._tolerance[step.name]

    # --- the student's own numbers --------------------------------------------------------
    def own_values(self, sheet: Sheet) -> dict[str, np.ndarray]:
        """Every quantity as the student has it: their answers where they gave them, the
        printed values elsewhere; a quantity their handout asks about but never shows (m̂
        and v̂ when the first step makes them copies) follows from their numbers by the rules."""
        values = dict(self.book.values)
        answered: dict[str, dict[Index, Decimal]] = {}
        for a in self.asks:
            if not a.entry.part and a.cell in sheet.values:
                answered.setdefault(a.step.name, {})[a.entry.idx] = sheet.values[a.cell]
        for name, entries in answered.items():
            values[name] = np.array(values[name], dtype=object)
            for idx, v in entries.items():
                values[name][idx] = v
        shown = {a.step.name for a in self.asks}
        with localcontext(hand.CONTEXT):
            for step in self.t.steps:
                unshown = step.name in self.h.picked and step.name not in shown
                if unshown and step.desc.role in ("m_hat", "v_hat"):
                    values[step.name] = evaluate(step, values, self.r).result
        return values

    def own_parts(self, sheet: Sheet) -> dict[tuple[str, Index], hand.Parts]:
        """The values the student wrote on the way, by step and the entry of its parts."""
        out: dict[tuple[str, Index], hand.Parts] = {}
        for a in self.asks:
            e = a.entry
            if e.part and a.cell in sheet.values:
                out.setdefault((e.step.name, parts_at(e)), {})[e.part] = sheet.values[a.cell]
        return out

    def own_before(self, parts: dict[tuple[str, Index], hand.Parts]):
        """own(entry): what the student wrote on the way that the entry's line uses, those
        written before it; a GELU′ entry uses the u and tanh u of its GELU."""

        def own(e: Entry) -> hand.Parts | None:
            gelu = self.h.written_by(e.step)
            if gelu is not None:
                return parts.get((gelu.name, e.idx))
            mine = parts.get((e.step.name, parts_at(e)))
            if not mine:
                return None
            limit = CHAIN[part_kind(e.part)]
            return {k: v for k, v in mine.items() if CHAIN[part_kind(k)] < limit}

        return own

    # --- grading ------------------------------------------------------------------------
    def grade(self, sheet: Sheet) -> list[Graded]:
        values = self.own_values(sheet)
        own = Inputs(values, self.r, self.t, self.own_before(self.own_parts(sheet)))
        right = Inputs(self.book.values, self.r, self.t)
        flat = self.degenerate(sheet)
        return [self.one(a, sheet, own, right, flat) for a in self.asks]

    def degenerate(self, sheet: Sheet) -> set[str]:
        """Exercises whose answers are all one number (all zeros, say): no follow-through
        credit is given from them."""
        by_exercise: dict[str, list[Decimal]] = {}
        for a in self.asks:
            if not a.entry.part and a.cell in sheet.values:
                by_exercise.setdefault(a.exercise, []).append(sheet.values[a.cell])
        return {ex for ex, vs in by_exercise.items() if len(vs) > 1 and len(set(vs)) == 1}

    def own_inputs(self, a: Asked, sheet: Sheet, flat: set[str]) -> tuple[bool, tuple[str, ...]]:
        """Did the student attempt every earlier answer this value starts from (none all
        one number)? And the exercises of those that differ from the key: what a value
        right from their own numbers is right from."""
        used: dict[str, None] = {}
        ok = True
        for name, idx in cells_read(a.step, self.cells, a.entry.idx):
            earlier = self.by_cell.get((name, idx))
            if earlier is None or earlier.exercise == a.exercise:
                continue
            if earlier.cell not in sheet.values or earlier.exercise in flat:
                ok = False
            elif not self.matches_key(earlier, sheet.values[earlier.cell]):
                used[earlier.exercise] = None
        return ok, tuple(used)

    def matches_key(self, a: Asked, value: Decimal) -> bool:
        key = key_value(self.book, a.entry)
        return any(
            close(v, key, self.digits, self.tolerance(a.step)) for v in readings(value, a.exp)
        )

    def one(self, a: Asked, sheet: Sheet, own: Inputs, right: Inputs, flat: set[str]) -> Graded:
        key = key_value(self.book, a.entry)
        typed = sheet.typed.get(a.cell, "")
        if a.cell not in sheet.values:
            return Graded(a, typed, None, key, "blank", 0.0)
        units = self.tolerance(a.step)
        candidates = readings(sheet.values[a.cell], a.exp)
        for answer in candidates:
            if close(answer, key, self.digits, units):
                return Graded(a, typed, answer, key, "right", 1.0)
        attempted, uses = self.own_inputs(a, sheet, flat)
        with localcontext(hand.CONTEXT):
            from_own = own.evaluate(a.step, a.entry) if attempted else None
        if from_own is not None and close(from_own, key, self.digits, 0):
            from_own = None  # their numbers give the key: nothing to follow
        best: Graded | None = None
        for answer in candidates:
            g = self.verdict(a, typed, answer, key, units, from_own, uses, own, right, attempted)
            if best is None or VERDICTS.index(g.verdict) < VERDICTS.index(best.verdict):
                best = g
        return best

    def verdict(
        self,
        a: Asked,
        typed: str,
        answer: Decimal,
        key: Decimal,
        units: int,
        from_own: Decimal | None,
        uses: tuple[str, ...],
        own: Inputs,
        right: Inputs,
        attempted: bool,
    ) -> Graded:
        def graded(verdict: str, points: float, **kw) -> Graded:
            return Graded(a, typed, answer, key, verdict, points, from_own, uses=uses, **kw)

        if close(answer, key, self.digits, units):
            return graded("right", 1.0)
        if from_own is not None and close(answer, from_own, self.digits, units):
            return graded("follow-through", self.credit)
        named = self.mistakes(a, answer, units, [own, right] if attempted else [right])
        accepted = [m for m in named if m.acceptable]
        if accepted:
            return graded("follow-through", self.credit, mistakes=(accepted[0].key,))
        if named:  # a slip of the digits alone, not of the method, may earn part credit
            points = self.rounding_credit if all(m.rounding for m in named) else 0.0
            return graded("slip", points, mistakes=tuple(m.key for m in named))
        return graded("wrong", 0.0)

    def mistakes(
        self, a: Asked, answer: Decimal, units: int, inputs: list[Inputs]
    ) -> list[Mistake]:
        """Every mistake of the catalogue whose variant gives the answer."""
        written = len(answer.as_tuple().digits) if answer.is_finite() else self.digits
        found = []
        for m in applicable(a.entry):
            if m.fewer_digits and written >= self.digits:
                continue
            for x in inputs:
                with localcontext(hand.CONTEXT):
                    try:
                        vs = m.values(a.entry, x)
                    except (IndexError, KeyError, ValueError, ArithmeticError):
                        vs = []
                digits = written if m.fewer_digits else self.digits
                if any(close(answer, v, digits, 0 if m.fewer_digits else units) for v in vs):
                    found.append(m)
                    break
        return found


# --- summaries -------------------------------------------------------------------------------
def exercise_points(graded: Iterable[Graded]) -> dict[str, tuple[float, int]]:
    """Per exercise: points and the number of values graded, in the handout's order."""
    out: dict[str, tuple[float, int]] = {}
    for g in graded:
        pts, n = out.get(g.asked.exercise, (0.0, 0))
        out[g.asked.exercise] = (pts + g.points, n + 1)
    return out


def percent(points: float, count: int) -> float:
    return 0.0 if count == 0 else math.floor(1000 * points / count + 0.5) / 10


def mistake_names(keys: Iterable[str]) -> str:
    return "; ".join(BY_KEY[k].name for k in keys)


# --- what a teacher should look at before importing a score -------------------------------
def impossible(a: Asked, value: Decimal) -> str:
    """Why a value cannot be what its rule gives whatever the inputs, or ""."""
    kind = part_kind(a.entry.part)
    if kind in ("e", "sum") and value <= 0:
        return "an exponential is positive" if kind == "e" else "a sum of exponentials is positive"
    softmax = isinstance(a.step, RowWise) and a.step.kind == "softmax"
    if softmax and not kind and not 0 <= value <= 1:
        return "a softmax weight lies between 0 and 1"
    variance = isinstance(a.step, RowWise) and a.step.kind == "var"
    if (variance or a.step.desc.role in ("v", "v_hat")) and value < 0:
        return "a variance (a mean of squares) is not negative"
    return ""


def look_at(grader: Grader, sheet: Sheet, graded: list[Graded]) -> list[str]:
    """What in a student's sheet a teacher should check before importing the score: values
    that no inputs could give, an exercise right though the one it starts from is blank (not
    typed in?), an exercise answered with one number throughout."""
    out = []
    bad = [
        (g, why)
        for g in graded
        if g.answer is not None and g.answer.is_finite()
        for why in [impossible(g.asked, g.answer)]
        if why
    ]
    if bad:
        g, why = bad[0]
        a = g.asked
        out.append(
            f"{len(bad)} value(s) that no inputs could give, e.g. {a.exercise} "
            f"{a.quantity} row {a.row} col {a.col} = {g.typed} ({why})"
        )
    blank = {
        ex
        for ex in {a.exercise for a in grader.asks}
        if not any(a.cell in sheet.values for a in grader.asks if a.exercise == ex)
    }
    seen: set[tuple[str, str]] = set()
    for g in graded:
        if g.verdict != "right" or g.asked.entry.part:
            continue
        for name, idx in cells_read(g.asked.step, grader.cells, g.asked.entry.idx):
            earlier = grader.by_cell.get((name, idx))
            if earlier is not None and earlier.exercise in blank:
                seen.add((earlier.exercise, g.asked.exercise))
    for before, after in sorted(seen):
        out.append(f"{after} is right though {before}, which it starts from, is blank: typed in?")
    flat = sorted(grader.degenerate(sheet))
    if flat:
        out.append(f"{', '.join(flat)}: one number throughout, so nothing follows from it")
    return out
