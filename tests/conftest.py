"""Shared fixtures: the default build of all three documents, made once per test session.

The suite runs on both cores (pytest-xdist), where each worker has session fixtures of its
own. A TeX build is made once all the same: `shared_folder` makes it in a folder of the
whole run, under a lock, and a worker that needs it later (or meanwhile) reads that one.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from workbook import cli, engine
from workbook.config import Config
from workbook.printed import Book
from workbook.trace import Trace


def run_root(factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of this whole test run, shared by its xdist workers."""
    root = factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


@pytest.fixture(scope="session", autouse=True)
def format_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The TeX formats of this run (see workbook.formats), shared by its workers and the
    commands they start, and kept out of the user's own cache."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(run_root(tmp_path_factory) / "cache")
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(scope="session")
def trace() -> Trace:
    """The default step."""
    return engine.run(Config())


@pytest.fixture(scope="session")
def book(trace: Trace) -> Book:
    """The default step as printed: hand arithmetic, 4 digits."""
    return Book(trace)


def shared_folder(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """The folder `name` of this test run, made by `make` once whichever worker asks first;
    the others wait for it. Its tests only read it."""
    root = run_root(factory)
    out, done = root / name, root / f"{name}.done"
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            make(out)
            done.touch()
    return out


def built(*argv: str) -> Callable[[Path], None]:
    """`make` for shared_folder: `workbook build` of these settings into the folder."""

    def make(out: Path) -> None:
        assert cli.main(["build", "--output", str(out), "--quiet", *argv]) == 0

    return make


def shared_build(factory: pytest.TempPathFactory, *argv: str) -> Path:
    """`workbook build` of these settings, made once in this test run (see shared_folder):
    tests that build the same settings read the same folder."""
    name = re.sub(r"[^A-Za-z0-9.]+", "-", " ".join(["build", *argv]))
    return shared_folder(factory, name, built(*argv))


def classroom_build(factory: pytest.TempPathFactory, paper: str = "a4") -> Path:
    """The classroom preset's three documents at this paper size, made once in this test
    run (test_glyph_collisions, test_layout and test_chunks read the same folder)."""
    return shared_build(factory, "--paper", paper, "--digits", "4", "--preset", "classroom")


def copy_of(folder: Path, to: Path) -> Path:
    """A test's own copy of a shared build, for a test that changes it."""
    shutil.copytree(folder, to, dirs_exist_ok=True)
    return to


@pytest.fixture(scope="session")
def default_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build/ for the default config: workbook, exercises and answer key, compiled."""
    return shared_build(tmp_path_factory)


@pytest.fixture(scope="session")
def results_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default config's three documents with results only (--detail results)."""
    return shared_build(tmp_path_factory, "--detail", "results")


CITED = re.compile(
    r"Exercise (\d+\.\d+) .*workbook §(\d+\.\d+), p\. (\d+)(?:; table §\d+\.\d+, p\. (\d+))?"
)


def citations(answers_pdf: Path, section_pages: bool = False) -> dict[str, tuple[str, int]]:
    """Exercise → (workbook section, page of the result's table) as the compiled key prints
    them; AdamW's cite the worked section's page and then the table's. `section_pages`: the
    page the key gives for the section instead. (A citation that wraps onto a second line is
    not read.)"""
    text = subprocess.run(
        ["pdftotext", "-layout", str(answers_pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    return {
        ex: (sec, int(page if section_pages or not table else table))
        for ex, sec, page, table in CITED.findall(text)
    }


def key_cites_result_pages(folder: Path, pages: dict[str, int], numbers: dict[str, str]) -> None:
    """The key in `folder` cites each exercise's result at the page of its table in the
    workbook (`pages`: its labels; `numbers`: step name → exercise), more than 150 of them
    read, and no reference is left undefined."""
    from workbook.render.base import key

    cited = citations(folder / "answers.pdf")
    checked = 0
    for name, ex in numbers.items():
        if ex in cited:  # a citation wrapped onto two lines is not read here
            assert cited[ex][1] == pages[f"r:{key(name)}"], (ex, name)
            checked += 1
    assert checked > 150
    assert "undefined" not in (folder / "answers.log").read_text()


def pages_with(pdf: Path, needle: str) -> list[int]:
    """The (0-based) pages whose text, as PyMuPDF reads it, holds `needle`: where to look
    closer with pdfplumber, which reads some 10 pages a second, PyMuPDF some 500."""
    import pymupdf

    with pymupdf.open(pdf) as doc:
        return [page.number for page in doc if needle in page.get_text()]


def read_pdf_text(pdf: Path) -> str:
    return subprocess.run(
        ["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="session")
def pdf_texts(default_build: Path) -> dict[str, str]:
    """pdftotext of each default document, by name."""
    return {
        n: read_pdf_text(default_build / f"{n}.pdf") for n in ("workbook", "exercises", "answers")
    }
