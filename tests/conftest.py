"""Shared fixtures: the default build of all three documents, made once per test session."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from workbook import cli, engine
from workbook.config import Config
from workbook.printed import Book
from workbook.trace import Trace


@pytest.fixture(scope="session")
def trace() -> Trace:
    """The default step."""
    return engine.run(Config())


@pytest.fixture(scope="session")
def book(trace: Trace) -> Book:
    """The default step as printed: hand arithmetic, 4 digits."""
    return Book(trace)


@pytest.fixture(scope="session")
def default_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build/ for the default config: workbook, exercises and answer key, compiled."""
    out = tmp_path_factory.mktemp("build")
    assert cli.main(["build", "--output", str(out), "--quiet"]) == 0
    return out


def citations(answers_pdf: Path) -> dict[str, tuple[str, int]]:
    """Exercise → (workbook section, page) as the compiled key prints them (a citation that
    wraps onto a second line is not read)."""
    text = subprocess.run(
        ["pdftotext", "-layout", str(answers_pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    found = re.findall(r"Exercise (\d+\.\d+) .*workbook §(\d+\.\d+), p\. (\d+)", text)
    return {ex: (sec, int(page)) for ex, sec, page in found}


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
