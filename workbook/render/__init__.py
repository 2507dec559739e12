"""LaTeX views of a trace: the worked workbook, the exercises and the answer key."""

from .answers import Answers
from .base import ALL_CHAPTERS, DETAILS, GIVENS, PAPERS, SCAFFOLDS, Options
from .exercises import Exercises
from .worked import Worked

DOCUMENTS = {"workbook": Worked, "exercises": Exercises, "answers": Answers}

__all__ = [
    "ALL_CHAPTERS",
    "DETAILS",
    "DOCUMENTS",
    "GIVENS",
    "PAPERS",
    "SCAFFOLDS",
    "Answers",
    "Exercises",
    "Options",
    "Worked",
]
