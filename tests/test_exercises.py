"""Exercises and answer key: same numbering, no leaks, honest tolerances."""

from __future__ import annotations

import re
import subprocess
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from conftest import citations
from pypdf import PdfReader

from workbook import cli
from workbook.config import Config
from workbook.hand import sig
from workbook.printed import Book
from workbook.render import Answers, Exercises, Options, Worked
from workbook.render.base import exercise_numbers, key

tex = pytest.mark.tex
EXERCISE = re.compile(r"Exercise (\d+\.\d+)")


@tex
def test_exercise_numbers_match_between_exercises_and_answers(pdf_texts: dict[str, str]) -> None:
    in_exercises = set(EXERCISE.findall(pdf_texts["exercises"]))
    in_answers = set(EXERCISE.findall(pdf_texts["answers"]))
    assert in_exercises, "no exercise numbers found"
    assert in_exercises == in_answers
    assert {"1.1", "2.1", "7.5", "13.16"} <= in_exercises and "13.18" not in in_exercises
    # AdamW's five steps of a tensor are one exercise: 16 of them, then the derivation
    assert "Exercise 13.17 AdamW: moments" in " ".join(pdf_texts["exercises"].split())


@tex
def test_no_computed_answer_leaks_into_the_exercises(
    pdf_texts: dict[str, str], default_build: Path, book: Book
) -> None:
    text = pdf_texts["exercises"].replace("\u2212", "-")
    source = (default_build / "exercises.tex").read_text()
    leaks = ["1.8299", book.num("loss").cell]
    leaks += [n.cell for n in book.nums("loss_per_position")]
    assert leaks[1:3] == ["1.830", "1.903"]
    for value in leaks:
        assert value not in text, value
        assert value not in source, value
    meta = PdfReader(default_build / "exercises.pdf").metadata or {}
    assert not any(v in str(meta.get(k, "")) for k in meta for v in leaks)


@tex
def test_givens_are_printed_in_the_exercises(default_build: Path, book: Book) -> None:
    layout = subprocess.run(
        ["pdftotext", "-layout", str(default_build / "exercises.pdf"), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout  # -layout: cells of a row stay on one line whatever their widths
    flat = re.sub(r"[ \t]+", " ", layout.replace("\u2212", "-"))
    row = " ".join(n.cell for n in book.nums("X")[0, :8])  # X row 1, first column block
    assert row in flat


@tex
def test_every_answer_is_the_workbooks_printed_value(default_build: Path, trace) -> None:
    """Under each answer stands the very table the workbook prints as that step's result."""
    worked = (default_build / "workbook.tex").read_text()
    answers = (default_build / "answers.tex").read_text()
    renderer = Worked(Config(), trace, Options())
    numbers = exercise_numbers(trace, tuple(range(1, 13)))
    for name, n in numbers.items():
        table = renderer.result_block(name)
        labelled = renderer.result_block(name, label=f"r:{key(name)}")  # where Uses points
        start = worked.index(f"\\label{{s:{key(name)}}}")
        end = worked.find("\\section", start)
        assert labelled in worked[start:end], f"workbook, {name}"
        a_start = answers.index(f"\\answer{{{n}}}")
        a_end = answers.find("\\answer{", a_start + 1)
        assert table in answers[a_start : a_end if a_end > 0 else None], f"Exercise {n} ({name})"


@tex
def test_answer_key_cites_the_workbook_page(default_build: Path, pdf_texts: dict[str, str]) -> None:
    section, page = citations(default_build / "answers.pdf")["2.1"]
    assert "undefined" not in (default_build / "answers.log").read_text()
    assert section == "2.2"  # 2.1 lists the chapter's parameters, 2.2 is Q of head 1
    # The title page is unnumbered, so printed page N is the PDF's (N + 1)th page. The page
    # cited is where the result's table is printed, which ends its section's working.
    pages = pdf_texts["workbook"].split("\f")
    printed_page = pages[page]
    body = [p if ". . ." not in p else "" for p in pages]  # not the contents
    start = next(k for k, p in enumerate(body) if "Queries of head 1" in p)
    assert start <= page and "Queries of head 2" not in "".join(body[start:page])
    assert "2. Q, K, V projections" in printed_page, "the running head names the chapter"
    assert re.search(rf"(^|\n){page}\n", printed_page), "and shows the page number"
    assert re.search(r"Q\(1\)\s+\[5 × 8\]", printed_page), "and Q(1)'s table heading"


@tex
def test_both_new_logs_have_no_overfull_hbox(default_build: Path) -> None:
    for name in ("exercises", "answers"):
        log = (default_build / f"{name}.log").read_text()
        assert "Output written on" in log
        assert "Overfull" not in log and "Underfull" not in log, name


def test_hand_tolerances_are_measured_on_a_ten_digit_calculator(trace, book: Book) -> None:
    """Under hand arithmetic the key is what the rules give: a learner following them can
    differ only where a 10-digit calculator rounds an intermediate differently."""
    tolerances = {s.name: book.tolerance(s) for s in trace.steps}
    assert set(tolerances.values()) <= {0, 1}
    assert tolerances["Q.0"] == tolerances["ln_hat"] == tolerances["d.residual"] == 0


def test_exact_tolerance_covers_redoing_from_printed_operands(trace) -> None:
    exact = Book(trace, arithmetic="exact")
    units = exact.tolerance(trace.step("Q.0"))
    assert units >= 1
    X = np.array(exact.shown("X"), dtype=float)
    W = np.array(exact.shown("W_Q.0"), dtype=float)
    key = np.array(exact.shown("Q.0"), dtype=float)
    written = np.vectorize(lambda x: float(sig(Decimal(x), 4)))(X @ W)  # as the learner writes
    unit = 10.0 ** (np.floor(np.log10(np.abs(key))) - 3)
    assert np.all(np.abs(written - key) <= units * unit * (1 + 1e-9))
    assert np.any(np.abs(written - key) > (units - 1) * unit * (1 + 1e-9))  # and is the worst
    # a sum of two rounded entries that nearly cancel keeps few of its digits
    assert exact.tolerance(trace.step("X")) > 1


def test_scaffolds_and_givens_change_the_exercises(trace) -> None:
    c = Config()

    def src(**kw) -> str:
        return Exercises(c, trace, Options(**kw)).tex()

    first = src()
    assert r"\example{Q^{(1)}_{1,1} = " in first
    assert r"\example{" not in src(scaffold="none")
    half = src(scaffold="half")
    assert r"\example{" not in half
    q = Book(trace).nums("Q.0")
    assert f"\\rowhead{{1}} & ${q[0, 0].cell}$ & ${q[0, 1].cell}$" in half  # row 1 given
    assert "\\rowhead{2} &  &  & " in half  # row 2 blank
    start = src(givens="start", chapters=(2, 3))
    assert "your answer to Exercise 2.1" in start  # Q of head 1 is carried forward
    chapter3 = start[start.index("Attention scores") :]
    assert "\\label{g:3:Q-0}" not in chapter3
    per_chapter = src(chapters=(2, 3))
    chapter3 = per_chapter[per_chapter.index("Attention scores") :]
    assert "\\label{g:3:Q-0}" in chapter3


def test_chapter_selection_numbers_stay_by_chapter(trace) -> None:
    doc = Answers(Config(), trace, Options(chapters=(3, 11))).tex()
    numbers = set(re.findall(r"\\answer\{(\d+\.\d+)\}", doc))
    assert numbers and {n.split(".")[0] for n in numbers} == {"3", "11"}
    assert "\\chapter{Q, K, V projections}" not in doc


def test_worked_view_keeps_every_chapter(trace) -> None:
    doc = Worked(Config(), trace, Options(chapters=(3,))).tex()
    assert "\\chapter{Q, K, V projections}" in doc


def test_only_builds_the_named_documents(tmp_path: Path) -> None:
    assert (
        cli.main(
            [
                "build",
                "-o",
                str(tmp_path),
                "-q",
                "--tex-only",
                "--only",
                "exercises,answers",
                "--detail",
                "results",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in tmp_path.glob("*.tex")) == ["answers.tex", "exercises.tex"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--only", "workbook,solutions"],
        ["--chapters", "0-3"],
        ["--chapters", "x"],
        ["--givens", "all"],
        ["--scaffold", "most"],
    ],
)
def test_bad_build_options_exit_2_with_one_line(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["build", "-o", str(tmp_path), "--tex-only", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


@tex
def test_no_undefined_references_in_any_default_document(default_build: Path) -> None:
    for name in ("workbook", "exercises", "answers"):
        log = (default_build / f"{name}.log").read_text()
        assert "undefined" not in log.lower(), name


@tex
def test_carry_forward_exercises_and_letter_paper_compile_cleanly(tmp_path: Path) -> None:
    argv = ["build", "-o", str(tmp_path), "-q", "--only", "exercises", "--givens", "start"]
    argv += ["--chapters", "2-4,11", "--paper", "letter", "--scaffold", "half"]
    assert cli.main(argv) == 0
    log = (tmp_path / "exercises.log").read_text()
    assert "Overfull" not in log and "undefined" not in log.lower()


# a Falk grid's first block: its title names the factors' places
FALK_GRID = re.compile(
    r"\\begin\{gridtab\}[^\n]*\n\\multicolumn[^\n]*to the left.*?\\end\{gridtab\}", re.S
)


def falk_grids(c: Config, **opts) -> tuple[str, list[str]]:
    from workbook import engine

    tex = Exercises(c, engine.run(c), Options(**opts)).tex()
    return tex, FALK_GRID.findall(tex)


def test_a_falk_grid_sits_between_the_printed_factors() -> None:
    """Classroom size: a product's grid has its left factor beside its rows and its right
    factor above its columns, as printed; its cells are blank but the worked example's. A
    product that reads the learner's own answer (a factor not printed) keeps the plain grid:
    printing the factor would give that answer away."""
    from workbook import engine
    from workbook.config import from_mapping

    c = from_mapping({"preset": "classroom"})
    t = engine.run(c)
    tex, grids = falk_grids(c)
    products = [s for s in t.steps if type(s).__name__ == "Contraction" and s.kind == "matmul"]
    assert len(products) == 42 and len(grids) == 22  # the rest read the learner's answers
    block = tex.split(r"\label{x:d-Q-0}")[1].split(r"\exercise")[0]  # dQ = dS K: dS is 11.x
    assert "to the left" not in block and r"\begin{gridtab}" in block
    book = Book(t)
    q = grids[0]  # Q^(1) = X W_Q^(1), [4×4]·[4×2]
    assert r"$X$ to the left, $W_Q^{(1)}$ above" in q
    rows = [r for r in q.splitlines() if r.startswith(r"\rowhead{")]
    above = [re.findall(r"\$(-?[\d.]+)\$", r) for r in rows if "k{=}" in r]
    assert above == [[x.cell for x in book.nums("W_Q.0")[k]] for k in range(4)]
    beside = [re.findall(r"\$(-?[\d.]+)\$", r) for r in rows if "k{=}" not in r]
    x = [[v.cell for v in row] for row in book.nums("X")]
    assert beside == [x[0] + [book.nums("Q.0")[0, 0].cell], *x[1:]]  # only the example filled


def test_a_long_inner_side_is_shown_in_part_and_a_wide_product_keeps_the_plain_grid(
    trace,
) -> None:
    tex, grids = falk_grids(Config())
    q = grids[0]  # X W_Q: 16 inner entries, shown as 1, 2, 3, …, 16
    assert re.findall(r"k\{=\}(\d+)", q)[:4] == ["1", "2", "3", "16"] and r"\cdots" in q
    assert len(grids) == 8  # the FFN's [5×64] and the like stay plain grids
    assert r"$X$ to the left, ${W_1}^{\top}$ above" not in tex


def test_layout_grid_prints_no_falk_grid(trace) -> None:
    tex, grids = falk_grids(Config(), layout="grid")
    assert not grids and "to the left" not in tex


@pytest.mark.parametrize(("flags", "falk"), [(["--layout", "grid"], False), ([], True)])
def test_layout_flag_reaches_the_exercises(tmp_path: Path, flags: list[str], falk: bool) -> None:
    argv = ["build", "--only", "exercises", "--tex-only", "-q", "-o", str(tmp_path)]
    assert cli.main([*argv, "--preset", "classroom", *flags]) == 0
    assert ("to the left" in (tmp_path / "exercises.tex").read_text()) == falk


def classroom_exercises(**opts) -> tuple[Exercises, str]:
    from workbook import engine
    from workbook.config import from_mapping

    c = from_mapping({"preset": "classroom"})
    ex = Exercises(c, engine.run(c), Options(**opts))
    ex.self_checks = True
    return ex, ex.tex()


def test_a_right_answer_always_passes_its_self_check() -> None:
    """Every stated check holds for the printed answers, within the stated tolerance: a
    learner who got every entry right is never told otherwise. Products (masked ones too)
    and the scaling check their column sums, over the entries a learner writes; a column
    with one such entry is left out, since its sum would be the answer."""
    from workbook.render import steps

    ex, tex = classroom_exercises()
    found = {}
    for part in tex.split("\\exercise{")[1:]:
        check = re.search(r"\\selfcheck\{(.*?)\}\n", part)
        found[part.split("}", 1)[0]] = check[1] if check else ""
    by_number = {num: ex.t.step(name) for name, num in ex.numbers.items()}
    checked = {
        "matmul": 0,
        "causal": 0,
        "scale": 0,
        "softmax": 0,
        "relation": 0,
        "product relation": 0,
    }
    for num, step in by_number.items():
        text = found.get(num, "")
        if getattr(step, "kind", "") == "softmax":
            tol = Decimal(re.fullmatch(r"each row .* adds up to 1, within \$([\d.]+)\$\.", text)[1])
            assert all(abs(sum(r) - 1) <= tol for r in ex.book.shown(step.name)), num
            checked["softmax"] += 1
            continue
        scale = getattr(getattr(step, "formula", None), "name", "") in ("scale", "scale_mask")
        if not (getattr(step, "kind", "") == "matmul" or scale):
            assert not text, num
            continue
        shown = ex.book.shown(step.name)
        rows, cols = shown.shape
        live = [
            [
                i
                for i in range(rows)
                if not (steps.masked_product(step, (i, j)) or steps.is_masked(step, (i, j)))
            ]
            for j in range(cols)
        ]
        want_cols = [j for j in range(cols) if len(live[j]) > 1]
        m = re.fullmatch(
            r"the (?:column )?sums? of (.*?) (?:comes? to \$(.*?)\$|are the same sums of .*? times"
            r" \$([\d.]+)\$|(?:is|are) (?:the column sums of .* times .*|the sum of .* for column"
            r" \$j\$ \(a cell marked -- is not in the sum\))),? .*within \$([\d.]+)\$( \(a column"
            r" with a single entry is not checked\))?\.",
            text,
        )
        assert m, (num, text)
        assert (len(want_cols) < cols) == bool(m[5]) == m[1].startswith("column"), text
        if m[2]:  # printed sums
            assert "10^" not in m[2], text  # plain decimals, as the handout writes them
            want = [Decimal(x) for x in m[2].split(r",\ ")]
        elif m[3]:  # the relation to the learner's own input: here, the right input
            checked["relation"] += 1
            x = ex.book.shown(step.operands[0])
            want = [sum((x[i, j] for i in live[j]), Decimal(0)) * Decimal(m[3]) for j in want_cols]
        else:  # a product of the learner's own factors: the relation, from the right ones
            assert "Exercise" in text, (num, text)
            checked["product relation"] += 1
            want = [x.value for x in ex.product_column_sums(step, live, want_cols)]
        assert len(want) == len(want_cols), num
        for j, w in zip(want_cols, want, strict=True):
            got = sum((shown[i, j] for i in live[j]), Decimal(0))
            assert abs(got - w) <= Decimal(m[4]), (num, j, got, w)
        checked["scale" if scale else "causal" if step.desc.causal else "matmul"] += 1
    # QKᵀ of each head; S of each head and the gradient back through the scaling
    assert checked["matmul"] > 10 and checked["causal"] == 2 and checked["scale"] == 4, checked
    assert checked["softmax"] == 3, checked
    assert checked["relation"] == 4, checked  # each scaling's input is the learner's own
    # products of a learner's own answers (C W_Oᵀ, the gradients, ...) state the relation
    assert checked["product relation"] > 10, checked


def test_masked_weights_are_printed_and_not_asked() -> None:
    ex, _ = classroom_exercises()
    attn = next(n for n, s in ex.numbers.items() if ex.t.step(n).desc.role == "attn")
    asked = {idx for _, idx, _, _ in ex.blanks[ex.numbers[attn]]}
    # the lower triangle, but for row 1's only weight, which is 1 and given
    assert all(j <= i for i, j in asked) and len(asked) == 4 * 5 // 2 - 1
    assert (0, 0) not in asked


def test_givens_are_only_what_the_asked_exercises_read(tmp_path: Path) -> None:
    from workbook import engine
    from workbook.config import from_mapping
    from workbook.render import select

    c = from_mapping({"preset": "classroom"})
    t = engine.run(c)
    tex = Exercises(c, t, select(Options(), None, "2.1", t)).tex()
    given = tex.split(r"\section*{Given}")[1].split(r"\section*{Exercises}")[0]
    assert r"W_Q^{(1)}" in given and r"W_K^{(1)}" not in given and r"W_V" not in given


@pytest.mark.parametrize(
    "settings", [{}, {"preset": "classroom"}, {"model": "gpt2", "layers": 2, "d_model": 8}]
)
def test_each_exercise_names_the_workbook_section_that_works_it(settings) -> None:
    """The section numbers the exercises cite are the ones the workbook prints: read back
    from the workbook's source, chapter by chapter."""
    from workbook import engine
    from workbook.config import from_mapping

    c = from_mapping(settings)
    t = engine.run(c)
    worked = Worked(c, t, Options(detail="results", figures=False)).tex()
    printed: dict[str, str] = {}
    chapter = section = 0
    for line in worked.splitlines():
        if m := re.match(r"\\setcounter\{chapter\}\{(\d+)\}", line):
            chapter, section = int(m[1]) + 1, 0
        elif line.startswith(r"\section{"):
            section += 1
        for label in re.findall(r"\\label\{s:([^}]*)\}", line):
            printed[label] = f"{chapter}.{section}"
    ex = Exercises(c, t, Options())
    assert {key(n): s for n, s in ex.sections.items()} == printed
    assert rf"(workbook \S{ex.sections['X']})" in ex.tex()


def test_what_a_step_writes_on_the_way_has_its_own_blank_grid() -> None:
    _, tex = classroom_exercises()
    softmax = tex.split(r"Softmax: attention weights, head 1")[1].split(r"\exercise{")[0]
    grid = softmax.split("write them here, row by row")[1].split(r"\end{gridtab}")[0]
    assert r"\colhead{$s^{\max}$}" in grid and r"\colhead{$\sum_j e_j$}" in grid
    rows = [r for r in grid.splitlines() if r.startswith(r"\rowhead{")]
    # a masked position's exponential is 0 (printed); nothing else is filled in
    assert [re.findall(r"\$([^$]*)\$", r) for r in rows] == [["0"] * 3, ["0"] * 2, ["0"], []]
    gelu = tex.split(r"\exercise{5.2}")[1].split(r"\exercise{")[0]
    assert r"$u$, written here" in gelu and r"$\tanh u$, written here" in gelu
    assert r"$\mathrm{ffn\_act}$, the result" in gelu
