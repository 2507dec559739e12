"""The answer key: each exercise's result, its honest tolerance, and where it is worked."""

from __future__ import annotations

from pylatex import Document, NoEscape
from pylatex.section import Chapter

from ..trace import Chapter as ChapterInfo
from . import derivations
from .base import Renderer, _listed, key
from .steps import shape


def tolerance_tex(units: int) -> str:
    """The ± beside an answer, in units of the last printed digit of each value."""
    if units == 0:
        return r"\text{exact}"
    return rf"\pm {units}\text{{ in the last digit}}"


WORKBOOK_PREFIX = "wb-"  # the workbook's labels, as the key refers to them


class Answers(Renderer):
    view = "answers"
    selective = True
    pdf_title = "One Training Step of a Transformer: answer key"

    # The key cites the workbook's sections and pages through LaTeX's cross-document
    # references: compiled beside workbook.aux (of the same settings), they resolve.
    before_hyperref = ("xr-hyper",)

    def document(self) -> Document:
        doc = super().document()
        doc.preamble.append(NoEscape(rf"\externaldocument[{WORKBOOK_PREFIX}]{{workbook}}"))
        return doc

    def where(self, name: str) -> str:
        """The workbook section that works it, and the page where its result is printed."""
        section, table = (f"{WORKBOOK_PREFIX}{k}:{key(name)}" for k in "sr")
        if self.t.step(name).desc.of:  # AdamW: one element worked, every one in a later table
            return (
                rf"workbook \S\ref{{{section}}}, p.~\pageref{{{section}}}; "
                rf"table \S\ref{{{table}}}, p.~\pageref{{{table}}}"
            )
        return rf"workbook \S\ref{{{section}}}, p.~\pageref{{{table}}}"

    def telling(self, step) -> list[str]:
        """Lines after an answer that help tell a mistake from right work (the class key's)."""
        return []

    def chapter_body(self, info: ChapterInfo, ch: Chapter) -> None:
        ch.append(NoEscape("\n".join(self.answers(info.number))))

    def answers(self, number: int) -> list[str]:
        """Each asked exercise of a chapter: its heading line, its result, what it writes."""
        parts = []
        for step in self.selection.asked(self.t, number):
            tol = tolerance_tex(self.book.tolerance(step))
            title = self.title(step.name)
            what = rf"{title}: ${step.desc.symbol}$, ${shape(step.shape)}$"
            parts.append(
                rf"\answer{{{self.numbers[step.name]}}}{{{what}}}"
                rf"{{${tol}$}}{{{self.where(step.name)}}}"
            )
            parts.append(self.result_block(step.name))
            parts += self.telling(step)
            written = self.written_tables(step)
            if written:  # so a learner who went wrong can find the step where
                # the label stays with the first table under it
                label = r"\par\needspace{6\baselineskip}\noindent\textit{Written on the way:}"
                parts += [label + r"\par\nopagebreak", *written]
        for n, topic in self.selection.derivations(number):
            d = self.derived.get(topic)
            cited = "xr-hyper" in self.before_hyperref  # a key beside the workbook
            where = rf"workbook p.~\pageref{{{WORKBOOK_PREFIX}d:{topic}}}" if cited else ""
            blank = _listed(map(str, d.keys))
            parts += [
                rf"\answer{{{n}}}{{Derivation: {d.title}}}{{}}{{{where}}}",
                rf"\par\noindent\textit{{The lines the exercise leaves blank are {blank}, "
                r"their numbers in bold.}\par",
                *derivations.lines_tex(d, marked=True),
            ]
        return parts
