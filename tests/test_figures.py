"""Figures: heat maps, curves and bars drawn from the printed numbers, legible without colour."""

from __future__ import annotations

import re
import subprocess
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from glyphs import collisions

from workbook import engine
from workbook.config import Config, from_mapping
from workbook.printed import Book, Num
from workbook.render import Options, Worked
from workbook.render.figures import DARKEST, SPOT, Layout, grey, heatmap

FIGURE = re.compile(r"\\begin\{figblock\}.*?\\end\{figblock\}", re.S)


def figures_of(tex: str, kind: str) -> list[str]:
    """The figure blocks that contain `kind` ("Heat map of", "the whole curve", …)."""
    return [f for f in FIGURE.findall(tex) if kind in f]


def heatmaps(tex: str) -> list[str]:
    """Each heat map, with all its column blocks."""
    return figures_of(tex, "Heat map of")


TABLE = re.compile(r"\\begin\{heatmap\}.*?\\end\{heatmap\}", re.S)


def cells(figure: str) -> list[str]:
    """The values a heat map prints in its cells, block after block (not its key's)."""
    tables = "".join(TABLE.findall(figure))
    return re.findall(r"\\shade\{[\d.]+\}\{(?:\\marked\{)?\$(-?[\d.]+)\$", tables)


def test_attention_and_probabilities_get_heat_maps_from_the_printed_values(trace) -> None:
    tex = Worked(Config(), trace, Options(detail="results")).tex()
    maps = heatmaps(tex)
    assert len(maps) == 7  # two heads and the probabilities; four weight gradients
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
    assert text.count("in shades of grey") == 7
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


# --- curves, bars and gradient heat maps --------------------------------------------------
MARK = re.compile(r"\((-?[\d.]+)pt,(-?[\d.]+)pt\) circle .*% (GELU'?) % (\S+) (\S+)$")
BAR = re.compile(r"\((-?[\d.]+)pt,[-\d.]+pt\) rectangle \((-?[\d.]+)pt,.*% bar (\d+) (\S+)$")

Mark = tuple[tuple[Decimal, Decimal], tuple[float, float]]


def marks(figure: str, curve: str) -> list[Mark]:
    """The marks on one curve ("GELU" or "GELU'"): each printed (x, y), as its source line
    says, and where it is drawn, in pt."""
    found = [MARK.search(ln) for ln in figure.splitlines()]
    return [
        ((Decimal(m[4]), Decimal(m[5])), (float(m[1]), float(m[2])))
        for m in found
        if m and m[3] == curve
    ]


def assert_marked(points: set, drawn: list[Mark]) -> None:
    """Every drawn mark is one of the points, the marks lie on one linear map of the data
    (read off two of them), and every point is marked: a mark lies within SPOT pt of it
    (closer points share one)."""
    data = {d for d, _ in drawn}
    assert data <= points and len(drawn) > 100
    (a, pa), (b, pb) = min(drawn), max(drawn)
    low = min(drawn, key=lambda m: m[0][1])
    high = max(drawn, key=lambda m: m[0][1])
    sx = (pb[0] - pa[0]) / float(b[0] - a[0])
    sy = (high[1][1] - low[1][1]) / float(high[0][1] - low[0][1])

    def pt(p: tuple[Decimal, Decimal]) -> tuple[float, float]:
        return (
            pa[0] + float(p[0] - a[0]) * sx,
            low[1][1] + float(p[1] - low[0][1]) * sy,
        )

    for d, at in drawn:  # 0.01 pt: the source's rounding of positions
        assert abs(pt(d)[0] - at[0]) < 0.02 and abs(pt(d)[1] - at[1]) < 0.02, d
    spots = [at for _, at in drawn]
    for p in points:
        px, py = pt(p)
        assert any(abs(px - x) <= SPOT + 0.02 and abs(py - y) <= SPOT + 0.02 for x, y in spots), p


def bars(figure: str) -> list[list[tuple[int, str]]]:
    """Each panel's bars as (row, printed label), in row order."""
    panels: list[list[tuple[float, float, int, str]]] = []
    for m in filter(None, map(BAR.search, figure.splitlines())):
        if m[3] == "0":
            panels.append([])
        panels[-1].append((float(m[1]), float(m[2]), int(m[3]), m[4]))
    for panel in panels:  # a bar's length is the value it is labelled with (to 0.01 pt)
        zero, end, _, v = max(panel, key=lambda b: abs(float(b[3])))
        scale = (end - zero) / float(v)
        assert all(abs(e - z - scale * float(v)) < 0.03 for z, e, _, v in panel), panel
    return [[(j, label) for _, _, j, label in panel] for panel in panels]


def grid(figure: str) -> dict[tuple[int, int], str]:
    """A heat map's printed cells by (row, column), 0-based, read from its column blocks."""
    out = {}
    for table in TABLE.findall(figure):
        lines = table.splitlines()
        head = next(ln for ln in lines if ln.startswith(" & "))
        columns = [int(c) - 1 for c in re.findall(r"\\colhead\{(\d+)\}", head)]
        rows = [ln for ln in lines if ln.startswith(r"\rowhead")]
        for i, row in enumerate(rows):
            values = re.findall(r"\\shade\{[\d.]+\}\{\$(-?[\d.]+)\$\}", row)
            out.update({(i, j): v for j, v in zip(columns, values, strict=True)})
    return out


@pytest.fixture(scope="module")
def results_tex(trace) -> str:
    """The default workbook's source with results only: every figure, few worked lines."""
    return Worked(Config(), trace, Options(detail="results")).tex()


def test_gelu_curves_mark_every_printed_input_at_its_gelu_and_slope(results_tex, book) -> None:
    (figure,) = figures_of(results_tex, "the whole curve")
    x, y = book.nums("ffn_hidden"), book.nums("ffn_act")
    gelu = {(a.value, b.value) for a, b in zip(x.ravel(), y.ravel(), strict=True)}
    assert_marked(gelu, marks(figure, "GELU"))
    back = next(s for s in book.t.steps if s.name == "d.ffn_hidden")
    slope = book.part_table(back, "grad", False)
    slopes = {(a.value, b.value) for a, b in zip(x.ravel(), slope.ravel(), strict=True)}
    assert_marked(slopes, marks(figure, "GELU'"))
    assert "this step's 320 inputs" in figure
    # the close-up's axis runs from the smallest printed input to the largest, so labelled
    low, high = min(x.ravel(), key=lambda n: n.value), max(x.ravel(), key=lambda n: n.value)
    assert f"node[below] {{${low.cell}$}}" in figure and f"node[below] {{${high.cell}$}}" in figure
    assert r"\curvesolid\ GELU$(x)$, \curvedashed\ its slope" in figure  # styles, not colours
    assert "GELU (solid) and its slope" in figure


def test_softmax_of_row_one_as_bars_labelled_with_printed_values(results_tex, book) -> None:
    (figure,) = figures_of(results_tex, "Softmax turns")
    logits, probs = bars(figure)
    assert logits == [(j, x.cell) for j, x in enumerate(book.nums("logits")[0])]
    assert probs == [(j, x.cell) for j, x in enumerate(book.nums("probs")[0])]
    assert r"\textit{transformers}" in figure and "node[above] {softmax}" in figure


def test_each_backward_chapter_maps_its_largest_weight_gradient(results_tex, book) -> None:
    """W_lm, W2 (a tie with W1: the first computed), W_O and E_token; signed values shaded
    by size against the largest, printed where they fit, else a bar marks each negative."""
    chapters = re.split(r"\\chapter\{", results_tex)[1:]
    found = {n + 1: heatmaps(body) for n, body in enumerate(chapters)}
    gradients = {9: "d.W_lm", 10: "d.W2", 11: "d.W_O", 12: "d.E_token"}
    assert {n: len(maps) for n, maps in found.items() if n >= 8} == {8: 0} | dict.fromkeys(
        gradients, 1
    ) | {13: 0}
    for number, name in gradients.items():
        (figure,) = found[number]
        nums = book.nums(name)
        top = max(abs(x.value) for x in nums.ravel())
        assert rf"share of the largest, ${top.scaleb(-nums[0, 0].exp)}$" in figure
        if r"\begin{heatcompact}" in figure:  # 16 × 64 and 16 × 16: too wide for values
            negative = [x for x in nums.ravel() if x.value < 0]
            assert figure.count(r"\negative") == len(negative) + 1  # and once in the key
            continue
        printed = grid(figure)
        assert printed == {idx: x.cell for idx, x in np.ndenumerate(nums)}, name
        assert any(v.startswith("-") for v in printed.values())
        shades = re.findall(
            r"\\shade\{([\d.]+)\}\{\$(-?[\d.]+)\$\}", "".join(TABLE.findall(figure))
        )
        for shade, cell in shades:  # by |value| against the largest, whatever the sign
            assert shade == grey(float(abs(Decimal(cell).scaleb(nums[0, 0].exp)) / top))
        assert "the sign is printed with each value" in figure


def test_a_figures_numbers_follow_the_seed(results_tex) -> None:
    c = from_mapping({"seed": 7})
    other = Worked(c, engine.run(c), Options(detail="results")).tex()
    for kind in ("the whole curve", "Softmax turns"):
        assert figures_of(results_tex, kind) and figures_of(other, kind)
    curves = [figures_of(tex, "the whole curve")[0] for tex in (results_tex, other)]
    assert marks(curves[0], "GELU") != marks(curves[1], "GELU")
    assert marks(curves[0], "GELU'") != marks(curves[1], "GELU'")
    softmax = [bars(figures_of(tex, "Softmax turns")[0]) for tex in (results_tex, other)]
    assert softmax[0][0] != softmax[1][0] and softmax[0][1] != softmax[1][1]
    gradient = [grid(heatmaps(tex)[3]) for tex in (results_tex, other)]  # dW_lm
    assert len(gradient[0]) == len(gradient[1]) == 96 and gradient[0] != gradient[1]


def test_no_figures_leaves_out_curves_bars_and_tikz(trace) -> None:
    tex = Worked(Config(), trace, Options(detail="results", figures=False)).tex()
    for mark in (
        "usepackage{tikz}",
        "tikzpicture",
        r"\begin{figblock}",
        "Softmax turns",
        "Heat map",
    ):
        assert mark not in tex, mark


def test_a_heat_map_too_wide_for_small_cells_is_left_out(book) -> None:
    wide = np.array([[book.num("ffn_act", (0, 0))] * 100] * 4)
    assert heatmap(wide, what="x", caption="c", layout=Layout("a4"), signed=True) == ""
    narrow = wide[:, :60]
    assert r"\begin{heatcompact}{60}" in heatmap(
        narrow, what="x", caption="c", layout=Layout("a4"), signed=True
    )


# --- the compiled workbook --------------------------------------------------------------
FIGURE_TEXT = {
    "curves": "the whole curve",
    "bars": "Softmax turns row 1",
    "gradient": "Each cell is an entry of dWlm",
}


@pytest.fixture(scope="module")
def figure_pages(default_build: Path, pdf_texts: dict[str, str]) -> dict[str, int]:
    """The page (1-based) of the default workbook that shows each kind of new figure."""
    pages = [" ".join(p.split()) for p in pdf_texts["workbook"].split("\f")]
    return {
        k: next(n for n, p in enumerate(pages, 1) if text in p) for k, text in FIGURE_TEXT.items()
    }


def page_text(pdf: Path, page: int) -> str:
    run = ["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"]
    return " ".join(subprocess.run(run, check=True, capture_output=True, text=True).stdout.split())


def greys(pdf: Path, page: int, out: Path) -> dict[int, int]:
    """How many pixels of each grey level the page has, rendered without colour
    (pdftoppm -gray, 100 dpi)."""
    subprocess.run(
        ["pdftoppm", "-gray", "-r", "100", "-f", str(page), "-l", str(page), str(pdf), str(out)],
        check=True,
    )
    (pgm,) = out.parent.glob(f"{out.name}*.pgm")
    pixels = pgm.read_bytes().split(maxsplit=4)[4]  # after P5, width, height, maxval
    return dict(zip(*np.unique(np.frombuffer(pixels, np.uint8), return_counts=True), strict=True))


# The grey each figure's page must show in a large area: the curves' band (black!15), the
# bars (black!25) and the darkest heat-map cell (the largest |value| of dW_lm).
AREA_GREY = {"curves": 0.85, "bars": 0.75, "gradient": DARKEST}


@pytest.mark.tex
def test_figures_print_in_greyscale_with_their_text(
    default_build: Path, figure_pages: dict[str, int], book: Book, tmp_path: Path
) -> None:
    """Each figure's page rendered in grey shows black text on white and its shaded areas;
    its labels, caption and printed values are text on the page."""
    pdf = default_build / "workbook.pdf"
    for kind, page in figure_pages.items():
        counts = greys(pdf, page, tmp_path / kind)
        level = round(255 * AREA_GREY[kind])
        assert counts.get(0, 0) > 1000 and counts.get(255, 0) > 100_000, kind
        assert sum(counts.get(v, 0) for v in range(level - 1, level + 2)) > 150, kind
    text = {k: page_text(pdf, p) for k, p in figure_pages.items()}

    def shown(x: Num) -> str:
        return x.cell.replace("-", "−")  # pdftotext gives the minus sign

    x = book.nums("ffn_hidden").ravel()
    curves = text["curves"]
    assert "the whole curve" in curves and "close up: this step" in curves
    assert shown(min(x, key=lambda n: n.value)) in curves
    assert shown(max(x, key=lambda n: n.value)) in curves
    assert "its slope GELU′" in curves and "GELU (solid) and its slope GELU′ (dashed)" in curves
    for n in ("logits", "probs"):
        assert all(shown(v) in text["bars"] for v in book.nums(n)[0]), n
    assert "softmax" in text["bars"] and "Softmax turns row 1 of logits" in text["bars"]
    assert all(shown(v) in text["gradient"] for v in book.nums("d.W_lm").ravel())
    assert "the sign is printed with each value" in text["gradient"]


@pytest.mark.tex
def test_figure_pages_have_no_glyph_collisions(
    default_build: Path, figure_pages: dict[str, int]
) -> None:
    found = collisions(default_build / "workbook.pdf", sorted(set(figure_pages.values())))
    assert found == [], found[:5]
