"""Long vocabulary words: whole in the token lists, cut to a label's width in tables and
figures, breakable in running text; nothing runs off a page or over anything."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import pages_with
from glyphs import collisions

from workbook import cli
from workbook.config import LIMITS
from workbook.render.fmt import WORD_SHOWN, shown_words, tex_escape

tex = pytest.mark.tex

# two words of the longest length allowed, alike in their first WORD_SHOWN characters
LONG_A = ("pneumonoultramicroscopicsilicovolcanoconiosis" * 2)[: LIMITS["word"]]
LONG_B = LONG_A[:-1] + "Z"
LONG_W = "W" * LIMITS["word"]  # the widest letter: its cut label once ran a figure off
VOCAB = ["<PAD>", "<BOS>", "<EOS>", "I", "like", LONG_A, LONG_B, LONG_W]


def test_labels_cut_long_words_and_keep_them_apart() -> None:
    shown = shown_words(VOCAB)
    assert shown[:5] == VOCAB[:5]  # short words are whole
    cut = LONG_A[: WORD_SHOWN - 1] + "…"
    # alike once cut: the ids tell apart; a word cut alone needs none
    assert shown[5:] == [f"{cut} (5)", f"{cut} (6)", "W" * (WORD_SHOWN - 1) + "…"]
    assert shown_words(["<PAD>", LONG_A]) == ["<PAD>", cut]
    assert len(shown_words(["x" * WORD_SHOWN])[0]) == WORD_SHOWN  # at the limit: whole


def test_a_label_is_measured_by_its_letters_not_its_markup() -> None:
    from workbook.render.matrix import label_pt

    w = label_pt(r"\textit{" + shown_words([LONG_W])[0] + "}")
    assert w >= 129.2  # as TeX sets it in a table heading (bold italic, \small)
    assert label_pt(r"\textit{<PAD>}") == label_pt("<PAD>") >= 38.1


def test_running_text_may_break_a_long_word_only() -> None:
    assert tex_escape("I like", breakable=True) == "I like"
    broken = tex_escape(f"I {LONG_A}", breakable=True)
    assert broken.startswith("I p\\allowbreak{}n\\allowbreak{}e")
    assert broken.replace("\\allowbreak{}", "") == f"I {LONG_A}"


def test_a_word_longer_than_the_limit_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    vocab = ",".join([*VOCAB[:5], "x" * (LIMITS["word"] + 1)])
    assert cli.main(["summary", f"--vocab={vocab}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"at most {LIMITS['word']}" in err, err


@tex
@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_longest_words_print_without_running_off_or_over(tmp_path: Path, paper: str) -> None:
    import pdfplumber

    argv = ["build", "-o", str(tmp_path), "-q", "--preset", "classroom", "--paper", paper]
    argv += [f"--vocab={','.join(VOCAB)}", f"--sentence={LONG_A} {LONG_B}"]
    assert cli.main(argv) == 0
    for doc in ("workbook", "exercises", "answers"):
        log = (tmp_path / f"{doc}.log").read_text()
        bad = [ln for ln in log.splitlines() if ln.startswith(("Overfull", "Underfull"))]
        assert bad == [], f"{doc}: {bad[:3]}"
        assert collisions(tmp_path / f"{doc}.pdf") == [], doc
    pdf_path = tmp_path / "workbook.pdf"
    with pdfplumber.open(pdf_path) as pdf:  # the pages with the words (PyMuPDF finds them)
        found = pages_with(pdf_path, LONG_A[: WORD_SHOWN - 1])
        text = "\n".join(pdf.pages[k].extract_text() for k in found)
    assert LONG_A in text and LONG_B in text  # whole in the token lists
    cut = re.escape(LONG_A[: WORD_SHOWN - 1]) + r"(…|\.\.\.)"  # the ellipsis as extracted
    assert re.search(cut + r" \(5\)", text) and re.search(cut + r" \(6\)", text)  # in tables
