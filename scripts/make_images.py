"""The README's pictures, made from the current build: `make images` (or
`python scripts/make_images.py`) builds what they show into a temporary folder, renders one
page of each document to docs/img/NAME.png with pdftoppm, and records in
docs/img/pages.json which page of which document each is, with a hash of that page's text;
tests/test_docs.py builds the same and checks the text, so a picture never shows pages the
tool no longer makes.

The pages, all of the classroom model: a worked page of the workbook (a chapter's opening,
the queries of head 1 beside their Falk scheme, worked element by element), an exercise page
with its Falk grid, a student's handout, and a feedback page after grading (a class of three, one of
whom transposed a product: the students of tests/students.py, who work by the printed rules).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "img"
RESOLUTION = 60  # dots per inch: a page about 500 pixels wide, legible beside the others
ROSTER = [("a1", "Ada Lovelace"), ("b2", "李雷"), ("c3", "Zoë O'Brien")]
SECTIONS = "2.1,2.3,3.1-3.3"


@dataclass(frozen=True)
class Picture:
    name: str
    document: str  # a PDF's path inside the folder `made` fills
    marker: str  # the first page whose text holds this is the picture


PICTURES = [
    Picture("worked", "classroom/workbook.pdf", "to the left, W"),
    Picture("exercise", "classroom/exercises.pdf", "Queries of head 1, ["),
    Picture("handout", "lesson/students/b2.pdf", "Queries of head 1, ["),
    Picture("feedback", "lesson/graded/feedback/b2.pdf", "Feedback on your handout"),
]


CLASSROOM = ("--paper", "a4", "--digits", "4", "--preset", "classroom")  # the build's flags


def run(*argv: str) -> None:
    from workbook import cli

    if cli.main([*argv, "-q"]) != 0:
        raise SystemExit(f"make_images: workbook {' '.join(argv)} failed")


def make(folder: Path) -> None:
    """Everything the pictures show, made into `folder` by the tool's own commands."""
    run("build", *CLASSROOM, "-o", str(folder / "classroom"))
    make_lesson(folder)


def make_lesson(folder: Path) -> None:
    """folder/lesson: the class's handouts, graded."""
    roster = folder / "roster.csv"
    roster.write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in ROSTER), encoding="utf-8")
    lesson = folder / "lesson"
    run("handouts", "--preset", "classroom", "--roster", str(roster), "--sections", SECTIONS,
        "-o", str(lesson))  # fmt: skip
    typed = folder / "typed.csv"
    class_answers(lesson, typed)
    run("grade", "--class", str(lesson), "--answers", str(typed))


def class_answers(lesson: Path, typed: Path) -> None:
    """What the class typed: b2 transposed the left factor of 2.1, the others made no slip."""
    sys.path.insert(0, str(ROOT / "tests"))
    from students import work, write_answers

    from workbook.grade import GradeRequest, Grading
    from workbook.grading import asked

    parts = Grading(GradeRequest(lesson, lesson / "answers.csv", quiet=True)).papers()
    rows = []
    for part in parts:
        mistake = ("2.1", "left_transposed") if part.reader.id == "b2" else None
        asks = asked(part.handout)
        values, _ = work(part.handout, asks, mistake)
        rows += [(part.reader.id, a, values.get(a.cell)) for a in asks]
    write_answers(typed, rows)


def page_text(pdf: Path, page: int) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def find_page(pdf: Path, marker: str) -> int:
    """The first page (1-based) whose text holds `marker`."""
    pages = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout.split("\f")
    for k, text in enumerate(pages, start=1):
        if marker in text:
            return k
    raise SystemExit(f"make_images: no page of {pdf} holds {marker!r}")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def pages(folder: Path) -> dict[str, dict[str, object]]:
    """For each picture: its document, its page and the hash of that page's text."""
    found = {}
    for p in PICTURES:
        page = find_page(folder / p.document, p.marker)
        text = page_text(folder / p.document, page)
        found[p.name] = {"document": p.document, "page": page, "text_sha256": digest(text)}
    return found


def main() -> int:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make(folder)
        found = pages(folder)
        for name, where in found.items():
            page = str(where["page"])
            subprocess.run(
                ["pdftoppm", "-png", "-r", str(RESOLUTION), "-f", page, "-l", page,
                 "-singlefile", str(folder / str(where["document"])), str(IMAGES / name)],
                check=True,
            )  # fmt: skip
    (IMAGES / "pages.json").write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {', '.join(f'{n}.png' for n in found)} and pages.json in {IMAGES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
