"""Running TeX programs so that a signal can stop them at once: each in its own process
group (latexmk's pdflatex with it), registered while it runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from pathlib import Path


class StoppedError(Exception):
    """TeX was stopped by stop_all (SIGTERM or SIGINT): the build unwinds, writing nothing."""


_running: set[subprocess.Popen[str]] = set()
_lock = threading.RLock()  # stop_all may run in a signal handler of a thread holding it
_stopping = threading.Event()


def run_tex(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run latexmk or pdflatex in its own process group, registered so that stop_all can
    end it (and the pdflatex latexmk started) at once instead of waiting for it."""
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


def stop_all() -> None:
    """Kill every TeX run in progress and refuse new ones: called from a signal handler."""
    with _lock:
        _stopping.set()
        procs = list(_running)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
            os.killpg(proc.pid, signal.SIGKILL)
