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
