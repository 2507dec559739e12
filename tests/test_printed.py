"""The printed chain: rounding, the hand formulas against the float64 ones, factors, drift."""

from __future__ import annotations

import math
import re
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from proofread import proofread
from test_properties import configs

from workbook import cli, engine, hand
from workbook.config import Config
from workbook.formulas import FORMULAS
from workbook.hand import Rounder, sig
from workbook.printed import Book, Num, factor_exp
from workbook.render import Options, Worked

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(x=finite, digits=st.integers(3, 8))
def test_sig_keeps_digits_and_rounds_to_nearest(x: float, digits: int) -> None:
    d = Decimal(x)
    r = sig(d, digits)
    if x == 0:
        assert r == 0
        return
    assert len(r.as_tuple().digits) == digits
    unit = Decimal(1).scaleb(r.adjusted() - digits + 1)
    assert abs(r - d) <= unit / 2


def test_sig_rounds_half_up_away_from_zero() -> None:
    assert sig(Decimal("0.12345"), 4) == Decimal("0.1235")
    assert sig(Decimal("-0.12345"), 4) == Decimal("-0.1235")
    assert sig(Decimal("9.9995"), 4) == Decimal("10.00")
    assert str(sig(Decimal("0.12"), 4)) == "0.1200"  # trailing zeros are significant


# Representative inputs and constants for every element-wise formula.
FORMULA_CASES = {
    "embed": ([0.1, -0.2], {}),
    "add": ([0.3, 0.4], {}),
    "sum": ([0.1, 0.2, -0.05], {}),
    "copy": ([0.7], {}),
    "mul": ([0.3, -1.5], {}),
    "scale_mask": ([0.8], {"scale": 1 / math.sqrt(8), "masked": False}),
    "scale": ([0.8], {"scale": 1 / math.sqrt(8), "masked": False}),
    "gelu": ([0.37], {}),
    "gelu_backward": ([0.2, -0.61], {}),
    "normalize": ([0.5, 0.1, 0.02], {"eps": 1e-5}),
    "affine": ([0.5, 1.2, -0.1], {}),
    "nll": ([0.15], {}),
    "ce_backward": ([0.3], {"target": 1.0, "weight": 0.25, "count": 4}),
    "probs_backward": ([0.3], {"target": 1.0, "weight": 0.25, "count": 4}),
    "ln_backward_fast": ([0.2, 0.01, -0.7, 0.03, 0.05], {"eps": 1e-5}),
    "softmax_backward_fast": ([0.3, 0.1, 0.02], {}),
    "adam_m": ([1e-3], {"beta1": 0.9}),
    "adam_v": ([1e-3], {"beta2": 0.999}),
    "adam_m_hat": ([1e-4], {"beta1": 0.9, "t": 1}),
    "adam_v_hat": ([1e-9], {"beta2": 0.999, "t": 1}),
    "adam_update": ([0.1, 1e-3, 1e-6], {"lr": 1e-3, "weight_decay": 0.01, "eps": 1e-8}),
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_every_hand_formula_is_its_float_formula_when_nothing_is_rounded(name: str) -> None:
    """Anchor: unrounded, the decimal formulas are the engine's (which PyTorch checks)."""
    xs, consts = FORMULA_CASES[name]
    exact = float(FORMULAS[name].compute(*(np.float64(x) for x in xs), **consts))
    with localcontext(hand.CONTEXT):
        value, _ = FORMULAS[name].hand([Decimal(x) for x in xs], consts, Rounder(4, hand=False))
    # the derived constants (1/√d_k, √(2/π)) are used to 8 digits, as printed
    assert float(value) == pytest.approx(exact, rel=1e-7)


def test_factor_is_that_of_the_largest_entry_only_for_small_tables() -> None:
    assert factor_exp([Decimal("0.5"), Decimal("-0.001")], 4) == 0
    assert factor_exp([Decimal("0.0123"), Decimal("0.009")], 4) == 0
    assert factor_exp([Decimal("-2.5E-6"), Decimal("1E-9"), Decimal(0)], 4) == -6
    assert factor_exp([Decimal(0)], 4) == 0
    assert factor_exp([Decimal("999")], 4) == 0
    assert factor_exp([Decimal("-1.22E+3")], 3) == 3  # not 1220, whose zero looks significant
    assert Num(Decimal("-2.500E-6"), -6).cell == "-2.500"
    assert Num(Decimal("1.000E-9"), -6).cell == "0.001000"


def test_no_printed_table_needs_scientific_notation(book: Book) -> None:
    """Every cell is a plain decimal of at most 4 significant digits + a few zeros."""
    for name in book.values:
        for num in book.nums(name).ravel():
            cell = num.cell
            assert "E" not in cell and "e" not in cell, (name, cell)
            if num.value.is_finite() and num.value != 0:
                assert len(num.value.as_tuple().digits) == 4, (name, cell)


def test_hand_chain_starts_from_the_printed_parameters(book: Book) -> None:
    # X₁,₆ = (−0.1454) + 0.01151, computed from what is printed: −0.1339, not −0.1338
    assert book.num("E_token[tokens]", (0, 5)).cell == "-0.1454"
    assert book.num("E_pos[0:T]", (0, 5)).cell == "0.01151"
    assert book.num("X", (0, 5)).cell == "-0.1339"


def test_hand_loss_stays_close_to_the_seeds(trace, book: Book) -> None:
    assert f"{float(trace['loss']):.4f}" == "1.8299"
    assert book.num("loss").cell == "1.830"


def test_drift_printed_per_chapter_is_computed(trace, book: Book) -> None:
    tex = Worked(Config(), trace, Options(detail="results")).tex()
    printed = re.findall(r"by at most ([\d.]+)\\,\\% of the largest", tex)
    assert len(printed) == 13
    for number, text in zip(range(1, 14), printed, strict=True):
        worst = max(book.drift(s) for s in trace.chapter(number))
        assert text == f"{100 * worst:.2g}", number
    assert 0 < max(float(p) for p in printed) < 1  # under 1 %: the chain stays near exact
    finer = Book(trace, digits=6)
    assert max(finer.drift(s) for s in trace.steps) < max(book.drift(s) for s in trace.steps)


def test_title_page_has_the_exact_loss(trace) -> None:
    tex = Worked(Config(), trace, Options(detail="results")).tex()
    assert r"loss before the step & $1.8299$" in tex
    assert "loss by the printed chain" not in tex  # 1.830 both ways at 4 digits
    three = Worked(Config(), trace, Options(detail="results", digits=3)).tex()
    assert "loss by the printed chain & $1.84$" in three or "printed chain" not in three


def test_exact_arithmetic_prints_the_float64_values(trace) -> None:
    exact = Book(trace, arithmetic="exact")
    assert exact.num("X", (0, 5)).cell == "-0.1338"  # rounded from −0.13383…
    assert exact.tolerance(trace.step("X")) >= 1


@settings(max_examples=25, deadline=None)
@given(c=configs(max_layers=2), digits=st.integers(3, 8))
def test_random_models_print_lines_that_recheck(c: Config, digits: int) -> None:
    trace = engine.run(c)
    book = Book(trace, digits=digits)
    for name, values in book.values.items():
        for v in values.ravel():
            assert v.is_nan() is False, name
    tex = Worked(c, trace, Options(digits=digits, detail="sample")).tex()
    checks = proofread(tex, digits)
    wrong = [f"{k.line} → {k.redone}" for k in checks if not k.ok]
    assert checks and not wrong, "\n".join(wrong[:5])


def test_exact_arithmetic_refuses_a_key_that_would_accept_zero(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["build", "-o", str(tmp_path), "-q", "--tex-only", "--arithmetic", "exact"]
    assert cli.main([*argv, "--digits", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "use --digits 6 or more" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.tex"))  # refused before anything is written
    assert cli.main([*argv, "--digits", "6", "--detail", "results"]) == 0
    book = Book(engine.run(Config()), 6, "exact")
    assert not any(book.admits_zero(s) for s in book.t.steps)
