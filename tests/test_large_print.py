"""Large print: the pages magnified whole (16 pt, sans-serif letters and digits) and turned
to landscape, so every table and formula keeps the room it has at 10 pt; nothing runs off a
page or over anything, at A4 and letter, for the default model and the classroom's."""

from __future__ import annotations

from pathlib import Path

import pytest
from glyphs import collisions
from pypdf import PdfReader

from workbook import cli
from workbook.render import Options
from workbook.render.matrix import Layout

BUILDS = [(model, paper) for model in ("", "classroom") for paper in ("a4", "letter")]


@pytest.mark.tex
@pytest.mark.parametrize(("model", "paper"), BUILDS)
def test_large_print_fits_every_page(tmp_path: Path, model: str, paper: str) -> None:
    argv = ["build", "-q", "--yes", "--large-print", "--paper", paper, "-o", str(tmp_path)]
    assert cli.main(argv + (["--preset", model] if model else [])) == 0
    for doc in ("workbook", "exercises", "answers"):
        log = (tmp_path / f"{doc}.log").read_text()
        bad = [ln for ln in log.splitlines() if ln.startswith(("Overfull", "Underfull"))]
        assert bad == [], f"{doc}: {bad[:3]}"
        assert collisions(tmp_path / f"{doc}.pdf") == [], doc
    page = PdfReader(tmp_path / "workbook.pdf").pages[0].mediabox
    assert float(page.width) > float(page.height)  # landscape, the paper's own size
    assert round(float(page.width)) == {"a4": 842, "letter": 792}[paper]


def test_a_magnified_page_is_planned_as_a_smaller_one() -> None:
    normal, large = Layout("a4"), Options(font_size=16, sans=True).layout_page
    assert large.landscape and not normal.landscape
    # turned and magnified 1.6 times, the text is about as wide as at 10 pt, and shorter
    assert 0.9 < large.text_width / normal.text_width < 1.0
    assert large.text_height < normal.text_height / 2
    assert large.rows(ruled=True) < normal.rows(ruled=True)


def test_font_sizes_outside_the_range_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for size in ("9", "21", "٢٠"):
        assert cli.main(["build", "--tex-only", "--font-size", size]) == 2
        assert "--font-size" in capsys.readouterr().err
