"""`workbook handouts`: a class list → one print file, a handout per student, the teacher's
key, a grade sheet and the list of variants, in one command.

Each student's handout is compiled on its own (both cores at once), the print file joins them
with pdfpages (each student starting on an odd page, for duplex printing), and the key is one
document with a part per student. Every PDF is reproducible: the same roster, settings and
class seed give the same bytes (fixed dates, no PDF ID). Everything is made in a private
folder and moved into place at the end, as `build` does.
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pylatex import NoEscape
from pypdf import PdfReader

from . import compile as tex
from . import engine, landing, made
from .classfolder import CLASS_FILE, ClassSettings, dumps, roster_hash
from .classroom import OtherSettingsError, Variant, assign, decode, fingerprint, read_roster
from .config import Config, ConfigError
from .export import write_atomic
from .grading import Asked, asked, key_value
from .hand import Rounder
from .mistakes import Inputs, diagnosis
from .names import name_macros, name_tex, pictures
from .planning import RATES_TEXT, clock, of_handout, workload
from .printed import Book, single
from .progress import Progress, speaker
from .render import Options, check_widths, select
from .render.answers import Answers
from .render.base import Selection
from .render.fmt import element, tex_escape, unicode_tex
from .render.handout import Handout, Reader
from .sheets import spreadsheet_text
from .texrun import signals_held
from .trace import Step, Trace

CLASS_OUTPUTS = ("handouts.pdf", "key.pdf", "key.tex", "grades.csv", "variants.csv", "answers.csv")
TELLING_CELLS = 6  # asked cells a key looks through for the one that tells mistakes apart
EPOCH = 946684800  # 2000-01-01: the date every handout PDF carries, so reruns are identical


@dataclass(frozen=True)
class HandoutRequest:
    output: Path
    options: Options
    roster: Path | None = None
    chapters: str | None = None
    sections: str | None = None
    class_seed: int = 0
    key_for: str | None = None  # a variant code: only that student's key
    class_dir: Path | None = None  # where the settings came from (--class), for messages
    minutes: float | None = None  # the lesson's length: say when the selection takes longer
    quiet: bool = False
    force: bool = False  # compile every PDF afresh, up to date or not

    def settings(self, c: Config) -> ClassSettings:
        o = self.options
        return ClassSettings(
            c,
            self.chapters,
            self.sections,
            self.class_seed,
            o.digits,
            o.paper,
            o.layout,
            o.scaffold,
            o.givens,
            roster_hash(self.roster),
            tool=made.tool_digest(),
            font_size=o.font_size,
            sans=o.sans,
        )


@dataclass
class Part:
    """One student (or one variant code) with their step, handout and key renderers."""

    reader: Reader
    variant: Variant
    config: Config
    handout: Handout
    key: KeyPart


class KeyPart(Answers):
    """One student's answers in the class key: no workbook to cite, a heading per student;
    the masked entries the grader uses, in grey; under each exercise, what its first asked
    cell takes under the mistakes most likely there."""

    before_hyperref = ()
    shows_unneeded = True
    asks: tuple[Asked, ...] = ()  # what the student's handout asks (set once it is laid out)

    def telling(self, step: Step) -> list[str]:
        digits = self.opts.digits
        right = Inputs(self.book.values, Rounder(digits), self.t)
        # the cell (of the first few asked) where the likeliest mistakes show most
        cells = [a for a in self.asks if a.step is step and not a.entry.part][:TELLING_CELLS]
        best = max(
            ((a, diagnosis(a.entry, right)) for a in cells),
            key=lambda af: sum(10 - m.rank for m, _ in af[1]),
            default=None,
        )
        lines = []
        if step.desc.causal == "unneeded" and cells:
            lines.append(
                r"\par\noindent{\small Grey: entries above the diagonal, not asked; a "
                r"transposed product puts them below it.}\par"
            )
        if best is not None and best[1]:
            first, found = best
            cell = element(step.desc.symbol, first.entry.idx)
            shown = [rf"right ${self.f(single(key_value(self.book, first.entry), digits))}$"]
            shown += [
                rf"{unicode_tex(m.told or m.name)} ${self.f(single(v, digits))}$" for m, v in found
            ]
            lines.append(
                rf"\par\noindent{{\small\textit{{If ${cell}$ reads:}} {'; '.join(shown)}.}}\par"
            )
        return lines

    def where(self, name: str) -> str:
        """The earlier exercises whose answers this one starts from: where the student got
        one wrong, the teacher checks this one from the student's own numbers."""
        operands = dict.fromkeys(self.t.step(name).operands)
        own = [self.numbers[n] for n in operands if n in self.picked]
        return f"uses their {', '.join(own)}" if own else ""


class Classroom:
    def __init__(self, c: Config, req: HandoutRequest) -> None:
        self.c, self.req = c, req
        self.say = speaker(req.quiet)

    # --- who gets what ------------------------------------------------------------------
    def fingerprint(self) -> int:
        """The settings' fingerprint that every code of this class carries: the model less
        the variant's seed and sentence, the exercises asked, and how they are printed."""
        t = engine.run(self.c)
        opts = select(self.req.options, self.req.chapters, self.req.sections, t)
        chosen = Selection(t, opts)
        o = self.req.options
        return fingerprint(
            self.c,
            exercises=sorted({chosen.numbers[n] for n in chosen.picked} | set(chosen.derived)),
            digits=o.digits,
            arithmetic=o.arithmetic,
            scaffold=o.scaffold,
            givens=o.givens,
        )

    def readers(self) -> list[tuple[Reader, Variant]]:
        settings = self.fingerprint()
        if self.req.key_for is not None:
            try:
                variant = decode(self.req.key_for, self.c, settings)
            except OtherSettingsError as exc:
                where = self.req.class_dir
                hint = (
                    f", not the class in {where}"
                    if where is not None
                    else "; give --class DIR, the folder the class's handouts were written to "
                    f"(its {CLASS_FILE} holds their settings)"
                )
                raise ConfigError(f"{exc}{hint}") from None
            return [(Reader("", "", variant.code), variant)]
        if self.req.roster is None:
            raise ConfigError("handouts need --roster FILE.csv (or --key-for CODE)")
        students = read_roster(self.req.roster)
        variants = assign(self.c, students, self.req.class_seed, self.printable, settings)
        return [(Reader(s.name, s.id, variants[s.id].code), variants[s.id]) for s in students]

    def printable(self, cv: Config, t: Trace) -> None:
        """Refuse a variant whose tables would not fit this paper (see check_widths)."""
        opts = self.req.options
        check_widths(cv, t, Book(t, opts.digits, opts.arithmetic), opts.layout_page)

    def part(self, reader: Reader, variant: Variant, fresh: bool = True) -> Part:
        """A student's step, handout and key; `fresh`: a variant not yet printed, checked
        (grading remakes variants whose handouts were made already)."""
        cv = variant.config(self.c)
        t = engine.run(cv)
        if fresh:
            engine.check_numbers(cv, t)
        opts = select(self.req.options, self.req.chapters, self.req.sections, t)
        last = max(Selection(t, opts).chapters)  # nothing later is printed
        book = Book(t, opts.digits, opts.arithmetic, last)  # the handout and its key share it
        if fresh:  # refuse before writing anything
            check_widths(cv, t, book, opts.layout_page)
        return Part(
            reader,
            variant,
            cv,
            Handout(cv, t, opts, book, reader=reader),
            KeyPart(cv, t, opts, book),
        )

    # --- the whole job --------------------------------------------------------------------
    def run(self) -> list[Path]:
        tex.check_tex()
        t0 = time.perf_counter()
        if self.all_current():
            self.say(f"the handouts, the key and the sheets in {self.req.output} are up to date")
            return []
        pairs = self.readers()
        parts = []
        made = Progress("steps and pages made, students:", len(pairs), self.req.quiet)
        for reader, variant in pairs:
            parts.append(self.part(reader, variant))
            made.step()
        if self.req.key_for is None:
            self.plan(parts[0].handout)
        out = self.req.output
        out.mkdir(parents=True, exist_ok=True)
        if (out / "students").is_symlink():  # its files would go, and be removed, elsewhere
            raise ConfigError(
                f"{out / 'students'} is a symbolic link; handouts write only into {out}"
            )
        with tex.folder_lock(out):
            return self.write(parts, out, t0)

    def all_current(self) -> bool:
        """Is the output folder this class's, made from these settings, this roster and this
        tool (its class.toml, moved into place last, says so), with every file there?"""
        req, out = self.req, self.req.output
        if req.key_for is not None or req.force or req.roster is None or not out.is_dir():
            return False
        with tex.folder_lock(out):
            toml = out / CLASS_FILE
            if not toml.is_file() or toml.read_bytes() != dumps(req.settings(self.c)):
                return False
            files = [*CLASS_OUTPUTS, *(f"students/{s.id}.pdf" for s in read_roster(req.roster))]
            return all((out / f).is_file() for f in files)

    def kept(self, source: str, beside: dict[str, bytes], where: Path, stem: str) -> int | None:
        """When the output folder's stem.pdf (beside `where`'s place in it) is made from this
        very source and these files, copy it into `where` with the source: its pages."""
        pdf = self.req.output / where.relative_to(self.stage) / f"{stem}.pdf"
        if self.req.force or pdf.is_symlink():
            return None
        if tex.stamp_of(pdf) != tex.inputs_stamp(source, beside, EPOCH):
            return None
        shutil.copyfile(pdf, where / f"{stem}.pdf")
        (where / f"{stem}.tex").write_text(source)
        return len(PdfReader(where / f"{stem}.pdf").pages)

    def compile_or_keep(self, source: str, where: Path, stem: str, beside: dict[str, bytes]) -> int:
        """where/stem.pdf, compiled or kept (see kept): its pages."""
        pages = self.kept(source, beside, where, stem)
        if pages is not None:
            self.say(f"{stem}.pdf is up to date")
            return pages
        return self.compile(source, where, stem, beside).pages

    def plan(self, h: Handout) -> None:
        """What each handout asks, and about how long it takes by hand; said before TeX
        starts, and said even under --quiet when it is longer than --minutes."""
        h.document()  # lays it out: the cells it leaves blank
        load = workload(h)
        cells, products, written = (sum(r[k] for r in load) for k in (1, 2, 3))
        seconds = sum(i.seconds for i in of_handout(h))
        took = clock(seconds)
        self.say(
            f"each handout asks for {cells} cells, {products} products in their sums"
            f" and {written} values written on the way: about {took} (minutes:seconds) by hand"
        )
        if self.req.minutes is not None and seconds > 60 * self.req.minutes:
            print(
                f"workbook: the selection takes about {took} (minutes:seconds) by hand, more than "
                f"--minutes {self.req.minutes:g} (at {RATES_TEXT}; `workbook exercises` lists "
                "each exercise's share)",
                file=sys.stderr,
            )

    def write(self, parts: list[Part], out: Path, t0: float) -> list[Path]:
        """Compile in a private folder, then move every file into `out`."""
        landing.remove_stale(out)
        if self.req.key_for is None:  # refused before TeX starts, not after
            ids = [p.reader.id for p in parts]
            landing.check_targets(
                out, [*map(Path, CLASS_OUTPUTS), *(Path("students") / f"{i}.pdf" for i in ids)]
            )
        with landing.private_folder(out, "handouts") as stage:
            self.stage = stage
            if self.req.key_for is not None:
                staged = self.key_only(stage, parts[0])
            else:
                staged = self.everything(stage, parts)
            for stem in ("handouts", "key", *(p.reader.id for p in parts)):
                (out / f"{stem}.failed.log").unlink(missing_ok=True)  # history now
            # a student of an earlier roster is not in this class
            written = landing.land(stage, out, staged, None if self.req.key_for else "students")
        self.say(f"done in {time.perf_counter() - t0:.1f} s")
        return written

    def key_only(self, stage: Path, part: Part) -> list[Path]:
        stem = f"key-{part.variant.code}"
        names = self.name_pictures(stage, [part])
        self.compile(self.key_source([part]), stage, stem, names)
        return [Path(f"{stem}.pdf")]

    def name_pictures(self, stage: Path, parts: list[Part]) -> dict[str, bytes]:
        return pictures([p.reader.name for p in parts], stage, self.say)

    def everything(self, stage: Path, parts: list[Part]) -> list[Path]:
        students = stage / "students"
        students.mkdir()
        compiled = Progress("handouts compiled:", len(parts), self.req.quiet)
        names = self.name_pictures(stage, parts)

        fresh: list[str] = []  # the students whose handout is compiled, not kept

        def one(part: Part) -> int:
            source = part.handout.tex()
            beside = {name: pdf for name, pdf in names.items() if name in source}  # their own
            pages = self.kept(source, beside, students, part.reader.id)
            if pages is None:
                pages = self.compile(source, students, part.reader.id, beside).pages
                fresh.append(part.reader.id)
            for suffix in (".tex", ".log", ".aux"):
                (students / f"{part.reader.id}{suffix}").unlink(missing_ok=True)
            compiled.step()
            return pages

        with ThreadPoolExecutor(max_workers=2) as pool:
            with signals_held():  # every thread known to the pool, which waits for them
                results = pool.map(one, parts)
            pages = list(results)
        self.say_kept([p.reader.id for p in parts], fresh)
        self.say("joining the handouts into one print file ...")
        beside = {
            f"student-{p.reader.id}.pdf": (students / f"{p.reader.id}.pdf").read_bytes()
            for p in parts
        }
        self.compile_or_keep(self.print_file(parts, pages), stage, "handouts", beside)
        self.say("compiling the key ...")
        self.compile_or_keep(self.key_source(parts), stage, "key", names)
        write_atomic(stage / "grades.csv", grades(parts))
        write_atomic(stage / "variants.csv", variants(parts))
        write_atomic(stage / "answers.csv", answer_sheet(parts))
        write_atomic(stage / CLASS_FILE, dumps(self.req.settings(self.c)))
        # class.toml last: it says that everything before it is this class's (all_current)
        return [
            *map(Path, CLASS_OUTPUTS),
            *(Path("students") / f"{p.reader.id}.pdf" for p in parts),
            Path(CLASS_FILE),
        ]

    def say_kept(self, ids: list[str], fresh: list[str]) -> None:
        """Which handouts were compiled and which kept, in roster order (at most 10 named)."""
        compiled = [i for i in ids if i in fresh]
        kept = [i for i in ids if i not in fresh]
        if kept:
            self.say(f"{len(kept)} handout(s) up to date, kept: {listed(kept)}")
        if compiled:
            self.say(f"{len(compiled)} handout(s) compiled: {listed(compiled)}")

    def compile(self, source: str, where: Path, stem: str, beside=None) -> tex.Compiled:
        return tex.compile_document(
            source, where, stem, failed_logs=self.req.output, beside=beside, epoch=EPOCH
        )

    # --- documents ------------------------------------------------------------------------
    def print_file(self, parts: list[Part], pages: list[int]) -> str:
        files = [(f"student-{p.reader.id}.pdf", n) for p, n in zip(parts, pages, strict=True)]
        return print_file(files, self.req.options.paper, "handout")

    def key_source(self, parts: list[Part]) -> str:
        """The teacher's key: per student, their name, id and variant, then each asked
        exercise's result and tolerance, numbered as in the handouts."""
        first = parts[0].key
        doc = first.skeleton()
        doc.preamble.append(NoEscape(r"\pdftrailerid{}"))
        doc.preamble.append(NoEscape(name_macros([p.reader.name for p in parts])))
        doc.append(NoEscape(r"\pagestyle{fancy}\fancyhead[L]{\small Teacher's key: \leftmark}"))
        for part in parts:
            if not part.handout.blanks:  # --key-for: the handout was not laid out
                part.handout.document()
            part.key.asks = tuple(asked(part.handout))
        handout = parts[0].handout
        doc.append(
            first.prose(
                "key_intro.tex.j2",
                load=workload(handout),
                on_the_way=on_the_way(handout),
                single=self.req.key_for is not None,
            )
        )
        for part in parts:
            r, k = part.reader, part.key
            who = " ".join(
                x for x in (name_tex(r.name), f"(id {tex_escape(r.id)})" if r.id else "") if x
            )
            sentence = tex_escape(part.config.sentence, breakable=True)
            doc.append(
                NoEscape(
                    rf"\clearpage\section*{{{who + ', ' if who else ''}variant {r.code}}}"
                    rf"\markboth{{{who or r.code}}}{{}}"
                    rf"Sentence ``{sentence}'', seed {part.variant.seed}."
                )
            )
            for number in k.chapters():
                title = tex_escape(next(ch.title for ch in k.t.chapters if ch.number == number))
                doc.append(NoEscape(rf"\subsection*{{{number}\quad {title}}}"))
                doc.append(NoEscape("\n".join(k.answers(number))))
        return doc.dumps()


def listed(ids: list[str], most: int = 10) -> str:
    """students/a1.pdf, ...: the first `most` of them, and how many more."""
    shown = ", ".join(f"{i}.pdf" for i in ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


def print_file(files: list[tuple[str, int]], paper: str, what: str) -> str:
    """PDFs (file name, pages) one after another, each starting on an odd page (for printing
    on both sides): after an odd count, a page that says why it is otherwise empty."""
    lines = [
        rf"\documentclass[{paper}paper]{{article}}",
        r"\usepackage{pdfpages}",
        r"\pdftrailerid{}",
        r"\pagestyle{empty}",
        r"\begin{document}",
    ]
    for name, n in files:
        lines.append(rf"\includepdf[pages=-,fitpaper]{{{name}}}")
        if n % 2:
            lines.append(
                r"\null\vfill\begin{center}\small This side is left blank: printed on both"
                rf" sides, each {what} starts on a sheet of its own.\end{{center}}"
                r"\vfill\clearpage"
            )
    lines.append(r"\end{document}")
    return "\n".join(lines) + "\n"


def on_the_way(h: Handout) -> NoEscape:
    """What the selected exercises write on the way, in words: a softmax's, GELU's, or none."""
    kinds = {h.arithmetic_kind(h.t.step(cells[0][0])) for cells in h.blanks.values() if cells}
    said = {
        "softmax": "a softmax's row maxima, exponentials and their sums",
        "gelu": r"GELU's $u$ and $\tanh u$ for each entry",
    }
    return NoEscape(" and ".join(text for kind, text in said.items() if kind in kinds))


# --- sheets -----------------------------------------------------------------------------------
def _csv(rows: list[list[object]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def grades(parts: list[Part]) -> bytes:
    """The key as a grade sheet: a row per value a student writes (answers.csv's rows), the
    printed answer and how far from it a careful calculation may honestly land (0: every
    digit)."""
    return _sheet(parts, key=True)


def answer_sheet(parts: list[Part]) -> bytes:
    """A row per value each student writes, in the order the handout asks for them, the
    answer left empty: for a teacher, an assistant or a student to fill in and grade."""
    return _sheet(parts, key=False)


def _sheet(parts: list[Part], key: bool) -> bytes:
    head = ["student_id", "exercise", "quantity", "row", "col", "answer"]
    rows: list[list[object]] = [[*head, "tolerance"] if key else head]
    for part in parts:
        h = part.handout  # laid out already: it recorded the cells it leaves blank
        digits = h.opts.digits
        for a in asked(h):
            where = ["" if x is None else x for x in (a.row, a.col)]
            if not key:
                rows.append([part.reader.id, a.exercise, a.quantity, *where, ""])
                continue
            value = key_value(h.book, a.entry)
            units = h.book.tolerance(a.step)
            unit = Decimal(1).scaleb(value.adjusted() - digits + 1) if value else Decimal(0)
            tolerance = format(units * unit, "f") if units else "0"
            rows.append(
                [part.reader.id, a.exercise, a.quantity, *where, format(value, "f"), tolerance]
            )
    return _csv(rows)


def variants(parts: list[Part]) -> bytes:
    rows: list[list[object]] = [["student_id", "name", "variant", "seed", "sentence"]]
    rows += [
        [
            p.reader.id,
            spreadsheet_text(p.reader.name),
            p.variant.code,
            p.variant.seed,
            spreadsheet_text(p.config.sentence),  # words of a vocabulary: any text
        ]
        for p in parts
    ]
    return _csv(rows)


def handouts(c: Config, req: HandoutRequest) -> list[Path]:
    return Classroom(c, req).run()
