"""TeX source → PDF with latexmk: no shell escape, no file access outside the build folder,
no personal TeX configuration, and a document's .tex, .pdf, .log and .aux replaced together,
only when the new PDF is complete."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import chunks
from .texrun import run_tex

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


def check_tex() -> None:
    for tool in ("latexmk", "pdflatex"):
        if shutil.which(tool) is None:
            raise TexMissingError(tool)


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


def compile_document(
    source: str,
    out: Path,
    stem: str,
    failed_logs: Path | None = None,
    beside: dict[str, bytes] | None = None,
    epoch: int | None = None,
    parts: int = 1,
    spare: threading.Event | None = None,
) -> Compiled:
    """Compile `source` in a private folder of `out`; then move stem.tex, .pdf, .log and
    .aux into place together. Renames replace links, never follow them. `beside`: files the
    source reads (another document's .aux for cross references), by name. `epoch`: the date
    the PDF carries (see isolated_env). `parts`: compile a big document as that many chunks
    side by side, joined into the PDF a single run makes (see chunks); `spare` is set when
    their last passes leave a core free.

    On a LaTeX failure nothing of a previous build is touched: the log goes to
    stem.failed.log in `failed_logs` (default `out`) and the error names it.
    """
    check_tex()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=f".{stem}-") as tmp:
        work = Path(tmp)
        (work / "doc.tex").write_text(source)
        for name, data in (beside or {}).items():
            (work / name).write_bytes(data)
        pieces = chunks.split(source, parts) if parts > 1 else []
        ok, log_text = (
            _chunked(pieces, work, beside or {}, epoch, spare) if pieces else _latexmk(work, epoch)
        )
        if not ok:
            if "I can't write on file" in log_text and shutil.disk_usage(out).free < FULL:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / f"{stem}.pdf"))
            failed = (failed_logs or out) / f"{stem}.failed.log"
            (work / "failed.log").write_text(log_text)
            os.replace(work / "failed.log", failed)
            raise TexFailedError(
                f"LaTeX failed on {stem}.tex (full log: {failed}):\n" + error_excerpt(log_text)
            )
        (work / "doc.log").write_text(log_text)
        aux = work / "doc.aux"
        with aux.open("a") as f:  # which source these page numbers belong to
            f.write(f"{SOURCE_MARK}{source_hash(source)}\n")
        for suffix in (".tex", ".pdf", ".log", ".aux"):
            os.replace(work / f"doc{suffix}", out / f"{stem}{suffix}")
    pages = re.findall(r"Output written on .*?\((\d+) pages?", log_text)  # a join's is last
    return Compiled(
        out / f"{stem}.pdf",
        out / f"{stem}.log",
        int(pages[-1]) if pages else 0,
        log_text.count("Overfull \\hbox"),
    )


def _latexmk(work: Path, epoch: int | None) -> tuple[bool, str]:
    """latexmk on work/doc.tex: did it make doc.pdf, and the log."""
    cmd = [
        "latexmk",
        "-norc",  # no ~/.latexmkrc or system rc: the build does not depend on them
        "-pdf",
        "-interaction=nonstopmode",
        "-halt-on-error",
        "-no-shell-escape",
        "doc.tex",
    ]
    run = run_tex(cmd, work, isolated_env(work, epoch))
    log_file = work / "doc.log"
    log_text = log_file.read_text(errors="replace") if log_file.exists() else ""
    log_text = log_text or run.stdout + run.stderr
    return run.returncode == 0 and (work / "doc.pdf").exists(), log_text


class _PassFailedError(Exception):
    """A chunk's pdflatex pass stopped; args: its log."""


def _chunked(
    pieces: list[str],
    work: Path,
    beside: dict[str, bytes],
    epoch: int | None,
    spare: threading.Event | None,
) -> tuple[bool, str]:
    """The chunk sources compiled side by side in work/chunk-N and joined into work/doc.pdf
    and work/doc.aux (see chunks); did it work, and the chunks' logs, one after the other."""
    parts = []
    for i, piece in enumerate(pieces):
        folder = work / f"chunk-{i + 1}"
        folder.mkdir()
        (folder / "doc.tex").write_text(piece)
        for name, data in beside.items():
            (folder / name).write_bytes(data)
        parts.append(chunks.Chunk(folder))

    def tex_pass(chunk: chunks.Chunk) -> None:
        run = chunks.pdflatex_pass(chunk, isolated_env(chunk.folder, epoch))
        if run.returncode != 0 or not (chunk.folder / "doc.pdf").exists():
            log = chunk.folder / "doc.log"
            raise _PassFailedError(log.read_text(errors="replace") if log.exists() else run.stdout)

    t0 = time.perf_counter()
    try:
        rounds = chunks.run_passes(parts, tex_pass, spare)
    except _PassFailedError as exc:
        return False, str(exc.args[0])
    except chunks.NotConvergedError as exc:
        return False, "\n".join(c.file(".log").decode(errors="replace") for c in parts) + str(exc)
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
    return True, "\n".join(joined) + summary
