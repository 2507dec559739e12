"""Where a run works and how its files land: a private folder inside the output folder,
marked as the tool's, and a landing that puts the run's files into place as one set.

A run writes nothing outside its output folder: it compiles in a private folder there
(`private_folder`), which carries a marker file no user folder has, so a private folder a
killed run left behind is removed by the next run (`remove_stale`) and a user's folder that
only looks like one (`.workbook-notes`) is never touched.

`land` moves the finished files into place as a set. It first checks that every target can
be written (no file where a folder goes, no folder where a file goes), before anything is
replaced. Each file it replaces is first moved aside into the private folder; if a move
fails, every file already moved is put back, so the folder holds the old set again. A
SIGINT, SIGTERM or SIGHUP that comes during the moves is held until they are done
(texrun.signals_held), so an interrupt leaves the old set or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .texrun import signals_held

MARK = ".workbook-private"  # the file that makes a folder the tool's own
ASIDE = ".replaced"  # inside a private folder: the files a landing replaced, until it ends


class OutputBlockedError(RuntimeError):
    """A target of the run cannot be written: refused before anything is replaced."""


@contextlib.contextmanager
def private_folder(out: Path, kind: str) -> Iterator[Path]:
    """A marked folder `.kind-XXXXXXXX` in `out` for one run; removed at its end."""
    path = Path(tempfile.mkdtemp(dir=out, prefix=f".{kind}-"))
    try:
        (path / MARK).write_text("workbook's private folder of one run, removed at its end\n")
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_stale(out: Path) -> None:
    """Private folders that killed runs left in `out` (SIGKILL cannot be caught): only
    folders with the marker. Call with the folder's lock held, so no live run's is taken."""
    for old in out.glob(".*-*"):
        if old.is_dir() and not old.is_symlink() and (old / MARK).is_file():
            shutil.rmtree(old, ignore_errors=True)


def check_targets(out: Path, staged: list[Path]) -> None:
    """Refuse, before anything is replaced, a set whose targets cannot be written."""
    for rel in staged:
        for parent in reversed(rel.parents[:-1]):  # out/a, out/a/b, ...
            folder = out / parent
            if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
                raise OutputBlockedError(
                    f"{folder} is in the way: the run puts a folder there; move it away"
                )
        target = out / rel
        if target.is_dir() and not target.is_symlink():
            raise OutputBlockedError(
                f"{target} is a folder where the run puts a file; move it away"
            )


def land(stage: Path, out: Path, staged: list[Path], pdfs: str | None = None) -> list[Path]:
    """Move a run's files (paths relative to `stage`, a private folder) into `out` as one
    set; and in the subfolder `pdfs`, the PDFs this run did not make (a student no longer
    in the class) go with the old set. On a failure the old set is put back."""
    check_targets(out, staged)
    aside = stage / ASIDE
    done: list[tuple[Path, Path | None, bool]] = []  # target, where its old file went, new?
    gone = []
    if pdfs is not None and (out / pdfs).is_dir():
        made = {out / rel for rel in staged}
        gone = [p for p in sorted((out / pdfs).glob("*.pdf")) if p not in made]
    with signals_held():
        try:
            for rel in staged:
                target = out / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                old = _move_aside(target, aside / rel)
                done.append((target, old, False))
                os.replace(stage / rel, target)
                done[-1] = (target, old, True)
            for pdf in gone:
                done.append((pdf, _move_aside(pdf, aside / pdf.relative_to(out)), False))
        except BaseException:
            _put_back(done)
            raise
    return [out / rel for rel in staged]


def _move_aside(target: Path, aside: Path) -> Path | None:
    if not (target.exists() or target.is_symlink()):
        return None
    aside.parent.mkdir(parents=True, exist_ok=True)
    os.rename(target, aside)
    return aside


def _put_back(done: list[tuple[Path, Path | None, bool]]) -> None:
    """Undo a landing's moves, the last first: each new file goes, each old one returns."""
    for target, old, new in reversed(done):
        if new:
            target.unlink(missing_ok=True)
        if old is not None:
            os.rename(old, target)
