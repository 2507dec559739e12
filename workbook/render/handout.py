"""A student's handout: the selected exercises of their own variant, with their name, id and
variant code on every page, faded worked examples and self-checks; compact, for printing."""

from __future__ import annotations

from dataclasses import dataclass

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


def name_tex(name: str) -> str:
    """A name exactly as typed where the fonts have its letters; a letter they lack (李, م)
    is printed as its Unicode name's code, ⟨U+674E⟩, so the name stays identifiable."""
    out = []
    for ch in name:
        if ch in WORD_CHARS or ch == " ":
            out.append(tex_escape(ch))
        else:
            out.append(rf"\codepoint{{{ord(ch):04X}}}")
    return "".join(out)


# The macro name_tex uses, for every document that prints names.
CODEPOINT = r"\newcommand{\codepoint}[1]{$\langle$U+#1$\rangle$}"


def has_fallback(name: str) -> bool:
    return any(ch not in WORD_CHARS and ch != " " for ch in name)


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
            "fallback": has_fallback(r.name),
        }

    def document(self) -> Document:
        doc = super().document()
        doc.preamble.append(NoEscape(CODEPOINT))
        doc.preamble.append(self.prose("handout_preamble.tex.j2"))
        return doc
