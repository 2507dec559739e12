"""`workbook build`: config → trace → LaTeX → PDF, for each requested document.

The three documents are views of one trace, computed once. The answer key cites the worked
workbook's sections and pages by LaTeX cross references, so it compiles beside the
workbook's .aux file of the same settings.

Everything is made in a private staging folder inside the output folder and moved into place
only when every requested document is complete: an error or an interruption leaves the
previous build as it was, and no staging folder behind.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import compile as tex
from . import engine
from .config import Config
from .export import write_atomic
from .printed import Book, check_answers
from .render import DOCUMENTS, Options, Worked, check_widths, select
from .render.matrix import Layout
from .trace import Trace

ORDER = tuple(DOCUMENTS)  # workbook first: the answer key needs its page numbers

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


class Builder:
    def __init__(self, c: Config, req: BuildRequest) -> None:
        self.c, self.req = c, req
        self.opts = req.options  # with the chapters resolved, once the model is known
        self.sources: dict[str, str] = {}  # LaTeX made before compiling, by document
        self._worked: str | None = None
        self.estimate: dict[str, int] = {}  # pages of each document to compile
        self.say: Callable[[str], None] = (lambda msg: None) if req.quiet else self.warn

    @staticmethod
    def warn(msg: str) -> None:
        """A line on stderr even under --quiet: what the user must know about the result."""
        print(f"workbook: {msg}", file=sys.stderr)

    def run(self) -> list[Path]:
        if not self.req.tex_only:
            tex.check_tex()  # fail before the work, not after it
        t0 = time.perf_counter()
        trace = self.trace = engine.run(self.c)
        engine.check_numbers(self.c, trace)  # refuse before writing anything
        opts = self.opts = select(self.req.options, self.req.chapters, self.req.sections, trace)
        loss = float(trace.loss.result)
        self.say(f"computed the step ({len(trace.steps)} steps, loss {loss:.4f})")
        check_answers(trace, opts.digits, opts.arithmetic)  # refuse before writing anything
        self.book = Book(trace, opts.digits, opts.arithmetic)  # the printed values, shared
        check_widths(self.c, trace, self.book, opts.layout_page)  # ... and anything made
        names = [n for n in ORDER if n in self.req.only]
        self.sources = {n: self.source(n, trace) for n in names}
        self.check_size(names)
        out = self.req.output
        out.mkdir(parents=True, exist_ok=True)
        with tex.folder_lock(out):
            return self.write(names, trace, out, t0)

    def write(self, names: list[str], trace: Trace, out: Path, t0: float) -> list[Path]:
        """Compile in a private folder, then move every document's files into `out`."""
        for stem in ("build", *ORDER):  # left by a killed build (SIGKILL cannot be caught)
            tex.remove_stale(out, stem)
        with tempfile.TemporaryDirectory(dir=out, prefix=".build-") as tmp:
            self.stage = Path(tmp)
            staged = self.compile_all(names, trace)
            written = []
            for path in staged:  # all complete: now, and only now, replace the old ones
                os.replace(path, out / path.name)
                written.append(out / path.name)
            for n in names:  # a failure of an earlier build is history now
                (out / f"{n}.failed.log").unlink(missing_ok=True)
            if self.req.tex_only:
                self.drop_stale(names)
        pdfs = [p.name for p in written if p.suffix == ".pdf"]
        where = f": {', '.join(pdfs)} in {out}" if pdfs else f" in {out}"
        self.say(f"done in {time.perf_counter() - t0:.1f} s{where}")
        return written

    def drop_stale(self, names: list[str]) -> None:
        """--tex-only replaced these .tex files: a PDF, .log and .aux beside them that were
        made from another source go too, so the folder never pairs a source with another's
        PDF (nor an answer key with pages of another workbook)."""
        out = self.req.output
        for n in names:
            if tex.made_from(out / f"{n}.aux", self.sources[n]):
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
        """Every document's files, made in the staging folder on two cores: the workbook and
        the exercises side by side, the answer key once the workbook, whose pages it cites,
        is made. A workbook in chunks takes both cores; the exercises then start as soon as
        one is spare (the chunks' last passes) and go on beside the key."""
        spare = threading.Event()  # a core free for the exercises

        def workbook() -> list[Path]:
            try:
                return self.document("workbook", trace, spare)
            finally:
                spare.set()

        def exercises() -> list[Path]:
            spare.wait()
            return self.document("exercises", trace)

        if "workbook" not in names or self.parts("workbook") == 1:
            spare.set()
        jobs = {"workbook": workbook, "exercises": exercises}
        with ThreadPoolExecutor(max_workers=2) as pool:
            running = {n: pool.submit(jobs[n]) for n in names if n in jobs}
            made = {}
            if "answers" in names:
                if "workbook" in running:
                    running["workbook"].result()
                for job in running.values():  # a failure already: no key to compile
                    if job.done():
                        job.result()
                made["answers"] = self.document("answers", trace)
            made |= {n: job.result() for n, job in running.items()}
        return [p for n in names for p in made[n]]

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

    def source(self, name: str, trace: Trace) -> str:
        return DOCUMENTS[name](self.c, trace, self.opts, self.book).tex()

    def document(self, name: str, trace: Trace, spare: threading.Event | None = None) -> list[Path]:
        """The document's files, made in the staging folder; `spare` is set once a core is
        free (see compile_document)."""
        t1 = time.perf_counter()
        source = self.sources[name] if name in self.sources else self.source(name, trace)
        self.say(f"made {name}.tex ({len(source) // 1024} KiB, {time.perf_counter() - t1:.1f} s)")
        if self.req.tex_only:
            write_atomic(self.stage / f"{name}.tex", source.encode())
            return [self.stage / f"{name}.tex"]
        parts = self.parts(name)
        chunked = f" in {parts} chunks side by side" if parts > 1 else ""
        self.say(f"compiling {name}.pdf{chunked or ' with latexmk'} ...")
        t2 = time.perf_counter()
        # a failed log goes where the user looks, not into the staging folder
        beside = {"workbook.aux": self.workbook_aux()} if name == "answers" else None
        result = tex.compile_document(
            source,
            self.stage,
            name,
            failed_logs=self.req.output,
            beside=beside,
            parts=parts,
            spare=spare,
        )
        warn = f", {result.overfull} overfull lines" if result.overfull else ""
        took = time.perf_counter() - t2
        self.say(f"compiled {name}.pdf ({result.pages} pages{chunked}, {took:.1f} s{warn})")
        return [self.stage / f"{name}{s}" for s in (".tex", ".pdf", ".log", ".aux")]

    def workbook_aux(self) -> bytes:
        """The worked workbook's .aux for these settings, for the key's cross references.

        Uses the one just compiled, or the output folder's when it was made from exactly the
        source these settings make (its recorded hash says so); otherwise compiles one
        privately, leaving the folder's workbook alone.
        """
        source = self.worked_source()
        for aux in (self.stage / "workbook.aux", self.req.output / "workbook.aux"):
            if tex.made_from(aux, source):
                return aux.read_bytes()
        self.say("compiling the worked workbook privately, for the answer key's references ...")
        if "workbook" not in self.req.only:  # the key cites a workbook the folder lacks
            pdf = self.req.output / "workbook.pdf"
            state = "is from other settings" if pdf.exists() else "is not there"
            self.warn(
                f"note: the answer key cites the workbook of these settings, and {pdf} {state}:"
                " build it with --only workbook"
            )
        with tempfile.TemporaryDirectory() as tmp:
            parts = self.parts("workbook (for the key's pages)")
            tex.compile_document(source, Path(tmp), "workbook", parts=parts)
            return (Path(tmp) / "workbook.aux").read_bytes()


def build(c: Config, req: BuildRequest) -> list[Path]:
    """Write DIR/<doc>.tex for each document and, unless tex_only, DIR/<doc>.pdf."""
    return Builder(c, req).run()
