"""Times `workbook build` as issue 22 counts it, against the floor TeX sets: the one-pass
critical path, one pdflatex pass of the workbook and then one of the answer key (which cites
the workbook's pages), each with its .aux present.

Prints, each the fastest of `--repeat` runs (other work on the machine only ever adds time):
- one pass of each document, and the critical path P (workbook + key);
- a full default build from an empty folder, and its ratio to P (target ≤ 2);
- a rebuild after a settings change that keeps the layout (a word of the sentence replaced
  by another of the same length, so every page stays where it was), and its ratio to P
  (target ≤ 1.3); and after one that moves pages (another seed), for comparison;
- a rerun with nothing changed (target ≤ 1 s).
With `--figures`, also the figures' cost: the default build with and without them.
Run: python benchmarks/bench_build.py [--repeat N] [--figures]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workbook.compile import PDFLATEX, isolated_env, toc_of

DOCUMENTS = ("workbook", "exercises", "answers")
SAME_LAYOUT = [
    "--vocab",
    "<PAD> <BOS> <EOS> I love transformers",
    "--sentence",
    "I love transformers",
]
OTHER_SEED = ["--seed", "43"]


def build(out: Path, *args: str) -> tuple[float, str]:
    """`workbook build` as a user runs it: wall seconds, and what it said."""
    t0 = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "workbook", "build", "-o", str(out), *args],
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"build {' '.join(args)} failed:\n{run.stderr}")
    return took, run.stderr


def passes(said: str) -> str:
    found = re.findall(r"compiled (\w+)\.pdf \(\d+ pages[^,]*, (\d+) pass", said)
    return ", ".join(f"{n} {k}" for n, k in found) or "nothing compiled"


def one_pass(folder: Path, stem: str) -> float:
    """One pdflatex pass of a compiled document with its .aux and .toc (and the workbook's
    .aux, for the key) present, in a copy of its files."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for suffix in (".tex", ".aux"):
            shutil.copy(folder / f"{stem}{suffix}", work / f"doc{suffix}")
        (work / "doc.toc").write_bytes(toc_of((folder / f"{stem}.aux").read_bytes()))
        shutil.copy(folder / "workbook.aux", work / "workbook.aux")
        t0 = time.perf_counter()
        subprocess.run(PDFLATEX, cwd=work, env=isolated_env(work), capture_output=True, check=True)
        return time.perf_counter() - t0


def fastest(runs: list[tuple[float, str]]) -> tuple[float, str]:
    return min(runs, key=lambda r: r[0])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--figures", action="store_true", help="also time the figures' cost")
    args = p.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        full, same, moved, none = [], [], [], []
        single: dict[str, list[float]] = {n: [] for n in DOCUMENTS}  # one pass each
        for k in range(args.repeat):  # in turn, so that a change of load falls on all
            out = root / f"run{k}"
            full.append(build(out))
            for n in DOCUMENTS:
                single[n].append(one_pass(out, n))
            same.append(build(out, *SAME_LAYOUT))
            same.append(build(out))  # and back: the same layout again
            none.append(build(out))
            moved.append(build(out, *OTHER_SEED))
        floor = {n: min(times) for n, times in single.items()}
        critical = floor["workbook"] + floor["answers"]
        print("one pass, with its .aux: " + ", ".join(f"{n} {t:.2f} s" for n, t in floor.items()))
        print(f"one-pass critical path P (workbook, then key): {critical:.2f} s")
        for what, runs, target in (
            ("full default build, empty folder", full, "≤ 2"),
            ("settings change keeping the layout", same, "≤ 1.3"),
            ("settings change moving pages (--seed 43)", moved, "none"),
        ):
            took, said = fastest(runs)
            print(
                f"{what}: {took:.2f} s = {took / critical:.2f} × P (target {target}); "
                f"passes: {passes(said)}"
            )
        took, said = fastest(none)
        print(f"rerun with nothing changed: {took:.2f} s (target ≤ 1 s); {passes(said)}")
        if args.figures:
            figures(root, args.repeat)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


def figures(root: Path, repeat: int) -> None:
    """The default build with the figures and without (--no-figures), each from an empty
    folder, in turn so that a change of the machine's load falls on both."""
    times: dict[bool, list[float]] = {True: [], False: []}
    for k in range(repeat):
        for shown in times:
            flags = [] if shown else ["--no-figures"]
            times[shown].append(build(root / f"fig{k}{shown}", *flags)[0])
    w, wo = min(times[True]), min(times[False])
    print(f"figures: {w:.1f} s with, {wo:.1f} s without ({100 * (w / wo - 1):+.1f} %)")


if __name__ == "__main__":
    main()
