"""Layout rules of the printed pages: zero rows, the AdamW chapter, numbering, notation."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import classroom_build, pages_with, read_pdf_text

from workbook import cli
from workbook.config import Config
from workbook.render import Answers, Exercises, Options, Worked

tex = pytest.mark.tex


@pytest.fixture(scope="module")
def worked(trace) -> str:
    return Worked(Config(), trace, Options()).tex()


def test_a_row_that_is_zero_by_construction_is_stated_once(worked: str) -> None:
    # the last position predicts nothing: row 5 of dL/dlogits, and every row computed from it
    assert re.search(
        r"\\ex\{\(\\mathrm\{d\}\\,\\mathrm\{logits\}\)_\{5,j\} = 0 .*predicts nothing", worked
    )
    line = r"\ex{(\mathrm{d}\,{\mathrm{ln\_out}})_{5,j} = 0 \text{ for every } j"
    assert line in worked and "row 5 of $\\mathrm{d}\\,\\mathrm{logits}$ is zero" in worked
    assert r"\ex{(\mathrm{d}\,{\mathrm{ln\_out}})_{5,1} = " not in worked
    assert r"\ex{\overline{\mathrm{d}\hat{x}}_{5} = 0\quad\text{(row 5 of" in worked
    # rows that are not zero are still worked element by element
    assert r"\ex{(\mathrm{d}\,{\mathrm{ln\_out}})_{4,1} = " in worked


def test_adamw_table_drops_the_columns_t1_makes_copies(worked: str) -> None:
    table = worked[worked.index(r"\begin{adamtable}") :]
    assert table.startswith(r"\begin{adamtable}{5}")
    head = table.split("\n")[1]
    assert r"\hat m" not in head and r"\hat v" not in head and r"\theta'" in head
    assert head.startswith(
        r"$E_{\mathrm{token}}$ & $\theta\,$ & $g\,$ & $m\,\times 10^{-3}$ & $v\,"
    )
    assert r"\hat m = g" in worked and r"\hat v = v/(1-\beta_2)" in worked


def test_adamw_exercise_asks_one_row_per_tensor(trace) -> None:
    doc = Exercises(Config(), trace, Options()).tex()
    chapter = doc[doc.index(r"\chapter{AdamW update}") :]
    rows = re.findall(r"^\$\((W_O)\)_\{(\d+),(\d+)\}\$ &", chapter, re.M)
    assert len(rows) == 16 and len({r[1] for r in rows}) == 1  # one row of W_O, 16 columns
    assert len(re.findall(r"^\$\(b_1\)_\{\d+\}\$ &", chapter, re.M)) == 16
    # θ and g given, then m, v, θ′ to fill in
    assert re.search(r"\\begin\{adamgrid\}\{r\|r\|(W\{[\d.]+pt\}\|){3}\}", chapter)


def test_notation_has_one_meaning_per_mark(worked: str) -> None:
    assert "J^{(" not in worked and r"$J_{1}$, position 1" in worked  # heads alone in ()
    assert r"s^{\max}_{1} = \max_j" in worked and "m_{1} = \\max_j" not in worked
    assert r"p_{i,\,t_{i+1}+1}" in worked  # token t sits in column t + 1


def test_inputs_a_line_uses_are_cited(worked: str) -> None:
    def uses(label: str) -> str:
        start = worked.index(rf"\label{{s:{label}}}")
        return worked[worked.index(r"\uses{", start) :].split("\n", 1)[0]

    assert r"$\mu$ (\S\ref{s:ln-mean}" in uses("ln-var")
    jac = uses("d-residual")
    assert r"$\hat{x}$" in jac and r"$\sigma^2$" in jac
    assert "$A^{(1)}$" in uses("d-scores-0")
    assert r"$u$ and $\tanh u$ as written in \S\ref{s:ffn-act}" in uses("d-ffn-hidden")


@tex
def test_a_selection_keeps_the_workbooks_numbers(tmp_path: Path) -> None:
    argv = ["build", "-o", str(tmp_path), "-q", "--only", "exercises", "--chapters", "8"]
    assert cli.main(argv) == 0
    text = read_pdf_text(tmp_path / "exercises.pdf")
    assert "Part II" in text and "Part I\n" not in text
    assert re.search(r"\n8\s+Loss gradients", text) and "Exercise 8.1" in text
    assert "\n1 Loss gradients" not in text


@tex
def test_a_page_of_working_space_names_its_exercise(
    pdf_texts: dict[str, str], default_build: Path
) -> None:
    """The running head of a page names the exercise whose working space it continues, with
    that exercise's chapter, and the exercises that begin on it, first to last."""
    pages = pdf_texts["exercises"].split("\f")
    laid_out = subprocess.run(
        ["pdftotext", "-layout", str(default_build / "exercises.pdf"), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\f")
    heads = [" ".join(p.strip().split("\n", 1)[0].split()) for p in laid_out]
    continued = [k for k, p in enumerate(pages) if "(continued)" in p]
    assert continued
    for k in continued:
        n = re.search(r"Exercise (\d+\.\d+) \(continued\)", pages[k]).group(1)
        started = [j for j, p in enumerate(pages) if re.search(rf"Exercise {n}\n", p)]
        assert started and started[0] < k, f"page {k + 1}: Exercise {n} starts later"
        # the running head names the exercise's chapter, even when the next one starts lower
        assert heads[k].startswith(f"{n.split('.')[0]}. "), f"page {k + 1}: {heads[k]!r}"
    named = 0
    for k, page in enumerate(laid_out[:-1]):
        # a heading: its number, then a wide space and the title ("columns 9–16" continues)
        begun = re.findall(r"^\s*Exercise (\d+\.\d+) {2,}\S", page, re.M)
        head = heads[k]
        if not re.search(r"\d$", head):  # a chapter's first page: no running head
            continue
        assert ("·" in head) == ("(continued)" in head and bool(begun)), (k + 1, head)
        if begun:
            many = f"Exercises {begun[0]}–{begun[-1]}"
            assert (f"Exercise {begun[0]} " if len(begun) == 1 else many) in head, head
            named += 1
    assert named > 20


def test_answer_key_prints_what_each_step_writes_on_the_way(trace, book) -> None:

    doc = Answers(Config(), trace, Options()).tex()
    ln_hat = doc[doc.index(r"\answer{6.4}") : doc.index(r"\answer{6.5}")]
    sigma = book.part_table(trace.step("ln_hat"), "sigma", per_row=True)
    assert r"$\tilde{\sigma}$ written for $\hat{x}$ per row" in ln_hat
    assert " & ".join(f"${n.cell}$" for n in sigma) in ln_hat  # 0.1089, 0.1101, …
    softmax = doc[doc.index(r"\answer{3.3}") : doc.index(r"\answer{3.4}")]
    assert r"$s^{\max}$, $e_j$ and $\sum_j e_j$ written for $A^{(1)}$" in softmax
    # one row per row of A, as the exercise's grid: s^max, e_1 … e_5 (masked: 0), Σe
    step = trace.step("attn.0")
    s_max, e, total = (book.part_table(step, k, r) for k, r in (("max", 1), ("e", 0), ("sum", 1)))
    row = [s_max[1].value, e[1, 0].value, e[1, 1].value, 0, 0, 0, total[1].value]
    assert r"\rowhead{2} & " + " & ".join(f"${x}$" for x in row) in softmax


def test_exercises_give_the_u_and_tanh_u_that_gelu_derivative_reuses(trace) -> None:
    doc = Exercises(Config(), trace, Options()).tex()
    assert r"\label{g:10:ffn-act:written}" in doc
    assert r"(given, p.~\pageref{g:10:ffn-act:written})" in doc


def test_every_block_of_a_split_table_says_what_it_is(trace) -> None:
    doc = Worked(Config(), trace, Options(detail="results")).tex()
    block = doc[doc.index(r"\label{s:d-W1}") :]
    block = block[block.index("columns 9--16") - 200 : block.index("columns 9--16")]
    assert r"$\mathrm{d}{W_1}$\enspace entries $\times 10^{-3}$\enspace \textit{rows" in block


# --- a small model's pages: short lines in columns, small tables side by side ---------


def test_short_worked_lines_may_go_in_columns_long_ones_never() -> None:
    from workbook.render.worked import SHORT_LINE, work_block

    short = [f"X_{{{i},1}} = 1 + 2 = 3" for i in range(4)]
    assert work_block(short)[0] == r"\worklines{"
    assert work_block(short[:3])[0] == r"\begin{work}"  # too few to be worth columns
    long = [*short, "x" * (SHORT_LINE + 1)]
    assert work_block(long)[0] == r"\begin{work}"


def test_single_block_tables_run_side_by_side_split_ones_stay_stacked() -> None:
    from workbook.render.matrix import side_by_side

    one = "\\begin{mtab}{r}\nA\n\\end{mtab}"
    split = one + "\n" + one  # a table in two column blocks
    assert side_by_side([one, one]).startswith(r"\begin{tablerun}")
    assert side_by_side([one]) == one
    assert side_by_side([one, split]) == one + "\n" + split


@tex
@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_a_small_models_short_lines_are_set_in_columns(
    tmp_path_factory: pytest.TempPathFactory, paper: str
) -> None:
    """Classroom §1.4 (X = E_token + E_pos): its 16 lines fill two columns, row by row,
    each line whole, on either paper; the Jacobians J_1 … J_4 stand two to a row."""
    import pdfplumber

    out = classroom_build(tmp_path_factory, paper)
    pdf_path = out / "workbook.pdf"
    with pdfplumber.open(pdf_path) as pdf:
        # pdfplumber reads only the pages PyMuPDF finds the words on: all of them is slow
        found = pages_with(pdf_path, "Add the position embeddings")
        page = next(
            p
            for p in (pdf.pages[k] for k in found)
            if re.search(r"Add the position embeddings\n", p.extract_text())
        )
        # the X that starts each worked line (math italic at the work's 9 pt)
        starts = [
            round(c["x0"])
            for c in page.chars
            if c["text"] == "X" and "MathItalic9" in c["fontname"]
        ]
        left = min(starts)
        right = [x for x in starts if x > left + 150]
        # eight lines on the left (and the result table's title), eight on the right
        assert starts.count(left) == 9 and len(right) == 8 and len(set(right)) == 1, starts
        text = "\n".join(pdf.pages[k].extract_text() for k in pages_with(pdf_path, "position 2"))
    assert re.search(r"J1, position 1 J2, position 2", text), "J_1 and J_2 side by side"


HEADING = re.compile(r"^(Exercises|Given|Written on the way:|\d+\.\d+ [A-Z][a-z].*)$")


def headings_at_a_page_foot(text: str) -> list[tuple[int, str]]:
    """Pages (1-based) whose last line above the page number is a heading."""
    found = []
    for number, page in enumerate(text.split("\f"), start=1):
        lines = [x.strip() for x in page.splitlines() if x.strip()]
        if len(lines) < 2 or "Contents" in lines[0] or any(". . ." in x for x in lines):
            continue  # the contents list its headings, of course
        last = lines[-2] if re.fullmatch(r"\d+|page \d+", lines[-1]) else lines[-1]
        if HEADING.match(last) and "=" not in last:
            found.append((number, last))
    return found


@tex
def test_no_heading_ends_a_page_of_the_default_documents(pdf_texts: dict[str, str]) -> None:
    for name, text in pdf_texts.items():
        assert headings_at_a_page_foot(text) == [], name


@tex
def test_no_heading_ends_a_page_of_the_classroom_documents(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    out = classroom_build(tmp_path_factory)
    for name in ("workbook", "exercises", "answers"):
        found = headings_at_a_page_foot(read_pdf_text(out / f"{name}.pdf"))
        assert found == [], (name, found)
