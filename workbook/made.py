"""What an output folder's documents were made from, so that a rerun compiles only what
changed, and one with nothing changed knows it before the step is even computed.

Two hashes. A compiled PDF carries the hash of its inputs (`compile.inputs_stamp`: the
source, the files beside it, its date, the TeX pipeline), which tells for certain whether it
is up to date once its source is made. Making the sources takes seconds, so a build's .aux
also records the hash of the settings that made it (`settings_stamp`: the settings, the
tool's code and what it runs on) and of its PDF: equal settings on the same code make the
same sources, so such a document is up to date without making anything.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import sys
from pathlib import Path
from typing import Any

from .compile import pipeline

RECORD = "% workbook settings sha256: "  # the .aux line: settings stamp, then the PDF's hash


@functools.cache
def tool_digest() -> str:
    """The tool itself: its code and templates, Python's and NumPy's versions (the numbers
    are NumPy's) and the TeX pipeline."""
    from .render.base import TEMPLATES  # the prose is part of the tool

    here = Path(__file__).parent
    h = hashlib.sha256(pipeline())
    h.update(f"{sys.version}\0{importlib.metadata.version('numpy')}\0".encode())
    for path in sorted(here.rglob("*.py")) + sorted(TEMPLATES.glob("*.j2")):
        h.update(f"\0{path.name}\0".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def settings_stamp(*settings: Any) -> str:
    """The hash of what shapes a document (settings as JSON-able values, dataclasses by
    their fields) and of the tool that makes it."""
    text = json.dumps(settings, sort_keys=True, default=_plain)
    return hashlib.sha256(f"{tool_digest()}\0{text}".encode()).hexdigest()


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    return str(value)


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record(settings: str, pdf: Path) -> str:
    """The .aux line that says which settings made the PDF beside it, and which PDF."""
    return f"{RECORD}{settings} pdf {file_hash(pdf)}\n"


def recorded(folder: Path, stem: str, settings: str, suffixes: tuple[str, ...]) -> bool:
    """Are folder/stem's files all there, its .aux recording these settings and the very
    PDF beside it?"""
    files = [folder / f"{stem}{s}" for s in suffixes]
    if not all(p.is_file() and not p.is_symlink() for p in files):
        return False
    lines = (folder / f"{stem}.aux").read_bytes().splitlines(keepends=True)
    line = next((ln for ln in lines if ln.startswith(RECORD.encode())), b"")
    return line.decode(errors="replace") == record(settings, folder / f"{stem}.pdf")


def restamp(aux: Path, dest: Path, settings: str, pdf: Path) -> None:
    """Copy `aux` to `dest` recording these settings instead of those it had: a document
    that other settings left unchanged is up to date under these too."""
    lines = aux.read_bytes().splitlines(keepends=True)
    kept = b"".join(ln for ln in lines if not ln.startswith(RECORD.encode()))
    dest.write_bytes(kept + record(settings, pdf).encode())


def source_date() -> int | None:
    """SOURCE_DATE_EPOCH of the environment, the date a build's PDFs carry when set (the
    reproducible-builds convention), so the same settings give the same bytes."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else None
