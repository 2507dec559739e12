"""Simulated students, made from the engine: each works through their handout in order, by
the printed rules, from their own numbers (so an early slip carries forward as a careful
student's would), optionally making one catalogued mistake in one exercise, or writing
random numbers."""

from __future__ import annotations

import csv
import random
from decimal import Decimal, localcontext
from pathlib import Path

import numpy as np

from workbook import hand
from workbook.grading import CHAIN, Asked, Sheet, part_kind, parts_at
from workbook.hand import Rounder, sig
from workbook.mistakes import BY_KEY, Entry, Inputs
from workbook.render.exercises import Exercises

Cell = tuple


def work(
    h: Exercises,
    asks: list[Asked],
    mistake: tuple[str, str] | None = None,
    rng: random.Random | None = None,
    skip: tuple[str, ...] = (),
) -> tuple[dict[Cell, Decimal], set[Cell]]:
    """Every asked value as the student writes it, and the values their mistake made
    (`mistake` = (exercise, key)); `skip`: exercises left blank; `rng`: random numbers."""
    book = h.book
    r = Rounder(book.digits)
    values = {n: np.array(v, dtype=object) for n, v in book.values.items()}
    parts: dict[tuple, dict[str, Decimal]] = {}

    def own(e: Entry) -> dict[str, Decimal] | None:
        gelu = h.written_by(e.step)
        if gelu is not None:
            return parts.get((gelu.name, e.idx))
        mine = parts.get((e.step.name, parts_at(e)))
        if not mine:
            return None
        limit = CHAIN[part_kind(e.part)]
        return {k: v for k, v in mine.items() if CHAIN[part_kind(k)] < limit}

    out: dict[Cell, Decimal] = {}
    made: set[Cell] = set()
    for a in asks:
        if a.exercise in skip:
            continue
        x = Inputs(values, r, book.t, own)
        with localcontext(hand.CONTEXT):
            v = x.evaluate(a.step, a.entry)
            if mistake and a.exercise == mistake[0] and BY_KEY[mistake[1]].applies(a.entry):
                wrong = [w for w in BY_KEY[mistake[1]].values(a.entry, x) if w is not None]
                if wrong and wrong[0].is_finite() and wrong[0] != sig(v, book.digits):
                    v = wrong[0]
                    made.add(a.cell)
        if rng is not None:
            v = Decimal(rng.randint(-20000, 20000)).scaleb(-4)
        if v is None:  # a chain the mistake broke (ln of a negative): the student stops
            continue
        if a.cell not in made:
            v = sig(v, book.digits)
        out[a.cell] = v
        if a.entry.part:
            parts.setdefault((a.step.name, parts_at(a.entry)), {})[a.entry.part] = v
        else:
            values[a.step.name][a.entry.idx] = v
    return out, made


def sheet(values: dict[Cell, Decimal]) -> Sheet:
    s = Sheet()
    for cell, v in values.items():
        s.values[cell] = v
        s.typed[cell] = format(v, "f")
    return s


def write_answers(
    path: Path, rows: list[tuple[str, Asked, Decimal | None]], style: str = ""
) -> None:
    """An answers file: "" plain; "european": semicolons, a decimal comma, a Unicode minus,
    quoted apostrophes as a spreadsheet may export them."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=";" if style else ",")
        w.writerow(["student_id", "exercise", "quantity", "row", "col", "answer"])
        for sid, a, v in rows:
            text = "" if v is None else format(v, "f")
            if style and text:
                text = text.replace(".", ",").replace("-", "\u2212")
                text = "'" + text if text.startswith("\u2212") else text
            w.writerow([sid, a.exercise, a.quantity, a.row or "", a.col or "", text])
