"""The package block as a TeX format: split from the source where it ends, made once into
the cache and kept to FORMATS_KEPT, and a document from it the document its whole source
makes; a format that fails is passed by and made anew."""

from __future__ import annotations

import os
from pathlib import Path

import pymupdf
import pytest

from workbook import cli, formats
from workbook import compile as tex

SMALL = ["--preset", "classroom", "--only", "exercises", "--sections", "2.1", "-q"]


def test_the_block_is_the_documentclass_and_package_lines() -> None:
    source = (
        "\\documentclass[10pt]{book}%\n\\usepackage[T1]{fontenc}%\n\\geometry{margin=2cm}%\n"
        "\\usepackage{hyperref}%\n\\newcommand{\\x}{1}\n\\usepackage{tikz}\n\\begin{document}\n"
    )
    block, rest = formats.split(source)
    assert block.count("\n") == 4 and rest.startswith("\\newcommand")
    read = formats.read_with_format(block, rest)
    assert read.startswith("\\endofdump%\n%\n%\n%\n\\newcommand")  # the source's line numbers
    assert read.count("\n") == source.count("\n")
    assert formats.split("\\usepackage{x}\n\\documentclass{book}\n") is None
    # a pdfTeX primitive's effect is not dumped: its line and the rest are read at run time
    pdf = "\\documentclass{book}\n\\usepackage{a}\n\\usepackage{b}\\pdftrailerid{}\n"
    assert formats.split(pdf) == ("\\documentclass{book}\n\\usepackage{a}\n", pdf[36:])


def test_no_home_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("HOME", raising=False)
    assert formats.cache_folder() is None
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not a place: as if unset
    assert formats.cache_folder() is None
    monkeypatch.setenv("HOME", "/home/x")
    assert formats.cache_folder() == Path("/home/x/.cache/workbook/formats")


def pages(pdf: Path) -> list[tuple]:
    with pymupdf.open(pdf) as doc:
        return [(p.get_text("rawdict"), p.get_links()) for p in doc] + [doc.get_toc()]


def format_of(log: Path) -> str:
    return log.read_text().split("preloaded format=", 1)[1].split()[0]


def built_from_a_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small build into tmp_path/a with a cache of its own, which it fills: the cache's
    formats folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cli.main(["build", "-o", str(tmp_path / "a"), *SMALL]) == 0
    assert format_of(tmp_path / "a" / "exercises.log") == formats.FORMAT_NAME
    return tmp_path / "cache" / "workbook" / "formats"


@pytest.mark.tex
def test_a_document_from_the_format_is_the_one_its_whole_source_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "946684800")
    folder = built_from_a_format(tmp_path, monkeypatch)
    made = list(folder.glob("*.fmt"))
    assert len(made) == 1
    # again, from the cached format: the same bytes
    assert cli.main(["build", "-o", str(tmp_path / "b"), *SMALL]) == 0
    again = (tmp_path / "b" / "exercises.pdf").read_bytes()
    assert again == (tmp_path / "a" / "exercises.pdf").read_bytes()
    assert list(folder.glob("*.fmt")) == made
    # with no cache, from the whole source: the same pages, text, places, links and outline
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("HOME")
    assert cli.main(["build", "-o", str(tmp_path / "c"), *SMALL]) == 0
    assert format_of(tmp_path / "c" / "exercises.log") == "pdflatex"
    assert pages(tmp_path / "c" / "exercises.pdf") == pages(tmp_path / "a" / "exercises.pdf")


@pytest.mark.tex
def test_a_damaged_format_is_passed_by_and_made_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (fmt,) = built_from_a_format(tmp_path, monkeypatch).glob("*.fmt")
    fmt.write_bytes(b"not a format")
    assert cli.main(["build", "-o", str(tmp_path / "b"), *SMALL]) == 0
    assert format_of(tmp_path / "b" / "exercises.log") == "pdflatex"
    assert not fmt.exists()  # dropped, and made again by the next build
    assert cli.main(["build", "-o", str(tmp_path / "c"), *SMALL]) == 0
    assert format_of(tmp_path / "c" / "exercises.log") == formats.FORMAT_NAME
    assert fmt.stat().st_size > 1_000_000


@pytest.mark.tex
def test_the_cache_keeps_the_most_recently_used_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "workbook" / "formats"
    folder.mkdir(parents=True)
    for k in range(formats.FORMATS_KEPT + 3):  # older ones, oldest first
        (folder / f"old{k:02d}.fmt").write_bytes(b"x")
        os.utime(folder / f"old{k:02d}.fmt", (1000 + k, 1000 + k))
    block, _ = formats.split("\\documentclass{article}\n\\usepackage{amsmath}\nx\n")
    made = formats.format_for(block, tex.pipeline(), tex.isolated_env)
    assert made is not None and made.parent == folder
    kept = sorted(p.name for p in folder.glob("*.fmt"))
    newest = [f"old{k:02d}.fmt" for k in range(4, formats.FORMATS_KEPT + 3)]
    assert kept == sorted([made.name, *newest])
    assert len(kept) == formats.FORMATS_KEPT
