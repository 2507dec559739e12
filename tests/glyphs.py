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

The PDF is read with PyMuPDF (MuPDF's interpreter), which replaced pdfplumber (pdfminer,
pure Python, about 10 pages a second): on the builds of the test suite the two read the
same glyphs and rules, positions within 0.05 pt, far inside every tolerance below. A page's
glyphs are then columns of NumPy arrays: pairs that may collide are found band by band
(see _overlapping_pairs), and rules are compared only with the glyphs near them, so a
467-page workbook is checked in about 11 s, most of it MuPDF reading the glyphs.

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

import functools
import multiprocessing
import os
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
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


@dataclass
class _Glyphs:
    """A page's visible glyphs in content-stream order (a glyph's index is its position),
    as columns: boxes in pt from the page's top-left corner."""

    text: list[str]
    font: np.ndarray  # an id per font name
    size: np.ndarray
    x0: np.ndarray
    x1: np.ndarray
    top: np.ndarray  # ink band
    bottom: np.ndarray
    xtop: np.ndarray  # x-height band, for horizontal rules
    xbottom: np.ndarray
    skip: np.ndarray  # left out of the glyph-against-glyph check

    def box(self, i: int, xband: bool = False) -> Box:
        top, bottom = (self.xtop, self.xbottom) if xband else (self.top, self.bottom)
        return (float(self.x0[i]), float(top[i]), float(self.x1[i]), float(bottom[i]))


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
def _char_kind(code: int) -> tuple[bool, bool, bool, bool]:
    """(visible, accent, letter, \\joinrel piece) for a character code (0: no text)."""
    text = chr(code) if code > 0 else ""
    return (
        bool(text.strip()),
        any(unicodedata.category(ch) in _ACCENT_CATEGORIES for ch in text),
        text.isalpha(),
        text in _JOIN_PIECES,
    )


@functools.cache
def _hanging_font(font: str) -> bool:
    return any(f in font for f in _HANGING_FONTS)


def _kinds(codes: np.ndarray) -> np.ndarray:
    """_char_kind of each code, as an (n, 4) bool array."""
    unique, back = np.unique(codes, return_inverse=True)
    table = np.array([_char_kind(int(c)) for c in unique], dtype=bool).reshape(-1, 4)
    return table[back.reshape(-1)]


def _glyphs(page: pymupdf.Page) -> _Glyphs:
    """The page's visible upright glyphs, each with its ink band and x-height band."""
    rows: list[tuple[float, ...]] = []  # code, origin x, baseline, x0, x1, span
    spans: list[tuple[float, str, bool, bool]] = []  # size, font, upright, hanging font
    for span in sorted(page.get_texttrace(), key=lambda s: s["seqno"]):
        dx, dy = span["dir"]
        font = span["font"]
        k = len(spans)
        spans.append((span["size"], font, dx > 0 and abs(dy) < 1e-6, _hanging_font(font)))
        rows += [(c, ox, oy, b[0], b[2], k) for c, _, (ox, oy), b in span["chars"]]
    if not rows:
        rows = [(0, 0.0, 0.0, 0.0, 0.0, 0)]  # an empty page: one glyph that is filtered out
        spans.append((0.0, "", False, False))
    table = np.array(rows, dtype=float)
    codes, ox, baseline, x0, x1 = (table[:, i] for i in range(5))
    span = table[:, 5].astype(int)
    size = np.array([s[0] for s in spans])[span]
    upright = np.array([s[2] for s in spans], dtype=bool)[span]
    kinds = _kinds(codes.astype(int))
    left, top_edge, right, bottom_edge = page.rect
    keep = kinds[:, 0] & (x1 - x0 > 0.05) & upright
    keep &= (left <= ox) & (ox < right) & (top_edge <= baseline) & (baseline < bottom_edge)
    hanging = np.array([s[3] for s in spans], dtype=bool)[span] | (codes == ord("√"))
    names = {name: i for i, name in enumerate(dict.fromkeys(s[1] for s in spans))}
    font = np.array([names[s[1]] for s in spans])[span]
    top = np.where(hanging, baseline, baseline - _CAP * size)
    bottom = np.where(hanging, baseline + size, baseline)
    xtop = np.where(hanging, top, baseline - _XHEIGHT * size)
    xbottom = np.where(hanging, bottom, baseline)
    texts = [chr(int(c)) for c in codes[keep]]
    return _Glyphs(
        texts,
        *(a[keep] for a in (font, size, x0, x1, top, bottom, xtop, xbottom)),
        skip=(hanging | kinds[:, 1])[keep],
    )


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


def _overlapping_pairs(g: _Glyphs, which: np.ndarray) -> np.ndarray:
    """Pairs (i, j), i < j, of the glyphs `which` whose advance boxes overlap across and
    whose ink bands share a band of the page (_BUCKET pt): every pair that can collide.
    Each glyph stands in every band its ink touches, sorted by x0 within a band; a glyph
    meets the k-th glyph after it in its band while their boxes still overlap."""
    first = np.floor(g.top[which] / _BUCKET).astype(int)
    count = np.floor(g.bottom[which] / _BUCKET).astype(int) - first + 1
    member = np.repeat(which, count)
    band = np.repeat(first - np.cumsum(count) + count, count) + np.arange(count.sum())
    order = np.lexsort((member, g.x0[member], band))
    member, band = member[order], band[order]
    pairs = []
    for k in range(1, len(member)):
        a, b = member[:-k], member[k:]
        meet = (band[:-k] == band[k:]) & (g.x1[a] > g.x0[b])
        if not meet.any():
            break  # x0 only grows along a band: nothing further on meets either
        pairs.append(np.stack([a[meet], b[meet]], axis=1))
    if not pairs:
        return np.empty((0, 2), dtype=int)
    return np.unique(np.sort(np.concatenate(pairs), axis=1), axis=0)


def _context(texts: Sequence[str], i: int, j: int, around: int = 8) -> str:
    lo, hi = min(i, j), max(i, j)
    return "".join(texts[max(0, lo - around) : hi + around + 1])


def _glyph_collisions(page_no: int, g: _Glyphs) -> list[Collision]:
    pairs = _overlapping_pairs(g, np.flatnonzero(~g.skip))
    if not len(pairs):
        return []
    a, b = pairs[:, 0], pairs[:, 1]
    horizontal = np.minimum(g.x1[a], g.x1[b]) - np.maximum(g.x0[a], g.x0[b])
    # how far the advance boxes may overlap without touching: kerns between a letter and
    # its neighbour in the same font, \joinrel's pieces, else the side bearings
    em = np.minimum(g.size[a], g.size[b])
    kinds = _kinds(np.array([ord(t) for t in g.text]))
    letter, join = kinds[:, 2], kinds[:, 3]
    next_to = b - a == 1
    tolerance = np.select(
        [
            next_to & (g.font[a] == g.font[b]) & (letter[a] | letter[b]),
            next_to & join[a] & join[b],
        ],
        [_KERN_TOL * em, _JOIN_TOL * em],
        _GLYPH_TOL * em,
    )
    band = np.minimum(g.bottom[a] - g.top[a], g.bottom[b] - g.top[b])
    vertical = np.minimum(g.bottom[a], g.bottom[b]) - np.maximum(g.top[a], g.top[b])
    hit = (horizontal > tolerance) & (vertical > _SAME_LINE * band)
    return [
        Collision(
            page=page_no,
            kind="glyphs",
            first=g.text[i],
            second=g.text[j],
            first_box=g.box(i),
            second_box=g.box(j),
            overlap=round(float(h), 3),
            context=_context(g.text, i, j),
        )
        for i, j, h in zip(a[hit].tolist(), b[hit].tolist(), horizontal[hit], strict=True)
    ]


def _near(starts: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (k, i) of each window k = [lo[k], hi[k]] with each item i whose start lies in
    it: the candidates of a sweep, without a loop per window."""
    order = np.argsort(starts, kind="stable")
    first = np.searchsorted(starts[order], lo, side="left")
    count = np.searchsorted(starts[order], hi, side="right") - first
    count = np.maximum(count, 0)
    window = np.repeat(np.arange(len(lo)), count)
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return window, order[np.repeat(first, count) + offset]


def _rule_collisions(page_no: int, g: _Glyphs, rules: list[_Rule]) -> list[Collision]:
    """Each glyph a rule runs through, with the first such rule: a vertical rule reaching
    past the side bearing into its advance and covering enough of its ink band, a
    horizontal one inside its x-height band across enough of its advance."""
    if not rules or not g.text:
        return []
    r = np.array([(q.x0, q.x1, q.top, q.bottom) for q in rules])
    rx0, rx1, rtop, rbottom = r.T
    upright = (rx1 - rx0) <= (rbottom - rtop)
    # candidates: a vertical rule, the glyphs starting across it (at most the widest glyph
    # before it); a horizontal one, those whose x-height band starts near it
    widest = float(np.max(g.x1 - g.x0))
    tallest = float(np.max(g.xbottom - g.xtop))
    kv, iv = _near(g.x0, np.where(upright, rx0 - widest, np.inf), rx1)
    kh, ih = _near(g.xtop, np.where(upright, np.inf, rtop - tallest), rbottom)
    k, i = np.concatenate([kv, kh]), np.concatenate([iv, ih])
    vertical = upright[k]
    depth = np.where(
        vertical,
        np.minimum(rx1[k] - g.x0[i], g.x1[i] - rx0[k]),
        np.minimum(rbottom[k] - g.xtop[i], g.xbottom[i] - rtop[k]),
    )
    cover = np.minimum(rbottom[k], g.bottom[i]) - np.maximum(rtop[k], g.top[i])
    across = np.minimum(rx1[k], g.x1[i]) - np.maximum(rx0[k], g.x0[i])
    hit_v = (depth > _RULE_TOL) & (cover > _VRULE_COVER * (g.bottom[i] - g.top[i]))
    hit_h = (depth > _HRULE_TOL) & (across > _RULE_TOL)
    hit = np.where(vertical, hit_v, hit_h)
    k, i, depth = k[hit], i[hit], depth[hit]
    order = np.lexsort((k, i))  # by glyph, then by rule in drawing order: the first rule
    k, i, depth = k[order], i[order], depth[order]
    first = np.flatnonzero(np.r_[True, i[1:] != i[:-1]]) if len(i) else np.empty(0, int)
    out = []
    for n in first.tolist():
        q, j = rules[int(k[n])], int(i[n])
        out.append(
            Collision(
                page=page_no,
                kind="rule",
                first=g.text[j],
                second="vertical rule" if q.vertical else "horizontal rule",
                first_box=g.box(j, xband=not q.vertical),
                second_box=(q.x0, q.top, q.x1, q.bottom),
                overlap=round(float(depth[n]), 3),
                context=_context(g.text, j, j),
            )
        )
    return out


def page_collisions(page: pymupdf.Page) -> list[Collision]:
    """Collisions on one page: glyph pairs first, then glyphs on rules."""
    glyphs, rules = _glyphs(page), _rules(page)
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

    ``processes``: worker processes to split the pages over (default 1: at about 40
    workbook pages a second, starting workers costs more than it saves for all but the largest
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
