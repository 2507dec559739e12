"""A student's handout: the selected exercises of their own variant, with their name, id and
variant code on every page, faded worked examples and self-checks; compact, for printing."""

from __future__ import annotations

import functools
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pylatex import Document, NoEscape

from ..config import WORD_CHARS
from .exercises import Exercises
from .fmt import tex_escape


@dataclass(frozen=True)
class Reader:
    """Who a handout (or a key's part) is for: a student, or only a variant code."""

    name: str
    id: str
    code: str


# Han characters, kana and the other letters of the GB 2312 and Big5 sets print in the Arphic
# fonts of Debian's latex-cjk packages (simplified first, then traditional), through CJKutf8:
# pdfTeX's own fonts have no CJK letters.
CJK_FAMILIES = (("gbsn", "gbsnu"), ("bsmi", "bsmiu"))


@functools.cache
def _subfont(prefix: str, high: int) -> frozenset[int]:
    """The characters U+hhXX that the CJK subfont `prefix`hh has (empty without it)."""
    name = f"{prefix}{high:02x}.tfm"
    try:
        found = subprocess.run(
            ["kpsewhich", name], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
        data = Path(found).read_bytes() if found else b""
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    if len(data) < 24:
        return frozenset()
    # A TFM file: lh header words, then one char_info word per code bc..ec; a character
    # exists when its width index (the word's first byte) is not 0.
    _, lh, bc, ec = struct.unpack(">4H", data[:8])
    base = 24 + 4 * lh
    return frozenset(
        bc + k for k in range(ec - bc + 1) if base + 4 * k < len(data) and data[base + 4 * k]
    )


def cjk_family(ch: str) -> str | None:
    """The CJK font family that prints `ch`, if one is installed and has it."""
    code = ord(ch)
    if code < 0x370 or code > 0xFFFF:  # Latin is pdfTeX's; beyond the BMP, no subfonts
        return None
    for family, prefix in CJK_FAMILIES:
        if code & 0xFF in _subfont(prefix, code >> 8):
            return family
    return None


def name_tex(name: str) -> str:
    """A name exactly as typed where the fonts have its letters (李雷 in a CJK font); a
    letter no font has (م) is printed as its Unicode code, ⟨U+0645⟩, so the name stays
    identifiable."""
    out: list[str] = []
    run, run_family = "", None

    def close() -> None:
        nonlocal run, run_family
        if run:
            out.append(rf"\cjk{{{run_family}}}{{{run}}}")
        run, run_family = "", None

    for ch in name:
        family = None if ch in WORD_CHARS or ch == " " else cjk_family(ch)
        if family != run_family:
            close()
        if family:
            run, run_family = run + ch, family
        elif ch in WORD_CHARS or ch == " ":
            out.append(tex_escape(ch))
        else:
            out.append(rf"\codepoint{{{ord(ch):04X}}}")
    close()
    return "".join(out)


def name_macros(names: list[str]) -> str:
    """The preamble lines name_tex's output needs, for every document that prints names:
    CJKutf8 only when a name uses it, so other documents never depend on it. A CJK run is
    upright and of medium weight, the only shape the fonts have, even in a bold heading."""
    lines = [r"\newcommand{\codepoint}[1]{$\langle$U+#1$\rangle$}"]
    if any(r"\cjk{" in name_tex(n) for n in names):
        lines += [
            r"\usepackage{CJKutf8}",
            r"\DeclareRobustCommand{\cjk}[2]{\begin{CJK}{UTF8}{#1}"
            r"\fontseries{m}\fontshape{n}\selectfont #2\end{CJK}}",
        ]
    return "\n".join(lines)


class Handout(Exercises):
    view = "handout"
    pdf_title = "One Training Step of a Transformer: handout"
    contents = False
    parts = False
    self_checks = True
    cites_workbook = False  # a student has only the handout

    def __init__(self, *args, reader: Reader, **kw) -> None:
        self.reader = reader
        super().__init__(*args, **kw)

    def make_context(self) -> dict[str, object]:
        r = self.reader
        return super().make_context() | {
            "student": NoEscape(name_tex(r.name)) if r.name else "",
            "student_id": r.id,
            "code": r.code,
        }

    def document(self) -> Document:
        doc = super().document()
        doc.preamble.append(NoEscape(name_macros([self.reader.name])))
        doc.preamble.append(self.prose("handout_preamble.tex.j2"))
        return doc
