"""A student's handout: the selected exercises of their own variant, with their name, id and
variant code on every page, faded worked examples and self-checks; compact, for printing."""

from __future__ import annotations

import functools
import hashlib
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pylatex import Document, NoEscape

from ..config import WORD_CHARS
from ..grading import Asked, asked
from ..trace import Trace
from .base import softmax_written_heads
from .cells import quantity_tex
from .exercises import Exercises
from .fmt import tex_escape


@dataclass(frozen=True)
class Reader:
    """Who a handout (or a key's part) is for: a student, or only a variant code."""

    name: str
    id: str
    code: str


# Han characters, kana and the other letters of the GB 2312 and Big5 sets print in the Arphic
# fonts of Debian's latex-cjk packages (simplified first, then traditional), through CJKutf8:
# pdfTeX's own fonts have no CJK letters.
CJK_FAMILIES = (("gbsn", "gbsnu"), ("bsmi", "bsmiu"))


@functools.cache
def _kpsewhich(name: str) -> bytes:
    """The TeX file `name` as the installed TeX finds it (empty without it)."""
    try:
        found = subprocess.run(
            ["kpsewhich", name], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
        return Path(found).read_bytes() if found else b""
    except (OSError, subprocess.SubprocessError):
        return b""


@functools.cache
def _subfont(prefix: str, high: int) -> frozenset[int]:
    """The characters U+hhXX that the CJK subfont `prefix`hh has (empty without it)."""
    data = _kpsewhich(f"{prefix}{high:02x}.tfm")
    if len(data) < 24:
        return frozenset()
    # A TFM file: lh header words, then one char_info word per code bc..ec; a character
    # exists when its width index (the word's first byte) is not 0.
    _, lh, bc, ec = struct.unpack(">4H", data[:8])
    base = 24 + 4 * lh
    return frozenset(
        bc + k for k in range(ec - bc + 1) if base + 4 * k < len(data) and data[base + 4 * k]
    )


# Arabic (and the Persian letters) print through ArabTeX (Debian's texlive-lang-arabic), which
# joins and orders them right to left; its UTF-8 reader knows these.
PERSIAN = (0x67E, 0x686, 0x698, 0x6A9, 0x6AF, 0x6CC)  # پ چ ژ ک گ ی
ARABIC = frozenset([*range(0x621, 0x63B), *range(0x641, 0x653), *range(0x660, 0x66A), *PERSIAN])


def script_of(ch: str) -> str | None:
    """How `ch` prints when pdfTeX's own fonts lack it: "arabic", a CJK font family that
    has it, or None (no installed font has it)."""
    code = ord(ch)
    if code in ARABIC:
        return "arabic" if _kpsewhich("arabtex.sty") else None
    if code < 0x370 or code > 0xFFFF:  # Latin is pdfTeX's; beyond the BMP, no subfonts
        return None
    for family, prefix in CJK_FAMILIES:
        if code & 0xFF in _subfont(prefix, code >> 8):
            return family
    return None


def segments(name: str) -> list[tuple[str | None, str]]:
    """A name cut into runs of one script each: (None, letters pdfTeX's fonts have or lack)
    or (script_of, run). Words of one script with spaces between are one run: two Arabic
    words set apart would be ordered left to right."""
    scripts = [None if ch in WORD_CHARS or ch == " " else script_of(ch) for ch in name]
    out: list[tuple[str | None, str]] = []
    for k, (ch, script) in enumerate(zip(name, scripts, strict=True)):
        if ch == " " and out and out[-1][0]:
            following = next(
                (x for x, c in zip(scripts[k:], name[k:], strict=True) if c != " "), None
            )
            script = out[-1][0] if following == out[-1][0] else None
        if out and out[-1][0] == script:
            out[-1] = (script, out[-1][1] + ch)
        else:
            out.append((script, ch))
    return out


def name_tex(name: str) -> str:
    """A name exactly as typed where the fonts have its letters (李雷 in a CJK font, محمد
    through ArabTeX); a letter no font has (김) is printed as its Unicode code, ⟨U+AE40⟩, so
    the name stays identifiable."""
    out = []
    for script, run in segments(name):
        if script == "arabic":
            out.append(rf"\arabicname{{{arabic_file(run)}}}")
        elif script:
            out.append(rf"\cjk{{{script}}}{{{run}}}")
        else:
            out += [
                tex_escape(ch) if ch in WORD_CHARS or ch == " " else rf"\codepoint{{{ord(ch):04X}}}"
                for ch in run
            ]
    return "".join(out)


def name_macros(names: list[str]) -> str:
    """The preamble lines name_tex's output needs, for every document that prints names:
    CJKutf8 and ArabTeX only when a name uses them, so other documents never depend on
    them. A CJK run is upright and of medium weight, the only shape the fonts have, even
    in a bold heading."""
    lines = [r"\newcommand{\codepoint}[1]{$\langle$U+#1$\rangle$}"]
    texts = "".join(name_tex(n) for n in names)
    if r"\cjk{" in texts:
        lines += [
            r"\usepackage{CJKutf8}",
            r"\DeclareRobustCommand{\cjk}[2]{\begin{CJK}{UTF8}{#1}"
            r"\fontseries{m}\fontshape{n}\selectfont #2\end{CJK}}",
        ]
    if r"\arabicname{" in texts:
        # a run set apart (arabic_source) and placed as a picture one and a half em high,
        # so it scales with the text around it: ArabTeX loaded here would change the layout
        lines += [
            r"\usepackage{graphicx}",
            r"\newcommand{\arabicname}[1]{\raisebox{-0.4em}{\includegraphics[height=1.5em]{#1}}}",
        ]
    return "\n".join(lines)


def arabic_file(run: str) -> str:
    """The file an Arabic run is set in, named by its text."""
    return f"name-{hashlib.sha256(run.encode()).hexdigest()[:12]}.pdf"


def arabic_runs(names: list[str]) -> list[str]:
    """The Arabic runs of these names, each once, in order."""
    runs = [run for n in names for script, run in segments(n) if script == "arabic"]
    return list(dict.fromkeys(runs))


def arabic_source(run: str) -> str:
    """A page exactly one Arabic run wide, set by ArabTeX right to left at 10 pt, 11 pt above
    the baseline and 4 pt below (where \\arabicname places it: 0.4 em low, 1.5 em high).
    Shipped by hand: standalone's cropping misreads ArabTeX's boxes."""
    return (
        "\\documentclass{article}\n"
        "\\usepackage{arabtex}\n\\usepackage{utf8}\n\\pdftrailerid{}\n"
        "\\begin{document}\n"
        rf"\setbox0\hbox{{\vrule height 11pt depth 4pt width 0pt{{\setcode{{utf8}}\RL{{{run}}}}}}}"
        "\n\\pdfpagewidth=\\wd0 \\pdfpageheight=15pt \\pdfhorigin=0pt \\pdfvorigin=0pt\n"
        "\\shipout\\box0\n\\end{document}\n"
    )


class Handout(Exercises):
    view = "handout"
    pdf_title = "One Training Step of a Transformer: handout"
    contents = False
    parts = False
    self_checks = True
    cites_workbook = False  # a student has only the handout

    def __init__(self, *args, reader: Reader, **kw) -> None:
        self.reader = reader
        super().__init__(*args, **kw)

    def make_context(self) -> dict[str, object]:
        r = self.reader
        return super().make_context() | {
            "student": NoEscape(name_tex(r.name)) if r.name else "",
            "student_id": r.id,
            "code": r.code,
        }

    def document(self) -> Document:
        doc = super().document()
        doc.preamble.append(NoEscape(name_macros([self.reader.name])))
        doc.preamble.append(self.prose("handout_preamble.tex.j2"))
        asks = asked(self)  # the chapters are laid out: the cells they ask are known
        if asks:
            doc.append(self.prose("answer_boxes.tex.j2"))
            doc.append(NoEscape(answer_boxes(asks, self.t)))
        return doc


ANSWER_BOX_MM = 15  # a box holds a signed number of 4 to 8 digits (−0.001484), written small
SOFTMAX_WRITTEN = ("s_max", "e", "sum_e")


def _box_place(a: Asked) -> tuple[str, int | None, int, str]:
    """Which grid of the answer page a value goes in, its row and column there, and that
    column's heading. A softmax's written values share one grid, as in the exercise."""
    if a.quantity in SOFTMAX_WRITTEN:
        cols = a.step.shape[1]
        col = {"s_max": 1, "sum_e": cols + 2}.get(a.quantity, (a.col or 0) + 1)
        heads = softmax_written_heads(cols)
        return "written", a.row, col, heads[col - 1]
    col = a.col or 1
    return a.quantity, a.row, col, "" if a.col is None else str(a.col)


def _given_zeros(a: Asked, t: Trace) -> set[tuple[int, int]]:
    """A softmax's masked exponentials, printed 0 in its grid: (row, column) of the answer
    page's grid for them (its columns: the maximum, each e_j, the sum)."""
    masked = getattr(t.producer(a.step.operands[0]), "consts", {}).get("masked")
    if masked is None:
        return set()
    rows, cols = a.step.shape
    return {(i + 1, j + 2) for i in range(rows) for j in range(cols) if masked[i, j]}


def answer_boxes(asks: list[Asked], t: Trace) -> str:
    """The grids of the answer page: one small grid per grid of the handout, its boxes at
    the rows and columns the handout's grid has them, in the order the values are asked."""
    groups: dict[tuple[str, str], list[tuple[Asked, tuple]]] = {}
    for a in asks:
        place = _box_place(a)
        groups.setdefault((a.exercise, place[0]), []).append((a, place))
    out = []
    for (exercise, grid), items in groups.items():
        first = items[0][0]
        # every row and column the grid has between its first and last asked: a row with
        # nothing asked stays, marked, so copying row by row cannot slip by one
        known = [p[1] for _, p in items if p[1] is not None]
        rows = list(range(1, max(known) + 1)) if known else [None]
        named = {p[2]: p[3] for _, p in items}
        if grid == "written":  # a softmax's: every column, a masked exponential's 0 given
            heads = dict(enumerate(softmax_written_heads(first.step.shape[1]), start=1))
        else:
            heads = {c: named.get(c, str(c)) for c in range(min(named), max(named) + 1)}
        asked_at = {(p[1], p[2]) for _, p in items}
        given = _given_zeros(first, t) if grid == "written" else set()
        what = r"written on the way" if grid == "written" else f"${quantity_tex(first)}$"
        label = rf"{exercise}\enspace {what}"
        if first.exp:
            label += rf"\enspace $\times 10^{{{first.exp}}}$"
        spec = "@{}r|" + f"p{{{ANSWER_BOX_MM}mm}}|" * len(heads) + "@{}"
        lines = [
            rf"\multicolumn{{{len(heads) + 1}}}{{@{{}}l}}{{{label}}} \\",
            " & " + " & ".join(rf"\hfil {h}" for h in heads.values()) + r" \\ \hline",
        ]
        for r in rows:
            cells = [
                "" if (r, c) in asked_at else r"\hfil 0" if (r, c) in given else r"\hfil--"
                for c in heads
            ]
            head = "" if r is None else str(r)
            lines.append(rf"{head}\rule{{0pt}}{{4.2mm}} & " + " & ".join(cells) + r" \\ \hline")
        body = "\n".join(lines)
        out.append(rf"\mbox{{\begin{{tabular}}[t]{{{spec}}}{body}\end{{tabular}}}}")
    gap = "\\hspace{5mm plus 2mm}\\allowbreak\n"
    start = "{\\footnotesize\\raggedright\\lineskiplimit=3mm\\lineskip=2.5mm\n"
    return start + gap.join(out) + "\\par}"
