"""Names in their own scripts: a roster may hold any.

A name whose letters pdfTeX's fonts print (printable ASCII and the Latin letters of T1) is
set as text. Any other name is set whole by LuaLaTeX, with HarfBuzz shaping its letters
(joined Arabic, Indic conjuncts) and babel's bidi algorithm ordering them (right to left for
Arabic, Persian, Urdu and Hebrew), in Latin Modern and the Noto fonts of Debian's
fonts-noto-core and fonts-noto-cjk: one page per name, cut into a small PDF of its own that
a document places like a picture, one and a half em high. Its text layer is Unicode, so a
PDF search finds the name. A letter no installed font has is printed as its code point,
⟨U+AE40⟩, and the run says so.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path

from .chunks import cut_pages
from .compile import TexFailedError, TexMissingError, error_excerpt, isolated_env
from .config import WORD_CHARS
from .render.fmt import tex_escape
from .texrun import run_tex

EPOCH = 946684800  # the date a picture carries: the same name gives the same bytes
# After Latin Modern, the fonts that print a letter it lacks, in this order: Greek, Cyrillic
# and Latin beyond T1 in a serif like the text's, then the scripts one by one, Han, kana and
# Hangul in the CJK font, and whatever else the sans-serif has.
FALLBACK = (
    "NotoSerif",
    "NotoSansDevanagari",
    "NotoSansBengali",
    "NotoSansTamil",
    "NotoSansThai",
    "NotoSansEthiopic",
    "NotoSansGeorgian",
    "NotoSansArmenian",
    "Noto Sans CJK SC",
    "NotoSans",
    "NotoSansMath",
)
RIGHT_TO_LEFT = {"arabic": "Noto Sans Arabic", "hebrew": "Noto Sans Hebrew"}
MISSING = re.compile(r"Missing character: There is no .*? \(U\+([0-9A-F]{4,6})\)")


def plain(name: str) -> bool:
    """Does pdfTeX print this name as text?"""
    return all(ch in WORD_CHARS or ch == " " for ch in name)


def picture_file(name: str) -> str:
    """The file a name is set in, named by its text."""
    return f"name-{hashlib.sha256(name.encode()).hexdigest()[:12]}.pdf"


def name_tex(name: str) -> str:
    """A name as the documents print it: text, or its picture (see `pictures`)."""
    return tex_escape(name) if plain(name) else rf"\namepic{{{picture_file(name)}}}"


def name_macros(names: list[str]) -> str:
    """The preamble lines a document printing these names needs (none for plain names). The
    picture is 15 pt high at 10 pt, 4 pt of it below the baseline: placed 1.5 em high and
    0.4 em low, it scales with the text around it."""
    if all(plain(n) for n in names):
        return ""
    return "\n".join(
        [
            r"\usepackage{graphicx}",
            r"\newcommand{\namepic}[1]{\raisebox{-0.4em}{\includegraphics[height=1.5em]{#1}}}",
        ]
    )


def source(names: list[str], shown: dict[str, str]) -> str:
    """A LuaLaTeX document with a page exactly as wide as each name, 11 pt above its baseline
    and 4 pt below; `shown` gives a name's text as set (letters no font has replaced)."""
    fallback = ", ".join(f'"{f}:mode=harf;"' for f in FALLBACK)
    lines = [
        r"\documentclass{article}",
        r"\usepackage[bidi=basic]{babel}",
        rf"\directlua{{luaotfload.add_fallback('names', {{{fallback}}})}}",
        r"\babelprovide[main,import]{english}",
        *(rf"\babelprovide[import,onchar=ids fonts]{{{lang}}}" for lang in RIGHT_TO_LEFT),
        # no TeX ligatures: a name prints as typed (-- stays two hyphens, << two signs)
        r"\babelfont{rm}[RawFeature={fallback=names;-tlig}]{Latin Modern Roman}",
        *(
            rf"\babelfont[{lang}]{{rm}}[Renderer=HarfBuzz]{{{font}}}"
            for lang, font in RIGHT_TO_LEFT.items()
        ),
        r"\pdfvariable trailerid {}",
        # #1: the name as UTF-16 for the text layer, so that copying or searching gives the
        # letters typed: a font's cmap may map a glyph back to a compatibility code point
        # (Noto CJK's 雷 to U+F949)
        r"\newcommand{\name}[2]{\setbox0\hbox{\rmfamily\vrule height 11pt depth 4pt width 0pt"
        r"\ifx&#1&#2\else\pdfextension literal page{/Span<</ActualText<#1>>>BDC}#2"
        r"\pdfextension literal page{EMC}\fi}\pagewidth=\wd0 \pageheight=15pt"
        r" \pdfvariable horigin=0pt \pdfvariable vorigin=0pt \shipout\box0}",
        r"\begin{document}",
        *(rf"\name{{{actual_text(n)}}}{{{shown[n]}}}" for n in names),
        r"\end{document}",
    ]
    return "\n".join(lines) + "\n"


def actual_text(name: str) -> str:
    """A name as a PDF hex string of UTF-16 with its byte-order mark; empty for a name with
    right-to-left letters, whose glyphs' own text already reads right: pdftotext reorders
    an ActualText as if it were in visual order, and would reverse it."""
    if any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in name):
        return ""
    return "FEFF" + name.encode("utf-16-be").hex().upper()


def shown_text(name: str, missing: set[int]) -> str:
    """A name as the picture sets it: each letter no font has as its code point."""
    return "".join(
        f"\u27e8U+{ord(ch):04X}\u27e9" if ord(ch) in missing else tex_escape(ch) for ch in name
    )


def pictures(names: list[str], stage: Path, say: Callable[[str], None]) -> dict[str, bytes]:
    """Each name that is not plain, set in a small PDF of its own, by the file name
    name_tex gives it; a letter no font has is named on stderr, and printed as its code."""
    runs = list(dict.fromkeys(n for n in names if not plain(n)))
    if not runs:
        return {}
    if shutil.which("lualatex") is None:
        raise TexMissingError("lualatex")
    say(f"setting {len(runs)} name(s) in their own scripts ...")
    stage.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=stage, prefix=".names-") as tmp:
        work = Path(tmp)
        missing: set[int] = set()
        for _ in range(2):  # once more when some letter has no font
            log = _compile(source(runs, {n: shown_text(n, missing) for n in runs}), work)
            found = {int(code, 16) for code in MISSING.findall(log)} - missing
            if not found:
                break
            missing |= found
        for name in runs:
            lacking = sorted({ord(ch) for ch in name} & missing)
            if lacking:
                codes = ", ".join(f"U+{code:04X}" for code in lacking)
                say(f"no installed font has {codes} (in {name!r}): printed as code points")
        pdfs = cut_pages(work / "names.pdf", [(k + 1, k + 1) for k in range(len(runs))])
    return {picture_file(n): pdf for n, pdf in zip(runs, pdfs, strict=True)}


def _compile(text: str, work: Path) -> str:
    """names.pdf in `work` from `text`, by one LuaLaTeX pass; its log."""
    (work / "names.tex").write_text(text)
    cmd = ["lualatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape"]
    run = run_tex([*cmd, "names.tex"], work, isolated_env(work, EPOCH))
    log_file = work / "names.log"
    log = log_file.read_text(errors="replace") if log_file.exists() else run.stdout + run.stderr
    if run.returncode != 0 or not (work / "names.pdf").exists():
        raise TexFailedError("LuaLaTeX failed on the names:\n" + error_excerpt(log))
    return log
