"""Every accepted setting prints within the page: the width pre-flight refuses a step whose
plain-decimal cells cannot fit, and the rows of cells that can be split or left out are."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from conftest import read_pdf_text
from pylatex import NoEscape

from workbook import cli, engine
from workbook.compile import compile_document
from workbook.config import Config, load
from workbook.printed import Num
from workbook.render import Exercises, Options, Worked
from workbook.render.figures import falk
from workbook.render.matrix import Layout, cell_width, digits_within

# The classroom model with two blocks at init scale 1.72: an attention weight of 1.0e-77
# beside one of 1.000 in the same table, a cell of 81 digits.
SATURATED = ["--preset", "classroom", "--layers", "2", "--init-scale", "1.72", "--seed", "48"]
# Six classroom blocks at 0.9, 8 digits: accepted, with cells near the bound, AdamW tables
# and grids wider than the line, Falk schemes that do not fit and a parameter list longer
# than a page.
DEEP = {"preset": "classroom", "layers": 6, "init_scale": 0.9, "seed": 0}
DEEP_ARGS = [x for k, v in DEEP.items() for x in (f"--{k.replace('_', '-')}", str(v))]


def test_the_widest_cell_is_half_a_worked_line() -> None:
    assert [digits_within(Layout(p).widest_cell) for p in ("a4", "letter")] == [38, 40]


def test_a_step_whose_numbers_span_too_many_orders_is_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert cli.main(["build", "--tex-only", "-q", "-o", str(out), *SATURATED]) == 2
    assert capsys.readouterr().err == (
        "workbook: init_scale = 1.72: l0.attn.0 spans 77 orders of magnitude (1.000e+0 down "
        "to 1.009e-77), so its table would print cells of 81 digits, and at most 38 fit (half "
        "a worked line, on a4 paper); use an --init-scale nearer the default 0.1\n"
    )
    assert not out.exists()  # refused before anything is written
    assert cli.main(["build", "-q", "-o", str(out), "--paper", "letter", *SATURATED]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at most 40 fit (half a worked line, on letter paper)" in err
    assert not out.exists()


def test_a_handout_key_for_a_saturated_variant_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Variant 14 ("I like", seed 14) of the two-block classroom model at 1.72."""
    from workbook.classroom import Variant
    from workbook.config import load
    from workbook.handouts import Classroom, HandoutRequest
    from workbook.render import Options

    argv = ["handouts", "--preset", "classroom", "--layers", "2", "--init-scale", "1.72"]
    c = load(None, {"preset": "classroom", "layers": "2", "init_scale": "1.72"})
    opts = Options(scaffold="faded", givens="start")
    code = Variant(14, Classroom(c, HandoutRequest(tmp_path, opts)).fingerprint()).code
    assert cli.main([*argv, "--key-for", code, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "l0.attn.0 spans 46 orders of magnitude" in err and "cells of 50 digits" in err
    assert not (tmp_path / "out").exists()


NUMBER = re.compile(r"-?\d+\.\d+")


@pytest.mark.parametrize(
    ("argv", "at_least"),
    [
        ([], 13),  # the defaults: v of W_K^(2) prints 0.00000006205
        (["--preset", "classroom"], 11),
        (["--model", "gpt2", "--layers", "3"], 18),
        (["--layers", "2", "--init-scale", "0.77", "--seed", "25", "--digits", "8"], 38),
        ([*DEEP_ARGS, "--digits", "8"], 34),
    ],
)
def test_accepted_builds_print_every_cell_within_the_bound(
    tmp_path: Path, argv: list[str], at_least: int
) -> None:
    """The plain decimals of all three documents: the widest fits half a worked line, and it
    is as wide as the settings make it (so the search does see the tables)."""
    base = ["build", "--tex-only", "-q", "-o", str(tmp_path), "--detail", "sample"]
    assert cli.main([*base, *argv]) == 0
    numbers = [
        x
        for doc in ("workbook", "exercises", "answers")
        for x in NUMBER.findall((tmp_path / f"{doc}.tex").read_text())
    ]
    widest = max(numbers, key=cell_width)
    assert cell_width(widest) <= Layout().widest_cell, widest
    assert len(widest) >= at_least, widest


def test_a_falk_scheme_too_wide_for_the_page_is_left_out() -> None:
    def scheme(digits: int) -> str:
        x = Num(Decimal(f"0.{'0' * (digits - 4)}1234"))
        a = np.array([[x, x], [x, x]], dtype=object)
        return falk(a, a, x, (0, 0), names=("A", "B", "C"), caption="", layout=Layout())

    # 4 columns (two of A, two of B): 4 × (0.92 × 4.6 pt per digit + padding) against 484 pt
    assert r"\begin{falk}{cc|cc}" in scheme(24)
    assert scheme(30) == ""


@pytest.fixture(scope="module")
def deep() -> tuple[str, str]:
    c = load(None, DEEP)
    t = engine.run(c)
    opts = Options(digits=8, detail="sample")
    return Worked(c, t, opts).tex(), Exercises(c, t, opts).tex()


def adamw_part(doc: str, symbol: str, env: str) -> list[str]:
    """The blocks (environment openings and their heading rows) of one parameter's AdamW
    table or grid."""
    tables = re.findall(rf"\\begin\{{{env}\}}\{{([^\n]*)\}}\n([^\n]*)\n", doc)
    if env == "adamtable":
        return [head for _, head in tables if head.startswith(f"${symbol}$ &")]
    start = doc.index(f"AdamW update of ${symbol}$")
    end = doc.find(r"\exercise{", start + 1)
    return re.findall(r"\\begin\{adamgrid\}\{([^\n]*)\}\n", doc[start : end if end > 0 else None])


def test_an_adamw_table_too_wide_for_the_line_is_printed_in_blocks(deep) -> None:
    worked, _ = deep
    heads = adamw_part(worked, r"W_2^{[3]}", "adamtable")
    assert len(heads) == 2  # θ, g, m; then v, θ′
    columns = [re.findall(r"\$([^$]*?)\\,", h.split(" & ", 1)[1]) for h in heads]
    assert columns == [[r"\theta", "g", "m"], ["v", r"\theta'"]]
    rows = re.findall(r"^\$\(W_2\^\{\[3\]\}\)_\{\d+,\d+\}\$ &", worked, re.M)
    assert len(rows) == 2 * 4 * 8  # every element in each block
    assert len(adamw_part(worked, r"W_2^{[2]}", "adamtable")) == 1  # this one fits


def test_an_adamw_grid_too_wide_for_the_line_is_printed_in_blocks(deep) -> None:
    _, exercises = deep
    specs = adamw_part(exercises, r"W_2^{[3]}", "adamgrid")
    assert len(specs) == 2
    assert specs[0].startswith("r|r|")  # θ and g given, first
    assert "r|" not in specs[1]
    written = [re.findall(r"W\{([\d.]+)pt\}", s) for s in specs]
    assert sum(map(len, written)) == 3  # m, v, θ′ to fill in
    assert all(float(w) >= 34 for ws in written for w in ws)  # room to write


@pytest.mark.tex
def test_a_deep_build_near_the_bound_compiles_without_a_bad_box(tmp_path: Path) -> None:
    argv = ["build", "-o", str(tmp_path), "-q", "--detail", "sample", "--digits", "8"]
    assert cli.main([*argv, *DEEP_ARGS]) == 0
    for doc in ("workbook", "exercises", "answers"):
        log = (tmp_path / f"{doc}.log").read_text()
        bad = [line for line in log.splitlines() if line.startswith(("Overfull", "Underfull"))]
        assert bad == [], f"{doc}: {bad[:3]}"


@pytest.mark.tex
def test_contents_lines_hold_five_digit_page_numbers(tmp_path: Path, trace) -> None:
    """A deep or wide model's workbook runs to thousands of pages (the 8-layer GPT-2 one to
    1,704 with --detail sample): its contents still end every line inside the margin."""
    doc = Worked(Config(), trace, Options(detail="results")).skeleton()
    title = "A section whose title runs long enough to reach the page numbers of the contents"
    doc.append(NoEscape(r"\tableofcontents\clearpage\setcounter{page}{12345}"))
    doc.append(NoEscape(rf"\chapter{{A chapter}}\section{{{title}}}"))
    assert compile_document(doc.dumps(), tmp_path, "toc").overfull == 0
    assert "12345" in read_pdf_text(tmp_path / "toc.pdf").split("\f")[0]  # in the contents
