"""TeX source → PDF: pdflatex pass by pass until the files it reads back stop changing, with
no shell escape, no file access outside the build folder, no personal TeX configuration,
and a document's .tex, .pdf, .log, .aux and .toc replaced together, only when the new PDF is
complete.

Passes start from what they can: the .aux and .toc of the document's previous PDF when a
folder holds them (a change that keeps the page layout then needs one pass), else contents
whose lines are already there with their page numbers left open, so the first pass sets
the pages where they stay. Every PDF records in its Info dictionary the hash of everything
it was made from (`inputs_stamp`), so a caller can tell an up-to-date PDF without TeX.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from . import chunks
from .texrun import run_tex

TEX_PACKAGES = (
    "texlive-latex-base texlive-latex-recommended texlive-latex-extra "
    "texlive-fonts-recommended texlive-pictures lmodern latexmk"
)


class TexMissingError(RuntimeError):
    """No TeX installation; exit code 3."""

    def __init__(self, tool: str) -> None:
        super().__init__(
            f"{tool} not found: install TeX Live with "
            f"`apt-get install --no-install-recommends {TEX_PACKAGES}` (or `make tex`)"
        )


class TexFailedError(RuntimeError):
    """LaTeX stopped with an error; exit code 4. The message holds the log's relevant lines."""


@dataclass(frozen=True)
class Compiled:
    pdf: Path
    log: Path
    pages: int
    overfull: int
    passes: int = 0  # pdflatex passes (rounds of them, in chunks)


def check_tex() -> None:
    if shutil.which("pdflatex") is None:
        raise TexMissingError("pdflatex")


def error_excerpt(log: str, limit: int = 12) -> str:
    """The lines of a LaTeX log that say what went wrong and where."""
    lines = log.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("!"):
            out += [ln for ln in lines[i : i + 6] if ln.strip()]
            if len(out) >= limit:
                break
    return "\n".join(out[:limit]) or "\n".join(lines[-limit:])


SOURCE_MARK = "% workbook source sha256: "


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def made_from(aux: Path, source: str) -> bool:
    """Was this .aux made from exactly this source? (Its hash is recorded in the .aux when
    the build moves it into place.)"""
    return aux.is_file() and f"{SOURCE_MARK}{source_hash(source)}" in aux.read_text(
        errors="replace"
    )


def labels(aux: bytes) -> bytes:
    """What another document reads of this .aux through xr-hyper: its \\newlabel lines."""
    return chunks.label_lines(aux) + b"\n"


# --- what a PDF was made from -------------------------------------------------------------
STAMP_FILE = "wb-made.tex"  # read by the document's preamble: the stamp into the PDF's Info
STAMP_KEY = b"/WorkbookMade"
STAMP = re.compile(rb"/WorkbookMade \(([0-9a-f]{64})\)")


@functools.cache
def pipeline() -> bytes:
    """What turns a source into a PDF besides its inputs: this module and those it runs
    TeX with, and the pdflatex program itself (a TeX Live upgrade that leaves the binary
    alone is not seen: `--force` then)."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in ("compile.py", "chunks.py", "texrun.py"):
        h.update((here / name).read_bytes())
    tex = shutil.which("pdflatex")
    if tex is not None:
        st = Path(tex).resolve().stat()
        h.update(f"{st.st_size} {st.st_mtime_ns}".encode())
    return h.digest()


def inputs_stamp(source: str, beside: dict[str, bytes] | None, epoch: int | None) -> str:
    """The hash of everything a compiled PDF is made from: its source, the files it reads
    beside it, its date and the pipeline."""
    h = hashlib.sha256(pipeline())
    h.update(f"{epoch}\0".encode())
    h.update(source.encode())
    for name, data in sorted((beside or {}).items()):
        h.update(f"\0{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def stamp_of(pdf: Path) -> str | None:
    """The inputs stamp a PDF carries (pdfTeX and pypdf write the Info dictionary plainly),
    or None: not a file, or not made by this pipeline."""
    try:
        found = STAMP.search(pdf.read_bytes())
    except OSError:
        return None
    return found[1].decode() if found else None


def with_stamp(source: str) -> str:
    """The source TeX compiles: its preamble reads STAMP_FILE, which puts the stamp into the
    PDF's Info. The .tex beside the PDF stays the source as given."""
    at = source.find("\\begin{document}")
    if at < 0:
        return source
    return f"{source[:at]}\\InputIfFileExists{{{STAMP_FILE}}}{{}}{{}}\n{source[at:]}"


def _stamped(source: str, beside: dict[str, bytes], epoch: int | None) -> dict[str, bytes]:
    stamp = inputs_stamp(source, beside, epoch)
    return beside | {STAMP_FILE: rf"\pdfinfo{{/WorkbookMade ({stamp})}}".encode() + b"\n"}


def label_pages(aux: Path) -> dict[str, int]:
    """Page of every \\label in a compiled document, from its .aux file."""
    text = aux.read_text(errors="replace")
    pages = {}
    for m in re.finditer(r"\\newlabel\{([^{}]*)\}\{\{[^{}]*\}\{(\d+)\}", text):
        pages[m.group(1)] = int(m.group(2))
    return pages


def isolated_env(work: Path, epoch: int | None = None) -> dict[str, str]:
    """The environment of a TeX run: nothing personal (HOME, TEXMFHOME, rc files) is read,
    and kpathsea's paranoid mode forbids reading or writing outside the working folder,
    apart from TeX's own installed files; shell escape is off explicitly. With `epoch`, the
    PDF's dates are that moment, so the same source gives the same bytes."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    if epoch is not None:
        keep |= {"SOURCE_DATE_EPOCH": str(epoch), "FORCE_SOURCE_DATE": "1"}
    return keep | {
        "HOME": str(work),
        "TEXMFHOME": str(work / "texmf"),
        "TEXMFVAR": str(work / "texmf-var"),
        "TEXMFCONFIG": str(work / "texmf-config"),
        "openout_any": "p",
        "openin_any": "p",
        "shell_escape": "f",
    }


class FolderBusyError(RuntimeError):
    """Another workbook run is writing into the same output folder."""


LOCK_NAME = ".workbook.lock"


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the output folder for one run: a second run into it is refused at once (it
    would remove the first one's private folders as stale). The lock file goes at the end;
    a killed run's is harmless, since the lock dies with its process."""
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise FolderBusyError(
            f"another workbook run is writing into {folder}; wait for it to end"
        ) from None
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def remove_stale(folder: Path, stem: str) -> None:
    """Private folders a killed build of `stem` left behind (.stem-XXXX)."""
    for old in folder.glob(f".{stem}-*"):
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)


def move_set(stage: Path, out: Path, staged: list[Path], pdfs: str | None = None) -> list[Path]:
    """Move a run's files from its private folder into `out`; then, in the subfolder `pdfs`,
    remove the PDFs this run did not make (a student no longer in the class)."""
    written = []
    for rel in staged:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage / rel, target)
        written.append(target)
    if pdfs is not None:
        for old in (out / pdfs).glob("*.pdf"):
            if old not in written:
                old.unlink()
    return written


MAX_PASSES = 5  # as latexmk: cross references that have not settled by then never will
PDFLATEX = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"]
KEPT = (".tex", ".pdf", ".log", ".aux", ".toc")  # a document's files, replaced together


def compile_document(
    source: str,
    out: Path,
    stem: str,
    failed_logs: Path | None = None,
    beside: dict[str, bytes] | None = None,
    epoch: int | None = None,
    parts: int = 1,
    spare: threading.Event | None = None,
    start: Path | None = None,
    later: Future[dict[str, bytes]] | None = None,
    priority: int = 0,
) -> Compiled:
    """Compile `source` in a private folder of `out`; then move stem.tex, .pdf, .log, .aux
    (and .toc) into place together. Renames replace links, never follow them. `beside`:
    files the source reads (another document's .aux for cross references), by name.
    `epoch`: the date the PDF carries (see isolated_env). `parts`: compile a big document as
    that many chunks side by side, joined into the PDF a single run makes (see chunks);
    `spare` is set when their last passes leave a core free. `start`: a folder whose
    stem.aux and stem.toc, of any earlier source, the first pass reads. `later`: files
    beside that are final only later (the workbook's labels for its key): the passes start
    with `beside`'s and settle again with them. `priority`: see texrun.Cores.

    On a LaTeX failure nothing of a previous build is touched: the log goes to
    stem.failed.log in `failed_logs` (default `out`) and the error names it.
    """
    check_tex()
    out.mkdir(parents=True, exist_ok=True)
    beside = dict(beside or {})
    with tempfile.TemporaryDirectory(dir=out, prefix=f".{stem}-") as tmp:
        work = Path(tmp)
        pieces = chunks.split(source, parts) if parts > 1 else []
        if pieces:
            beside |= later.result() if later is not None else {}
            ok, log_text, passes = _chunked(pieces, work, beside, source, epoch, spare, priority)
        else:
            run = Passes(work, source, beside, epoch, priority)
            seed = _seed(start, stem, source)
            ok, log_text, passes = run.settle(seed, later)
            if not ok and "doc.aux" in seed:  # an earlier source's .aux in the way? once afresh
                ok, log_text, passes = run.settle(_seed(None, stem, source), later)
        if not ok:
            failed = (failed_logs or out) / f"{stem}.failed.log"
            (work / "failed.log").write_text(log_text)
            os.replace(work / "failed.log", failed)
            raise TexFailedError(
                f"LaTeX failed on {stem}.tex (full log: {failed}):\n" + error_excerpt(log_text)
            )
        (work / "doc.tex").write_text(source)  # as given: what TeX read also set the stamp
        (work / "doc.log").write_text(log_text)
        aux = work / "doc.aux"
        with aux.open("a") as f:  # which source these page numbers belong to
            f.write(f"{SOURCE_MARK}{source_hash(source)}\n")
        for suffix in KEPT:
            if (work / f"doc{suffix}").is_file():
                os.replace(work / f"doc{suffix}", out / f"{stem}{suffix}")
    pages = re.findall(r"Output written on .*?\((\d+) pages?", log_text)  # a join's is last
    return Compiled(
        out / f"{stem}.pdf",
        out / f"{stem}.log",
        int(pages[-1]) if pages else 0,
        log_text.count("Overfull \\hbox"),
        passes,
    )


def _seed(start: Path | None, stem: str, source: str) -> dict[str, bytes]:
    """What the first pass reads of its own files: the .aux and .toc an earlier compile
    left in `start` (without the lines the build added), else contents with every line in
    place (see provisional_toc)."""
    seed = {}
    if start is not None:
        for suffix in (".aux", ".toc"):
            path = start / f"{stem}{suffix}"
            if path.is_file() and not path.is_symlink():
                seed[f"doc{suffix}"] = path.read_bytes()
        if "doc.aux" in seed:
            lines = seed["doc.aux"].splitlines(keepends=True)
            seed["doc.aux"] = b"".join(ln for ln in lines if not ln.startswith(b"% workbook "))
    if "doc.toc" not in seed and "\\tableofcontents" in source:
        seed["doc.toc"] = provisional_toc(source).encode()
    return seed


class Passes:
    """pdflatex on work/doc.tex, pass after pass, until a pass reads exactly what it
    writes (its .aux and .toc, and every file beside): then its PDF has every reference,
    page number and contents line right, whatever the passes started from."""

    def __init__(
        self,
        work: Path,
        source: str,
        beside: dict[str, bytes],
        epoch: int | None,
        priority: int,
    ) -> None:
        self.work, self.source, self.beside, self.epoch = work, source, beside, epoch
        self.priority = priority
        self.env = isolated_env(work, epoch)

    def state(self) -> list[tuple[str, bytes]]:
        """Every file a pass reads back or beside, by content."""
        return sorted(
            (p.name, hashlib.sha256(p.read_bytes()).digest())
            for p in self.work.iterdir()
            if p.is_file() and p.name not in ("doc.pdf", "doc.log")
        )

    def give(self, files: dict[str, bytes]) -> None:
        for name, data in files.items():
            (self.work / name).write_bytes(data)

    def settle(
        self, seed: dict[str, bytes], later: Future[dict[str, bytes]] | None
    ) -> tuple[bool, str, int]:
        """Did the passes settle with a PDF, the last pass's log, and how many ran."""
        for old in self.work.iterdir():
            if old.is_file():
                old.unlink()
        (self.work / "doc.tex").write_text(with_stamp(self.source))
        beside = self.beside
        self.give(_stamped(self.source, beside, self.epoch) | seed)
        read: list[tuple[str, bytes]] | None = None
        log, passes, budget = "", 0, MAX_PASSES
        while True:
            if later is not None and (later.done() or self.state() == read):
                beside = beside | later.result()  # waits here only once nothing else is left
                self.give(_stamped(self.source, beside, self.epoch))
                later, budget = None, passes + MAX_PASSES
            now = self.state()
            if now == read:
                return True, log, passes
            if passes == budget:
                note = f"\nworkbook: the cross references did not settle in {MAX_PASSES} passes\n"
                return False, log + note, passes
            read = now
            run = run_tex(PDFLATEX, self.work, self.env, self.priority)
            passes += 1
            log_file = self.work / "doc.log"
            log = log_file.read_text(errors="replace") if log_file.exists() else ""
            if run.returncode != 0 or not (self.work / "doc.pdf").exists():
                return False, log or run.stdout + run.stderr, passes


# Sectioning commands that make a contents line, and the counter each numbers by.
HEADING = re.compile(
    r"\\(?:(part|chapter|section|subsection)\{|setcounter\{(part|chapter|tocdepth)\}\{(\d+)\}"
    r"|addcontentsline\{toc\}\{(\w+)\}\{)"
)
LEVEL = {"part": -1, "chapter": 0, "section": 1, "subsection": 2}


def provisional_toc(source: str) -> str:
    """The .toc that `source` will write, every page number 0: its lines make the contents
    as long as they will be (a page number sits in a box of its own width), so the first
    pass already puts every later page where it stays. It follows the book class's
    \\part, \\chapter, \\section and \\addcontentsline; a line it gets wrong costs a pass, never a
    wrong page (the passes go on until the real .toc is read back unchanged)."""
    body = source.find("\\begin{document}")
    counters = {"part": 0, "chapter": 0, "section": 0, "subsection": 0, "tocdepth": 2}
    lines = []
    for m in HEADING.finditer(source):
        kind, counter, value, listed = m.groups()
        if counter is not None:
            counters[counter] = int(value)
            continue
        title = _braced(source, m.end())
        if m.start() < body or title is None:
            continue
        if listed is not None:
            lines.append((listed, title))
            continue
        counters[kind] += 1
        for lower in list(LEVEL)[list(LEVEL).index(kind) + 1 :]:
            counters[lower] = 0
        if LEVEL[kind] > counters["tocdepth"]:
            continue
        if kind == "part":
            lines.append((kind, rf"{_roman(counters['part'])}\hspace {{1em}}{title}"))
        else:
            number = ".".join(str(counters[k]) for k in list(LEVEL)[1 : LEVEL[kind] + 2])
            lines.append((kind, rf"\numberline {{{number}}}{title}"))
    return "".join(rf"\contentsline {{{kind}}}{{{text}}}{{0}}{{}}%" + "\n" for kind, text in lines)


def _braced(text: str, at: int) -> str | None:
    """The text up to the brace that closes the one opened just before `at`."""
    depth = 1
    for i in range(at, len(text)):
        ch = text[i]
        if ch == "\\":
            continue
        if ch == "{" and text[i - 1] != "\\":
            depth += 1
        elif ch == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[at:i]
    return None


def _roman(n: int) -> str:
    out = ""
    for value, letters in ((10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out, n = out + letters, n - value
    return out


class _PassFailedError(Exception):
    """A chunk's pdflatex pass stopped; args: its log."""


def _chunked(
    pieces: list[str],
    work: Path,
    beside: dict[str, bytes],
    source: str,
    epoch: int | None,
    spare: threading.Event | None,
    priority: int,
) -> tuple[bool, str, int]:
    """The chunk sources compiled side by side in work/chunk-N and joined into work/doc.pdf
    and work/doc.aux (see chunks); did it work, the chunks' logs, one after the other, and
    the rounds of passes. The first chunk, which holds the contents, starts from all their
    lines (see provisional_toc)."""
    parts = []
    given = _stamped(source, beside, epoch)
    for i, piece in enumerate(pieces):
        folder = work / f"chunk-{i + 1}"
        folder.mkdir()
        (folder / "doc.tex").write_text(with_stamp(piece))
        first = {"doc.toc": provisional_toc(source).encode()} if i == 0 else {}
        for name, data in (given | first).items():
            (folder / name).write_bytes(data)
        parts.append(chunks.Chunk(folder))

    def tex_pass(chunk: chunks.Chunk) -> None:
        run = chunks.pdflatex_pass(chunk, isolated_env(chunk.folder, epoch), priority)
        if run.returncode != 0 or not (chunk.folder / "doc.pdf").exists():
            log = chunk.folder / "doc.log"
            raise _PassFailedError(log.read_text(errors="replace") if log.exists() else run.stdout)

    t0 = time.perf_counter()
    try:
        rounds = chunks.run_passes(parts, tex_pass, spare)
    except _PassFailedError as exc:
        return False, str(exc.args[0]), 0
    except chunks.NotConvergedError as exc:
        logs = "\n".join(c.file(".log").decode(errors="replace") for c in parts)
        return False, logs + str(exc), chunks.MAX_ROUNDS
    logs = [c.file(".log").decode(errors="replace") for c in parts]
    t1 = time.perf_counter()
    pages = chunks.join([c.folder / "doc.pdf" for c in parts], logs, work / "doc.pdf")
    aux = chunks.merge_aux([c.file(".aux").decode(errors="replace") for c in parts], pages)
    (work / "doc.aux").write_text(aux)
    size = (work / "doc.pdf").stat().st_size
    joined = [f"%% chunk {i + 1} of {len(logs)}, last pass\n{log}" for i, log in enumerate(logs)]
    summary = (
        f"Joined {len(logs)} chunks after {rounds} rounds of passes "
        f"({t1 - t0:.1f} s of TeX, {time.perf_counter() - t1:.1f} s to join).\n"
    )
    summary += f"Output written on doc.pdf ({pages} pages, {size} bytes).\n"
    return True, "\n".join(joined) + summary, rounds
