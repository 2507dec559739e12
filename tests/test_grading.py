"""Grading: simulated students, made from the engine, graded against their handouts.

Every catalogued mistake at every exercise it applies to must be named; an early slip gets
follow-through credit on every cell that depends on it and nowhere else; a student who copies
the key gets full marks, one who writes random numbers almost no follow-through."""

from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import read_pdf_text
from students import sheet, work, write_answers

from workbook import engine
from workbook.classfolder import CLASS_FILE, dumps
from workbook.classfolder import load as load_class
from workbook.config import preset
from workbook.grading import Grader, asked, close, key_value
from workbook.mistakes import BY_KEY, CATALOGUE
from workbook.printed import Book
from workbook.render import Options, select
from workbook.render.handout import Handout, Reader
from workbook.trace import cell_names, cells_read

# One exercise of every kind of step the book has: products (with a bias, masked, of
# Jacobians, column sums), the scaling, softmaxes, GELU and its derivative, LayerNorm forward
# and back, the loss and its gradient, AdamW.
EVERY_KIND = (
    "2.1,3.1-3.3,4.1,4.3-4.4,5.1-5.3,6.2-6.5,7.1-7.5,8.1-8.2,10.1-10.4,10.8,10.13,11.6,11.10,13.14"
)


def handout(sections: str | None) -> Handout:
    c = preset("classroom")
    t = engine.run(c)
    opts = select(Options(scaffold="faded", givens="start"), None, sections, t)
    h = Handout(c, t, opts, Book(t, opts.digits), reader=Reader("A", "a1", "CODE"))
    h.document()
    return h


@pytest.fixture(scope="module")
def every_kind() -> tuple[Handout, list]:
    h = handout(EVERY_KIND)
    return h, asked(h)


def test_every_catalogued_mistake_is_named_where_it_applies(every_kind, capsys) -> None:
    """One simulated student per mistake and exercise: right everywhere else, from their
    own numbers after it. Each value the mistake changed beyond the key's tolerance must be
    named (≥ 95 %; a mistake of method by itself in ≥ 95 %: a slip of rounding may give
    the value another slip of rounding gives) and never graded right; every later value is
    right, right from their numbers, or blank (where the mistake broke the chain)."""
    h, asks = every_kind
    grader = Grader(h, asks)
    table: dict[str, Counter] = {m.key: Counter() for m in CATALOGUE}
    exercises = list(dict.fromkeys(a.exercise for a in asks))
    downstream = Counter()
    for m in CATALOGUE:
        for ex in exercises:
            if not any(m.applies(a.entry) for a in asks if a.exercise == ex):
                continue
            answers, made = work(h, asks, (ex, m.key))
            for g in grader.grade(sheet(answers)):
                a = g.asked
                if a.cell in made:
                    if close(g.answer, g.key, h.book.digits, grader.tolerance(a.step)):
                        continue  # within the key's tolerance: indistinguishable
                    c = table[m.key]
                    c["cells"] += 1
                    c["right"] += g.verdict == "right"
                    named = m.key in g.mistakes
                    c["named"] += named
                    c["alone"] += named and len(g.mistakes) == 1
                elif len(answers) == len(asks):  # not a chain the mistake broke
                    downstream[g.verdict] += 1
            table[m.key]["exercises"] += 1
    cells = sum(c["cells"] for c in table.values())
    named = sum(c["named"] for c in table.values())
    alone = sum(c["alone"] for c in table.values())
    with capsys.disabled():
        print("\nmistake                  exercises  values  named  alone  graded right")
        for key, c in table.items():
            print(
                f"{key:<24} {c['exercises']:>9} {c['cells']:>7} {c['named']:>6} "
                f"{c['alone']:>6} {c['right']:>13}"
            )
        print(f"{'all':<24} {'':>9} {cells:>7} {named:>6} {alone:>6}")
        print("values after the mistake:", dict(downstream))
    # ε = 10⁻⁵ beside variances near 1 changes no printed digit here: see the next test
    assert [k for k, c in table.items() if not c["cells"]] == ["no_eps"]
    assert sum(c["right"] for c in table.values()) == 0
    assert named >= 0.95 * cells, (named, cells)
    method = [c for k, c in table.items() if not BY_KEY[k].rounding]
    cells, alone = sum(c["cells"] for c in method), sum(c["alone"] for c in method)
    assert alone >= 0.95 * cells, (alone, cells)  # a mistake of method named by itself

    assert set(downstream) <= {"right", "follow-through", "blank"}, downstream


def test_leaving_out_eps_is_named_where_eps_shows() -> None:
    c = replace(preset("classroom"), ln_eps=0.5)
    t = engine.run(c)
    opts = select(Options(scaffold="faded", givens="start"), None, "6.4,10.8", t)
    h = Handout(c, t, opts, Book(t, opts.digits), reader=Reader("A", "a1", "CODE"))
    h.document()
    asks = asked(h)
    for ex in ("6.4", "10.8"):
        answers, made = work(h, asks, (ex, "no_eps"))
        graded = [g for g in Grader(h, asks).grade(sheet(answers)) if g.asked.cell in made]
        assert len(graded) >= 8 and all(g.mistakes == ("no_eps",) for g in graded), graded


def depends_on(h: Handout, asks, exercise: str) -> set[tuple]:
    """The asked values that read, directly or through other values, one of `exercise`'s."""
    cells = cell_names({n: v.shape for n, v in h.book.values.items()})
    by_entry = {(a.step.name, a.entry.idx): a for a in asks if not a.entry.part}
    tainted: set[tuple] = set()
    out = set()
    for a in asks:  # in the handout's order: what a value reads comes before it
        reads = {by_entry.get(c) for c in cells_read(a.step, cells, a.entry.idx)} - {None}
        if any(r.exercise == exercise or (r.step.name, r.entry.idx) in tainted for r in reads):
            out.add(a.cell)
            if not a.entry.part:
                tainted.add((a.step.name, a.entry.idx))
    return out


def test_one_early_slip_is_followed_through_on_exactly_the_cells_that_depend_on_it() -> None:
    """A student transposes X in 2.1, then works every later exercise right from their own
    numbers: every later value that differs from the key because of it is graded
    follow-through, every other later value right, and nothing else is follow-through."""
    h = handout("2.1,3.1-3.3,4.1,4.3-4.4")
    asks = asked(h)
    answers, made = work(h, asks, ("2.1", "left_transposed"))
    graded = Grader(h, asks).grade(sheet(answers))
    after = depends_on(h, asks, "2.1")
    verdicts = Counter()
    for g in graded:
        cell = g.asked.cell
        if cell in made:
            assert g.verdict == "slip" and g.mistakes == ("left_transposed",), g
        elif g.verdict == "follow-through":
            assert cell in after, g  # only where the slip reaches
            assert g.uses, g  # and says from which of their answers
        else:
            assert g.verdict == "right", g
            assert cell not in after or g.answer == g.key or g.asked.exercise == "2.1", g
        verdicts[g.verdict] += 1
    assert verdicts["follow-through"] >= 30, verdicts  # the slip carries far
    assert {g.asked.exercise for g in graded if g.verdict == "follow-through"} >= {
        "3.1",
        "3.2",
        "3.3",
        "4.1",
        "4.4",
    }


def test_a_student_who_copies_the_key_gets_full_marks(every_kind) -> None:
    h, asks = every_kind
    key = {a.cell: key_value(h.book, a.entry) for a in asks}
    graded = Grader(h, asks).grade(sheet(key))
    assert {g.verdict for g in graded} == {"right"} and sum(g.points for g in graded) == len(asks)


def test_random_numbers_get_almost_no_follow_through(every_kind) -> None:
    h, asks = every_kind
    grader = Grader(h, asks)
    counts = Counter()
    for seed in range(5):
        answers, _ = work(h, asks, rng=random.Random(seed))
        counts.update(g.verdict for g in grader.grade(sheet(answers)))
    total = sum(counts.values())
    assert counts["follow-through"] < 0.01 * total, counts
    assert counts["right"] < 0.01 * total, counts


@pytest.mark.parametrize("credit", [("full", 1.0), ("half", 0.5), ("none", 0.0)])
def test_follow_through_credit_is_the_teachers_choice(credit) -> None:
    h = handout("2.1,3.1")
    asks = asked(h)
    answers, _ = work(h, asks, ("2.1", "left_transposed"))
    graded = Grader(h, asks, credit[0]).grade(sheet(answers))
    ft = [g for g in graded if g.verdict == "follow-through"]
    assert ft and {g.points for g in ft} == {credit[1]}


def test_no_credit_follows_from_an_exercise_of_one_number_or_left_blank() -> None:
    """All zeros in 2.1 make 3.1 all zeros 'right from their numbers': flagged, no credit;
    a blank earlier value gives no follow-through either."""
    h = handout("2.1,2.3,3.1")
    asks = asked(h)
    grader = Grader(h, asks)
    answers, _ = work(h, asks)
    for a in asks:
        if a.exercise in ("2.1", "3.1"):
            answers[a.cell] = Decimal(0)
    s = sheet(answers)
    assert grader.degenerate(s) == {"2.1", "3.1"}
    graded = grader.grade(s)
    assert not [g for g in graded if g.verdict == "follow-through"]
    answers, _ = work(h, asks, ("2.1", "left_transposed"))
    first = next(a for a in asks if a.exercise == "2.1")
    del answers[first.cell]
    graded = grader.grade(sheet(answers))
    reads_it = [g for g in graded if g.asked.exercise == "3.1" and g.asked.row == first.row]
    assert reads_it and all(g.verdict != "follow-through" for g in reads_it)


def test_a_softmax_without_the_maximum_subtracted_is_no_mistake() -> None:
    """e_j = exp(s_j) for every j: the exponentials differ from the key, are graded as
    follow-through of the rule they replace, and the probabilities from them are right or
    right from the student's numbers."""
    h = handout("3.3")
    asks = asked(h)
    answers, made = work(h, asks, ("3.3", "no_max_shift"))
    assert made
    graded = Grader(h, asks).grade(sheet(answers))
    for g in graded:
        if g.asked.cell in made:
            assert g.verdict == "follow-through" and g.mistakes == ("no_max_shift",), g
        else:
            assert g.verdict in ("right", "follow-through"), g
    assert BY_KEY["no_max_shift"].acceptable


# --- the command ----------------------------------------------------------------------------
def make_class(folder: Path, ids: list[str], sections: str) -> list:
    """A class folder as `workbook handouts` writes it (class.toml, variants.csv, answers.csv,
    grades.csv), without compiling the handouts: what grading reads."""
    from workbook.handouts import Classroom, HandoutRequest, answer_sheet, grades, variants

    folder.mkdir(parents=True, exist_ok=True)
    roster = folder / "roster.csv"
    roster.write_text("id,name\n" + "".join(f"{i},Name {i}\n" for i in ids), encoding="utf-8")
    c = preset("classroom")
    opts = Options(scaffold="faded", givens="start")
    req = HandoutRequest(folder, opts, roster=roster, sections=sections, class_seed=7)
    room = Classroom(c, req)
    parts = [room.part(r, v) for r, v in room.readers()]
    for p in parts:
        p.handout.document()
    (folder / CLASS_FILE).write_bytes(dumps(req.settings(c)))
    for name, data in (
        ("variants.csv", variants(parts)),
        ("answers.csv", answer_sheet(parts)),
        ("grades.csv", grades(parts)),
    ):
        (folder / name).write_bytes(data)
    return parts


@pytest.fixture(scope="module")
def klass(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    folder = tmp_path_factory.mktemp("class") / "lesson"
    return folder, make_class(folder, ["s1", "s2", "s3", "s4"], "2.1,2.3,3.1-3.3")


def class_answers(parts: list, plans: list) -> list[tuple[str, object, Decimal | None]]:
    """Rows of an answers file: each student's values as `plans` says (None: nothing)."""
    rows = []
    for part, plan in zip(parts, plans, strict=True):
        asks = asked(part.handout)
        if plan is None:
            continue
        values, _ = work(part.handout, asks, plan)
        rows += [(part.reader.id, a, values.get(a.cell)) for a in asks]
    return rows


def grade_cli(folder: Path, answers: Path, out: Path, *extra: str) -> int:
    from workbook import cli

    argv = ["grade", "--class", str(folder), "--answers", str(answers), "-o", str(out)]
    return cli.main([*argv, "--csv-only", "-q", *extra])


def test_the_class_toml_holds_every_setting(klass) -> None:
    folder, _ = klass
    s = load_class(folder)
    assert s.config == preset("classroom") and s.sections == "2.1,2.3,3.1-3.3"
    assert (s.class_seed, s.digits, s.scaffold, s.givens) == (7, 4, "faded", "start")
    assert len(s.roster_sha256) == 64
    assert dumps(s) == (folder / CLASS_FILE).read_bytes()


def test_answers_in_any_spreadsheet_style_grade_the_same(klass, tmp_path: Path) -> None:
    """Semicolons, a decimal comma, a Unicode minus and a leading apostrophe read as the
    plain file does: the graded sheets are the same but for the answers as typed."""
    folder, parts = klass
    rows = class_answers(parts, [None, ("2.1", "factors_swapped"), ("3.2", "no_scaling"), ()])
    plain, european = tmp_path / "plain.csv", tmp_path / "european.csv"
    write_answers(plain, rows)
    write_answers(european, rows, style="european")
    assert "−0,6" in european.read_text() or "'−" in european.read_text()
    for name in ("plain", "european"):
        assert grade_cli(folder, tmp_path / f"{name}.csv", tmp_path / name) == 0
    graded = {
        name: [r[:5] + r[6:] for r in csv.reader((tmp_path / name / "graded.csv").open())]
        for name in ("plain", "european")
    }
    assert graded["plain"] == graded["european"]
    verdicts = Counter(r[7] for r in graded["plain"][1:])
    assert verdicts["slip"] and verdicts["follow-through"] and verdicts["blank"]
    for name in ("scores.csv", "gradebook.csv"):  # names: a BOM, so Excel reads UTF-8
        assert (tmp_path / "plain" / name).read_bytes().startswith(b"\xef\xbb\xbf")
    scores = list(csv.DictReader((tmp_path / "plain" / "scores.csv").open(encoding="utf-8-sig")))
    assert scores[0]["status"] == "no answers" and scores[0]["percent"] == ""
    assert scores[3]["percent"] == "100.0"
    book = list(csv.DictReader((tmp_path / "plain" / "gradebook.csv").open(encoding="utf-8-sig")))
    assert list(book[0])[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert book[0]["Student"] == "Points Possible" and book[0][list(book[0])[5]] == "100"
    assert [r["SIS User ID"] for r in book[1:]] == ["s1", "s2", "s3", "s4"]
    assert book[1][list(book[0])[5]] == ""  # no answers: no score, never a silent zero


def test_grading_twice_gives_the_same_bytes_and_leaves_the_answers_alone(
    klass, tmp_path: Path
) -> None:
    folder, parts = klass
    answers = tmp_path / "a.csv"
    write_answers(answers, class_answers(parts, [(), ("3.3", "no_mask"), (), None]))
    before = answers.read_bytes()
    for out in ("one", "two"):
        assert grade_cli(folder, answers, tmp_path / out) == 0
    for name in ("graded.csv", "scores.csv", "gradebook.csv", "problems.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert answers.read_bytes() == before


def test_the_key_copied_from_grades_csv_gets_full_marks(klass, tmp_path: Path) -> None:
    folder, _ = klass
    assert grade_cli(folder, folder / "grades.csv", tmp_path / "g") == 0
    scores = list(csv.DictReader((tmp_path / "g" / "scores.csv").open(encoding="utf-8-sig")))
    assert [s["percent"] for s in scores] == ["100.0"] * 4


BAD_FILES = [
    (b"\x00\x01\x02", "not a CSV file"),
    (b"just some words\n", "not a CSV file"),
    (b"student_id,exercise,answer\ns1,2.1,3\n", "no column row, col"),
    (b"\xff\xfe\x00", "not UTF-8 text"),
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES)
def test_a_file_that_is_no_answer_sheet_gets_one_line_and_exit_2(
    klass, tmp_path: Path, capsys, content: bytes, message: str
) -> None:
    folder, _ = klass
    answers = tmp_path / "a.csv"
    answers.write_bytes(content)
    assert grade_cli(folder, answers, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_rows_that_cannot_be_graded_are_listed_and_the_rest_graded(
    klass, tmp_path: Path, capsys
) -> None:
    folder, parts = klass
    good = class_answers(parts, [(), (), (), ()])
    answers = tmp_path / "a.csv"
    write_answers(answers, good)
    with answers.open("a", encoding="utf-8") as f:
        f.write("nobody,2.1,result,1,2,0.5\n")  # unknown student
        f.write("s1,9.9,result,1,1,0.5\n")  # unknown exercise
        f.write("s1,2.1,result,9,9,0.5\n")  # no such cell
        f.write("s1,2.1,result,1,2,0.5\n")  # a second answer
        f.write("s2,2.1,result,1,2,twelve\n")  # not a number
    assert grade_cli(folder, answers, tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "5 of" in err and "cannot be graded" in err and "problems.csv" in err
    problems = list(csv.DictReader((tmp_path / "out" / "problems.csv").open()))
    assert [p["problem"].split(" ")[0] for p in problems] == ["no", "no", "exercise", "a", "the"]
    graded = list(csv.DictReader((tmp_path / "out" / "graded.csv").open()))
    assert {g["verdict"] for g in graded if g["student_id"] != "s2"} == {"right"}
    assert grade_cli(folder, answers, tmp_path / "strict", "--strict") == 2
    assert "--strict" in capsys.readouterr().err and not (tmp_path / "strict").exists()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.3098", "0.3098"),
        ("−0,5", "-0.5"),
        ("'-1.25", "-1.25"),
        (" 2 ", "2"),
        ("1,5e-3", "0.0015"),
        ("−∞", "-Infinity"),
        ("-inf", "-Infinity"),
        ("", None),
    ],
)
def test_typed_numbers_read_as_meant(text: str, value: str | None) -> None:
    from workbook.sheets import parse_number

    got = parse_number(text)
    assert got == (None if value is None else Decimal(value))


def test_a_code_of_other_settings_is_refused_with_the_folder_it_needs(
    klass, tmp_path: Path, capsys
) -> None:
    from workbook import cli

    folder, parts = klass
    code = parts[0].reader.code
    assert cli.main(["handouts", "--key-for", code, "-o", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other settings" in err and "--class DIR" in err
    # the class's own settings, through its folder: the code is accepted (no TeX needed to
    # get past it; a wrong flag beside --class is refused first)
    argv = ["handouts", "--key-for", code, "--class", str(folder), "--d-model", "8"]
    assert cli.main([*argv, "-o", str(tmp_path)]) == 2
    assert "--d-model with --class" in capsys.readouterr().err
    other = tmp_path / "other"
    make_class(other, ["x1"], "2.1")
    argv = ["handouts", "--key-for", code, "--class", str(other), "-o", str(tmp_path), "-q"]
    assert cli.main(argv) == 2
    assert f"not the class in {other}" in capsys.readouterr().err


# --- the whole command, TeX included ---------------------------------------------------------
NAMES = {"s1": "Ada Lovelace", "s2": "李雷", "s3": "محمد", "s4": "Zoë O'Brien", "s5": "Nobody"}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class of five through handouts and grade: a key copier, two students with one
    mistake each, one who left an exercise blank, one with no answers at all."""
    from workbook import cli
    from workbook.grade import GradeRequest, Grading

    top = tmp_path_factory.mktemp("graded")
    roster = top / "roster.csv"
    with roster.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("id", "name"), *NAMES.items()])
    folder = top / "lesson"
    argv = ["handouts", "--preset", "classroom", "--roster", str(roster), "-q"]
    assert cli.main([*argv, "--sections", "2.1,2.3,3.1-3.3", "-o", str(folder)]) == 0
    parts = Grading(GradeRequest(folder, folder / "answers.csv")).papers()
    plans = [(), ("2.1", "left_transposed"), ("3.2", "no_scaling"), (), None]
    rows = class_answers(parts, plans)
    rows = [(sid, a, None if sid == "s4" and a.exercise == "3.3" else v) for sid, a, v in rows]
    write_answers(top / "typed.csv", rows)
    argv = ["grade", "--class", str(folder), "--answers", str(top / "typed.csv"), "-q"]
    assert cli.main(argv) == 0
    assert cli.main([*argv, "-o", str(top / "again")]) == 0
    return top


@pytest.mark.tex
def test_feedback_has_a_page_per_student_from_an_odd_page(graded_class: Path) -> None:
    from pypdf import PdfReader

    out = graded_class / "lesson" / "graded"
    starts, page, pages = [], 0, 0
    for sid in NAMES:
        page += pages + pages % 2  # the one before, and the blank side after an odd count
        starts.append(page)
        pages = len(PdfReader(out / "feedback" / f"{sid}.pdf").pages)
    whole = PdfReader(out / "feedback.pdf")
    assert len(whole.pages) == page + pages
    for sid, start in zip(NAMES, starts, strict=True):
        assert start % 2 == 0  # page start + 1: odd
        text = whole.pages[start].extract_text()
        assert f"id {sid}" in text.replace("\n", " ")
    s3 = read_pdf_text(out / "feedback" / "s3.pdf")
    assert "the scaling left out" in s3 and "slip" in s3
    s2 = read_pdf_text(out / "feedback" / "s2.pdf")
    assert "right from your 2.1" in s2 and "李雷" in s2
    assert "not answered" in read_pdf_text(out / "feedback" / "s4.pdf")
    assert "none: no answers" in read_pdf_text(out / "feedback" / "s5.pdf")


@pytest.mark.tex
def test_the_report_ranks_the_mistakes_and_names_who_has_no_answers(graded_class: Path) -> None:
    text = " ".join(read_pdf_text(graded_class / "lesson" / "graded" / "report.pdf").split())
    assert "the left factor transposed" in text and "the scaling left out" in text
    assert "No answers from 1 student" in text and "Nobody (s5)" in text
    assert "Mean score" in text


@pytest.mark.tex
def test_grading_pdfs_are_reproducible_and_clean(graded_class: Path) -> None:
    from glyphs import collisions

    out, again = graded_class / "lesson" / "graded", graded_class / "again"
    for name in ("feedback.pdf", "report.pdf", "graded.csv", "feedback/s2.pdf"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    for pdf in ("feedback.pdf", "report.pdf"):
        assert not collisions(out / pdf), pdf


@pytest.mark.tex
def test_grading_documents_have_no_overfull_lines(graded_class: Path, tmp_path: Path) -> None:
    from workbook.compile import compile_document
    from workbook.grade import GradeRequest, Grading
    from workbook.names import pictures
    from workbook.render.feedback import Feedback

    folder = graded_class / "lesson"
    g = Grading(GradeRequest(folder, graded_class / "typed.csv", quiet=True))
    parts = g.papers()
    results = g.results(parts)
    fb = Feedback(parts, results, "full")
    names = pictures(list(NAMES.values()), tmp_path, lambda m: None)
    for stem, source in (("feedback", fb.feedback_source()), ("report", fb.report_source())):
        assert compile_document(source, tmp_path, stem, beside=names).overfull == 0, stem


def test_sheets_a_teacher_should_look_at_are_named(klass, tmp_path: Path, capsys) -> None:
    """A value no inputs could give (a negative exponential), an exercise right though the
    one it starts from is blank (not typed in?), another student's key (sheets swapped):
    each is named for the teacher, in the report and on stderr."""
    from workbook.grade import GradeRequest, Grading

    folder, parts = klass
    rows = class_answers(parts, [(), (), None, ()])
    s1 = [(sid, a, v) for sid, a, v in rows if sid == "s1"]
    bad = next(i for i, (sid, a, _) in enumerate(rows) if sid == "s2" and a.quantity == "e")
    rows[bad] = (rows[bad][0], rows[bad][1], Decimal("-1.5"))
    rows = [(sid, a, None if sid == "s4" and a.exercise == "3.1" else v) for sid, a, v in rows]
    rows += [("s3", a, v) for _, a, v in s1]  # s3's rows hold s1's key
    write_answers(tmp_path / "a.csv", rows)
    g = Grading(GradeRequest(folder, tmp_path / "a.csv", pdf=False, quiet=True))
    looks = {r.id: r.looks for r in g.results(g.papers())}
    assert looks["s1"] == ()
    assert "no inputs could give" in " ".join(looks["s2"]) and "-1.5" in " ".join(looks["s2"])
    assert any("values are s1's key" in x for x in looks["s3"]), looks["s3"]
    assert any("3.2 is right though 3.1" in x for x in looks["s4"]), looks["s4"]
    assert grade_cli(folder, tmp_path / "a.csv", tmp_path / "out") == 0
    assert "3 student(s) to look at before importing" in capsys.readouterr().err


def test_a_slip_of_rounding_alone_earns_the_credit_the_teacher_gives(klass) -> None:
    _folder, parts = klass
    h = parts[1].handout
    asks = asked(h)
    answers, _ = work(h, asks, ("2.1", "truncated"))
    for credit in (0.0, 0.5, 1.0):
        graded = Grader(h, asks, rounding_credit=credit).grade(sheet(answers))
        slips = [g for g in graded if g.verdict == "slip"]
        assert slips and {g.points for g in slips} == {credit}
    answers, _made = work(h, asks, ("2.1", "left_transposed"))
    graded = Grader(h, asks, rounding_credit=1.0).grade(sheet(answers))
    assert {g.points for g in graded if g.verdict == "slip"} == {0.0}  # a mistake of method
