"""Times the default build: the Python part (engine + LaTeX source) and the TeX part, with
the figures and without them (--no-figures), and what the figures cost.

Prints figures only; targets (the whole default build well under 30 s, the figures at most
+20 %) are for reading. Each document is timed `--repeat` times and its fastest kept, as
other work on the machine only ever adds time. Besides the wall clock it counts CPU seconds
(this process and TeX's), which other work on a shared machine disturbs less.
Run: python benchmarks/bench_build.py [--detail full|sample|results] [--repeat N]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from workbook import compile as tex
from workbook import engine
from workbook.config import Config
from workbook.render import DOCUMENTS, Options
from workbook.trace import Trace


def cpu() -> float:
    """CPU seconds so far of this process and of the TeX runs it waited for."""
    own, tex_runs = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + tex_runs.ru_utime + tex_runs.ru_stime


Timing = tuple[float, float, float, int, int]  # python s, tex s, cpu s, LaTeX size, pages


def build(c: Config, trace: Trace, opts: Options) -> dict[str, Timing]:
    """Each document's Python and TeX seconds, CPU seconds, LaTeX size and pages, built in
    a fresh folder in the build's order (the answer key reads the workbook's .aux)."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, render in DOCUMENTS.items():
            c0, t1 = cpu(), time.perf_counter()
            source = render(c, trace, opts).tex()
            t_py = time.perf_counter() - t1
            t2 = time.perf_counter()
            result = tex.compile_document(source, Path(tmp), name)
            t_tex = time.perf_counter() - t2
            out[name] = (t_py, t_tex, cpu() - c0, len(source), result.pages)
    return out


def fastest(c: Config, trace: Trace, repeat: int, detail: str) -> dict[bool, dict[str, Timing]]:
    """Each document's fastest build with and without figures, the two built in turn so a
    change in the machine's load falls on both."""
    runs: dict[bool, list[dict[str, Timing]]] = {True: [], False: []}
    for _ in range(repeat):
        for figures in runs:
            runs[figures].append(build(c, trace, Options(detail=detail, figures=figures)))
    return {
        figures: {name: min((r[name] for r in done), key=lambda t: t[2]) for name in DOCUMENTS}
        for figures, done in runs.items()
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--detail", default="full")
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    c = Config()
    t0 = time.perf_counter()
    trace = engine.run(c)
    t_engine = time.perf_counter() - t0
    print(f"engine: {t_engine * 1000:.1f} ms")
    wall: dict[str, dict[bool, float]] = {"default build": {}, "workbook alone": {}}
    used: dict[str, dict[bool, float]] = {"default build": {}, "workbook alone": {}}
    for figures, timed in fastest(c, trace, args.repeat, args.detail).items():
        print("with figures:" if figures else "without figures (--no-figures):")
        for name, (t_py, t_tex, t_cpu, size, pages) in timed.items():
            print(
                f"  {name}: python {t_py:.2f} s ({size / 1e6:.1f} MB of LaTeX), "
                f"tex {t_tex:.1f} s ({pages} pages); {t_cpu:.1f} CPU s"
            )
        wall["default build"][figures] = t_engine + sum(t[0] + t[1] for t in timed.values())
        used["default build"][figures] = t_engine + sum(t[2] for t in timed.values())
        wall["workbook alone"][figures] = sum(timed["workbook"][:2])
        used["workbook alone"][figures] = timed["workbook"][2]
    for what in wall:
        w, u = wall[what], used[what]
        print(
            f"{what}: {w[True]:.1f} s with figures, {w[False]:.1f} s without "
            f"({100 * (w[True] / w[False] - 1):+.1f} %); CPU {u[True]:.1f} s and "
            f"{u[False]:.1f} s ({100 * (u[True] / u[False] - 1):+.1f} %)"
        )


if __name__ == "__main__":
    main()
