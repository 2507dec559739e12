"""`workbook relay`: the class is the GPU. The selected computation of one step (by default
the forward pass, embeddings to loss) cut into cards of a few minutes each, scheduled into
rounds that respect the data flow, for N students to compute together; a poster on which
the step assembles; and the teacher's plan with the key.

The cutting is `jobs`, the rounds and students `schedule`; this module numbers the cards,
says who reads what from whom, and writes cards.pdf, poster.pdf, plan.pdf and plan.csv,
compiled in a private folder and moved into place together, as the other commands do.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from pathlib import Path

import numpy as np

from . import compile as tex
from . import engine, landing
from .classroom import Student, read_roster
from .config import Config, ConfigError
from .export import write_atomic
from .hand import sig
from .jobs import Cell, Cut, Flow, Job, boxes, cut, work_of
from .names import pictures as name_pictures
from .printed import Book
from .progress import speaker
from .render.base import Options, Selection, select
from .schedule import Schedule, assign
from .trace import RowWise, Step

SCOPES = ("forward", "step")
STUDENTS = range(1, 201)  # how many a relay takes
PER_PAGE = (2, 4)
POSTERS = ("large", "tiled")
EPOCH = 946684800  # 2000-01-01: the date every PDF carries, so reruns are identical
# "What N buys": the plan's table of rounds and minutes, for these class sizes.
CLASS_SIZES = (1, 4, 16, 64, 256)


@dataclass(frozen=True)
class RelayRequest:
    output: Path
    students: int | None = None
    roster: Path | None = None
    scope: str = "forward"
    chapters: str | None = None
    sections: str | None = None
    digits: int = 4
    paper: str = "a4"
    per_page: int | None = None  # cards per page; None: 4 when every card fits, else 2
    poster: str = "large"
    quiet: bool = False


@dataclass
class Card:
    """One job as printed: its number (cards are numbered in round order), round and
    student (both from 1)."""

    number: int
    round: int
    student: int
    job: Job


@dataclass
class Lesson:
    """Everything the documents print: the step, its printed values, the cards and who
    reads what."""

    config: Config
    book: Book
    cut: Cut
    schedule: Schedule
    students: list[Student]
    scope: str  # forward | step, or "selection" for --chapters / --sections
    cards: list[Card] = field(default_factory=list)
    by_job: dict[int, Card] = field(default_factory=dict)  # id(job) → its card
    readers: dict[Cell, list[Card]] = field(default_factory=dict)  # cards that copy an entry

    @property
    def rounds(self) -> int:
        return len(self.schedule.cards)

    def maker(self, cell: Cell) -> Card | None:
        job = self.cut.maker.get(cell)
        return None if job is None else self.by_job[id(job)]

    def seconds(self, card: Card) -> float:
        return self.schedule.seconds[id(card.job)]

    def of(self, student: int) -> list[Card]:
        return [c for c in self.cards if c.student == student]

    def final(self, cell: Cell) -> bool:
        """A value nothing reads: a result of the whole relay (the loss)."""
        return cell in self.cut.maker and not self.cut.readers.get(cell)

    def on_poster(self, cell: Cell) -> bool:
        """The poster shows every entry some card copies, and every final one, with the
        rest of its quantity's computed entries."""
        return cell[0] in self.poster_steps

    @cached_property
    def poster_steps(self) -> dict[str, None]:
        """The quantities on the poster, in the order of the step."""
        shown = {c[0] for c in self.cut.maker if self.readers.get(c) or self.final(c)}
        return {s.name: None for s in self.cut.steps if s.name in shown}

    def checksum(self, card: Card) -> Decimal:
        """The exact sum of every value the card has its student write (see `boxes`)."""
        return sum(
            (self.written(cell, part) for cell, part in boxes(self.book, card.job)), Decimal(0)
        )

    def check(self, card: Card) -> Check:
        """The card's self-check (see `Check`)."""
        written = boxes(self.book, card.job)
        if len(written) > 1:
            return Check("total", self.checksum(card))
        ((cell, part),) = written
        flow = self.cut.flow
        step = flow.t.step(cell[0])
        value = self.written(cell, part)
        if isinstance(step, RowWise) and step.kind in ("mean", "mean_loss"):
            row = tuple(flow._row(step, cell[1]))
            n = len(row)
            unit = Decimal(1).scaleb(value.adjusted() - self.book.digits + 1)
            return Check("mean", n * unit / 2, n, row, value < 0)
        return Check("digits", Decimal(digit_sum(value)))

    def written(self, cell: Cell, part: str) -> Decimal:
        """A value as the card has it written: the key's, to the digits."""
        name, idx = cell
        if part:  # a value written once per row is kept with each entry of the row
            parts = self.book.parts[name]
            value = parts[idx][part] if idx in parts else Book._row_part(parts, idx[0], part)
            return sig(value, self.book.digits)
        return sig(self.book.values[name][idx], self.book.digits)

    def critical_path(self) -> list[Card]:
        """The chain of cards, each reading the one before, with the most hand work: no
        number of students finishes the relay in less."""
        best: dict[int, tuple[float, list[Card]]] = {}
        for card in sorted(self.cards, key=lambda c: c.job.level):
            before = [
                best[id(self.cut.maker[c])]
                for c in self.cut.inputs(card.job)
                if id(self.cut.maker[c]) in best
            ]
            seconds, chain = max(before, key=lambda b: b[0], default=(0.0, []))
            best[id(card.job)] = (seconds + self.seconds(card), [*chain, card])
        return max(best.values(), key=lambda b: b[0], default=(0.0, []))[1]

    def products(self, cards: list[Card]) -> int:
        return sum(self.cut.cost(c.job).products for c in cards)


@dataclass(frozen=True)
class Check:
    """A card's self-check, exact, so a slip in the last digit is caught, and never
    printing a result:

    - "total": every value the card writes, added, is `target`;
    - "mean" (a card whose one value is a mean m of n values with sum S): multiplied back,
      n·m − S lies in (−target, target], or [−target, target) for m < 0 (target = n·u/2, u a
      unit of m's last digit: rounding half away from zero keeps the exact mean within
      half a unit of m, the tie on the side away from zero);
    - "digits" (one value, no such relation): its digits add up to `target` (one unit
      more or less changes that sum by 1 − 9k, k the nines carried: never by 0).
    """

    kind: str
    target: Decimal
    n: int = 0
    inputs: tuple[Cell, ...] = ()  # a mean's: the values it divides
    negative: bool = False

    def holds(self, written: list[Decimal], inputs: list[Decimal] | None = None) -> bool:
        """Do these written values (in the order of `boxes`), and for a mean the values
        it divides, meet the check?"""
        if self.kind == "total":
            return sum(written, Decimal(0)) == self.target
        if self.kind == "digits":
            return digit_sum(written[0]) == self.target
        d = self.n * written[0] - sum(inputs or [], Decimal(0))
        if self.negative:
            return -self.target <= d < self.target
        return -self.target < d <= self.target


def digit_sum(x: Decimal) -> int:
    return sum(int(ch) for ch in format(x, "f") if ch.isdigit())


def selected_steps(t, opts: Options, req: RelayRequest) -> tuple[list[Step], list[Cell] | None]:
    """The steps a relay computes and, for a scope, the entries it ends in (the loss, and
    with `step` every parameter's gradient): only what they depend on is computed."""
    if req.chapters is not None or req.sections is not None:
        chosen = Selection(t, select(opts, req.chapters, req.sections, t))
        return [s for s in t.steps if s.name in chosen.picked], None
    parts = ("forward",) if req.scope == "forward" else ("forward", "backward")
    inside = {ch.number for ch in t.chapters if ch.part in parts}
    steps = [s for s in t.steps if s.chapter in inside]
    sinks: list[Cell] = [(t.loss.name, ())]
    if req.scope == "step":
        sinks += [(f"d.{p}", idx) for p in t.params for idx in np.ndindex(t[p].shape)]
    return steps, sinks


def roster(req: RelayRequest) -> list[Student]:
    """The students: the roster's, or numbered 1 to N."""
    if req.roster is not None:
        students = read_roster(req.roster)
        if len(students) not in STUDENTS:
            raise ConfigError(
                f"roster {str(req.roster)!r}: {len(students)} students; a relay takes "
                f"{STUDENTS[0]} to {STUDENTS[-1]}"
            )
        return students
    if req.students is None:
        raise ConfigError("relay needs --students N (or --roster FILE.csv)")
    if req.students not in STUDENTS:
        raise ConfigError(
            f"--students {req.students}: a relay takes {STUDENTS[0]} to {STUDENTS[-1]}"
        )
    return [Student(str(k), "") for k in range(1, req.students + 1)]


def lesson(c: Config, req: RelayRequest) -> Lesson:
    """The relay's step, cards and schedule: everything but the documents."""
    students = roster(req)
    t = engine.run(c)
    engine.check_numbers(c, t)
    opts = Options(digits=req.digits, paper=req.paper)
    steps, sinks = selected_steps(t, opts, req)
    last = max((s.chapter for s in steps), default=0)
    book = Book(t, req.digits, "hand", last)
    flow = Flow(t, book, last)
    todo = work_of(flow, steps, sinks)
    if not todo:
        what = req.sections or req.chapters or req.scope
        raise ConfigError(
            f"relay of {what}: nothing to compute (what it selects is given, copied or "
            "derived); choose exercises that compute values"
        )
    jobs = cut(flow, todo)
    plan = assign(jobs, len(students))
    scope = req.scope if sinks is not None else "selection"
    out = Lesson(c, book, jobs, plan, students, scope)
    number = 0
    for r, per_student in enumerate(plan.cards):
        for s, mine in enumerate(per_student):
            for job in mine:
                number += 1
                card = Card(number, r + 1, s + 1, job)
                out.cards.append(card)
                out.by_job[id(job)] = card
    for card in out.cards:
        for cell in jobs.inputs(card.job):
            out.readers.setdefault(cell, []).append(card)
    return out


def idle(lesson: Lesson) -> dict[int, int]:
    """Students with no card at all (more students than cards), each with the student
    whose cards they check: the busiest first, in turn."""
    busy = sorted(
        {c.student for c in lesson.cards},
        key=lambda s: (-sum(lesson.seconds(c) for c in lesson.of(s)), s),
    )
    without = [s for s in range(1, len(lesson.students) + 1) if not lesson.of(s)]
    return {s: busy[k % len(busy)] for k, s in enumerate(without)}


def what_n_buys(cut: Cut, sizes: tuple[int, ...] = CLASS_SIZES) -> list[tuple[int, int, float]]:
    """(students, rounds, minutes) of the same cards for other class sizes."""
    out = []
    for n in sizes:
        plan = assign(cut, n)
        out.append((n, len(plan.cards), plan.minutes()))
    return out


# --- plan.csv ---------------------------------------------------------------------------------
def plan_csv(lesson: Lesson, name: Callable[[int], str]) -> bytes:
    """A row per value a card writes: round, card, student, the quantity and entry (rows
    and columns from 1), what it is (a result or a value written on the way), its key
    value, and where it goes (cards, the poster)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["round", "card", "student", "name", "quantity", "row", "col", "value", "key", "to"])
    for card in lesson.cards:
        for cell, part in boxes(lesson.book, card.job):
            name_, idx = cell
            row, col = (
                (idx[0] + 1, idx[1] + 1)
                if len(idx) == 2
                else ((idx[0] + 1, "") if idx else ("", ""))
            )
            to = [f"card {c.number}" for c in lesson.readers.get(cell, [])] if not part else []
            if not part and lesson.on_poster(cell):
                to.append("poster")
            w.writerow(
                [
                    card.round,
                    card.number,
                    card.student,
                    name(card.student),
                    name_,
                    row,
                    col,
                    part or "result",
                    format(lesson.written(cell, part), "f"),
                    "; ".join(to),
                ]
            )
    return buf.getvalue().encode()


class Relay:
    """One relay: the lesson computed, its documents compiled and moved into place."""

    def __init__(self, c: Config, req: RelayRequest) -> None:
        self.c, self.req = c, req
        self.say = speaker(req.quiet)

    def run(self) -> list[Path]:
        tex.check_tex()
        t0 = time.perf_counter()
        plan = lesson(self.c, self.req)
        self.report(plan)
        out = self.req.output
        out.mkdir(parents=True, exist_ok=True)
        with tex.folder_lock(out):
            return self.write(plan, out, t0)

    def report(self, plan: Lesson) -> None:
        n = len(plan.students)
        self.say(
            f"{len(plan.cards)} cards in {plan.rounds} rounds for {n} student"
            f"{'s' * (n != 1)}: about {plan.schedule.minutes():.0f} minutes"
        )
        spare = idle(plan)
        if spare:
            print(
                f"workbook: {n} students for {len(plan.cards)} cards: {len(spare)} get no card "
                "of their own; the plan pairs each with a student whose cards they check",
                file=sys.stderr,
            )

    def write(self, plan: Lesson, out: Path, t0: float) -> list[Path]:
        """Compile in a private folder, then move every file into `out`: the cards and the
        poster side by side, then the plan (which says how many cards a page has)."""
        from .render.relay import plan_source  # the documents import this module

        landing.remove_stale(out)
        with landing.private_folder(out, "relay") as tmp:
            stage = Path(tmp)
            names = [s.name for s in plan.students if s.name]
            pictures = name_pictures(names, stage, self.say) if names else {}
            self.say("compiling cards.pdf and poster.pdf ...")
            with ThreadPoolExecutor(max_workers=2) as pool:
                cards = pool.submit(self.cards, plan, stage, pictures)
                pool.submit(self.poster, plan, stage).result()
                per_page = cards.result()
            self.say("compiling plan.pdf ...")
            self.compile(plan_source(plan, per_page, self.req.paper), stage, "plan", pictures)
            for stem in DOCUMENTS:
                for suffix in (".tex", ".log", ".aux"):
                    (stage / f"{stem}{suffix}").unlink(missing_ok=True)
            write_atomic(stage / "plan.csv", plan_csv(plan, name_of(plan)))
            staged = [Path(f"{s}.pdf") for s in DOCUMENTS] + [Path("plan.csv")]
            for stem in DOCUMENTS:
                (out / f"{stem}.failed.log").unlink(missing_ok=True)  # history now
            written = landing.land(stage, out, staged)
        self.say(
            f"done in {time.perf_counter() - t0:.1f} s: {', '.join(map(str, staged))} in {out}"
        )
        return written

    def cards(self, plan: Lesson, stage: Path, pictures: dict[str, bytes]) -> int:
        """cards.pdf, four to a page when every card fits a quarter (TeX measures each),
        else two; the number to a page."""
        from .render.relay import Sheet, cards_source

        choices = [self.req.per_page] if self.req.per_page else list(reversed(PER_PAGE))
        for per_page in choices:
            done = self.compile(
                cards_source(plan, Sheet(self.req.paper, per_page)), stage, "cards", pictures
            )
            big = misfits(done.log.read_text(errors="replace"))
            if not big and not done.overfull:
                if per_page != choices[0]:
                    self.say("a card needs more than a quarter page: two cards to a page")
                return per_page
        where = "a quarter of a page" if choices[-1] == 4 else "half a page"
        hint = (
            "use --cards-per-page 2"
            if choices[-1] == 4
            else "use a smaller model (--preset classroom)"
        )
        first = big[0] if big else "a card"
        raise ConfigError(f"{first} does not fit {where} on {self.req.paper} paper; {hint}")

    def poster(self, plan: Lesson, stage: Path) -> None:
        """poster.pdf: one large sheet a page, or each page on two of the paper's size."""
        from .render.relay import poster_source, tiles_source

        source = poster_source(plan, self.req.paper)
        if self.req.poster == "large":
            self.compile(source, stage, "poster")
            return
        large = self.compile(source, stage / "large", "poster")
        pdf = large.pdf.read_bytes()
        tiles = tiles_source(large.pages, self.req.paper, "poster-large.pdf")
        self.compile(tiles, stage, "poster", {"poster-large.pdf": pdf})

    def compile(self, source: str, where: Path, stem: str, beside=None) -> tex.Compiled:
        return tex.compile_document(
            source, where, stem, failed_logs=self.req.output, beside=beside, epoch=EPOCH
        )


DOCUMENTS = ("cards", "poster", "plan")
MISFIT = re.compile(r"Relay: card (\d+) is too tall")


def misfits(log: str) -> list[str]:
    """The cards TeX found too tall for their slot ("card 17")."""
    return [f"card {m.group(1)}" for m in MISFIT.finditer(log)]


def name_of(plan: Lesson) -> Callable[[int], str]:
    """A student's name from their number (from 1): the roster's, else ""."""
    return lambda s: plan.students[s - 1].name


def relay(c: Config, req: RelayRequest) -> list[Path]:
    if req.scope not in SCOPES:
        raise ConfigError(f"--scope {req.scope!r}: forward or step")
    return Relay(c, req).run()
