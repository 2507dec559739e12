"""Times the default build: the Python part (engine + LaTeX source) and the TeX part.

Prints figures only; targets (the whole default build well under 30 s) are for reading.
Run: python benchmarks/bench_build.py [--detail full|sample|results]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from workbook import compile as tex
from workbook import engine
from workbook.config import Config
from workbook.render import DOCUMENTS, Options


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--detail", default="full")
    args = p.parse_args()
    c = Config()
    opts = Options(detail=args.detail)
    t0 = time.perf_counter()
    trace = engine.run(c)
    t_engine = time.perf_counter() - t0
    print(f"engine: {t_engine * 1000:.1f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        for name, render in DOCUMENTS.items():
            t1 = time.perf_counter()
            source = render(c, trace, opts).tex()
            t_py = time.perf_counter() - t1
            t2 = time.perf_counter()
            result = tex.compile_document(source, Path(tmp), name)
            t_tex = time.perf_counter() - t2
            print(
                f"{name}: python {t_py:.2f} s ({len(source) / 1e6:.1f} MB of LaTeX), "
                f"tex {t_tex:.1f} s ({result.pages} pages)"
            )


if __name__ == "__main__":
    main()
