"""`workbook grade`: a class folder and the typed answers → scores, a graded sheet per cell,
a gradebook to import, a page of feedback per student and a report for the teacher, in one
command.

Every student's key is made again from the class folder's settings (class.toml) and their
variant code (variants.csv), exactly as their handout was; see `grading` for how a value is
judged. Everything is written in a private folder and moved into place at the end, as the
other commands do; the answers file is only read.
"""

from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import compile as tex
from . import landing
from .chunks import cut_pages
from .classfolder import ClassSettings, load
from .classroom import OtherSettingsError, decode
from .config import ConfigError, read_small
from .export import write_atomic
from .grading import FOLLOW_THROUGH, ROUNDING_CREDIT, Grader, asked, look_at
from .handouts import Classroom, HandoutRequest, Part
from .names import pictures
from .progress import speaker
from .render import Options
from .render.handout import Reader
from .sheets import (
    Known,
    Problem,
    Result,
    gradebook_csv,
    graded_csv,
    problems_csv,
    read_answers,
    scores_csv,
)

FOLLOW_THROUGH_CHOICES = tuple(FOLLOW_THROUGH)


@dataclass(frozen=True)
class GradeRequest:
    class_dir: Path
    answers: Path
    output: Path | None = None  # default: <class_dir>/graded
    follow_through: str = "full"
    strict: bool = False
    pdf: bool = True  # feedback and the report (TeX); else the CSV files alone
    quiet: bool = False
    rounding_credit: float = ROUNDING_CREDIT

    @property
    def out(self) -> Path:
        return self.output if self.output is not None else self.class_dir / "graded"


class ProblemsError(ConfigError):
    """--strict and the answers file has problems."""


def handout_request(s: ClassSettings, folder: Path, quiet: bool = True) -> HandoutRequest:
    """The handouts' request as the class folder records it."""
    opts = Options(
        digits=s.digits,
        paper=s.paper,
        scaffold=s.scaffold,
        givens=s.givens,
        layout=s.layout,
        font_size=s.font_size,
        sans=s.sans,
    )
    return HandoutRequest(
        folder,
        opts,
        chapters=s.chapters,
        sections=s.sections,
        class_seed=s.class_seed,
        class_dir=folder,
        quiet=quiet,
    )


def students(folder: Path) -> list[tuple[str, str, str]]:
    """(id, name, variant code) of each student, from the class folder's variants.csv."""
    path = folder / "variants.csv"
    where = f"--class {str(folder)!r}"
    try:
        text = read_small(path, f"{where}: variants.csv").decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{where}: no variants.csv there (it lists the students)") from None
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"{where}: cannot read variants.csv") from None
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or not {"student_id", "name", "variant"} <= set(rows[0]):
        raise ConfigError(f"{where}: variants.csv has no students")
    return [(r["student_id"], unprotected(r["name"]), r["variant"]) for r in rows]


def unprotected(name: str) -> str:
    """A name as the roster had it: variants.csv marks one that starts like a formula."""
    return name[1:] if name[:2] in ("'=", "'+", "'-", "'@") else name


class Grading:
    def __init__(self, req: GradeRequest) -> None:
        self.req = req
        self.problems: list[Problem] = []
        self.say = speaker(req.quiet)

    def papers(self) -> list[Part]:
        """Each student's handout, laid out again from the class folder."""
        s = load(self.req.class_dir)
        room = Classroom(s.config, handout_request(s, self.req.class_dir))
        settings = room.fingerprint()
        parts = []
        for sid, name, code in students(self.req.class_dir):
            try:
                variant = decode(code, s.config, settings, what="variants.csv: code")
            except OtherSettingsError as exc:
                where = self.req.class_dir / "class.toml"
                raise ConfigError(f"{exc}, not those of {where}") from None
            part = room.part(Reader(name, sid, variant.code), variant, fresh=False)
            part.handout.document()  # lays it out: the cells it asks
            parts.append(part)
        return parts

    def run(self) -> list[Path]:
        t0 = time.perf_counter()
        if self.req.pdf:
            tex.check_tex()
        parts = self.papers()
        results = self.results(parts)
        self.summary(results, time.perf_counter() - t0)
        out = self.req.out
        out.mkdir(parents=True, exist_ok=True)
        with tex.folder_lock(out):
            return self.write(parts, results, self.problems, out, t0)

    def results(self, parts: list[Part]) -> list[Result]:
        """Each student's sheet, read from the answers file and graded; the rows that could
        not be placed are kept in `problems`."""
        asks = {p.reader.id: asked(p.handout) for p in parts}
        sheets, self.problems, count = read_answers(self.req.answers, Known(asks))
        self.report_problems(self.problems, count)
        results = []
        for p in parts:
            req = self.req
            grader = Grader(p.handout, asks[p.reader.id], req.follow_through, req.rounding_credit)
            sheet = sheets[p.reader.id]
            graded = grader.grade(sheet)
            r = p.reader
            flat = frozenset(grader.degenerate(sheet))
            looks = tuple(look_at(grader, sheet, graded))
            results.append(Result(r.id, r.name, r.code, graded, flat, looks))
        return swapped_sheets(results)

    def report_problems(self, problems: list[Problem], count: int) -> None:
        if not problems:
            return
        first = problems[0]
        msg = (
            f"{len(problems)} of {count} rows of {self.req.answers} cannot be graded "
            f"(line {first.line}: {first.what}); "
        )
        if self.req.strict:
            raise ProblemsError(msg + "--strict stops here")
        print(f"workbook: {msg}they are listed in problems.csv", file=sys.stderr)

    def summary(self, results: list[Result], seconds: float) -> None:
        silent = [r.id for r in results if not r.answered]
        cells = sum(len(r.graded) for r in results)
        self.say(f"graded {cells} values of {len(results)} students in {seconds:.1f} s")
        looked = [r.id for r in results if r.looks]
        for what, who in (
            ("with no answers, given no score", silent),
            ("to look at before importing (report.pdf, Students)", looked),
        ):
            if who:
                names = ", ".join(who[:5]) + (" ..." if len(who) > 5 else "")
                print(f"workbook: {len(who)} student(s) {what}: {names}", file=sys.stderr)

    def write(
        self,
        parts: list[Part],
        results: list[Result],
        problems: list[Problem],
        out: Path,
        t0: float,
    ) -> list[Path]:
        landing.remove_stale(out)
        with landing.private_folder(out, "graded") as tmp:
            stage = Path(tmp)
            files = {
                "graded.csv": graded_csv({r.id: r.graded for r in results}),
                "scores.csv": scores_csv(results),
                "gradebook.csv": gradebook_csv(results, self.assignment()),
                "problems.csv": problems_csv(problems),
            }
            for name, data in files.items():
                write_atomic(stage / name, data)
            staged = [Path(n) for n in files]
            if self.req.pdf:
                staged += self.documents(parts, results, stage)
            for stem in ("feedback", "report", *(r.id for r in results)):
                (out / f"{stem}.failed.log").unlink(missing_ok=True)  # history now
            # the feedback of a student no longer graded here goes
            written = landing.land(stage, out, staged, "feedback" if self.req.pdf else None)
        shown = [str(p) for p in staged if p.parent == Path()]
        if self.req.pdf:
            shown.append(f"{len(results)} files in feedback/")
        self.say(f"done in {time.perf_counter() - t0:.1f} s: {', '.join(shown)} in {out}")
        return written

    def assignment(self) -> str:
        s = load(self.req.class_dir)
        chosen = s.sections or (f"chapters {s.chapters}" if s.chapters else "all exercises")
        return f"Workbook handout ({chosen})"

    def documents(self, parts: list[Part], results: list[Result], stage: Path) -> list[Path]:
        """feedback.pdf with every student's feedback, each from an odd page, cut into
        feedback/<id>.pdf; and report.pdf; compiled in `stage`."""
        from .render.feedback import Feedback

        fb = Feedback(parts, results, self.req.follow_through, self.req.rounding_credit)
        names = pictures([r.name for r in results], stage, self.say)
        self.say(f"compiling the feedback of {len(results)} students ...")
        self.compile(fb.feedback_source(), stage, "feedback", names)
        pages = tex.label_pages(stage / "feedback.aux")
        ranges = [(pages[f"fb:{r.id}"], pages[f"fbend:{r.id}"]) for r in results]
        pdfs = cut_pages(stage / "feedback.pdf", ranges)
        for r, pdf in zip(results, pdfs, strict=True):
            write_atomic(stage / "feedback" / f"{r.id}.pdf", pdf)
        self.say("compiling the report ...")
        self.compile(fb.report_source(), stage, "report", names)
        for stem in ("feedback", "report"):
            for suffix in (".tex", ".log", ".aux"):
                (stage / f"{stem}{suffix}").unlink()
        return [
            Path("feedback.pdf"),
            Path("report.pdf"),
            *(Path("feedback") / f"{r.id}.pdf" for r in results),
        ]

    def compile(self, source: str, where: Path, stem: str, beside=None) -> tex.Compiled:
        return tex.compile_document(
            source, where, stem, failed_logs=self.req.out, beside=beside, epoch=EPOCH
        )


EPOCH = 946684800  # the date every PDF carries, so reruns are identical


def swapped_sheets(results: list[Result]) -> list[Result]:
    """Each student whose answers are mostly another student's key (sheets swapped in
    typing, or copied) gets a line for the teacher to look at."""
    keys = {r.id: {g.asked.cell: g.key for g in r.graded} for r in results}
    out = []
    for r in results:
        answered = [g for g in r.graded if g.answer is not None]
        right = sum(g.verdict == "right" for g in answered)
        looks = list(r.looks)
        for other, key in keys.items():
            same = sum(other != r.id and key.get(g.asked.cell) == g.answer for g in answered)
            if same >= max(SWAPPED_AT_LEAST, len(answered) // 2) and same > right:
                looks.append(f"{same} of {len(answered)} values are {other}'s key: whose sheet?")
        out.append(replace(r, looks=tuple(looks)))
    return out


SWAPPED_AT_LEAST = 5  # values of another student's key before a sheet is suspected


def grade(req: GradeRequest) -> list[Path]:
    if req.follow_through not in FOLLOW_THROUGH:
        raise ConfigError(f"--follow-through {req.follow_through!r}: full, half or none")
    return Grading(req).run()
