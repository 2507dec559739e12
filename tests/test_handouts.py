"""Classroom handouts: the preset, section selection, variants, rosters, the print file, the
key, the grade sheet, --key-for, and byte-identical reruns."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_folder

from workbook import cli, engine
from workbook.classroom import (
    OtherSettingsError,
    Student,
    Variant,
    assign,
    decode,
    lively,
    read_roster,
    sentences,
)
from workbook.config import ConfigError, from_mapping, load, preset
from workbook.render import Exercises, Options, select_sections

HOSTILE = [
    "O'Brien",
    "Zoë",
    "李雷",
    "山田 さくら",
    "محمد",
    "100%",
    "$",
    "_",
    "#",
    "&",
    "{",
    "}",
    "\\",
    "~",
    "^",
    "\\input{/etc/passwd}",
]


def classroom():
    return preset("classroom")


# --- the preset ---------------------------------------------------------------------------
def test_the_classroom_model_is_small_enough_for_a_lesson() -> None:
    c = classroom()
    t = engine.run(c)
    assert (c.d_model, c.heads, c.d_k, c.d_ff, c.T) == (4, 2, 2, 8, 4)
    longest = max(
        s.factors(t.values, (0,) * len(s.shape))[0].size
        for s in t.steps
        if type(s).__name__ == "Contraction"
    )
    assert longest <= 8  # no sum of more than 8 products


def test_the_classroom_numbers_show_something() -> None:
    t = engine.run(classroom())
    spread = max(
        float(np.max(np.abs(t[s.name][i, : i + 1] - 1 / (i + 1))))
        for s in t.steps
        if s.desc.role == "attn"
        for i in range(1, t[s.name].shape[0])
    )
    assert spread >= 0.1  # attention clearly not uniform
    hidden = t[t.find("ffn_act").operands[0]]
    assert np.mean(np.abs(hidden) > 0.5) >= 0.2  # GELU's curve shows
    assert min(np.max(np.abs(t[f"d.{p}"])) for p in t.params) >= 1e-3
    assert lively(t)
    assert not lively(engine.run(from_mapping({})))  # the seed's model is not: near-uniform


def test_explicit_settings_win_over_the_preset(tmp_path: Path) -> None:
    assert load(None, {"preset": "classroom", "d_ff": "16"}).d_ff == 16
    toml = tmp_path / "m.toml"
    toml.write_text('preset = "classroom"\nseed = 7\n')
    c = load(toml, {"heads": "1"})
    assert (c.preset, c.seed, c.heads, c.d_model) == ("classroom", 7, 1, 4)
    with pytest.raises(ConfigError, match="preset = 'class': must be one of classroom"):
        load(None, {"preset": "class"})


# --- sections -----------------------------------------------------------------------------
def test_sections_keep_the_books_numbers(trace) -> None:
    chosen = select_sections("3.1-3.3,8.2,13.1", trace)
    assert chosen == ("3.1", "3.2", "3.3", "8.2", "13.1")
    assert select_sections("5", trace) == ("5.1", "5.2", "5.3")
    tex = Exercises(from_mapping({}), trace, Options(sections=chosen)).tex()
    assert re.findall(r"\\exercise\{([\d.]+)\}", tex) == list(chosen)
    # 3.2 reads QK of 3.1 (asked): the exercise; 8.2 reads p of chapter 7 (not asked): given
    assert "(Exercise 3.1)" in tex and r"\label{g:8:probs}" in tex


def test_the_rules_name_only_the_constants_the_exercises_use(trace) -> None:
    from workbook.render.handout import Handout, Reader

    def rules(sections: tuple[str, ...] | None, view=Exercises, **kw) -> str:
        tex = view(from_mapping({}), trace, Options(sections=sections), **kw).tex()
        start = tex.index("The rules of the arithmetic")
        return tex[start : tex.find(r"\section", start)]

    scale_only = rules(("3.2",))  # scaling the scores: only 1/√d_k
    assert r"1/\sqrt{d_k} = " in scale_only and r"\sqrt{2/\pi}" not in scale_only
    assert "GELU's own constants" not in scale_only and "settings" not in scale_only
    every = rules(None)
    for name in (r"1/\sqrt{d_k}", r"\sqrt{2/\pi}", "GELU's own constants", r"\lambda = 0.01$"):
        assert name in every, name
    # each setting with its value, LayerNorm's ε apart from AdamW's
    assert r"$\varepsilon = 10^{-5}$" in every and r"$\epsilon = 10^{-8}$" in every
    assert r"The settings are exact: $\varepsilon = 10^{-5}$." in rules(("6.4",))
    assert "title page of the worked workbook" in every
    reader = Reader("Ann", "s1", "ABC123")
    handout = rules(("3.2",), view=Handout, reader=reader)
    assert "title page of the worked workbook" not in handout  # a student has no workbook
    # the functions to apply and the values written on the way: only the exercises' own
    assert "apply exp, ln, tanh and the square root to" in every
    assert r"$u$ and $\tanh u$ inside GELU, the exponentials of a softmax" in every
    assert "apply" not in scale_only and "on the way" not in scale_only
    softmax = rules(("3.3",))
    assert "apply exp to" in softmax and "such as the exponentials of a softmax and" in softmax
    assert "GELU" not in softmax


def test_no_graded_cell_is_printed_by_a_scaffold_or_forced() -> None:
    """A started element names the learner's own earlier results instead of printing them; a
    worked line's earlier results are not graded; a softmax entry that must be 1 is given."""
    from workbook.printed import sig
    from workbook.render.handout import Handout, Reader

    c = classroom()
    t = engine.run(c)
    for sections in (("2.1", "3.1", "3.3"), ("3.3", "4.1"), ("6.5", "7.1"), ("6.1", "6.3")):
        h = Handout(
            c, t, Options(sections=sections, scaffold="faded"), reader=Reader("A", "a", "X")
        )
        tex = h.tex()
        scaffolds = re.findall(r"\\(?:example|started)\{(.*)\}", tex)
        cells = [(n, i) for cells in h.blanks.values() for n, i, *_ in cells]
        graded = [c for c in cells if c not in h.printed_later]
        for name, idx in graded:
            printed = format(sig(h.book.values[name][idx], h.opts.digits), "f").lstrip("-")
            assert not any(f"({printed})" in s or f"(-{printed})" in s for s in scaffolds), (
                sections,
                name,
                idx,
            )
        if "7.1" in sections:  # its worked element reads row 1 of 6.5's answer
            assert {i for _, i in h.printed_later} == {(0, k) for k in range(4)}
        if "3.3" in sections:  # row 1 of the weights has one live entry: 1, given
            assert all(c[2] != 1 for c in h.blanks["3.3"]), h.blanks["3.3"]
    started = re.search(
        r"\\started\{(.*)\}",
        Handout(
            c, t, Options(sections=("2.1", "3.1"), scaffold="faded"), reader=Reader("A", "a", "X")
        ).tex(),
    ).group(1)
    assert r"(Q^{(1)}_{1,2})" in started  # named: it is the learner's answer to 2.1


def test_the_key_marks_the_exercises_that_start_from_a_students_own_answers() -> None:
    from workbook.handouts import KeyPart

    c = classroom()
    t = engine.run(c)
    key = KeyPart(c, t, Options(sections=("2.1", "2.3", "3.1", "3.2")))
    lines = [x for x in key.answers(2) + key.answers(3) if x.startswith(r"\answer")]
    marks = [re.search(r"\{(uses their [^}]*)?\}$", x).group(1) for x in lines]
    # Q and K of head 1 (2.1, 2.3) start from givens; 3.1 from both, 3.2 from 3.1
    assert marks == [None, None, "uses their 2.1, 2.3", "uses their 3.1"]


def test_the_key_says_how_much_each_handout_asks() -> None:
    from workbook.handouts import workload
    from workbook.render.handout import Handout, Reader

    c = classroom()
    opts = Options(sections=("2.1", "3.1", "3.3", "5.2"), scaffold="faded")
    h = Handout(c, engine.run(c), opts, reader=Reader("A", "a", "X"))
    h.tex()
    # Q is 4 × 2 from sums of 4 products, one worked; QKᵀ's lower triangle from sums of 2
    # (d_k = 2); the weights' lower triangle but for row 1's 1: no products, but each row's
    # maximum, exponentials and sum on the way (4 × 6, less the 6 masked exponentials);
    # GELU of 4 × 8 entries, each with its u and tanh u
    assert workload(h) == [
        ("2.1", 7, 28, 0),
        ("3.1", 10, 20, 0),
        ("3.3", 9, 0, 18),
        ("5.2", 32, 0, 64),
    ]


def test_a_name_never_becomes_a_spreadsheet_formula() -> None:
    from workbook.handouts import spreadsheet_text

    assert spreadsheet_text('=HYPERLINK("http://x","y")') == '\'=HYPERLINK("http://x","y")'
    assert [spreadsheet_text(x) for x in ("+1", "-a", "@b", "Zoë", "")] == [
        "'+1",
        "'-a",
        "'@b",
        "Zoë",
        "",
    ]


def test_a_sentence_never_becomes_a_spreadsheet_formula() -> None:
    """variants.csv's sentence comes from the vocabulary, which may hold any word."""
    from types import SimpleNamespace as Ns

    from workbook.handouts import variants

    part = Ns(
        reader=Ns(id="a1", name="=Ann"),
        variant=Ns(code="00XQ-C5EF", seed=7),
        config=Ns(sentence="@SUM(A1) like"),
    )
    rows = list(csv.reader(io.StringIO(variants([part]).decode("utf-8-sig"))))
    assert rows[1] == ["a1", "'=Ann", "00XQ-C5EF", "7", "'@SUM(A1) like"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("3.9", "exercise 3.9: chapter 3 has 6 exercises"),
        ("3.3-3.1", "3.3-3.1 runs backwards"),
        ("14", "exercise 14: no such chapter"),
    ],
)
def test_bad_sections_are_refused(trace, spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        select_sections(spec, trace)


# --- variants and rosters -------------------------------------------------------------------
def test_a_draw_the_page_cannot_print_is_drawn_again() -> None:
    """A variant whose tables would not fit the paper is skipped like a dull one, so one
    student's draw cannot stop the whole class's job."""
    from workbook.printed import UnprintableError

    c = classroom()
    students = [Student(f"s{k}", f"Student {k}") for k in range(6)]
    free = assign(c, students, class_seed=3)
    refused = {free["s2"].number, free["s4"].number}

    def printable(cv, t) -> None:
        if any(cv == v.config(c) for v in free.values() if v.number in refused):
            raise UnprintableError("too wide")

    drawn = assign(c, students, class_seed=3, printable=printable)
    assert {k: v for k, v in drawn.items() if k not in ("s2", "s4")} == {
        k: v for k, v in free.items() if k not in ("s2", "s4")
    }
    assert drawn["s2"].number not in refused and drawn["s4"].number not in refused


def test_variants_differ_and_their_codes_read_back() -> None:
    c = classroom()
    students = [Student(f"s{k:02d}", f"Student {k}") for k in range(40)]
    variants = assign(c, students, class_seed=3, settings=700)
    assert len({v.number for v in variants.values()}) == 40
    for v in variants.values():
        assert decode(v.code, c, 700) == v
        assert decode(v.code.lower().replace("0", "o"), c, 700) == v  # as a student types it
        with pytest.raises(OtherSettingsError, match="made with other settings"):
            decode(v.code, c, 701)  # the code of a class with other settings
        assert lively(engine.run(v.config(c)))
    assert assign(c, students, class_seed=3, settings=700) == variants
    assert assign(c, students, class_seed=4, settings=700) != variants
    answers = {sid: float(engine.run(v.config(c)).loss.result) for sid, v in variants.items()}
    assert len(set(answers.values())) == 40  # no two students share their answers
    assert sentences(c)[0] == "I like" and len(sentences(c)) == 6
    with pytest.raises(ConfigError, match="check digit"):
        decode(Variant(12345, 700).code[:-1] + "Z", c, 700)
    with pytest.raises(ConfigError, match="8 letters and digits"):
        decode("0000E6", c, 700)  # a code of the old, shorter form


ROSTER_ERRORS = [
    (None, "no such file"),
    ("id,name\n", "no students"),
    ("name,x\nA,1\n", "the first line must name the columns, with id and name"),
    ("id,name\n1,A\n1,B\n", "line 3: id '1' is already on line 2"),
    ("id,name\nS1,A\ns1,B\n", "line 3: id 's1' is already on line 2 (the same letters in"),
    ("id,name\ncon,A\n", "id 'con' cannot be a file name on Windows"),
    ("/dev/zero", "not a regular file"),
    ("id,name\n,A\n", "line 2: the id is empty"),
    ("id,name\n../x,A\n", "id '../x' cannot be a file name"),
    ('id,name\nx,"a\x07b"\n', "a control character U+0007"),
    (b"\xff\xfe", "not UTF-8 text"),
]


@pytest.mark.parametrize(("content", "message"), ROSTER_ERRORS)
def test_bad_rosters_get_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content, message: str
) -> None:
    roster = tmp_path / "roster.csv"
    if content == "/dev/zero":  # a device: once read until memory ran out
        roster = Path(content)
    elif isinstance(content, bytes):
        roster.write_bytes(content)
    elif content is not None:
        roster.write_text(content)
    argv = ["handouts", "--preset", "classroom", "--roster", str(roster), "-o", str(tmp_path)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    with pytest.raises(ConfigError):
        read_roster(roster)


def test_a_roster_keeps_any_printable_name(tmp_path: Path) -> None:
    roster = tmp_path / "r.csv"
    with roster.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "email"])
        for k, name in enumerate(HOSTILE):
            w.writerow([f"s{k}", name, "x@y"])
    assert [s.name for s in read_roster(roster)] == HOSTILE


# --- the whole job ----------------------------------------------------------------------------
def pdf_text(pdf: Path) -> str:
    return subprocess.run(
        ["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout


def make_class(out: Path) -> None:
    roster = out / "roster.csv"
    with roster.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "name"])
        for k, name in enumerate(HOSTILE):
            w.writerow([f"s{k:02d}", name])
    argv = ["handouts", "--preset", "classroom", "--roster", str(roster), "-q"]
    argv += ["--sections", "2.1-2.2,3,7.2", "--class-seed", "5", "-o", str(out / "A")]
    assert cli.main(argv) == 0
    assert cli.main([*argv[:-1], str(out / "B")]) == 0


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_folder(tmp_path_factory, "handouts", make_class)


@pytest.mark.tex
def test_the_handouts_are_all_there_and_reproducible(made: Path) -> None:
    a, b = made / "A", made / "B"
    ids = [f"s{k:02d}" for k in range(len(HOSTILE))]
    files = ["handouts.pdf", "key.pdf", "grades.csv", "variants.csv"]
    files += [f"students/{i}.pdf" for i in ids]
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert sorted(p.name for p in (a / "students").iterdir()) == [f"{i}.pdf" for i in ids]


@pytest.mark.tex
def test_every_handout_starts_on_an_odd_page_with_its_name_on_every_page(made: Path) -> None:
    text = pdf_text(made / "A" / "handouts.pdf")
    pages = text.split("\f")[:-1]
    variants = list(csv.DictReader((made / "A" / "variants.csv").open(encoding="utf-8")))
    start = 0
    for row in variants:
        own = pdf_text(made / "A" / "students" / f"{row['student_id']}.pdf").split("\f")[:-1]
        assert start % 2 == 0  # page start + 1 is odd
        for page in pages[start : start + len(own)]:
            assert f"id {row['student_id']}" in page and f"variant {row['variant']}" in page
        start += len(own) + len(own) % 2
    assert start == len(pages)


@pytest.mark.tex
def test_a_continued_page_names_its_exercises_chapter(made: Path) -> None:
    """A page that begins in Exercise 2.2's working space is headed by chapter 2, even when
    chapter 3 starts lower on the page (the running head used to name the later chapter)."""
    pages = pdf_text(made / "A" / "handouts.pdf").split("\f")[:-1]
    mixed = 0
    for k, page in enumerate(pages):
        found = re.search(r"Exercise (\d+)\.\d+ \(continued\)", page)
        if found:
            head = page.lstrip().split("\n", 1)[0]
            assert head.startswith(f"{found.group(1)}. "), f"page {k + 1}: {head!r}"
            mixed += bool(re.search(rf"\n{int(found.group(1)) + 1} [A-Z]", page))
    assert mixed  # the case the rule is for occurs in this build
    # and the head names the exercises that begin on the page, first to last
    for k, page in enumerate(pages):
        head, body = page.lstrip().split("\n", 1)
        if not re.search(r"\d$", head):  # a first page: no running head
            continue
        begun = re.findall(r"^Exercise (\d+\.\d+) ", body, re.M)
        after = head.split("(continued)")[-1]
        assert ("·" in head) == ("(continued)" in head and bool(begun)), (k + 1, head)
        if not begun:
            assert "Exercise" not in after, (k + 1, head)
        elif len(begun) == 1:
            assert f"Exercise {begun[0]} " in after, (k + 1, head)
        else:
            assert f"Exercises {begun[0]}–{begun[-1]} " in after, (k + 1, head)


@pytest.mark.tex
def test_every_hostile_name_prints(made: Path) -> None:
    """Latin and TeX's special characters as typed; Chinese, Japanese and Arabic in their
    own scripts: every name is found in the text of the print file and the key, a student's
    own in their file, and no letter lacks a font."""
    for doc in ("handouts.pdf", "key.pdf", "students/s04.pdf", "students/s03.pdf"):
        text = searchable(pdf_text(made / "A" / doc))
        names = HOSTILE if "/" not in doc else [HOSTILE[int(doc[-6:-4])]]
        for name in names:
            assert name in text, (doc, name)
        assert "⟨U+" not in text, doc  # every letter has a font
        assert "root:" not in text  # \input{/etc/passwd} printed, not read


def searchable(text: str) -> str:
    """A PDF's text as a search reads it: the marks pdftotext puts around right-to-left runs
    left out, letters composed (NFC)."""
    return unicodedata.normalize("NFC", "".join(ch for ch in text if ch not in BIDI_MARKS))


BIDI_MARKS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e"


def test_a_name_is_text_where_pdftex_prints_it_else_a_picture_of_it() -> None:
    from workbook.names import name_macros, name_tex, picture_file

    assert name_tex("Zoë_1") == r"Zoë\_1"
    assert name_tex("O'Brien <<x>>") == r"O\textquotesingle{}Brien <{}<x>{}>"
    for name in ("李雷", "Nguyễn", "محمد Ali", "김민준", "Дмитрий"):
        assert name_tex(name) == rf"\namepic{{{picture_file(name)}}}"
    assert picture_file("李雷") != picture_file("李雷 ")
    assert name_macros(["Zoë"]) == "" and r"\namepic" in name_macros(["Zoë", "李雷"])


# A name in each script a roster may hold (and one of TeX's pairs that must not merge).
SCRIPTS = {
    "latin": "Nguyễn Thị Hương",
    "greek": "Αικατερίνη",
    "cyrillic": "Дмитрий Иванов",
    "hebrew": "שרה כהן",
    "arabic": "محمد علي",
    "persian": "فاطمه زهرا",
    "urdu": "عمران خان",
    "devanagari": "अनिल कुमार",
    "bengali": "রবি দাস",
    "tamil": "செல்வி",
    "thai": "สมชาย",
    "hangul": "김민준",
    "chinese": "李雷",
    "kana": "さくら",
    "ethiopic": "አበበ ቢቂላ",
    "georgian": "გიორგი",
    "armenian": "Արամ",
    "pairs": "O'Brien <<Kim>> ,,Lee -- Ng''",
}


@pytest.mark.tex
def test_a_name_in_every_script_is_found_where_it_prints(tmp_path: Path) -> None:
    """Each name is found by a PDF search in the print file, the key and the student's own
    handout; LuaLaTeX lacks no letter; TeX's pairs print as typed."""
    roster = tmp_path / "r.csv"
    with roster.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("id", "name"), *((k, v) for k, v in SCRIPTS.items())])
    argv = ["handouts", "--preset", "classroom", "--roster", str(roster), "-q"]
    assert cli.main([*argv, "--sections", "2.1", "-o", str(tmp_path / "out")]) == 0
    whole = {d: searchable(pdf_text(tmp_path / "out" / d)) for d in ("handouts.pdf", "key.pdf")}
    for sid, name in SCRIPTS.items():
        own = searchable(pdf_text(tmp_path / "out" / "students" / f"{sid}.pdf"))
        for where, text in (*whole.items(), ("own", own)):
            assert name in text, (where, sid, name)
        assert "⟨U+" not in own, sid


@pytest.mark.tex
def test_a_letter_no_font_has_prints_as_its_code(tmp_path: Path, capsys) -> None:
    roster = tmp_path / "r.csv"
    roster.write_text("id,name\nm1,ᠮᠣᠩᠭᠣᠯ Bat\n", encoding="utf-8")  # Mongolian: no font
    argv = ["handouts", "--preset", "classroom", "--roster", str(roster), "--sections", "2.1"]
    assert cli.main([*argv, "-o", str(tmp_path / "out")]) == 0
    assert "no installed font has U+1823" in capsys.readouterr().err
    # printed as codes, but its text layer is the name as typed: a search finds it
    text = pdf_text(tmp_path / "out" / "students" / "m1.pdf")
    assert "ᠮᠣᠩᠭᠣᠯ Bat" in text


@pytest.mark.tex
def test_grades_match_the_key_and_stay_out_of_the_handouts(made: Path) -> None:
    rows = list(csv.DictReader((made / "A" / "grades.csv").open(encoding="utf-8")))
    key = (made / "A" / "key.tex").read_text()
    assert {r["exercise"] for r in rows} == {"2.1", "2.2", *(f"3.{k}" for k in range(1, 7)), "7.2"}
    by_student: dict[str, set[str]] = {}
    cells = [float(x) for x in re.findall(r"\$(-?[\d.]+)\$", key)]
    for r in rows:
        by_student.setdefault(r["student_id"], set()).add(r["answer"])
        # the key prints the same value (as a cell of its table, in the table's units)
        value = float(r["answer"])
        assert any(
            abs(value - c * 10**e) <= abs(value) * 1e-9
            for c in cells
            for e in (0, -1, -2, -3, -4, -5)
        ), r
    sets = list(by_student.values())
    assert all(a != b for k, a in enumerate(sets) for b in sets[k + 1 :])  # no shared answers
    # No row of a student's answers is printed in their handout (one number alone may match
    # a given number by chance; a whole row of them does not).
    grid: dict[tuple[str, str, str], list[str]] = {}
    for r in rows:
        if r["row"] and r["col"]:
            grid.setdefault((r["student_id"], r["exercise"], r["row"]), []).append(r["answer"])
    texts: dict[str, str] = {}  # each student's handout, read once
    for (sid, exercise, row), answers in grid.items():
        if len(answers) < 2:
            continue
        if sid not in texts:
            texts[sid] = " ".join(pdf_text(made / "A" / "students" / f"{sid}.pdf").split())
        assert " ".join(answers).replace("-", "−") not in texts[sid], (sid, exercise, row)


@pytest.mark.tex
def test_a_smaller_roster_into_the_same_folder_leaves_only_its_students(tmp_path: Path) -> None:
    out = tmp_path / "lesson"
    for ids in (["S1", "s2"], ["s2"]):
        roster = tmp_path / f"{len(ids)}.csv"
        roster.write_text("id,name\n" + "".join(f"{i},N {i}\n" for i in ids))
        argv = ["handouts", "--preset", "classroom", "--roster", str(roster), "-q"]
        assert cli.main([*argv, "--sections", "2.1", "-o", str(out)]) == 0
    assert sorted(p.name for p in (out / "students").iterdir()) == ["s2.pdf"]


def test_handouts_never_write_or_remove_through_a_linked_students_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside, out = tmp_path / "outside", tmp_path / "lesson"
    outside.mkdir()
    out.mkdir()
    (outside / "thesis.pdf").write_text("x")
    (out / "students").symlink_to(outside)
    roster = tmp_path / "r.csv"
    roster.write_text("id,name\ns1,A\n")
    argv = ["handouts", "--preset", "classroom", "--roster", str(roster), "-o", str(out), "-q"]
    assert cli.main(argv) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert [p.name for p in outside.iterdir()] == ["thesis.pdf"]


@pytest.mark.tex
def test_key_for_a_code_regenerates_that_students_key(made: Path) -> None:
    row = next(csv.DictReader((made / "A" / "variants.csv").open(encoding="utf-8")))
    argv = ["handouts", "--preset", "classroom", "--key-for", row["variant"], "-q"]
    argv += ["--sections", "2.1-2.2,3,7.2", "-o", str(made / "C")]
    assert cli.main(argv) == 0
    alone = pdf_text(made / "C" / f"key-{row['variant']}.pdf")
    whole = pdf_text(made / "A" / "key.pdf")
    numbers = re.findall(r"−?\d+\.\d{2,}", alone)
    assert len(numbers) > 100  # every number of that student's part, in the same order
    assert " ".join(numbers) in " ".join(re.findall(r"−?\d+\.\d{2,}", whole))
    other = list(csv.DictReader((made / "A" / "variants.csv").open(encoding="utf-8")))[1]
    assert other["variant"] not in alone
