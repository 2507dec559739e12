"""Time the engine on the default configuration: the full step, the forward pass alone, and
the printed chain (hand and exact) built from the step.

Prints figures only (median over RUNS runs after a warm-up); the target for the full
step is under 20 ms. Run: python benchmarks/bench.py [runs]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from workbook import engine, params
from workbook.config import Config
from workbook.printed import ARITHMETICS, Book

RUNS = 50
TARGET_MS = 20.0


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up: imports, caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else RUNS
    config = Config()
    initial = params.initialize(config)
    step = median_ms(lambda: engine.run(config), runs)
    forward = median_ms(lambda: engine.loss(config, initial), runs)
    print(f"engine.run (init + forward + backward + AdamW): {step:8.3f} ms median of {runs}")
    print(f"engine.loss (forward only):                     {forward:8.3f} ms median of {runs}")
    print(f"target for the full step: < {TARGET_MS:.0f} ms")
    trace = engine.run(config)
    book_runs = max(1, runs // 10)  # the printed chain is exact decimal: slower, run fewer
    for arithmetic in ARITHMETICS:
        ms = median_ms(lambda a=arithmetic: Book(trace, 4, a), book_runs)
        label = f"printed.Book ({arithmetic} arithmetic, 4 digits):"
        print(f"{label:<48}{ms:8.1f} ms median of {book_runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
