"""Time `workbook relay` for a class: the classroom model's forward pass for 30, 60 and 200
students (the target: 60 students' cards, poster and plan in at most 20 s on this 2-core
machine), and its forward and backward pass for 60. Each is the whole command, Python's
start included; each figure is the best of two runs.

Prints figures only. Run: python benchmarks/bench_relay.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workbook.config import preset
from workbook.relay import RelayRequest, lesson

TARGET = 20.0  # seconds, for 60 students' forward pass
RUNS = (
    (30, "forward"),
    (60, "forward"),
    (200, "forward"),
    (60, "step"),
)


def timed(students: int, scope: str, out: Path) -> float:
    argv = [sys.executable, "-m", "workbook", "relay", "--students", str(students)]
    argv += ["--scope", scope, "-q", "-o", str(out)]
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        subprocess.run(argv, check=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    print("workbook relay, classroom preset (best of two runs, the whole command):")
    with tempfile.TemporaryDirectory() as tmp:
        for students, scope in RUNS:
            plan = lesson(preset("classroom"), RelayRequest(Path(tmp), students, scope=scope))
            seconds = timed(students, scope, Path(tmp) / f"{scope}-{students}")
            note = (
                f" (target: at most {TARGET:.0f} s)" if (students, scope) == (60, "forward") else ""
            )
            print(
                f"  {scope:7} {students:3} students: {len(plan.cards)} cards in {plan.rounds} "
                f"rounds, a lesson of about {plan.schedule.minutes():.0f} minutes; "
                f"made in {seconds:.1f} s{note}"
            )


if __name__ == "__main__":
    main()
