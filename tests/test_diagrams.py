"""The model as a picture: each part's page draws its chapters and what flows between them."""

from __future__ import annotations

import re

import pytest

from workbook import engine
from workbook.config import Config, from_mapping
from workbook.render import Options, Worked
from workbook.render.figures import Flow, lanes

PICTURE = re.compile(r"\\begin\{tikzpicture\}.*?\\end\{tikzpicture\}", re.S)
BOX = re.compile(
    r"\\node\[box\] \(b(\d+)\) at \(0,[-\d.]+\) \{\\textbf\{([\d, ]+)\}\\enspace (.*?)\};"
)
ARROW = re.compile(
    r"\\draw\[->\] \(?(?:\[yshift=[-\d.]+mm\])?b(\d+)\.(\w+)\)?.*?\{(.*?)\} "
    r"\(?(?:\[yshift=[-\d.]+mm\])?b(\d+)\."
)


def pictures(c: Config) -> list[str]:
    """The flow diagrams (the other pictures are curves and bars)."""
    tex = Worked(c, engine.run(c), Options(detail="results")).tex()
    return [p for p in PICTURE.findall(tex) if r"\node[box]" in p]


def boxes(picture: str) -> list[tuple[str, str]]:
    return [(tags, title) for _, tags, title in BOX.findall(picture)]


def arrows(picture: str) -> list[tuple[int, int, str]]:
    return [(int(a), int(b), label) for a, _, label, b in ARROW.findall(picture)]


def test_each_part_page_draws_its_chapters_and_the_results_they_hand_on(trace) -> None:
    forward, backward = pictures(Config())
    assert boxes(forward) == [
        ("1", "Tokenization and embeddings"),
        ("2", "Q, K, V projections"),
        ("3", "Attention scores"),
        ("4", "Multi-head attention"),
        ("5", "Feed-forward network"),
        ("6", "Residual connection and layer normalization"),
        ("7", "Logits and cross-entropy loss"),
    ]
    assert boxes(backward)[0] == ("8", "Loss gradients") and len(boxes(backward)) == 5
    # straight arrows carry the chapter's result and its shape; V skips the scores, and the
    # attention output skips the FFN to the residual connection
    assert arrows(forward) == [
        (0, 1, r"$X\ [5\times16]$"),
        (1, 2, r"$Q^{(1)}, \dots\ [5\times8]$"),
        (2, 3, r"$A^{(1)}, \dots\ [5\times5]$"),
        (1, 3, r"$V^{(1)}, \dots\ [5\times8]$"),
        (3, 4, r"$\mathrm{attn\_out}\ [5\times16]$"),
        (3, 5, r"$\mathrm{attn\_out}\ [5\times16]$"),
        (4, 5, r"$\mathrm{ffn\_out}\ [5\times16]$"),
        (5, 6, r"$\mathrm{ln\_out}\ [5\times16]$"),
    ]
    assert arrows(backward)[0] == (0, 1, r"$\mathrm{d}\,\mathrm{logits}\ [5\times6]$")


def test_shapes_on_the_arrows_follow_the_model() -> None:
    forward, _ = pictures(from_mapping({"preset": "classroom"}))
    assert arrows(forward)[0] == (0, 1, r"$X\ [4\times4]$")


def test_a_deep_model_draws_one_layer_and_lists_every_layers_chapters() -> None:
    forward, backward = pictures(
        from_mapping({"model": "gpt2", "layers": 3, "preset": "classroom"})
    )
    tags = [t for t, _ in boxes(forward)]
    assert tags[1] == "2, 8, 14" and tags[-2:] == ["20", "21"] and len(tags) == 9
    assert (6, 1, "next layer") in arrows(forward)  # the block's end starts the next layer
    assert [t for t, _ in boxes(backward)][3] == "25, 29, 33"
    assert any(label == "next layer" for _, _, label in arrows(backward))


def test_no_figures_no_pictures() -> None:
    c = Config()
    tex = Worked(c, engine.run(c), Options(detail="results", figures=False)).tex()
    assert "tikzpicture" not in tex and "pgfplots" not in tex


def test_arrows_whose_spans_meet_take_separate_lanes() -> None:
    a, b, c, d = Flow(0, 4, "a"), Flow(2, 4, "b"), Flow(4, 6, "c"), Flow(7, 9, "d")
    assert lanes([a, b, c, d]) == {a: 0, b: 1, c: 2, d: 0}


@pytest.mark.tex
def test_part_pages_describe_their_picture(pdf_texts: dict[str, str]) -> None:
    text = " ".join(pdf_texts["workbook"].split())
    assert "The forward pass as a picture: each box is a chapter" in text
    assert "The backward pass as a picture" in text
