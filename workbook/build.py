"""`workbook build`: config → trace → LaTeX → PDF, one document after another."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import compile as tex
from . import engine
from .config import Config
from .export import write_atomic
from .render.document import Options, workbook_tex

DOCUMENTS: dict[str, Callable[..., str]] = {"workbook": workbook_tex}


@dataclass(frozen=True)
class BuildRequest:
    output: Path
    options: Options
    only: tuple[str, ...] = ("workbook",)
    tex_only: bool = False
    quiet: bool = False


def build(c: Config, req: BuildRequest) -> list[Path]:
    """Write DIR/<doc>.tex for each document and, unless tex_only, DIR/<doc>.pdf."""
    say = (lambda msg: None) if req.quiet else (lambda msg: print(msg, file=sys.stderr))
    if not req.tex_only:
        tex.check_tex()  # fail before the work, not after it
    t0 = time.perf_counter()
    trace = engine.run(c)
    say(f"workbook: computed the step ({len(trace.steps)} steps, loss {float(trace['loss']):.4f})")
    written: list[Path] = []
    for name in req.only:
        t1 = time.perf_counter()
        source = DOCUMENTS[name](c, trace, req.options)
        tex_path = req.output / f"{name}.tex"
        write_atomic(tex_path, source.encode())
        written.append(tex_path)
        say(f"workbook: wrote {tex_path} ({len(source) // 1024} KiB, {time.perf_counter() - t1:.1f} s)")
        if req.tex_only:
            continue
        say(f"workbook: compiling {name}.pdf with latexmk ...")
        t2 = time.perf_counter()
        result = tex.compile_pdf(tex_path, req.output / f"{name}.pdf")
        written.append(result.pdf)
        warn = f", {result.overfull} overfull lines (see {result.log})" if result.overfull else ""
        say(f"workbook: wrote {result.pdf} ({result.pages} pages, "
            f"{time.perf_counter() - t2:.1f} s{warn})")  # fmt: skip
    say(f"workbook: done in {time.perf_counter() - t0:.1f} s")
    return written
