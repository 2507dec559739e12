"""Anything a user can type ends in a result or one line and exit code 2: never a traceback.

Hypothesis draws values for every setting, as command-line text: integers of any size,
floats including nan, inf and subnormals, and arbitrary Unicode.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from conftest import read_pdf_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbook import cli
from workbook.config import KEYS

FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "5e-324", "1e-320", "0", "-0.0", "1e30"]),
)
INTS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.integers(-3, 300).map(str),
    st.sampled_from(["1.5", "0x10", "", " 7 "]),
)
TEXT = st.text(min_size=0, max_size=12)
VALUE = {
    "vocab": st.one_of(TEXT, st.lists(TEXT, max_size=8).map(",".join)),
    "sentence": TEXT,
    "model": st.one_of(st.sampled_from(["seed", "gpt2", " gpt2 ", "GPT2", "gpt-2"]), TEXT),
}


def value_for(key: str) -> st.SearchStrategy[str]:
    if key in VALUE:
        return VALUE[key]
    if key in ("layers", "d_model", "heads", "d_ff", "max_len", "seed"):
        return st.one_of(INTS, FLOATS, TEXT)
    return st.one_of(FLOATS, INTS, TEXT)


FLAGS = st.lists(st.sampled_from(KEYS), unique=True, max_size=4).flatmap(
    lambda keys: st.tuples(*(st.tuples(st.just(k), value_for(k)) for k in keys))
)


def argv_of(pairs: tuple[tuple[str, str], ...]) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in pairs]


def one_line_or_result(code: int, out: str, err: str) -> None:
    assert "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("workbook:"), err
    else:
        assert code == 0, (code, err)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(pairs=FLAGS)
def test_summary_never_fails_with_a_traceback(pairs, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["summary", *argv_of(pairs)])
    out, err = capsys.readouterr()
    one_line_or_result(code, out, err)
    if code == 0:
        loss = float(re.search(r"Loss: (\S+)", out).group(1))
        assert math.isfinite(loss)


SMALL = {"d_model": "8", "heads": "2", "d_ff": "8"}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(pairs=FLAGS)
def test_tex_only_builds_or_refuses(
    pairs, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every accepted setting makes all three sources (small sizes keep this fast)."""
    given_keys = {k for k, _ in pairs}
    small = tuple((k, v) for k, v in SMALL.items() if k not in given_keys)
    out_dir: Path = tmp_path_factory.mktemp("fuzz")
    argv = ["build", "-o", str(out_dir), "--tex-only", "-q", "--detail", "sample"]
    code = cli.main([*argv, *argv_of(pairs + small)])
    out, err = capsys.readouterr()
    one_line_or_result(code, out, err)
    if code == 0:
        for name in ("workbook", "exercises", "answers"):
            assert (out_dir / f"{name}.tex").read_text().rstrip().endswith(r"\end{document}")


# The settings that crashed or printed garbage in the hardening review (issue 10, item 1).
REFUSED = [
    ["--init-scale", "1e30"],
    ["--init-scale", "1e100"],
    ["--init-scale", "200"],
    ["--init-scale", "1e70"],
    ["--init-scale", "5"],  # in range, but every softmax saturates
    ["--ln-eps", "1e300"],
    ["--lr", "1e200", "--weight-decay", "1e200"],
    ["--max-len", "9223372036854775807"],
    ["--d-model", "99999999999999999998"],
    # a LayerNorm variance printed as 0 and √ε below 10^-99: 0/0 in the hand chain, and
    # subnormal numbers that silently lost digits in the exact one (a later review)
    ["--init-scale", "3e-162", "--ln-eps", "5e-324"],
    ["--init-scale", "1e-161", "--ln-eps", "1e-250"],
]


@pytest.mark.parametrize("argv", REFUSED, ids=lambda a: " ".join(a))
def test_settings_that_used_to_crash_are_refused_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["summary"], ["build", "--tex-only", "-q", "-o", "/nonexistent/x"]):
        assert cli.main([*command, *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err


def test_tiny_parameters_build_with_the_underflow_rule_or_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1e-320 once divided by zero in the key's tolerances, and later printed a model of
    zeros (every weight below 10^-99 is written as 0): weights that would print as 0 are
    refused, naming init_scale. Small weights whose later products fall below 10^-99 build,
    those products written as 0 by the stated rule."""
    argv = ["build", "-o", str(tmp_path), "--tex-only", "-q", "--detail", "results"]
    for scale in ("1e-320", "1e-100"):
        assert cli.main([*argv, "--init-scale", scale]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "would print as 0; use --init-scale" in err, err
    assert cli.main([*argv, "--init-scale", "1e-60"]) == 0
    # a LayerNorm variance that prints as 0 yet outweighs ε made x̂ 10^5 times too large
    assert cli.main([*argv, "--init-scale", "1e-60", "--ln-eps", "1e-150"]) == 2
    assert "not negligible beside ε" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("word", "code"),
    [
        ("日本", "U+65E5"),
        ("🙂", "U+1F642"),
        ("שלום", "U+05E9"),
        ("a\u202eb", "U+202E"),
        ("a\tb", "U+0009"),
        ("a\u00a0b", "U+00A0"),
        ("e\u0301", "U+0301"),
        ("\u0133", "U+0133"),  # ĳ: not in the typewriter font of the token lists
        ("x" * 65, "65 characters"),
    ],
)
def test_words_that_cannot_print_exactly_are_refused(
    word: str, code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    vocab = ",".join(["<PAD>", "<BOS>", "<EOS>", "I", word])
    assert cli.main(["summary", f"--vocab={vocab}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and code in err, err


def toml_value(v: object) -> str:
    """A value written as TOML (enough of it for the fuzz: no nested tables)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return (
            "nan"
            if math.isnan(v)
            else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
        )
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return (
            '"'
            + "".join(
                c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}"
                for c in v
                if ord(c) < 0x10000
            )
            + '"'
        )
    return "[" + ", ".join(toml_value(x) for x in v) + "]"


TOML_VALUES = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=10),
    ),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=6,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(table=st.dictionaries(st.sampled_from([*KEYS, "unknown_key"]), TOML_VALUES, max_size=4))
def test_config_files_of_any_types_never_fail_with_a_traceback(
    table, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path_factory.mktemp("toml") / "model.toml"
    path.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in table.items()))
    code = cli.main(["summary", "--config", str(path)])
    out, err = capsys.readouterr()
    one_line_or_result(code, out, err)


@pytest.mark.tex
def test_every_character_a_word_may_have_prints(tmp_path: Path) -> None:
    """Every character the config check accepts compiles with a glyph in every font that sets
    words (TeX logs a missing one), and the plain ones read back from the PDF as typed."""
    from workbook.config import WORD_CHARS

    chars = sorted(WORD_CHARS)
    words = ["".join(chars[k : k + 40]) for k in range(0, len(chars), 40)]
    config = tmp_path / "words.toml"
    vocab = ", ".join(toml_value(w) for w in ["<PAD>", "<BOS>", "<EOS>", *words])
    sentence = toml_value(" ".join(words))
    config.write_text(f"vocab = [{vocab}]\nsentence = {sentence}\nmax_len = {len(words) + 2}\n")
    argv = ["build", "--only", "workbook", "--detail", "results", "--no-figures", "-q"]
    assert cli.main([*argv, "--config", str(config), "-o", str(tmp_path)]) == 0
    assert "Missing character" not in (tmp_path / "workbook.log").read_text(errors="replace")
    text = read_pdf_text(tmp_path / "workbook.pdf")
    for w in words:  # accented letters built by TeX read back as letter and accent apart
        runs = "".join(ch if ch.isascii() or ch in "ÀÉÖàéößÆæØø" else " " for ch in w).split()
        assert all(run in text for run in runs), w
