"""Figures: heat maps drawn from the printed numbers, legible without colour."""

from __future__ import annotations

import re

import pytest

from workbook import engine
from workbook.config import Config, from_mapping
from workbook.printed import Book
from workbook.render import Options, Worked
from workbook.render.figures import DARKEST, grey

HEATMAP = re.compile(r"\\begin\{heatmap\}.*?\\end\{heatmap\}", re.S)


def heatmaps(tex: str) -> list[str]:
    return HEATMAP.findall(tex)


def cells(block: str) -> list[str]:
    return re.findall(r"\\shade\{[\d.]+\}\{(?:\\marked\{)?\$(-?[\d.]+)\$", block)


def test_attention_and_probabilities_get_heat_maps_from_the_printed_values(trace) -> None:
    tex = Worked(Config(), trace, Options(detail="results")).tex()
    maps = heatmaps(tex)
    assert len(maps) == 3  # two heads and the probabilities
    book = Book(trace)
    attn = [
        x.cell for i, row in enumerate(book.nums("attn.0")) for j, x in enumerate(row) if j <= i
    ]
    assert cells(maps[0]) == attn
    assert maps[0].count(r"\masked") == 10  # the causal mask of 5 positions
    probs = [x.cell for x in book.nums("probs").ravel()]
    assert cells(maps[2]) == probs
    framed = re.findall(r"\\marked\{\$([\d.]+)\$\}", maps[2])
    assert framed == [book.nums("probs")[i, t].cell for i, t in enumerate(Config().tokens[1:])]


def test_a_heat_maps_numbers_follow_the_seed() -> None:
    def first_map(seed: int) -> list[str]:
        c = from_mapping({"seed": seed})
        return cells(heatmaps(Worked(c, engine.run(c), Options(detail="results")).tex())[0])

    assert first_map(42) != first_map(7)


def test_no_figures_leaves_them_out(trace) -> None:
    tex = Worked(Config(), trace, Options(detail="results", figures=False)).tex()
    assert not heatmaps(tex) and "in shades of grey" not in tex


def test_shades_run_from_white_to_a_grey_that_keeps_digits_legible() -> None:
    assert grey(0) == "1.000" and grey(1) == f"{DARKEST:.3f}" and grey(2) == grey(1)
    assert DARKEST >= 0.4


@pytest.mark.tex
def test_heat_maps_print_their_values_and_a_description(pdf_texts: dict[str, str]) -> None:
    text = pdf_texts["workbook"]
    assert text.count("in shades of grey") == 3
    assert "the darker the cell, the more weight" in text
    assert "The framed value is" in " ".join(text.split())


FALK = re.compile(r"\\begin\{falk\}.*?\\end\{falk\}", re.S)


def test_every_product_worked_gets_a_falk_scheme(trace) -> None:
    """The first worked element of each matrix product (dQ starts in row 2: row 1 is zero):
    row i of the left factor and column j of the right one shaded, the result's entry framed
    with its printed value."""
    tex = Worked(Config(), trace, Options()).tex()
    products = [s for s in trace.steps if type(s).__name__ == "Contraction" and s.kind == "matmul"]
    schemes = FALK.findall(tex)
    assert len(schemes) == len(products) == 42
    book = Book(trace)
    q = schemes[0]  # Q^(1) = X W_Q^(1): element (1, 1)
    framed = re.findall(r"\\marked\{\$(-?[\d.]+)\$\}", q)
    assert framed == [book.nums("Q.0")[0, 0].cell]
    shaded = re.findall(r"\\shade\{[\d.]+\}\{\$(-?[\d.]+)\$\}", q)
    x, w = book.nums("X"), book.nums("W_Q.0")
    column = [w[r, 0].cell for r in (0, 1, 2, 15)]  # three, an ellipsis, the last
    row = [x[0, c].cell for c in (0, 1, 2, 15)]
    assert shaded == column + row
    assert Options(figures=False) and not FALK.findall(
        Worked(Config(), trace, Options(figures=False, detail="sample")).tex()
    )


def test_every_chapter_opens_with_where_it_sits(trace) -> None:
    tex = Worked(Config(), trace, Options(detail="results")).tex()
    chapters = re.split(r"\\chapter\{", tex)[1:]
    assert len(chapters) == 13
    for number, body in enumerate(chapters, start=1):
        here = re.findall(r"\\herebox\{\\textbf\{(\d+)\}", body.split(r"\section")[0])
        assert here == ([str(number)] if number < 13 else []), number  # AdamW: a part alone
    forward = chapters[0].split(r"\section")[0]
    backward = chapters[10].split(r"\section")[0]
    # an arrow carries what the next chapter reads: dQ, dK, dV [5×8] into chapter 12
    assert r"\textbf{11}\,\ attention}\ $[5\times8]\!\rightarrow$" in backward
    assert forward.count(r"\chapbox") == 6  # the other forward chapters
    assert r"$[5\times16]\!\rightarrow$" in forward  # X flows on with its shape
