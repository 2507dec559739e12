"""Running TeX programs so that a signal can stop them at once: each in its own process
group, registered while it runs; and at most one per core, the most urgent first."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path


class StoppedError(Exception):
    """TeX was stopped by stop_all (SIGTERM or SIGINT): the build unwinds, writing nothing."""


_running: set[subprocess.Popen[str]] = set()
_lock = threading.RLock()  # stop_all may run in a signal handler of a thread holding it
_stopping = threading.Event()


class Cores:
    """TeX runs of one process, at most one per core: a compile holds a core from its first
    pass to its last (lending it while it waits for another's files), and of those waiting
    for one, the lowest `priority` number goes first (the document others wait for), so a
    document on the critical path never queues behind another between its passes."""

    def __init__(self, count: int) -> None:
        self.free = count
        self._cond = threading.Condition()
        self._waiting: list[tuple[int, int]] = []
        self._order = itertools.count()

    def acquire(self, priority: int) -> None:
        with self._cond:
            ticket = (priority, next(self._order))
            heapq.heappush(self._waiting, ticket)
            while self.free == 0 or self._waiting[0] != ticket:
                self._cond.wait()
            heapq.heappop(self._waiting)
            self.free -= 1
            self._cond.notify_all()  # a core may still be free for the next in line

    def release(self) -> None:
        with self._cond:
            self.free += 1
            self._cond.notify_all()

    @contextlib.contextmanager
    def held(self, priority: int) -> Iterator[None]:
        self.acquire(priority)
        try:
            yield
        finally:
            self.release()

    @contextlib.contextmanager
    def lent(self, priority: int) -> Iterator[None]:
        """Give a held core back meanwhile, and hold one again after."""
        self.release()
        try:
            yield
        finally:
            self.acquire(priority)


CORES = Cores(len(os.sched_getaffinity(0)))


def run_tex(
    cmd: list[str], cwd: Path, env: dict[str, str], priority: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run pdflatex in its own process group, registered so that stop_all can end it at
    once instead of waiting for it; with a `priority`, once a core is free (see Cores),
    else on the core the caller holds."""
    if priority is None:
        return _run(cmd, cwd, env)
    with CORES.held(priority):
        return _run(cmd, cwd, env)


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    with _lock:
        if _stopping.is_set():
            raise StoppedError
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",  # TeX writes a T1 glyph's byte, not UTF-8 (ĳ is 0xBC)
            start_new_session=True,
        )
        _running.add(proc)
    try:
        out, err = proc.communicate()
    finally:
        with _lock:
            _running.discard(proc)
    if _stopping.is_set():
        raise StoppedError
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


_holding = 0  # signals_held blocks open (in the main thread, where signal handlers run)
_pending = False  # a signal came meanwhile


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """A SIGINT or SIGTERM meanwhile stops TeX at once (see interrupt) but unwinds the main
    thread only at the end of this block: a pool's thread that is being started when the
    handler raises goes on unknown to its pool, which then does not wait for it, and writes
    into a private folder already removed. (Blocking the signals would not do: NumPy's
    threads take them for the process.)"""
    global _holding, _pending
    _holding += 1
    try:
        yield
    finally:
        _holding -= 1
        if not _holding and _pending:
            _pending = False
            raise KeyboardInterrupt


def interrupt() -> None:
    """For a signal handler, after stop_all: KeyboardInterrupt now, or at the end of the
    signals_held block the main thread is in."""
    global _pending
    if _holding:
        _pending = True
    else:
        raise KeyboardInterrupt


def stop_all() -> None:
    """Kill every TeX run in progress and refuse new ones: called from a signal handler."""
    with _lock:
        _stopping.set()
        procs = list(_running)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
            os.killpg(proc.pid, signal.SIGKILL)
