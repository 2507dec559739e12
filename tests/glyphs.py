"""Glyph-level collision check for the compiled PDFs.

TeX does not warn when a number is wider than a fixed-width table column (the
``w{r}{..pt}`` columns of the matrix tables): the number is printed anyway, on top
of its neighbour and across the table's vertical rule.  This module finds that
from the PDF itself:

* two glyphs that overlap (``kind == "glyphs"``), and
* a glyph that a table rule runs through (``kind == "rule"``): the lines drawn by
  ``|`` and ``\\hline`` in a tabular, the ruled cells of the exercise grids, the
  ``\\fbox`` of an answer box, the ruled working space.

API::

    collisions(pdf_path, pages=None, processes=None) -> list[Collision]
    page_collisions(page) -> list[Collision]        # one PyMuPDF page
    Collision(page, kind, first, second, first_box, second_box, overlap, context)

Pages are 1-based physical pages of the PDF (not the printed folios).  Boxes are
``(x0, top, x1, bottom)`` in PDF points measured from the top-left corner of the
page.  Run it by hand with ``python tests/glyphs.py FILE.pdf [FIRST[-LAST]]``.

The PDF is read with PyMuPDF (MuPDF's interpreter, about 100 pages a second), which
replaced pdfplumber (pdfminer, pure Python, about 10 a second): on the builds of the test
suite the two read the same glyphs and rules, positions within 0.05 pt, far inside every
tolerance below.

Geometry
--------
The PDF gives each glyph its advance width (``x0``..``x1``), its font size and its
baseline; the box of the font's full height (``size``) is much
taller than the ink and overlaps the boxes of the lines above and below, so it is
not used vertically.  Instead each glyph gets an estimated *ink band* from its
baseline (see ``_CAP`` and ``_XHEIGHT``); glyphs of the math extension font and
the radical sign hang *below* their baseline (TeX places them by their top), so
their band runs downwards.  Descenders are ignored on purpose: a collision of a
descender with the line below is not what this check is for, and counting them
would flag every tight pair of lines.

Horizontally the advance box is used as it is, minus tolerances: an advance box
is wider than the ink (side bearings of about 0.3-0.5 pt per side at 9 pt), so
boxes that overlap by a few tenths of a point do not touch on paper.

The thresholds were chosen from the three PDFs of the default build (pages viewed
as PNG to confirm); each constant below says why it has its value.
"""

from __future__ import annotations

import bisect
import functools
import multiprocessing
import os
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import pymupdf

Box = tuple[float, float, float, float]

# --- vertical extent of a glyph -----------------------------------------------------
# Ink band of an ordinary glyph: from the baseline up to 0.7 em.  Digits are 0.644 em
# tall in Latin Modern, capitals 0.683 em, ascenders and parentheses 0.69-0.75 em.
# A superscript that runs into the top of the next number (as in "10^-13" printed
# over the following "2") overlaps this band by about 40 %.
_CAP = 0.7
# Band used against *horizontal* rules: baseline to x-height (0.43 em).  A fraction
# bar, the bar of a radical, an \overline or the running-head rule sits above the
# x-height of the glyphs next to it (TeX keeps at least one rule thickness of
# clearance above a lowercase denominator), and the \hline under a table row sits
# below the baseline; none of them enters the x-height band, and every letter or
# digit that a horizontal rule really strikes through has ink there.
_XHEIGHT = 0.43
# Glyphs whose ink hangs below the baseline: big delimiters and operators of the
# math extension font (cmex/lmex), and the radical sign of the symbol font.  Their
# band is [baseline, baseline + size].  Without this the text-style sum sign, whose
# origin is at its top, is taken to sit on the line above and "collides" with it.
# These glyphs are checked against rules but not against other glyphs: they are tall
# shapes whose advance box says little about where the ink is, and scripts are
# tucked against them on purpose (chapter 11 prints `\Bigr)^{\!\top}`, whose box
# overlaps the big parenthesis by 1.4 pt without touching it).
_HANGING_FONTS = ("MathExtension", "cmex", "lmex")
_HANGING_TEXT = frozenset("√")

# --- glyph against glyph --------------------------------------------------------------
# Two glyphs are on the same line when their ink bands overlap by more than this
# fraction of the smaller band.  A superscript and a subscript on the same nucleus
# (x_i^2) are kept apart by TeX (at least 4 rule thicknesses between them), as are a
# numerator and its denominator; their bands do not overlap at all.  Base and script
# (W_Q) do overlap vertically but sit side by side, not on top of each other.
_SAME_LINE = 0.25
# Any two glyphs may overlap horizontally by up to this many em (of the smaller
# glyph) before it counts: the side bearings, and the workbook's own
# `\mkern-1mu\times\mkern-1mu` in numbers like 2.823x10^-6 (1 mu = 1/18 em =
# 0.056 em; box overlaps of up to 0.50 pt at 9 pt are in the default build and do
# not touch on paper).  The smallest true overlap seen in the old builds between
# digits of neighbouring cells is 0.107 em (0.96 pt); an overflowing minus sign that
# only grazes a bold row heading (0.55 pt) also crosses the table rule between them
# and is reported as a rule crossing.
_GLYPH_TOL = 0.07
# Font kerns: consecutive glyphs of the same font, one of them a letter, may overlap
# by up to 0.12 em.  The largest kern in the builds is 0.107 em ("Te", "Fa", "PA",
# "y."); Latin Modern has none between digits, so two digits that touch (the last
# digit of one cell and the first of an overflowing neighbour, next to each other in
# the content stream) are held to _GLYPH_TOL, not to this.
_KERN_TOL = 0.12
# Relations built with \joinrel (\longrightarrow, \Longrightarrow, \mapsto, \implies)
# overlap their pieces by 3 mu = 0.167 em.
_JOIN_TOL = 0.2
_JOIN_PIECES = frozenset("−-=→←↔⇒⇐⇔↦⟶⟵⟹⟸⟺⊢⊣|∣")
# Accents (hat, tilde, bar, dot, vector arrow, negation slash of \neq) are meant to
# sit on top of the glyph after them; TeX puts a math accent on the same baseline as
# a lowercase nucleus.  They are left out of the glyph check (but not the rule check).
_ACCENT_CATEGORIES = frozenset({"Sk", "Lm", "Mn", "Me"})

# --- glyph against rule ---------------------------------------------------------------
# A line or rectangle no thicker than this is a rule (tabular rules, \fbox, the
# 0.4 pt working-space rules and head rule); thicker rectangles are filled areas.
_RULE_MAX_THICKNESS = 2.0
# A rule crosses a glyph when the rule's stroke reaches more than this far into the
# glyph's advance box (from whichever side is nearer), which is past its side
# bearing.  In the builds the stroke of a vertical rule either stays at least 0.3 pt
# outside a glyph's advance box or reaches 1.0 pt or more into it (3.6 pt through an
# overflowing minus sign), so the value is not delicate.
_RULE_TOL = 0.5
# A horizontal rule counts when it lies more than this far inside the x-height band
# and overlaps the glyph's advance by more than _RULE_TOL.
_HRULE_TOL = 0.3
# Vertical rules: the rule's vertical extent must cover this fraction of the ink band
# (tabular rules span the whole row; a rule ending just at a glyph does not count).
_VRULE_COVER = 0.25

# Baselines are bucketed into bands this tall (pt) so glyphs are compared only with
# glyphs of the same or the neighbouring lines.
_BUCKET = 4.0


@dataclass(frozen=True)
class Collision:
    """Two things printed on top of each other on one page.

    kind: "glyphs" (two glyphs overlap) or "rule" (a rule runs through a glyph).
    first, second: the glyph texts; for a rule, second is "vertical rule" or
    "horizontal rule".  first_box, second_box: (x0, top, x1, bottom) in pt from the
    page's top-left corner (the glyph's advance width and estimated ink band).
    overlap: how far they intrude into each other, in pt.  context: the glyphs
    printed around the collision, in the order they were typeset.
    """

    page: int
    kind: str
    first: str
    second: str
    first_box: Box
    second_box: Box
    overlap: float
    context: str

    def __str__(self) -> str:
        x0, top, _, _ = self.first_box
        return (
            f"p. {self.page}: {self.first!r} x {self.second!r} overlap {self.overlap:.2f} pt "
            f"at ({x0:.1f}, {top:.1f}) in {self.context!r}"
        )


@dataclass(slots=True)  # not frozen: a frozen dataclass is slow to make, and pages hold thousands
class _Glyph:
    index: int  # order in the content stream
    text: str
    font: str
    size: float
    x0: float
    x1: float
    top: float  # ink band, from the page top
    bottom: float
    xtop: float  # x-height band, for horizontal rules
    xbottom: float
    skip: bool  # left out of the glyph-against-glyph check


@dataclass(slots=True)
class _Rule:
    x0: float
    x1: float
    top: float
    bottom: float

    @property
    def vertical(self) -> bool:
        return self.x1 - self.x0 <= self.bottom - self.top


@functools.cache
def _is_accent(text: str) -> bool:
    return any(unicodedata.category(ch) in _ACCENT_CATEGORIES for ch in text)


def _glyphs_and_rules(page: pymupdf.Page) -> tuple[list[_Glyph], list[_Rule]]:
    """The page's visible glyphs, in content-stream order, and its thin axis-parallel
    rules."""
    return _glyphs(page), _rules(page)


def _glyphs(page: pymupdf.Page) -> list[_Glyph]:
    glyphs: list[_Glyph] = []
    page_box = page.rect
    for span in sorted(page.get_texttrace(), key=lambda s: s["seqno"]):
        dx, dy = span["dir"]
        upright = dx > 0 and abs(dy) < 1e-6
        size, font = span["size"], span["font"]
        hanging_font = any(f in font for f in _HANGING_FONTS)
        for code, _glyph_id, origin, bbox in span["chars"]:
            text = chr(code) if code > 0 else ""
            x0, x1 = bbox[0], bbox[2]
            if not text.strip() or x1 - x0 <= 0.05 or not upright:
                continue
            baseline = origin[1]
            if not page_box.contains(pymupdf.Point(origin)):  # cut off with a tile's rest
                continue
            hanging = hanging_font or text in _HANGING_TEXT
            if hanging:
                top, bottom = baseline, baseline + size
                xtop, xbottom = top, bottom
            else:
                top, bottom = baseline - _CAP * size, baseline
                xtop, xbottom = baseline - _XHEIGHT * size, baseline
            glyphs.append(
                _Glyph(
                    index=len(glyphs),
                    text=text,
                    font=font,
                    size=size,
                    x0=x0,
                    x1=x1,
                    top=top,
                    bottom=bottom,
                    xtop=xtop,
                    xbottom=xbottom,
                    skip=hanging or _is_accent(text),
                )
            )
    return glyphs


def _rules(page: pymupdf.Page) -> list[_Rule]:
    """Stroked lines (widened by half their stroke) and thin rectangles, filled or
    stroked; a thicker stroked rectangle is a frame: its four sides."""
    rules: list[_Rule] = []
    clips: list[pymupdf.Rect] = []  # the clip in force at each nesting level
    for path in page.get_drawings(extended=True):
        kind, level = path.get("type") or "", path.get("level", 0)
        if kind in ("clip", "group"):  # a clip's scissor is already cut by the outer ones
            del clips[level:]
            clips.append(path.get("scissor") or (clips[-1] if clips else page.rect))
            continue
        clip = clips[min(level, len(clips)) - 1] if clips and level else page.rect
        found = len(rules)
        stroke, half = "s" in kind, (path.get("width") or 0.0) / 2
        items = path["items"]
        polygon = items and all(item[0] == "l" for item in items)
        if "f" in kind and not stroke and path.get("closePath") and polygon:
            items = [("re", path["rect"])]  # a filled polygon: its box
        for item in items:
            if item[0] == "l":
                if not stroke:
                    continue
                (ax, ay), (bx, by) = item[1], item[2]
                x0, x1, top, bottom = min(ax, bx), max(ax, bx), min(ay, by), max(ay, by)
                if x1 - x0 < 0.01:  # vertical stroke
                    x0, x1 = x0 - half, x1 + half
                elif bottom - top < 0.01:  # horizontal stroke
                    top, bottom = top - half, bottom + half
                else:  # slanted: not a table rule
                    continue
                if min(x1 - x0, bottom - top) <= _RULE_MAX_THICKNESS:
                    rules.append(_Rule(x0, x1, top, bottom))
            elif item[0] == "re" or (item[0] == "qu" and item[1].is_rectangular):
                r = item[1] if item[0] == "re" else item[1].rect
                x0, x1, top, bottom = r.x0, r.x1, r.y0, r.y1
                if min(x1 - x0, bottom - top) <= _RULE_MAX_THICKNESS:
                    rules.append(_Rule(x0, x1, top, bottom))
                elif stroke:
                    rules += [
                        _Rule(x0 - half, x0 + half, top, bottom),
                        _Rule(x1 - half, x1 + half, top, bottom),
                        _Rule(x0, x1, top - half, top + half),
                        _Rule(x0, x1, bottom - half, bottom + half),
                    ]
        rules[found:] = _clipped(rules[found:], clip)
    return rules


def _clipped(rules: list[_Rule], clip: pymupdf.Rect) -> list[_Rule]:
    """The parts of the rules inside the clip (an included page cut to a tile draws its
    rules past the tile's edge, where nothing shows)."""
    out = []
    for r in rules:
        x0, x1 = max(r.x0, clip.x0), min(r.x1, clip.x1)
        top, bottom = max(r.top, clip.y0), min(r.bottom, clip.y1)
        if x1 > x0 and bottom > top:
            out.append(_Rule(x0, x1, top, bottom))
    return out


def _buckets(glyphs: Iterable[_Glyph]) -> dict[int, list[_Glyph]]:
    """Glyphs by band of the page (every band their ink band touches), sorted by x0."""
    out: dict[int, list[_Glyph]] = defaultdict(list)
    for g in glyphs:
        for k in range(int(g.top // _BUCKET), int(g.bottom // _BUCKET) + 1):
            out[k].append(g)
    for row in out.values():
        row.sort(key=lambda g: g.x0)
    return out


def _tolerance(a: _Glyph, b: _Glyph) -> float:
    """How far (pt) the advance boxes of a and b may overlap without touching."""
    em = min(a.size, b.size)
    if abs(a.index - b.index) == 1:
        if a.font == b.font and (a.text.isalpha() or b.text.isalpha()):
            return _KERN_TOL * em
        if a.text in _JOIN_PIECES and b.text in _JOIN_PIECES:
            return _JOIN_TOL * em
    return _GLYPH_TOL * em


def _context(glyphs: Sequence[_Glyph], i: int, j: int, around: int = 8) -> str:
    lo, hi = min(i, j), max(i, j)
    return "".join(g.text for g in glyphs[max(0, lo - around) : hi + around + 1])


def _glyph_collisions(page_no: int, glyphs: list[_Glyph]) -> list[Collision]:
    found: dict[tuple[int, int], Collision] = {}
    for row in _buckets(g for g in glyphs if not g.skip).values():
        active: list[_Glyph] = []
        for b in row:
            active = [a for a in active if a.x1 > b.x0]
            for a in active:
                key = (min(a.index, b.index), max(a.index, b.index))
                if key in found:
                    continue
                horizontal = min(a.x1, b.x1) - b.x0
                if horizontal <= _tolerance(a, b):
                    continue
                vertical = min(a.bottom, b.bottom) - max(a.top, b.top)
                if vertical <= _SAME_LINE * min(a.bottom - a.top, b.bottom - b.top):
                    continue
                first, second = (a, b) if a.index < b.index else (b, a)
                found[key] = Collision(
                    page=page_no,
                    kind="glyphs",
                    first=first.text,
                    second=second.text,
                    first_box=(first.x0, first.top, first.x1, first.bottom),
                    second_box=(second.x0, second.top, second.x1, second.bottom),
                    overlap=round(horizontal, 3),
                    context=_context(glyphs, a.index, b.index),
                )
            active.append(b)
    return [found[k] for k in sorted(found)]


def _rule_collisions(page_no: int, glyphs: list[_Glyph], rules: list[_Rule]) -> list[Collision]:
    if not rules or not glyphs:
        return []
    buckets = _buckets(glyphs)
    starts = {k: [g.x0 for g in row] for k, row in buckets.items()}
    widest = max(g.x1 - g.x0 for g in glyphs)
    found: dict[int, Collision] = {}
    for r in rules:
        vertical = r.vertical
        lo = r.x0 - widest
        for k in range(int(r.top // _BUCKET) - 1, int(r.bottom // _BUCKET) + 2):
            row = buckets.get(k)
            if not row:
                continue
            xs = starts[k]
            for g in row[bisect.bisect_left(xs, lo) : bisect.bisect_right(xs, r.x1)]:
                if g.index in found:
                    continue
                if vertical:
                    depth = min(r.x1 - g.x0, g.x1 - r.x0)
                    if depth <= _RULE_TOL:
                        continue
                    cover = min(r.bottom, g.bottom) - max(r.top, g.top)
                    if cover <= _VRULE_COVER * (g.bottom - g.top):
                        continue
                    box = (g.x0, g.top, g.x1, g.bottom)
                else:
                    depth = min(r.bottom - g.xtop, g.xbottom - r.top)
                    if depth <= _HRULE_TOL:
                        continue
                    if min(r.x1, g.x1) - max(r.x0, g.x0) <= _RULE_TOL:
                        continue
                    box = (g.x0, g.xtop, g.x1, g.xbottom)
                found[g.index] = Collision(
                    page=page_no,
                    kind="rule",
                    first=g.text,
                    second="vertical rule" if vertical else "horizontal rule",
                    first_box=box,
                    second_box=(r.x0, r.top, r.x1, r.bottom),
                    overlap=round(depth, 3),
                    context=_context(glyphs, g.index, g.index),
                )
    return [found[k] for k in sorted(found)]


def page_collisions(page: pymupdf.Page) -> list[Collision]:
    """Collisions on one page: glyph pairs first, then glyphs on rules."""
    glyphs, rules = _glyphs_and_rules(page)
    number = page.number + 1
    return _glyph_collisions(number, glyphs) + _rule_collisions(number, glyphs, rules)


def _check_pages(path: str, numbers: Sequence[int]) -> list[Collision]:
    out: list[Collision] = []
    with pymupdf.open(path) as pdf:
        for n in numbers:
            out += page_collisions(pdf[n - 1])
    return out


def collisions(
    pdf_path: str | os.PathLike[str],
    pages: Iterable[int] | None = None,
    processes: int | None = None,
) -> list[Collision]:
    """Every collision in the PDF (or on the given 1-based pages), in page order.

    ``processes``: worker processes to split the pages over (default 1: at about 100
    pages a second, starting workers costs more than it saves for all but the largest
    builds, and the test suite already runs on every core).
    """
    path = str(pdf_path)
    with pymupdf.open(path) as pdf:
        count = pdf.page_count
    numbers = sorted(set(range(1, count + 1) if pages is None else pages))
    if bad := [n for n in numbers if not 1 <= n <= count]:
        raise ValueError(f"{path} has {count} pages, no page {bad[0]}")
    workers = max(1, min(processes or 1, len(numbers) // 10))
    if workers == 1:
        return _check_pages(path, numbers)
    size = max(1, -(-len(numbers) // (workers * 2)))  # two chunks a worker: slow pages even out
    chunks = [numbers[i : i + size] for i in range(0, len(numbers), size)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        parts = pool.map(_check_pages, [path] * len(chunks), chunks)
        return [c for part in parts for c in part]


def _page_range(text: str) -> range:
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def main(argv: Sequence[str]) -> int:
    """python tests/glyphs.py FILE.pdf [FIRST[-LAST]]: print the collisions, by page."""
    if not argv or len(argv) > 2:
        print(main.__doc__, file=sys.stderr)
        return 2
    found = collisions(argv[0], _page_range(argv[1]) if len(argv) > 1 else None)
    for c in found:
        print(c)
    pages = sorted({c.page for c in found})
    print(f"{len(found)} collisions on {len(pages)} pages: {pages}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
