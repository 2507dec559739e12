"""TeX source → PDF: pdflatex pass by pass until the files it reads back stop changing, with
no shell escape, no file access outside the build folder, no personal TeX configuration,
and a document's .tex, .pdf, .log and .aux replaced together, only when the new PDF is
complete.

Passes start from what they can: the .aux of the document's previous PDF when a folder
holds it, with the .toc it wrote (a change that keeps the page layout then needs one pass),
else contents whose lines are already there with their page numbers left open, so the first
pass sets the pages where they stay. Every PDF records in its Info dictionary the hash of everything
it was made from (`inputs_stamp`), so a caller can tell an up-to-date PDF without TeX.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import chunks, formats
from .landing import private_folder
from .texrun import CORES, run_tex

TEX_PACKAGES = (
    "texlive-latex-base texlive-latex-recommended texlive-latex-extra "
    "texlive-fonts-recommended texlive-pictures lmodern latexmk texlive-luatex fonts-noto-core "
    "fonts-noto-cjk"
)


class TexMissingError(RuntimeError):
    """No TeX installation; exit code 3."""

    def __init__(self, tool: str) -> None:
        super().__init__(
            f"{tool} not found: install TeX Live with "
            f"`apt-get install --no-install-recommends {TEX_PACKAGES}` (or `make tex`)"
        )


FULL = 1 << 20  # bytes free below which TeX's failure to write is the disk's, not the source's


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
    for name in ("compile.py", "chunks.py", "texrun.py", "formats.py"):
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


MAX_PASSES = 5  # as latexmk: cross references that have not settled by then never will
PDFLATEX = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"]
KEPT = (".tex", ".pdf", ".log", ".aux")  # a document's files, replaced together
UNSETTLED = f"\nworkbook: the cross references did not settle in {MAX_PASSES} passes\n"


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
    fed: Feed | None = None,
    feeding: Feed | None = None,
    priority: int = 0,
    pages: int | None = None,
) -> Compiled:
    """Compile `source` in a private folder of `out`; then move stem.tex, .pdf, .log and
    .aux into place together. Renames replace links, never follow them. `beside`:
    files the source reads (another document's .aux for cross references), by name.
    `epoch`: the date the PDF carries (see isolated_env). `parts`: compile a big document as
    that many chunks side by side, joined into the PDF a single run makes (see chunks);
    `spare` is set when their last passes leave a core free. `start`: a folder whose
    stem.aux, of any earlier source, the first pass reads (with the .toc it wrote). `fed`:
    files beside that another compile is still making (the workbook's labels for its key;
    `beside` has what stands for them meanwhile, if anything); `feeding`: the Feed this
    compile offers its labels to after each pass (see Feed). `priority`: see texrun.Cores.
    `pages`: about how many pages it makes, for the first pass's labels (see
    provisional_aux; default: guessed from the source's length).

    On a LaTeX failure nothing of a previous build is touched: the log goes to
    stem.failed.log in `failed_logs` (default `out`) and the error names it.
    """
    check_tex()
    out.mkdir(parents=True, exist_ok=True)
    beside = dict(beside or {})
    with private_folder(out, stem) as work:
        pieces = chunks.split(source, parts) if parts > 1 else []
        if pieces:
            beside |= fed.final() if fed is not None else {}
            ok, log_text, passes = _chunked(pieces, work, beside, source, epoch, spare, priority)
        else:
            run = Passes(work, source, beside, epoch, priority, feeding)
            seed = _seed(start, stem, source, pages)
            ok, log_text, passes = run.settle(seed, fed)
            if not ok and "doc.aux" in seed:  # an earlier or provisional .aux in the way?
                seed = {k: v for k, v in _seed(None, stem, source).items() if k != "doc.aux"}
                ok, log_text, passes = run.settle(seed, fed)
            if not ok and run.fmt is not None:  # the format in the way? from the whole source
                fmt, run.fmt = run.fmt, None
                ok, log_text, passes = run.settle(seed, fed)
                if ok:  # it was: made by another TeX, or damaged; made anew next time
                    fmt.unlink(missing_ok=True)
        if not ok:
            if "I can't write on file" in log_text and shutil.disk_usage(out).free < FULL:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / f"{stem}.pdf"))
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
            os.replace(work / f"doc{suffix}", out / f"{stem}{suffix}")
    pages = re.findall(r"Output written on .*?\((\d+) pages?", log_text)  # a join's is last
    return Compiled(
        out / f"{stem}.pdf",
        out / f"{stem}.log",
        int(pages[-1]) if pages else 0,
        log_text.count("Overfull \\hbox"),
        passes,
    )


def _seed(start: Path | None, stem: str, source: str, pages: int | None = None) -> dict[str, bytes]:
    """What the first pass reads of its own files: the .aux an earlier compile left in
    `start` (without the lines the build added) and the .toc it wrote (see toc_of), else
    labels and contents with every line in place (see provisional_aux, provisional_toc)."""
    seed = {}
    aux = start / f"{stem}.aux" if start is not None else None
    if aux is not None and aux.is_file() and not aux.is_symlink():
        lines = aux.read_bytes().splitlines(keepends=True)
        seed["doc.aux"] = b"".join(ln for ln in lines if not ln.startswith(b"% workbook "))
        if b"\\@writefile{toc}" in seed["doc.aux"]:
            seed["doc.toc"] = toc_of(seed["doc.aux"])
    if "doc.toc" not in seed and "\\tableofcontents" in source:
        seed["doc.toc"] = provisional_toc(source).encode()
    if "doc.aux" not in seed and "\\label{" in source:
        seed["doc.aux"] = provisional_aux(source, pages).encode()
    return seed


def toc_of(aux: bytes) -> bytes:
    """The .toc LaTeX wrote beside this .aux: at the end of a pass it reads the .aux back
    and writes each \\@writefile{toc} line's tokens to the .toc, which spells a control word
    with one space after it and \\protected@file@percent as %. (Read back wrong, it would
    cost a pass, never a wrong page.)"""
    lines = chunks.TOC_LINE.findall(aux.decode("latin-1"))
    text = "".join(re.sub(r"(\\[A-Za-z@]+) +", r"\1 ", line) + "\n" for line in lines)
    return text.replace("\\protected@file@percent \n", "%\n").encode("latin-1")


class Feed:
    """Files beside a document that another compile is still making: the workbook's labels
    for its answer key. Each of the workbook's passes offers the labels it wrote, the build
    the final ones; the key's passes go on with the latest offer, wait when they have settled
    with one that is not final, and end only once they have settled with the final one.
    Its PDF is then the one its passes make beside the finished workbook, whatever they
    started from; and when the workbook's first pass already had its final pages, the key
    is done by the time the workbook is."""

    def __init__(self, name: str) -> None:
        self.name = name  # the file the fed document reads
        self._cond = threading.Condition()
        self._files: dict[str, bytes] | None = None
        self._final = False
        self._error: BaseException | None = None

    def offer(self, data: bytes, final: bool = False) -> None:
        with self._cond:
            if not self._final:
                self._files, self._final = {self.name: data}, final
                self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def next(self, unlike: dict[str, bytes] | None, wait: bool) -> tuple[dict | None, bool]:
        """The latest files and whether they are final; with `wait`, not before there are
        files other than `unlike`, or final ones. The offering compile's error is raised."""
        with self._cond:
            while wait and not self._final and self._error is None and self._files == unlike:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            return self._files, self._final

    def final(self) -> dict[str, bytes]:
        files = None
        while True:
            files, final = self.next(files, wait=True)
            if final:
                return files or {}


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
        feeding: Feed | None = None,
    ) -> None:
        self.work, self.source, self.beside, self.epoch = work, source, beside, epoch
        self.priority, self.feeding = priority, feeding
        self.env = isolated_env(work, epoch)
        self.fmt: Path | None = None  # the package block's format (see formats), once known
        self.split = formats.split(source)
        if self.split is not None:
            with CORES.held(priority):  # a format made now is a TeX run
                env = functools.partial(isolated_env, epoch=epoch)
                self.fmt = formats.format_for(self.split[0], pipeline(), env)

    def state(self) -> list[tuple[str, bytes]]:
        """Every file a pass reads back or beside, by content (the format is the same)."""
        return sorted(
            (p.name, hashlib.sha256(p.read_bytes()).digest())
            for p in self.work.iterdir()
            if p.is_file() and p.name not in ("doc.pdf", "doc.log") and p.suffix != ".fmt"
        )

    def command(self) -> list[str]:
        """pdflatex on doc.tex, from the format when there is one."""
        if self.fmt is None:
            return PDFLATEX
        return [*PDFLATEX[:-1], f"-fmt={formats.FORMAT_NAME}", PDFLATEX[-1]]

    def give(self, files: dict[str, bytes]) -> None:
        for name, data in files.items():
            (self.work / name).write_bytes(data)

    def settle(self, seed: dict[str, bytes], fed: Feed | None) -> tuple[bool, str, int]:
        """Did the passes settle with a PDF, the last pass's log, and how many ran. A core
        is held throughout, lent while the passes wait for the files they are fed."""
        for old in self.work.iterdir():
            if old.is_file():
                old.unlink()
        if self.fmt is not None:
            try:
                formats.place(self.fmt, self.work)
            except OSError:  # gone meanwhile (another run's cache trimmed it)
                self.fmt = None
        text = self.source
        if self.fmt is not None and self.split is not None:  # after the block: the rest
            text = formats.read_with_format(*self.split)
        (self.work / "doc.tex").write_text(with_stamp(text))
        self.give(_stamped(self.source, self.beside, self.epoch) | seed)
        given: dict[str, bytes] | None = None  # the feed's files the passes have
        final = fed is None
        read: list[tuple[str, bytes]] | None = None
        log, passes, budget = "", 0, MAX_PASSES
        with CORES.held(self.priority):
            while True:
                settled = self.state() == read
                if not final:  # wait for files to read while there is nothing else to do
                    if settled or (given is None and not self.beside):
                        with CORES.lent(self.priority):
                            files, final = fed.next(given, wait=True)
                    else:
                        files, final = fed.next(given, wait=False)
                    if files is not None and files != given:
                        given, budget = files, passes + MAX_PASSES
                        self.give(_stamped(self.source, self.beside | files, self.epoch) | files)
                    settled = self.state() == read
                if settled and final:
                    return True, log, passes
                if settled:
                    continue
                if passes == budget:
                    return False, log + UNSETTLED, passes
                read = self.state()
                run = run_tex(self.command(), self.work, self.env)
                passes += 1
                log_file = self.work / "doc.log"
                log = log_file.read_text(errors="replace") if log_file.exists() else ""
                if run.returncode != 0 or not (self.work / "doc.pdf").exists():
                    return False, log or run.stdout + run.stderr, passes
                if self.feeding is not None:
                    self.feeding.offer(labels((self.work / "doc.aux").read_bytes()))


# Sectioning commands that make a contents line, the counter each numbers by, and labels.
HEADING = re.compile(
    r"\\(?:(part|chapter|section|subsection)\{|setcounter\{(part|chapter|tocdepth)\}\{(\d+)\}"
    r"|addcontentsline\{toc\}\{(\w+)\}\{|label\{([^{}]*)\})"
)
LEVEL = {"part": -1, "chapter": 0, "section": 1, "subsection": 2}
BYTES_PER_PAGE = 4000  # of source, when no estimate of the pages is given


@dataclass(frozen=True)
class _Mark:
    """A contents line or a label of a source's body, numbered as the book class will."""

    what: str  # "heading" (one the contents list), "listed" (\addcontentsline) or "label"
    kind: str  # part, chapter, section or subsection; a label's key
    number: str  # a heading's number; a label's: that of the heading it follows
    text: str  # a heading's title; a label's link target (hyperref's anchor of that heading)
    at: int  # where it stands in the source


def _marks(source: str) -> Iterator[_Mark]:
    """The contents lines and labels of `source` in order: the book class's \\part,
    \\chapter, \\section and \\addcontentsline, its counters set by \\setcounter."""
    body = source.find("\\begin{document}")
    counters = {"part": 0, "chapter": 0, "section": 0, "subsection": 0, "tocdepth": 2}
    number, anchor = "", "Doc-Start"
    for m in HEADING.finditer(source):
        kind, counter, value, listed, key = m.groups()
        if counter is not None:
            counters[counter] = int(value)
            continue
        if m.start() < body:
            continue
        if key is not None:
            yield _Mark("label", key, number, anchor, m.start())
            continue
        title = _braced(source, m.end())
        if title is None:
            continue
        if listed is not None:
            yield _Mark("listed", listed, "", title, m.start())
            continue
        counters[kind] += 1
        for lower in list(LEVEL)[list(LEVEL).index(kind) + 1 :]:
            counters[lower] = 0
        if kind == "part":
            number, anchor = _roman(counters["part"]), f"part.{counters['part']}"
        else:
            number = ".".join(str(counters[k]) for k in list(LEVEL)[1 : LEVEL[kind] + 2])
            anchor = f"{kind}.{number}"
        if LEVEL[kind] <= counters["tocdepth"]:
            yield _Mark("heading", kind, number, title, m.start())


def provisional_toc(source: str) -> str:
    """The .toc that `source` will write, every page number 0: its lines make the contents
    as long as they will be (a page number sits in a box of its own width), so the first
    pass already puts every later page where it stays. A line it gets wrong costs a pass,
    never a wrong page (the passes go on until the real .toc is read back unchanged)."""
    lines = []
    for mark in _marks(source):
        if mark.what == "listed":
            lines.append((mark.kind, mark.text))
        elif mark.what == "heading" and mark.kind == "part":
            lines.append((mark.kind, rf"{mark.number}\hspace {{1em}}{mark.text}"))
        elif mark.what == "heading":
            lines.append((mark.kind, rf"\numberline {{{mark.number}}}{mark.text}"))
    return "".join(rf"\contentsline {{{kind}}}{{{text}}}{{0}}{{}}%" + "\n" for kind, text in lines)


def provisional_aux(source: str, pages: int | None = None) -> str:
    """An .aux for the first pass: every label of `source` defined, numbered as its section
    will be, on a page of as many digits as it will most likely have (placed in proportion
    to where it stands in the source, of about `pages` pages). Without it the first pass
    prints "??" for every reference, a width no later pass has, and a third pass is needed
    to set the lines the second one broke anew; with it the first pass usually lays every
    page out as the last, and two passes make the PDF. A label placed wrong costs a pass,
    never a wrong page (the passes go on until they read what they write)."""
    body = max(source.find("\\begin{document}"), 0)
    span = max(len(source) - body, 1)
    total = pages if pages else max(1, span // BYTES_PER_PAGE)
    lines = ["\\relax"]
    for mark in _marks(source):
        if mark.what == "label":
            page = max(1, round(total * (mark.at - body) / span))
            number, key, anchor = mark.number, mark.kind, mark.text
            lines.append(rf"\newlabel{{{key}}}{{{{{number}}}{{{page}}}{{}}{{{anchor}}}{{}}}}")
    return "\n".join(lines) + "\n"


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
