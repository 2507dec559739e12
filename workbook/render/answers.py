"""The answer key: each exercise's result, its honest tolerance, and where it is worked."""

from __future__ import annotations

from pylatex import NoEscape
from pylatex.section import Chapter

from .base import Renderer, exercise_numbers
from .fmt import symbol
from .steps import shape
from .worked import Worked


def tolerance_tex(units: int) -> str:
    """The ± beside an answer, in units of the last printed digit of each value."""
    if units == 0:
        return r"\text{exact}"
    return rf"\pm {units}\text{{ in the last digit}}"


class Answers(Renderer):
    view = "answers"
    pdf_title = "One Training Step of a Transformer: answer key"

    def __init__(self, *args, pages: dict[str, int] | None = None, **kw) -> None:
        """`pages`: the worked workbook's page for each step name, when it was compiled."""
        super().__init__(*args, **kw)
        self.numbers = exercise_numbers(self.t, self.chapters())
        self.sections = Worked(self.c, self.t, self.opts).section_numbers()
        self.pages = pages or {}

    def chapters(self) -> tuple[int, ...]:
        return self.opts.chapters

    def where(self, name: str) -> str:
        page = self.pages.get(name)
        place = rf"workbook \S{self.sections[name]}"
        return f"{place}, p.~{page}" if page else place

    def chapter_body(self, number: int, ch: Chapter) -> None:
        parts = []
        for step in self.t.chapter(number):
            tol = tolerance_tex(self.book.tolerance(step))
            title = self.title(step.name)
            what = rf"{title}: ${symbol(step.name)}$, ${shape(step.shape)}$"
            parts.append(
                rf"\answer{{{self.numbers[step.name]}}}{{{what}}}"
                rf"{{${tol}$}}{{{self.where(step.name)}}}"
            )
            parts.append(self.result_block(step.name))
            written = self.written_tables(step)
            if written:  # so a learner who went wrong can find the step where
                parts += [r"\par\noindent\textit{Written on the way:}\par", *written]
        ch.append(NoEscape("\n".join(parts)))
