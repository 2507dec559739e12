"""Nothing is printed on top of anything: no two glyphs overlap, no rule runs through a glyph.

TeX says nothing when a number is wider than its fixed-width column; it prints it over
the neighbouring cell and across the table rule.  The check itself is tests/glyphs.py;
here it is tried on small PDFs with known collisions, then run on every build.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import classroom_build, shared_build
from glyphs import Collision, collisions

tex = pytest.mark.tex

DOCUMENTS = ("workbook", "exercises", "answers")
# the default model at both papers and two precisions; the classroom model, whose short
# lines and small tables are set in columns and side by side, at both papers
BUILDS = [(paper, digits, "") for paper in ("a4", "letter") for digits in (3, 6)]
BUILDS += [(paper, 4, "classroom") for paper in ("a4", "letter")]


def report(found: list[Collision], what: str, shown: int = 10) -> str:
    pages = sorted({c.page for c in found})
    lines = [f"{len(found)} collisions in {what} on {len(pages)} pages {pages[:30]}:"]
    lines += [f"  {c}" for c in found[:shown]]
    return "\n".join(lines)


# --- the checker on a hand-made PDF (no TeX needed) ---------------------------------


def write_pdf(path: Path, pages: list[str]) -> Path:
    """A PDF of 300 x 200 pt pages, one per content stream, with Helvetica as /F1."""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "",  # the page tree, once the pages are numbered
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    kids = []
    for content in pages:
        objects.append(f"<< /Length {len(content)} >>\nstream\n{content}\nendstream")
        objects.append(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {len(objects)} 0 R >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    out += trailer.encode()
    path.write_bytes(out)
    return path


def text(x: float, y: float, s: str) -> str:
    """10 pt Helvetica at (x, y); s is a PDF string '(..)' or a TJ array '[..]'."""
    op = "TJ" if s.startswith("[") else "Tj"
    return f"BT /F1 10 Tf {x} {y} Td {s} {op} ET "


def vline(x: float, y0: float, y1: float) -> str:
    return f"0.4 w {x} {y0} m {x} {y1} l S "


def hline(x0: float, x1: float, y: float) -> str:
    return f"0.4 w {x0} {y} m {x1} {y} l S "


# Helvetica: digits and "L" are 5.56 pt wide at 10 pt, "A" and "V" 6.67 pt.
FLAGGED = {
    "text over text": (text(20, 100, "(Left)") + text(30, 100, "(123456)"), "glyphs"),
    "rule through a digit": (text(20, 100, "(7890)") + vline(28, 95, 112), "rule"),
    "rule through a letter": (text(20, 100, "(ruled)") + hline(10, 60, 102), "rule"),
    "frame through a letter": (text(20, 100, "(framed)") + "0.4 w 25 95 40 15 re S ", "rule"),
    # Digits do not kern: pulled together by 1 pt they touch.
    "digits 1 pt into each other": (text(20, 100, "[(12) 100 (34)]"), "glyphs"),
}
CLEAN = {
    # A font kern of 1 pt between letters is normal typesetting.
    "kerned letters": text(20, 100, "[(A) 100 (VA) 100 (V)]"),
    # 9 pt apart: the font boxes (10 pt tall) overlap, the ink does not.
    "tight lines": text(20, 100, "(Lorem 0123)") + text(20, 91, "(ipsum 4567)"),
    "rules around text": (
        text(20, 100, "(boxed 0.0123)")
        + vline(18, 96, 110)
        + vline(92, 96, 110)  # the text ends at x = 80.6
        + hline(18, 92, 97.5)  # under the baseline, like \hline
        + hline(18, 92, 109)  # above the digits
    ),
    "text in a frame": text(20, 100, "(inside)") + "0.4 w 17 96 32 12 re S ",
}


@pytest.fixture(scope="module")
def sample_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pages = [content for content, _ in FLAGGED.values()] + list(CLEAN.values())
    return write_pdf(tmp_path_factory.mktemp("glyphs") / "sample.pdf", pages)


@pytest.mark.parametrize("case", FLAGGED)
def test_checker_flags_collision(sample_pdf: Path, case: str) -> None:
    page = list(FLAGGED).index(case) + 1
    kind = FLAGGED[case][1]
    found = collisions(sample_pdf, [page])
    assert found, f"{case}: nothing found"
    assert {c.kind for c in found} == {kind}, report(found, case)


@pytest.mark.parametrize("case", CLEAN)
def test_checker_passes_clean_typesetting(sample_pdf: Path, case: str) -> None:
    page = len(FLAGGED) + list(CLEAN).index(case) + 1
    found = collisions(sample_pdf, [page])
    assert found == [], report(found, case)


def test_checker_reads_all_pages_in_order(sample_pdf: Path) -> None:
    one_by_one = [
        c for n in range(1, len(FLAGGED) + len(CLEAN) + 1) for c in collisions(sample_pdf, [n])
    ]
    assert collisions(sample_pdf, processes=1) == one_by_one
    assert [c.page for c in one_by_one] == sorted(c.page for c in one_by_one)


# --- the checker on a small LaTeX document ----------------------------------------

TINY = r"""
\documentclass[10pt]{article}
\usepackage[T1]{fontenc}
\usepackage{lmodern}
\usepackage{amsmath}
\usepackage{array}
\usepackage{xcolor}
\pagestyle{empty}
\setlength{\parindent}{0pt}
\begin{document}
Total\makebox[5pt][r]{123456} and more
\newpage
\begin{tabular}{r|w{r}{10pt}|r}\hline
\textbf{1} & $0.004321$ & $0.5$ \\ \hline
\end{tabular}
\newpage
\begin{tabular}{|r|w{r}{40pt}|w{r}{80pt}|}\hline
\textbf{1} & $-0.0123$ & $2.823\mkern-1mu\times\mkern-1mu 10^{-6}$ \\ \hline
\textbf{2} & $0.5$ & $-15.647\mkern-1mu\times\mkern-1mu 10^{-13}$ \\ \hline
\end{tabular}\par\medskip
$\hat{x} + \tilde{v} + \bar{y} + \vec{a} + \hat{W} \neq \sqrt{d_k} + \frac{1}{n}
 + x_i^2 + W_Q^{(1)} + \overline{xy}$\par
$\displaystyle \sum_j e_j = \Bigl(\frac{\mathrm{d}S^{(h)}}{\sqrt{d_k}}\Bigr)^{\!\top}
 \longrightarrow \mapsto \Longrightarrow \sqrt{\frac{2}{\pi}}$\par
{\small $(\mathrm{ffn\_act})_{1,1} = 0.5\,(5.647\times10^{-6})\bigl(1 + \tanh\bigl(
 0.7979\,(x + 0.044715\,x^3)\bigr)\bigr)$}\par
AVATAR, Tea, Wolf, ``office'' --- affluent.
Exercise 1.1\ \fbox{\rule{0pt}{6mm}\hspace{40mm}}\par
\vspace{5.5mm}\textcolor{black!30}{\rule{\linewidth}{0.4pt}}\par
\renewcommand{\arraystretch}{1.9}\small
\begin{tabular}{|l|r|r|p{30pt}|}\hline
element & $\theta$ & $g$ & $m$ \\ \hline
$(W_V^{(1)})_{12,5}$ & $0.05797$ & $4.432\mkern-1mu\times\mkern-1mu 10^{-4}$ & \\ \hline
\end{tabular}
\end{document}
"""


@tex
def test_checker_on_a_small_latex_document(tmp_path: Path) -> None:
    if not shutil.which("pdflatex"):
        pytest.skip("pdflatex not installed")
    (tmp_path / "tiny.tex").write_text(TINY)
    subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "tiny.tex"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    found = collisions(tmp_path / "tiny.pdf")
    by_page = {n: [c for c in found if c.page == n] for n in (1, 2, 3)}
    # Page 1: the 123456 boxed in 5 pt is printed over "Total".
    assert any(c.kind == "glyphs" and "Total" in c.context for c in by_page[1]), report(
        found, "page 1"
    )
    # Page 2: 0.004321 in a 10 pt column runs across the rule after the row heading.
    assert any(
        c.kind == "rule" and c.second == "vertical rule" and c.first in "0.004321"
        for c in by_page[2]
    ), report(found, "page 2")
    # Page 3: accents, radicals, fractions, scripts, big delimiters, kerns, \joinrel
    # arrows, an \fbox, a working-space rule and ruled tables that fit.
    assert by_page[3] == [], report(by_page[3], "page 3")


# --- every build ------------------------------------------------------------------


@pytest.fixture(
    scope="session", params=BUILDS, ids=[f"{p}-{d}digits{m and '-' + m}" for p, d, m in BUILDS]
)
def glyph_build(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, int, Path]:
    """All three documents for one paper size, number of digits and model, built once."""
    paper, digits, preset = request.param
    if preset:
        return paper, digits, classroom_build(tmp_path_factory, paper)
    return paper, digits, shared_build(tmp_path_factory, "--paper", paper, "--digits", str(digits))


@tex
@pytest.mark.parametrize("document", DOCUMENTS)
def test_nothing_printed_over_anything(glyph_build: tuple[str, int, Path], document: str) -> None:
    paper, digits, out = glyph_build
    found = collisions(out / f"{document}.pdf")
    assert found == [], report(found, f"{document}.pdf ({paper}, {digits} digits)")


@tex
@pytest.mark.parametrize("document", DOCUMENTS)
def test_tex_reports_no_bad_box(glyph_build: tuple[str, int, Path], document: str) -> None:
    """What TeX does see: no overfull or underfull line or page, at either paper size."""
    paper, digits, out = glyph_build
    log = (out / f"{document}.log").read_text()
    bad = [line for line in log.splitlines() if line.startswith(("Overfull", "Underfull"))]
    assert bad == [], f"{document} ({paper}, {digits} digits): {bad[:5]}"
