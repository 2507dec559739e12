"""Time `workbook handouts` for classes of 10, 30 and 100 students (classroom preset, three
exercises): seconds in all, seconds per student, and how the time grows with the class.

Prints figures only; the target is at most 60 s for 30 students on a 2-core machine.
Run: python benchmarks/bench_handouts.py [sizes…]
"""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from pathlib import Path

from workbook import cli

SIZES = (10, 30, 100)
TARGET_30 = 60.0
SECTIONS = "2.1,3.1,7.2"


def run(n: int, folder: Path) -> float:
    roster = folder / f"roster-{n}.csv"
    with roster.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "name"])
        w.writerows([f"s{k:03d}", f"Student {k}"] for k in range(n))
    argv = ["handouts", "--preset", "classroom", "--roster", str(roster), "--sections"]
    argv += [SECTIONS, "-q", "-o", str(folder / f"out-{n}")]
    start = time.perf_counter()
    assert cli.main(argv) == 0
    return time.perf_counter() - start


def main(sizes: tuple[int, ...]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = [(n, run(n, Path(tmp))) for n in sizes]
    print(f"workbook handouts, classroom preset, exercises {SECTIONS}")
    print(f"{'students':>8} {'seconds':>8} {'s/student':>10}")
    for n, s in rows:
        print(f"{n:>8} {s:>8.1f} {s / n:>10.2f}")
    if len(rows) > 1:
        (n0, s0), (n1, s1) = rows[0], rows[-1]
        print(f"growth: {s1 / s0:.1f}x the time for {n1 / n0:.0f}x the students")
    for n, s in rows:
        if n == 30:
            print(f"30 students: {s:.1f} s (target: at most {TARGET_30:.0f} s)")


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or SIZES)
