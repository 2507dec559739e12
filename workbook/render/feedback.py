"""A graded class as LaTeX: a page of feedback per student and the teacher's report.

The numbers come from the grading (`grading.Graded`: the student's answer, the key, what
their own earlier numbers give); the prose is in templates/feedback.tex.j2 and report.tex.j2.
Names reach LaTeX through name_tex, every other user text through tex_escape.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal

from pylatex import NoEscape

from .. import __version__
from ..grading import FOLLOW_THROUGH, ROUNDING_CREDIT, Graded, exercise_points
from ..hand import sig
from ..mistakes import BY_KEY
from ..names import name_macros, name_tex
from ..printed import Num, factor_exp
from ..sheets import parse_number
from ..trace import Step, Trace
from .base import jinja_env
from .cells import value_tex
from .fmt import Fmt, tex_escape, unicode_tex
from .steps import transposed

MAP_COLUMNS = 14  # exercises side by side in one block of the mistakes map
DARKEST = 0.6  # the darkest grey a cell with black digits gets: it survives a photocopy


@dataclass(frozen=True)
class MapBlock:
    columns: list[str]
    rows: list[tuple[str, list[str]]]


def detail(key: str, step: Step, t: Trace) -> str:
    """What a mistake in a product meant there, in the product's own symbols: X^T in place
    of X; W_O C^T in place of C W_O^T."""
    if key not in ("left_transposed", "right_transposed", "factors_swapped"):
        return ""
    sym = [t.symbol(n) for n in step.operands[:2]]
    ta, tb = step.transpose
    a, b = transposed(sym[0], ta), transposed(sym[1], tb)
    if key == "factors_swapped":
        return rf" (${b}\,{a}$ in place of ${a}\,{b}$; a square result comes out mirrored.)"
    side = 0 if key == "left_transposed" else 1
    flip = transposed(sym[side], not (ta, tb)[side])
    return rf" (${flip}$ in place of ${(a, b)[side]}$.)"


def rows(cells: list[list]) -> list[NoEscape]:
    """A table's rows, each a list of LaTeX cells, as the lines between its rules."""
    return [NoEscape(" & ".join(map(str, row))) for row in cells]


class Feedback:
    def __init__(
        self, parts, results, follow_through: str, rounding_credit: float = ROUNDING_CREDIT
    ) -> None:
        self.parts, self.results = parts, results
        self.credit = FOLLOW_THROUGH[follow_through]
        self.rounding_credit = rounding_credit
        self.t = parts[0].handout.t
        first = parts[0].handout
        self.paper = first.opts.paper
        self.opts = first.opts
        self.digits = first.opts.digits
        self.f = Fmt(self.digits)
        self.titles = {
            ex: first.t.step(cells[0][0]).desc.title for ex, cells in first.blanks.items() if cells
        }
        self.selection = NoEscape(tex_escape(_selection(parts[0])))
        self.env = jinja_env()

    def geometry(self) -> str:
        """The page as the class's handouts have it: magnified and turned for large print."""
        if self.opts.font_size == 10:
            return "margin=18mm,footskip=14pt"
        mag = round(1000 * self.opts.scale)
        return f"mag={mag},truedimen,landscape,margin=18truemm,footskip=14pt"

    def number(self, x: Decimal | None, exact: bool = False) -> str:
        """A value as a learner reads it; `exact` keeps every digit typed."""
        if x is None:
            return ""
        if x.is_infinite():
            return r"$-\infty$" if x < 0 else r"$\infty$"
        shown = x if exact else sig(x, self.digits)
        return f"${self.f(Num(shown, factor_exp([shown], self.digits)))}$"

    def render(self, template: str, names: list[str], **context) -> str:
        return self.env.get_template(template).render(
            paper=self.paper,
            version=__version__,
            names=NoEscape(name_macros(names)),
            credit=self.credit,
            rounding_credit=self.rounding_credit,
            geometry=NoEscape(self.geometry()),
            sans=self.opts.sans,
            rounding_points=(
                "half a point"
                if self.rounding_credit == 0.5
                else f"{self.rounding_credit:g} of a point"
            ),
            **context,
        )

    # --- one student ----------------------------------------------------------------------
    def verdict_tex(self, g: Graded) -> str:
        if g.verdict == "follow-through":
            if g.mistakes:
                return "allowed: " + unicode_tex(BY_KEY[g.mistakes[0]].name)
            own = ", ".join(g.uses)
            return f"right from your {own}" if own else "right from the values you wrote before it"
        if g.verdict == "slip":
            names = " or ".join(unicode_tex(BY_KEY[k].name) for k in g.mistakes)
            return f"slip: {names}" + (f" ({g.points:g})" if g.points else "")
        return {"wrong": "wrong", "blank": "not answered"}[g.verdict]

    def typed(self, g: Graded) -> str:
        """What the student wrote, as they wrote it (a decimal comma or a Unicode minus read)."""
        value = parse_number(g.typed) if g.typed else None
        if value is None:
            return ""
        if value.is_infinite():
            return r"$-\infty$" if value < 0 else r"$\infty$"
        return f"${format(value, 'f')}$"

    def row(self, g: Graded, *cells: str) -> list[str]:
        return [g.asked.exercise, f"${value_tex(g.asked)}$", self.typed(g), *cells]

    def student(self, k: int) -> dict[str, object]:
        """What the feedback says to student k."""
        r = self.results[k]
        counts = {ex: Counter() for ex in exercise_points(r.graded)}
        for g in r.graded:
            counts[g.asked.exercise][g.verdict] += 1
        exercises = [
            [
                ex,
                self.titles.get(ex, ""),
                str(n),
                *(str(counts[ex][v]) for v in ("right", "follow-through", "slip", "wrong")),
                str(counts[ex]["blank"]),
                f"{pts:g}",
            ]
            for ex, (pts, n) in exercise_points(r.graded).items()
        ]
        wrong = [g for g in r.graded if g.verdict in ("slip", "wrong", "blank")]
        details = [
            self.row(g, self.number(g.key), self.number(g.from_own), self.verdict_tex(g))
            for g in wrong
        ]
        followed = [
            self.row(g, self.number(g.key), self.verdict_tex(g))
            for g in r.graded
            if g.verdict == "follow-through"
        ]
        seen: dict[str, list[Graded]] = defaultdict(list)
        for g in wrong:
            for m in g.mistakes:
                if g.asked.exercise not in {x.asked.exercise for x in seen[m]}:
                    seen[m].append(g)
        explained = [
            (
                NoEscape(unicode_tex(BY_KEY[m].name)),
                NoEscape(unicode_tex(BY_KEY[m].explain) + detail(m, gs[0].asked.step, self.t)),
                ", ".join(g.asked.exercise for g in gs),
            )
            for m, gs in seen.items()
        ]
        return {
            "student": NoEscape(name_tex(r.name)) if r.name else "",
            "student_id": r.id,
            "code": r.code,
            "answered": r.answered,
            "percent": f"{r.percent:.1f}",
            "points": f"{r.points:g}",
            "count": len(r.graded),
            "exercises": rows(exercises),
            "details": rows(details),
            "followed": rows(followed),
            "allowed": any(g.verdict == "follow-through" and g.mistakes for g in r.graded),
            "explained": explained,
            "looks": [tex_escape(x) for x in r.looks],
        }

    def feedback_source(self) -> str:
        """Every student's feedback, each from an odd page, labelled fb:<id> where it starts
        and fbend:<id> where it ends (to cut out each student's pages)."""
        return self.render(
            "feedback.tex.j2",
            [r.name for r in self.results],
            title="Feedback",
            students=[self.student(k) for k in range(len(self.results))],
        )

    # --- the class ------------------------------------------------------------------------
    def report_source(self) -> str:
        results = self.results
        answered = [r for r in results if r.answered]
        scores = [r.percent for r in answered]
        bins = [0] * 10
        for s in scores:
            bins[min(9, int(s // 10))] += 1
        unit = 40 / max(1, max(bins))  # the tallest bar 40 mm high
        return self.render(
            "report.tex.j2",
            [r.name for r in results],
            title="Class report",
            selection=self.selection,
            students=len(results),
            graded=len(answered),
            count=len(results[0].graded) if results else 0,
            mean=f"{statistics.fmean(scores):.1f}" if scores else "",
            median=f"{statistics.median(scores):.1f}" if scores else "",
            bins=list(enumerate(bins)),
            bar_unit=NoEscape(f"{unit:.3f}"),
            tick=NoEscape(f"{-1.5 / unit:.3f}"),
            caption_y=NoEscape(f"{-7 / unit:.3f}"),
            exercises=rows(self.exercise_rows(answered)),
            mistakes=rows(self.mistake_rows(answered)),
            maps=self.maps(answered),
            silent=[NoEscape(self.who(r)) for r in results if not r.answered],
            allowed=self.allowed_rows(answered),
            looks=[
                NoEscape(f"{self.who(r)}: " + "; ".join(tex_escape(x) for x in r.looks))
                for r in results
                if r.looks
            ],
            roster=rows(
                [
                    [
                        name_tex(r.name),
                        tex_escape(r.id),
                        r.code,
                        f"{r.points:g}" if r.answered else "",
                        f"{r.percent:.1f}" if r.answered else "no answers",
                    ]
                    for r in results
                ]
            ),
        )

    @staticmethod
    def who(r) -> str:
        return f"{name_tex(r.name)} ({tex_escape(r.id)})" if r.name else tex_escape(r.id)

    def exercise_rows(self, answered) -> list[list[str]]:
        """Per exercise: values right, right from own numbers, slips, wrong, blank, each with
        the number of students (a whole class's problem or one student's?)."""
        values: dict[str, Counter] = {}
        students: dict[str, dict[str, set[str]]] = {}
        for r in answered:
            for g in r.graded:
                ex = g.asked.exercise
                values.setdefault(ex, Counter())[g.verdict] += 1
                students.setdefault(ex, defaultdict(set))[g.verdict].add(r.id)
        rows = []
        for ex, c in values.items():
            total = sum(c.values())
            good = c["right"] + c["follow-through"]
            cells = [
                f"{c[v]} ({len(students[ex][v])})" if c[v] else "0"
                for v in ("right", "follow-through", "slip", "wrong", "blank")
            ]
            rows.append([ex, self.titles.get(ex, ""), *cells, rf"{100 * good / total:.0f}\,\%"])
        return rows

    def mistake_counts(self, answered) -> dict[str, dict[str, set[str]]]:
        """mistake → exercise → the students who made it there."""
        out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for r in answered:
            for g in r.graded:
                if g.verdict == "slip":
                    for m in g.mistakes:
                        out[m][g.asked.exercise].add(r.id)
        return out

    def ranked(self, answered) -> list[tuple[str, dict[str, set[str]]]]:
        counts = self.mistake_counts(answered)

        def students(m: str) -> int:
            return len(set().union(*counts[m].values()))

        return sorted(counts.items(), key=lambda kv: (-students(kv[0]), BY_KEY[kv[0]].rank))

    def mistake_rows(self, answered) -> list[list[str]]:
        values = Counter(
            m for r in answered for g in r.graded if g.verdict == "slip" for m in g.mistakes
        )
        return [
            [
                unicode_tex(BY_KEY[m].name),
                str(len(set().union(*where.values()))),
                str(values[m]),
                ", ".join(where),
                tex_escape(", ".join(sorted(set().union(*where.values())))),
            ]
            for m, where in self.ranked(answered)
        ]

    def allowed_rows(self, answered) -> list[str]:
        """Other ways to a result, counted as right from the students' own numbers: who, where."""
        seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for r in answered:
            for g in r.graded:
                if g.verdict == "follow-through" and g.mistakes:
                    seen[g.mistakes[0]][r.id].add(g.asked.exercise)
        out = []
        for m, who in seen.items():
            where = "; ".join(f"{sid} ({', '.join(sorted(ex))})" for sid, ex in who.items())
            out.append(NoEscape(f"{unicode_tex(BY_KEY[m].name)}: {tex_escape(where)}"))
        return out

    def maps(self, answered) -> list[MapBlock]:
        """The exercise × mistake map in blocks of columns: each cell the number of students
        who made that mistake in that exercise, shaded by it."""
        ranked = self.ranked(answered)
        order = list(self.titles)
        columns = [ex for ex in order if any(ex in where for _, where in ranked)]
        top = max((len(s) for _, where in ranked for s in where.values()), default=1)
        blocks = []
        for start in range(0, len(columns), MAP_COLUMNS):
            cols = columns[start : start + MAP_COLUMNS]
            rows = []
            for m, where in ranked:
                cells = []
                for ex in cols:
                    n = len(where.get(ex, ()))
                    grey = 1 - (1 - DARKEST) * n / top
                    cells.append(NoEscape(rf"\cellcolor[gray]{{{grey:.2f}}}{n}" if n else ""))
                rows.append((NoEscape(unicode_tex(BY_KEY[m].name)), cells))
            blocks.append(MapBlock(cols, rows))
        return blocks


def _selection(part) -> str:
    opts = part.handout.opts
    h = part.handout
    numbers = sorted(
        {h.numbers[n] for n in h.picked} | set(h.selection.derived),
        key=lambda x: tuple(int(k) for k in x.split(".")),
    )
    if opts.sections is None and opts.chapters is None:
        return "every exercise"
    return f"exercises {_ranges(numbers)}"


def _ranges(numbers: list[str]) -> str:
    """3.1, 3.2, 3.3, 4.1 → 3.1–3.3, 4.1."""
    out: list[list[str]] = []
    for n in numbers:
        ch, k = n.split(".")
        if out and out[-1][-1].split(".")[0] == ch and int(out[-1][-1].split(".")[1]) + 1 == int(k):
            out[-1].append(n)
        else:
            out.append([n])
    return ", ".join(r[0] if len(r) == 1 else f"{r[0]}–{r[-1]}" for r in out)
