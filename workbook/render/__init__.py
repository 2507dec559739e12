"""LaTeX views of a trace: the worked workbook, the exercises and the answer key."""

from .answers import Answers
from .base import (
    DETAILS,
    GIVENS,
    LAYOUTS,
    PAPERS,
    SCAFFOLDS,
    Options,
    check_widths,
    select,
    select_sections,
)
from .exercises import Exercises
from .worked import Worked

DOCUMENTS = {"workbook": Worked, "exercises": Exercises, "answers": Answers}

__all__ = [
    "DETAILS",
    "DOCUMENTS",
    "GIVENS",
    "LAYOUTS",
    "PAPERS",
    "SCAFFOLDS",
    "Answers",
    "Exercises",
    "Options",
    "Worked",
    "check_widths",
    "select",
    "select_sections",
]
