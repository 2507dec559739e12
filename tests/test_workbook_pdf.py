"""The worked workbook: what the default build prints, and how the build fails."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader
from test_trace import SEED_CHAPTERS

from workbook import build as build_mod
from workbook import cli, engine
from workbook.config import Config
from workbook.printed import Book
from workbook.render import Options, Worked

tex = pytest.mark.tex


def plain(text: str) -> str:
    """pdftotext output without white space, with ASCII minus signs."""
    return re.sub(r"\s+", "", text.replace("\u2212", "-"))


@pytest.fixture(scope="module")
def default_text(pdf_texts: dict[str, str]) -> str:
    return pdf_texts["workbook"]


@tex
def test_default_build_prints_the_seed_loss(default_text: str) -> None:
    assert "1.8299" in default_text


@tex
def test_q_head1_element_11_is_expanded_pair_by_pair(default_text: str) -> None:
    book = Book(engine.run(Config()))
    X, W = book.nums("X"), book.nums("W_Q.0")
    pairs = "+".join(f"({X[0, k].cell})({W[k, 0].cell})" for k in range(16))
    expected = f"={pairs}={book.num('Q.0', (0, 0)).cell}"
    # 4 significant digits: the seed's 0.0871 is 0.08711, its −0.0179 is −0.01788
    assert expected.startswith("=(0.1473)(0.08711)+(0.1281)(-0.07453)+(0.1995)(0.0002756)+")
    assert expected.endswith("=-0.01788")
    assert expected in plain(default_text)


@tex
def test_outline_has_the_13_chapters_in_order(default_build: Path) -> None:
    reader = PdfReader(default_build / "workbook.pdf")

    def titles(items) -> list[str]:
        out = []
        for it in items:
            out += titles(it) if isinstance(it, list) else [it.title]
        return out

    outline = titles(reader.outline)
    found = [
        next(i for i, s in enumerate(outline) if s.endswith(title)) for _, title in SEED_CHAPTERS
    ]
    assert found == sorted(found)
    assert any(s.startswith("Part I") or "Forward pass" in s for s in outline)


@tex
def test_default_build_has_no_overfull_hbox(default_build: Path) -> None:
    log = (default_build / "workbook.log").read_text()
    assert "Output written on" in log
    assert "Overfull" not in log and "Underfull" not in log


@tex
def test_every_page_number_fits_8pt_rule(default_build: Path) -> None:
    """No font below 8 pt is used anywhere in the PDF (sizes from pdffonts are not given,
    so read the log's font list: cmr5/cmr6/cmr7 are the 5-7 pt designs)."""
    log = (default_build / "workbook.log").read_text()
    assert not re.search(r"lmr(5|6|7)\b|cmr(5|6|7)\b|lmmi(5|6|7)\b", log)


@tex
def test_latex_error_exits_4_and_keeps_the_previous_pdf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    previous = tmp_path / "workbook.pdf"
    previous.write_bytes(b"%PDF-1.5 previous build")
    broken = "\\documentclass{article}\\begin{document}\\undefinedcommandhere\\end{document}\n"
    monkeypatch.setattr(build_mod.Builder, "source", lambda self, name, trace: broken)
    assert cli.main(["build", "--output", str(tmp_path), "--quiet", "--only", "workbook"]) == 4
    err = capsys.readouterr().err
    assert "Undefined control sequence" in err
    assert "Traceback" not in err
    assert previous.read_bytes() == b"%PDF-1.5 previous build"
    assert not list(tmp_path.glob(".workbook-*")), "the private build folder is cleaned up"


def test_missing_tex_exits_3_with_one_line(tmp_path: Path) -> None:
    # The venv's own interpreter, started by its path: a copy or symlink elsewhere would no
    # longer find the venv (pyvenv.cfg sits beside the real path). PATH holds no TeX.
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHOME"} | {"PATH": str(empty)}
    run = subprocess.run(
        [sys.executable, "-m", "workbook", "build", "-o", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 3, run.stderr
    assert run.stderr.count("\n") == 1 and "apt-get install" in run.stderr
    assert not (tmp_path / "workbook.pdf").exists()


def test_tex_only_writes_source_and_no_pdf(tmp_path: Path) -> None:
    assert cli.main(["build", "-o", str(tmp_path), "--tex-only", "-q", "--detail", "results"]) == 0
    assert (tmp_path / "workbook.tex").read_text().startswith("\\documentclass")
    assert not (tmp_path / "workbook.pdf").exists()


def test_detail_levels_choose_how_much_is_worked() -> None:
    c = Config()
    t = engine.run(c)
    docs = {d: Worked(c, t, Options(detail=d)).tex() for d in ("full", "sample", "results")}
    last_row = r"\ex{Q^{(1)}_{5,8} = "
    first_row = r"\ex{Q^{(1)}_{1,1} = "
    assert last_row in docs["full"] and first_row in docs["full"]
    assert first_row in docs["sample"] and last_row not in docs["sample"]
    assert first_row not in docs["results"]
    assert len(docs["results"]) < len(docs["sample"]) < len(docs["full"])


def test_every_step_of_the_trace_has_a_section() -> None:
    c = Config()
    t = engine.run(c)
    doc = Worked(c, t, Options(detail="results")).tex()
    adam = ("m.", "v.", "m_hat.", "v_hat.", "updated.")
    for step in t.steps:
        if step.chapter != 13:
            assert f"\\label{{s:{re.sub(r'[^A-Za-z0-9]', '-', step.name)}}}" in doc, step.name
        else:
            assert step.name.startswith(adam)


def test_digits_option_changes_printed_precision() -> None:
    c = Config()
    t = engine.run(c)
    doc = Worked(c, t, Options(detail="sample", digits=6)).tex()
    line = doc[doc.index(r"\ex{Q^{(1)}_{1,1} = ") :].split("\n", 1)[0]
    assert "(0.147328)(0.0871086)" in line and line.endswith("= -0.0178797}")  # exact: −0.01787976


AWKWARD_VOCAB = "<PAD> <BOS> <EOS> 50% a_b x&y $5 #1 ~^\\"


def build_awkward(out: Path, *extra: str) -> int:
    """A build whose vocabulary and sentence hold every LaTeX special character (on the
    classroom's small model: the words are what is tested)."""
    argv = ["build", "-o", str(out), "-q", "--detail", "results", "--only", "workbook"]
    argv += ["--preset", "classroom"]
    argv += ["--vocab", AWKWARD_VOCAB, "--sentence", "50% a_b x&y ~^\\", "--max-len", "6"]
    return cli.main([*argv, *extra])


def test_user_text_is_escaped(tmp_path: Path) -> None:
    assert build_awkward(tmp_path, "--tex-only") == 0
    src = (tmp_path / "workbook.tex").read_text()
    pairs = (
        ("50%", r"50\%"),
        ("a_b", r"a\_b"),
        ("x&y", r"x\&y"),
        ("$5", r"\$5"),
        ("#1", r"\#1"),
        ("~^\\", r"\textasciitilde{}\textasciicircum{}\textbackslash{}"),
    )
    for raw, escaped in pairs:  # the token table prints every vocabulary word
        assert f"\\texttt{{{escaped}}}" in src
        assert f"\\texttt{{{raw}}}" not in src


@tex
@pytest.mark.skipif(shutil.which("latexmk") is None, reason="needs TeX")
def test_awkward_vocabulary_compiles(tmp_path: Path) -> None:
    assert build_awkward(tmp_path) == 0
    assert (tmp_path / "workbook.pdf").stat().st_size > 10_000


@tex
def test_quotes_and_ligature_pairs_print_as_typed(tmp_path: Path) -> None:
    words = ["it's", "<<x>>", "a--b", "q''", "^up", "`t", '"d"', "Łódź"]
    argv = ["build", "-o", str(tmp_path), "-q", "--only", "workbook", "--detail", "results"]
    argv += ["--preset", "classroom"]  # a small model: the title page is what is read
    argv += ["--vocab", ",".join(["<PAD>", "<BOS>", "<EOS>", *words])]
    argv += ["--sentence", " ".join(words), "--max-len", "12"]
    assert cli.main(argv) == 0
    title = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", str(tmp_path / "workbook.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert " ".join(words) in title  # not ’, «x», –, ”, ˆ or ‘


@tex
@pytest.mark.parametrize("doc", ["workbook", "exercises", "answers"])
def test_a_viewers_page_numbers_are_the_printed_ones(default_build: Path, doc: str) -> None:
    """The title page is labelled "title", so page 10 in a PDF viewer is printed page 10."""
    labels = PdfReader(default_build / f"{doc}.pdf").page_labels
    assert labels[:4] == ["title", "1", "2", "3"]
    assert labels[-1] == str(len(labels) - 1)
