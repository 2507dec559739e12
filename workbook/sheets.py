"""Typed answers in, grade sheets out.

An answers file is a CSV in the shape of `answers.csv` (student_id, exercise, quantity, row,
col, answer) or of `grades.csv` (no quantity: the grids' cells); other columns are ignored.
Commas or semicolons, a decimal comma, a Unicode minus, −∞ for a masked score and a leading
apostrophe (a spreadsheet's "text" mark) are read as meant; a blank answer is not answered.
A row that cannot be placed or read is a `Problem`, listed, never a reason to stop.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from .config import ConfigError, read_text
from .grading import Asked, Graded, Sheet, exercise_points, mistake_names, percent

MAX_ANSWERS_BYTES = 64 << 20  # 500 students × a whole book's cells fit with room to spare
REQUIRED = ("student_id", "exercise", "row", "col", "answer")
ALIASES = {"id": "student_id", "student": "student_id", "column": "col"}


@dataclass(frozen=True)
class Problem:
    line: int
    cells: tuple[str, ...]  # student_id, exercise, quantity, row, col, answer as typed
    what: str


class Known:
    """The values each student's handout asks for, found by where a grade sheet puts them."""

    def __init__(self, asks: Mapping[str, list[Asked]]) -> None:
        self.asks = asks
        self.cells: dict[str, dict[tuple, Asked]] = {}
        self.grid: dict[str, dict[tuple, Asked]] = {}  # without a quantity: the grids' cells
        for sid, items in asks.items():
            self.cells[sid] = {a.cell: a for a in items}
            self.grid[sid] = {(a.exercise, a.row, a.col): a for a in items if not a.entry.part}

    def find(self, sid: str, exercise: str, quantity: str, row, col) -> Asked | None:
        if quantity:
            return self.cells[sid].get((exercise, quantity, row, col))
        return self.grid[sid].get((exercise, row, col))

    def exercises(self, sid: str) -> set[str]:
        return {a.exercise for a in self.asks[sid]}


_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")
_INFINITE = {"inf", "infinity", "∞"}


def parse_number(text: str) -> Decimal | None:
    """A typed answer as a number; None for a blank one; ValueError for what is no number.
    A leading apostrophe, spaces, a Unicode minus and a decimal comma are read as meant."""
    t = text.strip().lstrip("'").strip()
    for space in ("\u00a0", "\u202f", "\u2009", " "):
        t = t.replace(space, "")
    t = t.replace("\u2212", "-").replace("\u2013", "-")
    if not t:
        return None
    sign = -1 if t.startswith("-") else 1
    if t.lstrip("+-").lower() in _INFINITE:
        return Decimal("Infinity") * sign
    if not _NUMBER.fullmatch(t):
        raise ValueError(text)
    try:
        value = Decimal(t.replace(",", "."))
    except InvalidOperation:
        raise ValueError(text) from None
    return value


def _place(text: str) -> int | None:
    """A grid's row or column: blank for none; '2', '2.0' or '2,0' for 2."""
    t = text.strip().replace(",", ".")
    if not t:
        return None
    value = Decimal(t)  # InvalidOperation for what is no number
    if value != value.to_integral_value() or value < 1:
        raise ValueError(text)
    return int(value)


def _exercise(text: str) -> str:
    """'3.1' as typed; '3,1' (a spreadsheet with a decimal comma) as 3.1."""
    return text.strip().replace(",", ".")


def read_answers(path: Path, known: Known) -> tuple[dict[str, Sheet], list[Problem], int]:
    """Each student's sheet, the rows that could not be placed, and how many rows there
    were. Not a CSV, or no column for an answer's place: one ConfigError line."""
    where = f"--answers {str(path)!r}"
    text = read_text(path, where, MAX_ANSWERS_BYTES, " (save the sheet as CSV UTF-8)")
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max((";", ",", "\t"), key=first.count)
    if "\x00" in text or not first.count(delimiter):
        raise ConfigError(f"{where}: not a CSV file (no columns in its first line)")
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:
        raise ConfigError(f"{where}: not a CSV file ({exc})") from None
    header = [ALIASES.get(h.strip().lower(), h.strip().lower()) for h in rows[0]]
    missing = [k for k in REQUIRED if k not in header]
    if missing:
        raise ConfigError(
            f"{where}: no column {', '.join(missing)} in the first line; the columns are "
            "student_id, exercise, quantity (optional), row, col, answer"
        )
    column = {k: header.index(k) for k in (*REQUIRED, "quantity") if k in header}
    sheets: dict[str, Sheet] = {sid: Sheet() for sid in known.asks}
    problems: list[Problem] = []
    count = 0
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        count += 1
        cells = {k: (row[i].strip() if i < len(row) else "") for k, i in column.items()}
        what = _place_answer(cells, known, sheets)
        if what is not None:
            typed = tuple(cells.get(k, "") for k in COLUMNS)
            problems.append(Problem(line, typed, what))
    return sheets, problems, count


COLUMNS = ("student_id", "exercise", "quantity", "row", "col", "answer")


def _place_answer(cells: dict[str, str], known: Known, sheets: dict[str, Sheet]) -> str | None:
    """Put one row's answer on its student's sheet; what is wrong with it, if anything."""
    sid = cells["student_id"].lstrip("'")
    if sid not in known.asks:
        return f"no student {sid!r} in this class" if sid else "no student id"
    exercise = _exercise(cells["exercise"])
    if exercise not in known.exercises(sid):
        return f"no exercise {exercise!r} in this handout"
    try:
        row, col = _place(cells["row"]), _place(cells["col"])
    except (ValueError, InvalidOperation):
        return "row and col are whole numbers from 1 (or blank)"
    quantity = cells.get("quantity", "").strip()
    asked = known.find(sid, exercise, quantity, row, col)
    if asked is None:
        what = f" {quantity}" if quantity else ""
        return f"exercise {exercise} asks for no{what} value at row {row}, col {col}"
    try:
        value = parse_number(cells["answer"])
    except ValueError:
        return "the answer is not a number"
    sheet = sheets[sid]
    if asked.cell in sheet.typed:
        return "a second answer for this value (the first is kept)"
    sheet.typed[asked.cell] = cells["answer"]
    if value is not None:
        sheet.values[asked.cell] = value
    return None


# --- outputs ---------------------------------------------------------------------------------
def _csv(rows: list[list[object]], bom: bool = False) -> bytes:
    """`bom`: a sheet with names starts with a byte-order mark, so a spreadsheet (Excel)
    opens its UTF-8 as UTF-8 and names in any script survive."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8-sig" if bom else "utf-8")


def spreadsheet_text(text: str) -> str:
    """A name as a spreadsheet cell that stays text: one starting with = + - or @ would be
    run as a formula (=HYPERLINK(…)), so it gets a leading apostrophe, as spreadsheets do."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def _text(x: Decimal | None) -> str:
    if x is None:
        return ""
    if x.is_infinite():
        return "-inf" if x < 0 else "inf"
    return format(x, "f")


def graded_csv(results: Mapping[str, list[Graded]]) -> bytes:
    rows: list[list[object]] = [
        [
            "student_id",
            "exercise",
            "quantity",
            "row",
            "col",
            "answer",
            "key",
            "from_own",
            "verdict",
            "mistake",
            "points",
        ]
    ]
    for sid, graded in results.items():
        for g in graded:
            a = g.asked
            rows.append(
                [
                    sid,
                    a.exercise,
                    a.quantity,
                    "" if a.row is None else a.row,
                    "" if a.col is None else a.col,
                    g.typed,
                    _text(g.key),
                    _text(g.from_own),
                    g.verdict,
                    mistake_names(g.mistakes),
                    f"{g.points:g}",
                ]
            )
    return _csv(rows)


def problems_csv(problems: list[Problem]) -> bytes:
    rows: list[list[object]] = [
        ["line", "student_id", "exercise", "quantity", "row", "col", "answer", "problem"]
    ]
    rows += [[p.line, *p.cells, p.what] for p in problems]
    return _csv(rows)


@dataclass(frozen=True)
class Result:
    """One student's graded sheet."""

    id: str
    name: str
    code: str
    graded: list[Graded]
    flat: frozenset[str] = frozenset()  # exercises answered with one number throughout
    looks: tuple[str, ...] = ()  # what a teacher should check before importing the score

    @property
    def answered(self) -> bool:
        return any(g.verdict != "blank" for g in self.graded)

    @property
    def points(self) -> float:
        return sum(g.points for g in self.graded)

    @property
    def percent(self) -> float:
        return percent(self.points, len(self.graded))


def _points(x: float) -> str:
    return f"{x:g}"


def scores_csv(results: list[Result]) -> bytes:
    """Per student: the points of each exercise (a point a value), the total, the percent;
    a student with no answers has no score, and says so."""
    first = exercise_points(results[0].graded) if results else {}
    heads = [f"{ex} (of {n})" for ex, (_, n) in first.items()]
    total = sum(n for _, n in first.values())
    rows: list[list[object]] = [
        ["student_id", "name", "variant", *heads, "points", f"out of {total}", "percent", "status"]
    ]
    for r in results:
        per = exercise_points(r.graded)
        name = spreadsheet_text(r.name)
        if r.answered:
            cells = [_points(per[ex][0]) for ex in first]
            rows.append(
                [
                    r.id,
                    r.name,
                    r.code,
                    *cells,
                    _points(r.points),
                    total,
                    f"{r.percent:.1f}",
                    "graded",
                ]
            )
        else:
            rows.append([r.id, name, r.code, *[""] * len(first), "", total, "", "no answers"])
    return _csv(rows, bom=True)


def gradebook_csv(results: list[Result], assignment: str) -> bytes:
    """The percent of each student as a learning platform imports it: Canvas reads the
    columns Student, ID, SIS User ID, SIS Login ID and Section, a Points Possible row, then
    one column per assignment; Moodle maps any column to a user field (SIS User ID → ID
    number) and the assignment column to a grade item, and skips the Points Possible row as
    a user it does not know. No answers: an empty cell, never a zero."""
    rows: list[list[object]] = [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", assignment],
        ["Points Possible", "", "", "", "", "100"],
    ]
    for r in results:
        score = f"{r.percent:.1f}" if r.answered else ""
        rows.append([spreadsheet_text(r.name), "", r.id, "", "", score])
    return _csv(rows, bom=True)
