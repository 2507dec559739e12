"""A rerun compiles only what changed: nothing when nothing did, exactly the documents a
setting changes, passes started from the previous layout that still end on the right page
numbers, and the key's passes beside the workbook's giving the key a sequential build gives."""

from __future__ import annotations

import csv
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import classroom_build, copy_of, key_cites_result_pages
from pypdf import PdfReader

from workbook import cli, engine
from workbook import compile as tex
from workbook.config import preset
from workbook.render.base import exercise_numbers
from workbook.texrun import Cores

FAST = ["--detail", "results"]
CLASS = ["--preset", "classroom"]  # a small model, for tests of how passes are run
DOCS = ("workbook", "exercises", "answers")


def build(out: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Build into `out`; what it said on stderr."""
    capsys.readouterr()
    assert cli.main(["build", "-o", str(out), *FAST, *args]) == 0
    return capsys.readouterr().err


def compiled(err: str) -> list[str]:
    return re.findall(r"compiled (\w+)\.pdf", err)


def files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


@pytest.mark.tex
def test_a_rerun_with_nothing_changed_compiles_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], results_build: Path
) -> None:
    before = files(copy_of(results_build, tmp_path))  # as build(tmp_path, capsys) makes it
    again = build(tmp_path, capsys)
    assert compiled(again) == []
    assert [f"{n}.pdf is up to date" in again for n in DOCS] == [True] * 3
    assert "computed the step" not in again  # known from the settings alone
    assert files(tmp_path) == before  # every file byte for byte, the PDFs included
    forced = build(tmp_path, capsys, "--force")
    assert sorted(compiled(forced)) == sorted(DOCS)


@pytest.mark.tex
def test_a_changed_setting_recompiles_exactly_the_documents_it_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], results_build: Path
) -> None:
    before = files(copy_of(results_build, tmp_path))  # as build(tmp_path, capsys) makes it
    err = build(tmp_path, capsys, "--scaffold", "none")  # the exercises alone change
    assert compiled(err) == ["exercises"]
    assert "workbook.pdf is up to date" in err and "answers.pdf is up to date" in err
    after = files(tmp_path)
    for name in ("workbook.pdf", "workbook.tex", "answers.pdf", "answers.tex"):
        assert after[name] == before[name], name
    assert after["exercises.pdf"] != before["exercises.pdf"]
    # the unchanged documents now record these settings: the next rerun makes nothing
    assert compiled(build(tmp_path, capsys, "--scaffold", "none")) == []


@pytest.mark.tex
def test_passes_from_a_stale_aux_of_other_settings_end_on_the_right_pages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The output folder's .aux and .toc are another model's (two layers: every page and
    label elsewhere); the new build starts from them and must still cite each result's page
    in the new workbook, as a workbook compiled afresh has it. (The classroom's model: the
    passes do the same whatever the model, on a quarter of the default's pages.)"""
    pair = ["--only", "workbook,answers", *CLASS]  # the exercises cite no page
    build(tmp_path, capsys, "--layers", "2", *pair)
    err = build(tmp_path, capsys, "--digits", "3", *pair)
    assert sorted(compiled(err)) == ["answers", "workbook"]
    fresh = tmp_path / "fresh"
    tex.compile_document((tmp_path / "workbook.tex").read_text(), fresh, "workbook")
    pages = tex.label_pages(fresh / "workbook.aux")
    assert tex.label_pages(tmp_path / "workbook.aux") == pages
    trace = engine.run(preset("classroom"))
    numbers = exercise_numbers(trace, tuple(ch.number for ch in trace.chapters))
    key_cites_result_pages(tmp_path, pages, numbers)


@pytest.mark.tex
def test_the_key_beside_the_workbook_is_the_key_built_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Byte for byte (fixed dates): the key whose passes ran beside the workbook's, from no
    labels and from the labels of another workbook, and the key compiled once the
    workbook was complete. (The classroom's model, as above.)"""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "946684800")
    together, stale, alone = tmp_path / "together", tmp_path / "stale", tmp_path / "alone"
    pair = ["--only", "workbook,answers", *CLASS]  # the exercises have no part in it
    assert "answers.pdf beside the workbook" in build(together, capsys, *pair)
    build(stale, capsys, "--digits", "3", *pair)
    assert "answers.pdf beside the workbook" in build(stale, capsys, *pair)
    build(alone, capsys, "--only", "workbook", *CLASS)
    err = build(alone, capsys, "--only", "answers", *CLASS)
    assert "beside the workbook" not in err and compiled(err) == ["answers"]
    key = (alone / "answers.pdf").read_bytes()
    assert (together / "answers.pdf").read_bytes() == key
    assert (stale / "answers.pdf").read_bytes() == key
    assert (stale / "workbook.pdf").read_bytes() == (alone / "workbook.pdf").read_bytes()


@pytest.mark.tex
def test_one_new_student_compiles_one_handout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = tmp_path / "roster.csv"
    out = tmp_path / "lesson"
    argv = ["handouts", "--preset", "classroom", "--sections", "2.1", "--roster", str(roster)]
    argv += ["-o", str(out)]

    def run(*ids: str) -> str:
        roster.write_text("id,name\n" + "".join(f"{i},Name {i}\n" for i in ids))
        capsys.readouterr()
        assert cli.main(argv) == 0
        return capsys.readouterr().err

    first = run("a1", "b2")
    assert "2 handout(s) compiled: a1.pdf, b2.pdf" in first and "kept" not in first
    before = {p: (out / p).read_bytes() for p in ("students/a1.pdf", "students/b2.pdf")}
    again = run("a1", "b2")
    assert "are up to date" in again and "compiled" not in again
    more = run("a1", "b2", "c3")
    assert "1 handout(s) compiled: c3.pdf" in more
    assert "2 handout(s) up to date, kept: a1.pdf, b2.pdf" in more
    assert {p: (out / p).read_bytes() for p in before} == before
    rows = list(csv.DictReader((out / "variants.csv").open(encoding="utf-8")))
    assert [r["student_id"] for r in rows] == ["a1", "b2", "c3"]
    assert {r["student_id"] for r in csv.DictReader((out / "grades.csv").open())} == {
        "a1",
        "b2",
        "c3",
    }
    fewer = run("c3")
    assert "1 handout(s) up to date, kept: c3.pdf" in fewer
    assert sorted(p.name for p in (out / "students").iterdir()) == ["c3.pdf"]


def entries(toc: str) -> list[tuple[str, str]]:
    """The lines of a .toc, each its kind and its number (or its title when unnumbered)."""
    found = re.findall(r"^\\contentsline \{(\w+)\}\{(.*)\}\{\d+\}\{[^{}]*\}%$", toc, re.M)
    return [(kind, re.sub(r"\\numberline \{([\d.]+)\}.*", r"\1", t)) for kind, t in found]


SMALL_BOOK = r"""\documentclass{book}
\usepackage{hyperref}
\begin{document}
\tableofcontents
\chapter*{Before}\addcontentsline{toc}{chapter}{Before}
\setcounter{part}{1}
\part{Second part}
\setcounter{chapter}{4}
\chapter{Fifth $W_{\mathrm{lm}}$}
\section{One}\section{Two, with \texorpdfstring{$x^2$}{x2}}
\section*{Not listed}
\chapter{Sixth}
\section{Three}
\end{document}
"""


@pytest.mark.tex
def test_the_contents_a_pass_reads_first_are_those_it_writes(
    tmp_path: Path, default_build: Path
) -> None:
    """The .toc made from an .aux is the one LaTeX wrote beside it, byte for byte; the
    contents made from the source have every line of the real ones, numbered alike, only
    the page numbers open (so the first pass sets the contents as long as they will be)."""
    (tmp_path / "doc.tex").write_text(SMALL_BOOK)
    for _ in range(2):
        subprocess.run(
            tex.PDFLATEX,
            cwd=tmp_path,
            env=tex.isolated_env(tmp_path),
            check=True,
            capture_output=True,
        )
    written = (tmp_path / "doc.toc").read_bytes()
    assert tex.toc_of((tmp_path / "doc.aux").read_bytes()) == written
    assert entries(tex.provisional_toc(SMALL_BOOK)) == entries(written.decode()) != []
    for name in DOCS:
        aux = (default_build / f"{name}.aux").read_bytes()
        real = tex.toc_of(aux).decode("latin-1")
        made = tex.provisional_toc((default_build / f"{name}.tex").read_text())
        assert entries(made) == entries(real), name
        assert len(entries(real)) > 15


NEWLABEL = re.compile(r"\\newlabel\{([^{}]*)\}\{\{([^{}]*)\}\{(\d+)\}")


def numbered(aux: str) -> dict[str, tuple[str, str]]:
    """Each label of an .aux: the number \\ref prints, and the page \\pageref prints."""
    return {key: (number, page) for key, number, page in NEWLABEL.findall(aux)}


@pytest.mark.tex
def test_the_labels_a_first_pass_reads_are_numbered_as_those_it_writes(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, default_build: Path
) -> None:
    """Every label a document writes, made from its source before any pass: each one a
    reference prints with the section number it gets, nearly every page with as many
    digits as its own. The first pass then breaks its lines as the last does: the
    classroom's workbook, whose first pass once set "??" and broke lines the second
    pass set anew, compiles afresh in two passes, on the pages of the shared build."""
    classroom = classroom_build(tmp_path_factory)
    wrong = total = 0
    for folder in (default_build, classroom):
        for name in DOCS:
            source = (folder / f"{name}.tex").read_text()
            real = numbered((folder / f"{name}.aux").read_text())
            pages = PdfReader(folder / f"{name}.pdf").get_num_pages()
            made = numbered(tex.provisional_aux(source, pages))
            assert made.keys() == real.keys() and real, name
            referenced = set(re.findall(r"\\ref\{([^{}]*)\}", source)) & real.keys()
            assert {k: made[k][0] for k in referenced} == {k: real[k][0] for k in referenced}
            wrong += sum(len(made[k][1]) != len(real[k][1]) for k in real)
            total += len(real)
    assert wrong <= total / 10, f"{wrong} of {total} pages with other digits"
    source = (classroom / "workbook.tex").read_text()
    made = tex.compile_document(source, tmp_path, "workbook", pages=100)
    assert made.passes == 2
    assert tex.label_pages(tmp_path / "workbook.aux") == tex.label_pages(classroom / "workbook.aux")


def test_the_most_urgent_waiting_pass_gets_the_next_core() -> None:
    cores = Cores(1)
    order: list[int] = []
    cores.acquire(0)

    def wait(priority: int) -> None:
        with cores.held(priority):
            order.append(priority)

    threads = [threading.Thread(target=wait, args=(p,)) for p in (2, 1, 0)]
    for t in threads:
        t.start()
        time.sleep(0.05)  # each waiting before the next comes
    cores.release()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2]


def test_a_feed_waits_for_files_other_than_those_given() -> None:
    feed = tex.Feed("workbook.aux")
    assert feed.next(None, wait=False) == (None, False)
    feed.offer(b"one")
    assert feed.next(None, wait=True) == ({"workbook.aux": b"one"}, False)
    later = threading.Timer(0.1, feed.offer, args=(b"two",), kwargs={"final": True})
    later.start()
    assert feed.next({"workbook.aux": b"one"}, wait=True) == ({"workbook.aux": b"two"}, True)
    feed.offer(b"three")  # after the final offer, nothing changes
    assert feed.final() == {"workbook.aux": b"two"}
    failed = tex.Feed("workbook.aux")
    failed.fail(tex.TexFailedError("LaTeX failed on workbook.tex"))
    with pytest.raises(tex.TexFailedError):
        failed.final()
