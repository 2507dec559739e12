"""`workbook build`: config → trace → LaTeX → PDF, for each requested document.

The three documents are views of one trace, computed once. The answer key cites the worked
workbook's sections and pages by LaTeX cross references, so it compiles beside the
workbook's .aux file of the same settings.

Everything is made in a private staging folder inside the output folder and moved into place
only when every requested document is complete: an error or an interruption leaves the
previous build as it was, and no staging folder behind.

A document already in the output folder, made from the same settings by the same tool (its
.aux records them, see made), is not compiled again; nor is one whose source came out the
same. A document that changed starts its passes from the .aux of the one it replaces. The
answer key's passes run beside the workbook's, with the labels of the workbook it replaces;
only the last ones wait for the new workbook's.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import compile as tex
from . import engine, landing, made
from .config import Config
from .export import write_atomic
from .printed import Book, check_answers
from .render import DOCUMENTS, Options, Worked, check_widths, select
from .render.matrix import Layout
from .texrun import signals_held
from .trace import Trace

ORDER = tuple(DOCUMENTS)  # workbook first: the answer key needs its page numbers
# Who gets a free core first (texrun.Cores): the workbook, which the key waits for, then the
# key, then the exercises, which nothing waits for.
PRIORITY = {"workbook": 0, "answers": 1, "exercises": 2}

# Measured on the default build (benchmarks/bench_build.py): LaTeX source per printed page,
# the key's pages per workbook page, and how fast pdflatex sets pages on this machine.
BYTES_PER_PAGE = {"workbook": 4900, "exercises": 2150}
KEY_PAGES_PER_WORKBOOK_PAGE = 0.25
PAGES_PER_SECOND = 30
PAGE_LIMIT = 2000  # a full build above this many pages needs --yes
# A document estimated above this many pages, which would otherwise keep one core busy alone,
# compiles as two chunks side by side (see chunks): the bigger of the workbook and the
# exercises, which compile side by side anyway, and the answer key, which compiles after them.
CHUNK_PAGES = 600


class TooLargeError(ValueError):
    """A build above PAGE_LIMIT pages without --yes; the message gives the estimate."""


def estimate_pages(
    sources: dict[str, str], worked: str | None, pages_per_page: float = 1.0
) -> dict[str, int]:
    """Pages of each document to compile, from the size of its LaTeX source; `worked` is
    the workbook the answer key cites (compiled privately when it is not built too);
    `pages_per_page`: how many of its pages a page at 10 pt on portrait A4 fills (large
    print: its text area's share)."""
    per = {n: BYTES_PER_PAGE[n] / pages_per_page for n in BYTES_PER_PAGE}
    pages = {n: round(len(s) / per[n]) for n, s in sources.items()}
    if worked is not None:
        workbook = round(len(worked) / per["workbook"])
        pages["answers"] = round(workbook * KEY_PAGES_PER_WORKBOOK_PAGE)
        if "workbook" not in sources:
            pages["workbook (for the key's pages)"] = workbook
    return pages


@dataclass(frozen=True)
class BuildRequest:
    output: Path
    options: Options
    chapters: str | None = None  # "2-5,11": the exercises' and key's; None for all
    sections: str | None = None  # "3.1-3.3,8.2": exercises of those; None for all
    only: tuple[str, ...] = ORDER
    tex_only: bool = False
    quiet: bool = False
    yes: bool = False  # build above PAGE_LIMIT pages
    chunk_pages: int = CHUNK_PAGES
    force: bool = False  # compile every document afresh, up to date or not


class Builder:
    def __init__(self, c: Config, req: BuildRequest) -> None:
        self.c, self.req = c, req
        self.opts = req.options  # with the chapters resolved, once the model is known
        self.sources: dict[str, str] = {}  # LaTeX made so far, by document (see source_of)
        self._worked: str | None = None
        self.estimate: dict[str, int] = {}  # pages of each document to compile
        self.say: Callable[[str], None] = (lambda msg: None) if req.quiet else self.warn
        self.epoch = made.source_date()
        self.compiled: list[str] = []  # the documents this run compiled, in order

    @staticmethod
    def warn(msg: str) -> None:
        """A line on stderr even under --quiet: what the user must know about the result."""
        print(f"workbook: {msg}", file=sys.stderr)

    def run(self) -> list[Path]:
        if not self.req.tex_only:
            tex.check_tex()  # fail before the work, not after it
        t0 = time.perf_counter()
        if self.all_recorded():
            for n in self.req.only:
                self.say(f"{n}.pdf is up to date")
            return []
        trace = self.trace = engine.run(self.c)
        engine.check_numbers(self.c, trace)  # refuse before writing anything
        opts = self.opts = select(self.req.options, self.req.chapters, self.req.sections, trace)
        loss = float(trace.loss.result)
        self.say(f"computed the step ({len(trace.steps)} steps, loss {loss:.4f})")
        check_answers(trace, opts.digits, opts.arithmetic)  # refuse before writing anything
        self.book = Book(trace, opts.digits, opts.arithmetic)  # the printed values, shared
        check_widths(self.c, trace, self.book, opts.layout_page)  # ... and anything made
        names = [n for n in ORDER if n in self.req.only]
        for n in names:  # the key's is made while TeX sets the others (its size is not needed)
            if n != "answers" or self.req.tex_only:
                self.source_of(n)
        self.check_size(names)
        out = self.req.output
        out.mkdir(parents=True, exist_ok=True)
        with tex.folder_lock(out):
            return self.write(names, trace, out, t0)

    def settings(self, name: str) -> str:
        """The settings stamp of a document (see made): everything that shapes it."""
        req = self.req
        shape = (self.c.to_dict(), req.options, req.chapters, req.sections, self.epoch)
        return made.settings_stamp("build", name, *shape)

    def all_recorded(self) -> bool:
        """Is every requested document in the output folder, made from these settings by
        this tool? (Then nothing is computed.)"""
        req, out = self.req, self.req.output
        if req.tex_only or req.force or not out.is_dir():
            return False
        with tex.folder_lock(out):
            return all(made.recorded(out, n, self.settings(n), tex.KEPT) for n in req.only)

    def write(self, names: list[str], trace: Trace, out: Path, t0: float) -> list[Path]:
        """Compile in a private folder, then move every document's files into `out`."""
        landing.remove_stale(out)  # left by a killed run (SIGKILL cannot be caught)
        # a file that cannot be written is refused before TeX starts, not after
        landing.check_targets(out, [Path(f"{n}{s}") for n in names for s in tex.KEPT])
        with landing.private_folder(out, "build") as stage:
            self.stage = stage
            staged = self.compile_all(names, trace)
            # all complete: now, and only now, replace the old ones, as one set
            written = landing.land(stage, out, [p.relative_to(stage) for p in staged])
            for n in names:  # a failure of an earlier build is history now
                (out / f"{n}.failed.log").unlink(missing_ok=True)
            if self.req.tex_only:
                self.drop_stale(names)
        pdfs = [f"{n}.pdf" for n in names if n in self.compiled]
        where = f": {', '.join(pdfs)} in {out}" if pdfs else f" in {out}"
        self.say(f"done in {time.perf_counter() - t0:.1f} s{where}")
        return written

    def drop_stale(self, names: list[str]) -> None:
        """--tex-only replaced these .tex files: a PDF, .log and .aux beside them that were
        made from another source go too, so the folder never pairs a source with another's
        PDF (nor an answer key with pages of another workbook)."""
        out = self.req.output
        for n in names:
            if tex.made_from(out / f"{n}.aux", self.source_of(n)):
                continue  # made from exactly this source: they still belong together
            gone = [out / f"{n}{s}" for s in (".pdf", ".log", ".aux")]
            gone = [p for p in gone if p.exists() or p.is_symlink()]
            for p in gone:
                p.unlink()
            if gone:
                names_gone = ", ".join(p.name for p in gone)
                self.warn(f"removed {names_gone}: made from another {n}.tex")

    def check_size(self, names: list[str]) -> None:
        """Say how big the build will be; refuse a very big one unless asked for."""
        if self.req.tex_only:
            return
        worked = self.worked_source() if "answers" in names else None
        normal, page = Layout("a4"), self.opts.layout_page
        share = normal.text_width * normal.text_height / (page.text_width * page.text_height)
        sources = {n: s for n, s in self.sources.items() if n != "answers"}
        pages = estimate_pages(sources, worked, share)
        self.estimate = pages
        total = sum(pages.values())
        each = ", ".join(f"{n} {p:,}" for n, p in pages.items())
        minutes = total / PAGES_PER_SECOND / 60
        full = self.opts.detail == "full"
        if total > PAGE_LIMIT and full and not self.req.yes:
            raise TooLargeError(
                f"this build makes about {total:,} pages ({each}), about {minutes:.0f} min of "
                f"TeX; above {PAGE_LIMIT:,} pages add --yes, or use --detail sample or results"
            )
        self.say(f"about {total:,} pages ({each}), about {minutes:.1f} min of TeX")

    def compile_all(self, names: list[str], trace: Trace) -> list[Path]:
        """Every document's files, made in the staging folder on two cores (see
        texrun.Cores): the workbook and the exercises side by side, the key's passes with
        them, its last ones once the workbook, whose pages it cites, is made. A workbook in
        chunks takes both cores; the exercises then start as soon as one is spare (the
        chunks' last passes). A document up to date is only recorded as made from these
        settings."""
        spare = threading.Event()  # a core free for the exercises
        labels = tex.Feed("workbook.aux")  # the new workbook's labels, for the key
        out = self.req.output

        def workbook() -> list[Path]:
            try:
                files = self.document("workbook", trace, spare=spare, feeding=labels)
                labels.offer(tex.labels(files_aux(files).read_bytes()), final=True)
                return files
            except BaseException as exc:
                labels.fail(exc)
                raise
            finally:
                spare.set()

        def exercises() -> list[Path]:
            spare.wait()
            return self.document("exercises", trace)

        def answers() -> list[Path]:
            if compiling_workbook and not self.changed("answers"):
                beside = labels.final()  # the same key: whether it is up to date needs them
                return self.document("answers", trace, beside=beside)
            if compiling_workbook:  # its first passes with the labels of the one replaced
                old = out / "workbook.aux"
                known = old.is_file() and not self.req.force
                given = {"workbook.aux": tex.labels(old.read_bytes())} if known else {}
                return self.document("answers", trace, beside=given, fed=labels)
            return self.document("answers", trace, beside={"workbook.aux": self.workbook_aux()})

        jobs = {"workbook": workbook, "exercises": exercises, "answers": answers}
        if self.req.tex_only:
            return [p for n in names for p in self.document(n, trace)]
        compiling_workbook = "workbook" in names and not self.current("workbook", {})
        if not compiling_workbook or self.parts("workbook") == 1:
            spare.set()
        with ThreadPoolExecutor(max_workers=3) as pool:
            with signals_held():  # every job's thread known to the pool, which waits for them
                running = {n: pool.submit(jobs[n]) for n in names}
            made_files = {n: running[n].result() for n in names}  # the first failure first
        return [p for n in names for p in made_files[n]]

    def parts(self, name: str) -> int:
        """How many chunks the document compiles in: two when it is big and would otherwise
        keep one core busy alone (see CHUNK_PAGES), else one."""
        pages = self.estimate.get(name, 0)
        side_by_side = [p for n, p in self.estimate.items() if n in ("workbook", "exercises")]
        alone = name not in ("workbook", "exercises") or pages == max(side_by_side, default=0)
        return 2 if alone and pages > self.req.chunk_pages else 1

    def worked_source(self) -> str:
        """The worked workbook's source for these settings, made once."""
        if "workbook" in self.sources:
            return self.sources["workbook"]
        if self._worked is None:
            self._worked = Worked(self.c, self.trace, self.opts, self.book).tex()
        return self._worked

    def source_of(self, name: str) -> str:
        """The document's LaTeX for these settings, made once."""
        if name not in self.sources:
            self.sources[name] = self.source(name, self.trace)
        return self.sources[name]

    def source(self, name: str, trace: Trace) -> str:
        return DOCUMENTS[name](self.c, trace, self.opts, self.book).tex()

    def changed(self, name: str) -> bool:
        """Is the source of `name` other than the one its .aux in the output folder says
        it was made from (or is there none)?"""
        return self.req.force or not tex.made_from(
            self.req.output / f"{name}.aux", self.source_of(name)
        )

    def current(self, name: str, beside: dict[str, bytes]) -> bool:
        """Is the output folder's `name` made from exactly this source and these files
        beside it (its PDF's stamp says so), its files all there?"""
        out = self.req.output
        if self.changed(name) or not all((out / f"{name}{s}").is_file() for s in tex.KEPT):
            return False
        return tex.stamp_of(out / f"{name}.pdf") == tex.inputs_stamp(
            self.source_of(name), beside, self.epoch
        )

    def document(
        self,
        name: str,
        trace: Trace,
        beside: dict[str, bytes] | None = None,
        spare: threading.Event | None = None,
        fed: tex.Feed | None = None,
        feeding: tex.Feed | None = None,
    ) -> list[Path]:
        """The document's files, made in the staging folder, or only its .aux recording
        these settings when the output folder's is up to date. `beside`: the files it reads
        (the workbook's labels for the key); `fed`, `feeding`: see compile_document;
        `spare` is set once a core is free."""
        t1 = time.perf_counter()
        source = self.source_of(name)
        self.say(f"made {name}.tex ({len(source) // 1024} KiB, {time.perf_counter() - t1:.1f} s)")
        if self.req.tex_only:
            write_atomic(self.stage / f"{name}.tex", source.encode())
            return [self.stage / f"{name}.tex"]
        out = self.req.output
        if fed is None and self.current(name, beside or {}):
            aux = self.stage / f"{name}.aux"
            made.restamp(out / f"{name}.aux", aux, self.settings(name), out / f"{name}.pdf")
            self.say(f"{name}.pdf is up to date")
            return [aux]
        parts = self.parts(name)
        how = f" in {parts} chunks side by side" if parts > 1 else ""
        how += " beside the workbook" if fed is not None and parts == 1 else ""
        self.say(f"compiling {name}.pdf{how} ...")
        t2 = time.perf_counter()
        result = tex.compile_document(
            source,
            self.stage,
            name,
            failed_logs=self.req.output,  # where the user looks, not the staging folder
            beside=beside,
            epoch=self.epoch,
            parts=parts,
            spare=spare,
            start=None if self.req.force else out,
            fed=fed,
            feeding=feeding,
            priority=PRIORITY[name],
            pages=self.estimate.get(name),
        )
        self.compiled.append(name)
        pdf = self.stage / f"{name}.pdf"
        with (self.stage / f"{name}.aux").open("a") as f:
            f.write(made.record(self.settings(name), pdf))
        warn = f", {result.overfull} overfull lines" if result.overfull else ""
        took = time.perf_counter() - t2
        passes = f"{result.passes} {'rounds of passes' if parts > 1 else 'pass'}"
        passes += "es" if parts == 1 and result.passes != 1 else ""
        self.say(f"compiled {name}.pdf ({result.pages} pages{how}, {passes}, {took:.1f} s{warn})")
        return [self.stage / f"{name}{s}" for s in tex.KEPT]

    def workbook_aux(self) -> bytes:
        """The labels of the worked workbook of these settings (what the key reads of its
        .aux), for the key's cross references.

        Uses the output folder's when it was made from exactly the source these settings
        make (its recorded hash says so); otherwise compiles one privately, leaving the
        folder's workbook alone.
        """
        source = self.worked_source()
        aux = self.req.output / "workbook.aux"
        if tex.made_from(aux, source):
            return tex.labels(aux.read_bytes())
        self.say("compiling the worked workbook privately, for the answer key's references ...")
        if "workbook" not in self.req.only:  # the key cites a workbook the folder lacks
            pdf = self.req.output / "workbook.pdf"
            state = "is from other settings" if pdf.exists() else "is not there"
            self.warn(
                f"note: the answer key cites the workbook of these settings, and {pdf} {state}:"
                " build it with --only workbook"
            )
        with landing.private_folder(self.stage, "key-workbook") as tmp:  # never outside out
            parts = self.parts("workbook (for the key's pages)")
            pages = self.estimate.get("workbook (for the key's pages)")
            tex.compile_document(source, tmp, "workbook", parts=parts, pages=pages)
            return tex.labels((tmp / "workbook.aux").read_bytes())


def files_aux(files: list[Path]) -> Path:
    return next(p for p in files if p.suffix == ".aux")


def build(c: Config, req: BuildRequest) -> list[Path]:
    """Write DIR/<doc>.tex for each document and, unless tex_only, DIR/<doc>.pdf."""
    return Builder(c, req).run()
