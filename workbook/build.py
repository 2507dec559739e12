"""`workbook build`: config → trace → LaTeX → PDF, for each requested document.

The three documents are views of one trace, computed once. The answer key cites the worked
workbook's pages, so it reads them from the workbook's compiled .aux file.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import compile as tex
from . import engine
from .config import Config
from .export import write_atomic
from .printed import check_answers
from .render import DOCUMENTS, Answers, Options, Worked
from .render.base import key
from .trace import Trace

ORDER = tuple(DOCUMENTS)  # workbook first: the answer key needs its page numbers


@dataclass(frozen=True)
class BuildRequest:
    output: Path
    options: Options
    only: tuple[str, ...] = ORDER
    tex_only: bool = False
    quiet: bool = False


class Builder:
    def __init__(self, c: Config, req: BuildRequest) -> None:
        self.c, self.req = c, req
        self.say: Callable[[str], None] = (
            (lambda msg: None)
            if req.quiet
            else (lambda msg: print(f"workbook: {msg}", file=sys.stderr))
        )

    def run(self) -> list[Path]:
        if not self.req.tex_only:
            tex.check_tex()  # fail before the work, not after it
        t0 = time.perf_counter()
        trace = engine.run(self.c)
        self.say(f"computed the step ({len(trace.steps)} steps, loss {float(trace['loss']):.4f})")
        opts = self.req.options
        check_answers(trace, opts.digits, opts.arithmetic)  # refuse before writing anything
        names = [n for n in ORDER if n in self.req.only]
        # The workbook and the exercises compile side by side (two cores); the answer key
        # waits for the workbook, whose page numbers it cites.
        with ThreadPoolExecutor(max_workers=2) as pool:
            done = list(
                pool.map(lambda n: self.document(n, trace), [n for n in names if n != "answers"])
            )
        written = [path for paths in done for path in paths]
        if "answers" in names:
            written += self.document("answers", trace)
        self.say(f"done in {time.perf_counter() - t0:.1f} s")
        return written

    def source(self, name: str, trace: Trace) -> str:
        if name == "answers":
            return Answers(self.c, trace, self.req.options, pages=self.workbook_pages(trace)).tex()
        return DOCUMENTS[name](self.c, trace, self.req.options).tex()

    def document(self, name: str, trace: Trace) -> list[Path]:
        t1 = time.perf_counter()
        source = self.source(name, trace)
        tex_path = self.req.output / f"{name}.tex"
        self.say(f"made {name}.tex ({len(source) // 1024} KiB, {time.perf_counter() - t1:.1f} s)")
        if self.req.tex_only:
            write_atomic(tex_path, source.encode())
            return [tex_path]
        self.say(f"compiling {name}.pdf with latexmk ...")
        t2 = time.perf_counter()
        result = tex.compile_document(source, self.req.output, name)
        warn = f", {result.overfull} overfull lines (see {result.log})" if result.overfull else ""
        self.say(
            f"wrote {result.pdf} ({result.pages} pages, {time.perf_counter() - t2:.1f} s{warn})"
        )
        return [tex_path, result.pdf]

    def workbook_pages(self, trace: Trace) -> dict[str, int] | None:
        """The worked workbook's page for each step, or None with --tex-only.

        Uses the output folder's workbook.aux only when it was made from exactly the source
        these settings make (its recorded hash says so); otherwise compiles one privately,
        leaving the folder's workbook alone.
        """
        if self.req.tex_only:
            return None
        source = Worked(self.c, trace, self.req.options).tex()
        aux = self.req.output / "workbook.aux"
        labels = tex.label_pages(aux, source) if aux.is_file() else None
        if labels is None:
            self.say(
                "compiling the worked workbook privately, for the answer key's page numbers ..."
            )
            with tempfile.TemporaryDirectory() as tmp:
                tex.compile_document(source, Path(tmp), "workbook")
                labels = tex.label_pages(Path(tmp) / "workbook.aux", source)
        return {
            s.name: labels[f"s:{key(s.name)}"] for s in trace.steps if f"s:{key(s.name)}" in labels
        }


def build(c: Config, req: BuildRequest) -> list[Path]:
    """Write DIR/<doc>.tex for each document and, unless tex_only, DIR/<doc>.pdf."""
    return Builder(c, req).run()
