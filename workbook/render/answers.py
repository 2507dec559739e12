"""The answer key: each exercise's result, its honest tolerance, and where it is worked."""

from __future__ import annotations

from pylatex import Document, NoEscape
from pylatex.section import Chapter

from ..trace import Chapter as ChapterInfo
from .base import Renderer, exercise_numbers, key
from .steps import shape


def tolerance_tex(units: int) -> str:
    """The ± beside an answer, in units of the last printed digit of each value."""
    if units == 0:
        return r"\text{exact}"
    return rf"\pm {units}\text{{ in the last digit}}"


WORKBOOK_PREFIX = "wb-"  # the workbook's labels, as the key refers to them


class Answers(Renderer):
    view = "answers"
    pdf_title = "One Training Step of a Transformer: answer key"

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.numbers = exercise_numbers(self.t, self.chapters())

    def chapters(self) -> tuple[int, ...]:
        return self.opts.chapters or super().chapters()

    # The key cites the workbook's sections and pages through LaTeX's cross-document
    # references: compiled beside workbook.aux (of the same settings), they resolve.
    before_hyperref = ("xr-hyper",)

    def document(self) -> Document:
        doc = super().document()
        doc.preamble.append(NoEscape(rf"\externaldocument[{WORKBOOK_PREFIX}]{{workbook}}"))
        return doc

    @staticmethod
    def where(name: str) -> str:
        label = f"{WORKBOOK_PREFIX}s:{key(name)}"
        return rf"workbook \S\ref{{{label}}}, p.~\pageref{{{label}}}"

    def chapter_body(self, info: ChapterInfo, ch: Chapter) -> None:
        parts = []
        for step in self.t.chapter(info.number):
            tol = tolerance_tex(self.book.tolerance(step))
            title = self.title(step.name)
            what = rf"{title}: ${step.desc.symbol}$, ${shape(step.shape)}$"
            parts.append(
                rf"\answer{{{self.numbers[step.name]}}}{{{what}}}"
                rf"{{${tol}$}}{{{self.where(step.name)}}}"
            )
            parts.append(self.result_block(step.name))
            written = self.written_tables(step)
            if written:  # so a learner who went wrong can find the step where
                parts += [r"\par\noindent\textit{Written on the way:}\par", *written]
        ch.append(NoEscape("\n".join(parts)))
