"""Time `workbook grade` for a class of 30 on a 7-exercise attention handout (classroom
preset, exercises 2.1, 2.3, 2.5, 3.1-3.3, 4.1): the typed answers of every value, students
made from the engine (key copiers, one realistic mistake each, a blank exercise), graded
without TeX (--csv-only) and with the feedback PDFs and the report.

Prints figures only; the targets on this 2-core machine are at most 3 s without TeX and 30 s
with it, each for the whole command. Run: python benchmarks/bench_grade.py [students]
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from students import work, write_answers

from workbook import cli
from workbook.grade import GradeRequest, Grading
from workbook.grading import asked

SECTIONS = "2.1,2.3,2.5,3.1-3.3,4.1"
TARGETS = {"--csv-only": 3.0, "": 30.0}
# What the simulated students do, in turn: right throughout, or one slip and right after it
# from their own numbers, or one exercise left blank.
PLANS = [
    (),
    ("2.1", "left_transposed"),
    ("3.2", "no_scaling"),
    ("3.3", "softmax_columns"),
    ("3.1", "factors_swapped"),
    ("3.3", "no_mask"),
    ("4.1", "sign_of_a_term"),
    ("skip", "4.1"),
]


def make_class(folder: Path, n: int) -> Path:
    roster = folder / "roster.csv"
    with roster.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "name"])
        w.writerows([f"s{k:03d}", f"Student {k}"] for k in range(n))
    lesson = folder / "lesson"
    argv = ["handouts", "--preset", "classroom", "--roster", str(roster), "-q"]
    assert cli.main([*argv, "--sections", SECTIONS, "-o", str(lesson)]) == 0
    rows = []
    for k, part in enumerate(Grading(GradeRequest(lesson, lesson / "answers.csv")).papers()):
        plan = PLANS[k % len(PLANS)]
        asks = asked(part.handout)
        if plan[:1] == ("skip",):
            values, _ = work(part.handout, asks, skip=plan[1:])
        else:
            values, _ = work(part.handout, asks, plan or None)
        rows += [(part.reader.id, a, values.get(a.cell)) for a in asks]
    write_answers(folder / "typed.csv", rows)
    return lesson


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lesson = make_class(folder, n)
        values = sum(1 for _ in (folder / "typed.csv").open()) - 1
        print(f"workbook grade, classroom preset, exercises {SECTIONS}: {n} students, {values}")
        print("typed values (written on the way included)")
        for flag, target in TARGETS.items():
            argv = [sys.executable, "-m", "workbook", "grade", "--class", str(lesson)]
            argv += ["--answers", str(folder / "typed.csv"), "-q", "-o", str(folder / f"o{flag}")]
            start = time.perf_counter()  # the whole command, Python's start included
            subprocess.run(argv + ([flag] if flag else []), check=True)
            seconds = time.perf_counter() - start
            what = "without TeX" if flag else "with feedback PDFs and the report"
            print(f"  {what}: {seconds:.1f} s (target: at most {target:.0f} s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
