"""Times a big build with and without its documents compiled in chunks (issue 10): the whole
`workbook build --d-model 64 --yes`, wall clock and CPU seconds (this process and TeX's).

The two builds alternate, `--repeat` times each, and each one's fastest is kept, as other
work on the machine only ever adds time; the load average before each run is printed, since
on a shared 2-core machine another user's job takes the second core the chunks need.
Run: python benchmarks/bench_chunks.py [--d-model 64] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from pypdf import PdfReader

from workbook.build import CHUNK_PAGES, BuildRequest, build
from workbook.config import Config
from workbook.render import Options


def cpu() -> float:
    """CPU seconds so far of this process and of the TeX runs it waited for."""
    own, tex_runs = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + tex_runs.ru_utime + tex_runs.ru_stime


def timed(c: Config, chunk_pages: int) -> tuple[float, float, dict[str, int]]:
    """Wall and CPU seconds of one full build, and each PDF's pages."""
    with tempfile.TemporaryDirectory() as tmp:
        req = BuildRequest(Path(tmp), Options(), quiet=True, yes=True, chunk_pages=chunk_pages)
        c0, t0 = cpu(), time.perf_counter()
        written = build(c, req)
        wall, used = time.perf_counter() - t0, cpu() - c0
        pages = {p.stem: len(PdfReader(p).pages) for p in written if p.suffix == ".pdf"}
    return wall, used, pages


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    c = Config(d_model=args.d_model)
    settings = {"single pass (before)": 10**9, f"chunked above {CHUNK_PAGES} pages": CHUNK_PAGES}
    best: dict[str, tuple[float, float, dict[str, int]]] = {}
    for _ in range(args.repeat):
        for what, limit in settings.items():
            load = os.getloadavg()[0]
            run = timed(c, limit)
            print(f"  {what}: wall {run[0]:.1f} s, CPU {run[1]:.1f} s (load before {load:.2f})")
            if what not in best or run[0] < best[what][0]:
                best[what] = run
    for what, (wall, used, pages) in best.items():
        each = ", ".join(f"{n} {k}" for n, k in pages.items())
        print(f"{what}: wall {wall:.1f} s, CPU {used:.1f} s; pages: {each}")


if __name__ == "__main__":
    main()
