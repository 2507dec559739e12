"""Model families and depth: the chapters follow the modules, every quantity is described,
and every page of a GPT-2 or deeper model works like the seed model's."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import citations
from proofread import proofread

from workbook import cli, engine, params
from workbook.config import ConfigError, from_mapping
from workbook.render import Options, Worked

GPT2_CHAPTERS = [
    ("forward", "Tokenization and embeddings"),
    ("forward", "Layer normalization before attention (layer 1)"),
    ("forward", "Q, K, V projections (layer 1)"),
    ("forward", "Attention scores (layer 1)"),
    ("forward", "Multi-head attention and residual (layer 1)"),
    ("forward", "Layer normalization before the feed-forward network (layer 1)"),
    ("forward", "Feed-forward network and residual (layer 1)"),
    ("forward", "Final layer normalization"),
    ("forward", "Logits and cross-entropy loss"),
    ("backward", "Loss gradients"),
    ("backward", "Output layer gradients"),
    ("backward", "Final layer normalization backward"),
    ("backward", "Feed-forward backward (layer 1)"),
    ("backward", "Second layer normalization backward (layer 1)"),
    ("backward", "Attention backward (layer 1)"),
    ("backward", "First layer normalization backward (layer 1)"),
    ("backward", "Embedding gradients"),
    ("optimizer", "AdamW update"),
]
CONFIGS = [("seed", 1), ("seed", 2), ("gpt2", 1), ("gpt2", 3)]


def config(model: str, layers: int, **kw):
    return from_mapping({"model": model, "layers": layers, **kw})


def test_gpt2_chapters_follow_its_modules() -> None:
    t = engine.run(config("gpt2", 1))
    assert [(ch.part, ch.title) for ch in t.chapters] == GPT2_CHAPTERS
    assert [ch.number for ch in t.chapters] == list(range(1, 19))


def test_deeper_models_get_the_chapters_of_every_block() -> None:
    seed2 = engine.run(config("seed", 2))
    titles = [ch.title for ch in seed2.chapters]
    assert len(titles) == 13 + 5 + 2  # five forward and two backward chapters per block
    assert titles[1:11:5] == ["Q, K, V projections (layer 1)", "Q, K, V projections (layer 2)"]
    backward = [ch.title for ch in seed2.chapters if ch.part == "backward"]
    assert backward.index("Attention backward (layer 2)") < backward.index(
        "Attention backward (layer 1)"
    )
    gpt3 = engine.run(config("gpt2", 3))
    assert len(gpt3.chapters) == 18 + 2 * 10
    for ch in gpt3.chapters:
        steps = list(gpt3.chapter(ch.number))
        assert steps, ch.title
        if ch.layer is not None:  # a block's chapter names its layer, and holds only it
            assert ch.title.endswith(f"(layer {ch.layer + 1})")
            assert {s.desc.layer for s in steps} == {ch.layer}


@pytest.mark.parametrize(("model", "layers"), CONFIGS)
def test_every_quantity_is_described_once(model: str, layers: int) -> None:
    c = config(model, layers)
    t = engine.run(c)
    described = [*t.params.values(), *(s.desc for s in t.steps)]
    assert all(d.symbol for d in described)
    assert all(s.desc.title and s.desc.role for s in t.steps)
    symbols = [d.symbol for d in described]
    assert len(symbols) == len(set(symbols)), "two quantities share a symbol"
    assert list(t.params) == params.names(c)
    if layers > 1 or model == "gpt2":
        assert all(re.match(r"(E_token|E_pos|W_lm|ln_f\.|l\d\.)", n) for n in t.params)


def test_gpt2_parameter_names_are_the_contract() -> None:
    names = params.names(config("gpt2", 2))
    block = [
        "ln1.gamma",
        "ln1.beta",
        *(f"W_{k}.{h}" for k in "QKV" for h in range(2)),
        "W_O",
        "ln2.gamma",
        "ln2.beta",
        "W1",
        "b1",
        "W2",
        "b2",
    ]
    assert names == [
        "E_token",
        "E_pos",
        *(f"l0.{n}" for n in block),
        *(f"l1.{n}" for n in block),
        "ln_f.gamma",
        "ln_f.beta",
        "W_lm",
    ]
    assert params.names(config("seed", 2))[2:4] == ["l0.W_Q.0", "l0.W_Q.1"]
    assert "l1.gamma" in params.names(config("seed", 2))


def test_one_layer_of_a_deeper_model_is_drawn_like_the_seed() -> None:
    """The contract extends the seed's: layer 0 of a deeper seed model draws the same values
    as the one-block model, and the later layers follow before W_lm."""
    one, two = params.initialize(config("seed", 1)), params.initialize(config("seed", 2))
    for n in ("E_token", "E_pos", "W_Q.0", "W_K.1", "W_O", "W1", "b2"):
        np.testing.assert_array_equal(one[n], two[n if n.startswith("E_") else f"l0.{n}"])
    assert not np.array_equal(one["W_lm"], two["W_lm"])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"model": "gpt3"}, "model = 'gpt3': must be one of seed, gpt2 (did you mean 'gpt2'?)"),
        ({"layers": 0}, "layers = 0: must be a positive integer"),
        ({"layers": 9}, "layers = 9: at most 8 (every element is printed)"),
    ],
)
def test_bad_family_settings_are_refused_in_one_line(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        from_mapping(settings)


def test_chapter_selection_follows_the_model(tmp_path: Path, capsys) -> None:
    assert cli.main(["build", "-o", str(tmp_path), "--tex-only", "-q", "--chapters", "14"]) == 2
    assert "chapters are 1-13 for this model" in capsys.readouterr().err
    argv = ["build", "-o", str(tmp_path), "--tex-only", "-q", "--model", "gpt2"]
    assert cli.main([*argv, "--chapters", "16-18"]) == 0
    exercises = (tmp_path / "exercises.tex").read_text()
    assert r"\setcounter{chapter}{15}" in exercises and "First layer normalization" in exercises
    assert "Final layer normalization}" not in exercises  # chapter 8 was not selected


def test_summary_names_the_family_and_depth(capsys) -> None:
    assert cli.main(["summary", "--model", "gpt2", "--layers", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 blocks (GPT-2 pre-LN" in out
    assert "l1.ln2.gamma" in out and "ln_f.beta" in out
    assert "total" in out and "6,736" in out


@pytest.mark.parametrize(("model", "layers"), [("gpt2", 1), ("seed", 2)])
def test_every_line_of_a_gpt2_or_deeper_workbook_rechecks(model: str, layers: int) -> None:
    c = config(model, layers)
    tex = Worked(c, engine.run(c), Options(detail="sample")).tex()
    checks = proofread(tex, 4)
    wrong = [c for c in checks if not c.ok]
    assert len(checks) > 1200
    assert not wrong, "\n".join(f"{c.line[:160]} → {c.redone}" for c in wrong[:10])


@pytest.mark.tex
def test_a_gpt2_build_compiles_cleanly_and_its_key_cites_it(tmp_path: Path) -> None:
    argv = ["build", "-o", str(tmp_path), "-q", "--model", "gpt2", "--detail", "sample"]
    assert cli.main(argv) == 0
    for doc in ("workbook", "exercises", "answers"):
        log = (tmp_path / f"{doc}.log").read_text()
        assert "Overfull" not in log and "undefined" not in log, doc
    cited = citations(tmp_path / "answers.pdf")
    assert cited["2.1"][0] == "2.2"  # μ of LN1, after the section listing γ and β
    assert max(float(sec.split(".")[0]) for sec, _ in cited.values()) == 18
