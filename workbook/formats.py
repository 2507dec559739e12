"""A document's package block as a TeX format, read on every pass of every document that
starts alike instead of loading the packages again (a pass of a small document starts in
about 0.17 s instead of 0.42 s; 30 handouts compile in 23 s instead of 33).

The package block is what PyLaTeX writes first: \\documentclass, then \\usepackage and
\\geometry lines. It depends on the paper, the type size and which document cites another,
never on the content, so the workbook and its exercises, or every student's handout, start
alike. mylatexformat dumps it once into a format, kept in the user's cache
($XDG_CACHE_HOME/workbook/formats, else ~/.cache/workbook/formats) under the hash of
the block and of the TeX that made it; the most recently used FORMATS_KEPT are kept. A
pass then reads the format and the source from just after the block, so everything else
of the preamble (pdfTeX's trailer ID, the stamp) is read as before. The PDF has the pages,
text, positions, links and outline the whole source makes (its fonts are numbered
otherwise inside the file), and the same bytes whenever it is made from the format. A
format that cannot be made or used costs nothing but the time: the document compiles from
its whole source, and a cached format a pass failed with is made anew next time.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from .texrun import run_tex

FORMAT_NAME = "wbformat"  # the format's file in a pass's folder: wbformat.fmt
FORMATS_KEPT = 12  # each is about 7 MB
# Lines of the package block; a \pdf primitive's effect is not dumped into a format.
BLOCK_LINE = re.compile(r"\\(?:documentclass|usepackage|geometry)\b(?!.*\\pdf)")


def split(source: str) -> tuple[str, str] | None:
    """(package block, the rest of the source), or None when the source does not start
    with a \\documentclass line."""
    lines = source.splitlines(keepends=True)
    count = 0
    while count < len(lines) and BLOCK_LINE.match(lines[count]):
        count += 1
    if count == 0 or not lines[0].startswith("\\documentclass"):
        return None
    block = "".join(lines[:count])
    return block, source[len(block) :]


def read_with_format(block: str, rest: str) -> str:
    """What a pass from the format reads: mylatexformat skips to \\endofdump, and the lines
    of the block are kept as comments, so the log's line numbers are the source's."""
    return "\\endofdump%\n" + "%\n" * (block.count("\n") - 1) + rest


def cache_folder() -> Path | None:
    """Where formats are kept, or None when there is no home to keep them in. (A relative
    XDG_CACHE_HOME is ignored, as the XDG specification asks.)"""
    xdg, home = os.environ.get("XDG_CACHE_HOME", ""), os.environ.get("HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "workbook" / "formats"
    if os.path.isabs(home):
        return Path(home) / ".cache" / "workbook" / "formats"
    return None


@functools.cache
def tex_identity() -> bytes:
    """What a format depends on besides its block: pdflatex's own format and mylatexformat
    (a TeX Live upgrade replaces them), which kpsewhich finds."""
    found = subprocess.run(
        ["kpsewhich", "-engine=pdftex", "pdflatex.fmt", "mylatexformat.ltx"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if len(found) != 2:
        raise OSError("pdflatex.fmt or mylatexformat.ltx not found")
    stats = [Path(p).resolve().stat() for p in found]
    return "\0".join(
        f"{p} {s.st_size} {s.st_mtime_ns}" for p, s in zip(found, stats, strict=True)
    ).encode()


def format_for(block: str, pipeline: bytes, env: Callable[[Path], dict[str, str]]) -> Path | None:
    """The format of this package block, from the cache or made now; None when it cannot be
    (no cache folder, no mylatexformat, TeX refused the block). `pipeline`: what else makes
    the PDF (see compile.pipeline); `env`: the isolated environment of a TeX run in a
    folder (see compile.isolated_env)."""
    folder = cache_folder()
    if folder is None:
        return None
    try:
        key = hashlib.sha256(pipeline + tex_identity() + block.encode()).hexdigest()[:32]
        folder.mkdir(parents=True, exist_ok=True)
        made = folder / f"{key}.fmt"
        with (folder / f"{key}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one run makes it; another waits and reads it
            if not made.is_file():
                _dump(block, folder, made, env)
                _trim(folder, keep=made)
            os.utime(made)  # recently used
        return made
    except (OSError, subprocess.SubprocessError):
        return None


def _dump(block: str, folder: Path, made: Path, env: Callable[[Path], dict[str, str]]) -> None:
    with tempfile.TemporaryDirectory(dir=folder, prefix=".dump-") as tmp:
        work = Path(tmp)
        (work / "block.tex").write_text(block + "\\begin{document}\\end{document}\n")
        cmd = ["pdflatex", "-ini", "-interaction=nonstopmode", "-halt-on-error"]
        cmd += ["-no-shell-escape", f"-jobname={FORMAT_NAME}", "&pdflatex"]
        run = run_tex([*cmd, "mylatexformat.ltx", "block.tex"], work, env(work))
        dumped = work / f"{FORMAT_NAME}.fmt"
        if run.returncode != 0 or not dumped.is_file():
            raise OSError("the package block did not make a format")
        os.replace(dumped, made)


def _trim(folder: Path, keep: Path) -> None:
    """Only the most recently used FORMATS_KEPT formats stay."""
    found = sorted(folder.glob("*.fmt"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [p for p in found if p != keep][FORMATS_KEPT - 1 :]:
        with contextlib.suppress(OSError):
            old.unlink()
            old.with_suffix(".lock").unlink()


def place(fmt: Path, work: Path) -> None:
    """The format in a pass's folder, where pdflatex -fmt finds it (a link when it can)."""
    target = work / f"{FORMAT_NAME}.fmt"
    target.unlink(missing_ok=True)
    try:
        os.link(fmt, target)
    except OSError:
        shutil.copyfile(fmt, target)
