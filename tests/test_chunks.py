"""Issue 10: a big document compiled as two chunks side by side and joined is the document a
single pass makes: pages, page labels, named destinations, links and their targets,
bookmarks, and the .aux the answer key cites."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import citations, classroom_build, read_pdf_text
from pypdf import PdfReader
from pypdf.generic import DictionaryObject

from workbook import chunks, engine
from workbook import compile as tex
from workbook.build import Builder, BuildRequest, build
from workbook.config import Config, preset
from workbook.render import Options, Worked
from workbook.trace import Trace

SINGLE = 10**9  # no document is that big: every one compiles in a single pass


def structure(pdf: Path) -> dict[str, object]:
    """What a reader navigates by: page labels, each named destination's page and position,
    each link's page, area, destination and that destination's page, the bookmarks with
    their depth, target and open state."""
    r = PdfReader(pdf)
    index = {p.indirect_reference.idnum: i for i, p in enumerate(r.pages)}
    dests = {}
    for name, value in chunks.name_tree(r.trailer["/Root"]["/Names"]["/Dests"]).items():
        target = value.get_object()
        if isinstance(target, DictionaryObject):  # a destination given as {/D [...]}
            target = target["/D"]
        dests[name] = (index[target[0].idnum], [str(x) for x in target[1:]])
    links = []
    for i, page in enumerate(r.pages):
        for annot in page.get("/Annots") or []:
            a = annot.get_object()
            if a["/Subtype"] != "/Link":
                continue
            action, area = a["/A"], [round(float(x), 2) for x in a["/Rect"]]
            name = str(action["/D"])
            if action["/S"] == "/GoToR":  # the key's citation of a workbook page
                links.append((i, area, name, str(action["/F"])))
            else:
                links.append((i, area, name, dests[name][0]))
    outline = []

    def walk(node: object, depth: int) -> None:
        while node is not None:
            item = node.get_object()
            target = (str(item["/Title"]), str(item["/A"]["/D"]), int(item.get("/Count", 0)))
            outline.append((depth, *target))
            walk(item.get("/First"), depth + 1)
            node = item.get("/Next")

    root = r.trailer["/Root"]["/Outlines"]
    walk(root.get("/First"), 0)
    return {
        "pages": len(r.pages),
        "labels": list(r.page_labels),
        "dests": dests,
        "links": links,
        "outline": outline,
        "outline count": int(root["/Count"]),
    }


@pytest.fixture(scope="module")
def classroom() -> Config:
    return preset("classroom")


@pytest.fixture(scope="module")
def worked_source(classroom: Config) -> str:
    trace: Trace = engine.run(classroom)
    return Worked(classroom, trace, Options()).tex()


def test_split_cuts_at_chapters_into_halves_that_make_the_body(worked_source: str) -> None:
    first, second = chunks.split(worked_source)
    body = worked_source[worked_source.index("\\begin{document}") :]
    begin = "\\begin{document}%\n" + chunks.LOAD_COUNTERS
    one = first[first.index("\\begin{document}") : first.index(chunks.SAVE_COUNTERS)]
    two = second[second.index(begin) + len(begin) : second.rindex("\\end{document}")]
    assert one + two + "\\end{document}" == body  # nothing lost, nothing twice
    assert two.startswith(("\\setcounter{chapter}", "\\setcounter{part}"))
    assert first.startswith(worked_source[: worked_source.index("\\begin{document}")])
    assert 0.5 < len(one) / len(two) < 2  # about equal work


def test_a_source_without_chapters_is_not_split() -> None:
    source = "\\documentclass{book}\n\\begin{document}%\nHello.\n\\end{document}\n"
    assert chunks.split(source) == []


def test_joined_aux_has_each_label_once_and_the_total_pages() -> None:
    head = "\\relax \n\\providecommand\\hyper@newdestlabel[2]{}"
    first = (
        f"{head}\n\\newlabel{{a}}{{{{1}}{{3}}{{A}}{{chapter.1}}{{}}}}\n\\gdef \\@abspage@last{{9}}"
    )
    second = (
        f"{head}\n\\newlabel{{b}}{{{{2}}{{12}}{{B}}{{chapter.2}}{{}}}}\n\\gdef \\@abspage@last{{5}}"
    )
    aux = chunks.merge_aux([first, second], 14)
    assert aux.splitlines() == [
        "\\relax ",
        "\\providecommand\\hyper@newdestlabel[2]{}",
        "\\newlabel{a}{{1}{3}{A}{chapter.1}{}}",
        "\\newlabel{b}{{2}{12}{B}{chapter.2}{}}",
        "\\gdef \\@abspage@last{14}",
    ]


@pytest.mark.parametrize(
    ("estimate", "parts"),
    [
        # d_model 64: the workbook takes both cores, the exercises go beside, the key alone
        ({"workbook": 2815, "exercises": 898, "answers": 704}, (2, 1, 2)),
        ({"workbook": 471, "exercises": 213, "answers": 118}, (1, 1, 1)),  # the default
        ({"exercises": 898, "answers": 704}, (1, 2, 2)),  # --only exercises,answers
        ({}, (1, 1, 1)),  # --tex-only estimates nothing
    ],
)
def test_big_documents_that_would_compile_alone_are_chunked(
    tmp_path: Path, estimate: dict[str, int], parts: tuple[int, int, int]
) -> None:
    builder = Builder(Config(), BuildRequest(tmp_path, Options()))
    builder.estimate = estimate
    assert tuple(builder.parts(n) for n in ("workbook", "exercises", "answers")) == parts


@pytest.mark.tex
def test_a_chunked_build_is_the_single_pass_build(tmp_path: Path, classroom: Config) -> None:
    """The workbook and the key, each compiled in two chunks (threshold 0), against the
    single-pass build."""
    made, only = {}, ("workbook", "answers")
    for what, limit in (("single", SINGLE), ("chunked", 0)):
        out = tmp_path / what
        req = BuildRequest(out, Options(), only=only, quiet=True, chunk_pages=limit)
        build(classroom, req)
        made[what] = out
        assert sorted(p.name for p in out.iterdir()) == sorted(  # no private folders left
            f"{n}{s}" for n in only for s in (".tex", ".pdf", ".log", ".aux")
        )
    single, chunked = made["single"], made["chunked"]
    assert "Joined 2 chunks" in (chunked / "workbook.log").read_text()
    assert "Joined 2 chunks" in (chunked / "answers.log").read_text()
    for name in ("workbook", "answers"):
        one, two = structure(single / f"{name}.pdf"), structure(chunked / f"{name}.pdf")
        for part in one:
            assert two[part] == one[part], f"{name}: {part}"
        assert read_pdf_text(chunked / f"{name}.pdf") == read_pdf_text(single / f"{name}.pdf")
    key = structure(chunked / "answers.pdf")["links"]
    assert {type(target) for *_, target in key} == {str, int}  # cites the workbook, and itself
    wb = structure(chunked / "workbook.pdf")
    assert len(wb["links"]) > 50 and len(wb["dests"]) > wb["pages"]  # a real test of links
    depth = {d for d, *_ in wb["outline"]}
    assert depth == {0, 1, 2}  # parts, chapters, sections
    labels = tex.label_pages(single / "workbook.aux")
    assert tex.label_pages(chunked / "workbook.aux") == labels and len(labels) > 50
    source = (chunked / "workbook.tex").read_text()
    assert source == (single / "workbook.tex").read_text()
    assert tex.made_from(chunked / "workbook.aux", source)  # the key's check still holds
    assert citations(chunked / "answers.pdf") == citations(single / "answers.pdf")


@pytest.mark.tex
def test_a_chunked_compile_with_a_fixed_date_gives_the_same_bytes(
    tmp_path: Path, worked_source: str
) -> None:
    pdfs = []
    for run in ("a", "b"):
        made = tex.compile_document(worked_source, tmp_path / run, "workbook", epoch=0, parts=2)
        assert "Joined 2 chunks" in made.log.read_text()
        pdfs.append(made.pdf.read_bytes())
    assert pdfs[0] == pdfs[1]


@pytest.mark.tex
def test_a_chunk_that_fails_names_its_log_and_changes_nothing(
    tmp_path: Path, worked_source: str
) -> None:
    (tmp_path / "workbook.pdf").write_bytes(b"previous")
    broken = worked_source.replace("\\end{document}", "\\undefinedmacro\n\\end{document}")
    with pytest.raises(tex.TexFailedError, match=r"workbook\.failed\.log") as err:
        tex.compile_document(broken, tmp_path, "workbook", parts=2)
    assert "Undefined control sequence" in str(err.value)
    assert "\\undefinedmacro" in (tmp_path / "workbook.failed.log").read_text()
    assert (tmp_path / "workbook.pdf").read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["workbook.failed.log", "workbook.pdf"]


@pytest.mark.tex
def test_a_whole_build_in_chunks_is_the_build_without(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, classroom: Config
) -> None:
    """All three documents (threshold 0): the bigger of the workbook and the exercises in
    chunks (the classroom's exercises, 120 pages to 100), the other started on the core
    the chunks' last passes leave spare, the key in chunks once the workbook is done: the
    same documents as the classroom's build without chunks that other tests read."""
    build(classroom, BuildRequest(tmp_path, Options(), quiet=True, chunk_pages=0))
    assert "Joined 2 chunks" in (tmp_path / "exercises.log").read_text()
    assert "Joined" not in (tmp_path / "workbook.log").read_text()  # the smaller one
    assert "Joined 2 chunks" in (tmp_path / "answers.log").read_text()
    single_build = classroom_build(tmp_path_factory)
    for name in ("workbook", "exercises", "answers"):
        made, single = tmp_path / f"{name}.pdf", single_build / f"{name}.pdf"
        assert structure(made) == structure(single), name
        assert read_pdf_text(made) == read_pdf_text(single), name
    assert not list(tmp_path.glob(".*"))  # no private folders left
