"""Progress over many like things (a class's handouts): on a terminal one line that updates
itself, elsewhere (a log, CI) a line each tenth of the way, never a line per student."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TextIO


def speaker(quiet: bool) -> Callable[[str], None]:
    """A command's progress lines on stderr, `workbook: ...`; nothing under --quiet."""
    if quiet:
        return lambda msg: None
    return lambda msg: print(f"workbook: {msg}", file=sys.stderr)


class Progress:
    def __init__(self, what: str, total: int, quiet: bool = False, out: TextIO | None = None):
        self.what, self.total, self.quiet = what, total, quiet
        self.out = out or sys.stderr
        self.live = hasattr(self.out, "isatty") and self.out.isatty()
        self.done = 0
        self.said = 0  # tenths said so far
        self.lock = threading.Lock()  # handouts compile on two threads

    def step(self) -> None:
        with self.lock:
            self.done += 1
            if self.quiet:
                return
            line = f"workbook: {self.what} {self.done}/{self.total}"
            if self.live:
                end = "\n" if self.done == self.total else ""
                print(f"\r{line}", end=end, file=self.out, flush=True)
                return
            tenths = 10 * self.done // self.total
            if tenths > self.said or self.done == self.total:
                self.said = tenths
                print(line, file=self.out, flush=True)
